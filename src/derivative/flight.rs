//! Single flight: one render per derivative and source version however many
//! requests ask for it, at most `workers` decoding at once and at most
//! `queue` more waiting, each request waiting at most `render_timeout`.
//!
//! A render is a task of its own (`tokio::spawn`): it does not live or die
//! with any request. Requests wait on a shared handle to it; its entry in
//! the single-flight map goes when the task ends, whether it finished,
//! failed or was cancelled.
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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, MutexGuard, PoisonError};

use futures_util::future::{BoxFuture, FutureExt, Shared};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::{AbortHandle, JoinError};
use tracing::Instrument;

use super::render::{copy_error, render, Renderer, RETRY_AFTER_SECS};
use super::store::StoredDerivative;
use super::DerivativeId;
use crate::protocol::description::Description;
use crate::representation::{RangeReader, SourceError};

/// A render's outcome, shared by every request that waits for it.
type RenderResult = Result<StoredDerivative, Arc<SourceError>>;

/// One render under way, as the requests waiting for it see it.
pub(super) struct Flight {
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

impl Renderer {
    /// The single-flight map. Nothing panics while holding it, so a poisoned
    /// lock (a panic elsewhere in that thread) leaves it whole.
    pub(super) fn flights(&self) -> MutexGuard<'_, HashMap<String, Arc<Flight>>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether one more render may start: `workers` run and `queue` wait.
fn admits(in_flight: usize, workers: usize, queue: usize) -> bool {
    in_flight < workers.max(1).saturating_add(queue)
}

/// Joins the render of `key` under way, or starts one if the queue has room.
pub(super) fn join_or_start<'a>(
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
pub(super) struct Waiting<'a> {
    renderer: &'a Renderer,
    key: &'a str,
    flight: Arc<Flight>,
}

impl Waiting<'_> {
    /// The render's outcome, when it comes; a copy of its failure for each
    /// request.
    pub(super) async fn outcome(&self) -> Result<StoredDerivative, SourceError> {
        self.flight
            .outcome
            .clone()
            .await
            .map_err(|e| copy_error(&e))
    }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::derivative::params::{parse, DEFAULT_SIZES};
    use crate::derivative::render::render_once;
    use crate::derivative::ImageSettings;
    use crate::protocol::conditional::{EntityTag, Validators};
    use crate::protocol::range::ByteRange;
    use crate::representation::BodyStream;

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

    /// A 503 with `expected` as its reason and the renders' Retry-After.
    fn assert_busy(outcome: Result<StoredDerivative, SourceError>, expected: &str) {
        match outcome {
            Err(SourceError::Busy {
                reason,
                retry_after_secs,
            }) => {
                assert_eq!(reason, expected);
                assert_eq!(retry_after_secs, RETRY_AFTER_SECS);
            }
            other => panic!("{other:?}"),
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
        assert_busy(
            ask(&renderer, "w=64", &c).await.unwrap(),
            "2 renders are under way or waiting, the most this server takes on",
        );
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
        assert_busy(
            ask(&renderer, "w=32", &stuck).await.unwrap(),
            "the image was not rendered within 0.05 s; ask again later",
        );
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
