//! Video frames as image derivatives: `?frame=SECONDS` on an MP4 or MOV with
//! H.264 video is the picture shown at that time, decoded from the keyframe
//! before it, then resized and encoded like an image. Only the movie index
//! (box headers and `moov`, `crate::movie`) and the byte ranges of the
//! samples decoded are read, never the whole file.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::params::MAX_FRAME_SECS;
use super::render::{render_spec, Renderer, Worker};
use super::DerivativeId;
use crate::image;
use crate::movie::{IndexedMovie, MovieError};
use crate::mp4::{self, FrameError};
use crate::protocol::description::Description;
use crate::representation::{blocking, read_exact, RangeReader, SourceError};
use crate::video;

/// The largest `moov` read for a frame; a larger one is refused (422).
pub const MAX_FRAME_MOOV_BYTES: u64 = crate::movie::MAX_MOOV_BYTES;

/// The most sample bytes read for one frame (a keyframe interval of a
/// high-bitrate video stays well within it).
pub const MAX_FRAME_READ_BYTES: u64 = 256 * 1024 * 1024;

/// The time a frame request resolves to: the presentation time (in ms,
/// rounded up) of the picture shown at `frame_ms`, so that every time that
/// shows one picture names one derivative (one ETag, one stored object, one
/// render). The movie index (`crate::movie`) says it without a worker; a
/// time past the end, a codec not decoded or a picture past the samples cap
/// is refused here, before anything is queued.
pub(super) async fn resolve(
    renderer: &Renderer,
    indexed: Arc<IndexedMovie>,
    frame_ms: u32,
) -> Result<u32, SourceError> {
    let max_samples = renderer.settings.frame_max_samples;
    blocking(move || {
        let movie = indexed.movie.as_ref().map_err(unreadable)?;
        let plan = plan_frame(movie, frame_ms, max_samples)?;
        let shown = u32::try_from(plan.shown_ms)
            .ok()
            .filter(|ms| *ms <= MAX_FRAME_SECS * 1000);
        // Pictures less than 1 ms apart: the rounded time may show the next
        // one; the request's own time names it then.
        let same = shown.filter(|ms| {
            mp4::movie_frame_plan(movie, f64::from(*ms) / 1000.0, MAX_FRAME_READ_BYTES)
                .is_ok_and(|p| p.samples.last() == plan.samples.last())
        });
        Ok(same.unwrap_or(frame_ms))
    })
    .await
}

/// The picture of `source`'s video at `frame_ms`, rendered as `id` asks.
pub(super) async fn render_frame(
    renderer: &Renderer,
    id: &DerivativeId,
    frame_ms: u32,
    source: &Description,
    reader: &dyn RangeReader,
    worker: Worker,
) -> Result<image::Rendered, SourceError> {
    let indexed = renderer.movies.get(&id.key, source, reader).await?;
    let max_samples = renderer.settings.frame_max_samples;
    let planned = Arc::clone(&indexed);
    let (plan, avc_config) = blocking(move || {
        let movie = planned.movie.as_ref().map_err(unreadable)?;
        let plan = plan_frame(movie, frame_ms, max_samples)?;
        let avc_config = movie
            .video_track()
            .and_then(|track| track.avc_config.clone())
            .ok_or_else(|| SourceError::Unprocessable("the H.264 track has no avcC box".into()))?;
        Ok((plan, avc_config))
    })
    .await?;

    let mut bytes_read = indexed.moov.as_ref().map_or(0, |m| m.len() as u64);
    let mut chunks: Vec<(u64, Bytes)> = Vec::with_capacity(plan.reads.len());
    for range in &plan.reads {
        let bytes = read_exact(reader, range.first, range.len()).await?;
        bytes_read += range.len();
        chunks.push((range.first, bytes));
    }
    renderer
        .source_bytes
        .fetch_add(bytes_read, Ordering::Relaxed);
    tracing::debug!(
        key = id.key,
        bytes_read,
        source_size = source.size,
        samples = plan.samples.len(),
        "frame read"
    );
    let spec = render_spec(id, id.output_format(false));
    let max_pixels = renderer.settings.max_pixels;
    let seconds = f64::from(frame_ms) / 1000.0;
    worker
        .decode(move || {
            let (samples, rank) = decode_run(&plan, &chunks, &avc_config, seconds)?;
            let pixels = video::decode_frame(&avc_config, &samples, rank, max_pixels)
                .map_err(|e| SourceError::Unprocessable(e.to_string()))?;
            image::engine::render_pixels(pixels, &spec).map_err(super::render::unprocessable)
        })
        .await
        .ok_or_else(|| SourceError::Unprocessable("the frame could not be decoded".into()))?
}

/// The plan for the picture of `movie` at `frame_ms`, within the samples cap.
fn plan_frame(
    movie: &mp4::Movie,
    frame_ms: u32,
    max_samples: usize,
) -> Result<mp4::FramePlan, SourceError> {
    let seconds = f64::from(frame_ms) / 1000.0;
    let plan = mp4::movie_frame_plan(movie, seconds, MAX_FRAME_READ_BYTES)
        .map_err(|e| frame_refused(e, seconds))?;
    // 422, not 413: the request is well-formed and small; it is this
    // movie's picture that costs more to decode than this server allows.
    if plan.samples.len() > max_samples {
        return Err(SourceError::Unprocessable(format!(
            "the picture at frame={seconds} is decoded from {} samples (from the keyframe before it); \
             the most decoded for a frame is {max_samples} (MEDIA_FRAME_MAX_SAMPLES)",
            plan.samples.len()
        )));
    }
    Ok(plan)
}

/// The samples to feed the decoder, cut from the bytes read, and the rank of
/// the target among the pictures it outputs. Pictures no other picture
/// refers to, before the target, are left out: the target decodes the same
/// without them (B-frames, mostly). So are empty samples (empty access
/// units: no picture).
fn decode_run(
    plan: &mp4::FramePlan,
    chunks: &[(u64, Bytes)],
    avc_config: &Bytes,
    seconds: f64,
) -> Result<(Vec<Bytes>, usize), SourceError> {
    let samples = plan
        .samples
        .iter()
        .map(|sample| {
            if sample.size == 0 {
                return Ok(Bytes::new());
            }
            let end = sample.offset + u64::from(sample.size);
            chunks
                .iter()
                .find(|(first, bytes)| *first <= sample.offset && end <= first + bytes.len() as u64)
                .map(|(first, bytes)| {
                    bytes.slice((sample.offset - first) as usize..(end - first) as usize)
                })
                .ok_or_else(|| SourceError::Unprocessable("a sample lies outside the file".into()))
        })
        .collect::<Result<Vec<Bytes>, SourceError>>()?;
    let last = samples.len().saturating_sub(1);
    if samples.get(last).is_some_and(Bytes::is_empty) {
        return Err(SourceError::Unprocessable(format!(
            "the sample shown at frame={seconds} is empty: it holds no picture"
        )));
    }
    let (mut run, mut rank) = (Vec::with_capacity(samples.len()), 0);
    for (i, sample) in samples.into_iter().enumerate() {
        let empty = sample.is_empty() && i != 0;
        if i == last || !(empty || video::is_disposable(avc_config, &sample)) {
            if i != last && plan.ranks[i] < plan.target_rank {
                rank += 1;
            }
            run.push(sample);
        }
    }
    Ok((run, rank))
}

fn unreadable(e: &MovieError) -> SourceError {
    SourceError::Unprocessable(e.to_string())
}

fn frame_refused(e: FrameError, seconds: f64) -> SourceError {
    match e {
        FrameError::Codec(codec) => SourceError::Unsupported(format!(
            "the video codec is {codec}; frames are taken from H.264 (avc1) only"
        )),
        FrameError::NoVideo => SourceError::Unsupported("the movie has no video track".into()),
        FrameError::PastEnd { duration_secs } => SourceError::Unprocessable(format!(
            "frame={seconds} is past the end: the video is {duration_secs:.3} s long"
        )),
        e => SourceError::Unprocessable(e.to_string()),
    }
}
