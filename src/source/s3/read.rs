//! Reading one object: a conditional GetObject that carries a plan, a
//! HeadObject that describes, and reads pinned to the version described.

use std::sync::Arc;
use std::time::SystemTime;

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::Client;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use futures_util::TryStreamExt;

use super::errors::{actual_object_size, byte_stream, classify, status_of};
use super::S3Source;
use crate::protocol::conditional::{EntityTag, Validators};
use crate::protocol::decision::Refusal;
use crate::protocol::delegation::FetchPlan;
use crate::protocol::description::Description;
use crate::protocol::key::ObjectKey;
use crate::protocol::media_type::{content_type_for, is_generic};
use crate::protocol::range::{parse_content_range, ByteRange};
use crate::representation::{BodyStream, Opened, RangeReader, SourceError, Started};

impl S3Source {
    /// One GetObject carrying the plan's range and conditions.
    pub(super) async fn fetch(
        &self,
        key: &ObjectKey,
        plan: &FetchPlan,
    ) -> Result<Opened, SourceError> {
        let full = self.full_key(key);
        let sent = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .set_range(plan.range_field())
            .set_if_match(plan.if_match.as_ref().map(ToString::to_string))
            .set_if_none_match(plan.if_none_match.as_ref().map(ToString::to_string))
            .set_if_modified_since(plan.if_modified_since.map(DateTime::from))
            .set_if_unmodified_since(plan.if_unmodified_since.map(DateTime::from))
            .send()
            .await;
        let output = match sent {
            Ok(output) => output,
            Err(e) => {
                return match status_of(&e) {
                    Some(304) => Ok(Opened::Refused {
                        refusal: Refusal::NotModified,
                        description: Some(described_by_304(key, e.raw_response())),
                    }),
                    Some(412) => Ok(Opened::Refused {
                        refusal: Refusal::PreconditionFailed,
                        description: None,
                    }),
                    Some(416) => {
                        let size = match actual_object_size(e.raw_response()) {
                            Some(size) => size,
                            None => self.head(key).await?.size,
                        };
                        Ok(Opened::Refused {
                            refusal: Refusal::RangeNotSatisfiable { size },
                            description: None,
                        })
                    }
                    _ => Err(classify(&self.bucket, &full, e)),
                };
            }
        };
        let content_range = output.content_range().and_then(parse_content_range);
        let size = match content_range {
            Some((_, size)) => size,
            None => u64::try_from(output.content_length().unwrap_or(0)).unwrap_or(0),
        };
        let description = describe(
            key,
            size,
            output.e_tag(),
            output.last_modified(),
            output.content_type(),
            output.cache_control(),
        )?;
        Ok(Opened::Found {
            reader: self.reader_pinned_to(&full, description.etag()),
            description,
            started: Some(Started {
                range: content_range.map(|(range, _)| range),
                body: byte_stream(output.body),
            }),
        })
    }

    /// One HeadObject.
    pub(super) async fn describe(&self, key: &ObjectKey) -> Result<Opened, SourceError> {
        let description = self.head(key).await?;
        Ok(Opened::Found {
            reader: self.reader_pinned_to(&self.full_key(key), description.etag()),
            description,
            started: None,
        })
    }

    async fn head(&self, key: &ObjectKey) -> Result<Description, SourceError> {
        let full = self.full_key(key);
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| classify(&self.bucket, &full, e))?;
        describe(
            key,
            u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0),
            head.e_tag(),
            head.last_modified(),
            head.content_type(),
            head.cache_control(),
        )
    }

    pub(super) fn reader_pinned_to(
        &self,
        full_key: &str,
        etag: &EntityTag,
    ) -> Arc<dyn RangeReader> {
        Arc::new(PinnedReader {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: full_key.to_owned(),
            etag: etag.to_string(),
        })
    }
}

/// Reads ranges of one version of an object: each GetObject carries
/// `If-Match` with the version's ETag, so parts never mix versions.
struct PinnedReader {
    client: Client,
    bucket: String,
    key: String,
    etag: String,
}

impl RangeReader for PinnedReader {
    fn read(&self, range: ByteRange) -> BodyStream {
        let get = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .if_match(&self.etag)
            .range(format!("bytes={range}"));
        let (bucket, key) = (self.bucket.clone(), self.key.clone());
        let response = async move {
            match get.send().await {
                Ok(output) => Ok(byte_stream(output.body)),
                Err(e) if status_of(&e) == Some(412) => Err(SourceError::Changed),
                Err(e) => Err(classify(&bucket, &key, e)),
            }
        };
        Box::pin(futures_util::stream::once(response).try_flatten())
    }
}

/// The validators S3's 304 sends (it sends no size or body).
fn described_by_304(key: &ObjectKey, raw: Option<&HttpResponse>) -> Description {
    let header = |name: &str| raw.and_then(|r| r.headers().get(name)).map(str::to_owned);
    Description {
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
fn describe(
    key: &ObjectKey,
    size: u64,
    e_tag: Option<&str>,
    last_modified: Option<&DateTime>,
    content_type: Option<&str>,
    cache_control: Option<&str>,
) -> Result<Description, SourceError> {
    Ok(Description {
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
