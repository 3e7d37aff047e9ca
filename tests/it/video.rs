//! Movies served faststart, checked with ffmpeg (Debian's `ffmpeg` package,
//! which the test command installs): the faststart answer decodes to the same
//! frames and samples as the stored file, every range of it agrees with its
//! whole, and over S3 a range after the first costs one request.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use media_streamer::faststart::{FaststartSettings, Faststarts};
use media_streamer::mp4;
use media_streamer::service::MediaService;
use media_streamer::source::dir::DirSource;
use media_streamer::source::s3::S3Source;

use crate::client::send;
use crate::fixture::{default_local, settings, Fixture, TestServer};
use crate::s3::{client, S3Server, BUCKET};
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
    let s3_client = client(&s3.endpoint());
    s3_client
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    s3_client
        .put_object()
        .bucket(BUCKET)
        .key("movie.mp4")
        .body(ByteStream::from(fixture.bytes(MOOV_AT_END)))
        .send()
        .await
        .unwrap();
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
