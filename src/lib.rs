//! media-streamer: serves media objects over HTTP with exact Range and
//! conditional semantics, streaming bytes from where they live to the client.
//!
//! - [`protocol`]: the HTTP rules as pure functions, the decision among them.
//! - [`representation`]: what is served: a description and byte ranges.
//! - [`source`]: where stored objects come from, behind [`source::Source`].
//! - [`service`]: the one request pipeline, a `tower::Service`.
//! - [`transport`]: adapters from a network to the service.
//! - [`signing`], [`cors`], [`index`]: signed links, cross-origin policy and
//!   the index page, on top of the pipeline.

pub mod body;
mod bounded;
pub mod config;
pub mod cors;
pub mod derivative;
pub mod faststart;
pub mod image;
pub mod index;
pub mod metrics;
pub mod movie;
pub mod mp4;
pub mod pixels;
pub mod protocol;
pub mod registry;
pub mod representation;
pub mod service;
pub mod signing;
pub mod source;
pub mod transport;
pub mod video;

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use config::{LambdaArgs, LogFormat, LogSettings, Mode, ServeArgs, SourceArgs};
use cors::CorsPolicy;
use service::MediaService;
use source::dir::DirSource;
use source::s3::S3Source;
use source::Source;

/// Sets up logging to stdout: text or JSON lines, filtered by `settings.filter`
/// (`RUST_LOG` syntax: a default level and `target=level` directives, such as
/// `warn,media_streamer=debug`; an invalid filter means `info`).
pub fn init_logging(settings: &LogSettings) {
    let filter: Targets = settings
        .filter
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    let builder = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(std::io::stdout().is_terminal());
    match (settings.format, settings.timestamps) {
        (LogFormat::Text, true) => builder.finish().with(filter).init(),
        (LogFormat::Text, false) => builder.without_time().finish().with(filter).init(),
        (LogFormat::Json, true) => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(filter)
            .init(),
        (LogFormat::Json, false) => builder
            .json()
            .flatten_event(true)
            .without_time()
            .finish()
            .with(filter)
            .init(),
    }
}

/// Runs the binary in the mode it was started in.
pub async fn run(mode: Mode) -> Result<(), BoxError> {
    match mode {
        Mode::Local(args) => run_local(args).await,
        Mode::Lambda(args) => run_lambda(args).await,
        Mode::Sign(args) => {
            println!("{}", signed_path(&args)?);
            Ok(())
        }
        Mode::Registry => {
            println!("{}", registry::edge_tables());
            Ok(())
        }
    }
}

/// The signed link `media-streamer sign` prints: the path, percent-encoded
/// once, and its signature query.
pub fn signed_path(args: &config::SignArgs) -> Result<String, BoxError> {
    let keys = args
        .signing
        .keys()?
        .ok_or("set MEDIA_SIGNING_SECRET or MEDIA_SIGNING_KEYS (or --signing-secret)")?;
    let (path, query) = match args.path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (args.path.as_str(), None),
    };
    let target = protocol::key::parse_target(path).map_err(|e| format!("{path}: {e}"))?;
    let canonical = match &target {
        protocol::key::Target::Object(key) => {
            let selection = registry::select(key.file_name(), query, &args.image_sizes, false)
                .map_err(|e| format!("{}: {e}", args.path))?;
            if selection.params().is_none() && query.is_some_and(|q| !q.is_empty()) {
                return Err(format!(
                    "{}: only image and frame parameters are signed (w, h, fit, fmt, q, frame)",
                    args.path
                )
                .into());
            }
            Some(selection.canonical()).filter(|canonical| !canonical.is_empty())
        }
        protocol::key::Target::Directory(_) if query.is_some_and(|q| !q.is_empty()) => {
            return Err(format!("{}: a directory path takes no parameters", args.path).into())
        }
        protocol::key::Target::Directory(_) => None,
    };
    let expires = service::unix_now().saturating_add(args.expires_in);
    let href = index::href_of(target.as_str());
    Ok(match canonical {
        Some(canonical) => {
            let path = signing::signed_path(target.as_str(), Some(&canonical));
            format!("{href}?{canonical}&{}", keys.sign(&path, expires))
        }
        None => format!(
            "{href}?{}",
            keys.sign(&signing::signed_path(target.as_str(), None), expires)
        ),
    })
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What serves the objects: the source, the S3 client and bucket where a
/// bucket is served, and a description for the start-up log.
pub struct BuiltSource {
    pub source: Arc<dyn Source>,
    pub bucket: Option<(aws_sdk_s3::Client, String)>,
    pub description: String,
}

impl BuiltSource {
    /// The served bucket and its client, as the settings take them.
    pub fn bucket(&self) -> Option<(&aws_sdk_s3::Client, &str)> {
        self.bucket
            .as_ref()
            .map(|(client, name)| (client, name.as_str()))
    }
}

/// The source the settings name: the S3 bucket if one is set, else the
/// directory.
pub async fn build_source(
    dir: &Path,
    args: &SourceArgs,
    lambda: bool,
) -> Result<BuiltSource, BoxError> {
    match args.bucket() {
        None => {
            let source = DirSource::new(dir)?;
            let description = format!("directory {}", source.root().display());
            Ok(BuiltSource {
                source: Arc::new(source),
                bucket: None,
                description,
            })
        }
        Some(bucket) => {
            let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .http_client(source::s3::http_client())
                .load()
                .await;
            let config = aws_sdk_s3::config::Builder::from(&shared)
                .force_path_style(args.path_style())
                .timeout_config(args.s3_timeouts())
                .build();
            let client = aws_sdk_s3::Client::from_conf(config);
            let source = S3Source::new(client.clone(), bucket, &args.prefix, args.presign(lambda));
            Ok(BuiltSource {
                source: Arc::new(source),
                bucket: Some((client, bucket.to_owned())),
                description: format!("bucket {bucket} prefix {:?}", args.prefix),
            })
        }
    }
}

/// Runs the local server until SIGINT or SIGTERM.
pub async fn run_local(args: ServeArgs) -> Result<(), BoxError> {
    let built = build_source(&args.dir, &args.source, false).await?;
    let settings = args.service.settings(false, built.bucket())?;
    let (source, description) = (built.source, built.description);
    let service = MediaService::new(source, settings);
    let listener = std::net::TcpListener::bind(args.addr)?;
    let workers = args.worker_count();
    tracing::info!(
        addr = %listener.local_addr()?,
        source = %description,
        workers,
        "serving media at http://{}/",
        listener.local_addr()?
    );
    let threads = transport::local::serve_on_threads(
        listener,
        service,
        args.local_settings(),
        workers,
        transport::local::shutdown_signal(),
    );
    threads.await?;
    Ok(())
}

/// Runs as a Lambda function until the runtime stops.
pub async fn run_lambda(args: LambdaArgs) -> Result<(), BoxError> {
    let built = build_source(&args.dir, &args.source, true).await?;
    let mut settings = args.service.settings(true, built.bucket())?;
    let (source, description) = (built.source, built.description);
    if !settings.cors.is_off() {
        // The Function URL's Cors configuration sends these fields on Lambda;
        // a second set from the function would make browsers refuse both.
        tracing::warn!(
            "MEDIA_CORS_ALLOW_ORIGIN is ignored on Lambda: configure CORS on the Function URL"
        );
        settings.cors = CorsPolicy::Off;
    }
    let service = MediaService::new(source, settings);
    tracing::info!(source = %description, "serving media through the Lambda runtime");
    let metrics = metrics::Metrics::new(
        args.metrics,
        &args.function_name,
        args.lambda_log_level.as_deref(),
    );
    transport::lambda::run(service, metrics).await
}
