//! The local server over a real socket: the whole table, then connection
//! behaviour.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{exchange, parse_response, read_across, split_response};
use crate::fixture::{default_local, pattern, truncate, Fixture, TestServer};
use crate::table::{self, Framing};
use media_streamer::transport::local::LocalSettings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_whole_table() {
    let fixture = Fixture::new();
    let server = TestServer::start(&fixture.root, default_local()).await;
    let store = table::Store::directory(&fixture);
    let cases = table::cases(&fixture, &store);
    assert!(cases.len() >= 90, "the table has {} cases", cases.len());
    table::run(server.addr, &cases, Framing::Exact).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_backslash_and_nul_never_reach_the_source() {
    let fixture = Fixture::new();
    let server = TestServer::start(&fixture.root, default_local()).await;
    for target in ["/..\\outside\\secret.bin", "/bytes.bin\0.mp4", "/a b"] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let raw = exchange(server.addr, request.as_bytes()).await;
        let response = parse_response(&raw, false).expect("an HTTP answer");
        assert_eq!(response.status, 400, "{target:?}");
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_connections_alive() {
    let fixture = Fixture::new();
    let server = TestServer::start(&fixture.root, default_local()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let first = "GET /bytes.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n";
    let second =
        "GET /bytes.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=2-3\r\nConnection: close\r\n\r\n";
    stream.write_all(first.as_bytes()).await.unwrap();
    // The second request goes on the same connection after the first answer.
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while split_response(&raw, false).is_none_or(|(r, _)| !r.complete) {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed after the first response");
        raw.extend_from_slice(&buf[..n]);
    }
    stream.write_all(second.as_bytes()).await.unwrap();
    stream.read_to_end(&mut raw).await.unwrap();
    let data = pattern(10_000, 0);
    let (one, rest) = split_response(&raw, false).unwrap();
    let (two, rest) = split_response(rest, false).unwrap();
    assert_eq!((one.status, one.body.as_slice()), (206, &data[0..2]));
    assert_eq!((two.status, two.body.as_slice()), (206, &data[2..4]));
    assert!(rest.is_empty());
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closes_connections_that_stall_in_the_head() {
    let fixture = Fixture::new();
    let timeout = Duration::from_secs(1);
    let server = TestServer::start(
        &fixture.root,
        LocalSettings {
            header_read_timeout: timeout,
            ..default_local()
        },
    )
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /bytes.bin HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
        .await
        .expect("the server closed the stalled connection")
        .ok();
    let waited = started.elapsed();
    assert!(
        waited >= timeout - Duration::from_millis(100),
        "closed after {waited:?}"
    );
    assert!(waited < timeout * 4, "closed only after {waited:?}");
    assert!(!String::from_utf8_lossy(&rest).contains("200 OK"));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_open_responses_finish() {
    let fixture = Fixture::new();
    let big = pattern(8 * 1024 * 1024, 3);
    std::fs::write(fixture.root.join("big.bin"), &big).unwrap();
    let server = TestServer::start(&fixture.root, default_local()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = vec![0u8; 1024];
    let n = stream.read(&mut raw).await.unwrap();
    raw.truncate(n);
    // Shut down while the body is still being sent; the server must finish it.
    let addr = server.addr;
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
    stream.read_to_end(&mut raw).await.unwrap();
    let response = parse_response(&raw, false).unwrap();
    assert_eq!(response.status, 200);
    assert!(response.complete);
    assert!(response.body == big);
    stopping.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_mid_body_leaves_the_response_incomplete() {
    let fixture = Fixture::new();
    let path = fixture.root.join("big.webm");
    std::fs::write(&path, vec![1u8; 64 * 1024 * 1024]).unwrap();
    let server = TestServer::start(&fixture.root, default_local()).await;
    // The file loses its bytes while the response is under way.
    let request = "GET /big.webm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let response = read_across(server.addr, request, truncate(&path)).await;
    assert_eq!(response.status, 200);
    assert!(
        !response.complete,
        "a failed read must not look like a complete response"
    );
    assert!(
        response.body.iter().all(|&b| b == 1),
        "only media bytes in the body"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_for_allowed_origins_only() {
    let fixture = Fixture::new();
    let mut settings = crate::fixture::settings();
    settings.cors = media_streamer::cors::CorsPolicy::parse("https://page.example");
    let source = media_streamer::source::dir::DirSource::new(&fixture.root).unwrap();
    let service = media_streamer::service::MediaService::new(std::sync::Arc::new(source), settings);
    let server = TestServer::start_service(service, default_local()).await;
    let exposed = "Content-Range, Accept-Ranges, Content-Length, ETag, Last-Modified";
    // (method, request fields, status, expected fields, absent fields)
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, &'a str)>,
        u16,
        Vec<(&'a str, &'a str)>,
        Vec<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            "GET",
            vec![("Origin", "https://page.example"), ("Range", "bytes=0-1")],
            206,
            vec![("access-control-allow-origin", "https://page.example"), ("access-control-expose-headers", exposed), ("vary", "Origin")],
            vec![],
        ),
        (
            "GET",
            vec![("Origin", "https://other.example"), ("Range", "bytes=0-1")],
            206,
            vec![("vary", "Origin")],
            vec!["access-control-allow-origin", "access-control-expose-headers"],
        ),
        (
            "GET",
            vec![("Origin", "https://page.example")],
            200,
            vec![("access-control-allow-origin", "https://page.example")],
            vec![],
        ),
        (
            "OPTIONS",
            vec![("Origin", "https://page.example"), ("Access-Control-Request-Method", "GET"), ("Access-Control-Request-Headers", "range,if-range")],
            204,
            vec![
                ("access-control-allow-origin", "https://page.example"),
                ("access-control-allow-methods", "GET, HEAD"),
                ("access-control-allow-headers", "range, if-match, if-none-match, if-modified-since, if-unmodified-since, if-range"),
                ("access-control-max-age", "86400"),
                ("allow", "GET, HEAD, OPTIONS"),
            ],
            vec![],
        ),
        (
            "OPTIONS",
            vec![("Origin", "https://other.example"), ("Access-Control-Request-Method", "GET")],
            204,
            vec![("allow", "GET, HEAD, OPTIONS")],
            vec!["access-control-allow-origin", "access-control-allow-methods"],
        ),
        ("POST", vec![], 405, vec![("allow", "GET, HEAD, OPTIONS")], vec![]),
    ];
    for (method, fields, status, expected, absent) in cases {
        let response = crate::client::send(server.addr, method, "/bytes.bin", &fields).await;
        assert_eq!(response.status, status, "{method} {fields:?}");
        for (name, value) in expected {
            assert_eq!(
                response.header(name),
                Some(value),
                "{method} {fields:?}: {name}"
            );
        }
        for name in absent {
            assert_eq!(response.header(name), None, "{method} {fields:?}: {name}");
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_over_the_limits_get_431() {
    use media_streamer::transport::local::{MAX_HEADERS, MAX_HEADER_BYTES};
    let fixture = Fixture::new();
    let server = TestServer::start(&fixture.root, default_local()).await;
    let long = |len: usize| vec![("X-Long".to_owned(), "a".repeat(len))];
    let many = |n: usize| {
        (0..n)
            .map(|i| (format!("X-Field-{i}"), "v".to_owned()))
            .collect::<Vec<_>>()
    };
    // (what, extra header fields, status)
    let cases = [
        ("an 8 KiB field", long(8 * 1024), 206),
        (
            "a head just under the limit",
            long(MAX_HEADER_BYTES - 200),
            206,
        ),
        ("a head over the limit", long(MAX_HEADER_BYTES + 1), 431),
        ("a 64 KiB field", long(64 * 1024), 431),
        ("as many fields as allowed", many(MAX_HEADERS - 3), 206),
        ("one field too many", many(MAX_HEADERS), 431),
    ];
    for (name, fields, status) in cases {
        let mut request = "GET /bytes.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n".to_owned();
        for (field, value) in &fields {
            request.push_str(&format!("{field}: {value}\r\n"));
        }
        request.push_str("Connection: close\r\n\r\n");
        let raw = exchange(server.addr, request.as_bytes()).await;
        let response = parse_response(&raw, false).expect("a response");
        assert_eq!(response.status, status, "{name}");
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_documents_that_run_script_are_sandboxed() {
    let dir = tempfile::tempdir().unwrap();
    let files: [(&str, &[u8]); 5] = [
        ("page.html", b"<script>alert(document.domain)</script>"),
        (
            "drawing.svg",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
        ),
        (
            "feed.xml",
            b"<html xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script></html>",
        ),
        ("clip.mp4", b"not really a movie"),
        ("photo.png", b"not really a picture"),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let server = TestServer::start(dir.path(), default_local()).await;
    let csp = "default-src 'none'; sandbox";
    // (target, request fields, status, content type, Content-Security-Policy)
    type Case<'a> = (
        &'a str,
        &'a [(&'a str, &'a str)],
        u16,
        &'a str,
        Option<&'a str>,
    );
    let cases: [Case; 7] = [
        (
            "/page.html",
            &[],
            200,
            "text/html; charset=utf-8",
            Some(csp),
        ),
        (
            "/page.html",
            &[("Range", "bytes=0-7")],
            206,
            "text/html; charset=utf-8",
            Some(csp),
        ),
        ("/drawing.svg", &[], 200, "image/svg+xml", Some(csp)),
        (
            "/drawing.svg",
            &[("Range", "bytes=0-3")],
            206,
            "image/svg+xml",
            Some(csp),
        ),
        ("/feed.xml", &[], 200, "text/xml; charset=utf-8", Some(csp)),
        ("/clip.mp4", &[], 200, "video/mp4", None),
        ("/photo.png", &[], 200, "image/png", None),
    ];
    for (target, fields, status, content_type, policy) in cases {
        // `send` asks for `Connection: close`, which the answer repeats.
        let response = crate::client::send(server.addr, "GET", target, fields).await;
        let mut names: Vec<&str> = response.headers.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        let mut expected = vec![
            "accept-ranges",
            "cache-control",
            "connection",
            "content-length",
            "content-type",
            "date",
            "etag",
            "last-modified",
            "x-content-type-options",
        ];
        if status == 206 {
            expected.push("content-range");
        }
        if policy.is_some() {
            expected.push("content-security-policy");
        }
        expected.sort_unstable();
        assert_eq!(response.status, status, "{target} {fields:?}");
        assert_eq!(names, expected, "{target} {fields:?}");
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "{target}"
        );
        assert_eq!(
            response.header("content-security-policy"),
            policy,
            "{target}"
        );
        assert_eq!(
            response.header("x-content-type-options"),
            Some("nosniff"),
            "{target}"
        );
    }
    server.stop().await.unwrap();
}

/// Reads one response (head and a Content-Length body) from a kept-alive
/// connection, within 5 s.
async fn read_one_response(stream: &mut TcpStream) -> crate::client::RawResponse {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(response) = parse_response(&raw, false).filter(|r| r.complete) {
            return response;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, stream.read(&mut buf))
            .await
            .expect("a response within 5 s")
            .unwrap();
        assert!(n > 0, "closed before a whole response");
        raw.extend_from_slice(&buf[..n]);
    }
}

/// Waits up to `within` for the server to close its side of its connections
/// on `port` (none left established), returning how long that took.
async fn server_side_closed(port: u16, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if crate::faults::open_sockets_on(port) == 0 {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_left_idle_is_closed_after_the_header_timeout() {
    // It measures time: not beside the tests that load the machine.
    let _serial = crate::MEASURE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clip.mp4"), pattern(1_000, 1)).unwrap();
    let server =
        crate::binary::Running::start(dir.path(), &[("MEDIA_HEADER_TIMEOUT_SECS", "1")]).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /clip.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_one_response(&mut stream).await.status, 206);
    // No next request: the header timeout runs from the moment the
    // connection waits for a head, so it is the idle timeout too.
    let started = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
        .await
        .expect("the server closed the idle connection")
        .ok();
    let waited = started.elapsed();
    println!("an idle kept-alive connection was closed after {waited:?} (header timeout 1 s)");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert!(
        Duration::from_millis(900) <= waited && waited < Duration::from_secs(8),
        "{waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_after_the_write_timeout() {
    // It measures time: not beside the tests that load the machine.
    let _serial = crate::MEASURE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = 256 << 20;
    std::fs::File::create(dir.path().join("big.mp4"))
        .unwrap()
        .set_len(size)
        .unwrap();
    let server =
        crate::binary::Running::start(dir.path(), &[("MEDIA_WRITE_TIMEOUT_SECS", "1")]).await;
    let port = server.addr.port();
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /big.mp4 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The client reads nothing: the socket buffers fill within moments, then
    // the server's writes wait; 1 s later it drops the connection.
    let closed = server_side_closed(port, Duration::from_secs(10)).await;
    println!("a client that reads nothing: the server closed its side after {closed:?} (write timeout 1 s)");
    let closed = closed.expect("the server still holds the connection after 10 s");
    assert!(closed < Duration::from_secs(8), "{closed:?}");
    // What the kernel had buffered arrives, then the end: never the whole body.
    let mut received = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        received += n as u64;
    }
    assert!(received < size / 2, "{received} of {size} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_for_a_free_one() {
    // It measures time: not beside the tests that load the machine.
    let _serial = crate::MEASURE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clip.mp4"), pattern(1_000, 1)).unwrap();
    let server = crate::binary::Running::start(
        dir.path(),
        &[("MEDIA_MAX_CONNECTIONS", "2"), ("MEDIA_WORKERS", "2")],
    )
    .await;
    let request = b"GET /clip.mp4 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        assert_eq!(read_one_response(&mut stream).await.status, 206);
        held.push(stream);
    }
    // A third connection is not taken while two are open (the kernel holds
    // it in the listen queue): its request waits.
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third.write_all(request).await.unwrap();
    let mut buf = [0u8; 1024];
    let waited = tokio::time::timeout(Duration::from_secs(1), third.read(&mut buf)).await;
    assert!(waited.is_err(), "the third connection was answered at once");
    // One of the two closes: the third is taken and answered.
    drop(held.pop());
    let started = Instant::now();
    let answer = read_one_response(&mut third).await;
    println!(
        "the third connection was answered {:?} after one of two closed",
        started.elapsed()
    );
    assert_eq!(answer.status, 206);
    // Without a free place it would wait for ever; a loaded machine may take
    // seconds to schedule the accept.
    assert!(started.elapsed() < Duration::from_secs(8));
}
