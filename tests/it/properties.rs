//! Properties over generated input, through the real pipeline and a real
//! directory source: whatever the object's size and the Range header, every
//! answer is one the RFC allows, and every byte it carries is the one named.

use std::path::Path;
use std::sync::Arc;

use http_body_util::BodyExt;
use media_streamer::service::MediaService;
use media_streamer::source::dir::DirSource;
use proptest::prelude::*;

use crate::fixture::{pattern, settings};

/// Range headers: well-formed sets of one to five specs (some past the end,
/// some empty, some overlapping), and anything at all.
fn range_header() -> impl Strategy<Value = String> {
    let spec = prop_oneof![
        (0u64..4000, 0u64..4000).prop_map(|(a, b)| format!("{a}-{b}")),
        (0u64..4000).prop_map(|a| format!("{a}-")),
        (0u64..4000).prop_map(|n| format!("-{n}")),
    ];
    let unit = prop_oneof![8 => Just("bytes"), 1 => Just("BYTES"), 1 => Just("bits")];
    let specs = prop_oneof![
        3 => prop::collection::vec(spec.clone(), 1..2),
        2 => prop::collection::vec(spec.clone(), 2..3),
        1 => prop::collection::vec(spec, 3..6),
    ];
    prop_oneof![
        6 => (unit, specs, prop_oneof![Just(","), Just(", ")])
            .prop_map(|(unit, specs, sep)| format!("{unit}={}", specs.join(sep))),
        1 => "[ -~]{0,40}",
        1 => "bytes=[0-9,\\- ]{0,30}",
    ]
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

async fn ask(service: &MediaService, target: &str, range: &str) -> Answer {
    let mut request = http::Request::get(target);
    if let Ok(value) = http::HeaderValue::from_str(range) {
        request = request.header(http::header::RANGE, value);
    }
    let (parts, ()) = request.body(()).unwrap().into_parts();
    let response = service.respond(parts).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
    answer.headers.get(name).and_then(|v| v.to_str().ok())
}

/// `bytes FIRST-LAST/SIZE`, checked against the object's size.
fn content_range(value: &str, size: u64) -> Result<(usize, usize), String> {
    let (span, total) = value
        .strip_prefix("bytes ")
        .and_then(|v| v.split_once('/'))
        .ok_or_else(|| format!("Content-Range {value:?}"))?;
    let (first, last) = span.split_once('-').ok_or("no dash")?;
    let (first, last): (u64, u64) = (
        first.parse().map_err(|_| "first")?,
        last.parse().map_err(|_| "last")?,
    );
    if total != size.to_string() || first > last || last >= size {
        return Err(format!("Content-Range {value:?} for {size} bytes"));
    }
    Ok((first as usize, last as usize))
}

/// The parts of a multipart/byteranges body: each part's Content-Range and bytes.
fn parts(body: &[u8], boundary: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let delimiter = format!("--{boundary}");
    let text = body;
    let find = |from: usize| {
        text[from..]
            .windows(delimiter.len())
            .position(|w| w == delimiter.as_bytes())
            .map(|p| p + from)
    };
    let mut at = find(0)
        .filter(|&p| p == 0)
        .ok_or("body does not start with the boundary")?;
    let mut out = Vec::new();
    loop {
        at += delimiter.len();
        if text[at..].starts_with(b"--\r\n") && at + 4 == text.len() {
            return Ok(out);
        }
        let head_end = text[at..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("part without a head")?
            + at;
        let head = String::from_utf8_lossy(&text[at..head_end]).to_string();
        let range = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Range: "))
            .ok_or("part without Content-Range")?
            .to_owned();
        let data_start = head_end + 4;
        let next = find(data_start).ok_or("unterminated part")?;
        if &text[next - 2..next] != b"\r\n" {
            return Err("part data not followed by CRLF".into());
        }
        out.push((range, text[data_start..next - 2].to_vec()));
        at = next;
    }
}

/// Every rule an answer to GET with `range` must keep, for an object of `data`.
fn check(answer: &Answer, data: &[u8], range: &str) -> Result<(), String> {
    let size = data.len() as u64;
    let length = header(answer, "content-length").map(str::to_owned);
    if length != Some(answer.body.len().to_string()) {
        return Err(format!(
            "Content-Length {length:?}, body {} bytes",
            answer.body.len()
        ));
    }
    match answer.status {
        200 => {
            if answer.body != data {
                return Err("a 200 that is not the whole object".into());
            }
        }
        206 => {
            let content_type = header(answer, "content-type").unwrap_or("");
            if let Some(boundary) = content_type.strip_prefix("multipart/byteranges; boundary=") {
                let parts = parts(&answer.body, boundary)?;
                if parts.len() < 2 {
                    return Err(format!("multipart with {} part(s)", parts.len()));
                }
                for (value, bytes) in parts {
                    let (first, last) = content_range(&value, size)?;
                    if bytes != data[first..=last] {
                        return Err(format!("part {value} carries other bytes"));
                    }
                }
            } else {
                let value = header(answer, "content-range").ok_or("206 without Content-Range")?;
                let (first, last) = content_range(value, size)?;
                if answer.body != data[first..=last] {
                    return Err(format!("{value} carries other bytes"));
                }
            }
        }
        416 => {
            if header(answer, "content-range") != Some(&format!("bytes */{size}")) {
                return Err("416 without bytes */SIZE".into());
            }
            if !range.to_ascii_lowercase().starts_with("bytes=") {
                return Err("416 for a header that is not a bytes range".into());
            }
        }
        status => return Err(format!("status {status}")),
    }
    Ok(())
}

fn object(root: &Path, size: u64) -> (String, Vec<u8>) {
    let name = format!("object-{size}.bin");
    let data = pattern(size as usize, (size % 251) as u8);
    let path = root.join(&name);
    if !path.exists() {
        std::fs::write(&path, &data).unwrap();
    }
    (format!("/{name}"), data)
}

#[test]
fn every_answer_carries_exactly_the_bytes_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let service = MediaService::new(Arc::new(DirSource::new(dir.path()).unwrap()), settings());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = ProptestConfig {
        cases: 4000,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    // What the generated cases came to: every kind of answer must be among them.
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<&str, u32>::new());
    proptest!(config, |(size in prop_oneof![Just(0u64), Just(1u64), 0u64..5000], range in range_header())| {
        let (target, data) = object(dir.path(), size);
        let answer = runtime.block_on(ask(&service, &target, &range));
        if let Err(why) = check(&answer, &data, &range) {
            prop_assert!(false, "{} bytes, Range {:?}: {}", size, range, why);
        }
        let kind = match answer.status {
            200 => "200",
            206 if answer.headers.contains_key("content-range") => "206 single",
            206 => "206 multipart",
            _ => "416",
        };
        *seen.borrow_mut().entry(kind).or_default() += 1;
    });
    let seen = seen.into_inner();
    println!("answers: {seen:?}");
    for kind in ["200", "206 single", "206 multipart", "416"] {
        assert!(
            seen.get(kind).copied().unwrap_or(0) >= 10,
            "too few {kind}: {seen:?}"
        );
    }
}
