//! The renders: a render reads its source in a worker's place, decodes on
//! the blocking pool, and keeps what it made in the derived store and in
//! memory. How renders are shared, bounded, given a deadline and cancelled
//! is `flight.rs`; this is what one render does, and the [`Renderer`] that
//! holds the state of them all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use super::flight::{join_or_start, Flight};
use super::params;
use super::store::{DerivedStore, StoredDerivative};
use super::{DerivativeId, ImageSettings, MAX_SOURCE_BYTES};
use crate::bounded::BoundedMap;
use crate::image::{self, ImageError, RenderSpec};
use crate::movie::{MovieIndex, MovieIndexSettings};
use crate::protocol::description::Description;
use crate::protocol::range::ByteRange;
use crate::representation::{read_exact, BodyStream, RangeReader, SourceError};

/// The worker's place a render takes (`flight.rs`), for the kinds of
/// render beside this file.
pub(super) use super::flight::Worker;

/// What a busy answer tells the client to wait before asking again: a
/// render takes a fraction of a second to a few, so the queue has moved on.
pub const RETRY_AFTER_SECS: u32 = 2;

/// Renders derivatives: at most `workers` at once, at most `queue` more
/// waiting, and one render per derivative at a time however many requests
/// ask for it.
pub struct Renderer {
    pub(super) settings: ImageSettings,
    pub(super) permits: Arc<Semaphore>,
    /// The renders under way or waiting for a worker, by derivative and
    /// source version.
    pub(super) in_flight: Mutex<HashMap<String, Arc<Flight>>>,
    /// Numbers the renders, so that a render's end removes its own entry and
    /// never a later render's of the same derivative.
    pub(super) flights_started: AtomicU64,
    /// The version each source was last described at (S3 stores).
    pub(super) versions: Mutex<SourceVersions>,
    /// Renders finished by this process.
    renders: AtomicU64,
    /// Bytes read from sources for renders.
    pub(super) source_bytes: AtomicU64,
    /// Stored derivatives read or rendered lately, in memory, by name, so
    /// that a derivative asked for again is served as a file is: no read of
    /// the store.
    pub(super) recent: Mutex<BoundedMap<StoredDerivative>>,
    /// The movies' indexes frames are planned from (shared with faststart).
    pub(super) movies: Arc<MovieIndex>,
}

/// The most bytes of stored derivatives kept in memory: a page's thumbnails
/// and posters, many times over. One larger than an eighth of it is not kept.
pub const RECENT_BYTES: u64 = 32 * 1024 * 1024;

/// The most bytes of keys and versions kept of the sources described: some
/// 5,000 keys of 100 bytes.
pub const VERSIONS_BYTES: u64 = 1024 * 1024;

/// The version each source was last described at, by key, within
/// [`VERSIONS_BYTES`]: a request within `recheck_after` of it names its
/// derivative (whose stored name holds the version) without describing the
/// source again, which on S3 saves a HeadObject. Bounded like the caches:
/// the oldest go first, and a key forgotten is only described sooner.
pub(super) struct SourceVersions(BoundedMap<(String, Instant)>);

impl SourceVersions {
    fn new(limit: u64) -> Self {
        SourceVersions(BoundedMap::new(limit))
    }

    /// The version of `key` described within `within`.
    pub(super) fn fresh(&self, key: &str, within: Duration) -> Option<String> {
        let (etag, at) = self.0.get(key)?;
        (at.elapsed() < within).then(|| etag.clone())
    }

    /// Records `etag` as `key`'s version now; the version it replaces, when
    /// it is another.
    pub(super) fn record(&mut self, key: &str, etag: &str) -> Option<String> {
        let before = self.0.get(key).map(|(e, _)| e.clone());
        let cost = (etag.len() + std::mem::size_of::<Instant>()) as u64;
        self.0.insert(key, (etag.to_owned(), Instant::now()), cost);
        before.filter(|b| b != etag)
    }
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Renderer {
    /// A renderer with a movie index of its own.
    pub fn new(settings: ImageSettings) -> Arc<Self> {
        let movies = MovieIndex::new(MovieIndexSettings {
            store: settings.store.clone(),
            recheck_after: settings.recheck_after,
            ..MovieIndexSettings::default()
        });
        Self::with_movies(settings, movies)
    }

    /// A renderer that plans frames from `movies`.
    pub fn with_movies(settings: ImageSettings, movies: Arc<MovieIndex>) -> Arc<Self> {
        Arc::new(Renderer {
            movies,
            permits: Arc::new(Semaphore::new(settings.workers.max(1))),
            settings,
            in_flight: Mutex::new(HashMap::new()),
            flights_started: AtomicU64::new(0),
            versions: Mutex::new(SourceVersions::new(VERSIONS_BYTES)),
            renders: AtomicU64::new(0),
            source_bytes: AtomicU64::new(0),
            recent: Mutex::new(BoundedMap::new(RECENT_BYTES)),
        })
    }

    /// How many renders this process has finished (a request served from
    /// the derived store, or one that waited on another's render, adds none).
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }

    /// How many bytes renders have read from their sources.
    pub fn source_bytes_read(&self) -> u64 {
        self.source_bytes.load(Ordering::Relaxed)
    }

    /// How many renders are under way or waiting for a worker.
    pub fn in_flight(&self) -> usize {
        self.flights().len()
    }

    pub fn settings(&self) -> &ImageSettings {
        &self.settings
    }
}

/// Renders the derivative `name`, or waits for the render of it already
/// under way, at most `render_timeout`.
pub(super) async fn render_once(
    renderer: &Arc<Renderer>,
    id: &DerivativeId,
    name: String,
    source: Description,
    reader: Arc<dyn RangeReader>,
) -> Result<StoredDerivative, SourceError> {
    let key = format!("{name}\n{}", source.etag());
    let waiting = join_or_start(renderer, &key, id, name, source, reader)?;
    let timeout = renderer.settings.render_timeout;
    match tokio::time::timeout(timeout, waiting.outcome()).await {
        Ok(outcome) => outcome,
        Err(_) => Err(SourceError::Busy {
            reason: format!(
                "the image was not rendered within {}; ask again later",
                seconds(timeout)
            ),
            retry_after_secs: RETRY_AFTER_SECS,
        }),
    }
}

/// `d` as a person reads it: "20 s", "0.05 s".
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} s", d.as_secs_f64())
    }
}

/// Reads the source and renders it on the blocking pool in `worker`'s place,
/// and keeps the result in the derived store. The edge's copy and the
/// removal of other versions follow in the background: the requests
/// waiting for the render, and its place in the queue, do not wait for them.
pub(super) async fn render(
    renderer: &Renderer,
    id: &DerivativeId,
    name: &str,
    source: Description,
    pinned: Arc<dyn RangeReader>,
    worker: Worker,
) -> Result<StoredDerivative, SourceError> {
    let reader = pinned.as_ref();
    let rendered = match id.params.frame_ms {
        Some(ms) => super::frame::render_frame(renderer, id, ms, &source, reader, worker).await?,
        None => render_image(renderer, id, &source, reader, worker).await?,
    };
    renderer.renders.fetch_add(1, Ordering::Relaxed);
    let derivative = StoredDerivative {
        bytes: Bytes::from(rendered.bytes),
        content_type: rendered.content_type.to_owned(),
        source_etag: source.etag().to_string(),
        source_last_modified: source.last_modified(),
        // The source's caching policy is the derivative's (a `private`
        // photo's thumbnails are private too).
        cache_control: source.cache_control.clone(),
    };
    if let Some(store) = &renderer.settings.store {
        renderer.remember(name, &derivative);
        match store.put(name, &derivative).await {
            Ok(()) => {
                let (store, edge_name, kept) = (store.clone(), id.stored_name(), name.to_owned());
                let (copy, edge) = (derivative.clone(), renderer.settings.derived_paths);
                tokio::spawn(async move {
                    if edge {
                        keep_edge_copy(&store, &edge_name, &copy, pinned.as_ref()).await;
                    }
                    remove_other_versions(&store, &edge_name, &kept).await;
                });
            }
            Err(e) => tracing::warn!(name, error = %e, "a derivative could not be stored"),
        }
    }
    Ok(derivative)
}

/// Removes the derivative `stored_name` of every source version but the one
/// just stored as `kept` (a render is rare beside the reads it saves: one
/// listing each): a replaced source leaves no garbage behind.
async fn remove_other_versions(store: &DerivedStore, stored_name: &str, kept: &str) {
    let others = match store.names_starting(&format!("{stored_name},s=")).await {
        Ok(names) => names,
        Err(e) => {
            tracing::warn!(stored_name, error = %e, "the stored versions could not be listed");
            return;
        }
    };
    for name in others.iter().filter(|n| *n != kept) {
        if let Err(e) = store.remove(name).await {
            tracing::warn!(name, error = %e, "a derivative of another version could not be removed");
        }
    }
}

/// Keeps the derivative also under the name the CloudFront edge function
/// gives it (`edge_name`, without the source's version, which the edge
/// cannot know), where S3 answers it without the function. Written only
/// while the source is still the version rendered: after the write, one
/// byte of that version is read again (the reader is pinned to it), and a
/// source replaced meanwhile has the copy removed, so a render that began
/// before a replacement leaves no stale copy behind.
async fn keep_edge_copy(
    store: &DerivedStore,
    edge_name: &str,
    derivative: &StoredDerivative,
    reader: &dyn RangeReader,
) {
    if let Err(e) = store.put(edge_name, derivative).await {
        tracing::warn!(edge_name, error = %e, "a derivative's edge copy could not be stored");
        return;
    }
    if let Err(SourceError::Changed | SourceError::NotFound) = read_all(reader, 1).await {
        if let Err(e) = store.remove(edge_name).await {
            tracing::warn!(edge_name, error = %e, "a stale edge copy could not be removed");
        }
    }
}

/// An image source, decoded, resized and encoded.
async fn render_image(
    renderer: &Renderer,
    id: &DerivativeId,
    source: &Description,
    reader: &dyn RangeReader,
    worker: Worker,
) -> Result<image::Rendered, SourceError> {
    let settings = &renderer.settings;
    if source.size > MAX_SOURCE_BYTES {
        return Err(SourceError::Unprocessable(format!(
            "the image is {} bytes; the most read for rendering is {MAX_SOURCE_BYTES}",
            source.size
        )));
    }
    let head = read_all(reader, source.size.min(image::PROBE_HEAD_LEN as u64)).await?;
    let probe = match image::probe(&head) {
        Err(e) if head.len() as u64 == source.size => return Err(unprocessable(e)),
        Err(e) if image::sniff(&head) == Some(image::Format::Jpeg) => {
            probe_far_jpeg(reader, source.size, &head)
                .await?
                .ok_or_else(|| unprocessable(e))?
        }
        probed => probed.map_err(unprocessable)?,
    };
    let pixels = u64::from(probe.width) * u64::from(probe.height);
    if pixels > settings.max_pixels {
        return Err(unprocessable(ImageError::TooManyPixels {
            pixels,
            limit: settings.max_pixels,
        }));
    }
    let bytes = if head.len() as u64 == source.size {
        head
    } else {
        read_all(reader, source.size).await?
    };
    renderer
        .source_bytes
        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    let spec = render_spec(id, id.output_format(probe.has_alpha));
    let max_pixels = settings.max_pixels;
    worker
        .decode(move || image::render(&bytes, &spec, max_pixels))
        .await
        .ok_or_else(|| SourceError::Unprocessable("the image could not be decoded".into()))?
        .map_err(unprocessable)
}

/// The probe of a JPEG whose frame header lies past `head` (the first
/// bytes of a file of `size`): the marker segments are walked by their
/// lengths in windows of [`image::PROBE_HEAD_LEN`] read from the file, and
/// the probe made of `head`'s whole segments, the last EXIF segment seen
/// after them and the bytes from the frame header on. Memory stays within
/// three windows; the reads within the file, which is at most
/// [`MAX_SOURCE_BYTES`]. `None` when the walk finds no frame header.
async fn probe_far_jpeg(
    reader: &dyn RangeReader,
    size: u64,
    head: &Bytes,
) -> Result<Option<image::Probe>, SourceError> {
    let window_len = image::PROBE_HEAD_LEN as u64;
    let image::JpegWalk::Beyond(kept) = image::walk_jpeg_segments(head, 2, |_, _, _| {}) else {
        return Ok(None);
    };
    let mut at = kept as u64;
    let mut exif: Option<Bytes> = None;
    while at < size {
        let len = window_len.min(size - at);
        let window = read_exact(reader, at, len).await?;
        let walk = image::walk_jpeg_segments(&window, 0, |marker, start, end| {
            if marker == 0xE1 && window[start..end].get(4..10) == Some(b"Exif\0\0") {
                exif = Some(window.slice(start..end));
            }
        });
        let at_end = at + len == size;
        match walk {
            // A frame header near the window's end is read again from its
            // start, so that the probe sees the whole of its segment.
            image::JpegWalk::Decides(found)
                if at_end || found as u64 + MAX_JPEG_SEGMENT_BYTES <= len =>
            {
                let mut bytes = BytesMut::from(&head[..kept]);
                bytes.extend_from_slice(exif.as_deref().unwrap_or_default());
                bytes.extend_from_slice(&window[found..]);
                return Ok(image::probe(&bytes).ok());
            }
            image::JpegWalk::Decides(0) | image::JpegWalk::Beyond(0) => return Ok(None),
            image::JpegWalk::Decides(next) | image::JpegWalk::Beyond(next) => at += next as u64,
        }
    }
    Ok(None)
}

/// The longest JPEG marker segment: fill bytes aside, the marker and a
/// 16-bit length.
const MAX_JPEG_SEGMENT_BYTES: u64 = 2 + 65_535;

/// What the engine is asked to make of a derivative's parameters.
pub(super) fn render_spec(id: &DerivativeId, format: image::OutputFormat) -> RenderSpec {
    RenderSpec {
        width: id.params.width,
        height: id.params.height,
        fit: match id.params.fit {
            params::Fit::Inside => image::Fit::Inside,
            params::Fit::Cover => image::Fit::Cover,
        },
        format,
        quality: id.params.quality,
    }
}

impl Renderer {
    /// Keeps a stored derivative in memory, unless it is large.
    pub(super) fn remember(&self, name: &str, stored: &StoredDerivative) {
        let size = stored.bytes.len() as u64;
        if size <= RECENT_BYTES / 8 {
            if let Ok(mut recent) = self.recent.lock() {
                recent.insert(name, stored.clone(), size);
            }
        }
    }
}

/// The first `length` bytes of the source, in memory.
pub(super) async fn read_all(reader: &dyn RangeReader, length: u64) -> Result<Bytes, SourceError> {
    let Some(range) = ByteRange::whole(length) else {
        return Ok(Bytes::new());
    };
    let mut body: BodyStream = reader.read(range);
    let mut bytes = BytesMut::with_capacity(usize::try_from(length).unwrap_or(0));
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk?);
    }
    Ok(bytes.freeze())
}

pub(super) fn unprocessable(e: ImageError) -> SourceError {
    SourceError::Unprocessable(e.to_string())
}

/// A shared render's failure, for each request that waited on it.
pub(super) fn copy_error(e: &SourceError) -> SourceError {
    match e {
        SourceError::NotFound => SourceError::NotFound,
        SourceError::Forbidden => SourceError::Forbidden,
        SourceError::Changed => SourceError::Changed,
        SourceError::Io(io) => SourceError::Io(std::io::Error::new(io.kind(), io.to_string())),
        SourceError::Unavailable(s) => SourceError::Unavailable(s.clone()),
        SourceError::Upstream(s) => SourceError::Upstream(s.clone()),
        SourceError::Unprocessable(s) => SourceError::Unprocessable(s.clone()),
        SourceError::Unsupported(s) => SourceError::Unsupported(s.clone()),
        SourceError::Busy {
            reason,
            retry_after_secs,
        } => SourceError::Busy {
            reason: reason.clone(),
            retry_after_secs: *retry_after_secs,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_seconds() {
        for (d, text) in [
            (Duration::from_secs(20), "20 s"),
            (Duration::from_millis(50), "0.05 s"),
            (Duration::from_millis(1500), "1.5 s"),
        ] {
            assert_eq!(seconds(d), text);
        }
    }

    #[test]
    fn the_versions_of_sources_stay_within_their_budget() {
        let renderer = Renderer::new(ImageSettings::default());
        let mut versions = renderer.versions.lock().unwrap();
        let key = |i: usize| format!("photos/{i:08}.jpg");
        let etag = "\"0123456789abcdef0123456789abcdef\"";
        for i in 0..200_000 {
            assert_eq!(versions.record(&key(i), etag), None);
        }
        // Each entry costs its key twice, the ETag and an Instant.
        let cost = 2 * key(0).len() + etag.len() + std::mem::size_of::<Instant>();
        let most = VERSIONS_BYTES as usize / cost;
        assert_eq!(versions.0.len(), most);
        // The oldest went; the latest are kept.
        let hour = Duration::from_secs(3600);
        assert!(versions.fresh(&key(0), hour).is_none());
        assert_eq!(versions.fresh(&key(199_999), hour).as_deref(), Some(etag));
        assert_eq!(versions.fresh(&key(199_999), Duration::ZERO), None);
        // Another version replaces it, and says which it replaced.
        assert_eq!(
            versions.record(&key(199_999), "\"v2\"").as_deref(),
            Some(etag)
        );
        assert_eq!(versions.record(&key(199_999), "\"v2\""), None);
    }
}
