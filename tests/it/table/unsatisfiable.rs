//! Unsatisfiable ranges: 416 with `Content-Range: bytes */size`.

use super::{Builder, Common};

pub(super) fn add(b: &mut Builder<'_>, common: &Common) {
    let size = 10_000u64;
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
            common.too_many.as_str(),
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
}
