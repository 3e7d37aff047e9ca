//! Index pages: the same listing from every store, INDEX_PAGE_SIZE entries
//! a page. Links that leave the root, dot files and outside directories
//! are not listed.

use media_streamer::index;
use media_streamer::source::listing::{ListEntry, Listing};

use super::{BodyExpect, Builder};

pub(super) fn add(b: &mut Builder<'_>) {
    let clip = b.fixture.bytes("sub/clip.webm").len() as u64;
    let pages = [
        (
            "index of the root",
            "/",
            "",
            vec![
                ListEntry::object("bytes.bin", 10_000),
                ListEntry::object("empty.bin", 0),
                ListEntry::object("inside-link.mp3", clip),
            ],
            Some("inside-link.mp3"),
        ),
        (
            "index of the root, second page",
            "/?after=inside-link.mp3",
            "",
            vec![
                ListEntry::object("name with spaces é.mp4", 1_000),
                ListEntry::directory("sub"),
            ],
            None,
        ),
        (
            "index of a sub-directory",
            "/sub/",
            "sub/",
            vec![
                ListEntry::object("broken.jpg", b.fixture.bytes("sub/broken.jpg").len() as u64),
                ListEntry::object("clip.webm", clip),
                ListEntry::object(
                    "faststart.mp4",
                    b.fixture.bytes("sub/faststart.mp4").len() as u64,
                ),
            ],
            Some("faststart.mp4"),
        ),
        (
            "index after a directory name",
            "/?after=sub%2F",
            "",
            vec![],
            None,
        ),
    ];
    for (name, target, prefix, entries, next_after) in pages {
        let listing = Listing {
            entries,
            next_after: next_after.map(str::to_owned),
        };
        let html = index::render(
            prefix,
            &listing,
            media_streamer::derivative::params::DEFAULT_SIZES,
        )
        .into_bytes();
        for method in ["GET", "HEAD"] {
            let case = b.case(&format!("{method} {name}"), method, target, &[]);
            case.status = 200;
            case.expect = vec![
                ("content-type", "text/html; charset=utf-8".into()),
                ("content-length", html.len().to_string()),
                ("cache-control", "no-cache".into()),
                ("x-content-type-options", "nosniff".into()),
                (
                    "content-security-policy",
                    index::CONTENT_SECURITY_POLICY.into(),
                ),
            ];
            case.absent = vec!["etag", "accept-ranges", "content-range"];
            case.body = BodyExpect::Exact(if method == "HEAD" {
                Vec::new()
            } else {
                html.clone()
            });
        }
    }
    for (name, target, status, reason) in [
        (
            "index of a missing directory",
            "/nothing/",
            404,
            "Not Found",
        ),
        (
            "index of a link leaving the root",
            "/outside-link/",
            404,
            "Not Found",
        ),
        ("index of a dot directory", "/.hidden/", 404, "Not Found"),
        (
            "index with a bad page name",
            "/?after=%FF",
            400,
            "Bad Request: the 'after' parameter is not valid percent-encoded UTF-8",
        ),
        ("index with a dot-dot", "/sub/../", 400, "Bad Request"),
    ] {
        b.error(name, "GET", target, &[], status, reason);
    }
    b.error(
        "index with a page name longer than any key",
        "GET",
        &format!("/?after={}", "k".repeat(1025)),
        &[],
        400,
        "Bad Request: the 'after' parameter is longer than any key",
    );
}
