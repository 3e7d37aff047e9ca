//! Listing a bucket under a prefix, one page per ListObjectsV2.

use super::errors::classify;
use super::S3Source;
use crate::representation::SourceError;
use crate::source::listing::{ListEntry, Listing};

impl S3Source {
    /// One ListObjectsV2 with `/` as delimiter: the keys under the prefix are
    /// the objects, the common prefixes the sub-directories.
    pub(super) async fn list_page(
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
