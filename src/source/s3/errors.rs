//! What S3's failures mean for the client, and the few facts read from an
//! error answer's body.

use std::io;

use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use futures_util::StreamExt;

use crate::representation::{BodyStream, SourceError};

/// The HTTP status of S3's error answer, if one came back.
pub(super) fn status_of<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// S3's InvalidRange error names the object's size.
pub(super) fn actual_object_size(raw: Option<&HttpResponse>) -> Option<u64> {
    let body = std::str::from_utf8(raw?.body().bytes()?).ok()?;
    let start = body.find("<ActualObjectSize>")? + "<ActualObjectSize>".len();
    let end = start + body[start..].find('<')?;
    body[start..end].trim().parse().ok()
}

/// Maps an SDK failure (after its retries) to a source error; the details go
/// to the log, never to the client.
pub(super) fn classify<E: std::error::Error + Send + Sync + 'static>(
    bucket: &str,
    key: &str,
    e: SdkError<E, HttpResponse>,
) -> SourceError {
    let error = match status_of(&e) {
        Some(404) => SourceError::NotFound,
        Some(403) => SourceError::Forbidden,
        Some(s) if s == 429 || s >= 500 => SourceError::Unavailable(format!("S3 answered {s}")),
        Some(s) => SourceError::Upstream(format!("S3 answered {s}")),
        None => match e {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
                SourceError::Unavailable("S3 could not be reached".into())
            }
            _ => SourceError::Upstream("S3 request failed".into()),
        },
    };
    if !matches!(error, SourceError::NotFound) {
        tracing::warn!(bucket, key, error = %DisplayErrorContext(&e), "S3 request failed");
    }
    error
}

/// The bytes of a GetObject body as they arrive.
pub(super) fn byte_stream(body: ByteStream) -> BodyStream {
    Box::pin(
        futures_util::stream::try_unfold(body, |mut body| async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Ok(Some((chunk, body))),
                Ok(None) => Ok(None),
                Err(e) => Err(SourceError::Io(io::Error::other(e))),
            }
        })
        .boxed(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_size_from_invalid_range() {
        let body = "<?xml version=\"1.0\"?><Error><Code>InvalidRange</Code><ActualObjectSize>10240</ActualObjectSize></Error>";
        let raw = HttpResponse::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(416).unwrap(),
            aws_sdk_s3::primitives::SdkBody::from(body),
        );
        assert_eq!(actual_object_size(Some(&raw)), Some(10240));
    }
}
