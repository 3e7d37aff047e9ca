//! media-streamer: serves media objects over HTTP with exact Range and
//! conditional semantics, streaming bytes from where they live to the client.
//!
//! - [`protocol`]: the HTTP rules as pure functions.
//! - [`source`]: where bytes come from, behind the [`source::Source`] trait.
//! - [`service`]: the one request pipeline, a `tower::Service`.
//! - [`transport`]: adapters from a network to the service.

pub mod body;
pub mod config;
pub mod protocol;
pub mod service;
pub mod source;
pub mod transport;

use std::io::IsTerminal;
use std::sync::Arc;

use tracing_subscriber::EnvFilter;

use config::{LogFormat, ServeArgs};
use service::MediaService;
use source::dir::DirSource;

/// Sets up logging: level from `RUST_LOG` (default `info`), text or JSON lines.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Runs the local server until SIGINT or SIGTERM.
pub async fn run_local(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let source = DirSource::new(&args.dir)?;
    let service = MediaService::new(Arc::new(source.clone()), args.service.settings()?);
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        dir = %source.root().display(),
        "serving media at http://{}/",
        listener.local_addr()?
    );
    transport::local::serve(
        listener,
        service,
        args.local_settings(),
        transport::local::shutdown_signal(),
    )
    .await?;
    Ok(())
}
