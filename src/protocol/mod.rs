//! Pure HTTP rules: no I/O, values in and values out, each rule naming the RFC
//! section it implements.

pub mod conditional;
pub mod cors;
pub mod headers;
pub mod index;
pub mod key;
pub mod media_type;
pub mod multipart;
pub mod plan;
pub mod range;
pub mod signing;
