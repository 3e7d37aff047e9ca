//! Integration tests over real sockets. One test crate with modules, so the
//! crate and its dependencies are linked once.

mod answer;
mod binary;
mod browser;
mod client;
mod edge;
mod edge_derived;
mod emf;
mod faults;
mod fixture;
mod golden;
mod images;
mod lambda;
mod layers;
mod loadtest;
mod local;
mod logs;
mod properties;
mod s3;
mod signed;
mod smoke;
mod table;
mod video;

/// Held by tests that measure time and by tests that load the machine, so that
/// no measurement runs beside a heavy load on the 2-core CI machine.
pub static MEASURE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
