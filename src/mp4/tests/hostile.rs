//! Bytes that lie about themselves: every one is an error or a bounded
//! answer, never a panic, a loop or a large allocation.

use super::{be32, boxed, full, movie, one_sample_chunks, stco, video_trak};
use crate::mp4::{
    frame_plan, parse_header, parse_movie, rewrite, scan_top_level_bytes, BoxHeader, FrameError,
    Mp4Error, MAX_PLAN_SAMPLES,
};

/// A file `ftyp mdat moov` around `moov`, and its top-level boxes.
fn file_around(moov: &[u8]) -> (Vec<u8>, Vec<BoxHeader>) {
    let file = [
        boxed(b"ftyp", &[b"isom", &[0; 4]]),
        boxed(b"mdat", &[&[0; 100]]),
        moov.to_vec(),
    ]
    .concat();
    let boxes = vec![
        BoxHeader {
            kind: *b"ftyp",
            offset: 0,
            header_len: 8,
            size: 16,
        },
        BoxHeader {
            kind: *b"mdat",
            offset: 16,
            header_len: 8,
            size: 108,
        },
        BoxHeader {
            kind: *b"moov",
            offset: 124,
            header_len: 8,
            size: moov.len() as u64,
        },
    ];
    (file, boxes)
}

fn good_stbl() -> Vec<Vec<u8>> {
    let mut stbl = one_sample_chunks(3, 10);
    stbl.push(stco(&[24, 34, 44]));
    stbl
}

fn movie_with(stbl: &[Vec<u8>]) -> Vec<u8> {
    movie(120, &[video_trak(1536, stbl)])
}

/// Replaces the first box of type `kind` in `stbl` by `replacement`.
fn replaced(kind: &[u8; 4], replacement: Vec<u8>) -> Vec<Vec<u8>> {
    good_stbl()
        .into_iter()
        .map(|b| {
            if &b[4..8] == kind {
                replacement.clone()
            } else {
                b
            }
        })
        .collect()
}

#[test]
fn lying_tables_are_errors() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "stco claims 2^32 - 1 entries in 4 bytes",
            movie_with(&replaced(
                b"stco",
                full(b"stco", 0, &[&be32(&[u32::MAX, 24])]),
            )),
            "malformed stco: 4294967295 entries in 12 bytes",
        ),
        (
            "stco one entry short",
            movie_with(&replaced(b"stco", full(b"stco", 0, &[&be32(&[3, 24, 34])]))),
            "malformed stco: 3 entries in 16 bytes",
        ),
        (
            "stts claims 2^32 - 1 runs",
            movie_with(&replaced(
                b"stts",
                full(b"stts", 0, &[&be32(&[u32::MAX, 3, 512])]),
            )),
            "malformed stts: 4294967295 entries in 16 bytes",
        ),
        (
            "stsz table shorter than its count",
            movie_with(&replaced(
                b"stsz",
                full(b"stsz", 0, &[&be32(&[0, 1000, 10])]),
            )),
            "malformed stsz: entry count does not match 16 bytes",
        ),
        (
            "stts times fewer samples than stsz",
            movie_with(&replaced(b"stts", full(b"stts", 0, &[&be32(&[1, 2, 512])]))),
            "malformed stts: times for 2 of 3 samples",
        ),
        (
            "stsc places fewer samples than stsz",
            movie_with(&replaced(b"stco", stco(&[24, 34]))),
            "malformed stsc: chunks for 2 of 3 samples",
        ),
        (
            "stsc first chunk 0",
            movie_with(&replaced(
                b"stsc",
                full(b"stsc", 0, &[&be32(&[1, 0, 1, 1])]),
            )),
            "malformed stsc: first chunks not increasing from 1, or an empty chunk",
        ),
        (
            "stss not increasing",
            movie_with(&[good_stbl(), vec![full(b"stss", 0, &[&be32(&[3, 2, 3, 1])])]].concat()),
            "malformed stss: sample numbers not increasing from 1",
        ),
        (
            "a child past its parent's end",
            movie_with(&replaced(b"stco", {
                let mut b = stco(&[24, 34, 44]);
                b[3] += 4;
                b
            })),
            "box at offset 0 of size 0 runs past 0",
        ),
        (
            "a child smaller than its header",
            movie_with(
                &[
                    good_stbl(),
                    vec![vec![
                        0, 0, 0, 1, b'f', b'r', b'e', b'e', 0, 0, 0, 0, 0, 0, 0, 4,
                    ]],
                ]
                .concat(),
            ),
            "box at offset 0 has size 4, smaller than its header",
        ),
    ];
    for (what, moov, expected) in cases {
        let err = parse_movie(&moov).unwrap_err().to_string();
        // Offsets in the text depend on the layout; compare the rest.
        let shape = |text: &str| {
            text.split(' ')
                .filter(|w| w.parse::<u64>().is_err())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(shape(&err), shape(expected), "{what}: {err}");
        if expected.contains("stco") || expected.contains("box") {
            let (_, boxes) = file_around(&moov);
            assert!(rewrite(&boxes, &moov).is_err(), "{what}");
        }
    }
}

#[test]
fn cut_movies_are_errors() {
    let moov = movie_with(&good_stbl());
    assert!(parse_movie(&moov).is_ok());
    // moov cut anywhere, its size saying so: the boxes inside run past it.
    for len in 0..moov.len() {
        let mut cut = moov[..len].to_vec();
        if len >= 4 {
            cut[..4].copy_from_slice(&(len as u32).to_be_bytes());
        }
        // Cut right after mvhd, or at udta, a movie is whole without the rest.
        let (mvhd_end, udta) = (8 + 108, moov.len() - 30);
        if len < udta && len != mvhd_end {
            assert!(parse_movie(&cut).is_err(), "cut at {len}");
        }
        let (_, boxes) = file_around(&cut);
        let _ = rewrite(&boxes, &cut);
    }
    // moov claiming 4 GiB in a few hundred bytes.
    let mut huge = moov.clone();
    huge[..4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        parse_movie(&huge).unwrap_err().to_string(),
        format!(
            "box at offset 0 of size 4294967295 runs past {}",
            moov.len()
        )
    );
    assert_eq!(
        parse_header(&huge, 124, 124 + moov.len() as u64)
            .unwrap_err()
            .to_string(),
        format!(
            "box at offset 124 of size 4294967295 runs past {}",
            124 + moov.len()
        )
    );
    let (mut file, _) = file_around(&moov);
    file[124..128].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(scan_top_level_bytes(&file).is_err());
}

#[test]
fn boxes_nested_deep_or_sized_to_loop_end() {
    // A box whose 64-bit size is 0 would stand still in a naive walk.
    let stalled = [vec![0, 0, 0, 1], b"free".to_vec(), vec![0; 8]].concat();
    assert!(matches!(
        parse_header(&stalled, 0, 100),
        Err(Mp4Error::SizeTooSmall { offset: 0, size: 0 })
    ));
    // trak inside trak inside trak, 1,000 deep: only the fixed paths are
    // walked, so depth costs nothing and the inner traks are not tracks.
    let mut nested = video_trak(1536, &good_stbl());
    for _ in 0..1_000 {
        nested = boxed(b"trak", &[&nested]);
    }
    let movie = parse_movie(&movie(120, &[nested]));
    assert_eq!(movie.unwrap_err().to_string(), "malformed trak: no tkhd");
}

#[test]
fn huge_sample_counts_stay_cheap() {
    // 4 billion samples of 1,000 bytes in one chunk, one keyframe at the start:
    // the tables hold runs, so only the plan walks samples, and it stops.
    let count = u32::MAX;
    let stbl = vec![
        full(b"stts", 0, &[&be32(&[1, count, 1])]),
        full(b"stss", 0, &[&be32(&[1, 1])]),
        full(b"stsc", 0, &[&be32(&[1, 1, count, 1])]),
        full(b"stsz", 0, &[&be32(&[1000, count])]),
        stco(&[24]),
    ];
    let moov = movie(0, &[video_trak(count, &stbl)]);
    let movie = parse_movie(&moov).unwrap();
    let track = &movie.tracks[0];
    assert_eq!(track.samples.len(), u64::from(count));
    let last = track.samples.sample(u64::from(count) - 1).unwrap();
    assert_eq!(last.offset, 24 + 1000 * (u64::from(count) - 1));
    // Near the end: the keyframe is 4 billion samples back.
    assert_eq!(
        frame_plan(track, 300_000.0, u64::MAX),
        Err(FrameError::TooLarge)
    );
    assert_eq!(
        frame_plan(track, 300_000.0, 5_000_000),
        Err(FrameError::TooLarge)
    );
    let plan = frame_plan(track, (MAX_PLAN_SAMPLES as f64 - 1.0) / 12800.0, u64::MAX).unwrap();
    assert_eq!(plan.samples.len(), MAX_PLAN_SAMPLES);
    assert_eq!(
        plan.reads,
        vec![crate::protocol::range::ByteRange {
            first: 24,
            last: 24 + 1000 * MAX_PLAN_SAMPLES as u64 - 1
        }]
    );
}
