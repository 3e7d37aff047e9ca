//! The S3 source against a real S3-compatible server (moto's, from PyPI)
//! started here on loopback: the whole table, the number of S3 requests behind
//! each client request, errors, a store that dies mid-body, the presigned
//! redirect, and memory while streaming 1 GiB.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use media_streamer::service::MediaService;
use media_streamer::source::s3::{PresignPolicy, S3Source};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::client::{parse_response, read_across, send};
use crate::fixture::{default_local, free_port, settings, Fixture, TestServer, Validators};
use crate::table::{self, Framing, Store};

pub const BUCKET: &str = "media-test";
/// The fixture files uploaded, under the same keys (a link is uploaded with
/// the bytes it points to; files outside the root and dot files are not).
pub const KEYS: [&str; 10] = [
    "bytes.bin",
    "empty.bin",
    "name with spaces é.mp4",
    "sub/clip.webm",
    "inside-link.mp3",
    crate::table::derivatives::PHOTO,
    crate::table::derivatives::BROKEN,
    crate::table::faststart::MOOV_AT_END,
    crate::table::faststart::FASTSTART,
    crate::table::faststart::FRAGMENTED,
];

/// moto's S3 server on a loopback port, with its request log.
pub struct S3Server {
    child: Child,
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl S3Server {
    pub async fn start() -> Self {
        Self::start_on(free_port(), &[]).await
    }

    pub async fn start_on(port: u16, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new("python3");
        command
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect(
            "python3 with moto[server] is needed for the S3 tests (scripts/test.sh installs it)",
        );
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(addr).await.is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("moto server exited ({status}): {:?}", log.lock().unwrap());
            }
            assert!(Instant::now() < deadline, "moto did not listen on {addr}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        S3Server { child, port, log }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests moto has answered so far, as `METHOD /path STATUS`.
    pub fn requests(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| {
                // moto colours its request log in some versions.
                let line = strip_ansi(line);
                let quoted = line.split('"').nth(1)?;
                let status = line.split('"').nth(2)?.split_whitespace().next()?;
                let mut parts = quoted.split_whitespace();
                let (method, path) = (parts.next()?, parts.next()?);
                Some(format!("{method} {path} {status}"))
            })
            .collect()
    }

    /// The requests answered from the `from`-th on, once one of them
    /// starts with `start` (waited for up to 5 s: what the server does in
    /// the background after its answer).
    pub async fn wait_for(&self, from: usize, start: &str) -> Vec<String> {
        for _ in 0..50 {
            if self.requests()[from..].iter().any(|r| r.starts_with(start)) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.requests()[from..].to_vec()
    }

    pub async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// `line` without ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The environment that points the binary at the test server's bucket.
pub fn s3_env(s3: &S3Server) -> Vec<(&'static str, String)> {
    vec![
        ("MEDIA_BUCKET", BUCKET.to_owned()),
        ("AWS_ENDPOINT_URL_S3", s3.endpoint()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

/// A client for the test server: static credentials, path-style addressing.
pub fn client(endpoint: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .force_path_style(true)
        .http_client(media_streamer::source::s3::http_client())
        .build();
    Client::from_conf(config)
}

/// Creates the bucket and uploads the fixture files without a content type
/// (S3 then stores `binary/octet-stream`, and the extension decides).
pub async fn upload_fixture(client: &Client, fixture: &Fixture) {
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    for key in KEYS {
        client
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from(fixture.bytes(key)))
            .send()
            .await
            .unwrap();
    }
}

/// A client for the test server, with the bucket made and each
/// `(key, content type, bytes)` put in it.
pub async fn bucket_with(s3: &S3Server, objects: Vec<(&str, &str, Vec<u8>)>) -> Client {
    let client = client(&s3.endpoint());
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    for (key, content_type, bytes) in objects {
        client
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .unwrap();
    }
    client
}

/// The validators S3 holds for every uploaded key.
pub async fn s3_validators(client: &Client) -> HashMap<String, Validators> {
    let mut all = HashMap::new();
    for key in KEYS {
        let head = client
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        let modified = std::time::SystemTime::try_from(*head.last_modified().unwrap()).unwrap();
        all.insert(
            key.to_owned(),
            Validators {
                etag: head.e_tag().unwrap().to_owned(),
                last_modified: httpdate::fmt_http_date(modified),
                last_modified_minus_1s: httpdate::fmt_http_date(modified - Duration::from_secs(1)),
            },
        );
    }
    all
}

/// A test server holding the uploaded fixture, a client for it, and the
/// validators S3 gave each fixture object.
pub async fn s3_with_fixture(fixture: &Fixture) -> (S3Server, Client, HashMap<String, Validators>) {
    let s3 = S3Server::start().await;
    let client = client(&s3.endpoint());
    upload_fixture(&client, fixture).await;
    let validators = s3_validators(&client).await;
    (s3, client, validators)
}

pub fn s3_store(validators: &HashMap<String, Validators>) -> Store<'_> {
    Store {
        validators: Box::new(move |name| validators[name].clone()),
        validators_on_412: false,
        last_modified_on_304: false,
    }
}

async fn start_server(endpoint: &str, presign: Option<PresignPolicy>) -> TestServer {
    let source = S3Source::new(client(endpoint), BUCKET, "", presign);
    let service = MediaService::new(Arc::new(source), settings());
    TestServer::start_service(service, default_local()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_whole_table_from_s3() {
    let fixture = Fixture::new();
    let (s3, _client, validators) = s3_with_fixture(&fixture).await;
    let store = s3_store(&validators);
    let server = start_server(&s3.endpoint(), None).await;
    table::run(server.addr, &table::cases(&fixture, &store), Framing::Exact).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_s3_request_per_client_request() {
    let fixture = Fixture::new();
    let (s3, _client, validators) = s3_with_fixture(&fixture).await;
    let etag = validators["bytes.bin"].etag.clone();
    let server = start_server(&s3.endpoint(), None).await;
    let weak = format!("W/{etag}");
    // (name, method, request fields, status, the S3 requests it takes)
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, u16, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        ("plain GET", "GET", vec![], 200, vec!["GET 200"]),
        (
            "single range",
            "GET",
            vec![("Range", "bytes=0-1")],
            206,
            vec!["GET 206"],
        ),
        (
            "open range",
            "GET",
            vec![("Range", "bytes=100-")],
            206,
            vec!["GET 206"],
        ),
        (
            "suffix range",
            "GET",
            vec![("Range", "bytes=-10")],
            206,
            vec!["GET 206"],
        ),
        (
            "unsatisfiable",
            "GET",
            vec![("Range", "bytes=20000-")],
            416,
            vec!["GET 416"],
        ),
        (
            "If-None-Match hit",
            "GET",
            vec![("If-None-Match", &etag)],
            304,
            vec!["GET 304"],
        ),
        (
            "weak If-None-Match hit",
            "GET",
            vec![("If-None-Match", &weak)],
            304,
            vec!["GET 304"],
        ),
        (
            "If-None-Match miss",
            "GET",
            vec![("If-None-Match", "\"x\"")],
            200,
            vec!["GET 200"],
        ),
        (
            "If-Match miss",
            "GET",
            vec![("If-Match", "\"x\"")],
            412,
            vec!["GET 412"],
        ),
        (
            "If-Match hit with range",
            "GET",
            vec![("If-Match", &etag), ("Range", "bytes=0-1")],
            206,
            vec!["GET 206"],
        ),
        (
            "If-Modified-Since",
            "GET",
            vec![("If-Modified-Since", "Thu, 01 Jan 2099 00:00:00 GMT")],
            304,
            vec!["GET 304"],
        ),
        (
            "If-Range hit",
            "GET",
            vec![("If-Range", &etag), ("Range", "bytes=0-1")],
            206,
            vec!["GET 206"],
        ),
        (
            "If-Range miss: whole",
            "GET",
            vec![("If-Range", "\"x\""), ("Range", "bytes=0-1")],
            200,
            vec!["GET 412", "GET 200"],
        ),
        ("HEAD", "HEAD", vec![], 200, vec!["HEAD 200"]),
        (
            "two ranges",
            "GET",
            vec![("Range", "bytes=0-1,5-6")],
            206,
            vec!["HEAD 200", "GET 206", "GET 206"],
        ),
    ];
    let mut report = Vec::new();
    for (name, method, headers, status, expected) in cases {
        let before = s3.requests().len();
        let response = send(server.addr, method, "/bytes.bin", &headers).await;
        assert_eq!(response.status, status, "{name}");
        let made: Vec<String> = s3.requests()[before..]
            .iter()
            .map(|r| {
                let mut parts = r.split(' ');
                let method = parts.next().unwrap().to_owned();
                format!("{method} {}", parts.nth(1).unwrap())
            })
            .collect();
        assert_eq!(made, expected, "{name}: S3 requests");
        report.push(format!("{name}: {}", made.len()));
    }
    println!("S3 requests per client request: {}", report.join(", "));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_access_is_403_or_404_by_setting() {
    // moto checks credentials once this many unauthenticated calls are spent;
    // the test credentials name no IAM user, so every read is refused (403).
    let s3 = S3Server::start_on(free_port(), &[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]).await;
    for (denied_status, expected) in [
        (http::StatusCode::FORBIDDEN, 403),
        (http::StatusCode::NOT_FOUND, 404),
    ] {
        let source = S3Source::new(client(&s3.endpoint()), BUCKET, "", None);
        let mut settings = settings();
        settings.denied_status = denied_status;
        let server = TestServer::start_service(
            MediaService::new(Arc::new(source), settings),
            default_local(),
        )
        .await;
        for method in ["GET", "HEAD"] {
            let response = send(server.addr, method, "/bytes.bin", &[("Range", "bytes=0-1")]).await;
            assert_eq!(response.status, expected, "{method}");
            let text = String::from_utf8_lossy(&response.body);
            assert!(!text.contains(BUCKET) && !text.contains("Access"), "{text}");
        }
        server.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_dies_mid_body_aborts_the_response_then_recovers() {
    let fixture = Fixture::new();
    let s3 = S3Server::start().await;
    let port = s3.port;
    let client = client(&s3.endpoint());
    upload_fixture(&client, &fixture).await;
    let big = vec![3u8; 48 * 1024 * 1024];
    client
        .put_object()
        .bucket(BUCKET)
        .key("big.webm")
        .body(ByteStream::from(big.clone()))
        .send()
        .await
        .unwrap();
    let server = start_server(&s3.endpoint(), None).await;

    let request = "GET /big.webm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let response = read_across(server.addr, request, s3.stop()).await;
    assert_eq!(response.status, 200);
    assert!(
        !response.complete,
        "a store that died must not look like a complete response"
    );
    assert!(response.body.iter().all(|&b| b == 3));

    // While the store is down: a clear 503, not a hang.
    let down = send(server.addr, "GET", "/bytes.bin", &[]).await;
    assert_eq!(down.status, 503);
    assert_eq!(down.body, b"503 Service Unavailable\n");

    // The store comes back (empty: moto keeps objects in memory).
    let _s3 = S3Server::start_on(port, &[]).await;
    upload_fixture(&client, &fixture).await;
    let again = send(server.addr, "GET", "/bytes.bin", &[]).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, fixture.bytes("bytes.bin"));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects_redirect_to_a_presigned_url() {
    let fixture = Fixture::new();
    let s3 = S3Server::start().await;
    let client = client(&s3.endpoint());
    upload_fixture(&client, &fixture).await;
    let policy = PresignPolicy {
        above_bytes: 5_000,
        expires_in: Duration::from_secs(60),
    };
    let server = start_server(&s3.endpoint(), Some(policy)).await;
    // 10 000 bytes: over the limit, so the whole object is fetched from S3.
    let response = send(server.addr, "GET", "/bytes.bin", &[]).await;
    assert_eq!(response.status, 307);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let location = response.header("location").unwrap().to_owned();
    let target = location
        .strip_prefix(&s3.endpoint())
        .expect("a URL of the store");
    assert!(
        target.starts_with("/media-test/bytes.bin?") && target.contains("X-Amz-Signature="),
        "{location}"
    );
    let fetched = send(([127, 0, 0, 1], s3.port).into(), "GET", target, &[]).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body, fixture.bytes("bytes.bin"));
    // Ranges and smaller objects are still served here.
    let range = send(server.addr, "GET", "/bytes.bin", &[("Range", "bytes=0-1")]).await;
    assert_eq!(range.status, 206);
    let small = send(server.addr, "GET", "/sub/clip.webm", &[]).await;
    assert_eq!((small.status, small.body.len()), (200, 3_000));
    server.stop().await.unwrap();
}

/// The moov-at-end fixture movie grown to `size` bytes: its `mdat` padded
/// with zeros after the samples (sparse in the file), so the movie stays
/// valid, with `moov` still at the end. Written to `path`.
fn big_movie(fixture: &Fixture, size: u64, path: &std::path::Path) {
    use std::os::unix::fs::FileExt;
    let stored = fixture.bytes(crate::table::faststart::MOOV_AT_END);
    let boxes = media_streamer::mp4::scan_top_level_bytes(&stored).unwrap();
    let kinds: Vec<[u8; 4]> = boxes.iter().map(|b| b.kind).collect();
    assert_eq!(kinds, [*b"ftyp", *b"free", *b"mdat", *b"moov"]);
    let (mdat, moov) = (&boxes[2], &boxes[3]);
    assert_eq!(mdat.header_len, 8);
    let grown = size - stored.len() as u64;
    let file = std::fs::File::create(path).unwrap();
    file.set_len(size).unwrap();
    file.write_all_at(&stored[..moov.offset as usize], 0)
        .unwrap();
    let mdat_size = u32::try_from(mdat.size + grown).unwrap();
    file.write_all_at(&mdat_size.to_be_bytes(), mdat.offset)
        .unwrap();
    file.write_all_at(&stored[moov.offset as usize..], moov.offset + grown)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_movie_too_big_for_one_response_redirects_for_get_and_head() {
    let fixture = Fixture::new();
    let s3 = S3Server::start().await;
    let client = client(&s3.endpoint());
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    // 250 MB: over Lambda's 200 MB, at Lambda mode's own threshold.
    const SIZE: u64 = 250_000_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mp4");
    big_movie(&fixture, SIZE, &path);
    client
        .put_object()
        .bucket(BUCKET)
        .key("big.mp4")
        .body(ByteStream::from_path(&path).await.unwrap())
        .send()
        .await
        .unwrap();
    drop(dir);
    let policy = PresignPolicy {
        above_bytes: media_streamer::config::LAMBDA_PRESIGN_ABOVE_BYTES,
        expires_in: Duration::from_secs(60),
    };
    let server = start_server(&s3.endpoint(), Some(policy)).await;
    let store = std::net::SocketAddr::from(([127, 0, 0, 1], s3.port));

    // A whole GET, and a HEAD (RFC 9110 §9.3.2: the status and fields of the
    // GET, no body): 307 to a presigned URL of the object, for that method.
    // (method, status of the presigned URL fetched with that method and a range)
    for (method, fetched_status) in [("GET", 206), ("HEAD", 206)] {
        let response = send(server.addr, method, "/big.mp4", &[]).await;
        assert_eq!(response.status, 307, "{method}");
        assert_eq!(
            response.header("cache-control"),
            Some("no-store"),
            "{method}"
        );
        let location = response.header("location").unwrap().to_owned();
        let target = location
            .strip_prefix(&s3.endpoint())
            .expect("a URL of the store");
        assert!(
            target.starts_with("/media-test/big.mp4?") && target.contains("X-Amz-Signature="),
            "{method}: {location}"
        );
        let fetched = send(store, method, target, &[("Range", "bytes=0-7")]).await;
        assert_eq!(fetched.status, fetched_status, "{method}: {target}");
        assert_eq!(
            fetched.header("content-range"),
            Some(format!("bytes 0-7/{SIZE}").as_str()),
            "{method}"
        );
    }
    // A range is still served here, faststart: `moov` first.
    let range = send(server.addr, "GET", "/big.mp4", &[("Range", "bytes=0-63")]).await;
    assert_eq!(range.status, 206);
    let stored = fixture.bytes(crate::table::faststart::MOOV_AT_END);
    assert_eq!(range.body[..32], stored[..32]);
    assert!(range.body.windows(4).any(|w| w == b"moov"), "moov first");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_a_gibibyte_from_s3_in_bounded_memory() {
    let _serial = crate::MEASURE.lock().await;
    const GIB: u64 = 1024 * 1024 * 1024;
    let s3 = S3Server::start().await;
    let client = client(&s3.endpoint());
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.mp4");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(GIB).unwrap();
    drop(file);
    let started = Instant::now();
    client
        .put_object()
        .bucket(BUCKET)
        .key("big.mp4")
        .body(ByteStream::from_path(&path).await.unwrap())
        .send()
        .await
        .unwrap();
    println!(
        "uploaded 1 GiB to the test S3 server in {:?}",
        started.elapsed()
    );
    drop(dir);

    let env = s3_env(&s3);
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let empty = tempfile::tempdir().unwrap();
    let server = crate::binary::Running::start(empty.path(), &env).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /big.mp4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut head = Vec::new();
    let mut body = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        if head.ends_with(b"\r\n\r\n") {
            body += n as u64;
        } else {
            head.extend_from_slice(&buf[..n]);
            if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                body += (head.len() - end - 4) as u64;
                head.truncate(end + 4);
            }
        }
    }
    let elapsed = started.elapsed();
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains(&format!("content-length: {GIB}\r\n")),
        "{head}"
    );
    assert_eq!(body, GIB);
    let peak = server.peak_rss_kib();
    println!("streamed 1 GiB from S3 in {elapsed:?}; peak RSS of media-streamer: {peak} KiB");
    assert!(peak < 48 * 1024, "peak RSS {peak} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_byte_through_the_server_against_a_direct_get_object() {
    let _serial = crate::MEASURE.lock().await;
    let fixture = Fixture::new();
    let s3 = S3Server::start().await;
    let client = client(&s3.endpoint());
    upload_fixture(&client, &fixture).await;
    let server = start_server(&s3.endpoint(), None).await;
    let (mut direct, mut served) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let started = Instant::now();
        let mut output = client
            .get_object()
            .bucket(BUCKET)
            .key("bytes.bin")
            .range("bytes=0-1023")
            .send()
            .await
            .unwrap();
        let first = output.body.next().await.unwrap().unwrap();
        direct.push(started.elapsed());
        assert_eq!(&first[..], &fixture.bytes("bytes.bin")[..first.len()]);

        let started = Instant::now();
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET /bytes.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1023\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0);
            raw.extend_from_slice(&buf[..n]);
            if parse_response(&raw, false).is_some_and(|r| !r.body.is_empty()) {
                break;
            }
        }
        served.push(started.elapsed());
    }
    direct.sort();
    served.sort();
    let (direct, served) = (direct[3], served[3]);
    println!("time to first byte of a 1 KiB range, median of 7: direct GetObject {direct:?}, through media-streamer {served:?}");
    // One extra hop on loopback, not a second round trip to the store.
    assert!(
        served < direct * 2,
        "through the server {served:?}, direct {direct:?}"
    );
}

/// A store that answers every request with `status` and an S3 error body,
/// counting the requests it gets.
async fn failing_store(
    status: u16,
    code: &'static str,
) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let body = format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>secret detail of {BUCKET}</Message></Error>");
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    (endpoint, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_failures_are_retried_then_answered_briefly() {
    // (store status, S3 error code, client status, store requests: the SDK's
    // standard retry mode makes 3 attempts at retryable errors)
    let cases = [
        (503, "SlowDown", 503, 3),
        (500, "InternalError", 503, 3),
        (400, "InvalidRequest", 502, 1),
    ];
    for (store_status, code, status, attempts) in cases {
        let (endpoint, count) = failing_store(store_status, code).await;
        let server = start_server(&endpoint, None).await;
        let response = send(server.addr, "GET", "/bytes.bin", &[("Range", "bytes=0-1")]).await;
        assert_eq!(response.status, status, "{code}");
        let text = String::from_utf8_lossy(&response.body);
        assert!(!text.contains(BUCKET) && !text.contains(code), "{text}");
        assert_eq!(
            count.load(std::sync::atomic::Ordering::SeqCst),
            attempts,
            "{code}: store requests"
        );
        server.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_lists_under_the_prefix_and_only_servable_keys() {
    let s3 = S3Server::start().await;
    let client = client(&s3.endpoint());
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    for key in [
        "media/a.mp4",
        "media/clips/", // a console "folder" marker
        "media/clips/b.webm",
        "media/odd\\name.mp4", // no URL can name it
        "media/twice//slashed.mp4",
        "media/<i onmouseover=x>.mp3",
        "outside.mp4", // not under the prefix
    ] {
        client
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from_static(b"0123456789"))
            .send()
            .await
            .unwrap();
    }
    let source = S3Source::new(client.clone(), BUCKET, "media", None);
    let service = MediaService::new(Arc::new(source), settings());
    let server = TestServer::start_service(service, default_local()).await;

    // (target, status, what the page lists: names in order)
    let cases: [(&str, u16, &[&str]); 6] = [
        (
            "/",
            200,
            &["%3Ci%20onmouseover%3Dx%3E.mp3", "a.mp4", "clips/"],
        ),
        ("/?after=a.mp4", 200, &["clips/", "twice/"]),
        ("/clips/", 200, &["b.webm"]),
        ("/twice/", 200, &[]),
        ("/nothing/", 404, &[]),
        ("/?after=%FF", 400, &[]),
    ];
    for (target, status, listed) in cases {
        let response = send(server.addr, "GET", target, &[]).await;
        assert_eq!(response.status, status, "{target}");
        if status != 200 {
            continue;
        }
        let html = String::from_utf8(response.body).unwrap();
        let hrefs: Vec<&str> = html
            .split("<a href=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .collect();
        for name in listed {
            assert!(
                hrefs.iter().any(|h| h.ends_with(&format!("/{name}"))),
                "{target}: no link to {name} in {hrefs:?}"
            );
        }
        for absent in ["odd", "outside", "slashed.mp4", "<i onmouseover"] {
            assert!(!html.contains(absent), "{target}: lists {absent}");
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_through_the_server_against_direct_get_object() {
    let _serial = crate::MEASURE.lock().await;
    const MIB: u64 = 1024 * 1024;
    let size = 64 * MIB;
    let s3 = S3Server::start().await;
    let client = client(&s3.endpoint());
    client.create_bucket().bucket(BUCKET).send().await.unwrap();
    client
        .put_object()
        .bucket(BUCKET)
        .key("big.bin")
        .body(ByteStream::from(crate::fixture::pattern(size as usize, 9)))
        .send()
        .await
        .unwrap();
    let server = start_server(&s3.endpoint(), None).await;
    // The same 32 ranges of 1 MiB both ways, one after another.
    let ranges: Vec<(u64, u64)> = (0..32u64)
        .map(|i| {
            let first = (i * 2_000_003) % (size - MIB);
            (first, first + MIB - 1)
        })
        .collect();
    let direct = || async {
        let started = Instant::now();
        for (first, last) in &ranges {
            let output = client
                .get_object()
                .bucket(BUCKET)
                .key("big.bin")
                .range(format!("bytes={first}-{last}"))
                .send()
                .await
                .unwrap();
            let body = output.body.collect().await.unwrap().into_bytes();
            assert_eq!(body.len() as u64, MIB);
        }
        started.elapsed()
    };
    let through = || async {
        let started = Instant::now();
        for (first, last) in &ranges {
            let range = format!("bytes={first}-{last}");
            let response = send(server.addr, "GET", "/big.bin", &[("Range", &range)]).await;
            assert_eq!((response.status, response.body.len() as u64), (206, MIB));
        }
        started.elapsed()
    };
    let mut ratios = Vec::new();
    for round in 0..5 {
        let (d, t) = if round % 2 == 0 {
            let d = direct().await;
            (d, through().await)
        } else {
            let t = through().await;
            (direct().await, t)
        };
        let mib_s = |elapsed: Duration| 32.0 / elapsed.as_secs_f64();
        println!(
            "round {round}: direct {:.1} MiB/s, through media-streamer {:.1} MiB/s",
            mib_s(d),
            mib_s(t)
        );
        ratios.push(d.as_secs_f64() / t.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    println!("throughput through media-streamer / direct GetObject, median of 5: {median:.2}");
    assert!(median >= 0.9, "{ratios:?}");
    server.stop().await.unwrap();
}

/// A store that reads each request head and then answers as `answer` says:
/// never (`None`), or a 200 of `size` bytes sent in pieces over `over`.
async fn slow_store(answer: Option<(usize, Duration)>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let Some((size, over)) = answer else {
                    // Hold the connection open, answering nothing.
                    let _ = stream.read(&mut buf).await;
                    tokio::time::sleep(Duration::from_secs(600)).await;
                    return;
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: video/webm\r\nContent-Length: {size}\r\nETag: \"slow\"\r\nLast-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\nConnection: close\r\n\r\n"
                );
                if stream.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
                let pieces = 20;
                for _ in 0..pieces {
                    tokio::time::sleep(over / pieces).await;
                    if stream
                        .write_all(&vec![7u8; size / pieces as usize])
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    endpoint
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_never_answers_times_out_but_a_slow_body_is_not_cut() {
    // It measures time: not beside the tests that load the machine.
    let _serial = crate::MEASURE.lock().await;
    let empty = tempfile::tempdir().unwrap();
    let start = |endpoint: String| {
        let dir = empty.path().to_owned();
        async move {
            let env = [
                ("MEDIA_BUCKET", BUCKET.to_owned()),
                ("AWS_ENDPOINT_URL_S3", endpoint),
                ("AWS_ACCESS_KEY_ID", "test".to_owned()),
                ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
                ("AWS_REGION", "us-east-1".to_owned()),
                ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
                ("MEDIA_S3_TIMEOUT_SECS", "3".to_owned()),
                ("MEDIA_S3_ATTEMPT_TIMEOUT_SECS", "1".to_owned()),
            ];
            let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
            crate::binary::Running::start(&dir, &env).await
        }
    };

    // A store that takes the request and never answers: 503 within the
    // operation timeout (3 s: attempts of 1 s, retried), not a hang.
    let server = start(slow_store(None).await).await;
    for (method, fields) in [
        ("GET", &[][..]),
        ("GET", &[("Range", "bytes=0-1")][..]),
        ("HEAD", &[][..]),
        ("GET", &[("Range", "bytes=0-1,4-5")][..]),
    ] {
        let started = Instant::now();
        let response = tokio::time::timeout(
            Duration::from_secs(20),
            send(server.addr, method, "/clip.webm", fields),
        )
        .await
        .unwrap_or_else(|_| panic!("{method} {fields:?}: no answer in 20 s"));
        let waited = started.elapsed();
        println!(
            "{method} {fields:?} against a store that never answers: {} after {waited:?}",
            response.status
        );
        assert_eq!(response.status, 503, "{method} {fields:?}");
        // Without the timeouts it waits for ever (the 20 s above); a loaded
        // machine may add seconds to the 3 s.
        assert!(
            waited < Duration::from_secs(10),
            "{method} {fields:?}: {waited:?}"
        );
    }
    drop(server);

    // A body that takes 4 s, past the operation timeout: the timeouts end
    // at the answer's head, so the body is streamed to its end.
    let size = 200_000;
    let server = start(slow_store(Some((size, Duration::from_secs(4)))).await).await;
    let started = Instant::now();
    let response = send(server.addr, "GET", "/clip.webm", &[]).await;
    println!(
        "a body sent over 4 s: {} bytes, complete: {}, after {:?}",
        response.body.len(),
        response.complete,
        started.elapsed()
    );
    assert_eq!(
        (response.status, response.body.len(), response.complete),
        (200, size, true)
    );
    assert!(started.elapsed() >= Duration::from_secs(3));
}
