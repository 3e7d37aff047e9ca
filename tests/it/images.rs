//! Image derivatives over real sockets: hostile sources, the render bound,
//! one render per derivative, and stored derivatives in a directory and in
//! the S3-compatible server, with the S3 requests each GET costs.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use media_streamer::derivative::store::{DerivedStore, StoredDerivative};
use media_streamer::derivative::{ImageSettings, Renderer};
use media_streamer::service::MediaService;
use media_streamer::source::dir::DirSource;
use media_streamer::source::s3::{Bucket, S3Source};
use media_streamer::source::Source;

use crate::client::send;
use crate::fixture::{default_local, pattern, settings, TestServer};
use crate::s3::{bucket_with, S3Server, BUCKET};

fn fixture_image(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/images")
            .join(name),
    )
    .unwrap()
}

/// A photo-like PNG of `width`×`height`: gradients and detail, so that it
/// takes an encoder real work.
fn large_png(width: u32, height: u32) -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(width, height, |x, y| {
        let v = (x * 7 + y * 13) ^ (x * y);
        image::Rgb([(x % 256) as u8, (y % 256) as u8, (v % 256) as u8])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    pixels.write_to(&mut png, image::ImageFormat::Png).unwrap();
    png.into_inner()
}

async fn serve(source: Arc<dyn Source>, images: ImageSettings) -> (TestServer, Arc<Renderer>) {
    let mut settings = settings();
    settings.images = Renderer::new(images);
    let renderer = Arc::clone(&settings.images);
    let service = MediaService::new(source, settings);
    (
        TestServer::start_service(service, default_local()).await,
        renderer,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sources_get_a_4xx_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let photo = fixture_image("orient-6.jpg");
    std::fs::write(dir.path().join("bomb.png"), fixture_image("bomb.png")).unwrap();
    std::fs::write(dir.path().join("cut.jpg"), &photo[..photo.len() / 2]).unwrap();
    std::fs::write(dir.path().join("empty.jpg"), b"").unwrap();
    std::fs::write(dir.path().join("noise.png"), pattern(5000, 3)).unwrap();
    std::fs::write(dir.path().join("photo.jpg"), &photo).unwrap();
    std::fs::write(dir.path().join("cmyk.jpg"), fixture_image("cmyk.jpg")).unwrap();
    std::fs::write(dir.path().join("deep.png"), fixture_image("rgba16.png")).unwrap();
    let source = Arc::new(DirSource::new(dir.path()).unwrap());
    let (server, renderer) = serve(source, ImageSettings::default()).await;
    // (target, status, start of the reason)
    let cases = [
        (
            "/bomb.png?w=64",
            422,
            "422 Unprocessable Entity: image has 1600000000 pixels, over the limit of 50000000",
        ),
        (
            "/cut.jpg?w=32",
            422,
            "422 Unprocessable Entity: corrupt image",
        ),
        (
            "/empty.jpg?w=32",
            422,
            "422 Unprocessable Entity: unsupported image",
        ),
        (
            "/noise.png?w=32",
            422,
            "422 Unprocessable Entity: unsupported image",
        ),
        ("/photo.jpg?w=32&fmt=webp", 200, ""),
        ("/cmyk.jpg?w=32&fmt=png", 200, ""),
        ("/deep.png?w=32&fmt=avif", 200, ""),
    ];
    let mut failures = Vec::new();
    for (target, status, reason) in cases {
        let started = Instant::now();
        let response = send(server.addr, "GET", target, &[]).await;
        let took = started.elapsed();
        let body = String::from_utf8_lossy(&response.body).to_string();
        let ok = response.status == status
            && (status == 200 || body.starts_with(reason))
            && took < Duration::from_secs(5);
        if !ok {
            failures.push(format!(
                "{target}: {} in {took:?}: {body:?}",
                response.status
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(
        renderer.renders(),
        3,
        "only the three good sources were rendered"
    );
    // The server is still there and still serves the stored bytes.
    let stored = send(server.addr, "GET", "/photo.jpg", &[("Range", "bytes=0-9")]).await;
    assert_eq!((stored.status, stored.body.as_slice()), (206, &photo[..10]));
    server.stop().await.unwrap();
}

/// `jpeg` with `count` application segments of `len` bytes each (APP3,
/// which no reader interprets) after its SOI: metadata before the frame
/// header, as a large EXIF or ICC profile puts there.
fn with_metadata_before_the_frame(jpeg: &[u8], count: usize, len: u16) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    for n in 0..count {
        out.extend_from_slice(&[0xFF, 0xE3]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend(std::iter::repeat_n(n as u8, usize::from(len) - 2));
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jpeg_with_its_frame_header_past_the_probe_head_is_rendered() {
    // 12 segments of 64 KiB: the frame header is 786,420 bytes in, past the
    // 256 KiB head the probe read (a 422 "header incomplete or truncated").
    let dir = tempfile::tempdir().unwrap();
    let photo = fixture_image("orient-6.jpg");
    let big = with_metadata_before_the_frame(&photo, 12, u16::MAX);
    assert!(big.len() > 3 * 256 * 1024);
    std::fs::write(dir.path().join("big.jpg"), &big).unwrap();
    let plain = with_metadata_before_the_frame(&photo, 0, 2);
    std::fs::write(dir.path().join("plain.jpg"), &plain).unwrap();
    let source = Arc::new(DirSource::new(dir.path()).unwrap());
    let (server, _) = serve(source, ImageSettings::default()).await;
    let big = send(server.addr, "GET", "/big.jpg?w=32&fmt=png", &[]).await;
    let plain = send(server.addr, "GET", "/plain.jpg?w=32&fmt=png", &[]).await;
    assert_eq!(
        (
            big.status,
            String::from_utf8_lossy(&big.body[..big.body.len().min(80)])
        ),
        (
            200,
            String::from_utf8_lossy(&plain.body[..plain.body.len().min(80)])
        ),
    );
    assert_eq!(
        big.body, plain.body,
        "the same picture, EXIF orientation kept"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_are_bounded_and_shared_and_other_requests_go_on() {
    let _measure = crate::MEASURE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.png"), large_png(2400, 1600)).unwrap();
    std::fs::write(dir.path().join("small.bin"), pattern(4096, 9)).unwrap();
    let source = Arc::new(DirSource::new(dir.path()).unwrap());
    let images = ImageSettings {
        workers: 1,
        ..ImageSettings::default()
    };
    let (server, renderer) = serve(source, images).await;
    let addr = server.addr;

    // Eight requests for one derivative: one render, the same bytes for all.
    let same: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(async move { send(addr, "GET", "/big.png?w=640&fmt=webp", &[]).await })
        })
        .collect();
    let mut bodies = Vec::new();
    for request in same {
        let response = request.await.unwrap();
        assert_eq!(response.status, 200);
        bodies.push(response.body);
    }
    assert!(bodies.windows(2).all(|pair| pair[0] == pair[1]));
    assert_eq!(renderer.renders(), 1, "eight requests, one render");

    // Four different renders queue behind one worker while small reads go on.
    let widths = ["1280", "1080", "828", "750"];
    let renders: Vec<_> = widths
        .iter()
        .map(|w| {
            let target = format!("/big.png?w={w}&fmt=jpeg");
            tokio::spawn(async move {
                let started = Instant::now();
                let response = send(addr, "GET", &target, &[]).await;
                (response.status, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut small = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let response = send(addr, "GET", "/small.bin", &[("Range", "bytes=0-99")]).await;
        assert_eq!(response.status, 206);
        small.push(started.elapsed());
    }
    let mut slowest_render = Duration::ZERO;
    for render in renders {
        let (status, took) = render.await.unwrap();
        assert_eq!(status, 200);
        slowest_render = slowest_render.max(took);
    }
    small.sort();
    let median = small[small.len() / 2];
    println!("four renders on one worker: the last done after {slowest_render:?}; small reads beside them: median {median:?}, slowest {:?}", small[small.len() - 1]);
    assert_eq!(renderer.renders(), 5);
    assert!(
        median < Duration::from_millis(50),
        "small reads waited on renders: median {median:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_store_keeps_derivatives_and_notices_a_changed_source() {
    let media = tempfile::tempdir().unwrap();
    let derived = tempfile::tempdir().unwrap();
    std::fs::write(
        media.path().join("photo.jpg"),
        fixture_image("orient-6.jpg"),
    )
    .unwrap();
    let images = ImageSettings {
        store: Some(DerivedStore::Dir(derived.path().to_owned())),
        ..ImageSettings::default()
    };
    let source = Arc::new(DirSource::new(media.path()).unwrap());
    let (server, renderer) = serve(source, images).await;
    let target = "/photo.jpg?w=32&fmt=webp";
    let first = send(server.addr, "GET", target, &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(renderer.renders(), 1);
    // Kept under a name that holds the source's version.
    let kept = || stored_versions(&derived.path().join("photo.jpg"), "w=32,fmt=webp");
    let stored = kept();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        std::fs::read(&stored[0]).unwrap(),
        first.body,
        "the render is kept"
    );

    // Read back: the same bytes and ETag, no render; a restart keeps it.
    let second = send(server.addr, "GET", target, &[]).await;
    assert_eq!(
        (second.body.clone(), second.header("etag")),
        (first.body.clone(), first.header("etag"))
    );
    server.stop().await.unwrap();
    let images = ImageSettings {
        store: Some(DerivedStore::Dir(derived.path().to_owned())),
        ..ImageSettings::default()
    };
    let source = Arc::new(DirSource::new(media.path()).unwrap());
    let (server, renderer) = serve(source, images).await;
    let after_restart = send(server.addr, "GET", target, &[]).await;
    assert_eq!(after_restart.body, first.body);
    assert_eq!(renderer.renders(), 0, "read back, not rendered");

    // A new source: a new ETag at once, and a new render.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(
        media.path().join("photo.jpg"),
        fixture_image("orient-1.jpg"),
    )
    .unwrap();
    let changed = send(server.addr, "GET", target, &[]).await;
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), first.header("etag"));
    assert_eq!(renderer.renders(), 1);
    // The new version's render is kept beside nothing: the old one goes.
    let mut now = kept();
    for _ in 0..50 {
        if now.len() == 1 && now != stored {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = kept();
    }
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now, stored);
    assert_eq!(std::fs::read(&now[0]).unwrap(), changed.body);
    server.stop().await.unwrap();
}

/// The derivatives `CANONICAL` of the source whose directory in a
/// directory store is `dir`, one per source version kept: the files named
/// `CANONICAL,e=VERSION,s=SOURCE` (their `.meta` left out).
fn stored_versions(dir: &Path, canonical: &str) -> Vec<std::path::PathBuf> {
    let prefix = format!("{canonical},e={},s=", media_streamer::image::ENGINE_VERSION);
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().into_owned();
                    name.starts_with(&prefix) && !name.ends_with(".meta")
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_store_costs_a_new_process_one_head_and_one_get() {
    let s3 = S3Server::start().await;
    let s3_client = bucket_with(&s3, vec![]).await;
    let put = |bytes: Vec<u8>| {
        s3_client
            .put_object()
            .bucket(BUCKET)
            .key("photos/cat.jpg")
            .content_type("image/jpeg")
            .body(ByteStream::from(bytes))
            .send()
    };
    put(fixture_image("orient-6.jpg")).await.unwrap();
    let start = |recheck_after: Duration| {
        let images = ImageSettings {
            store: Some(DerivedStore::S3 {
                bucket: Bucket::new(s3_client.clone(), BUCKET),
                prefix: "_derived/".to_owned(),
            }),
            recheck_after,
            ..ImageSettings::default()
        };
        let source = Arc::new(S3Source::new(s3_client.clone(), BUCKET, "", None));
        serve(source, images)
    };
    let (server, renderer) = start(Duration::from_secs(60)).await;
    let target = "/photos/cat.jpg?w=32&fmt=webp";
    // The stored name holds the source's version.
    let versioned_key = |etag: &str| {
        let params = media_streamer::derivative::params::parse(
            Some("w=32&fmt=webp"),
            media_streamer::derivative::params::DEFAULT_SIZES,
        )
        .unwrap()
        .unwrap();
        let id = media_streamer::derivative::DerivativeId::new("photos/cat.jpg", params, None);
        format!("/{BUCKET}/_derived/{}", id.versioned_name(etag))
    };
    let source_etag = || async {
        let head = s3_client
            .head_object()
            .bucket(BUCKET)
            .key("photos/cat.jpg")
            .send()
            .await
            .unwrap();
        head.e_tag().unwrap().to_owned()
    };
    let first_version = versioned_key(&source_etag().await);

    let before = s3.requests().len();
    let first = send(server.addr, "GET", target, &[]).await;
    assert_eq!(first.status, 200);
    // After the answer, in the background: the listing of other versions.
    let first_requests = s3
        .wait_for(before, &format!("GET /{BUCKET}/?list-type=2"))
        .await;
    println!("S3 requests of the first GET: {first_requests:?}");
    assert!(
        first_requests.iter().any(|r| r.starts_with("PUT ")),
        "{first_requests:?}"
    );

    // The same process again: from memory, no S3 request.
    let before = s3.requests().len();
    let again = send(server.addr, "GET", target, &[]).await;
    assert_eq!(again.body, first.body);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s3.requests()[before..].to_vec(), Vec::<String>::new());
    assert_eq!(renderer.renders(), 1);
    server.stop().await.unwrap();

    // A new process (a cold Lambda): the source described (HeadObject: its
    // version names the derivative), then one GetObject of the stored
    // derivative, no render.
    let (server, renderer) = start(Duration::from_secs(60)).await;
    let before = s3.requests().len();
    let second = send(server.addr, "GET", target, &[("Range", "bytes=0-9")]).await;
    assert_eq!(second.status, 206);
    assert_eq!(second.body, first.body[..10]);
    assert_eq!(second.header("etag"), first.header("etag"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second_requests = s3.requests()[before..].to_vec();
    println!("S3 requests of the second GET: {second_requests:?}");
    assert_eq!(
        second_requests,
        vec![
            format!("HEAD /{BUCKET}/photos/cat.jpg 200"),
            format!("GET {first_version}?x-id=GetObject 200"),
        ]
    );
    assert_eq!(renderer.renders(), 0);

    // The source is replaced. This process names the derivative from the
    // version it described less than `recheck_after` ago, as a CDN would;
    // one that describes the source on every request (recheck_after 0)
    // serves the new version at once, and its render removes the old
    // version's derivative from the store.
    put(fixture_image("orient-1.jpg")).await.unwrap();
    let cached = send(server.addr, "GET", target, &[]).await;
    assert_eq!(cached.header("etag"), first.header("etag"));
    server.stop().await.unwrap();
    let (server, renderer) = start(Duration::ZERO).await;
    let fresh = send(server.addr, "GET", target, &[]).await;
    assert_ne!(
        fresh.header("etag"),
        first.header("etag"),
        "a changed source gets a new ETag"
    );
    let second_version = versioned_key(&source_etag().await);
    let exists = |path: &str| {
        let key = path.trim_start_matches(&format!("/{BUCKET}/")).to_owned();
        let s3_client = s3_client.clone();
        async move {
            s3_client
                .head_object()
                .bucket(BUCKET)
                .key(key)
                .send()
                .await
                .is_ok()
        }
    };
    let mut old_gone = false;
    for _ in 0..50 {
        old_gone = !exists(&first_version).await;
        if old_gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(old_gone, "{first_version} is still stored");
    assert!(exists(&second_version).await);
    assert_eq!(fresh.status, 200);
    assert_ne!(fresh.body, first.body);
    assert!(renderer.renders() >= 1);
    server.stop().await.unwrap();
    s3.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_store_keeps_each_derivative_whole_with_its_cache_control() {
    let s3 = S3Server::start().await;
    let s3_client = bucket_with(&s3, vec![]).await;
    let store = DerivedStore::S3 {
        bucket: Bucket::new(s3_client.clone(), BUCKET),
        prefix: "_derived/".to_owned(),
    };
    let name = "photos/cat.jpg/w=32,fmt=webp,e=img1";
    // (Cache-Control, Last-Modified): each written over the one before.
    for (cache_control, modified) in [
        (Some("private, no-store"), Some(1_700_000_000)),
        (None, None),
        (Some("public, max-age=60"), Some(1_700_000_001)),
    ] {
        let derivative = StoredDerivative {
            bytes: Bytes::from(vec![7u8; 3000]),
            content_type: "image/webp".to_owned(),
            source_etag: "\"v1\"".to_owned(),
            source_last_modified: modified.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
            cache_control: cache_control.map(str::to_owned),
        };
        store.put(name, &derivative).await.unwrap();
        let object = s3_client
            .head_object()
            .bucket(BUCKET)
            .key(format!("_derived/{name}"))
            .send()
            .await
            .unwrap();
        assert_eq!(object.cache_control(), cache_control);
        assert_eq!(store.get(name).await.unwrap(), Some(derivative));
    }
    store.remove(name).await.unwrap();
    assert_eq!(store.get(name).await.unwrap(), None);
    s3.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_derivative_carries_its_source_s_cache_control_rendered_and_stored() {
    let s3 = S3Server::start().await;
    let s3_client = bucket_with(&s3, vec![]).await;
    // (key, the source's Cache-Control, what its derivatives must carry)
    let cases = [
        (
            "private.jpg",
            Some("private, no-store"),
            "private, no-store",
        ),
        (
            "public.jpg",
            Some("public, max-age=31536000, immutable"),
            "public, max-age=31536000, immutable",
        ),
        ("plain.jpg", None, crate::fixture::CACHE_CONTROL),
    ];
    for (key, cache_control, _) in cases {
        s3_client
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .content_type("image/jpeg")
            .set_cache_control(cache_control.map(str::to_owned))
            .body(ByteStream::from(fixture_image("orient-6.jpg")))
            .send()
            .await
            .unwrap();
    }
    let start = || {
        let images = ImageSettings {
            store: Some(DerivedStore::S3 {
                bucket: Bucket::new(s3_client.clone(), BUCKET),
                prefix: "_derived/".to_owned(),
            }),
            ..ImageSettings::default()
        };
        let source = Arc::new(S3Source::new(s3_client.clone(), BUCKET, "", None));
        serve(source, images)
    };
    // Rendered, then read back from the store by a new process.
    for round in ["rendered", "stored"] {
        let (server, renderer) = start().await;
        for (key, source_policy, expected) in cases {
            let target = format!("/{key}?w=32&fmt=webp");
            let response = send(server.addr, "GET", &target, &[]).await;
            assert_eq!(response.status, 200, "{round} {key}");
            assert_eq!(
                response.header("cache-control"),
                Some(expected),
                "{round} {key}"
            );
            assert_eq!(response.header("last-modified"), None, "{round} {key}");
            if round == "rendered" {
                // The store is written beside the answer (under a name
                // holding the source's version): wait for it.
                let source = s3_client
                    .head_object()
                    .bucket(BUCKET)
                    .key(key)
                    .send()
                    .await
                    .unwrap();
                let params = media_streamer::derivative::params::parse(
                    Some("w=32&fmt=webp"),
                    media_streamer::derivative::params::DEFAULT_SIZES,
                )
                .unwrap()
                .unwrap();
                let id = media_streamer::derivative::DerivativeId::new(key, params, None);
                let stored_key = format!("_derived/{}", id.versioned_name(source.e_tag().unwrap()));
                let mut stored = None;
                for _ in 0..50 {
                    let head = s3_client
                        .head_object()
                        .bucket(BUCKET)
                        .key(&stored_key)
                        .send()
                        .await;
                    if let Ok(head) = head {
                        stored = Some(head);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let stored = stored.expect("the derivative is stored");
                assert_eq!(stored.cache_control(), source_policy, "{key}");
            }
        }
        let renders = if round == "rendered" { 3 } else { 0 };
        assert_eq!(renderer.renders(), renders, "{round}");
        server.stop().await.unwrap();
    }
    s3.stop().await;
}

/// Opens a connection and asks for `target`, then hands the connection back
/// unread: the test drops it to leave before the answer.
async fn ask_and_hold(addr: std::net::SocketAddr, target: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renders_left_by_their_clients_free_the_worker() {
    let _measure = crate::MEASURE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.png"), large_png(2400, 1600)).unwrap();
    std::fs::write(dir.path().join("photo.jpg"), fixture_image("orient-6.jpg")).unwrap();
    let source = Arc::new(DirSource::new(dir.path()).unwrap());
    let images = ImageSettings {
        workers: 1,
        ..ImageSettings::default()
    };
    let (server, renderer) = serve(source, images).await;
    let addr = server.addr;

    // (clients that leave, how long they stay): one render under way and
    // three queued behind it on the one worker, all left before any answer;
    // then the same again, left at once (the render has barely started).
    let rounds: [(&[&str], Duration); 2] = [
        (&["1280", "1080", "828", "750"], Duration::from_millis(500)),
        (&["640", "384", "320", "256"], Duration::from_millis(20)),
    ];
    for (widths, stay) in rounds {
        let mut clients = Vec::new();
        for w in widths {
            clients.push(ask_and_hold(addr, &format!("/big.png?w={w}&fmt=jpeg")).await);
        }
        tokio::time::sleep(stay).await;
        drop(clients);
    }

    // A new render is served: the renders nobody waits for let the worker go.
    let started = Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        send(addr, "GET", "/photo.jpg?w=32&fmt=webp", &[]),
    )
    .await;
    let took = started.elapsed();
    let answer = answer.unwrap_or_else(|_| {
        panic!("a render after clients left waited {took:?} and got no answer")
    });
    println!(
        "a render after eight clients left mid-render: {} in {took:?}, {} renders done",
        answer.status,
        renderer.renders()
    );
    assert_eq!(answer.status, 200);
    // At most the two renders under way when their clients left, and this
    // one: the queued renders nobody waits for are dropped.
    assert!(renderer.renders() <= 3, "{} renders", renderer.renders());
    // And the server serves the big image's derivatives again.
    let again = tokio::time::timeout(
        Duration::from_secs(30),
        send(addr, "GET", "/big.png?w=256&fmt=jpeg", &[]),
    )
    .await
    .expect("a derivative of a left render is served again");
    assert_eq!(again.status, 200);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_the_render_queue_is_answered_503_while_files_are_served() {
    let _measure = crate::MEASURE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let big = large_png(2400, 1600);
    std::fs::write(dir.path().join("big.png"), &big).unwrap();
    std::fs::write(dir.path().join("small.bin"), pattern(4096, 9)).unwrap();
    let source = Arc::new(DirSource::new(dir.path()).unwrap());
    // One render at a time and two waiting.
    let images = ImageSettings {
        workers: 1,
        queue: 2,
        ..ImageSettings::default()
    };
    let (server, renderer) = serve(source, images).await;
    let addr = server.addr;

    // Eight different derivatives at once, each a render of about a second
    // here: three are taken on, five turned away at once.
    let widths = ["1280", "1080", "828", "750", "640", "384", "320", "256"];
    let burst: Vec<_> = widths
        .iter()
        .map(|w| {
            let target = format!("/big.png?w={w}&fmt=jpeg");
            tokio::spawn(async move {
                let started = Instant::now();
                let response = send(addr, "GET", &target, &[]).await;
                (target, response, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut small = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let response = send(addr, "GET", "/small.bin", &[("Range", "bytes=0-99")]).await;
        assert_eq!(response.status, 206);
        assert_eq!(response.body, pattern(4096, 9)[..100]);
        small.push(started.elapsed());
    }
    // (status, Retry-After, Cache-Control, start of the body) → how many.
    let mut answers = std::collections::BTreeMap::new();
    for request in burst {
        let (target, response, took) = request.await.unwrap();
        let body = String::from_utf8_lossy(&response.body);
        let text = if response.status == 200 {
            assert_eq!(response.header("content-type"), Some("image/jpeg"));
            String::new()
        } else {
            body.into_owned()
        };
        println!("{target}: {} in {took:?}", response.status);
        *answers
            .entry((
                response.status,
                response.header("retry-after").map(str::to_owned),
                response.header("cache-control").map(str::to_owned),
                text,
            ))
            .or_insert(0) += 1;
    }
    let busy = "503 Service Unavailable: 3 renders are under way or waiting, the most this server takes on\n";
    let expected = std::collections::BTreeMap::from([
        (
            (
                200,
                None,
                Some(crate::fixture::CACHE_CONTROL.to_owned()),
                String::new(),
            ),
            3,
        ),
        (
            (
                503,
                Some("2".to_owned()),
                Some("no-store".to_owned()),
                busy.to_owned(),
            ),
            5,
        ),
    ]);
    assert_eq!(answers, expected);
    // Those turned away read nothing of the source; those taken on read it
    // once each, and only with a worker.
    assert_eq!(renderer.renders(), 3);
    assert_eq!(renderer.source_bytes_read(), 3 * big.len() as u64);
    small.sort();
    let median = small[small.len() / 2];
    println!(
        "small reads beside the burst: median {median:?}, slowest {:?}",
        small[small.len() - 1]
    );
    assert!(
        median < Duration::from_millis(50),
        "small reads waited on renders: median {median:?}"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_past_its_deadline_is_a_503_and_the_server_goes_on() {
    let _measure = crate::MEASURE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let derived = tempfile::tempdir().unwrap();
    let big = large_png(2400, 1600);
    std::fs::write(dir.path().join("big.png"), &big).unwrap();
    std::fs::write(dir.path().join("small.bin"), pattern(4096, 9)).unwrap();
    let source = Arc::new(DirSource::new(dir.path()).unwrap());
    // A render here takes about a second: far past this deadline.
    let images = ImageSettings {
        workers: 1,
        render_timeout: Duration::from_millis(300),
        store: Some(DerivedStore::Dir(derived.path().to_owned())),
        ..ImageSettings::default()
    };
    let (server, renderer) = serve(source, images).await;
    let addr = server.addr;

    // (what, target, status, body): one render under way past the deadline,
    // one still queued behind it past its own.
    let late =
        "503 Service Unavailable: the image was not rendered within 0.3 s; ask again later\n";
    let cases = [
        ("rendering", "/big.png?w=1280&fmt=jpeg", 503, late),
        ("queued", "/big.png?w=1080&fmt=jpeg", 503, late),
    ];
    let mut requests = Vec::new();
    for (what, target, status, body) in cases {
        requests.push((
            what,
            status,
            body,
            tokio::spawn(async move {
                let started = Instant::now();
                (send(addr, "GET", target, &[]).await, started.elapsed())
            }),
        ));
        // The first has its worker before the second asks.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (what, status, body, request) in requests {
        let (response, took) = request.await.unwrap();
        println!("{what}: {} in {took:?}", response.status);
        assert_eq!(
            (
                response.status,
                response.header("retry-after"),
                String::from_utf8_lossy(&response.body).as_ref()
            ),
            (status, Some("2"), body),
            "{what}"
        );
        assert!(took < Duration::from_secs(5), "{what} answered in {took:?}");
    }
    // The server goes on meanwhile.
    let small = send(addr, "GET", "/small.bin", &[("Range", "bytes=0-99")]).await;
    assert_eq!(
        (small.status, small.body.as_slice()),
        (206, &pattern(4096, 9)[..100])
    );

    // The render that was decoding runs to its end and is kept; the queued
    // one, which nobody waited for any more, never read its source.
    let started = Instant::now();
    while renderer.in_flight() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "renders never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(renderer.renders(), 1);
    assert_eq!(renderer.source_bytes_read(), big.len() as u64);
    let kept = send(addr, "GET", "/big.png?w=1280&fmt=jpeg", &[]).await;
    assert_eq!(kept.status, 200);
    assert_eq!(renderer.renders(), 1, "served as kept, not rendered again");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_lambda_runtime_a_late_render_is_a_503_with_retry_after() {
    let _measure = crate::MEASURE.lock().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.png"), large_png(2400, 1600)).unwrap();
    // An AVIF of 2048 px takes the test build many seconds.
    let function = crate::lambda::Emulated::start_with(
        dir.path(),
        &[
            ("MEDIA_RENDER_TIMEOUT_SECS", "1".to_owned()),
            ("MEDIA_IMAGE_WORKERS", "1".to_owned()),
        ],
    )
    .await;
    let started = Instant::now();
    let late = send(function.addr, "GET", "/big.png?w=2048&fmt=avif", &[]).await;
    let took = started.elapsed();
    println!(
        "a late render through the Lambda runtime: {} in {took:?}",
        late.status
    );
    assert_eq!(
        (
            late.status,
            late.header("retry-after"),
            late.header("cache-control"),
            String::from_utf8_lossy(&late.body).as_ref()
        ),
        (
            503,
            Some("2"),
            Some("no-store"),
            "503 Service Unavailable: the image was not rendered within 1 s; ask again later\n"
        )
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// The key and bytes an object is replaced with, taken once.
type Replacement = Arc<std::sync::Mutex<Option<(String, Vec<u8>)>>>;

/// A source whose object is replaced the moment a render has read it whole:
/// the render of the old version ends after the replacement.
struct ReplacedOnceRead {
    inner: Arc<S3Source>,
    client: aws_sdk_s3::Client,
    replacement: Replacement,
}

#[async_trait::async_trait]
impl Source for ReplacedOnceRead {
    fn capabilities(&self) -> media_streamer::protocol::delegation::StoreCapabilities {
        self.inner.capabilities()
    }

    async fn open(
        &self,
        key: &media_streamer::protocol::key::ObjectKey,
        plan: &media_streamer::protocol::delegation::StorePlan,
    ) -> Result<media_streamer::representation::Opened, media_streamer::representation::SourceError>
    {
        use media_streamer::representation::Opened;
        Ok(match self.inner.open(key, plan).await? {
            Opened::Found {
                description,
                reader,
                started,
            } => Opened::Found {
                reader: Arc::new(ReplaceAfterLastByte {
                    inner: reader,
                    size: description.size,
                    client: self.client.clone(),
                    replacement: Arc::clone(&self.replacement),
                }),
                description,
                started,
            },
            refused => refused,
        })
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<media_streamer::source::listing::Listing, media_streamer::representation::SourceError>
    {
        self.inner.list(prefix, after, limit).await
    }
}

/// Reads as its inner reader does; a read that reaches the last byte puts
/// the replacement (once) when it has yielded its bytes.
struct ReplaceAfterLastByte {
    inner: Arc<dyn media_streamer::representation::RangeReader>,
    size: u64,
    client: aws_sdk_s3::Client,
    replacement: Replacement,
}

impl media_streamer::representation::RangeReader for ReplaceAfterLastByte {
    fn read(
        &self,
        range: media_streamer::protocol::range::ByteRange,
    ) -> std::pin::Pin<
        Box<
            dyn futures_util::Stream<
                    Item = Result<Bytes, media_streamer::representation::SourceError>,
                > + Send,
        >,
    > {
        use futures_util::StreamExt;
        let stream = self.inner.read(range);
        if range.last + 1 != self.size {
            return stream;
        }
        let (client, replacement) = (self.client.clone(), Arc::clone(&self.replacement));
        let replace = futures_util::stream::once(async move {
            let taken = replacement.lock().unwrap().take();
            if let Some((key, bytes)) = taken {
                client
                    .put_object()
                    .bucket(BUCKET)
                    .key(key)
                    .content_type("image/jpeg")
                    .body(ByteStream::from(bytes))
                    .send()
                    .await
                    .unwrap();
            }
        })
        .filter_map(|()| async { None });
        Box::pin(stream.chain(replace))
    }
}

/// The race with a replaced source under a store: a render that read the
/// old version whole before the source was replaced, and stores after, keeps
/// its bytes under the old version's name only (its edge copy is removed,
/// not left for CloudFront to serve); the next request renders the new
/// version, and that render removes the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_of_a_replaced_source_is_never_served_for_the_new_one() {
    let s3 = S3Server::start().await;
    let original = fixture_image("orient-6.jpg");
    let s3_client = bucket_with(&s3, vec![("cat.jpg", "image/jpeg", original)]).await;
    let source = Arc::new(ReplacedOnceRead {
        inner: Arc::new(S3Source::new(s3_client.clone(), BUCKET, "", None)),
        client: s3_client.clone(),
        replacement: Arc::new(std::sync::Mutex::new(Some((
            "cat.jpg".to_owned(),
            fixture_image("orient-1.jpg"),
        )))),
    });
    let images = ImageSettings {
        store: Some(DerivedStore::S3 {
            bucket: Bucket::new(s3_client.clone(), BUCKET),
            prefix: "_derived/".to_owned(),
        }),
        // Behind CloudFront: an edge copy is kept too.
        derived_paths: true,
        recheck_after: Duration::ZERO,
        ..ImageSettings::default()
    };
    let (server, renderer) = serve(source, images).await;
    let target = "/cat.jpg?w=32&fmt=webp";
    let edge_copy = format!(
        "_derived/cat.jpg/w=32,fmt=webp,e={}",
        media_streamer::image::ENGINE_VERSION
    );
    let listed = || async {
        let listing = s3_client
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix("_derived/cat.jpg/")
            .send()
            .await
            .unwrap();
        let mut keys: Vec<String> = listing
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        keys.sort();
        keys
    };
    let delete_copy = format!("DELETE /{BUCKET}/{edge_copy}?x-id=DeleteObject");

    // The render of the old version: the answer is the old version's (what
    // was there when the request came), and the source is replaced before
    // the render is stored.
    let before = s3.requests().len();
    let old = send(server.addr, "GET", target, &[]).await;
    assert_eq!(old.status, 200);
    let requests = s3.wait_for(before, &delete_copy).await;
    println!("S3 requests of the render that raced the replacement: {requests:?}");
    assert!(
        requests.iter().any(|r| r.starts_with(&delete_copy)),
        "{requests:?}"
    );
    // Kept under the old version's name only: no copy the edge would serve.
    let kept = listed().await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].starts_with(&format!("{edge_copy},s=")), "{kept:?}");

    // The next request is of the new version: another ETag, other bytes, a
    // render; the old version's derivative goes, the new one's edge copy is
    // kept.
    let new = send(server.addr, "GET", target, &[]).await;
    assert_eq!(new.status, 200);
    assert_ne!(new.header("etag"), old.header("etag"));
    assert_ne!(new.body, old.body);
    assert_eq!(renderer.renders(), 2);
    let mut now = listed().await;
    for _ in 0..50 {
        if now.len() == 2 && !now.contains(&kept[0]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = listed().await;
    }
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(!now.contains(&kept[0]), "{now:?}");
    assert!(now.contains(&edge_copy), "{now:?}");
    let copy = s3_client
        .get_object()
        .bucket(BUCKET)
        .key(&edge_copy)
        .send()
        .await
        .unwrap();
    assert_eq!(copy.body.collect().await.unwrap().into_bytes(), new.body);
    server.stop().await.unwrap();
    s3.stop().await;
}
