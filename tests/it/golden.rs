//! Golden renders: the SHA-256 of the bytes of a fixed set of image
//! derivatives and video frames, made by the server from fixed inputs.
//!
//! A derivative's strong ETag hashes its inputs (the source's ETag, the
//! canonical parameters, the Accept class) and a version, not its bytes. So
//! a change of output bytes (a codec bumped in Cargo.lock, a resampling or
//! colour change in the engine) must move that version, or clients and
//! caches holding the old bytes under the same ETag splice them with the
//! new ones (a range, an If-Range). This test is what makes it so: any
//! change of bytes fails it until the version moves and the table is
//! pinned again.
//!
//! Every case is rendered twice, one after the other and then all at once on
//! two workers: the bytes must not depend on timing (AVIF is encoded on one
//! thread). The image rows came out the same on x86_64 (AVX2) with
//! libjpeg-turbo's SIMD built (nasm installed, as scripts/test.sh does) and
//! without it, with rav1e's assembly (`--features x86-asm`), and on aarch64
//! (Lambda's architecture, the test built with cargo-zigbuild and run under
//! qemu-aarch64): the SIMD paths compute what the portable code does. The
//! frames are converted from YUV to RGB in integers (`video::decode`), so
//! their bytes do not depend on the CPU either. Left out, with the reason: sources with an ICC profile (moxcms picks its
//! transform, with FMA or without, by the CPU at run time, so a hash pinned
//! on one machine may not hold on another).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use media_streamer::derivative::{ImageSettings, Renderer};
use media_streamer::image;
use media_streamer::service::MediaService;
use media_streamer::source::dir::DirSource;
use sha2::{Digest, Sha256};

use crate::client::send;
use crate::fixture::{default_local, settings, TestServer};

/// The kinds of computed bytes the table covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Image,
    Frame,
}

use Kind::{Frame, Image};

/// A version that goes into the validators of a kind's bytes.
struct Pinned {
    kind: Kind,
    /// Where the version is written, as the failure names it.
    name: &'static str,
    /// Its value now.
    current: &'static str,
    /// Its value when the hashes below were made.
    pinned_for: &'static str,
}

/// The versions the table is pinned for, one row per kind: the one place to
/// change when a kind gets a version of its own or a version moves (the
/// registry of representation kinds, `src/registry.rs`, declares them).
const PINNED_FOR: &[Pinned] = &[
    Pinned {
        kind: Kind::Image,
        name: "image::ENGINE_VERSION",
        current: image::ENGINE_VERSION,
        pinned_for: "img1",
    },
    Pinned {
        kind: Kind::Frame,
        name: "registry::FRAME_VERSION",
        current: media_streamer::registry::FRAME_VERSION,
        pinned_for: "frm2",
    },
];

/// The version the bytes of `kind` are made under.
fn pinned(kind: Kind) -> &'static Pinned {
    PINNED_FOR
        .iter()
        .find(|p| p.kind == kind)
        .expect("every kind of the table has a version in PINNED_FOR")
}

/// The sources, as served (`/NAME`), and the file each is a copy of.
const SOURCES: &[(&str, &str)] = &[
    // 640x360 baseline JPEG, no profile: shrink-on-load at 1/2 and 1/4.
    ("pattern.jpg", "sample-media/test-pattern.jpg"),
    // 64x48 16-bit RGBA PNG: alpha, 16 to 8 bits.
    ("alpha.png", "tests/fixtures/images/rgba16.png"),
    // 72x48 JPEG stored sideways, EXIF orientation 6: turned upright.
    ("orient-6.jpg", "tests/fixtures/images/orient-6.jpg"),
    // 2 s of H.264 at 10 frames a second, its moov at the end.
    ("clip.mp4", "tests/fixtures/video/moov-at-end.mp4"),
    // 640x360 H.264, moov first.
    ("pattern.mp4", "sample-media/test-pattern.mp4"),
];

const AVIF: &str = "image/avif,image/webp,image/*,*/*;q=0.8";
const WEBP: &str = "image/webp,*/*";

struct Golden {
    kind: Kind,
    target: &'static str,
    accept: Option<&'static str>,
    content_type: &'static str,
    sha256: &'static str,
}

const fn golden(
    kind: Kind,
    target: &'static str,
    accept: Option<&'static str>,
    content_type: &'static str,
    sha256: &'static str,
) -> Golden {
    Golden {
        kind,
        target,
        accept,
        content_type,
        sha256,
    }
}

/// (kind, target, Accept, Content-Type, SHA-256 of the body)
#[rustfmt::skip]
const TABLE: &[Golden] = &[
    golden(Image, "/pattern.jpg?w=320&fmt=jpeg", None, "image/jpeg", "799890ce0458033ae1011858a79b1d817df8b8b877dc9d24c8ef1bf9800d9cb5"),
    golden(Image, "/pattern.jpg?w=128&h=128&fit=cover&fmt=jpeg&q=50", None, "image/jpeg", "dbe0120244073b44596c3a56826e9515e16828cc74b5b3c90da1a2a8d593dcfd"),
    golden(Image, "/pattern.jpg?w=256&fmt=png", None, "image/png", "e86b392c754381b0791c86b77f1b6ea75e9fd9e8aabdaa57facd34236b47373b"),
    golden(Image, "/pattern.jpg?w=256&fmt=webp", None, "image/webp", "a7f1976392c8d2e2a7d84b38417fb9c943dd92c766b32b775b39cf0e4ff20d50"),
    golden(Image, "/pattern.jpg?w=96&h=96&fit=cover&fmt=webp&q=90", None, "image/webp", "91c5db242f890376ba536eb3ab3bd83ab1ca2a27b8a66b39ff587aedfc94aa57"),
    golden(Image, "/pattern.jpg?w=256&fmt=avif", None, "image/avif", "f505bffa7b1c804638eb7e989a4df18b82c0c25d0768798beb81d6dd55810693"),
    golden(Image, "/pattern.jpg?w=96&h=96&fit=cover&fmt=avif&q=40", None, "image/avif", "664b3ff7b21ed5d556b7ed7f797dd275d056df4131494a40d102d990e0e071a1"),
    golden(Image, "/pattern.jpg?w=128", Some(AVIF), "image/avif", "233b630cdc8929e18d45832d342c977143e5de28d7b7a66cd92af93b2da216e7"),
    golden(Image, "/pattern.jpg?w=128", Some(WEBP), "image/webp", "92231ddfd12761e0299730f08044b825a1f2b83de539cc889378682c7a9f6f92"),
    golden(Image, "/pattern.jpg?w=128", None, "image/jpeg", "900ff8ca6f989f1e28d050ddbf247a96dd5233316d6a4676ba3a1cf64968b41c"),
    golden(Image, "/alpha.png?w=32&fmt=png", None, "image/png", "24a7224dd26612d324df095cd29dac3ef36995f0a2be37a12f3f89e6da79169a"),
    golden(Image, "/alpha.png?w=32&fmt=jpeg", None, "image/jpeg", "871911f5ad4f3ae91f805202692c1b465221de41706bf2234e59722fbb5fe16a"),
    golden(Image, "/alpha.png?w=32&fmt=webp", None, "image/webp", "bea77a60fecca7526852f47f910d7503c5f7eba8da6189e087642ddf31c195fe"),
    golden(Image, "/alpha.png?w=32&fmt=avif", None, "image/avif", "ee6445749bf2e39932ae8578e39cfade4539ace064e0e2e8d8b2ad2df1d56612"),
    golden(Image, "/alpha.png?w=32&h=32&fit=cover&fmt=png", None, "image/png", "f61ea9801eaeeac5dfa43a58045cdb72b2e9dc742089b95bb693e995418949ea"),
    golden(Image, "/alpha.png?w=48&fmt=webp&q=75", None, "image/webp", "fdf67172758c1417191fe47406e16bdf412a71b33f4bfb670f6ed42f36ce1317"),
    golden(Image, "/alpha.png?w=48", Some(AVIF), "image/avif", "c51589a7a1b54e1e9ff06615c6af9231b4f961eee953336923373398a51c6525"),
    golden(Image, "/alpha.png?w=48", Some(WEBP), "image/webp", "b7608e0c27931e3855800f1d04c94fa60c90719ae809110564c5e6485f4439e2"),
    golden(Image, "/alpha.png?w=48", None, "image/png", "011a2faba174b531b33ef3193a60f27e89c9e2a61823143fb727030adc7088e1"),
    golden(Image, "/orient-6.jpg?w=32&fmt=png", None, "image/png", "11ab9fc4f4e0ba5f2fda8d1330dac0d5e96b84f5536c2c749402fadaed1fd6c9"),
    golden(Frame, "/clip.mp4?frame=0&fmt=png", None, "image/png", "19bdd107aa897c3ac92acc5bb3bc74134937b516f03e9ceaa2c0d7b82da26613"),
    golden(Frame, "/clip.mp4?frame=1.5&w=128&fmt=jpeg", None, "image/jpeg", "48ef2394ffcfeef790d4c2c964270e1db7c73d04d5f520122a0d751110262a22"),
    golden(Frame, "/pattern.mp4?frame=2.5&w=320", Some(WEBP), "image/webp", "e2076cf1453dfcbaba17df7a82b9bfd59ade3b3c0c22ab001b71cc67cf794f01"),
];

/// Renders every case of the table once, `concurrently` or one after the
/// other, and gives each body's SHA-256 (or what came instead).
async fn render_all(server: &TestServer, concurrently: bool) -> Vec<String> {
    let addr = server.addr;
    let ask = |case: &'static Golden| async move {
        let headers: Vec<(&str, &str)> = case.accept.map(|a| ("Accept", a)).into_iter().collect();
        let answer = send(addr, "GET", case.target, &headers).await;
        let content_type = answer.header("content-type").unwrap_or("").to_owned();
        if answer.status == 200 && content_type == case.content_type {
            hex(&Sha256::digest(&answer.body))
        } else {
            format!(
                "{} {content_type}: {:?}",
                answer.status,
                String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
            )
        }
    };
    if !concurrently {
        let mut hashes = Vec::new();
        for case in TABLE {
            hashes.push(ask(case).await);
        }
        return hashes;
    }
    let requests: Vec<_> = TABLE.iter().map(|case| tokio::spawn(ask(case))).collect();
    let mut hashes = Vec::new();
    for request in requests {
        hashes.push(request.await.unwrap());
    }
    hashes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The table as it would be pinned with `hashes`, to paste over `TABLE`.
fn table_of(hashes: &[String]) -> String {
    let mut text = String::from("const TABLE: &[Golden] = &[\n");
    for (case, hash) in TABLE.iter().zip(hashes) {
        let accept = match case.accept {
            Some(AVIF) => "Some(AVIF)".to_owned(),
            Some(WEBP) => "Some(WEBP)".to_owned(),
            Some(other) => format!("Some({other:?})"),
            None => "None".to_owned(),
        };
        let _ = writeln!(
            text,
            "    golden({:?}, {:?}, {accept}, {:?}, {hash:?}),",
            case.kind, case.target, case.content_type
        );
    }
    text.push_str("];");
    text
}

/// Every case rendered twice (one after the other, then all at once on two
/// workers), with the same bytes both times, and the bytes the table pins
/// under the versions it was pinned for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn computed_bytes_are_pinned_to_their_version() {
    let media = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, file) in SOURCES {
        std::fs::copy(root.join(file), media.path().join(name)).unwrap();
    }
    let mut service_settings = settings();
    // No derived store: every request renders. Two workers, a queue for the
    // whole table, and a deadline no loaded machine reaches: the bytes must
    // not depend on timing, and neither may the test.
    service_settings.images = Renderer::new(ImageSettings {
        workers: 2,
        queue: TABLE.len(),
        render_timeout: Duration::from_secs(600),
        ..ImageSettings::default()
    });
    let renderer = Arc::clone(&service_settings.images);
    let source = Arc::new(DirSource::new(media.path()).unwrap());
    let server =
        TestServer::start_service(MediaService::new(source, service_settings), default_local())
            .await;

    let first = render_all(&server, false).await;
    let second = render_all(&server, true).await;
    server.stop().await.unwrap();
    let table = table_of(&first);
    assert_eq!(
        renderer.renders(),
        2 * TABLE.len() as u64,
        "every request rendered: {first:#?}"
    );
    let unstable: Vec<_> = TABLE
        .iter()
        .zip(first.iter().zip(&second))
        .filter(|(_, (a, b))| a != b)
        .map(|(case, (a, b))| format!("{} ({:?}): {a} then {b}", case.target, case.accept))
        .collect();
    assert!(
        unstable.is_empty(),
        "renders of the same derivative gave different bytes: {unstable:#?}"
    );

    let moved: Vec<_> = PINNED_FOR
        .iter()
        .filter(|p| p.current != p.pinned_for)
        .map(|p| {
            format!(
                "{:?}: {} is {:?}, the table was pinned for {:?}",
                p.kind, p.name, p.current, p.pinned_for
            )
        })
        .collect();
    assert!(
        moved.is_empty(),
        "the version moved: {moved:#?}; re-pin the table for the new version \
         (PINNED_FOR's pinned_for, and TABLE with the hashes now):\n{table}"
    );

    let mut versions: Vec<&str> = Vec::new();
    let mut changed = Vec::new();
    for (case, hash) in TABLE.iter().zip(&first) {
        if case.sha256 == hash {
            continue;
        }
        let version = pinned(case.kind);
        if !versions.contains(&version.name) {
            versions.push(version.name);
        }
        changed.push(format!(
            "{} (Accept {:?}): {hash}, pinned {} under {} = {:?}",
            case.target, case.accept, case.sha256, version.name, version.current
        ));
    }
    assert!(
        changed.is_empty(),
        "the output bytes changed under the same version: {changed:#?}\n\
         Move the version ({}; the CloudFront edge function carries the kinds' versions \
         too: run `cargo run -- registry > deploy/edge/registry.json` and \
         scripts/render-template.py), set PINNED_FOR's pinned_for to the new value \
         and re-pin the table with the hashes now:\n{table}",
        versions.join(", ")
    );
}
