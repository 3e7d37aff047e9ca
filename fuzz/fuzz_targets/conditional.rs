#![no_main]
//! Any conditional header fields and Range against any validators: the
//! decision never depends on the order the fields came in, If-Range holds only
//! for the current strong ETag or Last-Modified's exact second, a failing
//! If-Range never leaves a range answer (206 or 416), and no Range header
//! never gives one either. `$E` and `$D` in a value stand for the current ETag
//! and Last-Modified, so that the fuzzer reaches the matching cases.

use std::time::{Duration, UNIX_EPOCH};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use media_streamer::protocol::conditional::{EntityTag, IfRange, Validators};
use media_streamer::protocol::decision::{decide, Decision, ReadMethod, ReadRequest, Refusal};
use media_streamer::protocol::description::Description;
use media_streamer::protocol::range::{RangeLimits, Selection};

const FIELDS: [&str; 6] = [
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
    "range",
];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    opaque: &'a str,
    last_modified: Option<u32>,
    size: u16,
    fields: Vec<(u8, &'a str)>,
}

fn headers(fields: &[(&'static str, String)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.append(HeaderName::from_static(name), value);
        }
    }
    headers
}

fuzz_target!(|input: Input| {
    let Some(etag) = EntityTag::strong(input.opaque) else {
        return;
    };
    let last_modified = input
        .last_modified
        .map(|s| UNIX_EPOCH + Duration::from_secs(u64::from(s)));
    let validators = Validators {
        etag: etag.clone(),
        last_modified,
    };
    let date = last_modified
        .map(httpdate::fmt_http_date)
        .unwrap_or_default();
    let fields: Vec<(&'static str, String)> = input
        .fields
        .iter()
        .map(|&(which, value)| {
            let value = value.replace("$E", &etag.to_string()).replace("$D", &date);
            (FIELDS[usize::from(which) % FIELDS.len()], value)
        })
        .collect();
    let limits = RangeLimits {
        open_ended_cap: 100,
        max_ranges: 4,
    };
    let description = Description {
        size: u64::from(input.size),
        validators: validators.clone(),
        content_type: "video/mp4".to_owned(),
        cache_control: None,
    };
    let request = ReadRequest::from_headers(ReadMethod::Get, &headers(&fields), limits);
    let decision = decide(&request, &description);

    // The same fields in another order, each name's values kept in theirs.
    let mut reordered = fields.clone();
    reordered.sort_by_key(|(name, _)| std::cmp::Reverse(*name));
    let again = ReadRequest::from_headers(ReadMethod::Get, &headers(&reordered), limits);
    assert_eq!(decide(&again, &description), decision, "{fields:?}");

    let is_range_answer = matches!(
        decision,
        Decision::Refuse(Refusal::RangeNotSatisfiable { .. })
            | Decision::Send(Selection::Single(_) | Selection::Multi(_))
    );
    if request.range.is_none() {
        assert!(!is_range_answer, "{decision:?} without a Range: {fields:?}");
    }
    if let Some(if_range) = &request.preconditions.if_range {
        let holds = if_range.holds(&validators);
        match if_range {
            IfRange::Tag(tag) => assert_eq!(holds, tag == &etag, "{tag:?} against {etag:?}"),
            IfRange::Date(date) => assert_eq!(
                holds,
                last_modified.is_some_and(|lm| {
                    let secs =
                        |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
                    date.duration_since(UNIX_EPOCH)
                        .is_ok_and(|_| secs(*date) == secs(lm))
                }),
                "{date:?} against {last_modified:?}"
            ),
            IfRange::Invalid => assert!(!holds),
        }
        if !holds {
            assert!(
                !is_range_answer,
                "{decision:?} though If-Range fails: {fields:?}"
            );
        }
    }
});
