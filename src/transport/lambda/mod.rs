//! AWS Lambda behind a Function URL in response-streaming mode: the same
//! service, handed to lambda_http's streaming runtime.
//!
//! [`run`] starts the runtime; `adapter` turns Function URL events into the
//! service's requests. Each other module answers one behaviour of the runtime
//! or its Runtime API, and its comment names that behaviour and the test that
//! shows it:
//!
//! - `raw_path`: lambda_http normalises the request path; the raw one is used.
//! - `headers`: the streaming prelude carries one value per header name.
//! - `abort`: an `Err` from the body would be spliced into the body as text;
//!   a read failure after the head ends the process instead.
//! - `nodelay`: the runtime's client leaves Nagle's algorithm on; the
//!   Runtime API's connections (only those) get TCP_NODELAY.
//! - `redeliver`: a response sent on a Runtime API connection that is closing
//!   is lost; it is sent again.
//! - `restart`: the runtime loop ends after an undelivered response; the
//!   function polls for the next invocation again.

mod abort;
mod adapter;
mod headers;
mod nodelay;
mod raw_path;
mod redeliver;
mod restart;

pub use abort::MID_BODY_FAILURE_EXIT_CODE;

use lambda_http::lambda_runtime;

use crate::metrics::Metrics;
use crate::service::MediaService;
use adapter::LambdaAdapter;
use nodelay::RuntimeApiSockets;
use redeliver::RedeliverLayer;

/// Runs the Lambda runtime loop with `service` until the runtime stops,
/// recording each request to `metrics`.
///
/// The Runtime API's address is read from `AWS_LAMBDA_RUNTIME_API`, as the
/// runtime's own client reads it (see `nodelay`).
pub async fn run(service: MediaService, metrics: Metrics) -> Result<(), lambda_http::Error> {
    let runtime_api = std::env::var("AWS_LAMBDA_RUNTIME_API").unwrap_or_default();
    let sockets = RuntimeApiSockets::resolve(&runtime_api).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "TCP_NODELAY stays off on the Runtime API's connections");
        RuntimeApiSockets::default()
    });
    let adapter = LambdaAdapter::new(service, metrics, sockets);
    restart::run_restarting(
        || adapter.served(),
        || {
            lambda_http::streaming_runtime(adapter.clone())
                .layer(RedeliverLayer)
                .layer(lambda_runtime::layers::TracingLayer::new())
                .run()
        },
    )
    .await
}
