//! Whether a file's top-level boxes call for a faststart rewrite, decided from
//! their headers alone.

use super::BoxHeader;

/// Box types a file may start with and still be an MP4 or QuickTime movie:
/// `ftyp` (ISO/IEC 14496-12 §4.3, every MP4, M4A, M4V and 3GP), and the boxes
/// QuickTime files from before `ftyp` existed start with: `wide` (room for a
/// 64-bit `mdat` header), `free`, `skip`, `pnot` (a preview), `mdat`, `moov`.
const FIRST_BOX_KINDS: [&[u8; 4]; 7] = [
    b"ftyp", b"wide", b"free", b"skip", b"pnot", b"mdat", b"moov",
];

/// How a file is to be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `moov` follows the media data: serve it moved before the first `mdat`
    /// ([`super::rewrite`] once `moov` is read).
    Faststart { moov: BoxHeader },
    /// Serve the bytes as stored, for this reason.
    AsStored(AsStoredReason),
}

/// Why a file is served as stored rather than rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsStoredReason {
    /// It does not start like an MP4 or QuickTime movie (or has no boxes).
    NotMp4,
    /// `moov` already comes before the media data.
    AlreadyFaststart,
    /// Movie fragments (`moof` at the top level, or `mvex` in `moov`): the
    /// samples are described next to their data, nothing to move.
    Fragmented,
    /// No `mdat`: no media data for `moov` to come before.
    NoMdat,
    /// No `moov`: nothing to move.
    NoMoov,
    /// More than one `moov`: which one a player reads is not defined.
    SeveralMoov,
    /// `moov` is larger than the most the server holds in memory for it.
    MoovTooLarge { size: u64, limit: u64 },
}

/// Decides from the top-level boxes whether the file is a movie whose single
/// `moov` follows its first `mdat` and fits in `max_moov_bytes`. Only then is
/// it worth rewriting: a player must otherwise read the end of the file
/// before it can play the start.
pub fn classify(boxes: &[BoxHeader], max_moov_bytes: u64) -> Layout {
    let reason = match boxes.first() {
        Some(first) if FIRST_BOX_KINDS.contains(&&first.kind) => None,
        _ => Some(AsStoredReason::NotMp4),
    };
    if let Some(reason) = reason {
        return Layout::AsStored(reason);
    }
    if boxes.iter().any(|b| &b.kind == b"moof") {
        return Layout::AsStored(AsStoredReason::Fragmented);
    }
    let mut moovs = boxes.iter().filter(|b| &b.kind == b"moov");
    let moov = match (moovs.next(), moovs.next()) {
        (None, _) => return Layout::AsStored(AsStoredReason::NoMoov),
        (Some(_), Some(_)) => return Layout::AsStored(AsStoredReason::SeveralMoov),
        (Some(moov), None) => *moov,
    };
    let Some(first_mdat) = boxes.iter().find(|b| &b.kind == b"mdat") else {
        return Layout::AsStored(AsStoredReason::NoMdat);
    };
    if moov.offset < first_mdat.offset {
        return Layout::AsStored(AsStoredReason::AlreadyFaststart);
    }
    if moov.size > max_moov_bytes {
        return Layout::AsStored(AsStoredReason::MoovTooLarge {
            size: moov.size,
            limit: max_moov_bytes,
        });
    }
    Layout::Faststart { moov }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Headers laid end to end from (type, size) pairs.
    fn laid_out(boxes: &[(&[u8; 4], u64)]) -> Vec<BoxHeader> {
        let mut offset = 0;
        boxes
            .iter()
            .map(|&(kind, size)| {
                let header = BoxHeader {
                    kind: *kind,
                    offset,
                    header_len: 8,
                    size,
                };
                offset += size;
                header
            })
            .collect()
    }

    #[test]
    fn layouts() {
        use AsStoredReason::*;
        let moov_at = |offset| Layout::Faststart {
            moov: BoxHeader {
                kind: *b"moov",
                offset,
                header_len: 8,
                size: 500,
            },
        };
        /// Boxes (type, size) laid end to end, and the layout expected.
        type Case = (Vec<(&'static [u8; 4], u64)>, Layout);
        let cases: Vec<Case> = vec![
            (
                vec![(b"ftyp", 32), (b"mdat", 1000), (b"moov", 500)],
                moov_at(1032),
            ),
            (
                vec![
                    (b"ftyp", 32),
                    (b"free", 8),
                    (b"mdat", 1000),
                    (b"moov", 500),
                    (b"free", 8),
                ],
                moov_at(1040),
            ),
            (
                vec![
                    (b"ftyp", 32),
                    (b"mdat", 1000),
                    (b"mdat", 10),
                    (b"moov", 500),
                ],
                moov_at(1042),
            ),
            (
                vec![(b"wide", 8), (b"mdat", 1000), (b"moov", 500)],
                moov_at(1008),
            ),
            (vec![(b"mdat", 1000), (b"moov", 500)], moov_at(1000)),
            (
                vec![(b"ftyp", 32), (b"moov", 500), (b"mdat", 1000)],
                Layout::AsStored(AlreadyFaststart),
            ),
            (
                vec![(b"moov", 500), (b"mdat", 1000)],
                Layout::AsStored(AlreadyFaststart),
            ),
            (
                vec![
                    (b"ftyp", 32),
                    (b"mdat", 10),
                    (b"moov", 500),
                    (b"mdat", 1000),
                ],
                moov_at(42),
            ),
            (
                vec![
                    (b"ftyp", 32),
                    (b"moov", 500),
                    (b"moof", 100),
                    (b"mdat", 1000),
                ],
                Layout::AsStored(Fragmented),
            ),
            (
                vec![(b"ftyp", 32), (b"mdat", 1000)],
                Layout::AsStored(NoMoov),
            ),
            (
                vec![(b"ftyp", 32), (b"moov", 500)],
                Layout::AsStored(NoMdat),
            ),
            (
                vec![
                    (b"ftyp", 32),
                    (b"mdat", 1000),
                    (b"moov", 500),
                    (b"moov", 500),
                ],
                Layout::AsStored(SeveralMoov),
            ),
            (
                vec![(b"ftyp", 32), (b"mdat", 1000), (b"moov", 2001)],
                Layout::AsStored(MoovTooLarge {
                    size: 2001,
                    limit: 2000,
                }),
            ),
            (
                vec![(b"RIFF", 32), (b"mdat", 1000), (b"moov", 500)],
                Layout::AsStored(NotMp4),
            ),
            (
                vec![(b"styp", 32), (b"mdat", 1000), (b"moov", 500)],
                Layout::AsStored(NotMp4),
            ),
            (vec![], Layout::AsStored(NotMp4)),
        ];
        for (boxes, expected) in cases {
            assert_eq!(classify(&laid_out(&boxes), 2000), expected, "{boxes:?}");
        }
    }
}
