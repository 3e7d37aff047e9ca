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
use super::store::StoredDerivative;
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
    /// When each stored derivative's source was last checked (S3 stores).
    pub(super) checked: Mutex<CheckTimes>,
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

/// The most bytes of names and times kept of the checks of stored
/// derivatives' sources: some 5,000 names of 100 bytes.
pub const CHECK_TIMES_BYTES: u64 = 1024 * 1024;

/// When each stored derivative's source was last checked, by name, within
/// [`CHECK_TIMES_BYTES`]. Every name served from an S3 store comes in, so
/// it is bounded like the caches: the oldest checks go first (those past
/// `recheck_after` mean nothing any more), and a name forgotten is only
/// checked again sooner than it had to be.
pub(super) struct CheckTimes(BoundedMap<Instant>);

impl CheckTimes {
    fn new(limit: u64) -> Self {
        CheckTimes(BoundedMap::new(limit))
    }

    pub(super) fn get(&self, name: &str) -> Option<&Instant> {
        self.0.get(name)
    }

    pub(super) fn insert(&mut self, name: String, at: Instant) {
        self.0
            .insert(&name, at, std::mem::size_of::<Instant>() as u64);
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
            checked: Mutex::new(CheckTimes::new(CHECK_TIMES_BYTES)),
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
/// and keeps the result in the derived store.
pub(super) async fn render(
    renderer: &Renderer,
    id: &DerivativeId,
    name: &str,
    source: Description,
    reader: Arc<dyn RangeReader>,
    worker: Worker,
) -> Result<StoredDerivative, SourceError> {
    let reader = reader.as_ref();
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
            // Its source was described just now: no check is due before
            // `recheck_after` has passed.
            Ok(()) => {
                if let Ok(mut checked) = renderer.checked.lock() {
                    checked.insert(name.to_owned(), Instant::now());
                }
            }
            Err(e) => tracing::warn!(name, error = %e, "a derivative could not be stored"),
        }
    }
    Ok(derivative)
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
    fn the_times_of_source_checks_stay_within_their_budget() {
        let renderer = Renderer::new(ImageSettings::default());
        let mut checked = renderer.checked.lock().unwrap();
        let name = |i: usize| format!("photos/{i:08}.jpg/w=640,fmt=webp,e=img1");
        let started = Instant::now();
        for i in 0..200_000 {
            checked.insert(name(i), started);
        }
        // Each entry costs its name twice and an Instant.
        let cost = 2 * name(0).len() + std::mem::size_of::<Instant>();
        let most = CHECK_TIMES_BYTES as usize / cost;
        assert_eq!(checked.0.len(), most);
        // The oldest checks went; the latest are kept.
        assert!(checked.get(&name(0)).is_none());
        assert!(checked.get(&name(199_999)).is_some());
    }
}
