//! Image derivatives, video frames among them, behind CloudFront. The edge
//! function (as template.yaml carries it, run under node by
//! deploy/edge/run-cases.mjs) must rewrite a derivative request to `/` + the
//! percent-encoded name that the library's `DerivativeId::stored_name` gives
//! the same request, route it to the origin group (derived store, then the
//! function), and refuse what the real server refuses with the server's own
//! status and text. Then the server's side: the derived paths the edge sends
//! to the function, against the S3-compatible server.

use std::time::Duration;

use media_streamer::derivative::params::{self, DEFAULT_SIZES};
use media_streamer::derivative::DerivativeId;
use media_streamer::image::ENGINE_VERSION;
use media_streamer::protocol::key::{parse_target, Target};
use media_streamer::registry::FRAME_VERSION;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use crate::binary::Running;
use crate::client::send;
use crate::edge::run_edge;
use crate::s3::{bucket_with, s3_env, S3Server, BUCKET};
use crate::signed::sign;

/// What the edge function leaves unencoded in a rewritten path: what
/// `encodeURIComponent` leaves, and `/`, `,` and `=`.
const STORED_PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'/')
    .remove(b',')
    .remove(b'=');

const KEYS: &str = "new:the-new-edge-secret-of-thirty-two-bytes";

/// What a row must get from the edge.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Rewritten to the stored name and sent to the origin group.
    Derived,
    /// Refused with this status, the body being the server's own.
    Refused(u16),
    /// Passed on as it came (no derivative), as before derivatives.
    AsBefore,
}

/// The path the edge must rewrite `target` to, from the library: `/` and
/// the percent-encoded stored name of the same request.
fn stored_path(target: &str, accept: Option<&str>) -> String {
    let (path, query) = target.split_once('?').unwrap();
    let Ok(Target::Object(key)) = parse_target(path) else {
        panic!("{path} is no object path");
    };
    let params = params::parse(Some(query), DEFAULT_SIZES).unwrap().unwrap();
    let accept = accept.map(|a| a.replace('\n', ", "));
    let name = DerivativeId::new(key.as_str(), params, accept.as_deref()).stored_name();
    format!("/{}", utf8_percent_encode(&name, STORED_PATH))
}

/// The request's Accept field lines: a row's Accept holds them separated
/// by "\n" (the edge's runner splits them the same way).
fn accept_lines(accept: Option<&str>) -> Vec<(&'static str, &str)> {
    accept
        .map(|a| a.split('\n').map(|line| ("Accept", line)).collect())
        .unwrap_or_default()
}

fn origin_group() -> Value {
    json!([[
        "createRequestOriginGroup",
        {
            "originIds": ["derived", "function-derived"],
            "failoverCriteria": { "statusCodes": [403, 404] }
        }
    ]])
}

/// Runs `rows` (what, target, Accept, expected) through the edge with
/// `settings` and asks `server` (with the same keys) every refused row:
/// both must give the same status and text.
async fn check(
    settings: Value,
    server: &Running,
    rows: &[(&str, String, Option<&str>, Expect)],
) -> Vec<String> {
    let cases: Vec<Value> = rows
        .iter()
        .map(|(name, target, accept, _)| json!({"name": name, "target": target, "accept": accept}))
        .collect();
    let results = run_edge(settings, &cases).await;
    assert_eq!(results.len(), rows.len());
    let mut failures = Vec::new();
    for ((name, target, accept, expect), result) in rows.iter().zip(&results) {
        let path = target.split_once('?').map_or(target.as_str(), |(p, _)| p);
        let got = (&result["status"], &result["uri"], &result["origin"]);
        let fine = match expect {
            Expect::Derived => {
                let uri = stored_path(target, *accept);
                eprintln!("{name:<52} {uri}");
                got == (&json!("pass"), &json!(uri), &origin_group())
                    && result["query"] == json!([])
            }
            Expect::AsBefore => {
                // What the edge passes on, the function must not refuse
                // for its query (the cache would keep a 400 for it).
                let headers = accept_lines(*accept);
                let response = send(server.addr, "GET", target, &headers).await;
                eprintln!("{name:<52} passed on, the server: {}", response.status);
                response.status != 400 && got == (&json!("pass"), &json!(path), &json!([]))
            }
            Expect::Refused(status) => {
                let headers = accept_lines(*accept);
                let response = send(server.addr, "GET", target, &headers).await;
                let body = String::from_utf8_lossy(&response.body).into_owned();
                eprintln!("{name:<52} {status} {}", body.trim_end());
                response.status == *status
                    && got == (&json!(status), &Value::Null, &json!([]))
                    && result["body"] == json!(body)
            }
        };
        if !fine {
            failures.push(format!(
                "{name} ({target}): expected {expect:?}, the edge gave {result}"
            ));
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_rewrites_derivative_requests_to_their_stored_names() {
    use Expect::*;
    let media = tempfile::tempdir().unwrap();
    let long = "x".repeat(70);
    let rows: Vec<(&str, String, Option<&str>, Expect)> = vec![
        (
            "fixed format",
            "/photos/cat.jpg?w=640&fmt=webp".into(),
            None,
            Derived,
        ),
        (
            "the same, other order",
            "/photos/cat.jpg?fmt=webp&w=640".into(),
            Some("image/avif"),
            Derived,
        ),
        (
            "auto, AVIF taken",
            "/cat.jpg?w=640".into(),
            Some("image/avif,image/webp,image/apng,*/*;q=0.8"),
            Derived,
        ),
        (
            "auto, WebP taken",
            "/cat.jpg?w=640".into(),
            Some("image/webp,*/*"),
            Derived,
        ),
        (
            "auto, AVIF refused (q=0)",
            "/cat.jpg?w=640".into(),
            Some("image/avif;q=0, image/webp"),
            Derived,
        ),
        (
            "auto, q=0 written 0.0e5",
            "/cat.jpg?w=640".into(),
            Some("image/avif;q=0.0e5"),
            Derived,
        ),
        (
            "auto, q=0.001 is no refusal",
            "/cat.jpg?w=640".into(),
            Some("image/avif;q=0.001"),
            Derived,
        ),
        (
            "auto, upper case",
            "/cat.jpg?w=640".into(),
            Some("IMAGE/AVIF"),
            Derived,
        ),
        ("auto, no Accept", "/cat.jpg?w=640".into(), None, Derived),
        (
            "auto, AVIF refused on a later Accept line",
            "/cat.jpg?w=640".into(),
            Some("image/avif,image/webp\nimage/avif;q=0"),
            Derived,
        ),
        (
            "auto, WebP on the second Accept line",
            "/cat.jpg?w=640".into(),
            Some("text/html\nimage/webp"),
            Derived,
        ),
        (
            "only defaults: no size, 400",
            "/cat.jpg?fit=inside".into(),
            None,
            Refused(400),
        ),
        (
            "a format with no size: no full-size re-encode",
            "/cat.jpg?fmt=webp".into(),
            None,
            Refused(400),
        ),
        (
            "a quality that is a step",
            "/cat.jpg?w=640&q=5".into(),
            None,
            Derived,
        ),
        (
            "a quality between steps",
            "/cat.jpg?w=640&q=73".into(),
            None,
            Refused(400),
        ),
        (
            "an image with a cache-buster",
            "/cat.jpg?t=1".into(),
            None,
            AsBefore,
        ),
        (
            "auto and quality",
            "/cat.jpg?fmt=auto&q=75&w=640".into(),
            Some("image/webp"),
            Derived,
        ),
        (
            "every parameter",
            "/a%20b/%C3%A9t%C3%A9.PNG?q=80&fmt=avif&fit=cover&h=384&w=640".into(),
            None,
            Derived,
        ),
        (
            "encoded value, plus sign",
            "/x.gif?q=5%30&w=%2B640".into(),
            None,
            Derived,
        ),
        (
            "a percent sign in the key",
            "/100%25.jpeg?fmt=jpeg&h=32".into(),
            None,
            Derived,
        ),
        (
            "a plus sign and brackets",
            "/plus+sign%20(1).webp?w=16".into(),
            None,
            Derived,
        ),
        (
            "upper-case extension",
            "/CAT.JPG?h=32".into(),
            None,
            Derived,
        ),
        (
            "AVIF source",
            "/s.avif?w=3840&fmt=png".into(),
            None,
            Derived,
        ),
        (
            "signature parameters on an unsigned stack",
            "/cat.jpg?w=640&expires=1&kid=a&sig=x".into(),
            None,
            Derived,
        ),
        (
            "a frame alone",
            "/clips/a.mp4?frame=1".into(),
            None,
            Derived,
        ),
        (
            "a frame, width and format",
            "/clips/a.mp4?frame=1&w=640&fmt=jpeg".into(),
            None,
            Derived,
        ),
        (
            "the same, other order",
            "/clips/a.mp4?fmt=jpeg&w=640&frame=1".into(),
            None,
            Derived,
        ),
        (
            "frame=1.500 is frame=1.5",
            "/clips/a.mp4?w=640&frame=1.500&fmt=webp".into(),
            None,
            Derived,
        ),
        (
            "frame=3.000 is frame=3",
            "/clips/a.mp4?frame=3.000&fmt=png".into(),
            None,
            Derived,
        ),
        (
            "the first and the last time",
            "/clips/a.mp4?frame=0&fmt=jpeg".into(),
            None,
            Derived,
        ),
        (
            "a day",
            "/clips/a.mp4?frame=86400.000&fmt=jpeg".into(),
            None,
            Derived,
        ),
        (
            "a millisecond, every parameter",
            "/clips/a.mp4?q=80&fmt=avif&fit=cover&h=384&w=640&frame=0.001".into(),
            None,
            Derived,
        ),
        (
            "a frame, auto, AVIF taken",
            "/clips/a.mp4?frame=2.5&w=320".into(),
            Some("image/avif,image/webp,*/*"),
            Derived,
        ),
        (
            "a frame, auto, WebP taken",
            "/clips/a.mp4?frame=2.5&w=320".into(),
            Some("image/webp"),
            Derived,
        ),
        (
            "a frame, auto, no Accept",
            "/clips/a.mp4?frame=2.5&w=320&fmt=auto".into(),
            None,
            Derived,
        ),
        (
            "a MOV, upper case",
            "/Clip%20(1).MOV?frame=90.040".into(),
            Some("image/png"),
            Derived,
        ),
        (
            "an M4V, an encoded time",
            "/b.m4v?frame=1%2E5&fmt=jpeg".into(),
            None,
            Derived,
        ),
        (
            "a frame, signature parameters on an unsigned stack",
            "/clips/a.mp4?frame=1&fmt=jpeg&expires=1&kid=a&sig=x".into(),
            None,
            Derived,
        ),
        (
            "a size not allowed",
            "/cat.jpg?w=641".into(),
            None,
            Refused(400),
        ),
        (
            "a leading zero",
            "/cat.jpg?w=0640".into(),
            None,
            Refused(400),
        ),
        ("an empty width", "/cat.jpg?w=".into(), None, Refused(400)),
        ("a width without =", "/cat.jpg?w".into(), None, Refused(400)),
        (
            "a negative height",
            "/cat.jpg?h=-16".into(),
            None,
            Refused(400),
        ),
        (
            "a width past u32",
            "/cat.jpg?w=99999999999".into(),
            None,
            Refused(400),
        ),
        (
            "another fit",
            "/cat.jpg?fit=fill".into(),
            None,
            Refused(400),
        ),
        (
            "another format",
            "/cat.jpg?fmt=gif".into(),
            None,
            Refused(400),
        ),
        (
            "a format in upper case",
            "/cat.jpg?fmt=WEBP".into(),
            None,
            Refused(400),
        ),
        ("quality 0", "/cat.jpg?q=0".into(), None, Refused(400)),
        ("quality 101", "/cat.jpg?q=101".into(), None, Refused(400)),
        (
            "quality past u8",
            "/cat.jpg?q=300".into(),
            None,
            Refused(400),
        ),
        (
            "a value that is not UTF-8",
            "/cat.jpg?q=%FF".into(),
            None,
            Refused(400),
        ),
        (
            "a long value, cut to 64",
            format!("/cat.jpg?fit={long}"),
            None,
            Refused(400),
        ),
        (
            "a parameter twice",
            "/cat.jpg?w=640&w=640".into(),
            None,
            Refused(400),
        ),
        (
            "an unknown parameter after",
            "/cat.jpg?w=640&v=3".into(),
            None,
            Refused(400),
        ),
        (
            "an unknown parameter before",
            "/cat.jpg?v=3&w=640".into(),
            None,
            Refused(400),
        ),
        (
            "an encoded parameter name",
            "/cat.jpg?w=640&%77=1".into(),
            None,
            Refused(400),
        ),
        (
            "a width without a frame on a movie",
            "/clip.mp4?w=640".into(),
            None,
            Refused(400),
        ),
        (
            "only defaults on a movie",
            "/clip.mp4?fit=inside&fmt=auto".into(),
            None,
            Refused(400),
        ),
        (
            "a frame 01",
            "/clip.mp4?frame=01".into(),
            None,
            Refused(400),
        ),
        (
            "a frame -1",
            "/clip.mp4?frame=-1".into(),
            None,
            Refused(400),
        ),
        (
            "a frame +1",
            "/clip.mp4?frame=%2B1".into(),
            None,
            Refused(400),
        ),
        (
            "four decimals",
            "/clip.mp4?frame=1.2345".into(),
            None,
            Refused(400),
        ),
        (
            "an exponent",
            "/clip.mp4?frame=1e3".into(),
            None,
            Refused(400),
        ),
        (
            "a dot last",
            "/clip.mp4?frame=1.".into(),
            None,
            Refused(400),
        ),
        (
            "a dot first",
            "/clip.mp4?frame=.5".into(),
            None,
            Refused(400),
        ),
        (
            "past a day",
            "/clip.mp4?frame=86400.001&w=640".into(),
            None,
            Refused(400),
        ),
        (
            "a time past u32",
            "/clip.mp4?frame=99999999999".into(),
            None,
            Refused(400),
        ),
        (
            "an empty frame",
            "/clip.mp4?frame=".into(),
            None,
            Refused(400),
        ),
        (
            "a frame without =",
            "/clip.mp4?frame".into(),
            None,
            Refused(400),
        ),
        (
            "a frame twice",
            "/clip.mp4?frame=1&frame=2".into(),
            None,
            Refused(400),
        ),
        (
            "a frame and a bad width",
            "/clip.mp4?frame=1&w=641".into(),
            None,
            Refused(400),
        ),
        (
            "a frame and an unknown parameter",
            "/clip.mp4?frame=1&t=10".into(),
            None,
            Refused(400),
        ),
        (
            "a frame on an image",
            "/cat.jpg?frame=1&w=640".into(),
            None,
            Refused(400),
        ),
        (
            "a bad frame on an image: the value first",
            "/cat.JPG?frame=01".into(),
            None,
            Refused(400),
        ),
        (
            "a frame on another file",
            "/notes.txt?frame=1".into(),
            None,
            Refused(400),
        ),
        (
            "a frame on a WebM: the function's 415, naming its codecs",
            "/sub/clip.webm?frame=1&w=64".into(),
            None,
            Refused(415),
        ),
        (
            "a bad frame on a WebM: 400",
            "/clip.WEBM?frame=01".into(),
            None,
            Refused(400),
        ),
        (
            "image parameters on a WebM: 400",
            "/clip.webm?w=640".into(),
            None,
            Refused(400),
        ),
        (
            "a frame on a name without extension",
            "/mp4?frame=1".into(),
            None,
            Refused(400),
        ),
        (
            "an image name with another extension",
            "/cat.jpg.txt?fmt=webp".into(),
            None,
            Refused(400),
        ),
        (
            "an image with other parameters only",
            "/cat.jpg?width=640".into(),
            None,
            AsBefore,
        ),
        (
            "a video with other parameters",
            "/clip.mp4?t=10".into(),
            None,
            AsBefore,
        ),
        (
            "a movie's cache-buster",
            "/clips/a.MOV?t=1".into(),
            None,
            AsBefore,
        ),
        (
            "a movie with an encoded parameter name",
            "/clip.mp4?%66rame=1".into(),
            None,
            AsBefore,
        ),
        (
            "a movie without a query",
            "/clip.m4v".into(),
            None,
            AsBefore,
        ),
        (
            "an image without a query",
            "/cat.jpg".into(),
            None,
            AsBefore,
        ),
        ("a directory", "/photos/?w=640".into(), None, AsBefore),
    ];
    let server = Running::start(media.path(), &[]).await;
    let failures = check(
        json!({ "secret": "", "keys": "", "skew": 30 }),
        &server,
        &rows,
    )
    .await;
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_checks_a_derivative_link_over_its_canonical_parameters() {
    use Expect::*;
    let media = tempfile::tempdir().unwrap();
    let server = Running::start(media.path(), &[("MEDIA_SIGNING_KEYS", KEYS)]).await;
    let link = sign(KEYS, "/photos/cat.jpg?fmt=webp&w=640", 300).await;
    let signature = link.split_once("&expires=").unwrap().1;
    let bare = sign(KEYS, "/cat.jpg", 300).await;
    let frame = sign(KEYS, "/clips/a.mp4?w=640&frame=1.500", 300).await;
    let frame_signature = frame.split_once("&expires=").unwrap().1;
    let auto_frame = sign(KEYS, "/clips/a.mp4?frame=2", 300).await;
    let movie = sign(KEYS, "/clips/a.mp4", 300).await;
    let rows: Vec<(&str, String, Option<&str>, Expect)> = vec![
        ("signed", link.clone(), None, Derived),
        (
            "signed, parameters in another order",
            format!("/photos/cat.jpg?fmt=webp&expires={signature}&w=640"),
            None,
            Derived,
        ),
        (
            "signed, only defaults: no size, 400 before the signature",
            format!("{bare}&fit=inside"),
            Some("image/webp"),
            Refused(400),
        ),
        (
            "another width than signed",
            format!("/photos/cat.jpg?w=384&fmt=webp&expires={signature}"),
            None,
            Refused(403),
        ),
        (
            "the bare path's link with a width",
            format!("{bare}&w=640"),
            None,
            Refused(403),
        ),
        (
            "unsigned",
            "/photos/cat.jpg?w=640&fmt=webp".into(),
            None,
            Refused(403),
        ),
        (
            "unsigned and a bad width: 400 first",
            "/photos/cat.jpg?w=641".into(),
            None,
            Refused(400),
        ),
        (
            "unsigned, a width without a frame: 400 first",
            "/clip.mp4?w=640".into(),
            None,
            Refused(400),
        ),
        ("a signed frame", frame.clone(), None, Derived),
        (
            "a signed movie with a cache-buster",
            format!("{movie}&t=1"),
            None,
            AsBefore,
        ),
        (
            "a signed frame, spelt frame=1.500 and in another order",
            format!("/clips/a.mp4?expires={frame_signature}&frame=1.500&w=640"),
            None,
            Derived,
        ),
        (
            "a signed frame, auto, WebP taken",
            auto_frame.clone(),
            Some("image/webp"),
            Derived,
        ),
        (
            "a signed frame, auto, no Accept",
            auto_frame.clone(),
            None,
            Derived,
        ),
        (
            "another time than signed",
            format!("/clips/a.mp4?frame=2&w=640&expires={frame_signature}"),
            None,
            Refused(403),
        ),
        (
            "the frame's link without its frame",
            format!("/clips/a.mp4?w=640&expires={frame_signature}"),
            None,
            Refused(400),
        ),
        (
            "an unsigned frame",
            "/clips/a.mp4?frame=1.5&w=640".into(),
            None,
            Refused(403),
        ),
        (
            "an unsigned frame, a bad time: 400 first",
            "/clips/a.mp4?frame=01&w=640".into(),
            None,
            Refused(400),
        ),
        (
            "an unsigned frame on an image: 400 first",
            "/cat.jpg?frame=1".into(),
            None,
            Refused(400),
        ),
        (
            "an unsigned frame on a WebM: the function's 415 first, as for a 400",
            "/clip.webm?frame=1".into(),
            None,
            Refused(415),
        ),
    ];
    let failures = check(
        json!({ "secret": "", "keys": KEYS, "skew": 30 }),
        &server,
        &rows,
    )
    .await;
    assert!(failures.is_empty(), "{failures:#?}");
}

/// After a first GET of a derived path (the S3 requests from `before` on):
/// the function's name (`keys[0]`, with the source's version) was missed,
/// then written, and the edge's copy (`keys[1]`) after it, in the
/// background with the listing of other versions (waited for, up to 5 s);
/// both hold `body`.
async fn stored_twice(
    s3: &S3Server,
    s3_client: &aws_sdk_s3::Client,
    before: usize,
    keys: [&String; 2],
    body: &[u8],
) {
    // The last of the render's work in the background: the listing of the
    // derivative's other versions.
    let requests = s3
        .wait_for(before, &format!("GET /{BUCKET}/?list-type=2"))
        .await;
    println!("S3 requests of the first GET: {requests:?}");
    let missed = format!("GET /{BUCKET}/{}?x-id=GetObject 404", keys[0]);
    assert!(requests.contains(&missed), "{requests:?}");
    for key in keys {
        let put = format!("PUT /{BUCKET}/{key}?");
        assert!(requests.iter().any(|r| r.starts_with(&put)), "{requests:?}");
        let stored = s3_client
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        let stored = stored.body.collect().await.unwrap().into_bytes();
        assert_eq!(stored, body, "what was stored at {key} is what was sent");
    }
}

/// The function's own name of the derivative stored at `edge_key` (the
/// edge's name, under the derived prefix) for the current version of the
/// source object `source_key`: `,s=` and a hash of its ETag after it.
async fn versioned(s3: &aws_sdk_s3::Client, source_key: &str, edge_key: &str) -> String {
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key(source_key)
        .send()
        .await
        .unwrap();
    let (prefix, name) = edge_key.split_once('/').unwrap();
    let id = DerivativeId::from_stored_name(name, DEFAULT_SIZES).unwrap();
    format!("{prefix}/{}", id.versioned_name(head.e_tag().unwrap()))
}

/// The path the edge sends to the function for a derivative: the prefix,
/// then the stored name (percent-encoded as the edge writes it).
fn derived_path(prefix: &str, key: &str, query: &str) -> String {
    let params = params::parse(Some(query), DEFAULT_SIZES).unwrap().unwrap();
    let name = DerivativeId::new(key, params, None).stored_name();
    format!("/{prefix}{}", utf8_percent_encode(&name, STORED_PATH))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derived_paths_render_once_and_read_back() {
    let s3 = S3Server::start().await;
    let photo = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/orient-6.jpg"),
    )
    .unwrap();
    // The media under a key prefix, the derived store at the bucket's root.
    let s3_client = bucket_with(&s3, vec![("media/photos/cat.jpg", "image/jpeg", photo)]).await;
    let env = s3_env(&s3);
    let mut on: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
    on.extend([
        ("MEDIA_PREFIX", "media/"),
        ("MEDIA_DERIVED_PREFIX", "_derived/"),
        ("MEDIA_DERIVED_PATHS", "on"),
    ]);
    let media = tempfile::tempdir().unwrap();
    let server = Running::start(media.path(), &on).await;

    let path = derived_path("_derived/", "photos/cat.jpg", "w=32&fmt=webp");
    // The edge's name, and the function's own, which holds the source's
    // version.
    let stored_key = format!("_derived/photos/cat.jpg/w=32,fmt=webp,e={ENGINE_VERSION}");
    let versioned_key = versioned(&s3_client, "media/photos/cat.jpg", &stored_key).await;
    let get_stored = format!("GET /{BUCKET}/{versioned_key}?x-id=GetObject");

    // The first GET renders and stores.
    let before = s3.requests().len();
    let first = send(server.addr, "GET", &path, &[]).await;
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_eq!(first.header("content-type"), Some("image/webp"));
    assert_eq!(
        first.header("vary"),
        None,
        "the Accept class is in the path"
    );
    // The store is written beside the answer, then the edge's copy.
    stored_twice(
        &s3,
        &s3_client,
        before,
        [&versioned_key, &stored_key],
        &first.body,
    )
    .await;

    // The same bytes and ETag as the query request.
    let by_query = send(server.addr, "GET", "/photos/cat.jpg?w=32&fmt=webp", &[]).await;
    assert_eq!(by_query.status, 200);
    assert_eq!(
        (&by_query.body, by_query.header("etag")),
        (&first.body, first.header("etag"))
    );

    // A second GET (a range, HEAD) of this process: from memory, no S3
    // request (a new process reads the stored object: tests/it/images.rs).
    let before = s3.requests().len();
    let second = send(server.addr, "GET", &path, &[("Range", "bytes=0-9")]).await;
    assert_eq!(second.status, 206);
    assert_eq!(second.body, first.body[..10]);
    assert_eq!(second.header("etag"), first.header("etag"));
    let head = send(server.addr, "HEAD", &path, &[]).await;
    assert_eq!(head.status, 200);
    let length = first.body.len().to_string();
    assert_eq!(head.header("content-length"), Some(length.as_str()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let requests = s3.requests()[before..].to_vec();
    assert_eq!(requests, Vec::<String>::new(), "{get_stored}");

    // Names that are no derivative's: 400 with the reason, or 404.
    let rows: Vec<(String, u16, &str)> =
        vec![
        (
            format!("/_derived/photos/cat.jpg/fmt=webp,w=32,e={ENGINE_VERSION}"),
            400,
            "400 Bad Request: 'fmt=webp&w=32' is not the canonical form of these parameters\n",
        ),
        (
            format!("/_derived/photos/cat.jpg/w=33,fmt=webp,e={ENGINE_VERSION}"),
            400,
            "400 Bad Request: 'w=33' is not allowed: w is one of 16, 32, 48, 64, 96, 128, 256, \
             320, 384, 640, 750, 828, 1080, 1200, 1280, 1920, 2048, 3840\n",
        ),
        (
            "/_derived/photos/cat.jpg/w=32,fmt=webp".into(),
            400,
            "400 Bad Request: 'photos/cat.jpg/w=32,fmt=webp' is not the name of a stored \
             derivative (KEY/PARAMS,e=ENGINE)\n",
        ),
        (
            format!("/_derived/photos/notes.txt/w=32,e={ENGINE_VERSION}"),
            400,
            "400 Bad Request: image parameters (w, h, fit, fmt, q) apply to JPEG, PNG, WebP, \
             GIF and AVIF images only\n",
        ),
        (
            format!("/_derived/photos/clip.mp4/w=32,fmt=jpeg,e={FRAME_VERSION}"),
            400,
            "400 Bad Request: a video takes frame=SECONDS (with w, h, fit, fmt and q if \
             wanted)\n",
        ),
        (
            format!("/_derived/photos/cat.jpg/frame=1,w=32,fmt=jpeg,e={ENGINE_VERSION}"),
            400,
            "400 Bad Request: frame applies to videos (MP4, MOV, M4V) only\n",
        ),
        ("/_derived/photos/cat.jpg/w=32,fmt=webp,e=img0".into(), 404, "404 Not Found\n"),
        (
            derived_path("_derived/", "photos/dog.jpg", "w=32&fmt=webp"),
            404,
            "404 Not Found\n",
        ),
    ];
    for (target, status, body) in &rows {
        let response = send(server.addr, "GET", target, &[]).await;
        assert_eq!(
            (
                response.status,
                String::from_utf8_lossy(&response.body).as_ref()
            ),
            (*status, *body),
            "{target}"
        );
    }
    drop(server);

    // Derived paths off: the path is an object path like any other, a key
    // under the media prefix (none there), or with no prefix the stored
    // object itself, served as a plain object with S3's ETag.
    let mut off = on.clone();
    off.retain(|(n, _)| *n != "MEDIA_DERIVED_PATHS");
    let server = Running::start(media.path(), &off).await;
    let response = send(server.addr, "GET", &path, &[]).await;
    assert_eq!(response.status, 404);
    drop(server);
    off.retain(|(n, _)| *n != "MEDIA_PREFIX");
    let server = Running::start(media.path(), &off).await;
    let response = send(server.addr, "GET", &path, &[]).await;
    assert_eq!((response.status, &response.body), (200, &first.body));
    assert_ne!(response.header("etag"), first.header("etag"));
    drop(server);
    s3.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_s_derived_path_renders_stores_and_reads_back() {
    let s3 = S3Server::start().await;
    // A 2 s, 128x96 H.264 movie whose moov follows its mdat.
    let movie = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/video/moov-at-end.mp4"),
    )
    .unwrap();
    let s3_client = bucket_with(&s3, vec![("media/clips/a.mp4", "video/mp4", movie)]).await;
    let env = s3_env(&s3);
    let mut on: Vec<(&str, &str)> = env.iter().map(|(n, v)| (*n, v.as_str())).collect();
    on.extend([
        ("MEDIA_PREFIX", "media/"),
        ("MEDIA_DERIVED_PREFIX", "_derived/"),
        ("MEDIA_DERIVED_PATHS", "on"),
    ]);
    let media = tempfile::tempdir().unwrap();
    let server = Running::start(media.path(), &on).await;

    // The path the edge rewrites /clips/a.mp4?frame=1&w=32&fmt=jpeg to.
    let path = derived_path("_derived/", "clips/a.mp4", "frame=1&w=32&fmt=jpeg");
    let stored_key = format!("_derived/clips/a.mp4/frame=1,w=32,fmt=jpeg,e={FRAME_VERSION}");
    assert_eq!(path, format!("/{stored_key}"));
    let versioned_key = versioned(&s3_client, "media/clips/a.mp4", &stored_key).await;
    let get_stored = format!("GET /{BUCKET}/{versioned_key}?x-id=GetObject");

    // The first GET renders the frame and stores it.
    let before = s3.requests().len();
    let first = send(server.addr, "GET", &path, &[]).await;
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_eq!(first.header("content-type"), Some("image/jpeg"));
    assert_eq!(&first.body[..3], b"\xff\xd8\xff", "a JPEG");
    let picture = image::load_from_memory(&first.body).unwrap();
    assert_eq!((picture.width(), picture.height()), (32, 24));
    stored_twice(
        &s3,
        &s3_client,
        before,
        [&versioned_key, &stored_key],
        &first.body,
    )
    .await;

    // The same bytes and ETag as the query request, in either spelling.
    for query in ["frame=1&w=32&fmt=jpeg", "fmt=jpeg&w=32&frame=1.000"] {
        let by_query = send(server.addr, "GET", &format!("/clips/a.mp4?{query}"), &[]).await;
        assert_eq!(by_query.status, 200, "{query}");
        assert_eq!(
            (&by_query.body, by_query.header("etag")),
            (&first.body, first.header("etag")),
            "{query}"
        );
    }

    // The second GET of this process, and the edge's path for another time
    // that shows the same picture (the fixture has one every 0.1 s), which
    // S3 has no copy at: from memory, no S3 request, no render.
    let before = s3.requests().len();
    let same_picture = derived_path("_derived/", "clips/a.mp4", "frame=1.05&w=32&fmt=jpeg");
    for path in [&path, &same_picture] {
        let second = send(server.addr, "GET", path, &[]).await;
        assert_eq!(second.status, 200, "{path}");
        assert_eq!(
            (&second.body, second.header("etag")),
            (&first.body, first.header("etag")),
            "{path}"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        s3.requests()[before..].to_vec(),
        Vec::<String>::new(),
        "{get_stored}"
    );
    drop(server);
    s3.stop().await;
}
