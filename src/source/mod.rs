//! Where objects come from: a trait the pipeline reads through, and its
//! implementations.

use std::pin::Pin;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

use crate::protocol::conditional::{EntityTag, Validators};
use crate::protocol::index::Listing;
use crate::protocol::key::ObjectKey;
use crate::protocol::plan::{Decision, ReadMethod, ReadRequest};
use crate::protocol::range::{ByteRange, Selection};

pub mod dir;
pub mod s3;

/// The bytes of one byte range, in order, as they are read.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, SourceError>> + Send>>;

/// What a source knows of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: u64,
    pub validators: Validators,
    pub content_type: String,
    /// The object's own Cache-Control, if its store keeps one.
    pub cache_control: Option<String>,
}

impl ObjectMeta {
    pub fn etag(&self) -> &EntityTag {
        &self.validators.etag
    }

    pub fn last_modified(&self) -> Option<SystemTime> {
        self.validators.last_modified
    }
}

/// The answer a source gives to a [`ReadRequest`].
pub enum Opened {
    /// Bytes to send: one stream per range of the selection (one for `Whole`),
    /// none for a HEAD or an empty object.
    Content {
        meta: ObjectMeta,
        selection: Selection,
        bodies: Vec<BodyStream>,
    },
    NotModified(ObjectMeta),
    /// 412, with the current validators when the store gave them.
    PreconditionFailed(Option<ObjectMeta>),
    RangeNotSatisfiable {
        size: u64,
    },
    /// 307 to where the client can fetch the object itself (an object too large
    /// for one response, at a presigned URL).
    Redirect {
        location: String,
    },
}

impl Opened {
    /// Turns a [`Decision`] into an answer, asking `read` for the bytes of each
    /// range that will be sent. Streams are lazy: nothing is read until polled.
    pub fn from_decision(
        decision: Decision,
        meta: ObjectMeta,
        request: &ReadRequest,
        mut read: impl FnMut(ByteRange) -> BodyStream,
    ) -> Self {
        match decision {
            Decision::NotModified => Opened::NotModified(meta),
            Decision::PreconditionFailed => Opened::PreconditionFailed(Some(meta)),
            Decision::RangeNotSatisfiable => Opened::RangeNotSatisfiable { size: meta.size },
            Decision::Send(selection) => {
                let bodies = if request.method == ReadMethod::Head {
                    Vec::new()
                } else {
                    match &selection {
                        Selection::Whole => ByteRange::whole(meta.size)
                            .map(&mut read)
                            .into_iter()
                            .collect(),
                        Selection::Single(range) => vec![read(*range)],
                        Selection::Multi(ranges) => ranges.iter().map(|r| read(*r)).collect(),
                    }
                };
                Opened::Content {
                    meta,
                    selection,
                    bodies,
                }
            }
        }
    }
}

/// A source of objects.
#[async_trait]
pub trait Source: Send + Sync + 'static {
    /// Describes the object at `key`, decides the answer to `request` (with
    /// [`crate::protocol::plan::decide`] or by letting the store evaluate the
    /// same rules) and opens the bytes to send, with as few round trips to the
    /// store as it can.
    async fn open(&self, key: &ObjectKey, request: &ReadRequest) -> Result<Opened, SourceError>;

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

/// Failures of a source; the service maps each to a status in one place.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("no such object")]
    NotFound,
    #[error("access denied")]
    Forbidden,
    #[error("the object changed while it was being read")]
    Changed,
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
    /// The store is throttling, failing or out of reach (after retries).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered in a way that cannot be served.
    #[error("store error: {0}")]
    Upstream(String),
}
