//! `media-loadtest smoke` against the local server, through the Lambda
//! emulator, over the S3 source, and against proxies that get ranges wrong
//! on purpose: every row passes where the server is right, and exactly the
//! rows a wrong server breaks fail.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use media_streamer::cors::CorsPolicy;
use media_streamer::service::{MediaService, ServiceSettings};
use media_streamer::signing::SigningKeys;
use media_streamer::source::s3::S3Source;
use tokio::net::TcpListener;
use tokio::process::Command;

use crate::binary::Running;
use crate::fixture::{default_local, pattern, settings, TestServer};
use crate::lambda::Emulated;
use crate::loadtest::loadtest_bin;
use crate::s3::{bucket_with, S3Server, BUCKET};

const SECRET: &str = "the-smoke-test-secret-of-thirty-two-bytes";
const ORIGIN: &str = "https://example.com";
/// A movie past Lambda's 6 MB burst, so that the row past 6 MiB runs.
const BIG: &str = "big.mp4";
const BIG_LEN: usize = 7 * 1024 * 1024 + 12_345;
const IMAGE: &str = "test-pattern.jpg";
/// The sample image is 640x360: the derivative 64 px wide is 64x36.
const IMAGE_64: &str = "200 image/webp, 64x36, ";

/// The rows of every run, in order.
const OBJECT_ROWS: [&str; 13] = [
    "head",
    "range 0-1",
    "open range 0-",
    "suffix range",
    "multi-range",
    "if-none-match",
    "if-range mismatch",
    "unsatisfiable range",
    "streaming",
    "past 6 MiB",
    "content-type",
    "etag",
    "accept-ranges",
];
const IMAGE_ROWS: [&str; 2] = ["image webp width", "image fmt=auto vary"];
const CORS_ROWS: [&str; 2] = ["cors preflight", "cors get"];
const SIGNING_ROWS: [&str; 3] = ["signed link", "unsigned link", "tampered signature"];

/// One row of the table: its result word and detail.
type Rows = BTreeMap<String, (String, String)>;

/// Runs `media-loadtest smoke` with `args`: the exit code, the rows in the
/// order printed, and the rows by name.
/// `media-loadtest smoke` on `object` of the server at `addr` with every
/// option the server supports: the image, CORS from ORIGIN, links signed
/// with SECRET.
async fn smoke_everything(addr: std::net::SocketAddr, object: &str) -> (i32, Vec<String>, Rows) {
    smoke(&[
        &format!("http://{addr}/{object}"),
        "--image",
        &format!("http://{addr}/{IMAGE}"),
        "--origin",
        ORIGIN,
        "--signing-secret",
        SECRET,
    ])
    .await
}

async fn smoke(args: &[&str]) -> (i32, Vec<String>, Rows) {
    let output = Command::new(loadtest_bin())
        .arg("smoke")
        .args(args)
        .output()
        .await
        .expect("run media-loadtest smoke");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("smoke {args:?}:\n{stdout}");
    let mut order = Vec::new();
    let mut rows = Rows::new();
    for line in stdout.lines().skip(2).take_while(|l| !l.is_empty()) {
        let mut cells = line.splitn(3, " | ");
        let (Some(name), Some(result), Some(detail)) = (cells.next(), cells.next(), cells.next())
        else {
            panic!("not a row: {line:?}\n{stdout}");
        };
        order.push(name.trim().to_owned());
        rows.insert(
            name.trim().to_owned(),
            (result.trim().to_owned(), detail.to_owned()),
        );
    }
    let code = output.status.code().expect("exit code");
    (code, order, rows)
}

/// Asserts the run printed exactly `expected` rows, in order, each `pass`
/// unless `skipped` names it.
fn assert_rows(order: &[String], rows: &Rows, expected: &[&str], skipped: &[&str]) {
    assert_eq!(order, expected, "{rows:#?}");
    for name in expected {
        let want = if skipped.contains(name) {
            "skip"
        } else {
            "pass"
        };
        assert_eq!(rows[*name].0, want, "{name}: {:?}", rows[*name]);
    }
}

/// The row past 6 MiB for the big movie: its last 7 MiB arrived whole, and
/// the bytes past 6 MiB equal a separate read of them.
fn past_burst_detail() -> String {
    let first = BIG_LEN - 7 * 1024 * 1024;
    let past = first + 6 * 1024 * 1024;
    format!(
        "bytes={first}-{last}: 206 bytes {first}-{last}/{BIG_LEN}, 7340032 bytes; past 6 MiB equal to bytes={past}-{past_end}",
        last = BIG_LEN - 1,
        past_end = past + 65_535,
    )
}

/// The row past 6 MiB: the bytes as `past_burst_detail` says, then the
/// timing, `; S s to the last byte, R MB/s after the first`.
fn assert_past_burst(detail: &str) {
    let timing = detail
        .strip_prefix(&past_burst_detail())
        .unwrap_or_else(|| panic!("{detail}"));
    let rest = timing
        .strip_prefix("; ")
        .unwrap_or_else(|| panic!("{detail}"));
    let (secs, rate) = rest
        .split_once(" s to the last byte, ")
        .unwrap_or_else(|| panic!("{detail}"));
    let rate = rate
        .strip_suffix(" MB/s after the first")
        .unwrap_or_else(|| panic!("{detail}"));
    assert!(secs.parse::<f64>().unwrap() > 0.0, "{detail}");
    assert!(rate.parse::<f64>().unwrap() > 0.0, "{detail}");
}

fn detail<'a>(rows: &'a Rows, name: &str) -> &'a str {
    &rows[name].1
}

/// The big movie and the sample image, in a directory of their own.
fn media_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(BIG), pattern(BIG_LEN, 3)).unwrap();
    std::fs::copy(sample(IMAGE), dir.path().join(IMAGE)).unwrap();
    dir
}

fn sample(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample-media")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_passes_against_the_local_server() {
    let _timed = crate::MEASURE.lock().await;
    let dir = media_dir();
    let server = Running::start(
        dir.path(),
        &[
            ("MEDIA_SIGNING_SECRET", SECRET),
            ("MEDIA_CORS_ALLOW_ORIGIN", ORIGIN),
        ],
    )
    .await;
    let (code, order, rows) = smoke_everything(server.addr, BIG).await;
    let expected: Vec<&str> = [&OBJECT_ROWS[..], &IMAGE_ROWS, &CORS_ROWS, &SIGNING_ROWS].concat();
    assert_rows(&order, &rows, &expected, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        detail(&rows, "range 0-1"),
        format!("206 bytes 0-1/{BIG_LEN}, 2 bytes")
    );
    // The server's default cap on open ranges: 5 MiB.
    assert_eq!(
        detail(&rows, "open range 0-"),
        format!("206 bytes 0-5242879/{BIG_LEN} (capped: legal, RFC 9110 §15.3.7), 5242880 bytes")
    );
    assert_eq!(
        detail(&rows, "unsatisfiable range"),
        format!("416, Content-Range bytes */{BIG_LEN}")
    );
    assert_past_burst(detail(&rows, "past 6 MiB"));
    assert!(
        detail(&rows, "image webp width").starts_with(IMAGE_64),
        "{rows:?}"
    );
    assert_eq!(
        detail(&rows, "cors get"),
        format!("206, origin {ORIGIN}, exposes content-range, accept-ranges, content-length, etag, last-modified")
    );
    assert_eq!(
        detail(&rows, "unsigned link"),
        "403 \"403 Forbidden: this link needs a signature\" for an unsigned link"
    );
}

/// Through `cargo lambda watch`. No --origin: on Lambda the Function URL's
/// CORS configuration answers, which the emulator does not reproduce (it
/// answers preflights itself and exposes no fields).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_passes_through_the_lambda_emulator() {
    let _timed = crate::MEASURE.lock().await;
    let dir = media_dir();
    let emulated =
        Emulated::start_with(dir.path(), &[("MEDIA_SIGNING_SECRET", SECRET.to_owned())]).await;
    let (code, order, rows) = smoke(&[
        &format!("http://{}/{BIG}", emulated.addr),
        "--image",
        &format!("http://{}/{IMAGE}", emulated.addr),
        "--signing-secret",
        SECRET,
    ])
    .await;
    let expected: Vec<&str> = [&OBJECT_ROWS[..], &IMAGE_ROWS, &SIGNING_ROWS].concat();
    assert_rows(&order, &rows, &expected, &[]);
    assert_eq!(code, 0);
    // The emulator's function caps open ranges at the tests' 4 KiB.
    assert_eq!(
        detail(&rows, "open range 0-"),
        format!("206 bytes 0-4095/{BIG_LEN} (capped: legal, RFC 9110 §15.3.7), 4096 bytes")
    );
    assert_past_burst(detail(&rows, "past 6 MiB"));
    assert!(
        detail(&rows, "image webp width").starts_with(IMAGE_64),
        "{rows:?}"
    );
}

/// Over the S3 source (moto), with an object smaller than 6 MiB: the row
/// past 6 MiB is a skip that says why, and the run still passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_passes_over_s3_and_a_small_object_skips_the_6_mib_row() {
    let _timed = crate::MEASURE.lock().await;
    const SMALL: usize = 300_000;
    let s3 = S3Server::start().await;
    let client = bucket_with(
        &s3,
        vec![
            (BIG, "video/mp4", pattern(BIG_LEN, 3)),
            ("clip.mp4", "video/mp4", pattern(SMALL, 9)),
            (IMAGE, "image/jpeg", std::fs::read(sample(IMAGE)).unwrap()),
        ],
    )
    .await;
    let source = S3Source::new(client, BUCKET, "", None);
    let service = MediaService::new(
        Arc::new(source),
        ServiceSettings {
            cors: CorsPolicy::parse(ORIGIN),
            signing: Some(SigningKeys::single(SECRET, 30).unwrap()),
            ..settings()
        },
    );
    let server = TestServer::start_service(service, default_local()).await;
    let expected: Vec<&str> = [&OBJECT_ROWS[..], &IMAGE_ROWS, &CORS_ROWS, &SIGNING_ROWS].concat();
    // The big movie: every row passes, the one past 6 MiB included.
    let (code, order, rows) = smoke_everything(server.addr, BIG).await;
    assert_rows(&order, &rows, &expected, &[]);
    assert_eq!(code, 0);
    assert_past_burst(detail(&rows, "past 6 MiB"));
    // A small object: the row past 6 MiB is a skip, and a skip is no failure.
    let (code, order, rows) = smoke_everything(server.addr, "clip.mp4").await;
    assert_rows(&order, &rows, &expected, &["past 6 MiB"]);
    assert_eq!(code, 0, "a skip is not a failure");
    assert_eq!(
        detail(&rows, "past 6 MiB"),
        "the object is 300000 bytes: no answer can pass 6 MiB (6291456 bytes)"
    );
    // S3's ETag, the same on every answer.
    assert!(
        detail(&rows, "etag").ends_with("\", strong, on all 8 answers"),
        "{rows:?}"
    );
    assert_eq!(
        detail(&rows, "suffix range"),
        "bytes=-65536: 206 bytes 234464-299999/300000, 65536 bytes, equal to bytes=234464-299999"
    );
    server.stop().await.unwrap();
}

/// What a proxy in front of the real server gets wrong.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Safari's probe `bytes=0-1` is sent on as `bytes=0-2`: three bytes.
    ProbeGetsThreeBytes,
    /// The Range field is dropped: every answer is a whole 200.
    IgnoresRange,
}

impl Fault {
    fn apply(self, headers: &mut http::HeaderMap) {
        match self {
            Fault::ProbeGetsThreeBytes => {
                let probe = headers.get(http::header::RANGE)
                    == Some(&HeaderValue::from_static("bytes=0-1"));
                if probe && !headers.contains_key(http::header::IF_RANGE) {
                    headers.insert(http::header::RANGE, HeaderValue::from_static("bytes=0-2"));
                }
            }
            Fault::IgnoresRange => {
                headers.remove(http::header::RANGE);
            }
        }
    }
}

/// A proxy on a loopback port that sends every request on to `upstream`
/// after `fault` changed it, and the answer back as it came.
async fn wrong_proxy(upstream: SocketAddr, fault: Fault) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let client = client.clone();
            let service = service_fn(move |request: Request<Incoming>| {
                let client = client.clone();
                async move {
                    let (mut parts, _) = request.into_parts();
                    fault.apply(&mut parts.headers);
                    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                    parts.uri = format!("http://{upstream}{target}").parse().unwrap();
                    let answer: Response<Incoming> = client
                        .request(Request::from_parts(parts, Empty::new()))
                        .await
                        .expect("the server behind the proxy answers");
                    Ok::<_, Infallible>(answer)
                }
            });
            tokio::spawn(async move {
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_gets_ranges_wrong_fails_exactly_those_rows() {
    let _timed = crate::MEASURE.lock().await;
    let dir = media_dir();
    let server = Running::start(dir.path(), &[]).await;
    let probe_failure =
        format!("expected Content-Range bytes 0-1/{BIG_LEN}, got \"bytes 0-2/{BIG_LEN}\"");
    // (fault, the rows that must fail, the detail of the first)
    let cases: [(Fault, &[&str], &str); 2] = [
        (Fault::ProbeGetsThreeBytes, &["range 0-1"], &probe_failure),
        (
            Fault::IgnoresRange,
            &[
                "range 0-1",
                "open range 0-",
                "suffix range",
                "multi-range",
                "unsatisfiable range",
                "streaming",
                "past 6 MiB",
            ],
            "expected 206, got 200",
        ),
    ];
    for (fault, failing, first_detail) in cases {
        let proxy = wrong_proxy(server.addr, fault).await;
        let (code, order, rows) = smoke(&[&format!("http://{proxy}/{BIG}")]).await;
        assert_eq!(order, OBJECT_ROWS, "{fault:?}");
        assert_eq!(code, 1, "{fault:?}: {rows:#?}");
        let failed: Vec<&str> = order
            .iter()
            .filter(|name| rows[*name].0 == "fail")
            .map(String::as_str)
            .collect();
        assert_eq!(failed, failing, "{fault:?}: {rows:#?}");
        assert!(
            order.iter().all(|name| rows[name].0 != "skip"),
            "{fault:?}: {rows:#?}"
        );
        assert_eq!(detail(&rows, failing[0]), first_detail, "{fault:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_without_a_usable_url() {
    for (args, message) in [
        (vec!["ftp://x/y.mp4"], "need an http:// or https:// URL"),
        (
            vec!["http://127.0.0.1:9/a.mp4?x=1", "--signing-secret", SECRET],
            "give the URL without a query",
        ),
        (
            vec![
                "http://127.0.0.1:9/a.mp4",
                "--image",
                "http://127.0.0.1:9/p.jpg?w=64",
            ],
            "--image: http://127.0.0.1:9/p.jpg?w=64: give the URL without a query",
        ),
        (
            vec!["http://127.0.0.1:9/a.mp4", "--signing-keys", "nocolon"],
            "--signing-keys takes ID:SECRET pairs",
        ),
    ] {
        let output = Command::new(loadtest_bin())
            .arg("smoke")
            .args(&args)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(
            output.stdout.is_empty(),
            "{args:?}: no table when it cannot start"
        );
    }
}
