//! Several ranges: multipart/byteranges, and the sets of ranges served
//! whole instead.

use super::{Builder, Obj, BIN};

pub(super) fn add(b: &mut Builder<'_>) {
    b.multipart(
        "two ranges",
        "/bytes.bin",
        "bytes.bin",
        BIN,
        "bytes=0-1,10-19",
        &[(0, 1), (10, 19)],
    );
    b.multipart(
        "ranges out of order, suffix last",
        "/bytes.bin",
        "bytes.bin",
        BIN,
        "bytes=500-599,0-9,-5",
        &[(500, 599), (0, 9), (9995, 9999)],
    );
    b.multipart(
        "one overlap allowed",
        "/bytes.bin",
        "bytes.bin",
        BIN,
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
    b.whole(
        "two overlaps ignored",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=0-99,50-149,60-69")],
    );
    b.whole(
        "ranges adding up past the size ignored",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("Range", "bytes=0-5999,4000-9999")],
    );
}
