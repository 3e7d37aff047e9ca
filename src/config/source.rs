//! Where objects come from: a bucket when one is named, else the directory.

use std::time::Duration;

use clap::Args;

/// Whole objects above this size are redirected in Lambda mode by default: a
/// streamed Lambda response carries at most 200 MB.
pub const LAMBDA_PRESIGN_ABOVE_BYTES: u64 = 200_000_000;

/// Where objects come from: a bucket when one is named, else the directory.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// S3 bucket to serve from (any S3-compatible store); without it, the
    /// directory is served. Region and credentials come from the AWS default
    /// chain; an endpoint from AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_S3.
    #[arg(long, env = "MEDIA_BUCKET")]
    pub bucket: Option<String>,

    /// Key prefix inside the bucket (a trailing `/` is added if missing).
    #[arg(long, env = "MEDIA_PREFIX", default_value = "")]
    pub prefix: String,

    /// Path-style S3 addressing (`endpoint/bucket/key`). Default: on when an
    /// endpoint URL is set (MinIO-like stores), off for AWS.
    #[arg(long, env = "MEDIA_S3_PATH_STYLE")]
    pub s3_path_style: Option<bool>,

    /// Whole objects larger than this get a 307 to a presigned S3 URL; 0 turns
    /// it off. Default: 200000000 in Lambda mode (the streaming limit), off
    /// locally.
    #[arg(long, env = "MEDIA_PRESIGN_ABOVE_BYTES")]
    pub presign_above_bytes: Option<u64>,

    /// Lifetime of a presigned URL, in seconds.
    #[arg(long, env = "MEDIA_PRESIGN_EXPIRES_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub presign_expires_secs: u64,
}

impl SourceArgs {
    /// Path-style addressing as set, else on when an endpoint URL is set.
    pub fn path_style(&self) -> bool {
        self.s3_path_style.unwrap_or_else(|| {
            ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
                .iter()
                .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
        })
    }

    /// The bucket to serve; an empty value (as a template may set) is none.
    pub fn bucket(&self) -> Option<&str> {
        self.bucket.as_deref().filter(|b| !b.is_empty())
    }

    /// The redirect policy for large objects in this mode.
    pub fn presign(&self, lambda: bool) -> Option<crate::source::s3::PresignPolicy> {
        let default = if lambda {
            LAMBDA_PRESIGN_ABOVE_BYTES
        } else {
            0
        };
        let above_bytes = self.presign_above_bytes.unwrap_or(default);
        (above_bytes > 0).then(|| crate::source::s3::PresignPolicy {
            above_bytes,
            expires_in: Duration::from_secs(self.presign_expires_secs),
        })
    }
}
