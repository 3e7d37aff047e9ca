//! On-the-fly image derivatives.
//!
//! - [`engine`]: pure functions from source bytes to encoded derivative
//!   bytes (probe, render), with its parts: header parsing, decoding,
//!   colour, geometry (fit, resampling, orientation) and encoding.

mod color;
mod decode;
mod encode;
pub mod engine;
mod geometry;
mod header;
#[cfg(test)]
mod tests;

pub use engine::{
    output_size, probe, render, Fit, Format, ImageError, OutputFormat, Probe, RenderSpec, Rendered,
    DEFAULT_MAX_PIXELS, ENGINE_VERSION, PROBE_HEAD_LEN,
};
pub use header::{exif_orientation, jpeg_meta, sniff, walk_jpeg_segments, JpegMeta, JpegWalk};
