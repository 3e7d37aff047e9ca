//! Whether the bytes are right: against a local copy of the object, or, with
//! no copy, against what other responses said of the same bytes.

use std::fs::File;
use std::hash::Hasher;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Bytes per block compared between responses.
pub const BLOCK: u64 = 4096;

/// The reference the bodies are checked against.
pub enum Verifier {
    /// A local file that must hold the same bytes as the object.
    File(File),
    /// No copy: every whole block a response carries is hashed, and two
    /// responses that carry the same block must agree. The first block is
    /// also kept byte for byte, so that short ranges there (probes) are
    /// compared too.
    Consistent {
        size: u64,
        hashes: Vec<AtomicU64>,
        first_block: OnceLock<Vec<u8>>,
    },
}

impl Verifier {
    /// Against `path`, which must be `size` bytes long.
    pub fn file(path: &Path, size: u64) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let len = file
            .metadata()
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        if len != size {
            return Err(format!(
                "{} is {len} bytes, the object {size}: not the same file",
                path.display()
            ));
        }
        Ok(Verifier::File(file))
    }

    pub fn consistent(size: u64) -> Self {
        let blocks = size.div_ceil(BLOCK) as usize;
        Verifier::Consistent {
            size,
            hashes: (0..blocks).map(|_| AtomicU64::new(0)).collect(),
            first_block: OnceLock::new(),
        }
    }

    /// A checker for one body that starts at byte `first` of the object.
    pub fn body(&self, first: u64) -> BodyCheck<'_> {
        BodyCheck {
            verifier: self,
            offset: first,
            start: first,
            block: Vec::new(),
            scratch: Vec::new(),
            wrong: false,
        }
    }
}

/// Checks a body as its chunks arrive.
pub struct BodyCheck<'a> {
    verifier: &'a Verifier,
    /// Object offset of the next byte.
    offset: u64,
    start: u64,
    /// The bytes so far of the current block, when the body holds its start.
    block: Vec<u8>,
    scratch: Vec<u8>,
    wrong: bool,
}

impl BodyCheck<'_> {
    pub fn feed(&mut self, chunk: &[u8]) {
        match self.verifier {
            Verifier::File(file) => {
                self.scratch.resize(chunk.len(), 0);
                let same = file.read_exact_at(&mut self.scratch, self.offset).is_ok()
                    && self.scratch == chunk;
                self.wrong |= !same;
            }
            Verifier::Consistent { size, .. } => {
                let mut rest = chunk;
                let mut at = self.offset;
                while !rest.is_empty() {
                    let block_start = at - at % BLOCK;
                    let block_end = (block_start + BLOCK).min(*size);
                    let take = rest.len().min((block_end - at) as usize);
                    // Only blocks whose start this body holds are collected.
                    if block_start >= self.start {
                        self.block.extend_from_slice(&rest[..take]);
                        if at + take as u64 == block_end {
                            let block = std::mem::take(&mut self.block);
                            self.wrong |= !self.agree(block_start / BLOCK, &block);
                        }
                    }
                    at += take as u64;
                    rest = &rest[take..];
                }
            }
        }
        self.offset += chunk.len() as u64;
    }

    /// Whether every byte checked agreed. A body cut short is judged on the
    /// bytes it had.
    pub fn finish(mut self) -> bool {
        if let Verifier::Consistent { first_block, .. } = self.verifier {
            // A body that starts at 0 and ends inside the first block: compare
            // what it had with the whole first block, once any body brought it.
            if self.start == 0 && !self.block.is_empty() && self.offset <= BLOCK {
                if let Some(known) = first_block.get() {
                    self.wrong |= !known.starts_with(&self.block);
                }
            }
        }
        !self.wrong
    }

    /// Records block `index`, or compares it with what an earlier body said.
    fn agree(&self, index: u64, block: &[u8]) -> bool {
        let Verifier::Consistent {
            hashes,
            first_block,
            ..
        } = self.verifier
        else {
            return true;
        };
        if index == 0 {
            let known = first_block.get_or_init(|| block.to_vec());
            if known != block {
                return false;
            }
        }
        let mut hasher = std::hash::DefaultHasher::new();
        hasher.write(block);
        let hash = hasher.finish() | 1; // 0 means "not seen yet"
        match hashes[index as usize].compare_exchange(0, hash, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => true,
            Err(seen) => seen == hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
            .collect()
    }

    /// Feeds `bytes[first..=last]` in chunks of `chunk` bytes.
    fn check(verifier: &Verifier, bytes: &[u8], first: usize, last: usize, chunk: usize) -> bool {
        let mut body = verifier.body(first as u64);
        for piece in bytes[first..=last].chunks(chunk) {
            body.feed(piece);
        }
        body.finish()
    }

    #[test]
    fn a_local_copy_catches_any_wrong_byte() {
        let good = data(20_000, 1);
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&good).unwrap();
        let verifier = Verifier::file(file.path(), good.len() as u64).unwrap();
        assert!(check(&verifier, &good, 0, 1, 7));
        assert!(check(&verifier, &good, 123, 19_999, 1000));
        let mut bad = good.clone();
        bad[5000] ^= 1;
        assert!(!check(&verifier, &bad, 4000, 6000, 333));
        assert!(
            check(&verifier, &bad, 0, 4999, 333),
            "the wrong byte is outside"
        );
        assert!(Verifier::file(file.path(), 19_999).is_err());
    }

    #[test]
    fn without_a_copy_overlapping_bodies_must_agree() {
        let size = 10 * BLOCK as usize + 100;
        let good = data(size, 1);
        let mut bad = good.clone();
        bad[3 * BLOCK as usize + 10] ^= 0xff;
        // (what was seen first, then what is checked, whether it passes)
        type Body<'a> = (&'a [u8], (usize, usize));
        let cases: [(Body, Body, bool); 6] = [
            ((&good, (0, size - 1)), (&good, (100, 9000)), true),
            ((&good, (0, size - 1)), (&bad, (0, size - 1)), false),
            (
                (&good, (0, size - 1)),
                (&bad, (2 * 4096, 4 * 4096 - 1)),
                false,
            ),
            // The wrong byte is in a block the second body holds only part of.
            (
                (&good, (0, size - 1)),
                (&bad, (3 * 4096 + 5, 3 * 4096 + 20)),
                true,
            ),
            // The short last block.
            ((&good, (0, size - 1)), (&bad, (10 * 4096, size - 1)), true),
            (
                (&bad, (10 * 4096, size - 1)),
                (&good, (10 * 4096, size - 1)),
                true,
            ),
        ];
        for (i, ((seen, (a, b)), (checked, (c, d)), passes)) in cases.into_iter().enumerate() {
            let verifier = Verifier::consistent(size as u64);
            assert!(check(&verifier, seen, a, b, 1000), "case {i}: first body");
            assert_eq!(check(&verifier, checked, c, d, 777), passes, "case {i}");
        }
    }

    #[test]
    fn probes_are_compared_with_the_first_block() {
        let good = data(3 * BLOCK as usize, 1);
        let mut bad = good.clone();
        bad[1] ^= 1;
        let verifier = Verifier::consistent(good.len() as u64);
        assert!(check(&verifier, &good, 0, 1, 2), "nothing known yet");
        assert!(check(&verifier, &good, 0, BLOCK as usize * 2, 500));
        assert!(check(&verifier, &good, 0, 1, 2));
        assert!(!check(&verifier, &bad, 0, 1, 2));
    }
}
