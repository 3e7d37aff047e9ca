//! The image engine: pure functions from source bytes to encoded derivative
//! bytes. No I/O, no async: [`render`] is blocking and CPU-bound, for a
//! bounded blocking pool.
//!
//! Pipeline: the header gives format, size and EXIF orientation ([`probe`]),
//! which are checked against the pixel limit before anything is decoded.
//! The output size is planned in display orientation, then mapped back to the
//! stored orientation. A JPEG is decoded at 1/2, 1/4 or 1/8 scale in the DCT
//! when the output is that much smaller (shrink-on-load), then resampled with
//! Lanczos3 (premultiplied alpha), cropped for `cover`, converted from its ICC
//! profile (or CMYK) to sRGB, rotated upright, and encoded. No metadata is
//! written: no EXIF, XMP or ICC leaves the engine; output is plain sRGB.
//!
//! Default qualities (`RenderSpec::quality == None`), after sharp's:
//! JPEG 80, WebP 80, AVIF 60 (ravif's scale, which is gentler than libaom's:
//! ravif 60 is near sharp's AVIF 50 in size and PSNR). PNG is lossless and
//! takes no quality.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{color, decode, encode, geometry, header};
use crate::pixels::Pixels;

/// Goes into derivative validators: bump when output bytes change.
pub const ENGINE_VERSION: &str = "img1";

/// Pixel limit when none is configured.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;

/// How many leading bytes [`probe`] wants: enough for the JPEG frame header
/// after typical EXIF/ICC segments. Fewer work when the header is earlier.
pub const PROBE_HEAD_LEN: usize = 256 * 1024;

pub const DEFAULT_JPEG_QUALITY: u8 = 80;
pub const DEFAULT_WEBP_QUALITY: u8 = 80;
pub const DEFAULT_AVIF_QUALITY: u8 = 60;

/// Source formats recognised. All but AVIF can be rendered; AVIF is
/// recognised and probed (to answer with a clear 415) but not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
    Avif,
    Gif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    Jpeg,
    Png,
    Webp,
    Avif,
}

impl OutputFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
            OutputFormat::Webp => "image/webp",
            OutputFormat::Avif => "image/avif",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Fit {
    /// Within width x height, keeping the aspect ratio.
    #[default]
    Inside,
    /// Fills width x height exactly, cropping the centre.
    Cover,
}

/// What the header says. `width`/`height` are as stored (before EXIF
/// orientation); `orientation` is the EXIF value 1-8 (1 when absent or not
/// in the header: a WebP's EXIF chunk usually comes after the image data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub has_alpha: bool,
    pub orientation: u8,
}

impl Probe {
    pub fn pixels(&self) -> u64 {
        self.width as u64 * self.height as u64
    }

    /// `TooManyPixels` when the source is over the limit.
    pub fn check_pixels(&self, max_pixels: u64) -> Result<(), ImageError> {
        if self.pixels() > max_pixels {
            return Err(ImageError::TooManyPixels {
                pixels: self.pixels(),
                limit: max_pixels,
            });
        }
        Ok(())
    }

    /// Width and height as displayed (after EXIF orientation).
    pub fn display_size(&self) -> (u32, u32) {
        if geometry::swaps_axes(self.orientation) {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RenderSpec {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
    pub format: OutputFormat,
    /// 1-100; `None` is the per-format default (see the module docs).
    pub quality: Option<u8>,
}

#[derive(Debug, Clone)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Every error is the source's or the request's fault (a 4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("image has {pixels} pixels, over the limit of {limit}")]
    TooManyPixels { pixels: u64, limit: u64 },
    #[error("unsupported image: {0}")]
    Unsupported(String),
    #[error("corrupt image: {0}")]
    Corrupt(String),
}

/// Format, size, alpha and orientation from the first bytes of a file (the
/// header only: no decoding, no allocation in proportion to the image).
/// [`PROBE_HEAD_LEN`] bytes are always enough for PNG, GIF and WebP and for
/// JPEGs whose metadata before the frame header is smaller than that.
pub fn probe(head: &[u8]) -> Result<Probe, ImageError> {
    header::probe(head)
}

/// The output size for a source of that probe, without decoding.
pub fn output_size(probe: &Probe, spec: &RenderSpec) -> (u32, u32) {
    let (w, h) = probe.display_size();
    let plan = geometry::plan(w, h, spec.width, spec.height, spec.fit);
    (plan.out_w, plan.out_h)
}

/// Decodes, resizes and encodes. Blocking and CPU-bound.
pub fn render(source: &[u8], spec: &RenderSpec, max_pixels: u64) -> Result<Rendered, ImageError> {
    let probe = probe(source)?;
    probe.check_pixels(max_pixels)?;
    check_spec(spec)?;
    // Decoders are validated by the header checks above; a panic in one
    // (or libjpeg's error exit, which unwinds) is still a corrupt source.
    catch_unwind(AssertUnwindSafe(|| {
        render_checked(source, &probe, spec, max_pixels)
    }))
    .unwrap_or_else(panic_to_corrupt)
}

/// Resizes and encodes pixels that are already decoded, upright and sRGB
/// (a video frame): the same plan, centred crop, Lanczos3 and encoders as
/// [`render`]. Blocking and CPU-bound.
pub fn render_pixels(img: Pixels, spec: &RenderSpec) -> Result<Rendered, ImageError> {
    check_spec(spec)?;
    let expected = img.width as u64 * img.height as u64 * img.channels as u64;
    if !matches!(img.channels, 3 | 4) || img.data.len() as u64 != expected || expected == 0 {
        return Err(ImageError::Corrupt(format!(
            "{}x{} pixels of {} channels in {} bytes",
            img.width,
            img.height,
            img.channels,
            img.data.len()
        )));
    }
    let plan = geometry::plan(img.width, img.height, spec.width, spec.height, spec.fit);
    let crop = centred_crop(img.width, img.height, plan.crop_w, plan.crop_h);
    catch_unwind(AssertUnwindSafe(|| {
        resize_orient_encode(img, crop, plan.out_w, plan.out_h, 1, spec)
    }))
    .unwrap_or_else(panic_to_corrupt)
}

/// A zero width or height can never be rendered.
fn check_spec(spec: &RenderSpec) -> Result<(), ImageError> {
    if spec.width == Some(0) || spec.height == Some(0) {
        return Err(ImageError::Unsupported(
            "zero width or height requested".into(),
        ));
    }
    Ok(())
}

/// A panic caught in a decoder or encoder, as the corrupt-source error it
/// stands for.
fn panic_to_corrupt(payload: Box<dyn std::any::Any + Send>) -> Result<Rendered, ImageError> {
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("decoder failed");
    let msg = msg.strip_prefix("libjpeg fatal error: ").unwrap_or(msg);
    Err(ImageError::Corrupt(msg.chars().take(120).collect()))
}

/// The centred region of `crop_w` x `crop_h` in a `w` x `h` image, as
/// (left, top, width, height).
fn centred_crop(w: u32, h: u32, crop_w: f64, crop_h: f64) -> (f64, f64, f64, f64) {
    (
        (w as f64 - crop_w) / 2.0,
        (h as f64 - crop_h) / 2.0,
        crop_w,
        crop_h,
    )
}

fn render_checked(
    source: &[u8],
    probe: &Probe,
    spec: &RenderSpec,
    max_pixels: u64,
) -> Result<Rendered, ImageError> {
    let mut orientation = probe.orientation;
    if probe.format == Format::Webp && orientation == 1 {
        orientation = header::webp_chunk(source, b"EXIF")
            .and_then(header::exif_orientation)
            .unwrap_or(1);
    }
    let swap = geometry::swaps_axes(orientation);
    let (dw, dh) = if swap {
        (probe.height, probe.width)
    } else {
        (probe.width, probe.height)
    };
    let plan = geometry::plan(dw, dh, spec.width, spec.height, spec.fit);
    // The same plan in stored orientation (a centred crop stays centred).
    let (out_w, out_h, crop_w, crop_h) = if swap {
        (plan.out_h, plan.out_w, plan.crop_h, plan.crop_w)
    } else {
        (plan.out_w, plan.out_h, plan.crop_w, plan.crop_h)
    };

    // Shrink-on-load: the largest DCT scale that leaves the resampler at
    // least SHRINK_RESIDUAL of reduction to do.
    let shrink = (crop_w / out_w as f64).min(crop_h / out_h as f64);
    let decoded = decode::decode(source, probe, shrink, max_pixels)?;
    let mut img = decoded.image;
    if let Some(icc) = decoded.icc.as_deref() {
        // CMYK was converted in the decoder; this is RGB(A) or grey.
        img = color::to_srgb(img, icc);
    }

    let sx = img.width as f64 / probe.width as f64;
    let sy = img.height as f64 / probe.height as f64;
    let crop = centred_crop(img.width, img.height, crop_w * sx, crop_h * sy);
    resize_orient_encode(img, crop, out_w, out_h, orientation, spec)
}

/// The tail every render shares: resample the region `crop` to
/// `out_w` x `out_h` (stored orientation), turn it upright, encode.
fn resize_orient_encode(
    img: Pixels,
    crop: (f64, f64, f64, f64),
    out_w: u32,
    out_h: u32,
    orientation: u8,
    spec: &RenderSpec,
) -> Result<Rendered, ImageError> {
    let img = geometry::resize(img, crop, out_w, out_h)?;
    let img = geometry::orient(img, orientation);
    let quality = spec.quality.map(|q| q.clamp(1, 100));
    let bytes = encode::encode(&img, spec.format, quality)?;
    Ok(Rendered {
        bytes,
        content_type: spec.format.content_type(),
        width: img.width,
        height: img.height,
    })
}
