//! Where rendered derivatives are kept, so that the next request for one is
//! a plain read: a local directory (`MEDIA_DERIVED_DIR`) or a prefix of the
//! served bucket (`MEDIA_DERIVED_PREFIX`, through `source::s3::Bucket`).
//!
//! Each stored derivative carries the validators of the source version it
//! was rendered from, so its ETag is the same whether it was just rendered or
//! read back, and a changed source is noticed.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::representation::SourceError;
use crate::source::s3::{Bucket, WholeObject};

/// What is kept of one derivative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDerivative {
    pub bytes: Bytes,
    pub content_type: String,
    /// The ETag of the source version it was rendered from, as sent.
    pub source_etag: String,
    pub source_last_modified: Option<SystemTime>,
}

/// A derived store.
#[derive(Clone, Debug)]
pub enum DerivedStore {
    /// Files under a directory: the bytes at `NAME`, and what describes them
    /// at `NAME.meta`, each written whole and renamed into place.
    Dir(PathBuf),
    /// Objects under a prefix of a bucket, with the source's validators as
    /// user metadata.
    S3 { bucket: Bucket, prefix: String },
}

const META_SOURCE_ETAG: &str = "source-etag";
const META_SOURCE_MODIFIED: &str = "source-modified";

impl DerivedStore {
    /// Whether a stored derivative is checked against its source on every
    /// read (a `stat` costs nothing) or only now and then (a HeadObject is a
    /// round trip of its own).
    pub fn checks_source_every_read(&self) -> bool {
        matches!(self, DerivedStore::Dir(_))
    }

    /// The derivative stored under `name`, if there is one.
    pub async fn get(&self, name: &str) -> Result<Option<StoredDerivative>, SourceError> {
        match self {
            DerivedStore::Dir(root) => {
                let (bytes, meta) = (root.join(name), root.join(format!("{name}.meta")));
                tokio::task::spawn_blocking(move || {
                    let meta = match std::fs::read_to_string(meta) {
                        Ok(meta) => meta,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                        Err(e) => return Err(SourceError::Io(e)),
                    };
                    let mut lines = meta.lines();
                    let (Some(content_type), Some(source_etag), Some(modified)) =
                        (lines.next(), lines.next(), lines.next())
                    else {
                        return Ok(None);
                    };
                    let bytes = match std::fs::read(bytes) {
                        Ok(bytes) => Bytes::from(bytes),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                        Err(e) => return Err(SourceError::Io(e)),
                    };
                    Ok(Some(StoredDerivative {
                        bytes,
                        content_type: content_type.to_owned(),
                        source_etag: source_etag.to_owned(),
                        source_last_modified: from_secs(modified),
                    }))
                })
                .await
                .map_err(|e| SourceError::Io(io::Error::other(e)))?
            }
            DerivedStore::S3 { bucket, prefix } => {
                let object = match bucket.get(&format!("{prefix}{name}")).await {
                    Ok(Some(object)) => object,
                    Ok(None) => return Ok(None),
                    // A store that cannot be read is a miss: the derivative
                    // is rendered.
                    Err(SourceError::Upstream(e)) => {
                        tracing::warn!(name, error = e, "reading a stored derivative failed");
                        return Ok(None);
                    }
                    Err(e) => return Err(e),
                };
                let Some(source_etag) = object.metadata.get(META_SOURCE_ETAG).cloned() else {
                    return Ok(None);
                };
                Ok(Some(StoredDerivative {
                    source_last_modified: object
                        .metadata
                        .get(META_SOURCE_MODIFIED)
                        .and_then(|v| from_secs(v)),
                    bytes: object.bytes,
                    content_type: object.content_type,
                    source_etag,
                }))
            }
        }
    }

    /// Keeps `derivative` under `name`, replacing what was there.
    pub async fn put(&self, name: &str, derivative: &StoredDerivative) -> Result<(), SourceError> {
        let modified = derivative
            .source_last_modified
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or_else(|| "-".to_owned(), |d| d.as_secs().to_string());
        match self {
            DerivedStore::Dir(root) => {
                let (path, meta_path) = (root.join(name), root.join(format!("{name}.meta")));
                let meta = format!(
                    "{}\n{}\n{modified}\n",
                    derivative.content_type, derivative.source_etag
                );
                let bytes = derivative.bytes.clone();
                tokio::task::spawn_blocking(move || -> io::Result<()> {
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    write_whole(&path, &bytes)?;
                    write_whole(&meta_path, meta.as_bytes())
                })
                .await
                .map_err(|e| SourceError::Io(io::Error::other(e)))?
                .map_err(SourceError::Io)
            }
            DerivedStore::S3 { bucket, prefix } => {
                let object = WholeObject {
                    bytes: derivative.bytes.clone(),
                    content_type: derivative.content_type.clone(),
                    cache_control: None,
                    metadata: [
                        (META_SOURCE_ETAG.to_owned(), derivative.source_etag.clone()),
                        (META_SOURCE_MODIFIED.to_owned(), modified),
                    ]
                    .into(),
                };
                bucket.put(&format!("{prefix}{name}"), &object).await
            }
        }
    }

    /// Forgets the derivative stored under `name` (its source changed).
    pub async fn remove(&self, name: &str) -> Result<(), SourceError> {
        match self {
            DerivedStore::Dir(root) => {
                let meta = root.join(format!("{name}.meta"));
                match tokio::fs::remove_file(meta).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(SourceError::Io(e)),
                }
            }
            DerivedStore::S3 { bucket, prefix } => bucket.delete(&format!("{prefix}{name}")).await,
        }
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into
/// place, so a reader sees the old file or the new one, never half of one.
fn write_whole(path: &std::path::Path, bytes: &[u8]) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

fn from_secs(text: &str) -> Option<SystemTime> {
    text.parse::<u64>()
        .ok()
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
}
