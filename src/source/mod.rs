//! Where stored objects come from: a trait the pipeline reads through, and
//! its implementations. A source describes an object and reads its byte
//! ranges; it decides nothing about the HTTP answer (`protocol::decision`
//! does, once, for every source).

use std::sync::Arc;

use async_trait::async_trait;

use crate::protocol::decision::ReadMethod;
use crate::protocol::delegation::{StoreCapabilities, StorePlan};
use crate::protocol::description::Description;
use crate::protocol::key::ObjectKey;
use crate::representation::{Opened, Representation, SourceError};
use listing::Listing;

pub mod dir;
pub mod listing;
pub mod s3;

/// A store of objects.
#[async_trait]
pub trait Source: Send + Sync + 'static {
    /// Which conditions this store evaluates itself
    /// (`protocol::delegation`'s table).
    fn capabilities(&self) -> StoreCapabilities;

    /// Carries out `plan` for the object at `key` in one round trip: a
    /// description (and a reader pinned to that version), or the store's own
    /// answer to the conditions it was given.
    async fn open(&self, key: &ObjectKey, plan: &StorePlan) -> Result<Opened, SourceError>;

    /// A reader of the version `description` describes, made without a
    /// round trip, where the store can pin reads to a version itself (S3's
    /// `If-Match`): a read of a version that is gone fails with
    /// [`SourceError::Changed`]. `None` where the object must be opened.
    fn pinned_reader(
        &self,
        _key: &ObjectKey,
        _description: &Description,
    ) -> Option<Arc<dyn crate::representation::RangeReader>> {
        None
    }

    /// Where a client can fetch the whole object itself with `method` when it
    /// is too large for one response, if anywhere.
    async fn elsewhere(
        &self,
        _key: &ObjectKey,
        _description: &Description,
        _method: ReadMethod,
    ) -> Result<Option<String>, SourceError> {
        Ok(None)
    }

    /// Lists what lies directly under `prefix` (empty for the root, else
    /// ending in `/`): objects and sub-directories, in name order, the names
    /// after `after`, at most `limit` of them. A prefix with nothing under it is
    /// `NotFound`, the root excepted.
    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Listing, SourceError>;
}

/// A stored object, served as it is stored.
pub(crate) struct StoredObject {
    pub source: Arc<dyn Source>,
    pub key: ObjectKey,
}

#[async_trait]
impl Representation for StoredObject {
    fn capabilities(&self) -> StoreCapabilities {
        self.source.capabilities()
    }

    async fn open(&self, plan: &StorePlan) -> Result<Opened, SourceError> {
        self.source.open(&self.key, plan).await
    }

    async fn elsewhere(
        &self,
        description: &Description,
        method: ReadMethod,
    ) -> Result<Option<String>, SourceError> {
        self.source.elsewhere(&self.key, description, method).await
    }
}
