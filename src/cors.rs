//! Cross-origin resource sharing for the local server (Fetch standard, "CORS
//! protocol"). On Lambda the Function URL's own CORS configuration answers
//! instead, and the function sends none of these fields.

use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;

use crate::protocol::headers::Head;

/// Response fields a page's script may read, beyond the CORS-safelisted ones.
pub const EXPOSED: &str = "Content-Range, Accept-Ranges, Content-Length, ETag, Last-Modified";
/// Request fields a cross-origin page may send: Range and the conditionals.
pub(crate) const ALLOWED_HEADERS: [&str; 6] = [
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
];
/// How long a browser may cache a preflight answer, in seconds.
pub(crate) const PREFLIGHT_MAX_AGE: &str = "86400";

/// Which origins may read the media from script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsPolicy {
    /// No CORS fields at all.
    Off,
    /// Any origin (`*`).
    AnyOrigin,
    /// These origins exactly (scheme, host and port, as browsers send them).
    Origins(Vec<String>),
}

impl CorsPolicy {
    /// From a setting: empty is off, `*` is any, else a comma-separated list.
    pub fn parse(setting: &str) -> Self {
        let origins: Vec<String> = setting
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        if origins.is_empty() {
            CorsPolicy::Off
        } else if origins.iter().any(|o| o == "*") {
            CorsPolicy::AnyOrigin
        } else {
            CorsPolicy::Origins(origins)
        }
    }

    pub(crate) fn is_off(&self) -> bool {
        *self == CorsPolicy::Off
    }

    /// The `Access-Control-Allow-Origin` value for a request from `origin`,
    /// if it is allowed.
    fn allow_origin(&self, origin: Option<&str>) -> Option<HeaderValue> {
        match self {
            CorsPolicy::Off => None,
            CorsPolicy::AnyOrigin => Some(HeaderValue::from_static("*")),
            CorsPolicy::Origins(list) => {
                let origin = origin?;
                list.iter()
                    .any(|o| o == origin)
                    .then(|| HeaderValue::from_str(origin).ok())?
            }
        }
    }

    /// Adds the CORS fields of an actual (non-preflight) response.
    pub(crate) fn decorate(&self, origin: Option<&str>, headers: &mut HeaderMap) {
        if let CorsPolicy::Origins(_) = self {
            // The answer depends on the Origin: caches must keep them apart.
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        if let Some(allow) = self.allow_origin(origin) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED),
            );
        }
    }

    /// The answer to an OPTIONS request: a preflight (with
    /// `Access-Control-Request-Method`) gets the allowed method and headers
    /// when its origin, method and headers are allowed; any OPTIONS gets 204
    /// with `Allow`.
    pub fn preflight(&self, request: &HeaderMap) -> Head {
        let mut head = Head {
            status: StatusCode::NO_CONTENT,
            headers: HeaderMap::new(),
        };
        head.headers.insert(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        let origin = request.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let method = request
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| v.to_str().ok());
        let wanted = request
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty());
        let headers_allowed = wanted
            .collect::<Vec<_>>()
            .iter()
            .all(|h| ALLOWED_HEADERS.contains(&h.as_str()));
        let method_allowed = matches!(method, Some("GET" | "HEAD"));
        if let CorsPolicy::Origins(_) = self {
            head.headers
                .append(header::VARY, HeaderValue::from_static("Origin"));
        }
        if let (Some(allow), true, true) =
            (self.allow_origin(origin), method_allowed, headers_allowed)
        {
            let h = &mut head.headers;
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, HEAD"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_str(&ALLOWED_HEADERS.join(", ")).expect("ASCII"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(PREFLIGHT_MAX_AGE),
            );
        }
        head
    }
}

/// The request's `Origin`, if it has one.
pub(crate) fn request_origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(fields: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn sorted(map: &HeaderMap) -> Vec<(String, String)> {
        let mut v: Vec<_> = map
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        v.sort();
        v
    }

    type Fields = Vec<(String, String)>;

    fn pairs(p: &[(&str, &str)]) -> Fields {
        let mut v: Vec<_> = p
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn parses_the_setting() {
        assert_eq!(CorsPolicy::parse(""), CorsPolicy::Off);
        assert_eq!(CorsPolicy::parse(" , "), CorsPolicy::Off);
        assert_eq!(CorsPolicy::parse("*"), CorsPolicy::AnyOrigin);
        assert_eq!(
            CorsPolicy::parse("https://a.example, http://b.example:8080/"),
            CorsPolicy::Origins(vec![
                "https://a.example".into(),
                "http://b.example:8080".into()
            ])
        );
    }

    #[test]
    fn decorates_actual_responses() {
        let list = CorsPolicy::parse("https://a.example");
        let cases: Vec<(CorsPolicy, Option<&str>, Fields)> = vec![
            (CorsPolicy::Off, Some("https://a.example"), vec![]),
            (
                CorsPolicy::AnyOrigin,
                None,
                pairs(&[
                    ("access-control-allow-origin", "*"),
                    ("access-control-expose-headers", EXPOSED),
                ]),
            ),
            (
                list.clone(),
                Some("https://a.example"),
                pairs(&[
                    ("access-control-allow-origin", "https://a.example"),
                    ("access-control-expose-headers", EXPOSED),
                    ("vary", "Origin"),
                ]),
            ),
            (
                list.clone(),
                Some("https://evil.example"),
                pairs(&[("vary", "Origin")]),
            ),
            (list, None, pairs(&[("vary", "Origin")])),
        ];
        for (policy, origin, expected) in cases {
            let mut map = HeaderMap::new();
            policy.decorate(origin, &mut map);
            assert_eq!(sorted(&map), expected, "{policy:?} {origin:?}");
        }
    }

    #[test]
    fn answers_preflights() {
        let allowed = pairs(&[
            (
                "access-control-allow-headers",
                "range, if-match, if-none-match, if-modified-since, if-unmodified-since, if-range",
            ),
            ("access-control-allow-methods", "GET, HEAD"),
            ("access-control-allow-origin", "https://a.example"),
            ("access-control-max-age", PREFLIGHT_MAX_AGE),
            ("allow", "GET, HEAD, OPTIONS"),
            ("vary", "Origin"),
        ]);
        let refused = pairs(&[("allow", "GET, HEAD, OPTIONS"), ("vary", "Origin")]);
        let policy = CorsPolicy::parse("https://a.example");
        let cases: Vec<(&[(&'static str, &'static str)], &Fields)> = vec![
            (
                &[
                    ("origin", "https://a.example"),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", "range"),
                ],
                &allowed,
            ),
            (
                &[
                    ("origin", "https://a.example"),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", "Range, If-None-Match"),
                ],
                &allowed,
            ),
            (
                &[
                    ("origin", "https://a.example"),
                    ("access-control-request-method", "HEAD"),
                ],
                &allowed,
            ),
            (
                &[
                    ("origin", "https://a.example"),
                    ("access-control-request-method", "PUT"),
                ],
                &refused,
            ),
            (
                &[
                    ("origin", "https://a.example"),
                    ("access-control-request-method", "GET"),
                    ("access-control-request-headers", "authorization"),
                ],
                &refused,
            ),
            (
                &[
                    ("origin", "https://evil.example"),
                    ("access-control-request-method", "GET"),
                ],
                &refused,
            ),
            (&[], &refused),
        ];
        for (fields, expected) in cases {
            let head = policy.preflight(&headers(fields));
            assert_eq!(head.status, StatusCode::NO_CONTENT);
            assert_eq!(&sorted(&head.headers), expected, "{fields:?}");
        }
    }
}
