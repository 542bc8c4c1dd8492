//! Prepared data: the `part-*` files of a folder, split into blocks of
//! records that threads take one at a time.

use std::path::{Path, PathBuf};

use sparky_tfrecord::example::{ExampleError, Int64SchemaDecoder};
use sparky_tfrecord::{Compression, MappedFile, ReaderOptions, RecordReader, SliceReader};

use crate::TrainError;

/// Bytes per block (the unit of work, shuffling and resuming) of an
/// uncompressed file: about 750 Criteo Examples. A block holds the records
/// that start in its byte range; a reader finds the first with
/// [`sparky_tfrecord::next_record_start`], so opening a folder reads nothing.
/// A compressed file is one block.
pub const BLOCK_BYTES: u64 = 1 << 20;

/// Blocks release their pages in whole spans of this size (see `read_block`).
const RELEASE_SPAN: usize = 2 << 20;

/// Values of one training row: label, 13 integers, 26 vocabulary ids.
pub type Row = [i64; 40];

/// The Example features a trainer reads, in [`Row`] order.
#[must_use]
pub fn feature_names() -> Vec<String> {
    std::iter::once("clicked".to_string())
        .chain((1..=13).map(|i| format!("integer-feature-{i}")))
        .chain((1..=26).map(|i| format!("categorical-feature-{i}")))
        .collect()
}

/// The `part-*` files of a prepared folder (any compression), sorted; hidden
/// and temporary files are ignored.
pub fn part_files(dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let io = |source| TrainError::Io { path: dir.to_path_buf(), source };
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n.starts_with("part-") && !n.ends_with(".tmp") && !n.ends_with(".parquet")
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(TrainError::NoData(dir.to_path_buf()));
    }
    Ok(out)
}

enum Source {
    Mapped(MappedFile),
    Stream(PathBuf),
}

/// A block: the records of one file that start in a byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    file: usize,
    start: u64,
    end: u64,
}

/// The records of a prepared folder.
pub struct Dataset {
    paths: Vec<PathBuf>,
    sources: Vec<Source>,
    blocks: Vec<Block>,
    opts: ReaderOptions,
}

/// What was read from one block.
#[derive(Debug, Default, Clone, Copy)]
pub struct BlockStats {
    /// Rows handed to the callback.
    pub rows: u64,
    /// Records skipped as corrupt.
    pub skipped: u64,
}

/// Why the callback stopped reading.
pub enum Flow {
    /// Go on.
    Continue,
    /// Stop reading this block.
    Stop,
}

impl Dataset {
    /// Opens the `part-*` files of `dir`: uncompressed files are mapped and
    /// cut into byte ranges of [`BLOCK_BYTES`]; compressed files are one
    /// block each. Nothing is read yet.
    pub fn open(dir: &Path, skip_corrupt: bool) -> Result<Self, TrainError> {
        let paths = part_files(dir)?;
        let opts = ReaderOptions { skip_corrupt_payloads: skip_corrupt, ..ReaderOptions::default() };
        let mut sources = Vec::with_capacity(paths.len());
        let mut blocks = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            if Compression::from_path(p) == Compression::None {
                let m = MappedFile::open(p)?;
                // Blocks are read in shuffled order.
                m.access_in_any_order();
                let len = m.bytes().len() as u64;
                let mut start = 0;
                while start < len {
                    let end = (start + BLOCK_BYTES).min(len);
                    blocks.push(Block { file: i, start, end });
                    start = end;
                }
                sources.push(Source::Mapped(m));
            } else {
                blocks.push(Block { file: i, start: 0, end: u64::MAX });
                sources.push(Source::Stream(p.clone()));
            }
        }
        Ok(Self { paths, sources, blocks, opts })
    }

    /// Number of blocks.
    #[must_use]
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// The files.
    #[must_use]
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// Reads block `b`, decoding each record into a [`Row`] for `f`.
    pub fn read_block(
        &self,
        b: usize,
        decoder: &mut Int64SchemaDecoder,
        mut f: impl FnMut(&Row) -> Flow,
    ) -> Result<BlockStats, TrainError> {
        let block = self.blocks[b];
        let path = &self.paths[block.file];
        let mut row = [0i64; 40];
        let mut stats = BlockStats::default();
        let decode_err = |at: String, e: ExampleError| TrainError::Example { path: path.clone(), at, source: e };
        match &self.sources[block.file] {
            Source::Mapped(m) => {
                let bytes = m.bytes();
                let Some(first) =
                    sparky_tfrecord::next_record_start(bytes, block.start as usize, self.opts.max_record_len)
                else {
                    return Ok(stats); // no record starts here: the one before runs to the end
                };
                let end = block.end as usize;
                let mut r = SliceReader::new(&bytes[first..])
                    .with_path(path)
                    .with_options(self.opts)
                    .with_start_unnumbered(first as u64);
                while (r.offset() as usize) < end {
                    let at = r.offset();
                    let Some(rec) = r.next_record() else { break };
                    let rec = rec?;
                    let here = || format!("record at byte {at}");
                    decoder.decode(rec, &mut row).map_err(|e| decode_err(here(), e))?;
                    check_label(&row, path, here)?;
                    stats.rows += 1;
                    if let Flow::Stop = f(&row) {
                        break;
                    }
                }
                // The record after the range (where the next block starts) must
                // be whole: a damaged one there would be silently passed over
                // by the next block's search for a record start.
                if (r.offset() as usize) < bytes.len()
                    && (r.offset() as usize) >= end
                    && let Some(Err(e)) = r.next_record()
                {
                    return Err(e.into());
                }
                stats.skipped = r.skipped();
                // Resident memory must not grow with the data: let the pages
                // go, up to the record checked after the range, widened to
                // whole 2 MiB spans: the kernel maps file pages around a fault
                // (fault-around, large folios), and what it mapped of a
                // neighbouring block already read would otherwise stay mapped
                // for the rest of the run (epochs read blocks shuffled).
                let read_to = (r.offset() as usize).max(end);
                let from = block.start as usize & !(RELEASE_SPAN - 1);
                let to = read_to.div_ceil(RELEASE_SPAN) * RELEASE_SPAN;
                m.release(from..to.min(bytes.len()));
            }
            Source::Stream(p) => {
                let mut r = RecordReader::open(p)?.with_options(self.opts);
                let mut buf = Vec::new();
                while r.read_record(&mut buf)? {
                    let index = r.records_read() + r.skipped() - 1;
                    let here = || format!("record {index}");
                    decoder.decode(&buf, &mut row).map_err(|e| decode_err(here(), e))?;
                    check_label(&row, path, here)?;
                    stats.rows += 1;
                    if let Flow::Stop = f(&row) {
                        break;
                    }
                }
                stats.skipped = r.skipped();
            }
        }
        Ok(stats)
    }
}

fn check_label(row: &Row, path: &Path, at: impl FnOnce() -> String) -> Result<(), TrainError> {
    if row[0] == 0 || row[0] == 1 {
        Ok(())
    } else {
        Err(TrainError::Label { path: path.to_path_buf(), at: at(), value: row[0] })
    }
}

/// A deterministic permutation of `0..n` for `seed` (SplitMix64 and
/// Fisher-Yates).
#[must_use]
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_are_permutations_and_reproducible() {
        let a = shuffled(1000, 7);
        let mut s = a.clone();
        s.sort_unstable();
        assert_eq!(s, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, shuffled(1000, 7));
        assert_ne!(a, shuffled(1000, 8));
        assert!(shuffled(0, 1).is_empty());
    }
}
