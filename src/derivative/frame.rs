//! Video frames as image derivatives: `?frame=SECONDS` on an MP4 or MOV with
//! H.264 video is the picture shown at that time, decoded from the keyframe
//! before it, then resized and encoded like an image. Only the box headers,
//! `moov`, and the byte ranges of the samples decoded are read, never the
//! whole file.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::render::{render_spec, Renderer, Worker};
use super::DerivativeId;
use crate::image;
use crate::mp4::{self, FrameError, Mp4Error};
use crate::protocol::description::Description;
use crate::representation::{read_exact, RangeReader, SourceError};
use crate::video;

/// The largest `moov` read for a frame; a larger one is refused (422).
pub const MAX_FRAME_MOOV_BYTES: u64 = 64 * 1024 * 1024;

/// The most sample bytes read for one frame (a keyframe interval of a
/// high-bitrate video stays well within it).
pub const MAX_FRAME_READ_BYTES: u64 = 256 * 1024 * 1024;

/// The file name extensions of the movies frames are taken from.
pub fn is_frame_source(file_name: &str) -> bool {
    let extension = file_name.rsplit_once('.').map_or("", |(_, e)| e);
    ["mp4", "mov", "m4v"]
        .iter()
        .any(|known| extension.eq_ignore_ascii_case(known))
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
    let boxes = mp4::scan_top_level(reader, source.size)
        .await
        .map_err(not_a_movie)?;
    let moov = boxes
        .iter()
        .find(|b| &b.kind == b"moov")
        .ok_or_else(|| SourceError::Unprocessable("not an MP4 movie: no moov box".into()))?;
    if moov.size > MAX_FRAME_MOOV_BYTES {
        return Err(SourceError::Unprocessable(format!(
            "the movie's index (moov) is {} bytes; the most read for a frame is {MAX_FRAME_MOOV_BYTES}",
            moov.size
        )));
    }
    let moov_bytes = read_exact(reader, moov.offset, moov.size).await?;
    let mut bytes_read = moov.size;
    let movie = mp4::parse_movie(&moov_bytes).map_err(not_a_movie)?;
    let seconds = f64::from(frame_ms) / 1000.0;
    let plan = mp4::movie_frame_plan(&movie, seconds, MAX_FRAME_READ_BYTES)
        .map_err(|e| frame_refused(e, seconds))?;
    // 422, not 413: the request is well-formed and small; it is this
    // movie's picture that costs more to decode than this server allows.
    let cap = renderer.settings.frame_max_samples;
    if plan.samples.len() > cap {
        return Err(SourceError::Unprocessable(format!(
            "the picture at frame={seconds} is decoded from {} samples (from the keyframe before it); \
             the most decoded for a frame is {cap} (MEDIA_FRAME_MAX_SAMPLES)",
            plan.samples.len()
        )));
    }
    let avc_config = movie
        .video_track()
        .and_then(|track| track.avc_config.clone())
        .ok_or_else(|| SourceError::Unprocessable("the H.264 track has no avcC box".into()))?;

    let mut chunks: Vec<(u64, Bytes)> = Vec::with_capacity(plan.reads.len());
    for range in &plan.reads {
        let bytes = read_exact(reader, range.first, range.len()).await?;
        bytes_read += range.len();
        chunks.push((range.first, bytes));
    }
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

    // Pictures no other picture refers to, before the target, are left out:
    // the target decodes the same without them (B-frames, mostly).
    // So are empty samples (empty access units: no picture).
    let last = samples.len().saturating_sub(1);
    if samples.get(last).is_some_and(Bytes::is_empty) {
        return Err(SourceError::Unprocessable(format!(
            "the sample shown at frame={seconds} is empty: it holds no picture"
        )));
    }
    let (mut run, mut rank) = (Vec::with_capacity(samples.len()), 0);
    for (i, sample) in samples.into_iter().enumerate() {
        let empty = sample.is_empty() && i != 0;
        if i == last || !(empty || video::is_disposable(&avc_config, &sample)) {
            if i != last && plan.ranks[i] < plan.target_rank {
                rank += 1;
            }
            run.push(sample);
        }
    }
    let samples = run;
    let spec = render_spec(id, id.output_format(false));
    let max_pixels = renderer.settings.max_pixels;
    worker
        .decode(move || {
            let pixels = video::decode_frame(&avc_config, &samples, rank, max_pixels)
                .map_err(|e| SourceError::Unprocessable(e.to_string()))?;
            image::engine::render_pixels(pixels, &spec).map_err(super::render::unprocessable)
        })
        .await
        .ok_or_else(|| SourceError::Unprocessable("the frame could not be decoded".into()))?
}

fn not_a_movie(e: Mp4Error) -> SourceError {
    match e {
        Mp4Error::Read(e) => e,
        e => SourceError::Unprocessable(format!("not a readable MP4 movie: {e}")),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_movies_frames_come_from() {
        for (name, yes) in [
            ("a.mp4", true),
            ("b.MOV", true),
            ("c.m4v", true),
            ("d.m4a", false),
            ("e.webm", false),
            ("f.3gp", false),
        ] {
            assert_eq!(is_frame_source(name), yes, "{name}");
        }
    }
}
