#![no_main]
//! Any bytes as an EXIF block (TIFF structure, with or without the
//! "Exif\0\0" prefix): the orientation read is none or 1 to 8, never a
//! panic; and the same block in a JPEG's APP1 segment before a frame header
//! gives the probe that orientation (1 when there is none).

use libfuzzer_sys::fuzz_target;
use media_streamer::image::{exif_orientation, probe};

fuzz_target!(|exif: &[u8]| {
    let orientation = exif_orientation(exif);
    if let Some(o) = orientation {
        assert!((1..=8).contains(&o));
    }
    // A JPEG segment holds at most 65,533 bytes after its length.
    let tiff = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    if tiff.len() + 6 > 65_533 {
        return;
    }
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE1];
    jpeg.extend_from_slice(&((tiff.len() + 8) as u16).to_be_bytes());
    jpeg.extend_from_slice(b"Exif\0\0");
    jpeg.extend_from_slice(tiff);
    // SOF0: 8-bit, 16x16, one component
    jpeg.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0]);
    let found = probe(&jpeg).expect("a JPEG with a frame header probes");
    assert_eq!(found.orientation, exif_orientation(tiff).unwrap_or(1));
});
