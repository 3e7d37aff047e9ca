//! What a `moov` box says about a movie: its duration and, for each track,
//! its kind, codec, timescale, picture size, decoder configuration, edit and
//! sample table (ISO/IEC 14496-12 §8.2 to §8.7; ISO/IEC 14496-15 for `avcC`).

use bytes::Bytes;

use super::boxes::{body, children, find_child, fourcc_name, parse_header, BoxHeader};
use super::samples::SampleTable;
use super::{be, Mp4Error};

/// A movie as its `moov` describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Movie {
    /// `mvhd` duration in seconds; `None` when it is unknown (all ones) or 0,
    /// as in a fragmented movie.
    pub duration_secs: Option<f64>,
    pub tracks: Vec<Track>,
}

impl Movie {
    /// The first video track, the one a player shows.
    pub fn video_track(&self) -> Option<&Track> {
        self.tracks.iter().find(|t| t.kind == TrackKind::Video)
    }
}

/// What a track carries, from its `hdlr` handler type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackKind {
    /// `vide`.
    Video,
    /// `soun`.
    Audio,
    /// Anything else: hints, timed text, chapters, metadata.
    Other,
}

/// One `trak`.
#[derive(Clone, Debug, PartialEq)]
pub struct Track {
    pub kind: TrackKind,
    /// The type of the first `stsd` sample entry: the codec, such as `avc1`,
    /// `hvc1`, `mp4v` or `mp4a`.
    pub codec: String,
    /// `mdhd` time units per second.
    pub timescale: u32,
    /// `mdhd` duration in `timescale` units; 0 when unknown.
    pub duration: u64,
    /// `tkhd` width and height, whole pixels (the 16.16 fixed-point values
    /// without their fraction).
    pub width: u32,
    pub height: u32,
    /// The body of the `avcC` box in an `avc1`/`avc3` sample entry: the
    /// H.264 decoder configuration (SPS, PPS and NAL length size).
    pub avc_config: Option<Bytes>,
    pub samples: SampleTable,
    /// The media time presentation starts at, in `timescale` units, so that
    /// presentation time = decode time + composition offset - this. From the
    /// edit list (`elst`): the media time of the first edit that is not
    /// empty, less the duration of the empty edits before it (time the track
    /// shows nothing). 0 without an edit list.
    pub edit_media_time: i64,
}

/// Reads a `moov` box (all its bytes, header included).
pub fn parse_movie(moov: &[u8]) -> Result<Movie, Mp4Error> {
    let root = parse_header(moov, 0, moov.len() as u64)?;
    if &root.kind != b"moov" || root.size != moov.len() as u64 {
        return Err(Mp4Error::Malformed(format!(
            "moov: a {} box of {} bytes in {} bytes",
            root.kind_name(),
            root.size,
            moov.len()
        )));
    }
    let mvhd = find_child(moov, &root, b"mvhd")?.ok_or_else(|| missing("moov", "mvhd"))?;
    let (movie_timescale, movie_duration) = timescale_and_duration(body(moov, &mvhd)?, "mvhd")?;
    let duration_secs = match movie_duration {
        Some(d) if d > 0 && movie_timescale > 0 => Some(d as f64 / f64::from(movie_timescale)),
        _ => None,
    };
    let mut tracks = Vec::new();
    for child in children(moov, &root) {
        let child = child?;
        if &child.kind == b"trak" {
            tracks.push(parse_track(moov, &child, movie_timescale)?);
        }
    }
    Ok(Movie {
        duration_secs,
        tracks,
    })
}

fn missing(parent: &str, child: &str) -> Mp4Error {
    Mp4Error::Malformed(format!("{parent}: no {child}"))
}

fn cut_short(what: &str) -> Mp4Error {
    Mp4Error::Malformed(format!("{what}: cut short"))
}

fn required(moov: &[u8], parent: &BoxHeader, kind: &[u8; 4]) -> Result<BoxHeader, Mp4Error> {
    find_child(moov, parent, kind)?.ok_or_else(|| missing(&parent.kind_name(), &fourcc_name(kind)))
}

fn parse_track(moov: &[u8], trak: &BoxHeader, movie_timescale: u32) -> Result<Track, Mp4Error> {
    let tkhd = required(moov, trak, b"tkhd")?;
    let (width, height) = picture_size(body(moov, &tkhd)?)?;
    let mdia = required(moov, trak, b"mdia")?;
    let (timescale, duration) =
        timescale_and_duration(body(moov, &required(moov, &mdia, b"mdhd")?)?, "mdhd")?;
    let handler = be::u32_at(body(moov, &required(moov, &mdia, b"hdlr")?)?, 8)
        .ok_or_else(|| cut_short("hdlr"))?;
    let kind = match &handler.to_be_bytes() {
        b"vide" => TrackKind::Video,
        b"soun" => TrackKind::Audio,
        _ => TrackKind::Other,
    };
    let stbl = required(moov, &required(moov, &mdia, b"minf")?, b"stbl")?;
    let (codec, avc_config) = sample_entry(moov, &required(moov, &stbl, b"stsd")?)?;
    let edit_media_time = match find_child(moov, trak, b"edts")? {
        Some(edts) => match find_child(moov, &edts, b"elst")? {
            Some(elst) => media_start(body(moov, &elst)?, timescale, movie_timescale)?,
            None => 0,
        },
        None => 0,
    };
    Ok(Track {
        kind,
        codec,
        timescale,
        duration: duration.unwrap_or(0),
        width,
        height,
        avc_config,
        samples: SampleTable::parse(moov, &stbl)?,
        edit_media_time,
    })
}

/// The timescale and duration of an `mvhd` or `mdhd` body (the two share
/// their first fields); a duration of all ones means unknown.
fn timescale_and_duration(bytes: &[u8], what: &str) -> Result<(u32, Option<u64>), Mp4Error> {
    let field = match bytes.first() {
        Some(1) => {
            be::u32_at(bytes, 20).zip(be::u64_at(bytes, 24).map(|d| (d != u64::MAX).then_some(d)))
        }
        Some(_) => be::u32_at(bytes, 12)
            .zip(be::u32_at(bytes, 16).map(|d| (d != u32::MAX).then_some(u64::from(d)))),
        None => None,
    };
    field.ok_or_else(|| cut_short(what))
}

/// `tkhd` width and height (16.16 fixed point) in whole pixels.
fn picture_size(bytes: &[u8]) -> Result<(u32, u32), Mp4Error> {
    let at = if bytes.first() == Some(&1) { 88 } else { 76 };
    be::u32_at(bytes, at)
        .zip(be::u32_at(bytes, at + 4))
        .map(|(w, h)| (w >> 16, h >> 16))
        .ok_or_else(|| cut_short("tkhd"))
}

/// Bytes of a visual sample entry before its child boxes (ISO/IEC 14496-12
/// §12.1.3): the sample entry's 8, then 70 of picture fields.
const VISUAL_SAMPLE_ENTRY_FIELDS: u64 = 78;

/// The first sample entry of `stsd`: its type, and the `avcC` body when it
/// is an H.264 entry.
fn sample_entry(moov: &[u8], stsd: &BoxHeader) -> Result<(String, Option<Bytes>), Mp4Error> {
    let count = be::u32_at(body(moov, stsd)?, 4).ok_or_else(|| cut_short("stsd"))?;
    if count == 0 {
        return Err(Mp4Error::Malformed("stsd: no sample entry".into()));
    }
    // The entries are boxes after the version, flags and count.
    let entries = BoxHeader {
        offset: stsd.offset + 8,
        size: stsd.size - 8,
        ..*stsd
    };
    let entry = children(moov, &entries)
        .next()
        .ok_or_else(|| cut_short("stsd"))??;
    let codec = entry.kind_name();
    if !matches!(&entry.kind, b"avc1" | b"avc3") {
        return Ok((codec, None));
    }
    if entry.size < entry.header_len + VISUAL_SAMPLE_ENTRY_FIELDS {
        return Err(cut_short(&codec));
    }
    let boxes = BoxHeader {
        offset: entry.offset + VISUAL_SAMPLE_ENTRY_FIELDS,
        size: entry.size - VISUAL_SAMPLE_ENTRY_FIELDS,
        ..entry
    };
    let avc_config = match find_child(moov, &boxes, b"avcC")? {
        Some(avcc) => Some(Bytes::copy_from_slice(body(moov, &avcc)?)),
        None => None,
    };
    Ok((codec, avc_config))
}

/// The edit list's media start (see [`Track::edit_media_time`]). Empty
/// edits (media time -1) last `segment_duration` in the movie's timescale.
fn media_start(bytes: &[u8], timescale: u32, movie_timescale: u32) -> Result<i64, Mp4Error> {
    let wide = bytes.first() == Some(&1);
    let width: u64 = if wide { 20 } else { 12 };
    let count = be::u32_at(bytes, 4).ok_or_else(|| cut_short("elst"))?;
    if 8 + u64::from(count) * width != bytes.len() as u64 {
        return Err(Mp4Error::Malformed(format!(
            "elst: {count} entries in {} bytes",
            bytes.len()
        )));
    }
    let mut empty: u128 = 0;
    for entry in bytes[8..].chunks_exact(width as usize) {
        let (duration, media_time) = if wide {
            (be::u64_at(entry, 0), be::u64_at(entry, 8).map(|t| t as i64))
        } else {
            (
                be::u32_at(entry, 0).map(u64::from),
                be::u32_at(entry, 4).map(|t| i64::from(t as i32)),
            )
        };
        let (Some(duration), Some(media_time)) = (duration, media_time) else {
            return Err(cut_short("elst"));
        };
        if media_time == -1 {
            empty += u128::from(duration);
            continue;
        }
        let empty_in_track = if movie_timescale == 0 {
            0
        } else {
            empty * u128::from(timescale) / u128::from(movie_timescale)
        };
        return i64::try_from(
            i128::from(media_time) - i128::try_from(empty_in_track).unwrap_or(i128::MAX),
        )
        .map_err(|_| Mp4Error::Malformed("elst: empty edits past 63 bits".into()));
    }
    Ok(0)
}
