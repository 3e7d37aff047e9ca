//! The real `media-streamer` binary as a user runs it: memory while streaming a
//! 1 GiB file, the access log, and shutdown on SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::client::send;
use crate::logs::JsonLog;

const GIB: u64 = 1024 * 1024 * 1024;
/// The bound on the server's peak resident memory while it streams.
pub const PEAK_RSS_LIMIT_KIB: u64 = 32 * 1024;

/// A running binary with its JSON log lines collected.
pub struct Running {
    child: Child,
    pub addr: SocketAddr,
    log: JsonLog,
}

impl Running {
    /// Starts `media-streamer serve` over `dir` on a free loopback port.
    pub async fn start(dir: &Path, extra: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_media-streamer"));
        command
            .args(["serve", "--addr", "127.0.0.1:0", "--dir"])
            .arg(dir)
            .env("MEDIA_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (name, value) in extra {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start media-streamer");
        let log = JsonLog::follow(child.stdout.take().unwrap(), true);
        let mut running = Running {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            log,
        };
        let ready = running
            .wait_for(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("serving media"))
            })
            .await;
        running.addr = ready["addr"].as_str().unwrap().parse().unwrap();
        running
    }

    /// Waits (up to 10 s) for a log line that `matches`.
    pub async fn wait_for(
        &self,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.log.wait_for(Duration::from_secs(10), matches).await
    }

    /// The access-log lines so far.
    pub fn access_lines(&self) -> Vec<serde_json::Value> {
        self.log.lines(|l| l["target"] == "access")
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    pub fn peak_rss_kib(&self) -> u64 {
        peak_rss_kib(self.pid())
    }
}

/// Peak resident set size so far (VmHWM) of process `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

fn sigterm(pid: u32) {
    // SAFETY: kill(2) on a child we started; no memory is touched.
    let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_gibibyte_in_bounded_memory() {
    let _serial = crate::MEASURE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mp4");
    {
        // Sparse except for marks at both ends, so the test makes it in no time.
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(GIB).unwrap();
        use std::os::unix::fs::FileExt;
        file.write_all_at(b"HEAD-MARK", 0).unwrap();
        file.write_all_at(b"TAIL-MARK", GIB - 9).unwrap();
    }
    let server = Running::start(dir.path(), &[]).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /big.mp4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains(&format!("content-length: {GIB}\r\n")),
        "{head}"
    );
    let mut total = 0u64;
    let mut first = Vec::new();
    let mut last = [0u8; 9];
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        if first.len() < 9 {
            first.extend_from_slice(&buf[..n.min(9 - first.len())]);
        }
        // Keep the last 9 bytes seen.
        let tail: Vec<u8> = last
            .iter()
            .copied()
            .chain(buf[..n].iter().copied())
            .collect();
        last.copy_from_slice(&tail[tail.len() - 9..]);
        total += n as u64;
    }
    assert_eq!(total, GIB);
    assert_eq!(&first, b"HEAD-MARK");
    assert_eq!(&last, b"TAIL-MARK");
    let peak = server.peak_rss_kib();
    println!("peak RSS of media-streamer while streaming 1 GiB: {peak} KiB");
    assert!(peak < PEAK_RSS_LIMIT_KIB, "peak RSS {peak} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_one_line_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let size = 64 * 1024 * 1024;
    std::fs::write(dir.path().join("clip.webm"), vec![7u8; size]).unwrap();
    let server = Running::start(dir.path(), &[]).await;

    let response = send(server.addr, "GET", "/clip.webm", &[("Range", "bytes=0-1")]).await;
    assert_eq!(response.status, 206);
    let line = server.wait_for(|l| l["target"] == "access").await;
    assert_eq!(line["method"], "GET");
    assert_eq!(line["key"], "clip.webm");
    assert_eq!(line["status"], 206);
    assert_eq!(line["range"], format!("bytes 0-1/{size}"));
    assert_eq!(line["bytes_sent"], 2);
    assert_eq!(line["client_gone"], false);
    assert!(line["ttfb_ms"].as_f64().unwrap() >= 0.0);
    assert!(line["duration_ms"].as_f64().unwrap() >= line["ttfb_ms"].as_f64().unwrap());

    // A client that reads a little of a large answer and hangs up.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /clip.webm HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    stream.read_exact(&mut buf).await.unwrap();
    drop(stream);
    let gone = server
        .wait_for(|l| l["target"] == "access" && l["client_gone"] == true)
        .await;
    assert_eq!(gone["status"], 200);
    assert_eq!(gone["range"], "-");
    assert!(gone["bytes_sent"].as_u64().unwrap() < size as u64, "{gone}");

    let response = send(server.addr, "GET", "/missing", &[]).await;
    assert_eq!(response.status, 404);
    let missing = server
        .wait_for(|l| l["target"] == "access" && l["status"] == 404)
        .await;
    assert_eq!(missing["key"], "missing");
    assert_eq!(missing["bytes_sent"], 14);
    assert_eq!(server.access_lines().len(), 3, "one line per request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.mp3"), b"abc").unwrap();
    let mut server = Running::start(dir.path(), &[]).await;
    assert_eq!(send(server.addr, "GET", "/a.mp3", &[]).await.body, b"abc");
    sigterm(server.pid());
    let status = tokio::time::timeout(Duration::from_secs(10), server.child.wait())
        .await
        .expect("exited in time")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_missing_media_directory() {
    let output = Command::new(env!("CARGO_BIN_EXE_media-streamer"))
        .args(["--dir", "/nonexistent/media", "--addr", "127.0.0.1:0"])
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(log.contains("/nonexistent/media"), "{log}");
}
