//! The faststart representation of a movie whose `moov` follows its media
//! data: the same top-level boxes in the same order, except `moov`, which
//! comes right before the first `mdat`. Moving `moov` moves the media data
//! after it, so the chunk offsets in `moov` (`stco`, `co64`: ISO/IEC 14496-12
//! §8.7.5) are shifted to match; every other byte is copied unchanged.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::boxes::{body, children, find_child, parse_header, BoxHeader};
use super::{be, classify, Layout, Mp4Error};
use crate::protocol::range::ByteRange;

/// The faststart representation of one file: the rewritten `moov` in memory
/// and where every other byte comes from in the stored file.
///
/// Its `size` is the stored file's, plus `grown_by`: when a shifted offset
/// no longer fits the 32 bits of an `stco`, that table becomes a `co64` of
/// 8-byte offsets, which makes `moov` (and so the output) 4 bytes longer per
/// entry of that table. Files under 4 GiB never need this.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Faststart {
    /// The rewritten `moov` box, header included.
    pub moov: Bytes,
    /// Bytes in the faststart representation.
    pub size: u64,
    /// How much longer the rewritten `moov` is than the stored one.
    pub grown_by: u64,
    /// The representation in order: the stored bytes before the first
    /// `mdat`, `moov`, the stored bytes from the first `mdat` up to `moov`,
    /// the stored bytes after `moov`.
    parts: Vec<Part>,
}

/// Where one stretch of the output comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Part {
    /// Output offset of its first byte.
    out_first: u64,
    /// Bytes in it (never 0).
    len: u64,
    from: From,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum From {
    /// The rewritten `moov`, from its first byte.
    Moov,
    /// The stored file, from this offset.
    Source(u64),
}

/// One piece of an output byte range, in the order it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// `Faststart::moov[start..end]` (`end` exclusive).
    Moov { start: usize, end: usize },
    /// These bytes of the stored file.
    Source(ByteRange),
}

impl Faststart {
    /// What to send for the output bytes `range`: pieces of the in-memory
    /// `moov` and ranges of the stored file, in order. A range that runs past
    /// the end is cut at the end; one that starts past it gives nothing.
    pub fn segments(&self, range: ByteRange) -> Vec<Segment> {
        let last = range.last.min(self.size.saturating_sub(1));
        let mut segments = Vec::new();
        if self.size == 0 || range.first > last {
            return segments;
        }
        for part in &self.parts {
            let part_last = part.out_first + (part.len - 1);
            let first = range.first.max(part.out_first);
            let end = last.min(part_last);
            if first > end {
                continue;
            }
            let skip = first - part.out_first;
            let len = end - first + 1;
            segments.push(match part.from {
                From::Moov => Segment::Moov {
                    start: skip as usize,
                    end: (skip + len) as usize,
                },
                From::Source(source_first) => Segment::Source(ByteRange {
                    first: source_first + skip,
                    last: source_first + skip + len - 1,
                }),
            });
        }
        segments
    }
}

/// One chunk offset table in `moov`, with the boxes that contain it.
struct ChunkTable {
    /// The `stco` or `co64` box, at its offset in `moov`.
    header: BoxHeader,
    /// `co64`: 8-byte entries.
    wide: bool,
    count: u64,
    /// `trak`, `mdia`, `minf`, `stbl`: their sizes grow when the table does.
    parents: [BoxHeader; 4],
}

impl ChunkTable {
    fn entry(&self, moov: &[u8], index: u64) -> Option<u64> {
        let width = if self.wide { 8 } else { 4 };
        let at = usize::try_from(self.header.body_offset() + 8 + index * width).ok()?;
        if self.wide {
            be::u64_at(moov, at)
        } else {
            be::u32_at(moov, at).map(u64::from)
        }
    }
}

/// Where the bytes of the stored file move to in the output.
#[derive(Clone, Copy)]
struct Move {
    /// The first `mdat`: bytes before it stay where they are.
    first_mdat: u64,
    /// The stored `moov`.
    moov: BoxHeader,
    /// The rewritten `moov`'s size.
    new_moov_size: u64,
}

impl Move {
    /// The output offset of stored byte `offset`. Bytes from the first `mdat`
    /// up to `moov` move by the new `moov`'s size; bytes after `moov` move by
    /// how much `moov` grew. Bytes before the first `mdat`, and offsets into
    /// `moov` itself (which no sample can be in), are left as they are.
    fn shift(&self, offset: u64) -> Option<u64> {
        if offset < self.first_mdat || (offset >= self.moov.offset && offset < self.moov.end()) {
            Some(offset)
        } else if offset < self.moov.offset {
            offset.checked_add(self.new_moov_size)
        } else {
            offset.checked_add(self.new_moov_size - self.moov.size)
        }
    }
}

/// Rewrites a file's `moov` (all its bytes, header included, as `boxes`
/// lists it) for the faststart representation: every chunk offset in every
/// `stco` and `co64` of every track (`moov/trak/mdia/minf/stbl`) that points
/// into the moved data is shifted by the distance it moves. An `stco` whose
/// shifted offsets no longer fit 32 bits becomes a `co64`; that makes `moov`
/// longer, which moves the data further, so conversions repeat until none is
/// needed, and the sizes of every box containing a converted table (`stbl`,
/// `minf`, `mdia`, `trak`, `moov`) grow to match.
///
/// `boxes` must tile the file and be laid out as [`classify`] calls
/// [`Layout::Faststart`]; a `moov` with `mvex` (movie fragments) or `cmov`
/// (a compressed movie, whose offsets cannot be reached) is refused, as is
/// any box that does not fit inside its parent or a table whose entry count
/// does not match its size. Offsets into other files (a `dref` that is not
/// self-contained) are shifted all the same: such movies are not served.
pub fn rewrite(boxes: &[BoxHeader], moov: &[u8]) -> Result<Faststart, Mp4Error> {
    let stored_moov = match classify(boxes, u64::MAX) {
        Layout::Faststart { moov } => moov,
        Layout::AsStored(reason) => return Err(Mp4Error::NotMovable(reason)),
    };
    let mut end = 0;
    for b in boxes {
        if b.offset != end {
            return Err(Mp4Error::Malformed(format!(
                "top-level box list: {} at {} after a box ending at {end}",
                b.kind_name(),
                b.offset
            )));
        }
        end = b.end();
    }
    let file_size = end;
    let first_mdat = boxes
        .iter()
        .find(|b| &b.kind == b"mdat")
        .map_or(0, |b| b.offset);
    if moov.len() as u64 != stored_moov.size {
        return Err(Mp4Error::Malformed(format!(
            "moov: {} bytes given for a box of {}",
            moov.len(),
            stored_moov.size
        )));
    }
    let root = parse_header(moov, 0, moov.len() as u64)?;
    if &root.kind != b"moov" || root.size != stored_moov.size {
        return Err(Mp4Error::Malformed(format!(
            "moov: the bytes given hold a {} box of {} bytes",
            root.kind_name(),
            root.size
        )));
    }
    let tables = chunk_tables(moov, &root)?;
    let converted = convert_to_co64(moov, &tables, first_mdat, stored_moov)?;
    let grown_by: u64 = tables
        .iter()
        .zip(&converted)
        .filter(|(_, &c)| c)
        .map(|(t, _)| 4 * t.count)
        .sum();
    let moves = Move {
        first_mdat,
        moov: stored_moov,
        new_moov_size: stored_moov.size + grown_by,
    };
    let new_moov = rewritten_moov(moov, &root, &tables, &converted, moves)?;
    if new_moov.len() as u64 != moves.new_moov_size {
        return Err(Mp4Error::Malformed(format!(
            "moov: rewritten to {} bytes, expected {}",
            new_moov.len(),
            moves.new_moov_size
        )));
    }
    let mut parts = Vec::with_capacity(4);
    let mut out = 0;
    let mut push = |len: u64, from: From| {
        if len > 0 {
            parts.push(Part {
                out_first: out,
                len,
                from,
            });
            out += len;
        }
    };
    push(first_mdat, From::Source(0));
    push(moves.new_moov_size, From::Moov);
    push(stored_moov.offset - first_mdat, From::Source(first_mdat));
    push(
        file_size - stored_moov.end(),
        From::Source(stored_moov.end()),
    );
    Ok(Faststart {
        moov: Bytes::from(new_moov),
        size: out,
        grown_by,
        parts,
    })
}

/// Every `stco` and `co64` under `moov/trak/mdia/minf/stbl`, checked: each
/// entry count must account for its table's size exactly.
fn chunk_tables(moov: &[u8], root: &BoxHeader) -> Result<Vec<ChunkTable>, Mp4Error> {
    let mut tables = Vec::new();
    for trak in children(moov, root) {
        let trak = trak?;
        match &trak.kind {
            b"mvex" => return Err(Mp4Error::Fragmented),
            b"cmov" => return Err(Mp4Error::Malformed("moov: compressed (cmov)".into())),
            b"trak" => {}
            _ => continue,
        }
        let Some(mdia) = find_child(moov, &trak, b"mdia")? else {
            continue;
        };
        let Some(minf) = find_child(moov, &mdia, b"minf")? else {
            continue;
        };
        let Some(stbl) = find_child(moov, &minf, b"stbl")? else {
            continue;
        };
        for table in children(moov, &stbl) {
            let table = table?;
            let wide = match &table.kind {
                b"stco" => false,
                b"co64" => true,
                _ => continue,
            };
            let bytes = body(moov, &table)?;
            let count = be::u32_at(bytes, 4).ok_or_else(|| {
                Mp4Error::Malformed(format!("{}: no entry count", table.kind_name()))
            })?;
            let width = if wide { 8 } else { 4 };
            if 8 + u64::from(count) * width != bytes.len() as u64 {
                return Err(Mp4Error::Malformed(format!(
                    "{}: {count} entries in {} bytes",
                    table.kind_name(),
                    bytes.len()
                )));
            }
            tables.push(ChunkTable {
                header: table,
                wide,
                count: u64::from(count),
                parents: [trak, mdia, minf, stbl],
            });
        }
    }
    Ok(tables)
}

/// Which `stco` tables must become `co64` for their shifted offsets to fit:
/// the fixed point of "convert what overflows; converting grows `moov`,
/// which shifts the data further". Each table overflows once the new `moov`
/// size passes a threshold set by its largest offsets, so the tables are
/// taken in the order of their thresholds, which needs no repeated passes.
fn convert_to_co64(
    moov: &[u8],
    tables: &[ChunkTable],
    first_mdat: u64,
    stored_moov: BoxHeader,
) -> Result<Vec<bool>, Mp4Error> {
    let limit = u128::from(u32::MAX);
    let mut thresholds = Vec::new();
    for (index, table) in tables.iter().enumerate().filter(|(_, t)| !t.wide) {
        // The largest offsets that move by the new moov size, and by its
        // growth: the table overflows when new moov size > threshold.
        let (mut before_moov, mut after_moov) = (None::<u64>, None::<u64>);
        for i in 0..table.count {
            let offset = table
                .entry(moov, i)
                .ok_or_else(|| Mp4Error::Malformed("stco: entry missing".into()))?;
            if offset >= first_mdat && offset < stored_moov.offset {
                before_moov = before_moov.max(Some(offset));
            } else if offset >= stored_moov.end() {
                after_moov = after_moov.max(Some(offset));
            }
        }
        let by_before = before_moov.map(|o| limit - u128::from(o));
        let by_after = after_moov.map(|o| limit - u128::from(o) + u128::from(stored_moov.size));
        let threshold = match (by_before, by_after) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => continue,
        };
        thresholds.push((threshold, index));
    }
    thresholds.sort_unstable();
    let mut converted = vec![false; tables.len()];
    let mut new_size = u128::from(stored_moov.size);
    for (threshold, index) in thresholds {
        if new_size <= threshold {
            break;
        }
        converted[index] = true;
        new_size += 4 * u128::from(tables[index].count);
    }
    Ok(converted)
}

/// `moov` with every chunk table shifted (converted ones written as `co64`)
/// and the sizes of the boxes around converted tables grown.
fn rewritten_moov(
    moov: &[u8],
    root: &BoxHeader,
    tables: &[ChunkTable],
    converted: &[bool],
    moves: Move,
) -> Result<Vec<u8>, Mp4Error> {
    // Growth of each box that contains a converted table, by its offset; the
    // moov header is always rewritten, as a stored size of 0 ("to the end of
    // the file") is no longer true once moov moves.
    let mut grown: BTreeMap<u64, (BoxHeader, u64)> = BTreeMap::new();
    grown.insert(root.offset, (*root, 0));
    for (table, _) in tables.iter().zip(converted).filter(|(_, &c)| c) {
        for parent in std::iter::once(root).chain(&table.parents) {
            grown.entry(parent.offset).or_insert((*parent, 0)).1 += 4 * table.count;
        }
    }
    // Replacements in moov, by offset: (start, end, bytes). Headers and
    // tables never overlap: a table is never the parent of another box.
    let mut edits: Vec<(u64, u64, Vec<u8>)> = Vec::with_capacity(grown.len() + tables.len());
    for (header, growth) in grown.values() {
        let bytes = header_bytes(header, header.size + growth)?;
        edits.push((header.offset, header.body_offset(), bytes));
    }
    for (table, &to_co64) in tables.iter().zip(converted) {
        let wide = table.wide || to_co64;
        let width = if wide { 8 } else { 4 };
        let kind = if wide { *b"co64" } else { *b"stco" };
        let size = table.header.header_len + 8 + width * table.count;
        let new_header = BoxHeader {
            kind,
            ..table.header
        };
        let mut bytes = header_bytes(&new_header, size)?;
        let full_box = body(moov, &table.header)?.get(..8).unwrap_or_default();
        bytes.extend_from_slice(full_box);
        for i in 0..table.count {
            let offset = table
                .entry(moov, i)
                .ok_or_else(|| Mp4Error::Malformed("chunk offset missing".into()))?;
            let shifted = moves
                .shift(offset)
                .ok_or_else(|| Mp4Error::Malformed(format!("chunk offset {offset} overflows")))?;
            if wide {
                bytes.extend_from_slice(&shifted.to_be_bytes());
            } else {
                let narrow = u32::try_from(shifted).map_err(|_| {
                    Mp4Error::Malformed(format!("stco offset {shifted} past 32 bits"))
                })?;
                bytes.extend_from_slice(&narrow.to_be_bytes());
            }
        }
        edits.push((table.header.offset, table.header.end(), bytes));
    }
    edits.sort_unstable_by_key(|edit| edit.0);
    let mut out = Vec::with_capacity(moves.new_moov_size.min(moov.len() as u64 * 3) as usize);
    let mut cursor = 0u64;
    for (start, end, bytes) in edits {
        out.extend_from_slice(super::boxes::slice(moov, cursor, start, "moov")?);
        out.extend_from_slice(&bytes);
        cursor = end;
    }
    out.extend_from_slice(super::boxes::slice(
        moov,
        cursor,
        moov.len() as u64,
        "moov",
    )?);
    Ok(out)
}

/// A box header of `header`'s type and form (32-bit size, or 64-bit
/// `largesize` when the stored one was) for a box of `size` bytes.
fn header_bytes(header: &BoxHeader, size: u64) -> Result<Vec<u8>, Mp4Error> {
    let mut bytes = Vec::with_capacity(16);
    if header.header_len == 16 {
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.extend_from_slice(&header.kind);
        bytes.extend_from_slice(&size.to_be_bytes());
    } else {
        let size = u32::try_from(size).map_err(|_| {
            Mp4Error::Malformed(format!(
                "{}: {size} bytes do not fit its 32-bit size",
                header.kind_name()
            ))
        })?;
        bytes.extend_from_slice(&size.to_be_bytes());
        bytes.extend_from_slice(&header.kind);
    }
    Ok(bytes)
}
