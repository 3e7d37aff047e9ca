//! Thin adapters from a network to [`crate::service::MediaService`].

pub mod lambda;
pub mod local;
