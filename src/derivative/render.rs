//! The renders: at most `workers` at once, at most `queue` more waiting for
//! a worker, one per derivative however many requests wait for it, each
//! kept in the derived store.
//!
//! A render is a task of its own (`tokio::spawn`): it does not live or die
//! with any request. Requests wait on a shared handle to it, each for at most
//! `render_timeout`; its entry in the single-flight map goes when the task
//! ends, whether it finished, failed or was cancelled.
//!
//! - A worker's place is taken before the source is read, so a waiting render
//!   holds no source bytes; the place travels with the decode into the
//!   blocking pool and is given back when the decode returns, whatever became
//!   of the task. So no more decodes run at once than there are workers, even
//!   past a deadline: a decode cannot be interrupted, and giving its place
//!   back while it runs would let CPU work pile up behind the requests it
//!   turned away.
//! - A render that no request waits for any more (the clients left, or their
//!   deadlines passed) is cancelled if it has not handed its decode to the
//!   blocking pool: until then it has cost a place in the queue or a read,
//!   and nobody would see it. Once it has, it runs to its end and its result
//!   is kept (the derived store, the recent memory), because the CPU is spent
//!   anyway and the next request for it is then a read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{AbortHandle, JoinError};
use tracing::Instrument;

use super::params;
use super::store::StoredDerivative;
use super::{DerivativeId, ImageSettings, MAX_SOURCE_BYTES};
use crate::bounded::BoundedMap;
use crate::image::{self, ImageError, RenderSpec};
use crate::protocol::description::Description;
use crate::protocol::range::ByteRange;
use crate::representation::{read_exact, BodyStream, RangeReader, SourceError};

type RenderResult = Result<StoredDerivative, Arc<SourceError>>;

/// What a busy answer tells the client to wait before asking again: a
/// render takes a fraction of a second to a few, so the queue has moved on.
pub const RETRY_AFTER_SECS: u32 = 2;

/// Renders derivatives: at most `workers` at once, at most `queue` more
/// waiting, and one render per derivative at a time however many requests
/// ask for it.
pub struct Renderer {
    pub(super) settings: ImageSettings,
    permits: Arc<Semaphore>,
    /// The renders under way or waiting for a worker, by derivative and
    /// source version.
    in_flight: Mutex<HashMap<String, Arc<Flight>>>,
    /// Numbers the renders, so that a render's end removes its own entry and
    /// never a later render's of the same derivative.
    flights_started: AtomicU64,
    /// When each stored derivative's source was last checked (S3 stores).
    pub(super) checked: Mutex<HashMap<String, Instant>>,
    /// Renders finished by this process.
    renders: AtomicU64,
    /// Bytes read from sources for renders.
    pub(super) source_bytes: AtomicU64,
    /// Stored derivatives read or rendered lately, in memory, by name, so
    /// that a derivative asked for again is served as a file is: no read of
    /// the store.
    pub(super) recent: Mutex<BoundedMap<StoredDerivative>>,
}

/// One render under way, as the requests waiting for it see it.
struct Flight {
    number: u64,
    /// The render's outcome, for every request that waits for it.
    outcome: Shared<BoxFuture<'static, RenderResult>>,
    task: AbortHandle,
    /// Requests waiting for it; changed only under the map's lock.
    waiters: AtomicUsize,
    /// Set when its decode is handed to the blocking pool: from then on the
    /// render runs to its end.
    committed: Arc<AtomicBool>,
}

/// The most bytes of stored derivatives kept in memory: a page's thumbnails
/// and posters, many times over. One larger than an eighth of it is not kept.
pub const RECENT_BYTES: u64 = 32 * 1024 * 1024;

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Renderer {
    pub fn new(settings: ImageSettings) -> Arc<Self> {
        Arc::new(Renderer {
            permits: Arc::new(Semaphore::new(settings.workers.max(1))),
            settings,
            in_flight: Mutex::new(HashMap::new()),
            flights_started: AtomicU64::new(0),
            checked: Mutex::new(HashMap::new()),
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

    /// The single-flight map. Nothing panics while holding it, so a poisoned
    /// lock (a panic elsewhere in that thread) leaves it whole.
    fn flights(&self) -> MutexGuard<'_, HashMap<String, Arc<Flight>>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether one more render may start: `workers` run and `queue` wait.
fn admits(in_flight: usize, workers: usize, queue: usize) -> bool {
    in_flight < workers.max(1).saturating_add(queue)
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
    match tokio::time::timeout(timeout, waiting.flight.outcome.clone()).await {
        Ok(outcome) => outcome.map_err(|e| copy_error(&e)),
        Err(_) => Err(SourceError::Busy {
            reason: format!(
                "the image was not rendered within {}; ask again later",
                seconds(timeout)
            ),
            retry_after_secs: RETRY_AFTER_SECS,
        }),
    }
}

/// Joins the render of `key` under way, or starts one if the queue has room.
fn join_or_start<'a>(
    renderer: &'a Arc<Renderer>,
    key: &'a str,
    id: &DerivativeId,
    name: String,
    source: Description,
    reader: Arc<dyn RangeReader>,
) -> Result<Waiting<'a>, SourceError> {
    let mut in_flight = renderer.flights();
    if let Some(flight) = in_flight.get(key) {
        flight.waiters.fetch_add(1, Ordering::Relaxed);
        let flight = Arc::clone(flight);
        drop(in_flight);
        return Ok(Waiting {
            renderer,
            key,
            flight,
        });
    }
    let settings = &renderer.settings;
    if !admits(in_flight.len(), settings.workers, settings.queue) {
        return Err(SourceError::Busy {
            reason: format!(
                "{} renders are under way or waiting, the most this server takes on",
                in_flight.len()
            ),
            retry_after_secs: RETRY_AFTER_SECS,
        });
    }
    let number = renderer.flights_started.fetch_add(1, Ordering::Relaxed);
    let committed = Arc::new(AtomicBool::new(false));
    let entry = FlightEntry {
        renderer: Arc::clone(renderer),
        key: key.to_owned(),
        number,
    };
    let (id, worker_committed) = (id.clone(), Arc::clone(&committed));
    // Its log lines carry the request that started it (on Lambda, its id).
    let span = tracing::Span::current();
    let task = tokio::spawn(
        async move {
            let entry = entry; // dropped with the task, however it ends
            let renderer = &entry.renderer;
            let permit = Arc::clone(&renderer.permits)
                .acquire_owned()
                .await
                .map_err(|_| Arc::new(SourceError::Upstream("the renderer is closed".into())))?;
            let worker = Worker {
                permit,
                committed: worker_committed,
            };
            render(renderer, &id, &name, source, reader, worker)
                .await
                .map_err(Arc::new)
        }
        .instrument(span),
    );
    let flight = Arc::new(Flight {
        number,
        task: task.abort_handle(),
        outcome: task
            .map(|joined| joined.unwrap_or_else(|e| Err(Arc::new(task_failed(&e)))))
            .boxed()
            .shared(),
        waiters: AtomicUsize::new(1),
        committed,
    });
    in_flight.insert(key.to_owned(), Arc::clone(&flight));
    drop(in_flight);
    Ok(Waiting {
        renderer,
        key,
        flight,
    })
}

/// A render task that ended without an outcome: a panic, or cancelled.
fn task_failed(e: &JoinError) -> SourceError {
    if e.is_cancelled() {
        SourceError::Busy {
            reason: "the render was cancelled".into(),
            retry_after_secs: RETRY_AFTER_SECS,
        }
    } else {
        SourceError::Unprocessable("the image could not be rendered".into())
    }
}

/// A render's entry in the single-flight map, owned by its task: dropped
/// when the task ends, however it ends, and the entry goes with it.
struct FlightEntry {
    renderer: Arc<Renderer>,
    key: String,
    number: u64,
}

impl Drop for FlightEntry {
    fn drop(&mut self) {
        let mut in_flight = self.renderer.flights();
        let removed = match in_flight.get(&self.key) {
            Some(flight) if flight.number == self.number => in_flight.remove(&self.key),
            _ => None,
        };
        drop(in_flight);
        drop(removed);
    }
}

/// One request waiting for a render; when the last one stops waiting (its
/// client left, or its deadline passed) before the decode started, the
/// render is cancelled.
struct Waiting<'a> {
    renderer: &'a Renderer,
    key: &'a str,
    flight: Arc<Flight>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let flight = &self.flight;
        let mut in_flight = self.renderer.flights();
        let left = flight
            .waiters
            .fetch_sub(1, Ordering::Relaxed)
            .saturating_sub(1);
        let cancel = left == 0 && !flight.committed.load(Ordering::Acquire);
        let removed = match in_flight.get(self.key) {
            Some(current) if cancel && current.number == flight.number => {
                in_flight.remove(self.key)
            }
            _ => None,
        };
        drop(in_flight);
        drop(removed);
        if cancel {
            // A finished task ignores this.
            flight.task.abort();
        }
    }
}

/// A worker's place, taken before the source is read. The decode takes it
/// along to the blocking pool and gives it back when it returns.
pub(super) struct Worker {
    permit: OwnedSemaphorePermit,
    committed: Arc<AtomicBool>,
}

impl Worker {
    /// Runs `decode` on the blocking pool in this worker's place; `None` if
    /// it panicked. From here on the render is not cancelled.
    pub(super) async fn decode<T: Send + 'static>(
        self,
        decode: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        self.committed.store(true, Ordering::Release);
        let permit = self.permit;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            decode()
        })
        .await
        .ok()
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
async fn render(
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
        cache_control: None,
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
    use crate::derivative::params::{parse, DEFAULT_SIZES};
    use crate::protocol::conditional::{EntityTag, Validators};

    const PHOTO: &[u8] = include_bytes!("../../tests/fixtures/images/orient-6.jpg");
    /// Long enough for the slowest machine, and never reached when it works.
    const PATIENCE: Duration = Duration::from_secs(10);

    /// A source whose reads wait until the test opens its gate, and which
    /// counts the reads that started.
    struct GatedSource {
        bytes: Bytes,
        gate: Arc<Semaphore>,
        reads: Arc<AtomicUsize>,
    }

    impl GatedSource {
        fn new(bytes: &[u8]) -> Arc<Self> {
            Arc::new(GatedSource {
                bytes: Bytes::copy_from_slice(bytes),
                gate: Arc::new(Semaphore::new(0)),
                reads: Arc::new(AtomicUsize::new(0)),
            })
        }

        fn open(&self) {
            self.gate.add_permits(1);
        }

        fn reads(&self) -> usize {
            self.reads.load(Ordering::SeqCst)
        }
    }

    impl RangeReader for GatedSource {
        fn read(&self, range: ByteRange) -> BodyStream {
            let (gate, reads) = (Arc::clone(&self.gate), Arc::clone(&self.reads));
            let bytes = self
                .bytes
                .slice(range.first as usize..range.last as usize + 1);
            Box::pin(futures_util::stream::once(async move {
                reads.fetch_add(1, Ordering::SeqCst);
                let _open = gate.acquire().await;
                Ok(bytes)
            }))
        }
    }

    fn renderer(workers: usize, queue: usize, render_timeout: Duration) -> Arc<Renderer> {
        Renderer::new(ImageSettings {
            workers,
            queue,
            render_timeout,
            ..ImageSettings::default()
        })
    }

    /// A request for `photo.jpg?QUERY` of `source`, as the service makes it.
    fn ask(
        renderer: &Arc<Renderer>,
        query: &str,
        source: &Arc<GatedSource>,
    ) -> tokio::task::JoinHandle<Result<StoredDerivative, SourceError>> {
        let params = parse(Some(query), DEFAULT_SIZES).unwrap().unwrap();
        let id = DerivativeId::new("photo.jpg", params, None);
        let description = Description {
            size: source.bytes.len() as u64,
            validators: Validators {
                etag: EntityTag::strong("v1").unwrap(),
                last_modified: None,
            },
            content_type: "image/jpeg".into(),
            cache_control: None,
        };
        let (renderer, reader) = (Arc::clone(renderer), Arc::clone(source));
        tokio::spawn(async move {
            render_once(&renderer, &id, id.stored_name(), description, reader).await
        })
    }

    async fn until(what: &str, done: impl Fn() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < PATIENCE, "waited for {what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[test]
    fn admits_workers_and_a_queue() {
        // (renders in flight, workers, queue, one more admitted)
        let cases = [
            (0, 1, 0, true),
            (1, 1, 0, false),
            (0, 0, 0, true), // no workers is one
            (2, 1, 2, true),
            (3, 1, 2, false),
            (65, 2, 64, true),
            (66, 2, 64, false),
            (usize::MAX - 1, 1, usize::MAX, true),
        ];
        for (in_flight, workers, queue, admitted) in cases {
            assert_eq!(
                admits(in_flight, workers, queue),
                admitted,
                "{in_flight} {workers} {queue}"
            );
        }
    }

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

    #[tokio::test]
    async fn a_waiting_render_reads_nothing_and_the_queue_is_bounded() {
        let renderer = renderer(1, 1, PATIENCE);
        let (a, b, c) = (
            GatedSource::new(PHOTO),
            GatedSource::new(PHOTO),
            GatedSource::new(PHOTO),
        );
        let first = ask(&renderer, "w=32", &a);
        until("the first render to read", || a.reads() == 1).await;
        let second = ask(&renderer, "w=48", &b);
        until("the second render to queue", || renderer.in_flight() == 2).await;
        // The worker is taken: the second render waits without reading.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(b.reads(), 0, "a queued render read its source");
        // One worker and a queue of one: a third render is turned away.
        match ask(&renderer, "w=64", &c).await.unwrap() {
            Err(SourceError::Busy {
                reason,
                retry_after_secs,
            }) => {
                assert_eq!(
                    reason,
                    "2 renders are under way or waiting, the most this server takes on"
                );
                assert_eq!(retry_after_secs, RETRY_AFTER_SECS);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.reads(), 0);
        a.open();
        assert!(first.await.unwrap().is_ok());
        until("the second render to read", || b.reads() == 1).await;
        b.open();
        assert!(second.await.unwrap().is_ok());
        assert_eq!((renderer.renders(), renderer.in_flight()), (2, 0));
    }

    #[tokio::test]
    async fn renders_nobody_waits_for_go_before_their_decode_and_free_the_worker() {
        let renderer = renderer(1, 4, PATIENCE);
        let (a, b, c) = (
            GatedSource::new(PHOTO),
            GatedSource::new(PHOTO),
            GatedSource::new(PHOTO),
        );
        c.open();
        let reading = ask(&renderer, "w=32", &a);
        until("the first render to read", || a.reads() == 1).await;
        let queued = ask(&renderer, "w=48", &b);
        until("the second render to queue", || renderer.in_flight() == 2).await;
        // Their clients leave: the queued render goes without reading, and
        // the render reading its source goes and gives its worker back.
        queued.abort();
        until("the queued render to go", || renderer.in_flight() == 1).await;
        reading.abort();
        until("the reading render to go", || renderer.in_flight() == 0).await;
        assert!(ask(&renderer, "w=64", &c).await.unwrap().is_ok());
        assert_eq!((a.reads(), b.reads(), renderer.renders()), (1, 0, 1));
    }

    #[tokio::test]
    async fn one_render_for_many_requests_and_its_entry_goes_however_it_ends() {
        let renderer = renderer(1, 0, PATIENCE);
        let photo = GatedSource::new(PHOTO);
        let requests: Vec<_> = (0..4).map(|_| ask(&renderer, "w=32", &photo)).collect();
        until("the render to read", || photo.reads() == 1).await;
        photo.open();
        let mut bodies = Vec::new();
        for request in requests {
            bodies.push(request.await.unwrap().unwrap().bytes);
        }
        assert!(bodies.windows(2).all(|pair| pair[0] == pair[1]));
        assert_eq!((renderer.renders(), renderer.in_flight()), (1, 0));

        // A failure: every request gets it, and the entry goes too.
        let noise = GatedSource::new(&[7u8; 5000]);
        noise.open();
        let failed: Vec<_> = (0..2).map(|_| ask(&renderer, "w=32", &noise)).collect();
        for request in failed {
            match request.await.unwrap() {
                Err(SourceError::Unprocessable(reason)) => {
                    assert!(reason.starts_with("unsupported image"), "{reason}")
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(renderer.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_request_waits_for_its_render_at_most_the_deadline() {
        let renderer = renderer(1, 4, Duration::from_millis(50));
        let stuck = GatedSource::new(PHOTO);
        let started = Instant::now();
        match ask(&renderer, "w=32", &stuck).await.unwrap() {
            Err(SourceError::Busy {
                reason,
                retry_after_secs,
            }) => {
                assert_eq!(
                    reason,
                    "the image was not rendered within 0.05 s; ask again later"
                );
                assert_eq!(retry_after_secs, RETRY_AFTER_SECS);
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() >= Duration::from_millis(50));
        // Nobody waits and it had not started decoding: it is gone, and its
        // worker is free for the next render.
        until("the stuck render to go", || renderer.in_flight() == 0).await;
        until("its worker to be free", || {
            renderer.permits.available_permits() == 1
        })
        .await;
        assert_eq!(renderer.renders(), 0);
    }
}
