//! Function URL events (payload format 2.0) to the service and back.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Response;
use lambda_http::{Request, RequestExt};
use tracing::Instrument;

use super::abort::LambdaBody;
use super::headers::join_repeated_fields;
use super::nodelay::RuntimeApiSockets;
use super::raw_path::{raw_path, raw_uri};
use crate::metrics::Metrics;
use crate::service::MediaService;

/// Adapts [`MediaService`] to Function URL events.
#[derive(Clone)]
pub(crate) struct LambdaAdapter {
    service: MediaService,
    metrics: Metrics,
    runtime_api: Arc<RuntimeApiSockets>,
    /// Invocations taken so far.
    served: Arc<AtomicU64>,
}

impl LambdaAdapter {
    pub(crate) fn new(
        service: MediaService,
        metrics: Metrics,
        runtime_api: RuntimeApiSockets,
    ) -> Self {
        LambdaAdapter {
            service,
            metrics,
            runtime_api: Arc::new(runtime_api),
            served: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many invocations this adapter (and its clones) has taken.
    pub(crate) fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
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
        if let Some(raw) = raw_path(&parts.extensions) {
            parts.uri = raw_uri(&raw, parts.uri.query());
        }
        let request_id = parts
            .extensions
            .lambda_context_ref()
            .map(|c| c.request_id.clone());
        let span = tracing::info_span!("request", requestId = request_id.as_deref().unwrap_or("-"));
        let service = self.service.clone();
        let metrics = self.metrics.clone();
        let runtime_api = self.runtime_api.clone();
        Box::pin(
            async move {
                let response = service.respond(parts).await;
                let (mut head, body) = response.into_parts();
                join_repeated_fields(&mut head.headers);
                let body = body.with_metrics(metrics);
                Ok(Response::from_parts(
                    head,
                    LambdaBody::new(body, tracing::Span::current(), runtime_api),
                ))
            }
            .instrument(span),
        )
    }
}
