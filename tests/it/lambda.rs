//! The binary as a Lambda function behind the runtime emulator of
//! `cargo lambda watch` (Function URL, response streaming): the whole table,
//! time to first byte, a failure in the middle of a body, and a client that
//! goes away.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::binary::{peak_rss_kib, PEAK_RSS_LIMIT_KIB};
use crate::client::{leave_mid_body, parse_response, read_across, send};
use crate::fixture::{
    free_port, truncate, Fixture, CACHE_CONTROL, CHUNK, INDEX_PAGE_SIZE, MAX_RANGES,
};
use crate::logs::JsonLog;
use crate::s3::{s3_env, s3_store, s3_with_fixture};
use crate::table::{self, Framing};

const MIB: u64 = 1024 * 1024;
/// Most bytes the function may read from the source after its client left:
/// what the pipes between them hold, not the rest of the object.
const MAX_READ_AFTER_DISCONNECT: u64 = 8 * MIB;

/// `cargo lambda watch` on a free loopback port, and the function connected
/// to it.
pub struct Emulated {
    _emulator: Child,
    function: Child,
    pub addr: SocketAddr,
    log: JsonLog,
}

/// The binary under test: `MEDIA_STREAMER_BIN` if set (to measure a release
/// build from the test harness), else the one Cargo built for the tests.
fn binary() -> String {
    std::env::var("MEDIA_STREAMER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_media-streamer").to_owned())
}

/// Starts `cargo lambda watch` on a free port and waits until it listens.
async fn start_emulator() -> (Child, SocketAddr) {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let emulator = Command::new("cargo")
        .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P"])
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("`cargo lambda` is needed for the Lambda tests: scripts/test.sh installs it into .venv/ (put .venv/bin on PATH)");
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(addr).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "cargo lambda watch did not listen on {addr}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (emulator, addr)
}

/// Starts the function against the emulator at `addr`, serving `dir`; `env`
/// adds settings or overrides these.
fn start_function(addr: SocketAddr, dir: &Path, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(binary());
    command
        .env("AWS_LAMBDA_RUNTIME_API", format!("http://{addr}/.rt"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
        .env("MEDIA_DIR", dir)
        .env("MEDIA_RANGE_CHUNK_BYTES", CHUNK.to_string())
        .env("MEDIA_MAX_RANGES", MAX_RANGES.to_string())
        .env("MEDIA_CACHE_CONTROL", CACHE_CONTROL)
        .env("MEDIA_INDEX", "on")
        .env("MEDIA_INDEX_PAGE_SIZE", INDEX_PAGE_SIZE.to_string());
    for (name, value) in env {
        command.env(name, value);
    }
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the function")
}

impl Emulated {
    pub async fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[]).await
    }

    pub async fn start_with(dir: &Path, env: &[(&str, String)]) -> Self {
        let emulated = Self::launch(dir, env).await;
        emulated
            .wait_for(|l| l["message"] == "serving media through the Lambda runtime")
            .await;
        emulated
    }

    /// Starts the emulator and the function without waiting for the
    /// function's start-up line (which a log level above INFO hides); requests
    /// wait at the emulator until the function polls for them.
    pub async fn launch(dir: &Path, env: &[(&str, String)]) -> Self {
        let (emulator, addr) = start_emulator().await;
        let mut function = start_function(addr, dir, env);
        let log = JsonLog::follow(function.stdout.take().unwrap(), false);
        Emulated {
            _emulator: emulator,
            function,
            addr,
            log,
        }
    }

    /// The function's log lines so far that `keep`.
    pub fn log_lines(&self, keep: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
        self.log.lines(keep)
    }

    /// Whether the function's process is still the one started.
    fn is_running(&mut self) -> bool {
        matches!(self.function.try_wait(), Ok(None))
    }

    /// Waits (up to 20 s) for a log line of the function that `matches`.
    pub async fn wait_for(
        &self,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.log.wait_for(Duration::from_secs(20), matches).await
    }

    /// Replays the table through the emulated Function URL. The emulator
    /// answers OPTIONS itself (its CORS preflight), as a Function URL with a
    /// CORS configuration does, so those cases never reach the function.
    async fn run_table(&self, fixture: &Fixture, store: &table::Store<'_>) {
        let cases: Vec<_> = table::cases(fixture, store)
            .into_iter()
            .filter(|case| case.method != "OPTIONS")
            .collect();
        table::run(self.addr, &cases, Framing::Remapped).await;
    }
}

/// Sends a GET and returns the time to the first body byte, reading the whole
/// body and checking its length.
async fn time_to_first_byte(
    addr: SocketAddr,
    target: &str,
    range: &str,
    expected_len: u64,
) -> Duration {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nRange: {range}\r\nConnection: close\r\n\r\n");
    let started = Instant::now();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut first_byte = None;
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if first_byte.is_none() {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                // The first chunk-size line and at least one data byte.
                let body = &raw[end + 4..];
                if let Some(line) = body.windows(2).position(|w| w == b"\r\n") {
                    if body.len() > line + 2 {
                        first_byte = Some(started.elapsed());
                    }
                }
            }
        }
    }
    let response = parse_response(&raw, false).unwrap();
    assert_eq!(response.status, 206);
    assert!(response.complete);
    assert_eq!(response.body.len() as u64, expected_len);
    first_byte.expect("a body byte")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_whole_table_through_the_emulator() {
    let fixture = Fixture::new();
    let emulated = Emulated::start(&fixture.root).await;
    emulated
        .run_table(&fixture, &table::Store::directory(&fixture))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_whole_table_from_s3_through_the_emulator() {
    let fixture = Fixture::new();
    let (s3, _client, validators) = s3_with_fixture(&fixture).await;
    let store = s3_store(&validators);
    let emulated = Emulated::start_with(&fixture.root, &s3_env(&s3)).await;
    emulated.run_table(&fixture, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_byte_does_not_wait_for_the_object() {
    let _serial = crate::MEASURE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::create(dir.path().join("big.mp4")).unwrap();
    file.set_len(100 * MIB).unwrap();
    drop(file);
    let emulated = Emulated::start(dir.path()).await;
    let (mut small, mut large) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        small.push(time_to_first_byte(emulated.addr, "/big.mp4", "bytes=0-1023", 1024).await);
        let last = 100 * MIB - 1;
        large.push(
            time_to_first_byte(
                emulated.addr,
                "/big.mp4",
                &format!("bytes=0-{last}"),
                100 * MIB,
            )
            .await,
        );
    }
    let peak = peak_rss_kib(emulated.function.id().unwrap());
    println!("peak RSS of the function after streaming 5 x 100 MiB: {peak} KiB");
    assert!(peak < PEAK_RSS_LIMIT_KIB, "peak RSS {peak} KiB");
    let (small, large) = (median(small), median(large));
    println!("time to first byte through the emulator, median of 5: 1 KiB range {small:?}, 100 MiB range {large:?}");
    assert!(large <= small * 2, "100 MiB: {large:?}, 1 KiB: {small:?}");
    // With Nagle's algorithm on the Runtime API connection, the receiver's
    // delayed ACK held a small response's first byte for about 40 ms
    // (src/transport/lambda/nodelay.rs).
    assert!(small < Duration::from_millis(30), "1 KiB: {small:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_mid_body_leaves_the_response_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.webm");
    std::fs::write(&path, vec![1u8; (64 * MIB) as usize]).unwrap();
    let mut emulated = Emulated::start(dir.path()).await;
    let last = 64 * MIB - 1;
    let request = format!(
        "GET /big.webm HTTP/1.1\r\nHost: x\r\nRange: bytes=0-{last}\r\nConnection: close\r\n\r\n"
    );
    // The file loses its bytes while the response is under way: reads past the
    // new end fail.
    let response = read_across(emulated.addr, &request, truncate(&path)).await;
    assert_eq!(response.status, 206);
    assert!(
        !response.complete,
        "a failed read must not look like a complete response"
    );
    assert!((response.body.len() as u64) < 64 * MIB);
    assert!(
        response.body.iter().all(|&b| b == 1),
        "only media bytes in the body"
    );
    let status = tokio::time::timeout(Duration::from_secs(10), emulated.function.wait())
        .await
        .expect("the function ended the response")
        .unwrap();
    assert_eq!(
        status.code(),
        Some(media_streamer::transport::lambda::MID_BODY_FAILURE_EXIT_CODE)
    );
    emulated
        .wait_for(|l| l["level"] == "ERROR" && l["span"]["requestId"].is_string())
        .await;
    // The request's access line and metrics record are written before the
    // exit, with the failure.
    let access = emulated.wait_for(|l| l["target"] == "access").await;
    assert_ne!(access["error"], "-", "{access}");
    assert_eq!(access["client_gone"], false);
    let record = emulated.wait_for(|l| l.get("_aws").is_some()).await;
    assert_eq!(record["SourceErrors"], 1, "{record}");
    assert_eq!(record["ClientGone"], 0, "{record}");
    assert_eq!(record["BytesSent"], access["bytes_sent"], "{record}");
    assert!(record["BytesSent"].as_u64().unwrap() >= response.body.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_reading_when_the_client_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::create(dir.path().join("big.mp4")).unwrap();
    file.set_len(100 * MIB).unwrap();
    drop(file);
    let mut emulated = Emulated::start(dir.path()).await;
    let received = leave_mid_body(emulated.addr, "/big.mp4", 100 * MIB, MIB).await;
    let line = emulated
        .wait_for(|l| l["target"] == "access" && l["client_gone"] == true)
        .await;
    let read = line["bytes_sent"].as_u64().unwrap();
    let after = read.saturating_sub(received);
    println!("client read {received} bytes and left; the function read {read} bytes from the source, {after} after the client left");
    assert!(
        after <= MAX_READ_AFTER_DISCONNECT,
        "read {after} bytes after the client left"
    );
    assert_eq!(line["span"]["requestId"].as_str().map(str::len), Some(36));

    // The same process answers the next request: a client that leaves costs
    // no new execution environment.
    for _ in 0..3 {
        let response = send(emulated.addr, "GET", "/big.mp4", &[("Range", "bytes=0-9")]).await;
        assert_eq!(response.status, 206);
        assert_eq!(response.body, vec![0u8; 10]);
    }
    assert!(
        emulated.is_running(),
        "the function exited after the client left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_start_to_first_byte() {
    let _serial = crate::MEASURE.lock().await;
    let fixture = Fixture::new();
    let (_emulator, addr) = start_emulator().await;
    let mut runs = Vec::new();
    for _ in 0..5 {
        // The request waits at the emulator; the clock starts when the
        // function's process is started and stops at the first body byte.
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /bytes.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let mut function = start_function(addr, &fixture.root, &[]);
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        let elapsed = loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed before the body: {:?}",
                String::from_utf8_lossy(&raw)
            );
            raw.extend_from_slice(&buf[..n]);
            let response = parse_response(&raw, false);
            if response.is_some_and(|r| !r.body.is_empty()) {
                break started.elapsed();
            }
        };
        stream.read_to_end(&mut raw).await.unwrap();
        let response = parse_response(&raw, false).unwrap();
        assert_eq!(
            (response.status, response.body.as_slice()),
            (206, &fixture.bytes("bytes.bin")[..2])
        );
        function.kill().await.unwrap();
        runs.push(elapsed);
    }
    let cold = median(runs.clone());
    println!("cold start (process start to first body byte) of {}, median of 5: {cold:?} (all: {runs:?})", binary());
    assert!(cold < Duration::from_secs(2), "cold start {cold:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_no_cors_fields_of_its_own_on_lambda() {
    let fixture = Fixture::new();
    let env = [("MEDIA_CORS_ALLOW_ORIGIN", "*".to_owned())];
    let emulated = Emulated::start_with(&fixture.root, &env).await;
    emulated
        .wait_for(|l| {
            l["level"] == "WARN"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("MEDIA_CORS_ALLOW_ORIGIN"))
        })
        .await;
    let response = crate::client::send(
        emulated.addr,
        "GET",
        "/bytes.bin",
        &[("Origin", "https://page.example"), ("Range", "bytes=0-1")],
    )
    .await;
    assert_eq!(response.status, 206);
    // Whatever the Function URL adds, the function added nothing: our exposed
    // list never appears, and no CORS field comes twice (`header` checks).
    assert_ne!(
        response.header("access-control-expose-headers"),
        Some(media_streamer::cors::EXPOSED)
    );
    assert_ne!(response.header("access-control-allow-origin"), Some("*"));
}
