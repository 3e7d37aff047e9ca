//! Output size planning (fit, never upscale), resampling and EXIF orientation.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::engine::{Fit, ImageError};
use crate::pixels::Pixels;

/// Orientations 5-8 turn the image a quarter: width and height swap.
pub fn swaps_axes(orientation: u8) -> bool {
    (5..=8).contains(&orientation)
}

/// The output size and the centred source region it comes from, both in
/// display orientation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub out_w: u32,
    pub out_h: u32,
    pub crop_w: f64,
    pub crop_h: f64,
}

fn scaled(n: u32, num: u32, den: u32) -> u32 {
    ((n as u64 * num as u64 + den as u64 / 2) / den as u64).max(1) as u32
}

/// Plans a render of a `w` x `h` (display) source. Never upscales:
/// - no width or height: the source size;
/// - one of them: that one (at most the source's), the other keeps the aspect;
/// - both, `Inside`: the largest size within the box keeping the aspect,
///   at most the source size;
/// - both, `Cover`: exactly the box, from the centred source region of the
///   box's aspect; a box larger than that region is scaled down, keeping its
///   aspect, to the region's size (so the aspect asked for is kept).
pub fn plan(w: u32, h: u32, tw: Option<u32>, th: Option<u32>, fit: Fit) -> Plan {
    let whole = |out_w, out_h| Plan {
        out_w,
        out_h,
        crop_w: w as f64,
        crop_h: h as f64,
    };
    match (tw, th) {
        (None, None) => whole(w, h),
        (Some(tw), None) => {
            let tw = tw.min(w);
            whole(tw, scaled(h, tw, w))
        }
        (None, Some(th)) => {
            let th = th.min(h);
            whole(scaled(w, th, h), th)
        }
        (Some(tw), Some(th)) => match fit {
            Fit::Inside => {
                // compare tw/w with th/h without floats
                if tw as u64 * h as u64 <= th as u64 * w as u64 {
                    let tw = tw.min(w);
                    whole(tw, scaled(h, tw, w))
                } else {
                    let th = th.min(h);
                    whole(scaled(w, th, h), th)
                }
            }
            Fit::Cover => {
                // the centred region of the box's aspect
                let (crop_w, crop_h) = if w as u64 * th as u64 > h as u64 * tw as u64 {
                    (h as f64 * tw as f64 / th as f64, h as f64)
                } else {
                    (w as f64, w as f64 * th as f64 / tw as f64)
                };
                let (out_w, out_h) = if tw as f64 > crop_w || th as f64 > crop_h {
                    let k = (crop_w / tw as f64).min(crop_h / th as f64);
                    (
                        ((tw as f64 * k).round() as u32).clamp(1, w),
                        ((th as f64 * k).round() as u32).clamp(1, h),
                    )
                } else {
                    (tw, th)
                };
                Plan {
                    out_w,
                    out_h,
                    crop_w,
                    crop_h,
                }
            }
        },
    }
}

/// Resamples the region `crop` (left, top, width, height in source pixels)
/// to `out_w` x `out_h` with Lanczos3; alpha is premultiplied while
/// resampling. Returns the image itself when nothing changes.
pub fn resize(
    src: Pixels,
    crop: (f64, f64, f64, f64),
    out_w: u32,
    out_h: u32,
) -> Result<Pixels, ImageError> {
    let (left, top, cw, ch) = crop;
    let whole = left.abs() < 1e-6
        && top.abs() < 1e-6
        && (cw - src.width as f64).abs() < 1e-6
        && (ch - src.height as f64).abs() < 1e-6;
    if whole && out_w == src.width && out_h == src.height {
        return Ok(src);
    }
    let pixel_type = if src.channels == 4 {
        PixelType::U8x4
    } else {
        PixelType::U8x3
    };
    let internal = |e: &dyn std::fmt::Display| ImageError::Corrupt(format!("resize: {e}"));
    let src_ref =
        ImageRef::new(src.width, src.height, &src.data, pixel_type).map_err(|e| internal(&e))?;
    let mut dst = Image::new(out_w, out_h, pixel_type);
    let mut options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .use_alpha(src.channels == 4);
    if !whole {
        options = options.crop(left.max(0.0), top.max(0.0), cw, ch);
    }
    Resizer::new()
        .resize(&src_ref, &mut dst, &options)
        .map_err(|e| internal(&e))?;
    Ok(Pixels {
        width: out_w,
        height: out_h,
        channels: src.channels,
        data: dst.into_vec(),
    })
}

/// Turns stored pixels upright according to the EXIF orientation (1-8).
pub fn orient(src: Pixels, orientation: u8) -> Pixels {
    if !(2..=8).contains(&orientation) {
        return src;
    }
    let (w, h) = (src.width as usize, src.height as usize);
    let n = src.channels as usize;
    let (ow, oh) = if swaps_axes(orientation) {
        (h, w)
    } else {
        (w, h)
    };
    let mut out = vec![0u8; src.data.len()];
    for y in 0..oh {
        for x in 0..ow {
            // the stored pixel shown at (x, y)
            let (sx, sy) = match orientation {
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (y, h - 1 - x),
                7 => (w - 1 - y, h - 1 - x),
                _ => (w - 1 - y, x), // 8
            };
            let s = (sy * w + sx) * n;
            let d = (y * ow + x) * n;
            out[d..d + n].copy_from_slice(&src.data[s..s + n]);
        }
    }
    Pixels {
        width: ow as u32,
        height: oh as u32,
        channels: src.channels,
        data: out,
    }
}
