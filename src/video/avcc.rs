//! The track's decoder configuration, read before any decoding: the
//! `avcC` record (ISO/IEC 14496-15 §5.3.3.1) and the sequence parameter
//! sets in it (H.264 §7.3.2.1.1). A picture over the pixel limit, or one
//! OpenH264 does not decode (interlaced, not 8-bit 4:2:0, over level 5.2's
//! frame size), is refused here, before a sample is read.

use super::decode::VideoError;

/// Whether the `avcC` box body `avc_config` is one the decoder takes, with
/// pictures of at most `max_pixels`: what is checked before any decoding.
pub fn check_config(avc_config: &[u8], max_pixels: u64) -> Result<(), VideoError> {
    checked_config(avc_config, max_pixels).map(|_| ())
}

pub(super) fn checked_config(
    avc_config: &[u8],
    max_pixels: u64,
) -> Result<AvcConfig<'_>, VideoError> {
    let config = AvcConfig::parse(avc_config)?;
    for sps in &config.sps {
        let sps = Sps::parse(sps)?;
        check_pixels(sps.width, sps.height, max_pixels)?;
    }
    Ok(config)
}

pub(super) fn check_pixels(width: u64, height: u64, limit: u64) -> Result<(), VideoError> {
    let pixels = width * height;
    if pixels > limit {
        return Err(VideoError::TooManyPixels { pixels, limit });
    }
    Ok(())
}

/// NAL unit types of a sequence and a picture parameter set (H.264 Table 7-1).
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
/// OpenH264's largest frame, in 16x16 macroblocks: MaxFS of level 5.2
/// (H.264 Table A-1), which it enforces as a hard limit.
const MAX_FRAME_MBS: u64 = 36_864;

/// The parts of an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15
/// §5.3.3.1) a decoder needs: the NAL length size and the parameter sets.
/// Bytes after the PPS list (the High profile extension) are not needed.
pub(super) struct AvcConfig<'a> {
    /// 1, 2 or 4: bytes of the length before each NAL unit in a sample.
    pub(super) length_size: usize,
    pub(super) sps: Vec<&'a [u8]>,
    pub(super) pps: Vec<&'a [u8]>,
}

impl<'a> AvcConfig<'a> {
    pub(super) fn parse(body: &'a [u8]) -> Result<Self, VideoError> {
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
