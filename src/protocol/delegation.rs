//! Which parts of a request a store may evaluate itself, so that one round
//! trip to it both checks the conditions and starts the bytes.
//!
//! The decision of RFC 9110 §13.2.2 is made once, by [`super::decision::decide`].
//! A store such as S3 can evaluate some conditions exactly as that decision
//! would; handing them to it saves the round trip that describing the object
//! first would cost. This module says which, for every field, and why:
//!
//! | field | handed to a store that reads conditionally | why |
//! | --- | --- | --- |
//! | one `Range` spec | yes; an open range is first capped to the open-range limit | S3 answers one range with its `Content-Range` |
//! | several `Range` specs | no: describe first | one GetObject serves one range |
//! | more ranges than the limit | no: describe first | the 416 needs the size |
//! | `If-Range` with a strong tag | as `If-Match` on the ranged read; if that fails, the whole is read (see [`FetchPlan::if_range_failed`]) | S3 has no If-Range; its If-Match is the same strong comparison (§13.1.5) |
//! | `If-Range` with a date | no: describe first | an If-Range date must equal Last-Modified exactly, which no S3 field tests |
//! | `If-Range` weak or invalid | nothing is sent: the Range is dropped | it never holds (§13.1.5) |
//! | `If-Match` with one strong tag | yes | S3 compares strongly, as §13.1.1 does |
//! | `If-Match: *` | nothing is sent | any answer but 404 shows the object exists, which is all it asks |
//! | `If-Match` with a list, a weak tag or bad syntax | no: decided here on the description the read returns; described first beside a Range, If-None-Match or If-Modified-Since | S3 takes one tag; its 304 or 416 would hide the 412 owed first |
//! | `If-Unmodified-Since` | yes, when there is no If-Match | §13.2.2 ignores it beside If-Match |
//! | `If-None-Match` with one tag | yes, a weak tag as its strong twin | weak comparison with one tag is strong comparison with its twin (§8.8.3.2) |
//! | `If-None-Match: *` | no: describe first | any object that exists gets a 304, which HeadObject answers without a body |
//! | `If-None-Match` with a list | no: decided here on the description the read returns; described first beside a Range | S3 takes one tag; its 416 would hide the 304 owed first |
//! | `If-None-Match` with bad syntax | nothing is sent | it never matches (as Go's net/http has it) |
//! | `If-Modified-Since` | yes, when there is no If-None-Match | §13.2.2 ignores it beside If-None-Match |
//! | HEAD | describe | there is no body to start |
//!
//! The decision always runs on the description a read returns, so a
//! condition decided here is exact; a plan is made only where the store's own
//! 304, 412 or 416 is then final too.

use std::time::SystemTime;

use super::conditional::{EntityTag, EtagCondition, IfRange};
use super::decision::{ReadMethod, ReadRequest};
use super::range::{RangeHeaderError, RangeSpec};

/// What a store can do beyond describing an object and reading its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreCapabilities {
    /// Describe, then read (a file system, a computed representation).
    DescribeThenRead,
    /// One read evaluates a range and the single-valued conditions of the
    /// table above (S3's GetObject).
    ConditionalRead,
}

/// How to ask a store for a request's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorePlan {
    /// Describe the object; the decision is made on that description and
    /// the bytes it selects are read after.
    Describe,
    /// One read carrying the range and conditions the store evaluates.
    Fetch(FetchPlan),
}

/// The range and conditions of one conditional read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchPlan {
    /// One closed or suffix range (an open range already capped).
    pub range: Option<RangeSpec>,
    pub if_match: Option<EntityTag>,
    pub if_none_match: Option<EntityTag>,
    pub if_modified_since: Option<SystemTime>,
    pub if_unmodified_since: Option<SystemTime>,
    /// The read to make instead when the store refuses this one's `if_match`:
    /// that tag is the request's If-Range, so a refusal means "send the whole
    /// current representation" (RFC 9110 §13.1.5).
    pub if_range_failed: Option<Box<FetchPlan>>,
}

impl FetchPlan {
    /// The `Range` field value to send, if any.
    pub(crate) fn range_field(&self) -> Option<String> {
        self.range.map(|spec| match spec {
            RangeSpec::FromTo {
                first,
                last: Some(last),
            } => format!("bytes={first}-{last}"),
            RangeSpec::FromTo { first, last: None } => format!("bytes={first}-"),
            RangeSpec::Suffix { length } => format!("bytes=-{length}"),
        })
    }
}

/// Plans the store round trip for `request` (see the table in the module
/// documentation).
pub(crate) fn plan_store_read(request: &ReadRequest, capabilities: StoreCapabilities) -> StorePlan {
    if capabilities == StoreCapabilities::DescribeThenRead || request.method == ReadMethod::Head {
        return StorePlan::Describe;
    }
    fetch_plan(request).map_or(StorePlan::Describe, StorePlan::Fetch)
}

fn fetch_plan(request: &ReadRequest) -> Option<FetchPlan> {
    let pre = &request.preconditions;
    let mut plan = FetchPlan::default();
    // Conditions no store field carries are evaluated here, on the
    // description the read returns. That is exact as long as the store cannot
    // stop the request first with an answer that comes later in §13.2.2.
    let mut decided_here_before_304 = false;
    let mut decided_here = false;
    match &pre.if_match {
        None => plan.if_unmodified_since = pre.if_unmodified_since,
        Some(EtagCondition::Any) => {}
        Some(condition) => match one_tag(condition, false) {
            Some(tag) => plan.if_match = Some(tag),
            None => (decided_here_before_304, decided_here) = (true, true),
        },
    }
    match &pre.if_none_match {
        None => plan.if_modified_since = pre.if_modified_since,
        Some(EtagCondition::Malformed) => {}
        Some(EtagCondition::Any) => return None,
        Some(condition) => match one_tag(condition, true) {
            Some(tag) => plan.if_none_match = Some(tag),
            None => decided_here = true,
        },
    }
    // The store's 304 would hide a 412 owed to an If-Match decided here.
    if decided_here_before_304 && (plan.if_none_match.is_some() || plan.if_modified_since.is_some())
    {
        return None;
    }
    let specs = match &request.range {
        None | Some(Err(RangeHeaderError::UnknownUnit | RangeHeaderError::InvalidSyntax)) => {
            return Some(plan);
        }
        Some(Err(RangeHeaderError::TooManyRanges)) => return None,
        Some(Ok(specs)) => specs,
    };
    // The store's 416 would hide a 304 or 412 owed to a condition decided here.
    let ([spec], false) = (specs.as_slice(), decided_here) else {
        return None;
    };
    let range = Some(match *spec {
        RangeSpec::FromTo { first, last: None } => RangeSpec::FromTo {
            first,
            last: Some(first.saturating_add(request.limits.open_ended_cap.max(1) - 1)),
        },
        spec => spec,
    });
    match &pre.if_range {
        None => Some(FetchPlan { range, ..plan }),
        Some(IfRange::Tag(tag)) if !tag.is_weak() => {
            // The store's If-Match slot is taken by If-Range; a condition of
            // the client's own that it would have to weigh beside it (S3
            // ignores If-Unmodified-Since beside If-Match) is decided here.
            if pre.if_match.is_some() || plan.if_unmodified_since.is_some() {
                return None;
            }
            Some(FetchPlan {
                range,
                if_match: Some(tag.clone()),
                if_range_failed: Some(Box::new(plan.clone())),
                ..plan
            })
        }
        Some(IfRange::Date(_)) => None,
        // A weak tag or an invalid value never holds: the whole goes out.
        Some(IfRange::Tag(_) | IfRange::Invalid) => Some(plan),
    }
}

/// The one tag a store compares strongly that gives the comparison RFC 9110
/// asks for; `None` when there is no such tag.
fn one_tag(condition: &EtagCondition, weak_comparison: bool) -> Option<EntityTag> {
    match condition {
        EtagCondition::Tags(tags) => match tags.as_slice() {
            [tag] if !tag.is_weak() => Some(tag.clone()),
            [tag] if weak_comparison => Some(tag.strong_twin()),
            _ => None,
        },
        EtagCondition::Any | EtagCondition::Malformed => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::range::RangeLimits;
    use http::{HeaderMap, HeaderValue};
    use std::time::{Duration, UNIX_EPOCH};

    const LIMITS: RangeLimits = RangeLimits {
        open_ended_cap: 100,
        max_ranges: 8,
    };
    const DATE: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

    fn plan(method: ReadMethod, fields: &[(&'static str, &'static str)]) -> StorePlan {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        let request = ReadRequest::from_headers(method, &headers, LIMITS);
        plan_store_read(&request, StoreCapabilities::ConditionalRead)
    }

    fn fetch(f: impl FnOnce(&mut FetchPlan)) -> StorePlan {
        let mut plan = FetchPlan::default();
        f(&mut plan);
        StorePlan::Fetch(plan)
    }

    fn tag(opaque: &str) -> Option<EntityTag> {
        EntityTag::strong(opaque)
    }

    fn range(first: u64, last: u64) -> Option<RangeSpec> {
        Some(RangeSpec::FromTo {
            first,
            last: Some(last),
        })
    }

    #[test]
    fn plans_one_conditional_read_where_its_answer_is_final() {
        use StorePlan::Describe;
        let date = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        type Fields = &'static [(&'static str, &'static str)];
        let cases: Vec<(Fields, StorePlan)> = vec![
            (&[], fetch(|_| {})),
            (&[("range", "bytes=0-1")], fetch(|p| p.range = range(0, 1))),
            (
                &[("range", "bytes=10-")],
                fetch(|p| p.range = range(10, 109)),
            ),
            (
                &[("range", "bytes=-5")],
                fetch(|p| p.range = Some(RangeSpec::Suffix { length: 5 })),
            ),
            (&[("range", "items=1-2")], fetch(|_| {})),
            (&[("range", "bytes=0-1,4-5")], Describe),
            (
                &[("range", "bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16")],
                Describe,
            ),
            (
                &[("if-none-match", "\"a\"")],
                fetch(|p| p.if_none_match = tag("a")),
            ),
            (
                &[("if-none-match", "W/\"a\"")],
                fetch(|p| p.if_none_match = tag("a")),
            ),
            (&[("if-none-match", "*")], Describe),
            (&[("if-match", "*")], fetch(|_| {})),
            (&[("if-none-match", "\"a\", \"b\"")], fetch(|_| {})),
            (
                &[("if-none-match", "\"a\", \"b\""), ("range", "bytes=0-1")],
                Describe,
            ),
            (
                &[
                    ("if-none-match", "\"a\", \"b\""),
                    ("if-modified-since", DATE),
                ],
                fetch(|_| {}),
            ),
            (&[("if-match", "\"a\"")], fetch(|p| p.if_match = tag("a"))),
            (&[("if-match", "W/\"a\"")], fetch(|_| {})),
            (
                &[("if-match", "W/\"a\""), ("if-none-match", "\"b\"")],
                Describe,
            ),
            (
                &[("if-match", "\"a\", \"b\""), ("if-modified-since", DATE)],
                Describe,
            ),
            (
                &[("if-match", "\"a\", \"b\""), ("range", "bytes=0-1")],
                Describe,
            ),
            (
                &[("if-modified-since", DATE)],
                fetch(|p| p.if_modified_since = Some(date)),
            ),
            (
                &[("if-unmodified-since", DATE)],
                fetch(|p| p.if_unmodified_since = Some(date)),
            ),
            (
                &[("if-none-match", "\"a\""), ("if-modified-since", DATE)],
                fetch(|p| p.if_none_match = tag("a")),
            ),
            (
                &[("if-match", "\"a\", \"b\""), ("if-unmodified-since", DATE)],
                fetch(|_| {}),
            ),
            (
                &[("range", "bytes=0-1"), ("if-range", "\"a\"")],
                fetch(|p| {
                    p.range = range(0, 1);
                    p.if_match = tag("a");
                    p.if_range_failed = Some(Box::default());
                }),
            ),
            (
                &[
                    ("range", "bytes=0-1"),
                    ("if-range", "\"a\""),
                    ("if-none-match", "\"b\""),
                ],
                fetch(|p| {
                    p.range = range(0, 1);
                    p.if_match = tag("a");
                    p.if_none_match = tag("b");
                    p.if_range_failed = Some(Box::new(FetchPlan {
                        if_none_match: tag("b"),
                        ..FetchPlan::default()
                    }));
                }),
            ),
            (
                &[
                    ("range", "bytes=0-1"),
                    ("if-range", "\"a\""),
                    ("if-match", "\"a\""),
                ],
                Describe,
            ),
            (
                &[
                    ("range", "bytes=0-1"),
                    ("if-range", "\"a\""),
                    ("if-unmodified-since", DATE),
                ],
                Describe,
            ),
            (
                &[("range", "bytes=0-1"), ("if-range", "W/\"a\"")],
                fetch(|_| {}),
            ),
            (&[("range", "bytes=0-1"), ("if-range", DATE)], Describe),
            (&[("if-range", DATE)], fetch(|_| {})),
        ];
        for (fields, expected) in cases {
            assert_eq!(plan(ReadMethod::Get, fields), expected, "{fields:?}");
        }
    }

    #[test]
    fn heads_and_plain_stores_are_described() {
        assert_eq!(plan(ReadMethod::Head, &[]), StorePlan::Describe);
        let request = ReadRequest::from_headers(ReadMethod::Get, &HeaderMap::new(), LIMITS);
        assert_eq!(
            plan_store_read(&request, StoreCapabilities::DescribeThenRead),
            StorePlan::Describe
        );
    }

    #[test]
    fn writes_the_range_field() {
        let field = |range| FetchPlan {
            range,
            ..FetchPlan::default()
        };
        assert_eq!(
            field(range(0, 1)).range_field().as_deref(),
            Some("bytes=0-1")
        );
        assert_eq!(
            field(Some(RangeSpec::Suffix { length: 5 }))
                .range_field()
                .as_deref(),
            Some("bytes=-5")
        );
        assert_eq!(field(None).range_field(), None);
    }
}
