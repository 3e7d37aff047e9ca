//! Every setting: its flag, its environment variable and its default, read in
//! one place (flags over environment) and handed down as values.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use http::HeaderValue;

use crate::cors::CorsPolicy;
use crate::protocol::range::RangeLimits;
use crate::service::ServiceSettings;
use crate::signing::SigningKeys;
use crate::transport::local::LocalSettings;
use images::ImageArgs;
pub use source::{SourceArgs, LAMBDA_PRESIGN_ABOVE_BYTES};
use video::VideoArgs;

mod images;
mod source;
mod video;

/// Default cap on the answer to an open-ended range (`bytes=N-`): 5 MiB, under
/// the 6 MB that a Lambda streamed response sends at full speed before it is
/// throttled to about 2 MB/s, so each of a player's requests stays fast.
pub const DEFAULT_RANGE_CHUNK_BYTES: u64 = 5 * 1024 * 1024;

/// Where the bundled media is in Lambda mode: a Lambda layer's contents are
/// unpacked under `/opt`, and the deployment ships `sample-media/` as a layer.
pub const LAMBDA_MEDIA_DIR: &str = "/opt/sample-media";

/// How the binary runs, decided once at start-up.
#[derive(Debug)]
pub enum Mode {
    /// The local HTTP server.
    Local(ServeArgs),
    /// A Lambda function: `AWS_LAMBDA_RUNTIME_API` is set.
    Lambda(LambdaArgs),
    /// Print a signed link and exit.
    Sign(SignArgs),
    /// Print the edge function's tables (from the registry of
    /// representation kinds) and exit.
    Registry,
}

impl Mode {
    /// Lambda mode when `AWS_LAMBDA_RUNTIME_API` is set (settings from the
    /// environment only), otherwise the command line.
    pub fn from_process() -> Self {
        if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
            Mode::Lambda(LambdaArgs::parse_from(["media-streamer"]))
        } else {
            let cli = Cli::parse();
            match cli.command {
                Some(Command::Sign(args)) => Mode::Sign(args),
                Some(Command::Registry) => Mode::Registry,
                _ => Mode::Local(cli.into_serve_args()),
            }
        }
    }

    pub fn log_settings(&self) -> LogSettings {
        let rust_log = std::env::var("RUST_LOG").ok();
        match self {
            Mode::Local(args) => LogSettings {
                format: args.log.log_format,
                filter: rust_log.unwrap_or_else(|| "info".to_owned()),
                timestamps: true,
            },
            Mode::Lambda(args) => args.log_settings(rust_log),
            Mode::Sign(_) | Mode::Registry => LogSettings {
                format: LogFormat::Text,
                filter: "warn".to_owned(),
                timestamps: false,
            },
        }
    }
}

/// Settings of the Lambda function, read from its environment.
#[derive(Parser, Debug, Clone)]
#[command(name = "media-streamer")]
pub struct LambdaArgs {
    /// Directory whose files are served.
    #[arg(long, env = "MEDIA_DIR", default_value = LAMBDA_MEDIA_DIR)]
    pub dir: PathBuf,

    #[command(flatten)]
    pub source: SourceArgs,

    #[command(flatten)]
    pub service: ServiceArgs,

    /// Lambda's log format setting: `JSON` or `Text`.
    #[arg(long, env = "AWS_LAMBDA_LOG_FORMAT", default_value = "Text")]
    pub lambda_log_format: String,

    /// Lambda's log level setting (TRACE, DEBUG, INFO, WARN, ERROR, FATAL);
    /// wins over `RUST_LOG`.
    #[arg(long, env = "AWS_LAMBDA_LOG_LEVEL")]
    pub lambda_log_level: Option<String>,

    /// Per-request CloudWatch metrics: `emf` writes one Embedded Metric Format
    /// record per request to stdout, `off` none.
    #[arg(long, env = "MEDIA_METRICS", default_value = "emf")]
    pub metrics: crate::metrics::MetricsFormat,

    /// The function's name, the metrics' one dimension (set by Lambda).
    #[arg(long, env = "AWS_LAMBDA_FUNCTION_NAME", default_value = "")]
    pub function_name: String,
}

impl LambdaArgs {
    fn log_settings(&self, rust_log: Option<String>) -> LogSettings {
        let format = if self.lambda_log_format.eq_ignore_ascii_case("json") {
            LogFormat::Json
        } else {
            LogFormat::Text
        };
        let filter = match self
            .lambda_log_level
            .as_deref()
            .map(str::to_ascii_lowercase)
        {
            Some(level) if level == "fatal" => "error".to_owned(),
            Some(level) => level,
            None => rust_log.unwrap_or_else(|| "info".to_owned()),
        };
        LogSettings {
            format,
            filter,
            // CloudWatch stamps every line itself.
            timestamps: false,
        }
    }
}

/// How to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// An `EnvFilter` directive such as `info` or `media_streamer=debug`.
    pub filter: String,
    pub timestamps: bool,
}

/// Streams images, audio and video over HTTP with exact Range and conditional
/// semantics.
#[derive(Parser, Debug)]
#[command(
    name = "media-streamer",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no subcommand, `serve` runs with these settings.
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Cli {
    /// The serve settings, whether given after `serve` or with no subcommand.
    pub fn into_serve_args(self) -> ServeArgs {
        match self.command {
            Some(Command::Serve(args)) => *args,
            _ => self.serve,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve media over HTTP on this machine (the default).
    Serve(Box<ServeArgs>),
    /// Print a signed link to PATH, with the keys of MEDIA_SIGNING_SECRET or
    /// MEDIA_SIGNING_KEYS.
    Sign(SignArgs),
    /// Print the tables of the representation kinds that the CloudFront edge
    /// function carries, as JSON (deploy/edge/registry.json).
    Registry,
}

/// What `media-streamer sign` signs.
#[derive(Args, Debug, Clone)]
pub struct SignArgs {
    /// The path to sign, as in the URL: `/videos/clip.mp4`, `/videos/` for an
    /// index page, or `/photo.jpg?w=640&fmt=webp` for an image derivative
    /// (the parameters are signed too).
    pub path: String,

    /// Seconds until the link expires; a negative value makes an already
    /// expired link (for tests).
    #[arg(long, allow_negative_numbers = true)]
    pub expires_in: i64,

    /// The sizes the server allows for `w` and `h` (as the server's
    /// MEDIA_IMAGE_SIZES), so that no link is signed that it would refuse.
    #[arg(long, env = "MEDIA_IMAGE_SIZES", value_delimiter = ',',
          default_values_t = crate::derivative::params::DEFAULT_SIZES.to_vec())]
    pub image_sizes: Vec<u32>,

    #[command(flatten)]
    pub signing: SigningArgs,
}

/// Settings of the local server.
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Directory whose files are served.
    #[arg(long, env = "MEDIA_DIR", default_value = "sample-media")]
    pub dir: PathBuf,

    #[command(flatten)]
    pub source: SourceArgs,

    /// Address to listen on.
    #[arg(long, env = "MEDIA_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Seconds a client may take to send a request head before the connection
    /// is closed.
    #[arg(long, env = "MEDIA_HEADER_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_secs: u64,

    /// Seconds a response may wait for a client that takes no bytes before
    /// the connection is dropped.
    #[arg(long, env = "MEDIA_WRITE_TIMEOUT_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub write_timeout_secs: u64,

    /// Most connections open at once; past it, new connections wait to be
    /// accepted until one closes.
    #[arg(long, env = "MEDIA_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,

    /// Event loops serving connections, each on a thread of its own; 0 is one
    /// per CPU.
    #[arg(long, env = "MEDIA_WORKERS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=1024))]
    pub workers: u64,

    #[command(flatten)]
    pub service: ServiceArgs,

    #[command(flatten)]
    pub log: LogArgs,
}

/// Settings of the request pipeline, the same in every mode.
#[derive(Args, Debug, Clone)]
pub struct ServiceArgs {
    /// Most bytes sent for an open-ended range (`bytes=N-`); closed ranges are
    /// always served whole.
    #[arg(long, env = "MEDIA_RANGE_CHUNK_BYTES", default_value_t = DEFAULT_RANGE_CHUNK_BYTES,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub range_chunk_bytes: u64,

    /// Most ranges in one Range header; more gets 416.
    #[arg(long, env = "MEDIA_MAX_RANGES", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub max_ranges: u64,

    /// Cache-Control sent with media that has none of its own.
    #[arg(
        long,
        env = "MEDIA_CACHE_CONTROL",
        default_value = "public, max-age=3600"
    )]
    pub cache_control: String,

    /// Origins whose pages may read the media from script (CORS): `*`, or a
    /// comma-separated list such as `https://a.example,http://localhost:8080`;
    /// empty is off. Local server only: on Lambda the Function URL's CORS
    /// configuration answers, and this setting is ignored.
    #[arg(long, env = "MEDIA_CORS_ALLOW_ORIGIN", default_value = "")]
    pub cors_allow_origin: String,

    /// Status for objects the store refuses to read: 403, or 404 so that
    /// their existence is not revealed.
    #[arg(long, env = "MEDIA_DENIED_STATUS", default_value = "403",
          value_parser = ["403", "404"])]
    pub denied_status: String,

    /// An HTML index page, with players and embed snippets, for directory
    /// paths (`/`, `/videos/`): on or off. Default: on locally, off in Lambda
    /// mode (the template's EnableIndex parameter turns it on there).
    #[arg(long, env = "MEDIA_INDEX", value_parser = clap::builder::BoolishValueParser::new())]
    pub index: Option<bool>,

    #[command(flatten)]
    pub signing: SigningArgs,

    /// Entries per index page; further entries are behind a "Next page" link.
    #[arg(long, env = "MEDIA_INDEX_PAGE_SIZE", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub index_page_size: u64,

    #[command(flatten)]
    pub images: ImageArgs,

    #[command(flatten)]
    pub video: VideoArgs,
}

/// Signed links: with a secret set, every request must carry a valid
/// signature over its path and an expiry time.
#[derive(Args, Debug, Clone)]
pub struct SigningArgs {
    /// Secret (32 bytes or more) that signs links; every request must then
    /// carry `expires`, `kid` and `sig` query parameters made with it
    /// (`media-streamer sign`). Empty is off.
    #[arg(long, env = "MEDIA_SIGNING_SECRET", hide_env_values = true)]
    pub signing_secret: Option<String>,

    /// Several keys instead, for rotation: `ID:SECRET,ID:SECRET,...`; the
    /// first signs new links, all are accepted.
    #[arg(long, env = "MEDIA_SIGNING_KEYS", hide_env_values = true)]
    pub signing_keys: Option<String>,

    /// Seconds a signed link is still accepted after it expires, for clocks
    /// that disagree.
    #[arg(long, env = "MEDIA_SIGNING_SKEW_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub signing_skew_secs: u64,
}

impl SigningArgs {
    /// The keys, if signing is on.
    pub fn keys(&self) -> Result<Option<SigningKeys>, ConfigError> {
        let secret = self.signing_secret.as_deref().filter(|s| !s.is_empty());
        let list = self.signing_keys.as_deref().filter(|s| !s.is_empty());
        let keys = match (secret, list) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => return Err(ConfigError::TwoSigningSettings),
            (Some(secret), None) => SigningKeys::single(secret, self.signing_skew_secs),
            (None, Some(list)) => SigningKeys::list(list, self.signing_skew_secs),
        };
        keys.map(Some).map_err(ConfigError::Signing)
    }
}

/// Log settings. The level comes from `RUST_LOG` (default `info`).
#[derive(Args, Debug, Clone)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long, env = "MEDIA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// A setting with a value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("MEDIA_CACHE_CONTROL / --cache-control is not a valid header value: {0:?}")]
    CacheControl(String),
    #[error("MEDIA_SIGNING_SECRET / MEDIA_SIGNING_KEYS: {0}")]
    Signing(crate::signing::KeyError),
    #[error("set MEDIA_SIGNING_SECRET or MEDIA_SIGNING_KEYS, not both")]
    TwoSigningSettings,
    #[error("set MEDIA_DERIVED_DIR or MEDIA_DERIVED_PREFIX, not both")]
    TwoDerivedStores,
    #[error("MEDIA_DERIVED_PREFIX keeps derivatives in the served bucket: set MEDIA_BUCKET too")]
    DerivedPrefixWithoutBucket,
}

impl ServiceArgs {
    /// The pipeline's settings; `lambda` picks the defaults of Lambda mode,
    /// `bucket` is the served bucket and its client, where one is served.
    pub fn settings(
        &self,
        lambda: bool,
        bucket: Option<(&aws_sdk_s3::Client, &str)>,
    ) -> Result<ServiceSettings, ConfigError> {
        let cache_control = HeaderValue::from_str(&self.cache_control)
            .map_err(|_| ConfigError::CacheControl(self.cache_control.clone()))?;
        let images = self.images.settings(bucket)?;
        let faststart = self
            .video
            .faststart_settings(images.recheck_after, images.store.clone());
        // One movie index for every representation of a movie.
        let movies = crate::movie::MovieIndex::new(crate::movie::MovieIndexSettings {
            cache_bytes: faststart.cache_bytes,
            faststart_max_moov_bytes: faststart.max_moov_bytes,
            recheck_after: images.recheck_after,
            store: images.store.clone(),
        });
        Ok(ServiceSettings {
            cors: CorsPolicy::parse(&self.cors_allow_origin),
            denied_status: if self.denied_status == "404" {
                http::StatusCode::NOT_FOUND
            } else {
                http::StatusCode::FORBIDDEN
            },
            limits: RangeLimits {
                open_ended_cap: self.range_chunk_bytes,
                max_ranges: self.max_ranges as usize,
            },
            cache_control,
            index_page_size: self
                .index
                .unwrap_or(!lambda)
                .then_some(self.index_page_size as usize),
            signing: self.signing.keys()?,
            faststart: crate::faststart::Faststarts::with_movies(
                faststart,
                std::sync::Arc::clone(&movies),
            ),
            images: crate::derivative::Renderer::with_movies(images, movies),
        })
    }
}

impl ServeArgs {
    pub fn local_settings(&self) -> LocalSettings {
        LocalSettings {
            header_read_timeout: Duration::from_secs(self.header_timeout_secs),
            queued_bytes: crate::source::dir::READ_CHUNK_BYTES,
            write_timeout: Duration::from_secs(self.write_timeout_secs),
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        }
    }

    /// The number of event loops: as set, else one per CPU.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> ServeArgs {
        Cli::try_parse_from(args).unwrap().into_serve_args()
    }

    #[test]
    fn defaults_and_flags() {
        let default = parse(&["media-streamer"]);
        assert_eq!(default.dir, PathBuf::from("sample-media"));
        assert_eq!(default.addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(default.header_timeout_secs, 10);
        let local = default.local_settings();
        assert_eq!(
            (local.write_timeout, local.max_connections),
            (Duration::from_secs(60), 1024)
        );
        assert_eq!(default.service.range_chunk_bytes, 5 * 1024 * 1024);
        assert_eq!(default.service.max_ranges, 16);
        assert_eq!(default.service.cache_control, "public, max-age=3600");
        assert_eq!(default.log.log_format, LogFormat::Text);

        let serve = parse(&[
            "media-streamer",
            "serve",
            "--dir",
            "/m",
            "--addr",
            "0.0.0.0:80",
            "--range-chunk-bytes",
            "7",
        ]);
        assert_eq!(serve.dir, PathBuf::from("/m"));
        assert_eq!(serve.addr, "0.0.0.0:80".parse().unwrap());
        assert_eq!(
            serve
                .service
                .settings(false, None)
                .unwrap()
                .limits
                .open_ended_cap,
            7
        );

        let top = parse(&["media-streamer", "--dir", "/n"]);
        assert_eq!(top.dir, PathBuf::from("/n"));

        assert_eq!(default.source.bucket(), None);
        assert_eq!(
            parse(&["media-streamer", "--bucket", ""]).source.bucket(),
            None
        );
        assert_eq!(default.source.presign(false), None);
        assert_eq!(
            default.source.presign(true).map(|p| p.above_bytes),
            Some(LAMBDA_PRESIGN_ABOVE_BYTES)
        );
        assert_eq!(
            default.service.settings(false, None).unwrap().denied_status,
            http::StatusCode::FORBIDDEN
        );
        let s3 = parse(&[
            "media-streamer",
            "--bucket",
            "b",
            "--prefix",
            "p",
            "--s3-path-style",
            "true",
            "--presign-above-bytes",
            "0",
            "--denied-status",
            "404",
        ]);
        assert_eq!(
            (s3.source.bucket(), s3.source.prefix.as_str()),
            (Some("b"), "p")
        );
        assert!(s3.source.path_style());
        assert_eq!(s3.source.presign(true), None);
        assert_eq!(
            s3.service.settings(false, None).unwrap().denied_status,
            http::StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn index_is_on_locally_and_off_on_lambda_unless_set() {
        let index = |args: &[&str], lambda: bool| {
            parse(args)
                .service
                .settings(lambda, None)
                .unwrap()
                .index_page_size
        };
        let cases: &[(&[&str], bool, Option<usize>)] = &[
            (&["media-streamer"], false, Some(100)),
            (&["media-streamer"], true, None),
            (&["media-streamer", "--index", "off"], false, None),
            (&["media-streamer", "--index", "false"], false, None),
            (&["media-streamer", "--index", "on"], true, Some(100)),
            (
                &[
                    "media-streamer",
                    "--index",
                    "true",
                    "--index-page-size",
                    "7",
                ],
                true,
                Some(7),
            ),
        ];
        for (args, lambda, want) in cases {
            assert_eq!(index(args, *lambda), *want, "{args:?} lambda={lambda}");
        }
    }

    #[test]
    fn signing_settings() {
        let secret = "0123456789abcdef0123456789abcdef";
        let keys = |args: &[&str]| {
            parse(args)
                .service
                .settings(false, None)
                .map(|s| s.signing.is_some())
        };
        assert!(matches!(keys(&["media-streamer"]), Ok(false)));
        assert!(matches!(
            keys(&["media-streamer", "--signing-secret", ""]),
            Ok(false)
        ));
        assert!(matches!(
            keys(&["media-streamer", "--signing-secret", secret]),
            Ok(true)
        ));
        let list = format!("a:{secret},b:{secret}");
        assert!(matches!(
            keys(&["media-streamer", "--signing-keys", &list]),
            Ok(true)
        ));
        assert!(keys(&["media-streamer", "--signing-secret", "short"]).is_err());
        assert!(keys(&[
            "media-streamer",
            "--signing-secret",
            secret,
            "--signing-keys",
            &list
        ])
        .is_err());
        let sign = Cli::try_parse_from(["media-streamer", "sign", "/a.mp4", "--expires-in", "-5"])
            .unwrap();
        assert!(
            matches!(sign.command, Some(Command::Sign(ref a)) if a.expires_in == -5 && a.path == "/a.mp4")
        );
    }

    #[test]
    fn lambda_log_settings() {
        let args = |format: &str, level: Option<&str>| LambdaArgs {
            dir: LAMBDA_MEDIA_DIR.into(),
            source: parse(&["media-streamer"]).source,
            service: parse(&["media-streamer"]).service,
            lambda_log_format: format.into(),
            lambda_log_level: level.map(str::to_owned),
            metrics: crate::metrics::MetricsFormat::Emf,
            function_name: String::new(),
        };
        let cases = [
            (args("JSON", None), None, LogFormat::Json, "info"),
            (
                args("json", Some("DEBUG")),
                Some("warn"),
                LogFormat::Json,
                "debug",
            ),
            (
                args("Text", None),
                Some("media_streamer=trace"),
                LogFormat::Text,
                "media_streamer=trace",
            ),
            (args("Text", Some("FATAL")), None, LogFormat::Text, "error"),
        ];
        for (args, rust_log, format, filter) in cases {
            let settings = args.log_settings(rust_log.map(str::to_owned));
            assert_eq!(
                (settings.format, settings.filter.as_str()),
                (format, filter)
            );
            assert!(!settings.timestamps);
        }
        let defaults = LambdaArgs::try_parse_from(["media-streamer"]).unwrap();
        assert_eq!(defaults.dir, PathBuf::from(LAMBDA_MEDIA_DIR));
        assert_eq!(defaults.metrics, crate::metrics::MetricsFormat::Emf);
        let off = LambdaArgs::try_parse_from(["media-streamer", "--metrics", "OFF"]).unwrap();
        assert_eq!(off.metrics, crate::metrics::MetricsFormat::Off);
        assert!(LambdaArgs::try_parse_from(["media-streamer", "--metrics", "on"]).is_err());
    }

    #[test]
    fn refuses_bad_values() {
        for args in [
            &["media-streamer", "--range-chunk-bytes", "0"][..],
            &["media-streamer", "--addr", "nowhere"],
            &["media-streamer", "--max-ranges", "0"],
            &["media-streamer", "--log-format", "xml"],
            &["media-streamer", "--denied-status", "500"],
            &["media-streamer", "--presign-expires-secs", "0"],
            &["media-streamer", "--index", "maybe"],
            &["media-streamer", "--index-page-size", "0"],
            &["media-streamer", "--index-page-size", "1001"],
            &["media-streamer", "--write-timeout-secs", "0"],
            &["media-streamer", "--max-connections", "0"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        let mut args = parse(&["media-streamer"]).service;
        args.cache_control = "bad\nvalue".into();
        assert!(args.settings(false, None).is_err());
    }
}
