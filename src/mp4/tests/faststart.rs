//! The faststart rewrite on movies built box by box.

use proptest::prelude::*;

use super::{boxed, co64, movie, one_sample_chunks, stco, video_trak};
use crate::mp4::{
    classify, parse_movie, rewrite, scan_top_level_bytes, AsStoredReason, BoxHeader, Faststart,
    Layout, Mp4Error, Segment,
};
use crate::protocol::range::ByteRange;

/// A movie of four video tracks, each with one sample per chunk and the
/// given chunk offset table.
fn four_track_movie(tables: [Vec<u8>; 4], counts: [u32; 4]) -> Vec<u8> {
    let traks: Vec<Vec<u8>> = tables
        .into_iter()
        .zip(counts)
        .map(|(table, count)| {
            let mut stbl = one_sample_chunks(count, 100);
            stbl.push(table);
            video_trak(512 * count, &stbl)
        })
        .collect();
    movie(3000, &traks)
}

fn header(kind: &[u8; 4], offset: u64, header_len: u64, size: u64) -> BoxHeader {
    BoxHeader {
        kind: *kind,
        offset,
        header_len,
        size,
    }
}

#[test]
fn stco_past_32_bits_becomes_co64_until_nothing_overflows() {
    let zeros = four_track_movie(
        [stco(&[0; 3]), stco(&[0; 2]), co64(&[0; 2]), stco(&[0])],
        [3, 2, 2, 1],
    );
    let s = zeros.len() as u64;
    let moov_at = u64::from(u32::MAX) - 100;
    let max = u64::from(u32::MAX);
    // Track B overflows with the stored moov size; track A only once B's
    // conversion has grown moov by 8 bytes. C is a co64 already, with an
    // offset past moov, which moves by the growth alone. D stays small.
    let a = [10, 500, max - s - 4];
    let b = [24, max - s + 1];
    let c = [24, moov_at + s + 50];
    let d = [30];
    let narrow = |v: &[u64]| v.iter().map(|&o| o as u32).collect::<Vec<_>>();
    let stored = four_track_movie(
        [
            stco(&narrow(&a)),
            stco(&narrow(&b)),
            co64(&c),
            stco(&narrow(&d)),
        ],
        [3, 2, 2, 1],
    );
    assert_eq!(stored.len() as u64, s);
    let boxes = [
        header(b"ftyp", 0, 8, 24),
        header(b"mdat", 24, 16, moov_at - 24),
        header(b"moov", moov_at, 8, s),
        header(b"free", moov_at + s, 16, 1 << 33),
    ];
    let faststart = rewrite(&boxes, &stored).unwrap();

    let grown = 4 * (3 + 2);
    let new_size = s + grown;
    let expected = four_track_movie(
        [
            co64(&[10, 500 + new_size, max - s - 4 + new_size]),
            co64(&[24 + new_size, max - s + 1 + new_size]),
            co64(&[24 + new_size, moov_at + s + 50 + grown]),
            stco(&[30 + new_size as u32]),
        ],
        [3, 2, 2, 1],
    );
    assert_eq!(faststart.moov.as_ref(), expected.as_slice());
    assert_eq!(faststart.grown_by, grown);
    assert_eq!(faststart.size, moov_at + s + (1 << 33) + grown);
    assert_eq!(
        faststart.segments(ByteRange::whole(faststart.size).unwrap()),
        vec![
            Segment::Source(ByteRange { first: 0, last: 23 }),
            Segment::Moov {
                start: 0,
                end: new_size as usize
            },
            Segment::Source(ByteRange {
                first: 24,
                last: moov_at - 1
            }),
            Segment::Source(ByteRange {
                first: moov_at + s,
                last: moov_at + s + (1 << 33) - 1
            }),
        ]
    );
    let tracks = parse_movie(&faststart.moov).unwrap().tracks;
    let offsets: Vec<Vec<u64>> = tracks
        .iter()
        .map(|t| {
            (0..t.samples.len())
                .map(|i| t.samples.sample(i).unwrap().offset)
                .collect()
        })
        .collect();
    assert_eq!(
        offsets,
        [
            vec![10, 500 + new_size, max - s - 4 + new_size],
            vec![24 + new_size, max - s + 1 + new_size],
            vec![24 + new_size, moov_at + s + 50 + grown],
            vec![30 + new_size],
        ]
    );
}

/// A small whole file: `ftyp` (24 bytes), `mdat` (100), `moov`, `free`
/// (10), every byte distinct enough to show where it came from.
fn small_file() -> (Vec<u8>, Vec<u8>) {
    let mut stbl = one_sample_chunks(2, 40);
    stbl.push(stco(&[32, 72]));
    let moov = movie(40, &[video_trak(1024, &stbl)]);
    let mdat_body: Vec<u8> = (0..92u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = [
        boxed(b"ftyp", &[b"isom", &[0, 0, 2, 0], b"isom", b"mp41"]),
        boxed(b"mdat", &[&mdat_body]),
        moov.clone(),
        boxed(b"free", &[b"ok"]),
    ]
    .concat();
    (file, moov)
}

fn faststart_of(file: &[u8]) -> Faststart {
    let boxes = scan_top_level_bytes(file).unwrap();
    let Layout::Faststart { moov } = classify(&boxes, 1 << 20) else {
        panic!("not a faststart candidate: {boxes:?}");
    };
    rewrite(&boxes, &file[moov.offset as usize..moov.end() as usize]).unwrap()
}

/// The output bytes of `range`, put together from its segments.
fn assemble(faststart: &Faststart, file: &[u8], range: ByteRange) -> Vec<u8> {
    faststart
        .segments(range)
        .into_iter()
        .flat_map(|segment| match segment {
            Segment::Moov { start, end } => faststart.moov[start..end].to_vec(),
            Segment::Source(r) => file[r.first as usize..=r.last as usize].to_vec(),
        })
        .collect()
}

#[test]
fn segments_of_ranges() {
    let (file, moov) = small_file();
    let faststart = faststart_of(&file);
    let s = moov.len() as u64;
    let m = s as usize;
    assert_eq!(faststart.size, file.len() as u64);
    let range = |first, last| ByteRange { first, last };
    let cases: Vec<(ByteRange, Vec<Segment>)> = vec![
        (range(0, 1), vec![Segment::Source(range(0, 1))]),
        (range(30, 40), vec![Segment::Moov { start: 6, end: 17 }]),
        (
            range(20, 30),
            vec![
                Segment::Source(range(20, 23)),
                Segment::Moov { start: 0, end: 7 },
            ],
        ),
        (
            range(24 + s - 2, 24 + s + 1),
            vec![
                Segment::Moov {
                    start: m - 2,
                    end: m,
                },
                Segment::Source(range(24, 25)),
            ],
        ),
        (
            range(123 + s, 124 + s),
            vec![
                Segment::Source(range(123, 123)),
                Segment::Source(range(124 + s, 124 + s)),
            ],
        ),
        (
            range(133 + s, 133 + s),
            vec![Segment::Source(range(133 + s, 133 + s))],
        ),
        (
            range(130 + s, 10_000),
            vec![Segment::Source(range(130 + s, 133 + s))],
        ),
        (range(134 + s, 10_000), vec![]),
        (
            range(0, 133 + s),
            vec![
                Segment::Source(range(0, 23)),
                Segment::Moov { start: 0, end: m },
                Segment::Source(range(24, 123)),
                Segment::Source(range(124 + s, 133 + s)),
            ],
        ),
    ];
    for (range, expected) in cases {
        assert_eq!(faststart.segments(range), expected, "{range}");
    }
    // The output: ftyp, the shifted moov, mdat, free; both chunk offsets
    // moved by the moov size.
    let whole = assemble(&faststart, &file, ByteRange::whole(faststart.size).unwrap());
    let stco_at = moov.windows(4).position(|w| w == b"stco").unwrap() + 12;
    let mut expected_moov = moov.clone();
    expected_moov[stco_at..stco_at + 8]
        .copy_from_slice(&[(32 + s as u32).to_be_bytes(), (72 + s as u32).to_be_bytes()].concat());
    assert_eq!(
        whole,
        [
            &file[..24],
            &expected_moov,
            &file[24..124],
            &file[124 + m..]
        ]
        .concat()
    );
}

proptest! {
    #[test]
    fn any_range_is_the_same_slice_of_the_whole(first in 0u64..400, len in 1u64..400) {
        let (file, _) = small_file();
        let faststart = faststart_of(&file);
        let whole = assemble(&faststart, &file, ByteRange::whole(faststart.size).unwrap());
        prop_assert_eq!(whole.len() as u64, faststart.size);
        let range = ByteRange { first, last: first + len - 1 };
        let part = assemble(&faststart, &file, range);
        let end = (first + len).min(faststart.size);
        let expected = if first < faststart.size { &whole[first as usize..end as usize] } else { &[][..] };
        prop_assert_eq!(part.as_slice(), expected);
    }
}

#[test]
fn refused_movies() {
    let (file, moov) = small_file();
    let boxes = scan_top_level_bytes(&file).unwrap();
    let with = |extra: &[u8]| {
        let mut m = moov.clone();
        m.extend_from_slice(extra);
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_be_bytes());
        m
    };
    let mut moved = boxes.clone();
    let fragmented = with(&boxed(b"mvex", &[&boxed(b"trex", &[&[0; 24]])]));
    moved[2].size = fragmented.len() as u64;
    moved[3].offset = moved[2].end();
    assert!(matches!(
        rewrite(&moved, &fragmented),
        Err(Mp4Error::Fragmented)
    ));
    let compressed = with(&boxed(b"cmov", &[&[0; 16]]));
    moved[2].size = compressed.len() as u64;
    moved[3].offset = moved[2].end();
    assert_eq!(
        rewrite(&moved, &compressed).unwrap_err().to_string(),
        "malformed moov: compressed (cmov)"
    );
    assert_eq!(
        rewrite(&boxes, &moov[..moov.len() - 1])
            .unwrap_err()
            .to_string(),
        format!(
            "malformed moov: {} bytes given for a box of {}",
            moov.len() - 1,
            moov.len()
        )
    );
    let s = moov.len() as u64;
    let faststart_order = [
        boxes[0],
        header(b"moov", 24, 8, s),
        header(b"mdat", 24 + s, 8, 100),
    ];
    assert!(matches!(
        rewrite(&faststart_order, &moov),
        Err(Mp4Error::NotMovable(AsStoredReason::AlreadyFaststart))
    ));
    let mut gap = boxes.clone();
    gap[3].offset += 1;
    assert_eq!(
        rewrite(&gap, &moov).unwrap_err().to_string(),
        format!(
            "malformed top-level box list: free at {} after a box ending at {}",
            gap[3].offset,
            gap[3].offset - 1
        )
    );
}

#[test]
fn moov_of_size_0_gets_its_real_size() {
    let (file, moov) = small_file();
    // moov last, with size 0: "to the end of the file".
    let mut last = file[..124 + moov.len()].to_vec();
    last[124..128].copy_from_slice(&[0, 0, 0, 0]);
    let faststart = faststart_of(&last);
    assert_eq!(&faststart.moov[..4], &(moov.len() as u32).to_be_bytes());
    assert_eq!(faststart.size, last.len() as u64);
}
