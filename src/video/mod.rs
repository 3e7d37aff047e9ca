//! Video frames as images: one H.264 picture decoded to RGB pixels
//! ([`crate::pixels::Pixels`]), which the image engine then resizes and
//! encodes like any other image. This module does not use the engine: the
//! caller hands the pixels on.
//!
//! - `avcc`: the track's `avcC` configuration and its SPS, checked before
//!   any decoding ([`check_config`]).
//! - [`decode`]: MP4 samples to an Annex B stream, and the picture of a
//!   given presentation rank from OpenH264.
//!
//! Like the image engine, this is pure and blocking: no I/O, no async; the
//! caller runs it on a bounded blocking pool.

mod avcc;
pub mod decode;
#[cfg(test)]
mod tests;

pub use decode::{check_config, decode_frame, is_disposable, VideoError};
