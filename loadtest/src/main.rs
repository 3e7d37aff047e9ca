//! media-loadtest: range requests at a media URL, every byte checked.
//! Built with `cargo build --release -p media-loadtest`.

use std::process::ExitCode;

use clap::Parser;
use media_loadtest::{run, Args};

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("media-loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(args))
}
