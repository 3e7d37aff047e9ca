//! Encoders. None of them writes metadata: no EXIF, XMP or ICC.

use mozjpeg::{ColorSpace, Compress};
use rgb::FromSlice;

use super::engine::{
    ImageError, OutputFormat, DEFAULT_AVIF_QUALITY, DEFAULT_JPEG_QUALITY, DEFAULT_WEBP_QUALITY,
};
use crate::pixels::Pixels;

/// libwebp's effort (0-6); sharp's default.
const WEBP_METHOD: i32 = 4;
/// rav1e speed (1-10). Speed 10 encodes a 640 px photo in about half the
/// time of speed 9 and a quarter of speed 8, for ~20% more bytes at the same
/// quality; AVIF encoding is the slow path, so latency wins. 8-bit: 10-bit
/// costs time and gains nothing from 8-bit sources.
pub const AVIF_SPEED: u8 = 10;

pub fn encode(
    img: &Pixels,
    format: OutputFormat,
    quality: Option<u8>,
) -> Result<Vec<u8>, ImageError> {
    match format {
        OutputFormat::Jpeg => jpeg(img, quality.unwrap_or(DEFAULT_JPEG_QUALITY)),
        OutputFormat::Webp => webp(img, quality.unwrap_or(DEFAULT_WEBP_QUALITY)),
        OutputFormat::Avif => avif(img, quality.unwrap_or(DEFAULT_AVIF_QUALITY)),
        OutputFormat::Png => png(img),
    }
}

fn encode_err(what: &str, e: impl std::fmt::Display) -> ImageError {
    ImageError::Unsupported(format!("{what} encoding: {e}"))
}

/// Alpha composited over white.
fn flatten(img: &Pixels) -> Vec<u8> {
    img.data
        .chunks_exact(4)
        .flat_map(|p| {
            let a = p[3] as u32;
            let f = |c: u8| ((c as u32 * a + 255 * (255 - a) + 127) / 255) as u8;
            [f(p[0]), f(p[1]), f(p[2])]
        })
        .collect()
}

fn jpeg(img: &Pixels, quality: u8) -> Result<Vec<u8>, ImageError> {
    let flat;
    let rgb: &[u8] = if img.channels == 4 {
        flat = flatten(img);
        &flat
    } else {
        &img.data
    };
    if img.width > 65_500 || img.height > 65_500 {
        return Err(ImageError::Unsupported(
            "JPEG is at most 65500 px a side".into(),
        ));
    }
    let mut c = Compress::new(ColorSpace::JCS_RGB);
    // libjpeg-turbo's defaults (baseline, no trellis), with optimised
    // Huffman tables: the size of mozjpeg's output at a fraction of its time.
    c.set_fastest_defaults();
    c.set_optimize_coding(true);
    c.set_size(img.width as usize, img.height as usize);
    c.set_quality(quality as f32);
    let mut started = c
        .start_compress(Vec::with_capacity(rgb.len() / 8))
        .map_err(|e| encode_err("JPEG", e))?;
    started
        .write_scanlines(rgb)
        .map_err(|e| encode_err("JPEG", e))?;
    started.finish().map_err(|e| encode_err("JPEG", e))
}

fn webp(img: &Pixels, quality: u8) -> Result<Vec<u8>, ImageError> {
    if img.width > 16_383 || img.height > 16_383 {
        return Err(ImageError::Unsupported(
            "WebP is at most 16383 px a side".into(),
        ));
    }
    let enc = if img.channels == 4 {
        webp::Encoder::from_rgba(&img.data, img.width, img.height)
    } else {
        webp::Encoder::from_rgb(&img.data, img.width, img.height)
    };
    let mut config = webp::WebPConfig::new().map_err(|()| encode_err("WebP", "configuration"))?;
    config.quality = quality as f32;
    config.method = WEBP_METHOD;
    let out = enc
        .encode_advanced(&config)
        .map_err(|e| encode_err("WebP", format!("{e:?}")))?;
    Ok(out.to_vec())
}

fn avif(img: &Pixels, quality: u8) -> Result<Vec<u8>, ImageError> {
    let enc = ravif::Encoder::new()
        .with_quality(quality as f32)
        .with_alpha_quality(quality as f32)
        .with_speed(AVIF_SPEED)
        .with_num_threads(Some(1))
        .with_bit_depth(ravif::BitDepth::Eight)
        .with_alpha_color_mode(ravif::AlphaColorMode::UnassociatedClean);
    let (w, h) = (img.width as usize, img.height as usize);
    let out = if img.channels == 4 {
        let px: &[ravif::RGBA8] = img.data.as_rgba();
        enc.encode_rgba(ravif::Img::new(px, w, h))
    } else {
        let px: &[ravif::RGB8] = img.data.as_rgb();
        enc.encode_rgb(ravif::Img::new(px, w, h))
    };
    Ok(out.map_err(|e| encode_err("AVIF", e))?.avif_file)
}

fn png(img: &Pixels) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, img.width, img.height);
    enc.set_color(if img.channels == 4 {
        png::ColorType::Rgba
    } else {
        png::ColorType::Rgb
    });
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut w = enc.write_header().map_err(|e| encode_err("PNG", e))?;
    w.write_image_data(&img.data)
        .map_err(|e| encode_err("PNG", e))?;
    w.finish().map_err(|e| encode_err("PNG", e))?;
    Ok(out)
}
