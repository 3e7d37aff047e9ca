//! The registry of representation kinds: every way one stored object is
//! served, each declared once. A kind says which files it applies to, how a
//! request selects it and what its canonical form is, its version (part of
//! every validator and stored name of its bytes), what it varies on, what
//! it reads and what makes it. Dispatch (`select`), signing, the stored-name
//! read-back, the index and the CloudFront edge function (its tables are
//! generated from `edge_tables`) all read it.

use std::fmt::Write as _;

use crate::derivative::params::{
    self, FormatChoice, ImageParams, ParamError, IMAGE_PARAMS, MAX_FRAME_SECS, QUALITY_STEP,
};
use crate::faststart::FASTSTART_VERSION;
use crate::image::ENGINE_VERSION;

/// The kinds of representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KindId {
    /// The stored bytes, as they are.
    Stored,
    /// A movie whose `moov` follows its media, served with the `moov` first.
    Faststart,
    /// A stored image at another size or in another format.
    Image,
    /// The picture a movie shows at a time, as an image.
    Frame,
}

/// How a request selects a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    /// A request naming no parameter of a kind below.
    NoParameters,
    /// The query names any of these parameters.
    Query(&'static [&'static str]),
}

/// One kind, as the registry declares it.
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    pub id: KindId,
    pub name: &'static str,
    /// The file name extensions it applies to (any case); empty: every file.
    pub extensions: &'static [&'static str],
    pub selector: Selector,
    /// The query parameters it requires (one of them at least).
    pub requires: &'static [&'static str],
    /// Its version: in every ETag and stored name of its bytes. Moves when
    /// its output bytes change (the golden test of computed bytes says so).
    pub version: &'static str,
    /// The request header its bytes vary on, when it does.
    pub vary: Option<&'static str>,
    /// Its stored name in a derived store, as a pattern.
    pub stored_name: &'static str,
    /// What it reads of the stored object.
    pub reads: &'static str,
    /// The module that makes it.
    pub made_by: &'static str,
}

/// The extensions of the images the engine decodes.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "gif", "avif"];

/// The extensions of the movies frames are taken from.
pub const FRAME_EXTENSIONS: &[&str] = &["mp4", "mov", "m4v"];

/// The extensions of the ISO-BMFF files served faststart.
pub const FASTSTART_EXTENSIONS: &[&str] = &["mp4", "mov", "m4a", "m4v", "3gp"];

/// Video containers whose codecs the frame decoder lacks, with how its
/// refusal (415) names them.
pub const UNDECODED_VIDEO: &[(&str, &str)] = &[("webm", "a WebM file's video (VP8, VP9 or AV1)")];

/// The version of a frame's bytes: the MP4 sample planning, the H.264
/// decoder (OpenH264) and its YUV conversion, then the image engine.
pub const FRAME_VERSION: &str = "frm2";

/// Every kind, in the order `select` tries them.
pub const KINDS: [Kind; 4] = [
    Kind {
        id: KindId::Image,
        name: "image",
        extensions: IMAGE_EXTENSIONS,
        selector: Selector::Query(&["w", "h", "fit", "fmt", "q"]),
        requires: &["w", "h"],
        version: ENGINE_VERSION,
        vary: Some("accept"),
        stored_name: "KEY/CANONICAL[,accept=CLASS],e=VERSION",
        reads: "the whole image (at most derivative::MAX_SOURCE_BYTES)",
        made_by: "derivative (render.rs), image",
    },
    Kind {
        id: KindId::Frame,
        name: "frame",
        extensions: FRAME_EXTENSIONS,
        selector: Selector::Query(&["frame", "w", "h", "fit", "fmt", "q"]),
        requires: &["frame"],
        version: FRAME_VERSION,
        vary: Some("accept"),
        stored_name: "KEY/CANONICAL[,accept=CLASS],e=VERSION",
        reads: "the box headers, moov, and the samples from the keyframe before the time",
        made_by: "derivative (frame.rs), mp4, video, image",
    },
    Kind {
        id: KindId::Faststart,
        name: "faststart",
        extensions: FASTSTART_EXTENSIONS,
        selector: Selector::NoParameters,
        requires: &[],
        version: FASTSTART_VERSION,
        vary: None,
        stored_name: "KEY/layout,v=VERSION (the box headers and moov)",
        reads: "the box headers and moov, then ranges of the stored bytes",
        made_by: "faststart, mp4",
    },
    Kind {
        id: KindId::Stored,
        name: "stored",
        extensions: &[],
        selector: Selector::NoParameters,
        requires: &[],
        version: "",
        vary: None,
        stored_name: "not stored again",
        reads: "ranges of the stored bytes",
        made_by: "source",
    },
];

/// The kind `id`.
pub fn kind(id: KindId) -> &'static Kind {
    KINDS
        .iter()
        .find(|k| k.id == id)
        .expect("every kind is registered")
}

/// What a request asks for: a kind, with its parameters where it takes any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    Stored,
    /// Served faststart when its layout asks for it, else as stored.
    Faststart,
    Image(ImageParams),
    Frame(ImageParams),
}

impl Selection {
    pub fn kind(&self) -> &'static Kind {
        kind(match self {
            Selection::Stored => KindId::Stored,
            Selection::Faststart => KindId::Faststart,
            Selection::Image(_) => KindId::Image,
            Selection::Frame(_) => KindId::Frame,
        })
    }

    /// The parameters in canonical form ("" when there are none): what a
    /// signed link signs after the path.
    pub fn canonical(&self) -> String {
        match self {
            Selection::Image(p) | Selection::Frame(p) => p.canonical(),
            Selection::Stored | Selection::Faststart => String::new(),
        }
    }

    /// The derivative parameters, for the kinds that take them.
    pub fn params(&self) -> Option<ImageParams> {
        match self {
            Selection::Image(p) | Selection::Frame(p) => Some(*p),
            Selection::Stored | Selection::Faststart => None,
        }
    }
}

/// Whether `file_name`'s extension is one of `extensions` (any case).
pub fn has_extension(file_name: &str, extensions: &[&str]) -> bool {
    let extension = file_name.rsplit_once('.').map_or("", |(_, e)| e);
    extensions.iter().any(|e| extension.eq_ignore_ascii_case(e))
}

/// The kind a request for `file_name` with `query` selects; `sizes` are the
/// values `w` and `h` may take, `faststart` whether movies are served
/// faststart. A query naming no parameter of any kind (a cache-buster,
/// `?t=1`) is ignored, as on any file; one naming a parameter is parsed
/// strictly, and refused (400, or 415 for a frame of a video this server
/// does not decode) where its kind does not apply.
pub fn select(
    file_name: &str,
    query: Option<&str>,
    sizes: &[u32],
    faststart: bool,
) -> Result<Selection, ParamError> {
    if !params::names_image_param(query) {
        let movie = faststart && has_extension(file_name, FASTSTART_EXTENSIONS);
        return Ok(if movie {
            Selection::Faststart
        } else {
            Selection::Stored
        });
    }
    let parsed = || params::parse(query, sizes)?.ok_or(ParamError::NotAnImage);
    if has_extension(file_name, IMAGE_EXTENSIONS) {
        return image_selection(parsed()?);
    }
    if has_extension(file_name, FRAME_EXTENSIONS) {
        return frame_selection(parsed()?);
    }
    if let Some((_, video)) = UNDECODED_VIDEO
        .iter()
        .find(|(extension, _)| has_extension(file_name, &[extension]))
    {
        return Err(match parsed()?.frame_ms {
            Some(_) => ParamError::FrameCodec(video),
            None => ParamError::NotAnImage,
        });
    }
    // Not parsed: no parameter applies to this file, whatever its values.
    Err(ParamError::NotAnImage)
}

/// The image kind's rules on parsed parameters: no `frame`, and a size (no
/// full-size re-encode: the image itself is the file).
pub fn image_selection(params: ImageParams) -> Result<Selection, ParamError> {
    match params {
        p if p.frame_ms.is_some() => Err(ParamError::FrameOnImage),
        p if p.width.is_none() && p.height.is_none() => Err(ParamError::NoSize),
        p => Ok(Selection::Image(p)),
    }
}

/// The frame kind's rules on parsed parameters: `frame` is required.
pub fn frame_selection(params: ImageParams) -> Result<Selection, ParamError> {
    match params.frame_ms {
        Some(_) => Ok(Selection::Frame(params)),
        None => Err(ParamError::NoFrame),
    }
}

/// The tables the CloudFront edge function reads, as one line of JSON
/// (`deploy/edge/registry.json`, which `scripts/render-template.py` writes
/// into the function): the parameters in canonical order, the extensions of
/// each kind, the values the parameters take, each kind's version, and the
/// refusals' texts, all from this registry and the parameter parser.
pub fn edge_tables() -> String {
    let list = |items: &[&str]| {
        let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
        format!("[{}]", quoted.join(","))
    };
    let formats = [
        FormatChoice::Auto,
        FormatChoice::Jpeg,
        FormatChoice::Png,
        FormatChoice::Webp,
        FormatChoice::Avif,
    ]
    .map(|f| f.to_string());
    let formats: Vec<&str> = formats.iter().map(String::as_str).collect();
    let codec_text = UNDECODED_VIDEO
        .iter()
        .map(|(e, video)| {
            format!(
                "\"{e}\":{}",
                json_string(&ParamError::FrameCodec(video).to_string())
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let mut out = String::from("{");
    let _ = write!(
        out,
        "\"params\":{},\"images\":{},\"movies\":{},\"formats\":{},\
         \"qstep\":{QUALITY_STEP},\"maxframe\":{MAX_FRAME_SECS},\
         \"versions\":{{\"image\":\"{}\",\"frame\":\"{}\"}},\
         \"text\":{{\"notanimage\":{},\"frameonimage\":{},\"noframe\":{},\"nosize\":{},\"codec\":{{{codec_text}}}}}}}",
        list(&IMAGE_PARAMS),
        list(IMAGE_EXTENSIONS),
        list(FRAME_EXTENSIONS),
        list(&formats),
        kind(KindId::Image).version,
        kind(KindId::Frame).version,
        json_string(&ParamError::NotAnImage.to_string()),
        json_string(&ParamError::FrameOnImage.to_string()),
        json_string(&ParamError::NoFrame.to_string()),
        json_string(&ParamError::NoSize.to_string()),
    );
    out
}

/// A JSON string of `text` (the texts here are ASCII without control
/// characters; quotes and backslashes are escaped all the same).
fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derivative::params::DEFAULT_SIZES;

    #[test]
    fn selects_each_kind() {
        let p = |q: &str| params::parse(Some(q), DEFAULT_SIZES).unwrap().unwrap();
        let webm = ParamError::FrameCodec(UNDECODED_VIDEO[0].1);
        type Row = (
            &'static str,
            Option<&'static str>,
            bool,
            Result<Selection, ParamError>,
        );
        let cases: Vec<Row> = vec![
            ("a.jpg", None, true, Ok(Selection::Stored)),
            ("a.jpg", Some("t=1"), true, Ok(Selection::Stored)),
            (
                "a.jpg",
                Some("w=640"),
                true,
                Ok(Selection::Image(p("w=640"))),
            ),
            (
                "a.JPG",
                Some("fmt=webp&h=32"),
                true,
                Ok(Selection::Image(p("h=32&fmt=webp"))),
            ),
            ("a.jpg", Some("fmt=webp"), true, Err(ParamError::NoSize)),
            (
                "a.jpg",
                Some("frame=1&w=32"),
                true,
                Err(ParamError::FrameOnImage),
            ),
            ("a.mp4", None, true, Ok(Selection::Faststart)),
            ("a.mp4", None, false, Ok(Selection::Stored)),
            ("a.m4a", Some("t=1"), true, Ok(Selection::Faststart)),
            ("clip.MOV", None, true, Ok(Selection::Faststart)),
            ("phone.3gp", None, true, Ok(Selection::Faststart)),
            ("a.mkv", None, true, Ok(Selection::Stored)),
            ("mp4", None, true, Ok(Selection::Stored)),
            ("a.mp4.txt", None, true, Ok(Selection::Stored)),
            (
                "a.mp4",
                Some("frame=1"),
                true,
                Ok(Selection::Frame(p("frame=1"))),
            ),
            ("a.mp4", Some("w=32"), true, Err(ParamError::NoFrame)),
            ("a.m4a", Some("frame=1"), true, Err(ParamError::NotAnImage)),
            ("a.webm", Some("frame=1"), true, Err(webm)),
            ("a.webm", Some("w=32"), true, Err(ParamError::NotAnImage)),
            (
                "a.webm",
                Some("frame=01"),
                true,
                Err(params::parse(Some("frame=01"), DEFAULT_SIZES).unwrap_err()),
            ),
            ("notes.txt", Some("w=32"), true, Err(ParamError::NotAnImage)),
            ("notes.txt", Some("v=2"), true, Ok(Selection::Stored)),
            (
                "notes.txt",
                Some("w=641"),
                true,
                Err(ParamError::NotAnImage),
            ),
        ];
        for (file, query, faststart, expected) in cases {
            assert_eq!(
                select(file, query, DEFAULT_SIZES, faststart),
                expected,
                "{file} {query:?}"
            );
        }
    }

    #[test]
    fn every_kind_is_declared_once_with_what_it_needs() {
        for (i, kind) in KINDS.iter().enumerate() {
            assert!(
                KINDS[i + 1..].iter().all(|k| k.id != kind.id),
                "{}",
                kind.name
            );
            if let Selector::Query(names) = kind.selector {
                assert!(
                    kind.requires.iter().all(|r| names.contains(r)),
                    "{}",
                    kind.name
                );
                assert!(
                    names.iter().all(|n| IMAGE_PARAMS.contains(n)),
                    "{}",
                    kind.name
                );
                assert!(!kind.version.is_empty(), "{}", kind.name);
            }
        }
        assert_ne!(kind(KindId::Image).version, kind(KindId::Frame).version);
    }

    /// The edge function's tables are this registry's: the checked-in copy
    /// that `scripts/render-template.py` writes into the function must be
    /// what `edge_tables` gives (`media-streamer registry` prints it).
    #[test]
    fn the_edge_tables_are_the_registrys() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/edge/registry.json");
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            checked_in.trim_end(),
            edge_tables(),
            "deploy/edge/registry.json is stale: run `cargo run -- registry > deploy/edge/registry.json`, then scripts/render-template.py"
        );
    }
}
