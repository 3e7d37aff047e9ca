//! Faststart on the fly: a movie whose `moov` follows its media data is
//! served with `moov` moved before the first `mdat` (`crate::mp4` rewrites
//! it), as a representation of its own: a strong ETag of its own, no date
//! validator, every range and condition exact over its bytes.
//! Any other file (already faststart, fragmented, not a movie, malformed) is
//! served as stored, with the stored ETag.
//!
//! The layout comes from the movie index (`crate::movie`): box headers and
//! `moov` read once per object version for every representation of the
//! movie. With the layout
//! known, a request costs the stored object's round trips: on S3 one
//! conditional GetObject (pinned to the version with `If-Match`), as long as
//! the cached layout is younger than `recheck_after`; after that the object
//! is described again before it is trusted.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::bounded::BoundedMap;
use crate::derivative::store::DerivedStore;
use crate::movie::{MovieIndex, MovieIndexSettings};
use crate::mp4::{Faststart, Segment};
use crate::protocol::conditional::{EntityTag, Validators};
use crate::protocol::decision::ReadMethod;
use crate::protocol::delegation::{StoreCapabilities, StorePlan};
use crate::protocol::description::Description;
use crate::protocol::range::ByteRange;
use crate::representation::{BodyStream, Opened, RangeReader, Representation, SourceError};
use crate::source::StoredObject;

/// The version of the rewrite, part of every faststart ETag: a change in
/// what the rewrite writes must change it.
pub const FASTSTART_VERSION: &str = "fs1";

/// Settings of faststart, from configuration.
#[derive(Clone, Debug)]
pub struct FaststartSettings {
    /// Off: every movie is served as stored.
    pub enabled: bool,
    /// Bytes of `moov` boxes kept in memory across requests.
    pub cache_bytes: u64,
    /// A larger `moov` is not read: the file is served as stored.
    pub max_moov_bytes: u64,
    /// How long a cached layout is trusted without describing the object
    /// again, where describing costs a round trip (S3).
    pub recheck_after: Duration,
    /// Where layouts are kept across processes (the image derivatives'
    /// store): a new process reads a movie's layout there in one read instead
    /// of its box headers and `moov`.
    pub store: Option<DerivedStore>,
}

impl Default for FaststartSettings {
    fn default() -> Self {
        FaststartSettings {
            enabled: true,
            cache_bytes: 64 * 1024 * 1024,
            max_moov_bytes: 64 * 1024 * 1024,
            recheck_after: Duration::from_secs(60),
            store: None,
        }
    }
}

/// What one version of one object is served as.
#[derive(Debug)]
enum Analysis {
    AsStored,
    Faststart(Arc<Faststart>),
}

impl Analysis {
    fn cost(&self) -> u64 {
        match self {
            Analysis::AsStored => 0,
            Analysis::Faststart(f) => f.moov.len() as u64,
        }
    }
}

struct Entry {
    /// The stored object's description when it was analysed.
    source: Description,
    analysis: Arc<Analysis>,
    checked_at: Instant,
}

/// The layouts found so far, by key, with the bytes they hold bounded.
pub struct Faststarts {
    settings: FaststartSettings,
    cache: Mutex<BoundedMap<Entry>>,
    movies: Arc<MovieIndex>,
}

impl std::fmt::Debug for Faststarts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faststarts")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Faststarts {
    /// Faststart with a movie index of its own.
    pub fn new(settings: FaststartSettings) -> Arc<Self> {
        let movies = MovieIndex::new(MovieIndexSettings {
            cache_bytes: settings.cache_bytes,
            faststart_max_moov_bytes: settings.max_moov_bytes,
            recheck_after: settings.recheck_after,
            store: settings.store.clone(),
        });
        Self::with_movies(settings, movies)
    }

    /// Faststart from the layouts `movies` finds (its
    /// `faststart_max_moov_bytes` is the bound that applies).
    pub fn with_movies(settings: FaststartSettings, movies: Arc<MovieIndex>) -> Arc<Self> {
        Arc::new(Faststarts {
            cache: Mutex::new(BoundedMap::new(settings.cache_bytes)),
            movies,
            settings,
        })
    }

    pub fn settings(&self) -> &FaststartSettings {
        &self.settings
    }

    /// How many movie indexes were made from movies' bytes (box headers
    /// read), for tests.
    pub fn analyses(&self) -> u64 {
        self.movies.made()
    }

    fn cached(&self, key: &str) -> Option<(Description, Arc<Analysis>, Instant)> {
        let cache = self.cache.lock().ok()?;
        let entry = cache.get(key)?;
        Some((
            entry.source.clone(),
            Arc::clone(&entry.analysis),
            entry.checked_at,
        ))
    }

    fn remember(&self, key: &str, source: Description, analysis: Arc<Analysis>) {
        if let Ok(mut cache) = self.cache.lock() {
            let cost = analysis.cost();
            let entry = Entry {
                source,
                analysis,
                checked_at: Instant::now(),
            };
            cache.insert(key, entry, cost);
        }
    }

    fn forget(&self, key: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(key);
        }
        self.movies.forget(key);
    }

    /// What this version of `key` is served as, from its movie index (read
    /// once for every representation of the movie, in one flight, parsed
    /// and rewritten off the event loops, kept in the derived store).
    /// Anything malformed is served as stored; only the reader's own
    /// failures are errors.
    async fn analyse(
        &self,
        key: &str,
        source: &Description,
        reader: &dyn RangeReader,
    ) -> Result<Analysis, SourceError> {
        let indexed = self.movies.get(key, source, reader).await?;
        Ok(match &indexed.faststart {
            Some(faststart) => Analysis::Faststart(Arc::clone(faststart)),
            None => Analysis::AsStored,
        })
    }
}

/// A movie, served faststart when its `moov` is at the end.
pub(crate) struct FaststartMovie {
    pub source: StoredObject,
    pub faststarts: Arc<Faststarts>,
}

#[async_trait]
impl Representation for FaststartMovie {
    /// A movie known to be served as stored keeps its store's conditional
    /// reads (one round trip on S3); anything else is described first.
    fn capabilities(&self) -> StoreCapabilities {
        match self.fresh() {
            Some((_, analysis)) if matches!(*analysis, Analysis::AsStored) => {
                self.source.capabilities()
            }
            _ => StoreCapabilities::DescribeThenRead,
        }
    }

    async fn open(&self, plan: &StorePlan) -> Result<Opened, SourceError> {
        if let StorePlan::Fetch(_) = plan {
            // Planned on a layout served as stored.
            return self.source.open(plan).await;
        }
        let key = self.source.key.as_str();
        if let Some((description, analysis)) = self.fresh() {
            if let Analysis::Faststart(faststart) = &*analysis {
                let pinned = self
                    .source
                    .source
                    .pinned_reader(&self.source.key, &description);
                if let Some(reader) = pinned {
                    return Ok(self.found(&description, faststart, reader));
                }
            }
        }
        let (description, reader) = match self.source.open(&StorePlan::Describe).await? {
            Opened::Found {
                description,
                reader,
                ..
            } => (description, reader),
            refused @ Opened::Refused { .. } => return Ok(refused),
        };
        let analysis = match self.faststarts.cached(key) {
            Some((known, analysis, _)) if known.etag() == description.etag() => {
                self.faststarts
                    .remember(key, description.clone(), Arc::clone(&analysis));
                analysis
            }
            _ => {
                let analysis =
                    Arc::new(self.faststarts.analyse(key, &description, &*reader).await?);
                self.faststarts
                    .remember(key, description.clone(), Arc::clone(&analysis));
                analysis
            }
        };
        Ok(match &*analysis {
            Analysis::AsStored => Opened::Found {
                description,
                reader,
                started: None,
            },
            Analysis::Faststart(faststart) => self.found(&description, faststart, reader),
        })
    }

    /// Where the stored movie says: a whole movie too large for one response
    /// is fetched from the store as stored. A whole download needs no
    /// faststart, and what comes back there carries the stored ETag, so no
    /// client takes it for the rewritten bytes.
    async fn elsewhere(
        &self,
        description: &Description,
        method: ReadMethod,
    ) -> Result<Option<String>, SourceError> {
        self.source.elsewhere(description, method).await
    }
}

impl FaststartMovie {
    /// The cached layout of this key when it may be trusted without
    /// describing the object again.
    fn fresh(&self) -> Option<(Description, Arc<Analysis>)> {
        let (description, analysis, checked_at) =
            self.faststarts.cached(self.source.key.as_str())?;
        (checked_at.elapsed() < self.faststarts.settings.recheck_after)
            .then_some((description, analysis))
    }

    /// The faststart representation of the stored version `source`
    /// describes; a read that finds that version gone drops the cached
    /// layout, so the next request reads the new one.
    fn found(
        &self,
        source: &Description,
        faststart: &Arc<Faststart>,
        reader: Arc<dyn RangeReader>,
    ) -> Opened {
        let description = Description {
            size: faststart.size,
            validators: Validators {
                etag: faststart_etag(source.etag()),
                // The source's date is that of the stored bytes; these are
                // a rewrite of them, validated by their ETag alone.
                last_modified: None,
            },
            content_type: source.content_type.clone(),
            cache_control: source.cache_control.clone(),
        };
        Opened::Found {
            description,
            reader: Arc::new(FaststartReader {
                faststart: Arc::clone(faststart),
                source: reader,
                faststarts: Arc::clone(&self.faststarts),
                key: self.source.key.as_str().to_owned(),
            }),
            started: None,
        }
    }
}

/// The strong ETag of the faststart representation of the stored version
/// tagged `source`: another version, or another rewrite, gives another.
pub fn faststart_etag(source: &EntityTag) -> EntityTag {
    let mut hash = Sha256::new();
    hash.update(source.to_string().as_bytes());
    hash.update(b"\n");
    hash.update(FASTSTART_VERSION.as_bytes());
    let digest = hash.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    EntityTag::strong(&format!("f-{hex}")).expect("hex digits are etagc")
}

/// Reads a faststart representation: the rewritten `moov` from memory, the
/// rest from the stored version, pinned.
struct FaststartReader {
    faststart: Arc<Faststart>,
    source: Arc<dyn RangeReader>,
    faststarts: Arc<Faststarts>,
    key: String,
}

impl RangeReader for FaststartReader {
    fn read(&self, range: ByteRange) -> BodyStream {
        let pieces: Vec<BodyStream> = self
            .faststart
            .segments(range)
            .into_iter()
            .map(|segment| match segment {
                Segment::Moov { start, end } => {
                    let bytes = self.faststart.moov.slice(start..end);
                    Box::pin(futures_util::stream::once(async move { Ok(bytes) })) as BodyStream
                }
                Segment::Source(range) => {
                    let (faststarts, key) = (Arc::clone(&self.faststarts), self.key.clone());
                    Box::pin(self.source.read(range).inspect(move |chunk| {
                        if let Err(SourceError::Changed) = chunk {
                            faststarts.forget(&key);
                        }
                    }))
                }
            })
            .collect();
        Box::pin(futures_util::stream::iter(pieces).flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_stored_version() {
        let a = EntityTag::strong("abc").unwrap();
        let b = EntityTag::strong("abd").unwrap();
        assert_eq!(faststart_etag(&a), faststart_etag(&a));
        assert_ne!(faststart_etag(&a), faststart_etag(&b));
        assert_ne!(faststart_etag(&a), a);
        assert!(!faststart_etag(&a).is_weak());
    }
}
