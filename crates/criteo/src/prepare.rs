//! The prepare job: Criteo TSV in, ranked TFRecord (or Parquet) parts out.
//!
//! 1. Inputs are mapped into memory (standard input and `.gz` files are first
//!    copied to a hidden spool file in the output folder) and split into
//!    line-aligned chunks whose lines are counted in parallel, so every line
//!    has a known global number before any is parsed.
//! 2. Train mode counts every categorical value over all chunks (one table per
//!    thread, merged at the end), ranks the vocabularies and writes the
//!    artifacts. Evaluate and predict load them.
//! 3. Worker threads turn chunks into framed TFRecords (or column buffers)
//!    while the calling thread writes the results in input order into the
//!    parts. Part `p` of `P` holds input lines `[p*L/P, (p+1)*L/P)`, so the
//!    output depends on the input and the flags, never on the thread count.
//! 4. Every file is written under a temporary name and renamed when complete;
//!    `_prepare.json` and then `_SUCCESS` come last.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, mpsc};
use std::time::Instant;

pub use sparky_io::Progress;
pub use sparky_io::SUCCESS_FILE;
use sparky_io::{AtomicFile, DirLock, OutputDir, Unit};
pub use sparky_prepared::folder::{
    ArtifactRef, PREPARED_FILE, PREPARED_FORMAT, PREPARED_VERSION, PartCompression, PartFormat, PartInfo,
    PreparedManifest, REJECTS_FILE,
};
use sparky_prepared::schema::{Mode, NUM_CAT, NUM_INT, ROW_VALUES};
use sparky_tfrecord::Compression;
use sparky_tfrecord::example::Int64ExampleEncoder;

use crate::artifacts::{self, ArtifactError};
use crate::input::{self, Chunk, InputError, Mapped, Source};
use crate::parse::Cat;
use crate::parse::{Row, RowError, parse_line};
use crate::spill::{CountSink, Ids, MIN_TABLE_BYTES, SpillFiles};
use crate::vocab::{Counts, Vocabulary};

/// What to do with a malformed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadLines {
    /// Stop with an error naming the file, line and column.
    Error,
    /// Skip it, count it, and report it in `OUT/_rejects`.
    Skip,
}

/// A validated job description; see [`PrepareConfig::new`].
#[derive(Debug, Clone)]
pub struct PrepareConfig {
    /// Input sources, in order.
    pub inputs: Vec<Source>,
    /// The output folder.
    pub out_dir: PathBuf,
    /// Train, evaluate or predict.
    pub mode: Mode,
    /// Where the artifacts are written (train) or read (evaluate, predict).
    pub model_dir: PathBuf,
    /// Number of part files.
    pub num_partitions: usize,
    /// Output compression.
    pub compression: PartCompression,
    /// Output container.
    pub format: PartFormat,
    /// Values seen fewer times stay out of the vocabulary (train mode).
    pub min_count: u64,
    /// What to do with malformed lines.
    pub bad_lines: BadLines,
    /// Replace existing outputs and artifacts.
    pub overwrite: bool,
    /// Worker threads.
    pub threads: usize,
    /// Input bytes per work unit.
    pub chunk_bytes: usize,
    /// Index of the first part file (for sharded runs).
    pub first_part: usize,
    /// Global number of the first input line (the `id` of predict mode).
    pub first_line: u64,
    /// Flush every part to disk (fsync) before it is renamed into place, so
    /// that `_SUCCESS` also means "survives a power cut". Without it a killed
    /// process still never leaves a complete-looking partial file; only an
    /// operating-system crash could.
    pub sync: bool,
    /// Train mode only: load the artifacts from `model_dir` instead of
    /// counting (the transform stage of a sharded run, after a merge).
    pub load_artifacts: bool,
    /// Bytes the counting tables of train mode may hold; past it, counts
    /// spill to disk (see [`default_memory_limit`] for the default). Fixed
    /// per-thread buffers and the mapped input come on top.
    pub memory_limit: u64,
}

/// The phases a prepare run reports in its [`Progress`].
pub mod phase {
    /// Mapping, spooling and splitting the input.
    pub const READING: &str = "reading input";
    /// Counting categorical values (train mode).
    pub const COUNTING: &str = "counting values";
    /// Writing the parts.
    pub const WRITING: &str = "writing parts";
    /// Finished.
    pub const DONE: &str = "done";
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct PrepareSummary {
    /// The mode.
    pub mode: Mode,
    /// Input lines.
    pub lines: u64,
    /// Rows written.
    pub rows: u64,
    /// Lines rejected, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Vocabulary sizes, C1..C26.
    pub vocabulary_sizes: [u64; NUM_CAT],
    /// The parts written.
    pub parts: Vec<PartInfo>,
    /// Input bytes (decompressed).
    pub input_bytes: u64,
    /// Seconds spent counting (train mode).
    pub count_seconds: f64,
    /// Counting runs spilled to disk to stay within the memory limit (train mode).
    pub spills: usize,
    /// Seconds spent writing parts.
    pub write_seconds: f64,
    /// Seconds in all.
    pub total_seconds: f64,
}

impl PrepareSummary {
    /// Rejected lines in all.
    #[must_use]
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Bytes written over all parts.
    #[must_use]
    pub fn output_bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    /// The inputs could not be found or read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The artifacts could not be written or loaded.
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
    /// A malformed line, with `--bad-lines error`.
    #[error("{input}:{line}: {error} (use --bad-lines skip to skip such lines)")]
    BadLine {
        /// The input's name.
        input: String,
        /// 1-based line within it.
        line: u64,
        /// What is wrong.
        error: RowError,
    },
    /// The output folder holds files and `--overwrite` was not given.
    #[error("{} is not empty; pass --overwrite to replace its contents", .0.display())]
    OutputExists(PathBuf),
    /// Writing an output failed.
    #[error("{}: {source}", path.display())]
    Output {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Creating, locking or committing an output failed.
    #[error(transparent)]
    Commit(#[from] sparky_io::Error),
    /// Writing Parquet failed.
    #[error("{}: {source}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// An invalid setting.
    #[error("{0}")]
    Config(String),
    /// `--memory-limit` below what counting needs to make progress.
    #[error(
        "--memory-limit {limit} bytes is too small: counting needs at least {needed} bytes ({per_thread} for each \
         of the {threads} threads' batches of parsed values, and room for 26 small tables)"
    )]
    MemoryLimit {
        /// The limit given.
        limit: u64,
        /// The least that works.
        needed: u64,
        /// Worker threads.
        threads: usize,
        /// Bytes a thread's batch takes.
        per_thread: u64,
    },
}

/// The default `memory_limit`: half of the machine's physical memory (4 GiB
/// when it cannot be read).
#[must_use]
pub fn default_memory_limit() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    total.map_or(4 << 30, |t| t / 2)
}

impl PrepareConfig {
    /// A job with the defaults: one part per thread-independent default of 8,
    /// no compression, TFRecord, minimum count 1, stop at bad lines, 4 MiB
    /// chunks, as many threads as the machine has.
    #[must_use]
    pub fn new(inputs: Vec<Source>, out_dir: PathBuf, mode: Mode, model_dir: PathBuf) -> Self {
        Self {
            inputs,
            out_dir,
            mode,
            model_dir,
            num_partitions: 8,
            compression: PartCompression::None,
            format: PartFormat::Tfrecord,
            min_count: 1,
            bad_lines: BadLines::Error,
            overwrite: false,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            chunk_bytes: 4 << 20,
            first_part: 0,
            first_line: 0,
            sync: true,
            load_artifacts: false,
            memory_limit: default_memory_limit(),
        }
    }

    fn validate(&self) -> Result<(), PrepareError> {
        if self.inputs.is_empty() {
            return Err(PrepareError::Config("no input".into()));
        }
        if self.num_partitions == 0 || self.num_partitions > 100_000 {
            return Err(PrepareError::Config("--num-partitions must be between 1 and 100000".into()));
        }
        if self.threads == 0 {
            return Err(PrepareError::Config("--threads must be at least 1".into()));
        }
        if self.min_count == 0 {
            return Err(PrepareError::Config("--min-count must be at least 1".into()));
        }
        if self.mode == Mode::Train && !self.load_artifacts {
            self.count_budget()?;
        }
        Ok(())
    }

    /// Bytes a worker's batch of parsed keys takes: 26 keys of 4 bytes for
    /// each of [`BATCH_LINES`] lines.
    fn batch_bytes(&self) -> u64 {
        (BATCH_LINES * NUM_CAT * 4) as u64
    }

    /// The counting tables' budget: the memory limit less the workers'
    /// batches.
    ///
    /// # Errors
    /// [`PrepareError::MemoryLimit`] when that leaves too little.
    pub fn count_budget(&self) -> Result<usize, PrepareError> {
        let per_thread = self.batch_bytes();
        let reserved = per_thread * self.threads as u64 + (64 << 10);
        let needed = reserved + (NUM_CAT * MIN_TABLE_BYTES) as u64;
        if self.memory_limit < needed {
            return Err(PrepareError::MemoryLimit {
                limit: self.memory_limit,
                needed,
                threads: self.threads,
                per_thread,
            });
        }
        Ok(usize::try_from(self.memory_limit - reserved).unwrap_or(usize::MAX))
    }

    /// The file name of part `p`.
    #[must_use]
    pub fn part_name(&self, p: usize) -> String {
        match (self.format, self.compression) {
            (PartFormat::Tfrecord, PartCompression::None) => format!("part-r-{p:05}.tfrecord"),
            (PartFormat::Tfrecord, PartCompression::Gzip) => {
                format!("part-r-{p:05}.tfrecord.gz")
            }
            (PartFormat::Parquet, _) => format!("part-r-{p:05}.parquet"),
        }
    }
}

/// The values of a row in Example order: label or id, integers, vocabulary ids.
#[inline]
fn row_values(row: &Row<'_>, first: i64, vocab: &impl Ids, out: &mut [i64; ROW_VALUES]) {
    out[0] = first;
    out[1..=NUM_INT].copy_from_slice(&row.ints);
    let ids: &mut [i64; NUM_CAT] = (&mut out[1 + NUM_INT..]).try_into().expect("26 slots");
    vocab.ids(row, ids);
}

/// Calls `f(line_number_in_input, global_line, bytes)` for each line of a chunk.
#[inline]
fn for_each_line(chunk: &Chunk, bytes: &[u8], mut f: impl FnMut(u64, u64, &[u8]) -> bool) {
    let data = &bytes[chunk.start..chunk.end];
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', data).chain(std::iter::once(data.len()));
    for (n, end) in (0u64..).zip(ends) {
        if end == data.len() && start == data.len() {
            break; // the chunk ended with '\n'
        }
        if !f(chunk.first_line + n, chunk.global_line + n, &data[start..end]) {
            return;
        }
        start = end + 1;
    }
}

/// A rejected line.
#[derive(Debug, Clone)]
struct Reject {
    input: usize,
    line: u64,
    error: RowError,
}

/// Runs `work` over every chunk on `threads` workers, handing results to
/// `consume` in chunk order on the calling thread. At most `window` chunks
/// are in flight. Returns each worker's final state.
fn run_chunks<S: Send, T: Send, E>(
    chunks: &[Chunk],
    threads: usize,
    init: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &Chunk) -> T + Sync,
    mut consume: impl FnMut(usize, T) -> Result<(), E>,
) -> Result<Vec<S>, E> {
    let window = (threads * 3).max(2);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let consumed = Mutex::new(0usize);
    let room = Condvar::new();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, T)>();
        let mut handles = Vec::with_capacity(threads);
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, stop, consumed, room, init, work) = (&next, &stop, &consumed, &room, &init, &work);
            handles.push(scope.spawn(move || {
                let mut state = init();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= chunks.len() {
                        break;
                    }
                    {
                        let mut c = consumed.lock().expect("no panics while held");
                        while i >= *c + window && !stop.load(Ordering::Relaxed) {
                            c = room.wait(c).expect("no panics while held");
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let out = work(&mut state, &chunks[i]);
                    if tx.send((i, out)).is_err() {
                        break;
                    }
                }
                state
            }));
        }
        drop(tx);
        let mut pending: BTreeMap<usize, T> = BTreeMap::new();
        let mut expect = 0usize;
        let mut result = Ok(());
        for (i, out) in rx.iter() {
            pending.insert(i, out);
            while let Some(out) = pending.remove(&expect) {
                if result.is_ok() {
                    result = consume(expect, out);
                    if result.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                expect += 1;
                *consumed.lock().expect("no panics while held") = expect;
                room.notify_all();
            }
            if result.is_err() {
                break;
            }
        }
        // Wake and drain the workers (they stop at the flag).
        stop.store(true, Ordering::Relaxed);
        room.notify_all();
        drop(rx);
        let states: Vec<S> = handles.into_iter().map(|h| h.join().expect("worker panicked")).collect();
        result.map(|()| states)
    })
}

/// The first line (relative to the run) of part `p`: parts split `lines`
/// lines as `[p*L/P, (p+1)*L/P)`.
#[inline]
fn part_start(p: usize, lines: u64, parts: usize) -> u64 {
    (u128::from(lines) * p as u128 / parts as u128) as u64
}

/// The files of a prepared folder a run owns: its parts, `_prepare.json`
/// and `_rejects` (see [`OutputDir`]).
fn owned(name: &str) -> bool {
    name.starts_with("part-") || name == PREPARED_FILE || name == REJECTS_FILE
}

/// Lines a counting worker parses before adding their values to the tables.
const BATCH_LINES: usize = 4096;

/// One worker's batch of parsed values, added to the shared tables once per
/// chunk: hex values per column, the rare others counted locally.
struct CountBatch {
    keys: Vec<Vec<u32>>,
    local: Counts,
}

impl CountBatch {
    fn new() -> Self {
        Self { keys: vec![Vec::new(); NUM_CAT], local: Counts::default() }
    }
}

/// Counts the categorical values of every good line into one table per
/// column, shared by the workers: each worker parses a chunk into a batch of
/// keys per column, then adds each column's batch under that column's lock
/// (starting at a different column per chunk, taking a free lock first), so
/// the tables exist once however many threads count.
fn count(
    cfg: &PrepareConfig,
    inputs: &[Mapped],
    chunks: &[Chunk],
    progress: &Progress,
    sink: &CountSink,
) -> Result<u64, PrepareError> {
    let mode = cfg.mode;
    let skip = cfg.bad_lines == BadLines::Skip;
    let states = run_chunks(
        chunks,
        cfg.threads,
        CountBatch::new,
        |batch: &mut CountBatch, chunk| {
            let mut first_error = None;
            let mut sink_error = None;
            let mut rows = 0u64;
            let mut batched = 0;
            for_each_line(chunk, inputs[chunk.input].bytes(), |line, _, bytes| match parse_line(bytes, mode) {
                Ok(row) => {
                    for (c, &cat) in row.cats.iter().enumerate() {
                        match cat {
                            Cat::Hex(k) => batch.keys[c].push(k),
                            other => batch.local.columns[c].add(other),
                        }
                    }
                    rows += 1;
                    batched += 1;
                    if batched == BATCH_LINES {
                        batched = 0;
                        if let Err(e) = sink.add(&mut batch.keys, line as usize) {
                            sink_error = Some(e);
                            return false;
                        }
                    }
                    true
                }
                Err(error) if !skip => {
                    first_error = Some(Reject { input: chunk.input, line, error });
                    false
                }
                Err(_) => true,
            });
            batch.local.rows += rows;
            progress.add((chunk.end - chunk.start) as u64, rows);
            inputs[chunk.input].release(chunk.start..chunk.end);
            if let Some(e) = sink_error {
                return Err(e);
            }
            if first_error.is_some() {
                return Ok(first_error);
            }
            sink.add(&mut batch.keys, chunk.global_line as usize).map(|()| None)
        },
        |_, r: Result<Option<Reject>, PrepareError>| match r? {
            Some(r) => Err(PrepareError::BadLine { input: inputs[r.input].name.clone(), line: r.line, error: r.error }),
            None => Ok(progress.check()?),
        },
    )?;
    let mut rows = 0;
    for s in states {
        rows += s.local.rows;
        sink.merge_local(s.local);
    }
    Ok(rows)
}

/// An open part being written.
enum PartWriter {
    Records(Box<sparky_tfrecord::compression::Encoder<std::io::BufWriter<AtomicFile>>>),
    Parquet(Box<parquet::file::writer::SerializedFileWriter<AtomicFile>>, Vec<Vec<i64>>),
}

/// Rows per Parquet row group: 2^16 rows of 40 INT64 columns, 20 MiB of
/// column buffers a writing thread (the buffers must not grow with the part).
const PARQUET_ROW_GROUP: usize = 1 << 16;

fn parquet_schema(mode: Mode) -> std::sync::Arc<parquet::schema::types::Type> {
    use parquet::basic::{Repetition, Type as Physical};
    use parquet::schema::types::Type;
    let fields = mode
        .feature_names()
        .into_iter()
        .map(|n| {
            std::sync::Arc::new(
                Type::primitive_type_builder(n, Physical::INT64)
                    .with_repetition(Repetition::REQUIRED)
                    .build()
                    .expect("valid column"),
            )
        })
        .collect();
    std::sync::Arc::new(Type::group_type_builder("criteo").with_fields(fields).build().expect("valid schema"))
}

fn write_row_group(
    w: &mut parquet::file::writer::SerializedFileWriter<AtomicFile>,
    columns: &mut [Vec<i64>],
) -> parquet::errors::Result<()> {
    let mut rg = w.next_row_group()?;
    for col in columns.iter_mut() {
        let mut cw = rg.next_column()?.expect("one writer per schema column");
        cw.typed::<parquet::data_type::Int64Type>().write_batch(col, None, None)?;
        cw.close()?;
        col.clear();
    }
    rg.close()?;
    Ok(())
}

impl PartWriter {
    fn open(cfg: &PrepareConfig, path: &Path) -> Result<Self, PrepareError> {
        let file = AtomicFile::create(path)?;
        Ok(match (cfg.format, cfg.compression) {
            (PartFormat::Tfrecord, c) => {
                let codec = match c {
                    PartCompression::None => Compression::None,
                    PartCompression::Gzip => Compression::Gzip,
                };
                PartWriter::Records(Box::new(codec.encoder(std::io::BufWriter::with_capacity(1 << 20, file))))
            }
            (PartFormat::Parquet, c) => {
                use parquet::basic::{Compression, GzipLevel};
                use parquet::file::properties::WriterProperties;
                let codec = match c {
                    PartCompression::None => Compression::UNCOMPRESSED,
                    PartCompression::Gzip => Compression::GZIP(GzipLevel::default()),
                };
                let props = WriterProperties::builder()
                    .set_compression(codec)
                    .set_created_by(format!("sparky criteo-prepare {}", env!("CARGO_PKG_VERSION")))
                    .build();
                let w = parquet::file::writer::SerializedFileWriter::new(file, parquet_schema(cfg.mode), props.into())
                    .map_err(|source| PrepareError::Parquet { path: path.to_path_buf(), source })?;
                PartWriter::Parquet(Box::new(w), vec![Vec::new(); ROW_VALUES])
            }
        })
    }

    fn finish(self, path: &Path, sync: bool) -> Result<(PathBuf, u64), PrepareError> {
        let io = |source| PrepareError::Output { path: path.to_path_buf(), source };
        let file = match self {
            PartWriter::Records(enc) => enc.finish().map_err(io)?.into_inner().map_err(|e| io(e.into_error()))?,
            PartWriter::Parquet(mut w, mut cols) => {
                let pq = |source| PrepareError::Parquet { path: path.to_path_buf(), source };
                if !cols[0].is_empty() {
                    write_row_group(&mut w, &mut cols).map_err(pq)?;
                }
                w.into_inner().map_err(pq)?
            }
        };
        let path = if sync { file.commit()? } else { file.commit_unsynced()? };
        let bytes = std::fs::metadata(&path).map_err(io)?.len();
        Ok((path, bytes))
    }
}

/// Bytes of framed records a part's worker gathers before writing them.
const RECORD_BUFFER: usize = 1 << 20;

/// One past the chunk's last global line.
fn global_end(c: &Chunk) -> u64 {
    c.global_line + c.lines
}

/// What one part's worker produced.
struct PartOut {
    info: PartInfo,
    path: PathBuf,
    rejects: Vec<Reject>,
    rows: u64,
}

/// Writes part `p`: the lines `[part_start(p), part_start(p + 1))`, read from
/// the chunks that overlap them, encoded into a reused buffer and written.
#[allow(clippy::too_many_lines)]
fn write_part<V: Ids>(
    cfg: &PrepareConfig,
    p: usize,
    inputs: &[Mapped],
    chunks: &[Chunk],
    vocab: &V,
    encoder: &Int64ExampleEncoder,
    total_lines: u64,
    progress: &Progress,
    abandon: &AtomicUsize,
) -> Result<Option<PartOut>, PrepareError> {
    let (lo, hi) = (part_start(p, total_lines, cfg.num_partitions), part_start(p + 1, total_lines, cfg.num_partitions));
    let name = cfg.part_name(cfg.first_part + p);
    let path = cfg.out_dir.join(&name);
    let mut writer = PartWriter::open(cfg, &path)?;
    let io = |source| PrepareError::Output { path: path.clone(), source };
    let skip = cfg.bad_lines == BadLines::Skip;
    let mut rejects = Vec::new();
    let mut rows = 0u64;
    let mut values = [0i64; ROW_VALUES];
    let mut buf: Vec<u8> = Vec::new();
    let first = chunks.partition_point(|c| c.global_line + c.lines <= lo);
    for chunk in chunks[first..].iter().take_while(|c| c.global_line < hi) {
        if abandon.load(Ordering::Relaxed) < p {
            return Ok(None); // an earlier part failed: this one will not be used
        }
        progress.check()?;
        let mut error = None;
        let mut write_error = None;
        let mut bytes_done = 0u64;
        for_each_line(chunk, inputs[chunk.input].bytes(), |line, global, text| {
            if global < lo {
                return true;
            }
            if global >= hi {
                return false;
            }
            bytes_done += text.len() as u64 + 1;
            let row = match parse_line(text, cfg.mode) {
                Ok(r) => r,
                Err(error_kind) => {
                    let r = Reject { input: chunk.input, line, error: error_kind };
                    if skip {
                        rejects.push(r);
                        return true;
                    }
                    error = Some(r);
                    return false;
                }
            };
            let first_value = match row.label {
                Some(l) => i64::from(l),
                None => (cfg.first_line + global) as i64,
            };
            row_values(&row, first_value, vocab, &mut values);
            rows += 1;
            match &mut writer {
                PartWriter::Records(w) => {
                    sparky_tfrecord::append_record(&mut buf, |b| encoder.encode(&values, b));
                    if buf.len() >= RECORD_BUFFER {
                        if let Err(e) = w.write_all(&buf) {
                            write_error = Some(e);
                            return false;
                        }
                        buf.clear();
                    }
                }
                PartWriter::Parquet(_, cols) => {
                    for (c, v) in cols.iter_mut().zip(values) {
                        c.push(v);
                    }
                }
            }
            true
        });
        progress.add(bytes_done, 0);
        if let Some(e) = write_error {
            return Err(io(e));
        }
        if global_end(chunk) <= hi {
            // This part is the chunk's last reader.
            inputs[chunk.input].release(chunk.start..chunk.end);
        }
        match &mut writer {
            PartWriter::Records(w) => {
                w.write_all(&buf).map_err(io)?;
                buf.clear();
            }
            PartWriter::Parquet(w, cols) => {
                if cols[0].len() >= PARQUET_ROW_GROUP {
                    write_row_group(w, cols).map_err(|source| PrepareError::Parquet { path: path.clone(), source })?;
                }
            }
        }
        if let Some(r) = error {
            abandon.fetch_min(p, Ordering::Relaxed);
            return Err(PrepareError::BadLine { input: inputs[r.input].name.clone(), line: r.line, error: r.error });
        }
    }
    let (path, bytes) = writer.finish(&path, cfg.sync)?;
    progress.add(0, rows);
    Ok(Some(PartOut { info: PartInfo { file: name, rows, bytes }, path, rejects, rows }))
}

/// Writes the parts: each worker thread takes whole parts, so parts are
/// encoded, compressed and written in parallel.
fn transform<V: Ids>(
    cfg: &PrepareConfig,
    out: &mut OutputDir,
    inputs: &[Mapped],
    chunks: &[Chunk],
    vocab: &V,
    total_lines: u64,
    progress: &Progress,
) -> Result<(Vec<PartInfo>, Vec<Reject>, u64), PrepareError> {
    let encoder = Int64ExampleEncoder::new(&cfg.mode.feature_names());
    let next = AtomicUsize::new(0);
    // The lowest part that failed: later parts are abandoned, earlier ones
    // finish, so the error reported is the first in input order.
    let abandon = AtomicUsize::new(usize::MAX);
    let results: Vec<(usize, Result<Option<PartOut>, PrepareError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cfg.threads.min(cfg.num_partitions))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let p = next.fetch_add(1, Ordering::Relaxed);
                        if p >= cfg.num_partitions || p > abandon.load(Ordering::Relaxed) {
                            break;
                        }
                        let r = write_part(cfg, p, inputs, chunks, vocab, &encoder, total_lines, progress, &abandon);
                        if r.is_err() {
                            abandon.fetch_min(p, Ordering::Relaxed);
                        }
                        mine.push((p, r));
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("worker panicked")).collect()
    });
    let mut by_part: Vec<Option<Result<Option<PartOut>, PrepareError>>> =
        (0..cfg.num_partitions).map(|_| None).collect();
    for (p, r) in results {
        by_part[p] = Some(r);
    }
    let mut parts = Vec::with_capacity(cfg.num_partitions);
    let mut rejects = Vec::new();
    let mut rows = 0;
    for r in by_part {
        match r {
            Some(Ok(Some(part))) => {
                out.committed(part.path);
                parts.push(part.info);
                rejects.extend(part.rejects);
                rows += part.rows;
            }
            Some(Err(e)) => return Err(e),
            Some(Ok(None)) | None => unreachable!("parts are only abandoned after an earlier failure"),
        }
    }
    Ok((parts, rejects, rows))
}

/// Runs the job.
///
/// # Errors
/// See [`PrepareError`]. On error no `_SUCCESS` is written and no part file
/// is left (see [`OutputDir`]).
pub fn run(cfg: &PrepareConfig, progress: &Progress) -> Result<PrepareSummary, PrepareError> {
    let t0 = Instant::now();
    cfg.validate()?;
    // Refuse early, before any work.
    let build = cfg.mode == Mode::Train && !cfg.load_artifacts;
    let model_lock = if build {
        if same_folder(&cfg.model_dir, &cfg.out_dir) {
            return Err(PrepareError::Config(format!(
                "--out and --model are the same folder ({}): the artifacts need a folder of their own",
                cfg.out_dir.display()
            )));
        }
        let lock = DirLock::acquire(&cfg.model_dir).map_err(ArtifactError::from)?;
        if artifacts::exist(&cfg.model_dir) && !cfg.overwrite {
            return Err(ArtifactError::Exists { dir: cfg.model_dir.clone() }.into());
        }
        Some(lock)
    } else {
        None
    };
    // Evaluate and predict: the vocabulary in memory when its tables fit the
    // limit, else a sorted file built after the output folder is opened
    // (checked first all the same).
    let loaded = if build {
        None
    } else {
        let checked = artifacts::read_manifest(&cfg.model_dir)?;
        let values: u64 = checked.manifest.sizes().iter().sum();
        if values.saturating_mul(LOADED_BYTES_PER_VALUE) > cfg.memory_limit {
            artifacts::verify(&cfg.model_dir)?;
            Some(Loaded::Sorted)
        } else {
            Some(Loaded::Memory(Box::new(artifacts::load(&cfg.model_dir)?)))
        }
    };
    let mut out = OutputDir::open(&cfg.out_dir, cfg.overwrite, owned).map_err(|e| match e {
        sparky_io::Error::OutputExists { path } => PrepareError::OutputExists(path),
        other => other.into(),
    })?;
    progress.start(phase::READING, Unit::Bytes, 0);
    let inputs = input::map_all(&cfg.inputs, &cfg.out_dir)?;
    let chunks = input::chunks(&inputs, cfg.chunk_bytes);
    let input_bytes: u64 = inputs.iter().map(|m| m.bytes().len() as u64).sum();
    let total_lines: u64 = chunks.iter().map(|c| c.lines).sum();

    let mut count_seconds = 0.0;
    let mut spills = 0;
    let spill_files = SpillFiles::new(&cfg.out_dir);
    let t;
    let (sizes, manifest_crc, parts, rejects, rows) = match (loaded, &model_lock) {
        (Some(Loaded::Sorted), _) => {
            let (vocab, crc) = crate::spill::sorted_vocab_from_artifacts(&cfg.model_dir, &spill_files)?;
            t = Instant::now();
            progress.start(phase::WRITING, Unit::Bytes, input_bytes);
            let (parts, rejects, rows) = transform(cfg, &mut out, &inputs, &chunks, &vocab, total_lines, progress)?;
            (vocab.sizes(), crc, parts, rejects, rows)
        }
        (Some(Loaded::Memory(mut a)), _) => {
            // The transform needs only the id tables.
            a.vocabulary.shed_entries();
            t = Instant::now();
            progress.start(phase::WRITING, Unit::Bytes, input_bytes);
            let (parts, rejects, rows) =
                transform(cfg, &mut out, &inputs, &chunks, &a.vocabulary, total_lines, progress)?;
            (a.vocabulary.sizes(), a.manifest_crc32c, parts, rejects, rows)
        }
        (None, Some(lock)) => {
            let t_count = Instant::now();
            progress.start(phase::COUNTING, Unit::Bytes, input_bytes);
            let sink = CountSink::new(cfg.count_budget()?, &spill_files);
            let counted = count(cfg, &inputs, &chunks, progress, &sink)?;
            // Lines rejected = lines - rows counted.
            let rejected = total_lines - counted;
            spills = sink.spills();
            if spills == 0 {
                let mut vocab = Vocabulary::from_counts_owned(sink.into_counts(counted), cfg.min_count);
                let written = artifacts::write(lock, &vocab, counted, rejected, cfg.min_count, cfg.overwrite)?;
                // The transform needs only the id tables.
                vocab.shed_entries();
                count_seconds = t_count.elapsed().as_secs_f64();
                t = Instant::now();
                progress.start(phase::WRITING, Unit::Bytes, input_bytes);
                let (parts, rejects, rows) = transform(cfg, &mut out, &inputs, &chunks, &vocab, total_lines, progress)?;
                (vocab.sizes(), written.manifest_crc32c, parts, rejects, rows)
            } else {
                let mut w = artifacts::ArtifactsWriter::begin(lock, cfg.overwrite)?;
                let vocab = sink.finish_spilled(cfg.min_count, &mut w)?;
                let written = w.finish(counted, rejected, cfg.min_count)?;
                count_seconds = t_count.elapsed().as_secs_f64();
                t = Instant::now();
                progress.start(phase::WRITING, Unit::Bytes, input_bytes);
                let (parts, rejects, rows) = transform(cfg, &mut out, &inputs, &chunks, &vocab, total_lines, progress)?;
                (vocab.sizes(), written.manifest_crc32c, parts, rejects, rows)
            }
        }
        (None, None) => unreachable!("train mode holds the model folder's lock"),
    };
    drop(inputs);
    drop(spill_files);
    let write_seconds = t.elapsed().as_secs_f64();

    finish_out_dir(cfg, out, &parts, &rejects, rows, total_lines, manifest_crc)?;
    drop(model_lock);
    progress.start(phase::DONE, Unit::Bytes, 0);

    let mut rejected = BTreeMap::new();
    for r in &rejects {
        *rejected.entry(r.error.reason().to_string()).or_insert(0) += 1;
    }
    Ok(PrepareSummary {
        mode: cfg.mode,
        lines: total_lines,
        rows,
        rejected,
        vocabulary_sizes: sizes,
        parts,
        input_bytes,
        count_seconds,
        spills,
        write_seconds,
        total_seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Bytes a loaded vocabulary takes per value while it is built (its id table
/// and its ranked entries): past the memory limit, evaluate and predict modes
/// look ids up in a sorted file instead.
const LOADED_BYTES_PER_VALUE: u64 = 24;

/// How evaluate and predict modes hold the vocabulary.
enum Loaded {
    Memory(Box<artifacts::Artifacts>),
    Sorted,
}

/// True when two paths name the same folder (both existing), or are equal.
fn same_folder(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// The count stage of a sharded run: counts the categorical values of the
/// inputs (train mode lines) and writes them to `counts_file` (see
/// [`artifacts::write_partial_counts`]). Returns (rows counted, lines rejected).
///
/// # Errors
/// As [`run`].
pub fn count_stage(cfg: &PrepareConfig, counts_file: &Path, progress: &Progress) -> Result<(u64, u64), PrepareError> {
    cfg.validate()?;
    if counts_file.exists() && !cfg.overwrite {
        return Err(PrepareError::OutputExists(counts_file.to_path_buf()));
    }
    let spool = match counts_file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&spool).map_err(|source| PrepareError::Output { path: spool.clone(), source })?;
    let inputs = input::map_all(&cfg.inputs, &spool)?;
    let chunks = input::chunks(&inputs, cfg.chunk_bytes);
    let lines: u64 = chunks.iter().map(|c| c.lines).sum();
    progress.start(phase::COUNTING, Unit::Bytes, inputs.iter().map(|m| m.bytes().len() as u64).sum());
    let files = SpillFiles::new(&spool);
    let sink = CountSink::new(usize::MAX, &files);
    let counted = count(cfg, &inputs, &chunks, progress, &sink)?;
    let counts = sink.into_counts(counted);
    let rejected = lines - counts.rows;
    artifacts::write_partial_counts(counts_file, &counts, rejected)?;
    progress.start(phase::DONE, Unit::Bytes, 0);
    Ok((counts.rows, rejected))
}

/// Writes `_rejects` (with `--bad-lines skip`) and `_prepare.json`, then
/// commits the folder: stale parts of an earlier run go, `_SUCCESS` comes last.
fn finish_out_dir(
    cfg: &PrepareConfig,
    mut out: OutputDir,
    parts: &[PartInfo],
    rejects: &[Reject],
    rows: u64,
    lines: u64,
    manifest_crc32c: u32,
) -> Result<(), PrepareError> {
    if cfg.bad_lines == BadLines::Skip {
        let mut text = b"input\tline\treason\n".to_vec();
        let names: Vec<String> = cfg.inputs.iter().map(Source::display_name).collect();
        for r in rejects {
            text.extend_from_slice(format!("{}\t{}\t{}\n", names[r.input], r.line, r.error).as_bytes());
        }
        out.write(REJECTS_FILE, &text)?;
    }
    let model_dir = std::fs::canonicalize(&cfg.model_dir).unwrap_or_else(|_| cfg.model_dir.clone());
    let manifest = PreparedManifest {
        format: PREPARED_FORMAT.into(),
        format_version: PREPARED_VERSION,
        created_by: format!("sparky-criteo {}", env!("CARGO_PKG_VERSION")),
        mode: cfg.mode,
        artifacts: ArtifactRef { dir: model_dir, manifest_crc32c },
        inputs: cfg.inputs.iter().map(Source::display_name).collect(),
        lines,
        rows,
        rejected: rejects.len() as u64,
        first_line: cfg.first_line,
        output_format: cfg.format,
        compression: cfg.compression,
        parts: parts.to_vec(),
    };
    out.write(PREPARED_FILE, &manifest.to_json())?;
    out.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_split_lines_evenly_and_in_order() {
        for lines in [0u64, 1, 2, 7, 8, 9, 100, 1001] {
            for parts in [1usize, 2, 3, 8, 13] {
                let sizes: Vec<u64> =
                    (0..parts).map(|p| part_start(p + 1, lines, parts) - part_start(p, lines, parts)).collect();
                assert_eq!(part_start(0, lines, parts), 0);
                assert_eq!(part_start(parts, lines, parts), lines);
                assert_eq!(sizes.iter().sum::<u64>(), lines);
                let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(max - min <= 1, "{sizes:?}");
            }
        }
    }
}
