//! Checks that need a CloudFront distribution in front (`--cloudfront`):
//! its cache answers a repeated GET, and a Range comes back as a range (an
//! origin that answers chunked makes CloudFront send the whole object).

use http::StatusCode;

use super::exchange::Exchange;
use crate::check::content_range;

/// CloudFront's cache verdict on an answer.
const X_CACHE: &str = "x-cache";

/// The second of two identical GETs: `X-Cache: Hit from cloudfront`.
pub fn cache_hit(second: &Exchange) -> Result<String, String> {
    match second.header(X_CACHE) {
        Some(got) if got.to_ascii_lowercase().starts_with("hit from cloudfront") => {
            Ok(format!("{}, X-Cache {got}", second.status.as_u16()))
        }
        Some(got) => Err(format!(
            "expected X-Cache: Hit from cloudfront on the second GET, got {got:?}"
        )),
        None => Err("no X-Cache field: the answer did not come through CloudFront".into()),
    }
}

/// A closed range `first-last` through the distribution: answered by
/// CloudFront (an X-Cache field) with a 206 for exactly that range, not the
/// whole object.
pub fn range_through(
    answer: &Exchange,
    first: u64,
    last: u64,
    size: u64,
) -> Result<String, String> {
    let via = answer
        .header(X_CACHE)
        .ok_or("no X-Cache field: the answer did not come through CloudFront")?;
    let expected = format!("bytes {first}-{last}/{size}");
    if answer.status == StatusCode::OK {
        return Err(format!(
            "expected 206 {expected}, got 200 with the whole object: an origin that answers chunked makes CloudFront drop the range"
        ));
    }
    if answer.status != StatusCode::PARTIAL_CONTENT {
        return Err(format!("expected 206 {expected}, got {}", answer.said()));
    }
    let got = answer.header(http::header::CONTENT_RANGE);
    if got.and_then(content_range) != Some((first, last, size)) {
        return Err(format!("expected Content-Range {expected}, got {got:?}"));
    }
    let len = last - first + 1;
    if answer.ended && answer.body.len() as u64 != len {
        return Err(format!("expected {len} bytes, got {}", answer.body.len()));
    }
    Ok(format!("206 {expected}, X-Cache {via}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smoke::exchange::fixtures::{answer, assert_verdict, Expected, Fields};

    #[test]
    fn cache_hits_are_judged() {
        let cases: Vec<(Fields, Expected)> = vec![
            (vec![("x-cache", "Hit from cloudfront")], Ok(())),
            (vec![("x-cache", "hit from CloudFront")], Ok(())),
            (
                vec![("x-cache", "RefreshHit from cloudfront")],
                Err("got \"RefreshHit from cloudfront\""),
            ),
            (
                vec![("x-cache", "Miss from cloudfront")],
                Err("got \"Miss from cloudfront\""),
            ),
            (
                vec![("x-cache", "Error from cloudfront")],
                Err("Error from cloudfront"),
            ),
            (vec![], Err("did not come through CloudFront")),
        ];
        for (fields, expected) in cases {
            let got = cache_hit(&answer(206, &fields, b"ab"));
            assert_verdict(&format!("{fields:?}"), got, expected);
        }
    }

    #[test]
    fn ranges_through_the_distribution_are_judged() {
        let hit = ("x-cache", "Hit from cloudfront");
        let cases: Vec<(u16, Fields, &[u8], Expected)> = vec![
            (
                206,
                vec![hit, ("content-range", "bytes 10-13/100")],
                b"abcd",
                Ok(()),
            ),
            (
                206,
                vec![
                    ("x-cache", "Miss from cloudfront"),
                    ("content-range", "bytes 10-13/100"),
                ],
                b"abcd",
                Ok(()),
            ),
            (
                200,
                vec![hit, ("content-length", "100")],
                &[0; 100],
                Err("got 200 with the whole object"),
            ),
            (
                206,
                vec![hit, ("content-range", "bytes 0-99/100")],
                &[0; 100],
                Err("expected Content-Range bytes 10-13/100"),
            ),
            (
                206,
                vec![hit, ("content-range", "bytes 10-13/100")],
                b"abc",
                Err("expected 4 bytes, got 3"),
            ),
            (502, vec![hit], b"", Err("got 502")),
            (
                206,
                vec![("content-range", "bytes 10-13/100")],
                b"abcd",
                Err("did not come through CloudFront"),
            ),
        ];
        for (status, fields, body, expected) in cases {
            let got = range_through(&answer(status, &fields, body), 10, 13, 100);
            assert_verdict(&format!("{fields:?}"), got, expected);
        }
    }
}
