//! Sending a response again when its Runtime API connection broke.
//!
//! Runtime behaviour: the runtime's client keeps connections to the Runtime
//! API alive and sends the next response on one that the API may be closing
//! at that moment (the emulator closes one whenever a client drops a streamed
//! response). The response then never arrives, and its client would wait until
//! the invocation times out. The invocation is answered again, from the
//! start, on a new connection; an API that already holds a response for it
//! refuses the second one, which is logged.
//!
//! Shown by: `tests/it/loadtest.rs`
//! `abandoned_seeks_through_the_emulator_leave_no_request_unanswered` (3,000
//! browser-pattern requests, many dropped mid-body, none left unanswered, and
//! at least one "sending it again" line; without this layer the same run had
//! 24 timeouts).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lambda_http::lambda_runtime::{self, LambdaInvocation};

/// How many times a response is sent again after the connection to the
/// Runtime API failed under it.
pub(super) const REDELIVERIES: usize = 2;

/// The layer around the runtime's service that answers an invocation again.
pub(super) struct RedeliverLayer;

impl<S> tower::Layer<S> for RedeliverLayer {
    type Service = Redeliver<S>;

    fn layer(&self, inner: S) -> Redeliver<S> {
        Redeliver {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
        }
    }
}

pub(super) struct Redeliver<S> {
    /// Shared with the future of the call in progress; the runtime makes one
    /// call at a time.
    inner: Arc<tokio::sync::Mutex<S>>,
}

impl<S> tower::Service<LambdaInvocation> for Redeliver<S>
where
    S: tower::Service<LambdaInvocation, Response = (), Error = lambda_runtime::Error> + 'static,
{
    type Response = ();
    type Error = lambda_runtime::Error;
    // Not Send: lambda_http's streaming service does not promise a Send future,
    // and the runtime loop runs on the thread that awaits it.
    type Future = Pin<Box<dyn Future<Output = Result<(), lambda_runtime::Error>>>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, invocation: LambdaInvocation) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let mut inner = inner.lock().await;
            let mut attempt = 0;
            loop {
                let again = LambdaInvocation {
                    parts: invocation.parts.clone(),
                    body: invocation.body.clone(),
                    context: invocation.context.clone(),
                };
                let result = tower::ServiceExt::ready(&mut *inner)
                    .await?
                    .call(again)
                    .await;
                match result {
                    Err(e) if attempt < REDELIVERIES && is_runtime_api_transport_error(&*e) => {
                        attempt += 1;
                        tracing::warn!(
                            error = %e,
                            requestId = invocation.context.request_id,
                            attempt,
                            "the response did not reach the Runtime API; sending it again"
                        );
                    }
                    result => return result,
                }
            }
        })
    }
}

/// Whether `e` is the Runtime API client failing to deliver a request: the
/// connection broke or could not be made, so the API has no answer from it.
fn is_runtime_api_transport_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(e) = source {
        if e.is::<hyper_util::client::legacy::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}
