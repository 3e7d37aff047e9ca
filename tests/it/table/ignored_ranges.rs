//! Range headers that are ignored, by their syntax or by a failing If-Range:
//! 200 with the whole object.

use super::{Builder, Common, Obj, BIN};

pub(super) fn add(b: &mut Builder<'_>, common: &Common) {
    let lm_before = common.lm_before.as_str();
    let weak_etag = common.weak_etag.as_str();
    let too_many = common.too_many.as_str();
    b.whole(
        "unknown unit ignored",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "items=0-1")],
    );
    b.whole(
        "reversed range ignored",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=5-2")],
    );
    b.whole(
        "garbage range ignored",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=abc")],
    );
    b.whole(
        "no unit ignored",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "0-1")],
    );
    b.whole(
        "If-Range with another ETag: whole",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=0-1"), ("If-Range", "\"other\"")],
    );
    b.whole(
        "If-Range with a weak ETag: whole",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=0-1"), ("If-Range", weak_etag)],
    );
    b.whole(
        "If-Range with another date: whole",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=0-1"), ("If-Range", lm_before)],
    );
    b.whole(
        "If-Range garbage: whole",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=0-1"), ("If-Range", "soon")],
    );
    b.whole(
        "If-Range failing beats 416",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=20000-"), ("If-Range", "\"other\"")],
    );
    b.whole(
        "If-Range failing beats too many ranges",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", too_many), ("If-Range", "\"other\"")],
    );
}
