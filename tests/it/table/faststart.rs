//! Faststart on the fly: a movie whose `moov` follows its `mdat` is served
//! with `moov` first, as a representation of its own (its ETag, the source's
//! Last-Modified), with every range and condition exact over its bytes. A
//! movie already faststart, a fragmented one, and a file that is no movie
//! under a movie's name are served as stored, with the stored ETag.

use media_streamer::faststart::faststart_etag;
use media_streamer::mp4::{self, Layout, Segment};
use media_streamer::protocol::conditional::EntityTag;
use media_streamer::protocol::range::ByteRange;

use super::{Builder, Obj, Rep};

/// The fixture movies (tests/fixtures/video, made by ffmpeg from its test
/// sources: H.264 and AAC, 2 s): laid out `ftyp free mdat moov`, the same
/// with `-movflags +faststart`, and fragmented.
pub const MOOV_AT_END: &str = "sub/moov-at-end.mp4";
pub const FASTSTART: &str = "sub/faststart.mp4";
pub const FRAGMENTED: &str = "sub/fragmented.mp4";

/// The faststart representation of the moov-at-end fixture, assembled from
/// the rewrite's segments, with the checks that make it one: the same size,
/// `moov` before the first `mdat`, and the bytes before `moov` as stored.
fn faststart(b: &Builder<'_>) -> Rep {
    let stored = b.fixture.bytes(MOOV_AT_END);
    let boxes = mp4::scan_top_level_bytes(&stored).unwrap();
    let Layout::Faststart { moov } = mp4::classify(&boxes, u64::MAX) else {
        panic!("the fixture's moov is not at its end");
    };
    let moov_bytes = &stored[moov.offset as usize..moov.end() as usize];
    let rewritten = mp4::rewrite(&boxes, moov_bytes).unwrap();
    let whole = ByteRange {
        first: 0,
        last: rewritten.size - 1,
    };
    let mut data = Vec::new();
    for segment in rewritten.segments(whole) {
        match segment {
            Segment::Moov { start, end } => data.extend_from_slice(&rewritten.moov[start..end]),
            Segment::Source(r) => {
                data.extend_from_slice(&stored[r.first as usize..=r.last as usize]);
            }
        }
    }
    assert_eq!(data.len(), stored.len());
    let order: Vec<[u8; 4]> = mp4::scan_top_level_bytes(&data)
        .unwrap()
        .iter()
        .map(|b| b.kind)
        .collect();
    assert_eq!(order, [*b"ftyp", *b"free", *b"moov", *b"mdat"]);
    assert_eq!(data[..40], stored[..40]);
    let source = (b.store.validators)(MOOV_AT_END);
    let tag = EntityTag::parse(&source.etag).expect("a stored ETag");
    Rep {
        target: format!("/{MOOV_AT_END}"),
        content_type: "video/mp4".to_owned(),
        data,
        etag: faststart_etag(&tag).to_string(),
        last_modified: None,
    }
}

pub(super) fn add(b: &mut Builder<'_>) {
    let movie = faststart(b);
    let size = movie.data.len() as u64;
    let etag = movie.etag.clone();
    let stored_etag = (b.store.validators)(MOOV_AT_END).etag;
    assert_ne!(etag, stored_etag);
    b.whole_of("faststart: whole", "GET", &movie, &[]);
    b.whole_of("faststart: HEAD", "HEAD", &movie, &[]);
    b.partial_of(
        "faststart: the first bytes, into moov",
        "GET",
        &movie,
        &[("Range", "bytes=0-99")],
        (0, 99),
    );
    b.partial_of(
        "faststart: across the end of moov into mdat",
        "GET",
        &movie,
        &[("Range", "bytes=2200-2299")],
        (2200, 2299),
    );
    b.partial_of(
        "faststart: inside mdat",
        "GET",
        &movie,
        &[("Range", "bytes=5000-5999")],
        (5000, 5999),
    );
    b.partial_of(
        "faststart: suffix",
        "GET",
        &movie,
        &[("Range", "bytes=-100")],
        (size - 100, size - 1),
    );
    b.partial_of(
        "faststart: If-Range with its ETag",
        "GET",
        &movie,
        &[("Range", "bytes=10-19"), ("If-Range", &etag)],
        (10, 19),
    );
    b.whole_of(
        "faststart: If-Range with the stored ETag sends the whole",
        "GET",
        &movie,
        &[("Range", "bytes=10-19"), ("If-Range", &stored_etag)],
    );
    // The rewrite has no date of its own: an If-Range date matches nothing.
    let stored_date = (b.store.validators)(MOOV_AT_END).last_modified;
    b.whole_of(
        "faststart: If-Range with the stored date sends the whole",
        "GET",
        &movie,
        &[("Range", "bytes=10-19"), ("If-Range", &stored_date)],
    );
    b.multipart_of(
        "faststart: two ranges, moov and mdat",
        &movie,
        "bytes=0-1,3000-3010",
        &[(0, 1), (3000, 3010)],
    );
    let case = b.case(
        "faststart: If-None-Match with its ETag",
        "GET",
        &movie.target,
        &[("If-None-Match", &etag)],
    );
    case.status = 304;
    case.expect = vec![("etag", etag.clone()), ("content-type", "video/mp4".into())];
    case.absent = vec!["content-length", "content-range"];
    b.whole_of(
        "faststart: If-None-Match with the stored ETag",
        "GET",
        &movie,
        &[("If-None-Match", &stored_etag)],
    );
    let case = b.error(
        "faststart: unsatisfiable range",
        "GET",
        &movie.target,
        &[("Range", &format!("bytes={size}-"))],
        416,
        "Range Not Satisfiable",
    );
    case.expect
        .push(("content-range", format!("bytes */{size}")));
    case.expect.push(("accept-ranges", "bytes".into()));

    // A query naming no derivative parameter (a player's cache-buster) is
    // ignored on a movie, as on any file.
    let busted = Rep {
        target: format!("/{MOOV_AT_END}?t=1700000000"),
        ..faststart(b)
    };
    b.whole_of(
        "faststart: a cache-busting query is ignored",
        "GET",
        &busted,
        &[],
    );

    // Served as stored: already faststart, fragmented, no movie at all.
    for (name, file) in [
        (
            "faststart: a movie already faststart is as stored",
            FASTSTART,
        ),
        ("faststart: a fragmented movie is as stored", FRAGMENTED),
    ] {
        let target = format!("/{file}");
        let rep = b.stored(Obj(&target, file, "video/mp4"));
        b.whole_of(name, "GET", &rep, &[]);
        b.partial_of(
            &format!("{name}, by range"),
            "GET",
            &rep,
            &[("Range", "bytes=100-199")],
            (100, 199),
        );
    }
}
