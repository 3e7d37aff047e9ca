use std::process::ExitCode;

use media_streamer::config::Mode;

#[tokio::main]
async fn main() -> ExitCode {
    let mode = Mode::from_process();
    media_streamer::init_logging(&mode.log_settings());
    match media_streamer::run(mode).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
