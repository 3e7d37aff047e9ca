//! Whole objects, GET and HEAD: 200 with every byte and the validators.

use super::{Builder, Obj, BIN};

pub(super) fn add(b: &mut Builder<'_>) {
    b.whole("plain GET", "GET", Obj("/bytes.bin", "bytes.bin", BIN), &[]);
    b.whole(
        "HEAD has GET's headers",
        "HEAD",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[],
    );
    b.whole(
        "query string ignored",
        "GET",
        Obj("/bytes.bin?v=2&x=y", "bytes.bin", BIN),
        &[],
    );
    b.whole(
        "empty file",
        "GET",
        Obj("/empty.bin", "empty.bin", BIN),
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
}
