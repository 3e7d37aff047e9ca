//! Whole objects by key, for what this server keeps in a bucket itself (the
//! derived store): one GetObject, PutObject or DeleteObject each, the bytes
//! in memory, and the keys under a prefix (one ListObjectsV2 page). Served objects are read by range in `read.rs`, never whole.

use std::collections::HashMap;
use std::io;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use bytes::Bytes;

use super::errors::status_of;
use crate::representation::SourceError;

/// One bucket, its objects read and written whole by key.
#[derive(Clone, Debug)]
pub struct Bucket {
    client: Client,
    name: String,
}

/// An object as it is written and read back whole: its bytes, the headers
/// S3 keeps with it, and its user metadata (`x-amz-meta-*`, names in
/// lower case).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WholeObject {
    pub bytes: Bytes,
    pub content_type: String,
    pub cache_control: Option<String>,
    pub metadata: HashMap<String, String>,
}

impl Bucket {
    pub fn new(client: Client, name: &str) -> Self {
        Bucket {
            client,
            name: name.to_owned(),
        }
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The object at `key`, or `None` where there is none (404). A failed
    /// request is `Upstream`, with the SDK's whole story for the log; a body
    /// cut short is `Io`.
    pub async fn get(&self, key: &str) -> Result<Option<WholeObject>, SourceError> {
        let sent = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await;
        let output = match sent {
            Ok(output) => output,
            Err(e) if status_of(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(self.failed("GetObject", key, &e)),
        };
        let content_type = output.content_type().unwrap_or_default().to_owned();
        let cache_control = output.cache_control().map(str::to_owned);
        let metadata = output.metadata().cloned().unwrap_or_default();
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| SourceError::Io(io::Error::other(e)))?
            .into_bytes();
        Ok(Some(WholeObject {
            bytes,
            content_type,
            cache_control,
            metadata,
        }))
    }

    /// Writes `object` at `key`, replacing what was there.
    pub async fn put(&self, key: &str, object: &WholeObject) -> Result<(), SourceError> {
        self.client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .content_type(&object.content_type)
            .set_cache_control(object.cache_control.clone())
            .set_metadata(Some(object.metadata.clone()))
            .body(ByteStream::from(object.bytes.clone()))
            .send()
            .await
            .map_err(|e| self.failed("PutObject", key, &e))?;
        Ok(())
    }

    /// Deletes the object at `key`; one already gone is no failure.
    pub async fn delete(&self, key: &str) -> Result<(), SourceError> {
        self.client
            .delete_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
            .map_err(|e| self.failed("DeleteObject", key, &e))?;
        Ok(())
    }

    /// The keys that start with `prefix`, at most 1,000 (one
    /// ListObjectsV2 page).
    pub async fn keys_starting(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        let output = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .prefix(prefix)
            .send()
            .await
            .map_err(|e| self.failed("ListObjectsV2", prefix, &e))?;
        Ok(output
            .contents()
            .iter()
            .filter_map(|object| object.key().map(str::to_owned))
            .collect())
    }

    fn failed(
        &self,
        operation: &str,
        key: &str,
        e: &(dyn std::error::Error + 'static),
    ) -> SourceError {
        SourceError::Upstream(format!(
            "{operation} {}/{key}: {}",
            self.name,
            DisplayErrorContext(e)
        ))
    }
}
