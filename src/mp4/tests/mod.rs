//! Tests of the MP4 layer as a whole: movies built box by box here, and
//! movies made by ffmpeg.

mod faststart;
mod ffmpeg;
mod hostile;

/// A box of `kind` around the concatenated `parts`, with a 32-bit size.
pub fn boxed(kind: &[u8; 4], parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut bytes = ((8 + len) as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(kind);
    for part in parts {
        bytes.extend_from_slice(part);
    }
    bytes
}

/// A full box: version, zero flags, then `parts`.
pub fn full(kind: &[u8; 4], version: u8, parts: &[&[u8]]) -> Vec<u8> {
    let version = [version, 0, 0, 0];
    let mut all: Vec<&[u8]> = vec![&version];
    all.extend_from_slice(parts);
    boxed(kind, &all)
}

/// Big-endian u32s, concatenated.
pub fn be32(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

pub fn stco(offsets: &[u32]) -> Vec<u8> {
    full(
        b"stco",
        0,
        &[&be32(&[offsets.len() as u32]), &be32(offsets)],
    )
}

pub fn co64(offsets: &[u64]) -> Vec<u8> {
    let entries: Vec<u8> = offsets.iter().flat_map(|v| v.to_be_bytes()).collect();
    full(b"co64", 0, &[&be32(&[offsets.len() as u32]), &entries])
}

/// The `avcC` body the built video tracks carry.
pub const AVC_CONFIG: &[u8] = &[1, 0x64, 0, 0x0a, 0xff, 0xe1, 0, 0];

/// An H.264 video `trak` (160x120, timescale 12800, 512 a sample) whose
/// `stbl` holds `stbl_boxes` after its `stsd`.
pub fn video_trak(duration: u32, stbl_boxes: &[Vec<u8>]) -> Vec<u8> {
    let mut tkhd = vec![0u8; 80];
    tkhd[72..76].copy_from_slice(&(160u32 << 16).to_be_bytes());
    tkhd[76..80].copy_from_slice(&(120u32 << 16).to_be_bytes());
    let tkhd = full(b"tkhd", 0, &[&tkhd]);
    let mdhd = full(
        b"mdhd",
        0,
        &[&be32(&[0, 0, 12800, duration]), &[0x55, 0xc4, 0, 0]],
    );
    let hdlr = full(b"hdlr", 0, &[&be32(&[0]), b"vide", &[0; 12], b"Video\0"]);
    let mut entry = vec![0u8; 78];
    entry[7] = 1;
    let avc1 = boxed(b"avc1", &[&entry, &boxed(b"avcC", &[AVC_CONFIG])]);
    let stsd = full(b"stsd", 0, &[&be32(&[1]), &avc1]);
    let mut stbl: Vec<&[u8]> = vec![&stsd];
    stbl.extend(stbl_boxes.iter().map(|b| b.as_slice()));
    let stbl = boxed(b"stbl", &stbl);
    let minf = boxed(b"minf", &[&full(b"vmhd", 0, &[&[0; 8]]), &stbl]);
    let mdia = boxed(b"mdia", &[&mdhd, &hdlr, &minf]);
    boxed(b"trak", &[&tkhd, &mdia])
}

/// The sample tables of a track of `count` samples of `size` bytes, one a
/// chunk, 512 time units each: `stts`, `stsc`, `stsz`.
pub fn one_sample_chunks(count: u32, size: u32) -> Vec<Vec<u8>> {
    vec![
        full(b"stts", 0, &[&be32(&[1, count, 512])]),
        full(b"stsc", 0, &[&be32(&[1, 1, 1, 1])]),
        full(b"stsz", 0, &[&be32(&[size, count])]),
    ]
}

/// A `moov` with an `mvhd` (timescale 1000, `duration` ms), `traks`, and a
/// `udta` whose bytes must come through every rewrite unchanged.
pub fn movie(duration: u32, traks: &[Vec<u8>]) -> Vec<u8> {
    let mut mvhd = be32(&[0, 0, 1000, duration, 0x0001_0000]);
    mvhd.resize(96, 0);
    let mvhd = full(b"mvhd", 0, &[&mvhd]);
    let udta = boxed(b"udta", &[&boxed(b"\xa9too", &[b"kept as stored"])]);
    let mut parts: Vec<&[u8]> = vec![&mvhd];
    parts.extend(traks.iter().map(|t| t.as_slice()));
    parts.push(&udta);
    boxed(b"moov", &parts)
}
