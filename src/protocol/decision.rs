//! The whole decision for a GET or HEAD, top to bottom in the order of RFC 9110
//! §13.2.2: preconditions, then If-Range, then ranges. Made here, once, for
//! every representation and every store.

use http::header::{self, HeaderMap};

use super::conditional::{evaluate, PreconditionOutcome, Preconditions};
use super::description::Description;
use super::range::{
    parse_range_header, plan_ranges, RangeHeaderError, RangeLimits, RangeSpec, Selection,
};

/// The methods that read a representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMethod {
    Get,
    Head,
}

impl ReadMethod {
    /// `None` for any method other than GET and HEAD (a 405).
    pub(crate) fn from_method(method: &http::Method) -> Option<Self> {
        match *method {
            http::Method::GET => Some(ReadMethod::Get),
            http::Method::HEAD => Some(ReadMethod::Head),
            _ => None,
        }
    }
}

/// What a request asks of a representation, parsed once from its head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRequest {
    pub method: ReadMethod,
    pub preconditions: Preconditions,
    /// `None` without a Range header; `Some(Err(_))` for one that cannot be
    /// served as asked.
    pub range: Option<Result<Vec<RangeSpec>, RangeHeaderError>>,
    pub limits: RangeLimits,
}

impl ReadRequest {
    /// Reads the conditional and Range fields. A HEAD is planned like a GET so
    /// that it answers the same header fields (RFC 9110 §9.3.2).
    pub fn from_headers(method: ReadMethod, headers: &HeaderMap, limits: RangeLimits) -> Self {
        let mut ranges = headers.get_all(header::RANGE).iter();
        let range = match (ranges.next(), ranges.next()) {
            (None, _) => None,
            (Some(value), None) => Some(
                value
                    .to_str()
                    .map_err(|_| RangeHeaderError::InvalidSyntax)
                    .and_then(|v| parse_range_header(v, &limits)),
            ),
            // Range is a singleton field; two of them are not one valid value.
            (Some(_), Some(_)) => Some(Err(RangeHeaderError::InvalidSyntax)),
        };
        ReadRequest {
            method,
            preconditions: Preconditions::from_headers(headers),
            range,
            limits,
        }
    }
}

/// What to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// 200 or 206 with these bytes.
    Send(Selection),
    /// No representation data.
    Refuse(Refusal),
}

/// The answers that carry no representation data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 304 with validators and no body.
    NotModified,
    /// 412.
    PreconditionFailed,
    /// 416 with `Content-Range: bytes */size`.
    RangeNotSatisfiable { size: u64 },
}

/// Decides the answer to `request` for the representation `description`
/// describes.
pub fn decide(request: &ReadRequest, description: &Description) -> Decision {
    let size = description.size;
    let honour_range = match evaluate(&request.preconditions, &description.validators) {
        PreconditionOutcome::Failed => return Decision::Refuse(Refusal::PreconditionFailed),
        PreconditionOutcome::NotModified => return Decision::Refuse(Refusal::NotModified),
        PreconditionOutcome::Proceed { honour_range } => honour_range,
    };
    let specs = match &request.range {
        Some(Ok(specs)) if honour_range => specs,
        // Over the limit is refused, not ignored: a client that asks for many
        // small ranges learns so at once (RFC 9110 §15.5.17).
        Some(Err(RangeHeaderError::TooManyRanges)) if honour_range => {
            return Decision::Refuse(Refusal::RangeNotSatisfiable { size })
        }
        _ => return Decision::Send(Selection::Whole),
    };
    match plan_ranges(specs, size, &request.limits) {
        Ok(selection) => Decision::Send(selection),
        Err(_) => Decision::Refuse(Refusal::RangeNotSatisfiable { size }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::conditional::{EntityTag, Validators};
    use crate::protocol::range::ByteRange;
    use http::HeaderValue;
    use std::time::{Duration, UNIX_EPOCH};

    const LIMITS: RangeLimits = RangeLimits {
        open_ended_cap: 100,
        max_ranges: 8,
    };

    /// One more than `LIMITS.max_ranges`.
    const NINE_RANGES: &str = "bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16";

    fn r(first: u64, last: u64) -> ByteRange {
        ByteRange { first, last }
    }

    #[test]
    fn decides_in_order() {
        use Decision::*;
        use Refusal::*;
        use Selection::*;
        let description = Description {
            size: 1000,
            validators: Validators {
                etag: EntityTag::strong("v1").unwrap(),
                last_modified: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            },
            content_type: "video/mp4".to_owned(),
            cache_control: None,
        };
        const UNSATISFIABLE: Decision = Refuse(RangeNotSatisfiable { size: 1000 });
        let cases: &[(&[(&str, &str)], Decision)] = &[
            (&[], Send(Whole)),
            (&[("range", "bytes=0-1")], Send(Single(r(0, 1)))),
            (&[("range", "bytes=0-")], Send(Single(r(0, 99)))),
            (
                &[("range", "bytes=0-1,5-6")],
                Send(Multi(vec![r(0, 1), r(5, 6)])),
            ),
            (&[("range", "bytes=5000-")], UNSATISFIABLE),
            (&[("range", "pages=1-2")], Send(Whole)),
            (&[("range", "bytes=2-1")], Send(Whole)),
            (
                &[("range", "bytes=0-1"), ("range", "bytes=2-3")],
                Send(Whole),
            ),
            (
                &[("range", "bytes=0-1"), ("if-range", "\"v1\"")],
                Send(Single(r(0, 1))),
            ),
            (
                &[("range", "bytes=0-1"), ("if-range", "\"v0\"")],
                Send(Whole),
            ),
            (
                &[("range", "bytes=5000-"), ("if-range", "\"v0\"")],
                Send(Whole),
            ),
            (&[("if-range", "\"v1\"")], Send(Whole)),
            (&[("range", NINE_RANGES)], UNSATISFIABLE),
            (
                &[("range", NINE_RANGES), ("if-range", "\"v0\"")],
                Send(Whole),
            ),
            (
                &[("range", NINE_RANGES), ("if-none-match", "\"v1\"")],
                Refuse(NotModified),
            ),
            (
                &[("range", "bytes=0-1"), ("if-none-match", "\"v1\"")],
                Refuse(NotModified),
            ),
            (
                &[("range", "bytes=0-1"), ("if-match", "\"v0\"")],
                Refuse(PreconditionFailed),
            ),
            (
                &[("range", "bytes=5000-"), ("if-match", "\"v0\"")],
                Refuse(PreconditionFailed),
            ),
        ];
        for (fields, expected) in cases {
            let mut headers = HeaderMap::new();
            for (name, value) in *fields {
                headers.append(*name, HeaderValue::from_str(value).unwrap());
            }
            let request = ReadRequest::from_headers(ReadMethod::Get, &headers, LIMITS);
            let decision = decide(&request, &description);
            assert_eq!(&decision, expected, "{fields:?}");
        }
    }

    #[test]
    fn reads_only_get_and_head() {
        assert_eq!(
            ReadMethod::from_method(&http::Method::GET),
            Some(ReadMethod::Get)
        );
        assert_eq!(
            ReadMethod::from_method(&http::Method::HEAD),
            Some(ReadMethod::Head)
        );
        assert_eq!(ReadMethod::from_method(&http::Method::POST), None);
        assert_eq!(ReadMethod::from_method(&http::Method::OPTIONS), None);
    }
}
