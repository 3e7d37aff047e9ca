//! Single ranges: 206 with one Content-Range, including the If-Range and
//! If-Match headers that let a range through.

use crate::fixture::CHUNK;

use super::{Builder, Common, Obj, BIN};

pub(super) fn add(b: &mut Builder<'_>, common: &Common) {
    let etag = common.etag.as_str();
    let lm = common.lm.as_str();
    b.partial(
        "Safari probe bytes=0-1",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=0-1")],
        (0, 1),
    );
    b.partial(
        "browser bytes=0- capped to the chunk",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=0-")],
        (0, CHUNK - 1),
    );
    b.partial(
        "open range near the end",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=9000-")],
        (9000, 9999),
    );
    b.partial(
        "suffix range",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=-500")],
        (9500, 9999),
    );
    b.partial(
        "suffix longer than the file",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=-20000")],
        (0, 9999),
    );
    b.partial(
        "closed range",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=100-199")],
        (100, 199),
    );
    b.partial(
        "closed range past the cap served whole",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=0-4999")],
        (0, 4999),
    );
    b.partial(
        "end clamped to the size",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=9990-20000")],
        (9990, 9999),
    );
    b.partial(
        "last byte",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=9999-9999")],
        (9999, 9999),
    );
    b.partial(
        "unit is case-insensitive",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "Bytes=5-9")],
        (5, 9),
    );
    b.partial(
        "whitespace in the set",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes= 5-9 ")],
        (5, 9),
    );
    b.partial(
        "unsatisfiable member dropped",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=0-1,20000-30000")],
        (0, 1),
    );
    b.partial(
        "HEAD with a range",
        "HEAD",
        Obj("/bytes.bin", "bytes.bin", BIN),
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
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=0-1"), ("If-Range", etag)],
        (0, 1),
    );
    b.partial(
        "If-Range with the exact date",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=0-1"), ("If-Range", lm)],
        (0, 1),
    );
    b.partial(
        "If-Match holds, range served",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=0-1"), ("If-Match", etag)],
        (0, 1),
    );
}
