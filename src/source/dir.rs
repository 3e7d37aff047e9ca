//! Objects from a directory on the local file system (the bundled media).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use bytes::Bytes;

use super::listing::{ListEntry, Listing};
use super::Source;
use crate::protocol::conditional::{EntityTag, Validators};
use crate::protocol::delegation::{StoreCapabilities, StorePlan};
use crate::protocol::description::Description;
use crate::protocol::key::ObjectKey;
use crate::protocol::media_type::content_type_for;
use crate::protocol::range::ByteRange;
use crate::representation::{blocking, BodyStream, Opened, RangeReader, SourceError};

/// Bytes read from disk per step: large enough that the per-read cost is small
/// against the copy, small enough that a slow client pins little memory.
pub const READ_CHUNK_BYTES: usize = 256 * 1024;

/// Ranges up to this size are read on the request's own thread: one `pread`
/// of a page-cached file costs less than the hand-off to the blocking pool.
pub(crate) const INLINE_READ_BYTES: u64 = 16 * 1024;

/// Most files kept open between requests; past it the cache starts over.
const OPEN_FILES: usize = 256;

/// Serves the regular files under a root directory. Names starting with `.` are
/// not served, and a symbolic link is followed only when its target lies under
/// the root.
#[derive(Debug)]
pub struct DirSource {
    root: PathBuf,
    /// Files opened before, by path, with what described them then. A cached
    /// file is used again only while a `stat` of its path still names the
    /// same file, unchanged (device, inode, size, modification time).
    open_files: Mutex<HashMap<PathBuf, Arc<OpenFile>>>,
    /// File bytes read and not yet let go (see [`HeldBytes`]).
    held: Arc<HeldBytes>,
}

/// The bytes of file content the source has read, or is reading, that are
/// still in memory: a chunk counts from the moment its buffer is allocated
/// until the last reference to it is dropped, wherever it is (the response
/// body, the connection's write queue). This is what slow clients make the
/// server hold; the kernel's socket buffers are not counted, nor is anything
/// that is not file content.
#[derive(Debug, Default)]
pub struct HeldBytes {
    now: AtomicU64,
    peak: AtomicU64,
}

impl HeldBytes {
    /// Bytes held now.
    pub fn now(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }

    /// The most bytes held at once since the start or the last
    /// [`reset_peak`](Self::reset_peak).
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Starts the peak again from what is held now.
    pub fn reset_peak(&self) {
        self.peak.store(self.now(), Ordering::Relaxed);
    }

    fn hold(self: &Arc<Self>, bytes: u64) -> Held {
        let now = self.now.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
        Held {
            gauge: Arc::clone(self),
            bytes,
        }
    }
}

/// A count in [`HeldBytes`], taken back when dropped.
#[derive(Debug)]
struct Held {
    gauge: Arc<HeldBytes>,
    bytes: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.gauge.now.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// A chunk read from a file, counted while it lives.
struct HeldChunk {
    bytes: Vec<u8>,
    _held: Held,
}

impl AsRef<[u8]> for HeldChunk {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// A file opened, checked (under the root, regular) and described once.
#[derive(Debug)]
struct OpenFile {
    file: Arc<File>,
    description: Description,
    identity: Identity,
}

/// What tells one version of a file from another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl Identity {
    fn of(md: &std::fs::Metadata) -> Self {
        Identity {
            dev: md.dev(),
            ino: md.ino(),
            size: md.len(),
            mtime_ns: i128::from(md.mtime()) * 1_000_000_000 + i128::from(md.mtime_nsec()),
        }
    }
}

impl DirSource {
    /// Opens `root`, which must be a directory.
    pub fn new(root: impl AsRef<Path>) -> io::Result<Self> {
        let root = std::fs::canonicalize(root.as_ref()).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("media directory {}: {e}", root.as_ref().display()),
            )
        })?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("media directory {} is not a directory", root.display()),
            ));
        }
        Ok(DirSource {
            root,
            open_files: Mutex::new(HashMap::new()),
            held: Arc::default(),
        })
    }

    /// The file at `path` if it was opened before and is unchanged: one
    /// `stat`, on this thread (no hand-off for the common case).
    fn cached(&self, path: &Path) -> Option<Arc<OpenFile>> {
        let entry = self.open_files.lock().ok()?.get(path).cloned()?;
        let md = std::fs::metadata(path).ok()?;
        (Identity::of(&md) == entry.identity).then_some(entry)
    }

    fn remember(&self, path: PathBuf, entry: Arc<OpenFile>) {
        if let Ok(mut files) = self.open_files.lock() {
            if files.len() >= OPEN_FILES {
                files.clear();
            }
            files.insert(path, entry);
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file bytes this source's reads hold in memory now, and at most.
    pub fn held_bytes(&self) -> Arc<HeldBytes> {
        Arc::clone(&self.held)
    }

    /// The path of `segments` under the root; a segment starting with `.` is
    /// not served.
    fn path_of<'a>(&self, segments: impl Iterator<Item = &'a str>) -> Result<PathBuf, SourceError> {
        let mut path = self.root.clone();
        for segment in segments {
            if segment.starts_with('.') {
                return Err(SourceError::NotFound);
            }
            path.push(segment);
        }
        Ok(path)
    }
}

#[async_trait]
impl Source for DirSource {
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities::DescribeThenRead
    }

    /// Every plan is a description here: a `stat`, and an `open` the first
    /// time (the open file is kept for the requests after).
    async fn open(&self, key: &ObjectKey, _plan: &StorePlan) -> Result<Opened, SourceError> {
        let path = self.path_of(key.segments())?;
        let entry = match self.cached(&path) {
            Some(entry) => entry,
            None => {
                let root = self.root.clone();
                let content_type = content_type_for(key.file_name());
                let opened = path.clone();
                let entry =
                    Arc::new(blocking(move || open_within(&root, &opened, content_type)).await?);
                self.remember(path, Arc::clone(&entry));
                entry
            }
        };
        Ok(Opened::Found {
            description: entry.description.clone(),
            reader: Arc::new(FileReader {
                file: Arc::clone(&entry.file),
                held: Arc::clone(&self.held),
            }),
            started: None,
        })
    }

    async fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Listing, SourceError> {
        let dir = self.path_of(prefix.split('/').filter(|s| !s.is_empty()))?;
        let root = self.root.clone();
        let entries = blocking(move || list_within(&root, &dir)).await?;
        Ok(Listing::page(entries, after, limit))
    }
}

/// The entries of `dir`, which must really lie under `root`: regular files and
/// directories, following links only to places under the root, leaving out
/// names that start with `.` or are not UTF-8, as [`DirSource::open`] would
/// refuse them.
fn list_within(root: &Path, dir: &Path) -> Result<Vec<ListEntry>, SourceError> {
    let real = std::fs::canonicalize(dir).map_err(from_io)?;
    if !real.starts_with(root) {
        return Err(SourceError::NotFound);
    }
    let mut entries = Vec::new();
    for item in std::fs::read_dir(&real).map_err(from_io)? {
        let item = item.map_err(from_io)?;
        let Ok(name) = item.file_name().into_string() else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let path = item.path();
        let is_link = item.file_type().map_err(from_io)?.is_symlink();
        if is_link
            && !std::fs::canonicalize(&path)
                .map(|target| target.starts_with(root))
                .unwrap_or(false)
        {
            continue;
        }
        let Ok(md) = std::fs::metadata(&path) else {
            continue; // a dangling link, or gone since the listing
        };
        if md.is_dir() {
            entries.push(ListEntry::directory(&name));
        } else if md.is_file() {
            entries.push(ListEntry::object(&name, md.len()));
        }
    }
    Ok(entries)
}

/// Opens `path` if it is a regular file that really lies under `root` (after
/// following links), and describes it from the same open file, so the bytes
/// sent are those the validators describe. The type comes from the name asked
/// for, not from a link's target.
fn open_within(root: &Path, path: &Path, content_type: String) -> Result<OpenFile, SourceError> {
    let real = std::fs::canonicalize(path).map_err(from_io)?;
    if !real.starts_with(root) {
        tracing::warn!(path = %path.display(), "refused a link that leaves the media directory");
        return Err(SourceError::NotFound);
    }
    let file = File::open(&real).map_err(from_io)?;
    let md = file.metadata().map_err(from_io)?;
    if !md.is_file() {
        return Err(SourceError::NotFound);
    }
    let description = Description {
        size: md.len(),
        validators: Validators {
            etag: file_etag(&md),
            last_modified: md.modified().ok(),
        },
        content_type,
        cache_control: None,
    };
    Ok(OpenFile {
        file: Arc::new(file),
        description,
        identity: Identity::of(&md),
    })
}

/// A strong ETag from the size and the modification time in nanoseconds.
///
/// The inode is left out on purpose: every Lambda execution environment
/// unpacks the bundled media anew, so inodes differ between instances while
/// size and mtime do not, and a validator that changed from one instance to the
/// next would break If-Range and revalidation. Changing this format is a
/// cache-busting event.
fn file_etag(md: &std::fs::Metadata) -> EntityTag {
    let nanos = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    EntityTag::strong(&format!("{:x}-{:x}", md.len(), nanos)).expect("hex digits and '-' are etagc")
}

fn from_io(e: io::Error) -> SourceError {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => SourceError::NotFound,
        io::ErrorKind::PermissionDenied => SourceError::Forbidden,
        _ if matches!(e.raw_os_error(), Some(libc::ENAMETOOLONG | libc::ELOOP)) => {
            SourceError::NotFound
        }
        _ => SourceError::Io(e),
    }
}

/// Reads the one open file a description was made from.
struct FileReader {
    file: Arc<File>,
    held: Arc<HeldBytes>,
}

impl RangeReader for FileReader {
    fn read(&self, range: ByteRange) -> BodyStream {
        read_range(Arc::clone(&self.file), range, Arc::clone(&self.held))
    }
}

/// Streams `range` of `file` in [`READ_CHUNK_BYTES`] steps, one blocking read
/// each (on this thread for a range of at most [`INLINE_READ_BYTES`]). A file
/// that ends early (truncated under us) is an error, so the response is
/// aborted rather than cut short silently.
fn read_range(file: Arc<File>, range: ByteRange, held: Arc<HeldBytes>) -> BodyStream {
    if range.len() <= INLINE_READ_BYTES {
        return Box::pin(futures_util::stream::once(async move {
            read_chunk(&file, range.first, range.len() as usize, &held)
        }));
    }
    let state = (file, range.first, range.len(), held);
    Box::pin(futures_util::stream::try_unfold(
        state,
        |(file, offset, remaining, held)| async move {
            if remaining == 0 {
                return Ok(None);
            }
            let want = remaining.min(READ_CHUNK_BYTES as u64) as usize;
            let (reading, gauge) = (Arc::clone(&file), Arc::clone(&held));
            let chunk = blocking(move || read_chunk(&reading, offset, want, &gauge)).await?;
            Ok(Some((
                chunk,
                (file, offset + want as u64, remaining - want as u64, held),
            )))
        },
    ))
}

/// Reads exactly `len` bytes at `offset` into a new buffer that is never
/// zeroed first: the kernel's copy is the only pass over the memory. The
/// buffer counts in `held` from its allocation until its last reference goes.
fn read_chunk(
    file: &File,
    offset: u64,
    len: usize,
    held: &Arc<HeldBytes>,
) -> Result<Bytes, SourceError> {
    let counted = held.hold(len as u64);
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    let mut filled = 0usize;
    while filled < len {
        let at = libc::off_t::try_from(offset + filled as u64)
            .map_err(|_| SourceError::Io(io::ErrorKind::InvalidInput.into()))?;
        // SAFETY: the destination is the unfilled tail of `buf`'s allocation,
        // `len - filled` bytes long and not aliased; pread writes at most that
        // many bytes and returns how many it wrote.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                buf.as_mut_ptr().add(filled).cast(),
                len - filled,
                at,
            )
        };
        match n {
            0 => return Err(SourceError::Io(io::ErrorKind::UnexpectedEof.into())),
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(SourceError::Io(e));
                }
            }
            n => filled += n as usize,
        }
    }
    // SAFETY: pread initialised all `len` bytes (filled == len).
    unsafe { buf.set_len(len) };
    Ok(Bytes::from_owner(HeldChunk {
        bytes: buf,
        _held: counted,
    }))
}
