//! Reading a track's sample table boxes (`stts`, `ctts`, `stss`, `stsc`,
//! `stsz`, `stz2`, `stco`, `co64`: ISO/IEC 14496-12 §8.6, §8.7) into the
//! runs [`SampleTable`] keeps. Every entry count must account for its box's
//! size exactly, so nothing is allocated for entries that are not there.

use super::boxes::{body, children, BoxHeader};
use super::samples::{ChunkRun, OffsetRun, SampleTable, Sizes, TimeRun};
use super::{be, Mp4Error};

impl SampleTable {
    /// Reads the tables of `stbl`, a box in `moov`. `stts`, `stsc`, a size
    /// table (`stsz` or `stz2`) and a chunk offset table (`stco` or `co64`) are
    /// required; `ctts` and `stss` are optional.
    pub(crate) fn parse(moov: &[u8], stbl: &BoxHeader) -> Result<SampleTable, Mp4Error> {
        let mut found: [Option<BoxHeader>; 5] = [None; 5];
        let (mut ctts, mut stss) = (None, None);
        for child in children(moov, stbl) {
            let child = child?;
            let slot = match &child.kind {
                b"stts" => &mut found[0],
                b"stsc" => &mut found[1],
                b"stsz" | b"stz2" => &mut found[2],
                b"stco" | b"co64" => &mut found[3],
                b"ctts" => &mut ctts,
                b"stss" => &mut stss,
                _ => &mut found[4],
            };
            if slot.is_none() {
                *slot = Some(child);
            }
        }
        let required =
            |i: usize, what: &str| found[i].ok_or_else(|| malformed("stbl", format!("no {what}")));
        let (stts, stsc, size_box, offset_box) = (
            required(0, "stts")?,
            required(1, "stsc")?,
            required(2, "stsz")?,
            required(3, "stco")?,
        );

        let (count, sizes) = parse_sizes(&size_box, body(moov, &size_box)?)?;
        let chunk_offsets = parse_chunk_offsets(&offset_box, body(moov, &offset_box)?)?;
        let time_runs = parse_times(body(moov, &stts)?)?;
        let offset_runs = match ctts {
            Some(ctts) => parse_composition_offsets(body(moov, &ctts)?)?,
            None => Vec::new(),
        };
        let sync = match stss {
            Some(stss) => Some(parse_sync(body(moov, &stss)?)?),
            None => None,
        };
        let chunk_runs = parse_chunks(body(moov, &stsc)?, chunk_offsets.len() as u64)?;

        let timed = time_runs
            .last()
            .map_or(0, |r| r.first_sample + u64::from(r.count));
        if timed < count {
            return Err(malformed(
                "stts",
                format!("times for {timed} of {count} samples"),
            ));
        }
        let placed = chunk_runs.last().map_or(0, |r| {
            r.first_sample
                .saturating_add(r.chunks * u64::from(r.samples_per_chunk))
        });
        if placed < count {
            return Err(malformed(
                "stsc",
                format!("chunks for {placed} of {count} samples"),
            ));
        }
        Ok(SampleTable {
            count,
            sizes,
            time_runs,
            offset_runs,
            sync,
            chunk_runs,
            chunk_offsets,
        })
    }
}

fn malformed(what: &str, detail: impl std::fmt::Display) -> Mp4Error {
    Mp4Error::Malformed(format!("{what}: {detail}"))
}

/// The entries of a full box (version and flags, then a 32-bit entry count,
/// then `count` entries of `width` bytes at `skip` bytes past the count), as a
/// slice that holds exactly that many. A count that does not match the
/// box's size is an error, so nothing is ever allocated for entries that are
/// not there.
fn entries<'a>(
    bytes: &'a [u8],
    skip: usize,
    width: u64,
    what: &str,
) -> Result<(u32, &'a [u8]), Mp4Error> {
    let count = be::u32_at(bytes, 4).ok_or_else(|| malformed(what, "no entry count"))?;
    let start = 8 + skip;
    let expected = start as u64 + u64::from(count) * width;
    if expected != bytes.len() as u64 {
        return Err(malformed(
            what,
            format!("{count} entries in {} bytes", bytes.len()),
        ));
    }
    Ok((count, &bytes[start..]))
}

fn u32s(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

fn parse_sizes(header: &BoxHeader, bytes: &[u8]) -> Result<(u64, Sizes), Mp4Error> {
    if &header.kind == b"stz2" {
        let field = be::u32_at(bytes, 4)
            .map(|v| v & 0xff)
            .ok_or_else(|| malformed("stz2", "cut short"))?;
        let count = be::u32_at(bytes, 8).ok_or_else(|| malformed("stz2", "cut short"))?;
        let table = &bytes[12.min(bytes.len())..];
        let expected = match field {
            4 => u64::from(count).div_ceil(2),
            8 => u64::from(count),
            16 => u64::from(count) * 2,
            _ => return Err(malformed("stz2", format!("field size {field}"))),
        };
        if expected != table.len() as u64 {
            return Err(malformed(
                "stz2",
                format!("{count} entries in {} bytes", bytes.len()),
            ));
        }
        let sizes = match field {
            4 => table
                .iter()
                .flat_map(|b| [u32::from(b >> 4), u32::from(b & 0xf)])
                .take(count as usize)
                .collect(),
            8 => table.iter().map(|&b| u32::from(b)).collect(),
            _ => table
                .chunks_exact(2)
                .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
                .collect(),
        };
        return Ok((u64::from(count), Sizes::Each(sizes)));
    }
    let size = be::u32_at(bytes, 4).ok_or_else(|| malformed("stsz", "cut short"))?;
    if size != 0 {
        let count = be::u32_at(bytes, 8).ok_or_else(|| malformed("stsz", "cut short"))?;
        if bytes.len() != 12 {
            return Err(malformed(
                "stsz",
                format!("constant size with {} bytes", bytes.len()),
            ));
        }
        return Ok((u64::from(count), Sizes::Constant(size)));
    }
    let (count, table) = entries(&bytes[4..], 0, 4, "stsz").map_err(|_| {
        malformed(
            "stsz",
            format!("entry count does not match {} bytes", bytes.len()),
        )
    })?;
    Ok((u64::from(count), Sizes::Each(u32s(table).collect())))
}

fn parse_chunk_offsets(header: &BoxHeader, bytes: &[u8]) -> Result<Vec<u64>, Mp4Error> {
    if &header.kind == b"co64" {
        let (_, table) = entries(bytes, 0, 8, "co64")?;
        Ok(table
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    } else {
        let (_, table) = entries(bytes, 0, 4, "stco")?;
        Ok(u32s(table).map(u64::from).collect())
    }
}

fn parse_times(bytes: &[u8]) -> Result<Vec<TimeRun>, Mp4Error> {
    let (_, table) = entries(bytes, 0, 8, "stts")?;
    let mut runs = Vec::with_capacity(table.len() / 8);
    let (mut sample, mut dts) = (0u64, 0i64);
    let mut values = u32s(table);
    while let (Some(count), Some(delta)) = (values.next(), values.next()) {
        runs.push(TimeRun {
            first_sample: sample,
            first_dts: dts,
            count,
            delta,
        });
        sample += u64::from(count);
        dts = i64::try_from(u64::from(count) * u64::from(delta))
            .ok()
            .and_then(|d| dts.checked_add(d))
            .ok_or_else(|| malformed("stts", "decode times past 63 bits"))?;
    }
    Ok(runs)
}

/// `ctts` offsets are read as signed in both versions: version 1 says so,
/// and writers put negative offsets in version 0 boxes too.
fn parse_composition_offsets(bytes: &[u8]) -> Result<Vec<OffsetRun>, Mp4Error> {
    let (_, table) = entries(bytes, 0, 8, "ctts")?;
    let mut runs = Vec::with_capacity(table.len() / 8);
    let mut sample = 0u64;
    let mut values = u32s(table);
    while let (Some(count), Some(offset)) = (values.next(), values.next()) {
        runs.push(OffsetRun {
            first_sample: sample,
            count,
            offset: offset as i32,
        });
        sample += u64::from(count);
    }
    Ok(runs)
}

fn parse_sync(bytes: &[u8]) -> Result<Vec<u32>, Mp4Error> {
    let (_, table) = entries(bytes, 0, 4, "stss")?;
    let numbers: Vec<u32> = u32s(table).collect();
    if numbers.first() == Some(&0) || numbers.windows(2).any(|w| w[0] >= w[1]) {
        return Err(malformed("stss", "sample numbers not increasing from 1"));
    }
    Ok(numbers)
}

fn parse_chunks(bytes: &[u8], chunk_count: u64) -> Result<Vec<ChunkRun>, Mp4Error> {
    let (_, table) = entries(bytes, 0, 12, "stsc")?;
    let mut entries: Vec<(u64, u32)> = Vec::with_capacity(table.len() / 12);
    for entry in table.chunks_exact(12) {
        let mut fields = u32s(entry);
        let (first_chunk, per_chunk) = (fields.next().unwrap_or(0), fields.next().unwrap_or(0));
        if first_chunk == 0
            || per_chunk == 0
            || entries
                .last()
                .is_some_and(|&(f, _)| u64::from(first_chunk) <= f)
        {
            return Err(malformed(
                "stsc",
                "first chunks not increasing from 1, or an empty chunk",
            ));
        }
        entries.push((u64::from(first_chunk), per_chunk));
    }
    let mut runs = Vec::with_capacity(entries.len());
    let mut sample = 0u64;
    for (i, &(first, per_chunk)) in entries.iter().enumerate() {
        let next = entries
            .get(i + 1)
            .map_or(chunk_count + 1, |&(f, _)| f.min(chunk_count + 1));
        let chunks = next.saturating_sub(first);
        runs.push(ChunkRun {
            first_sample: sample,
            first_chunk: first - 1,
            chunks,
            samples_per_chunk: per_chunk,
        });
        sample = (chunks * u64::from(per_chunk))
            .checked_add(sample)
            .ok_or_else(|| malformed("stsc", "more than 2^64 samples"))?;
    }
    Ok(runs)
}
