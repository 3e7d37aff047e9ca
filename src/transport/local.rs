//! The local HTTP/1.1 server (hyper): keep-alive, a header read timeout
//! (which is also the idle timeout of a kept-alive connection), a write
//! timeout, a cap on open connections and a graceful shutdown.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::service::MediaService;

/// How long in-flight responses may run on after a shutdown signal.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Largest request head accepted (request line and header fields), in bytes;
/// a larger one gets 431 and the connection is closed.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Most header fields accepted in one request; more get 431.
pub const MAX_HEADERS: usize = 64;

/// Pause after a failed accept (e.g. out of file descriptors) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Settings of the local transport.
#[derive(Clone, Copy, Debug)]
pub struct LocalSettings {
    /// Longest time a client may take to send a request head. hyper starts
    /// this timer when a connection begins to wait for a head, so it also
    /// closes a kept-alive connection left idle that long.
    pub header_read_timeout: Duration,
    /// Most response bytes queued per connection: one read chunk of the
    /// source, so a slow reader holds that chunk and at most one more being
    /// read.
    pub queued_bytes: usize,
    /// Longest time a connection's writes may wait for the client to take
    /// bytes (its socket buffer full) before the connection is dropped.
    pub write_timeout: Duration,
    /// Most connections open at once, over all event loops; past it no
    /// connection is accepted until one closes (new ones wait in the
    /// listen queue).
    pub max_connections: usize,
}

/// Serves `service` on `listener`, in the current runtime, until `shutdown`
/// resolves, then stops accepting, lets open responses finish (up to
/// [`SHUTDOWN_GRACE`]) and returns.
pub async fn serve(
    listener: TcpListener,
    service: MediaService,
    settings: LocalSettings,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let open = Arc::new(Semaphore::new(settings.max_connections));
    serve_limited(listener, service, settings, open, shutdown).await
}

/// [`serve`], with the connections counted in `open`, which event loops
/// share: a connection is accepted only with a permit, held until it closes.
async fn serve_limited(
    listener: TcpListener,
    service: MediaService,
    settings: LocalSettings,
    open: Arc<Semaphore>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_header_size(MAX_HEADER_BYTES)
        .max_buf_size(settings.queued_bytes)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&open).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break, // closed: never, the semaphore is ours
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Media chunks are large; small heads (304, 416) should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let connection = builder.serve_connection(
            TokioIo::new(WriteDeadline::new(stream, settings.write_timeout)),
            TowerToHyperService::new(service.clone()),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for open responses");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("grace period over; closing open connections"),
    }
    Ok(())
}

/// Serves `listener` with `workers` event loops, each a single-threaded
/// runtime on a thread of its own, all accepting from the same socket (as
/// nginx's worker processes do): a connection's tasks never move between
/// threads or wake another, and an idle loop takes the next connection. When
/// `shutdown` resolves, every loop stops as [`serve`] does; returns when all
/// have.
pub async fn serve_on_threads(
    listener: std::net::TcpListener,
    service: MediaService,
    settings: LocalSettings,
    workers: usize,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let stop = CancellationToken::new();
    let open = Arc::new(Semaphore::new(settings.max_connections));
    let mut threads = Vec::with_capacity(workers);
    for i in 0..workers.max(1) {
        let listener = listener.try_clone()?;
        let service = service.clone();
        let stopped = stop.clone();
        let open = Arc::clone(&open);
        let thread = std::thread::Builder::new()
            .name(format!("serve-{i}"))
            .spawn(move || -> io::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    serve_limited(listener, service, settings, open, stopped.cancelled_owned())
                        .await
                })
            })?;
        threads.push(thread);
    }
    drop(listener);
    shutdown.await;
    stop.cancel();
    tokio::task::spawn_blocking(move || {
        for thread in threads {
            match thread.join() {
                Ok(result) => result?,
                Err(_) => return Err(io::Error::other("a server thread panicked")),
            }
        }
        Ok(())
    })
    .await
    .map_err(io::Error::other)?
}

/// A connection whose writes fail with `TimedOut` once they have waited
/// `timeout` for the client to take bytes: a client that stops reading is
/// dropped, and the response's source is read no further. Time spent waiting
/// for the source, or for the next request, is not counted.
struct WriteDeadline<S> {
    inner: S,
    timeout: Duration,
    /// Running while the socket refuses bytes; gone once a write goes through.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, timeout: Duration) -> Self {
        WriteDeadline {
            inner,
            timeout,
            stalled: None,
        }
    }

    fn guard<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if stalled.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took no bytes for the write timeout",
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        // hyper queues body chunks instead of copying them when it can.
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.guard(cx, polled)
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        () = terminate => {},
    }
}
