//! The response body on Lambda, which ends the process when a read fails
//! after the head has gone.
//!
//! Runtime behaviour: the streaming runtime turns an `Err` from the body into
//! text spliced into the body bytes and then ends the response cleanly, so a
//! client would get corrupt media that looks complete. A read failure after
//! the head has gone is therefore fatal here: the request's access line (and
//! metrics record) is written with the error, and the process exits, which
//! cuts the response off mid-stream so the client sees an incomplete message.
//! Lambda starts a fresh runtime for the next invocation.
//!
//! Shown by: `tests/it/lambda.rs`
//! `a_failure_mid_body_leaves_the_response_incomplete` (a file truncated while
//! it is served: an incomplete chunked message holding only media bytes, and
//! the exit status [`MID_BODY_FAILURE_EXIT_CODE`]).

use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};

use super::nodelay::RuntimeApiSockets;
use crate::body::ResponseBody;

/// Exit status after a read failure in the middle of a body.
pub const MID_BODY_FAILURE_EXIT_CODE: i32 = 70;

/// The service's body, polled inside its request's span.
pub(crate) struct LambdaBody {
    inner: ResponseBody,
    span: tracing::Span,
    /// Set on the Runtime API's sockets at the first poll; see
    /// [`super::nodelay`].
    runtime_api: Option<Arc<RuntimeApiSockets>>,
}

impl LambdaBody {
    pub(super) fn new(
        inner: ResponseBody,
        span: tracing::Span,
        runtime_api: Arc<RuntimeApiSockets>,
    ) -> Self {
        LambdaBody {
            inner,
            span,
            runtime_api: Some(runtime_api),
        }
    }
}

impl http_body::Body for LambdaBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        let _entered = this.span.enter();
        if let Some(runtime_api) = this.runtime_api.take() {
            runtime_api.set_nodelay();
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(Some(Err(e))) => abort(&mut this.inner, &e),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Writes the access line of `body` (with the error it recorded), then ends
/// the process mid-response.
fn abort(body: &mut ResponseBody, e: &dyn std::fmt::Display) -> ! {
    tracing::error!(error = %e, "read failed after the response head was sent; ending the response abnormally");
    drop(std::mem::replace(body, ResponseBody::empty()));
    let _ = std::io::stdout().flush();
    std::process::exit(MID_BODY_FAILURE_EXIT_CODE);
}

impl Drop for LambdaBody {
    fn drop(&mut self) {
        // The access line is written when the inner body drops: inside the span.
        let _entered = self.span.enter();
        drop(std::mem::replace(&mut self.inner, ResponseBody::empty()));
    }
}
