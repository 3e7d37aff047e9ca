//! Validators and conditional requests (RFC 9110 §8.8, §13).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap};

/// An entity tag (RFC 9110 §8.8.3): an opaque quoted string, weak or strong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntityTag {
    weak: bool,
    /// The characters between the quotes.
    opaque: String,
}

impl EntityTag {
    /// A strong tag from its opaque part. `None` if it holds a character that
    /// `etagc` does not allow (a quote, a control character, a space).
    pub fn strong(opaque: &str) -> Option<Self> {
        opaque.bytes().all(is_etagc).then(|| EntityTag {
            weak: false,
            opaque: opaque.to_owned(),
        })
    }

    /// Parses one `entity-tag`; `None` if it is not one.
    pub fn parse(value: &str) -> Option<Self> {
        match parse_one(value.trim_matches([' ', '\t']))? {
            (tag, "") => Some(tag),
            _ => None,
        }
    }

    /// The strong tag with the same opaque part: what weak comparison matches.
    pub(crate) fn strong_twin(&self) -> EntityTag {
        EntityTag {
            weak: false,
            opaque: self.opaque.clone(),
        }
    }

    pub(crate) fn is_weak(&self) -> bool {
        self.weak
    }

    /// Strong comparison (RFC 9110 §8.8.3.2): both strong and the same characters.
    pub(crate) fn strong_eq(&self, other: &EntityTag) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison (RFC 9110 §8.8.3.2): the same characters, weak or not.
    pub(crate) fn weak_eq(&self, other: &EntityTag) -> bool {
        self.opaque == other.opaque
    }
}

impl fmt::Display for EntityTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = if self.weak { "W/" } else { "" };
        write!(f, "{prefix}\"{}\"", self.opaque)
    }
}

/// `etagc = %x21 / %x23-7E / obs-text` (RFC 9110 §8.8.3).
fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80
}

/// Parses one entity-tag at the start of `s`, returning it and the rest.
fn parse_one(s: &str) -> Option<(EntityTag, &str)> {
    let (weak, s) = match s.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let body = s.strip_prefix('"')?;
    let end = body.find('"')?;
    let opaque = &body[..end];
    if !opaque.bytes().all(is_etagc) {
        return None;
    }
    Some((
        EntityTag {
            weak,
            opaque: opaque.to_owned(),
        },
        &body[end + 1..],
    ))
}

/// The value of `If-Match` or `If-None-Match` (RFC 9110 §13.1.1, §13.1.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EtagCondition {
    /// `*`: any current representation.
    Any,
    /// A list of entity tags.
    Tags(Vec<EntityTag>),
    /// Not valid syntax: matches nothing, so `If-Match` fails and `If-None-Match`
    /// lets the request through, as Go's net/http does.
    Malformed,
}

impl EtagCondition {
    /// Parses an `If-Match`/`If-None-Match` list; repeated fields are one list
    /// (RFC 9110 §5.3).
    pub fn parse(values: &[&str]) -> Self {
        let joined = values.join(",");
        if joined.trim_matches([' ', '\t']) == "*" {
            return EtagCondition::Any;
        }
        let mut tags = Vec::new();
        let mut rest = joined.as_str();
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            match parse_one(rest) {
                Some((tag, after)) => {
                    tags.push(tag);
                    rest = after.trim_start_matches([' ', '\t']);
                    if !(rest.is_empty() || rest.starts_with(',')) {
                        return EtagCondition::Malformed;
                    }
                }
                None => return EtagCondition::Malformed,
            }
        }
        if tags.is_empty() {
            EtagCondition::Malformed
        } else {
            EtagCondition::Tags(tags)
        }
    }

    fn matches(&self, current: &EntityTag, compare: fn(&EntityTag, &EntityTag) -> bool) -> bool {
        match self {
            EtagCondition::Any => true,
            EtagCondition::Tags(tags) => tags.iter().any(|tag| compare(tag, current)),
            EtagCondition::Malformed => false,
        }
    }
}

/// The value of `If-Range` (RFC 9110 §13.1.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfRange {
    Tag(EntityTag),
    Date(SystemTime),
    /// Neither an entity-tag nor an HTTP-date: the condition is false.
    Invalid,
}

impl IfRange {
    pub fn parse(value: &str) -> Self {
        let value = value.trim_matches([' ', '\t']);
        if let Some(tag) = EntityTag::parse(value) {
            return IfRange::Tag(tag);
        }
        match httpdate::parse_http_date(value) {
            Ok(date) => IfRange::Date(date),
            Err(_) => IfRange::Invalid,
        }
    }

    /// Whether the range may be honoured (RFC 9110 §13.1.5): a strong match of the
    /// entity tag, or a date equal to Last-Modified. A weak tag never matches.
    pub fn holds(&self, validators: &Validators) -> bool {
        match self {
            IfRange::Tag(tag) => tag.strong_eq(&validators.etag),
            IfRange::Date(date) => validators
                .last_modified
                .is_some_and(|lm| whole_seconds(lm) == whole_seconds(*date)),
            IfRange::Invalid => false,
        }
    }
}

/// The validators of the selected representation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validators {
    pub etag: EntityTag,
    pub last_modified: Option<SystemTime>,
}

/// The conditional header fields of a request, parsed once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub if_match: Option<EtagCondition>,
    pub if_unmodified_since: Option<SystemTime>,
    pub if_none_match: Option<EtagCondition>,
    pub if_modified_since: Option<SystemTime>,
    pub if_range: Option<IfRange>,
}

impl Preconditions {
    /// Reads the five fields. A date that does not parse, or a date field sent more
    /// than once, is ignored (RFC 9110 §13.1.3, §13.1.4).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        Preconditions {
            if_match: etag_condition(headers, header::IF_MATCH),
            if_unmodified_since: date(headers, header::IF_UNMODIFIED_SINCE),
            if_none_match: etag_condition(headers, header::IF_NONE_MATCH),
            if_modified_since: date(headers, header::IF_MODIFIED_SINCE),
            if_range: single_value(headers, header::IF_RANGE).map(IfRange::parse),
        }
    }

    /// True when the request carries no precondition that a store must evaluate
    /// (If-Range aside).
    pub fn is_empty(&self) -> bool {
        self.if_match.is_none()
            && self.if_unmodified_since.is_none()
            && self.if_none_match.is_none()
            && self.if_modified_since.is_none()
    }
}

fn etag_condition(headers: &HeaderMap, name: header::HeaderName) -> Option<EtagCondition> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{0}"))
        .collect();
    (!values.is_empty()).then(|| EtagCondition::parse(&values))
}

fn single_value(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

fn date(headers: &HeaderMap, name: header::HeaderName) -> Option<SystemTime> {
    httpdate::parse_http_date(single_value(headers, name)?.trim()).ok()
}

/// HTTP dates have one-second resolution (RFC 9110 §5.6.7).
fn whole_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// The result of evaluating preconditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PreconditionOutcome {
    /// Go on; `honour_range` is false when If-Range failed (send the whole).
    Proceed { honour_range: bool },
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Evaluates preconditions for a GET or HEAD in the order of RFC 9110 §13.2.2:
/// If-Match, If-Unmodified-Since (only without If-Match), If-None-Match (weak
/// comparison; 304 for GET/HEAD), If-Modified-Since (only without If-None-Match),
/// then If-Range.
pub(crate) fn evaluate(pre: &Preconditions, validators: &Validators) -> PreconditionOutcome {
    // Step 1: If-Match, strong comparison (§13.1.1).
    if let Some(cond) = &pre.if_match {
        if !cond.matches(&validators.etag, EntityTag::strong_eq) {
            return PreconditionOutcome::Failed;
        }
    } else if let (Some(since), Some(lm)) = (pre.if_unmodified_since, validators.last_modified) {
        // Step 2: If-Unmodified-Since (§13.1.4).
        if whole_seconds(lm) > whole_seconds(since) {
            return PreconditionOutcome::Failed;
        }
    }
    // Step 3: If-None-Match, weak comparison (§13.1.2).
    if let Some(cond) = &pre.if_none_match {
        if cond.matches(&validators.etag, EntityTag::weak_eq) {
            return PreconditionOutcome::NotModified;
        }
    } else if let (Some(since), Some(lm)) = (pre.if_modified_since, validators.last_modified) {
        // Step 4: If-Modified-Since (§13.1.3).
        if whole_seconds(lm) <= whole_seconds(since) {
            return PreconditionOutcome::NotModified;
        }
    }
    // Step 5: If-Range (§13.1.5).
    let honour_range = pre.if_range.as_ref().is_none_or(|c| c.holds(validators));
    PreconditionOutcome::Proceed { honour_range }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn tag(s: &str) -> EntityTag {
        EntityTag::parse(s).unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const LM: u64 = 1_700_000_000; // Tue, 14 Nov 2023 22:13:20 GMT
    const LM_HTTP: &str = "Tue, 14 Nov 2023 22:13:20 GMT";
    const BEFORE_HTTP: &str = "Tue, 14 Nov 2023 22:13:19 GMT";
    const AFTER_HTTP: &str = "Tue, 14 Nov 2023 22:13:21 GMT";

    #[test]
    fn parses_entity_tags() {
        let cases: &[(&str, Option<(bool, &str)>)] = &[
            ("\"abc\"", Some((false, "abc"))),
            ("W/\"abc\"", Some((true, "abc"))),
            ("\"\"", Some((false, ""))),
            (" \"a-b\" ", Some((false, "a-b"))),
            ("abc", None),
            ("\"abc", None),
            ("w/\"abc\"", None),
            ("\"a\"b", None),
            ("\"a b\"", None),
        ];
        for (input, expected) in cases {
            let got = EntityTag::parse(input).map(|t| (t.weak, t.opaque.clone()));
            let expected = expected.map(|(w, o)| (w, o.to_owned()));
            assert_eq!(got, expected, "{input}");
        }
        assert_eq!(tag("W/\"x\"").to_string(), "W/\"x\"");
        assert_eq!(EntityTag::strong("x\"y"), None);
    }

    #[test]
    fn compares_entity_tags() {
        // The table of RFC 9110 §8.8.3.2.
        let cases = [
            ("W/\"1\"", "W/\"1\"", false, true),
            ("W/\"1\"", "W/\"2\"", false, false),
            ("W/\"1\"", "\"1\"", false, true),
            ("\"1\"", "\"1\"", true, true),
        ];
        for (a, b, strong, weak) in cases {
            assert_eq!(tag(a).strong_eq(&tag(b)), strong, "{a} strong {b}");
            assert_eq!(tag(a).weak_eq(&tag(b)), weak, "{a} weak {b}");
        }
    }

    #[test]
    fn parses_etag_lists() {
        let cases: &[(&[&str], EtagCondition)] = &[
            (&["*"], EtagCondition::Any),
            (&[" * "], EtagCondition::Any),
            (&["\"a\""], EtagCondition::Tags(vec![tag("\"a\"")])),
            (
                &["\"a\", W/\"b\""],
                EtagCondition::Tags(vec![tag("\"a\""), tag("W/\"b\"")]),
            ),
            (
                &["\"a\",,\"b\","],
                EtagCondition::Tags(vec![tag("\"a\""), tag("\"b\"")]),
            ),
            (
                &["\"a\"", "\"b\""],
                EtagCondition::Tags(vec![tag("\"a\""), tag("\"b\"")]),
            ),
            (&["\"a,b\""], EtagCondition::Tags(vec![tag("\"a,b\"")])),
            (&["a"], EtagCondition::Malformed),
            (&["\"a\" \"b\""], EtagCondition::Malformed),
            (&["*, \"a\""], EtagCondition::Malformed),
            (&[""], EtagCondition::Malformed),
        ];
        for (values, expected) in cases {
            assert_eq!(&EtagCondition::parse(values), expected, "{values:?}");
        }
    }

    #[test]
    fn evaluates_in_rfc_order() {
        use PreconditionOutcome::*;
        let validators = Validators {
            etag: tag("\"v1\""),
            last_modified: Some(at(LM)),
        };
        let proceed = Proceed { honour_range: true };
        let whole = Proceed {
            honour_range: false,
        };
        let cases: &[(&[(&str, &str)], PreconditionOutcome)] = &[
            (&[], proceed),
            (&[("if-match", "\"v1\"")], proceed),
            (&[("if-match", "*")], proceed),
            (&[("if-match", "\"v0\", \"v1\"")], proceed),
            (&[("if-match", "\"v0\"")], Failed),
            (&[("if-match", "W/\"v1\"")], Failed),
            (&[("if-match", "garbage")], Failed),
            (&[("if-unmodified-since", LM_HTTP)], proceed),
            (&[("if-unmodified-since", AFTER_HTTP)], proceed),
            (&[("if-unmodified-since", BEFORE_HTTP)], Failed),
            (&[("if-unmodified-since", "not a date")], proceed),
            // If-Match wins over If-Unmodified-Since
            (
                &[("if-match", "\"v1\""), ("if-unmodified-since", BEFORE_HTTP)],
                proceed,
            ),
            (&[("if-none-match", "\"v1\"")], NotModified),
            (&[("if-none-match", "W/\"v1\"")], NotModified),
            (&[("if-none-match", "\"v0\", W/\"v1\"")], NotModified),
            (&[("if-none-match", "*")], NotModified),
            (&[("if-none-match", "\"v0\"")], proceed),
            (&[("if-none-match", "garbage")], proceed),
            (&[("if-modified-since", LM_HTTP)], NotModified),
            (&[("if-modified-since", AFTER_HTTP)], NotModified),
            (&[("if-modified-since", BEFORE_HTTP)], proceed),
            (&[("if-modified-since", "yesterday")], proceed),
            // If-None-Match wins over If-Modified-Since
            (
                &[
                    ("if-none-match", "\"v0\""),
                    ("if-modified-since", AFTER_HTTP),
                ],
                proceed,
            ),
            // 412 is decided before 304
            (
                &[("if-match", "\"v0\""), ("if-none-match", "\"v1\"")],
                Failed,
            ),
            (
                &[
                    ("if-unmodified-since", BEFORE_HTTP),
                    ("if-modified-since", AFTER_HTTP),
                ],
                Failed,
            ),
            // If-Range
            (&[("if-range", "\"v1\"")], proceed),
            (&[("if-range", "\"v0\"")], whole),
            (&[("if-range", "W/\"v1\"")], whole),
            (&[("if-range", LM_HTTP)], proceed),
            (&[("if-range", AFTER_HTTP)], whole),
            (&[("if-range", BEFORE_HTTP)], whole),
            (&[("if-range", "garbage")], whole),
            (&[("if-match", "\"v1\""), ("if-range", "\"v0\"")], whole),
        ];
        for (fields, expected) in cases {
            let mut headers = HeaderMap::new();
            for (name, value) in *fields {
                headers.append(*name, HeaderValue::from_str(value).unwrap());
            }
            let pre = Preconditions::from_headers(&headers);
            assert_eq!(evaluate(&pre, &validators), *expected, "{fields:?}");
        }
    }

    #[test]
    fn date_conditions_need_a_last_modified() {
        let validators = Validators {
            etag: tag("\"v1\""),
            last_modified: None,
        };
        let mut headers = HeaderMap::new();
        headers.insert("if-modified-since", HeaderValue::from_static(AFTER_HTTP));
        headers.insert("if-unmodified-since", HeaderValue::from_static(BEFORE_HTTP));
        let pre = Preconditions::from_headers(&headers);
        assert_eq!(
            evaluate(&pre, &validators),
            PreconditionOutcome::Proceed { honour_range: true }
        );
        assert!(!IfRange::Date(at(LM)).holds(&validators));
    }

    #[test]
    fn repeated_date_fields_are_ignored() {
        let mut headers = HeaderMap::new();
        headers.append("if-modified-since", HeaderValue::from_static(LM_HTTP));
        headers.append("if-modified-since", HeaderValue::from_static(LM_HTTP));
        assert_eq!(
            Preconditions::from_headers(&headers).if_modified_since,
            None
        );
    }
}
