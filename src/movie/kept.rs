//! A movie's index as the derived store keeps it, so that a new process
//! reads one object instead of a movie's box headers and `moov`.

use bytes::Bytes;

use super::INDEX_VERSION;
use crate::mp4::{self, BoxHeader};

/// The name of a movie's index in the derived store.
pub(super) fn stored_name(key: &str) -> String {
    format!("{key}/index,e={INDEX_VERSION}")
}

/// A movie's index as kept: `mi1`, the number of top-level boxes (u32),
/// each box's type, offset, header length and size (big-endian), then the
/// stored `moov` (empty when it was not read), from which the rest is made
/// again.
pub(super) fn encode_layout(boxes: &[BoxHeader], moov: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(8 + boxes.len() * 28 + moov.len());
    out.extend_from_slice(INDEX_VERSION.as_bytes());
    out.extend_from_slice(&(boxes.len() as u32).to_be_bytes());
    for b in boxes {
        out.extend_from_slice(&b.kind);
        for field in [b.offset, b.header_len, b.size] {
            out.extend_from_slice(&field.to_be_bytes());
        }
    }
    out.extend_from_slice(moov);
    Bytes::from(out)
}

/// The boxes and `moov` of a kept layout; `None` for anything else.
pub(super) fn decode_layout(bytes: &[u8]) -> Option<(Vec<BoxHeader>, &[u8])> {
    let rest = bytes.strip_prefix(INDEX_VERSION.as_bytes())?;
    let count = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    if count > mp4::MAX_TOP_LEVEL_BOXES {
        return None;
    }
    let table = rest.get(4..4 + count * 28)?;
    let boxes = table
        .chunks_exact(28)
        .map(|c| {
            let field = |at: usize| u64::from_be_bytes(c[at..at + 8].try_into().unwrap_or([0; 8]));
            BoxHeader {
                kind: [c[0], c[1], c[2], c[3]],
                offset: field(4),
                header_len: field(12),
                size: field(20),
            }
        })
        .collect();
    Some((boxes, &rest[4 + count * 28..]))
}

/// The faststart rewrite of a kept layout, when it describes a movie of
/// `source_size` bytes; `None` for anything else (bytes of another version
/// of the format, or of no layout at all).
pub fn rewrite_kept(bytes: &[u8], source_size: u64) -> Option<mp4::Faststart> {
    let (boxes, moov) = decode_layout(bytes)?;
    let faststart = mp4::rewrite(&boxes, moov).ok()?;
    (faststart.size.checked_sub(faststart.grown_by) == Some(source_size)).then_some(faststart)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_layouts_read_back_and_nothing_else_does() {
        let boxes = [
            BoxHeader {
                kind: *b"ftyp",
                offset: 0,
                header_len: 8,
                size: 32,
            },
            BoxHeader {
                kind: *b"mdat",
                offset: 32,
                header_len: 16,
                size: 1 << 33,
            },
        ];
        let moov = b"moov bytes";
        let kept = encode_layout(&boxes, moov);
        let (read, read_moov) = decode_layout(&kept).unwrap();
        assert_eq!(read, boxes);
        assert_eq!(read_moov, moov);
        for bad in [
            &b""[..],
            b"mi1",
            b"fs1\0\0\0\0",
            b"mi1\0\0\0\x02short",
            b"mi1\xff\xff\xff\xff",
        ] {
            assert!(decode_layout(bad).is_none(), "{bad:?}");
        }
    }
}
