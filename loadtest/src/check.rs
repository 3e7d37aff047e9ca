//! What every answer must be: the pure checks of a response head against the
//! request and what the HEAD said.

use http::header::{self, HeaderMap};
use http::StatusCode;

use crate::pattern::Want;

/// Lambda moves a streamed response's Content-Length here.
pub(crate) const REMAPPED_CONTENT_LENGTH: &str = "x-amzn-remapped-content-length";

/// What the HEAD request said of the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub size: u64,
    pub etag: Option<String>,
}

/// A way an answer was wrong; `kind` names it in the summary.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("could not connect or send: {0}")]
    Connect(String),
    #[error("no answer within the timeout")]
    Timeout,
    #[error("status {status}, expected 206{}", said(.body))]
    Status { status: u16, body: String },
    #[error("Content-Range {got:?} does not answer {asked}")]
    ContentRange { asked: String, got: Option<String> },
    #[error("ETag {got:?}, expected {expected:?}")]
    Etag {
        expected: String,
        got: Option<String>,
    },
    #[error("Content-Length {got}, expected {expected}")]
    Length { expected: u64, got: String },
    #[error("body of {got} bytes, expected {expected}")]
    BodySize { expected: u64, got: u64 },
    #[error("body read failed: {0}")]
    Body(String),
}

/// The start of an unexpected answer's body, as the failure names it.
fn said(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body:?}")
    }
}

/// How much of an unexpected answer's body a failure quotes.
pub const QUOTED_BODY_BYTES: usize = 200;

impl Fault {
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Connect(_) => "connect",
            Fault::Timeout => "timeout",
            Fault::Status { .. } => "status",
            Fault::ContentRange { .. } => "content_range",
            Fault::Etag { .. } => "etag",
            Fault::Length { .. } => "content_length",
            Fault::BodySize { .. } => "body_size",
            Fault::Body(_) => "body_read",
        }
    }
}

/// Checks a response head: 206, a Content-Range that answers `want` (exactly
/// for a closed range; any non-empty prefix of the rest for an open one, the
/// legal cap), the HEAD's ETag, and a Content-Length (or Lambda's remapped
/// one) equal to the range's length. Returns the range sent, both ends
/// included.
pub fn check_head(
    want: &Want,
    object: &Object,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<(u64, u64), Fault> {
    if status != StatusCode::PARTIAL_CONTENT {
        return Err(Fault::Status {
            status: status.as_u16(),
            body: String::new(),
        });
    }
    let value = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok());
    let bad_range = || Fault::ContentRange {
        asked: want.header(),
        got: value.map(str::to_owned),
    };
    let (first, last, size) = value.and_then(content_range).ok_or_else(bad_range)?;
    let end = object.size - 1;
    let answers = size == object.size
        && match *want {
            Want::Closed {
                first: asked_first,
                last: asked_last,
            } => first == asked_first && last == asked_last.min(end),
            Want::Open { first: asked_first } => first == asked_first && last <= end,
        };
    if !answers {
        return Err(bad_range());
    }
    if let Some(expected) = &object.etag {
        let got = headers.get(header::ETAG).and_then(|v| v.to_str().ok());
        if got != Some(expected.as_str()) {
            return Err(Fault::Etag {
                expected: expected.clone(),
                got: got.map(str::to_owned),
            });
        }
    }
    let length = headers
        .get(header::CONTENT_LENGTH)
        .or_else(|| headers.get(REMAPPED_CONTENT_LENGTH));
    if let Some(length) = length {
        let expected = last - first + 1;
        let text = length.to_str().unwrap_or("").to_owned();
        if text.parse::<u64>() != Ok(expected) {
            return Err(Fault::Length {
                expected,
                got: text,
            });
        }
    }
    Ok((first, last))
}

/// The `first-last/size` of a `Content-Range: bytes first-last/size`, the one
/// form a single range's 206 takes (RFC 9110 §14.4), with `first <= last <
/// size`; `None` for anything else. Read here rather than with the server's
/// parser: the load tester checks the server, so it shares none of its code.
pub(crate) fn content_range(value: &str) -> Option<(u64, u64, u64)> {
    // Digits only: u64's parser would also take a leading '+'.
    let number = |digits: &str| {
        if digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse::<u64>().ok()
        } else {
            None
        }
    };
    let (span, size) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last, size) = (number(first)?, number(last)?, number(size)?);
    (first <= last && last < size).then_some((first, last, size))
}

/// What a HEAD must say for the test to start: 200 with a length, from
/// Content-Length or Lambda's remapped field.
pub fn object_from_head(status: StatusCode, headers: &HeaderMap) -> Result<Object, String> {
    if status != StatusCode::OK {
        return Err(format!("HEAD answered {status}, expected 200"));
    }
    let size = headers
        .get(header::CONTENT_LENGTH)
        .or_else(|| headers.get(REMAPPED_CONTENT_LENGTH))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or("HEAD answered no Content-Length")?;
    if size == 0 {
        return Err("the object is empty: there is no range to ask for".into());
    }
    let etag = headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(Object { size, etag })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn heads_are_checked_against_the_request() {
        let object = Object {
            size: 1000,
            etag: Some("\"v1\"".into()),
        };
        let closed = Want::Closed {
            first: 10,
            last: 19,
        };
        let past_end = Want::Closed {
            first: 990,
            last: 2000,
        };
        let open = Want::Open { first: 500 };
        let ok = |range: &str, len: &str| {
            headers(&[
                ("content-range", range),
                ("etag", "\"v1\""),
                ("content-length", len),
            ])
        };
        type Case<'a> = (&'a str, Want, u16, HeaderMap, Result<(u64, u64), &'a str>);
        let cases: Vec<Case> = vec![
            (
                "exact",
                closed,
                206,
                ok("bytes 10-19/1000", "10"),
                Ok((10, 19)),
            ),
            (
                "clamped end",
                past_end,
                206,
                ok("bytes 990-999/1000", "10"),
                Ok((990, 999)),
            ),
            (
                "open, capped",
                open,
                206,
                ok("bytes 500-599/1000", "100"),
                Ok((500, 599)),
            ),
            (
                "open, to the end",
                open,
                206,
                ok("bytes 500-999/1000", "500"),
                Ok((500, 999)),
            ),
            (
                "Lambda's remapped length",
                closed,
                206,
                headers(&[
                    ("content-range", "bytes 10-19/1000"),
                    ("etag", "\"v1\""),
                    ("x-amzn-remapped-content-length", "10"),
                ]),
                Ok((10, 19)),
            ),
            (
                "a 200",
                closed,
                200,
                ok("bytes 10-19/1000", "10"),
                Err("status"),
            ),
            (
                "shifted",
                closed,
                206,
                ok("bytes 11-20/1000", "10"),
                Err("content_range"),
            ),
            (
                "short",
                closed,
                206,
                ok("bytes 10-18/1000", "9"),
                Err("content_range"),
            ),
            (
                "other size",
                closed,
                206,
                ok("bytes 10-19/1001", "10"),
                Err("content_range"),
            ),
            (
                "backwards",
                closed,
                206,
                ok("bytes 19-10/1000", "10"),
                Err("content_range"),
            ),
            (
                "not a number",
                closed,
                206,
                ok("bytes 10-+19/1000", "10"),
                Err("content_range"),
            ),
            (
                "past the end",
                past_end,
                206,
                ok("bytes 990-1000/1000", "11"),
                Err("content_range"),
            ),
            (
                "open, wrong start",
                open,
                206,
                ok("bytes 0-99/1000", "100"),
                Err("content_range"),
            ),
            (
                "no Content-Range",
                closed,
                206,
                headers(&[("etag", "\"v1\"")]),
                Err("content_range"),
            ),
            (
                "changed ETag",
                closed,
                206,
                headers(&[("content-range", "bytes 10-19/1000"), ("etag", "\"v2\"")]),
                Err("etag"),
            ),
            (
                "no ETag",
                closed,
                206,
                headers(&[("content-range", "bytes 10-19/1000")]),
                Err("etag"),
            ),
            (
                "wrong length",
                closed,
                206,
                ok("bytes 10-19/1000", "11"),
                Err("content_length"),
            ),
        ];
        for (name, want, status, fields, expected) in cases {
            let got = check_head(
                &want,
                &object,
                StatusCode::from_u16(status).unwrap(),
                &fields,
            );
            assert_eq!(got.map_err(|f| f.kind()), expected, "{name}");
        }
    }

    #[test]
    fn the_head_must_give_a_size() {
        let ok = object_from_head(
            StatusCode::OK,
            &headers(&[("content-length", "5"), ("etag", "\"a\"")]),
        );
        assert_eq!(
            ok,
            Ok(Object {
                size: 5,
                etag: Some("\"a\"".into())
            })
        );
        let remapped = object_from_head(
            StatusCode::OK,
            &headers(&[("x-amzn-remapped-content-length", "7")]),
        );
        assert_eq!(remapped.map(|o| o.size), Ok(7));
        assert!(object_from_head(StatusCode::NOT_FOUND, &headers(&[])).is_err());
        assert!(object_from_head(StatusCode::OK, &headers(&[])).is_err());
        assert!(object_from_head(StatusCode::OK, &headers(&[("content-length", "0")])).is_err());
    }
}
