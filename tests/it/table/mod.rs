//! Every HTTP rule of the core, as a table of real requests with the exact
//! status, header fields and body bytes each must get. The same table runs
//! against every transport and source.

use std::net::SocketAddr;

use crate::client::{send, RawResponse};
use crate::fixture::{Fixture, Validators, CACHE_CONTROL, MAX_RANGES, SECRET};

mod conditionals;
pub mod derivatives;
pub mod faststart;
mod frames;
mod ignored_ranges;
mod index;
mod methods;
mod multirange;
mod paths;
mod ranges;
mod unsatisfiable;
mod whole;

/// What the table needs to know of the store behind the server.
pub struct Store<'a> {
    /// The validators the store has for a fixture file.
    pub validators: Box<dyn Fn(&str) -> Validators + 'a>,
    /// Whether every 412 carries the validators (a directory always knows
    /// them; S3's own 412 sends none, so there only the 412s decided here do:
    /// where present they must be right).
    pub validators_on_412: bool,
    /// Whether every 304 carries Last-Modified (the test S3 server's own 304
    /// does not; where present it must be right).
    pub last_modified_on_304: bool,
}

impl<'a> Store<'a> {
    pub fn directory(fixture: &'a Fixture) -> Self {
        Store {
            validators: Box::new(|name| fixture.validators(name)),
            validators_on_412: true,
            last_modified_on_304: true,
        }
    }
}

/// What a body must be.
#[derive(Clone, Debug)]
pub enum BodyExpect {
    Exact(Vec<u8>),
    /// `multipart/byteranges` of these ranges of `data`, with this part type.
    Multipart {
        part_type: String,
        data: Vec<u8>,
        ranges: Vec<(u64, u64)>,
    },
}

#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub method: &'static str,
    pub target: String,
    pub headers: Vec<(&'static str, String)>,
    pub status: u16,
    /// Fields that must be present with exactly these values.
    pub expect: Vec<(&'static str, String)>,
    /// Fields that must be absent.
    pub absent: Vec<&'static str>,
    /// Fields that must have these values if present.
    pub if_present: Vec<(&'static str, String)>,
    /// Whether `Vary` must list `accept`, or must not; `None` leaves `Vary`
    /// alone (a transport may add its own members, and field lines).
    pub varies_on_accept: Option<bool>,
    pub body: BodyExpect,
}

/// How a transport may legitimately differ from plain HTTP/1.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Content-Length is sent as given.
    Exact,
    /// The body may come chunked with Content-Length absent or moved to
    /// `x-amzn-remapped-content-length` (Lambda response streaming).
    Remapped,
}

/// A request target, the fixture file behind it and its expected type.
struct Obj<'a>(&'a str, &'a str, &'a str);

/// What a request target must be answered with: its bytes and description.
struct Rep {
    target: String,
    content_type: String,
    data: Vec<u8>,
    etag: String,
    /// `None` for computed bytes, which carry no date validator.
    last_modified: Option<String>,
}

impl Rep {
    /// Its validators as a case expects them: the ETag, and Last-Modified
    /// where it has one, else Last-Modified absent.
    fn validators(&self, case: &mut Case) {
        case.expect.push(("etag", self.etag.clone()));
        match &self.last_modified {
            Some(date) => case.expect.push(("last-modified", date.clone())),
            None => case.absent.push("last-modified"),
        }
    }
}

struct Builder<'a> {
    fixture: &'a Fixture,
    store: &'a Store<'a>,
    cases: Vec<Case>,
}

impl Builder<'_> {
    fn case(
        &mut self,
        name: &str,
        method: &'static str,
        target: &str,
        headers: &[(&'static str, &str)],
    ) -> &mut Case {
        self.cases.push(Case {
            name: name.to_owned(),
            method,
            target: target.to_owned(),
            headers: headers.iter().map(|(n, v)| (*n, v.to_string())).collect(),
            status: 0,
            expect: Vec::new(),
            absent: Vec::new(),
            if_present: Vec::new(),
            varies_on_accept: None,
            body: BodyExpect::Exact(Vec::new()),
        });
        self.cases.last_mut().unwrap()
    }

    /// What is served at `obj`: the fixture file as stored.
    fn stored(&self, obj: Obj) -> Rep {
        let Obj(target, file, content_type) = obj;
        let v = (self.store.validators)(file);
        Rep {
            target: target.to_owned(),
            content_type: content_type.to_owned(),
            data: self.fixture.bytes(file),
            etag: v.etag,
            last_modified: Some(v.last_modified),
        }
    }

    /// 200 with the whole file.
    fn whole(
        &mut self,
        name: &str,
        method: &'static str,
        obj: Obj,
        headers: &[(&'static str, &str)],
    ) {
        let rep = self.stored(obj);
        self.whole_of(name, method, &rep, headers);
    }

    /// 200 with the whole of a representation.
    fn whole_of(
        &mut self,
        name: &str,
        method: &'static str,
        rep: &Rep,
        headers: &[(&'static str, &str)],
    ) -> &mut Case {
        let case = self.case(name, method, &rep.target, headers);
        case.status = 200;
        case.expect = vec![
            ("content-type", rep.content_type.clone()),
            ("content-length", rep.data.len().to_string()),
            ("accept-ranges", "bytes".into()),
            ("cache-control", CACHE_CONTROL.into()),
        ];
        case.absent = vec!["content-range"];
        rep.validators(case);
        case.body = BodyExpect::Exact(if method == "HEAD" {
            Vec::new()
        } else {
            rep.data.clone()
        });
        case
    }

    /// 206 with one range.
    fn partial(
        &mut self,
        name: &str,
        method: &'static str,
        obj: Obj,
        headers: &[(&'static str, &str)],
        range: (u64, u64),
    ) {
        let rep = self.stored(obj);
        self.partial_of(name, method, &rep, headers, range);
    }

    /// 206 with one range of a representation.
    fn partial_of(
        &mut self,
        name: &str,
        method: &'static str,
        rep: &Rep,
        headers: &[(&'static str, &str)],
        (first, last): (u64, u64),
    ) -> &mut Case {
        let case = self.case(name, method, &rep.target, headers);
        case.status = 206;
        case.expect = vec![
            ("content-type", rep.content_type.clone()),
            ("content-length", (last - first + 1).to_string()),
            (
                "content-range",
                format!("bytes {first}-{last}/{}", rep.data.len()),
            ),
            ("accept-ranges", "bytes".into()),
            ("cache-control", CACHE_CONTROL.into()),
        ];
        rep.validators(case);
        case.body = BodyExpect::Exact(if method == "HEAD" {
            Vec::new()
        } else {
            rep.data[first as usize..=last as usize].to_vec()
        });
        case
    }

    /// 206 multipart/byteranges.
    fn multipart(
        &mut self,
        name: &str,
        target: &str,
        file: &str,
        content_type: &str,
        range: &str,
        ranges: &[(u64, u64)],
    ) {
        let rep = self.stored(Obj(target, file, content_type));
        self.multipart_of(name, &rep, range, ranges);
    }

    /// 206 multipart/byteranges of a representation.
    fn multipart_of(&mut self, name: &str, rep: &Rep, range: &str, ranges: &[(u64, u64)]) {
        let case = self.case(name, "GET", &rep.target, &[("Range", range)]);
        case.status = 206;
        case.expect = vec![
            ("accept-ranges", "bytes".into()),
            ("cache-control", CACHE_CONTROL.into()),
        ];
        case.absent = vec!["content-range"];
        rep.validators(case);
        case.body = BodyExpect::Multipart {
            part_type: rep.content_type.clone(),
            data: rep.data.clone(),
            ranges: ranges.to_vec(),
        };
    }

    /// 304 for bytes.bin.
    fn not_modified(&mut self, name: &str, method: &'static str, headers: &[(&'static str, &str)]) {
        let v = (self.store.validators)("bytes.bin");
        let with_last_modified = self.store.last_modified_on_304;
        let case = self.case(name, method, "/bytes.bin", headers);
        case.status = 304;
        case.expect = vec![
            ("content-type", "application/octet-stream".into()),
            ("etag", v.etag),
            ("cache-control", CACHE_CONTROL.into()),
        ];
        case.absent = vec!["content-range", "content-length"];
        if with_last_modified {
            case.expect.push(("last-modified", v.last_modified));
        } else {
            case.if_present.push(("last-modified", v.last_modified));
        }
    }

    /// A short plain-text error.
    fn error(
        &mut self,
        name: &str,
        method: &'static str,
        target: &str,
        headers: &[(&'static str, &str)],
        status: u16,
        reason: &str,
    ) -> &mut Case {
        let text = format!("{status} {reason}\n");
        let case = self.case(name, method, target, headers);
        case.status = status;
        case.expect = vec![
            ("content-type", "text/plain; charset=utf-8".into()),
            ("content-length", text.len().to_string()),
            ("cache-control", "no-store".into()),
        ];
        case.absent = vec!["etag", "last-modified"];
        case.body = BodyExpect::Exact(if method == "HEAD" {
            Vec::new()
        } else {
            text.into_bytes()
        });
        case
    }
}

/// The type the table expects for `bytes.bin`, the object most cases ask for.
const BIN: &str = "application/octet-stream";

/// What several topics share: the validators of `bytes.bin`, and a Range
/// header with one range more than the limit.
struct Common {
    etag: String,
    lm: String,
    lm_before: String,
    weak_etag: String,
    too_many: String,
}

/// The table, topic after topic. `fixture` supplies the bytes and validators
/// expected.
pub fn cases<'a>(fixture: &'a Fixture, store: &'a Store<'a>) -> Vec<Case> {
    let mut b = Builder {
        fixture,
        store,
        cases: Vec::new(),
    };
    let v = (store.validators)("bytes.bin");
    let many: Vec<String> = (0..=MAX_RANGES)
        .map(|i| format!("{}-{}", i * 10, i * 10 + 1))
        .collect();
    let common = Common {
        weak_etag: format!("W/{}", v.etag),
        etag: v.etag,
        lm: v.last_modified,
        lm_before: v.last_modified_minus_1s,
        too_many: format!("bytes={}", many.join(",")),
    };
    whole::add(&mut b);
    ranges::add(&mut b, &common);
    multirange::add(&mut b);
    ignored_ranges::add(&mut b, &common);
    unsatisfiable::add(&mut b, &common);
    conditionals::add(&mut b, &common);
    methods::add(&mut b);
    paths::add(&mut b);
    index::add(&mut b);
    derivatives::add(&mut b);
    faststart::add(&mut b);
    frames::add(&mut b);
    b.cases
}
/// Sends every case and checks every expectation; reports all failures at once.
pub async fn run(addr: SocketAddr, cases: &[Case], framing: Framing) {
    let mut failures = Vec::new();
    for case in cases {
        let headers: Vec<(&str, &str)> =
            case.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = send(addr, case.method, &case.target, &headers).await;
        if let Err(why) = check(case, &response, framing) {
            failures.push(format!(
                "{} ({} {}): {why}",
                case.name, case.method, case.target
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn check(case: &Case, response: &RawResponse, framing: Framing) -> Result<(), String> {
    if response.status != case.status {
        return Err(format!(
            "status {} (expected {})",
            response.status, case.status
        ));
    }
    if !response.complete {
        return Err("incomplete body".into());
    }
    if response.body.windows(SECRET.len()).any(|w| w == SECRET) {
        return Err("bytes from outside the media root were sent".into());
    }
    for (name, expected) in &case.expect {
        let got = match (*name, framing) {
            ("content-length", Framing::Remapped) => response
                .header("content-length")
                .or_else(|| response.header("x-amzn-remapped-content-length")),
            _ => response.header(name),
        };
        let length_may_go = *name == "content-length" && framing == Framing::Remapped;
        match got {
            Some(value) if value == expected => {}
            None if length_may_go => {}
            other => return Err(format!("{name}: {other:?} (expected {expected:?})")),
        }
    }
    for (name, expected) in &case.if_present {
        match response.header(name) {
            Some(value) if value != expected => {
                return Err(format!("{name}: {value:?} (expected {expected:?} or none)"))
            }
            _ => {}
        }
    }
    for name in case.absent.iter().chain(["content-encoding"].iter()) {
        if let Some(value) = response.header(name) {
            return Err(format!("{name} should be absent, got {value:?}"));
        }
    }
    if let Some(expected) = case.varies_on_accept {
        let varies = response
            .headers
            .iter()
            .filter(|(name, _)| name == "vary")
            .flat_map(|(_, value)| value.split(','))
            .any(|member| member.trim().eq_ignore_ascii_case("accept"));
        if varies != expected {
            return Err(format!("Vary lists accept: {varies} (expected {expected})"));
        }
    }
    if response.header("x-content-type-options") != Some("nosniff") {
        return Err("x-content-type-options: nosniff missing".into());
    }
    let expected_body = match &case.body {
        BodyExpect::Exact(bytes) => bytes.clone(),
        BodyExpect::Multipart {
            part_type,
            data,
            ranges,
        } => multipart_body(response, part_type, data, ranges)?,
    };
    if response.body != expected_body {
        return Err(format!(
            "body of {} bytes differs from the expected {} bytes",
            response.body.len(),
            expected_body.len()
        ));
    }
    if case.method != "HEAD" && case.status != 304 {
        if let Some(length) = response.header("content-length") {
            if length != response.body.len().to_string() {
                return Err(format!(
                    "content-length {length} but {} bytes came",
                    response.body.len()
                ));
            }
        }
    }
    Ok(())
}

/// The exact body a multipart response must have, given the boundary it chose.
fn multipart_body(
    response: &RawResponse,
    part_type: &str,
    data: &[u8],
    ranges: &[(u64, u64)],
) -> Result<Vec<u8>, String> {
    let content_type = response.header("content-type").ok_or("no content-type")?;
    let boundary = content_type
        .strip_prefix("multipart/byteranges; boundary=")
        .ok_or_else(|| format!("content-type {content_type:?}"))?;
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(format!("boundary {boundary:?}"));
    }
    let mut body = Vec::new();
    for (i, (first, last)) in ranges.iter().enumerate() {
        if i > 0 {
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: {part_type}\r\nContent-Range: bytes {first}-{last}/{}\r\n\r\n", data.len()).as_bytes(),
        );
        body.extend_from_slice(&data[*first as usize..=*last as usize]);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(body)
}
