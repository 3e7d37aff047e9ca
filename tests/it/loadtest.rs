//! media-loadtest against the real server, against a server holding other
//! bytes, and against a small server that gets one thing wrong on purpose.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;

use crate::binary::Running;
use crate::fixture::pattern;
use crate::lambda::Emulated;

/// The media-loadtest binary: `MEDIA_LOADTEST_BIN` if set, else built once
/// per test run by the cargo running the tests (`cargo build -p
/// media-loadtest`, in the tests' profile), which makes it fresh however the
/// tests were started. It is another package of the workspace, so cargo does
/// not hand its path to these tests as it does the server's.
pub(crate) fn loadtest_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("MEDIA_LOADTEST_BIN") {
            return bin.into();
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let mut command = std::process::Command::new(&cargo);
        // Without what cargo set for this test (CARGO_MANIFEST_DIR, ...): build
        // scripts that watch those would make the build differ from the
        // workspace build, which would then rebuild in turn.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_MANIFEST_") {
                command.env_remove(&*name);
            }
        }
        command
            .args(["build", "-p", "media-loadtest", "--bin", "media-loadtest"])
            .arg("--message-format=json-render-diagnostics")
            .arg("--manifest-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
        if !cfg!(debug_assertions) {
            command.arg("--release");
        }
        let output = command.output().unwrap_or_else(|e| {
            panic!("could not run {cargo:?} to build media-loadtest ({e}); set MEDIA_LOADTEST_BIN")
        });
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "`cargo build -p media-loadtest` failed:\n{stderr}"
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|m| {
                m["reason"] == "compiler-artifact" && m["target"]["name"] == "media-loadtest"
            })
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .unwrap_or_else(|| panic!("cargo built no media-loadtest executable:\n{stderr}"))
    })
}

/// Runs media-loadtest with `args`; returns its exit code and JSON summary.
async fn loadtest(args: &[&str]) -> (i32, Value) {
    let output = Command::new(loadtest_bin())
        .args(args)
        .arg("--json")
        .output()
        .await
        .expect("run media-loadtest");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().expect("exit code"), summary)
}

/// A media file of `len` distinct bytes in a directory of its own.
fn media_dir(len: usize, seed: u8) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clip.mp4"), pattern(len, seed)).unwrap();
    dir
}

/// Waits until the server has logged `n` GETs (abandoned requests are logged
/// when the server notices the client left).
async fn logged_gets(server: &Running, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let gets = server
            .access_lines()
            .iter()
            .filter(|l| l["method"] == "GET")
            .count();
        if gets >= n || Instant::now() > deadline {
            return gets;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pattern_verifies_clean_and_the_server_logged_each_request() {
    let _serial = crate::MEASURE.lock().await;
    let dir = media_dir(3 << 20, 1);
    let file = dir.path().join("clip.mp4");
    let server = Running::start(dir.path(), &[("MEDIA_RANGE_CHUNK_BYTES", "65536")]).await;
    let url = format!("http://{}/clip.mp4", server.addr);
    let mut sent = 0;
    for (pattern, sizes) in [
        ("uniform", "1..256KiB"),
        ("browser", "64KiB..1MiB"),
        ("probe", "64KiB..1MiB"),
    ] {
        let (code, summary) = loadtest(&[
            &url,
            "--requests",
            "300",
            "--concurrency",
            "8",
            "--pattern",
            pattern,
            "--range-size",
            sizes,
            "--verify",
            file.to_str().unwrap(),
            "--seed",
            "1",
        ])
        .await;
        assert_eq!(code, 0, "{pattern}: {summary}");
        assert_eq!(summary["requests"], 300, "{pattern}");
        assert_eq!(summary["errors"], 0, "{pattern}: {summary}");
        assert_eq!(summary["integrity_failures"], 0, "{pattern}: {summary}");
        for key in ["rps", "bytes_per_sec", "latency_ms", "ttfb_ms"] {
            assert!(!summary[key].is_null(), "{pattern}: no {key}");
        }
        if pattern == "browser" {
            assert!(summary["abandoned"].as_u64().unwrap() > 0, "{summary}");
        }
        sent += 300;
        assert_eq!(logged_gets(&server, sent).await, sent, "{pattern}");
    }
    let heads = server
        .access_lines()
        .iter()
        .filter(|l| l["method"] == "HEAD")
        .count();
    assert_eq!(heads, 3);
    let statuses: Vec<_> = server
        .access_lines()
        .iter()
        .filter(|l| l["method"] == "GET" && l["status"] != 206)
        .cloned()
        .collect();
    assert!(statuses.is_empty(), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_bytes_at_the_same_path_fail_the_run() {
    let _serial = crate::MEASURE.lock().await;
    let served = media_dir(1 << 20, 1);
    let local = media_dir(1 << 20, 2);
    let server = Running::start(served.path(), &[]).await;
    let url = format!("http://{}/clip.mp4", server.addr);
    let local_file = local.path().join("clip.mp4");
    let (code, summary) = loadtest(&[
        &url,
        "--requests",
        "50",
        "--verify",
        local_file.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 1, "{summary}");
    assert_eq!(summary["integrity_failures"], 50, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(summary["passed"], false);
}

/// What the misbehaving server gets wrong.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Content-Range one byte off from what was asked (body to match).
    ShiftedRange,
    /// 200 with the whole object.
    WholeObject,
    /// A new ETag on every answer after the HEAD.
    ChangingEtag,
    /// Content-Length and Content-Range right, then fewer bytes and a close.
    ShortBody,
    /// Right heads; each answer's bytes differ from the last one's.
    ShiftingBytes,
    /// A 503 with a short text body saying why.
    Overloaded,
    /// Nothing: the control case.
    None,
}

/// What the `Overloaded` server says.
const OVERLOADED: &str = "503 overloaded, try later";

const SIZE: u64 = 200_000;

/// Serves one object of SIZE bytes at any path, getting `fault` wrong.
async fn misbehaving_server(fault: Fault) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let data = pattern(SIZE as usize, 5);
    tokio::spawn(async move {
        let mut answered = 0u64;
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            answered += 1_000_000;
            let data = data.clone();
            tokio::spawn(serve_connection(stream, fault, data, answered));
        }
    });
    addr
}

async fn serve_connection(mut stream: TcpStream, fault: Fault, data: Vec<u8>, mut counter: u64) {
    let mut buffer = Vec::new();
    loop {
        let Some(end) = read_head(&mut stream, &mut buffer).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buffer[..end]).to_string();
        buffer.drain(..end + 4);
        counter += 1;
        let is_head = head.starts_with("HEAD ");
        let range = head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("range")
                .then(|| value.trim().strip_prefix("bytes=").map(str::to_owned))?
        });
        let etag = match fault {
            Fault::ChangingEtag if !is_head => format!("\"v{counter}\""),
            _ => "\"v0\"".to_owned(),
        };
        let (status, first, last) = match (&range, is_head, fault) {
            (Some(spec), false, f) if !matches!(f, Fault::WholeObject) => {
                let (a, b) = spec.split_once('-').unwrap();
                let first: u64 = a.parse().unwrap();
                let last = b.parse().unwrap_or(first + 9_999).min(SIZE - 1);
                match f {
                    Fault::ShiftedRange if last + 1 < SIZE => (206, first + 1, last + 1),
                    Fault::ShiftedRange => (206, first - 1, last - 1),
                    _ => (206, first, last),
                }
            }
            _ => (200, 0, SIZE - 1),
        };
        if let (Fault::Overloaded, false) = (fault, is_head) {
            let response = format!(
                "HTTP/1.1 503 X\r\nContent-Length: {}\r\n\r\n{OVERLOADED}",
                OVERLOADED.len()
            );
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
            continue;
        }
        let len = last - first + 1;
        let mut response = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {len}\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\n"
        );
        if status == 206 {
            response.push_str(&format!("Content-Range: bytes {first}-{last}/{SIZE}\r\n"));
        }
        response.push_str("\r\n");
        let mut body = data[first as usize..=last as usize].to_vec();
        if let Fault::ShiftingBytes = fault {
            for byte in &mut body {
                *byte = byte.wrapping_add(counter as u8);
            }
        }
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
        if is_head {
            continue;
        }
        if let Fault::ShortBody = fault {
            let _ = stream.write_all(&body[..body.len() / 2]).await;
            return;
        }
        if stream.write_all(&body).await.is_err() {
            return;
        }
    }
}

/// Reads until a whole request head is in `buffer`; its end offset.
async fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(end);
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_wrong_answer_is_caught_and_named() {
    // (fault, pattern, the error kind every request must show, or none)
    let cases = [
        (Fault::None, "uniform", None),
        (Fault::ShiftedRange, "uniform", Some("content_range")),
        (Fault::WholeObject, "uniform", Some("status")),
        (Fault::Overloaded, "uniform", Some("status")),
        (Fault::ChangingEtag, "uniform", Some("etag")),
        (Fault::ShortBody, "uniform", Some("body_read")),
        (Fault::ShiftedRange, "browser", Some("content_range")),
    ];
    for (fault, pattern, kind) in cases {
        let addr = misbehaving_server(fault).await;
        let (code, summary) = loadtest(&[
            &format!("http://{addr}/x.mp4"),
            "--requests",
            "40",
            "--concurrency",
            "4",
            "--pattern",
            pattern,
            "--range-size",
            "1KiB..20KiB",
            "--seed",
            "3",
        ])
        .await;
        println!(
            "{fault:?} {pattern}: exit {code}, errors {}",
            summary["errors_by_kind"]
        );
        match kind {
            None => {
                assert_eq!(code, 0, "{fault:?}: {summary}");
                assert_eq!(summary["errors"], 0);
            }
            Some(kind) => {
                assert_eq!(code, 1, "{fault:?}: {summary}");
                assert_eq!(summary["errors_by_kind"][kind], 40, "{fault:?}: {summary}");
                assert_eq!(summary["errors"], 40, "{fault:?}: {summary}");
                if let Fault::Overloaded = fault {
                    let failure = summary["failures"][0].as_str().unwrap_or_default();
                    let quoted = format!("status 503, expected 206: {OVERLOADED:?}");
                    assert!(failure.ends_with(&quoted), "{failure}");
                }
            }
        }
    }
    // Bytes that differ between answers, with no local copy to compare:
    // overlapping answers disagree.
    let addr = misbehaving_server(Fault::ShiftingBytes).await;
    let (code, summary) = loadtest(&[
        &format!("http://{addr}/x.mp4"),
        "--requests",
        "200",
        "--range-size",
        "64KiB..128KiB",
    ])
    .await;
    assert_eq!(code, 1, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    assert!(
        summary["integrity_failures"].as_u64().unwrap() > 100,
        "{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_without_a_usable_object() {
    let dir = media_dir(1000, 1);
    std::fs::write(dir.path().join("empty.mp4"), b"").unwrap();
    let server = Running::start(dir.path(), &[]).await;
    let other = dir.path().join("clip.mp4");
    for (args, message) in [
        (
            vec![format!("http://{}/missing.mp4", server.addr)],
            "HEAD answered 404",
        ),
        (
            vec![format!("http://{}/empty.mp4", server.addr)],
            "the object is empty",
        ),
        (
            vec![
                format!("http://{}/clip.mp4", server.addr),
                "--verify".into(),
                Path::new("/nonexistent").display().to_string(),
            ],
            "/nonexistent",
        ),
        (
            vec![
                format!("http://{}/clip.mp4", server.addr),
                "--verify".into(),
                other.with_file_name("empty.mp4").display().to_string(),
            ],
            "not the same file",
        ),
        (vec!["ftp://x/y".into()], "need an http:// or https:// URL"),
    ] {
        let output = Command::new(loadtest_bin())
            .args(&args)
            .args(["--requests", "1"])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// A player drops responses mid-body at every seek. Through the emulator,
/// each dropped response closes the function's connection to the Runtime API,
/// and a response sent next on that connection is lost unless the function
/// sends it again: no request may go unanswered. The only errors allowed are
/// the emulator's own 500s when its reads split a response's prelude
/// (bench/emulator-split-prelude.py).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_seeks_through_the_emulator_leave_no_request_unanswered() {
    let _quiet = crate::MEASURE.lock().await;
    let dir = media_dir(2 * 1024 * 1024, 11);
    let file = dir.path().join("clip.mp4");
    let emulated = Emulated::start_with(
        dir.path(),
        &[("MEDIA_RANGE_CHUNK_BYTES", (1024 * 1024).to_string())],
    )
    .await;
    let (_, summary) = loadtest(&[
        &format!("http://{}/clip.mp4", emulated.addr),
        "--verify",
        file.to_str().unwrap(),
        "--pattern",
        "browser",
        "--requests",
        "3000",
        "--concurrency",
        "16",
        "--timeout",
        "5",
        "--seed",
        "11",
    ])
    .await;
    let redelivered = emulated.log_lines(|l| {
        l["message"] == "the response did not reach the Runtime API; sending it again"
    });
    println!(
        "{} requests, {} abandoned, errors {}, {} responses sent again",
        summary["requests"],
        summary["abandoned"],
        summary["errors_by_kind"],
        redelivered.len()
    );
    assert_eq!(summary["integrity_failures"], 0, "{summary}");
    assert!(
        summary["errors_by_kind"].get("timeout").is_none(),
        "requests went unanswered: {summary}"
    );
    let failures = summary["failures"].as_array().unwrap();
    assert!(
        failures.iter().all(|f| f
            .as_str()
            .unwrap_or_default()
            .contains("httpstatuses.com/500")),
        "errors other than the emulator's own 500s: {summary}"
    );
    assert!(
        summary["errors"].as_u64().unwrap() <= 3,
        "too many of the emulator's 500s: {summary}"
    );
    assert!(
        !redelivered.is_empty(),
        "no response needed sending again: the test did not reach its case"
    );
}
