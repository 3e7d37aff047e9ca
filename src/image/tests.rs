//! Engine tests. Outputs are decoded with independent decoders (the `image`
//! crate: zune-jpeg, image-webp, png; avif-parse for the AVIF container)
//! and compared with references by PSNR.

use super::engine::*;
use super::geometry::{self, Plan};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/images");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

fn spec(w: Option<u32>, h: Option<u32>, fit: Fit, format: OutputFormat) -> RenderSpec {
    RenderSpec {
        width: w,
        height: h,
        fit,
        format,
        quality: None,
    }
}

/// A photo-like test picture: gradients, a disc, a bar, mild noise.
fn synthetic(w: u32, h: u32, alpha: bool) -> Vec<u8> {
    let n = if alpha { 4 } else { 3 };
    let mut seed = 0x2545_f491u32;
    let mut data = Vec::with_capacity((w * h) as usize * n);
    for y in 0..h {
        for x in 0..w {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let noise = (seed % 9) as i32 - 4;
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let d = ((fx - 0.5).powi(2) + (fy - 0.5).powi(2)).sqrt();
            let mut px = if d < 0.25 {
                [230, 200, 40]
            } else {
                [
                    (255.0 * fx) as i32,
                    (255.0 * fy) as i32,
                    (255.0 * (1.0 - fx)) as i32,
                ]
            };
            if (y * 10 / h) == 2 {
                px = [20, 20, 20];
            }
            for c in px {
                data.push((c + noise).clamp(0, 255) as u8);
            }
            if alpha {
                data.push((255.0 * fx) as u8);
            }
        }
    }
    data
}

fn encode_png(w: u32, h: u32, data: &[u8], alpha: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(if alpha {
        png::ColorType::Rgba
    } else {
        png::ColorType::Rgb
    });
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc.write_header().unwrap();
    wr.write_image_data(data).unwrap();
    wr.finish().unwrap();
    out
}

fn encode_jpeg(w: u32, h: u32, rgb: &[u8], quality: f32) -> Vec<u8> {
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_size(w as usize, h as usize);
    c.set_quality(quality);
    let mut s = c.start_compress(Vec::new()).unwrap();
    s.write_scanlines(rgb).unwrap();
    s.finish().unwrap()
}

/// Decodes with the `image` crate (not the engine's decoders).
fn decode(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).expect("output decodes")
}

fn psnr(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let mse: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10()
}

/// Reference resize: the `image` crate's Lanczos3 on the source as the
/// `image` crate decodes it.
fn reference(source: &[u8], w: u32, h: u32) -> image::DynamicImage {
    decode(source).resize_exact(w, h, image::imageops::FilterType::Lanczos3)
}

// ---- geometry -------------------------------------------------------------

#[test]
fn plan_table() {
    use Fit::*;
    let whole = |w: u32, h: u32, ow, oh| Plan {
        out_w: ow,
        out_h: oh,
        crop_w: w as f64,
        crop_h: h as f64,
    };
    // (source w, h, target w, h, fit) -> plan
    type Case = ((u32, u32, Option<u32>, Option<u32>, Fit), Plan);
    let cases: &[Case] = &[
        (
            (6000, 4000, None, None, Inside),
            whole(6000, 4000, 6000, 4000),
        ),
        (
            (6000, 4000, Some(1280), None, Inside),
            whole(6000, 4000, 1280, 853),
        ),
        (
            (6000, 4000, None, Some(400), Inside),
            whole(6000, 4000, 600, 400),
        ),
        (
            (6000, 4000, Some(640), Some(640), Inside),
            whole(6000, 4000, 640, 427),
        ),
        (
            (4000, 6000, Some(640), Some(640), Inside),
            whole(4000, 6000, 427, 640),
        ),
        // never upscale
        (
            (800, 600, Some(1600), None, Inside),
            whole(800, 600, 800, 600),
        ),
        (
            (800, 600, None, Some(1200), Inside),
            whole(800, 600, 800, 600),
        ),
        (
            (800, 600, Some(2000), Some(2000), Inside),
            whole(800, 600, 800, 600),
        ),
        // one side given: cover behaves as inside
        (
            (800, 600, Some(400), None, Cover),
            whole(800, 600, 400, 300),
        ),
        // tiny results keep at least a pixel
        (
            (10000, 10, Some(100), None, Inside),
            whole(10000, 10, 100, 1),
        ),
    ];
    for &((w, h, tw, th, fit), want) in cases {
        assert_eq!(
            geometry::plan(w, h, tw, th, fit),
            want,
            "{w}x{h} -> {tw:?}x{th:?} {fit:?}"
        );
    }
    // cover: exact box, centred crop of the box's aspect
    let p = geometry::plan(6000, 4000, Some(500), Some(500), Cover);
    assert_eq!(
        (p.out_w, p.out_h, p.crop_w, p.crop_h),
        (500, 500, 4000.0, 4000.0)
    );
    let p = geometry::plan(4000, 6000, Some(800), Some(400), Cover);
    assert_eq!(
        (p.out_w, p.out_h, p.crop_w, p.crop_h),
        (800, 400, 4000.0, 2000.0)
    );
    // cover larger than the source: the box's aspect, at the crop's size
    let p = geometry::plan(800, 600, Some(2000), Some(1000), Cover);
    assert_eq!(
        (p.out_w, p.out_h, p.crop_w, p.crop_h),
        (800, 400, 800.0, 400.0)
    );
    let p = geometry::plan(800, 600, Some(1000), Some(1000), Cover);
    assert_eq!((p.out_w, p.out_h), (600, 600));
}

#[test]
fn render_sizes_table() {
    let (w, h) = (600, 400);
    let src = encode_png(w, h, &synthetic(w, h, false), false);
    use Fit::*;
    let cases = [
        (Some(300), None, Inside, (300, 200)),
        (None, Some(100), Inside, (150, 100)),
        (Some(200), Some(200), Inside, (200, 133)),
        (Some(200), Some(200), Cover, (200, 200)),
        (Some(100), Some(300), Cover, (100, 300)),
        (Some(1200), None, Inside, (600, 400)),
        (Some(1200), Some(1200), Cover, (400, 400)),
        (None, None, Inside, (600, 400)),
    ];
    for (tw, th, fit, want) in cases {
        for format in [OutputFormat::Jpeg, OutputFormat::Png, OutputFormat::Webp] {
            let r = render(&src, &spec(tw, th, fit, format), DEFAULT_MAX_PIXELS).unwrap();
            assert_eq!(
                (r.width, r.height),
                want,
                "{tw:?}x{th:?} {fit:?} {format:?}"
            );
            let img = decode(&r.bytes);
            assert_eq!((img.width(), img.height()), want);
        }
    }
}

// ---- orientation and metadata ---------------------------------------------

/// The quadrant colours of display.png, sampled at quadrant centres.
fn quadrants(img: &image::RgbImage) -> [[u8; 3]; 4] {
    let (w, h) = img.dimensions();
    let at = |x: u32, y: u32| img.get_pixel(x, y).0;
    [
        at(w / 4, h / 4),
        at(3 * w / 4, h / 4),
        at(w / 4, 3 * h / 4),
        at(3 * w / 4, 3 * h / 4),
    ]
}

fn close(a: [u8; 3], b: [u8; 3], tol: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(&x, y)| (x as i32 - y as i32).abs() <= tol)
}

#[test]
fn exif_orientation_applied_before_fit() {
    let display = decode(&fixture("display.png")).to_rgb8();
    let want = quadrants(&display);
    for n in 1..=8u8 {
        let src = fixture(&format!("orient-{n}.jpg"));
        let p = probe(&src).unwrap();
        assert_eq!(p.orientation, n);
        assert_eq!(p.display_size(), (48, 72), "orientation {n}");
        // a box of 24 x 24 fits the portrait: 16 x 24
        let r = render(
            &src,
            &spec(Some(24), Some(24), Fit::Inside, OutputFormat::Png),
            DEFAULT_MAX_PIXELS,
        )
        .unwrap();
        assert_eq!((r.width, r.height), (16, 24), "orientation {n}");
        let full = render(
            &src,
            &spec(None, None, Fit::Inside, OutputFormat::Png),
            DEFAULT_MAX_PIXELS,
        )
        .unwrap();
        let got = quadrants(&decode(&full.bytes).to_rgb8());
        for q in 0..4 {
            assert!(
                close(got[q], want[q], 24),
                "orientation {n} quadrant {q}: {:?} vs {:?}",
                got[q],
                want[q]
            );
        }
    }
}

#[test]
fn metadata_is_dropped() {
    let src = fixture("orient-6.jpg");
    assert!(src.windows(4).any(|w| w == b"Exif"));
    assert!(src.windows(7).any(|w| w == b"TestCam"));
    for format in [
        OutputFormat::Jpeg,
        OutputFormat::Png,
        OutputFormat::Webp,
        OutputFormat::Avif,
    ] {
        let r = render(
            &src,
            &spec(Some(40), None, Fit::Inside, format),
            DEFAULT_MAX_PIXELS,
        )
        .unwrap();
        let b = &r.bytes;
        for needle in [
            &b"Exif"[..],
            b"EXIF",
            b"eXIf",
            b"GPS",
            b"TestCam",
            b"XMP ",
            b"http://ns.adobe.com",
        ] {
            assert!(
                !b.windows(needle.len()).any(|w| w == needle),
                "{format:?} output has {:?}",
                String::from_utf8_lossy(needle)
            );
        }
    }
}

// ---- colour ---------------------------------------------------------------

#[test]
fn cmyk_jpeg_colours() {
    let src = fixture("cmyk.jpg");
    let want = quadrants(&decode(&fixture("display.png")).to_rgb8());
    let r = render(
        &src,
        &spec(None, None, Fit::Inside, OutputFormat::Png),
        DEFAULT_MAX_PIXELS,
    )
    .unwrap();
    let got = quadrants(&decode(&r.bytes).to_rgb8());
    for q in 0..4 {
        assert!(
            close(got[q], want[q], 24),
            "quadrant {q}: {:?} vs {:?}",
            got[q],
            want[q]
        );
    }
}

#[test]
fn sixteen_bit_png() {
    let reference = decode(&fixture("rgb16-ref.png")).to_rgb8();
    let r = render(
        &fixture("rgb16.png"),
        &spec(None, None, Fit::Inside, OutputFormat::Png),
        DEFAULT_MAX_PIXELS,
    )
    .unwrap();
    let out = decode(&r.bytes);
    assert_eq!(out.color(), image::ColorType::Rgb8);
    let p = psnr(&out.to_rgb8(), &reference);
    assert!(p > 45.0, "16-bit PNG to 8-bit: PSNR {p:.1}");

    let r = render(
        &fixture("rgba16.png"),
        &spec(Some(32), None, Fit::Inside, OutputFormat::Png),
        DEFAULT_MAX_PIXELS,
    )
    .unwrap();
    let out = decode(&r.bytes);
    assert_eq!(out.color(), image::ColorType::Rgba8);
    assert_eq!((out.width(), out.height()), (32, 24));
}

// ---- alpha ----------------------------------------------------------------

#[test]
fn alpha_kept_or_flattened() {
    let (w, h) = (320, 200);
    let src = encode_png(w, h, &synthetic(w, h, true), true);
    let p = probe(&src).unwrap();
    assert!(p.has_alpha);
    for format in [OutputFormat::Png, OutputFormat::Webp] {
        let r = render(
            &src,
            &spec(Some(160), None, Fit::Inside, format),
            DEFAULT_MAX_PIXELS,
        )
        .unwrap();
        let img = decode(&r.bytes).to_rgba8();
        assert!(decode(&r.bytes).color().has_alpha(), "{format:?}");
        // alpha runs from 0 at the left to 255 at the right
        let (l, rr) = (img.get_pixel(2, 50).0[3], img.get_pixel(157, 50).0[3]);
        assert!(l < 16 && rr > 235, "{format:?} alpha {l}..{rr}");
    }
    let r = render(
        &src,
        &spec(Some(160), None, Fit::Inside, OutputFormat::Avif),
        DEFAULT_MAX_PIXELS,
    )
    .unwrap();
    let avif = avif_parse::read_avif(&mut r.bytes.as_slice()).expect("AVIF parses");
    assert!(avif.alpha_item.is_some(), "AVIF keeps an alpha plane");
    assert_eq!(&r.bytes[4..12], b"ftypavif");

    // JPEG: flattened on white; the transparent left edge comes out white
    let r = render(
        &src,
        &spec(Some(160), None, Fit::Inside, OutputFormat::Jpeg),
        DEFAULT_MAX_PIXELS,
    )
    .unwrap();
    let img = decode(&r.bytes);
    assert_eq!(img.color(), image::ColorType::Rgb8);
    let px = img.to_rgb8().get_pixel(1, 50).0;
    assert!(px.iter().all(|&c| c > 235), "flattened on white: {px:?}");
}

// ---- similarity to a reference resize --------------------------------------

#[test]
fn outputs_match_reference_resize() {
    let (w, h) = (800, 600);
    let rgb = synthetic(w, h, false);
    let png_src = encode_png(w, h, &rgb, false);
    let reference_png = reference(&png_src, 400, 300).to_rgb8();
    // (format, minimum PSNR in dB against the reference)
    for (format, min) in [
        (OutputFormat::Png, 40.0),
        (OutputFormat::Jpeg, 30.0),
        (OutputFormat::Webp, 30.0),
    ] {
        let r = render(
            &png_src,
            &spec(Some(400), None, Fit::Inside, format),
            DEFAULT_MAX_PIXELS,
        )
        .unwrap();
        assert_eq!(r.content_type, format.content_type());
        let got = decode(&r.bytes).to_rgb8();
        let p = psnr(&got, &reference_png);
        assert!(p >= min, "{format:?}: PSNR {p:.1} < {min}");
    }
    // JPEG source, shrink-on-load (1/4 in the DCT) then Lanczos3
    let (w, h) = (1600, 1200);
    let jpg_src = encode_jpeg(w, h, &synthetic(w, h, false), 92.0);
    let reference_jpg = reference(&jpg_src, 300, 225).to_rgb8();
    let r = render(
        &jpg_src,
        &spec(Some(300), None, Fit::Inside, OutputFormat::Png),
        DEFAULT_MAX_PIXELS,
    )
    .unwrap();
    let p = psnr(&decode(&r.bytes).to_rgb8(), &reference_jpg);
    assert!(p >= 32.0, "shrink-on-load: PSNR {p:.1}");
    // AVIF: the container says the right size
    let r = render(
        &jpg_src,
        &spec(Some(300), None, Fit::Inside, OutputFormat::Avif),
        DEFAULT_MAX_PIXELS,
    )
    .unwrap();
    let avif = avif_parse::read_avif(&mut r.bytes.as_slice()).expect("AVIF parses");
    assert!(avif.alpha_item.is_none());
    assert_eq!(
        (r.width, r.height, r.content_type),
        (300, 225, "image/avif")
    );
}

// ---- hostile sources --------------------------------------------------------

#[test]
fn truncated_sources_are_corrupt() {
    let (w, h) = (200, 150);
    let rgb = synthetic(w, h, false);
    let jpg = encode_jpeg(w, h, &rgb, 90.0);
    let png_src = encode_png(w, h, &rgb, false);
    let to = spec(Some(100), None, Fit::Inside, OutputFormat::Png);
    for (name, src) in [("jpeg", &jpg), ("png", &png_src)] {
        for cut in [src.len() / 2, src.len() * 9 / 10, src.len() - 10, 40, 20] {
            match render(&src[..cut], &to, DEFAULT_MAX_PIXELS) {
                Err(ImageError::Corrupt(_)) => {}
                other => panic!("{name} cut at {cut}: {other:?}"),
            }
        }
    }
    // WebP too (made by the engine)
    let webp = render(
        &png_src,
        &spec(None, None, Fit::Inside, OutputFormat::Webp),
        DEFAULT_MAX_PIXELS,
    )
    .unwrap()
    .bytes;
    for cut in [webp.len() / 2, webp.len() - 20] {
        assert!(matches!(
            render(&webp[..cut], &to, DEFAULT_MAX_PIXELS),
            Err(ImageError::Corrupt(_))
        ));
    }
    // a baseline JPEG (the engine's JPEG output) cut short
    let baseline = render(
        &png_src,
        &spec(None, None, Fit::Inside, OutputFormat::Jpeg),
        DEFAULT_MAX_PIXELS,
    )
    .unwrap()
    .bytes;
    assert!(baseline.windows(2).any(|w| w == [0xFF, 0xC0]));
    for cut in [baseline.len() / 3, baseline.len() - 30] {
        assert!(matches!(
            render(&baseline[..cut], &to, DEFAULT_MAX_PIXELS),
            Err(ImageError::Corrupt(_))
        ));
    }
    // garbage after a valid JPEG header
    let mut bad = jpg.clone();
    let mid = bad.len() / 2;
    bad[mid..mid + 200].fill(0x55);
    assert!(render(&bad, &to, DEFAULT_MAX_PIXELS).is_err());
    // not an image at all
    assert!(matches!(
        render(b"hello", &to, DEFAULT_MAX_PIXELS),
        Err(ImageError::Unsupported(_))
    ));
}

/// A PNG whose header says 40000 x 40000: a few KB on disk, 6.4 GB decoded.
fn png_bomb() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    let chunk = |b: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
        b.extend_from_slice(&(data.len() as u32).to_be_bytes());
        b.extend_from_slice(kind);
        b.extend_from_slice(data);
        b.extend_from_slice(&[0; 4]); // CRC: not reached
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&40000u32.to_be_bytes());
    ihdr.extend_from_slice(&40000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(&mut b, b"IHDR", &ihdr);
    chunk(&mut b, b"IDAT", &[0x78, 0x9c].repeat(1000));
    chunk(&mut b, b"IEND", &[]);
    b
}

#[test]
fn too_many_pixels_from_the_header() {
    let bomb = png_bomb();
    assert!(bomb.len() < 4096);
    let p = probe(&bomb[..64]).unwrap();
    assert_eq!((p.width, p.height, p.format), (40000, 40000, Format::Png));
    let err = p.check_pixels(DEFAULT_MAX_PIXELS).unwrap_err();
    assert_eq!(
        err,
        ImageError::TooManyPixels {
            pixels: 1_600_000_000,
            limit: 50_000_000
        }
    );
    assert!(err.to_string().contains("50000000"));
    // render answers the same, at once (decoding would need 6.4 GB)
    let t = std::time::Instant::now();
    let err = render(
        &bomb,
        &spec(Some(100), None, Fit::Inside, OutputFormat::Webp),
        DEFAULT_MAX_PIXELS,
    )
    .unwrap_err();
    assert!(matches!(err, ImageError::TooManyPixels { .. }));
    assert!(t.elapsed() < std::time::Duration::from_millis(100));
    // a JPEG header saying 60000 x 60000
    let mut jpg = encode_jpeg(16, 16, &[128; 16 * 16 * 3], 80.0);
    let sof = jpg
        .windows(2)
        .position(|w| w == [0xFF, 0xC0] || w == [0xFF, 0xC2])
        .unwrap();
    jpg[sof + 5..sof + 7].copy_from_slice(&60000u16.to_be_bytes());
    jpg[sof + 7..sof + 9].copy_from_slice(&60000u16.to_be_bytes());
    assert!(matches!(
        render(
            &jpg,
            &spec(Some(10), None, Fit::Inside, OutputFormat::Jpeg),
            DEFAULT_MAX_PIXELS
        ),
        Err(ImageError::TooManyPixels { .. })
    ));
}

#[test]
fn probe_formats() {
    let (w, h) = (64, 48);
    let rgb = synthetic(w, h, false);
    let jpg = encode_jpeg(w, h, &rgb, 80.0);
    let p = probe(&jpg).unwrap();
    assert_eq!(
        (p.format, p.width, p.height, p.has_alpha),
        (Format::Jpeg, 64, 48, false)
    );
    let rgba = synthetic(w, h, true);
    let png_src = encode_png(w, h, &rgba, true);
    let p = probe(&png_src).unwrap();
    assert_eq!(
        (p.format, p.width, p.height, p.has_alpha),
        (Format::Png, 64, 48, true)
    );
    for format in [OutputFormat::Webp, OutputFormat::Avif] {
        let out = render(
            &png_src,
            &spec(None, None, Fit::Inside, format),
            DEFAULT_MAX_PIXELS,
        )
        .unwrap();
        let p = probe(&out.bytes).unwrap();
        assert_eq!(
            (p.width, p.height, p.has_alpha),
            (64, 48, true),
            "{format:?}"
        );
    }
    // WebP round trip as a source
    let webp = render(
        &png_src,
        &spec(None, None, Fit::Inside, OutputFormat::Webp),
        DEFAULT_MAX_PIXELS,
    )
    .unwrap();
    let r = render(
        &webp.bytes,
        &spec(Some(32), None, Fit::Inside, OutputFormat::Png),
        DEFAULT_MAX_PIXELS,
    )
    .unwrap();
    assert_eq!((r.width, r.height), (32, 24));
    // AVIF is recognised but not decoded
    let avif = render(
        &png_src,
        &spec(None, None, Fit::Inside, OutputFormat::Avif),
        DEFAULT_MAX_PIXELS,
    )
    .unwrap();
    assert!(matches!(
        render(
            &avif.bytes,
            &spec(None, None, Fit::Inside, OutputFormat::Png),
            DEFAULT_MAX_PIXELS
        ),
        Err(ImageError::Unsupported(_))
    ));
    // a short head is an error, not a panic
    for n in 0..40 {
        let _ = probe(&jpg[..n]);
        let _ = probe(&png_src[..n]);
        let _ = probe(&webp.bytes[..n.min(webp.bytes.len())]);
    }
}

#[test]
fn gif_first_frame() {
    let (w, h) = (40u16, 30u16);
    let mut out = Vec::new();
    {
        let palette = [255u8, 0, 0, 0, 0, 255];
        let mut enc = gif::Encoder::new(&mut out, w, h, &palette).unwrap();
        let mut frame =
            gif::Frame::from_indexed_pixels(w, h, vec![0u8; w as usize * h as usize], None);
        frame.buffer = std::borrow::Cow::Owned(
            (0..w as usize * h as usize)
                .map(|i| u8::from(i % 40 >= 20))
                .collect(),
        );
        enc.write_frame(&frame).unwrap();
    }
    let r = render(
        &out,
        &spec(Some(20), None, Fit::Inside, OutputFormat::Png),
        DEFAULT_MAX_PIXELS,
    )
    .unwrap();
    assert_eq!((r.width, r.height), (20, 15));
    let img = decode(&r.bytes).to_rgb8();
    assert!(close(img.get_pixel(2, 7).0, [255, 0, 0], 10));
    assert!(close(img.get_pixel(17, 7).0, [0, 0, 255], 10));
    assert!(matches!(
        render(
            &out[..out.len() / 2],
            &spec(None, None, Fit::Inside, OutputFormat::Png),
            DEFAULT_MAX_PIXELS
        ),
        Err(ImageError::Corrupt(_))
    ));
}
