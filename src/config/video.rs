//! Settings of movies served faststart.

use std::time::Duration;

use clap::Args;

use crate::derivative::store::DerivedStore;
use crate::faststart::FaststartSettings;

/// Faststart on the fly: a movie whose `moov` follows its media data is
/// served with `moov` first.
#[derive(Args, Debug, Clone)]
pub struct VideoArgs {
    /// Serve MP4, MOV, M4A, M4V and 3GP files whose index (`moov`) follows
    /// their media data with the index moved to the front: on or off.
    #[arg(long, env = "MEDIA_FASTSTART", default_value_t = true,
          action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub faststart: bool,

    /// Bytes of movie indexes kept in memory, so that a movie's layout is
    /// read once per version.
    #[arg(long, env = "MEDIA_FASTSTART_CACHE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub faststart_cache_bytes: u64,

    /// A movie whose index is larger than this is served as stored.
    #[arg(long, env = "MEDIA_FASTSTART_MAX_MOOV_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub faststart_max_moov_bytes: u64,
}

impl VideoArgs {
    /// `recheck_after`: how long a layout read from S3 is trusted before the
    /// object is described again (MEDIA_DERIVED_RECHECK_SECS); `store`: the
    /// derived store, which keeps layouts too.
    pub fn faststart_settings(
        &self,
        recheck_after: Duration,
        store: Option<DerivedStore>,
    ) -> FaststartSettings {
        FaststartSettings {
            enabled: self.faststart,
            cache_bytes: self.faststart_cache_bytes,
            max_moov_bytes: self.faststart_max_moov_bytes,
            recheck_after,
            store,
        }
    }
}
