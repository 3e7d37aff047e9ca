//! Decoders: source bytes to 8-bit RGB/RGBA, after the header was checked
//! against the pixel limit.

use std::io::Cursor;

use mozjpeg::{ColorSpace, Decompress};
use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr as ErrorMgr, jpeg_std_error};

use super::color;
use super::engine::{Format, ImageError, Probe};
use super::header;
use crate::pixels::Pixels;

/// Shrink-on-load leaves the resampler at least this much reduction, so
/// the final filter (not the DCT scaling) shapes the result.
const SHRINK_RESIDUAL: f64 = 1.0;

pub struct Decoded {
    pub image: Pixels,
    /// An ICC profile still to apply (RGB or grey sources).
    pub icc: Option<Vec<u8>>,
}

/// `shrink` is how much smaller the output is than the source (>= 1); a
/// decoder may use it to decode at a reduced size.
pub fn decode(
    source: &[u8],
    probe: &Probe,
    shrink: f64,
    max_pixels: u64,
) -> Result<Decoded, ImageError> {
    match probe.format {
        Format::Jpeg => decode_jpeg(source, shrink),
        Format::Png => decode_png(source, max_pixels),
        Format::Webp => decode_webp(source),
        Format::Gif => decode_gif(source, probe, max_pixels),
        Format::Avif => Err(ImageError::Unsupported(
            "AVIF input is not supported".into(),
        )),
    }
}

/// libjpeg's warnings that mean the picture is damaged (it would otherwise
/// fill the rest with grey and carry on).
fn fatal_warning(code: i32) -> bool {
    use mozjpeg_sys as s;
    let c = code as s::J_MESSAGE_CODE;
    c == s::JWRN_JPEG_EOF
        || c == s::JWRN_HIT_MARKER
        || c == s::JWRN_HUFF_BAD_CODE
        || c == s::JWRN_MUST_RESYNC
        || c == s::JWRN_NOT_SEQUENTIAL
        || c == s::JWRN_BOGUS_PROGRESSION
}

extern "C-unwind" fn emit_message(cinfo: &mut jpeg_common_struct, level: std::os::raw::c_int) {
    // level -1 is a warning; others are trace messages.
    let code = unsafe { cinfo.err.as_ref() }.map_or(0, |e| e.msg_code);
    if level < 0 && fatal_warning(code) {
        let msg = match code as mozjpeg_sys::J_MESSAGE_CODE {
            mozjpeg_sys::JWRN_JPEG_EOF => "JPEG data ends early (truncated)",
            _ => "JPEG entropy-coded data is damaged",
        };
        std::panic::resume_unwind(Box::new(msg.to_string()));
    }
}

extern "C-unwind" fn error_exit(cinfo: &mut jpeg_common_struct) {
    let code = unsafe { cinfo.err.as_ref() }.map_or(0, |e| e.msg_code);
    std::panic::resume_unwind(Box::new(format!("libjpeg error {code}")));
}

fn error_mgr() -> ErrorMgr {
    unsafe {
        let mut err: ErrorMgr = std::mem::zeroed();
        jpeg_std_error(&mut err);
        err.error_exit = Some(error_exit);
        err.emit_message = Some(emit_message);
        err
    }
}

fn io_err(e: std::io::Error) -> ImageError {
    ImageError::Corrupt(format!("JPEG: {e}"))
}

fn decode_jpeg(source: &[u8], shrink: f64) -> Result<Decoded, ImageError> {
    let meta = header::jpeg_meta(source);
    let mut d = Decompress::builder()
        .with_err(error_mgr())
        .from_mem(source)
        .map_err(io_err)?;
    let mut denom = 1u8;
    for cand in [8u8, 4, 2] {
        if shrink / cand as f64 >= SHRINK_RESIDUAL {
            denom = cand;
            break;
        }
    }
    if denom > 1 {
        d.scale(8 / denom);
    }
    let cmyk = matches!(d.color_space(), ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK);
    let mut started = if cmyk {
        d.to_colorspace(ColorSpace::JCS_CMYK).map_err(io_err)?
    } else {
        d.rgb().map_err(io_err)?
    };
    let (width, height) = (started.width() as u32, started.height() as u32);
    let data: Vec<u8> = started.read_scanlines().map_err(io_err)?;
    started.finish().map_err(io_err)?;
    if data.len() != width as usize * height as usize * if cmyk { 4 } else { 3 } {
        return Err(ImageError::Corrupt(
            "JPEG data ends early (truncated)".into(),
        ));
    }
    if cmyk {
        let image = color::cmyk_to_srgb(&data, width, height, meta.adobe, meta.icc.as_deref());
        return Ok(Decoded { image, icc: None });
    }
    Ok(Decoded {
        image: Pixels {
            width,
            height,
            channels: 3,
            data,
        },
        icc: meta.icc,
    })
}

fn png_err(e: png::DecodingError) -> ImageError {
    match e {
        png::DecodingError::LimitsExceeded => ImageError::Corrupt("PNG over memory limits".into()),
        png::DecodingError::IoError(_) => {
            ImageError::Corrupt("PNG data ends early (truncated)".into())
        }
        e => ImageError::Corrupt(format!("PNG: {e}")),
    }
}

fn decode_png(source: &[u8], max_pixels: u64) -> Result<Decoded, ImageError> {
    let mut dec = png::Decoder::new_with_limits(
        Cursor::new(source),
        png::Limits {
            // 16-bit RGBA is 8 bytes a pixel, plus a row or two of slack
            bytes: (max_pixels.saturating_mul(8).saturating_add(1 << 20)).min(usize::MAX as u64)
                as usize,
        },
    );
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(png_err)?;
    let icc = reader.info().icc_profile.as_ref().map(|p| p.to_vec());
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| ImageError::Corrupt("PNG too large".into()))?;
    let mut buf = vec![0u8; size];
    let frame = reader.next_frame(&mut buf).map_err(png_err)?;
    let (width, height) = (frame.width, frame.height);
    buf.truncate(frame.buffer_size());
    let (channels, data) = match frame.color_type {
        png::ColorType::Rgb => (3, buf),
        png::ColorType::Rgba => (4, buf),
        png::ColorType::Grayscale => (3, buf.iter().flat_map(|&g| [g, g, g]).collect()),
        png::ColorType::GrayscaleAlpha => (
            4,
            buf.chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect(),
        ),
        png::ColorType::Indexed => {
            return Err(ImageError::Corrupt("PNG palette not expanded".into()))
        }
    };
    let image = Pixels {
        width,
        height,
        channels,
        data,
    }
    .drop_opaque_alpha();
    Ok(Decoded { image, icc })
}

fn decode_webp(source: &[u8]) -> Result<Decoded, ImageError> {
    let features = webp::BitstreamFeatures::new(source)
        .ok_or_else(|| ImageError::Corrupt("WebP header".into()))?;
    if features.has_animation() {
        return Err(ImageError::Unsupported("animated WebP".into()));
    }
    let img = webp::Decoder::new(source)
        .decode()
        .ok_or_else(|| ImageError::Corrupt("WebP data is damaged or truncated".into()))?;
    let channels = if img.is_alpha() { 4 } else { 3 };
    let image = Pixels {
        width: img.width(),
        height: img.height(),
        channels,
        data: img.to_vec(),
    }
    .drop_opaque_alpha();
    let icc = header::webp_chunk(source, b"ICCP").map(<[u8]>::to_vec);
    Ok(Decoded { image, icc })
}

fn decode_gif(source: &[u8], probe: &Probe, max_pixels: u64) -> Result<Decoded, ImageError> {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    opts.set_memory_limit(gif::MemoryLimit::Bytes(
        std::num::NonZeroU64::new(max_pixels.saturating_mul(4).max(1))
            .unwrap_or(std::num::NonZeroU64::MIN),
    ));
    let gif_err = |e: gif::DecodingError| ImageError::Corrupt(format!("GIF: {e}"));
    let mut dec = opts.read_info(Cursor::new(source)).map_err(gif_err)?;
    let frame = dec
        .read_next_frame()
        .map_err(gif_err)?
        .ok_or_else(|| ImageError::Corrupt("GIF has no image".into()))?;
    // Compose the first frame onto the transparent logical screen.
    let (w, h) = (probe.width as usize, probe.height as usize);
    let mut data = vec![0u8; w * h * 4];
    let (fl, ft) = (frame.left as usize, frame.top as usize);
    let (fw, fh) = (frame.width as usize, frame.height as usize);
    if frame.buffer.len() < fw * fh * 4 {
        return Err(ImageError::Corrupt("GIF frame data ends early".into()));
    }
    for y in 0..fh {
        let dy = ft + y;
        if dy >= h {
            break;
        }
        for x in 0..fw {
            let dx = fl + x;
            if dx >= w {
                break;
            }
            let s = (y * fw + x) * 4;
            let d = (dy * w + dx) * 4;
            data[d..d + 4].copy_from_slice(&frame.buffer[s..s + 4]);
        }
    }
    let image = Pixels {
        width: w as u32,
        height: h as u32,
        channels: 4,
        data,
    }
    .drop_opaque_alpha();
    Ok(Decoded { image, icc: None })
}
