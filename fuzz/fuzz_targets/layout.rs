#![no_main]
//! Any bytes as a movie index kept in the derived store (another process
//! wrote it, or something else did): reading it back never panics, and a
//! layout taken describes a rewrite whose segments tile each range asked
//! and read only bytes of the source (of the size the layout was checked
//! against) and of the rewritten `moov`.

use libfuzzer_sys::{arbitrary, fuzz_target};
use media_streamer::movie::rewrite_kept;
use media_streamer::mp4::Segment;
use media_streamer::protocol::range::ByteRange;

#[derive(Debug, arbitrary::Arbitrary)]
struct Input<'a> {
    source_size: u64,
    kept: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let Some(faststart) = rewrite_kept(input.kept, input.source_size) else {
        return;
    };
    assert_eq!(faststart.size, input.source_size + faststart.grown_by);
    let size = faststart.size;
    let Some(whole) = ByteRange::whole(size) else {
        return;
    };
    for range in [
        whole,
        ByteRange { first: 0, last: 0 },
        ByteRange {
            first: size / 3,
            last: size / 2,
        },
        ByteRange {
            first: size - 1,
            last: size - 1,
        },
    ] {
        let mut covered = 0u64;
        for segment in faststart.segments(range) {
            match segment {
                Segment::Moov { start, end } => {
                    assert!(start < end && end <= faststart.moov.len());
                    covered += (end - start) as u64;
                }
                Segment::Source(r) => {
                    assert!(r.first <= r.last && r.last < input.source_size);
                    covered += r.len();
                }
            }
        }
        assert_eq!(covered, range.last.min(size - 1) - range.first + 1);
    }
});
