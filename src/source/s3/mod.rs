//! Objects from an S3 bucket (or any S3-compatible store).
//!
//! A plain, single-range or conditional GET is one GetObject carrying the
//! range and the conditions that `protocol::delegation` hands to S3; the
//! decision is then made on the validators it returns. Other requests are
//! described with HeadObject first, and each range read after is pinned to
//! the ETag described, so parts never mix versions.

use async_trait::async_trait;
use aws_sdk_s3::Client;

use super::listing::Listing;
use super::Source;
use crate::protocol::decision::ReadMethod;
use crate::protocol::delegation::{StoreCapabilities, StorePlan};
use crate::protocol::description::Description;
use crate::protocol::key::ObjectKey;
use crate::representation::{Opened, RangeReader, SourceError};
use std::sync::Arc;

mod client;
mod errors;
mod list;
mod objects;
mod read;

pub use client::{http_client, PresignPolicy};
pub use objects::{Bucket, WholeObject};

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
}

#[async_trait]
impl Source for S3Source {
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities::ConditionalRead
    }

    async fn open(&self, key: &ObjectKey, plan: &StorePlan) -> Result<Opened, SourceError> {
        match plan {
            StorePlan::Describe => self.describe(key).await,
            StorePlan::Fetch(plan) => self.fetch(key, plan).await,
        }
    }

    fn pinned_reader(
        &self,
        key: &ObjectKey,
        description: &Description,
    ) -> Option<Arc<dyn RangeReader>> {
        Some(self.reader_pinned_to(&self.full_key(key), description.etag()))
    }

    async fn elsewhere(
        &self,
        key: &ObjectKey,
        description: &Description,
        method: ReadMethod,
    ) -> Result<Option<String>, SourceError> {
        match self.presign.filter(|p| description.size > p.above_bytes) {
            Some(policy) => {
                let url = client::presigned(
                    &self.client,
                    &self.bucket,
                    &self.full_key(key),
                    method,
                    policy,
                )
                .await?;
                Ok(Some(url))
            }
            None => Ok(None),
        }
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Listing, SourceError> {
        self.list_page(prefix, after, limit).await
    }
}
