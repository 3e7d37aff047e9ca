//! Range requests: parsing the `Range` header and planning which bytes to send
//! (RFC 9110 §14).

use std::fmt;
use std::num::NonZeroUsize;

use http_range_header::{
    RangeInvalid, RangeRejected, RangeUnsatisfiableError, SyntacticallyCorrectRange,
};

/// A non-empty span of bytes, both ends inclusive, as `Content-Range` writes it
/// (RFC 9110 §14.4: `first-pos "-" last-pos`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

impl ByteRange {
    /// The whole of a non-empty representation of `size` bytes.
    pub fn whole(size: u64) -> Option<Self> {
        size.checked_sub(1).map(|last| ByteRange { first: 0, last })
    }

    /// Number of bytes in the range (never zero: a `ByteRange` is never empty).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        self.last - self.first + 1
    }

    fn overlaps(&self, other: &ByteRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// One `byte-range-spec` or `suffix-range` of a `Range` header (RFC 9110 §14.1.1),
/// not yet resolved against a size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// `first-` or `first-last`. A number too large for u64 is `u64::MAX`: such a
    /// position lies past any object, which is what it means.
    FromTo { first: u64, last: Option<u64> },
    /// `-length`: the last `length` bytes.
    Suffix { length: u64 },
}

/// Why a `Range` header is not served as asked. Every kind but `TooManyRanges`
/// is ignored, and the whole representation sent (200).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeHeaderError {
    /// A unit other than `bytes` (RFC 9110 §14.2: ignore unknown units).
    UnknownUnit,
    /// Not valid `ranges-specifier` syntax (RFC 9110 §14.2: MAY ignore).
    InvalidSyntax,
    /// More ranges than the configured limit: refused with 416, which RFC 9110
    /// §15.5.17 allows for "an excessive number of small or overlapping ranges".
    TooManyRanges,
}

/// Which bytes of a representation to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// 200 with the whole representation.
    Whole,
    /// 206 with one `Content-Range`.
    Single(ByteRange),
    /// 206 `multipart/byteranges`, parts in the order requested.
    Multi(Vec<ByteRange>),
}

/// No range of the request overlaps the representation: a 416 with
/// `Content-Range: bytes */size` (RFC 9110 §15.5.17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// Bounds on range handling, from configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeLimits {
    /// Longest answer to an open-ended range (`bytes=N-`). A short 206 is legal and
    /// describes itself through `Content-Range` (RFC 9110 §15.3.7); closed ranges
    /// are always served whole.
    pub open_ended_cap: u64,
    /// Most ranges honoured in one header; more is a 416.
    pub max_ranges: usize,
}

/// Parses a `Range` field value (RFC 9110 §14.1.1, §14.2) with
/// http-range-header, which accepts what the RFC asks a recipient to accept:
/// any case of `bytes` (§14.1: the unit is case-insensitive), whitespace around
/// list members and empty list members (§5.6.1), and positions too large for
/// u64 (they saturate: such a position lies past any object, which is what it
/// means). What it rejects is ignored (§14.2: a server MAY ignore a Range),
/// except more ranges than the limit, which is a 416 (§15.5.17).
pub fn parse_range_header(
    value: &str,
    limits: &RangeLimits,
) -> Result<Vec<RangeSpec>, RangeHeaderError> {
    let max_ranges = NonZeroUsize::new(limits.max_ranges).unwrap_or(NonZeroUsize::MIN);
    match http_range_header::parse_range_header_with_max_ranges(value, max_ranges) {
        Ok(parsed) => Ok(parsed.into_ranges().into_iter().map(spec_of).collect()),
        Err(RangeUnsatisfiableError::Rejected(RangeRejected::TooMany)) => {
            Err(RangeHeaderError::TooManyRanges)
        }
        Err(RangeUnsatisfiableError::Invalid(RangeInvalid::DoesNotStartWithToken)) => {
            match value.split_once('=') {
                Some((unit, _)) if is_token(unit) && !unit.eq_ignore_ascii_case("bytes") => {
                    Err(RangeHeaderError::UnknownUnit)
                }
                _ => Err(RangeHeaderError::InvalidSyntax),
            }
        }
        Err(_) => Err(RangeHeaderError::InvalidSyntax),
    }
}

fn spec_of(range: SyntacticallyCorrectRange) -> RangeSpec {
    match range {
        SyntacticallyCorrectRange::FromStart(first) => RangeSpec::FromTo { first, last: None },
        SyntacticallyCorrectRange::FromLast(length) => RangeSpec::Suffix { length },
        SyntacticallyCorrectRange::Indexed(first, last) => RangeSpec::FromTo {
            first,
            last: Some(last),
        },
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Resolves parsed specs against an object of `size` bytes (RFC 9110 §14.1.2,
/// §14.2, §15.3.7, §15.5.17).
///
/// Unsatisfiable members are dropped; none left is a 416. One left is a plain 206;
/// several are a multipart 206 unless they overlap more than once or add up past
/// the object size, in which case the header is ignored (200).
pub fn plan_ranges(
    specs: &[RangeSpec],
    size: u64,
    limits: &RangeLimits,
) -> Result<Selection, Unsatisfiable> {
    let ranges: Vec<ByteRange> = specs
        .iter()
        .filter_map(|spec| resolve(spec, size, limits))
        .collect();
    match ranges.len() {
        0 => Err(Unsatisfiable),
        1 => Ok(Selection::Single(ranges[0])),
        _ if is_abusive(&ranges, size) => Ok(Selection::Whole),
        _ => Ok(Selection::Multi(ranges)),
    }
}

/// Whether a multi-range set should be ignored: ranges that overlap more
/// than once or add up past the object size, the patterns RFC 9110 §14.3 and
/// §17.15 name as a denial-of-service risk.
fn is_abusive(ranges: &[ByteRange], size: u64) -> bool {
    let total: u64 = ranges
        .iter()
        .fold(0u64, |sum, r| sum.saturating_add(r.len()));
    if total > size {
        return true;
    }
    let mut overlaps = 0;
    for (i, a) in ranges.iter().enumerate() {
        for b in &ranges[i + 1..] {
            if a.overlaps(b) {
                overlaps += 1;
            }
        }
    }
    overlaps > 1
}

fn resolve(spec: &RangeSpec, size: u64, limits: &RangeLimits) -> Option<ByteRange> {
    let end = size.checked_sub(1)?; // nothing in an empty representation is satisfiable
    match *spec {
        RangeSpec::FromTo { first, last } if first <= end => {
            let last = match last {
                Some(last) => last.min(end),
                None => end.min(first.saturating_add(limits.open_ended_cap.max(1) - 1)),
            };
            Some(ByteRange { first, last })
        }
        RangeSpec::FromTo { .. } => None,
        RangeSpec::Suffix { length: 0 } => None,
        RangeSpec::Suffix { length } => Some(ByteRange {
            first: size.saturating_sub(length),
            last: end,
        }),
    }
}

/// `Content-Range` for a partial response (RFC 9110 §14.4).
pub fn content_range(range: &ByteRange, size: u64) -> String {
    format!("bytes {range}/{size}")
}

/// Reads a `Content-Range: bytes first-last/complete` of a partial response
/// (RFC 9110 §14.4), as a store sends it; `None` for any other form.
pub(crate) fn parse_content_range(value: &str) -> Option<(ByteRange, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, size) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let digits = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let (first, last, size) = (digits(first)?, digits(last)?, digits(size)?);
    (first <= last && last < size).then_some((ByteRange { first, last }, size))
}

/// `Content-Range` for a 416 (RFC 9110 §14.4, §15.5.17).
pub(crate) fn unsatisfied_content_range(size: u64) -> String {
    format!("bytes */{size}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: RangeLimits = RangeLimits {
        open_ended_cap: 1000,
        max_ranges: 4,
    };

    fn from_to(first: u64, last: Option<u64>) -> RangeSpec {
        RangeSpec::FromTo { first, last }
    }

    fn r(first: u64, last: u64) -> ByteRange {
        ByteRange { first, last }
    }

    #[test]
    fn parses_range_headers() {
        use RangeHeaderError::*;
        let cases: &[(&str, Result<Vec<RangeSpec>, RangeHeaderError>)] = &[
            ("bytes=0-1", Ok(vec![from_to(0, Some(1))])),
            ("bytes=0-", Ok(vec![from_to(0, None)])),
            ("bytes=-500", Ok(vec![RangeSpec::Suffix { length: 500 }])),
            ("Bytes=5-9", Ok(vec![from_to(5, Some(9))])),
            ("BYTES=5-9", Ok(vec![from_to(5, Some(9))])),
            (
                "bytes=0-0,-1",
                Ok(vec![from_to(0, Some(0)), RangeSpec::Suffix { length: 1 }]),
            ),
            (
                "bytes= 0-1 , 4-5",
                Ok(vec![from_to(0, Some(1)), from_to(4, Some(5))]),
            ),
            (
                "bytes=0-1,,4-5,",
                Ok(vec![from_to(0, Some(1)), from_to(4, Some(5))]),
            ),
            ("bytes=007-008", Ok(vec![from_to(7, Some(8))])),
            (
                "bytes=99999999999999999999999-",
                Ok(vec![from_to(u64::MAX, None)]),
            ),
            (
                "bytes=0-99999999999999999999999",
                Ok(vec![from_to(0, Some(u64::MAX))]),
            ),
            (
                "bytes=1-1,2-2,3-3,4-4",
                Ok(vec![
                    from_to(1, Some(1)),
                    from_to(2, Some(2)),
                    from_to(3, Some(3)),
                    from_to(4, Some(4)),
                ]),
            ),
            ("bytes=1-1,2-2,3-3,4-4,5-5", Err(TooManyRanges)),
            ("items=0-1", Err(UnknownUnit)),
            ("none", Err(InvalidSyntax)),
            ("bytes=", Err(InvalidSyntax)),
            ("bytes=,", Err(InvalidSyntax)),
            ("bytes=5-4", Err(InvalidSyntax)),
            ("bytes=-", Err(InvalidSyntax)),
            ("bytes=a-b", Err(InvalidSyntax)),
            ("bytes=1", Err(InvalidSyntax)),
            ("bytes=+1-2", Err(InvalidSyntax)),
            ("bytes=-1-2", Err(InvalidSyntax)),
            ("bytes=0-1,x", Err(InvalidSyntax)),
            ("bytes=0x10-", Err(InvalidSyntax)),
            ("by tes=0-1", Err(InvalidSyntax)),
            ("=0-1", Err(InvalidSyntax)),
        ];
        for (header, expected) in cases {
            assert_eq!(&parse_range_header(header, &LIMITS), expected, "{header}");
        }
    }

    #[test]
    fn plans_ranges_against_a_size() {
        use Selection::*;
        let size = 10_000;
        let cases: &[(&[RangeSpec], u64, Result<Selection, Unsatisfiable>)] = &[
            (&[from_to(0, Some(1))], size, Ok(Single(r(0, 1)))),
            (&[from_to(0, Some(0))], size, Ok(Single(r(0, 0)))),
            (
                &[from_to(9_999, Some(9_999))],
                size,
                Ok(Single(r(9_999, 9_999))),
            ),
            (
                &[from_to(9_000, Some(20_000))],
                size,
                Ok(Single(r(9_000, 9_999))),
            ),
            (
                &[from_to(100, Some(5_000))],
                size,
                Ok(Single(r(100, 5_000))),
            ),
            // open-ended ranges are capped, closed ones are not
            (&[from_to(0, None)], size, Ok(Single(r(0, 999)))),
            (&[from_to(9_500, None)], size, Ok(Single(r(9_500, 9_999)))),
            (&[from_to(u64::MAX, None)], size, Err(Unsatisfiable)),
            (
                &[RangeSpec::Suffix { length: 500 }],
                size,
                Ok(Single(r(9_500, 9_999))),
            ),
            (
                &[RangeSpec::Suffix { length: 20_000 }],
                size,
                Ok(Single(r(0, 9_999))),
            ),
            (&[RangeSpec::Suffix { length: 0 }], size, Err(Unsatisfiable)),
            (&[from_to(10_000, None)], size, Err(Unsatisfiable)),
            (&[from_to(10_000, Some(10_001))], size, Err(Unsatisfiable)),
            // unsatisfiable members are dropped
            (
                &[from_to(20_000, None), from_to(5, Some(6))],
                size,
                Ok(Single(r(5, 6))),
            ),
            (
                &[from_to(0, Some(1)), from_to(5, Some(6))],
                size,
                Ok(Multi(vec![r(0, 1), r(5, 6)])),
            ),
            (
                &[from_to(5, Some(6)), from_to(0, Some(1))],
                size,
                Ok(Multi(vec![r(5, 6), r(0, 1)])),
            ),
            // one overlap is served, two are ignored
            (
                &[from_to(0, Some(5)), from_to(3, Some(8))],
                size,
                Ok(Multi(vec![r(0, 5), r(3, 8)])),
            ),
            (
                &[
                    from_to(0, Some(5)),
                    from_to(3, Some(8)),
                    from_to(4, Some(4)),
                ],
                size,
                Ok(Whole),
            ),
            // adding up past the size is ignored
            (
                &[from_to(0, Some(6_000)), from_to(4_000, Some(9_999))],
                size,
                Ok(Whole),
            ),
            (
                &[from_to(0, None), RangeSpec::Suffix { length: 1 }],
                size,
                Ok(Multi(vec![r(0, 999), r(9_999, 9_999)])),
            ),
            // an empty representation satisfies nothing
            (&[from_to(0, None)], 0, Err(Unsatisfiable)),
            (&[RangeSpec::Suffix { length: 1 }], 0, Err(Unsatisfiable)),
            (&[from_to(0, None)], 1, Ok(Single(r(0, 0)))),
        ];
        for (specs, size, expected) in cases {
            assert_eq!(
                &plan_ranges(specs, *size, &LIMITS),
                expected,
                "{specs:?} of {size}"
            );
        }
    }

    #[test]
    fn reads_content_range() {
        let cases = [
            ("bytes 0-1/10", Some((r(0, 1), 10))),
            ("bytes 9000-10239/10240", Some((r(9000, 10239), 10240))),
            ("bytes 5-4/10", None),
            ("bytes 0-10/10", None),
            ("bytes */10", None),
            ("bytes 0-1/*", None),
            ("items 0-1/10", None),
            ("bytes -1-2/10", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_content_range(value), expected, "{value}");
        }
    }

    #[test]
    fn writes_content_range() {
        assert_eq!(content_range(&r(0, 1), 10), "bytes 0-1/10");
        assert_eq!(unsatisfied_content_range(10), "bytes */10");
        assert_eq!(ByteRange::whole(0), None);
        assert_eq!(ByteRange::whole(5), Some(r(0, 4)));
    }
}
