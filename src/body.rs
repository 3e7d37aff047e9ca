//! The response body both transports send: empty, a few fixed bytes, or a
//! stream of chunks read from a source, with the request's access-log line
//! written when it ends.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use http_body::{Frame, SizeHint};

use crate::metrics::{Metrics, RequestSummary};
use crate::representation::{BodyStream, SourceError};

/// A response body whose chunks come straight from the source, never buffered
/// whole.
pub struct ResponseBody {
    kind: Kind,
    access: Option<AccessRecord>,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    Stream { stream: BodyStream, remaining: u64 },
}

impl ResponseBody {
    pub fn empty() -> Self {
        ResponseBody {
            kind: Kind::Empty,
            access: None,
        }
    }

    pub fn full(bytes: Bytes) -> Self {
        ResponseBody {
            kind: Kind::Full(Some(bytes)),
            access: None,
        }
    }

    /// A stream that yields exactly `length` bytes.
    pub fn stream(stream: BodyStream, length: u64) -> Self {
        ResponseBody {
            kind: Kind::Stream {
                stream,
                remaining: length,
            },
            access: None,
        }
    }

    /// Writes `record` to the access log when the body ends or is dropped.
    pub fn with_access_record(mut self, record: AccessRecord) -> Self {
        self.access = Some(record);
        self
    }

    /// Records the request to `metrics` too, when its access line is written
    /// (see [`AccessRecord::with_metrics`]); a body without an access record
    /// records nothing.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        if let Some(record) = &mut self.access {
            record.metrics = metrics;
        }
        self
    }

    fn is_done(&self) -> bool {
        match &self.kind {
            Kind::Empty | Kind::Full(None) => true,
            Kind::Full(Some(_)) => false,
            Kind::Stream { remaining, .. } => *remaining == 0,
        }
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = SourceError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, SourceError>>> {
        let this = &mut *self;
        let polled = match &mut this.kind {
            Kind::Empty => None,
            Kind::Full(bytes) => bytes.take().map(Ok),
            Kind::Stream { remaining: 0, .. } => None,
            Kind::Stream { stream, remaining } => match Pin::new(stream).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) if chunk.len() as u64 > *remaining => Some(Err(
                    SourceError::Io(std::io::Error::other("source sent more bytes than planned")),
                )),
                Poll::Ready(Some(Ok(chunk))) => {
                    *remaining -= chunk.len() as u64;
                    Some(Ok(chunk))
                }
                Poll::Ready(Some(Err(e))) => Some(Err(e)),
                Poll::Ready(None) => Some(Err(SourceError::Io(std::io::Error::from(
                    std::io::ErrorKind::UnexpectedEof,
                )))),
            },
        };
        if let Some(record) = &mut this.access {
            match &polled {
                Some(Ok(chunk)) => record.sent(chunk.len()),
                Some(Err(e)) => record.failed(e),
                None => {}
            }
        }
        Poll::Ready(polled.map(|r| r.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty | Kind::Full(None) => SizeHint::with_exact(0),
            Kind::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Kind::Stream { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        let done = self.is_done();
        if let Some(record) = self.access.take() {
            record.finish(done);
        }
    }
}

/// What the access-log line of one request says; written once, when its body
/// ends or is dropped.
pub struct AccessRecord {
    pub method: http::Method,
    pub key: String,
    pub status: u16,
    /// The `Content-Range` served, or `-`.
    pub range: String,
    started: Instant,
    head_ready: Duration,
    first_byte: Option<Duration>,
    bytes_sent: u64,
    error: Option<String>,
    metrics: Metrics,
}

impl AccessRecord {
    /// A record for a request that started at `started` and whose response head
    /// is ready now.
    pub fn new(
        method: http::Method,
        key: String,
        status: u16,
        range: String,
        started: Instant,
    ) -> Self {
        AccessRecord {
            method,
            key,
            status,
            range,
            started,
            head_ready: started.elapsed(),
            first_byte: None,
            bytes_sent: 0,
            error: None,
            metrics: Metrics::off(),
        }
    }

    /// Records the request to `metrics` as well, with the values of its
    /// access line, when the line is written.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    fn sent(&mut self, n: usize) {
        if self.first_byte.is_none() {
            self.first_byte = Some(self.started.elapsed());
        }
        self.bytes_sent += n as u64;
    }

    fn failed(&mut self, e: &SourceError) {
        self.error = Some(e.to_string());
    }

    fn finish(self, done: bool) {
        let ttfb = self.first_byte.unwrap_or(self.head_ready);
        let duration = self.started.elapsed();
        let client_gone = !done && self.error.is_none();
        tracing::info!(
            target: "access",
            method = %self.method,
            key = %self.key,
            status = self.status,
            range = %self.range,
            bytes_sent = self.bytes_sent,
            ttfb_ms = millis(ttfb),
            duration_ms = millis(duration),
            client_gone,
            error = self.error.as_deref().unwrap_or("-"),
            "request"
        );
        self.metrics.record(&RequestSummary {
            status: self.status,
            bytes_sent: self.bytes_sent,
            time_to_first_byte: ttfb,
            duration,
            client_gone,
            source_error: self.error.is_some(),
        });
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
