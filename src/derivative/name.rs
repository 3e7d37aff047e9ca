//! A stored derivative's name read back into the derivative it names, so a
//! request for `{derived prefix}{stored name}` (what the CloudFront edge
//! function rewrites a derivative request to) can be rendered when the
//! store does not hold it yet.
//!
//! Only the one spelling `DerivativeId::stored_name` writes is taken: any
//! other spelling of the same picture is refused, so a store holds one
//! object per derivative and a cache one entry. A name is refused where a
//! query with its parameters would be (`registry::select`): a video frame's name
//! must hold `frame=`, an image's must not.

use super::params::{self, FormatChoice, ImageParams, ParamError};
use super::{AcceptClass, DerivativeId};
use crate::registry::{self, FRAME_EXTENSIONS, IMAGE_EXTENSIONS};

/// Why a name is not a derivative's stored name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not of the form `KEY/PARAMS[,accept=CLASS],e=ENGINE` (a 400).
    #[error("'{0}' is not the name of a stored derivative (KEY/PARAMS,e=ENGINE)")]
    Malformed(String),
    /// The parameters are refused as a query with them would be (a 400).
    #[error(transparent)]
    Params(#[from] ParamError),
    /// Valid parameters, written otherwise than in canonical form (a 400).
    #[error("'{0}' is not the canonical form of these parameters")]
    NotCanonical(String),
    /// Named for another version of its kind: that derivative is not made
    /// any more (a 404).
    #[error("the derivative is named for another version of its kind")]
    OtherEngine,
}

impl DerivativeId {
    /// The derivative that `name` (a stored name, as `stored_name` writes
    /// it) names; `sizes` are the values `w` and `h` may take.
    pub fn from_stored_name(name: &str, sizes: &[u32]) -> Result<DerivativeId, NameError> {
        let malformed = || NameError::Malformed(name.chars().take(64).collect());
        let (key, last) = name.rsplit_once('/').ok_or_else(malformed)?;
        if key.is_empty() {
            return Err(malformed());
        }
        let file_name = key.rsplit('/').next().unwrap_or(key);
        let movie = registry::has_extension(file_name, FRAME_EXTENSIONS);
        if !movie && !registry::has_extension(file_name, IMAGE_EXTENSIONS) {
            return Err(ParamError::NotAnImage.into());
        }
        let mut items: Vec<&str> = last.split(',').collect();
        let engine = items
            .pop()
            .and_then(|e| e.strip_prefix("e="))
            .ok_or_else(malformed)?;
        let accept = match items.last().and_then(|a| a.strip_prefix("accept=")) {
            Some(class) => {
                items.pop();
                Some(match class {
                    "avif" => AcceptClass::Avif,
                    "webp" => AcceptClass::Webp,
                    "other" => AcceptClass::Other,
                    _ => return Err(malformed()),
                })
            }
            None => None,
        };
        let written = items.join("&");
        let params = match written.as_str() {
            "orig" => ImageParams::default(),
            "" => return Err(malformed()),
            query => params::parse(Some(query), sizes)?.ok_or_else(malformed)?,
        };
        if movie {
            registry::frame_selection(params)?;
        } else {
            registry::image_selection(params)?;
        }
        let canonical = params.canonical();
        if canonical != written && !(canonical.is_empty() && written == "orig") {
            return Err(NameError::NotCanonical(written.chars().take(64).collect()));
        }
        if accept.is_some() != (params.format == FormatChoice::Auto) {
            return Err(malformed());
        }
        let id = DerivativeId {
            key: key.to_owned(),
            params,
            accept,
        };
        if engine != id.version() {
            return Err(NameError::OtherEngine);
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derivative::params::DEFAULT_SIZES;

    #[test]
    fn reads_back_every_name_it_writes() {
        let cases = [
            ("photos/cat.jpg", "w=640&fmt=webp", None),
            ("cat.jpg", "w=640", Some("image/avif,image/webp")),
            ("cat.jpg", "w=640", Some("image/webp")),
            ("cat.jpg", "w=640", None),
            (
                "a b/é.PNG",
                "q=80&fit=cover&h=384&w=640",
                Some("image/avif"),
            ),
            ("x.gif", "fit=inside&w=16", None),
            ("x.avif", "fmt=avif&q=5&h=32", None),
            ("100%.jpeg", "fmt=jpeg&w=16", None),
            ("clips/a.mp4", "frame=1&w=640&fmt=jpeg", None),
            ("clips/a.mp4", "w=640&frame=1.500", Some("image/avif")),
            ("A.MOV", "frame=0", None),
            ("b.m4v", "frame=86400&fit=cover&h=32&fmt=webp&q=5", None),
        ];
        for (key, query, accept) in cases {
            let params = params::parse(Some(query), DEFAULT_SIZES).unwrap().unwrap();
            let id = DerivativeId::new(key, params, accept);
            let name = id.stored_name();
            assert_eq!(
                DerivativeId::from_stored_name(&name, DEFAULT_SIZES),
                Ok(id),
                "{name}"
            );
        }
    }

    #[test]
    fn refuses_any_other_name() {
        let e = registry::kind(registry::KindId::Image).version;
        let f = registry::kind(registry::KindId::Frame).version;
        let malformed = |n: &str| Err(NameError::Malformed(n.to_owned()));
        let cases: Vec<(String, Result<DerivativeId, NameError>)> = vec![
            ("cat.jpg".into(), malformed("cat.jpg")),
            (
                format!("/w=640,fmt=webp,e={e}"),
                malformed(&format!("/w=640,fmt=webp,e={e}")),
            ),
            (
                "cat.jpg/w=640,fmt=webp".into(),
                malformed("cat.jpg/w=640,fmt=webp"),
            ),
            (
                format!("cat.jpg/e={e}"),
                malformed(&format!("cat.jpg/e={e}")),
            ),
            (
                format!("cat.jpg/w=640,e={e}"),
                malformed(&format!("cat.jpg/w=640,e={e}")),
            ),
            (
                format!("cat.jpg/w=640,fmt=webp,accept=avif,e={e}"),
                malformed(&format!("cat.jpg/w=640,fmt=webp,accept=avif,e={e}")),
            ),
            (
                format!("cat.jpg/w=640,accept=png,e={e}"),
                malformed(&format!("cat.jpg/w=640,accept=png,e={e}")),
            ),
            (
                format!("cat.txt/w=640,fmt=webp,e={e}"),
                Err(NameError::Params(ParamError::NotAnImage)),
            ),
            (
                format!("cat.mp4/w=640,fmt=webp,e={e}"),
                Err(NameError::Params(ParamError::NoFrame)),
            ),
            (
                format!("cat.mp4/orig,accept=other,e={e}"),
                Err(NameError::Params(ParamError::NoFrame)),
            ),
            (
                format!("cat.jpg/orig,accept=other,e={e}"),
                Err(NameError::Params(ParamError::NoSize)),
            ),
            (
                format!("cat.jpg/fmt=webp,e={e}"),
                Err(NameError::Params(ParamError::NoSize)),
            ),
            (
                format!("cat.jpg/frame=1,w=640,fmt=webp,e={e}"),
                Err(NameError::Params(ParamError::FrameOnImage)),
            ),
            (
                format!("cat.mp4/w=640,frame=1,fmt=webp,e={f}"),
                Err(NameError::NotCanonical("w=640&frame=1&fmt=webp".into())),
            ),
            (
                format!("cat.mp4/frame=1.500,fmt=webp,e={f}"),
                Err(NameError::NotCanonical("frame=1.500&fmt=webp".into())),
            ),
            (
                format!("cat.mp4/frame=01,fmt=webp,e={f}"),
                Err(NameError::Params(
                    params::parse(Some("frame=01"), DEFAULT_SIZES).unwrap_err(),
                )),
            ),
            (
                format!("cat.jpg/fmt=webp,w=640,e={e}"),
                Err(NameError::NotCanonical("fmt=webp&w=640".into())),
            ),
            (
                format!("cat.jpg/w=16,fit=inside,accept=other,e={e}"),
                Err(NameError::NotCanonical("w=16&fit=inside".into())),
            ),
            (
                format!("cat.jpg/w=0640,fmt=webp,e={e}"),
                Err(NameError::Params(
                    params::parse(Some("w=0640"), DEFAULT_SIZES).unwrap_err(),
                )),
            ),
            (
                format!("cat.jpg/v=1,fmt=webp,e={e}"),
                Err(NameError::Params(ParamError::Unknown("v".into()))),
            ),
            (
                "cat.jpg/w=640,fmt=webp,e=img0".into(),
                Err(NameError::OtherEngine),
            ),
            (
                format!("cat.jpg/w=640,fmt=webp,e={f}"),
                Err(NameError::OtherEngine),
            ),
            (
                format!("cat.mp4/frame=1,fmt=webp,e={e}"),
                Err(NameError::OtherEngine),
            ),
        ];
        for (name, expected) in cases {
            assert_eq!(
                DerivativeId::from_stored_name(&name, DEFAULT_SIZES),
                expected,
                "{name}"
            );
        }
    }
}
