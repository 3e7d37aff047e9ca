//! Integration tests over real sockets. One test crate with modules, so the
//! crate and its dependencies are linked once.

mod binary;
mod client;
mod fixture;
mod lambda;
mod local;
mod table;
