#![no_main]
//! Any Range header against any object size and limits: what is parsed keeps
//! to the limit, every planned range lies inside the object, an open range
//! keeps to its cap, and each spec resolves as RFC 9110 §14.1.2 says.

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use media_streamer::protocol::range::{
    parse_range_header, plan_ranges, ByteRange, RangeHeaderError, RangeLimits, RangeSpec, Selection,
};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    size: u64,
    cap: u64,
    max_ranges: u8,
    header: &'a str,
}

/// RFC 9110 §14.1.2, written out once more for one spec on its own.
fn resolve_one(spec: &RangeSpec, size: u64, cap: u64) -> Option<ByteRange> {
    if size == 0 {
        return None;
    }
    match *spec {
        RangeSpec::FromTo { first, .. } if first >= size => None,
        RangeSpec::FromTo {
            first,
            last: Some(last),
        } => Some(ByteRange {
            first,
            last: last.min(size - 1),
        }),
        RangeSpec::FromTo { first, last: None } => Some(ByteRange {
            first,
            last: (size - 1).min(first.saturating_add(cap.max(1) - 1)),
        }),
        RangeSpec::Suffix { length: 0 } => None,
        RangeSpec::Suffix { length } => Some(ByteRange {
            first: size - length.min(size),
            last: size - 1,
        }),
    }
}

fuzz_target!(|input: Input| {
    let limits = RangeLimits {
        open_ended_cap: input.cap,
        max_ranges: usize::from(input.max_ranges.max(1)),
    };
    let specs = match parse_range_header(input.header, &limits) {
        Ok(specs) => specs,
        Err(RangeHeaderError::TooManyRanges) => {
            let (_, set) = input.header.split_once('=').unwrap();
            let members = set
                .split(',')
                .filter(|m| !m.trim_matches([' ', '\t']).is_empty());
            assert!(members.count() > limits.max_ranges, "{:?}", input.header);
            return;
        }
        Err(_) => return,
    };
    assert!(!specs.is_empty() && specs.len() <= limits.max_ranges);
    let unit = input.header.split_once('=').map(|(unit, _)| unit.trim());
    assert!(
        unit.is_some_and(|u| u.eq_ignore_ascii_case("bytes")),
        "{:?} parsed without a bytes unit",
        input.header
    );
    let size = input.size;
    let selection = plan_ranges(&specs, size, &limits);
    let resolved: Vec<ByteRange> = specs
        .iter()
        .filter_map(|s| resolve_one(s, size, limits.open_ended_cap))
        .collect();
    match selection {
        Err(_) => assert!(resolved.is_empty(), "416 for {resolved:?} of {size}"),
        Ok(Selection::Single(range)) => assert_eq!(resolved, vec![range]),
        Ok(Selection::Multi(ranges)) => {
            assert_eq!(resolved, ranges);
            let total: u64 = ranges.iter().map(ByteRange::len).sum();
            assert!(total <= size, "multipart of {total} bytes for {size}");
        }
        Ok(Selection::Whole) => assert!(resolved.len() > 1, "200 for {resolved:?}"),
    }
    for range in &resolved {
        assert!(
            range.first <= range.last && range.last < size,
            "{range:?} of {size}"
        );
    }
});
