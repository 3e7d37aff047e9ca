//! The object's checks, pure: an answer (and what earlier answers said) in,
//! a verdict out. Each names the rule of RFC 9110 it holds the answer to.

use std::time::Duration;

use http::header::{self, CONTENT_RANGE};
use http::StatusCode;

use super::exchange::Exchange;
use super::known::KnownBytes;
use super::multipart;
use crate::check::content_range;

/// Lambda streams a response's first 6 MB at full speed, then about 2 MB/s:
/// an answer longer than this shows the rest arrives too.
pub const LAMBDA_BURST_BYTES: u64 = 6 * 1024 * 1024;
/// The span of the read that passes [`LAMBDA_BURST_BYTES`] (and of the
/// streaming check's large read): a little more than the burst.
pub const LARGE_READ_BYTES: u64 = 7 * 1024 * 1024;
/// The streaming rule: the first byte of a large range may come at most this
/// many times as late as a small one's, plus [`STREAMING_SLACK`]. Generous on
/// purpose: a server that buffers a 7 MiB answer before its first byte
/// misses it by seconds on Lambda, and a loaded machine must not fail it.
pub const STREAMING_FACTOR: u32 = 4;
pub const STREAMING_SLACK: Duration = Duration::from_millis(250);

/// Types no media file should be served as: the browser then has to guess.
const GENERIC_TYPES: [&str; 2] = ["application/octet-stream", "binary/octet-stream"];
/// Extensions of media files, which must get a type of their own.
const MEDIA_EXTENSIONS: [&str; 22] = [
    "mp4", "m4v", "mov", "webm", "mkv", "mp3", "m4a", "aac", "ogg", "oga", "opus", "wav", "flac",
    "jpg", "jpeg", "png", "webp", "avif", "gif", "svg", "m3u8", "vtt",
];

/// What the HEAD said of the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub size: u64,
    pub etag: Option<String>,
}

/// HEAD (RFC 9110 §9.3.2): 200, the length, and a validator (§8.8).
pub fn head(answer: &Exchange) -> Result<(Object, String), String> {
    if answer.status != StatusCode::OK {
        return Err(format!("expected 200, got {}", answer.said()));
    }
    let size = answer
        .declared_length()
        .ok_or("expected a Content-Length, got none")?;
    if size == 0 {
        return Err("the object is empty: there are no ranges to ask for".into());
    }
    let etag = answer.header(header::ETAG).map(str::to_owned);
    let modified = answer.header(header::LAST_MODIFIED);
    let validators = match (&etag, modified) {
        (None, None) => return Err("expected an ETag or Last-Modified, got neither".into()),
        (Some(e), Some(m)) => format!("ETag {e}, Last-Modified {m}"),
        (Some(e), None) => format!("ETag {e}, no Last-Modified"),
        (None, Some(m)) => format!("Last-Modified {m}, no ETag"),
    };
    Ok((
        Object { size, etag },
        format!("200, {size} bytes, {validators}"),
    ))
}

/// A single-range answer (RFC 9110 §14.4, §15.3.7): 206 with
/// `Content-Range: bytes first-last/size` for `first-last` asked (`last`
/// clamped to the end), or for an open range (`last: None`) any range that
/// starts at `first` (a short 206 is legal and describes itself); a body of
/// exactly that many bytes, equal to what earlier answers gave.
pub fn single_range(
    answer: &Exchange,
    first: u64,
    last: Option<u64>,
    size: u64,
    known: &KnownBytes,
) -> Result<String, String> {
    if answer.status != StatusCode::PARTIAL_CONTENT {
        return Err(format!("expected 206, got {}", answer.said()));
    }
    let value = answer.header(CONTENT_RANGE);
    let expected = match last {
        Some(last) => format!("bytes {first}-{}/{size}", last.min(size - 1)),
        None => format!("bytes {first}-(any)/{size}"),
    };
    let (got_first, got_last, got_size) = value
        .and_then(content_range)
        .ok_or_else(|| format!("expected Content-Range {expected}, got {value:?}"))?;
    let answers = got_size == size
        && got_first == first
        && match last {
            Some(last) => got_last == last.min(size - 1),
            None => got_last < size,
        };
    if !answers {
        return Err(format!(
            "expected Content-Range {expected}, got {:?}",
            value.unwrap_or_default()
        ));
    }
    let len = got_last - got_first + 1;
    body_of_length(answer, len)?;
    known.compare(first, &answer.body)?;
    let capped = match last {
        None if got_last < size - 1 => " (capped: legal, RFC 9110 §15.3.7)",
        _ => "",
    };
    Ok(format!(
        "206 bytes {got_first}-{got_last}/{size}{capped}, {}",
        answer.body_summary()
    ))
}

/// The body holds `len` bytes, as Content-Length (when sent) says too; a body
/// read only up to the read limit counts when nothing says otherwise.
fn body_of_length(answer: &Exchange, len: u64) -> Result<(), String> {
    if let Some(declared) = answer.declared_length() {
        if declared != len {
            return Err(format!(
                "Content-Length {declared} for a range of {len} bytes"
            ));
        }
    }
    if let Some(e) = &answer.body_error {
        return Err(format!(
            "the body failed after {} of {len} bytes: {e}",
            answer.body.len()
        ));
    }
    let got = answer.body.len() as u64;
    if (answer.ended && got != len) || got > len {
        return Err(format!(
            "expected a body of {len} bytes, got {got}{}",
            if got > len { " or more" } else { "" }
        ));
    }
    Ok(())
}

/// Several ranges (RFC 9110 §14.6): 206 `multipart/byteranges`, one part per
/// range asked, in order, each with its exact Content-Range and the same bytes
/// as single-range answers.
pub fn multipart(
    answer: &Exchange,
    wanted: &[(u64, u64)],
    size: u64,
    known: &KnownBytes,
) -> Result<String, String> {
    if answer.status != StatusCode::PARTIAL_CONTENT {
        return Err(format!(
            "expected 206 multipart/byteranges, got {}",
            answer.said()
        ));
    }
    let content_type = answer.header(header::CONTENT_TYPE).unwrap_or_default();
    let boundary = multipart::boundary(content_type).ok_or_else(|| {
        format!("expected Content-Type multipart/byteranges; boundary=..., got {content_type:?}")
    })?;
    if answer.header(CONTENT_RANGE).is_some() {
        return Err("a multipart answer carries Content-Range in its parts only".into());
    }
    if !answer.ended {
        return Err(format!("the body did not end: {}", answer.body_summary()));
    }
    if let Some(declared) = answer.declared_length() {
        if declared != answer.body.len() as u64 {
            return Err(format!(
                "Content-Length {declared}, body of {} bytes",
                answer.body.len()
            ));
        }
    }
    let parts = multipart::parts(&answer.body, &boundary)?;
    let got: Vec<(u64, u64, u64)> = parts.iter().map(|p| (p.first, p.last, p.size)).collect();
    let expected: Vec<(u64, u64, u64)> = wanted.iter().map(|&(a, b)| (a, b, size)).collect();
    if got != expected {
        let show = |v: &[(u64, u64, u64)]| {
            v.iter()
                .map(|(a, b, s)| format!("{a}-{b}/{s}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(format!(
            "expected parts {}, got {}",
            show(&expected),
            show(&got)
        ));
    }
    for part in &parts {
        known
            .compare(part.first, &part.bytes)
            .map_err(|e| format!("part {}-{}: {e}", part.first, part.last))?;
    }
    Ok(format!(
        "206 multipart/byteranges, parts {}, bytes equal to single-range answers",
        wanted
            .iter()
            .map(|(a, b)| format!("{a}-{b}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// If-None-Match with the current ETag (RFC 9110 §13.1.2, §15.4.5): 304,
/// no body, the same ETag.
pub fn not_modified(answer: &Exchange, etag: &str) -> Result<String, String> {
    if answer.status != StatusCode::NOT_MODIFIED {
        return Err(format!("expected 304, got {}", answer.said()));
    }
    if !answer.body.is_empty() {
        return Err(format!("expected no body, got {} bytes", answer.body.len()));
    }
    match answer.header(header::ETAG) {
        Some(got) if got == etag => Ok(format!("304, no body, ETag {got}")),
        got => Err(format!("304 must carry ETag {etag}, got {got:?}")),
    }
}

/// If-Range with another ETag (RFC 9110 §13.1.5): the Range is ignored, so
/// 200 with the whole object and no Content-Range. On Lambda a whole object
/// above MEDIA_PRESIGN_ABOVE_BYTES is a 307 to a presigned S3 URL instead
/// (§15.4.8): the whole object, from elsewhere.
pub fn if_range_miss(answer: &Exchange, size: u64, known: &KnownBytes) -> Result<String, String> {
    if answer.status == StatusCode::TEMPORARY_REDIRECT {
        let location = answer
            .header(header::LOCATION)
            .ok_or("307 without a Location")?;
        let host = location
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_owned))
            .unwrap_or_else(|| location.to_owned());
        return Ok(format!(
            "307 to {host}: the whole object from a presigned URL (a large object on Lambda)"
        ));
    }
    if answer.status != StatusCode::OK {
        return Err(format!(
            "expected 200 (the Range ignored), got {}",
            answer.said()
        ));
    }
    if let Some(range) = answer.header(CONTENT_RANGE) {
        return Err(format!("a 200 carries no Content-Range, got {range:?}"));
    }
    body_of_length(answer, size)?;
    known.compare(0, &answer.body)?;
    Ok(format!(
        "200 with the whole {size} bytes, {}",
        answer.body_summary()
    ))
}

/// Nothing satisfiable (RFC 9110 §15.5.17): 416 with `bytes */size`.
pub fn unsatisfiable(answer: &Exchange, size: u64) -> Result<String, String> {
    let expected = format!("bytes */{size}");
    if answer.status != StatusCode::RANGE_NOT_SATISFIABLE {
        return Err(format!("expected 416, got {}", answer.said()));
    }
    match answer.header(CONTENT_RANGE) {
        Some(got) if got == expected => Ok(format!("416, Content-Range {got}")),
        got => Err(format!("expected Content-Range {expected}, got {got:?}")),
    }
}

/// Streaming, not buffering: the first byte of a large range comes about as
/// soon as a small range's.
pub fn streaming(small: Duration, large: &Exchange, large_len: u64) -> Result<String, String> {
    if large.status != StatusCode::PARTIAL_CONTENT {
        return Err(format!(
            "the large range to time came {}, not 206",
            large.said()
        ));
    }
    let Some(ttfb) = large.ttfb else {
        return Err("the large range brought no body byte".into());
    };
    let limit = small * STREAMING_FACTOR + STREAMING_SLACK;
    let text = format!(
        "first byte of {large_len} bytes after {} ms, of a small range after {} ms (rule: at most {}x + {} ms = {} ms)",
        ms(ttfb),
        ms(small),
        STREAMING_FACTOR,
        STREAMING_SLACK.as_millis(),
        ms(limit)
    );
    if ttfb <= limit {
        Ok(text)
    } else {
        Err(text)
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Content-Type (RFC 9110 §8.3) on every answer, the same on each, and a
/// media type of its own for a media file's extension.
pub fn content_type(extension: Option<&str>, answers: &[&Exchange]) -> Result<String, String> {
    let mut seen: Option<&str> = None;
    for answer in answers {
        let got = answer
            .header(header::CONTENT_TYPE)
            .ok_or_else(|| format!("{}: no Content-Type", answer.asked))?;
        match seen {
            None => seen = Some(got),
            Some(first) if first == got => {}
            Some(first) => {
                return Err(format!(
                    "{}: Content-Type {got:?}, others {first:?}",
                    answer.asked
                ))
            }
        }
    }
    let got = seen.ok_or("no answers to read")?;
    let essence = got
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let ext = extension.map(str::to_ascii_lowercase);
    if let Some(ext) = ext.filter(|e| MEDIA_EXTENSIONS.contains(&e.as_str())) {
        if GENERIC_TYPES.contains(&essence.as_str()) {
            return Err(format!(
                "a .{ext} file is served as {got:?}: players must guess"
            ));
        }
    }
    Ok(format!("{got} on all {} answers", answers.len()))
}

/// One strong ETag (RFC 9110 §8.8.3) on every answer: a range from one
/// answer may be joined with another's only when they share it.
pub fn etag(answers: &[&Exchange]) -> Result<String, String> {
    let mut seen: Option<&str> = None;
    for answer in answers {
        let got = answer
            .header(header::ETAG)
            .ok_or_else(|| format!("{}: no ETag", answer.asked))?;
        if got.starts_with("W/") {
            return Err(format!(
                "{}: weak ETag {got}: ranges need a strong one",
                answer.asked
            ));
        }
        match seen {
            None => seen = Some(got),
            Some(first) if first == got => {}
            Some(first) => return Err(format!("{}: ETag {got}, others {first}", answer.asked)),
        }
    }
    let got = seen.ok_or("no answers to read")?;
    Ok(format!("{got}, strong, on all {} answers", answers.len()))
}

/// `Accept-Ranges: bytes` (RFC 9110 §14.3) on every answer.
pub fn accept_ranges(answers: &[&Exchange]) -> Result<String, String> {
    for answer in answers {
        let got = answer.header(header::ACCEPT_RANGES);
        if !got.is_some_and(|v| v.eq_ignore_ascii_case("bytes")) {
            return Err(format!(
                "{}: Accept-Ranges {got:?}, expected bytes",
                answer.asked
            ));
        }
    }
    Ok(format!("bytes, on all {} answers", answers.len()))
}

#[cfg(test)]
mod tests;
