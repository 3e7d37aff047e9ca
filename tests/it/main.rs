//! Integration tests over real sockets. One test crate with modules, so the
//! crate and its dependencies are linked once.

mod answer;
mod binary;
mod browser;
mod client;
mod edge;
mod emf;
mod faults;
mod fixture;
mod lambda;
#[cfg(feature = "loadtest")]
mod loadtest;
mod local;
mod logs;
mod properties;
mod s3;
mod signed;
mod table;

/// Held by tests that measure time and by tests that load the machine, so that
/// no measurement runs beside a heavy load on the 2-core CI machine.
pub static MEASURE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The load tester's tests need its binary, which the feature builds: run
/// the tests with `--features loadtest` (scripts/test.sh does).
#[cfg(not(feature = "loadtest"))]
#[test]
fn media_loadtest_is_tested_with_the_loadtest_feature() {
    panic!("media-loadtest was not built: run the tests with --features loadtest");
}
