//! Preconditions, in RFC 9110 §13.2.2 order: 304, 412, and the ones that
//! let the object through.

use super::{Builder, Common, Obj, BIN};

pub(super) fn add(b: &mut Builder<'_>, common: &Common) {
    let etag = common.etag.as_str();
    let lm = common.lm.as_str();
    let lm_before = common.lm_before.as_str();
    let weak_etag = common.weak_etag.as_str();
    let store = b.store;
    b.not_modified("If-None-Match current", "GET", &[("If-None-Match", etag)]);
    b.not_modified(
        "If-None-Match weak compare",
        "GET",
        &[("If-None-Match", weak_etag)],
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
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("If-None-Match", "\"other\"")],
    );
    b.whole(
        "If-None-Match wins over If-Modified-Since",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("If-None-Match", "\"other\""), ("If-Modified-Since", lm)],
    );
    b.whole(
        "If-Modified-Since earlier",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("If-Modified-Since", lm_before)],
    );
    b.whole(
        "If-Modified-Since invalid ignored",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("If-Modified-Since", "yesterday")],
    );
    b.whole(
        "If-Match current",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("If-Match", etag)],
    );
    b.whole(
        "If-Match star",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("If-Match", "*")],
    );
    b.whole(
        "If-Unmodified-Since at Last-Modified",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("If-Unmodified-Since", lm)],
    );
    b.whole(
        "If-Match wins over If-Unmodified-Since",
        "GET",
        Obj("/bytes.bin", "bytes.bin", BIN),
        &[("If-Match", etag), ("If-Unmodified-Since", lm_before)],
    );
    for (name, headers) in [
        ("If-Match other", vec![("If-Match", "\"other\"".to_owned())]),
        (
            "If-Match weak never matches",
            vec![("If-Match", weak_etag.to_owned())],
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
}
