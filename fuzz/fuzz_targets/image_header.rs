#![no_main]
//! Any bytes as the head of an image file: sniffing, the header probe
//! (format, size, alpha, orientation) and the JPEG metadata walk (ICC
//! chunks, Adobe marker) never panic or allocate past the input; a probe
//! that succeeds names the sniffed format and a picture of at least one
//! pixel, with an EXIF orientation from 1 to 8; a probe of a longer head of
//! the same file says the same; the walk of JPEG segments by their lengths
//! stays within the bytes.

use libfuzzer_sys::fuzz_target;
use media_streamer::image::{jpeg_meta, probe, sniff, walk_jpeg_segments, JpegWalk};

fuzz_target!(|head: &[u8]| {
    // The segment walk the probe of a far frame header makes: every segment
    // it skips lies in the bytes, in order, and it stops within them.
    let mut last_end = 2;
    let stop = walk_jpeg_segments(head, 2, |_, start, end| {
        assert!(last_end <= start && start < end && end <= head.len());
        last_end = end;
    });
    let (JpegWalk::Decides(at) | JpegWalk::Beyond(at)) = stop;
    assert!(at >= last_end.min(head.len().max(2)) && at <= head.len().max(2));
    let meta = jpeg_meta(head);
    if let Some(icc) = &meta.icc {
        assert!(icc.len() <= head.len());
    }
    let Ok(found) = probe(head) else {
        return;
    };
    assert_eq!(Some(found.format), sniff(head));
    assert!(found.width > 0 && found.height > 0);
    assert!((1..=8).contains(&found.orientation));
    let mut longer = head.to_vec();
    longer.extend_from_slice(&[0; 64]);
    assert_eq!(probe(&longer).ok(), Some(found));
});
