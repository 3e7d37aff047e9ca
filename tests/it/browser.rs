//! The media in a real browser: headless Chromium, driven through ChromeDriver
//! (WebDriver), plays, seeks and shows what the binary serves, and the binary's
//! access log shows how each file was fetched.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use media_streamer::faststart::{FaststartSettings, Faststarts};
use media_streamer::mp4;
use media_streamer::service::MediaService;
use media_streamer::source::dir::DirSource;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::binary::Running;
use crate::fixture::free_port;

/// Open-ended ranges are capped this small here, so that a player needs many
/// range requests for one file and a seek needs a new one, as with the large
/// files of real use.
const RANGE_CHUNK: &str = "65536";

fn sample_media() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-media")
}

fn program(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

/// Headless Chromium in a fresh profile, behind its own ChromeDriver.
struct Browser {
    _driver: Child,
    client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        let driver_bin = program("CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = program("CHROMIUM", "/usr/bin/chromium");
        let port = free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{driver_bin}: {e}. The browser tests need Debian's chromium and \
                     chromium-driver: apt-get install chromium chromium-driver \
                     (scripts/test.sh does)"
                )
            });
        assert!(
            Path::new(&chromium).exists(),
            "{chromium} is missing: apt-get install chromium (scripts/test.sh does)"
        );
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--mute-audio".into(),
            "--autoplay-policy=no-user-gesture-required".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium, "args": args }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("no WebDriver session with {chromium}: {e}"),
            }
        };
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(Duration::from_secs(90)),
                Some(Duration::from_secs(30)),
                Some(Duration::ZERO),
            ))
            .await
            .unwrap();
        Browser {
            _driver: driver,
            client,
            _profile: profile,
        }
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Runs `script` in the page; it ends by calling its last argument.
    async fn run(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute_async(script, args).await.unwrap()
    }

    async fn close(self) {
        self.client.close().await.unwrap();
    }
}

/// Plays a `<video>` or `<audio>` element past 1 s, then seeks it; reports
/// what happened. With `crossOrigin`, the element asks for CORS, and a video
/// is drawn to a canvas whose pixels are then read (which only CORS allows).
const PLAY_AND_SEEK: &str = r#"
const [src, tag, seekTo, crossOrigin, done] = arguments;
const m = document.createElement(tag);
m.muted = true;
m.preload = 'auto';
if (crossOrigin) m.crossOrigin = 'anonymous';
const result = {};
let timer;
const finish = (outcome) => {
  clearTimeout(timer);
  result.outcome = outcome;
  result.currentTime = m.currentTime;
  result.readyState = m.readyState;
  result.duration = m.duration;
  result.error = m.error ? m.error.code : null;
  if (outcome === 'seeked' && tag === 'video') {
    const canvas = document.createElement('canvas');
    canvas.width = m.videoWidth;
    canvas.height = m.videoHeight;
    const context = canvas.getContext('2d');
    context.drawImage(m, 0, 0);
    try {
      context.getImageData(0, 0, 1, 1);
      result.pixelsReadable = true;
    } catch (e) {
      result.pixelsReadable = false;
    }
  }
  m.pause();
  m.remove();
  done(result);
};
timer = setTimeout(() => finish('timeout'), 30000);
m.addEventListener('error', () => finish('error'));
const onTime = () => {
  if (m.currentTime > 1) {
    m.removeEventListener('timeupdate', onTime);
    result.playedTo = m.currentTime;
    m.pause();
    m.addEventListener('seeked', () => finish('seeked'), { once: true });
    m.currentTime = seekTo;
  }
};
m.addEventListener('timeupdate', onTime);
document.body.appendChild(m);
m.src = src;
m.play().catch((e) => { if (!m.error) finish('play refused: ' + e.name); });
"#;

/// Decodes an image; reports its natural size.
const DECODE_IMAGE: &str = r#"
const [src, done] = arguments;
const img = new Image();
img.src = src;
img.decode().then(
  () => done({ width: img.naturalWidth, height: img.naturalHeight }),
  (e) => done({ error: String(e) }),
);
"#;

/// The players of an index page, once each has loaded its metadata (or failed).
const INDEX_PLAYERS: &str = r#"
const done = arguments[0];
const players = [...document.querySelectorAll('main video, main audio')];
const settled = players.map((m) => new Promise((resolve) => {
  if (m.readyState >= 1 || m.error) return resolve();
  m.addEventListener('loadedmetadata', resolve, { once: true });
  m.addEventListener('error', resolve, { once: true });
})).concat([...document.querySelectorAll('main img')].map((i) => {
  i.loading = 'eager';
  return i.decode().catch(() => {});
}));
const posterWidths = [...document.querySelectorAll('main video[poster]')].map((v) => {
  const img = new Image();
  img.src = v.poster;
  return img.decode().then(() => img.naturalWidth, () => 0);
});
const timeout = new Promise((resolve) => setTimeout(resolve, 50000));
Promise.race([Promise.all(settled.concat(posterWidths)), timeout]).then(async () => done({
  posters: [...document.querySelectorAll('main video')].map((v) => v.getAttribute('poster')),
  posterWidths: await Promise.all(posterWidths),
  durations: [...document.querySelectorAll('.duration')].map((d) => d.textContent),
  videos: [...document.querySelectorAll('main video')].map((v) => v.getAttribute('src')),
  audios: [...document.querySelectorAll('main audio')].map((a) => a.getAttribute('src')),
  images: [...document.querySelectorAll('main img')].map((i) => i.getAttribute('src')),
  thumbnails: [...document.querySelectorAll('main img')].map((i) => i.naturalWidth),
  loaded: players.map((m) => [m.getAttribute('src'), m.readyState, m.error ? m.error.code : null]),
  urls: [...document.querySelectorAll('code.url')].map((c) => c.textContent),
  snippets: [...document.querySelectorAll('code.snippet')].map((c) => c.textContent),
  names: [...document.querySelectorAll('figcaption a')].map((a) => a.textContent),
  layout: getComputedStyle(document.querySelector('main')).display,
  injected: window.injected === true || document.querySelector('img[src="x"]') !== null,
}));
"#;

/// The sample media that plays: file, element, seek target in seconds.
const PLAYABLE: [(&str, &str, f64); 5] = [
    ("test-pattern.mp4", "video", 7.0),
    ("test-pattern-moov-at-end.mp4", "video", 7.0),
    ("test-pattern.webm", "video", 7.0),
    ("tone.mp3", "audio", 7.0),
    ("tone.ogg", "audio", 7.0),
];

const IMAGES: [&str; 3] = ["test-pattern.jpg", "test-pattern.png", "test-pattern.webp"];

async fn serve_samples(extra: &[(&str, &str)]) -> Running {
    // The tests run the debug build, whose AVIF encoder (what Chromium's
    // Accept gets for fmt=auto) takes 1.5 to 2 s for a 384 px thumbnail and
    // 3 to 5 s for a 640 px poster; an index page asks for five at once, on
    // two workers. A loaded machine stretches that past the default render
    // deadline (20 s, made for release builds), so the page's renders get
    // 50 s here, as its script does: what is tested is that the page works.
    let mut env = vec![
        ("MEDIA_RANGE_CHUNK_BYTES", RANGE_CHUNK),
        ("MEDIA_RENDER_TIMEOUT_SECS", "50"),
    ];
    env.extend_from_slice(extra);
    Running::start(&sample_media(), &env).await
}

fn base(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// The access-log lines of GETs of `key`.
fn fetches(server: &Running, key: &str) -> Vec<Value> {
    server
        .access_lines()
        .into_iter()
        .filter(|l| l["key"] == key && l["method"] == "GET")
        .collect()
}

/// The first byte of each range the log shows for `key`, in request order.
fn range_starts(lines: &[Value]) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| {
            let range = l["range"].as_str()?.strip_prefix("bytes ")?;
            range.split('-').next()?.parse().ok()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_plays_and_seeks_on_range_requests() {
    let _serial = crate::MEASURE.lock().await;
    let server = serve_samples(&[]).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/", base(server.addr))).await;
    let mut failures = Vec::new();
    for (file, tag, seek_to) in PLAYABLE {
        let result = browser
            .run(
                PLAY_AND_SEEK,
                vec![
                    json!(format!("/{file}")),
                    json!(tag),
                    json!(seek_to),
                    json!(false),
                ],
            )
            .await;
        let played = result["playedTo"].as_f64().unwrap_or(0.0);
        let now = result["currentTime"].as_f64().unwrap_or(0.0);
        let ready = result["readyState"].as_u64().unwrap_or(0);
        if result["outcome"] != "seeked"
            || played <= 1.0
            || ready < 2
            || (now - seek_to).abs() > 0.5
        {
            failures.push(format!("{file}: {result}"));
        }
        // Every media fetch was a range answered with 206, or a 304 to
        // Chromium's revalidation of a range it keeps in its cache (If-None-
        // Match with the Range), never a whole 200; and the player needed
        // more than one 206: the open ranges were capped.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let lines = fetches(&server, file);
        let statuses: Vec<_> = lines.iter().map(|l| l["status"].clone()).collect();
        let partial = statuses.iter().filter(|s| **s == 206).count();
        if partial < 2 || statuses.iter().any(|s| *s != 206 && *s != 304) {
            failures.push(format!("{file}: fetched with statuses {statuses:?}"));
        }
        let ranges: Vec<_> = lines
            .iter()
            .map(|l| {
                format!(
                    "{} ({} B)",
                    l["range"].as_str().unwrap_or("-"),
                    l["bytes_sent"]
                )
            })
            .collect();
        println!(
            "{file}: played to {played:.2} s, seeked to {now:.2} s, readyState {ready}, \
             {} range requests, 206 or 304: {ranges:?}",
            lines.len()
        );
    }
    // The moov atom at the end: served with moov first (faststart on the
    // fly), so the player went on from the end of its first range, as with
    // the faststart file, rather than to the end of the file first.
    // (`a_moov_at_end_movie_loads_on_as_few_requests_as_a_faststart_one`
    // compares it with faststart off, request by request.)
    let starts = range_starts(&fetches(&server, "test-pattern-moov-at-end.mp4"));
    println!("moov at the end: range starts {starts:?}");
    let chunk: u64 = RANGE_CHUNK.parse().unwrap();
    if starts.get(..2) != Some(&[0, chunk][..]) {
        failures.push(format!(
            "moov at the end: not fetched from the start on: {starts:?}"
        ));
    }
    for image in IMAGES {
        let result = browser
            .run(DECODE_IMAGE, vec![json!(format!("/{image}"))])
            .await;
        if result["width"] != 640 || result["height"] != 360 {
            failures.push(format!("{image}: {result}"));
        }
    }
    browser.close().await;
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_derivative_format_decodes_in_chromium() {
    let _serial = crate::MEASURE.lock().await;
    let server = serve_samples(&[]).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/", base(server.addr))).await;
    let mut failures = Vec::new();
    for image in IMAGES {
        // (query, natural width and height)
        for (query, size) in [
            ("w=128&fmt=jpeg", (128, 72)),
            ("w=128&fmt=png", (128, 72)),
            ("w=128&fmt=webp", (128, 72)),
            ("w=128&fmt=avif", (128, 72)),
            ("w=64&h=64&fit=cover&fmt=webp", (64, 64)),
            ("w=3840", (640, 360)),
            ("w=256", (256, 144)),
        ] {
            let src = format!("/{image}?{query}");
            let result = browser.run(DECODE_IMAGE, vec![json!(src)]).await;
            if result["width"] != size.0 || result["height"] != size.1 {
                failures.push(format!("{src}: {result}"));
            }
        }
    }
    // An Accept that lists AVIF (Chromium's for images) gets AVIF from
    // fmt=auto. (From a page with no Content-Security-Policy of its own.)
    let page = base(server.addr);
    browser.goto(&format!("{page}/test-pattern.png")).await;
    let accept = browser
        .run(
            r#"const [src, done] = arguments;
fetch(src, { headers: { Accept: 'image/avif,image/webp,image/apng,image/*,*/*;q=0.8' } })
  .then((r) => done({ type: r.headers.get('content-type'), vary: r.headers.get('vary') }),
        (e) => done({ error: String(e) }));"#,
            vec![json!(format!("{page}/test-pattern.png?w=128"))],
        )
        .await;
    if accept["type"] != "image/avif" || accept["vary"] != "accept" {
        failures.push(format!("fmt=auto for an AVIF client: {accept}"));
    }
    browser.close().await;
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_page_renders_working_players() {
    let _serial = crate::MEASURE.lock().await;
    let server = serve_samples(&[]).await;
    let browser = Browser::start().await;
    let root = base(server.addr);
    browser.goto(&format!("{root}/")).await;
    let page = browser.run(INDEX_PLAYERS, vec![]).await;
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        strings(&page["videos"]),
        [
            "/test-pattern-moov-at-end.mp4",
            "/test-pattern.mp4",
            "/test-pattern.webm"
        ]
    );
    assert_eq!(strings(&page["audios"]), ["/tone.mp3", "/tone.ogg"]);
    // The MP4s show their frame at 1 s as a poster, 640 wide, which decodes;
    // every player shows its duration (and a video its size) once read.
    assert_eq!(
        page["posters"],
        json!([
            "/test-pattern-moov-at-end.mp4?frame=1&w=640",
            "/test-pattern.mp4?frame=1&w=640",
            null
        ])
    );
    assert_eq!(page["posterWidths"], json!([640, 640]), "{page}");
    assert_eq!(
        strings(&page["durations"]),
        [
            "0:10 · 640×360",
            "0:10 · 640×360",
            "0:10 · 640×360",
            "0:10",
            "0:10"
        ]
    );
    // Images show through their thumbnail derivative, and decode.
    assert_eq!(
        strings(&page["images"]),
        [
            "/test-pattern.jpg?w=384",
            "/test-pattern.png?w=384",
            "/test-pattern.webp?w=384"
        ]
    );
    assert_eq!(page["thumbnails"], json!([384, 384, 384]), "{page}");
    for player in page["loaded"].as_array().unwrap() {
        assert!(
            player[1].as_u64().unwrap() >= 1 && player[2].is_null(),
            "a player did not load its metadata: {player}"
        );
    }
    // The page's own script ran (its hash is in the policy) and made the URLs
    // absolute; its style applied.
    let names = strings(&page["names"]);
    let urls = strings(&page["urls"]);
    assert_eq!(names.len(), 8);
    for (name, url) in names.iter().zip(&urls) {
        assert_eq!(url, &format!("{root}/{name}"));
    }
    assert_eq!(
        page["snippets"][2],
        format!(
            "<video controls poster=\"{root}/test-pattern.mp4?frame=1&w=640\" src=\"{root}/test-pattern.mp4\"></video>"
        )
    );
    let jpg = format!("{root}/test-pattern.jpg");
    assert_eq!(
        page["snippets"][1],
        format!(
            "<img src=\"{jpg}\" srcset=\"{jpg}?w=384 384w, {jpg}?w=640 640w, {jpg}?w=1080 1080w, {jpg}?w=1920 1920w\" sizes=\"(max-width: 640px) 100vw, 640px\" alt=\"\">"
        )
    );
    assert_eq!(page["layout"], "grid");
    assert_eq!(page["injected"], false);
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_markup_show_as_text() {
    let _serial = crate::MEASURE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let evil = "\"><img src=x onerror=\"window.injected=true\">.png";
    std::fs::copy(
        sample_media().join("test-pattern.png"),
        dir.path().join(evil),
    )
    .unwrap();
    let evil_text = "<svg onload=\"window.injected=true\">.txt";
    std::fs::write(dir.path().join(evil_text), b"x").unwrap();
    let server = Running::start(dir.path(), &[]).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{}/", base(server.addr))).await;
    let page = browser.run(INDEX_PLAYERS, vec![]).await;
    assert_eq!(page["injected"], false, "{page}");
    assert_eq!(page["names"], json!([evil, evil_text]));
    // The thumbnail leads to the file's derivative.
    let image = browser
        .run(DECODE_IMAGE, vec![page["images"][0].clone()])
        .await;
    assert_eq!(image["width"], 384, "{image}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_another_origin_plays_only_what_cors_allows() {
    let _serial = crate::MEASURE.lock().await;
    // The page's origin: another server (another port, and the name
    // `localhost` rather than the address).
    let page_dir = tempfile::tempdir().unwrap();
    let page_server = Running::start(page_dir.path(), &[]).await;
    let page_origin = format!("http://localhost:{}", page_server.addr.port());
    let allowed = serve_samples(&[("MEDIA_CORS_ALLOW_ORIGIN", page_origin.as_str())]).await;
    let other = serve_samples(&[("MEDIA_CORS_ALLOW_ORIGIN", "https://elsewhere.example")]).await;
    let none = serve_samples(&[]).await;
    let browser = Browser::start().await;
    browser.goto(&format!("{page_origin}/")).await;
    let mut results = Vec::new();
    for (name, server, plays) in [
        ("origin allowed", &allowed, true),
        ("another origin allowed", &other, false),
        ("CORS off", &none, false),
    ] {
        let src = format!("{}/test-pattern.mp4", base(server.addr));
        let result = browser
            .run(
                PLAY_AND_SEEK,
                vec![json!(src), json!("video"), json!(3.0), json!(true)],
            )
            .await;
        println!("crossorigin video, {name}: {result}");
        let ok = if plays {
            result["outcome"] == "seeked" && result["pixelsReadable"] == true
        } else {
            result["outcome"] == "error" && result["error"] == 4
        };
        results.push((name, ok, result));
    }
    browser.close().await;
    let failed: Vec<_> = results.iter().filter(|(_, ok, _)| !ok).collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

/// One request as a server received it, before the service answered.
#[derive(Clone, Debug)]
struct Received {
    /// When it arrived, in milliseconds since the Unix epoch: the clock of
    /// JavaScript's `Date.now()` in the browser on the same machine.
    at_ms: f64,
    method: String,
    path: String,
    range: Option<String>,
}

impl Received {
    /// The first byte its Range header asks for (`bytes=N-...`).
    fn range_start(&self) -> Option<u64> {
        let spec = self.range.as_deref()?.strip_prefix("bytes=")?;
        spec.split('-').next()?.parse().ok()
    }
}

/// A [`MediaService`] on a loopback port that records every request the
/// moment it arrives. The crate's transport takes a `MediaService` as it is,
/// so this is its accept loop (HTTP/1.1, keep-alive) with a recording layer
/// in front of the service; the answers are the service's own.
struct RecordingServer {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    accept: JoinHandle<()>,
}

impl RecordingServer {
    async fn start(root: &Path, faststart: FaststartSettings) -> Self {
        let mut settings = crate::fixture::settings();
        settings.limits.open_ended_cap = RANGE_CHUNK.parse().unwrap();
        settings.faststart = Faststarts::new(faststart);
        let source = Arc::new(DirSource::new(root).expect("media root"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let recorded = MediaService::new(source, settings).map_request(
            move |request: http::Request<Incoming>| {
                let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
                log.lock().unwrap().push(Received {
                    at_ms: at.as_secs_f64() * 1000.0,
                    method: request.method().to_string(),
                    path: request.uri().path().to_owned(),
                    range: request
                        .headers()
                        .get(http::header::RANGE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                });
                request
            },
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let connection = http1::Builder::new().keep_alive(true).serve_connection(
                    TokioIo::new(stream),
                    TowerToHyperService::new(recorded.clone()),
                );
                tokio::spawn(connection);
            }
        });
        RecordingServer {
            addr,
            received,
            accept,
        }
    }

    /// The requests of `path` so far, in the order they arrived.
    fn received(&self, path: &str) -> Vec<Received> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

impl Drop for RecordingServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

const MOOV_AT_END_MOVIE: &str = "moov-at-end.mp4";
const FASTSTART_MOVIE: &str = "faststart.mp4";
const MOVIE_SECONDS: f64 = 20.0;
/// Where the test seeks the movies to, in seconds.
const SEEK_TO: f64 = 15.0;

/// Makes two 20 s movies of the same H.264 and AAC streams in `dir`:
/// [`MOOV_AT_END_MOVIE`] as ffmpeg writes an MP4 by default (ftyp, free,
/// mdat, moov) and [`FASTSTART_MOVIE`], the same streams remuxed with
/// `-movflags +faststart` (ftyp, moov, free, mdat). 640x360 at 25 frames a
/// second, a key frame every 2 s, about 3 MB: a player fetches it in more
/// than one range (open ranges are capped at [`RANGE_CHUNK`]) and a seek to
/// 15 s needs data far from the start.
fn make_movies(dir: &Path) {
    let ffmpeg = |args: &[&str]| {
        crate::video::ffmpeg(dir, args);
    };
    let seconds = MOVIE_SECONDS.to_string();
    let video = format!("testsrc2=size=640x360:rate=25:duration={seconds}");
    let audio = format!("sine=frequency=440:sample_rate=48000:duration={seconds}");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &video,
        "-f",
        "lavfi",
        "-i",
        &audio,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "50",
        "-b:v",
        "1200k",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        MOOV_AT_END_MOVIE,
    ]);
    ffmpeg(&[
        "-i",
        MOOV_AT_END_MOVIE,
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        FASTSTART_MOVIE,
    ]);
}

/// Loads `src` into a `<video preload="auto" muted>`, waits for
/// `loadedmetadata`, then `canplay`, seeks, waits for `seeked` and `canplay`
/// again, and reports what the element says, with the `Date.now()` of
/// `loadedmetadata` and of the seek. Every wait has a deadline that names the
/// event awaited, the four together shorter than the WebDriver script
/// timeout.
const LOAD_AND_SEEK: &str = r#"
const [src, seekTo, done] = arguments;
const v = document.createElement('video');
v.preload = 'auto';
v.muted = true;
const result = {};
const state = () => ({
  readyState: v.readyState,
  currentTime: v.currentTime,
  duration: v.duration,
  videoWidth: v.videoWidth,
  videoHeight: v.videoHeight,
  error: v.error ? `${v.error.code} ${v.error.message}` : null,
});
const event = (name, already) => new Promise((resolve, reject) => {
  if (already && already()) return resolve();
  const timer = setTimeout(() => reject(new Error(`no ${name} within 10 s`)), 10000);
  v.addEventListener(name, () => { clearTimeout(timer); resolve(); }, { once: true });
  v.addEventListener('error', () => { clearTimeout(timer); reject(new Error(`error before ${name}`)); }, { once: true });
});
v.addEventListener('loadedmetadata', () => { result.metadataAt = Date.now(); }, { once: true });
(async () => {
  const metadata = event('loadedmetadata');
  v.src = src;
  document.body.appendChild(v);
  await metadata;
  result.atMetadata = state();
  await event('canplay', () => v.readyState >= 3);
  const seeked = event('seeked');
  result.seekAt = Date.now();
  v.currentTime = seekTo;
  await seeked;
  await event('canplay', () => v.readyState >= 3);
  result.outcome = 'seeked';
})().catch((e) => { result.outcome = String(e.message || e); })
  .finally(() => { result.afterSeek = state(); v.remove(); done(result); });
"#;

/// Chromium plays and seeks a moov-at-end movie served faststart, and needs
/// no more requests for its metadata than for the same movie stored
/// faststart, none of them for the end of the file; served as stored, the
/// same movie needs a request for its `moov` at the end first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moov_at_end_movie_loads_on_as_few_requests_as_a_faststart_one() {
    let _serial = crate::MEASURE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    make_movies(dir.path());
    for (file, layout) in [
        (MOOV_AT_END_MOVIE, ["ftyp", "free", "mdat", "moov"]),
        (FASTSTART_MOVIE, ["ftyp", "moov", "free", "mdat"]),
    ] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap();
        let kinds: Vec<_> = mp4::scan_top_level_bytes(&bytes)
            .unwrap()
            .iter()
            .map(|b| b.kind_name())
            .collect();
        assert_eq!(kinds, layout, "{file} as ffmpeg made it");
    }
    // A blank page of the servers' origin for the players: a stored text
    // file, which Chromium shows as a document of its own (the index page
    // would load players of its own, and stored HTML is sandboxed by its
    // Content-Security-Policy: no script runs in it).
    std::fs::write(dir.path().join("page.txt"), "player").unwrap();
    let on = RecordingServer::start(dir.path(), FaststartSettings::default()).await;
    let off = RecordingServer::start(
        dir.path(),
        FaststartSettings {
            enabled: false,
            ..FaststartSettings::default()
        },
    )
    .await;
    let size = std::fs::metadata(dir.path().join(MOOV_AT_END_MOVIE))
        .unwrap()
        .len();
    let browser = Browser::start().await;
    // (case, server, file, whether it asks for the end of the file before
    // loadedmetadata)
    let cases = [
        (
            "moov at the end, faststart on",
            &on,
            MOOV_AT_END_MOVIE,
            false,
        ),
        ("stored faststart", &on, FASTSTART_MOVIE, false),
        (
            "moov at the end, faststart off",
            &off,
            MOOV_AT_END_MOVIE,
            true,
        ),
    ];
    let mut failures = Vec::new();
    let mut before_metadata = Vec::new();
    for (case, server, file, asks_for_the_end) in cases {
        browser
            .goto(&format!("{}/page.txt", base(server.addr)))
            .await;
        let path = format!("/{file}");
        let result = browser
            .run(LOAD_AND_SEEK, vec![json!(path), json!(SEEK_TO)])
            .await;
        let after = &result["afterSeek"];
        let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
        if result["outcome"] != "seeked"
            || after["videoWidth"] != 640
            || after["videoHeight"] != 360
            || (number(&after["duration"]) - MOVIE_SECONDS).abs() > 0.1
            || (number(&after["currentTime"]) - SEEK_TO).abs() > 0.1
            || after["readyState"].as_u64().unwrap_or(0) < 3
        {
            failures.push(format!("{case}: {result}"));
            continue;
        }
        // Date.now() has whole milliseconds: a request in the millisecond
        // of the event counts as before it.
        let metadata_at = number(&result["metadataAt"]) + 1.0;
        let seek_at = number(&result["seekAt"]);
        let received = server.received(&path);
        let early: Vec<_> = received.iter().filter(|r| r.at_ms < metadata_at).collect();
        // A request that goes on where an earlier open range was cut (its
        // start is that range's start plus the cap) is the player reading
        // ahead, not a round trip the metadata waited for; it may land a
        // millisecond either side of the event, so it is not counted.
        let chunk: u64 = RANGE_CHUNK.parse().unwrap();
        let round_trips = early
            .iter()
            .enumerate()
            .filter(|(i, r)| {
                let start = r.range_start();
                !early[..*i].iter().any(|e| {
                    e.range.as_deref().is_some_and(|g| g.ends_with('-'))
                        && e.range_start().map(|s| s + chunk) == start
                })
            })
            .count();
        let for_seek = received.iter().filter(|r| r.at_ms >= seek_at).count();
        let shown: Vec<_> = received
            .iter()
            .map(|r| {
                format!(
                    "{} {} at {:+.0} ms",
                    r.method,
                    r.range.as_deref().unwrap_or("-"),
                    r.at_ms - metadata_at
                )
            })
            .collect();
        println!(
            "{case}: {} requests before loadedmetadata ({round_trips} not reading ahead), \
             {} from the seek on, {} in all, relative to loadedmetadata: {shown:?}",
            early.len(),
            for_seek,
            received.len()
        );
        let late = early
            .iter()
            .any(|r| r.range_start().is_some_and(|s| s > size / 2));
        if late != asks_for_the_end {
            failures.push(format!(
                "{case}: a request for the end of the file before loadedmetadata: {late}, \
                 expected {asks_for_the_end}: {shown:?}"
            ));
        }
        before_metadata.push(round_trips);
    }
    browser.close().await;
    println!("requests loadedmetadata waited for (on, stored faststart, off): {before_metadata:?}");
    assert!(failures.is_empty(), "{failures:#?}");
    let [rewritten, faststart, as_stored] = before_metadata[..] else {
        unreachable!("three cases, all measured");
    };
    assert!(
        rewritten <= faststart,
        "faststart on the fly needed {rewritten} requests, the faststart file {faststart}"
    );
    assert!(
        as_stored > faststart,
        "the moov-at-end file as stored needed {as_stored} requests, the faststart file {faststart}"
    );
}
