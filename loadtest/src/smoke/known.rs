//! The object's bytes as earlier answers gave them: each new answer is
//! compared with every earlier one it overlaps, so two reads of the same bytes
//! by different requests (a suffix and a closed range, a multipart part and a
//! single range) must agree.

/// Spans of the object seen so far, each with the request that brought it.
#[derive(Default)]
pub struct KnownBytes {
    spans: Vec<(u64, Vec<u8>, String)>,
}

impl KnownBytes {
    /// Checks `bytes`, which an answer gave as the object's from offset `at`,
    /// against every span seen; the first difference, named.
    pub fn compare(&self, at: u64, bytes: &[u8]) -> Result<(), String> {
        let end = at + bytes.len() as u64;
        for (start, known, from) in &self.spans {
            let known_end = start + known.len() as u64;
            let (lo, hi) = (at.max(*start), end.min(known_end));
            if lo >= hi {
                continue;
            }
            let here = &bytes[(lo - at) as usize..(hi - at) as usize];
            let there = &known[(lo - start) as usize..(hi - start) as usize];
            if let Some(i) = here.iter().zip(there).position(|(a, b)| a != b) {
                let offset = lo + i as u64;
                return Err(format!(
                    "byte {offset} is 0x{:02x}, but 0x{:02x} in the answer to {from}",
                    here[i], there[i]
                ));
            }
        }
        Ok(())
    }

    /// Remembers `bytes` at offset `at`, brought by the request `from`.
    pub fn add(&mut self, at: u64, bytes: &[u8], from: &str) {
        if !bytes.is_empty() {
            self.spans.push((at, bytes.to_vec(), from.to_owned()));
        }
    }

    /// How many bytes of `[at, at + len)` some span covers, for saying what
    /// a comparison covered.
    pub fn overlap(&self, at: u64, len: u64) -> u64 {
        let mut covered: Vec<(u64, u64)> = self
            .spans
            .iter()
            .map(|(s, b, _)| (at.max(*s), (at + len).min(s + b.len() as u64)))
            .filter(|(lo, hi)| lo < hi)
            .collect();
        covered.sort_unstable();
        let (mut total, mut reach) = (0, at);
        for (lo, hi) in covered {
            let lo = lo.max(reach);
            if hi > lo {
                total += hi - lo;
                reach = hi;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_answers_must_agree() {
        let mut known = KnownBytes::default();
        known.add(10, b"abcdef", "GET bytes=10-15");
        known.add(100, b"xyz", "GET bytes=100-102");
        assert_eq!(known.compare(12, b"cdefgh"), Ok(()));
        assert_eq!(known.compare(0, b"0123456789ab"), Ok(()));
        assert_eq!(
            known.compare(50, b"anything"),
            Ok(()),
            "nothing known there"
        );
        assert_eq!(
            known.compare(13, b"dXf"),
            Err("byte 14 is 0x58, but 0x65 in the answer to GET bytes=10-15".into())
        );
        assert_eq!(
            known.compare(99, b"-xyZ"),
            Err("byte 102 is 0x5a, but 0x7a in the answer to GET bytes=100-102".into())
        );
        assert_eq!(known.overlap(0, 200), 9);
        assert_eq!(known.overlap(12, 2), 2);
        known.add(12, b"cdefghij", "GET bytes=12-19");
        assert_eq!(known.overlap(0, 200), 13, "overlapping spans count once");
    }
}
