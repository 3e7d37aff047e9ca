//! A media directory made at test time, with a secret next to it that no
//! request may ever reach, and a server over it on a real socket.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use http::HeaderValue;
use media_streamer::derivative::{ImageSettings, Renderer};
use media_streamer::faststart::{FaststartSettings, Faststarts};
use media_streamer::protocol::range::RangeLimits;
use media_streamer::service::{MediaService, ServiceSettings};
use media_streamer::source::dir::DirSource;
use media_streamer::transport::local::{serve, LocalSettings};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Open-ended ranges are capped to this in the tests.
pub const CHUNK: u64 = 4096;
pub const CACHE_CONTROL: &str = "public, max-age=60";
pub const MAX_RANGES: usize = 16;
/// Index pages are short in the tests, so that paging shows.
pub const INDEX_PAGE_SIZE: usize = 3;
/// Bytes of the file outside the root; no response may ever contain them.
pub const SECRET: &[u8] = b"SECRET-OUTSIDE-THE-MEDIA-ROOT";

/// Distinct bytes at every offset of a short span, so a misplaced range shows.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(31)
                .wrapping_add((i / 251) as u32)
                .wrapping_add(seed as u32) as u8
        })
        .collect()
}

pub struct Fixture {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("media");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.bin"), SECRET).unwrap();
        std::fs::write(root.join("bytes.bin"), pattern(10_000, 0)).unwrap();
        std::fs::write(root.join("empty.bin"), b"").unwrap();
        std::fs::write(root.join("name with spaces é.mp4"), pattern(1_000, 7)).unwrap();
        std::fs::write(root.join("sub/clip.webm"), pattern(3_000, 13)).unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/orient-6.jpg"),
            root.join(crate::table::derivatives::PHOTO),
        )
        .unwrap();
        for name in [
            crate::table::faststart::MOOV_AT_END,
            crate::table::faststart::FASTSTART,
            crate::table::faststart::FRAGMENTED,
        ] {
            let file = Path::new(name).file_name().unwrap();
            std::fs::copy(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/video")
                    .join(file),
                root.join(name),
            )
            .unwrap();
        }
        std::fs::write(
            root.join(crate::table::derivatives::BROKEN),
            pattern(2_000, 5),
        )
        .unwrap();
        std::fs::write(root.join(".hidden"), SECRET).unwrap();
        std::os::unix::fs::symlink("sub/clip.webm", root.join("inside-link.mp3")).unwrap();
        std::os::unix::fs::symlink("../outside/secret.bin", root.join("escape.mp4")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("outside-link")).unwrap();
        Fixture { _dir: dir, root }
    }

    pub fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.root.join(name)).unwrap()
    }

    /// The validators a directory source must send for `name`, worked out here
    /// from the file system: a strong ETag of size and mtime in nanoseconds, and
    /// the mtime as an HTTP date.
    pub fn validators(&self, name: &str) -> Validators {
        let md = std::fs::metadata(self.root.join(name)).unwrap();
        let mtime = md.modified().unwrap();
        let nanos = mtime.duration_since(UNIX_EPOCH).unwrap().as_nanos();
        Validators {
            etag: format!("\"{:x}-{:x}\"", md.len(), nanos),
            last_modified: httpdate::fmt_http_date(mtime),
            last_modified_minus_1s: httpdate::fmt_http_date(mtime - Duration::from_secs(1)),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Validators {
    pub etag: String,
    pub last_modified: String,
    pub last_modified_minus_1s: String,
}

pub fn settings() -> ServiceSettings {
    ServiceSettings {
        limits: RangeLimits {
            open_ended_cap: CHUNK,
            max_ranges: MAX_RANGES,
        },
        cache_control: HeaderValue::from_static(CACHE_CONTROL),
        denied_status: http::StatusCode::FORBIDDEN,
        cors: media_streamer::cors::CorsPolicy::Off,
        index_page_size: Some(INDEX_PAGE_SIZE),
        signing: None,
        images: Renderer::new(ImageSettings::default()),
        faststart: Faststarts::new(FaststartSettings::default()),
    }
}

/// The local server, in this process, on a loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start(root: &Path, local: LocalSettings) -> Self {
        let source = DirSource::new(root).expect("media root");
        Self::start_service(MediaService::new(Arc::new(source), settings()), local).await
    }

    /// Serves any service (another source) the same way.
    pub async fn start_service(service: MediaService, local: LocalSettings) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, service, local, async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Signals shutdown and waits for the server to return.
    pub async fn stop(mut self) -> std::io::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap()
    }
}

pub fn default_local() -> LocalSettings {
    LocalSettings {
        header_read_timeout: Duration::from_secs(10),
        queued_bytes: media_streamer::source::dir::READ_CHUNK_BYTES,
        write_timeout: Duration::from_secs(60),
        max_connections: 1024,
    }
}

/// Cuts the file at `path` to nothing: every read past its start then fails.
pub async fn truncate(path: &Path) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// A loopback port free at the time of asking, for servers that must be told
/// their port (the Lambda emulator, the S3 server).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
