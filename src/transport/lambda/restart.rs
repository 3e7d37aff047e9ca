//! Polling for the next invocation after a response could not be delivered.
//!
//! Runtime behaviour: when a response cannot be delivered (the Runtime API
//! closes the response stream, as when the client goes away mid-body),
//! lambda_runtime ends its loop with an error. Exiting then would make Lambda
//! start a fresh execution environment after every abandoned seek, so the
//! function starts a new runtime loop and polls for the next invocation again.
//! A loop that ends before serving any request (the Runtime API out of reach)
//! returns its error.
//!
//! Shown by: `tests/it/lambda.rs` `stops_reading_when_the_client_goes_away`
//! (after the client leaves, the same process answers three more requests).

use std::future::Future;

/// Runs `run_loop` until it returns `Ok` or fails without serving anything
/// new; `served` counts the invocations taken so far.
pub(super) async fn run_restarting<F, Fut>(
    served: impl Fn() -> u64,
    mut run_loop: F,
) -> Result<(), lambda_http::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), lambda_http::Error>>,
{
    loop {
        let before = served();
        match run_loop().await {
            Ok(()) => return Ok(()),
            Err(e) if served() > before => {
                tracing::warn!(error = %e, "a response was not delivered; polling for the next invocation");
            }
            Err(e) => return Err(e),
        }
    }
}
