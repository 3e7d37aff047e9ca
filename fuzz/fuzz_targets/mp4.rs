#![no_main]
//! Any bytes as a whole MP4 file: listing its top-level boxes, classifying
//! them, rewriting a moov that follows mdat, mapping output ranges, reading
//! the movie and planning frames never panic or allocate past what the input
//! warrants; a rewrite keeps every byte but moov's and its ranges are slices
//! of its whole. The bytes are also read as a moov on their own, so that the
//! sample tables are reached without a valid file around them.

use libfuzzer_sys::fuzz_target;
use media_streamer::mp4::{
    classify, frame_plan, parse_movie, rewrite, scan_top_level_bytes, Layout, Movie, Segment,
};
use media_streamer::protocol::range::ByteRange;

/// The most moov bytes rewritten, as a server would bound them.
const MAX_MOOV_BYTES: u64 = 1 << 20;
/// The most sample bytes a frame plan may read.
const MAX_FRAME_BYTES: u64 = 1 << 20;

fuzz_target!(|file: &[u8]| {
    if let Ok(movie) = parse_movie(file) {
        plan_frames(&movie);
    }
    let Ok(boxes) = scan_top_level_bytes(file) else {
        return;
    };
    let mut end = 0;
    for b in &boxes {
        assert_eq!(b.offset, end);
        end = b.end();
    }
    assert_eq!(end, file.len() as u64);
    for moov in boxes.iter().filter(|b| &b.kind == b"moov") {
        if let Ok(movie) = parse_movie(&file[moov.offset as usize..moov.end() as usize]) {
            plan_frames(&movie);
        }
    }
    let Layout::Faststart { moov } = classify(&boxes, MAX_MOOV_BYTES) else {
        return;
    };
    let Ok(faststart) = rewrite(&boxes, &file[moov.offset as usize..moov.end() as usize]) else {
        return;
    };
    assert_eq!(faststart.size, file.len() as u64 + faststart.grown_by);
    let bytes_of = |range: ByteRange| -> Vec<u8> {
        faststart
            .segments(range)
            .into_iter()
            .flat_map(|segment| match segment {
                Segment::Moov { start, end } => faststart.moov[start..end].to_vec(),
                Segment::Source(r) => file[r.first as usize..=r.last as usize].to_vec(),
            })
            .collect()
    };
    let whole = bytes_of(ByteRange::whole(faststart.size).expect("a file with boxes is not empty"));
    assert_eq!(whole.len() as u64, faststart.size);
    let first_mdat = boxes
        .iter()
        .find(|b| &b.kind == b"mdat")
        .map_or(0, |b| b.offset) as usize;
    assert_eq!(&whole[..first_mdat], &file[..first_mdat]);
    let size = faststart.size;
    for (first, last) in [
        (0, 0),
        (size / 3, size / 2),
        (size - 1, size - 1),
        (size / 2, size + 10),
    ] {
        let part = bytes_of(ByteRange { first, last });
        let end = (last + 1).min(size) as usize;
        assert_eq!(part, whole[first as usize..end]);
    }
    if let Ok(movie) = parse_movie(&faststart.moov) {
        plan_frames(&movie);
    }
});

/// Plans frames of every track at a few times; a plan found must be whole.
fn plan_frames(movie: &Movie) {
    for track in &movie.tracks {
        for seconds in [-1.0, 0.0, 0.5, 1.0, 1e9] {
            let Ok(plan) = frame_plan(track, seconds, MAX_FRAME_BYTES) else {
                continue;
            };
            assert!(plan.target_rank < plan.samples.len());
            let read: u64 = plan.reads.iter().map(|r| r.len()).sum();
            let needed: u64 = plan.samples.iter().map(|s| u64::from(s.size)).sum();
            assert!(needed <= MAX_FRAME_BYTES);
            assert!(plan.reads.is_empty() || read > 0);
            for s in plan.samples.iter().filter(|s| s.size > 0) {
                let last = s.offset + u64::from(s.size) - 1;
                assert!(plan
                    .reads
                    .iter()
                    .any(|r| r.first <= s.offset && last <= r.last));
            }
        }
    }
}
