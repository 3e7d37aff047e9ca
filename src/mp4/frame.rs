//! Which samples to read and decode to show the video frame at a given time:
//! from the keyframe before it to the frame itself, and the byte ranges of
//! the file that hold them.

use super::samples::Sample;
use super::{Movie, Track, TrackKind};
use crate::protocol::range::ByteRange;

/// Sample byte ranges closer than this are read as one range: a gap this
/// small costs less to read through than another request (about 20 ms to S3,
/// in which it sends far more than 64 KiB).
pub const READ_GAP_BYTES: u64 = 64 * 1024;

/// The most samples decoded for one frame. A keyframe interval of several
/// minutes is possible in a screen recording, but decoding it all for one
/// picture is not worth it.
pub const MAX_PLAN_SAMPLES: usize = 20_000;

/// What to read and decode to show one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramePlan {
    /// In decode order, from the sync sample at or before the target (in
    /// decode order) to the target, both included.
    pub samples: Vec<SampleRef>,
    /// Where the target comes among `samples` sorted by presentation time:
    /// the decoder, fed `samples` and flushed, outputs the target as its
    /// `target_rank`-th picture (from 0).
    pub target_rank: usize,
    /// The presentation rank of each of `samples` among them (the target's
    /// is `target_rank`): what a decoder fed only some of them outputs in
    /// which order.
    pub ranks: Vec<usize>,
    /// The byte ranges of the file holding `samples`, in file order, those
    /// closer than [`READ_GAP_BYTES`] merged.
    pub reads: Vec<ByteRange>,
    /// The target's presentation time, in milliseconds rounded up (0 for a
    /// picture shown before the start): asking for this time shows the
    /// same picture, unless pictures less than 1 ms apart follow it.
    pub shown_ms: u64,
}

/// Where one sample's bytes are in the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleRef {
    pub offset: u64,
    pub size: u32,
}

/// Why no frame can be shown.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum FrameError {
    /// No video track.
    #[error("no video track")]
    NoVideo,
    /// A video codec other than H.264 in MP4 (`avc1`, `avc3`): its name.
    #[error("video codec {0} is not H.264")]
    Codec(String),
    /// The time is at or past the end of the video.
    #[error("the video is {duration_secs} s long")]
    PastEnd { duration_secs: f64 },
    /// The sample tables contradict each other or the file.
    #[error("malformed sample table: {0}")]
    Malformed(String),
    /// More bytes than the limit, or more than [`MAX_PLAN_SAMPLES`] samples,
    /// would have to be read.
    #[error("too many bytes to read for one frame")]
    TooLarge,
}

/// [`frame_plan`] for the movie's first video track, also refusing times at
/// or past the movie's own duration.
pub fn movie_frame_plan(
    movie: &Movie,
    seconds: f64,
    max_bytes: u64,
) -> Result<FramePlan, FrameError> {
    let track = movie.video_track().ok_or(FrameError::NoVideo)?;
    if let Some(duration_secs) = movie.duration_secs {
        if seconds.is_nan() || seconds >= duration_secs {
            return Err(FrameError::PastEnd { duration_secs });
        }
    }
    frame_plan(track, seconds, max_bytes)
}

/// The samples to decode to show the frame of `track` at `seconds`: the
/// frame with the greatest presentation time at or before it (the first
/// frame for a time before it), and the samples it depends on back to a sync
/// sample. A time at or past the track's duration (or that is not a number)
/// is [`FrameError::PastEnd`]; a plan that reads more than `max_bytes`, or
/// more than [`MAX_PLAN_SAMPLES`] samples, is [`FrameError::TooLarge`].
pub fn frame_plan(track: &Track, seconds: f64, max_bytes: u64) -> Result<FramePlan, FrameError> {
    if track.kind != TrackKind::Video {
        return Err(FrameError::NoVideo);
    }
    if !matches!(track.codec.as_str(), "avc1" | "avc3") {
        return Err(FrameError::Codec(track.codec.clone()));
    }
    if track.timescale == 0 {
        return Err(FrameError::Malformed("timescale 0".into()));
    }
    let table = &track.samples;
    let end = match track.duration {
        0 => u64::try_from(table.total_duration()).unwrap_or(0),
        duration => duration,
    };
    let timescale = f64::from(track.timescale);
    let duration_secs = end as f64 / timescale;
    if table.is_empty() || seconds.is_nan() || seconds >= duration_secs {
        return Err(FrameError::PastEnd { duration_secs });
    }
    // Saturates: a time far before the start is before the first frame.
    let target_time = (seconds * timescale).floor() as i64;
    let target = table
        .shown_at(i128::from(target_time), track.edit_media_time)
        .ok_or_else(|| FrameError::Malformed("no sample has a time".into()))?;
    let start = table.sync_at_or_before(target).unwrap_or(0);
    let missing =
        |index: u64| FrameError::Malformed(format!("sample {index} is outside the tables"));

    let mut samples: Vec<Sample> = Vec::new();
    let mut bytes = 0u64;
    let mut sample = table.sample(start).ok_or_else(|| missing(start))?;
    loop {
        bytes += u64::from(sample.size);
        if bytes > max_bytes || samples.len() >= MAX_PLAN_SAMPLES {
            return Err(FrameError::TooLarge);
        }
        samples.push(sample);
        if sample.index == target {
            break;
        }
        sample = table
            .next_sample(&sample)
            .ok_or_else(|| missing(sample.index + 1))?;
    }
    let key = |s: &Sample| (s.presentation_time(track.edit_media_time), s.index);
    let target_key = samples.last().map(key).ok_or_else(|| missing(target))?;
    let target_rank = samples.iter().filter(|s| key(s) < target_key).count();
    let mut by_time: Vec<usize> = (0..samples.len()).collect();
    by_time.sort_by_key(|&i| key(&samples[i]));
    let mut ranks = vec![0; samples.len()];
    for (rank, &i) in by_time.iter().enumerate() {
        ranks[i] = rank;
    }
    let reads = coalesce(&samples)?;
    let shown = target_key.0.max(0) as u128 * 1000;
    let shown_ms = u64::try_from(shown.div_ceil(u128::from(track.timescale))).unwrap_or(u64::MAX);
    Ok(FramePlan {
        samples: samples
            .iter()
            .map(|s| SampleRef {
                offset: s.offset,
                size: s.size,
            })
            .collect(),
        target_rank,
        ranks,
        reads,
        shown_ms,
    })
}

/// The byte ranges holding `samples`, sorted, those less than
/// [`READ_GAP_BYTES`] apart merged. Empty samples need no read.
fn coalesce(samples: &[Sample]) -> Result<Vec<ByteRange>, FrameError> {
    let mut spans = Vec::with_capacity(samples.len());
    for s in samples.iter().filter(|s| s.size > 0) {
        let end = s.offset.checked_add(u64::from(s.size)).ok_or_else(|| {
            FrameError::Malformed(format!("sample {} ends past 64 bits", s.index))
        })?;
        spans.push((s.offset, end));
    }
    spans.sort_unstable();
    let mut reads: Vec<ByteRange> = Vec::new();
    for (start, end) in spans {
        match reads.last_mut() {
            Some(last) if start.saturating_sub(last.last + 1) < READ_GAP_BYTES => {
                last.last = last.last.max(end - 1);
            }
            _ => reads.push(ByteRange {
                first: start,
                last: end - 1,
            }),
        }
    }
    Ok(reads)
}
