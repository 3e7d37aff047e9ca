//! What every answer to a GET must keep, whatever was asked: the rules the
//! property test and the fuzz target `request` hold the pipeline to. This file
//! is shared: `fuzz/fuzz_targets/request.rs` includes it by path, so it uses
//! only crates both depend on (`http`, `http-body-util`, the library).

use http_body_util::BodyExt;
use media_streamer::service::MediaService;

/// A response, collected.
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The service's whole answer to a request head.
    pub async fn of(service: &MediaService, request: http::request::Parts) -> Answer {
        let response = service.respond(request).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: body.to_vec(),
        }
    }
}

pub fn header<'a>(answer: &'a Answer, name: &str) -> Option<&'a str> {
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
pub fn check(answer: &Answer, data: &[u8], range: &str) -> Result<(), String> {
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
