//! Pure HTTP rules: no I/O, values in and values out, each rule naming the RFC
//! section it implements. Nothing here knows where bytes come from.

pub mod conditional;
pub mod decision;
pub mod delegation;
pub mod description;
pub mod headers;
pub mod key;
pub mod media_type;
pub mod multipart;
pub mod range;
