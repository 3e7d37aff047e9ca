//! Every HTTP rule of the core, as a table of real requests with the exact
//! status, header fields and body bytes each must get. The same table runs
//! against every transport and source.

use std::net::SocketAddr;

use media_streamer::protocol::index::{self, ListEntry, Listing};

use crate::client::{send, RawResponse};
use crate::fixture::{Fixture, Validators, CACHE_CONTROL, CHUNK, MAX_RANGES, SECRET};

/// What the table needs to know of the store behind the server.
pub struct Store<'a> {
    /// The validators the store has for a fixture file.
    pub validators: Box<dyn Fn(&str) -> Validators + 'a>,
    /// Whether every 412 carries the validators (a directory always knows
    /// them; S3's own 412 sends none, so there only the 412s decided here do:
    /// where present they must be right).
    pub validators_on_412: bool,
    /// Whether every 304 carries Last-Modified (the test S3 server's own 304
    /// does not; where present it must be right).
    pub last_modified_on_304: bool,
}

impl<'a> Store<'a> {
    pub fn directory(fixture: &'a Fixture) -> Self {
        Store {
            validators: Box::new(|name| fixture.validators(name)),
            validators_on_412: true,
            last_modified_on_304: true,
        }
    }
}

/// What a body must be.
#[derive(Clone, Debug)]
pub enum BodyExpect {
    Exact(Vec<u8>),
    /// `multipart/byteranges` of these ranges of `data`, with this part type.
    Multipart {
        part_type: String,
        data: Vec<u8>,
        ranges: Vec<(u64, u64)>,
    },
}

#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub method: &'static str,
    pub target: String,
    pub headers: Vec<(&'static str, String)>,
    pub status: u16,
    /// Fields that must be present with exactly these values.
    pub expect: Vec<(&'static str, String)>,
    /// Fields that must be absent.
    pub absent: Vec<&'static str>,
    /// Fields that must have these values if present.
    pub if_present: Vec<(&'static str, String)>,
    pub body: BodyExpect,
}

/// How a transport may legitimately differ from plain HTTP/1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Content-Length is sent as given.
    Exact,
    /// The body may come chunked with Content-Length absent or moved to
    /// `x-amzn-remapped-content-length` (Lambda response streaming).
    Remapped,
}

/// A request target, the fixture file behind it and its expected type.
struct Obj<'a>(&'a str, &'a str, &'a str);

struct Builder<'a> {
    fixture: &'a Fixture,
    store: &'a Store<'a>,
    cases: Vec<Case>,
}

impl Builder<'_> {
    fn case(
        &mut self,
        name: &str,
        method: &'static str,
        target: &str,
        headers: &[(&'static str, &str)],
    ) -> &mut Case {
        self.cases.push(Case {
            name: name.to_owned(),
            method,
            target: target.to_owned(),
            headers: headers.iter().map(|(n, v)| (*n, v.to_string())).collect(),
            status: 0,
            expect: Vec::new(),
            absent: Vec::new(),
            if_present: Vec::new(),
            body: BodyExpect::Exact(Vec::new()),
        });
        self.cases.last_mut().unwrap()
    }

    /// 200 with the whole file.
    fn whole(
        &mut self,
        name: &str,
        method: &'static str,
        obj: Obj,
        headers: &[(&'static str, &str)],
    ) {
        let Obj(target, file, content_type) = obj;
        let data = self.fixture.bytes(file);
        let v = (self.store.validators)(file);
        let case = self.case(name, method, target, headers);
        case.status = 200;
        case.expect = vec![
            ("content-type", content_type.to_owned()),
            ("content-length", data.len().to_string()),
            ("accept-ranges", "bytes".into()),
            ("etag", v.etag),
            ("last-modified", v.last_modified),
            ("cache-control", CACHE_CONTROL.into()),
        ];
        case.absent = vec!["content-range"];
        case.body = BodyExpect::Exact(if method == "HEAD" { Vec::new() } else { data });
    }

    /// 206 with one range.
    fn partial(
        &mut self,
        name: &str,
        method: &'static str,
        obj: Obj,
        headers: &[(&'static str, &str)],
        (first, last): (u64, u64),
    ) {
        let Obj(target, file, content_type) = obj;
        let data = self.fixture.bytes(file);
        let v = (self.store.validators)(file);
        let case = self.case(name, method, target, headers);
        case.status = 206;
        case.expect = vec![
            ("content-type", content_type.to_owned()),
            ("content-length", (last - first + 1).to_string()),
            (
                "content-range",
                format!("bytes {first}-{last}/{}", data.len()),
            ),
            ("accept-ranges", "bytes".into()),
            ("etag", v.etag),
            ("last-modified", v.last_modified),
            ("cache-control", CACHE_CONTROL.into()),
        ];
        case.body = BodyExpect::Exact(if method == "HEAD" {
            Vec::new()
        } else {
            data[first as usize..=last as usize].to_vec()
        });
    }

    /// 206 multipart/byteranges.
    fn multipart(
        &mut self,
        name: &str,
        target: &str,
        file: &str,
        content_type: &str,
        range: &str,
        ranges: &[(u64, u64)],
    ) {
        let data = self.fixture.bytes(file);
        let v = (self.store.validators)(file);
        let case = self.case(name, "GET", target, &[("Range", range)]);
        case.status = 206;
        case.expect = vec![
            ("accept-ranges", "bytes".into()),
            ("etag", v.etag),
            ("last-modified", v.last_modified),
            ("cache-control", CACHE_CONTROL.into()),
        ];
        case.absent = vec!["content-range"];
        case.body = BodyExpect::Multipart {
            part_type: content_type.to_owned(),
            data,
            ranges: ranges.to_vec(),
        };
    }

    /// 304 for bytes.bin.
    fn not_modified(&mut self, name: &str, method: &'static str, headers: &[(&'static str, &str)]) {
        let v = (self.store.validators)("bytes.bin");
        let with_last_modified = self.store.last_modified_on_304;
        let case = self.case(name, method, "/bytes.bin", headers);
        case.status = 304;
        case.expect = vec![
            ("content-type", "application/octet-stream".into()),
            ("etag", v.etag),
            ("cache-control", CACHE_CONTROL.into()),
        ];
        case.absent = vec!["content-range", "content-length"];
        if with_last_modified {
            case.expect.push(("last-modified", v.last_modified));
        } else {
            case.if_present.push(("last-modified", v.last_modified));
        }
    }

    /// A short plain-text error.
    fn error(
        &mut self,
        name: &str,
        method: &'static str,
        target: &str,
        headers: &[(&'static str, &str)],
        status: u16,
        reason: &str,
    ) -> &mut Case {
        let text = format!("{status} {reason}\n");
        let case = self.case(name, method, target, headers);
        case.status = status;
        case.expect = vec![
            ("content-type", "text/plain; charset=utf-8".into()),
            ("content-length", text.len().to_string()),
            ("cache-control", "no-store".into()),
        ];
        case.absent = vec!["etag", "last-modified"];
        case.body = BodyExpect::Exact(if method == "HEAD" {
            Vec::new()
        } else {
            text.into_bytes()
        });
        case
    }
}

/// The table. `fixture` supplies the bytes and validators expected.
pub fn cases<'a>(fixture: &'a Fixture, store: &'a Store<'a>) -> Vec<Case> {
    let mut b = Builder {
        fixture,
        store,
        cases: Vec::new(),
    };
    let v = (store.validators)("bytes.bin");
    let (etag, lm, lm_before) = (
        v.etag.as_str(),
        v.last_modified.as_str(),
        v.last_modified_minus_1s.as_str(),
    );
    let weak_etag = format!("W/{etag}");
    let bin = "application/octet-stream";
    let size = 10_000u64;

    // Whole objects, GET and HEAD.
    b.whole("plain GET", "GET", Obj("/bytes.bin", "bytes.bin", bin), &[]);
    b.whole(
        "HEAD has GET's headers",
        "HEAD",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[],
    );
    b.whole(
        "query string ignored",
        "GET",
        Obj("/bytes.bin?v=2&x=y", "bytes.bin", bin),
        &[],
    );
    b.whole(
        "empty file",
        "GET",
        Obj("/empty.bin", "empty.bin", bin),
        &[],
    );
    b.whole(
        "spaces and non-ASCII",
        "GET",
        Obj(
            "/name%20with%20spaces%20%C3%A9.mp4",
            "name with spaces é.mp4",
            "video/mp4",
        ),
        &[],
    );
    b.whole(
        "nested path",
        "GET",
        Obj("/sub/clip.webm", "sub/clip.webm", "video/webm"),
        &[],
    );
    b.whole(
        "link inside the root, typed by its own name",
        "GET",
        Obj("/inside-link.mp3", "inside-link.mp3", "audio/mpeg"),
        &[],
    );
    b.whole(
        "gzip asked, identity sent",
        "GET",
        Obj("/sub/clip.webm", "sub/clip.webm", "video/webm"),
        &[("Accept-Encoding", "gzip, br")],
    );

    // Single ranges.
    b.partial(
        "Safari probe bytes=0-1",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=0-1")],
        (0, 1),
    );
    b.partial(
        "browser bytes=0- capped to the chunk",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=0-")],
        (0, CHUNK - 1),
    );
    b.partial(
        "open range near the end",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=9000-")],
        (9000, 9999),
    );
    b.partial(
        "suffix range",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=-500")],
        (9500, 9999),
    );
    b.partial(
        "suffix longer than the file",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=-20000")],
        (0, 9999),
    );
    b.partial(
        "closed range",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=100-199")],
        (100, 199),
    );
    b.partial(
        "closed range past the cap served whole",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=0-4999")],
        (0, 4999),
    );
    b.partial(
        "end clamped to the size",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=9990-20000")],
        (9990, 9999),
    );
    b.partial(
        "last byte",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=9999-9999")],
        (9999, 9999),
    );
    b.partial(
        "unit is case-insensitive",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "Bytes=5-9")],
        (5, 9),
    );
    b.partial(
        "whitespace in the set",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes= 5-9 ")],
        (5, 9),
    );
    b.partial(
        "unsatisfiable member dropped",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=0-1,20000-30000")],
        (0, 1),
    );
    b.partial(
        "HEAD with a range",
        "HEAD",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=0-1")],
        (0, 1),
    );
    b.partial(
        "range of a non-ASCII name",
        "GET",
        Obj(
            "/name%20with%20spaces%20%C3%A9.mp4",
            "name with spaces é.mp4",
            "video/mp4",
        ),
        &[("Range", "bytes=10-19")],
        (10, 19),
    );
    b.partial(
        "If-Range with the current ETag",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=0-1"), ("If-Range", etag)],
        (0, 1),
    );
    b.partial(
        "If-Range with the exact date",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=0-1"), ("If-Range", lm)],
        (0, 1),
    );
    b.partial(
        "If-Match holds, range served",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=0-1"), ("If-Match", etag)],
        (0, 1),
    );

    // Several ranges.
    b.multipart(
        "two ranges",
        "/bytes.bin",
        "bytes.bin",
        bin,
        "bytes=0-1,10-19",
        &[(0, 1), (10, 19)],
    );
    b.multipart(
        "ranges out of order, suffix last",
        "/bytes.bin",
        "bytes.bin",
        bin,
        "bytes=500-599,0-9,-5",
        &[(500, 599), (0, 9), (9995, 9999)],
    );
    b.multipart(
        "one overlap allowed",
        "/bytes.bin",
        "bytes.bin",
        bin,
        "bytes=0-99,50-149",
        &[(0, 99), (50, 149)],
    );
    b.multipart(
        "part type is the media type",
        "/sub/clip.webm",
        "sub/clip.webm",
        "video/webm",
        "bytes=0-0,2999-2999",
        &[(0, 0), (2999, 2999)],
    );
    let many: Vec<String> = (0..=MAX_RANGES)
        .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
        .collect();
    let too_many = format!("bytes={}", many.join(","));
    b.whole(
        "two overlaps ignored",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=0-99,50-149,60-69")],
    );
    b.whole(
        "ranges adding up past the size ignored",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=0-5999,4000-9999")],
    );

    // Ignored Range headers.
    b.whole(
        "unknown unit ignored",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "items=0-1")],
    );
    b.whole(
        "reversed range ignored",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=5-2")],
    );
    b.whole(
        "garbage range ignored",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=abc")],
    );
    b.whole(
        "no unit ignored",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "0-1")],
    );
    b.whole(
        "If-Range with another ETag: whole",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=0-1"), ("If-Range", "\"other\"")],
    );
    b.whole(
        "If-Range with a weak ETag: whole",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=0-1"), ("If-Range", &weak_etag)],
    );
    b.whole(
        "If-Range with another date: whole",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=0-1"), ("If-Range", lm_before)],
    );
    b.whole(
        "If-Range garbage: whole",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=0-1"), ("If-Range", "soon")],
    );
    b.whole(
        "If-Range failing beats 416",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", "bytes=20000-"), ("If-Range", "\"other\"")],
    );
    b.whole(
        "If-Range failing beats too many ranges",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("Range", &too_many), ("If-Range", "\"other\"")],
    );

    // Unsatisfiable.
    for (name, target, range, size) in [
        ("start at the size", "/bytes.bin", "bytes=10000-", size),
        (
            "start past the size",
            "/bytes.bin",
            "bytes=20000-20001",
            size,
        ),
        ("empty suffix", "/bytes.bin", "bytes=-0", size),
        (
            "huge start",
            "/bytes.bin",
            "bytes=99999999999999999999999-",
            size,
        ),
        ("any range of an empty file", "/empty.bin", "bytes=0-", 0),
        (
            "more ranges than the limit",
            "/bytes.bin",
            too_many.as_str(),
            size,
        ),
    ] {
        let case = b.error(
            &format!("416: {name}"),
            "GET",
            target,
            &[("Range", range)],
            416,
            "Range Not Satisfiable",
        );
        case.expect
            .push(("content-range", format!("bytes */{size}")));
        case.expect.push(("accept-ranges", "bytes".into()));
    }

    // Preconditions, in RFC 9110 §13.2.2 order.
    b.not_modified("If-None-Match current", "GET", &[("If-None-Match", etag)]);
    b.not_modified(
        "If-None-Match weak compare",
        "GET",
        &[("If-None-Match", &weak_etag)],
    );
    b.not_modified(
        "If-None-Match in a list",
        "GET",
        &[("If-None-Match", &format!("\"a\", {etag}"))],
    );
    b.not_modified("If-None-Match star", "GET", &[("If-None-Match", "*")]);
    b.not_modified("If-None-Match on HEAD", "HEAD", &[("If-None-Match", etag)]);
    b.not_modified(
        "If-None-Match beats Range",
        "GET",
        &[("If-None-Match", etag), ("Range", "bytes=0-1")],
    );
    b.not_modified(
        "If-Modified-Since at Last-Modified",
        "GET",
        &[("If-Modified-Since", lm)],
    );
    b.whole(
        "If-None-Match other",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("If-None-Match", "\"other\"")],
    );
    b.whole(
        "If-None-Match wins over If-Modified-Since",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("If-None-Match", "\"other\""), ("If-Modified-Since", lm)],
    );
    b.whole(
        "If-Modified-Since earlier",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("If-Modified-Since", lm_before)],
    );
    b.whole(
        "If-Modified-Since invalid ignored",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("If-Modified-Since", "yesterday")],
    );
    b.whole(
        "If-Match current",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("If-Match", etag)],
    );
    b.whole(
        "If-Match star",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("If-Match", "*")],
    );
    b.whole(
        "If-Unmodified-Since at Last-Modified",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("If-Unmodified-Since", lm)],
    );
    b.whole(
        "If-Match wins over If-Unmodified-Since",
        "GET",
        Obj("/bytes.bin", "bytes.bin", bin),
        &[("If-Match", etag), ("If-Unmodified-Since", lm_before)],
    );
    for (name, headers) in [
        ("If-Match other", vec![("If-Match", "\"other\"".to_owned())]),
        (
            "If-Match weak never matches",
            vec![("If-Match", weak_etag.clone())],
        ),
        (
            "If-Unmodified-Since earlier",
            vec![("If-Unmodified-Since", lm_before.to_owned())],
        ),
        (
            "412 before 304",
            vec![
                ("If-Match", "\"other\"".to_owned()),
                ("If-None-Match", etag.to_owned()),
            ],
        ),
        (
            "412 before 416",
            vec![
                ("If-Match", "\"other\"".to_owned()),
                ("Range", "bytes=20000-".to_owned()),
            ],
        ),
    ] {
        let headers: Vec<(&'static str, &str)> =
            headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let case = b.error(
            &format!("412: {name}"),
            "GET",
            "/bytes.bin",
            &headers,
            412,
            "Precondition Failed",
        );
        case.absent = vec![];
        let validators = [("etag", etag.to_owned()), ("last-modified", lm.to_owned())];
        if store.validators_on_412 {
            case.expect.extend(validators);
        } else {
            case.if_present.extend(validators);
        }
    }

    // Methods.
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let case = b.error(
            &format!("405: {method}"),
            method,
            "/bytes.bin",
            &[],
            405,
            "Method Not Allowed",
        );
        case.expect.push(("allow", "GET, HEAD".into()));
    }

    // Missing objects, and paths that try to leave the root.
    for (name, target, status, reason) in [
        ("missing object", "/missing.mp4", 404, "Not Found"),
        ("HEAD of a missing object", "/missing.mp4", 404, "Not Found"),
        ("file below a file", "/bytes.bin/x", 404, "Not Found"),
        ("directory without slash", "/sub", 404, "Not Found"),
        ("dot file", "/.hidden", 404, "Not Found"),
        ("link leaving the root", "/escape.mp4", 404, "Not Found"),
        (
            "through a directory link leaving the root",
            "/outside-link/secret.bin",
            404,
            "Not Found",
        ),
        (
            "double-encoded dots",
            "/%252e%252e/outside/secret.bin",
            404,
            "Not Found",
        ),
        ("dot-dot", "/../outside/secret.bin", 400, "Bad Request"),
        (
            "dot-dot deeper",
            "/sub/../../outside/secret.bin",
            400,
            "Bad Request",
        ),
        ("dot-dot back in", "/sub/../bytes.bin", 400, "Bad Request"),
        (
            "encoded dot-dot",
            "/%2e%2e/outside/secret.bin",
            400,
            "Bad Request",
        ),
        (
            "upper-case encoded dot-dot",
            "/%2E%2E/outside/secret.bin",
            400,
            "Bad Request",
        ),
        (
            "encoded slash",
            "/..%2foutside%2fsecret.bin",
            400,
            "Bad Request",
        ),
        (
            "encoded backslash",
            "/..%5coutside%5csecret.bin",
            400,
            "Bad Request",
        ),
        ("encoded NUL", "/bytes.bin%00.mp4", 400, "Bad Request"),
        ("bad escape", "/bytes%zz.bin", 400, "Bad Request"),
        ("not UTF-8", "/%ff%fe.bin", 400, "Bad Request"),
        ("empty segment", "/sub//clip.webm", 400, "Bad Request"),
    ] {
        let method = if name.starts_with("HEAD") {
            "HEAD"
        } else {
            "GET"
        };
        b.error(name, method, target, &[], status, reason);
    }
    let long = format!("/{}", "a".repeat(1100));
    b.error("path too long", "GET", &long, &[], 414, "URI Too Long");

    // Index pages: the same listing from every store, INDEX_PAGE_SIZE entries
    // a page. Links that leave the root, dot files and outside directories
    // are not listed.
    let clip = fixture.bytes("sub/clip.webm").len() as u64;
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
            vec![ListEntry::object("clip.webm", clip)],
            None,
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
        let html = index::render(prefix, &listing).into_bytes();
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
    b.cases
}

/// Sends every case and checks every expectation; reports all failures at once.
pub async fn run(addr: SocketAddr, cases: &[Case], framing: Framing) {
    let mut failures = Vec::new();
    for case in cases {
        let headers: Vec<(&str, &str)> =
            case.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = send(addr, case.method, &case.target, &headers).await;
        if let Err(why) = check(case, &response, framing) {
            failures.push(format!(
                "{} ({} {}): {why}",
                case.name, case.method, case.target
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn check(case: &Case, response: &RawResponse, framing: Framing) -> Result<(), String> {
    if response.status != case.status {
        return Err(format!(
            "status {} (expected {})",
            response.status, case.status
        ));
    }
    if !response.complete {
        return Err("incomplete body".into());
    }
    if response.body.windows(SECRET.len()).any(|w| w == SECRET) {
        return Err("bytes from outside the media root were sent".into());
    }
    for (name, expected) in &case.expect {
        let got = match (*name, framing) {
            ("content-length", Framing::Remapped) => response
                .header("content-length")
                .or_else(|| response.header("x-amzn-remapped-content-length")),
            _ => response.header(name),
        };
        let length_may_go = *name == "content-length" && framing == Framing::Remapped;
        match got {
            Some(value) if value == expected => {}
            None if length_may_go => {}
            other => return Err(format!("{name}: {other:?} (expected {expected:?})")),
        }
    }
    for (name, expected) in &case.if_present {
        match response.header(name) {
            Some(value) if value != expected => {
                return Err(format!("{name}: {value:?} (expected {expected:?} or none)"))
            }
            _ => {}
        }
    }
    for name in case.absent.iter().chain(["content-encoding"].iter()) {
        if let Some(value) = response.header(name) {
            return Err(format!("{name} should be absent, got {value:?}"));
        }
    }
    if response.header("x-content-type-options") != Some("nosniff") {
        return Err("x-content-type-options: nosniff missing".into());
    }
    let expected_body = match &case.body {
        BodyExpect::Exact(bytes) => bytes.clone(),
        BodyExpect::Multipart {
            part_type,
            data,
            ranges,
        } => multipart_body(response, part_type, data, ranges)?,
    };
    if response.body != expected_body {
        return Err(format!(
            "body of {} bytes differs from the expected {} bytes",
            response.body.len(),
            expected_body.len()
        ));
    }
    if case.method != "HEAD" && case.status != 304 {
        if let Some(length) = response.header("content-length") {
            if length != response.body.len().to_string() {
                return Err(format!(
                    "content-length {length} but {} bytes came",
                    response.body.len()
                ));
            }
        }
    }
    Ok(())
}

/// The exact body a multipart response must have, given the boundary it chose.
fn multipart_body(
    response: &RawResponse,
    part_type: &str,
    data: &[u8],
    ranges: &[(u64, u64)],
) -> Result<Vec<u8>, String> {
    let content_type = response.header("content-type").ok_or("no content-type")?;
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .ok_or_else(|| format!("content-type {content_type:?}"))?;
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(format!("boundary {boundary:?}"));
    }
    let mut body = Vec::new();
    for (i, (first, last)) in ranges.iter().enumerate() {
        if i > 0 {
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: {part_type}\r\nContent-Range: bytes {first}-{last}/{}\r\n\r\n", data.len()).as_bytes(),
        );
        body.extend_from_slice(&data[*first as usize..=*last as usize]);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(body)
}
