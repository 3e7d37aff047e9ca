//! Box headers (ISO/IEC 14496-12 §4.2): reading them from bytes, listing the
//! top-level boxes of a file through a range reader, and walking the children
//! of a box held in memory.

use futures_util::StreamExt;

use super::{be, Mp4Error};
use crate::protocol::range::ByteRange;
use crate::representation::RangeReader;

/// Bytes read from the start of a file in one go when listing its top-level
/// boxes: `ftyp` and any small boxes before `mdat` come in the same read, so a
/// file from S3 costs one request for them instead of one per box.
pub const HEAD_READ_BYTES: u64 = 64 * 1024;

/// Bytes read for each top-level box header past [`HEAD_READ_BYTES`]: the
/// longest header, a 32-bit size of 1 followed by the type and a 64-bit size.
const HEADER_READ_BYTES: u64 = 16;

/// The most top-level boxes a file may have. Real files have a handful; a
/// file of thousands of tiny boxes is not worth one read per box.
pub const MAX_TOP_LEVEL_BOXES: usize = 1000;

/// A box header read from bytes at a known offset: of the file for top-level
/// boxes, of the enclosing in-memory buffer for boxes inside `moov`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BoxHeader {
    /// The four-character type, such as `*b"moov"`.
    pub kind: [u8; 4],
    /// Where the box starts.
    pub offset: u64,
    /// 8, or 16 when the size is a 64-bit `largesize`. A `uuid` box's
    /// extended type counts as body here.
    pub header_len: u64,
    /// The whole box, header included. A size field of 0 ("to the end of the
    /// file") is resolved to the bytes that remain.
    pub size: u64,
}

impl BoxHeader {
    /// The offset just past the box. Never overflows: [`parse_header`] only
    /// returns boxes that end within their file.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.size)
    }

    /// Where the box's body starts.
    pub fn body_offset(&self) -> u64 {
        self.offset.saturating_add(self.header_len)
    }

    /// The type as text, for messages (`"moov"`; bytes that are not ASCII
    /// letters or digits are shown as `?`).
    pub fn kind_name(&self) -> String {
        fourcc_name(&self.kind)
    }
}

/// A four-character code as text, bytes outside printable ASCII as `?`.
pub(crate) fn fourcc_name(kind: &[u8; 4]) -> String {
    kind.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

/// Reads the box header at the start of `bytes`, which sit at `offset` in a
/// file (or enclosing box) of `file_size` bytes. A 32-bit size of 1 means a
/// 64-bit `largesize` follows the type; a size of 0 means "to the end of the
/// file". A size smaller than the header, or one that runs past `file_size`,
/// is an error: such a box cannot be skipped over safely.
pub fn parse_header(bytes: &[u8], offset: u64, file_size: u64) -> Result<BoxHeader, Mp4Error> {
    let size32 = be::u32_at(bytes, 0).ok_or(Mp4Error::Truncated { offset })?;
    let mut kind = [0u8; 4];
    kind.copy_from_slice(bytes.get(4..8).ok_or(Mp4Error::Truncated { offset })?);
    let (header_len, size) = match size32 {
        1 => (
            16,
            be::u64_at(bytes, 8).ok_or(Mp4Error::Truncated { offset })?,
        ),
        0 => (8, file_size.saturating_sub(offset)),
        n => (8, u64::from(n)),
    };
    if size < header_len {
        return Err(Mp4Error::SizeTooSmall { offset, size });
    }
    match offset.checked_add(size) {
        Some(end) if end <= file_size => Ok(BoxHeader {
            kind,
            offset,
            header_len,
            size,
        }),
        _ => Err(Mp4Error::PastEnd {
            offset,
            size,
            end: file_size,
        }),
    }
}

/// The top-level boxes of a file of `size` bytes, read through `reader`:
/// their headers only, never their bodies. The first [`HEAD_READ_BYTES`] come
/// in one read and every header inside them is parsed from it; each further
/// header costs one read of 16 bytes (on S3, one request of about 20 ms), so
/// a file laid out `ftyp mdat moov` costs two reads. The boxes tile the file
/// exactly, one after another, or the answer is an error; so is a file of
/// more than [`MAX_TOP_LEVEL_BOXES`] boxes.
pub async fn scan_top_level(
    reader: &dyn RangeReader,
    size: u64,
) -> Result<Vec<BoxHeader>, Mp4Error> {
    let mut boxes = Vec::new();
    if size == 0 {
        return Ok(boxes);
    }
    let head = read_exact(reader, 0, size.min(HEAD_READ_BYTES)).await?;
    let head_len = head.len() as u64;
    let mut offset = 0;
    while offset < size {
        let in_head = usize::try_from(offset)
            .ok()
            .and_then(|at| head.get(at..))
            .map(|bytes| parse_header(bytes, offset, size));
        let header = match in_head {
            Some(Err(Mp4Error::Truncated { .. })) | None if head_len < size => {
                let len = HEADER_READ_BYTES.min(size - offset);
                let bytes = read_exact(reader, offset, len).await?;
                parse_header(&bytes, offset, size)?
            }
            Some(parsed) => parsed?,
            None => return Err(Mp4Error::Truncated { offset }),
        };
        push_box(&mut boxes, header)?;
        offset = header.end();
    }
    Ok(boxes)
}

/// [`scan_top_level`] over a whole file held in memory.
pub fn scan_top_level_bytes(file: &[u8]) -> Result<Vec<BoxHeader>, Mp4Error> {
    let size = file.len() as u64;
    let mut boxes = Vec::new();
    let mut offset = 0;
    while offset < size {
        let bytes = usize::try_from(offset)
            .ok()
            .and_then(|at| file.get(at..))
            .ok_or(Mp4Error::Truncated { offset })?;
        let header = parse_header(bytes, offset, size)?;
        push_box(&mut boxes, header)?;
        offset = header.end();
    }
    Ok(boxes)
}

fn push_box(boxes: &mut Vec<BoxHeader>, header: BoxHeader) -> Result<(), Mp4Error> {
    if boxes.len() >= MAX_TOP_LEVEL_BOXES {
        return Err(Mp4Error::TooManyBoxes {
            limit: MAX_TOP_LEVEL_BOXES,
        });
    }
    boxes.push(header);
    Ok(())
}

/// Exactly `len` bytes (at most [`HEAD_READ_BYTES`]) at `offset`, collected
/// from the reader's chunks.
async fn read_exact(reader: &dyn RangeReader, offset: u64, len: u64) -> Result<Vec<u8>, Mp4Error> {
    let short = |got: u64| Mp4Error::ShortRead {
        offset,
        asked: len,
        got,
    };
    let range = ByteRange {
        first: offset,
        last: offset
            .checked_add(len)
            .and_then(|end| end.checked_sub(1))
            .ok_or(short(0))?,
    };
    let mut bytes = Vec::with_capacity(len.min(HEAD_READ_BYTES) as usize);
    let mut stream = reader.read(range);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if (bytes.len() + chunk.len()) as u64 > len {
            return Err(short((bytes.len() + chunk.len()) as u64));
        }
        bytes.extend_from_slice(&chunk);
    }
    if bytes.len() as u64 != len {
        return Err(short(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The bytes from `start` to `end` of `buf`, or an error naming `what` when
/// they are not all there.
pub(crate) fn slice<'a>(
    buf: &'a [u8],
    start: u64,
    end: u64,
    what: &str,
) -> Result<&'a [u8], Mp4Error> {
    usize::try_from(start)
        .ok()
        .zip(usize::try_from(end).ok())
        .and_then(|(start, end)| buf.get(start..end))
        .ok_or_else(|| Mp4Error::Malformed(format!("{what}: bytes {start}..{end} are missing")))
}

/// The body of `header`, a box inside `buf`.
pub(crate) fn body<'a>(buf: &'a [u8], header: &BoxHeader) -> Result<&'a [u8], Mp4Error> {
    slice(buf, header.body_offset(), header.end(), &header.kind_name())
}

/// The boxes directly inside `parent`, a box in the in-memory buffer `buf`
/// (offsets are of `buf`). Each child must lie inside its parent; a child of
/// size 0 ("to the end of the file") is an error, as ISO/IEC 14496-12 allows
/// it at the top level only. The walk stops at the first error, which it
/// yields, so it always ends: each box it passes is at least 8 bytes long.
pub(crate) fn children<'a>(buf: &'a [u8], parent: &BoxHeader) -> Children<'a> {
    Children {
        buf,
        offset: parent.body_offset(),
        end: parent.end().min(buf.len() as u64),
        failed: parent.end() > buf.len() as u64,
    }
}

/// The walk [`children`] returns.
pub(crate) struct Children<'a> {
    buf: &'a [u8],
    offset: u64,
    end: u64,
    failed: bool,
}

impl Iterator for Children<'_> {
    type Item = Result<BoxHeader, Mp4Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            self.failed = false;
            self.offset = self.end;
            return Some(Err(Mp4Error::Truncated { offset: self.end }));
        }
        if self.offset >= self.end {
            return None;
        }
        let parsed = slice(self.buf, self.offset, self.end, "box").and_then(|bytes| {
            if be::u32_at(bytes, 0) == Some(0) {
                return Err(Mp4Error::Malformed(format!(
                    "box of size 0 at offset {} inside another box",
                    self.offset
                )));
            }
            parse_header(bytes, self.offset, self.end)
        });
        match parsed {
            Ok(header) => {
                self.offset = header.end();
                Some(Ok(header))
            }
            Err(e) => {
                self.offset = self.end;
                Some(Err(e))
            }
        }
    }
}

/// The first box of type `kind` directly inside `parent`, if any. A malformed
/// sibling before or after it is an error all the same.
pub(crate) fn find_child(
    buf: &[u8],
    parent: &BoxHeader,
    kind: &[u8; 4],
) -> Result<Option<BoxHeader>, Mp4Error> {
    let mut found = None;
    for child in children(buf, parent) {
        let child = child?;
        if found.is_none() && &child.kind == kind {
            found = Some(child);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::representation::{BodyStream, SourceError};
    use bytes::Bytes;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// A box of `kind` with a 32-bit size and `body_len` zero bytes of body.
    pub(crate) fn plain_box(kind: &[u8; 4], body_len: usize) -> Vec<u8> {
        let mut bytes = ((8 + body_len) as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(kind);
        bytes.resize(8 + body_len, 0);
        bytes
    }

    #[test]
    fn headers() {
        let large = {
            let mut b = 1u32.to_be_bytes().to_vec();
            b.extend_from_slice(b"mdat");
            b.extend_from_slice(&40u64.to_be_bytes());
            b
        };
        // (bytes, offset, file size, expected header or error text)
        /// Bytes, their offset, the file size, and the header (type, header
        /// length, size) or error expected.
        type Case = (
            Vec<u8>,
            u64,
            u64,
            Result<(&'static [u8; 4], u64, u64), &'static str>,
        );
        let cases: Vec<Case> = vec![
            (plain_box(b"ftyp", 16), 0, 100, Ok((b"ftyp", 8, 24))),
            (plain_box(b"moov", 0), 92, 100, Ok((b"moov", 8, 8))),
            (large.clone(), 10, 50, Ok((b"mdat", 16, 40))),
            (
                large.clone(),
                11,
                50,
                Err("box at offset 11 of size 40 runs past 50"),
            ),
            (
                large[..12].to_vec(),
                0,
                50,
                Err("box header at offset 0 is cut short"),
            ),
            (
                vec![0, 0, 0, 0, b'm', b'd', b'a', b't'],
                30,
                1000,
                Ok((b"mdat", 8, 970)),
            ),
            (
                vec![0, 0, 0, 0, b'm', b'd', b'a', b't'],
                996,
                1000,
                Err("box at offset 996 has size 4, smaller than its header"),
            ),
            (
                vec![0, 0, 0, 7, b'f', b'r', b'e', b'e'],
                0,
                100,
                Err("box at offset 0 has size 7, smaller than its header"),
            ),
            (
                {
                    let mut b = 1u32.to_be_bytes().to_vec();
                    b.extend_from_slice(b"mdat");
                    b.extend_from_slice(&15u64.to_be_bytes());
                    b
                },
                0,
                100,
                Err("box at offset 0 has size 15, smaller than its header"),
            ),
            (
                vec![0xff, 0xff, 0xff, 0xff, b'm', b'd', b'a', b't'],
                0,
                4096,
                Err("box at offset 0 of size 4294967295 runs past 4096"),
            ),
            (
                {
                    let mut b = 1u32.to_be_bytes().to_vec();
                    b.extend_from_slice(b"mdat");
                    b.extend_from_slice(&u64::MAX.to_be_bytes());
                    b
                },
                8,
                u64::MAX,
                Err("box at offset 8 of size 18446744073709551615 runs past 18446744073709551615"),
            ),
            (
                vec![0, 0, 0, 8, b'f', b'r'],
                0,
                100,
                Err("box header at offset 0 is cut short"),
            ),
            (vec![], 0, 100, Err("box header at offset 0 is cut short")),
        ];
        for (bytes, offset, file_size, expected) in cases {
            let got = parse_header(&bytes, offset, file_size);
            match (got, expected) {
                (Ok(header), Ok((kind, header_len, size))) => assert_eq!(
                    header,
                    BoxHeader {
                        kind: *kind,
                        offset,
                        header_len,
                        size
                    }
                ),
                (Err(e), Err(text)) => assert_eq!(e.to_string(), text),
                (got, expected) => panic!("{bytes:?} at {offset}: {got:?}, expected {expected:?}"),
            }
        }
    }

    /// A file in memory that counts the reads made of it and hands each one
    /// back in chunks of at most 1,000 bytes, as a network read would.
    pub(crate) struct CountingReader {
        pub file: Bytes,
        pub reads: AtomicUsize,
        pub ranges: Mutex<Vec<ByteRange>>,
    }

    impl CountingReader {
        pub fn new(file: Vec<u8>) -> Self {
            CountingReader {
                file: Bytes::from(file),
                reads: AtomicUsize::new(0),
                ranges: Mutex::new(Vec::new()),
            }
        }
    }

    impl RangeReader for CountingReader {
        fn read(&self, range: ByteRange) -> BodyStream {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.ranges.lock().unwrap().push(range);
            let chunks: Vec<Result<Bytes, SourceError>> =
                match self.file.get(range.first as usize..range.last as usize + 1) {
                    Some(_) => (range.first..=range.last)
                        .step_by(1000)
                        .map(|start| {
                            let end = (start + 1000).min(range.last + 1);
                            Ok(self.file.slice(start as usize..end as usize))
                        })
                        .collect(),
                    None => vec![Err(SourceError::Changed)],
                };
            Box::pin(futures_util::stream::iter(chunks))
        }
    }

    fn file_of(boxes: &[Vec<u8>]) -> Vec<u8> {
        boxes.concat()
    }

    #[tokio::test]
    async fn top_level_scan_reads_the_head_once_then_16_bytes_a_header() {
        let large_mdat = {
            let mut b = 1u32.to_be_bytes().to_vec();
            b.extend_from_slice(b"mdat");
            b.extend_from_slice(&100_016u64.to_be_bytes());
            b.resize(100_016, 7);
            b
        };
        // (file, expected boxes (kind, offset, size), expected reads)
        /// A file, its boxes (type, offset, size) and the reads expected.
        type Case = (Vec<u8>, Vec<(&'static [u8; 4], u64, u64)>, Vec<ByteRange>);
        let cases: Vec<Case> = vec![
            (
                file_of(&[
                    plain_box(b"ftyp", 24),
                    plain_box(b"free", 0),
                    plain_box(b"mdat", 100),
                    plain_box(b"moov", 50),
                ]),
                vec![
                    (b"ftyp", 0, 32),
                    (b"free", 32, 8),
                    (b"mdat", 40, 108),
                    (b"moov", 148, 58),
                ],
                vec![ByteRange {
                    first: 0,
                    last: 205,
                }],
            ),
            (
                file_of(&[
                    plain_box(b"ftyp", 24),
                    plain_box(b"mdat", 100_000),
                    plain_box(b"moov", 50),
                    plain_box(b"free", 2),
                ]),
                vec![
                    (b"ftyp", 0, 32),
                    (b"mdat", 32, 100_008),
                    (b"moov", 100_040, 58),
                    (b"free", 100_098, 10),
                ],
                vec![
                    ByteRange {
                        first: 0,
                        last: 65_535,
                    },
                    ByteRange {
                        first: 100_040,
                        last: 100_055,
                    },
                    ByteRange {
                        first: 100_098,
                        last: 100_107,
                    },
                ],
            ),
            (
                file_of(&[plain_box(b"ftyp", 24), large_mdat, plain_box(b"moov", 50)]),
                vec![
                    (b"ftyp", 0, 32),
                    (b"mdat", 32, 100_016),
                    (b"moov", 100_048, 58),
                ],
                vec![
                    ByteRange {
                        first: 0,
                        last: 65_535,
                    },
                    ByteRange {
                        first: 100_048,
                        last: 100_063,
                    },
                ],
            ),
            (
                // A header that straddles the end of the first read.
                file_of(&[plain_box(b"ftyp", 65_524), plain_box(b"mdat", 1000)]),
                vec![(b"ftyp", 0, 65_532), (b"mdat", 65_532, 1008)],
                vec![
                    ByteRange {
                        first: 0,
                        last: 65_535,
                    },
                    ByteRange {
                        first: 65_532,
                        last: 65_547,
                    },
                ],
            ),
            (
                // Size 0: the last box runs to the end of the file.
                file_of(&[
                    plain_box(b"ftyp", 8),
                    vec![0, 0, 0, 0, b'm', b'd', b'a', b't', 1, 2, 3],
                ]),
                vec![(b"ftyp", 0, 16), (b"mdat", 16, 11)],
                vec![ByteRange { first: 0, last: 26 }],
            ),
        ];
        for (file, expected, reads) in cases {
            let reader = CountingReader::new(file.clone());
            let boxes = scan_top_level(&reader, file.len() as u64).await.unwrap();
            let got: Vec<_> = boxes.iter().map(|b| (&b.kind, b.offset, b.size)).collect();
            assert_eq!(got, expected);
            assert_eq!(*reader.ranges.lock().unwrap(), reads);
            assert_eq!(scan_top_level_bytes(&file).unwrap(), boxes);
        }
    }

    #[tokio::test]
    async fn top_level_scan_refuses() {
        let many: Vec<u8> = (0..=MAX_TOP_LEVEL_BOXES)
            .flat_map(|_| plain_box(b"free", 0))
            .collect();
        let mut past_end = file_of(&[plain_box(b"ftyp", 8), plain_box(b"mdat", 10)]);
        past_end.truncate(past_end.len() - 1);
        let mut cut_header = file_of(&[plain_box(b"ftyp", 8)]);
        cut_header.extend_from_slice(&[0, 0, 0]);
        let mut huge = file_of(&[plain_box(b"ftyp", 8)]);
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, b'm', b'd', b'a', b't']);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (many, "more than 1000 top-level boxes"),
            (past_end, "box at offset 16 of size 18 runs past 33"),
            (cut_header, "box header at offset 16 is cut short"),
            (huge, "box at offset 16 of size 4294967295 runs past 24"),
            (
                b"\xff\xd8\xff\xe0\x00\x10JFIF".to_vec(),
                "box at offset 0 of size 4292411360 runs past 10",
            ),
        ];
        for (file, expected) in cases {
            let reader = CountingReader::new(file.clone());
            let scanned = scan_top_level(&reader, file.len() as u64).await;
            assert_eq!(scanned.unwrap_err().to_string(), expected);
            assert_eq!(
                scan_top_level_bytes(&file).unwrap_err().to_string(),
                expected
            );
        }
        // A reader whose object is shorter than the size it was described with.
        let reader = CountingReader::new(plain_box(b"ftyp", 8));
        let err = scan_top_level(&reader, 100).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "read failed: the object changed while it was being read"
        );
        assert_eq!(scan_top_level(&reader, 0).await.unwrap(), vec![]);
    }

    #[test]
    fn children_stop_at_the_first_bad_box() {
        let mut parent = plain_box(b"moov", 0);
        parent.extend(plain_box(b"mvhd", 4));
        parent.extend([0, 0, 0, 4, b't', b'r', b'a', b'k']);
        parent.extend(plain_box(b"udta", 0));
        let len = parent.len() as u32;
        parent[..4].copy_from_slice(&len.to_be_bytes());
        let moov = parse_header(&parent, 0, parent.len() as u64).unwrap();
        let walked: Vec<String> = children(&parent, &moov)
            .map(|c| match c {
                Ok(h) => h.kind_name(),
                Err(e) => e.to_string(),
            })
            .collect();
        assert_eq!(
            walked,
            [
                "mvhd",
                "box at offset 20 has size 4, smaller than its header"
            ]
        );

        let mut zero = plain_box(b"moov", 0);
        zero.extend([0, 0, 0, 0, b'f', b'r', b'e', b'e']);
        zero[..4].copy_from_slice(&16u32.to_be_bytes());
        let moov = parse_header(&zero, 0, 16).unwrap();
        let walked: Vec<String> = children(&zero, &moov)
            .map(|c| c.map(|h| h.kind_name()).unwrap_or_else(|e| e.to_string()))
            .collect();
        assert_eq!(
            walked,
            ["malformed box of size 0 at offset 8 inside another box"]
        );
    }
}
