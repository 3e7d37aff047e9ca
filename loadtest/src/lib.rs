//! media-loadtest: range requests at one media URL from many connections, with
//! every answer checked: status, Content-Range, ETag, length and the bytes.
//!
//! - [`pattern`]: which ranges to ask for.
//! - [`check`]: what a response head must be (pure).
//! - [`verify`]: whether the body bytes are right.
//! - [`stats`]: counts, latency distributions and the summary.
//! - [`report`]: the SVG plot of the distributions.
//! - [`smoke`]: `media-loadtest smoke URL`, one pass of every check a
//!   deployment must hold, as a table.

pub mod check;
pub mod pattern;
pub mod report;
pub mod smoke;
pub mod stats;
pub mod verify;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use http::header::{RANGE, USER_AGENT};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use indicatif::{ProgressBar, ProgressStyle};

use check::{check_head, object_from_head, Fault, Object, QUOTED_BODY_BYTES};
use pattern::{Pattern, Planned, Planner, SizeRange};
use stats::{Stats, Summary};
use verify::Verifier;

/// Range requests at a media URL, every answer checked.
///
/// Learns the object's size and ETag with a HEAD, then sends range requests
/// from many connections and checks each answer: 206, a Content-Range that
/// answers the request (an open range may be capped), the same ETag, a
/// Content-Length equal to the range, and the bytes: equal to LOCAL_FILE's
/// with --verify, else equal wherever two responses overlap. Exits 0 when
/// every answer was right, 1 when any was wrong, 2 when it could not start.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "media-loadtest",
    version,
    after_help = "After a deploy, `media-loadtest smoke URL` checks one object once and prints a table \
                  (`media-loadtest smoke --help`)."
)]
pub struct Args {
    /// The URL of one media object (http or https).
    pub url: String,

    /// Connections sending requests at once.
    #[arg(long, short = 'c', default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub concurrency: u64,

    /// Run for this many seconds (default 10 when --requests is not given).
    #[arg(long, short = 'd', conflicts_with = "requests")]
    pub duration: Option<f64>,

    /// Send exactly this many range requests, then stop.
    #[arg(long, short = 'n', value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,

    /// Send at most this many requests per second in all (default: as fast as
    /// the answers come).
    #[arg(long)]
    pub rate: Option<f64>,

    /// Which ranges to ask for.
    #[arg(long, value_enum, default_value_t = Pattern::Uniform)]
    pub pattern: Pattern,

    /// Sizes of the uniform pattern's ranges: MIN..MAX, such as 64KiB..1MiB.
    #[arg(long, default_value = "64KiB..1MiB")]
    pub range_size: SizeRange,

    /// A local copy of the object: every body byte is compared with it.
    #[arg(long, value_name = "LOCAL_FILE")]
    pub verify: Option<PathBuf>,

    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,

    /// Write a plot of the latency and time-to-first-byte distributions (SVG).
    #[arg(long, value_name = "FILE.svg")]
    pub report: Option<PathBuf>,

    /// Seed of the request patterns (default: from the clock), for a run that
    /// asks the same ranges again.
    #[arg(long)]
    pub seed: Option<u64>,

    /// Longest wait for one whole answer, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
}

pub(crate) type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Runs the test the arguments describe; prints the summary to stdout.
pub async fn run(args: Args) -> ExitCode {
    match run_checked(&args).await {
        Ok(summary) => {
            if args.json {
                println!("{}", summary.to_json());
            } else {
                print!("{}", summary.to_text());
            }
            if let Some(path) = &args.report {
                let title = format!(
                    "{} requests, {} connections, pattern {}",
                    summary.stats.requests, args.concurrency, summary.pattern
                );
                if let Err(e) =
                    report::write_svg(path, &title, &summary.stats.latency, &summary.stats.ttfb)
                {
                    eprintln!("media-loadtest: {e}");
                    return ExitCode::from(2);
                }
            }
            if summary.stats.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("media-loadtest: {e}");
            ExitCode::from(2)
        }
    }
}

/// What every connection shares.
struct Shared {
    client: HttpClient,
    uri: Uri,
    object: Object,
    verifier: Verifier,
    timeout: Duration,
    /// Tickets handed out: the request number, for --requests and --rate.
    tickets: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
}

async fn run_checked(args: &Args) -> Result<Summary, String> {
    let uri: Uri = args
        .url
        .parse()
        .map_err(|e| format!("{}: not a URL: {e}", args.url))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(format!("{}: need an http:// or https:// URL", args.url));
    }
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or("--timeout must be a positive number of seconds")?;
    if let Some(rate) = args.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err("--rate must be a positive number".into());
        }
    }
    let client = http_client(args.concurrency as usize)?;
    let object = head(&client, &uri, timeout).await?;
    let verifier = match &args.verify {
        Some(path) => Verifier::file(path, object.size)?,
        None => Verifier::consistent(object.size),
    };
    let shared = Arc::new(Shared {
        client,
        uri,
        object,
        verifier,
        timeout,
        tickets: AtomicU64::new(0),
        done: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let run_for = match (args.requests, args.duration) {
        (Some(_), _) => None,
        (None, Some(secs)) => Some(
            Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or("--duration must be a positive number of seconds")?,
        ),
        (None, None) => Some(Duration::from_secs(10)),
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });

    let started = Instant::now();
    let deadline = run_for.map(|d| started + d);
    let progress = progress_bar(args.requests, run_for);
    let ticker = {
        let (shared, progress) = (Arc::clone(&shared), progress.clone());
        tokio::spawn(async move {
            loop {
                let done = shared.done.load(Ordering::Relaxed);
                if run_for.is_some() {
                    progress.set_position(started.elapsed().as_millis() as u64);
                } else {
                    progress.set_position(done);
                }
                progress.set_message(format!(
                    "{done} requests, {} failed",
                    shared.failed.load(Ordering::Relaxed)
                ));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut workers = Vec::new();
    for i in 0..args.concurrency {
        let shared = Arc::clone(&shared);
        let mut planner = Planner::new(
            args.pattern,
            shared.object.size,
            args.range_size,
            seed.wrapping_add(i),
        );
        let (requests, rate) = (args.requests, args.rate);
        workers.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            loop {
                let ticket = shared.tickets.fetch_add(1, Ordering::Relaxed);
                if requests.is_some_and(|n| ticket >= n) {
                    break;
                }
                if let Some(rate) = rate {
                    let at = started + Duration::from_secs_f64(ticket as f64 / rate);
                    if deadline.is_some_and(|d| at >= d) {
                        break;
                    }
                    tokio::time::sleep_until(at.into()).await;
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let before = stats.error_count() + stats.integrity_failures;
                one_request(&shared, planner.next_request(), &mut stats).await;
                if stats.error_count() + stats.integrity_failures > before {
                    shared.failed.fetch_add(1, Ordering::Relaxed);
                }
                shared.done.fetch_add(1, Ordering::Relaxed);
            }
            stats
        }));
    }
    let mut stats = Stats::default();
    for worker in workers {
        stats.merge(
            worker
                .await
                .map_err(|e| format!("a connection task failed: {e}"))?,
        );
    }
    let elapsed = started.elapsed();
    ticker.abort();
    progress.finish_and_clear();
    Ok(Summary {
        url: args.url.clone(),
        pattern: format!("{:?}", args.pattern).to_lowercase(),
        concurrency: args.concurrency as usize,
        elapsed,
        object_size: shared.object.size,
        verified_against: args.verify.as_ref().map(|p| p.display().to_string()),
        stats,
    })
}

pub(crate) fn http_client(concurrency: usize) -> Result<HttpClient, String> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| format!("TLS set-up: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(concurrency)
        .build(https))
}

pub(crate) fn request(method: Method, uri: &Uri) -> Request<Empty<Bytes>> {
    let mut request = Request::new(Empty::new());
    *request.method_mut() = method;
    *request.uri_mut() = uri.clone();
    request.headers_mut().insert(
        USER_AGENT,
        http::HeaderValue::from_static(concat!("media-loadtest/", env!("CARGO_PKG_VERSION"))),
    );
    request
}

/// The object's size and ETag, from a HEAD.
async fn head(client: &HttpClient, uri: &Uri, timeout: Duration) -> Result<Object, String> {
    let response = tokio::time::timeout(timeout, client.request(request(Method::HEAD, uri)))
        .await
        .map_err(|_| format!("HEAD {uri}: no answer within {timeout:?}"))?
        .map_err(|e| format!("HEAD {uri}: {}", error_chain(&e)))?;
    object_from_head(response.status(), response.headers()).map_err(|e| format!("{uri}: {e}"))
}

/// Sends one planned request and checks its answer, recording into `stats`.
async fn one_request(shared: &Shared, planned: Planned, stats: &mut Stats) {
    stats.requests += 1;
    let asked = planned.want.header();
    let started = Instant::now();
    let deadline = tokio::time::Instant::from(started + shared.timeout);
    let mut request = request(Method::GET, &shared.uri);
    request.headers_mut().insert(
        RANGE,
        http::HeaderValue::from_str(&asked).expect("digits and '-'"),
    );
    let response = match tokio::time::timeout_at(deadline, shared.client.request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => return fail(stats, &asked, Fault::Connect(error_chain(&e))),
        Err(_) => return fail(stats, &asked, Fault::Timeout),
    };
    let (parts, mut body) = response.into_parts();
    let (first, last) =
        match check_head(&planned.want, &shared.object, parts.status, &parts.headers) {
            Ok(range) => range,
            Err(mut fault) => {
                if let Fault::Status { body: quoted, .. } = &mut fault {
                    *quoted = quote_body(&mut body, deadline).await;
                }
                stats.record_latency(started.elapsed());
                return fail(stats, &asked, fault);
            }
        };
    let expected = last - first + 1;
    let mut check = shared.verifier.body(first);
    let mut received = 0u64;
    let mut abandoned = false;
    let mut fault = None;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                fault = Some(Fault::Timeout);
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                fault = Some(Fault::Body(error_chain(&e)));
                break;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if data.is_empty() {
            continue;
        }
        if received == 0 {
            stats.record_ttfb(started.elapsed());
        }
        let mut take = data.len() as u64;
        if let Some(limit) = planned.abandon_after {
            take = take.min(limit.saturating_sub(received));
        }
        // Bytes past the announced range are counted, not compared.
        let compare = take.min(expected.saturating_sub(received));
        check.feed(&data[..compare as usize]);
        received += take;
        if planned.abandon_after.is_some_and(|limit| received >= limit) && received < expected {
            abandoned = true;
            break; // dropping the body closes the connection, as a player does
        }
    }
    drop(body);
    stats.record_latency(started.elapsed());
    stats.bytes += received;
    if abandoned {
        stats.abandoned += 1;
    } else if fault.is_none() && received != expected {
        fault = Some(Fault::BodySize {
            expected,
            got: received,
        });
    }
    if !check.finish() {
        stats.integrity_failure(format!(
            "{asked}: the bytes of {first}-{last} differ from {}",
            match shared.verifier {
                Verifier::File(_) => "the local file",
                Verifier::Consistent { .. } => "another response's",
            }
        ));
    }
    if let Some(fault) = fault {
        fail(stats, &asked, fault);
    }
}

/// The start of a body, as text, for a failure to quote: an error answer
/// usually says why.
async fn quote_body(body: &mut hyper::body::Incoming, deadline: tokio::time::Instant) -> String {
    let mut quoted = Vec::new();
    while quoted.len() < QUOTED_BODY_BYTES {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    quoted.extend_from_slice(&data);
                }
            }
            _ => break,
        }
    }
    quoted.truncate(QUOTED_BODY_BYTES);
    String::from_utf8_lossy(&quoted).trim_end().to_owned()
}

fn fail(stats: &mut Stats, asked: &str, fault: Fault) {
    stats.error(fault.kind(), format!("{asked}: {fault}"));
}

/// An error with its sources, one after another.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn progress_bar(requests: Option<u64>, run_for: Option<Duration>) -> ProgressBar {
    let (length, template) = match (requests, run_for) {
        (Some(n), _) => (n, "{bar:40} {pos}/{len} {msg} ({elapsed})"),
        (None, Some(d)) => (d.as_millis() as u64, "{bar:40} {elapsed} {msg}"),
        (None, None) => (0, "{msg}"),
    };
    let bar = ProgressBar::new(length);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
