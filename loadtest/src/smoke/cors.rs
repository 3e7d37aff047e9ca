//! Cross-origin checks (Fetch standard, "CORS protocol"): what a page of
//! another origin needs to play the media with ranges from script.

use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS,
};

use super::exchange::{list_items, Exchange};

/// Response fields a player's script reads: the server's `cors::EXPOSED` and
/// the template's Function URL `ExposeHeaders` both hold these.
pub const MUST_EXPOSE: [&str; 4] = ["content-range", "content-length", "etag", "accept-ranges"];

/// The preflight of a range GET from `origin`: a 2xx that allows the origin,
/// GET and the Range field.
pub fn preflight(answer: &Exchange, origin: &str) -> Result<String, String> {
    if !answer.status.is_success() {
        return Err(format!("expected 200 or 204, got {}", answer.said()));
    }
    let allowed = allow_origin(answer, origin)?;
    let methods = list_items(&answer.headers, &ACCESS_CONTROL_ALLOW_METHODS);
    if !methods.iter().any(|m| m == "get" || m == "*") {
        return Err(format!(
            "Access-Control-Allow-Methods {methods:?} lacks GET"
        ));
    }
    let headers = list_items(&answer.headers, &ACCESS_CONTROL_ALLOW_HEADERS);
    if !headers.iter().any(|h| h == "range" || h == "*") {
        return Err(format!(
            "Access-Control-Allow-Headers {headers:?} lacks range"
        ));
    }
    Ok(format!(
        "{}, origin {allowed}, methods {}, headers {}",
        answer.status.as_u16(),
        methods.join(", "),
        headers.join(", ")
    ))
}

/// A range GET from `origin`: the origin allowed and the range fields exposed.
pub fn exposed(answer: &Exchange, origin: &str) -> Result<String, String> {
    let allowed = allow_origin(answer, origin)?;
    let exposed = list_items(&answer.headers, &ACCESS_CONTROL_EXPOSE_HEADERS);
    if !exposed.iter().any(|h| h == "*") {
        let missing: Vec<&str> = MUST_EXPOSE
            .into_iter()
            .filter(|name| !exposed.iter().any(|h| h == name))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "Access-Control-Expose-Headers {exposed:?} lacks {}",
                missing.join(", ")
            ));
        }
    }
    Ok(format!(
        "{}, origin {allowed}, exposes {}",
        answer.status.as_u16(),
        exposed.join(", ")
    ))
}

/// `Access-Control-Allow-Origin` must be `origin` or `*`.
fn allow_origin<'a>(answer: &'a Exchange, origin: &str) -> Result<&'a str, String> {
    match answer.header(ACCESS_CONTROL_ALLOW_ORIGIN) {
        Some(got) if got == origin || got == "*" => Ok(got),
        got => Err(format!(
            "expected Access-Control-Allow-Origin {origin} or *, got {got:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smoke::exchange::fixtures::{answer, assert_verdict, Expected, Fields};

    const ORIGIN: &str = "https://example.com";

    #[test]
    fn preflights_are_judged() {
        let allowed = [
            ("access-control-allow-origin", ORIGIN),
            ("access-control-allow-methods", "GET, HEAD"),
            ("access-control-allow-headers", "range, if-match"),
        ];
        let with = |changes: &[(&'static str, &'static str)]| {
            let mut fields: Fields = allowed
                .iter()
                .filter(|(name, _)| !changes.iter().any(|(n, _)| n == name))
                .copied()
                .collect();
            fields.extend(changes.iter().filter(|(_, v)| !v.is_empty()).copied());
            fields
        };
        let cases: Vec<(u16, Fields, Expected)> = vec![
            (204, with(&[]), Ok(())),
            (200, with(&[("access-control-allow-origin", "*")]), Ok(())),
            (200, with(&[("access-control-allow-headers", "*")]), Ok(())),
            (204, with(&[("access-control-allow-headers", "Range")]), Ok(())),
            (403, with(&[]), Err("expected 200 or 204, got 403")),
            (
                204,
                with(&[("access-control-allow-origin", "https://other.example")]),
                Err("expected Access-Control-Allow-Origin https://example.com or *, got Some(\"https://other.example\")"),
            ),
            (204, with(&[("access-control-allow-origin", "")]), Err("got None")),
            (204, with(&[("access-control-allow-methods", "HEAD")]), Err("lacks GET")),
            (204, with(&[("access-control-allow-headers", "if-match")]), Err("lacks range")),
        ];
        for (status, fields, expected) in cases {
            let got = preflight(&answer(status, &fields, b""), ORIGIN);
            assert_verdict(&format!("{fields:?}"), got, expected);
        }
    }

    #[test]
    fn exposed_fields_are_judged() {
        let cases: Vec<(Fields, Expected)> = vec![
            (
                vec![
                    ("access-control-allow-origin", ORIGIN),
                    (
                        "access-control-expose-headers",
                        "Content-Range, Accept-Ranges, Content-Length, ETag, Last-Modified",
                    ),
                ],
                Ok(()),
            ),
            (
                vec![
                    ("access-control-allow-origin", "*"),
                    (
                        "access-control-expose-headers",
                        "content-range,accept-ranges",
                    ),
                    (
                        "access-control-expose-headers",
                        "content-length,x-amzn-remapped-content-length,etag",
                    ),
                ],
                Ok(()),
            ),
            (
                vec![
                    ("access-control-allow-origin", "*"),
                    ("access-control-expose-headers", "*"),
                ],
                Ok(()),
            ),
            (
                vec![
                    ("access-control-allow-origin", ORIGIN),
                    ("access-control-expose-headers", "content-range, etag"),
                ],
                Err("lacks content-length, accept-ranges"),
            ),
            (
                vec![("access-control-expose-headers", "*")],
                Err("got None"),
            ),
        ];
        for (fields, expected) in cases {
            let got = exposed(&answer(206, &fields, b"ab"), ORIGIN);
            assert_verdict(&format!("{fields:?}"), got, expected);
        }
    }
}
