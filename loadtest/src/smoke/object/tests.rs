//! Table tests of the object's checks on hand-made answers.

use super::*;
use crate::smoke::exchange::fixtures::{answer, assert_verdict, Expected, Fields};

const SIZE: u64 = 100;

fn data() -> Vec<u8> {
    (0..SIZE as u8).map(|i| i.wrapping_mul(7)).collect()
}

/// What a test knows of the object: all of it.
fn known_all() -> KnownBytes {
    let mut known = KnownBytes::default();
    known.add(0, &data(), "GET the reference");
    known
}

#[test]
fn the_head_gives_the_size_and_a_validator() {
    let ok = answer(
        200,
        &[
            ("content-length", "100"),
            ("etag", "\"v1\""),
            ("last-modified", "Sun, 07 Dec 2025 21:34:00 GMT"),
        ],
        b"",
    );
    assert_eq!(
        head(&ok),
        Ok((
            Object {
                size: 100,
                etag: Some("\"v1\"".into())
            },
            "200, 100 bytes, ETag \"v1\", Last-Modified Sun, 07 Dec 2025 21:34:00 GMT".into()
        ))
    );
    let remapped = answer(
        200,
        &[("x-amzn-remapped-content-length", "7"), ("etag", "\"v1\"")],
        b"",
    );
    assert_eq!(head(&remapped).map(|(o, _)| o.size), Ok(7));
    let cases: Vec<(u16, Fields, &[u8], &str)> = vec![
        (
            404,
            vec![],
            b"404 Not Found",
            "expected 200, got 404 \"404 Not Found\"",
        ),
        (
            200,
            vec![("etag", "\"v1\"")],
            b"",
            "expected a Content-Length, got none",
        ),
        (
            200,
            vec![("content-length", "0"), ("etag", "\"v1\"")],
            b"",
            "the object is empty: there are no ranges to ask for",
        ),
        (
            200,
            vec![("content-length", "5")],
            b"",
            "expected an ETag or Last-Modified, got neither",
        ),
    ];
    for (status, fields, body, expected) in cases {
        assert_eq!(
            head(&answer(status, &fields, body)).unwrap_err(),
            expected,
            "{fields:?}"
        );
    }
}

#[test]
fn single_ranges_are_exact() {
    let d = data();
    let range = |value: &str, body: &[u8]| {
        answer(
            206,
            &[
                ("content-range", value),
                ("content-length", &body.len().to_string()),
            ],
            body,
        )
    };
    let mut cut = answer(
        206,
        &[("content-range", "bytes 0-9/100"), ("content-length", "10")],
        &d[..5],
    );
    cut.ended = false;
    cut.body_error = Some("connection reset".into());
    let mut read_limit = answer(
        206,
        &[
            ("content-range", "bytes 0-99/100"),
            ("content-length", "100"),
        ],
        &d[..10],
    );
    read_limit.ended = false;
    let mut wrong = d[10..20].to_vec();
    wrong[3] ^= 1;
    // (name, answer, first, last asked, expected)
    type Case<'a> = (&'a str, Exchange, u64, Option<u64>, Result<(), &'a str>);
    let cases: Vec<Case> = vec![
        ("probe", range("bytes 0-1/100", &d[..2]), 0, Some(1), Ok(())),
        (
            "clamped",
            range("bytes 90-99/100", &d[90..]),
            90,
            Some(500),
            Ok(()),
        ),
        (
            "open, capped",
            range("bytes 0-9/100", &d[..10]),
            0,
            None,
            Ok(()),
        ),
        ("open, whole", range("bytes 0-99/100", &d), 0, None, Ok(())),
        ("open, read to the limit", read_limit, 0, None, Ok(())),
        (
            "3 bytes for 0-1",
            range("bytes 0-2/100", &d[..3]),
            0,
            Some(1),
            Err("expected Content-Range bytes 0-1/100, got \"bytes 0-2/100\""),
        ),
        (
            "a 200",
            answer(200, &[("content-length", "100")], &d),
            0,
            Some(1),
            Err("expected 206, got 200"),
        ),
        (
            "other size",
            range("bytes 0-1/101", &d[..2]),
            0,
            Some(1),
            Err("got \"bytes 0-1/101\""),
        ),
        (
            "open, wrong start",
            range("bytes 1-9/100", &d[1..10]),
            0,
            None,
            Err("expected Content-Range bytes 0-(any)/100"),
        ),
        (
            "no Content-Range",
            answer(206, &[("content-length", "2")], &d[..2]),
            0,
            Some(1),
            Err("got None"),
        ),
        (
            "body longer than the range",
            answer(206, &[("content-range", "bytes 0-1/100")], &d[..3]),
            0,
            Some(1),
            Err("expected a body of 2 bytes, got 3 or more"),
        ),
        (
            "body shorter than the range",
            answer(206, &[("content-range", "bytes 0-9/100")], &d[..9]),
            0,
            Some(9),
            Err("expected a body of 10 bytes, got 9"),
        ),
        (
            "Content-Length off",
            answer(
                206,
                &[("content-range", "bytes 0-1/100"), ("content-length", "3")],
                &d[..2],
            ),
            0,
            Some(1),
            Err("Content-Length 3 for a range of 2 bytes"),
        ),
        (
            "cut short",
            cut,
            0,
            Some(9),
            Err("the body failed after 5 of 10 bytes: connection reset"),
        ),
        (
            "other bytes",
            range("bytes 10-19/100", &wrong),
            10,
            Some(19),
            Err("byte 13 is 0x5a, but 0x5b in the answer to GET the reference"),
        ),
    ];
    let known = known_all();
    for (name, answer, first, last, expected) in cases {
        assert_verdict(
            name,
            single_range(&answer, first, last, SIZE, &known),
            expected,
        );
    }
    let capped = range("bytes 0-9/100", &d[..10]);
    assert_eq!(
        single_range(&capped, 0, None, SIZE, &known).unwrap(),
        "206 bytes 0-9/100 (capped: legal, RFC 9110 §15.3.7), 10 bytes"
    );
}

/// A multipart body of `parts` of `data()`, as the server frames it.
fn multipart_body(parts: &[(u64, u64)], declared_size: u64) -> Vec<u8> {
    let d = data();
    let mut body = Vec::new();
    for (i, (a, b)) in parts.iter().enumerate() {
        if i > 0 {
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(
            format!("--B\r\nContent-Type: video/mp4\r\nContent-Range: bytes {a}-{b}/{declared_size}\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(&d[*a as usize..=*b as usize]);
    }
    body.extend_from_slice(b"\r\n--B--\r\n");
    body
}

#[test]
fn multipart_answers_hold_the_exact_parts() {
    let wanted = [(0, 1), (50, 53)];
    let framed = |body: Vec<u8>| {
        answer(
            206,
            &[
                ("content-type", "multipart/byteranges; boundary=B"),
                ("content-length", &body.len().to_string()),
            ],
            &body,
        )
    };
    let mut other_bytes = multipart_body(&wanted, SIZE);
    let at = other_bytes.len() - 10;
    other_bytes[at] ^= 1;
    let cases: Vec<(&str, Exchange, Expected)> = vec![
        ("right", framed(multipart_body(&wanted, SIZE)), Ok(())),
        (
            "one part missing",
            framed(multipart_body(&wanted[..1], SIZE)),
            Err("expected parts 0-1/100, 50-53/100, got 0-1/100"),
        ),
        (
            "other size",
            framed(multipart_body(&wanted, 101)),
            Err("got 0-1/101, 50-53/101"),
        ),
        (
            "other bytes",
            framed(other_bytes),
            Err("part 50-53: byte 53"),
        ),
        (
            "a single range instead",
            answer(
                206,
                &[
                    ("content-type", "video/mp4"),
                    ("content-range", "bytes 0-53/100"),
                ],
                &data()[..54],
            ),
            Err("expected Content-Type multipart/byteranges; boundary=..., got \"video/mp4\""),
        ),
        (
            "the whole object",
            answer(200, &[("content-type", "video/mp4")], &data()),
            Err("expected 206 multipart/byteranges, got 200"),
        ),
        (
            "wrong Content-Length",
            answer(
                206,
                &[
                    ("content-type", "multipart/byteranges; boundary=B"),
                    ("content-length", "5"),
                ],
                &multipart_body(&wanted, SIZE),
            ),
            Err("Content-Length 5, body of"),
        ),
    ];
    let known = known_all();
    for (name, answer, expected) in cases {
        assert_verdict(name, multipart(&answer, &wanted, SIZE, &known), expected);
    }
}

#[test]
fn conditionals_and_unsatisfiable_ranges() {
    let etag = "\"v1\"";
    let cases: Vec<(&str, Exchange, Expected)> = vec![
        ("304", answer(304, &[("etag", etag)], b""), Ok(())),
        (
            "200",
            answer(200, &[("etag", etag)], &data()),
            Err("expected 304, got 200"),
        ),
        (
            "304 with a body",
            answer(304, &[("etag", etag)], b"x"),
            Err("expected no body, got 1 bytes"),
        ),
        (
            "304 without ETag",
            answer(304, &[], b""),
            Err("304 must carry ETag \"v1\", got None"),
        ),
    ];
    for (name, answer, expected) in cases {
        assert_verdict(name, not_modified(&answer, etag), expected);
    }

    let known = known_all();
    let whole = answer(200, &[("content-length", "100")], &data());
    let mut first_bytes = answer(200, &[("content-length", "100")], &data()[..10]);
    first_bytes.ended = false;
    let cases: Vec<(&str, Exchange, Expected)> = vec![
        ("whole", whole, Ok(())),
        ("read to the limit", first_bytes, Ok(())),
        (
            "a presigned redirect",
            answer(
                307,
                &[(
                    "location",
                    "https://bucket.s3.amazonaws.com/big.mp4?X-Amz-Signature=x",
                )],
                b"",
            ),
            Ok(()),
        ),
        (
            "a redirect to nowhere",
            answer(307, &[], b""),
            Err("307 without a Location"),
        ),
        (
            "the range served anyway",
            answer(206, &[("content-range", "bytes 0-1/100")], &data()[..2]),
            Err("expected 200 (the Range ignored), got 206"),
        ),
        (
            "200 with Content-Range",
            answer(200, &[("content-range", "bytes 0-99/100")], &data()),
            Err("a 200 carries no Content-Range"),
        ),
        (
            "200 of another length",
            answer(200, &[("content-length", "99")], &data()[..99]),
            Err("Content-Length 99 for a range of 100 bytes"),
        ),
    ];
    for (name, answer, expected) in cases {
        assert_verdict(name, if_range_miss(&answer, SIZE, &known), expected);
    }

    let cases: Vec<(&str, Exchange, Expected)> = vec![
        (
            "416",
            answer(416, &[("content-range", "bytes */100")], b""),
            Ok(()),
        ),
        (
            "416 without the size",
            answer(416, &[], b""),
            Err("expected Content-Range bytes */100, got None"),
        ),
        (
            "416 with another size",
            answer(416, &[("content-range", "bytes */99")], b""),
            Err("got Some(\"bytes */99\")"),
        ),
        (
            "200",
            answer(200, &[], &data()),
            Err("expected 416, got 200"),
        ),
    ];
    for (name, answer, expected) in cases {
        assert_verdict(name, unsatisfiable(&answer, SIZE), expected);
    }
}

#[test]
fn streaming_is_judged_by_a_generous_rule() {
    let timed = |status: u16, ms: Option<u64>| {
        let mut a = answer(status, &[], b"x");
        a.ttfb = ms.map(Duration::from_millis);
        a
    };
    let small = Duration::from_millis(10);
    // limit: 4 x 10 ms + 250 ms = 290 ms
    let cases: Vec<(&str, Exchange, Expected)> = vec![
        ("as fast", timed(206, Some(10)), Ok(())),
        ("at the limit", timed(206, Some(290)), Ok(())),
        (
            "buffered",
            timed(206, Some(291)),
            Err("first byte of 1000 bytes after 291.0 ms, of a small range after 10.0 ms (rule: at most 4x + 250 ms = 290.0 ms)"),
        ),
        ("no body", timed(206, None), Err("brought no body byte")),
        ("a 200", timed(200, Some(1)), Err("not 206")),
    ];
    for (name, answer, expected) in cases {
        assert_verdict(name, streaming(small, &answer, 1000), expected);
    }
}

#[test]
fn heads_agree_on_type_validator_and_ranges() {
    let a = |fields: &[(&str, &str)]| answer(206, fields, b"");
    let mp4 = ("content-type", "video/mp4");
    let v1 = ("etag", "\"v1\"");
    let bytes = ("accept-ranges", "bytes");

    let same = [a(&[mp4]), a(&[mp4])];
    assert_eq!(
        content_type(Some("mp4"), &same.iter().collect::<Vec<_>>()),
        Ok("video/mp4 on all 2 answers".into())
    );
    let cases: Vec<(Option<&str>, Vec<Exchange>, Expected)> = vec![
        (
            Some("bin"),
            vec![a(&[("content-type", "application/octet-stream")])],
            Ok(()),
        ),
        (
            Some("MP4"),
            vec![a(&[("content-type", "binary/octet-stream")])],
            Err("a .mp4 file is served as \"binary/octet-stream\""),
        ),
        (Some("mp4"), vec![a(&[mp4]), a(&[])], Err("no Content-Type")),
        (
            Some("mp4"),
            vec![a(&[mp4]), a(&[("content-type", "video/webm")])],
            Err("Content-Type \"video/webm\", others \"video/mp4\""),
        ),
    ];
    for (ext, answers, expected) in cases {
        let got = content_type(ext, &answers.iter().collect::<Vec<_>>());
        assert_verdict(&format!("{ext:?}"), got, expected);
    }

    let cases: Vec<(Vec<Exchange>, Expected)> = vec![
        (vec![a(&[v1]), a(&[v1]), answer(304, &[v1], b"")], Ok(())),
        (
            vec![a(&[v1]), a(&[("etag", "\"v2\"")])],
            Err("ETag \"v2\", others \"v1\""),
        ),
        (vec![a(&[("etag", "W/\"v1\"")])], Err("weak ETag W/\"v1\"")),
        (vec![a(&[v1]), a(&[])], Err("no ETag")),
    ];
    for (answers, expected) in cases {
        let got = etag(&answers.iter().collect::<Vec<_>>());
        assert_verdict("etag", got, expected);
    }

    let cases: Vec<(Vec<Exchange>, Expected)> = vec![
        (vec![a(&[bytes]), a(&[("accept-ranges", "Bytes")])], Ok(())),
        (
            vec![a(&[bytes]), a(&[("accept-ranges", "none")])],
            Err("Accept-Ranges Some(\"none\")"),
        ),
        (vec![a(&[])], Err("Accept-Ranges None, expected bytes")),
    ];
    for (answers, expected) in cases {
        let got = accept_ranges(&answers.iter().collect::<Vec<_>>());
        assert_verdict("accept-ranges", got, expected);
    }
}
