//! Reading image headers: format, dimensions, alpha and orientation from the
//! first bytes of a file, with no decoding and no allocation proportional to
//! the image. Also the metadata the renderer needs from the whole file
//! (ICC profile, EXIF orientation, Adobe CMYK marker).

use super::engine::{Format, ImageError, Probe};

fn be16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}
fn be32(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?))
}
fn le16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(i)?, *b.get(i + 1)?]))
}
fn le24(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(i)?,
        *b.get(i + 1)?,
        *b.get(i + 2)?,
        0,
    ]))
}
fn le32(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

fn short_header() -> ImageError {
    ImageError::Corrupt("header incomplete or truncated".into())
}

/// Which format the bytes are, from their signature.
pub fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(Format::Gif)
    } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(Format::Webp)
    } else if head.len() >= 12 && &head[4..8] == b"ftyp" && is_avif_ftyp(head) {
        Some(Format::Avif)
    } else {
        None
    }
}

fn is_avif_ftyp(head: &[u8]) -> bool {
    let size = be32(head, 0).unwrap_or(0) as usize;
    let end = size.min(head.len());
    if end < 16 {
        return false;
    }
    // major brand at 8, minor version at 12, compatible brands from 16
    let brand = |i: usize| &head[i..i + 4];
    if matches!(brand(8), b"avif" | b"avis") {
        return true;
    }
    (16..end.saturating_sub(3))
        .step_by(4)
        .any(|i| matches!(brand(i), b"avif" | b"avis"))
}

pub fn probe(head: &[u8]) -> Result<Probe, ImageError> {
    let format = sniff(head).ok_or_else(|| {
        ImageError::Unsupported("not a JPEG, PNG, WebP, GIF or AVIF image".into())
    })?;
    let p = match format {
        Format::Jpeg => probe_jpeg(head)?,
        Format::Png => probe_png(head)?,
        Format::Gif => probe_gif(head)?,
        Format::Webp => probe_webp(head)?,
        Format::Avif => probe_avif(head)?,
    };
    if p.width == 0 || p.height == 0 {
        return Err(ImageError::Corrupt("zero width or height".into()));
    }
    Ok(p)
}

/// JPEG: walk the marker segments up to the frame header (SOFn).
fn probe_jpeg(b: &[u8]) -> Result<Probe, ImageError> {
    let mut i = 2;
    let mut orientation = 1;
    loop {
        if *b.get(i).ok_or_else(short_header)? != 0xFF {
            return Err(ImageError::Corrupt("JPEG marker expected".into()));
        }
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let marker = *b.get(i).ok_or_else(short_header)?;
        i += 1;
        match marker {
            0x01 | 0xD0..=0xD8 => continue,
            0xD9 | 0xDA => return Err(ImageError::Corrupt("JPEG has no frame header".into())),
            _ => {}
        }
        let len = be16(b, i).ok_or_else(short_header)? as usize;
        if len < 2 {
            return Err(ImageError::Corrupt("JPEG segment length".into()));
        }
        let seg = b.get(i + 2..i + len);
        match marker {
            0xE1 => {
                if let Some(tiff) = seg.and_then(|s| s.strip_prefix(b"Exif\0\0")) {
                    orientation = exif_orientation(tiff).unwrap_or(1);
                }
            }
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let seg = seg.ok_or_else(short_header)?;
                if seg.len() < 6 {
                    return Err(ImageError::Corrupt("JPEG frame header".into()));
                }
                if !matches!(marker, 0xC0..=0xC2) {
                    return Err(ImageError::Unsupported(format!(
                        "JPEG coding process SOF{} (lossless, hierarchical or arithmetic)",
                        marker - 0xC0
                    )));
                }
                if seg[0] != 8 {
                    return Err(ImageError::Unsupported(format!("{}-bit JPEG", seg[0])));
                }
                let height = be16(seg, 1).unwrap_or(0) as u32;
                let width = be16(seg, 3).unwrap_or(0) as u32;
                if height == 0 {
                    return Err(ImageError::Unsupported(
                        "JPEG height defined later (DNL)".into(),
                    ));
                }
                return Ok(Probe {
                    format: Format::Jpeg,
                    width,
                    height,
                    has_alpha: false,
                    orientation,
                });
            }
            _ => {}
        }
        i += len;
    }
}

/// Where a walk of JPEG marker segments, by their lengths, stops in `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JpegWalk {
    /// At this offset is what the probe decides on: a frame header (SOFn),
    /// the scan or the end, or bytes that are no marker.
    Decides(usize),
    /// The segment starting at this offset (its first 0xFF) does not end
    /// within `b`: the walk goes on in bytes read from there.
    Beyond(usize),
}

/// Walks JPEG marker segments from offset `i` of `b` as [`probe`] does,
/// calling `segment(marker, start, end)` for each one skipped (`start` at
/// its first 0xFF). A segment is at most 65,537 bytes, so a frame header
/// far into a file (after a large EXIF block or ICC profile) is found by
/// reading windows of the file, not the whole of it.
pub fn walk_jpeg_segments(
    b: &[u8],
    mut i: usize,
    mut segment: impl FnMut(u8, usize, usize),
) -> JpegWalk {
    loop {
        let start = i;
        match b.get(i) {
            None => return JpegWalk::Beyond(start),
            Some(0xFF) => {}
            Some(_) => return JpegWalk::Decides(start),
        }
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = b.get(i) else {
            return JpegWalk::Beyond(start);
        };
        i += 1;
        match marker {
            0x01 | 0xD0..=0xD8 => continue,
            0xD9 | 0xDA => return JpegWalk::Decides(start),
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                return JpegWalk::Decides(start)
            }
            _ => {}
        }
        let Some(len) = be16(b, i) else {
            return JpegWalk::Beyond(start);
        };
        if len < 2 {
            return JpegWalk::Decides(start);
        }
        let end = i + usize::from(len);
        if end > b.len() {
            return JpegWalk::Beyond(start);
        }
        segment(marker, start, end);
        i = end;
    }
}

/// PNG: IHDR, then the chunks before the image data (tRNS, eXIf).
fn probe_png(b: &[u8]) -> Result<Probe, ImageError> {
    if b.get(12..16) != Some(b"IHDR") {
        return Err(if b.len() < 16 {
            short_header()
        } else {
            ImageError::Corrupt("PNG without IHDR".into())
        });
    }
    let width = be32(b, 16).ok_or_else(short_header)?;
    let height = be32(b, 20).ok_or_else(short_header)?;
    let color_type = *b.get(25).ok_or_else(short_header)?;
    let mut has_alpha = matches!(color_type, 4 | 6);
    let mut orientation = 1;
    let mut i = 8;
    while let (Some(len), Some(kind)) = (be32(b, i), b.get(i + 4..i + 8)) {
        let len = len as usize;
        match kind {
            b"IDAT" | b"IEND" => break,
            b"tRNS" => has_alpha = true,
            b"eXIf" => {
                if let Some(data) = b.get(i + 8..i + 8 + len) {
                    orientation = exif_orientation(data).unwrap_or(1);
                }
            }
            _ => {}
        }
        i = i.saturating_add(12).saturating_add(len);
    }
    Ok(Probe {
        format: Format::Png,
        width,
        height,
        has_alpha,
        orientation,
    })
}

/// GIF: the logical screen, and a transparent colour in a graphic control
/// extension before the first image.
fn probe_gif(b: &[u8]) -> Result<Probe, ImageError> {
    let width = le16(b, 6).ok_or_else(short_header)? as u32;
    let height = le16(b, 8).ok_or_else(short_header)? as u32;
    let flags = *b.get(10).ok_or_else(short_header)?;
    let mut i = 13;
    if flags & 0x80 != 0 {
        i += 3 << ((flags & 7) + 1);
    }
    let mut has_alpha = false;
    while let Some(&block) = b.get(i) {
        if block != 0x21 {
            break; // image descriptor, trailer or garbage: stop looking
        }
        let label = b.get(i + 1).copied();
        if label == Some(0xF9) {
            has_alpha |= b.get(i + 3).is_some_and(|f| f & 1 != 0);
        }
        // skip the sub-blocks
        i += 2;
        while let Some(&n) = b.get(i) {
            i += 1 + n as usize;
            if n == 0 {
                break;
            }
        }
    }
    Ok(Probe {
        format: Format::Gif,
        width,
        height,
        has_alpha,
        orientation: 1,
    })
}

fn probe_webp(b: &[u8]) -> Result<Probe, ImageError> {
    let kind = b.get(12..16).ok_or_else(short_header)?;
    let (width, height, has_alpha) = match kind {
        b"VP8 " => {
            if b.get(23..26) != Some(&[0x9d, 0x01, 0x2a]) {
                return Err(if b.len() < 26 {
                    short_header()
                } else {
                    ImageError::Corrupt("WebP VP8 frame header".into())
                });
            }
            let w = le16(b, 26).ok_or_else(short_header)? & 0x3fff;
            let h = le16(b, 28).ok_or_else(short_header)? & 0x3fff;
            (w as u32, h as u32, false)
        }
        b"VP8L" => {
            if b.get(20) != Some(&0x2f) {
                return Err(ImageError::Corrupt("WebP VP8L signature".into()));
            }
            let v = le32(b, 21).ok_or_else(short_header)?;
            (
                (v & 0x3fff) + 1,
                ((v >> 14) & 0x3fff) + 1,
                v & (1 << 28) != 0,
            )
        }
        b"VP8X" => {
            let flags = *b.get(20).ok_or_else(short_header)?;
            let w = le24(b, 24).ok_or_else(short_header)? + 1;
            let h = le24(b, 27).ok_or_else(short_header)? + 1;
            (w, h, flags & 0x10 != 0)
        }
        _ => return Err(ImageError::Corrupt("unknown WebP chunk".into())),
    };
    Ok(Probe {
        format: Format::Webp,
        width,
        height,
        has_alpha,
        orientation: webp_chunk(b, b"EXIF")
            .and_then(exif_orientation)
            .unwrap_or(1),
    })
}

/// AVIF: the first image spatial extent ('ispe') property in meta/iprp/ipco.
fn probe_avif(b: &[u8]) -> Result<Probe, ImageError> {
    fn boxes(b: &[u8]) -> impl Iterator<Item = (&[u8; 4], &[u8])> {
        let mut i = 0usize;
        std::iter::from_fn(move || {
            let size = be32(b, i)? as usize;
            let kind: &[u8; 4] = b.get(i + 4..i + 8)?.try_into().ok()?;
            let (start, end) = match size {
                0 => (i + 8, b.len()),
                1 => {
                    let big = u64::from_be_bytes(b.get(i + 8..i + 16)?.try_into().ok()?);
                    (i + 16, i.saturating_add(usize::try_from(big).ok()?))
                }
                n if n < 8 => return None,
                n => (i + 8, i.saturating_add(n)),
            };
            let body = b.get(start..end.min(b.len()))?;
            i = end;
            Some((kind, body))
        })
    }
    let meta = boxes(b)
        .find(|(k, _)| *k == b"meta")
        .ok_or_else(short_header)?
        .1;
    let iprp = boxes(meta.get(4..).unwrap_or_default())
        .find(|(k, _)| *k == b"iprp")
        .ok_or_else(short_header)?
        .1;
    let ipco = boxes(iprp)
        .find(|(k, _)| *k == b"ipco")
        .ok_or_else(short_header)?
        .1;
    let mut has_alpha = false;
    let mut dims = None;
    for (k, body) in boxes(ipco) {
        if k == b"ispe" && dims.is_none() {
            dims = Some((be32(body, 4).unwrap_or(0), be32(body, 8).unwrap_or(0)));
        }
        if k == b"auxC" && body.windows(5).any(|w| w == b"alpha") {
            has_alpha = true;
        }
    }
    let (width, height) = dims.ok_or_else(short_header)?;
    Ok(Probe {
        format: Format::Avif,
        width,
        height,
        has_alpha,
        orientation: 1,
    })
}

/// The payload of the first RIFF chunk of that kind in a WebP file.
pub fn webp_chunk<'a>(b: &'a [u8], want: &[u8; 4]) -> Option<&'a [u8]> {
    let mut i = 12usize;
    while let (Some(kind), Some(len)) = (b.get(i..i + 4), le32(b, i + 4)) {
        let len = len as usize;
        if kind == want {
            return b.get(i + 8..(i + 8).saturating_add(len).min(b.len()));
        }
        i = i
            .saturating_add(8)
            .saturating_add(len)
            .saturating_add(len & 1);
    }
    None
}

/// The orientation tag (0x0112) of IFD0 in a TIFF-structured EXIF block.
/// Accepts the block with or without the "Exif\0\0" prefix.
pub fn exif_orientation(tiff: &[u8]) -> Option<u8> {
    let tiff = tiff.strip_prefix(b"Exif\0\0").unwrap_or(tiff);
    let le = match tiff.get(0..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let r16 = |i: usize| if le { le16(tiff, i) } else { be16(tiff, i) };
    let r32 = |i: usize| {
        if le {
            le32(tiff, i)
        } else {
            be32(tiff, i)
        }
    };
    let ifd = r32(4)? as usize;
    let count = r16(ifd)? as usize;
    for n in 0..count.min(512) {
        let e = ifd + 2 + n * 12;
        if r16(e)? == 0x0112 {
            let v = r16(e + 8)?;
            return (1..=8).contains(&v).then_some(v as u8);
        }
    }
    None
}

/// What the renderer reads from a whole JPEG besides the pixels.
#[derive(Default)]
pub struct JpegMeta {
    pub icc: Option<Vec<u8>>,
    pub adobe: bool,
}

/// ICC profile (APP2 chunks, in sequence order) and the Adobe APP14 marker.
pub fn jpeg_meta(b: &[u8]) -> JpegMeta {
    let mut meta = JpegMeta::default();
    let mut chunks: Vec<(u8, &[u8])> = Vec::new();
    let mut i = 2;
    while b.get(i) == Some(&0xFF) {
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&marker) = b.get(i) else { break };
        i += 1;
        if matches!(marker, 0x01 | 0xD0..=0xD8) {
            continue;
        }
        if matches!(marker, 0xD9 | 0xDA) {
            break;
        }
        let Some(len) = be16(b, i) else { break };
        let Some(seg) = b.get(i + 2..i + len as usize) else {
            break;
        };
        match marker {
            0xE2 if seg.starts_with(b"ICC_PROFILE\0") && seg.len() > 14 => {
                chunks.push((seg[12], &seg[14..]))
            }
            0xEE if seg.starts_with(b"Adobe") => meta.adobe = true,
            _ => {}
        }
        i += len as usize;
    }
    if !chunks.is_empty() {
        chunks.sort_by_key(|c| c.0);
        meta.icc = Some(chunks.iter().flat_map(|c| c.1.iter().copied()).collect());
    }
    meta
}
