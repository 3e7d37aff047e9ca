//! The MP4 box layer (ISO/IEC 14496-12, the ISO base media file format, and
//! the QuickTime file format it grew from) that two computed representations
//! build on:
//!
//! - faststart on the fly: a file whose `moov` follows its `mdat` is served
//!   with `moov` moved before the first `mdat` and its chunk offsets shifted,
//!   every other byte as stored ([`scan_top_level`], [`classify`],
//!   [`rewrite`], [`Faststart::segments`]);
//! - a frame at a time: which sample byte ranges to read and decode to show
//!   the video frame at a given second ([`parse_movie`], [`frame_plan`]).
//!
//! Everything here is pure code over bytes: no HTTP, no decoding of media.
//! Every input is untrusted: sizes and counts are checked against the bytes
//! actually present, so bad input is an error, never a panic, a loop or an
//! allocation larger than the input warrants.

mod boxes;
mod faststart;
mod frame;
mod layout;
mod movie;
mod samples;
mod stbl;

#[cfg(test)]
mod tests;

pub use boxes::{
    parse_header, scan_top_level, scan_top_level_bytes, BoxHeader, HEAD_READ_BYTES,
    MAX_TOP_LEVEL_BOXES,
};
pub use faststart::{rewrite, Faststart, Segment};
pub use frame::{
    frame_plan, movie_frame_plan, FrameError, FramePlan, SampleRef, MAX_PLAN_SAMPLES,
    READ_GAP_BYTES,
};
pub use layout::{classify, AsStoredReason, Layout};
pub use movie::{parse_movie, Movie, Track, TrackKind};
pub use samples::{Sample, SampleTable};

use crate::representation::SourceError;

/// Why bytes could not be read as the MP4 structure they claim to be. The
/// caller of the faststart layer serves the file as stored on any of these.
#[derive(Debug, thiserror::Error)]
pub enum Mp4Error {
    /// Fewer bytes than a box header or a field needs.
    #[error("box header at offset {offset} is cut short")]
    Truncated { offset: u64 },
    /// A box size smaller than its own header.
    #[error("box at offset {offset} has size {size}, smaller than its header")]
    SizeTooSmall { offset: u64, size: u64 },
    /// A box that runs past the end of the file or of the box containing it.
    #[error("box at offset {offset} of size {size} runs past {end}")]
    PastEnd { offset: u64, size: u64, end: u64 },
    /// More top-level boxes than [`MAX_TOP_LEVEL_BOXES`].
    #[error("more than {limit} top-level boxes")]
    TooManyBoxes { limit: usize },
    /// A movie with movie fragments (`moof` boxes, `mvex` in `moov`): its
    /// sample data is described outside `moov`.
    #[error("fragmented movie")]
    Fragmented,
    /// A box's contents contradict its size or the format.
    #[error("malformed {0}")]
    Malformed(String),
    /// The file's layout is not one [`rewrite`] moves: see [`classify`].
    #[error("not a movie to move: {0:?}")]
    NotMovable(AsStoredReason),
    /// The reader failed.
    #[error("read failed: {0}")]
    Read(#[from] SourceError),
    /// The reader returned a different number of bytes than asked for.
    #[error("read of {asked} bytes at {offset} returned {got}")]
    ShortRead { offset: u64, asked: u64, got: u64 },
}

/// Big-endian readers over a byte slice that answer `None` past its end, so
/// that no field read can panic.
pub(crate) mod be {
    pub fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
        let field = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_be_bytes([field[0], field[1], field[2], field[3]]))
    }

    pub fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
        let field = bytes.get(at..at.checked_add(8)?)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(field);
        Some(u64::from_be_bytes(array))
    }
}
