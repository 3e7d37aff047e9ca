//! `multipart/byteranges` framing (RFC 9110 §14.6, RFC 2046 §5.1.1).

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::range::{content_range, ByteRange};

/// The framing of a multipart response: one header block before each part's
/// bytes and a closing delimiter, laid out before any byte is read so that the
/// exact Content-Length is known up front.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MultipartLayout {
    boundary: String,
    part_heads: Vec<Bytes>,
    closing: Bytes,
    content_length: u64,
}

impl MultipartLayout {
    /// Lays out the parts for `ranges` of a representation of `size` bytes whose
    /// type is `content_type`.
    ///
    /// Each part is `--boundary CRLF Content-Type CRLF Content-Range CRLF CRLF
    /// bytes`, parts after the first are preceded by the CRLF that belongs to
    /// the delimiter, and the body ends with `CRLF --boundary-- CRLF`.
    pub fn new(boundary: &str, content_type: &str, size: u64, ranges: &[ByteRange]) -> Self {
        let part_heads: Vec<Bytes> = ranges
            .iter()
            .enumerate()
            .map(|(i, range)| {
                let lead = if i == 0 { "" } else { "\r\n" };
                Bytes::from(format!(
                    "{lead}--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: {}\r\n\r\n",
                    content_range(range, size)
                ))
            })
            .collect();
        let closing = Bytes::from(format!("\r\n--{boundary}--\r\n"));
        let content_length = part_heads.iter().map(|h| h.len() as u64).sum::<u64>()
            + ranges.iter().map(ByteRange::len).sum::<u64>()
            + closing.len() as u64;
        MultipartLayout {
            boundary: boundary.to_owned(),
            part_heads,
            closing,
            content_length,
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(&self) -> String {
        format!("multipart/byteranges; boundary={}", self.boundary)
    }

    /// The exact length of the whole multipart body.
    pub fn content_length(&self) -> u64 {
        self.content_length
    }

    /// The header block that goes before part `i`.
    pub(crate) fn part_heads(&self) -> &[Bytes] {
        &self.part_heads
    }

    /// The closing delimiter.
    pub(crate) fn closing(&self) -> Bytes {
        self.closing.clone()
    }
}

/// A fresh boundary: 32 hex digits that no media byte sequence is likely to
/// contain (RFC 2046 §5.1.1 asks only that it not occur in the parts). The
/// digits come from std's randomly keyed hasher over a process-wide counter, so
/// no two responses share one and they cannot be predicted from outside.
pub(crate) fn new_boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let state = RandomState::new();
    format!("{:016x}{:016x}", state.hash_one(n), state.hash_one(!n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parts_exactly() {
        let ranges = [
            ByteRange { first: 0, last: 1 },
            ByteRange { first: 8, last: 9 },
        ];
        let layout = MultipartLayout::new("B", "video/mp4", 10, &ranges);
        assert_eq!(layout.content_type(), "multipart/byteranges; boundary=B");
        let mut body = Vec::new();
        for (head, data) in layout.part_heads().iter().zip([&b"ab"[..], b"ij"]) {
            body.extend_from_slice(head);
            body.extend_from_slice(data);
        }
        body.extend_from_slice(&layout.closing());
        let expected = "--B\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-1/10\r\n\r\nab\
                        \r\n--B\r\nContent-Type: video/mp4\r\nContent-Range: bytes 8-9/10\r\n\r\nij\
                        \r\n--B--\r\n";
        assert_eq!(String::from_utf8(body).unwrap(), expected);
        assert_eq!(layout.content_length(), expected.len() as u64);
    }

    #[test]
    fn boundaries_differ() {
        let a = new_boundary();
        let b = new_boundary();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
