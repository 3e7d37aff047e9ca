//! What a response says of the representation it carries (RFC 9110 §3.2,
//! §8): its length, validators, type and caching.

use std::time::SystemTime;

use super::conditional::{EntityTag, Validators};

/// The description of one representation: a stored object, or bytes
/// computed from one. Everything the header fields of an answer need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description {
    pub size: u64,
    pub validators: Validators,
    pub content_type: String,
    /// The representation's own Cache-Control, if its store keeps one.
    pub cache_control: Option<String>,
}

impl Description {
    pub fn etag(&self) -> &EntityTag {
        &self.validators.etag
    }

    pub fn last_modified(&self) -> Option<SystemTime> {
        self.validators.last_modified
    }
}
