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
//! The SPS in `avcC` is read first ([`Sps`]): a picture over `max_pixels`,
//! or one OpenH264 does not decode (interlaced, not 8-bit 4:2:0, over
//! level 5.2's frame size), is refused before any decoding.

use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::Bytes;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use crate::pixels::Pixels;

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
/// NAL unit types of a sequence and a picture parameter set (H.264 Table 7-1).
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
/// OpenH264's largest frame, in 16x16 macroblocks: MaxFS of level 5.2
/// (H.264 Table A-1), which it enforces as a hard limit.
const MAX_FRAME_MBS: u64 = 36_864;

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

/// Whether the `avcC` box body `avc_config` is one the decoder takes, with
/// pictures of at most `max_pixels`: what is checked before any decoding.
pub fn check_config(avc_config: &[u8], max_pixels: u64) -> Result<(), VideoError> {
    checked_config(avc_config, max_pixels).map(|_| ())
}

fn checked_config(avc_config: &[u8], max_pixels: u64) -> Result<AvcConfig<'_>, VideoError> {
    let config = AvcConfig::parse(avc_config)?;
    for sps in &config.sps {
        let sps = Sps::parse(sps)?;
        check_pixels(sps.width, sps.height, max_pixels)?;
    }
    Ok(config)
}

fn check_pixels(width: u64, height: u64, limit: u64) -> Result<(), VideoError> {
    let pixels = width * height;
    if pixels > limit {
        return Err(VideoError::TooManyPixels { pixels, limit });
    }
    Ok(())
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
    let mut data = vec![0; width * height * 3];
    picture.write_rgb8(&mut data);
    let size = |n: usize| u32::try_from(n).map_err(|_| VideoError::Corrupt("picture size".into()));
    Ok(Pixels {
        width: size(width)?,
        height: size(height)?,
        channels: 3,
        data,
    })
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

/// The parts of an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15
/// §5.3.3.1) a decoder needs: the NAL length size and the parameter sets.
/// Bytes after the PPS list (the High profile extension) are not needed.
struct AvcConfig<'a> {
    /// 1, 2 or 4: bytes of the length before each NAL unit in a sample.
    length_size: usize,
    sps: Vec<&'a [u8]>,
    pps: Vec<&'a [u8]>,
}

impl<'a> AvcConfig<'a> {
    fn parse(body: &'a [u8]) -> Result<Self, VideoError> {
        let corrupt = |what: &str| VideoError::Corrupt(format!("avcC: {what}"));
        let mut r = ByteReader(body);
        let version = r.u8().ok_or_else(|| corrupt("empty"))?;
        if version != 1 {
            return Err(VideoError::Unsupported(format!("avcC version {version}")));
        }
        // profile, compatibility, level: the SPS says them again
        r.take(3).ok_or_else(|| corrupt("cut short"))?;
        let length_size = (r.u8().ok_or_else(|| corrupt("cut short"))? & 0b11) as usize + 1;
        if length_size == 3 {
            return Err(corrupt("NAL length size 3"));
        }
        let sps_count = r.u8().ok_or_else(|| corrupt("cut short"))? & 0b1_1111;
        let sps = r.parameter_sets(sps_count as usize, NAL_SPS, "SPS")?;
        let pps_count = r.u8().ok_or_else(|| corrupt("cut short"))?;
        let pps = r.parameter_sets(pps_count as usize, NAL_PPS, "PPS")?;
        Ok(AvcConfig {
            length_size,
            sps,
            pps,
        })
    }
}

/// A bounds-checked cursor over `avcC` bytes.
struct ByteReader<'a>(&'a [u8]);

impl<'a> ByteReader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// `count` parameter sets, each a 16-bit length and a NAL unit of the
    /// type `nal_type`; at least one.
    fn parameter_sets(
        &mut self,
        count: usize,
        nal_type: u8,
        name: &str,
    ) -> Result<Vec<&'a [u8]>, VideoError> {
        let corrupt = |what: String| VideoError::Corrupt(format!("avcC: {what}"));
        if count == 0 {
            return Err(corrupt(format!("no {name}")));
        }
        let mut sets = Vec::with_capacity(count);
        for _ in 0..count {
            let len = self
                .take(2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
                .ok_or_else(|| corrupt(format!("{name} cut short")))?;
            let set = self
                .take(len)
                .ok_or_else(|| corrupt(format!("{name} cut short")))?;
            match set.first().map(|header| header & 0x1f) {
                Some(t) if t == nal_type => sets.push(set),
                Some(t) => return Err(corrupt(format!("{name} of NAL type {t}"))),
                None => return Err(corrupt(format!("empty {name}"))),
            }
        }
        Ok(sets)
    }
}

/// What the sequence parameter set (H.264 §7.3.2.1.1) says that decides
/// whether a picture can be decoded, and its size after cropping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sps {
    width: u64,
    height: u64,
}

/// Profiles whose SPS carries chroma format and bit depth (§7.3.2.1.1).
const PROFILES_WITH_CHROMA_INFO: [u32; 13] =
    [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

impl Sps {
    /// Parses an SPS NAL unit (header byte included).
    fn parse(nal: &[u8]) -> Result<Self, VideoError> {
        let rbsp = unescape(nal.get(1..).unwrap_or_default());
        let mut r = BitReader::new(&rbsp);
        let profile = r.bits(8)?;
        r.bits(16)?; // constraint flags, level
        r.ue()?; // seq_parameter_set_id
        if PROFILES_WITH_CHROMA_INFO.contains(&profile) {
            let chroma_format = r.ue()?;
            if chroma_format != 1 {
                return Err(VideoError::Unsupported(format!(
                    "chroma format {chroma_format} (4:2:0 only)"
                )));
            }
            // bit_depth_*_minus8, in u64: a ue(v) is up to 2^32 - 2.
            let (luma, chroma) = (u64::from(r.ue()?) + 8, u64::from(r.ue()?) + 8);
            if luma != 8 || chroma != 8 {
                return Err(VideoError::Unsupported(format!(
                    "{luma}-bit luma, {chroma}-bit chroma (8-bit only)"
                )));
            }
            r.bits(1)?; // qpprime_y_zero_transform_bypass_flag
            if r.bits(1)? == 1 {
                // seq_scaling_matrix_present_flag: 6 lists of 16, 2 of 64
                for list in 0..8 {
                    if r.bits(1)? == 1 {
                        r.skip_scaling_list(if list < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        r.ue()?; // log2_max_frame_num_minus4
        match r.ue()? {
            0 => {
                r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
            }
            1 => {
                r.bits(1)?; // delta_pic_order_always_zero_flag
                r.se()?; // offset_for_non_ref_pic
                r.se()?; // offset_for_top_to_bottom_field
                let cycle = r.ue()?;
                if cycle > 255 {
                    return Err(VideoError::Corrupt(format!(
                        "SPS: {cycle} frames in the order count cycle"
                    )));
                }
                for _ in 0..cycle {
                    r.se()?;
                }
            }
            _ => {}
        }
        r.ue()?; // max_num_ref_frames
        r.bits(1)?; // gaps_in_frame_num_value_allowed_flag
        let width_mbs = r.ue()? as u64 + 1;
        let height_mbs = r.ue()? as u64 + 1;
        if r.bits(1)? == 0 {
            return Err(VideoError::Unsupported("interlaced video".into()));
        }
        let limit = 8 * MAX_FRAME_MBS;
        if width_mbs * height_mbs > MAX_FRAME_MBS
            || width_mbs * width_mbs > limit
            || height_mbs * height_mbs > limit
        {
            return Err(VideoError::Unsupported(format!(
                "{}x{} is over H.264 level 5.2",
                width_mbs * 16,
                height_mbs * 16
            )));
        }
        r.bits(1)?; // direct_8x8_inference_flag
        let (mut width, mut height) = (width_mbs * 16, height_mbs * 16);
        if r.bits(1)? == 1 {
            // frame_cropping_flag: offsets in 2-pixel units for 4:2:0 frames
            let (left, right) = (r.ue()? as u64, r.ue()? as u64);
            let (top, bottom) = (r.ue()? as u64, r.ue()? as u64);
            let (crop_w, crop_h) = (2 * (left + right), 2 * (top + bottom));
            if crop_w >= width || crop_h >= height {
                return Err(VideoError::Corrupt(
                    "SPS: cropping leaves no picture".into(),
                ));
            }
            width -= crop_w;
            height -= crop_h;
        }
        Ok(Sps { width, height })
    }
}

/// The RBSP of a NAL unit: its bytes without emulation prevention (each
/// 0x03 after two zero bytes, §7.4.1).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// A bit cursor over an RBSP, with the Exp-Golomb codes of §9.1.
struct BitReader<'a> {
    data: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, bit: 0 }
    }

    fn bits(&mut self, n: u32) -> Result<u32, VideoError> {
        let mut value = 0u32;
        for _ in 0..n {
            let byte = self
                .data
                .get(self.bit / 8)
                .ok_or_else(|| VideoError::Corrupt("SPS cut short".into()))?;
            value = value << 1 | (byte >> (7 - self.bit % 8) & 1) as u32;
            self.bit += 1;
        }
        Ok(value)
    }

    /// ue(v): at most 31 leading zeros, so the value fits in a u32.
    fn ue(&mut self) -> Result<u32, VideoError> {
        let mut zeros = 0;
        while self.bits(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(VideoError::Corrupt("SPS: Exp-Golomb code too long".into()));
            }
        }
        let rest = self.bits(zeros)? as u64;
        Ok(((1u64 << zeros) - 1 + rest) as u32)
    }

    /// se(v).
    fn se(&mut self) -> Result<i64, VideoError> {
        let k = self.ue()? as i64;
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -k / 2 })
    }

    /// scaling_list() of §7.3.2.1.1.1, read only to get past it.
    fn skip_scaling_list(&mut self, size: usize) -> Result<(), VideoError> {
        let (mut last, mut next) = (8i64, 8i64);
        for _ in 0..size {
            if next != 0 {
                next = (last + self.se()? + 256).rem_euclid(256);
            }
            if next != 0 {
                last = next;
            }
        }
        Ok(())
    }
}
