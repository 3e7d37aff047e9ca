//! The index page of a directory or key prefix: every entry shown in the
//! element that plays it, with its URL and an embed snippet to copy.
//!
//! Everything here is pure: a listing goes in, HTML comes out. Every name is
//! escaped for the place it lands in (a URL path segment, then HTML), and a name
//! that would not lead back to the same object through [`parse_target`] is left
//! out rather than linked wrongly.

use crate::registry;
use std::fmt::Write as _;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::protocol::key::{parse_target, Target, MAX_KEY_BYTES};
use crate::protocol::media_type::content_type_for;
use crate::signing::signed_path;
use crate::source::listing::Listing;

/// Why an index request is refused (400).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum IndexQueryError {
    #[error("the 'after' parameter is not valid percent-encoded UTF-8")]
    BadAfter,
    #[error("the 'after' parameter is longer than any key")]
    AfterTooLong,
}

/// The page to show: the `after` query parameter (the last name of the page
/// before), if any. Other parameters are ignored.
pub(crate) fn page_after(query: Option<&str>) -> Result<Option<String>, IndexQueryError> {
    let Some(query) = query else { return Ok(None) };
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name == "after" {
            let value = value.replace('+', " ");
            let decoded = percent_decode_str(&value)
                .decode_utf8()
                .map_err(|_| IndexQueryError::BadAfter)?;
            if decoded.len() > MAX_KEY_BYTES {
                return Err(IndexQueryError::AfterTooLong);
            }
            return Ok((!decoded.is_empty()).then(|| decoded.into_owned()));
        }
    }
    Ok(None)
}

/// What a path segment keeps unencoded: RFC 3986 unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The absolute URL path of `key` (a prefix ending in `/` or an object key),
/// each segment percent-encoded once.
pub fn href_of(key: &str) -> String {
    let mut href = String::from("/");
    let (body, trailing_slash) = match key.strip_suffix('/') {
        Some(body) => (body, true),
        None => (key, false),
    };
    for (i, segment) in body.split('/').enumerate() {
        if i > 0 {
            href.push('/');
        }
        href.extend(utf8_percent_encode(segment, SEGMENT));
    }
    if trailing_slash && !body.is_empty() {
        href.push('/');
    }
    href
}

/// `s` made safe as HTML text and as a quoted attribute value.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The element an entry is shown in, from its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Player {
    Video,
    Audio,
    Image,
    /// Not media a browser plays in a tag: a link only.
    Link,
}

impl Player {
    pub(crate) fn for_type(content_type: &str) -> Self {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence.split('/').next() {
            Some("video") => Player::Video,
            Some("audio") => Player::Audio,
            Some("image") => Player::Image,
            _ => Player::Link,
        }
    }

    fn class(self) -> &'static str {
        match self {
            Player::Video => "video",
            Player::Audio => "audio",
            Player::Image => "image",
            Player::Link => "other",
        }
    }
}

/// Sizes as people read them: bytes below 1 KiB, else one decimal in KiB,
/// MiB or GiB.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 3] = ["KiB", "MiB", "GiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The page's style sheet; its hash is in [`CONTENT_SECURITY_POLICY`].
pub(crate) const STYLE: &str = "\
body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f6f6f4;color:#1d1d1f}\
header{padding:1.2rem 1.5rem;background:#1d1d1f;color:#f6f6f4}\
header a{color:#9fd3ff}h1{font-size:1.25rem;margin:0 0 .25rem;overflow-wrap:anywhere}\
header p{margin:0;color:#c8c8c8}\
nav.dirs,nav.pages{padding:.75rem 1.5rem;display:flex;flex-wrap:wrap;gap:.5rem 1rem}\
nav a{color:#0b57d0}\
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:1rem;padding:0 1.5rem 1.5rem}\
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:8px;overflow:hidden;display:flex;flex-direction:column}\
figure video,figure img{display:block;width:100%;max-height:240px;object-fit:contain;background:#000}\
figure audio{display:block;width:calc(100% - 1.5rem);margin:1rem .75rem 0}\
figcaption{padding:.75rem;display:flex;flex-direction:column;gap:.35rem}\
figcaption a{font-weight:600;color:#0b57d0;overflow-wrap:anywhere}\
.meta{color:#666;font-size:.85rem}\
code{font:12px/1.4 ui-monospace,monospace;background:#f0f0ee;padding:.35rem .5rem;border-radius:4px;overflow-wrap:anywhere;white-space:pre-wrap}\
button{align-self:flex-start;font:inherit;font-size:.85rem;padding:.2rem .7rem;border:1px solid #bbb;border-radius:4px;background:#fafafa;cursor:pointer}\
.empty{padding:0 1.5rem}";

/// The page's script: turns each entry's path into the absolute URL the page
/// was reached at (behind a CDN or a Function URL alike), and copies snippets.
/// Its hash is in [`CONTENT_SECURITY_POLICY`].
pub(crate) const SCRIPT: &str = "\
const abs=h=>new URL(h,location.href).href;\
for(const f of document.querySelectorAll('figure[data-href]')){\
const url=abs(f.dataset.href);\
f.querySelector('.url').textContent=url;\
const tag=f.dataset.player;\
const set=f.dataset.srcset?f.dataset.srcset.split(', ').map(c=>{const i=c.lastIndexOf(' ');return abs(c.slice(0,i))+c.slice(i);}).join(', '):'';\
const poster=f.dataset.poster?abs(f.dataset.poster):'';\
const snippet=tag==='video'&&poster?'<video controls poster=\"'+poster+'\" src=\"'+url+'\"></video>':\
tag==='video'?'<video controls src=\"'+url+'\"></video>':\
tag==='audio'?'<audio controls src=\"'+url+'\"></audio>':\
tag==='image'&&set?'<img src=\"'+url+'\" srcset=\"'+set+'\" sizes=\"(max-width: 640px) 100vw, 640px\" alt=\"\">':\
tag==='image'?'<img src=\"'+url+'\" alt=\"\">':url;\
f.querySelector('.snippet').textContent=snippet;\
f.querySelector('button').addEventListener('click',e=>{\
navigator.clipboard.writeText(snippet).then(()=>{e.target.textContent='Copied';},()=>{e.target.textContent='Select and copy';});});\
const m=f.querySelector('video,audio');\
if(m){const show=()=>{if(!isFinite(m.duration))return;const s=Math.round(m.duration);\
let t=Math.floor(s/60)+':'+String(s%60).padStart(2,'0');\
if(m.videoWidth)t+=' · '+m.videoWidth+'×'+m.videoHeight;\
f.querySelector('.duration').textContent=t;};\
m.addEventListener('loadedmetadata',show);if(m.readyState>=1)show();}}";

/// Only the page's own style and script run (by hash); media and images load
/// from anywhere its links lead (a presigned redirect goes to S3); nothing else.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
style-src 'sha256-4WKIiKGBjFa45I9UomeW9pJszogo1mddjaN191NPMHA='; \
script-src 'sha256-2/IBsXJeOE+YTKd0/kPFt61HMhuTByYccW7DRdABTkk='; \
img-src *; media-src *; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A video's poster on the page: its frame at this second, this wide (when
/// the server allows the width).
pub const POSTER_SECS: u32 = 1;
pub const POSTER_WIDTH: u32 = 640;

/// The width of an image's thumbnail on the page, when the server allows it.
pub const THUMBNAIL_WIDTH: u32 = 384;

/// The widths a copied `<img srcset>` offers, those of them the server allows.
pub const SRCSET_WIDTHS: [u32; 4] = [384, 640, 1080, 1920];

/// Renders the index page of `prefix` (empty for the root, else ending in
/// `/`). Entries whose names cannot be served back at their link are left
/// out. `sizes` are the widths the server allows for image derivatives.
pub fn render(prefix: &str, listing: &Listing, sizes: &[u32]) -> String {
    render_with(prefix, listing, sizes, &|_| None)
}

/// [`render`], with `query` giving the query string (without `?`) to put on
/// the link to a path (decoded, starting with `/`, with an image's
/// parameters): a signature, when links must be signed.
pub(crate) fn render_with(
    prefix: &str,
    listing: &Listing,
    sizes: &[u32],
    query: &dyn Fn(&str) -> Option<String>,
) -> String {
    let link = |key: &str| match query(&signed_path(key, None)) {
        Some(q) => format!("{}?{q}", href_of(key)),
        None => href_of(key),
    };
    let image_link =
        |key: &str, width: u32| match query(&signed_path(key, Some(&format!("w={width}")))) {
            Some(q) => format!("{}?w={width}&{q}", href_of(key)),
            None => format!("{}?w={width}", href_of(key)),
        };
    let frame_link = |key: &str| {
        let params = format!("frame={POSTER_SECS}&w={POSTER_WIDTH}");
        match query(&signed_path(key, Some(&params))) {
            Some(q) => format!("{}?{params}&{q}", href_of(key)),
            None => format!("{}?{params}", href_of(key)),
        }
    };
    let title = format!("/{prefix}");
    let mut html = String::with_capacity(4096 + 1024 * listing.entries.len());
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Index of {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n<h1>Index of ",
        escape_html(&title)
    );
    breadcrumbs(&mut html, prefix, &link);
    let files: Vec<(&str, String, u64)> = listing
        .entries
        .iter()
        .filter_map(|e| {
            let key = format!("{prefix}{}", e.name);
            Some((e.name.as_str(), link(&key), e.size?)).filter(|_| servable(&key))
        })
        .collect();
    let objects = files.len();
    let _ = write!(
        html,
        "</h1>\n<p>{objects} {} on this page</p>\n</header>\n",
        if objects == 1 { "file" } else { "files" }
    );

    let mut dirs = Vec::new();
    if !prefix.is_empty() {
        let parent = match prefix.trim_end_matches('/').rsplit_once('/') {
            Some((parent, _)) => format!("{parent}/"),
            None => String::new(),
        };
        dirs.push(("../".to_owned(), link(&parent)));
    }
    for entry in listing.entries.iter().filter(|e| e.is_directory()) {
        let key = format!("{prefix}{}", entry.name);
        if servable(&key) {
            dirs.push((entry.name.clone(), link(&key)));
        }
    }
    if !dirs.is_empty() {
        html.push_str("<nav class=\"dirs\">\n");
        for (name, href) in &dirs {
            let _ = writeln!(
                html,
                "<a href=\"{}\">{}</a>",
                escape_html(href),
                escape_html(name)
            );
        }
        html.push_str("</nav>\n");
    }

    html.push_str("<main>\n");
    for (name, href, size) in &files {
        let key = format!("{prefix}{name}");
        let widths: Vec<u32> = if registry::has_extension(name, registry::IMAGE_EXTENSIONS) {
            SRCSET_WIDTHS
                .into_iter()
                .filter(|w| sizes.contains(w))
                .collect()
        } else {
            Vec::new()
        };
        let srcset: Vec<(u32, String)> =
            widths.iter().map(|w| (*w, image_link(&key, *w))).collect();
        let thumbnail = srcset
            .iter()
            .find(|(w, _)| *w == THUMBNAIL_WIDTH)
            .map(|(_, href)| href.as_str());
        let poster = (registry::has_extension(name, registry::FRAME_EXTENSIONS)
            && sizes.contains(&POSTER_WIDTH))
        .then(|| frame_link(&key));
        let preview = Preview {
            thumbnail,
            srcset: &srcset,
            poster: poster.as_deref(),
        };
        figure(&mut html, name, href, *size, &preview);
    }
    html.push_str("</main>\n");
    if objects == 0 && dirs.len() <= usize::from(!prefix.is_empty()) {
        html.push_str("<p class=\"empty\">Nothing here.</p>\n");
    }
    if let Some(after) = &listing.next_after {
        let mut next: String = utf8_percent_encode(after, SEGMENT).collect();
        if let Some(signature) = query(&signed_path(prefix, None)) {
            next.push('&');
            next.push_str(&signature);
        }
        let _ = writeln!(
            html,
            "<nav class=\"pages\"><a rel=\"next\" href=\"?after={}\">Next page</a></nav>",
            escape_html(&next)
        );
    }
    let _ = write!(html, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    html
}

fn breadcrumbs(html: &mut String, prefix: &str, link: &dyn Fn(&str) -> String) {
    let _ = write!(html, "<a href=\"{}\">/</a>", escape_html(&link("")));
    let mut so_far = String::new();
    for segment in prefix.split('/').filter(|s| !s.is_empty()) {
        so_far.push_str(segment);
        so_far.push('/');
        let _ = write!(
            html,
            "<a href=\"{}\">{}/</a>",
            escape_html(&link(&so_far)),
            escape_html(segment)
        );
    }
}

/// What an entry is previewed with: an image's thumbnail derivative and its
/// `srcset` candidates, a video's poster frame.
struct Preview<'a> {
    thumbnail: Option<&'a str>,
    srcset: &'a [(u32, String)],
    poster: Option<&'a str>,
}

/// One entry: its player, its URL and a snippet to copy. An image is shown
/// through its thumbnail derivative where there is one, and its snippet
/// offers `srcset` candidates; a video shows its poster frame, and the page's
/// script writes a video's or an audio's duration (and a video's size) once
/// the browser has read them.
fn figure(html: &mut String, name: &str, path: &str, size: u64, preview: &Preview<'_>) {
    let (thumbnail, srcset) = (preview.thumbnail, preview.srcset);
    let content_type = content_type_for(name);
    let player = Player::for_type(&content_type);
    let href = escape_html(path);
    let label = escape_html(name);
    let candidates: Vec<String> = srcset.iter().map(|(w, h)| format!("{h} {w}w")).collect();
    let _ = write!(
        html,
        "<figure class=\"{}\" data-href=\"{href}\" data-player=\"{}\"",
        player.class(),
        player.class()
    );
    if !candidates.is_empty() {
        let _ = write!(
            html,
            " data-srcset=\"{}\"",
            escape_html(&candidates.join(", "))
        );
    }
    let poster = preview.poster.map(escape_html);
    if let Some(poster) = &poster {
        let _ = write!(html, " data-poster=\"{poster}\"");
    }
    html.push_str(">\n");
    match player {
        Player::Video => {
            let poster = poster
                .as_deref()
                .map_or_else(String::new, |p| format!(" poster=\"{p}\""));
            let _ = writeln!(
                html,
                "<video controls preload=\"metadata\"{poster} src=\"{href}\"></video>"
            );
        }
        Player::Audio => {
            let _ = writeln!(
                html,
                "<audio controls preload=\"metadata\" src=\"{href}\"></audio>"
            );
        }
        Player::Image => {
            let src = thumbnail.map_or_else(|| href.clone(), escape_html);
            let _ = writeln!(html, "<img loading=\"lazy\" src=\"{src}\" alt=\"{label}\">");
        }
        Player::Link => {}
    }
    let snippet = match (player, preview.poster) {
        (Player::Video, Some(poster)) => {
            format!("<video controls poster=\"{poster}\" src=\"{path}\"></video>")
        }
        (player, _) => match player {
            Player::Video => format!("<video controls src=\"{path}\"></video>"),
            Player::Audio => format!("<audio controls src=\"{path}\"></audio>"),
            Player::Image if !candidates.is_empty() => format!(
                "<img src=\"{path}\" srcset=\"{}\" sizes=\"{SRCSET_SIZES}\" alt=\"\">",
                candidates.join(", ")
            ),
            Player::Image => format!("<img src=\"{path}\" alt=\"\">"),
            Player::Link => path.to_owned(),
        },
    };
    let duration = match player {
        Player::Video | Player::Audio => "<span class=\"meta duration\"></span>\n",
        _ => "",
    };
    let _ = write!(
        html,
        "<figcaption>\n<a href=\"{href}\">{label}</a>\n\
         <span class=\"meta\" title=\"{size} bytes\">{} · {}</span>\n{duration}\
         <code class=\"url\">{href}</code>\n<code class=\"snippet\">{}</code>\n\
         <button type=\"button\">Copy snippet</button>\n</figcaption>\n</figure>\n",
        human_size(size),
        escape_html(&content_type),
        escape_html(&snippet),
    );
}

/// The `sizes` of a copied `<img srcset>`: the full width of a narrow screen,
/// else 640 CSS pixels.
pub const SRCSET_SIZES: &str = "(max-width: 640px) 100vw, 640px";

/// Whether `key` comes back as itself through the request path rules: a name
/// with a backslash, a control character, an empty or dot segment (all
/// possible in S3) has no URL that serves it.
fn servable(key: &str) -> bool {
    let href = href_of(key);
    match parse_target(&href) {
        Ok(Target::Object(object)) => object.as_str() == key,
        Ok(Target::Directory(prefix)) => prefix == key,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::listing::ListEntry;
    use base64::Engine as _;
    use sha2::{Digest, Sha256};

    fn csp_hash(source: &str) -> String {
        let digest = Sha256::digest(source.as_bytes());
        format!(
            "'sha256-{}'",
            base64::engine::general_purpose::STANDARD.encode(digest)
        )
    }

    #[test]
    fn the_policy_allows_exactly_the_page_style_and_script() {
        let style = format!("style-src {};", csp_hash(STYLE));
        let script = format!("script-src {};", csp_hash(SCRIPT));
        assert!(CONTENT_SECURITY_POLICY.contains(&style), "want {style}");
        assert!(CONTENT_SECURITY_POLICY.contains(&script), "want {script}");
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    }

    #[test]
    fn page_after_reads_only_the_after_parameter() {
        type Case<'a> = (Option<&'a str>, Result<Option<&'a str>, IndexQueryError>);
        let at_limit = format!("after={}", "k".repeat(MAX_KEY_BYTES));
        let over_limit = format!("after={}", "k".repeat(MAX_KEY_BYTES + 1));
        let cases: &[Case] = &[
            (None, Ok(None)),
            (Some(""), Ok(None)),
            (Some("after="), Ok(None)),
            (Some("after=b.mp4"), Ok(Some("b.mp4"))),
            (Some("x=1&after=dir%2F"), Ok(Some("dir/"))),
            (Some("after=a+b%20c"), Ok(Some("a b c"))),
            (Some("after=%C3%A9"), Ok(Some("é"))),
            (Some("after=%FF"), Err(IndexQueryError::BadAfter)),
            (Some("afterx=1"), Ok(None)),
            (Some(&at_limit), Ok(Some(&at_limit[6..]))),
            (Some(&over_limit), Err(IndexQueryError::AfterTooLong)),
        ];
        for (query, want) in cases {
            let got = page_after(*query);
            let want = want.map(|o| o.map(str::to_owned));
            assert_eq!(got, want, "{query:?}");
        }
    }

    #[test]
    fn hrefs_encode_each_segment_once() {
        let cases = [
            ("", "/"),
            ("a.mp4", "/a.mp4"),
            ("videos/", "/videos/"),
            ("videos/a b.mp4", "/videos/a%20b.mp4"),
            ("é/<x>\"'&.webm", "/%C3%A9/%3Cx%3E%22%27%26.webm"),
            ("100%.mp3", "/100%25.mp3"),
            ("a?b#c.mp4", "/a%3Fb%23c.mp4"),
        ];
        for (key, want) in cases {
            assert_eq!(href_of(key), want, "{key:?}");
        }
    }

    #[test]
    fn servable_names_come_back_as_themselves() {
        let cases = [
            ("a.mp4", true),
            ("dir/", true),
            ("dir/é b.mp4", true),
            ("<script>.mp4", true),
            ("back\\slash.mp4", false),
            ("a//b.mp4", false),
            ("./a.mp4", false),
            ("../a.mp4", false),
            ("bell\u{7}.mp4", false),
            ("", true),
        ];
        for (key, want) in cases {
            assert_eq!(servable(key), want, "{key:?}");
        }
    }

    #[test]
    fn escapes_every_markup_character() {
        assert_eq!(
            escape_html("<a href='x'>\"&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn players_follow_the_media_type() {
        let cases = [
            ("video/mp4", Player::Video),
            ("video/webm", Player::Video),
            ("audio/mpeg", Player::Audio),
            ("image/png", Player::Image),
            ("text/plain; charset=utf-8", Player::Link),
            ("application/octet-stream", Player::Link),
        ];
        for (content_type, want) in cases {
            assert_eq!(Player::for_type(content_type), want, "{content_type}");
        }
    }

    #[test]
    fn sizes_read_as_people_read_them() {
        let cases = [
            (0, "0 B"),
            (1023, "1023 B"),
            (1024, "1.0 KiB"),
            (1_117_041, "1.1 MiB"),
            (5 * 1024 * 1024 * 1024, "5.0 GiB"),
            (3 * 1024u64.pow(4), "3072.0 GiB"),
        ];
        for (bytes, want) in cases {
            assert_eq!(human_size(bytes), want, "{bytes}");
        }
    }

    #[test]
    fn renders_each_entry_in_its_player_with_names_escaped() {
        let listing = Listing {
            entries: vec![
                ListEntry::object("<img src=x onerror=alert(1)>.mp4", 10),
                ListEntry::directory("clips"),
                ListEntry::object("song \"one\".mp3", 2048),
                ListEntry::object("still.png", 5),
                ListEntry::object("notes.txt", 7),
                ListEntry::object("bad\\name.mp4", 1),
            ],
            next_after: Some("still.png".into()),
        };
        let html = render("media/", &listing, crate::derivative::params::DEFAULT_SIZES);
        let must = [
            "<title>Index of /media/</title>",
            "<a href=\"/\">/</a><a href=\"/media/\">media/</a>",
            "<p>4 files on this page</p>",
            "<a href=\"/\">../</a>",
            "<a href=\"/media/clips/\">clips/</a>",
            "<figure class=\"video\" data-href=\"/media/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.mp4\" data-player=\"video\" data-poster=\"/media/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.mp4?frame=1&amp;w=640\">",
            "<video controls preload=\"metadata\" poster=\"/media/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.mp4?frame=1&amp;w=640\" src=\"/media/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.mp4\"></video>",
            "<code class=\"snippet\">&lt;video controls poster=&quot;/media/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.mp4?frame=1&amp;w=640&quot; src=&quot;/media/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.mp4&quot;&gt;&lt;/video&gt;</code>",
            "<span class=\"meta duration\"></span>",
            ">&lt;img src=x onerror=alert(1)&gt;.mp4</a>",
            "<audio controls preload=\"metadata\" src=\"/media/song%20%22one%22.mp3\"></audio>",
            ">song &quot;one&quot;.mp3</a>",
            "<span class=\"meta\" title=\"2048 bytes\">2.0 KiB · audio/mpeg</span>",
            "<figure class=\"image\" data-href=\"/media/still.png\" data-player=\"image\" data-srcset=\"/media/still.png?w=384 384w, /media/still.png?w=640 640w, /media/still.png?w=1080 1080w, /media/still.png?w=1920 1920w\">",
            "<img loading=\"lazy\" src=\"/media/still.png?w=384\" alt=\"still.png\">",
            "<code class=\"snippet\">&lt;img src=&quot;/media/still.png&quot; srcset=&quot;/media/still.png?w=384 384w, /media/still.png?w=640 640w, /media/still.png?w=1080 1080w, /media/still.png?w=1920 1920w&quot; sizes=&quot;(max-width: 640px) 100vw, 640px&quot; alt=&quot;&quot;&gt;</code>",
            "<figure class=\"other\" data-href=\"/media/notes.txt\" data-player=\"other\">",
            "<a rel=\"next\" href=\"?after=still.png\">Next page</a>",
        ];
        for part in must {
            assert!(html.contains(part), "missing {part}\n{html}");
        }
        assert!(!html.contains("<img src=x"), "raw markup from a name");
        assert!(!html.contains("bad"), "an unservable name was linked");
        assert_eq!(html.matches("<figure").count(), 4);
    }

    #[test]
    fn an_empty_root_says_so() {
        let html = render(
            "",
            &Listing::default(),
            crate::derivative::params::DEFAULT_SIZES,
        );
        assert!(html.contains("<p>0 files on this page</p>"));
        assert!(html.contains("<p class=\"empty\">Nothing here.</p>"));
        assert!(!html.contains("../"));
        assert!(!html.contains("rel=\"next\""));
    }
}
