//! A track's sample table (ISO/IEC 14496-12 §8.6, §8.7), kept as compact
//! as the boxes it comes from: runs of durations, of composition offsets and
//! of chunks, a list of sync samples, one size per sample (or one for all),
//! one offset per chunk. A sample's time, size and place in the file are
//! computed when asked for, by binary search over the runs, so a two-hour
//! movie costs about as much memory as its `stbl`, never one entry per sample
//! when the boxes hold runs.

/// The samples of one track, from its `stbl` box.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleTable {
    /// Samples in the track (`stsz`/`stz2` sample count).
    pub(super) count: u64,
    pub(super) sizes: Sizes,
    /// `stts` runs, each with the sample and decode time it starts at.
    pub(super) time_runs: Vec<TimeRun>,
    /// `ctts` runs, each with the sample it starts at; samples past them have
    /// a composition offset of 0, as do all when there is no `ctts`.
    pub(super) offset_runs: Vec<OffsetRun>,
    /// `stss` sample numbers (1-based, increasing); `None` when every sample
    /// is a sync sample.
    pub(super) sync: Option<Vec<u32>>,
    /// `stsc` runs, each with the sample and chunk (0-based) it starts at.
    pub(super) chunk_runs: Vec<ChunkRun>,
    /// `stco`/`co64`: file offset of each chunk.
    pub(super) chunk_offsets: Vec<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Sizes {
    /// Every sample has this size (`stsz` sample_size, never 0).
    Constant(u32),
    /// One size per sample.
    Each(Vec<u32>),
}

impl Default for Sizes {
    fn default() -> Self {
        Sizes::Each(Vec::new())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TimeRun {
    pub(super) first_sample: u64,
    pub(super) first_dts: i64,
    pub(super) count: u32,
    pub(super) delta: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct OffsetRun {
    pub(super) first_sample: u64,
    pub(super) count: u32,
    pub(super) offset: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ChunkRun {
    pub(super) first_sample: u64,
    pub(super) first_chunk: u64,
    /// Chunks in the run (up to the next run, or the last chunk).
    pub(super) chunks: u64,
    pub(super) samples_per_chunk: u32,
}

/// One sample, as the tables place it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// 0-based, in decode order.
    pub index: u64,
    /// Where its bytes start in the file.
    pub offset: u64,
    pub size: u32,
    /// Decode time, in the track's timescale.
    pub dts: i64,
    /// Composition offset (`ctts`): presentation time minus decode time,
    /// before the edit list.
    pub composition_offset: i32,
    /// A sync sample (for video, a keyframe that decodes on its own).
    pub sync: bool,
}

impl Sample {
    /// The time the sample is presented at, in the track's timescale, once the
    /// edit list's media time is taken off: `dts + ctts - edit_media_time`.
    pub fn presentation_time(&self, edit_media_time: i64) -> i128 {
        i128::from(self.dts) + i128::from(self.composition_offset) - i128::from(edit_media_time)
    }
}

impl SampleTable {
    /// Samples in the track.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the track has no samples.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The sum of the sample durations, in the track's timescale.
    pub fn total_duration(&self) -> i64 {
        self.decode_time(self.count).unwrap_or(0)
    }

    /// The sample at `index` (decode order), or `None` past the last one or
    /// when its offset does not fit 64 bits.
    pub fn sample(&self, index: u64) -> Option<Sample> {
        let (chunk, position) = self.locate(index)?;
        let in_chunk = match &self.sizes {
            Sizes::Constant(size) => position.checked_mul(u64::from(*size))?,
            Sizes::Each(sizes) => {
                let first = usize::try_from(index - position).ok()?;
                let this = usize::try_from(index).ok()?;
                sizes.get(first..this)?.iter().map(|&s| u64::from(s)).sum()
            }
        };
        let offset = self.chunk_offsets.get(chunk)?.checked_add(in_chunk)?;
        self.sample_at(index, offset)
    }

    /// The sample after `previous`, found without summing its chunk again.
    pub fn next_sample(&self, previous: &Sample) -> Option<Sample> {
        let index = previous.index.checked_add(1)?;
        let (chunk, position) = self.locate(index)?;
        let offset = if position == 0 {
            *self.chunk_offsets.get(chunk)?
        } else {
            previous.offset.checked_add(u64::from(previous.size))?
        };
        self.sample_at(index, offset)
    }

    fn sample_at(&self, index: u64, offset: u64) -> Option<Sample> {
        Some(Sample {
            index,
            offset,
            size: self.size(index)?,
            dts: self.decode_time(index)?,
            composition_offset: self.composition_offset(index),
            sync: self.is_sync(index),
        })
    }

    fn size(&self, index: u64) -> Option<u32> {
        if index >= self.count {
            return None;
        }
        match &self.sizes {
            Sizes::Constant(size) => Some(*size),
            Sizes::Each(sizes) => sizes.get(usize::try_from(index).ok()?).copied(),
        }
    }

    /// The chunk (0-based) sample `index` is in, and its position in it.
    fn locate(&self, index: u64) -> Option<(usize, u64)> {
        if index >= self.count {
            return None;
        }
        let run = self.chunk_runs[..self.chunk_runs.partition_point(|r| r.first_sample <= index)]
            .iter()
            .rev()
            .find(|r| r.chunks > 0)?;
        let within = index - run.first_sample;
        let per_chunk = u64::from(run.samples_per_chunk);
        let chunk = run.first_chunk + within / per_chunk;
        Some((usize::try_from(chunk).ok()?, within % per_chunk))
    }

    /// Decode time of sample `index`; `index == len()` gives the end of the
    /// last sample.
    fn decode_time(&self, index: u64) -> Option<i64> {
        let at = self.time_runs.partition_point(|r| r.first_sample <= index);
        let run = self.time_runs[..at].last()?;
        let within = index - run.first_sample;
        if within > u64::from(run.count) {
            return None;
        }
        i64::try_from(within.checked_mul(u64::from(run.delta))?)
            .ok()?
            .checked_add(run.first_dts)
    }

    fn composition_offset(&self, index: u64) -> i32 {
        let at = self
            .offset_runs
            .partition_point(|r| r.first_sample <= index);
        match self.offset_runs[..at].last() {
            Some(run) if index - run.first_sample < u64::from(run.count) => run.offset,
            _ => 0,
        }
    }

    fn is_sync(&self, index: u64) -> bool {
        match &self.sync {
            None => true,
            Some(numbers) => numbers
                .binary_search_by(|&n| (u64::from(n) - 1).cmp(&index))
                .is_ok(),
        }
    }

    /// The last sync sample at or before `index` in decode order, if any.
    pub fn sync_at_or_before(&self, index: u64) -> Option<u64> {
        match &self.sync {
            None => Some(index),
            Some(numbers) => {
                let at = numbers.partition_point(|&n| u64::from(n) - 1 <= index);
                numbers[..at].last().map(|&n| u64::from(n) - 1)
            }
        }
    }

    /// The sample shown at presentation time `target` (track timescale, after
    /// the edit list's `edit_media_time`): the one with the greatest
    /// presentation time at or before it, the earliest in decode order among
    /// equals; before the first frame, the first frame. `None` for an empty
    /// track. Works on the runs, not the samples: the cost is the number of
    /// `stts` and `ctts` entries, whatever the sample count.
    pub fn shown_at(&self, target: i128, edit_media_time: i64) -> Option<u64> {
        let mut best: Option<(i128, u64)> = None;
        let mut first: Option<(i128, u64)> = None;
        let (mut t, mut o) = (0usize, 0usize);
        let mut sample = 0u64;
        while sample < self.count {
            let time = self.time_runs.get(t)?;
            let time_end = time.first_sample + u64::from(time.count);
            if time_end <= sample {
                t += 1;
                continue;
            }
            let (offset, offset_end) = match self.offset_runs.get(o) {
                Some(run) if run.first_sample + u64::from(run.count) <= sample => {
                    o += 1;
                    continue;
                }
                Some(run) => (run.offset, run.first_sample + u64::from(run.count)),
                None => (0, u64::MAX),
            };
            let len = time_end.min(offset_end).min(self.count) - sample;
            let delta = i128::from(time.delta);
            let base = i128::from(time.first_dts)
                + i128::from(sample - time.first_sample) * delta
                + i128::from(offset)
                - i128::from(edit_media_time);
            if first.is_none_or(|(pts, _)| base < pts) {
                first = Some((base, sample));
            }
            if base <= target {
                let k = if delta == 0 {
                    0
                } else {
                    ((target - base) / delta).min(i128::from(len - 1))
                };
                let pts = base + k * delta;
                if best.is_none_or(|(best_pts, _)| pts > best_pts) {
                    best = Some((pts, sample + k as u64));
                }
            }
            sample += len;
        }
        best.or(first).map(|(_, index)| index)
    }
}
