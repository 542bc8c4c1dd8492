//! Prepared data: the `part-*` files of a folder, split into blocks of
//! records that threads take one at a time.

use std::path::{Path, PathBuf};

use sparky_tfrecord::example::{ExampleError, Int64SchemaDecoder};
use sparky_tfrecord::{Compression, MappedFile, ReaderOptions, RecordReader, SliceReader};

use crate::TrainError;

/// Records per block (the unit of work, shuffling and resuming) of an
/// uncompressed file. A compressed file is one block.
pub const BLOCK_RECORDS: u64 = 1024;

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

/// A block: a run of records of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    file: usize,
    start: u64,
    end: u64,
    first_record: u64,
}

/// The records of a prepared folder.
pub struct Dataset {
    paths: Vec<PathBuf>,
    sources: Vec<Source>,
    blocks: Vec<Block>,
    records: Option<u64>,
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
    /// split into blocks by hopping over record headers (checking the length
    /// checksums); compressed files are one block each.
    pub fn open(dir: &Path, skip_corrupt: bool) -> Result<Self, TrainError> {
        let paths = part_files(dir)?;
        let opts = ReaderOptions { skip_corrupt_payloads: skip_corrupt, ..ReaderOptions::default() };
        let mut sources = Vec::with_capacity(paths.len());
        let mut blocks = Vec::new();
        let mut total = Some(0u64);
        for (i, p) in paths.iter().enumerate() {
            if Compression::from_path(p) == Compression::None {
                let m = MappedFile::open(p)?;
                let runs = sparky_tfrecord::record_blocks(m.bytes(), BLOCK_RECORDS, Some(p), opts)?;
                let mut n = 0;
                for (range, first) in runs {
                    n = first;
                    blocks.push(Block {
                        file: i,
                        start: range.start as u64,
                        end: range.end as u64,
                        first_record: first,
                    });
                }
                let last = blocks.last().filter(|b| b.file == i);
                let in_file = last.map_or(0, |b| {
                    n + SliceReader::new(&m.bytes()[b.start as usize..b.end as usize])
                        .with_options(ReaderOptions { verify_checksums: false, ..opts })
                        .count() as u64
                });
                total = total.map(|t| t + in_file);
                sources.push(Source::Mapped(m));
            } else {
                blocks.push(Block { file: i, start: 0, end: u64::MAX, first_record: 0 });
                total = None;
                sources.push(Source::Stream(p.clone()));
            }
        }
        Ok(Self { paths, sources, blocks, records: total, opts })
    }

    /// Number of blocks.
    #[must_use]
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Number of records, when every file is uncompressed.
    #[must_use]
    pub fn records(&self) -> Option<u64> {
        self.records
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
        let decode_err = |record: u64, e: ExampleError| TrainError::Example { path: path.clone(), record, source: e };
        match &self.sources[block.file] {
            Source::Mapped(m) => {
                let bytes = &m.bytes()[block.start as usize..block.end as usize];
                let mut r = SliceReader::new(bytes)
                    .with_path(path)
                    .with_options(self.opts)
                    .with_start(block.start, block.first_record);
                while let Some(rec) = r.next_record() {
                    let rec = rec?;
                    let index = r.records() - 1;
                    decoder.decode(rec, &mut row).map_err(|e| decode_err(index, e))?;
                    check_label(&row, path, index)?;
                    stats.rows += 1;
                    if let Flow::Stop = f(&row) {
                        break;
                    }
                }
                stats.skipped = r.skipped();
            }
            Source::Stream(p) => {
                let mut r = RecordReader::open(p)?.with_options(self.opts);
                let mut buf = Vec::new();
                while r.read_record(&mut buf)? {
                    let index = r.records_read() + r.skipped() - 1;
                    decoder.decode(&buf, &mut row).map_err(|e| decode_err(index, e))?;
                    check_label(&row, path, index)?;
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

fn check_label(row: &Row, path: &Path, record: u64) -> Result<(), TrainError> {
    if row[0] == 0 || row[0] == 1 {
        Ok(())
    } else {
        Err(TrainError::Label { path: path.to_path_buf(), record, value: row[0] })
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
