//! Which ranges to ask for: the request patterns, as a seeded generator.

use std::fmt;
use std::str::FromStr;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// How requests are chosen.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Closed ranges of random size (within --range-size) at random offsets.
    Uniform,
    /// What a video player does: a `bytes=0-1` probe, then `bytes=0-`, then
    /// seeks `bytes=N-` of which all but the last are abandoned early.
    Browser,
    /// `bytes=0-1` only: the cost of a request with almost no bytes.
    Probe,
}

/// A byte range to ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// `bytes=first-last`.
    Closed { first: u64, last: u64 },
    /// `bytes=first-`: the server may send any prefix of the rest.
    Open { first: u64 },
}

impl Want {
    pub fn header(&self) -> String {
        match self {
            Want::Closed { first, last } => format!("bytes={first}-{last}"),
            Want::Open { first } => format!("bytes={first}-"),
        }
    }

    pub fn first(&self) -> u64 {
        match *self {
            Want::Closed { first, .. } | Want::Open { first } => first,
        }
    }
}

/// One request to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    pub want: Want,
    /// Stop reading after this many body bytes and drop the connection, as a
    /// player does when the user seeks elsewhere.
    pub abandon_after: Option<u64>,
}

/// Sizes of the closed ranges of the uniform pattern, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeRange {
    pub min: u64,
    pub max: u64,
}

impl fmt::Display for SizeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.min, self.max)
    }
}

impl FromStr for SizeRange {
    type Err = String;

    /// `MIN..MAX`, each a number of bytes with an optional unit (`K`/`KiB`,
    /// `M`/`MiB`, `G`/`GiB`: powers of 1024; `KB`, `MB`, `GB`: powers of 1000).
    fn from_str(s: &str) -> Result<Self, String> {
        let (min, max) = s
            .split_once("..")
            .ok_or_else(|| format!("{s:?}: expected MIN..MAX, such as 64KiB..1MiB"))?;
        let (min, max) = (parse_size(min)?, parse_size(max)?);
        if min == 0 || min > max {
            return Err(format!("{s:?}: need 0 < MIN <= MAX"));
        }
        Ok(SizeRange { min, max })
    }
}

/// A byte count such as `65536`, `64KiB`, `1M` or `2MB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{s:?}: not a byte count"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}")),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("{s:?}: too large"))
}

/// Where a browser-like session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Probe,
    Start,
    Seek { left: u32 },
}

/// Seeks per browser session, and how much of an abandoned one is read.
const SEEKS_PER_SESSION: std::ops::RangeInclusive<u32> = 1..=4;
const ABANDON_AFTER: std::ops::RangeInclusive<u64> = (16 << 10)..=(256 << 10);

/// Plans the requests of one connection, from a seed, for an object of `size`
/// bytes (at least 1).
pub struct Planner {
    pattern: Pattern,
    size: u64,
    sizes: SizeRange,
    rng: SmallRng,
    step: Step,
}

impl Planner {
    pub fn new(pattern: Pattern, size: u64, sizes: SizeRange, seed: u64) -> Self {
        Planner {
            pattern,
            size: size.max(1),
            sizes,
            rng: SmallRng::seed_from_u64(seed),
            step: Step::Probe,
        }
    }

    pub fn next_request(&mut self) -> Planned {
        match self.pattern {
            Pattern::Probe => Planned {
                want: self.probe(),
                abandon_after: None,
            },
            Pattern::Uniform => {
                let len = self
                    .rng
                    .random_range(self.sizes.min..=self.sizes.max)
                    .min(self.size);
                let first = self.rng.random_range(0..=self.size - len);
                Planned {
                    want: Want::Closed {
                        first,
                        last: first + len - 1,
                    },
                    abandon_after: None,
                }
            }
            Pattern::Browser => self.browser(),
        }
    }

    fn probe(&self) -> Want {
        Want::Closed {
            first: 0,
            last: 1.min(self.size - 1),
        }
    }

    fn browser(&mut self) -> Planned {
        let (want, abandon_after, next) = match self.step {
            Step::Probe => (self.probe(), None, Step::Start),
            Step::Start => (
                Want::Open { first: 0 },
                None,
                Step::Seek {
                    left: self.rng.random_range(SEEKS_PER_SESSION),
                },
            ),
            Step::Seek { left } => {
                let first = self.rng.random_range(0..self.size);
                let last_seek = left <= 1;
                let abandon = (!last_seek).then(|| self.rng.random_range(ABANDON_AFTER));
                let next = if last_seek {
                    Step::Probe
                } else {
                    Step::Seek { left: left - 1 }
                };
                (Want::Open { first }, abandon, next)
            }
        };
        self.step = next;
        Planned {
            want,
            abandon_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        let cases = [
            ("65536", Ok(65536)),
            ("64KiB", Ok(65536)),
            ("64k", Ok(65536)),
            ("1MiB", Ok(1 << 20)),
            ("2MB", Ok(2_000_000)),
            ("1G", Ok(1 << 30)),
            ("", Err(())),
            ("12 parsecs", Err(())),
            ("99999999999999999999G", Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(parse_size(text).map_err(|_| ()), want, "{text:?}");
        }
        assert_eq!(
            "64KiB..1MiB".parse::<SizeRange>(),
            Ok(SizeRange {
                min: 65536,
                max: 1 << 20
            })
        );
        for bad in ["1MiB..64KiB", "0..10", "64KiB", "a..b"] {
            assert!(bad.parse::<SizeRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn uniform_ranges_stay_inside_the_object_and_the_sizes() {
        let sizes = SizeRange { min: 10, max: 100 };
        for size in [1, 5, 10, 99, 1000, 1 << 30] {
            let mut planner = Planner::new(Pattern::Uniform, size, sizes, 7);
            for _ in 0..1000 {
                let Planned {
                    want: Want::Closed { first, last },
                    abandon_after: None,
                } = planner.next_request()
                else {
                    panic!("uniform asks closed ranges, read whole");
                };
                let len = last - first + 1;
                assert!(last < size, "{first}-{last} of {size}");
                assert!(len <= 100 && (len >= 10 || len == size), "{len} of {size}");
            }
        }
    }

    #[test]
    fn browser_sessions_probe_start_then_seek() {
        let mut planner = Planner::new(Pattern::Browser, 1000, SizeRange { min: 1, max: 1 }, 3);
        let mut sessions = 0;
        let mut planned: Vec<Planned> = (0..200).map(|_| planner.next_request()).collect();
        while !planned.is_empty() {
            assert_eq!(planned[0].want.header(), "bytes=0-1");
            assert_eq!(planned[1].want.header(), "bytes=0-");
            let seeks = planned[2..]
                .iter()
                .position(|p| p.abandon_after.is_none())
                .map_or(planned.len() - 2, |i| i + 1);
            for (i, seek) in planned[2..2 + seeks].iter().enumerate() {
                assert!(matches!(seek.want, Want::Open { first } if first < 1000));
                assert_eq!(
                    seek.abandon_after.is_none(),
                    i == seeks - 1 || 2 + seeks == planned.len()
                );
            }
            assert!((1..=4).contains(&seeks), "{seeks} seeks");
            sessions += 1;
            planned.drain(..(2 + seeks).min(planned.len()));
            if planned.len() < 6 {
                break;
            }
        }
        assert!(sessions > 10);
    }

    #[test]
    fn probes_of_a_one_byte_object_ask_for_that_byte() {
        let mut planner = Planner::new(Pattern::Probe, 1, SizeRange { min: 1, max: 1 }, 0);
        assert_eq!(planner.next_request().want.header(), "bytes=0-0");
        let mut planner = Planner::new(Pattern::Probe, 50, SizeRange { min: 1, max: 1 }, 0);
        assert_eq!(planner.next_request().want.header(), "bytes=0-1");
    }
}
