//! Video tests. Inputs are made by ffmpeg (libx264) and the pictures
//! compared with ffmpeg's own decoding of the same file, so ffmpeg must be
//! installed (`apt-get install -y ffmpeg`); without it these tests fail.
//! A small test-only MP4 reader takes the `avcC` box and the samples out of
//! the file, as the MP4 layer does for the server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bytes::Bytes;

use super::decode::{decode_frame, VideoError};
use crate::image::engine::{render_pixels, Fit, OutputFormat, RenderSpec, DEFAULT_MAX_PIXELS};
use crate::pixels::Pixels;

/// Largest mean absolute difference per channel (0-255) from ffmpeg's
/// picture: the two convert YUV to RGB with different rounding and chroma
/// upsampling (OpenH264's crate repeats each chroma sample, swscale
/// interpolates).
const MAX_CHANNEL_MAD: f64 = 2.0;

/// Runs a program of the ffmpeg package and returns its standard output.
fn run(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("{program} is needed by the video tests: install it (apt-get install -y ffmpeg): {e}")
    });
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Encodes ffmpeg's testsrc2 pattern with libx264 and the given options.
fn encode(dir: &Path, name: &str, size: &str, seconds: u32, x264: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let source = format!("testsrc2=duration={seconds}:size={size}:rate=25");
    let mut args = vec!["-y", "-v", "error", "-f", "lavfi", "-i", &source];
    args.extend(["-c:v", "libx264"]);
    args.extend(x264);
    args.push(path.to_str().unwrap());
    run("ffmpeg", &args);
    path
}

fn high_profile(dir: &Path) -> PathBuf {
    // b-adapt=0: always 3 B-frames (I BBB P BBB P ...); scenecut=0: an
    // IDR exactly every 50 frames
    let x264 = "b-adapt=0:scenecut=0";
    let args = [
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "50",
        "-bf",
        "3",
        "-x264-params",
        x264,
    ];
    encode(dir, "high.mp4", "320x180", 4, &args)
}

fn baseline_profile(dir: &Path) -> PathBuf {
    let args = ["-profile:v", "baseline", "-g", "50", "-pix_fmt", "yuv420p"];
    encode(dir, "baseline.mp4", "320x180", 4, &args)
}

/// Every picture of the file as ffmpeg decodes it, RGB, in presentation
/// order (what `-vf select=eq(n\,K)` picks one of).
fn reference_frames(path: &Path) -> Vec<u8> {
    let args = [
        "-v",
        "error",
        "-i",
        path.to_str().unwrap(),
        "-fps_mode",
        "passthrough",
    ];
    let mut args = args.to_vec();
    args.extend(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]);
    run("ffmpeg", &args)
}

/// Picture types in presentation order, one letter each (I, P, B).
fn picture_types(path: &Path) -> Vec<char> {
    let args = ["-v", "error", "-select_streams", "v", "-show_entries"];
    let mut args = args.to_vec();
    args.extend(["frame=pict_type", "-of", "csv=p=0", path.to_str().unwrap()]);
    String::from_utf8(run("ffprobe", &args))
        .unwrap()
        .chars()
        .filter(|c| matches!(c, 'I' | 'P' | 'B'))
        .collect()
}

/// The video track of a one-track MP4: `avcC`, samples in decode order,
/// and the sync samples (0-based).
struct Track {
    avc_config: Vec<u8>,
    samples: Vec<Bytes>,
    sync: Vec<usize>,
}

/// The body of the first box of that type among `boxes`.
fn find_box<'a>(mut boxes: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    while boxes.len() >= 8 {
        let size = u32::from_be_bytes(boxes[..4].try_into().unwrap()) as usize;
        if &boxes[4..8] == kind {
            return Some(&boxes[8..size]);
        }
        boxes = &boxes[size..];
    }
    None
}

fn find_path<'a>(boxes: &'a [u8], path: &[&[u8; 4]]) -> &'a [u8] {
    path.iter().fold(boxes, |b, kind| {
        find_box(b, kind).unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(*kind)))
    })
}

/// The u32 entries of a full box with a count (stco, stss, stsz's sizes),
/// after `skip` bytes of version, flags and other fields.
fn u32s(body: &[u8], skip: usize, fields: usize) -> Vec<u32> {
    let count = u32::from_be_bytes(body[skip..skip + 4].try_into().unwrap()) as usize;
    body[skip + 4..][..count * fields * 4]
        .chunks(4)
        .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
        .collect()
}

fn read_track(path: &Path) -> Track {
    let file = std::fs::read(path).unwrap();
    let stbl = find_path(&file, &[b"moov", b"trak", b"mdia", b"minf", b"stbl"]);
    // stsd: full box, count; avc1: 78 bytes of visual sample entry, then avcC
    let avc1 = find_box(&find_box(stbl, b"stsd").unwrap()[8..], b"avc1").unwrap();
    let avc_config = find_box(&avc1[78..], b"avcC").unwrap().to_vec();
    let stsz = find_box(stbl, b"stsz").unwrap();
    let sizes = match u32::from_be_bytes(stsz[4..8].try_into().unwrap()) {
        0 => u32s(stsz, 8, 1),
        // one size for every sample
        size => vec![size; u32::from_be_bytes(stsz[8..12].try_into().unwrap()) as usize],
    };
    let offsets = u32s(find_box(stbl, b"stco").unwrap(), 4, 1);
    let runs = u32s(find_box(stbl, b"stsc").unwrap(), 4, 3);
    // no stss: every sample is a sync sample
    let sync = find_box(stbl, b"stss").map_or_else(
        || (1..=sizes.len() as u32).collect(),
        |stss| u32s(stss, 4, 1),
    );
    let mut samples = Vec::new();
    for (chunk, &offset) in offsets.iter().enumerate() {
        // samples per chunk: from the last stsc run starting at or before it
        let per_chunk = runs
            .chunks(3)
            .rfind(|run| run[0] as usize <= chunk + 1)
            .unwrap()[1];
        let mut at = offset as usize;
        for _ in 0..per_chunk {
            let size = sizes[samples.len()] as usize;
            samples.push(Bytes::copy_from_slice(&file[at..at + size]));
            at += size;
        }
    }
    assert_eq!(samples.len(), sizes.len());
    let sync = sync.iter().map(|&n| n as usize - 1).collect();
    Track {
        avc_config,
        samples,
        sync,
    }
}

/// Mean absolute difference of each of the three channels.
fn channel_mad(a: &[u8], b: &[u8]) -> [f64; 3] {
    assert_eq!(a.len(), b.len());
    let mut sums = [0u64; 3];
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        sums[i % 3] += x.abs_diff(*y) as u64;
    }
    let n = (a.len() / 3) as f64;
    sums.map(|s| s as f64 / n)
}

fn worst_mad(a: &[u8], b: &[u8]) -> f64 {
    channel_mad(a, b).into_iter().fold(0.0, f64::max)
}

/// Decodes presentation picture `k` from the run that starts at the sync
/// sample `from` and ends before the next one (or at the end of the file,
/// `whole`), and compares it with ffmpeg's picture `k`: within
/// [`MAX_CHANNEL_MAD`] of it, and over twice that from its neighbours
/// (about 6.5 to 10 on this pattern), so a picture one off would fail.
#[test]
fn pictures_match_ffmpeg_in_presentation_order() {
    let dir = tempfile::tempdir().unwrap();
    let high = high_profile(dir.path());
    let baseline = baseline_profile(dir.path());
    // (file, picture k, its type, run from the sync sample, run to the end)
    let cases: [(&Path, usize, char, usize, bool); 13] = [
        (&high, 0, 'I', 0, false),
        (&high, 1, 'B', 0, false),
        (&high, 2, 'B', 0, false),
        (&high, 3, 'B', 0, false),
        (&high, 4, 'P', 0, false),
        (&high, 45, 'B', 0, false),
        (&high, 49, 'P', 0, false),
        (&high, 50, 'I', 50, false),
        (&high, 63, 'B', 50, false),
        (&high, 75, 'B', 0, true),
        (&baseline, 0, 'I', 0, false),
        (&baseline, 7, 'P', 0, false),
        (&baseline, 99, 'P', 50, false),
    ];
    let (w, h) = (320, 180);
    let frame_len = w * h * 3;
    for (path, k, kind, from, whole) in cases {
        let track = read_track(path);
        let reference = reference_frames(path);
        assert_eq!(picture_types(path)[k], kind, "{path:?} picture {k}");
        assert!(track.sync.contains(&from), "{path:?} sync samples");
        let to = match track.sync.iter().find(|&&s| s > from) {
            Some(&next) if !whole => next,
            _ => track.samples.len(),
        };
        let samples = &track.samples[from..to];
        // closed GOPs: the sync sample is presentation picture `from`
        let picture = decode_frame(&track.avc_config, samples, k - from, 320 * 180).unwrap();
        assert_eq!(
            (picture.width, picture.height, picture.channels),
            (320, 180, 3)
        );
        let ffmpeg = |n: usize| &reference[n * frame_len..(n + 1) * frame_len];
        let mad = worst_mad(&picture.data, ffmpeg(k));
        assert!(mad <= MAX_CHANNEL_MAD, "{path:?} picture {k}: MAD {mad:.3}");
        for n in [k.wrapping_sub(1), k + 1] {
            if n < reference.len() / frame_len {
                let other = worst_mad(&picture.data, ffmpeg(n));
                eprintln!("{path:?} picture {k}: MAD {mad:.3}, to picture {n} {other:.3}");
                assert!(
                    other > 2.0 * MAX_CHANNEL_MAD,
                    "{path:?} picture {k} is as close to {n}: {other:.3}"
                );
            }
        }
    }
}

/// Bad input is a clean error: never a panic, a hang or a picture.
#[test]
fn hostile_input_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let track = read_track(&baseline_profile(dir.path()));
    let (config, gop) = (&track.avc_config, &track.samples[..50]);
    let corrupt = |s: &str| Err(VideoError::Corrupt(s.to_string()));

    // the avcC box, with the first GOP
    let edited = |at: usize, byte: u8| {
        let mut c = config.clone();
        c[at] = byte;
        c
    };
    let mut no_sps = config[..5].to_vec();
    no_sps.push(0xe0);
    let cases: [(&str, Vec<u8>, Result<(), VideoError>); 8] = [
        ("empty", vec![], corrupt("avcC: empty")),
        (
            "cut in its header",
            config[..4].to_vec(),
            corrupt("avcC: cut short"),
        ),
        (
            "cut in the SPS",
            config[..12].to_vec(),
            corrupt("avcC: SPS cut short"),
        ),
        (
            "cut in the PPS",
            config[..config.len() - 1].to_vec(),
            corrupt("avcC: PPS cut short"),
        ),
        (
            "version 2",
            edited(0, 2),
            Err(VideoError::Unsupported("avcC version 2".into())),
        ),
        (
            "3-byte NAL lengths",
            edited(4, 0xfe),
            corrupt("avcC: NAL length size 3"),
        ),
        ("no SPS", no_sps, corrupt("avcC: no SPS")),
        (
            "a PPS as SPS",
            edited(8, 0x68),
            corrupt("avcC: SPS of NAL type 8"),
        ),
    ];
    for (name, config, expected) in cases {
        let got = decode_frame(&config, gop, 0, u64::MAX).map(|_| ());
        assert_eq!(got, expected, "avcC {name}");
    }

    // the samples, with the right avcC
    let first = track.samples[0].to_vec();
    let first_nal = u32::from_be_bytes(first[..4].try_into().unwrap()) as usize;
    let with_first = |bytes: Vec<u8>| {
        let mut run = gop.to_vec();
        run[0] = Bytes::from(bytes);
        run
    };
    let mut over_long = first.clone();
    over_long[..4].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    let over_long_error = format!(
        "sample 0: NAL unit of 2147483647 bytes, {} left in the sample",
        first.len() - 4
    );
    let mut zero_length = vec![0, 0, 0, 0];
    zero_length.extend_from_slice(&first);
    // the first NAL unit one byte short
    let cut = first[..4 + first_nal - 1].to_vec();
    let cut_error = format!(
        "sample 0: NAL unit of {first_nal} bytes, {} left in the sample",
        first_nal - 1
    );
    // an IDR slice header followed by noise
    let mut garbage = vec![0, 0, 0x10, 0, 0x65];
    garbage.extend((0..4095u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let in_first = |s: &str| corrupt(&format!("sample 0: {s}"));
    let cases: [(&str, Vec<Bytes>, Result<(), VideoError>); 9] = [
        ("no samples", vec![], corrupt("no samples")),
        ("empty sample", with_first(vec![]), in_first("empty sample")),
        (
            "zero-length NAL",
            with_first(zero_length),
            in_first("zero-length NAL unit"),
        ),
        (
            "over-long NAL length",
            with_first(over_long),
            corrupt(&over_long_error),
        ),
        (
            "NAL length cut short",
            with_first(vec![0, 0]),
            in_first("2 bytes left, a NAL length cut short"),
        ),
        ("NAL unit cut short", with_first(cut), corrupt(&cut_error)),
        (
            "garbage slice",
            with_first(garbage),
            in_first("bitstream error"),
        ),
        (
            "no sync sample",
            gop[1..].to_vec(),
            in_first("reference lost, no parameter sets"),
        ),
        ("the first GOP", gop.to_vec(), Ok(())),
    ];
    for (name, samples, expected) in cases {
        let got = decode_frame(config, &samples, 0, u64::MAX).map(|_| ());
        assert_eq!(got, expected, "{name}");
    }

    // the first GOP, asking too much
    let past = decode_frame(config, gop, 50, u64::MAX).map(|_| ());
    assert_eq!(
        past,
        corrupt("50 samples gave 50 pictures, picture 50 asked")
    );
    let limit = 320 * 180 - 1;
    let too_many = decode_frame(config, gop, 0, limit).map(|_| ());
    let pixels = 320 * 180;
    assert_eq!(too_many, Err(VideoError::TooManyPixels { pixels, limit }));
}

/// Streams OpenH264 does not decode are refused from their SPS, before
/// any decoding.
#[test]
fn unsupported_streams_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let unsupported = |s: &str| Err(VideoError::Unsupported(s.to_string()));
    // one picture each: (file, size, options, error)
    let cases = [
        (
            "10bit.mp4",
            "320x180",
            vec!["-pix_fmt", "yuv420p10le"],
            unsupported("10-bit luma, 10-bit chroma (8-bit only)"),
        ),
        (
            "422.mp4",
            "320x180",
            vec!["-pix_fmt", "yuv422p"],
            unsupported("chroma format 2 (4:2:0 only)"),
        ),
        (
            "444.mp4",
            "320x180",
            vec!["-pix_fmt", "yuv444p"],
            unsupported("chroma format 3 (4:2:0 only)"),
        ),
        (
            "interlaced.mp4",
            "320x180",
            vec!["-pix_fmt", "yuv420p", "-flags", "+ildct+ilme"],
            unsupported("interlaced video"),
        ),
        (
            "4112x2304.mp4",
            "4112x2304",
            vec!["-pix_fmt", "yuv420p"],
            unsupported("4112x2304 is over H.264 level 5.2"),
        ),
    ];
    for (name, size, mut args, expected) in cases {
        args.extend(["-frames:v", "1"]);
        let path = encode(dir.path(), name, size, 1, &args);
        let track = read_track(&path);
        let got = decode_frame(&track.avc_config, &track.samples, 0, u64::MAX).map(|_| ());
        assert_eq!(got, expected, "{name}");
    }
}

/// A 1080p GOP of 50 High profile pictures (B-frames): the last picture in
/// presentation order matches ffmpeg's, cropped from 1088 coded lines to
/// 1080. Prints the time one decode run takes (`cargo test --release` for
/// a figure worth quoting).
#[test]
fn decodes_a_1080p_gop() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "-profile:v",
        "high",
        "-g",
        "50",
        "-bf",
        "3",
        "-pix_fmt",
        "yuv420p",
    ];
    let path = encode(dir.path(), "1080p.mp4", "1920x1080", 2, &args);
    let track = read_track(&path);
    assert_eq!((track.samples.len(), track.sync.as_slice()), (50, &[0][..]));
    let started = Instant::now();
    let picture = decode_frame(&track.avc_config, &track.samples, 49, DEFAULT_MAX_PIXELS).unwrap();
    eprintln!("1080p: 50 pictures decoded in {:?}", started.elapsed());
    assert_eq!((picture.width, picture.height), (1920, 1080));
    let reference = reference_frames(&path);
    let frame_len = 1920 * 1080 * 3;
    let mad = worst_mad(&picture.data, &reference[49 * frame_len..50 * frame_len]);
    assert!(mad <= MAX_CHANNEL_MAD, "MAD {mad:.3}");
}

fn decode_output(bytes: &[u8], format: OutputFormat) -> (u32, u32) {
    match format {
        OutputFormat::Avif => {
            let avif = avif_parse::read_avif(&mut &bytes[..]).expect("AVIF parses");
            let meta = avif.primary_item_metadata().expect("AV1 sequence header");
            (meta.max_frame_width.get(), meta.max_frame_height.get())
        }
        _ => {
            let img = image::load_from_memory(bytes).expect("output decodes");
            (img.width(), img.height())
        }
    }
}

/// Three vertical bands, red, green and blue, 100 pixels wide each.
fn bands() -> Pixels {
    let (w, h) = (300u32, 100u32);
    let data = (0..h)
        .flat_map(|_| {
            (0..w).flat_map(|x| [[255, 0, 0], [0, 255, 0], [0, 0, 255]][x as usize / 100])
        })
        .collect();
    Pixels {
        width: w,
        height: h,
        channels: 3,
        data,
    }
}

/// Decoded pixels through the image engine: the planned size in every
/// format, and `cover` keeping the centre (the green band).
#[test]
fn render_pixels_plans_crops_and_encodes() {
    let spec = |w, h, fit, format| RenderSpec {
        width: w,
        height: h,
        fit,
        format,
        quality: None,
    };
    use OutputFormat::*;
    let cases = [
        (spec(Some(150), None, Fit::Inside, Jpeg), (150, 50)),
        (spec(None, Some(20), Fit::Inside, Png), (60, 20)),
        (spec(Some(120), Some(120), Fit::Inside, Webp), (120, 40)),
        (spec(Some(640), None, Fit::Inside, Avif), (300, 100)),
        (spec(Some(50), Some(50), Fit::Cover, Jpeg), (50, 50)),
        (spec(Some(80), Some(80), Fit::Cover, Png), (80, 80)),
        (spec(Some(90), Some(30), Fit::Cover, Webp), (90, 30)),
        (spec(None, None, Fit::Cover, Png), (300, 100)),
    ];
    for (spec, size) in cases {
        let r = render_pixels(bands(), &spec).unwrap();
        assert_eq!((r.width, r.height), size, "{spec:?}");
        assert_eq!(decode_output(&r.bytes, spec.format), size, "{spec:?}");
        assert_eq!(r.content_type, spec.format.content_type());
    }
    // cover of a square from 300x100: the centred 100x100, all green
    for format in [Png, Webp, Jpeg] {
        let r = render_pixels(bands(), &spec(Some(50), Some(50), Fit::Cover, format)).unwrap();
        let img = image::load_from_memory(&r.bytes).unwrap().to_rgb8();
        for (x, y) in [(0, 0), (49, 0), (25, 25), (0, 49), (49, 49)] {
            let [r, g, b] = img.get_pixel(x, y).0;
            assert!(
                r < 24 && g > 230 && b < 24,
                "{format:?} ({x},{y}): {r},{g},{b}"
            );
        }
    }
}

#[test]
fn render_pixels_refuses_bad_pixels_and_sizes() {
    let spec = RenderSpec {
        width: Some(0),
        height: None,
        fit: Fit::Inside,
        format: OutputFormat::Png,
        quality: None,
    };
    let zero = render_pixels(bands(), &spec).map(|_| ());
    assert_eq!(
        zero,
        Err(crate::image::ImageError::Unsupported(
            "zero width or height requested".into()
        ))
    );
    let mut short = bands();
    short.data.pop();
    let spec = RenderSpec {
        width: None,
        ..spec
    };
    let got = render_pixels(short, &spec).map(|_| ());
    assert_eq!(
        got,
        Err(crate::image::ImageError::Corrupt(
            "300x100 pixels of 3 channels in 89999 bytes".into()
        ))
    );
}

/// Which samples a decode run may leave out: those whose every slice has
/// `nal_ref_idc` 0.
#[test]
fn disposable_samples_are_those_no_picture_refers_to() {
    use super::decode::is_disposable;
    // avcC: version 1, profile, compatibility, level, 4-byte lengths, one
    // SPS (a NAL header byte of type 7 and nothing more), one PPS (type 8).
    let avcc = [1, 100, 0, 40, 0xff, 0xe1, 0, 1, 0x67, 1, 0, 1, 0x68];
    let nal = |header: u8| vec![0, 0, 0, 2, header, 0x80];
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("a non-reference B slice", nal(0x01), true),
        ("a reference B or P slice", nal(0x21), false),
        ("an IDR slice", nal(0x65), false),
        (
            "SEI, then a non-reference slice",
            [nal(0x06), nal(0x01)].concat(),
            true,
        ),
        (
            "two slices, one a reference",
            [nal(0x01), nal(0x41)].concat(),
            false,
        ),
        ("SEI alone: no slice", nal(0x06), false),
        ("empty", Vec::new(), false),
        ("a length past the end", vec![0, 0, 0, 9, 0x01], false),
        ("a cut length", vec![0, 0], false),
    ];
    for (name, sample, disposable) in cases {
        assert_eq!(is_disposable(&avcc, &sample), disposable, "{name}");
    }
    assert!(!is_disposable(&[], &nal(0x01)), "a bad avcC");
}

/// An `avcC` with one SPS of High profile whose fields after the level are
/// `sps_bits` (a string of '0' and '1', padded with a stop bit), and a PPS.
fn avc_config_with_sps_bits(sps_bits: &str) -> Vec<u8> {
    let mut bits: Vec<u8> = sps_bits.bytes().map(|b| b - b'0').collect();
    bits.push(1);
    while bits.len() % 8 != 0 {
        bits.push(0);
    }
    let mut sps = vec![0x67, 100, 0, 31];
    sps.extend(
        bits.chunks(8)
            .map(|byte| byte.iter().fold(0u8, |n, b| n << 1 | b)),
    );
    let mut config = vec![1, 100, 0, 31, 0xff, 0xe1];
    config.extend((sps.len() as u16).to_be_bytes());
    config.extend(sps);
    config.extend([1, 0, 1, 0x68]);
    config
}

#[test]
fn an_sps_bit_depth_near_u32_max_is_an_error_not_an_overflow() {
    // sps id 0, chroma format 1, then bit_depth_luma_minus8 = 2^32 - 2 (31
    // leading zeros and 31 ones): `+ 8` overflowed u32 before the decoder's
    // catch_unwind (a panic in a debug build, a wrap in a release one).
    let bits = format!("1010{}1{}", "0".repeat(31), "1".repeat(31));
    let config = avc_config_with_sps_bits(&bits);
    let sample = Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]);
    assert_eq!(
        decode_frame(&config, &[sample], 0, DEFAULT_MAX_PIXELS).err(),
        Some(VideoError::Unsupported(
            "4294967302-bit luma, 8-bit chroma (8-bit only)".into()
        ))
    );
}

#[test]
fn an_empty_sample_in_a_run_is_an_empty_access_unit() {
    // A zero-size sample is legal in MP4 (ISO/IEC 14496-12 §8.7.3: a sample
    // may have no bytes, as when a muxer keeps a time slot with no picture):
    // it gives no picture and changes no other, so the run decodes as
    // without it.
    let dir = tempfile::tempdir().unwrap();
    let track = read_track(&baseline_profile(dir.path()));
    let run = &track.samples[..8];
    let mut with_empty = run.to_vec();
    with_empty.insert(3, Bytes::new());
    let expected = decode_frame(&track.avc_config, run, 5, DEFAULT_MAX_PIXELS).unwrap();
    let picture = decode_frame(&track.avc_config, &with_empty, 5, DEFAULT_MAX_PIXELS).unwrap();
    assert_eq!(picture.data, expected.data);
}
