//! `media-loadtest smoke URL`: after a deploy, one pass of every check the
//! deployment must hold, printed as a `check | result | detail` table.
//! Exits 0 when no row failed, 1 when any did, 2 when it could not start.
//!
//! - [`object`], [`image`], [`cors`], [`signing`], [`cloudfront`]: the
//!   checks, pure functions from an answer to a verdict.
//! - [`exchange`]: an answer as data; [`fetch`]: the I/O that makes one.
//! - [`known`]: the bytes earlier answers gave, which later ones must match.
//! - [`multipart`]: reading `multipart/byteranges`.
//! - [`row`]: the table.
//! - `run`: the order of the requests, and which check reads which answer.

pub mod cloudfront;
pub mod cors;
pub mod exchange;
pub mod fetch;
pub mod image;
pub mod known;
pub mod multipart;
pub mod object;
pub mod row;
mod run;
pub mod signing;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use http::Uri;

use fetch::Fetcher;
use signing::LinkSigner;

/// One pass of every check a deployment must hold, at one object's URL.
///
/// Sends a few requests (HEAD; single, open, suffix and multiple ranges;
/// If-None-Match, a failing If-Range, an unsatisfiable range; a 7 MiB range
/// for streaming and for an answer past Lambda's 6 MB burst) and prints one row
/// per check: pass, fail or skip, with what was expected and what came. The
/// bytes of overlapping answers must agree. Exits 0 when no row failed, 1
/// when any did, 2 when it could not start.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "media-loadtest smoke",
    bin_name = "media-loadtest smoke",
    version
)]
pub struct SmokeArgs {
    /// The URL of one media object: on a Function URL, a CloudFront domain or
    /// the local server.
    pub url: String,

    /// The URL of an image: checks a WebP derivative (`?w=WIDTH&fmt=webp`)
    /// and that `fmt=auto` answers carry `Vary: Accept`.
    #[arg(long, value_name = "URL")]
    pub image: Option<String>,

    /// The width asked of the derivative: one of the server's
    /// MEDIA_IMAGE_SIZES, no wider than the image.
    #[arg(long, default_value_t = 64, value_name = "PX",
          value_parser = clap::value_parser!(u32).range(1..=16384))]
    pub image_width: u32,

    /// An origin whose pages may read the media (such as
    /// https://example.com): checks the CORS preflight of a range GET and
    /// the fields a GET from it exposes.
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Option<String>,

    /// The server's MEDIA_SIGNING_SECRET: every request is a signed link, and
    /// unsigned and tampered links must get 403.
    #[arg(long, value_name = "SECRET", conflicts_with = "signing_keys")]
    pub signing_secret: Option<String>,

    /// The server's MEDIA_SIGNING_KEYS (ID:SECRET,...): the first signs, as
    /// on the server.
    #[arg(long, value_name = "ID:SECRET,...")]
    pub signing_keys: Option<String>,

    /// The URL is a CloudFront distribution's: checks a repeated GET is a
    /// cache hit and a Range is answered as a range.
    #[arg(long)]
    pub cloudfront: bool,

    /// Longest wait for one whole answer, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
}

/// What one smoke run is to do, checked before the first request.
pub(crate) struct Plan {
    pub object: Uri,
    pub image: Option<Uri>,
    pub image_width: u32,
    pub origin: Option<String>,
    pub signer: Option<LinkSigner>,
    pub cloudfront: bool,
    pub fetcher: Fetcher,
}

impl Plan {
    fn from_args(args: &SmokeArgs) -> Result<Self, String> {
        let signer = match (&args.signing_secret, &args.signing_keys) {
            (Some(secret), _) => Some(LinkSigner::secret(secret)?),
            (None, Some(keys)) => Some(LinkSigner::keys(keys)?),
            (None, None) => None,
        };
        let signed = signer.is_some();
        let object = url(&args.url, signed)?;
        let image = args
            .image
            .as_deref()
            .map(|image| {
                let uri = url(image, true)?;
                Ok::<_, String>(uri)
            })
            .transpose()
            .map_err(|e| format!("--image: {e}"))?;
        let timeout = Duration::try_from_secs_f64(args.timeout)
            .ok()
            .filter(|t| !t.is_zero())
            .ok_or("--timeout must be a positive number of seconds")?;
        Ok(Plan {
            object,
            image,
            image_width: args.image_width,
            origin: args.origin.clone(),
            signer,
            cloudfront: args.cloudfront,
            fetcher: Fetcher::new(timeout)?,
        })
    }
}

/// An http(s) URL; without a query when the smoke test adds its own (a
/// signature, an image's parameters).
fn url(text: &str, adds_query: bool) -> Result<Uri, String> {
    let uri: Uri = text
        .parse()
        .map_err(|e| format!("{text}: not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(format!("{text}: need an http:// or https:// URL"));
    }
    if adds_query && uri.query().is_some() {
        return Err(format!(
            "{text}: give the URL without a query: the smoke test adds its own"
        ));
    }
    signing::decoded_path(uri.path())?;
    Ok(uri)
}

/// Runs the checks the arguments ask for and prints the table to stdout.
pub async fn run(args: SmokeArgs) -> ExitCode {
    let plan = match Plan::from_args(&args) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("media-loadtest smoke: {e}");
            return ExitCode::from(2);
        }
    };
    let rows = run::checks(&plan).await;
    print!("{}", row::table(&rows));
    let count = |word: &str| rows.iter().filter(|r| r.outcome.word() == word).count();
    println!(
        "\n{} checks: {} pass, {} fail, {} skip",
        rows.len(),
        count("pass"),
        count("fail"),
        count("skip")
    );
    if rows.iter().any(|r| r.outcome.is_fail()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
