//! The S3 client's transport, and presigned links for objects too large for
//! one response.

use std::time::Duration;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::Client;

use crate::protocol::decision::ReadMethod;
use crate::representation::SourceError;

/// The HTTPS client for S3 and the credential providers: rustls on ring.
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// When a whole object is too large for one response, redirect to S3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresignPolicy {
    /// Whole objects larger than this get a 307 to a presigned GetObject URL.
    pub above_bytes: u64,
    /// How long the presigned URL is valid.
    pub expires_in: Duration,
}

/// A presigned URL for `key`, valid for `policy.expires_in`: GetObject for a
/// GET, HeadObject for a HEAD. A SigV4 signature covers the method, and a
/// client follows a 307 with the method it used (RFC 9110 §15.4.8), so a
/// HEAD sent to a GetObject URL would be refused.
pub(crate) async fn presigned(
    client: &Client,
    bucket: &str,
    key: &str,
    method: ReadMethod,
    policy: PresignPolicy,
) -> Result<String, SourceError> {
    let config = PresigningConfig::expires_in(policy.expires_in)
        .map_err(|e| SourceError::Upstream(format!("presigning: {e}")))?;
    let failed = |e: String| SourceError::Upstream(format!("presigning: {e}"));
    let presigned = match method {
        ReadMethod::Get => client
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| failed(DisplayErrorContext(&e).to_string()))?,
        ReadMethod::Head => client
            .head_object()
            .bucket(bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| failed(DisplayErrorContext(&e).to_string()))?,
    };
    Ok(presigned.uri().to_owned())
}
