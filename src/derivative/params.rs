//! The query parameters that ask for an image derivative, parsed strictly
//! and written back in one canonical form (for the derivative's ETag, its
//! stored name and its signature).

use std::fmt::{self, Write as _};

use percent_encoding::percent_decode_str;

/// The default sizes a `w` or `h` may take: the widths pages ask for
/// (Next.js's device and image sizes), so that a CDN sees few distinct URLs.
pub const DEFAULT_SIZES: &[u32] = &[
    16, 32, 48, 64, 96, 128, 256, 320, 384, 640, 750, 828, 1080, 1200, 1280, 1920, 2048, 3840,
];

/// The derivative parameters, in canonical order. `frame` applies to videos
/// only (the picture at that time); the others to images and frames.
pub const IMAGE_PARAMS: [&str; 6] = ["frame", "w", "h", "fit", "fmt", "q"];

/// The qualities `q` may take: steps of [`QUALITY_STEP`] up to 100, so that
/// one picture has at most 20 encodings, not 100 (each a render and, with a
/// store, an object kept).
pub const QUALITY_STEP: u8 = 5;

/// The latest `frame` time, in seconds (a day).
pub const MAX_FRAME_SECS: u32 = 86_400;

/// The parameters of a signed link; they are not derivative parameters.
pub const SIGNATURE_PARAMS: [&str; 3] = ["expires", "kid", "sig"];

/// How the picture fills the box `w`×`h`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Fit {
    /// Within the box, the aspect kept.
    #[default]
    Inside,
    /// The whole box, the aspect kept, cropped about the centre.
    Cover,
}

/// The output format asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FormatChoice {
    /// From the request's `Accept`: AVIF, else WebP, else JPEG (PNG for a
    /// source with transparency).
    #[default]
    Auto,
    Jpeg,
    Png,
    Webp,
    Avif,
}

/// A derivative request: at least one parameter was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ImageParams {
    /// For a video: the time of the frame, in milliseconds.
    pub frame_ms: Option<u32>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
    pub format: FormatChoice,
    pub quality: Option<u8>,
}

/// Why a derivative query is refused (400); the text says which parameter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("unknown parameter '{0}' (images take w, h, fit, fmt and q)")]
    Unknown(String),
    #[error("the parameter '{0}' is given more than once")]
    Repeated(String),
    #[error("'{name}={value}' is not allowed: {name} is one of {allowed}")]
    NotAllowed {
        name: &'static str,
        value: String,
        allowed: String,
    },
    #[error(
        "image parameters (w, h, fit, fmt, q) apply to JPEG, PNG, WebP, GIF and AVIF images only"
    )]
    NotAnImage,
    #[error("frame applies to videos (MP4, MOV, M4V) only")]
    FrameOnImage,
    #[error("a video takes frame=SECONDS (with w, h, fit, fmt and q if wanted)")]
    NoFrame,
    /// No full-size re-encode: the image itself is the file, without a query.
    #[error("an image derivative takes w or h")]
    NoSize,
    /// A well-formed frame request on a video this server does not decode
    /// (415, not 400: the request is right, the media type is not taken).
    #[error(
        "frames are taken from H.264 video in MP4, MOV and M4V files; {0} is not decoded here"
    )]
    FrameCodec(&'static str),
}

impl ParamError {
    /// Whether the refusal is of the media, not of the request's syntax:
    /// 415 Unsupported Media Type (RFC 9110 §15.5.16) instead of 400.
    pub fn is_unsupported_media(&self) -> bool {
        matches!(self, ParamError::FrameCodec(_))
    }
}

/// Parses the derivative parameters of `query`, leaving out the signature's.
/// `Ok(None)` when there are none: the stored bytes are served. `sizes` are
/// the values `w` and `h` may take.
pub fn parse(query: Option<&str>, sizes: &[u32]) -> Result<Option<ImageParams>, ParamError> {
    let mut params = ImageParams::default();
    let mut seen: Vec<&str> = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
        if SIGNATURE_PARAMS.contains(&name) {
            continue;
        }
        let value = percent_decode_str(raw).decode_utf8_lossy();
        let Some(name) = IMAGE_PARAMS.into_iter().find(|known| *known == name) else {
            let other = percent_decode_str(name).decode_utf8_lossy();
            return Err(ParamError::Unknown(other.chars().take(64).collect()));
        };
        if seen.contains(&name) {
            return Err(ParamError::Repeated(name.to_owned()));
        }
        seen.push(name);
        let refuse = |allowed: String| ParamError::NotAllowed {
            name,
            value: value.chars().take(64).collect(),
            allowed,
        };
        match name {
            "frame" => {
                params.frame_ms = Some(frame_ms(&value).ok_or_else(|| {
                    refuse(format!(
                        "the times from 0 to {MAX_FRAME_SECS} seconds, with at most 3 decimals"
                    ))
                })?);
            }
            "w" | "h" => {
                let size = value
                    .parse::<u32>()
                    .ok()
                    .filter(|v| sizes.contains(v) && !value.starts_with('0'))
                    .ok_or_else(|| refuse(list(sizes)))?;
                if name == "w" {
                    params.width = Some(size);
                } else {
                    params.height = Some(size);
                }
            }
            "fit" => {
                params.fit = match &*value {
                    "inside" => Fit::Inside,
                    "cover" => Fit::Cover,
                    _ => return Err(refuse("inside, cover".to_owned())),
                }
            }
            "fmt" => {
                params.format = match &*value {
                    "auto" => FormatChoice::Auto,
                    "jpeg" => FormatChoice::Jpeg,
                    "png" => FormatChoice::Png,
                    "webp" => FormatChoice::Webp,
                    "avif" => FormatChoice::Avif,
                    _ => return Err(refuse("auto, jpeg, png, webp, avif".to_owned())),
                }
            }
            _ => {
                params.quality = Some(
                    value
                        .parse::<u8>()
                        .ok()
                        .filter(|q| qualities().contains(q) && !value.starts_with('0'))
                        .ok_or_else(|| {
                            refuse(format!("the multiples of {QUALITY_STEP} up to 100"))
                        })?,
                );
            }
        }
    }
    Ok((!seen.is_empty()).then_some(params))
}

/// A time in seconds written `S` or `S.F` (at most 3 decimals, no sign, no
/// leading zero), in milliseconds.
fn frame_ms(value: &str) -> Option<u32> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (whole.len() > 1 && whole.starts_with('0')) {
        return None;
    }
    if value.contains('.') && (!digits(fraction) || fraction.len() > 3) {
        return None;
    }
    let secs: u32 = whole.parse().ok().filter(|s| *s <= MAX_FRAME_SECS)?;
    let millis: u32 = format!("{fraction:0<3}").parse().ok()?;
    let ms = secs * 1000 + millis;
    (ms <= MAX_FRAME_SECS * 1000).then_some(ms)
}

/// Whether `query` names any derivative parameter (on a file that takes
/// none, that is a 400).
pub fn names_image_param(query: Option<&str>) -> bool {
    query.unwrap_or("").split('&').any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        IMAGE_PARAMS.contains(&name)
    })
}

/// The values `q` may take, lowest first.
pub fn qualities() -> Vec<u8> {
    (1..=100 / QUALITY_STEP).map(|n| n * QUALITY_STEP).collect()
}

fn list(sizes: &[u32]) -> String {
    let mut text = String::new();
    for (i, size) in sizes.iter().enumerate() {
        let _ = write!(text, "{}{size}", if i == 0 { "" } else { ", " });
    }
    text
}

impl ImageParams {
    /// The parameters in canonical form: `frame`, `w`, `h`, `fit`, `fmt`, `q`
    /// in that order, each only when it differs from its default (`frame` in
    /// seconds, with no trailing zeros). Two queries that
    /// ask for the same picture have the same canonical form; changing it is
    /// a cache-busting event (it names stored derivatives and is signed).
    pub fn canonical(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(ms) = self.frame_ms {
            let (secs, millis) = (ms / 1000, ms % 1000);
            if millis == 0 {
                parts.push(format!("frame={secs}"));
            } else {
                let fraction = format!("{millis:03}");
                parts.push(format!("frame={secs}.{}", fraction.trim_end_matches('0')));
            }
        }
        if let Some(w) = self.width {
            parts.push(format!("w={w}"));
        }
        if let Some(h) = self.height {
            parts.push(format!("h={h}"));
        }
        if self.fit == Fit::Cover {
            parts.push("fit=cover".to_owned());
        }
        if self.format != FormatChoice::Auto {
            parts.push(format!("fmt={}", self.format));
        }
        if let Some(q) = self.quality {
            parts.push(format!("q={q}"));
        }
        parts.join("&")
    }
}

impl fmt::Display for FormatChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FormatChoice::Auto => "auto",
            FormatChoice::Jpeg => "jpeg",
            FormatChoice::Png => "png",
            FormatChoice::Webp => "webp",
            FormatChoice::Avif => "avif",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(f: impl FnOnce(&mut ImageParams)) -> Result<Option<ImageParams>, ParamError> {
        let mut p = ImageParams::default();
        f(&mut p);
        Ok(Some(p))
    }

    fn not_allowed(name: &'static str, value: &str, allowed: &str) -> ParamError {
        ParamError::NotAllowed {
            name,
            value: value.to_owned(),
            allowed: allowed.to_owned(),
        }
    }

    const QUALITIES: &str = "the multiples of 5 up to 100";
    const FRAMES: &str = "the times from 0 to 86400 seconds, with at most 3 decimals";

    #[test]
    fn parses_strictly() {
        let sizes = "16, 32, 48, 64, 96, 128, 256, 320, 384, 640, 750, 828, 1080, 1200, 1280, 1920, 2048, 3840";
        let cases: Vec<(&str, Result<Option<ImageParams>, ParamError>)> = vec![
            ("", Ok(None)),
            ("expires=1&kid=a&sig=x", Ok(None)),
            ("w=640", params(|p| p.width = Some(640))),
            (
                "h=384&w=640",
                params(|p| (p.width, p.height) = (Some(640), Some(384))),
            ),
            (
                "w=640&fit=cover",
                params(|p| (p.width, p.fit) = (Some(640), Fit::Cover)),
            ),
            ("fit=inside", params(|_| {})),
            ("fmt=webp", params(|p| p.format = FormatChoice::Webp)),
            ("fmt=auto&q=75", params(|p| p.quality = Some(75))),
            ("q=100", params(|p| p.quality = Some(100))),
            (
                "w=640&expires=1&kid=a&sig=x",
                params(|p| p.width = Some(640)),
            ),
            ("w=640&&", params(|p| p.width = Some(640))),
            ("w=641", Err(not_allowed("w", "641", sizes))),
            ("w=0640", Err(not_allowed("w", "0640", sizes))),
            ("w=", Err(not_allowed("w", "", sizes))),
            ("w", Err(not_allowed("w", "", sizes))),
            ("h=-16", Err(not_allowed("h", "-16", sizes))),
            ("w=99999999999", Err(not_allowed("w", "99999999999", sizes))),
            ("fit=fill", Err(not_allowed("fit", "fill", "inside, cover"))),
            (
                "fmt=gif",
                Err(not_allowed("fmt", "gif", "auto, jpeg, png, webp, avif")),
            ),
            (
                "fmt=WEBP",
                Err(not_allowed("fmt", "WEBP", "auto, jpeg, png, webp, avif")),
            ),
            ("q=0", Err(not_allowed("q", "0", QUALITIES))),
            ("q=101", Err(not_allowed("q", "101", QUALITIES))),
            ("q=5", params(|p| p.quality = Some(5))),
            ("q=73", Err(not_allowed("q", "73", QUALITIES))),
            ("q=1", Err(not_allowed("q", "1", QUALITIES))),
            (
                "q=5%30",
                Ok(Some(ImageParams {
                    quality: Some(50),
                    ..ImageParams::default()
                })),
            ),
            ("w=640&w=640", Err(ParamError::Repeated("w".into()))),
            ("width=640", Err(ParamError::Unknown("width".into()))),
            ("v=3&w=640", Err(ParamError::Unknown("v".into()))),
            ("frame=1", params(|p| p.frame_ms = Some(1000))),
            ("frame=0", params(|p| p.frame_ms = Some(0))),
            (
                "frame=90.04&w=640",
                params(|p| (p.frame_ms, p.width) = (Some(90_040), Some(640))),
            ),
            ("frame=2.5", params(|p| p.frame_ms = Some(2500))),
            ("frame=86400", params(|p| p.frame_ms = Some(86_400_000))),
            (
                "frame=86400.001",
                Err(not_allowed("frame", "86400.001", FRAMES)),
            ),
            ("frame=1.2345", Err(not_allowed("frame", "1.2345", FRAMES))),
            ("frame=01", Err(not_allowed("frame", "01", FRAMES))),
            ("frame=-1", Err(not_allowed("frame", "-1", FRAMES))),
            ("frame=1.", Err(not_allowed("frame", "1.", FRAMES))),
            ("frame=.5", Err(not_allowed("frame", ".5", FRAMES))),
            ("frame=1e3", Err(not_allowed("frame", "1e3", FRAMES))),
            ("frame=", Err(not_allowed("frame", "", FRAMES))),
            ("frame=1&frame=2", Err(ParamError::Repeated("frame".into()))),
        ];
        for (query, expected) in cases {
            assert_eq!(parse(Some(query), DEFAULT_SIZES), expected, "{query}");
        }
    }

    #[test]
    fn the_refusal_names_the_allowed_sizes() {
        let e = parse(Some("w=500"), &[16, 32]).unwrap_err();
        assert_eq!(e.to_string(), "'w=500' is not allowed: w is one of 16, 32");
    }

    #[test]
    fn writes_one_canonical_form() {
        let cases = [
            ("w=640", "w=640"),
            ("fmt=webp&w=640", "w=640&fmt=webp"),
            ("q=80&fit=cover&h=384&w=640", "w=640&h=384&fit=cover&q=80"),
            ("fit=inside&fmt=auto&w=640", "w=640"),
            ("fmt=avif", "fmt=avif"),
            ("w=640&frame=1.500", "frame=1.5&w=640"),
            ("frame=90.040&fmt=jpeg", "frame=90.04&fmt=jpeg"),
            ("frame=0.001", "frame=0.001"),
            ("frame=3.000", "frame=3"),
        ];
        for (query, canonical) in cases {
            let p = parse(Some(query), DEFAULT_SIZES).unwrap().unwrap();
            assert_eq!(p.canonical(), canonical, "{query}");
        }
    }
}
