//! What came back for one request, as plain data the checks read, and the
//! header readings they share.

use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName};
use http::StatusCode;

use crate::check::REMAPPED_CONTENT_LENGTH;

/// One answer: its head, the body bytes read (up to the request's read
/// limit), and how the body went.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// What was asked, for the table: `GET bytes=0-1`.
    pub asked: String,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The body ended cleanly after the bytes read; `false` when reading
    /// stopped at the read limit or on an error.
    pub ended: bool,
    /// Why the body stopped early, if it failed.
    pub body_error: Option<String>,
    /// From sending the request to the first body byte.
    pub ttfb: Option<Duration>,
    /// From sending the request to the last body byte read.
    pub last_byte: Option<Duration>,
}

impl Exchange {
    /// A field's value as text; `None` when absent or not visible ASCII.
    pub fn header(&self, name: impl http::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body's length as announced: Content-Length, or Lambda's remapped
    /// field when it moved it.
    pub fn declared_length(&self) -> Option<u64> {
        self.header(header::CONTENT_LENGTH)
            .or_else(|| self.header(REMAPPED_CONTENT_LENGTH))
            .and_then(|v| v.parse().ok())
    }

    /// The same answer without its body, to keep for the checks that read
    /// heads only.
    pub fn head_only(&self) -> Exchange {
        Exchange {
            asked: self.asked.clone(),
            status: self.status,
            headers: self.headers.clone(),
            body: Vec::new(),
            ended: self.ended,
            body_error: self.body_error.clone(),
            ttfb: self.ttfb,
            last_byte: self.last_byte,
        }
    }

    /// `status` with the start of an unexpected body (an error answer
    /// usually says why).
    pub fn said(&self) -> String {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(120)]);
        let text = text.trim();
        if self.status.is_success() || text.is_empty() || text.contains('\0') {
            format!("{}", self.status.as_u16())
        } else {
            format!("{} {text:?}", self.status.as_u16())
        }
    }

    /// The body as the test read it: "N bytes", with how it ended.
    pub fn body_summary(&self) -> String {
        match (&self.body_error, self.ended) {
            (Some(e), _) => format!("{} bytes, then the body failed: {e}", self.body.len()),
            (None, true) => format!("{} bytes", self.body.len()),
            (None, false) => format!("the first {} bytes read", self.body.len()),
        }
    }
}

/// The comma-separated items of every `name` field, trimmed and lowercased.
pub fn list_items(headers: &HeaderMap, name: &HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| item.trim().to_ascii_lowercase())
        .filter(|item| !item.is_empty())
        .collect()
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Hand-made answers for the checks' table tests.
    use super::*;

    /// Response fields of a hand-made answer.
    pub type Fields<'a> = Vec<(&'a str, &'a str)>;
    /// A check's expected verdict: `Ok`, or an error containing the text.
    pub type Expected<'a> = Result<(), &'a str>;

    pub fn assert_verdict(name: &str, got: Result<String, String>, expected: Expected) {
        match expected {
            Ok(()) => assert!(got.is_ok(), "{name}: {got:?}"),
            Err(text) => {
                let got = got.expect_err(name);
                assert!(got.contains(text), "{name}: {got:?} should say {text:?}");
            }
        }
    }

    pub fn answer(status: u16, fields: &[(&str, &str)], body: &[u8]) -> Exchange {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        Exchange {
            asked: "GET".into(),
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: body.to_vec(),
            ended: true,
            body_error: None,
            ttfb: Some(Duration::from_millis(1)),
            last_byte: Some(Duration::from_millis(2)),
        }
    }
}
