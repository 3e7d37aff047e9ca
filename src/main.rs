use std::process::ExitCode;

use media_streamer::config::Mode;

/// One thread drives the process: a Lambda function serves one invocation at a
/// time, and the local server runs its own event loop per CPU
/// (`transport::local::serve_on_threads`); reads from disk go to the
/// blocking pool either way.
#[tokio::main(flavor = "current_thread")]
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
