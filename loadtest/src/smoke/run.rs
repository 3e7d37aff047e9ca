//! The order of the smoke test's requests, and which check reads which
//! answer. Every request goes through [`Session::get`]; every verdict comes
//! from a pure check.

use std::time::Duration;

use http::header::{
    HeaderName, ACCEPT, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD,
    IF_NONE_MATCH, IF_RANGE, ORIGIN, RANGE,
};
use http::{Method, Uri};

use super::exchange::Exchange;
use super::known::KnownBytes;
use super::object::{self, Object, LAMBDA_BURST_BYTES, LARGE_READ_BYTES};
use super::row::{judged, Outcome, Row};
use super::{cloudfront, cors, image, signing, Plan};

/// The rows, by name (tests and scripts match on these).
pub const HEAD: &str = "head";
pub const PROBE: &str = "range 0-1";
pub const OPEN: &str = "open range 0-";
pub const SUFFIX: &str = "suffix range";
pub const MULTI: &str = "multi-range";
pub const NOT_MODIFIED: &str = "if-none-match";
pub const IF_RANGE_MISS: &str = "if-range mismatch";
pub const UNSATISFIABLE: &str = "unsatisfiable range";
pub const STREAMING: &str = "streaming";
pub const PAST_BURST: &str = "past 6 MiB";
pub const CONTENT_TYPE: &str = "content-type";
pub const ETAG: &str = "etag";
pub const ACCEPT_RANGES: &str = "accept-ranges";
pub const IMAGE_WIDTH: &str = "image webp width";
pub const IMAGE_AUTO: &str = "image fmt=auto vary";
pub const CORS_PREFLIGHT: &str = "cors preflight";
pub const CORS_GET: &str = "cors get";
pub const SIGNED: &str = "signed link";
pub const UNSIGNED: &str = "unsigned link";
pub const TAMPERED: &str = "tampered signature";
pub const CLOUDFRONT_HIT: &str = "cloudfront cache hit";
pub const CLOUDFRONT_RANGE: &str = "cloudfront range";

/// Bytes of the suffix range asked (fewer for a smaller object).
const SUFFIX_BYTES: u64 = 64 * 1024;
/// Bytes of a separate read just past the 6 MiB mark, to compare with.
const PAST_BURST_REFERENCE: u64 = 64 * 1024;
/// Most body bytes kept of an answer expected short: enough to see that a
/// server sent too many, no more.
const SHORT_KEEP: usize = 64 * 1024;
/// Most body bytes read of an open range: the server's cap is 5 MiB by
/// default; an uncapped answer is legal and is checked this far.
const OPEN_KEEP: usize = 16 * 1024 * 1024;
/// Most body bytes read of an image derivative.
const IMAGE_KEEP: usize = 8 * 1024 * 1024;
/// How long the smoke test's signed links are valid.
const LINK_SECS: i64 = 600;
/// An entity tag the object cannot have, for the failing If-Range.
const OTHER_ETAG: &str = "\"media-loadtest-smoke-not-this-etag\"";

/// One run's state: the plan, the bytes seen, the rows so far.
struct Session<'a> {
    plan: &'a Plan,
    known: KnownBytes,
    rows: Vec<Row>,
    /// The object's link (signed when signing is on).
    link: Uri,
    /// Time to first byte of small ranges, for the streaming check.
    small_ttfb: Option<Duration>,
}

/// Runs every check the plan asks for; one row each.
pub(crate) async fn checks(plan: &Plan) -> Vec<Row> {
    let link = match signed_link(plan, &plan.object, None, None) {
        Ok(link) => link,
        Err(e) => return vec![Row::new(HEAD, Outcome::Fail(e))],
    };
    let mut session = Session {
        plan,
        known: KnownBytes::default(),
        rows: Vec::new(),
        link,
        small_ttfb: None,
    };
    let head = session
        .get(Method::HEAD, &[], 0)
        .await
        .and_then(|answer| object::head(&answer).map(|(o, detail)| (o, detail, answer)));
    let (object, head) = match head {
        Ok((object, detail, answer)) => {
            session.rows.push(Row::new(HEAD, Outcome::Pass(detail)));
            (object, answer)
        }
        Err(e) => {
            session.rows.push(Row::new(HEAD, Outcome::Fail(e)));
            return session.rows;
        }
    };
    session.object_checks(&object, head).await;
    if plan.image.is_some() {
        session.image_checks().await;
    }
    if let Some(origin) = &plan.origin {
        session.cors_checks(origin).await;
    }
    if plan.signer.is_some() {
        session.signing_checks(&object).await;
    }
    if plan.cloudfront {
        session.cloudfront_checks(&object).await;
    }
    session.rows
}

/// `base` with `params` and, when signing, the signature of its decoded path
/// plus `signed_params` (the server's canonical form of `params`).
fn signed_link(
    plan: &Plan,
    base: &Uri,
    params: Option<&str>,
    signed_params: Option<&str>,
) -> Result<Uri, String> {
    let mut query: Vec<String> = base.query().map(str::to_owned).into_iter().collect();
    query.extend(params.map(str::to_owned));
    if let Some(signer) = &plan.signer {
        let mut path = signing::decoded_path(base.path())?;
        if let Some(signed) = signed_params {
            path = format!("{path}?{signed}");
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        query.push(signer.query(&path, now + LINK_SECS));
    }
    let path_and_query = if query.is_empty() {
        base.path().to_owned()
    } else {
        format!("{}?{}", base.path(), query.join("&"))
    };
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(
        path_and_query
            .parse()
            .map_err(|e| format!("{path_and_query}: {e}"))?,
    );
    Uri::from_parts(parts).map_err(|e| format!("{base}: {e}"))
}

impl Session<'_> {
    /// One request to the object's link.
    async fn get(
        &self,
        method: Method,
        fields: &[(HeaderName, &str)],
        keep: usize,
    ) -> Result<Exchange, String> {
        self.plan
            .fetcher
            .fetch(method, &self.link, fields, keep)
            .await
    }

    /// A GET of `range` of the object.
    async fn range(&self, range: &str, keep: usize) -> Result<Exchange, String> {
        self.get(Method::GET, &[(RANGE, &format!("bytes={range}"))], keep)
            .await
    }

    fn push(&mut self, check: &str, outcome: Outcome) {
        self.rows.push(Row::new(check, outcome));
    }

    /// Notes a small range's time to first byte (the fastest counts).
    fn small(&mut self, answer: &Exchange) {
        if let Some(t) = answer.ttfb {
            self.small_ttfb = Some(self.small_ttfb.map_or(t, |s| s.min(t)));
        }
    }

    /// A closed range read and checked, its bytes then known: a reference
    /// for another check.
    async fn reference(&mut self, first: u64, last: u64, size: u64) -> Result<String, String> {
        let asked = format!("{first}-{last}");
        let answer = self.range(&asked, (last - first + 2) as usize).await?;
        self.small(&answer);
        object::single_range(&answer, first, Some(last), size, &self.known)
            .map_err(|e| format!("the reference read bytes={asked}: {e}"))?;
        self.known.add(first, &answer.body, &answer.asked);
        Ok(asked)
    }

    async fn object_checks(&mut self, object: &Object, head: Exchange) {
        let size = object.size;
        let mut typed = vec![head.head_only()]; // answers that carry the object's type
        let mut tagged = vec![head.head_only()]; // answers that carry its ETag
        let mut ranged = vec![head]; // answers that carry Accept-Ranges

        // Safari's probe: exactly two bytes.
        let probe = self.range("0-1", SHORT_KEEP).await;
        let outcome = probe.and_then(|answer| {
            self.small(&answer);
            let verdict = object::single_range(&answer, 0, Some(1), size, &self.known);
            if verdict.is_ok() {
                self.known.add(0, &answer.body, &answer.asked);
            }
            typed.push(answer.head_only());
            tagged.push(answer.head_only());
            ranged.push(answer);
            verdict
        });
        self.push(PROBE, judged(outcome));

        // A browser's first media request: a 206, capped or not.
        let open = self.range("0-", OPEN_KEEP).await;
        let outcome = open.and_then(|answer| {
            let verdict = object::single_range(&answer, 0, None, size, &self.known);
            if verdict.is_ok() {
                self.known.add(0, &answer.body, &answer.asked);
            }
            typed.push(answer.head_only());
            tagged.push(answer);
            verdict
        });
        self.push(OPEN, judged(outcome));

        // The last bytes, as a suffix, against a closed read of the same.
        let n = SUFFIX_BYTES.min(size);
        let outcome = match self.reference(size - n, size - 1, size).await {
            Err(e) => Err(e),
            Ok(reference) => {
                self.range(&format!("-{n}"), n as usize + 1)
                    .await
                    .and_then(|answer| {
                        let verdict = object::single_range(
                            &answer,
                            size - n,
                            Some(size - 1),
                            size,
                            &self.known,
                        )
                        .map(|d| format!("bytes=-{n}: {d}, equal to bytes={reference}"));
                        typed.push(answer.head_only());
                        tagged.push(answer);
                        verdict
                    })
            }
        };
        self.push(SUFFIX, judged(outcome));

        // Two ranges, each part against a single-range read.
        let outcome = if size < 8 {
            Outcome::Skip(format!(
                "the object is {size} bytes: too small for two ranges apart"
            ))
        } else {
            let mid = size / 2;
            let wanted = [(0, 1), (mid, mid + 3)];
            match self.reference(mid, mid + 3, size).await {
                Err(e) => Outcome::Fail(e),
                Ok(_) => match self.range(&format!("0-1,{mid}-{}", mid + 3), SHORT_KEEP).await {
                    Err(e) => Outcome::Fail(e),
                    Ok(answer) if self.plan.cloudfront && answer.status == http::StatusCode::OK => {
                        Outcome::Skip(
                            "200 with the whole object: CloudFront's S3 origin serves one range per request (legal, RFC 9110 §14.2)".into(),
                        )
                    }
                    Ok(answer) => {
                        let verdict = object::multipart(&answer, &wanted, size, &self.known);
                        tagged.push(answer);
                        judged(verdict)
                    }
                },
            }
        };
        self.push(MULTI, outcome);

        // If-None-Match with the ETag: 304.
        let outcome = match &object.etag {
            None => Err("the HEAD gave no ETag to send".to_owned()),
            Some(etag) => self
                .get(Method::GET, &[(IF_NONE_MATCH, etag)], SHORT_KEEP)
                .await
                .and_then(|answer| {
                    let verdict = object::not_modified(&answer, etag);
                    tagged.push(answer);
                    verdict
                }),
        };
        self.push(NOT_MODIFIED, judged(outcome));

        // If-Range with another ETag: the Range is ignored.
        let outcome = self
            .get(
                Method::GET,
                &[(RANGE, "bytes=0-1"), (IF_RANGE, OTHER_ETAG)],
                SHORT_KEEP,
            )
            .await
            .and_then(|answer| {
                let verdict = object::if_range_miss(&answer, size, &self.known);
                typed.push(answer.head_only());
                tagged.push(answer.head_only());
                ranged.push(answer);
                verdict
            });
        self.push(IF_RANGE_MISS, judged(outcome));

        // A range that starts at the end: 416.
        let outcome = self
            .range(&format!("{size}-"), SHORT_KEEP)
            .await
            .and_then(|answer| object::unsatisfiable(&answer, size));
        self.push(UNSATISFIABLE, judged(outcome));

        // The last 7 MiB (all of a smaller object): its first byte comes as
        // soon as a small range's, and it passes Lambda's 6 MB burst.
        let len = LARGE_READ_BYTES.min(size);
        let first = size - len;
        let past = first + LAMBDA_BURST_BYTES;
        let reference = if size > LAMBDA_BURST_BYTES {
            let last = (past + PAST_BURST_REFERENCE - 1).min(size - 1);
            Some(self.reference(past, last, size).await)
        } else {
            None
        };
        let large = self
            .range(&format!("{first}-{}", size - 1), len as usize + 1)
            .await;
        let mut rate = String::new();
        let (streaming, bytes) = match large {
            Err(e) => (Err(e.clone()), Err(e)),
            Ok(answer) => {
                // On Lambda the bytes past the first 6 MB come at about
                // 2 MB/s: the rate shows it.
                if let (Some(first_byte), Some(last_byte)) = (answer.ttfb, answer.last_byte) {
                    let secs = last_byte.as_secs_f64();
                    let after = (last_byte - first_byte).as_secs_f64();
                    rate = format!(
                        "; {:.2} s to the last byte, {:.1} MB/s after the first",
                        secs,
                        answer.body.len() as f64 / after.max(1e-6) / 1e6
                    );
                }
                let bytes = object::single_range(&answer, first, Some(size - 1), size, &self.known);
                let streaming = match (&bytes, self.small_ttfb) {
                    (Err(e), _) => Err(format!("the large range bytes={first}-{}: {e}", size - 1)),
                    (Ok(_), None) => Err("no small range brought a byte to time against".into()),
                    (Ok(_), Some(small)) => object::streaming(small, &answer, len),
                };
                typed.push(answer.head_only());
                tagged.push(answer);
                (streaming, bytes)
            }
        };
        self.push(STREAMING, judged(streaming));
        let outcome = match reference {
            None => Outcome::Skip(format!(
                "the object is {size} bytes: no answer can pass 6 MiB ({LAMBDA_BURST_BYTES} bytes)"
            )),
            Some(Err(e)) => Outcome::Fail(e),
            Some(Ok(reference)) => judged(bytes.map(|d| {
                format!(
                    "bytes={first}-{}: {d}; past 6 MiB equal to bytes={reference}{rate}",
                    size - 1
                )
            })),
        };
        self.push(PAST_BURST, outcome);

        let ok = |answers: Vec<Exchange>| -> Vec<Exchange> {
            answers
                .into_iter()
                .filter(|a| a.status.is_success() || a.status.as_u16() == 304)
                .collect()
        };
        let (typed, tagged, ranged) = (ok(typed), ok(tagged), ok(ranged));
        let extension = self
            .plan
            .object
            .path()
            .rsplit('/')
            .next()
            .and_then(|name| name.rsplit_once('.'))
            .map(|(_, ext)| ext);
        let typed: Vec<&Exchange> = typed.iter().filter(|a| a.status.as_u16() != 304).collect();
        self.push(
            CONTENT_TYPE,
            judged(object::content_type(extension, &typed)),
        );
        self.push(
            ETAG,
            judged(object::etag(&tagged.iter().collect::<Vec<_>>())),
        );
        self.push(
            ACCEPT_RANGES,
            judged(object::accept_ranges(&ranged.iter().collect::<Vec<_>>())),
        );
    }

    async fn image_checks(&mut self) {
        let Some(base) = &self.plan.image else {
            return;
        };
        let (plan, width) = (self.plan, self.plan.image_width);
        let fetch = |params: String, signed: String, accept: &'static str| async move {
            let link = signed_link(plan, base, Some(&params), Some(&signed))?;
            plan.fetcher
                .fetch(Method::GET, &link, &[(ACCEPT, accept)], IMAGE_KEEP)
                .await
        };
        let webp = fetch(
            format!("w={width}&fmt=webp"),
            format!("w={width}&fmt=webp"),
            "image/webp,*/*",
        )
        .await
        .and_then(|answer| image::webp_at_width(&answer, width));
        // `fmt=auto` is the default: the server signs the canonical
        // parameters, which leave it out.
        let auto = fetch(
            format!("w={width}&fmt=auto"),
            format!("w={width}"),
            "image/avif,image/webp,*/*",
        )
        .await
        .and_then(|answer| image::varies_on_accept(&answer));
        self.push(IMAGE_WIDTH, judged(webp));
        self.push(IMAGE_AUTO, judged(auto));
    }

    async fn cors_checks(&mut self, origin: &str) {
        let preflight = self
            .get(
                Method::OPTIONS,
                &[
                    (ORIGIN, origin),
                    (ACCESS_CONTROL_REQUEST_METHOD, "GET"),
                    (ACCESS_CONTROL_REQUEST_HEADERS, "range"),
                ],
                SHORT_KEEP,
            )
            .await
            .and_then(|answer| cors::preflight(&answer, origin));
        self.push(CORS_PREFLIGHT, judged(preflight));
        let get = self
            .get(
                Method::GET,
                &[(RANGE, "bytes=0-1"), (ORIGIN, origin)],
                SHORT_KEEP,
            )
            .await
            .and_then(|answer| cors::exposed(&answer, origin));
        self.push(CORS_GET, judged(get));
    }

    async fn signing_checks(&mut self, object: &Object) {
        let last = 1.min(object.size - 1);
        let range = format!("bytes=0-{last}");
        let signed = self
            .get(Method::GET, &[(RANGE, &range)], SHORT_KEEP)
            .await
            .and_then(|answer| signing::signed_served(&answer));
        self.push(SIGNED, judged(signed));
        let unsigned = self
            .plan
            .fetcher
            .fetch(
                Method::GET,
                &self.plan.object,
                &[(RANGE, &range)],
                SHORT_KEEP,
            )
            .await
            .and_then(|answer| signing::refused(&answer, "an unsigned link"));
        self.push(UNSIGNED, judged(unsigned));
        let tampered = self
            .link
            .query()
            .and_then(signing::tampered)
            .ok_or_else(|| "the signed link has no signature to change".to_owned())
            .and_then(|query| {
                format!("{}?{query}", self.link.path())
                    .parse::<http::uri::PathAndQuery>()
                    .map_err(|e| e.to_string())
                    .and_then(|pq| {
                        let mut parts = self.link.clone().into_parts();
                        parts.path_and_query = Some(pq);
                        Uri::from_parts(parts).map_err(|e| e.to_string())
                    })
            });
        let outcome = match tampered {
            Err(e) => Err(e),
            Ok(link) => self
                .plan
                .fetcher
                .fetch(Method::GET, &link, &[(RANGE, &range)], SHORT_KEEP)
                .await
                .and_then(|answer| signing::refused(&answer, "a tampered signature")),
        };
        self.push(TAMPERED, judged(outcome));
    }

    async fn cloudfront_checks(&mut self, object: &Object) {
        let size = object.size;
        let last = 1.min(size - 1);
        let hit = match self.range(&format!("0-{last}"), SHORT_KEEP).await {
            Err(e) => Err(e),
            Ok(_) => self
                .range(&format!("0-{last}"), SHORT_KEEP)
                .await
                .and_then(|second| cloudfront::cache_hit(&second)),
        };
        self.push(CLOUDFRONT_HIT, judged(hit));
        let (first, last) = if size >= 8 {
            (size / 2, size / 2 + 3)
        } else {
            (0, size - 1)
        };
        let range = self
            .range(&format!("{first}-{last}"), SHORT_KEEP)
            .await
            .and_then(|answer| cloudfront::range_through(&answer, first, last, size));
        self.push(CLOUDFRONT_RANGE, judged(range));
    }
}
