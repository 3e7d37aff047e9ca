//! Reading a `multipart/byteranges` body (RFC 9110 §14.6, RFC 2046 §5.1.1)
//! strictly: each part's Content-Range says how many bytes it holds, and the
//! delimiter must follow exactly there.

use crate::check::content_range;

/// One part: its range (both ends included) and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub first: u64,
    pub last: u64,
    pub size: u64,
    pub bytes: Vec<u8>,
}

/// The boundary of a `multipart/byteranges; boundary=...` Content-Type.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let essence = params.next()?.trim();
    if !essence.eq_ignore_ascii_case("multipart/byteranges") {
        return None;
    }
    params.find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty())
    })
}

/// The parts of `body`, or what is wrong with it.
pub fn parts(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let delimiter = format!("--{boundary}");
    let mut at = find(body, delimiter.as_bytes(), 0)
        .ok_or_else(|| format!("no delimiter {delimiter:?} in the body"))?;
    let mut parts = Vec::new();
    loop {
        at += delimiter.len();
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            return if parts.is_empty() {
                Err("no part before the closing delimiter".into())
            } else {
                Ok(parts)
            };
        }
        if !rest.starts_with(b"\r\n") {
            return Err(format!(
                "part {}: no CRLF after the delimiter",
                parts.len() + 1
            ));
        }
        let head_start = at + 2;
        let head_end = find(body, b"\r\n\r\n", head_start)
            .ok_or_else(|| format!("part {}: its header block has no end", parts.len() + 1))?;
        let head = String::from_utf8_lossy(&body[head_start..head_end]);
        let range = head
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-range"))
            .map(|(_, value)| value.trim().to_owned());
        let (first, last, size) = range
            .as_deref()
            .and_then(content_range)
            .ok_or_else(|| format!("part {}: Content-Range {range:?}", parts.len() + 1))?;
        let data_start = head_end + 4;
        let data_end = usize::try_from(last - first + 1)
            .ok()
            .and_then(|len| data_start.checked_add(len))
            .filter(|end| *end <= body.len())
            .ok_or_else(|| {
                format!(
                    "part {}: the body ends before its {} bytes",
                    parts.len() + 1,
                    last - first + 1
                )
            })?;
        parts.push(Part {
            first,
            last,
            size,
            bytes: body[data_start..data_end].to_vec(),
        });
        let next = &body[data_end..];
        if !(next.starts_with(b"\r\n") && next[2..].starts_with(delimiter.as_bytes())) {
            return Err(format!(
                "part {}: no delimiter right after its {} bytes",
                parts.len(),
                last - first + 1
            ));
        }
        at = data_end + 2;
    }
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &[u8] = b"--XYZ\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-1/10\r\n\r\nab\r\n--XYZ\r\nContent-Type: video/mp4\r\nContent-Range: bytes 5-8/10\r\n\r\nf\r\n-\r\n--XYZ--\r\n";

    #[test]
    fn reads_the_boundary() {
        let cases = [
            ("multipart/byteranges; boundary=XYZ", Some("XYZ")),
            ("Multipart/ByteRanges;boundary=\"a b\"", Some("a b")),
            ("multipart/byteranges", None),
            ("video/mp4; boundary=XYZ", None),
            ("multipart/byteranges; boundary=", None),
        ];
        for (value, expected) in cases {
            assert_eq!(boundary(value).as_deref(), expected, "{value}");
        }
    }

    #[test]
    fn parts_are_read_by_their_content_range() {
        let got = parts(GOOD, "XYZ").unwrap();
        assert_eq!(
            got,
            vec![
                Part {
                    first: 0,
                    last: 1,
                    size: 10,
                    bytes: b"ab".to_vec()
                },
                // The bytes may hold CRLF and dashes: the length decides.
                Part {
                    first: 5,
                    last: 8,
                    size: 10,
                    bytes: b"f\r\n-".to_vec()
                },
            ]
        );
        let mut preamble = b"preamble\r\n".to_vec();
        preamble.extend_from_slice(GOOD);
        assert_eq!(parts(&preamble, "XYZ").unwrap().len(), 2);
    }

    #[test]
    fn broken_bodies_are_named() {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"no parts".to_vec(), "no delimiter"),
            (b"--XYZ--\r\n".to_vec(), "no part before"),
            (
                text(GOOD).replace("0-1/10", "0-2/10").into_bytes(),
                "part 1: no delimiter right after its 3 bytes",
            ),
            (
                text(GOOD).replace("5-8/10", "5-9/10").into_bytes(),
                "part 2: no delimiter right after its 5 bytes",
            ),
            (
                text(GOOD).replace("bytes 0-1/10", "0-1").into_bytes(),
                "part 1: Content-Range",
            ),
            (
                GOOD[..GOOD.len() - 9].to_vec(),
                "part 2: no delimiter right after its 4 bytes",
            ),
            (
                GOOD[..132].to_vec(),
                "part 2: the body ends before its 4 bytes",
            ),
        ];
        for (body, expected) in cases {
            let got = parts(&body, "XYZ").unwrap_err();
            assert!(got.contains(expected), "{got:?} should say {expected:?}");
        }
    }
}
