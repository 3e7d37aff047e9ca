//! Missing objects, and paths that try to leave the root: 404, 400 and 414.

use super::Builder;

pub(super) fn add(b: &mut Builder<'_>) {
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
}
