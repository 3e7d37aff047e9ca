//! The path exactly as the client sent it.
//!
//! Runtime behaviour: lambda_http builds the request URI of a Function URL
//! event (payload format 2.0) through a URL parser that resolves `..`
//! segments and turns `\` into `/`, so `/sub/../../outside/x` would reach the
//! pipeline as `/outside/x`. The pipeline must judge the raw path (and refuse
//! it with a 400), so the URI is rebuilt from the event's `rawPath`.
//!
//! Shown by: the table through the emulator
//! (`tests/it/lambda.rs` `serves_the_whole_table_through_the_emulator`, whose
//! dot-dot and encoded-dot cases expect 400, not the normalised object), and
//! the unit test below.

use http::Uri;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;

/// The event's raw path, for a Function URL (API Gateway v2 shaped) event.
pub(super) fn raw_path(extensions: &http::Extensions) -> Option<String> {
    match extensions.get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV2(_)) => {}
        _ => return None,
    }
    let raw = extensions.raw_http_path();
    (!raw.is_empty()).then(|| raw.to_owned())
}

/// The request URI for a raw path. A path that is not valid in a URI becomes
/// one that the key parser refuses (`%` alone), so the client gets a 400.
pub(super) fn raw_uri(path: &str, query: Option<&str>) -> Uri {
    let target = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    };
    target.parse().unwrap_or_else(|_| Uri::from_static("/%"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_raw_path() {
        let cases = [
            ("/a%20b.mp4", None, "/a%20b.mp4"),
            ("/../x", None, "/../x"),
            ("/%2e%2e/x", Some("v=1"), "/%2e%2e/x?v=1"),
            ("/a b", None, "/%"),
        ];
        for (path, query, expected) in cases {
            assert_eq!(raw_uri(path, query).to_string(), expected, "{path}");
        }
    }
}
