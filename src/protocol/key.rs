//! From a request path to an object key that cannot leave the media root.

use std::fmt;

use percent_encoding::percent_decode_str;

/// Longest key accepted, in bytes after decoding: S3's own limit for a key.
pub const MAX_KEY_BYTES: usize = 1024;

/// A validated object key: `/`-separated UTF-8 segments, none empty, none `.` or
/// `..`, no backslash, no control character. Safe to join under a root directory
/// and to send to S3 as is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last segment, which names the object and its media type.
    pub(crate) fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a request path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// An object.
    Object(ObjectKey),
    /// A directory or key prefix: the root (`/`) or a path ending in `/`. The
    /// prefix is empty for the root, otherwise it ends with `/`.
    Directory(String),
}

impl Target {
    /// The key or prefix as decoded: what the path names, without its leading
    /// `/` (empty for the root).
    pub fn as_str(&self) -> &str {
        match self {
            Target::Object(key) => key.as_str(),
            Target::Directory(prefix) => prefix,
        }
    }
}

/// Why a path is refused; every variant is a 400 except `TooLong` (414).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the path must start with /")]
    NotAbsolute,
    #[error("the path has an invalid percent-encoding")]
    BadEncoding,
    #[error("the path is not UTF-8")]
    NotUtf8,
    #[error("the path has an encoded slash or backslash")]
    EncodedSeparator,
    #[error("the path has a control character")]
    ControlCharacter,
    #[error("the path has a backslash")]
    Backslash,
    #[error("the path has an empty, '.' or '..' segment")]
    DotOrEmptySegment,
    #[error("the path is longer than {MAX_KEY_BYTES} bytes")]
    TooLong,
}

/// Maps the path of a request URI (without its query) to a [`Target`].
///
/// The path is percent-decoded exactly once (RFC 3986 §2.1); anything that could
/// name a place outside the root after decoding, or that decodes to a separator
/// and so would be read differently by different stores, is refused rather than
/// normalised: a media URL has one spelling.
pub fn parse_target(path: &str) -> Result<Target, KeyError> {
    let raw = path.strip_prefix('/').ok_or(KeyError::NotAbsolute)?;
    if raw.len() > 3 * MAX_KEY_BYTES {
        return Err(KeyError::TooLong);
    }
    if has_encoded_separator(raw) {
        return Err(KeyError::EncodedSeparator);
    }
    if !valid_percent_encoding(raw) {
        return Err(KeyError::BadEncoding);
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| KeyError::NotUtf8)?;
    if decoded.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong);
    }
    if decoded.chars().any(char::is_control) {
        return Err(KeyError::ControlCharacter);
    }
    if decoded.contains('\\') {
        return Err(KeyError::Backslash);
    }
    let (body, is_directory) = match decoded.strip_suffix('/') {
        Some(body) => (body, true),
        None => (decoded.as_ref(), decoded.is_empty()),
    };
    if !body.is_empty()
        && body
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(KeyError::DotOrEmptySegment);
    }
    Ok(if is_directory {
        Target::Directory(if body.is_empty() {
            String::new()
        } else {
            format!("{body}/")
        })
    } else {
        Target::Object(ObjectKey(body.to_owned()))
    })
}

fn has_encoded_separator(raw: &str) -> bool {
    raw.as_bytes().windows(3).any(|w| {
        w[0] == b'%' && (w[1..].eq_ignore_ascii_case(b"2f") || w[1..].eq_ignore_ascii_case(b"5c"))
    })
}

/// Every `%` starts a `%XX` escape.
fn valid_percent_encoding(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str) -> Result<Target, KeyError> {
        Ok(Target::Object(ObjectKey(key.to_owned())))
    }

    fn directory(prefix: &str) -> Result<Target, KeyError> {
        Ok(Target::Directory(prefix.to_owned()))
    }

    #[test]
    fn parses_request_paths() {
        use KeyError::*;
        let long = format!("/{}", "a".repeat(MAX_KEY_BYTES + 1));
        let longest = format!("/{}", "a".repeat(MAX_KEY_BYTES));
        let cases: &[(&str, Result<Target, KeyError>)] = &[
            ("/video.mp4", object("video.mp4")),
            ("/a/b/c.webm", object("a/b/c.webm")),
            ("/name%20with%20spaces.mp3", object("name with spaces.mp3")),
            ("/caf%C3%A9.jpg", object("café.jpg")),
            ("/café.jpg", object("café.jpg")),
            ("/100%25.png", object("100%.png")),
            ("/%252e%252e/x", object("%2e%2e/x")),
            ("/a+b.mp4", object("a+b.mp4")),
            ("/.hidden", object(".hidden")),
            ("/...", object("...")),
            ("/", directory("")),
            ("/videos/", directory("videos/")),
            ("/a/b/", directory("a/b/")),
            (&longest, object(&longest[1..])),
            ("", Err(NotAbsolute)),
            ("video.mp4", Err(NotAbsolute)),
            ("/../etc/passwd", Err(DotOrEmptySegment)),
            ("/a/../../etc/passwd", Err(DotOrEmptySegment)),
            ("/a/./b", Err(DotOrEmptySegment)),
            ("/..", Err(DotOrEmptySegment)),
            ("/../", Err(DotOrEmptySegment)),
            ("/%2e%2e/etc/passwd", Err(DotOrEmptySegment)),
            ("/%2E%2E/etc/passwd", Err(DotOrEmptySegment)),
            ("/.%2e/x", Err(DotOrEmptySegment)),
            ("/a//b", Err(DotOrEmptySegment)),
            ("//etc/passwd", Err(DotOrEmptySegment)),
            ("/a/%2F/b", Err(EncodedSeparator)),
            ("/..%2fetc%2fpasswd", Err(EncodedSeparator)),
            ("/..%5cwindows", Err(EncodedSeparator)),
            ("/%5C", Err(EncodedSeparator)),
            ("/a\\..\\b", Err(Backslash)),
            ("/a%00.mp4", Err(ControlCharacter)),
            ("/a%0A.mp4", Err(ControlCharacter)),
            ("/a%7F", Err(ControlCharacter)),
            ("/%", Err(BadEncoding)),
            ("/%4", Err(BadEncoding)),
            ("/%zz", Err(BadEncoding)),
            ("/%C3%28", Err(NotUtf8)),
            ("/%FF", Err(NotUtf8)),
            (&long, Err(TooLong)),
        ];
        for (path, expected) in cases {
            assert_eq!(&parse_target(path), expected, "{path}");
        }
    }

    #[test]
    fn names_the_file() {
        let Ok(Target::Object(key)) = parse_target("/a/b/c.webm") else {
            panic!("not an object")
        };
        assert_eq!(key.file_name(), "c.webm");
        assert_eq!(key.segments().collect::<Vec<_>>(), ["a", "b", "c.webm"]);
    }
}
