//! What the pipeline serves: a representation, described (size, strong
//! validator, modified time, type) and read by byte ranges. A stored object
//! is one; bytes computed from a stored object are another. The pipeline
//! decides every answer on the description alone (`protocol::decision`), so a
//! new kind of representation needs no HTTP code of its own.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

use crate::protocol::decision::{ReadMethod, Refusal};
use crate::protocol::delegation::{StoreCapabilities, StorePlan};
use crate::protocol::description::Description;
use crate::protocol::range::ByteRange;

/// The bytes of one byte range, in order, as they are read.
pub(crate) type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, SourceError>> + Send>>;

/// Reads byte ranges of one version of a representation: the one its
/// description describes. A read of a version that is gone fails with
/// [`SourceError::Changed`]; it never mixes versions.
pub trait RangeReader: Send + Sync {
    /// The bytes of `range`, lazily: nothing is read until the stream is polled.
    fn read(&self, range: ByteRange) -> BodyStream;
}

/// Runs `work` (file-system calls, or CPU work such as parsing a movie's
/// index) on the blocking pool, off the event loops; a panic in it is an
/// `Io` failure of the request, not of the process.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SourceError::Io(std::io::Error::other(e)))?
}

/// The `len` bytes of `reader` at `offset`, all of them, in memory; fewer or
/// more than that is [`SourceError::Changed`] (the version read is not the
/// one described).
pub(crate) async fn read_exact(
    reader: &dyn RangeReader,
    offset: u64,
    len: u64,
) -> Result<Bytes, SourceError> {
    use futures_util::StreamExt;
    let Some(last) = len.checked_sub(1).and_then(|n| offset.checked_add(n)) else {
        return Ok(Bytes::new());
    };
    let mut stream = reader.read(ByteRange {
        first: offset,
        last,
    });
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 20));
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk?);
        if bytes.len() as u64 > len {
            break;
        }
    }
    if bytes.len() as u64 != len {
        return Err(SourceError::Changed);
    }
    Ok(Bytes::from(bytes))
}

/// Bytes a conditional read already started: the whole representation
/// (`range` is `None`) or one range of it.
pub struct Started {
    pub range: Option<ByteRange>,
    pub body: BodyStream,
}

/// A store's answer to a [`StorePlan`].
pub enum Opened {
    /// The representation, and whatever conditions the store was given held.
    Found {
        description: Description,
        reader: Arc<dyn RangeReader>,
        /// What a `Fetch` plan's read already sends.
        started: Option<Started>,
    },
    /// The store's own 304, 412 or 416 to the conditions or range it was
    /// given: final, as `protocol::delegation` hands a store only what it
    /// answers exactly. `description` holds what the answer told of the
    /// representation (a 304's validators), if anything.
    Refused {
        refusal: Refusal,
        description: Option<Description>,
    },
}

/// Something the pipeline can serve.
#[async_trait]
pub(crate) trait Representation: Send + Sync {
    /// Which conditions the store behind it evaluates itself.
    fn capabilities(&self) -> StoreCapabilities;

    /// Carries out `plan` with one round trip to the store.
    async fn open(&self, plan: &StorePlan) -> Result<Opened, SourceError>;

    /// Where a client can fetch the whole representation itself when it is too
    /// large for one response (a presigned URL), if anywhere: a URL for
    /// `method`, since a 307 repeats the request's method there (RFC 9110
    /// §15.4.8).
    async fn elsewhere(
        &self,
        _description: &Description,
        _method: ReadMethod,
    ) -> Result<Option<String>, SourceError> {
        Ok(None)
    }
}

/// Failures of whatever produces a representation's bytes; the service maps
/// each to a status in one place.
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
    /// The object cannot be turned into the representation asked for (an
    /// image too large, corrupt or of a kind the engine does not read); the
    /// text is the reason the client is told.
    #[error("{0}")]
    Unprocessable(String),
    /// The object is of a kind the representation asked for is not made from
    /// (a video frame of a codec not decoded); the text names it.
    #[error("{0}")]
    Unsupported(String),
    /// The server has more of this work under way than it takes on (a full
    /// render queue, a render past its deadline); `reason` is what the client
    /// is told, and it may ask again after `retry_after_secs`.
    #[error("{reason}")]
    Busy {
        reason: String,
        retry_after_secs: u32,
    },
}
