//! Where rendered derivatives are kept, so that the next request for one is
//! a plain read: a local directory (`MEDIA_DERIVED_DIR`) or a prefix of the
//! served bucket (`MEDIA_DERIVED_PREFIX`, through `source::s3::Bucket`).
//!
//! Each stored derivative carries the validators of the source version it
//! was rendered from, so its ETag is the same whether it was just rendered or
//! read back, and a changed source is noticed; and the Cache-Control it is
//! served with.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::representation::{blocking, SourceError};
use crate::source::s3::{Bucket, WholeObject};

/// What is kept of one derivative.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDerivative {
    pub bytes: Bytes,
    pub content_type: String,
    /// The ETag of the source version it was rendered from, as sent.
    pub source_etag: String,
    pub source_last_modified: Option<SystemTime>,
    /// The Cache-Control it is served with; `None` where none was kept.
    pub cache_control: Option<String>,
}

/// A derived store.
#[derive(Clone, Debug)]
pub enum DerivedStore {
    /// Files under a directory: the bytes at `NAME`, and what describes them
    /// at `NAME.meta` (with the bytes' length and SHA-256), each written
    /// whole and renamed into place.
    Dir(PathBuf),
    /// Objects under a prefix of a bucket: the Content-Type and
    /// Cache-Control as the object's own, the source's validators as user
    /// metadata.
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
                let (bytes, meta) = (root.join(name), meta_path(root, name));
                blocking(move || read_pair(&bytes, &meta)).await
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
                    cache_control: object.cache_control,
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
                let meta = DirMeta::of(derivative, &modified)?;
                let (path, meta_path) = (root.join(name), meta_path(root, name));
                let bytes = derivative.bytes.clone();
                blocking(move || {
                    write_pair(&path, &bytes, &meta_path, &meta).map_err(SourceError::Io)
                })
                .await
            }
            DerivedStore::S3 { bucket, prefix } => {
                let object = WholeObject {
                    bytes: derivative.bytes.clone(),
                    content_type: derivative.content_type.clone(),
                    cache_control: derivative.cache_control.clone(),
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
                // The meta first: without it the bytes are never read.
                for path in [meta_path(root, name), root.join(name)] {
                    match tokio::fs::remove_file(path).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(SourceError::Io(e)),
                    }
                }
                Ok(())
            }
            DerivedStore::S3 { bucket, prefix } => bucket.delete(&format!("{prefix}{name}")).await,
        }
    }

    /// The names of the derivatives stored that start with `start` (at most
    /// 1,000 on S3): in a directory, the files of `start`'s directory whose
    /// names start with the rest, their `.meta` and temporary files left
    /// out.
    pub async fn names_starting(&self, start: &str) -> Result<Vec<String>, SourceError> {
        match self {
            DerivedStore::Dir(root) => {
                let (dir, file_start) = start.rsplit_once('/').unwrap_or(("", start));
                let (path, dir, file_start) =
                    (root.join(dir), dir.to_owned(), file_start.to_owned());
                blocking(move || {
                    let entries = match std::fs::read_dir(path) {
                        Ok(entries) => entries,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                        Err(e) => return Err(SourceError::Io(e)),
                    };
                    Ok(entries
                        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                        .filter(|file| {
                            file.starts_with(&file_start)
                                && !file.ends_with(".meta")
                                && !file.ends_with(".tmp")
                        })
                        .map(|file| {
                            if dir.is_empty() {
                                file
                            } else {
                                format!("{dir}/{file}")
                            }
                        })
                        .collect())
                })
                .await
            }
            DerivedStore::S3 { bucket, prefix } => {
                let keys = bucket.keys_starting(&format!("{prefix}{start}")).await?;
                Ok(keys
                    .into_iter()
                    .filter_map(|key| key.strip_prefix(prefix.as_str()).map(str::to_owned))
                    .collect())
            }
        }
    }
}

fn meta_path(root: &Path, name: &str) -> PathBuf {
    root.join(format!("{name}.meta"))
}

/// A directory store's `.meta`, one line each: the content type, the
/// source's ETag, its modified time (seconds, or `-`), the Cache-Control
/// (empty for none), and the bytes' length and SHA-256 in hex. A meta of
/// the first three lines only (written before the other two were) is read
/// with no Cache-Control and its bytes unchecked.
struct DirMeta(String);

impl DirMeta {
    fn of(derivative: &StoredDerivative, modified: &str) -> Result<Self, SourceError> {
        let cache_control = derivative.cache_control.as_deref().unwrap_or_default();
        let lines = [
            &derivative.content_type,
            &derivative.source_etag,
            cache_control,
        ];
        if lines.iter().any(|line| line.contains(['\n', '\r'])) {
            return Err(SourceError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a stored derivative's description has a line break",
            )));
        }
        Ok(DirMeta(format!(
            "{}\n{}\n{modified}\n{cache_control}\n{} {}\n",
            derivative.content_type,
            derivative.source_etag,
            derivative.bytes.len(),
            sha256_hex(&derivative.bytes),
        )))
    }

    /// The derivative described, with `bytes`; `None` if the meta is cut
    /// short or describes other bytes than these.
    fn read(&self, bytes: Bytes) -> Option<StoredDerivative> {
        let mut lines = self.0.lines();
        let (content_type, source_etag, modified) = (lines.next()?, lines.next()?, lines.next()?);
        let cache_control = lines.next().filter(|line| !line.is_empty());
        if let Some(digest) = lines.next() {
            if digest != format!("{} {}", bytes.len(), sha256_hex(&bytes)) {
                return None;
            }
        }
        Some(StoredDerivative {
            bytes,
            content_type: content_type.to_owned(),
            source_etag: source_etag.to_owned(),
            source_last_modified: from_secs(modified),
            cache_control: cache_control.map(str::to_owned),
        })
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Held while a pair of files is renamed into place, so that two writes of
/// one name in this process never leave the bytes of one and the meta of
/// the other. Only the renames are under it, not the writes.
static RENAMING: Mutex<()> = Mutex::new(());

/// Writes the bytes and the meta of one derivative, each to a temporary
/// file of its own, then renames both into place, the meta last.
fn write_pair(path: &Path, bytes: &[u8], meta_path: &Path, meta: &DirMeta) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let (bytes_temporary, meta_temporary) = (temporary_beside(path), temporary_beside(meta_path));
    let written = std::fs::write(&bytes_temporary, bytes)
        .and_then(|()| std::fs::write(&meta_temporary, meta.0.as_bytes()))
        .and_then(|()| {
            let _renaming = RENAMING.lock().unwrap_or_else(PoisonError::into_inner);
            std::fs::rename(&bytes_temporary, path)?;
            std::fs::rename(&meta_temporary, meta_path)
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&bytes_temporary);
        let _ = std::fs::remove_file(&meta_temporary);
    }
    written
}

/// Reads a derivative's meta, then its bytes. A pair that does not match
/// (a write in another process was between its two renames) is read once
/// more, then taken as none.
fn read_pair(bytes_path: &Path, meta_path: &Path) -> Result<Option<StoredDerivative>, SourceError> {
    for _ in 0..2 {
        let meta = match std::fs::read_to_string(meta_path) {
            Ok(meta) => DirMeta(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SourceError::Io(e)),
        };
        let bytes = match std::fs::read(bytes_path) {
            Ok(bytes) => Bytes::from(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(SourceError::Io(e)),
        };
        if let Some(stored) = meta.read(bytes) {
            return Ok(Some(stored));
        }
    }
    Ok(None)
}

/// Writes made by this process, numbering their temporary files.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// A name beside `path` that no other write uses: this process's id and
/// the number of this write in it.
fn temporary_beside(path: &Path) -> PathBuf {
    let mut temporary = path.as_os_str().to_owned();
    let number = WRITES.fetch_add(1, Ordering::Relaxed);
    temporary.push(format!(".{}-{number}.tmp", std::process::id()));
    PathBuf::from(temporary)
}

fn from_secs(text: &str) -> Option<SystemTime> {
    text.parse::<u64>()
        .ok()
        .map(|secs| UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// The derivative that write number `n` of a test keeps: bytes, a
    /// length and a description of its own, so that a read back tells
    /// which write it came from and whether its parts belong together.
    fn written(n: usize) -> StoredDerivative {
        StoredDerivative {
            bytes: Bytes::from(vec![n as u8; 1000 + 37 * n]),
            content_type: "image/webp".into(),
            source_etag: format!("\"v{n}\""),
            source_last_modified: Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000 + n as u64)),
            cache_control: (n % 2 == 0).then(|| format!("public, max-age={n}")),
        }
    }

    /// Which write `stored` is, if it is one whole.
    fn which(stored: &StoredDerivative) -> Option<usize> {
        let n: usize = stored
            .source_etag
            .trim_matches('"')
            .strip_prefix('v')?
            .parse()
            .ok()?;
        (*stored == written(n)).then_some(n)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_puts_read_back_whole_and_consistent() {
        let root = tempfile::tempdir().unwrap();
        let store = Arc::new(DerivedStore::Dir(root.path().join("derived")));
        let names = ["a/one.jpg/w=32", "a/two.jpg/w=32", "b/three.png/w=64"];
        // 96 puts: 32 of each name, at once, with readers alongside.
        let mut tasks = Vec::new();
        for n in 0..96 {
            let store = Arc::clone(&store);
            let name = names[n % names.len()];
            tasks.push(tokio::spawn(async move {
                store.put(name, &written(n)).await.unwrap();
                let read = store.get(name).await.unwrap();
                if let Some(read) = read {
                    let from = which(&read);
                    assert!(from.is_some_and(|w| w % names.len() == n % names.len()));
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        for (i, name) in names.iter().enumerate() {
            let read = store.get(name).await.unwrap().expect(name);
            let from = which(&read).unwrap_or_else(|| panic!("{name}: a mixed pair"));
            assert_eq!(from % names.len(), i, "{name}");
        }
        // No temporary file is left behind.
        let mut left = vec![root.path().join("derived")];
        while let Some(dir) = left.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                assert!(!path.to_string_lossy().ends_with(".tmp"), "{path:?}");
                if path.is_dir() {
                    left.push(path);
                }
            }
        }
    }

    #[tokio::test]
    async fn keeps_its_description_and_cache_control() {
        let root = tempfile::tempdir().unwrap();
        let store = DerivedStore::Dir(root.path().to_owned());
        // (written, what the meta's fourth line is)
        for (derivative, line) in [
            (written(2), "public, max-age=2"),
            (written(3), ""),
            (
                StoredDerivative {
                    source_last_modified: None,
                    ..written(4)
                },
                "public, max-age=4",
            ),
        ] {
            store.put("x.jpg/w=32", &derivative).await.unwrap();
            let meta = std::fs::read_to_string(root.path().join("x.jpg/w=32.meta")).unwrap();
            assert_eq!(meta.lines().nth(3), Some(line), "{meta}");
            assert_eq!(store.get("x.jpg/w=32").await.unwrap(), Some(derivative));
        }
        store.remove("x.jpg/w=32").await.unwrap();
        assert_eq!(store.get("x.jpg/w=32").await.unwrap(), None);
        store.remove("x.jpg/w=32").await.unwrap();
    }

    #[tokio::test]
    async fn reads_metas_of_three_lines_and_refuses_mixed_pairs() {
        let root = tempfile::tempdir().unwrap();
        let store = DerivedStore::Dir(root.path().to_owned());
        let (bytes, meta) = (
            root.path().join("old.jpg"),
            root.path().join("old.jpg.meta"),
        );
        // (meta, bytes, what is read back)
        let digest = format!("5 {}", sha256_hex(b"12345"));
        let cases = [
            // Written before the Cache-Control and the digest were kept.
            (
                "image/jpeg\n\"e1\"\n1700000000\n".to_owned(),
                "12345",
                Some(None),
            ),
            ("image/jpeg\n\"e1\"\n-\n".to_owned(), "12345", Some(None)),
            (
                format!("image/jpeg\n\"e1\"\n1700000000\nno-store\n{digest}\n"),
                "12345",
                Some(Some("no-store")),
            ),
            // The bytes of another write than the meta's.
            (
                format!("image/jpeg\n\"e1\"\n1700000000\n\n{digest}\n"),
                "12346",
                None,
            ),
            (
                format!("image/jpeg\n\"e1\"\n1700000000\n\n{digest}\n"),
                "123456",
                None,
            ),
            // Cut short.
            ("image/jpeg\n\"e1\"\n".to_owned(), "12345", None),
        ];
        for (text, body, expected) in cases {
            std::fs::write(&meta, &text).unwrap();
            std::fs::write(&bytes, body).unwrap();
            let read = store.get("old.jpg").await.unwrap();
            assert_eq!(
                read.as_ref().map(|r| r.cache_control.as_deref()),
                expected,
                "{text:?}"
            );
            if let Some(read) = read {
                assert_eq!(
                    (&read.bytes[..], read.source_etag.as_str()),
                    (body.as_bytes(), "\"e1\"")
                );
            }
        }
    }

    #[tokio::test]
    async fn refuses_a_description_with_a_line_break() {
        let root = tempfile::tempdir().unwrap();
        let store = DerivedStore::Dir(root.path().to_owned());
        let derivative = StoredDerivative {
            cache_control: Some("max-age=1\nimage/png".into()),
            ..written(1)
        };
        assert!(store.put("x.jpg", &derivative).await.is_err());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }
}
