#![no_main]
//! A whole request from raw bytes, through the real pipeline and directory
//! source, to the collected response. The input's first byte picks the method
//! and whether links must be signed; the next line is the request target; each
//! later line is a header field. Whatever comes in, the answer is one of the
//! statuses this server gives, never a 5xx; its Content-Length is its body's
//! length; a 200, 206 or 416 for an object keeps every rule the property test
//! holds it to (the bytes are exactly those named); and no byte of a file
//! outside the media root, reachable only through a link, is ever sent.

#[path = "../../tests/it/answer.rs"]
mod answer;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use http::header::{HeaderName, HeaderValue};
use http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use media_streamer::cors::CorsPolicy;
use media_streamer::derivative::{ImageSettings, Renderer};
use media_streamer::faststart::{FaststartSettings, Faststarts};
use media_streamer::protocol::key::{parse_target, Target};
use media_streamer::protocol::range::RangeLimits;
use media_streamer::service::{MediaService, ServiceSettings};
use media_streamer::signing::SigningKeys;
use media_streamer::source::dir::DirSource;

/// The bytes of the file outside the root.
const SECRET: &[u8] = b"SECRET-outside-the-media-root-SECRET";

struct World {
    runtime: tokio::runtime::Runtime,
    root: PathBuf,
    open: MediaService,
    signed: MediaService,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        let root = dir.path().join("media");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(outside.join("secret.bin"), SECRET).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret.bin"), root.join("secret.mp4")).unwrap();
        for (name, size) in [
            ("empty.bin", 0usize),
            ("one.bin", 1),
            ("clip.mp4", 5000),
            ("sub/tone.mp3", 300),
            ("a b.webm", 1200),
            (".hidden.jpg", 10),
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 + size) as u8).collect();
            std::fs::write(root.join(name), data).unwrap();
        }
        let settings = |signing: Option<SigningKeys>| ServiceSettings {
            limits: RangeLimits {
                open_ended_cap: 1000,
                max_ranges: 8,
            },
            denied_status: http::StatusCode::FORBIDDEN,
            cors: CorsPolicy::parse("https://app.example"),
            cache_control: HeaderValue::from_static("public, max-age=60"),
            index_page_size: Some(3),
            signing,
            images: Renderer::new(ImageSettings::default()),
            faststart: Faststarts::new(FaststartSettings::default()),
        };
        let source = Arc::new(DirSource::new(&root).unwrap());
        let keys = SigningKeys::single("0123456789abcdef0123456789abcdef", 30).unwrap();
        World {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            open: MediaService::new(source.clone(), settings(None)),
            signed: MediaService::new(source, settings(Some(keys))),
            root: std::fs::canonicalize(&root).unwrap(),
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let method =
        [Method::GET, Method::HEAD, Method::OPTIONS, Method::POST][usize::from(flags & 3)].clone();
    let world = world();
    let service = if flags & 4 == 0 {
        &world.open
    } else {
        &world.signed
    };
    let mut lines = rest.split(|&b| b == b'\n');
    let Ok(uri) = http::Uri::try_from(lines.next().unwrap_or_default()) else {
        return; // hyper answers such a request line itself, with 400
    };
    let mut request = Request::builder().method(method.clone()).uri(uri.clone());
    let mut range = String::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(line[..colon].trim_ascii()),
            HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
        ) else {
            continue; // not a field hyper would pass on
        };
        if name == http::header::RANGE {
            range = value.to_str().unwrap_or("").to_owned();
        }
        request = request.header(name, value);
    }
    let Ok(request) = request.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();
    let headers_in = parts.headers.clone();
    let answer = world.runtime.block_on(answer::Answer::of(service, parts));
    let status = answer.status;
    let context = || format!("{method} {uri} {headers_in:?}: {status}");

    assert!(
        [200, 204, 206, 304, 400, 403, 404, 405, 412, 414, 416].contains(&status),
        "{}",
        context()
    );
    assert!(
        !answer.body.windows(SECRET.len()).any(|w| w == SECRET),
        "{}: bytes from outside the root",
        context()
    );
    let length = answer::header(&answer, "content-length");
    match method {
        Method::HEAD | Method::OPTIONS => assert!(answer.body.is_empty(), "{}", context()),
        _ if status == 304 || status == 204 => assert!(answer.body.is_empty(), "{}", context()),
        _ => assert_eq!(
            length,
            Some(answer.body.len().to_string().as_str()),
            "{}",
            context()
        ),
    }
    if method != Method::GET || ![200, 206, 416].contains(&status) {
        return;
    }
    let Ok(Target::Object(key)) = parse_target(uri.path()) else {
        return; // an index page
    };
    let file =
        std::fs::read(world.root.join(key.as_str())).expect("served a file that is not there");
    if let Err(why) = answer::check(&answer, &file, &range) {
        panic!("{}: {why}", context());
    }
});
