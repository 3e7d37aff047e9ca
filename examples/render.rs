//! Renders one derivative with the image engine, for bench/images.sh.
//!
//!   render SRC OUT FORMAT WIDTH [QUALITY]      FORMAT: jpeg png webp avif
//!   render --make-inputs DIR                   writes the benchmark sources
//!
//! Prints one JSON line: render wall and CPU time (the engine call alone,
//! file reading and writing excluded), output size and dimensions.

use std::time::Instant;

use media_streamer::image::{render, Fit, OutputFormat, RenderSpec, DEFAULT_MAX_PIXELS};

fn cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--make-inputs") {
        let dir = std::path::Path::new(args.get(1).expect("--make-inputs DIR"));
        make_inputs(dir);
        return;
    }
    let [src, out, format, width, rest @ ..] = args.as_slice() else {
        eprintln!("usage: render SRC OUT jpeg|png|webp|avif WIDTH [QUALITY]");
        std::process::exit(2);
    };
    let format = match format.as_str() {
        "jpeg" | "jpg" => OutputFormat::Jpeg,
        "png" => OutputFormat::Png,
        "webp" => OutputFormat::Webp,
        "avif" => OutputFormat::Avif,
        other => panic!("unknown format {other}"),
    };
    let spec = RenderSpec {
        width: Some(width.parse().expect("WIDTH")),
        height: None,
        fit: Fit::Inside,
        format,
        quality: rest.first().map(|q| q.parse().expect("QUALITY")),
    };
    let source = std::fs::read(src).expect("read SRC");
    let (c0, t0) = (cpu_ms(), Instant::now());
    let rendered = render(&source, &spec, DEFAULT_MAX_PIXELS);
    let (wall, cpu) = (t0.elapsed().as_secs_f64() * 1e3, cpu_ms() - c0);
    match rendered {
        Ok(r) => {
            std::fs::write(out, &r.bytes).expect("write OUT");
            println!(
                "{{\"render_ms\":{wall:.1},\"render_cpu_ms\":{cpu:.1},\"width\":{},\"height\":{},\"size\":{}}}",
                r.width,
                r.height,
                r.bytes.len()
            );
        }
        Err(e) => {
            eprintln!("render: {e}");
            std::process::exit(1);
        }
    }
}

/// A photo-like 6000x4000 JPEG (smooth fields, texture, edges, sensor-like
/// noise; baseline 4:2:0 at quality 90, as cameras write) and a 2400x1600
/// RGBA PNG with a gradient alpha. Flat pictures would flatter encoders.
fn make_inputs(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("create DIR");
    let (w, h) = (6000usize, 4000usize);
    let rgb = picture(w, h, 3, 0x9e37_79b9);
    let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
    c.set_fastest_defaults();
    c.set_size(w, h);
    c.set_quality(90.0);
    let mut s = c.start_compress(Vec::new()).expect("jpeg");
    s.write_scanlines(&rgb).expect("jpeg");
    std::fs::write(dir.join("photo-24mp.jpg"), s.finish().expect("jpeg")).expect("write");

    let (w, h) = (2400usize, 1600usize);
    let rgba = picture(w, h, 4, 0x7f4a_7c15);
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w as u32, h as u32);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc.write_header().expect("png");
    wr.write_image_data(&rgba).expect("png");
    wr.finish().expect("png");
    std::fs::write(dir.join("rgba-4mp.png"), out).expect("write");
}

fn picture(w: usize, h: usize, channels: usize, mut seed: u32) -> Vec<u8> {
    let mut data = Vec::with_capacity(w * h * channels);
    for y in 0..h {
        for x in 0..w {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let noise = ((seed & 0xff) as f32 - 127.5) / 10.0;
            let texture =
                18.0 * ((fx * 173.0).sin() * (fy * 131.0).cos() + (fx * 37.0 + fy * 53.0).sin());
            let d = ((fx - 0.55).powi(2) + (fy - 0.45).powi(2)).sqrt();
            let mut px = if d < 0.22 {
                [225.0, 190.0, 50.0]
            } else {
                [
                    60.0 + 160.0 * fx + 20.0 * (fy * 9.0).sin(),
                    40.0 + 120.0 * (1.0 - fy) + 25.0 * (fx * 7.0).cos(),
                    90.0 + 130.0 * fy * (1.0 - fx),
                ]
            };
            if (x / 400 + y / 400) % 7 == 0 && (x % 400 < 8 || y % 400 < 8) {
                px = [15.0, 15.0, 15.0];
            }
            for c in px {
                data.push((c + texture + noise).clamp(0.0, 255.0) as u8);
            }
            if channels == 4 {
                data.push((255.0 * (0.15 + 0.85 * fx)) as u8);
            }
        }
    }
    data
}
