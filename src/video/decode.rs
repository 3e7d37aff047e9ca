//! One H.264 picture from the samples of an MP4 track, as RGB pixels.
//!
//! MP4 keeps H.264 as samples of length-prefixed NAL units, with the
//! parameter sets (SPS, PPS) apart in the track's `avcC` box (ISO/IEC
//! 14496-15 §5.3.3). The decoder, Cisco's OpenH264, reads an Annex B byte
//! stream (ITU-T H.264 Annex B): each NAL unit after a start code, the
//! parameter sets in the stream. [`decode_frame`] converts one decode run
//! (a sync sample and the samples after it, in decode order) to that form,
//! feeds it, flushes the decoder at the end, and keeps the picture of the
//! asked rank in presentation order.
//!
//! Presentation order: samples with B-frames come in decode order (I P B B
//! ...), pictures must come out in display order. OpenH264 reorders itself:
//! for Main and High profile streams with B slices it holds decoded
//! pictures and releases the one of lowest picture order count once no
//! earlier one can follow (`ReorderPicturesInDisplay` in its
//! `welsDecoderExt.cpp`); at the end of the stream `FlushFrame` releases the
//! held ones lowest first. Baseline has no B slices, so decode order is
//! display order there. Its outputs are therefore counted as they come: the
//! n-th is the picture of rank n, and decoding stops once it is out.
//!
//! The `avcC` record and its SPS are read first (`avcc.rs`, also
//! [`check_config`]): a picture over `max_pixels`, or one OpenH264 does not
//! decode (interlaced, not 8-bit 4:2:0, over level 5.2's frame size), is
//! refused before any decoding.

use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::Bytes;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use super::avcc::{check_pixels, checked_config, AvcConfig};
use crate::pixels::Pixels;

pub use super::avcc::check_config;

/// Why no picture came out. Like the image engine's errors, every one is
/// the source's or the request's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VideoError {
    /// A stream the decoder does not handle (interlaced, 10-bit, 4:2:2...).
    #[error("unsupported video: {0}")]
    Unsupported(String),
    /// Bytes that are not valid H.264 or `avcC`, or too few pictures.
    #[error("corrupt video: {0}")]
    Corrupt(String),
    #[error("video frame has {pixels} pixels, over the limit of {limit}")]
    TooManyPixels { pixels: u64, limit: u64 },
}

/// Whether a sample (length-prefixed NAL units, as MP4 stores H.264) is a
/// picture no other picture refers to: every slice in it has `nal_ref_idc`
/// 0 (H.264 §7.4.1). Left out of a decode run, it changes no other picture,
/// so a run need not decode the ones before its target. `false` for
/// anything that does not read as such a sample, or with a bad `avcC`.
pub fn is_disposable(avc_config: &[u8], sample: &[u8]) -> bool {
    let Ok(config) = AvcConfig::parse(avc_config) else {
        return false;
    };
    let mut rest = sample;
    let mut slices = 0;
    while !rest.is_empty() {
        let Some((prefix, tail)) = rest.split_at_checked(config.length_size) else {
            return false;
        };
        let len = prefix
            .iter()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b));
        let Some((nal, tail)) = tail.split_at_checked(len) else {
            return false;
        };
        let Some(&header) = nal.first() else {
            return false;
        };
        let (ref_idc, kind) = (header >> 5 & 0b11, header & 0x1f);
        if (1..=5).contains(&kind) {
            if ref_idc != 0 {
                return false;
            }
            slices += 1;
        }
        rest = tail;
    }
    slices > 0
}

/// The Annex B start code put before each NAL unit.
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Decodes the H.264 samples of one decode run and returns the picture that
/// is the decoder's `target_rank`-th output (from 0) in presentation order,
/// as 8-bit RGB.
///
/// `avc_config` is the body of the track's `avcC` box; `samples` are the
/// samples as stored (length-prefixed NAL units), in decode order, the
/// first a sync sample. Blocking and CPU-bound; a decoder panic is caught
/// and reported as [`VideoError::Corrupt`].
pub fn decode_frame(
    avc_config: &[u8],
    samples: &[Bytes],
    target_rank: usize,
    max_pixels: u64,
) -> Result<Pixels, VideoError> {
    let config = checked_config(avc_config, max_pixels)?;
    if samples.is_empty() {
        return Err(VideoError::Corrupt("no samples".into()));
    }
    catch_unwind(AssertUnwindSafe(|| {
        decode_run(&config, samples, target_rank, max_pixels)
    }))
    .unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("decoder failed");
        Err(VideoError::Corrupt(msg.chars().take(120).collect()))
    })
}

/// Feeds the run and takes the `target_rank`-th picture out, counting the
/// pictures released while feeding, then those the final flush releases.
fn decode_run(
    config: &AvcConfig<'_>,
    samples: &[Bytes],
    target_rank: usize,
    max_pixels: u64,
) -> Result<Pixels, VideoError> {
    // No flush after each sample: a flush releases the held picture of
    // lowest order count at once, before a B-frame that comes earlier in
    // display order could be decoded.
    let decoder_config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
    let mut decoder = Decoder::with_api_config(OpenH264API::from_source(), decoder_config)
        .map_err(|e| VideoError::Corrupt(format!("decoder set-up: {}", decoder_error(&e))))?;
    let mut stream = Vec::new();
    let mut rank = 0;
    for (index, sample) in samples.iter().enumerate() {
        // A zero-size sample is an empty access unit: no picture, and no
        // other picture refers to it. The first must be the sync sample.
        if sample.is_empty() && index > 0 {
            continue;
        }
        stream.clear();
        if index == 0 {
            for set in config.sps.iter().chain(&config.pps) {
                stream.extend_from_slice(&START_CODE);
                stream.extend_from_slice(set);
            }
        }
        append_annex_b(&mut stream, sample, config.length_size)
            .map_err(|e| VideoError::Corrupt(format!("sample {index}: {e}")))?;
        let picture = decoder
            .decode(&stream)
            .map_err(|e| VideoError::Corrupt(format!("sample {index}: {}", decoder_error(&e))))?;
        if let Some(picture) = picture {
            if rank == target_rank {
                return to_rgb(&picture, max_pixels);
            }
            rank += 1;
        }
    }
    let held = decoder
        .flush_remaining()
        .map_err(|e| VideoError::Corrupt(format!("flush: {}", decoder_error(&e))))?;
    let total = rank + held.len();
    match held.get(target_rank - rank) {
        Some(picture) => to_rgb(picture, max_pixels),
        None => Err(VideoError::Corrupt(format!(
            "{} samples gave {total} pictures, picture {target_rank} asked",
            samples.len()
        ))),
    }
}

/// OpenH264's `DECODING_STATE` bits (codec_app_def.h) in words: the crate's
/// own message is long and says little more.
fn decoder_error(e: &openh264::Error) -> String {
    const STATES: [(i64, &str); 11] = [
        (0x01, "frame pending"),
        (0x02, "reference lost"),
        (0x04, "bitstream error"),
        (0x08, "dependency layer lost"),
        (0x10, "no parameter sets"),
        (0x20, "error concealed"),
        (0x40, "reference list null"),
        (0x1000, "invalid argument"),
        (0x2000, "not initialised"),
        (0x4000, "out of memory"),
        (0x8000, "buffer too small"),
    ];
    let code = e.native_code();
    let names: Vec<&str> = STATES
        .iter()
        .filter(|(bit, _)| code & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        format!("decoder error {code}")
    } else {
        names.join(", ")
    }
}

/// The picture as RGB (BT.601 limited range, as H.264 streams without
/// colour information are), once its size is within the limit.
fn to_rgb(picture: &DecodedYUV<'_>, max_pixels: u64) -> Result<Pixels, VideoError> {
    let (width, height) = picture.dimensions();
    check_pixels(width as u64, height as u64, max_pixels)?;
    if width == 0 || height == 0 {
        return Err(VideoError::Corrupt("empty picture".into()));
    }
    let planes = Planes {
        y: picture.y(),
        u: picture.u(),
        v: picture.v(),
        strides: picture.strides(),
    };
    let data = planes
        .rgb(width, height)
        .ok_or_else(|| VideoError::Corrupt("the picture's planes are cut short".into()))?;
    let size = |n: usize| u32::try_from(n).map_err(|_| VideoError::Corrupt("picture size".into()));
    Ok(Pixels {
        width: size(width)?,
        height: size(height)?,
        channels: 3,
        data,
    })
}

/// The three planes of a 4:2:0 picture and their strides (Y, U, V).
struct Planes<'a> {
    y: &'a [u8],
    u: &'a [u8],
    v: &'a [u8],
    strides: (usize, usize, usize),
}

impl Planes<'_> {
    /// The picture as 8-bit RGB, BT.601 limited range, each chroma sample
    /// shared by its 2x2 pixels. Integer arithmetic only (the coefficients in
    /// 8.8 fixed point, rounded), so the bytes are the same on every CPU: a
    /// frame's ETag names its bytes on x86_64 and on arm64 alike (the openh264
    /// crate's own conversion uses AVX2 on one and floating point on the
    /// other, and their results differ). `None` when a plane is shorter than
    /// its stride says.
    fn rgb(&self, width: usize, height: usize) -> Option<Vec<u8>> {
        let (sy, su, sv) = self.strides;
        let mut out = Vec::with_capacity(width * height * 3);
        for row in 0..height {
            let y_row = self.y.get(row * sy..row * sy + width)?;
            let chroma = width.div_ceil(2);
            let u_row = self.u.get((row / 2) * su..(row / 2) * su + chroma)?;
            let v_row = self.v.get((row / 2) * sv..(row / 2) * sv + chroma)?;
            for (col, &luma) in y_row.iter().enumerate() {
                let c = 298 * (i32::from(luma) - 16);
                let d = i32::from(u_row[col / 2]) - 128;
                let e = i32::from(v_row[col / 2]) - 128;
                let clamp = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
                out.push(clamp(c + 409 * e));
                out.push(clamp(c - 100 * d - 208 * e));
                out.push(clamp(c + 516 * d));
            }
        }
        Some(out)
    }
}

/// Appends the NAL units of one length-prefixed sample, each after a start
/// code. Every length must be non-zero and within the sample.
fn append_annex_b(out: &mut Vec<u8>, sample: &[u8], length_size: usize) -> Result<(), String> {
    if sample.is_empty() {
        return Err("empty sample".into());
    }
    let mut rest = sample;
    while !rest.is_empty() {
        if rest.len() < length_size {
            return Err(format!("{} bytes left, a NAL length cut short", rest.len()));
        }
        let (prefix, tail) = rest.split_at(length_size);
        let len = prefix.iter().fold(0usize, |n, &b| n << 8 | b as usize);
        if len == 0 {
            return Err("zero-length NAL unit".into());
        }
        if len > tail.len() {
            return Err(format!(
                "NAL unit of {len} bytes, {} left in the sample",
                tail.len()
            ));
        }
        let (nal, tail) = tail.split_at(len);
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(nal);
        rest = tail;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Planes;

    #[test]
    fn converts_bt601_limited_range_in_integers() {
        // (Y, U, V) to (R, G, B): black, white, the primaries, mid grey.
        let cases = [
            ((16, 128, 128), [0, 0, 0]),
            ((235, 128, 128), [255, 255, 255]),
            ((81, 90, 240), [255, 0, 0]),
            ((145, 54, 34), [0, 255, 1]),
            ((41, 240, 110), [0, 0, 255]),
            ((126, 128, 128), [128, 128, 128]),
        ];
        for ((y, u, v), rgb) in cases {
            let planes = Planes {
                y: &[y],
                u: &[u],
                v: &[v],
                strides: (1, 1, 1),
            };
            assert_eq!(planes.rgb(1, 1), Some(rgb.to_vec()), "{y} {u} {v}");
        }
    }

    #[test]
    fn shares_each_chroma_sample_with_its_two_by_two_pixels() {
        // 3x3 luma in rows of stride 4, 2x2 chroma in rows of stride 3.
        let y = [16, 16, 16, 0, 16, 16, 16, 0, 16, 16, 16, 0];
        let u = [128, 128, 0, 128, 128, 0];
        let v = [240, 128, 0, 240, 128, 0];
        let planes = Planes {
            y: &y,
            u: &u,
            v: &v,
            strides: (4, 3, 3),
        };
        let rgb = planes.rgb(3, 3).unwrap();
        let red_of = |x: usize, y: usize| rgb[(y * 3 + x) * 3];
        // V = 240 in the left column of chroma: the two left pixel columns
        // are reddish, the right one is not.
        assert!(red_of(0, 0) > 100 && red_of(1, 2) > 100);
        assert_eq!(red_of(2, 0), 0);
        assert_eq!(rgb.len(), 27);
        // A plane shorter than its stride says: no picture.
        let short = Planes {
            y: &y[..10],
            u: &u,
            v: &v,
            strides: (4, 3, 3),
        };
        assert_eq!(short.rgb(3, 3), None);
    }
}
