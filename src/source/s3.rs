//! Objects from an S3 bucket (or any S3-compatible store).
//!
//! A plain, single-range or conditional GET is one GetObject, with the Range
//! and the conditions S3 evaluates exactly as RFC 9110 does passed through;
//! the rest of the decision is checked here against the validators S3 returns.
//! Requests S3 cannot answer in one call (several ranges, If-Range by date) are
//! described with HeadObject first and decided here, each part then fetched
//! pinned to the described ETag so parts never mix versions.

use std::io;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::Client;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use futures_util::{StreamExt, TryStreamExt};

use super::{BodyStream, ObjectMeta, Opened, Source, SourceError};
use crate::protocol::conditional::{
    evaluate, EntityTag, EtagCondition, IfRange, PreconditionOutcome, Preconditions, Validators,
};
use crate::protocol::index::{ListEntry, Listing};
use crate::protocol::key::ObjectKey;
use crate::protocol::media_type::{content_type_for, is_generic};
use crate::protocol::plan::{decide, Decision, ReadMethod, ReadRequest};
use crate::protocol::range::{
    parse_content_range, ByteRange, RangeHeaderError, RangeSpec, Selection,
};

/// The HTTPS client for S3 and the credential providers: rustls on ring.
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// When a whole object is too large for one response, redirect to S3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresignPolicy {
    /// Whole objects larger than this get a 307 to a presigned GetObject URL.
    pub above_bytes: u64,
    /// How long the presigned URL is valid.
    pub expires_in: Duration,
}

/// Serves the objects of one bucket under a key prefix.
#[derive(Clone, Debug)]
pub struct S3Source {
    client: Client,
    bucket: String,
    prefix: String,
    presign: Option<PresignPolicy>,
}

impl S3Source {
    /// `prefix` is put before every key; a `/` is added if it lacks one.
    pub fn new(client: Client, bucket: &str, prefix: &str, presign: Option<PresignPolicy>) -> Self {
        let prefix = if prefix.is_empty() || prefix.ends_with('/') {
            prefix.to_owned()
        } else {
            format!("{prefix}/")
        };
        S3Source {
            client,
            bucket: bucket.to_owned(),
            prefix,
            presign,
        }
    }

    fn full_key(&self, key: &ObjectKey) -> String {
        format!("{}{}", self.prefix, key)
    }

    /// One GetObject that answers the request, per `plan`.
    async fn get_once(
        &self,
        key: &ObjectKey,
        request: &ReadRequest,
        plan: GetPlan,
    ) -> Result<Opened, SourceError> {
        let full = self.full_key(key);
        let mut get = self.client.get_object().bucket(&self.bucket).key(&full);
        if let Some(range) = &plan.range {
            get = get.range(range);
        }
        if let Some(tag) = &plan.if_match {
            get = get.if_match(tag);
        }
        if let Some(tag) = &plan.if_none_match {
            get = get.if_none_match(tag);
        }
        if let Some(date) = plan.if_modified_since {
            get = get.if_modified_since(DateTime::from(date));
        }
        if let Some(date) = plan.if_unmodified_since {
            get = get.if_unmodified_since(DateTime::from(date));
        }
        let output = match get.send().await {
            Ok(output) => output,
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                return match status {
                    Some(304) => {
                        let meta = meta_from_304(key, e.raw_response());
                        Ok(after_not_modified(&request.preconditions, meta))
                    }
                    // If-Range held the If-Match: the representation changed, so
                    // the whole of the current one goes out (RFC 9110 §13.1.5).
                    Some(412) if plan.if_range_via_if_match => {
                        Box::pin(self.get_once(key, request, plan.without_range())).await
                    }
                    Some(412) => Ok(Opened::PreconditionFailed(None)),
                    Some(416) => match actual_object_size(e.raw_response()) {
                        Some(size) => Ok(Opened::RangeNotSatisfiable { size }),
                        None => self.describe_and_decide(key, request).await,
                    },
                    _ => Err(classify(&self.bucket, &full, e)),
                };
            }
        };
        let content_range = output.content_range().and_then(parse_content_range);
        let size = match content_range {
            Some((_, size)) => size,
            None => u64::try_from(output.content_length().unwrap_or(0)).unwrap_or(0),
        };
        let meta = object_meta(
            key,
            size,
            output.e_tag(),
            output.last_modified(),
            output.content_type(),
            output.cache_control(),
        )?;
        // What S3 did not evaluate is decided here on the validators it sent.
        match evaluate(&request.preconditions, &meta.validators) {
            PreconditionOutcome::Failed => return Ok(Opened::PreconditionFailed(Some(meta))),
            PreconditionOutcome::NotModified => return Ok(Opened::NotModified(meta)),
            PreconditionOutcome::Proceed { .. } => {}
        }
        let selection = match content_range {
            Some((range, _)) => Selection::Single(range),
            None => Selection::Whole,
        };
        if selection == Selection::Whole {
            if let Some(location) = self.presigned_if_too_large(&full, meta.size).await? {
                return Ok(Opened::Redirect { location });
            }
        }
        let bodies = if meta.size == 0 {
            Vec::new()
        } else {
            vec![byte_stream(output.body)]
        };
        Ok(Opened::Content {
            meta,
            selection,
            bodies,
        })
    }

    /// HeadObject, the decision made here, then GETs pinned to that ETag.
    async fn describe_and_decide(
        &self,
        key: &ObjectKey,
        request: &ReadRequest,
    ) -> Result<Opened, SourceError> {
        let full = self.full_key(key);
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| classify(&self.bucket, &full, e))?;
        let meta = object_meta(
            key,
            u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0),
            head.e_tag(),
            head.last_modified(),
            head.content_type(),
            head.cache_control(),
        )?;
        let decision = decide(request, &meta.validators, meta.size);
        if decision == Decision::Send(Selection::Whole) && request.method == ReadMethod::Get {
            if let Some(location) = self.presigned_if_too_large(&full, meta.size).await? {
                return Ok(Opened::Redirect { location });
            }
        }
        let etag = meta.etag().to_string();
        Ok(Opened::from_decision(decision, meta, request, |range| {
            self.pinned_part(&full, &etag, range)
        }))
    }

    /// The bytes of `range`, read only if the object still has `etag`.
    fn pinned_part(&self, full_key: &str, etag: &str, range: ByteRange) -> BodyStream {
        let get = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(full_key)
            .if_match(etag)
            .range(format!("bytes={range}"));
        let (bucket, full_key) = (self.bucket.clone(), full_key.to_owned());
        let response = async move {
            match get.send().await {
                Ok(output) => Ok(byte_stream(output.body)),
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 412) => {
                    Err(SourceError::Changed)
                }
                Err(e) => Err(classify(&bucket, &full_key, e)),
            }
        };
        Box::pin(futures_util::stream::once(response).try_flatten())
    }

    async fn presigned_if_too_large(
        &self,
        full_key: &str,
        size: u64,
    ) -> Result<Option<String>, SourceError> {
        let Some(policy) = self.presign.filter(|p| size > p.above_bytes) else {
            return Ok(None);
        };
        let config = PresigningConfig::expires_in(policy.expires_in)
            .map_err(|e| SourceError::Upstream(format!("presigning: {e}")))?;
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(full_key)
            .presigned(config)
            .await
            .map_err(|e| {
                SourceError::Upstream(format!("presigning: {}", DisplayErrorContext(&e)))
            })?;
        Ok(Some(presigned.uri().to_owned()))
    }
}

#[async_trait]
impl Source for S3Source {
    async fn open(&self, key: &ObjectKey, request: &ReadRequest) -> Result<Opened, SourceError> {
        if request.method == ReadMethod::Head {
            return self.describe_and_decide(key, request).await;
        }
        match GetPlan::for_request(request) {
            Some(plan) => self.get_once(key, request, plan).await,
            None => self.describe_and_decide(key, request).await,
        }
    }

    /// One ListObjectsV2 with `/` as delimiter: the keys under the prefix are
    /// the objects, the common prefixes the sub-directories.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Listing, SourceError> {
        let full = format!("{}{prefix}", self.prefix);
        let output = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .delimiter("/")
            .max_keys(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .set_start_after(after.map(|after| start_after(&full, after)))
            .send()
            .await
            .map_err(|e| classify(&self.bucket, &full, e))?;
        let exists = !output.contents().is_empty() || !output.common_prefixes().is_empty();
        if !exists && after.is_none() && !prefix.is_empty() {
            return Err(SourceError::NotFound);
        }
        let mut entries = Vec::new();
        for common in output.common_prefixes() {
            if let Some(name) = common.prefix().and_then(|p| p.strip_prefix(&full)) {
                entries.push(ListEntry::directory(name));
            }
        }
        for object in output.contents() {
            let Some(name) = object.key().and_then(|k| k.strip_prefix(&full)) else {
                continue;
            };
            // The empty name is a "folder" marker object: the prefix itself.
            if !name.is_empty() {
                let size = object.size().and_then(|s| u64::try_from(s).ok());
                entries.push(ListEntry::object(name, size.unwrap_or(0)));
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let next_after = if output.is_truncated() == Some(true) {
            entries.last().map(|e| e.name.clone())
        } else {
            None
        };
        Ok(Listing {
            entries,
            next_after,
        })
    }
}

/// The StartAfter key that lists what follows the entry `after`. After a
/// sub-directory `a/`, every key under it must be skipped too, or S3 would
/// roll them up into `a/` again: the key after them all is `a/` followed by the
/// greatest code point.
fn start_after(full_prefix: &str, after: &str) -> String {
    if after.ends_with('/') {
        format!("{full_prefix}{after}\u{10FFFF}")
    } else {
        format!("{full_prefix}{after}")
    }
}

/// The header fields of the one GetObject that answers a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetPlan {
    pub range: Option<String>,
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<SystemTime>,
    pub if_unmodified_since: Option<SystemTime>,
    /// `if_match` carries an If-Range entity tag: a 412 means "send the whole".
    pub if_range_via_if_match: bool,
}

impl GetPlan {
    /// The GetObject for a GET, or `None` when one call cannot answer it exactly
    /// (several ranges; If-Range by date; If-Range beside the client's own
    /// If-Match).
    ///
    /// A condition is passed to S3 only where S3's evaluation equals RFC 9110's:
    /// `*` or a single entity tag (S3 compares strongly, so a weak If-None-Match
    /// tag is sent as its strong twin, which is what weak comparison means), and
    /// dates only where the RFC evaluates them (If-Unmodified-Since without
    /// If-Match, If-Modified-Since without If-None-Match). Anything else is
    /// evaluated on the validators the GET returns.
    pub fn for_request(request: &ReadRequest) -> Option<GetPlan> {
        let pre = &request.preconditions;
        // `If-None-Match: *` is a 304 for any object that exists: a HeadObject
        // answers it without a body.
        if pre.if_none_match == Some(EtagCondition::Any) {
            return None;
        }
        // Too many ranges is a 416, which needs the object's size.
        if request.range == Some(Err(RangeHeaderError::TooManyRanges)) {
            return None;
        }
        let mut plan = GetPlan::default();
        if let Some(specs) = request.range_specs() {
            let [spec] = specs else {
                return None;
            };
            plan.range = Some(match *spec {
                RangeSpec::FromTo {
                    first,
                    last: Some(last),
                } => format!("bytes={first}-{last}"),
                RangeSpec::FromTo { first, last: None } => {
                    let last = first.saturating_add(request.limits.open_ended_cap.max(1) - 1);
                    format!("bytes={first}-{last}")
                }
                RangeSpec::Suffix { length } => format!("bytes=-{length}"),
            });
            match &pre.if_range {
                None => {}
                Some(IfRange::Tag(tag)) if !tag.is_weak() => {
                    if pre.if_match.is_some() {
                        return None;
                    }
                    plan.if_match = Some(tag.to_string());
                    plan.if_range_via_if_match = true;
                }
                Some(IfRange::Date(_)) => return None,
                // A weak tag or an invalid value never holds: the whole goes out.
                Some(IfRange::Tag(_)) | Some(IfRange::Invalid) => plan.range = None,
            }
        }
        if !plan.if_range_via_if_match {
            plan.if_match = pre.if_match.as_ref().and_then(|c| exact_for_s3(c, false));
        }
        if pre.if_match.is_none() && !plan.if_range_via_if_match {
            plan.if_unmodified_since = pre.if_unmodified_since;
        }
        plan.if_none_match = pre
            .if_none_match
            .as_ref()
            .and_then(|c| exact_for_s3(c, true));
        if pre.if_none_match.is_none() {
            plan.if_modified_since = pre.if_modified_since;
        }
        Some(plan)
    }

    fn without_range(self) -> GetPlan {
        GetPlan {
            range: None,
            if_match: None,
            if_range_via_if_match: false,
            ..self
        }
    }
}

/// The value S3 evaluates exactly as RFC 9110 would, if there is one. `*` is
/// not sent: S3 does not treat it as "any" on reads.
fn exact_for_s3(condition: &EtagCondition, weak_comparison: bool) -> Option<String> {
    match condition {
        EtagCondition::Any => None,
        EtagCondition::Tags(tags) => match tags.as_slice() {
            [tag] if !tag.is_weak() => Some(tag.to_string()),
            [tag] if weak_comparison => Some(tag.strong_twin().to_string()),
            _ => None,
        },
        EtagCondition::Malformed => None,
    }
}

/// After S3's 304: the 304 stands unless an If-Match or If-Unmodified-Since
/// that was not sent to S3 fails on the validators it returned, which comes
/// first in RFC 9110 §13.2.2.
fn after_not_modified(pre: &Preconditions, meta: ObjectMeta) -> Opened {
    match evaluate(pre, &meta.validators) {
        PreconditionOutcome::Failed => Opened::PreconditionFailed(Some(meta)),
        _ => Opened::NotModified(meta),
    }
}

fn meta_from_304(key: &ObjectKey, raw: Option<&HttpResponse>) -> ObjectMeta {
    let header = |name: &str| raw.and_then(|r| r.headers().get(name)).map(str::to_owned);
    ObjectMeta {
        size: 0,
        validators: Validators {
            etag: header("etag")
                .and_then(|v| EntityTag::parse(&v))
                .unwrap_or_else(|| EntityTag::strong("").expect("empty is a valid tag")),
            last_modified: header("last-modified").and_then(|v| httpdate::parse_http_date(&v).ok()),
        },
        content_type: object_content_type(key, header("content-type").as_deref()),
        cache_control: header("cache-control"),
    }
}

/// What GetObject and HeadObject say of an object.
fn object_meta(
    key: &ObjectKey,
    size: u64,
    e_tag: Option<&str>,
    last_modified: Option<&DateTime>,
    content_type: Option<&str>,
    cache_control: Option<&str>,
) -> Result<ObjectMeta, SourceError> {
    Ok(ObjectMeta {
        size,
        validators: Validators {
            etag: e_tag
                .and_then(EntityTag::parse)
                .ok_or_else(|| SourceError::Upstream("object without an ETag".into()))?,
            last_modified: last_modified.and_then(|t| SystemTime::try_from(*t).ok()),
        },
        content_type: object_content_type(key, content_type),
        cache_control: cache_control.map(str::to_owned),
    })
}

/// The object's own type unless it is a generic one, then by extension.
fn object_content_type(key: &ObjectKey, stored: Option<&str>) -> String {
    match stored {
        Some(stored) if !is_generic(stored) => stored.to_owned(),
        _ => content_type_for(key.file_name()),
    }
}

/// S3's InvalidRange error names the object's size.
fn actual_object_size(raw: Option<&HttpResponse>) -> Option<u64> {
    let body = std::str::from_utf8(raw?.body().bytes()?).ok()?;
    let start = body.find("<ActualObjectSize>")? + "<ActualObjectSize>".len();
    let end = start + body[start..].find('<')?;
    body[start..end].trim().parse().ok()
}

/// Maps an SDK failure (after its retries) to a source error; the details go
/// to the log, never to the client.
fn classify<E: std::error::Error + Send + Sync + 'static>(
    bucket: &str,
    key: &str,
    e: SdkError<E, HttpResponse>,
) -> SourceError {
    let status = e.raw_response().map(|r| r.status().as_u16());
    let error = match status {
        Some(404) => SourceError::NotFound,
        Some(403) => SourceError::Forbidden,
        Some(s) if s == 429 || s >= 500 => SourceError::Unavailable(format!("S3 answered {s}")),
        Some(s) => SourceError::Upstream(format!("S3 answered {s}")),
        None => match e {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
                SourceError::Unavailable("S3 could not be reached".into())
            }
            _ => SourceError::Upstream("S3 request failed".into()),
        },
    };
    if !matches!(error, SourceError::NotFound) {
        tracing::warn!(bucket, key, error = %DisplayErrorContext(&e), "S3 request failed");
    }
    error
}

/// The bytes of a GetObject body as they arrive.
fn byte_stream(body: ByteStream) -> BodyStream {
    Box::pin(
        futures_util::stream::try_unfold(body, |mut body| async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Ok(Some((chunk, body))),
                Ok(None) => Ok(None),
                Err(e) => Err(SourceError::Io(io::Error::other(e))),
            }
        })
        .boxed(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::range::RangeLimits;
    use http::{HeaderMap, HeaderValue};
    use std::time::UNIX_EPOCH;

    const LIMITS: RangeLimits = RangeLimits {
        open_ended_cap: 100,
        max_ranges: 8,
    };
    const DATE: &str = "Tue, 14 Nov 2023 22:13:20 GMT";

    fn plan(fields: &[(&'static str, &'static str)]) -> Option<GetPlan> {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        GetPlan::for_request(&ReadRequest::from_headers(
            ReadMethod::Get,
            &headers,
            LIMITS,
        ))
    }

    fn with(f: impl FnOnce(&mut GetPlan)) -> Option<GetPlan> {
        let mut plan = GetPlan::default();
        f(&mut plan);
        Some(plan)
    }

    #[test]
    fn plans_one_get_object() {
        let date = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        type Fields = &'static [(&'static str, &'static str)];
        let cases: Vec<(Fields, Option<GetPlan>)> = vec![
            (&[], with(|_| {})),
            (
                &[("range", "bytes=0-1")],
                with(|p| p.range = Some("bytes=0-1".into())),
            ),
            (
                &[("range", "bytes=10-")],
                with(|p| p.range = Some("bytes=10-109".into())),
            ),
            (
                &[("range", "bytes=-5")],
                with(|p| p.range = Some("bytes=-5".into())),
            ),
            (&[("range", "items=1-2")], with(|_| {})),
            (&[("range", "bytes=0-1,4-5")], None),
            (
                &[("if-none-match", "\"a\"")],
                with(|p| p.if_none_match = Some("\"a\"".into())),
            ),
            (
                &[("if-none-match", "W/\"a\"")],
                with(|p| p.if_none_match = Some("\"a\"".into())),
            ),
            (&[("if-none-match", "*")], None),
            (&[("if-match", "*")], with(|_| {})),
            (&[("if-none-match", "\"a\", \"b\"")], with(|_| {})),
            (
                &[("if-match", "\"a\"")],
                with(|p| p.if_match = Some("\"a\"".into())),
            ),
            (&[("if-match", "W/\"a\"")], with(|_| {})),
            (
                &[("if-modified-since", DATE)],
                with(|p| p.if_modified_since = Some(date)),
            ),
            (
                &[("if-unmodified-since", DATE)],
                with(|p| p.if_unmodified_since = Some(date)),
            ),
            (
                &[("if-none-match", "\"a\""), ("if-modified-since", DATE)],
                with(|p| p.if_none_match = Some("\"a\"".into())),
            ),
            (
                &[("if-match", "\"a\", \"b\""), ("if-unmodified-since", DATE)],
                with(|_| {}),
            ),
            (
                &[("range", "bytes=0-1"), ("if-range", "\"a\"")],
                with(|p| {
                    p.range = Some("bytes=0-1".into());
                    p.if_match = Some("\"a\"".into());
                    p.if_range_via_if_match = true;
                }),
            ),
            (
                &[
                    ("range", "bytes=0-1"),
                    ("if-range", "\"a\""),
                    ("if-match", "\"a\""),
                ],
                None,
            ),
            (
                &[
                    ("range", "bytes=0-1"),
                    ("if-range", "\"a\""),
                    ("if-unmodified-since", DATE),
                ],
                with(|p| {
                    p.range = Some("bytes=0-1".into());
                    p.if_match = Some("\"a\"".into());
                    p.if_range_via_if_match = true;
                }),
            ),
            (
                &[("range", "bytes=0-1"), ("if-range", "W/\"a\"")],
                with(|_| {}),
            ),
            (&[("range", "bytes=0-1"), ("if-range", DATE)], None),
            (&[("if-range", DATE)], with(|_| {})),
        ];
        for (fields, expected) in cases {
            assert_eq!(plan(fields), expected, "{fields:?}");
        }
    }

    #[test]
    fn reads_the_size_from_invalid_range() {
        let body = "<?xml version=\"1.0\"?><Error><Code>InvalidRange</Code><ActualObjectSize>10240</ActualObjectSize></Error>";
        let raw = HttpResponse::new(
            aws_smithy_runtime_api::http::StatusCode::try_from(416).unwrap(),
            aws_sdk_s3::primitives::SdkBody::from(body),
        );
        assert_eq!(actual_object_size(Some(&raw)), Some(10240));
    }
}
