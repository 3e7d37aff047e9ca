//! The movie index: what a movie's box headers and `moov` say, read once per
//! stored version and shared by every representation made from the movie
//! (faststart, frames, and what comes next).
//!
//! One index per key and source version: the top-level boxes, the stored
//! `moov` (within [`MAX_MOOV_BYTES`]), the parsed movie (tracks, sample
//! tables, keyframes, codec configuration) and, when `moov` follows the media,
//! the faststart rewrite. It is made in one flight however many requests ask
//! at once (a request that leaves hands the work to the next one waiting),
//! parsed and rewritten on the blocking pool, never on an event loop, kept in
//! a cache bounded in bytes, and kept in the derived store, so a new process
//! reads one object instead of the box headers and `moov`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{OnceCell, Semaphore};

use crate::bounded::BoundedMap;
use crate::derivative::store::{DerivedStore, StoredDerivative};
use crate::mp4::{self, BoxHeader, Faststart, Layout, Movie};
use crate::protocol::description::Description;
use crate::representation::{blocking, read_exact, RangeReader, SourceError};

mod kept;
pub use kept::rewrite_kept;

/// The version of the kept index's format: part of its stored name.
pub const INDEX_VERSION: &str = "mi1";

/// The largest `moov` read into an index; a larger one is not read (the
/// movie is served as stored and its frames are refused, 422).
pub const MAX_MOOV_BYTES: u64 = 64 * 1024 * 1024;

/// Indexes made at once from movies' bytes: each reads box headers and up to
/// [`MAX_MOOV_BYTES`]; more wait, holding nothing.
pub const PARALLEL_INDEXES: usize = 4;

/// Settings of the movie index.
#[derive(Clone, Debug)]
pub struct MovieIndexSettings {
    /// Bytes of indexes kept in memory (their `moov` and rewrite).
    pub cache_bytes: u64,
    /// A `moov` larger than this is not moved first (faststart's own bound).
    pub faststart_max_moov_bytes: u64,
    /// How long an index is trusted without describing the movie again,
    /// where describing costs a round trip (S3).
    pub recheck_after: Duration,
    /// Where indexes are kept across processes.
    pub store: Option<DerivedStore>,
}

impl Default for MovieIndexSettings {
    fn default() -> Self {
        MovieIndexSettings {
            cache_bytes: 64 * 1024 * 1024,
            faststart_max_moov_bytes: MAX_MOOV_BYTES,
            recheck_after: Duration::from_secs(60),
            store: None,
        }
    }
}

/// What one version of one movie's index holds.
#[derive(Debug)]
pub struct IndexedMovie {
    /// The stored object's size.
    pub size: u64,
    /// The top-level boxes; empty when the file is not a readable MP4.
    pub boxes: Vec<BoxHeader>,
    /// The stored `moov`, when there is one within [`MAX_MOOV_BYTES`].
    pub moov: Option<Bytes>,
    /// The movie `moov` describes, or why there is none to read.
    pub movie: Result<Movie, MovieError>,
    /// The faststart rewrite, when `moov` follows the media data.
    pub faststart: Option<Arc<Faststart>>,
}

/// Why an index holds no movie.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MovieError {
    /// The top-level boxes do not read as an MP4's.
    #[error("not a readable MP4 movie: {0}")]
    Boxes(String),
    #[error("not an MP4 movie: no moov box")]
    NoMoov,
    #[error("not a readable MP4 movie: more than one moov box")]
    SeveralMoov,
    #[error(
        "the movie's index (moov) is {0} bytes; the most read for a frame is {MAX_MOOV_BYTES}"
    )]
    MoovTooLarge(u64),
    /// `moov` does not parse.
    #[error("not a readable MP4 movie: {0}")]
    Moov(String),
}

impl IndexedMovie {
    /// Memory it holds, roughly: `moov` twice (as stored and parsed) and
    /// the rewrite.
    fn cost(&self) -> u64 {
        let moov = self.moov.as_ref().map_or(0, |m| m.len() as u64);
        let rewrite = self.faststart.as_ref().map_or(0, |f| f.moov.len() as u64);
        256 + self.boxes.len() as u64 * 32 + 2 * moov + rewrite
    }

    /// The index of a movie whose bytes `boxes` and `moov` describe: the
    /// parse and the faststart rewrite (CPU work: call it on the blocking
    /// pool).
    fn build(size: u64, read: ReadIndex, max_faststart: u64) -> Self {
        let ReadIndex { boxes, moov, error } = read;
        let moovs: Vec<&BoxHeader> = boxes.iter().filter(|b| &b.kind == b"moov").collect();
        let movie = match (&moov, error, moovs.as_slice()) {
            (_, Some(e), _) => Err(MovieError::Boxes(e)),
            (Some(bytes), None, _) => {
                mp4::parse_movie(bytes).map_err(|e| MovieError::Moov(e.to_string()))
            }
            (None, None, []) => Err(MovieError::NoMoov),
            (None, None, [one]) => Err(MovieError::MoovTooLarge(one.size)),
            (None, None, _) => Err(MovieError::SeveralMoov),
        };
        let faststart = match (mp4::classify(&boxes, max_faststart), &moov) {
            (Layout::Faststart { .. }, Some(bytes)) => mp4::rewrite(&boxes, bytes).ok(),
            _ => None,
        }
        .filter(|f| f.size.checked_sub(f.grown_by) == Some(size))
        .map(Arc::new);
        IndexedMovie {
            size,
            boxes,
            moov,
            movie,
            faststart,
        }
    }
}

struct Entry {
    etag: String,
    indexed: Arc<IndexedMovie>,
    checked_at: Instant,
}

type Flight = OnceCell<Arc<IndexedMovie>>;

/// The indexes made so far, by key, bounded in bytes, and those being made.
pub struct MovieIndex {
    settings: MovieIndexSettings,
    cache: Mutex<BoundedMap<Entry>>,
    flights: Mutex<HashMap<String, Weak<Flight>>>,
    builds: Semaphore,
    made: AtomicU64,
}

impl std::fmt::Debug for MovieIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MovieIndex")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl MovieIndex {
    pub fn new(settings: MovieIndexSettings) -> Arc<Self> {
        Arc::new(MovieIndex {
            cache: Mutex::new(BoundedMap::new(settings.cache_bytes)),
            flights: Mutex::new(HashMap::new()),
            builds: Semaphore::new(PARALLEL_INDEXES),
            made: AtomicU64::new(0),
            settings,
        })
    }

    pub fn settings(&self) -> &MovieIndexSettings {
        &self.settings
    }

    /// How many indexes were made from movies' bytes (box headers read), not
    /// taken from the cache or the derived store: for tests.
    pub fn made(&self) -> u64 {
        self.made.load(Ordering::Relaxed)
    }

    /// The cached index of `key` and the version it was made from, when it
    /// may be trusted without describing the movie again.
    pub fn fresh(&self, key: &str) -> Option<(String, Arc<IndexedMovie>)> {
        let cache = self.cache.lock().ok()?;
        let entry = cache.get(key)?;
        (entry.checked_at.elapsed() < self.settings.recheck_after)
            .then(|| (entry.etag.clone(), Arc::clone(&entry.indexed)))
    }

    /// Drops the cached index of `key` (its stored version went away).
    pub fn forget(&self, key: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(key);
        }
    }

    /// The index of the version of `key` that `source` describes, read with
    /// `reader` (of that version) when neither the cache nor the derived
    /// store has it. Only the reader's failures are errors: a file that is
    /// not a readable movie gets an index saying why.
    pub async fn get(
        &self,
        key: &str,
        source: &Description,
        reader: &dyn RangeReader,
    ) -> Result<Arc<IndexedMovie>, SourceError> {
        let etag = source.etag().to_string();
        if let Some(indexed) = self.cached(key, &etag) {
            return Ok(indexed);
        }
        let flight = self.join(key, &etag);
        let indexed = flight
            .get_or_try_init(|| self.make(key, &etag, source, reader))
            .await?;
        Ok(Arc::clone(indexed))
    }

    /// The cached index of this version of `key`, marked checked now.
    fn cached(&self, key: &str, etag: &str) -> Option<Arc<IndexedMovie>> {
        let mut cache = self.cache.lock().ok()?;
        let entry = cache.get(key).filter(|e| e.etag == etag)?;
        let indexed = Arc::clone(&entry.indexed);
        let cost = indexed.cost();
        let entry = Entry {
            etag: etag.to_owned(),
            indexed: Arc::clone(&indexed),
            checked_at: Instant::now(),
        };
        cache.insert(key, entry, cost);
        Some(indexed)
    }

    /// The flight making this version's index: joined if one is under way,
    /// else a new one. The map holds flights weakly: a flight every
    /// requester left is gone with them.
    fn join(&self, key: &str, etag: &str) -> Arc<Flight> {
        let name = format!("{etag}\n{key}");
        let Ok(mut flights) = self.flights.lock() else {
            return Arc::new(OnceCell::new());
        };
        if let Some(flight) = flights.get(&name).and_then(Weak::upgrade) {
            return flight;
        }
        flights.retain(|_, flight| flight.strong_count() > 0);
        let flight = Arc::new(OnceCell::new());
        flights.insert(name, Arc::downgrade(&flight));
        flight
    }

    /// Makes the index: from the derived store when it holds this version's,
    /// else from the movie's box headers and `moov`; then caches it.
    async fn make(
        &self,
        key: &str,
        etag: &str,
        source: &Description,
        reader: &dyn RangeReader,
    ) -> Result<Arc<IndexedMovie>, SourceError> {
        let max_faststart = self.settings.faststart_max_moov_bytes;
        let size = source.size;
        let read = match self.stored(key, etag, size).await {
            Some(read) => read,
            None => {
                let _turn = self.builds.acquire().await;
                self.made.fetch_add(1, Ordering::Relaxed);
                let read = read_index(reader, size).await?;
                self.keep(key, source, &read);
                read
            }
        };
        let indexed = blocking(move || Ok(IndexedMovie::build(size, read, max_faststart))).await?;
        let indexed = Arc::new(indexed);
        if let Ok(mut cache) = self.cache.lock() {
            let entry = Entry {
                etag: etag.to_owned(),
                indexed: Arc::clone(&indexed),
                checked_at: Instant::now(),
            };
            cache.insert(key, entry, indexed.cost());
        }
        Ok(indexed)
    }

    /// The boxes and `moov` kept in the derived store for this version.
    async fn stored(&self, key: &str, etag: &str, size: u64) -> Option<ReadIndex> {
        let store = self.settings.store.as_ref()?;
        let kept = store.get(&kept::stored_name(key)).await.ok()??;
        if kept.source_etag != etag {
            return None;
        }
        let (boxes, moov) = kept::decode_layout(&kept.bytes)?;
        // The boxes must cover the stored object exactly.
        if boxes.last().map_or(0, BoxHeader::end) != size {
            return None;
        }
        let moov = (!moov.is_empty()).then(|| kept.bytes.slice_ref(moov));
        Some(ReadIndex {
            boxes,
            moov,
            error: None,
        })
    }

    /// Keeps a movie's boxes and `moov` in the derived store, in the
    /// background; nothing for a file that is not a movie.
    fn keep(&self, key: &str, source: &Description, read: &ReadIndex) {
        let (Some(store), false) = (self.settings.store.clone(), read.boxes.is_empty()) else {
            return;
        };
        let kept = StoredDerivative {
            bytes: kept::encode_layout(&read.boxes, read.moov.as_deref().unwrap_or_default()),
            content_type: "application/octet-stream".to_owned(),
            source_etag: source.etag().to_string(),
            source_last_modified: source.last_modified(),
            cache_control: None,
        };
        let name = kept::stored_name(key);
        tokio::spawn(async move {
            if let Err(e) = store.put(&name, &kept).await {
                tracing::warn!(name, error = %e, "a movie's index could not be stored");
            }
        });
    }
}

/// What is read of a movie for its index.
struct ReadIndex {
    /// The top-level boxes; none for a file that is not a readable MP4.
    boxes: Vec<BoxHeader>,
    /// Its one `moov`, within [`MAX_MOOV_BYTES`].
    moov: Option<Bytes>,
    /// Why the boxes do not read as an MP4's.
    error: Option<String>,
}

/// The top-level boxes and the `moov` of the movie `reader` reads.
async fn read_index(reader: &dyn RangeReader, size: u64) -> Result<ReadIndex, SourceError> {
    let boxes = match mp4::scan_top_level(reader, size).await {
        Ok(boxes) => boxes,
        Err(mp4::Mp4Error::Read(e)) => return Err(e),
        Err(e) => {
            return Ok(ReadIndex {
                boxes: Vec::new(),
                moov: None,
                error: Some(e.to_string()),
            })
        }
    };
    let moovs: Vec<&BoxHeader> = boxes.iter().filter(|b| &b.kind == b"moov").collect();
    let moov = match moovs.as_slice() {
        [moov] if moov.size <= MAX_MOOV_BYTES => {
            Some(read_exact(reader, moov.offset, moov.size).await?)
        }
        _ => None,
    };
    Ok(ReadIndex {
        boxes,
        moov,
        error: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::conditional::{EntityTag, Validators};
    use crate::protocol::range::ByteRange;
    use crate::representation::BodyStream;

    /// A file in memory, read by range; or, `stalled`, a read that never
    /// yields (a store that hangs, a request that will leave).
    struct Memory {
        bytes: Bytes,
        stalled: bool,
    }

    impl RangeReader for Memory {
        fn read(&self, range: ByteRange) -> BodyStream {
            if self.stalled {
                return Box::pin(futures_util::stream::pending());
            }
            let chunk = self
                .bytes
                .slice(range.first as usize..range.last as usize + 1);
            Box::pin(futures_util::stream::once(async move { Ok(chunk) }))
        }
    }

    fn movie() -> Bytes {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/video/moov-at-end.mp4"
        );
        Bytes::from(std::fs::read(path).unwrap())
    }

    fn described(size: u64) -> Description {
        Description {
            size,
            validators: Validators {
                etag: EntityTag::strong("v1").unwrap(),
                last_modified: None,
            },
            content_type: "video/mp4".into(),
            cache_control: None,
        }
    }

    #[tokio::test]
    async fn a_request_that_leaves_hands_the_index_to_the_next() {
        let bytes = movie();
        let index = MovieIndex::new(MovieIndexSettings::default());
        let source = described(bytes.len() as u64);
        let stalled = Memory {
            bytes: bytes.clone(),
            stalled: true,
        };
        // The first request's read hangs; it leaves (its future dropped).
        let left = tokio::time::timeout(
            Duration::from_millis(50),
            index.get("a.mp4", &source, &stalled),
        )
        .await;
        assert!(left.is_err(), "the stalled read cannot finish");
        // The next one makes the index itself, and later ones share it.
        let reader = Memory {
            bytes,
            stalled: false,
        };
        let indexed = index.get("a.mp4", &source, &reader).await.unwrap();
        assert!(indexed.movie.is_ok() && indexed.faststart.is_some());
        let again = index.get("a.mp4", &source, &stalled).await.unwrap();
        assert!(Arc::ptr_eq(&indexed, &again), "from the cache: no read");
        assert_eq!(index.made(), 2);
        assert!(index
            .flights
            .lock()
            .unwrap()
            .values()
            .all(|f| f.strong_count() == 0));
    }

    #[tokio::test]
    async fn concurrent_requests_make_one_index() {
        let bytes = movie();
        let index = MovieIndex::new(MovieIndexSettings::default());
        let source = described(bytes.len() as u64);
        let reader = Memory {
            bytes,
            stalled: false,
        };
        let all =
            futures_util::future::join_all((0..8).map(|_| index.get("a.mp4", &source, &reader)))
                .await;
        assert!(all
            .iter()
            .all(|i| i.as_ref().is_ok_and(|i| i.movie.is_ok())));
        assert_eq!(index.made(), 1);
    }

    #[test]
    fn says_why_an_index_holds_no_movie() {
        let header = |kind: &[u8; 4], offset: u64, size: u64| BoxHeader {
            kind: *kind,
            offset,
            header_len: 8,
            size,
        };
        let read = |boxes: Vec<BoxHeader>, error: Option<&str>| ReadIndex {
            boxes,
            moov: None,
            error: error.map(str::to_owned),
        };
        let cases = [
            (
                read(Vec::new(), Some("cut short")),
                MovieError::Boxes("cut short".into()),
            ),
            (
                read(vec![header(b"ftyp", 0, 32), header(b"mdat", 32, 100)], None),
                MovieError::NoMoov,
            ),
            (
                read(vec![header(b"moov", 0, 16), header(b"moov", 16, 16)], None),
                MovieError::SeveralMoov,
            ),
            (
                read(vec![header(b"moov", 0, MAX_MOOV_BYTES + 1)], None),
                MovieError::MoovTooLarge(MAX_MOOV_BYTES + 1),
            ),
        ];
        for (read, error) in cases {
            let indexed = IndexedMovie::build(1000, read, MAX_MOOV_BYTES);
            assert_eq!(indexed.movie.unwrap_err(), error);
            assert!(indexed.faststart.is_none());
        }
    }
}
