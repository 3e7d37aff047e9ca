//! Colour: embedded ICC profiles converted to sRGB (moxcms, pure Rust), and
//! CMYK to sRGB. Output carries no profile, so it must be sRGB.

use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};

use crate::pixels::Pixels;

/// Converts RGB(A) pixels from the profile `icc` to sRGB. A profile that
/// does not parse, is not RGB, or is sRGB already leaves the pixels as they
/// are (as browsers do with a broken profile).
pub fn to_srgb(mut img: Pixels, icc: &[u8]) -> Pixels {
    let Ok(profile) = ColorProfile::new_from_slice(icc) else {
        return img;
    };
    if profile.color_space != DataColorSpace::Rgb || is_srgb(&profile) {
        return img;
    }
    let layout = if img.channels == 4 {
        Layout::Rgba
    } else {
        Layout::Rgb
    };
    let srgb = ColorProfile::new_srgb();
    let Ok(t) = profile.create_transform_8bit(layout, &srgb, layout, TransformOptions::default())
    else {
        return img;
    };
    let mut out = vec![0u8; img.data.len()];
    if t.transform(&img.data, &mut out).is_ok() {
        img.data = out;
    }
    img
}

/// A matrix-shaper profile with sRGB's primaries (to 3 decimals) is taken
/// for sRGB: common sRGB profiles differ only in rounding.
fn is_srgb(p: &ColorProfile) -> bool {
    let s = ColorProfile::new_srgb();
    let close = |a: f64, b: f64| (a - b).abs() < 2e-3;
    let same =
        |a: moxcms::Xyzd, b: moxcms::Xyzd| close(a.x, b.x) && close(a.y, b.y) && close(a.z, b.z);
    p.is_matrix_shaper()
        && same(p.red_colorant, s.red_colorant)
        && same(p.green_colorant, s.green_colorant)
        && same(p.blue_colorant, s.blue_colorant)
        && p.red_trc == s.red_trc
        && p.green_trc == s.green_trc
        && p.blue_trc == s.blue_trc
}

/// CMYK (as libjpeg returns it) to sRGB. Adobe's JPEGs (APP14 marker)
/// store CMYK inverted (0 = full ink). With a CMYK ICC profile the
/// conversion goes through it; without one, the naive formula
/// R = (1-C)(1-K) is what browsers do too.
pub fn cmyk_to_srgb(
    data: &[u8],
    width: u32,
    height: u32,
    adobe: bool,
    icc: Option<&[u8]>,
) -> Pixels {
    // ink amounts, 255 = full ink
    let inks: Vec<u8> = if adobe {
        data.iter().map(|v| 255 - v).collect()
    } else {
        data.to_vec()
    };
    if let Some(profile) = icc
        .and_then(|b| ColorProfile::new_from_slice(b).ok())
        .filter(|p| p.color_space == DataColorSpace::Cmyk)
    {
        let srgb = ColorProfile::new_srgb();
        if let Ok(t) = profile.create_transform_8bit(
            Layout::Rgba,
            &srgb,
            Layout::Rgb,
            TransformOptions::default(),
        ) {
            let mut out = vec![0u8; width as usize * height as usize * 3];
            if t.transform(&inks, &mut out).is_ok() {
                return Pixels {
                    width,
                    height,
                    channels: 3,
                    data: out,
                };
            }
        }
    }
    let data = inks
        .chunks_exact(4)
        .flat_map(|p| {
            let k = 255 - p[3] as u32;
            let f = |c: u8| (((255 - c as u32) * k + 127) / 255) as u8;
            [f(p[0]), f(p[1]), f(p[2])]
        })
        .collect();
    Pixels {
        width,
        height,
        channels: 3,
        data,
    }
}
