//! The request pipeline both transports share: path → key → representation
//! → store round trip → decision → streaming response.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};

use crate::body::{AccessRecord, ResponseBody};
use crate::cors::{self, CorsPolicy};
use crate::derivative::params::ParamError;
use crate::derivative::{DerivativeId, ImageDerivative, Renderer};
use crate::faststart::{FaststartMovie, Faststarts};
use crate::index;
use crate::protocol::decision::{ReadMethod, ReadRequest};
use crate::protocol::headers as heads;
use crate::protocol::key::{parse_target, KeyError, ObjectKey, Target};
use crate::protocol::range::RangeLimits;
use crate::registry::Selection;
use crate::representation::SourceError;
use crate::signing::SigningKeys;
use crate::source::{Source, StoredObject};
use respond::{fixed, head_only};

mod derived;
mod respond;

/// Settings of the pipeline, from configuration.
#[derive(Clone, Debug)]
pub struct ServiceSettings {
    pub limits: RangeLimits,
    /// What a source's access refusal becomes: 403, or 404 to hide existence.
    pub denied_status: StatusCode,
    /// Which origins' pages may read responses from script (local server).
    pub cors: CorsPolicy,
    /// Cache-Control for objects that carry none of their own.
    pub cache_control: HeaderValue,
    /// Entries per index page of a directory path; `None` turns the index off
    /// (a directory path is then 404).
    pub index_page_size: Option<usize>,
    /// When set, every request must carry a valid signed-link query.
    pub signing: Option<SigningKeys>,
    /// Renders image derivatives.
    pub images: Arc<Renderer>,
    /// Serves movies faststart.
    pub faststart: Arc<Faststarts>,
}

/// How long the links on an index page stay valid when links are signed.
pub(crate) const INDEX_LINK_SECS: i64 = 3600;

/// Now, in Unix seconds, as signed links count time.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The media service: a `tower::Service` from any `http::Request` to a
/// `Response<ResponseBody>`. Cheap to clone.
#[derive(Clone)]
pub struct MediaService {
    source: Arc<dyn Source>,
    settings: Arc<ServiceSettings>,
}

impl MediaService {
    pub fn new(source: Arc<dyn Source>, settings: ServiceSettings) -> Self {
        MediaService {
            source,
            settings: Arc::new(settings),
        }
    }

    /// Answers one request head; the request body is never read.
    pub async fn respond(&self, request: http::request::Parts) -> Response<ResponseBody> {
        let started = Instant::now();
        let mut response = self.answer(&request).await;
        let origin = cors::request_origin(&request.headers);
        self.settings.cors.decorate(origin, response.headers_mut());
        let note = response
            .extensions_mut()
            .remove::<LogNote>()
            .unwrap_or_default();
        let range = note
            .ranges
            .or_else(|| {
                let value = response.headers().get(header::CONTENT_RANGE)?;
                value.to_str().ok().map(str::to_owned)
            })
            .unwrap_or_else(|| "-".to_owned());
        let record = AccessRecord::new(
            request.method.clone(),
            note.key.unwrap_or_else(|| request.uri.path().to_owned()),
            response.status().as_u16(),
            range,
            started,
        );
        response.map(|body| body.with_access_record(record))
    }

    /// The decision, top to bottom.
    async fn answer(&self, request: &http::request::Parts) -> Response<ResponseBody> {
        if request.method == http::Method::OPTIONS && !self.settings.cors.is_off() {
            return head_only(self.settings.cors.preflight(&request.headers));
        }
        let Some(method) = ReadMethod::from_method(&request.method) else {
            let allow = if self.settings.cors.is_off() {
                "GET, HEAD"
            } else {
                "GET, HEAD, OPTIONS"
            };
            return fixed(heads::method_not_allowed(allow), false);
        };
        let is_head = method == ReadMethod::Head;
        if let Some(response) = self.derived_path(request, method).await {
            return response;
        }
        let target = match parse_target(request.uri.path()) {
            Ok(target) => target,
            Err(e) => return fixed(heads::error(key_error_status(e)), is_head),
        };
        let key = match target {
            Target::Object(key) => key,
            Target::Directory(prefix) => {
                if let Err(refusal) = self.check_signature(
                    &crate::signing::signed_path(&prefix, None),
                    request,
                    is_head,
                ) {
                    return *refusal;
                }
                return self.index(request, &prefix, is_head).await;
            }
        };
        let selection = match self.select(&key, request.uri.query()) {
            Ok(selection) => selection,
            Err(e) => {
                let status = if e.is_unsupported_media() {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                } else {
                    StatusCode::BAD_REQUEST
                };
                return fixed(heads::refused(status, &e.to_string()), is_head);
            }
        };
        let canonical = Some(selection.canonical()).filter(|c| !c.is_empty());
        let signed_path = crate::signing::signed_path(key.as_str(), canonical.as_deref());
        if let Err(refusal) = self.check_signature(&signed_path, request, is_head) {
            return *refusal;
        }
        let read = ReadRequest::from_headers(method, &request.headers, self.settings.limits);
        let object = StoredObject {
            source: Arc::clone(&self.source),
            key: key.clone(),
        };
        let mut response = match selection {
            Selection::Faststart => {
                let movie = FaststartMovie {
                    source: object,
                    faststarts: Arc::clone(&self.settings.faststart),
                };
                self.serve(&movie, &read).await
            }
            Selection::Stored => self.serve(&object, &read).await,
            Selection::Image(params) | Selection::Frame(params) => {
                let accept = crate::derivative::accept_field(&request.headers);
                let derivative = ImageDerivative {
                    id: DerivativeId::new(key.as_str(), params, accept.as_deref()),
                    source: object,
                    renderer: Arc::clone(&self.settings.images),
                };
                let vary = derivative.id.accept.and(selection.kind().vary);
                let served = self.serve(&derivative, &read).await;
                served.map(|mut response| {
                    if let Some(vary) = vary {
                        response
                            .headers_mut()
                            .insert(header::VARY, HeaderValue::from_static(vary));
                    }
                    response
                })
            }
        }
        .unwrap_or_else(|e| self.source_failed(key.as_str(), &e, is_head));
        // The log names the representation: the key, with a derivative's
        // canonical parameters.
        let note = response.extensions_mut().get_or_insert_default::<LogNote>();
        note.key = Some(signed_path[1..].to_owned());
        response
    }

    /// With signed links on, the 403 for a request whose link does not sign
    /// `path` (the decoded path, with an image's canonical parameters).
    fn check_signature(
        &self,
        path: &str,
        request: &http::request::Parts,
        is_head: bool,
    ) -> Result<(), Box<Response<ResponseBody>>> {
        let Some(keys) = &self.settings.signing else {
            return Ok(());
        };
        keys.verify(path, request.uri.query(), unix_now())
            .map_err(|e| {
                let refusal = heads::refused(StatusCode::FORBIDDEN, &e.to_string());
                Box::new(fixed(refusal, is_head))
            })
    }

    /// The representation a request for `key` selects (`registry::select`).
    fn select(&self, key: &ObjectKey, query: Option<&str>) -> Result<Selection, ParamError> {
        let sizes = &self.settings.images.settings().sizes;
        let faststart = self.settings.faststart.settings().enabled;
        crate::registry::select(key.file_name(), query, sizes, faststart)
    }

    /// The index page of a directory path, when the index is on.
    async fn index(
        &self,
        request: &http::request::Parts,
        prefix: &str,
        is_head: bool,
    ) -> Response<ResponseBody> {
        let Some(page_size) = self.settings.index_page_size else {
            return fixed(heads::error(StatusCode::NOT_FOUND), is_head);
        };
        let after = match index::page_after(request.uri.query()) {
            Ok(after) => after,
            Err(e) => {
                return fixed(
                    heads::refused(StatusCode::BAD_REQUEST, &e.to_string()),
                    is_head,
                )
            }
        };
        match self.source.list(prefix, after.as_deref(), page_size).await {
            Ok(listing) => {
                let sizes = &self.settings.images.settings().sizes;
                let html = match &self.settings.signing {
                    None => index::render(prefix, &listing, sizes),
                    Some(keys) => {
                        let expires = unix_now() + INDEX_LINK_SECS;
                        let sign = |path: &str| Some(keys.sign(path, expires));
                        index::render_with(prefix, &listing, sizes, &sign)
                    }
                };
                let html = Bytes::from(html);
                let head = heads::html_page(html.len(), index::CONTENT_SECURITY_POLICY);
                fixed((head, html), is_head)
            }
            Err(e) => self.source_failed(prefix, &e, is_head),
        }
    }

    /// The short error answer to a source's failure on `key` (an object key
    /// or a listed prefix); failures of the server's side are logged.
    fn source_failed(&self, key: &str, e: &SourceError, is_head: bool) -> Response<ResponseBody> {
        let status = source_error_status(e, self.settings.denied_status);
        match e {
            // Load, not a failure: the answer says when to come back.
            SourceError::Busy { .. } => tracing::warn!(key, reason = %e, "busy"),
            _ if status.is_server_error() => tracing::error!(key, error = %e, "source failed"),
            _ => {}
        }
        match e {
            SourceError::Unprocessable(reason) | SourceError::Unsupported(reason) => {
                fixed(heads::refused(status, reason), is_head)
            }
            SourceError::Busy {
                reason,
                retry_after_secs,
            } => fixed(heads::busy(reason, *retry_after_secs), is_head),
            _ => fixed(heads::error(status), is_head),
        }
    }
}

/// What the access log needs from the answer beyond its head: the decoded key
/// and the ranges of a multipart answer. Travels in the response's extensions
/// and is taken out before the response leaves the service.
#[derive(Clone, Debug, Default)]
struct LogNote {
    key: Option<String>,
    ranges: Option<String>,
}

/// The one place where a path's refusal becomes a status.
fn key_error_status(e: KeyError) -> StatusCode {
    match e {
        KeyError::TooLong => StatusCode::URI_TOO_LONG,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The one place where a source's failure becomes a status; `denied` is the
/// configured answer to an access refusal (403, or 404 to hide existence).
fn source_error_status(e: &SourceError, denied: StatusCode) -> StatusCode {
    match e {
        SourceError::NotFound => StatusCode::NOT_FOUND,
        SourceError::Forbidden => denied,
        SourceError::Changed => StatusCode::SERVICE_UNAVAILABLE,
        SourceError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        SourceError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        SourceError::Upstream(_) => StatusCode::BAD_GATEWAY,
        SourceError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
        SourceError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        SourceError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl<B> tower::Service<Request<B>> for MediaService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (parts, _body) = request.into_parts();
        let service = self.clone();
        Box::pin(async move { Ok(service.respond(parts).await) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_failure_has_one_status() {
        let forbidden = StatusCode::NOT_FOUND; // hiding existence
        let cases = [
            (SourceError::NotFound, 404),
            (SourceError::Forbidden, 404),
            (SourceError::Changed, 503),
            (SourceError::Io(std::io::Error::other("disk")), 500),
            (SourceError::Unavailable("slow down".into()), 503),
            (SourceError::Upstream("odd".into()), 502),
            (SourceError::Unprocessable("corrupt".into()), 422),
            (SourceError::Unsupported("hvc1".into()), 415),
            (
                SourceError::Busy {
                    reason: "the render queue is full".into(),
                    retry_after_secs: 2,
                },
                503,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(
                source_error_status(&error, forbidden).as_u16(),
                status,
                "{error}"
            );
        }
    }
}
