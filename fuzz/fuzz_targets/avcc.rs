#![no_main]
//! Any bytes as an `avcC` box body (its parameter sets, the SPS parsed bit
//! by bit), and any bytes as a sample under it: the checks made before
//! decoding and the test for a disposable picture never panic (an overflow
//! panics in this debug-assertion build); a configuration that passes names
//! a picture within the pixel limit, which the decoder then gets.

use libfuzzer_sys::fuzz_target;
use media_streamer::video::{check_config, is_disposable, VideoError};

// The input: the pixel limit (4 bytes, big-endian), the avcC's length (2
// bytes, big-endian), the avcC, then the sample: a layout a seed can be
// written in by hand (fuzz/seeds/avcc/).
fuzz_target!(|input: &[u8]| {
    let Some((limit, rest)) = input.split_first_chunk::<4>() else {
        return;
    };
    let Some((len, rest)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let (avc_config, sample) = rest.split_at(usize::from(u16::from_be_bytes(*len)).min(rest.len()));
    let max_pixels = u64::from(u32::from_be_bytes(*limit));
    match check_config(avc_config, max_pixels) {
        Ok(()) => assert!(avc_config.len() >= 7),
        Err(VideoError::TooManyPixels { pixels, limit }) => {
            assert_eq!(limit, max_pixels);
            assert!(pixels > limit);
        }
        Err(_) => {}
    }
    let _ = is_disposable(avc_config, sample);
});
