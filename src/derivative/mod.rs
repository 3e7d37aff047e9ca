//! Image derivatives: a stored image at the size and in the format a page
//! asks for, served as a representation of its own (a strong ETag from the
//! source's validator, the canonical parameters and its kind's version; no
//! date validator), so every HTTP rule holds for it as for a file.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::image::{self, OutputFormat};
use crate::protocol::conditional::{EntityTag, Validators};
use crate::protocol::delegation::{StoreCapabilities, StorePlan};
use crate::protocol::description::Description;
use crate::protocol::range::ByteRange;
use crate::registry::{self, KindId};
use crate::representation::{BodyStream, Opened, RangeReader, Representation, SourceError};
use crate::source::StoredObject;
use params::{FormatChoice, ImageParams};
use store::{DerivedStore, StoredDerivative};

mod flight;
mod frame;
pub mod name;
pub mod params;
mod render;
pub mod store;

pub use frame::{MAX_FRAME_MOOV_BYTES, MAX_FRAME_READ_BYTES};
use render::render_once;
pub use render::Renderer;
pub use render::RETRY_AFTER_SECS;

/// The largest source read for rendering; a larger one is refused (422).
pub const MAX_SOURCE_BYTES: u64 = 256 * 1024 * 1024;

/// Renders that may wait for a worker by default: beyond the renders a
/// page of thumbnails asks for at once from one browser, a few times over.
pub const DEFAULT_RENDER_QUEUE: usize = 64;

/// How long a request waits for its render by default: under CloudFront's
/// default origin read timeout (30 s), so the client gets this server's 503
/// rather than CloudFront's 504, and far under the function's 120 s.
pub const DEFAULT_RENDER_TIMEOUT: Duration = Duration::from_secs(20);

/// The most samples decoded for one video frame by default: a keyframe
/// interval of 20 s at 60 frames a second, 40 s at 30; OpenH264 decodes that
/// many 1080p samples in a few seconds on one core, well within the render
/// deadline.
pub const DEFAULT_FRAME_MAX_SAMPLES: usize = 1_200;

/// Settings of the image pipeline, from configuration.
#[derive(Clone, Debug)]
pub struct ImageSettings {
    /// The values `w` and `h` may take.
    pub sizes: Vec<u32>,
    /// Sources with more pixels than this are refused before decoding.
    pub max_pixels: u64,
    /// Renders at once, each on a thread of the blocking pool.
    pub workers: usize,
    /// Renders that may wait for a worker; one more is refused (503).
    pub queue: usize,
    /// How long a request waits for its render; past it, 503.
    pub render_timeout: Duration,
    /// Where rendered derivatives are kept; `None` renders every time.
    pub store: Option<DerivedStore>,
    /// The most samples a video frame may need decoded (from the keyframe
    /// before it); past it, 422 naming the cap, before any sample is read.
    pub frame_max_samples: usize,
    /// How long a source's version, once described, names its derivatives
    /// (stored under names holding it) before the source is described
    /// again, where that costs a round trip (S3).
    pub recheck_after: Duration,
    /// Whether a path under an S3 store's prefix names the derivative stored
    /// there (`MEDIA_DERIVED_PATHS`), as the CloudFront edge function asks.
    pub derived_paths: bool,
}

impl Default for ImageSettings {
    /// The defaults of configuration, with one worker and no derived store.
    fn default() -> Self {
        ImageSettings {
            sizes: params::DEFAULT_SIZES.to_vec(),
            max_pixels: image::DEFAULT_MAX_PIXELS,
            workers: 1,
            queue: DEFAULT_RENDER_QUEUE,
            render_timeout: DEFAULT_RENDER_TIMEOUT,
            store: None,
            frame_max_samples: DEFAULT_FRAME_MAX_SAMPLES,
            recheck_after: Duration::from_secs(60),
            derived_paths: false,
        }
    }
}

/// The request's `Accept` field value: its field lines combined in order,
/// separated by commas (RFC 9110 §5.3); lines that are not text are left out.
pub fn accept_field(headers: &http::HeaderMap) -> Option<String> {
    let lines: Vec<&str> = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!lines.is_empty()).then(|| lines.join(", "))
}

/// Which formats a request's `Accept` takes, as far as `fmt=auto` cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AcceptClass {
    Avif,
    Webp,
    Other,
}

impl AcceptClass {
    /// From an `Accept` field value: does it list `image/avif`, else
    /// `image/webp`? (A `q=0` entry is a refusal, RFC 9110 §12.4.2.)
    pub fn of(accept: Option<&str>) -> Self {
        let accept = accept.unwrap_or("");
        let lists = |wanted: &str| {
            accept.split(',').any(|item| {
                let mut parts = item.split(';').map(str::trim);
                let media = parts.next().unwrap_or("");
                let refused = parts.any(|p| {
                    p.strip_prefix("q=")
                        .and_then(|q| q.parse::<f32>().ok())
                        .is_some_and(|q| q == 0.0)
                });
                media.eq_ignore_ascii_case(wanted) && !refused
            })
        };
        if lists("image/avif") {
            AcceptClass::Avif
        } else if lists("image/webp") {
            AcceptClass::Webp
        } else {
            AcceptClass::Other
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            AcceptClass::Avif => "avif",
            AcceptClass::Webp => "webp",
            AcceptClass::Other => "other",
        }
    }
}

/// One derivative, named by what determines its bytes apart from the
/// source's version.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DerivativeId {
    /// The source's key.
    pub key: String,
    pub params: ImageParams,
    /// For `fmt=auto` only: the class of the request's `Accept`.
    pub accept: Option<AcceptClass>,
}

impl DerivativeId {
    pub fn new(key: &str, params: ImageParams, accept: Option<&str>) -> Self {
        DerivativeId {
            key: key.to_owned(),
            params,
            accept: (params.format == FormatChoice::Auto).then(|| AcceptClass::of(accept)),
        }
    }

    /// Its name in a derived store: the source's key, then the canonical
    /// parameters, the Accept class and the engine version.
    pub fn stored_name(&self) -> String {
        let mut name = self.params.canonical().replace('&', ",");
        if name.is_empty() {
            name.push_str("orig");
        }
        if let Some(accept) = self.accept {
            name.push_str(",accept=");
            name.push_str(accept.as_str());
        }
        format!("{}/{name},e={}", self.key, self.version())
    }

    /// Its name in the derived store for the source version tagged
    /// `source_etag`: the stored name, then `,s=` and 16 hex digits of the
    /// SHA-256 of the source's ETag. A derivative of another version of the
    /// source has another name, so no render of an old version (one that
    /// began before a replacement and finished after) is ever served for a
    /// new one.
    pub fn versioned_name(&self, source_etag: &str) -> String {
        let digest = Sha256::digest(source_etag.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("{},s={hex}", self.stored_name())
    }

    /// The version of its kind (`registry`): an image's or a frame's.
    pub fn version(&self) -> &'static str {
        let kind = match self.params.frame_ms {
            Some(_) => KindId::Frame,
            None => KindId::Image,
        };
        registry::kind(kind).version
    }

    /// The derivative's strong ETag for a source with `source_etag`: a
    /// changed source, parameter or engine gives another.
    pub fn etag(&self, source_etag: &str) -> EntityTag {
        let mut hash = Sha256::new();
        for part in [
            source_etag,
            &self.params.canonical(),
            self.accept.map_or("", AcceptClass::as_str),
            self.version(),
        ] {
            hash.update(part.as_bytes());
            hash.update(b"\n");
        }
        let digest = hash.finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        EntityTag::strong(&format!("d-{hex}")).expect("hex digits are etagc")
    }

    /// The output format for a source with or without transparency.
    pub fn output_format(&self, source_has_alpha: bool) -> OutputFormat {
        match (self.params.format, self.accept) {
            (FormatChoice::Jpeg, _) => OutputFormat::Jpeg,
            (FormatChoice::Png, _) => OutputFormat::Png,
            (FormatChoice::Webp, _) => OutputFormat::Webp,
            (FormatChoice::Avif, _) => OutputFormat::Avif,
            (FormatChoice::Auto, Some(AcceptClass::Avif)) => OutputFormat::Avif,
            (FormatChoice::Auto, Some(AcceptClass::Webp)) => OutputFormat::Webp,
            (FormatChoice::Auto, _) if source_has_alpha => OutputFormat::Png,
            (FormatChoice::Auto, _) => OutputFormat::Jpeg,
        }
    }
}

/// An image derivative, as a representation.
pub(crate) struct ImageDerivative {
    pub source: StoredObject,
    pub id: DerivativeId,
    pub renderer: Arc<Renderer>,
}

#[async_trait]
impl Representation for ImageDerivative {
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities::DescribeThenRead
    }

    /// The stored derivative of the source's version where there is one,
    /// else a render. The version is the one described within
    /// `recheck_after` (S3 stores: no HeadObject then), else described now.
    async fn open(&self, _plan: &StorePlan) -> Result<Opened, SourceError> {
        let (id, mut described) = self.resolved().await?;
        let store = self.renderer.settings.store.as_ref();
        let every_read = store.is_none_or(DerivedStore::checks_source_every_read);
        let known = match &described {
            None if !every_read => self.known_version(&id.key),
            _ => None,
        };
        let etag = match known {
            Some(etag) => etag,
            None => {
                let source = match described.take() {
                    Some(source) => source,
                    None => self.describe_source().await?,
                };
                let etag = source.0.etag().to_string();
                self.noticed(&id, &etag);
                described = Some(source);
                etag
            }
        };
        if let Some(stored) = self.lookup(&id, &etag).await? {
            return Ok(self.found(&id, stored));
        }
        let source = match described {
            Some(source) => source,
            None => {
                // Known from memory, and not stored: the source is read now,
                // so it is described now, and may have changed.
                let source = self.describe_source().await?;
                let current = source.0.etag().to_string();
                if current != etag {
                    self.noticed(&id, &current);
                    if let Some(stored) = self.lookup(&id, &current).await? {
                        return Ok(self.found(&id, stored));
                    }
                }
                source
            }
        };
        let name = id.versioned_name(&source.0.etag().to_string());
        let rendered = render_once(&self.renderer, &id, name, source.0, source.1).await?;
        Ok(self.found(&id, rendered))
    }
}

/// A stored object's description and a reader of that version.
type Described = (Description, Arc<dyn RangeReader>);

impl ImageDerivative {
    /// The derivative as named: a frame's time resolved to the picture it
    /// shows (`frame::resolve`), from the movie's index, which a request
    /// within `recheck_after` of the last description trusts as is; with
    /// the source's description when one was made for it.
    async fn resolved(&self) -> Result<(DerivativeId, Option<Described>), SourceError> {
        let Some(frame_ms) = self.id.params.frame_ms else {
            return Ok((self.id.clone(), None));
        };
        let (indexed, described) = match self.renderer.movies.fresh(&self.id.key) {
            Some((_, indexed)) => (indexed, None),
            None => {
                let (description, reader) = self.describe_source().await?;
                let indexed = self
                    .renderer
                    .movies
                    .get(&self.id.key, &description, &*reader)
                    .await?;
                (indexed, Some((description, reader)))
            }
        };
        let shown = frame::resolve(&self.renderer, indexed, frame_ms).await?;
        let mut id = self.id.clone();
        id.params.frame_ms = Some(shown);
        Ok((id, described))
    }

    /// The source's description and a reader of that version.
    async fn describe_source(&self) -> Result<Described, SourceError> {
        match self.source.open(&StorePlan::Describe).await? {
            Opened::Found {
                description,
                reader,
                ..
            } => Ok((description, reader)),
            Opened::Refused { .. } => Err(SourceError::Upstream(
                "the source refused a description".into(),
            )),
        }
    }

    /// The stored derivative `name` if it was read or rendered lately.
    fn recent(&self, name: &str) -> Option<StoredDerivative> {
        self.renderer.recent.lock().ok()?.get(name).cloned()
    }

    fn found(&self, id: &DerivativeId, stored: StoredDerivative) -> Opened {
        let description = Description {
            size: stored.bytes.len() as u64,
            validators: Validators {
                etag: id.etag(&stored.source_etag),
                // No date validator: the source's Last-Modified dates the
                // stored bytes, not these, and an If-Range date would match
                // renders of two engine versions alike.
                last_modified: None,
            },
            content_type: stored.content_type,
            // The source's own policy, kept with the derivative; without
            // one, the server's default applies as to any object.
            cache_control: stored.cache_control,
        };
        Opened::Found {
            description,
            reader: Arc::new(InMemory(stored.bytes)),
            started: None,
        }
    }

    /// The version of `key` described within `recheck_after`.
    fn known_version(&self, key: &str) -> Option<String> {
        let versions = self.renderer.versions.lock().ok()?;
        versions.fresh(key, self.renderer.settings.recheck_after)
    }

    /// The derivative `id` of the source version tagged `etag`, from memory
    /// or the derived store.
    async fn lookup(
        &self,
        id: &DerivativeId,
        etag: &str,
    ) -> Result<Option<StoredDerivative>, SourceError> {
        let Some(store) = &self.renderer.settings.store else {
            return Ok(None);
        };
        let name = id.versioned_name(etag);
        if let Some(stored) = self.recent(&name) {
            return Ok(Some(stored));
        }
        let stored = store.get(&name).await?.filter(|s| s.source_etag == etag);
        if let Some(stored) = &stored {
            self.renderer.remember(&name, stored);
        }
        Ok(stored)
    }

    /// Records the source's version, just described. When it replaces
    /// another this process knew, the old version's derivative leaves
    /// memory, and its edge copy (behind CloudFront) is removed in the
    /// background: nothing serves them any more. (The render of the new
    /// version removes the old versions' stored derivatives.)
    fn noticed(&self, id: &DerivativeId, etag: &str) {
        let replaced = match self.renderer.versions.lock() {
            Ok(mut versions) => versions.record(&id.key, etag),
            Err(_) => None,
        };
        let Some(old) = replaced else {
            return;
        };
        if let Ok(mut recent) = self.renderer.recent.lock() {
            recent.remove(&id.versioned_name(&old));
        }
        let Some(store) = self.renderer.settings.store.clone() else {
            return;
        };
        if self.renderer.settings.derived_paths {
            let name = id.stored_name();
            tokio::spawn(async move {
                if let Err(e) = store.remove(&name).await {
                    tracing::warn!(name, error = %e, "a stale edge copy could not be removed");
                }
            });
        }
    }
}

/// Bytes held in memory, read by range.
struct InMemory(Bytes);

impl RangeReader for InMemory {
    fn read(&self, range: ByteRange) -> BodyStream {
        let start = usize::try_from(range.first).unwrap_or(usize::MAX);
        let end = usize::try_from(range.last)
            .ok()
            .and_then(|l| l.checked_add(1))
            .unwrap_or(usize::MAX);
        let chunk = if start <= end && end <= self.0.len() {
            Ok(self.0.slice(start..end))
        } else {
            Err(SourceError::Changed)
        };
        Box::pin(futures_util::stream::once(async move { chunk }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_accept_class() {
        let cases = [
            (None, AcceptClass::Other),
            (Some("*/*"), AcceptClass::Other),
            (
                Some("image/avif,image/webp,image/apng,image/*,*/*;q=0.8"),
                AcceptClass::Avif,
            ),
            (Some("image/webp,*/*"), AcceptClass::Webp),
            (Some("IMAGE/WEBP"), AcceptClass::Webp),
            (Some("image/avif;q=0, image/webp"), AcceptClass::Webp),
            (Some("image/avif;q=0"), AcceptClass::Other),
            (Some("image/png,image/jpeg"), AcceptClass::Other),
        ];
        for (accept, class) in cases {
            assert_eq!(AcceptClass::of(accept), class, "{accept:?}");
        }
    }

    #[test]
    fn every_accept_line_counts() {
        // RFC 9110 §5.3: several field lines are one list, as if joined with
        // commas; only the first was read.
        let mut headers = http::HeaderMap::new();
        for line in ["text/html", "image/webp;q=0.9", "image/avif;q=0"] {
            headers.append(http::header::ACCEPT, line.parse().unwrap());
        }
        assert_eq!(
            accept_field(&headers).as_deref(),
            Some("text/html, image/webp;q=0.9, image/avif;q=0")
        );
        assert_eq!(
            AcceptClass::of(accept_field(&headers).as_deref()),
            AcceptClass::Webp
        );
        assert_eq!(accept_field(&http::HeaderMap::new()), None);
    }

    #[test]
    fn names_and_tags_change_with_what_changes_the_bytes() {
        let p = |q: &str| {
            params::parse(Some(q), params::DEFAULT_SIZES)
                .unwrap()
                .unwrap()
        };
        let id = DerivativeId::new("photos/cat.jpg", p("fmt=webp&w=640"), Some("image/avif"));
        assert_eq!(id.accept, None);
        assert_eq!(
            id.stored_name(),
            format!("photos/cat.jpg/w=640,fmt=webp,e={}", image::ENGINE_VERSION)
        );
        let frame = DerivativeId::new("a.mp4", p("frame=1&w=640"), None);
        assert_eq!(
            frame.stored_name(),
            format!(
                "a.mp4/frame=1&w=640,accept=other,e={}",
                registry::FRAME_VERSION
            )
            .replace('&', ",")
        );
        let auto = DerivativeId::new("cat.jpg", p("w=640"), Some("image/avif,*/*"));
        assert_eq!(
            auto.stored_name(),
            format!("cat.jpg/w=640,accept=avif,e={}", image::ENGINE_VERSION)
        );
        let tag = auto.etag("\"abc\"");
        assert_eq!(tag, auto.etag("\"abc\""));
        assert!(!tag.is_weak());
        assert_ne!(tag, auto.etag("\"abd\""));
        assert_ne!(
            tag,
            DerivativeId::new("cat.jpg", p("w=640"), Some("image/webp")).etag("\"abc\"")
        );
        assert_ne!(
            tag,
            DerivativeId::new("cat.jpg", p("w=384"), Some("image/avif")).etag("\"abc\"")
        );
    }

    #[test]
    fn auto_picks_what_the_client_takes() {
        let p = |q: &str| {
            params::parse(Some(q), params::DEFAULT_SIZES)
                .unwrap()
                .unwrap()
        };
        let cases = [
            ("w=640", Some("image/avif"), false, OutputFormat::Avif),
            ("w=640", Some("image/webp"), true, OutputFormat::Webp),
            ("w=640", None, false, OutputFormat::Jpeg),
            ("w=640", None, true, OutputFormat::Png),
            (
                "w=640&fmt=jpeg",
                Some("image/avif"),
                true,
                OutputFormat::Jpeg,
            ),
            ("fmt=png", None, false, OutputFormat::Png),
        ];
        for (query, accept, alpha, format) in cases {
            let id = DerivativeId::new("a.png", p(query), accept);
            assert_eq!(
                id.output_format(alpha),
                format,
                "{query} {accept:?} {alpha}"
            );
        }
    }
}
