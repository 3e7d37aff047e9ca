//! One line per header field name.
//!
//! Runtime behaviour: the streaming response's JSON prelude
//! (`{statusCode, headers, cookies}`) maps each header name to one string, so
//! lambda_http keeps only one of several values under the same name. Repeated
//! fields are therefore joined into one line with ", " (RFC 9110 §5.3) before
//! the head is handed over.
//!
//! Shown by: the unit test below; through the emulator, the table's checks
//! that no field comes twice (`tests/it/client.rs` `RawResponse::header`).

use http::header::{HeaderMap, HeaderValue};

/// Joins repeated header fields into one line with ", ".
pub(super) fn join_repeated_fields(headers: &mut HeaderMap) {
    let names: Vec<_> = headers.keys().cloned().collect();
    for name in names {
        let values: Vec<&HeaderValue> = headers.get_all(&name).iter().collect();
        if values.len() < 2 {
            continue;
        }
        let joined: Vec<u8> = values
            .iter()
            .map(|v| v.as_bytes())
            .collect::<Vec<_>>()
            .join(&b", "[..]);
        if let Ok(value) = HeaderValue::from_bytes(&joined) {
            headers.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_repeated_fields() {
        let mut headers = HeaderMap::new();
        headers.append("vary", HeaderValue::from_static("origin"));
        headers.append("vary", HeaderValue::from_static("range"));
        headers.append("etag", HeaderValue::from_static("\"a\""));
        join_repeated_fields(&mut headers);
        assert_eq!(
            headers.get_all("vary").iter().collect::<Vec<_>>(),
            ["origin, range"]
        );
        assert_eq!(
            headers.get_all("etag").iter().collect::<Vec<_>>(),
            ["\"a\""]
        );
    }
}
