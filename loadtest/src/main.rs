//! media-loadtest: range requests at a media URL, every byte checked.
//! Built with `cargo build --release -p media-loadtest`.
//!
//! `media-loadtest URL [flags]` runs the load test; `media-loadtest smoke
//! URL [flags]` runs the smoke checks once (a URL is never the word
//! `smoke`, so the load test's command line stays as it was).

use std::future::Future;
use std::process::ExitCode;

use clap::Parser;
use media_loadtest::smoke::{self, SmokeArgs};
use media_loadtest::{run, Args};

fn main() -> ExitCode {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if argv.get(1).is_some_and(|a| a == "smoke") {
        argv.remove(1);
        let args = SmokeArgs::parse_from(argv);
        block_on(smoke::run(args))
    } else {
        block_on(run(Args::parse_from(argv)))
    }
}

fn block_on(work: impl Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(work),
        Err(e) => {
            eprintln!("media-loadtest: {e}");
            ExitCode::from(2)
        }
    }
}
