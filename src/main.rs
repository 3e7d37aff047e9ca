use std::process::ExitCode;

use clap::Parser;
use media_streamer::config::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Cli::parse().into_serve_args();
    media_streamer::init_logging(args.log.log_format);
    match media_streamer::run_local(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
