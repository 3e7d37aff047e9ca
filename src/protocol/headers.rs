//! Response heads: status and header fields for each kind of answer, built from
//! values alone.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

use super::description::Description;
use super::media_type::runs_script;
use super::multipart::MultipartLayout;
use super::range::{content_range, unsatisfied_content_range, ByteRange};

/// A status and its header fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
}

impl Head {
    fn new(status: StatusCode) -> Self {
        let mut headers = HeaderMap::new();
        // Media is never to be sniffed into something else (e.g. HTML).
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        Head { status, headers }
    }

    fn set(&mut self, name: HeaderName, value: impl ToString) {
        // Values come from configuration (checked at start-up), numbers, dates
        // and store metadata; a store value that is not a valid field is left out
        // rather than sent broken.
        if let Ok(value) = HeaderValue::try_from(value.to_string()) {
            self.headers.insert(name, value);
        }
    }
}

/// `ETag`, `Last-Modified` and `Cache-Control`: what a 200 and a 304 share
/// (RFC 9110 §15.4.5). The object's own Cache-Control wins over the default.
fn set_validators(head: &mut Head, meta: &Description, default_cache_control: &HeaderValue) {
    head.set(header::ETAG, meta.etag());
    if let Some(lm) = meta.last_modified() {
        head.set(header::LAST_MODIFIED, httpdate::fmt_http_date(lm));
    }
    match &meta.cache_control {
        Some(own) => head.set(header::CACHE_CONTROL, own),
        None => {
            head.headers
                .insert(header::CACHE_CONTROL, default_cache_control.clone());
        }
    }
}

/// The Content-Security-Policy of a stored document that a browser would run
/// script in (HTML, SVG, XML): nothing loads, and `sandbox` gives it an
/// opaque origin of its own, so an uploaded page is not script of the media
/// origin (the origin of the index page, of signed links and of CORS reads).
pub const STORED_DOCUMENT_CSP: &str = "default-src 'none'; sandbox";

fn representation(status: StatusCode, meta: &Description, cache_control: &HeaderValue) -> Head {
    let mut head = Head::new(status);
    set_validators(&mut head, meta, cache_control);
    head.headers
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Media gets no policy: a browser shows a video or an image opened
    // directly in a document of its own making, which `default-src 'none'`
    // would stop from loading the very file; such files run no script.
    if runs_script(&meta.content_type) {
        head.headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(STORED_DOCUMENT_CSP),
        );
    }
    head
}

/// 200 with the whole object (RFC 9110 §15.3.1).
pub fn whole(meta: &Description, cache_control: &HeaderValue) -> Head {
    let mut head = representation(StatusCode::OK, meta, cache_control);
    head.set(header::CONTENT_TYPE, &meta.content_type);
    head.set(header::CONTENT_LENGTH, meta.size);
    head
}

/// 206 with one range (RFC 9110 §15.3.7.1).
pub(crate) fn single_range(
    meta: &Description,
    range: &ByteRange,
    cache_control: &HeaderValue,
) -> Head {
    let mut head = representation(StatusCode::PARTIAL_CONTENT, meta, cache_control);
    head.set(header::CONTENT_TYPE, &meta.content_type);
    head.set(header::CONTENT_LENGTH, range.len());
    head.set(header::CONTENT_RANGE, content_range(range, meta.size));
    head
}

/// 206 `multipart/byteranges` (RFC 9110 §15.3.7.2).
pub(crate) fn multi_range(
    meta: &Description,
    layout: &MultipartLayout,
    cache_control: &HeaderValue,
) -> Head {
    let mut head = representation(StatusCode::PARTIAL_CONTENT, meta, cache_control);
    head.set(header::CONTENT_TYPE, layout.content_type());
    head.set(header::CONTENT_LENGTH, layout.content_length());
    head
}

/// 304: validators, Cache-Control and Content-Type, no body and no length
/// (RFC 9110 §15.4.5).
///
/// Content-Type is the one field beyond the required ones: caches freshen their
/// stored response with a 304's fields (RFC 9111 §4.3.4), and Lambda's
/// streaming runtime adds `application/octet-stream` to any response without a
/// type, which would overwrite the stored type. Sending the real one keeps the
/// cache right on every transport.
///
/// A store's own 304 may tell nothing of the representation; then the head
/// has no validators to repeat.
pub fn not_modified(meta: Option<&Description>, cache_control: &HeaderValue) -> Head {
    let mut head = Head::new(StatusCode::NOT_MODIFIED);
    if let Some(meta) = meta {
        set_validators(&mut head, meta, cache_control);
        head.set(header::CONTENT_TYPE, &meta.content_type);
    }
    head
}

/// 412 with the current validators where known, so a client can see what it
/// missed.
pub(crate) fn precondition_failed(meta: Option<&Description>) -> (Head, Bytes) {
    let (mut head, body) = error(StatusCode::PRECONDITION_FAILED);
    if let Some(meta) = meta {
        head.set(header::ETAG, meta.etag());
        if let Some(lm) = meta.last_modified() {
            head.set(header::LAST_MODIFIED, httpdate::fmt_http_date(lm));
        }
    }
    (head, body)
}

/// 200 with a generated HTML page of `length` bytes, revalidated on every
/// use (it changes as objects come and go), locked down by its own
/// Content-Security-Policy.
pub(crate) fn html_page(length: usize, content_security_policy: &'static str) -> Head {
    let mut head = Head::new(StatusCode::OK);
    head.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    head.set(header::CONTENT_LENGTH, length);
    head.headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    head.headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(content_security_policy),
    );
    head.headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    head
}

/// 307 to `location` (RFC 9110 §15.4.8): the same method, elsewhere, this once.
pub(crate) fn temporary_redirect(location: &str) -> (Head, Bytes) {
    let (mut head, body) = error(StatusCode::TEMPORARY_REDIRECT);
    head.set(header::LOCATION, location);
    (head, body)
}

/// 416 with `Content-Range: bytes */size` (RFC 9110 §15.5.17).
pub(crate) fn range_not_satisfiable(size: u64) -> (Head, Bytes) {
    let (mut head, body) = error(StatusCode::RANGE_NOT_SATISFIABLE);
    head.set(header::CONTENT_RANGE, unsatisfied_content_range(size));
    head.headers
        .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    (head, body)
}

/// 405 with `Allow` (RFC 9110 §15.5.6): the methods served.
pub(crate) fn method_not_allowed(allow: &'static str) -> (Head, Bytes) {
    let (mut head, body) = error(StatusCode::METHOD_NOT_ALLOWED);
    head.headers
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    (head, body)
}

/// A short plain-text error with a reason of this server's own wording (a
/// signed link's fault, a bad query parameter), nothing from the request.
pub fn refused(status: StatusCode, reason: &str) -> (Head, Bytes) {
    plain_text(status, format!("{}: {reason}\n", status_line(status)))
}

/// `503 Service Unavailable` with `Retry-After` (RFC 9110 §10.2.3, in
/// seconds) and `reason`: the server is busy, not broken, and the client may
/// ask again then.
pub fn busy(reason: &str, retry_after_secs: u32) -> (Head, Bytes) {
    let (mut head, body) = refused(StatusCode::SERVICE_UNAVAILABLE, reason);
    head.set(header::RETRY_AFTER, retry_after_secs);
    (head, body)
}

/// A short plain-text error: the status line's code and reason, nothing from
/// the request or the store.
pub fn error(status: StatusCode) -> (Head, Bytes) {
    plain_text(status, format!("{}\n", status_line(status)))
}

/// `404 Not Found`: the code and its reason phrase.
fn status_line(status: StatusCode) -> String {
    format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    )
}

/// An error answer whose body is `text`, never cached.
fn plain_text(status: StatusCode, text: String) -> (Head, Bytes) {
    let body = Bytes::from(text);
    let mut head = Head::new(status);
    head.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    head.set(header::CONTENT_LENGTH, body.len());
    head.headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    (head, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::conditional::{EntityTag, Validators};
    use std::time::{Duration, UNIX_EPOCH};

    fn meta(cache_control: Option<&str>) -> Description {
        Description {
            size: 10,
            validators: Validators {
                etag: EntityTag::strong("v1").unwrap(),
                last_modified: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            },
            content_type: "video/mp4".into(),
            cache_control: cache_control.map(str::to_owned),
        }
    }

    fn fields(head: &Head) -> Vec<(String, String)> {
        let mut v: Vec<_> = head
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        v.sort();
        v
    }

    fn expect(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<_> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    }

    const LM: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

    type Fields = Vec<(String, String)>;

    #[test]
    fn builds_heads() {
        let cc = HeaderValue::from_static("public, max-age=60");
        let layout = MultipartLayout::new(
            "B",
            "video/mp4",
            10,
            &[
                ByteRange { first: 0, last: 0 },
                ByteRange { first: 9, last: 9 },
            ],
        );
        let cases: Vec<(Head, StatusCode, Fields)> = vec![
            (
                whole(&meta(None), &cc),
                StatusCode::OK,
                expect(&[
                    ("accept-ranges", "bytes"),
                    ("cache-control", "public, max-age=60"),
                    ("content-length", "10"),
                    ("content-type", "video/mp4"),
                    ("etag", "\"v1\""),
                    ("last-modified", LM),
                    ("x-content-type-options", "nosniff"),
                ]),
            ),
            (
                whole(&meta(Some("no-cache")), &cc),
                StatusCode::OK,
                expect(&[
                    ("accept-ranges", "bytes"),
                    ("cache-control", "no-cache"),
                    ("content-length", "10"),
                    ("content-type", "video/mp4"),
                    ("etag", "\"v1\""),
                    ("last-modified", LM),
                    ("x-content-type-options", "nosniff"),
                ]),
            ),
            (
                single_range(&meta(None), &ByteRange { first: 2, last: 5 }, &cc),
                StatusCode::PARTIAL_CONTENT,
                expect(&[
                    ("accept-ranges", "bytes"),
                    ("cache-control", "public, max-age=60"),
                    ("content-length", "4"),
                    ("content-range", "bytes 2-5/10"),
                    ("content-type", "video/mp4"),
                    ("etag", "\"v1\""),
                    ("last-modified", LM),
                    ("x-content-type-options", "nosniff"),
                ]),
            ),
            (
                multi_range(&meta(None), &layout, &cc),
                StatusCode::PARTIAL_CONTENT,
                expect(&[
                    ("accept-ranges", "bytes"),
                    ("cache-control", "public, max-age=60"),
                    ("content-length", &layout.content_length().to_string()),
                    ("content-type", "multipart/byteranges; boundary=B"),
                    ("etag", "\"v1\""),
                    ("last-modified", LM),
                    ("x-content-type-options", "nosniff"),
                ]),
            ),
            (
                not_modified(Some(&meta(None)), &cc),
                StatusCode::NOT_MODIFIED,
                expect(&[
                    ("cache-control", "public, max-age=60"),
                    ("content-type", "video/mp4"),
                    ("etag", "\"v1\""),
                    ("last-modified", LM),
                    ("x-content-type-options", "nosniff"),
                ]),
            ),
            (
                precondition_failed(Some(&meta(None))).0,
                StatusCode::PRECONDITION_FAILED,
                expect(&[
                    ("cache-control", "no-store"),
                    ("content-length", "24"),
                    ("content-type", "text/plain; charset=utf-8"),
                    ("etag", "\"v1\""),
                    ("last-modified", LM),
                    ("x-content-type-options", "nosniff"),
                ]),
            ),
            (
                range_not_satisfiable(10).0,
                StatusCode::RANGE_NOT_SATISFIABLE,
                expect(&[
                    ("accept-ranges", "bytes"),
                    ("cache-control", "no-store"),
                    ("content-length", "26"),
                    ("content-range", "bytes */10"),
                    ("content-type", "text/plain; charset=utf-8"),
                    ("x-content-type-options", "nosniff"),
                ]),
            ),
            (
                method_not_allowed("GET, HEAD").0,
                StatusCode::METHOD_NOT_ALLOWED,
                expect(&[
                    ("allow", "GET, HEAD"),
                    ("cache-control", "no-store"),
                    ("content-length", "23"),
                    ("content-type", "text/plain; charset=utf-8"),
                    ("x-content-type-options", "nosniff"),
                ]),
            ),
            (
                busy("the render queue is full", 2).0,
                StatusCode::SERVICE_UNAVAILABLE,
                expect(&[
                    ("cache-control", "no-store"),
                    ("content-length", "50"),
                    ("content-type", "text/plain; charset=utf-8"),
                    ("retry-after", "2"),
                    ("x-content-type-options", "nosniff"),
                ]),
            ),
        ];
        for (head, status, expected) in cases {
            assert_eq!(head.status, status);
            assert_eq!(fields(&head), expected, "{status}");
        }
    }

    #[test]
    fn error_bodies_are_short_and_fixed() {
        let (head, body) = error(StatusCode::NOT_FOUND);
        assert_eq!(&body[..], b"404 Not Found\n");
        assert_eq!(head.headers[header::CONTENT_LENGTH], "14");
        assert_eq!(
            &range_not_satisfiable(1).1[..],
            b"416 Range Not Satisfiable\n"
        );
        assert_eq!(
            &precondition_failed(Some(&meta(None))).1[..],
            b"412 Precondition Failed\n"
        );
        assert_eq!(
            &busy("the render queue is full", 2).1[..],
            b"503 Service Unavailable: the render queue is full\n"
        );
    }
}
