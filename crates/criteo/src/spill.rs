//! Counting within a memory limit: the shared counting tables, their spill
//! runs, the merge, and the vocabulary of a run that spilled.
//!
//! Train mode counts into one table per column ([`CountSink`]), shared by
//! the worker threads. The tables' bytes are accounted against a budget;
//! when a table would grow past it, the largest table (or the growing one)
//! is written to disk as a *run* (its values in text order with their
//! counts) and emptied. At the end, if nothing spilled, the tables become
//! the vocabulary in place ([`Vocabulary::from_counts_owned`]). If something
//! spilled, each column in turn merges its runs and its remaining table
//! (values in text order, equal values summed), ranks them, writes its rows
//! of the artifacts' CSV, and writes its `value → rank` pairs, sorted by
//! value, to a file that the transform maps and searches ([`SortedVocab`]):
//! the ids, and so the outputs, are those of an in-memory run.
//!
//! Spill files live in the output folder under hidden temporary names
//! (`.spill-PID-….tmp`): removed when the run ends, whatever the outcome
//! ([`SpillFiles`]), and by the next run's `OutputDir::open` if the process
//! was killed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use sparky_io::MappedFile;
use sparky_prepared::schema::{NUM_CAT, OOV_ID};

use crate::artifacts::{ArtifactError, ArtifactsWriter};
use crate::parse::{Cat, Row};
use crate::prepare::PrepareError;
use crate::vocab::{ColumnCounts, Counts, Prefetch, Ranked, SortedCounts, Value, assign_ranks, pack, text_cmp};
use rayon::slice::ParallelSliceMut;

/// Bytes of a counting table that may always be held, per column: below
/// this a table is never spilled for the others' sake.
pub(crate) const MIN_TABLE_BYTES: usize = 4 << 10;

/// The spill files of a run, removed when it is dropped.
#[derive(Debug)]
pub(crate) struct SpillFiles {
    dir: PathBuf,
    seq: AtomicUsize,
    paths: Mutex<Vec<PathBuf>>,
}

impl SpillFiles {
    pub(crate) fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf(), seq: AtomicUsize::new(0), paths: Mutex::new(Vec::new()) }
    }

    /// A new spill file's path (registered for removal).
    fn next(&self, what: &str) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let p = self.dir.join(format!(".spill-{}-{what}-{n}.tmp", std::process::id()));
        self.paths.lock().expect("no panics while held").push(p.clone());
        p
    }

    fn create(&self, what: &str) -> Result<(PathBuf, BufWriter<File>), PrepareError> {
        let path = self.next(what);
        let f = File::create(&path).map_err(|source| PrepareError::Output { path: path.clone(), source })?;
        Ok((path, BufWriter::with_capacity(1 << 16, f)))
    }

    /// Removes the run files of a column once merged.
    fn remove(&self, files: &[PathBuf]) {
        for f in files {
            let _ = std::fs::remove_file(f);
        }
        self.paths.lock().expect("no panics while held").retain(|p| !files.contains(p));
    }
}

impl Drop for SpillFiles {
    fn drop(&mut self) {
        for p in self.paths.get_mut().map(std::mem::take).unwrap_or_default() {
            let _ = std::fs::remove_file(p);
        }
    }
}

struct ColumnState {
    counts: ColumnCounts,
    runs: Vec<PathBuf>,
}

/// The counting tables of a train-mode run, one per column, shared by the
/// workers and held within a byte budget.
pub(crate) struct CountSink<'a> {
    columns: Vec<Mutex<ColumnState>>,
    sizes: Vec<AtomicUsize>,
    used: AtomicUsize,
    budget: usize,
    files: &'a SpillFiles,
    spills: AtomicUsize,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PrepareError + '_ {
    move |source| PrepareError::Output { path: path.to_path_buf(), source }
}

impl<'a> CountSink<'a> {
    /// Tables holding at most `budget` bytes (`usize::MAX`: no limit).
    pub(crate) fn new(budget: usize, files: &'a SpillFiles) -> Self {
        let columns: Vec<_> = (0..NUM_CAT)
            .map(|_| Mutex::new(ColumnState { counts: ColumnCounts::default(), runs: Vec::new() }))
            .collect();
        let sizes: Vec<_> = (0..NUM_CAT).map(|_| AtomicUsize::new(ColumnCounts::default().hex_bytes())).collect();
        let used = sizes.iter().map(|s| s.load(Ordering::Relaxed)).sum();
        Self { columns, sizes, used: AtomicUsize::new(used), budget, files, spills: AtomicUsize::new(0) }
    }

    fn lock(&self, c: usize) -> MutexGuard<'_, ColumnState> {
        self.columns[c].lock().expect("no panics while held")
    }

    /// Adds a batch of hex keys per column and empties the batch. Columns
    /// are taken from `start` on, free locks first.
    pub(crate) fn add(&self, keys: &mut [Vec<u32>], start: usize) -> Result<(), PrepareError> {
        let mut pending: Vec<usize> = (0..NUM_CAT).map(|i| (start + i) % NUM_CAT).collect();
        pending.retain(|&c| !keys[c].is_empty());
        let mut blocked = Vec::new();
        for c in pending {
            match self.columns[c].try_lock() {
                Ok(mut g) => self.insert(c, &mut g, &mut keys[c])?,
                Err(std::sync::TryLockError::WouldBlock) => blocked.push(c),
                Err(std::sync::TryLockError::Poisoned(_)) => panic!("a counting thread panicked"),
            }
        }
        for c in blocked {
            let mut g = self.lock(c);
            self.insert(c, &mut g, &mut keys[c])?;
        }
        Ok(())
    }

    fn insert(&self, c: usize, st: &mut ColumnState, keys: &mut Vec<u32>) -> Result<(), PrepareError> {
        let ColumnState { counts, runs } = st;
        counts.add_hex_batch_with(keys, |counts| self.make_room(c, counts, runs))?;
        keys.clear();
        Ok(())
    }

    /// Called when column `c`'s table is about to grow: reserves the bytes,
    /// or spills the largest table (when it is larger than this one and free)
    /// or this one.
    fn make_room(&self, c: usize, counts: &mut ColumnCounts, runs: &mut Vec<PathBuf>) -> Result<(), PrepareError> {
        let delta = counts.hex_grown_bytes() - counts.hex_bytes();
        loop {
            let used = self.used.load(Ordering::Relaxed);
            if used.saturating_add(delta) <= self.budget {
                if self.used.compare_exchange(used, used + delta, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                    self.sizes[c].fetch_add(delta, Ordering::Relaxed);
                    return Ok(());
                }
                continue;
            }
            let own = self.sizes[c].load(Ordering::Relaxed);
            let victim = (0..NUM_CAT)
                .filter(|&d| d != c)
                .max_by_key(|&d| self.sizes[d].load(Ordering::Relaxed))
                .expect("26 columns");
            if self.sizes[victim].load(Ordering::Relaxed) > own.max(MIN_TABLE_BYTES)
                && let Ok(mut g) = self.columns[victim].try_lock()
            {
                let ColumnState { counts, runs } = &mut *g;
                self.spill(victim, counts, runs)?;
                continue;
            }
            return self.spill(c, counts, runs);
        }
    }

    /// Writes column `c`'s counts as a run and empties its table.
    fn spill(&self, c: usize, counts: &mut ColumnCounts, runs: &mut Vec<PathBuf>) -> Result<(), PrepareError> {
        let before = counts.hex_bytes();
        let sorted = counts.take_sorted();
        let after = counts.hex_bytes();
        self.sizes[c].store(after, Ordering::Relaxed);
        self.used.fetch_sub(before - after, Ordering::Relaxed);
        let (path, mut w) = self.files.create(&format!("c{}", c + 1))?;
        write_run(&sorted, &mut w).map_err(io_err(&path))?;
        drop(sorted);
        w.into_inner().map_err(|e| io_err(&path)(e.into_error()))?;
        runs.push(path);
        self.spills.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Adds a worker's locally counted values (missing and non-hex).
    pub(crate) fn merge_local(&self, local: Counts) {
        for (c, col) in local.columns.iter().enumerate() {
            self.lock(c).counts.merge(col);
        }
    }

    /// Runs written so far.
    pub(crate) fn spills(&self) -> usize {
        self.spills.load(Ordering::Relaxed)
    }

    /// The counts, when nothing spilled.
    pub(crate) fn into_counts(self, rows: u64) -> Counts {
        assert_eq!(self.spills(), 0, "counts that spilled are merged by finish_spilled");
        let columns = self.columns.into_iter().map(|m| m.into_inner().expect("no panics while held").counts).collect();
        Counts { columns, rows }
    }

    /// After a run that spilled: merges each column's runs and table, ranks
    /// it, writes its CSV rows into `artifacts` and its `value → rank` pairs
    /// into a spill file. Returns the vocabulary to transform with.
    pub(crate) fn finish_spilled(
        self,
        min_count: u64,
        artifacts: &mut ArtifactsWriter<'_>,
    ) -> Result<SortedVocab, PrepareError> {
        let (vocab_path, mut vw) = self.files.create("vocab")?;
        let mut columns = Vec::with_capacity(NUM_CAT);
        let mut offset = 0u64;
        for (c, m) in self.columns.into_iter().enumerate() {
            let ColumnState { mut counts, runs } = m.into_inner().expect("no panics while held");
            let last = counts.take_sorted();
            drop(counts);
            let col = rank_merged(c, &runs, &last, min_count, artifacts, &mut vw, &vocab_path)?;
            self.files.remove(&runs);
            let pairs = col.hex_len as u64;
            columns.push(SortedColumn { offset, ..col });
            offset += pairs * 8;
        }
        vw.into_inner().map_err(|e| io_err(&vocab_path)(e.into_error()))?;
        let map = if offset > 0 { Some(MappedFile::open(&vocab_path).map_err(PrepareError::Commit)?) } else { None };
        Ok(SortedVocab { map, columns })
    }
}

/// Writes a run: per value a tag (0 missing, 1 hex, 2 other), the value
/// (hex: 4 bytes little-endian; other: its length as 4 bytes, then its
/// bytes), and its count (8 bytes), in text order.
fn write_run(sorted: &SortedCounts, w: &mut impl Write) -> std::io::Result<()> {
    sorted.for_each(|cat, n| {
        match cat {
            Cat::Missing => w.write_all(&[0])?,
            Cat::Hex(k) => {
                w.write_all(&[1])?;
                w.write_all(&k.to_le_bytes())?;
            }
            Cat::Other(b) => {
                w.write_all(&[2])?;
                w.write_all(&(b.len() as u32).to_le_bytes())?;
                w.write_all(b)?;
            }
        }
        w.write_all(&n.to_le_bytes())
    })
}

/// Reads a run back, one value at a time.
struct RunReader {
    r: BufReader<File>,
    path: PathBuf,
    head: Option<(Value, u64)>,
}

impl RunReader {
    fn open(path: &Path) -> Result<Self, PrepareError> {
        let f = File::open(path).map_err(io_err(path))?;
        let mut r = Self { r: BufReader::with_capacity(1 << 14, f), path: path.to_path_buf(), head: None };
        r.advance()?;
        Ok(r)
    }

    fn advance(&mut self) -> Result<(), PrepareError> {
        let mut tag = [0u8];
        let err = io_err(&self.path);
        match self.r.read(&mut tag) {
            Ok(0) => {
                self.head = None;
                return Ok(());
            }
            Ok(_) => {}
            Err(e) => return Err(err(e)),
        }
        let mut b4 = [0u8; 4];
        let mut b8 = [0u8; 8];
        let value = match tag[0] {
            0 => Value::Missing,
            1 => {
                self.r.read_exact(&mut b4).map_err(io_err(&self.path))?;
                Value::Hex(u32::from_le_bytes(b4))
            }
            _ => {
                self.r.read_exact(&mut b4).map_err(io_err(&self.path))?;
                let mut text = vec![0u8; u32::from_le_bytes(b4) as usize];
                self.r.read_exact(&mut text).map_err(io_err(&self.path))?;
                Value::Other(text.into())
            }
        };
        self.r.read_exact(&mut b8).map_err(io_err(&self.path))?;
        self.head = Some((value, u64::from_le_bytes(b8)));
        Ok(())
    }
}

/// One column of a [`SortedVocab`].
#[derive(Debug)]
struct SortedColumn {
    /// Byte offset of its `(key, rank)` pairs in the mapped file.
    offset: u64,
    hex_len: usize,
    missing: u32,
    other: HashMap<Box<[u8]>, u32>,
    size: u64,
    /// Bucket index of the pairs: keys whose top bits (`key >> shift`) are
    /// `b` are at positions `index[b]..index[b + 1]`, about 16 a bucket.
    index: Vec<u32>,
    shift: u32,
}

/// Merges column `c`'s runs and last table, ranks the values, writes the
/// CSV rows and the sorted `(key, rank)` pairs.
fn rank_merged(
    c: usize,
    runs: &[PathBuf],
    last: &SortedCounts,
    min_count: u64,
    artifacts: &mut ArtifactsWriter<'_>,
    vw: &mut impl Write,
    vocab_path: &Path,
) -> Result<SortedColumn, PrepareError> {
    let min = min_count.max(1);
    let mut readers = runs.iter().map(|p| RunReader::open(p)).collect::<Result<Vec<_>, _>>()?;
    let mut ranked: Vec<u64> = Vec::new();
    let mut big = HashMap::new();
    let mut specials: Vec<(Value, u64)> = Vec::new();
    let mut keep = |value: Value, n: u64| {
        if n < min {
            return;
        }
        match value {
            Value::Hex(k) => ranked.push(pack(k, n, &mut big)),
            other => specials.push((other, n)),
        }
    };
    // The last table is one more sorted source; merge all by text order.
    let mut last_iter = last.iter().peekable();
    loop {
        let mut smallest: Option<Value> = last_iter.peek().map(|(v, _)| Value::from(*v));
        for r in &readers {
            if let Some((v, _)) = &r.head
                && smallest.as_ref().is_none_or(|s| text_cmp(v.as_cat(), s.as_cat()).is_lt())
            {
                smallest = Some(v.clone());
            }
        }
        let Some(value) = smallest else { break };
        let mut n = 0u64;
        if let Some((_, k)) = last_iter.next_if(|(v, _)| *v == value.as_cat()) {
            n += k;
        }
        for r in &mut readers {
            if let Some((v, k)) = &r.head
                && *v == value
            {
                n += k;
                r.advance()?;
            }
        }
        keep(value, n);
    }
    drop(readers);
    let mut col = SortedColumn {
        offset: 0,
        hex_len: ranked.len(),
        missing: 0,
        other: HashMap::new(),
        size: 0,
        index: Vec::new(),
        shift: 32,
    };
    let mut state = RankState { artifacts, error: None, special_ranks: Vec::new() };
    assign_ranks(&mut ranked, &big, specials, &mut state, |st, entry| {
        if st.error.is_some() {
            return;
        }
        let r = match entry {
            Ranked::Hex { key, count, .. } => st.artifacts.row(c, Cat::Hex(key), count),
            Ranked::Special { value, count, rank } => {
                let r = st.artifacts.row(c, value.as_cat(), count);
                st.special_ranks.push(rank);
                match value {
                    Value::Missing => col.missing = rank,
                    Value::Other(b) => {
                        col.other.insert(b, rank);
                    }
                    Value::Hex(_) => unreachable!("hex values are ranked apart"),
                }
                r
            }
        };
        st.error = r.err();
    });
    if let Some(e) = state.error {
        return Err(e.into());
    }
    // The hex entries' ranks: their place, plus the specials ranked before.
    let specials = state.special_ranks;
    col.size = (ranked.len() + specials.len()) as u64;
    let mut before = 0usize;
    for (i, p) in ranked.iter_mut().enumerate() {
        while before < specials.len() && specials[before] as usize <= i + 1 + before {
            before += 1;
        }
        *p = (u64::from(*p as u32) << 32) | (i + 1 + before) as u64;
    }
    write_pairs(&mut ranked, &mut col, vw).map_err(io_err(vocab_path))?;
    Ok(col)
}

/// Sorts `(key << 32) | rank` words by key, indexes them into `col`, and
/// writes them as little-endian `(key, rank)` pairs. Returns the first key
/// listed twice, if any (nothing is written then).
fn write_pairs(pairs: &mut [u64], col: &mut SortedColumn, w: &mut impl Write) -> std::io::Result<Option<u32>> {
    pairs.par_sort_unstable();
    if let Some(d) = pairs.windows(2).find(|w| w[0] >> 32 == w[1] >> 32) {
        return Ok(Some((d[0] >> 32) as u32));
    }
    col.hex_len = pairs.len();
    let bits = (pairs.len() / 16).max(1).ilog2().min(24);
    col.shift = 32 - bits;
    col.index = Vec::with_capacity((1 << bits) + 1);
    for (i, p) in pairs.iter().enumerate() {
        let bucket = ((p >> 32) >> col.shift) as usize;
        while col.index.len() <= bucket {
            col.index.push(i as u32);
        }
    }
    while col.index.len() <= 1 << bits {
        col.index.push(pairs.len() as u32);
    }
    for p in pairs.iter() {
        let mut pair = [0u8; 8];
        pair[..4].copy_from_slice(&((p >> 32) as u32).to_le_bytes());
        pair[4..].copy_from_slice(&(*p as u32).to_le_bytes());
        w.write_all(&pair)?;
    }
    Ok(None)
}

impl SortedColumn {
    fn empty() -> Self {
        Self { offset: 0, hex_len: 0, missing: 0, other: HashMap::new(), size: 0, index: vec![0, 0], shift: 32 }
    }
}

/// Loads the artifacts of `dir` as a [`SortedVocab`] (checked as
/// `artifacts::load` checks them), holding in memory only one column's
/// `(key, rank)` words at a time: for evaluate and predict modes when the
/// vocabulary's tables would not fit the memory limit. Returns it and the
/// artifacts' manifest CRC32C.
pub(crate) fn sorted_vocab_from_artifacts(dir: &Path, files: &SpillFiles) -> Result<(SortedVocab, u32), PrepareError> {
    let (vocab_path, mut vw) = files.create("vocab")?;
    let mut columns: Vec<SortedColumn> = Vec::with_capacity(NUM_CAT);
    let mut pairs: Vec<u64> = Vec::new();
    let mut col = SortedColumn::empty();
    let mut offset = 0u64;
    let mut finish =
        |columns: &mut Vec<SortedColumn>, pairs: &mut Vec<u64>, mut col: SortedColumn, vw: &mut BufWriter<File>| {
            let c = columns.len();
            let dup = write_pairs(pairs, &mut col, vw)
                .map_err(|source| ArtifactError::Io { path: vocab_path.clone(), source })?;
            if let Some(key) = dup {
                return Err(ArtifactError::Inconsistent {
                    path: dir.join(crate::artifacts::COUNTS_FILE),
                    what: format!(
                        "{} lists {} twice",
                        sparky_prepared::schema::CAT_FEATURES[c],
                        crate::parse::hex8(key).escape_ascii()
                    ),
                });
            }
            col.offset = offset;
            offset += pairs.len() as u64 * 8;
            pairs.clear();
            columns.push(col);
            Ok(())
        };
    let checked = crate::artifacts::read_entries(dir, |c, line, value, _count| {
        while columns.len() < c {
            let done = std::mem::replace(&mut col, SortedColumn::empty());
            finish(&mut columns, &mut pairs, done, &mut vw)?;
        }
        col.size += 1;
        let rank = col.size as u32;
        let repeated = match value {
            Value::Hex(k) => {
                pairs.push((u64::from(k) << 32) | u64::from(rank));
                false
            }
            Value::Missing => std::mem::replace(&mut col.missing, rank) != 0,
            Value::Other(b) => col.other.insert(b, rank).is_some(),
        };
        if repeated {
            return Err(ArtifactError::Csv {
                path: dir.join(crate::artifacts::COUNTS_FILE),
                line,
                what: format!("{} at rank {rank} repeats an earlier value", sparky_prepared::schema::CAT_FEATURES[c]),
            });
        }
        Ok(())
    })?;
    while columns.len() < NUM_CAT {
        let done = std::mem::replace(&mut col, SortedColumn::empty());
        finish(&mut columns, &mut pairs, done, &mut vw)?;
    }
    vw.into_inner().map_err(|e| io_err(&vocab_path)(e.into_error()))?;
    let map = if offset > 0 { Some(MappedFile::open(&vocab_path).map_err(PrepareError::Commit)?) } else { None };
    Ok((SortedVocab { map, columns }, checked.manifest_crc32c))
}

struct RankState<'w, 'a> {
    artifacts: &'w mut ArtifactsWriter<'a>,
    error: Option<ArtifactError>,
    special_ranks: Vec<u32>,
}

impl Prefetch for RankState<'_, '_> {
    fn prefetch(&self, _: u32) {}
}

/// The vocabulary of a run that spilled: per column, `(key, rank)` pairs
/// sorted by key in a mapped spill file, searched by bisection; the missing
/// and other values in memory.
#[derive(Debug)]
pub(crate) struct SortedVocab {
    map: Option<MappedFile>,
    columns: Vec<SortedColumn>,
}

impl SortedVocab {
    fn id(&self, c: usize, cat: Cat<'_>) -> i64 {
        let col = &self.columns[c];
        let id = match cat {
            Cat::Missing => col.missing,
            Cat::Other(b) => col.other.get(b).copied().unwrap_or(0),
            Cat::Hex(k) => {
                let Some(map) = &self.map else { return OOV_ID };
                let start = col.offset as usize;
                let pairs = &map.bytes()[start..start + col.hex_len * 8];
                let bucket = (u64::from(k) >> col.shift) as usize;
                let (mut lo, mut hi) = (col.index[bucket] as usize, col.index[bucket + 1] as usize);
                let mut found = 0;
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    let at = &pairs[mid * 8..mid * 8 + 8];
                    let key = u32::from_le_bytes(at[..4].try_into().expect("4 bytes"));
                    match key.cmp(&k) {
                        std::cmp::Ordering::Less => lo = mid + 1,
                        std::cmp::Ordering::Greater => hi = mid,
                        std::cmp::Ordering::Equal => {
                            found = u32::from_le_bytes(at[4..].try_into().expect("4 bytes"));
                            break;
                        }
                    }
                }
                found
            }
        };
        if id == 0 { OOV_ID } else { i64::from(id) }
    }

    /// Vocabulary size per column.
    pub(crate) fn sizes(&self) -> [u64; NUM_CAT] {
        std::array::from_fn(|c| self.columns[c].size)
    }
}

/// Looks up the vocabulary ids of a row (an in-memory [`Vocabulary`] or a
/// spilled run's [`SortedVocab`]).
pub(crate) trait Ids: Sync {
    fn ids(&self, row: &Row<'_>, ids: &mut [i64; NUM_CAT]);
}

impl Ids for crate::vocab::Vocabulary {
    #[inline]
    fn ids(&self, row: &Row<'_>, ids: &mut [i64; NUM_CAT]) {
        crate::vocab::Vocabulary::ids(self, row, ids);
    }
}

impl Ids for SortedVocab {
    fn ids(&self, row: &Row<'_>, ids: &mut [i64; NUM_CAT]) {
        for (c, (id, &cat)) in ids.iter_mut().zip(&row.cats).enumerate() {
            *id = self.id(c, cat);
        }
    }
}
