//! Signed links through the real binary: links made by `media-streamer sign`,
//! and everything else refused with 403 and a short reason.

use std::path::Path;

use tokio::process::Command;

use crate::binary::Running;
use crate::client::send;
use crate::fixture::pattern;

const NEW: &str = "new:the-new-secret-of-thirty-two-bytes-or-more";
const OLD: &str = "old:the-old-secret-of-thirty-two-bytes-or-more";

/// `media-streamer sign PATH --expires-in SECS` with `keys`.
pub(crate) async fn sign(keys: &str, path: &str, expires_in: i64) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_media-streamer"))
        .args(["sign", path, "--expires-in", &expires_in.to_string()])
        .env("MEDIA_SIGNING_KEYS", keys)
        .env_remove("MEDIA_SIGNING_SECRET")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn media(dir: &Path) {
    std::fs::write(dir.join("a.mp4"), pattern(5000, 1)).unwrap();
    std::fs::write(dir.join("b.mp4"), pattern(5000, 2)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_valid_signed_links_are_served() {
    let dir = tempfile::tempdir().unwrap();
    media(dir.path());
    let keys = format!("{NEW},{OLD}");
    let server = Running::start(
        dir.path(),
        &[
            ("MEDIA_SIGNING_KEYS", &keys),
            ("MEDIA_SIGNING_SKEW_SECS", "30"),
        ],
    )
    .await;
    let a = sign(&keys, "/a.mp4", 300).await;
    let by_old_key = sign(OLD, "/a.mp4", 300).await;
    let expired = sign(&keys, "/a.mp4", -100).await;
    let within_skew = sign(&keys, "/a.mp4", -10).await;
    // One character of the signature changed (not the last, whose low bits
    // must be zero in canonical base64): still well-formed, no longer valid.
    let tampered = {
        let at = a.find("sig=").unwrap() + 4;
        let flipped = if &a[at..=at] == "A" { "B" } else { "A" };
        format!("{}{flipped}{}", &a[..at], &a[at + 1..])
    };
    let other_key = sign(
        "new:a-different-secret-thirty-two-bytes-long",
        "/a.mp4",
        300,
    )
    .await;
    let query = |link: &str| link.split_once('?').unwrap().1.to_owned();
    // (what, method, target, status, reason in the body)
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        ("a signed link", "GET", a.clone(), 206, ""),
        (
            "other parameters beside it",
            "GET",
            format!("{a}&t=10&download"),
            206,
            "",
        ),
        (
            "a parameter before it",
            "GET",
            format!("/a.mp4?x=1&{}", query(&a)),
            206,
            "",
        ),
        (
            "a key rotated out, still listed",
            "GET",
            by_old_key,
            206,
            "",
        ),
        ("expired, within the skew", "GET", within_skew, 206, ""),
        ("HEAD of a signed link", "HEAD", a.clone(), 206, ""),
        (
            "no signature",
            "GET",
            "/a.mp4".into(),
            403,
            "this link needs a signature",
        ),
        ("HEAD without signature", "HEAD", "/a.mp4".into(), 403, ""),
        ("expired", "GET", expired, 403, "the link has expired"),
        (
            "another object's link",
            "GET",
            format!("/b.mp4?{}", query(&a)),
            403,
            "the link's signature is not valid",
        ),
        (
            "tampered signature",
            "GET",
            tampered,
            403,
            "the link's signature is not valid",
        ),
        (
            "a key the server does not have",
            "GET",
            other_key,
            403,
            "the link's signature is not valid",
        ),
        (
            "unknown key id",
            "GET",
            a.replace("kid=new", "kid=gone"),
            403,
            "the link was signed with an unknown key",
        ),
        (
            "the index, unsigned",
            "GET",
            "/".into(),
            403,
            "this link needs a signature",
        ),
    ];
    let mut failures = Vec::new();
    for (name, method, target, status, reason) in cases {
        let response = send(server.addr, method, &target, &[("Range", "bytes=10-19")]).await;
        let body = String::from_utf8_lossy(&response.body).to_string();
        let body_ok = match (status, method) {
            (206, "GET") => response.body == pattern(5000, 1)[10..20],
            (_, "HEAD") => response.body.is_empty(),
            _ => body == format!("403 Forbidden: {reason}\n"),
        };
        if response.status != status || !body_ok {
            failures.push(format!("{name}: {} {body:?}", response.status));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_links_signed_urls() {
    let dir = tempfile::tempdir().unwrap();
    media(dir.path());
    let server = Running::start(dir.path(), &[("MEDIA_SIGNING_KEYS", NEW)]).await;
    let index = sign(NEW, "/", 60).await;
    let page = send(server.addr, "GET", &index, &[]).await;
    assert_eq!(page.status, 200);
    let html = String::from_utf8(page.body).unwrap();
    let links: Vec<String> = html
        .split("<video controls preload=\"metadata\"")
        .skip(1)
        .map(|tag| {
            let src = tag.split(" src=\"").nth(1).unwrap();
            src.split('"').next().unwrap().replace("&amp;", "&")
        })
        .collect();
    assert_eq!(links.len(), 2, "{html}");
    for (link, seed) in links.iter().zip([1u8, 2]) {
        assert!(link.contains("&kid=new&sig="), "{link}");
        let media = send(server.addr, "GET", link, &[("Range", "bytes=0-9")]).await;
        assert_eq!(media.status, 206, "{link}");
        assert_eq!(media.body, pattern(5000, seed)[..10]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_links_cover_image_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/orient-1.jpg");
    std::fs::copy(photo, dir.path().join("photo.jpg")).unwrap();
    let server = Running::start(dir.path(), &[("MEDIA_SIGNING_KEYS", NEW)]).await;
    let link = sign(NEW, "/photo.jpg?fmt=webp&w=32", 300).await;
    assert!(
        link.starts_with("/photo.jpg?w=32&fmt=webp&expires="),
        "the parameters come first, in canonical form: {link}"
    );
    let signature = link.split_once("&expires=").unwrap().1;
    // (what, target, status, type or reason)
    let cases = [
        ("the signed link", link.clone(), 200, "image/webp"),
        (
            "its parameters in another order",
            format!("/photo.jpg?fmt=webp&w=32&expires={signature}"),
            200,
            "image/webp",
        ),
        (
            "another width",
            link.replace("w=32", "w=64"),
            403,
            "the link's signature is not valid",
        ),
        (
            "a parameter left out",
            link.replace("&fmt=webp", ""),
            403,
            "the link's signature is not valid",
        ),
        (
            "a parameter added",
            format!("{link}&q=50"),
            403,
            "the link's signature is not valid",
        ),
        (
            "the stored image with the derivative's signature",
            format!("/photo.jpg?expires={signature}"),
            403,
            "the link's signature is not valid",
        ),
    ];
    let mut failures = Vec::new();
    for (name, target, status, expected) in cases {
        let response = send(server.addr, "GET", &target, &[]).await;
        let body = String::from_utf8_lossy(&response.body).to_string();
        let ok = match status {
            200 => response.header("content-type") == Some(expected),
            _ => body == format!("403 Forbidden: {expected}\n"),
        };
        if response.status != status || !ok {
            failures.push(format!("{name}: {} {body:?}", response.status));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");

    // The index shows the image through a signed thumbnail link.
    let index = sign(NEW, "/", 60).await;
    let html = String::from_utf8(send(server.addr, "GET", &index, &[]).await.body).unwrap();
    let thumbnail = html
        .split("<img loading=\"lazy\" src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|src| src.replace("&amp;", "&"))
        .unwrap_or_else(|| panic!("no thumbnail in {html}"));
    assert!(
        thumbnail.starts_with("/photo.jpg?w=384&expires="),
        "{thumbnail}"
    );
    let response = send(server.addr, "GET", &thumbnail, &[("Accept", "image/webp")]).await;
    assert_eq!(response.status, 200, "{thumbnail}");
    assert_eq!(response.header("content-type"), Some("image/webp"));
}

#[tokio::test]
async fn sign_refuses_parameters_the_server_would_refuse() {
    for path in ["/photo.jpg?w=33", "/photo.jpg?width=32", "/clip.mp4?w=32"] {
        let output = Command::new(env!("CARGO_BIN_EXE_media-streamer"))
            .args(["sign", path, "--expires-in", "60"])
            .env("MEDIA_SIGNING_KEYS", NEW)
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .output()
            .await
            .unwrap();
        assert!(!output.status.success(), "{path}: {output:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_for_a_key_with_a_question_mark_opens_that_object_only() {
    // The object `photo.jpg?w=32` is `/photo.jpg%3Fw=32` on the path; its
    // signature once covered `/photo.jpg?w=32`, which is also what the
    // derivative `/photo.jpg?w=32` of `photo.jpg` signs: one link opened both.
    let dir = tempfile::tempdir().unwrap();
    let photo = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images/orient-1.jpg");
    std::fs::copy(&photo, dir.path().join("photo.jpg")).unwrap();
    std::fs::write(dir.path().join("photo.jpg?w=32"), pattern(3000, 7)).unwrap();
    let server = Running::start(dir.path(), &[("MEDIA_SIGNING_KEYS", NEW)]).await;
    let link = sign(NEW, "/photo.jpg%3Fw=32", 300).await;
    let (path, signature) = link.split_once('?').unwrap();
    assert_eq!(path, "/photo.jpg%3Fw%3D32");
    let object = send(server.addr, "GET", &link, &[]).await;
    assert_eq!(
        (object.status, object.body.len()),
        (200, 3000),
        "the object"
    );
    let derivative = send(
        server.addr,
        "GET",
        &format!("/photo.jpg?w=32&{signature}"),
        &[],
    )
    .await;
    assert_eq!(
        (
            derivative.status,
            String::from_utf8_lossy(&derivative.body).into_owned()
        ),
        (
            403,
            "403 Forbidden: the link's signature is not valid\n".to_owned()
        ),
        "the derivative of photo.jpg with the object's signature"
    );
}
