//! Settings of image derivatives.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::ConfigError;
use crate::derivative::params::DEFAULT_SIZES;
use crate::derivative::store::DerivedStore;
use crate::derivative::{
    ImageSettings, DEFAULT_FRAME_MAX_SAMPLES, DEFAULT_RENDER_QUEUE, DEFAULT_RENDER_TIMEOUT,
};
use crate::image::DEFAULT_MAX_PIXELS;
use crate::source::s3::Bucket;

/// Image derivatives: `?w=&h=&fit=&fmt=&q=` on an image URL.
#[derive(Args, Debug, Clone)]
pub struct ImageArgs {
    /// The widths and heights `w` and `h` may take, comma-separated; any other
    /// value is a 400 that lists these.
    #[arg(long, env = "MEDIA_IMAGE_SIZES", value_delimiter = ',',
          default_values_t = DEFAULT_SIZES.to_vec(),
          value_parser = clap::value_parser!(u32).range(1..=16384))]
    pub image_sizes: Vec<u32>,

    /// Sources with more pixels than this are refused (422) from their header,
    /// before any decoding.
    #[arg(long, env = "MEDIA_IMAGE_MAX_PIXELS", default_value_t = DEFAULT_MAX_PIXELS,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub image_max_pixels: u64,

    /// The most samples decoded for one video frame (`?frame=`), from the
    /// keyframe before it; a frame that needs more is refused (422, naming
    /// this cap) before any sample is read.
    #[arg(long, env = "MEDIA_FRAME_MAX_SAMPLES", default_value_t = DEFAULT_FRAME_MAX_SAMPLES as u64,
          value_parser = clap::value_parser!(u64).range(1..=20_000))]
    pub frame_max_samples: u64,

    /// Renders at once, each on a thread of its own; 0 is one per CPU. Other
    /// requests keep being served while they run.
    #[arg(long, env = "MEDIA_IMAGE_WORKERS", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=64))]
    pub image_workers: u64,

    /// Renders that may wait for a worker while every worker renders; a
    /// request for one more different derivative is answered 503 with
    /// Retry-After. A waiting render holds no source bytes.
    #[arg(long, env = "MEDIA_IMAGE_QUEUE", default_value_t = DEFAULT_RENDER_QUEUE as u64,
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub image_queue: u64,

    /// Seconds a request waits for its render (in the queue and rendering);
    /// past it the answer is 503 with Retry-After. Under CloudFront's 30 s
    /// origin read timeout by default.
    #[arg(long, env = "MEDIA_RENDER_TIMEOUT_SECS",
          default_value_t = DEFAULT_RENDER_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=900))]
    pub render_timeout_secs: u64,

    /// A directory that keeps rendered derivatives (created if missing); a
    /// derivative is then rendered once and read back after. Empty is off.
    #[arg(long, env = "MEDIA_DERIVED_DIR")]
    pub derived_dir: Option<PathBuf>,

    /// With a bucket served: a key prefix of that bucket that keeps rendered
    /// derivatives (for example `_derived/`). Empty is off.
    #[arg(long, env = "MEDIA_DERIVED_PREFIX")]
    pub derived_prefix: Option<String>,

    /// Seconds a source's version, once described, names its derivatives
    /// stored in S3 (under names holding that version) before the source is
    /// described again (a HeadObject); a changed source has them rendered
    /// anew. A directory store describes the source on every request.
    #[arg(long, env = "MEDIA_DERIVED_RECHECK_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub derived_recheck_secs: u64,

    /// With MEDIA_DERIVED_PREFIX: GET and HEAD of `/{prefix}{stored name}`
    /// serve that derivative (read back, or rendered and stored), on or off.
    /// The CloudFront edge function rewrites derivative requests to these
    /// paths; they carry no signed link (the edge checked it), so turn this
    /// on only where the distribution alone can reach the server (the
    /// template does, behind CloudFront).
    #[arg(long, env = "MEDIA_DERIVED_PATHS", default_value = "off",
          action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub derived_paths: bool,
}

impl ImageArgs {
    /// The image pipeline's settings; `bucket` is the served bucket and its
    /// client, where one is served.
    pub fn settings(
        &self,
        bucket: Option<(&aws_sdk_s3::Client, &str)>,
    ) -> Result<ImageSettings, ConfigError> {
        let dir = self
            .derived_dir
            .clone()
            .filter(|d| !d.as_os_str().is_empty());
        let prefix = self.derived_prefix.clone().filter(|p| !p.is_empty());
        let store = match (dir, prefix, bucket) {
            (Some(_), Some(_), _) => return Err(ConfigError::TwoDerivedStores),
            (Some(dir), None, _) => Some(DerivedStore::Dir(dir)),
            (None, Some(_), None) => return Err(ConfigError::DerivedPrefixWithoutBucket),
            (None, Some(prefix), Some((client, bucket))) => Some(DerivedStore::S3 {
                bucket: Bucket::new(client.clone(), bucket),
                prefix,
            }),
            (None, None, _) => None,
        };
        let workers = match self.image_workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n as usize,
        };
        let mut sizes = self.image_sizes.clone();
        sizes.sort_unstable();
        sizes.dedup();
        Ok(ImageSettings {
            sizes,
            max_pixels: self.image_max_pixels,
            workers,
            queue: usize::try_from(self.image_queue).unwrap_or(usize::MAX),
            render_timeout: Duration::from_secs(self.render_timeout_secs),
            store,
            frame_max_samples: usize::try_from(self.frame_max_samples).unwrap_or(usize::MAX),
            recheck_after: Duration::from_secs(self.derived_recheck_secs),
            derived_paths: self.derived_paths,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        images: ImageArgs,
    }

    fn settings(args: &[&str]) -> Result<ImageSettings, String> {
        let flags = Flags::try_parse_from([&["media-streamer"], args].concat())
            .map_err(|e| e.kind().to_string())?;
        flags.images.settings(None).map_err(|e| e.to_string())
    }

    #[test]
    fn the_render_queue_and_deadline() {
        // (flags, queue, deadline in seconds)
        let cases: &[(&[&str], usize, u64)] = &[
            (&[], DEFAULT_RENDER_QUEUE, 20),
            (&["--image-queue", "0"], 0, 20),
            (&["--image-queue", "10000"], 10_000, 20),
            (&["--render-timeout-secs", "1"], DEFAULT_RENDER_QUEUE, 1),
            (&["--render-timeout-secs", "900"], DEFAULT_RENDER_QUEUE, 900),
        ];
        for (args, queue, secs) in cases {
            let settings = settings(args).unwrap();
            assert_eq!(
                (settings.queue, settings.render_timeout),
                (*queue, Duration::from_secs(*secs)),
                "{args:?}"
            );
        }
        for args in [
            &["--image-queue", "10001"][..],
            &["--image-queue", "-1"],
            &["--render-timeout-secs", "0"],
            &["--render-timeout-secs", "901"],
        ] {
            assert!(settings(args).is_err(), "{args:?}");
        }
    }
}
