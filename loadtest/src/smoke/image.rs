//! The image derivative's checks: a WebP of the width asked, and `fmt=auto`
//! varying on Accept.
//!
//! The WebP's size is read from its RIFF header by hand (a few lines, below)
//! rather than by a decoder crate: the load tester stays small and free of C,
//! and the size, the container's length and its chunk are what a deployment
//! can get wrong. The browser tests decode every derivative format fully.

use http::header::{CONTENT_TYPE, VARY};
use http::StatusCode;

use super::exchange::{list_items, Exchange};

/// The width and height in a WebP file's header: simple lossy (`VP8 `),
/// lossless (`VP8L`) or extended (`VP8X`, the canvas), as RFC 9649 lays them out.
pub fn webp_size(bytes: &[u8]) -> Result<(u32, u32), String> {
    let u16le = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u24le = |at: usize| {
        bytes
            .get(at..at + 3)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], 0]))
    };
    let u32le = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WEBP") {
        return Err("not a WebP file (no RIFF....WEBP header)".into());
    }
    let riff_len = u32le(4).ok_or("short RIFF header")? as usize;
    if riff_len.checked_add(8) != Some(bytes.len()) {
        return Err(format!(
            "the RIFF header says {} bytes, the body has {}",
            riff_len.saturating_add(8),
            bytes.len()
        ));
    }
    let short = || "the first chunk is cut short".to_owned();
    match bytes.get(12..16) {
        Some(b"VP8 ") => {
            // A key frame: 3 bytes of frame tag, the start code, then 14-bit
            // width and height with 2 bits of scale each.
            if bytes.get(23..26) != Some(&[0x9d, 0x01, 0x2a]) {
                return Err("VP8 chunk without the key frame start code".into());
            }
            let w = u16le(26).ok_or_else(short)? & 0x3fff;
            let h = u16le(28).ok_or_else(short)? & 0x3fff;
            Ok((u32::from(w), u32::from(h)))
        }
        Some(b"VP8L") => {
            if bytes.get(20) != Some(&0x2f) {
                return Err("VP8L chunk without its signature byte".into());
            }
            let bits = u32le(21).ok_or_else(short)?;
            Ok(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        Some(b"VP8X") => {
            let w = u24le(24).ok_or_else(short)? + 1;
            let h = u24le(27).ok_or_else(short)? + 1;
            Ok((w, h))
        }
        other => Err(format!(
            "unknown first chunk {:?}",
            other.map(String::from_utf8_lossy)
        )),
    }
}

/// `?w=W&fmt=webp`: 200, `image/webp`, a WebP `width` wide, the whole body.
pub fn webp_at_width(answer: &Exchange, width: u32) -> Result<String, String> {
    if answer.status != StatusCode::OK {
        return Err(format!("expected 200, got {}", answer.said()));
    }
    let content_type = answer.header(CONTENT_TYPE).unwrap_or_default();
    if !content_type.eq_ignore_ascii_case("image/webp") {
        return Err(format!(
            "expected Content-Type image/webp, got {content_type:?}"
        ));
    }
    if !answer.ended {
        return Err(format!("the body did not end: {}", answer.body_summary()));
    }
    let (w, h) = webp_size(&answer.body)?;
    if w != width {
        return Err(format!("expected a WebP {width} px wide, got {w}x{h}"));
    }
    Ok(format!(
        "200 image/webp, {w}x{h}, {} bytes",
        answer.body.len()
    ))
}

/// `fmt=auto`: 200, an image type, and `Vary: Accept` (RFC 9110 §12.5.5),
/// since the format follows the request's Accept.
pub fn varies_on_accept(answer: &Exchange) -> Result<String, String> {
    if answer.status != StatusCode::OK {
        return Err(format!("expected 200, got {}", answer.said()));
    }
    let content_type = answer.header(CONTENT_TYPE).unwrap_or_default();
    if !content_type.to_ascii_lowercase().starts_with("image/") {
        return Err(format!("expected an image type, got {content_type:?}"));
    }
    let vary = list_items(&answer.headers, &VARY);
    if !vary.iter().any(|v| v == "accept" || v == "*") {
        return Err(format!("expected Vary: Accept, got Vary {vary:?}"));
    }
    Ok(format!("200 {content_type}, Vary {}", vary.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smoke::exchange::fixtures::answer;

    /// A RIFF container around one chunk whose payload starts with `head`.
    fn riff(fourcc: &[u8; 4], head: &[u8]) -> Vec<u8> {
        let mut payload = head.to_vec();
        payload.resize(head.len().max(16), 0);
        let mut file = b"RIFF".to_vec();
        file.extend_from_slice(&((4 + 8 + payload.len()) as u32).to_le_bytes());
        file.extend_from_slice(b"WEBP");
        file.extend_from_slice(fourcc);
        file.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        file.extend_from_slice(&payload);
        file
    }

    #[test]
    fn reads_each_kind_of_header() {
        // VP8: frame tag, start code, 64 and 36 (scale bits set, ignored).
        let lossy = riff(b"VP8 ", &[0, 0, 0, 0x9d, 0x01, 0x2a, 64, 0x40, 36, 0x80]);
        // VP8L: signature, then 14 bits of width-1 (63), 14 of height-1 (35).
        let bits: u32 = 63 | (35 << 14);
        let mut head = vec![0x2f];
        head.extend_from_slice(&bits.to_le_bytes());
        let lossless = riff(b"VP8L", &head);
        // VP8X: flags, reserved, then 24-bit width-1 and height-1.
        let extended = riff(b"VP8X", &[0x10, 0, 0, 0, 63, 0, 0, 35, 0, 0]);
        for (name, file) in [("VP8", &lossy), ("VP8L", &lossless), ("VP8X", &extended)] {
            assert_eq!(webp_size(file), Ok((64, 36)), "{name}");
        }
        let mut truncated = lossy.clone();
        truncated.pop();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"\x89PNG\r\n\x1a\n........".to_vec(), "not a WebP file"),
            (truncated, "the RIFF header says 36 bytes, the body has 35"),
            (riff(b"VP8 ", &[0, 0, 0, 1, 2, 3]), "start code"),
            (riff(b"VP8L", &[0x2e]), "signature byte"),
            (riff(b"ALPH", &[]), "unknown first chunk"),
        ];
        for (file, expected) in cases {
            let got = webp_size(&file).unwrap_err();
            assert!(got.contains(expected), "{got:?} should say {expected:?}");
        }
    }

    #[test]
    fn derivatives_are_judged() {
        let webp = riff(b"VP8X", &[0, 0, 0, 0, 63, 0, 0, 35, 0, 0]);
        let ok = answer(200, &[("content-type", "image/webp")], &webp);
        assert_eq!(
            webp_at_width(&ok, 64),
            Ok(format!("200 image/webp, 64x36, {} bytes", webp.len()))
        );
        assert_eq!(
            webp_at_width(&ok, 32).unwrap_err(),
            "expected a WebP 32 px wide, got 64x36"
        );
        let jpeg = answer(200, &[("content-type", "image/jpeg")], b"\xff\xd8");
        assert!(webp_at_width(&jpeg, 64).unwrap_err().contains("image/webp"));
        let refused = answer(400, &[], b"400 Bad Request: 'w=65' is not allowed");
        assert_eq!(
            webp_at_width(&refused, 65).unwrap_err(),
            "expected 200, got 400 \"400 Bad Request: 'w=65' is not allowed\""
        );

        let cases = [
            (
                vec![("content-type", "image/webp"), ("vary", "accept")],
                true,
            ),
            (
                vec![("content-type", "image/avif"), ("vary", "Origin, Accept")],
                true,
            ),
            (
                vec![
                    ("content-type", "image/webp"),
                    ("vary", "origin"),
                    ("vary", "Accept"),
                ],
                true,
            ),
            (vec![("content-type", "image/webp")], false),
            (
                vec![("content-type", "image/webp"), ("vary", "accept-encoding")],
                false,
            ),
            (
                vec![("content-type", "text/html"), ("vary", "accept")],
                false,
            ),
        ];
        for (fields, passes) in cases {
            let got = varies_on_accept(&answer(200, &fields, b"x"));
            assert_eq!(got.is_ok(), passes, "{fields:?}: {got:?}");
        }
    }
}
