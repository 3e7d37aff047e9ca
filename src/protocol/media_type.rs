//! Content types for media files, by file extension.

/// The type for a file name: a table of media types first (where mime_guess is
/// wrong or silent for what browsers expect, e.g. `.ts` is MPEG-TS, not
/// TypeScript, `.m4a` is `audio/mp4`, `.opus` plays as `audio/ogg`), then
/// mime_guess, then `application/octet-stream`.
pub(crate) fn content_type_for(file_name: &str) -> String {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    if let Some(known) = media_type(&extension) {
        return known.to_owned();
    }
    match mime_guess::from_ext(&extension).first_raw() {
        Some(guess) if guess.starts_with("text/") => format!("{guess}; charset=utf-8"),
        Some(guess) => guess.to_owned(),
        None => OCTET_STREAM.to_owned(),
    }
}

/// Whether a browser opening content of this type runs script in it: HTML,
/// XHTML, SVG and XML of any kind (an XML document can carry XHTML
/// `<script>` or an XSLT that makes HTML), however the type is spelled.
pub(crate) fn runs_script(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "text/html" | "text/xml" | "application/xml" | "text/xsl"
    ) || essence.ends_with("+xml")
}

/// The type for content of unknown kind (RFC 9110 §8.3).
pub(crate) const OCTET_STREAM: &str = "application/octet-stream";

/// Whether a stored content type says nothing (S3's default for uploads with no
/// type), so the extension should decide instead.
pub(crate) fn is_generic(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.is_empty()
        || essence.eq_ignore_ascii_case(OCTET_STREAM)
        || essence.eq_ignore_ascii_case("binary/octet-stream")
}

fn media_type(extension: &str) -> Option<&'static str> {
    Some(match extension {
        "mp4" | "m4v" => "video/mp4",
        "m4a" => "audio/mp4",
        "mov" => "video/quicktime",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "ogv" => "video/ogg",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "aac" => "audio/aac",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "m3u8" => "application/vnd.apple.mpegurl",
        "mpd" => "application/dash+xml",
        "ts" => "video/mp2t",
        "m4s" => "video/iso.segment",
        "vtt" => "text/vtt; charset=utf-8",
        "srt" => "application/x-subrip",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "heic" => "image/heic",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_media_by_extension() {
        let cases = [
            ("a.mp4", "video/mp4"),
            ("A.MP4", "video/mp4"),
            ("a.m4v", "video/mp4"),
            ("a.m4a", "audio/mp4"),
            ("a.webm", "video/webm"),
            ("a.mp3", "audio/mpeg"),
            ("a.ogg", "audio/ogg"),
            ("a.opus", "audio/ogg"),
            ("a.wav", "audio/wav"),
            ("a.flac", "audio/flac"),
            ("a.jpeg", "image/jpeg"),
            ("a.jpg", "image/jpeg"),
            ("a.png", "image/png"),
            ("a.webp", "image/webp"),
            ("a.avif", "image/avif"),
            ("a.gif", "image/gif"),
            ("a.svg", "image/svg+xml"),
            ("live.m3u8", "application/vnd.apple.mpegurl"),
            ("seg0.ts", "video/mp2t"),
            ("subs.vtt", "text/vtt; charset=utf-8"),
            ("notes.txt", "text/plain; charset=utf-8"),
            ("doc.pdf", "application/pdf"),
            ("no-extension", OCTET_STREAM),
            ("x.unknownext", OCTET_STREAM),
        ];
        for (name, expected) in cases {
            assert_eq!(content_type_for(name), expected, "{name}");
        }
    }

    #[test]
    fn knows_the_types_that_run_script() {
        for (value, runs) in [
            ("text/html; charset=utf-8", true),
            ("TEXT/HTML", true),
            ("application/xhtml+xml", true),
            ("image/svg+xml", true),
            ("text/xml; charset=utf-8", true),
            ("application/xml", true),
            ("application/rss+xml", true),
            ("text/xsl", true),
            ("application/dash+xml", true),
            ("video/mp4", false),
            ("image/png", false),
            ("text/plain; charset=utf-8", false),
            ("text/vtt; charset=utf-8", false),
            ("application/pdf", false),
            ("application/octet-stream", false),
            ("", false),
        ] {
            assert_eq!(runs_script(value), runs, "{value}");
        }
    }

    #[test]
    fn knows_generic_types() {
        for (value, generic) in [
            ("binary/octet-stream", true),
            ("application/octet-stream", true),
            ("Application/Octet-Stream; x=y", true),
            ("", true),
            ("video/mp4", false),
        ] {
            assert_eq!(is_generic(value), generic, "{value}");
        }
    }
}
