//! The edge function that checks signed links in front of CloudFront's cache
//! (deploy/edge/verify-link.js) against the function's own check: each link is
//! made by `media-streamer sign`, judged by the JavaScript under node as
//! CloudFront Functions runs it (deploy/edge/run-cases.mjs), and requested from
//! the real server with the same keys. Both must give the expected answer, so
//! they agree on every row. Also: the template carries exactly that
//! JavaScript, and the code stays inside CloudFront Functions' limits.

use std::path::PathBuf;
use std::process::Stdio;

use media_streamer::derivative::params::DEFAULT_SIZES;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::binary::Running;
use crate::client::send;
use crate::fixture::Fixture;
use crate::signed::sign;

/// The keys both sides hold: `new` signs, `old` was rotated out but still
/// verifies.
const KEYS: &str =
    "new:the-new-edge-secret-of-thirty-two-bytes,old:the-old-edge-secret-of-thirty-two-bytes";
const OLD: &str = "old:the-old-edge-secret-of-thirty-two-bytes";
/// A key that was configured once and has been removed.
const REMOVED: &str = "gone:a-removed-edge-secret-of-thirty-two-bytes";
/// A secret under a configured id that neither side has.
const FORGED: &str = "new:a-forged-edge-secret-of-thirty-two-bytes!";
const SKEW_SECS: u64 = 30;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What a row must get, from the edge and from the function.
#[derive(Clone, Debug, PartialEq)]
enum Verdict {
    /// Served; at the edge the request goes on with these query parameters.
    Pass(Vec<(String, String)>),
    /// Refused with this status and plain-text body.
    Refused(u16, String),
}

fn pass(params: &[(&str, &str)]) -> Verdict {
    Verdict::Pass(
        params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    )
}

fn forbidden(reason: &str) -> Verdict {
    Verdict::Refused(403, format!("403 Forbidden: {reason}\n"))
}

fn bad_request() -> Verdict {
    Verdict::Refused(400, "400 Bad Request\n".into())
}

/// The query of a link, as name/value pairs.
fn params(link: &str) -> Vec<(String, String)> {
    let query = link.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (n.to_owned(), v.to_owned())
        })
        .collect()
}

fn query(link: &str) -> &str {
    link.split_once('?').unwrap().1
}

/// Fails loudly when node is missing: the edge function is not checked then.
async fn require_node() {
    let version = Command::new("node").arg("--version").output().await;
    match version {
        Ok(out) if out.status.success() => {}
        _ => panic!(
            "node is needed to test the CloudFront Function deploy/edge/verify-link.js \
             (install Node.js 18 or later and put `node` on PATH)"
        ),
    }
}

/// The sizes both sides allow: the server's default list, as the template's
/// ImageSizes parameter writes it.
pub(crate) fn default_sizes() -> String {
    let sizes: Vec<String> = DEFAULT_SIZES.iter().map(u32::to_string).collect();
    sizes.join(",")
}

/// Runs the edge function on `cases` (name, target) with the test's keys.
async fn edge_verdicts(cases: &[(String, String)]) -> Vec<Value> {
    let cases: Vec<Value> = cases
        .iter()
        .map(|(name, target)| json!({"name": name, "target": target}))
        .collect();
    run_edge(
        json!({ "secret": "", "keys": KEYS, "skew": SKEW_SECS }),
        &cases,
    )
    .await
}

/// Runs the edge function as template.yaml carries it under node, with
/// `settings` ({secret, keys, skew}; sizes the server's default) on `cases`
/// ({name, target, accept}): one result per case (deploy/edge/run-cases.mjs).
pub(crate) async fn run_edge(mut settings: Value, cases: &[Value]) -> Vec<Value> {
    settings["sizes"] = json!(default_sizes());
    run_node(
        "deploy/edge/run-cases.mjs",
        json!({ "settings": settings, "cases": cases }),
    )
    .await
}

/// Runs a node script of deploy/edge/ with `input` as JSON on its standard
/// input: the JSON array it prints.
async fn run_node(script: &str, input: Value) -> Vec<Value> {
    require_node().await;
    let mut child = Command::new("node")
        .arg(repo().join(script))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run node");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.to_string().as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("JSON from {script}: {e}"))
}

fn edge_verdict(result: &Value) -> Verdict {
    if result["status"] == "pass" {
        let pairs = result["query"].as_array().unwrap();
        Verdict::Pass(
            pairs
                .iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap().to_owned(),
                        p[1].as_str().unwrap().to_owned(),
                    )
                })
                .collect(),
        )
    } else {
        Verdict::Refused(
            result["status"].as_u64().unwrap() as u16,
            result["body"].as_str().unwrap().to_owned(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_and_the_function_judge_signed_links_alike() {
    let media = Fixture::new();
    // An object whose key has a '?': its link must not open a derivative.
    std::fs::write(media.root.join("q.jpg?w=640"), b"not an image").unwrap();
    let skew = SKEW_SECS.to_string();
    let server = Running::start(
        &media.root,
        &[
            ("MEDIA_SIGNING_KEYS", KEYS),
            ("MEDIA_SIGNING_SKEW_SECS", &skew),
        ],
    )
    .await;

    let object = sign(KEYS, "/bytes.bin", 300).await;
    let sig = params(&object)
        .into_iter()
        .find(|(n, _)| n == "sig")
        .unwrap()
        .1;
    let tampered = {
        // The first character: the last one's low bits must stay zero.
        let at = object.find("sig=").unwrap() + 4;
        let flipped = if &object[at..=at] == "A" { "B" } else { "A" };
        format!("{}{flipped}{}", &object[..at], &object[at + 1..])
    };
    let spaced = sign(KEYS, "/name with spaces é.mp4", 300).await;
    let nested = sign(KEYS, "/sub/clip.webm", 300).await;
    let index = sign(KEYS, "/", 300).await;
    let directory = sign(KEYS, "/sub/", 300).await;
    let directory_more = format!("{directory}&x=1");
    let question = sign(KEYS, "/q.jpg%3Fw%3D640", 300).await;
    let expires = params(&object)[0].1.clone();

    // (what, target, the verdict both must give)
    let rows: Vec<(&str, String, Verdict)> = vec![
        ("valid", object.clone(), pass(&[])),
        (
            "valid, other parameters after it",
            format!("{object}&t=10&download"),
            pass(&[("t", "10"), ("download", "")]),
        ),
        (
            "valid, a parameter before it",
            format!("/bytes.bin?x=1&{}", query(&object)),
            pass(&[("x", "1")]),
        ),
        (
            "signed by an older key still configured",
            sign(OLD, "/bytes.bin", 300).await,
            pass(&[]),
        ),
        (
            "signed by a removed key",
            sign(REMOVED, "/bytes.bin", 300).await,
            forbidden("the link was signed with an unknown key"),
        ),
        (
            "signed by a key neither side has, under a configured id",
            sign(FORGED, "/bytes.bin", 300).await,
            forbidden("the link's signature is not valid"),
        ),
        (
            "expired within the skew",
            sign(KEYS, "/bytes.bin", -10).await,
            pass(&[]),
        ),
        (
            "expired",
            sign(KEYS, "/bytes.bin", -100).await,
            forbidden("the link has expired"),
        ),
        (
            "another path",
            format!("/sub/clip.webm?{}", query(&object)),
            forbidden("the link's signature is not valid"),
        ),
        (
            "tampered signature",
            tampered,
            forbidden("the link's signature is not valid"),
        ),
        (
            "a later expiry",
            object.replace(
                &format!("expires={expires}"),
                &format!("expires={}", expires.parse::<i64>().unwrap() + 3600),
            ),
            forbidden("the link's signature is not valid"),
        ),
        (
            "unknown key id",
            object.replace("kid=new", "kid=gone"),
            forbidden("the link was signed with an unknown key"),
        ),
        (
            "no key id, several keys",
            object.replace("&kid=new", ""),
            forbidden("the link was signed with an unknown key"),
        ),
        (
            "no signature",
            "/bytes.bin".into(),
            forbidden("this link needs a signature"),
        ),
        (
            "no expiry",
            format!("/bytes.bin?kid=new&sig={sig}"),
            forbidden("this link needs a signature"),
        ),
        (
            "the signature twice",
            format!("{object}&sig={sig}"),
            forbidden("the link's signature parameters are malformed"),
        ),
        (
            "an expiry that is no number",
            object.replace(&format!("expires={expires}"), "expires=soon"),
            forbidden("the link's signature parameters are malformed"),
        ),
        (
            "a signature that is no base64url",
            format!("/bytes.bin?expires={expires}&kid=new&sig=!!!!"),
            forbidden("the link's signature parameters are malformed"),
        ),
        ("a percent-encoded name", spaced, pass(&[])),
        ("in a subdirectory", nested.clone(), pass(&[])),
        (
            "the index, signed: the query goes on whole",
            index.clone(),
            Verdict::Pass(params(&index)),
        ),
        (
            "a directory, signed, with a parameter more",
            directory_more.clone(),
            Verdict::Pass(params(&directory_more)),
        ),
        ("a key with '?', its own link", question.clone(), pass(&[])),
        (
            "that link's signature on the derivative w=640 of q.jpg",
            format!("/q.jpg?w=640&{}", query(&question)),
            forbidden("the link's signature is not valid"),
        ),
        (
            "the index, unsigned",
            "/".into(),
            forbidden("this link needs a signature"),
        ),
        (
            "an object's signature on the index",
            format!("/?{}", query(&object)),
            forbidden("the link's signature is not valid"),
        ),
        (
            "an encoded slash in a signed path",
            nested.replace("/sub/", "/sub%2F"),
            bad_request(),
        ),
        (
            "a dot segment in a signed path",
            format!("/sub/../bytes.bin?{}", query(&object)),
            bad_request(),
        ),
    ];

    let cases: Vec<(String, String)> = rows
        .iter()
        .map(|(name, target, _)| (name.to_string(), target.clone()))
        .collect();
    let edge = edge_verdicts(&cases).await;
    assert_eq!(edge.len(), rows.len());

    let mut table = vec![format!("{:<58} | expected | node | function", "case")];
    let mut failures = Vec::new();
    for ((name, target, want), edge) in rows.iter().zip(&edge) {
        let at_edge = edge_verdict(edge);
        let response = send(server.addr, "GET", target, &[("Range", "bytes=0-9")]).await;
        let at_function = match response.status {
            200 | 206 => None,
            status => Some(Verdict::Refused(
                status,
                String::from_utf8_lossy(&response.body).into_owned(),
            )),
        };
        let function_ok = match (&at_function, want) {
            (None, Verdict::Pass(_)) => true,
            (Some(got), want) => got == want,
            (None, _) => false,
        };
        // "pass", or the status and the reason after the status line.
        let short = |v: Option<&Verdict>| match v {
            None | Some(Verdict::Pass(_)) => "pass".to_owned(),
            Some(Verdict::Refused(status, body)) => {
                let reason = body.trim_end().split_once(": ").map_or("", |(_, r)| r);
                format!("{status} {reason}").trim_end().to_owned()
            }
        };
        table.push(format!(
            "{name:<58} | {} | {} | {}",
            short(Some(want)),
            short(Some(&at_edge)),
            short(at_function.as_ref()),
        ));
        if &at_edge != want {
            failures.push(format!(
                "{name}: the edge gave {at_edge:?}, not {want:?} ({target})"
            ));
        }
        if !function_ok {
            failures.push(format!(
                "{name}: the function gave {} {:?}, not {want:?} ({target})",
                response.status,
                String::from_utf8_lossy(&response.body)
            ));
        }
    }
    eprintln!("{}", table.join("\n"));
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_template_carries_the_edge_function_as_rendered() {
    let output = std::process::Command::new("python3")
        .arg(repo().join("scripts/render-template.py"))
        .arg("--check")
        .output()
        .expect("python3 runs scripts/render-template.py");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The code template.yaml carries: the Fn::Sub string render-template.py makes.
pub(crate) fn rendered_code() -> String {
    let output = std::process::Command::new("python3")
        .arg(repo().join("scripts/render-template.py"))
        .arg("--code")
        .output()
        .expect("python3 runs scripts/render-template.py");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The edge code's size at the longest parameters is a row of the stack test
/// (tests/deploy/test_stack.py, `edge-code-size`), on the transformed template.
#[test]
fn the_edge_function_imports_only_what_cloudfront_functions_offer() {
    let code = rendered_code();
    // cloudfront-js-2.0 offers the modules crypto and cloudfront; the
    // origin helpers need `import cf from 'cloudfront'` on the first line.
    let imports: Vec<&str> = code.lines().filter(|l| l.starts_with("import ")).collect();
    assert_eq!(
        imports,
        [
            "import cf from 'cloudfront';",
            "import crypto from 'crypto';"
        ]
    );
    assert!(code.starts_with("import cf from 'cloudfront';\n"));
    assert!(!code.contains("require("), "no require");
}

/// Runs the viewer-response function as template.yaml carries it under node
/// on (file name, Content-Type) cases: the Content-Security-Policy after it
/// (deploy/edge/run-responses.mjs).
async fn edge_policies(cases: &[(String, Option<String>)]) -> Vec<Option<String>> {
    let cases: Vec<Value> = cases
        .iter()
        .map(|(name, content_type)| json!({"name": name, "contentType": content_type}))
        .collect();
    run_node("deploy/edge/run-responses.mjs", json!({ "cases": cases }))
        .await
        .iter()
        .map(|r| r["csp"].as_str().map(str::to_owned))
        .collect()
}

/// Behind CloudFront, S3 serves stored files: the viewer-response function
/// must give each the Content-Security-Policy the function gives it, judged
/// file by file on the function's own answers and Content-Types.
#[tokio::test]
async fn the_edge_gives_stored_documents_the_function_s_policy() {
    const POLICY: &str = "default-src 'none'; sandbox";
    // File, and whether a browser would run script in it.
    let files = [
        ("page.html", true),
        ("page.xhtml", true),
        ("drawing.svg", true),
        ("feed.xml", true),
        ("manifest.mpd", true),
        ("clip.mp4", false),
        ("song.mp3", false),
        ("photo.jpg", false),
        ("notes.txt", false),
        ("captions.vtt", false),
        ("playlist.m3u8", false),
        ("data.bin", false),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, _) in &files {
        std::fs::write(dir.path().join(name), b"<x>stored</x>").unwrap();
    }
    let server = Running::start(dir.path(), &[]).await;
    let mut cases = Vec::new();
    let mut at_function = Vec::new();
    for (name, _) in &files {
        let response = send(server.addr, "GET", &format!("/{name}"), &[]).await;
        assert_eq!(response.status, 200, "{name}");
        cases.push((
            name.to_string(),
            response.header("content-type").map(str::to_owned),
        ));
        at_function.push(
            response
                .header("content-security-policy")
                .map(str::to_owned),
        );
    }
    let at_edge = edge_policies(&cases).await;
    for (((name, document), (_, content_type)), (function, edge)) in files
        .iter()
        .zip(&cases)
        .zip(at_function.iter().zip(&at_edge))
    {
        let want = document.then(|| POLICY.to_owned());
        assert_eq!(
            function, &want,
            "{name} ({content_type:?}) from the function"
        );
        assert_eq!(edge, &want, "{name} ({content_type:?}) at the edge");
    }
    // An answer with no Content-Type gets no policy at the edge either.
    assert_eq!(edge_policies(&[("x".into(), None)]).await, [None]);
}
