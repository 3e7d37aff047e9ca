//! The renders: at most `workers` at once on the blocking pool, one per
//! derivative however many requests wait for it, each kept in the derived
//! store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::future::{BoxFuture, Shared};
use futures_util::StreamExt;
use tokio::sync::Semaphore;

use super::params;
use super::store::StoredDerivative;
use super::{DerivativeId, ImageSettings, MAX_SOURCE_BYTES};
use crate::bounded::BoundedMap;
use crate::image::{self, ImageError, RenderSpec};
use crate::protocol::description::Description;
use crate::protocol::range::ByteRange;
use crate::representation::{BodyStream, RangeReader, SourceError};

type RenderResult = Result<StoredDerivative, Arc<SourceError>>;

/// Renders derivatives: at most `workers` at once, and one render per
/// derivative at a time however many requests ask for it.
pub struct Renderer {
    pub(super) settings: ImageSettings,
    permits: Semaphore,
    pub(super) in_flight: Mutex<HashMap<String, Shared<BoxFuture<'static, RenderResult>>>>,
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
            permits: Semaphore::new(settings.workers.max(1)),
            settings,
            in_flight: Mutex::new(HashMap::new()),
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

    pub fn settings(&self) -> &ImageSettings {
        &self.settings
    }
}

/// Reads the source, renders on the blocking pool within the worker bound,
/// and keeps the result in the derived store.
pub(super) async fn render(
    renderer: &Renderer,
    id: &DerivativeId,
    name: &str,
    source: Description,
    reader: Arc<dyn RangeReader>,
) -> Result<StoredDerivative, SourceError> {
    let rendered = match id.params.frame_ms {
        Some(ms) => super::frame::render_frame(renderer, id, ms, &source, reader.as_ref()).await?,
        None => render_image(renderer, id, &source, reader.as_ref()).await?,
    };
    renderer.renders.fetch_add(1, Ordering::Relaxed);
    let derivative = StoredDerivative {
        bytes: Bytes::from(rendered.bytes),
        content_type: rendered.content_type.to_owned(),
        source_etag: source.etag().to_string(),
        source_last_modified: source.last_modified(),
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
) -> Result<image::Rendered, SourceError> {
    let settings = &renderer.settings;
    if source.size > MAX_SOURCE_BYTES {
        return Err(SourceError::Unprocessable(format!(
            "the image is {} bytes; the most read for rendering is {MAX_SOURCE_BYTES}",
            source.size
        )));
    }
    let head = read_all(reader, source.size.min(image::PROBE_HEAD_LEN as u64)).await?;
    let probe = image::probe(&head).map_err(unprocessable)?;
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
    let _permit = renderer.permit().await?;
    tokio::task::spawn_blocking(move || image::render(&bytes, &spec, max_pixels))
        .await
        .map_err(|_| SourceError::Unprocessable("the image could not be decoded".into()))?
        .map_err(unprocessable)
}

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

    /// One of the `workers` places to render in, when one is free.
    pub(super) async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, SourceError> {
        self.permits
            .acquire()
            .await
            .map_err(|_| SourceError::Upstream("the renderer is closed".into()))
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
    }
}
