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

    /// Seconds an S3 call may take until its answer's head, retries
    /// included; a streamed body is not counted (the SDK's stalled-stream
    /// protection watches it).
    #[arg(long, env = "MEDIA_S3_TIMEOUT_SECS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=900))]
    pub s3_timeout_secs: u64,

    /// Seconds one attempt of an S3 call may take until its answer's head;
    /// a slower attempt is retried.
    #[arg(long, env = "MEDIA_S3_ATTEMPT_TIMEOUT_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=900))]
    pub s3_attempt_timeout_secs: u64,
}

/// The SDK's connect timeout (its default), kept when the others are set.
const S3_CONNECT_TIMEOUT: Duration = Duration::from_millis(3_100);

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

    /// The S3 client's timeouts. The operation and attempt timeouts end when
    /// the answer's head is read: "Operation and attempt timeouts do not
    /// apply to streaming data consumed after the SDK for Rust returns a
    /// response" (AWS SDK for Rust, "Configuring timeouts"), so a long
    /// GetObject body is never cut by them.
    pub fn s3_timeouts(&self) -> aws_sdk_s3::config::timeout::TimeoutConfig {
        aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(S3_CONNECT_TIMEOUT)
            .operation_timeout(Duration::from_secs(self.s3_timeout_secs))
            .operation_attempt_timeout(Duration::from_secs(self.s3_attempt_timeout_secs))
            .build()
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        source: SourceArgs,
    }

    #[test]
    fn s3_timeouts_have_defaults_and_bounds() {
        let timeouts = |args: &[&str]| {
            Cli::try_parse_from(args).map(|cli| {
                let t = cli.source.s3_timeouts();
                (
                    t.operation_timeout(),
                    t.operation_attempt_timeout(),
                    t.connect_timeout(),
                )
            })
        };
        let secs = |s| Some(Duration::from_secs(s));
        let connect = Some(S3_CONNECT_TIMEOUT);
        assert_eq!(timeouts(&["x"]).unwrap(), (secs(15), secs(5), connect));
        assert_eq!(
            timeouts(&[
                "x",
                "--s3-timeout-secs",
                "3",
                "--s3-attempt-timeout-secs",
                "1"
            ])
            .unwrap(),
            (secs(3), secs(1), connect)
        );
        for bad in ["0", "901", "x"] {
            assert!(timeouts(&["x", "--s3-timeout-secs", bad]).is_err(), "{bad}");
            assert!(
                timeouts(&["x", "--s3-attempt-timeout-secs", bad]).is_err(),
                "{bad}"
            );
        }
    }
}
