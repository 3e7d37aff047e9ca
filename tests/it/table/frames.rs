//! Video frames: `?frame=SECONDS` on an MP4 is an image derivative, with the
//! same exact answers as a file. The expected bytes are made here from the
//! library's parts (the MP4 layer's frame plan, the H.264 decoder, the image
//! engine); tests/it/video.rs compares frames with ffmpeg's.

use bytes::Bytes;
use media_streamer::derivative::params::{self, DEFAULT_SIZES};
use media_streamer::derivative::DerivativeId;
use media_streamer::image::engine::render_pixels;
use media_streamer::image::{Fit, OutputFormat, RenderSpec};
use media_streamer::mp4;
use media_streamer::video::decode_frame;

use super::faststart::MOOV_AT_END;
use super::{Builder, Rep};

/// The frame `query` asks of the moov-at-end fixture, made as the server
/// makes it.
fn frame(b: &Builder<'_>, query: &str) -> Rep {
    let parsed = params::parse(Some(query), DEFAULT_SIZES).unwrap().unwrap();
    let id = DerivativeId::new(MOOV_AT_END, parsed, None);
    let file = b.fixture.bytes(MOOV_AT_END);
    let boxes = mp4::scan_top_level_bytes(&file).unwrap();
    let moov = boxes.iter().find(|b| &b.kind == b"moov").unwrap();
    let movie = mp4::parse_movie(&file[moov.offset as usize..moov.end() as usize]).unwrap();
    let seconds = f64::from(parsed.frame_ms.unwrap()) / 1000.0;
    let plan = mp4::movie_frame_plan(&movie, seconds, u64::MAX).unwrap();
    let samples: Vec<Bytes> = plan
        .samples
        .iter()
        .map(|s| {
            let at = s.offset as usize;
            Bytes::copy_from_slice(&file[at..at + s.size as usize])
        })
        .collect();
    let avc = movie.video_track().unwrap().avc_config.clone().unwrap();
    let pixels = decode_frame(&avc, &samples, plan.target_rank, u64::MAX).unwrap();
    let format = match parsed.format {
        params::FormatChoice::Png => OutputFormat::Png,
        _ => OutputFormat::Jpeg,
    };
    let spec = RenderSpec {
        width: parsed.width,
        height: parsed.height,
        fit: Fit::Inside,
        format,
        quality: parsed.quality,
    };
    let rendered = render_pixels(pixels, &spec).unwrap();
    let source = (b.store.validators)(MOOV_AT_END);
    Rep {
        target: format!("/{MOOV_AT_END}?{query}"),
        content_type: rendered.content_type.to_owned(),
        data: rendered.bytes,
        etag: id.etag(&source.etag).to_string(),
        last_modified: None,
    }
}

pub(super) fn add(b: &mut Builder<'_>) {
    let png = frame(b, "frame=1&fmt=png");
    let size = png.data.len() as u64;
    let etag = png.etag.clone();
    b.whole_of("frame: whole", "GET", &png, &[]);
    b.whole_of("frame: HEAD", "HEAD", &png, &[]);
    b.partial_of(
        "frame: a range",
        "GET",
        &png,
        &[("Range", "bytes=8-23")],
        (8, 23),
    );
    b.multipart_of(
        "frame: two ranges",
        &png,
        "bytes=0-3,-4",
        &[(0, 3), (size - 4, size - 1)],
    );
    let case = b.case(
        "frame: If-None-Match with its ETag",
        "GET",
        &png.target,
        &[("If-None-Match", &etag)],
    );
    case.status = 304;
    case.expect = vec![("etag", etag.clone()), ("content-type", "image/png".into())];
    case.absent = vec!["content-length", "content-range"];
    let jpeg = frame(b, "frame=1.5&w=64&fmt=jpeg");
    b.whole_of("frame: resized to JPEG", "GET", &jpeg, &[]);

    let movie = format!("/{MOOV_AT_END}");
    for (name, query, status, reason) in [
        (
            "frame: past the end",
            "frame=2",
            422,
            "Unprocessable Entity: frame=2 is past the end: the video is 2.000 s long",
        ),
        (
            "frame: a bad time",
            "frame=1.2345",
            400,
            "Bad Request: 'frame=1.2345' is not allowed: frame is one of the times from 0 to 86400 seconds, with at most 3 decimals",
        ),
        (
            "frame: image parameters without a time",
            "w=64",
            400,
            "Bad Request: a video takes frame=SECONDS (with w, h, fit, fmt and q if wanted)",
        ),
    ] {
        b.error(name, "GET", &format!("{movie}?{query}"), &[], status, reason);
    }
    b.error(
        "frame: a time on an image",
        "GET",
        &format!("/{}?frame=1", super::derivatives::PHOTO),
        &[],
        400,
        "Bad Request: frame applies to videos (MP4, MOV, M4V) only",
    );
    // A well-formed frame request on a video whose codec is not decoded
    // here: 415, naming it (it was a 400 that called the WebM no video).
    b.error(
        "frame: a time on a WebM",
        "GET",
        "/sub/clip.webm?frame=1&w=64",
        &[],
        415,
        "Unsupported Media Type: frames are taken from H.264 video in MP4, MOV and M4V files; a WebM file's video (VP8, VP9 or AV1) is not decoded here",
    );
    b.error(
        "frame: a bad time on a WebM is still a 400",
        "GET",
        "/sub/clip.webm?frame=01",
        &[],
        400,
        "Bad Request: 'frame=01' is not allowed: frame is one of the times from 0 to 86400 seconds, with at most 3 decimals",
    );
}
