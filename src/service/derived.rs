//! Derived paths: `GET|HEAD /{MEDIA_DERIVED_PREFIX}{stored name}` answered
//! as the derivative that name stands for, read back from the store or
//! rendered and stored.
//!
//! Behind CloudFront the edge function rewrites `/cat.jpg?w=640` to the
//! stored name, and the distribution asks S3 for it first and this server
//! only when S3 has no such object (docs/cloudfront.md). These paths carry
//! no signed link: the edge checked it before rewriting, and only the
//! distribution can invoke the Function URL (AWS_IAM, Origin Access
//! Control), so `MEDIA_DERIVED_PATHS` is on only there.

use std::sync::Arc;

use http::request::Parts;
use http::{Response, StatusCode};

use super::respond::fixed;
use super::{key_error_status, LogNote, MediaService};
use crate::body::ResponseBody;
use crate::derivative::name::NameError;
use crate::derivative::store::DerivedStore;
use crate::derivative::{DerivativeId, ImageDerivative};
use crate::protocol::decision::{ReadMethod, ReadRequest};
use crate::protocol::headers as heads;
use crate::protocol::key::{parse_target, Target};
use crate::source::StoredObject;

impl MediaService {
    /// The answer to a derived path, or `None` when `request` is not for
    /// one (derived paths off, no S3 store, or a path outside its prefix):
    /// the request is then answered as any other.
    pub(super) async fn derived_path(
        &self,
        request: &Parts,
        method: ReadMethod,
    ) -> Option<Response<ResponseBody>> {
        let images = self.settings.images.settings();
        let Some(DerivedStore::S3 { prefix, .. }) = images.store.as_ref() else {
            return None;
        };
        let path = request.uri.path();
        let under_prefix = path
            .strip_prefix('/')
            .is_some_and(|p| p.starts_with(prefix.as_str()));
        if !images.derived_paths || !under_prefix {
            return None;
        }
        let is_head = method == ReadMethod::Head;
        let name = match parse_target(path) {
            Ok(Target::Object(key)) => key.as_str().strip_prefix(prefix.as_str())?.to_owned(),
            Ok(Target::Directory(_)) => return None,
            Err(e) => return Some(fixed(heads::error(key_error_status(e)), is_head)),
        };
        let id = match DerivativeId::from_stored_name(&name, &images.sizes) {
            Ok(id) => id,
            Err(NameError::OtherEngine) => {
                return Some(fixed(heads::error(StatusCode::NOT_FOUND), is_head))
            }
            Err(e) => return Some(bad_request(&e.to_string(), is_head)),
        };
        // The key passed the path's rules as part of the name; `%` is
        // written as itself so that it is read back unchanged.
        let source_key = match parse_target(&format!("/{}", id.key.replace('%', "%25"))) {
            Ok(Target::Object(key)) => key,
            _ => return Some(fixed(heads::error(StatusCode::BAD_REQUEST), is_head)),
        };
        let read = ReadRequest::from_headers(method, &request.headers, self.settings.limits);
        let derivative = ImageDerivative {
            id,
            source: StoredObject {
                source: Arc::clone(&self.source),
                key: source_key.clone(),
            },
            renderer: Arc::clone(&self.settings.images),
        };
        // No Vary: the Accept class is part of the path.
        let mut response = self
            .serve(&derivative, &read)
            .await
            .unwrap_or_else(|e| self.source_failed(source_key.as_str(), &e, is_head));
        let note = response.extensions_mut().get_or_insert_default::<LogNote>();
        note.key = Some(name);
        Some(response)
    }
}

/// A stored name's refusal: 400 with the reason (a name for another engine
/// version is a 404 instead: that derivative is not made any more).
fn bad_request(reason: &str, is_head: bool) -> Response<ResponseBody> {
    fixed(heads::refused(StatusCode::BAD_REQUEST, reason), is_head)
}
