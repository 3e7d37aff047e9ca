//! AWS Lambda behind a Function URL in response-streaming mode: the same
//! service, handed to lambda_http's streaming runtime.

use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue};
use http::{Response, Uri};
use http_body::{Frame, SizeHint};
use lambda_http::lambda_runtime::{self, LambdaInvocation};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use tracing::Instrument;

use crate::body::ResponseBody;
use crate::service::MediaService;
use crate::source::SourceError;

/// Exit status after a read failure in the middle of a body (see [`LambdaBody`]).
pub const MID_BODY_FAILURE_EXIT_CODE: i32 = 70;

/// Runs the Lambda runtime loop with `service` until the runtime stops.
///
/// When a response cannot be delivered (the Runtime API closes the response
/// stream, as when the client goes away mid-body), lambda_runtime ends its
/// loop with an error. The function then polls for the next invocation again:
/// exiting would make Lambda start a fresh execution environment after every
/// abandoned seek. A loop that ends before serving any request (the Runtime
/// API out of reach) returns its error.
pub async fn run(service: MediaService) -> Result<(), lambda_http::Error> {
    let adapter = LambdaAdapter::new(service);
    loop {
        let before = adapter.served.load(Ordering::Relaxed);
        let runtime = lambda_http::streaming_runtime(adapter.clone())
            .layer(RedeliverLayer)
            .layer(lambda_runtime::layers::TracingLayer::new());
        match runtime.run().await {
            Ok(()) => return Ok(()),
            Err(e) if adapter.served.load(Ordering::Relaxed) > before => {
                tracing::warn!(error = %e, "a response was not delivered; polling for the next invocation");
            }
            Err(e) => return Err(e),
        }
    }
}

/// How many times a response is sent again after the connection to the
/// Runtime API failed under it.
pub const REDELIVERIES: usize = 2;

/// Sends an invocation's response again when the connection carrying it to
/// the Runtime API failed before the API answered.
///
/// The runtime's client keeps connections to the Runtime API alive and sends
/// the next response on one that the API may be closing at that moment (the
/// emulator closes one whenever a client drops a streamed response). The
/// response then never arrives, and its client would wait until the
/// invocation times out. The invocation is answered again, from the start, on
/// a new connection; an API that already holds a response for it refuses the
/// second one, which is logged.
struct RedeliverLayer;

impl<S> tower::Layer<S> for RedeliverLayer {
    type Service = Redeliver<S>;

    fn layer(&self, inner: S) -> Redeliver<S> {
        Redeliver {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
        }
    }
}

struct Redeliver<S> {
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

/// Adapts [`MediaService`] to Function URL events (payload format 2.0).
#[derive(Clone)]
pub struct LambdaAdapter {
    service: MediaService,
    /// Invocations taken so far.
    served: Arc<AtomicU64>,
}

impl LambdaAdapter {
    pub fn new(service: MediaService) -> Self {
        LambdaAdapter {
            service,
            served: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl tower::Service<Request> for LambdaAdapter {
    type Response = Response<LambdaBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<LambdaBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        self.served.fetch_add(1, Ordering::Relaxed);
        let (mut parts, _body) = request.into_parts();
        // lambda_http rebuilds the URI through a URL parser that resolves `..`
        // and turns `\` into `/`; the pipeline must judge the path exactly as the
        // client sent it, so use the raw path of the event.
        if let Some(raw) = raw_path(&parts.extensions) {
            parts.uri = raw_uri(&raw, parts.uri.query());
        }
        let request_id = parts
            .extensions
            .lambda_context_ref()
            .map(|c| c.request_id.clone());
        let span = tracing::info_span!("request", requestId = request_id.as_deref().unwrap_or("-"));
        let service = self.service.clone();
        Box::pin(
            async move {
                let response = service.respond(parts).await;
                let (mut head, body) = response.into_parts();
                join_repeated_fields(&mut head.headers);
                Ok(Response::from_parts(
                    head,
                    LambdaBody {
                        inner: body,
                        span: tracing::Span::current(),
                        sockets_tuned: false,
                    },
                ))
            }
            .instrument(span),
        )
    }
}

fn raw_path(extensions: &http::Extensions) -> Option<String> {
    match extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(_)) => {}
        _ => return None,
    }
    let raw = extensions.raw_http_path();
    (!raw.is_empty()).then(|| raw.to_owned())
}

/// The request URI for a raw path. A path that is not valid in a URI becomes
/// one that the key parser refuses (`%` alone), so the client gets a 400.
fn raw_uri(path: &str, query: Option<&str>) -> Uri {
    let target = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    target.parse().unwrap_or_else(|_| Uri::from_static("/%"))
}

/// Joins repeated header fields into one line with ", " (RFC 9110 §5.3): the
/// streaming prelude carries one value per name.
pub fn join_repeated_fields(headers: &mut HeaderMap) {
    let names: Vec<_> = headers.keys().cloned().collect();
    for name in names {
        let values: Vec<&HeaderValue> = headers.get_all(&name).iter().collect();
        if values.len() < 2 {
            continue;
        }
        let joined: Vec<u8> = values
            .iter()
            .map(|v| v.as_bytes())
            .collect::<Vec<_>>()
            .join(&b", "[..]);
        if let Ok(value) = HeaderValue::from_bytes(&joined) {
            headers.insert(name, value);
        }
    }
}

/// The response body on Lambda.
///
/// The streaming runtime turns an `Err` from the body into text spliced into
/// the body bytes and then ends the response cleanly, so a client would get
/// corrupt media that looks complete. A read failure after the head has gone is
/// therefore fatal here: the failure is logged and the process exits, which
/// cuts the response off mid-stream so the client sees an incomplete message.
/// Lambda starts a fresh runtime for the next invocation.
pub struct LambdaBody {
    inner: ResponseBody,
    span: tracing::Span,
    sockets_tuned: bool,
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
        if !this.sockets_tuned {
            this.sockets_tuned = true;
            disable_nagle_on_tcp_sockets();
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
            Poll::Ready(Some(Err(e))) => abort_response(&e),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LambdaBody {
    fn drop(&mut self) {
        // The access line is written when the inner body drops: inside the span.
        let _entered = self.span.enter();
        let inner = std::mem::replace(&mut self.inner, ResponseBody::empty());
        drop(inner);
    }
}

fn abort_response(e: &SourceError) -> ! {
    tracing::error!(error = %e, "read failed after the response head was sent; ending the response abnormally");
    let _ = std::io::stdout().flush();
    std::process::exit(MID_BODY_FAILURE_EXIT_CODE);
}

/// Sets TCP_NODELAY on every TCP socket of the process.
///
/// The runtime's client for the Lambda Runtime API leaves Nagle's algorithm on,
/// and a streamed response goes out as several small writes (request head,
/// JSON prelude, eight NUL bytes, then the body): Nagle holds the later ones
/// until the first is acknowledged, and the receiver delays that ACK by up to
/// 40 ms, so a small response's first byte waited that long. The body is
/// polled once the connection carrying it is open, so doing this at the first
/// poll covers it (and flushes what Nagle holds). Sockets that are not TCP
/// refuse the option, which is ignored.
fn disable_nagle_on_tcp_sockets() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let on: libc::c_int = 1;
        // SAFETY: setsockopt only reads `on`, whose size is passed; on a
        // descriptor that is not a TCP socket it fails without side effects.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_repeated_fields() {
        let mut headers = HeaderMap::new();
        headers.append("vary", HeaderValue::from_static("origin"));
        headers.append("vary", HeaderValue::from_static("range"));
        headers.append("etag", HeaderValue::from_static("\"a\""));
        join_repeated_fields(&mut headers);
        assert_eq!(
            headers.get_all("vary").iter().collect::<Vec<_>>(),
            ["origin, range"]
        );
        assert_eq!(
            headers.get_all("etag").iter().collect::<Vec<_>>(),
            ["\"a\""]
        );
    }

    #[test]
    fn keeps_the_raw_path() {
        let cases = [
            ("/a%20b.mp4", None, "/a%20b.mp4"),
            ("/../x", None, "/../x"),
            ("/%2e%2e/x", Some("v=1"), "/%2e%2e/x?v=1"),
            ("/a b", None, "/%"),
        ];
        for (path, query, expected) in cases {
            assert_eq!(raw_uri(path, query).to_string(), expected, "{path}");
        }
    }
}
