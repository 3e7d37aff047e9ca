//! Movies served faststart, checked with ffmpeg (Debian's `ffmpeg` package,
//! which the test command installs): the faststart answer decodes to the same
//! frames and samples as the stored file, every range of it agrees with its
//! whole, and over S3 a range after the first costs one request.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use media_streamer::derivative::{ImageSettings, Renderer};
use media_streamer::faststart::{FaststartSettings, Faststarts};
use media_streamer::mp4;
use media_streamer::service::MediaService;
use media_streamer::source::dir::DirSource;
use media_streamer::source::s3::S3Source;

use crate::client::send;
use crate::fixture::{default_local, settings, Fixture, TestServer};
use crate::s3::{bucket_with, S3Server, BUCKET};
use crate::table::faststart::{FASTSTART, MOOV_AT_END};

/// `ffmpeg -f framemd5` of every stream of `file`: one line per decoded
/// frame or audio packet, with its timestamps and the MD5 of its samples.
fn framemd5(file: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg is needed (Debian package ffmpeg; scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // Leave out the comment lines, which name the input.
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

fn top_level_kinds(bytes: &[u8]) -> Vec<String> {
    mp4::scan_top_level_bytes(bytes)
        .unwrap()
        .iter()
        .map(|b| b.kind_name())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faststart_answer_decodes_as_the_stored_file() {
    let fixture = Fixture::new();
    let server = TestServer::start(&fixture.root, default_local()).await;
    let stored = fixture.bytes(MOOV_AT_END);
    let whole = send(server.addr, "GET", &format!("/{MOOV_AT_END}"), &[]).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body.len(), stored.len(), "the same size");
    assert_eq!(top_level_kinds(&stored), ["ftyp", "free", "mdat", "moov"]);
    assert_eq!(
        top_level_kinds(&whole.body),
        ["ftyp", "free", "moov", "mdat"]
    );

    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served.mp4");
    std::fs::write(&served, &whole.body).unwrap();
    let expected = framemd5(&fixture.root.join(MOOV_AT_END));
    // 2 s of video at 10 frames a second, 87 AAC frames of audio.
    assert_eq!(
        expected.lines().count(),
        20 + 87,
        "frames and audio packets"
    );
    assert_eq!(framemd5(&served), expected);

    // Ranges of it, spread over the file (moov, the boundary, mdat), agree
    // with the whole.
    let size = whole.body.len() as u64;
    let mut seed = 0x9e37_79b9_u64;
    for _ in 0..40 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let first = (seed >> 33) % size;
        let len = 1 + (seed >> 13) % 4000;
        let last = (first + len - 1).min(size - 1);
        let range = format!("bytes={first}-{last}");
        let part = send(
            server.addr,
            "GET",
            &format!("/{MOOV_AT_END}"),
            &[("Range", &range)],
        )
        .await;
        assert_eq!(part.status, 206, "{range}");
        assert_eq!(
            part.body,
            whole.body[first as usize..=last as usize],
            "{range}"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_serves_every_movie_as_stored() {
    let fixture = Fixture::new();
    let mut off = settings();
    off.faststart = Faststarts::new(FaststartSettings {
        enabled: false,
        ..FaststartSettings::default()
    });
    let source = Arc::new(DirSource::new(&fixture.root).unwrap());
    let server = TestServer::start_service(MediaService::new(source, off), default_local()).await;
    let whole = send(server.addr, "GET", &format!("/{MOOV_AT_END}"), &[]).await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, fixture.bytes(MOOV_AT_END));
    server.stop().await.unwrap();
}

/// A server over the S3 test server's bucket, with the moov-at-end fixture
/// at `movie.mp4`.
async fn s3_movie(recheck_after: Duration) -> (S3Server, TestServer, aws_sdk_s3::Client) {
    let fixture = Fixture::new();
    let s3 = S3Server::start().await;
    let movie = fixture.bytes(MOOV_AT_END);
    let s3_client = bucket_with(&s3, vec![("movie.mp4", "video/mp4", movie)]).await;
    let mut with = settings();
    with.faststart = Faststarts::new(FaststartSettings {
        recheck_after,
        ..FaststartSettings::default()
    });
    let source = Arc::new(S3Source::new(s3_client.clone(), BUCKET, "", None));
    let server = TestServer::start_service(MediaService::new(source, with), default_local()).await;
    (s3, server, s3_client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_s3_a_faststart_range_after_the_first_costs_one_request() {
    let (s3, server, _client) = s3_movie(Duration::from_secs(60)).await;
    let range = [("Range", "bytes=5000-5999")];

    let before = s3.requests().len();
    let first = send(server.addr, "GET", "/movie.mp4", &range).await;
    assert_eq!(first.status, 206);
    let cold = s3.requests()[before..].to_vec();
    println!("S3 requests of the first range: {cold:?}");
    // Described, the first 64 KiB read for the box headers (here the whole
    // file, so every header), moov read, then the range itself.
    assert_eq!(cold.len(), 4, "{cold:?}");
    assert!(cold[0].starts_with("HEAD /"), "{cold:?}");

    for _ in 0..3 {
        let before = s3.requests().len();
        let again = send(server.addr, "GET", "/movie.mp4", &range).await;
        assert_eq!(again.status, 206);
        assert_eq!(again.body, first.body);
        assert_eq!(again.header("etag"), first.header("etag"));
        let warm = s3.requests()[before..].to_vec();
        assert_eq!(warm.len(), 1, "{warm:?}");
        assert!(warm[0].starts_with("GET /"), "{warm:?}");
    }
    server.stop().await.unwrap();
    s3.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_s3_a_changed_movie_is_read_anew() {
    let (s3, server, s3_client) = s3_movie(Duration::ZERO).await;
    let first = send(server.addr, "GET", "/movie.mp4", &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        top_level_kinds(&first.body),
        ["ftyp", "free", "moov", "mdat"]
    );

    // Replaced by a movie already faststart: served as stored now, with the
    // stored ETag.
    let fixture = Fixture::new();
    let replaced = s3_client
        .put_object()
        .bucket(BUCKET)
        .key("movie.mp4")
        .body(ByteStream::from(fixture.bytes(FASTSTART)))
        .send()
        .await
        .unwrap();
    let second = send(server.addr, "GET", "/movie.mp4", &[]).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.body, fixture.bytes(FASTSTART));
    assert_eq!(second.header("etag"), replaced.e_tag());
    server.stop().await.unwrap();
    s3.stop().await;
}

/// Runs ffmpeg with `args` in `dir`, failing loudly when it is missing.
pub fn ffmpeg(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg is needed (Debian package ffmpeg; scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// ffmpeg's picture at `seconds` (the first frame at or after it), as RGB.
fn ffmpeg_frame(dir: &Path, file: &str, seconds: f64) -> Vec<u8> {
    let at = format!("{seconds}");
    ffmpeg(
        dir,
        &[
            "-ss",
            &at,
            "-i",
            file,
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
    )
}

/// Mean absolute difference per channel, 0 to 255.
fn mean_difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.len() as f64
}

/// Frames are the pictures ffmpeg shows at the same times: within a mean
/// difference of 2 per channel (YUV to RGB conversions differ slightly; a
/// neighbouring frame of this moving test pattern differs by far more),
/// across keyframes, P- and B-frames of a High-profile stream with B-frames
/// and its moov at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_are_the_pictures_ffmpeg_shows() {
    const THRESHOLD: f64 = 2.0;
    let media = tempfile::tempdir().unwrap();
    ffmpeg(
        media.path(),
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=duration=4:size=320x240:rate=25",
            "-c:v",
            "libx264",
            "-profile:v",
            "high",
            "-g",
            "25",
            "-bf",
            "3",
            "-pix_fmt",
            "yuv420p",
            "movie.mp4",
        ],
    );
    let server = TestServer::start(media.path(), default_local()).await;
    // At frame times (25 per second): a keyframe, a P- or B-frame after it,
    // and frames late in a group.
    for seconds in [0.0, 1.0, 1.52, 2.2, 3.96] {
        let target = format!("/movie.mp4?frame={seconds}&fmt=png");
        let answer = send(server.addr, "GET", &target, &[]).await;
        assert_eq!(
            answer.status,
            200,
            "{target}: {:?}",
            String::from_utf8_lossy(&answer.body)
        );
        let ours = image::load_from_memory(&answer.body).unwrap().to_rgb8();
        assert_eq!(ours.dimensions(), (320, 240), "{target}");
        let theirs = ffmpeg_frame(media.path(), "movie.mp4", seconds);
        let difference = mean_difference(ours.as_raw(), &theirs);
        println!("frame={seconds}: mean difference {difference:.3}");
        assert!(difference <= THRESHOLD, "{target}: {difference}");
        if seconds < 3.9 {
            let next = ffmpeg_frame(media.path(), "movie.mp4", seconds + 0.04);
            let to_next = mean_difference(ours.as_raw(), &next);
            assert!(
                to_next > difference,
                "{target}: the next frame is as close ({to_next})"
            );
        }
    }
    server.stop().await.unwrap();
}

/// What is read for one frame of a longer movie: box headers, moov and the
/// samples from the keyframe before the time, a small part of the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_reads_a_small_part_of_the_movie() {
    let media = tempfile::tempdir().unwrap();
    ffmpeg(
        media.path(),
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=duration=30:size=640x360:rate=25",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "50",
            "-pix_fmt",
            "yuv420p",
            "long.mp4",
        ],
    );
    let size = std::fs::metadata(media.path().join("long.mp4"))
        .unwrap()
        .len();
    let service_settings = settings();
    let renderer = Arc::clone(&service_settings.images);
    let source = Arc::new(DirSource::new(media.path()).unwrap());
    let server =
        TestServer::start_service(MediaService::new(source, service_settings), default_local())
            .await;
    let answer = send(
        server.addr,
        "GET",
        "/long.mp4?frame=20.5&w=128&fmt=jpeg",
        &[],
    )
    .await;
    assert_eq!(answer.status, 200);
    let picture = image::load_from_memory(&answer.body).unwrap();
    assert_eq!((picture.width(), picture.height()), (128, 72));
    let read = renderer.source_bytes_read();
    println!("read {read} of {size} bytes for one frame");
    assert!(read > 0 && read * 10 < size, "read {read} of {size}");
    server.stop().await.unwrap();
}

/// A frame that needs more samples decoded than MEDIA_FRAME_MAX_SAMPLES (a
/// picture late in a long keyframe interval) is a 422 naming the cap, and
/// reads no sample; one within it is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_past_the_samples_cap_is_a_422_naming_it() {
    let media = tempfile::tempdir().unwrap();
    ffmpeg(
        media.path(),
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=duration=4:size=160x120:rate=25",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "1000",
            "-pix_fmt",
            "yuv420p",
            "one-gop.mp4",
        ],
    );
    let mut service_settings = settings();
    service_settings.images = Renderer::new(ImageSettings {
        frame_max_samples: 50,
        ..ImageSettings::default()
    });
    let source = Arc::new(DirSource::new(media.path()).unwrap());
    let server =
        TestServer::start_service(MediaService::new(source, service_settings), default_local())
            .await;
    let early = send(server.addr, "GET", "/one-gop.mp4?frame=1&w=64", &[]).await;
    assert_eq!(early.status, 200);
    let late = send(server.addr, "GET", "/one-gop.mp4?frame=3.5&w=64", &[]).await;
    assert_eq!(
        (late.status, String::from_utf8_lossy(&late.body).trim_end()),
        (
            422,
            "422 Unprocessable Entity: the picture at frame=3.5 is decoded from 88 samples (from the keyframe before it); \
             the most decoded for a frame is 50 (MEDIA_FRAME_MAX_SAMPLES)"
        )
    );
    server.stop().await.unwrap();
}

/// Movies frames are not taken from: another video codec (415, named), no
/// video at all (415).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_of_other_codecs_are_refused_by_name() {
    let media = tempfile::tempdir().unwrap();
    let src = [
        "-f",
        "lavfi",
        "-i",
        "testsrc2=duration=1:size=160x120:rate=10",
    ];
    ffmpeg(
        media.path(),
        &[&src[..], &["-c:v", "mpeg4", "mpeg4.mp4"]].concat(),
    );
    ffmpeg(
        media.path(),
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-c:a",
            "aac",
            "audio.mp4",
        ],
    );
    let server = TestServer::start(media.path(), default_local()).await;
    for (target, status, reason) in [
        (
            "/mpeg4.mp4?frame=0.5",
            415,
            "415 Unsupported Media Type: the video codec is mp4v; frames are taken from H.264 (avc1) only",
        ),
        (
            "/audio.mp4?frame=0.5",
            415,
            "415 Unsupported Media Type: the movie has no video track",
        ),
    ] {
        let answer = send(server.addr, "GET", target, &[]).await;
        assert_eq!(answer.status, status, "{target}");
        assert_eq!(String::from_utf8_lossy(&answer.body).trim_end(), reason, "{target}");
    }
    server.stop().await.unwrap();
}

/// With a derived store, a movie's layout is kept there: a new process (a
/// new cache) serves the faststart answer without reading the movie's box
/// headers or moov again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_derived_store_keeps_the_layout_for_new_processes() {
    use media_streamer::derivative::store::DerivedStore;
    let fixture = Fixture::new();
    let kept = tempfile::tempdir().unwrap();
    let start = || async {
        let faststarts = Faststarts::new(FaststartSettings {
            store: Some(DerivedStore::Dir(kept.path().to_owned())),
            ..FaststartSettings::default()
        });
        let mut with = settings();
        with.faststart = Arc::clone(&faststarts);
        let source = Arc::new(DirSource::new(&fixture.root).unwrap());
        let server =
            TestServer::start_service(MediaService::new(source, with), default_local()).await;
        (server, faststarts)
    };
    let target = format!("/{MOOV_AT_END}");

    let (first_server, first) = start().await;
    let answer = send(first_server.addr, "GET", &target, &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(first.analyses(), 1);
    let layout = kept
        .path()
        .join(MOOV_AT_END)
        .join(format!("index,e={}", media_streamer::movie::INDEX_VERSION));
    for _ in 0..100 {
        if layout.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(layout.exists(), "no layout kept at {}", layout.display());
    first_server.stop().await.unwrap();

    let (second_server, second) = start().await;
    let again = send(second_server.addr, "GET", &target, &[]).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, answer.body);
    assert_eq!(again.header("etag"), answer.header("etag"));
    assert_eq!(second.analyses(), 0, "read from the store, not the movie");
    second_server.stop().await.unwrap();
}

/// One movie index per stored version, shared by faststart and frames: a
/// burst of first requests for the faststart answer and for frames reads the
/// movie's box headers and `moov` once. Frames are named by the picture they
/// show: times that show one picture (the fixture has one every 0.1 s) are
/// one derivative, with one ETag and one render.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_index_per_movie_and_frames_named_by_the_picture_they_show() {
    use media_streamer::movie::{MovieIndex, MovieIndexSettings};
    let fixture = Fixture::new();
    let movies = MovieIndex::new(MovieIndexSettings::default());
    let mut with = settings();
    with.faststart = Faststarts::with_movies(FaststartSettings::default(), Arc::clone(&movies));
    let images = ImageSettings {
        workers: 2,
        ..ImageSettings::default()
    };
    let renderer = Renderer::with_movies(images, Arc::clone(&movies));
    with.images = Arc::clone(&renderer);
    let source = Arc::new(DirSource::new(&fixture.root).unwrap());
    let server = TestServer::start_service(MediaService::new(source, with), default_local()).await;

    // The picture at 1.2 s is shown until 1.3 s.
    let same_picture = ["1.2", "1.25", "1.299", "1.2", "1.25", "1.299"];
    let mut targets: Vec<String> = same_picture
        .iter()
        .map(|t| format!("/{MOOV_AT_END}?frame={t}&w=64&fmt=jpeg"))
        .collect();
    targets.extend((0..6).map(|_| format!("/{MOOV_AT_END}")));
    let answers = futures_util::future::join_all(
        targets
            .iter()
            .map(|target| send(server.addr, "GET", target, &[])),
    )
    .await;
    for (target, answer) in targets.iter().zip(&answers) {
        assert_eq!(answer.status, 200, "{target}");
    }
    assert_eq!(movies.made(), 1, "the box headers and moov read once");
    let frames = &answers[..same_picture.len()];
    for answer in frames {
        assert_eq!(answer.header("etag"), frames[0].header("etag"));
        assert_eq!(answer.body, frames[0].body);
    }
    assert_eq!(renderer.renders(), 1, "one picture, one render");
    let faststart = &answers[same_picture.len()..];
    assert_eq!(
        top_level_kinds(&faststart[0].body),
        ["ftyp", "free", "moov", "mdat"]
    );

    // The next picture is another derivative; a time past the end is refused
    // from the index, with nothing rendered.
    let next = send(
        server.addr,
        "GET",
        &format!("/{MOOV_AT_END}?frame=1.3&w=64&fmt=jpeg"),
        &[],
    )
    .await;
    assert_eq!(next.status, 200);
    assert_ne!(next.header("etag"), frames[0].header("etag"));
    let past = send(server.addr, "GET", &format!("/{MOOV_AT_END}?frame=3"), &[]).await;
    assert_eq!(past.status, 422);
    assert_eq!(renderer.renders(), 2);
    assert_eq!(movies.made(), 1);
    server.stop().await.unwrap();
}
