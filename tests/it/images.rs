//! Image derivatives over real sockets: hostile sources, the render bound,
//! one render per derivative, and stored derivatives in a directory and in
//! the S3-compatible server, with the S3 requests each GET costs.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use media_streamer::derivative::store::DerivedStore;
use media_streamer::derivative::{ImageSettings, Renderer};
use media_streamer::service::MediaService;
use media_streamer::source::dir::DirSource;
use media_streamer::source::s3::S3Source;
use media_streamer::source::Source;

use crate::client::send;
use crate::fixture::{default_local, pattern, settings, TestServer};
use crate::s3::{client, S3Server, BUCKET};

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
    let stored = derived
        .path()
        .join("photo.jpg/w=32,fmt=webp,e=".to_owned() + media_streamer::image::ENGINE_VERSION);
    assert_eq!(
        std::fs::read(&stored).unwrap(),
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
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_store_serves_a_second_get_with_one_request() {
    let s3 = S3Server::start().await;
    let s3_client = client(&s3.endpoint());
    s3_client
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
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
                client: s3_client.clone(),
                bucket: BUCKET.to_owned(),
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
    let stored_key = format!(
        "/{BUCKET}/_derived/photos/cat.jpg/w=32,fmt=webp,e={}?x-id=GetObject",
        media_streamer::image::ENGINE_VERSION
    );

    let before = s3.requests().len();
    let first = send(server.addr, "GET", target, &[]).await;
    assert_eq!(first.status, 200);
    let first_requests = s3.requests()[before..].to_vec();
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

    // A new process (a cold Lambda): one GetObject of the stored derivative,
    // no render.
    let (server, renderer) = start(Duration::from_secs(60)).await;
    let before = s3.requests().len();
    let second = send(server.addr, "GET", target, &[("Range", "bytes=0-9")]).await;
    assert_eq!(second.status, 206);
    assert_eq!(second.body, first.body[..10]);
    assert_eq!(second.header("etag"), first.header("etag"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second_requests = s3.requests()[before..].to_vec();
    println!("S3 requests of the second GET: {second_requests:?}");
    // The answer's one read; beside it, in the background, the new process's
    // first check that the source is unchanged (then once a minute at most).
    let (reads, checks): (Vec<_>, Vec<_>) = second_requests
        .into_iter()
        .partition(|r| r.starts_with("GET "));
    assert_eq!(reads, vec![format!("GET {stored_key} 200")]);
    assert_eq!(checks, vec![format!("HEAD /{BUCKET}/photos/cat.jpg 200")]);
    assert_eq!(renderer.renders(), 0);
    server.stop().await.unwrap();

    // The source is replaced. With checks due at once, the stored derivative
    // is served once more while its source is checked, then rendered anew.
    put(fixture_image("orient-1.jpg")).await.unwrap();
    let (server, renderer) = start(Duration::ZERO).await;
    let stale = send(server.addr, "GET", target, &[]).await;
    assert_eq!(stale.header("etag"), first.header("etag"));
    let mut fresh = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let response = send(server.addr, "GET", target, &[]).await;
        if response.header("etag") != first.header("etag") {
            fresh = Some(response);
            break;
        }
    }
    let fresh = fresh.expect("a changed source gets a new ETag");
    assert_eq!(fresh.status, 200);
    assert_ne!(fresh.body, first.body);
    assert!(renderer.renders() >= 1);
    server.stop().await.unwrap();
    s3.stop().await;
}
