//! Batch prediction: the guide's Cloud ML Engine batch prediction, locally.
//!
//! One output part per input part, rows in input order, written under the
//! commit protocol of [`sparky_io::OutputDir`]: parts appear complete or not
//! at all, `_SUCCESS` last, nothing left behind by a failed or interrupted
//! run.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use sparky_criteo::input::{self, Source};
use sparky_io::{AtomicFile, OutputDir, Progress, Unit};
use sparky_linear::Evaluator;
use sparky_linear::metrics::sigmoid;
use sparky_prepared::reader::BLOCK_BYTES;
use sparky_prepared::{BadKind, Flow, Item, OpenOptions, PreparedDir, Reader, Row};

use crate::scorer::{RawScorer, Scorer};
use crate::{PredictError, PredictSummary, writer};

/// What the input files hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// TFRecords of prepared Examples (criteo-prepare output).
    Tfrecord,
    /// Parquet parts of prepared rows (criteo-prepare `--format parquet`, or
    /// Spark or pandas output with the same columns; see docs/formats.md).
    Parquet,
    /// Raw Criteo TSV: 39 fields, or 40 with a label first.
    Tsv,
}

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// JSON lines.
    Json,
    /// Parquet with columns `id`, `score_0`, `score_1`.
    Parquet,
}

/// The inputs of a batch job.
#[derive(Debug, Clone)]
pub enum Input {
    /// Prepared parts, checked against their folder's record.
    Prepared(PreparedDir),
    /// Raw TSV files (`.gz` decompressed).
    Tsv(Vec<PathBuf>),
}

/// A batch job's settings (the inputs come apart, as an [`Input`]).
#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// The output folder.
    pub output: PathBuf,
    /// What to write.
    pub output_format: OutputFormat,
    /// Stop at the first row that cannot be scored.
    pub strict: bool,
    /// Replace the output folder's contents.
    pub overwrite: bool,
    /// Worker threads.
    pub threads: usize,
}

/// What the first bytes of a file look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tfrecord,
    Parquet,
    Text,
    Empty,
    Other,
}

/// Looks at the first bytes of `path` (decompressed for `.gz`, `.zlib`):
/// Parquet's magic `PAR1` (which also ends a whole Parquet file; the reader
/// checks that), TFRecord framing (a length and its checksum), or text.
fn sniff(path: &Path) -> Result<Kind, PredictError> {
    use std::io::{Seek, SeekFrom};
    let io = |source| PredictError::Io { path: path.to_path_buf(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let compression = sparky_tfrecord::Compression::from_path(path);
    if compression == sparky_tfrecord::Compression::None {
        let mut magic = [0u8; 4];
        let len = file.metadata().map_err(io)?.len();
        if len >= 4 && file.read_exact(&mut magic).is_ok() && &magic == b"PAR1" {
            // A file that starts so is Parquet even when its end is not (a
            // truncated file): the reader then says what is wrong with it.
            return Ok(Kind::Parquet);
        }
        file.seek(SeekFrom::Start(0)).map_err(io)?;
    }
    let mut head = Vec::with_capacity(4096);
    compression.decoder(file).take(4096).read_to_end(&mut head).map_err(io)?;
    if head.is_empty() {
        return Ok(Kind::Empty);
    }
    if head.len() >= sparky_tfrecord::HEADER_LEN {
        let len: [u8; 8] = head[..8].try_into().unwrap_or_default();
        let crc = u32::from_le_bytes(head[8..12].try_into().unwrap_or_default());
        if sparky_tfrecord::crc::masked_crc32c(&len) == crc {
            return Ok(Kind::Tfrecord);
        }
    }
    let text = match std::str::from_utf8(&head) {
        Ok(_) => true,
        // Cut inside a character at the end of the sample.
        Err(e) => e.valid_up_to() + 4 >= head.len(),
    };
    Ok(if text && !head.contains(&0) { Kind::Text } else { Kind::Other })
}

impl Input {
    /// Resolves `--input`: a prepared folder, a folder of TSV files, a file,
    /// or a glob. Without a declared format the kind is detected (a folder's
    /// `_prepare.json`, else the first file's bytes: Parquet's magic,
    /// TFRecord framing or text); a declared format that the bytes contradict is an error that
    /// says what to pass. Prepared parts are checked against their folder's
    /// record (see [`PreparedDir`]).
    ///
    /// # Errors
    /// Nothing matches; an incomplete or altered prepared folder; input of
    /// another kind than declared.
    pub fn resolve(spec: &Path, format: Option<InputFormat>, allow_incomplete: bool) -> Result<Self, PredictError> {
        if spec.as_os_str() == "-" {
            return Err(PredictError::Setting {
                name: "--input -",
                what: "standard input is read in streaming mode only (with --output -)".into(),
            });
        }
        let opts = OpenOptions { allow_incomplete };
        if spec.is_dir() && spec.join(sparky_prepared::folder::PREPARED_FILE).exists() {
            if format == Some(InputFormat::Tsv) {
                return Err(PredictError::WrongInputKind {
                    path: spec.to_path_buf(),
                    found: "a prepared folder",
                    hint: "drop --input-format tsv",
                });
            }
            return Ok(Input::Prepared(PreparedDir::open(spec, opts)?));
        }
        let files: Vec<PathBuf> = input::resolve(spec)?
            .into_iter()
            .filter_map(|s| match s {
                Source::File(p) => Some(p),
                Source::Stdin => None,
            })
            .collect();
        let mut kind = Kind::Empty;
        for f in &files {
            kind = sniff(f)?;
            if kind != Kind::Empty {
                break;
            }
        }
        let path = files.first().cloned().unwrap_or_else(|| spec.to_path_buf());
        let format = match (format, kind) {
            (Some(InputFormat::Tfrecord), Kind::Text) => {
                return Err(PredictError::WrongInputKind {
                    path,
                    found: "text (raw TSV?), not TFRecords",
                    hint: "pass --input-format tsv to score raw Criteo lines",
                });
            }
            (Some(InputFormat::Parquet), Kind::Text) => {
                return Err(PredictError::WrongInputKind {
                    path,
                    found: "text (raw TSV?), not Parquet",
                    hint: "pass --input-format tsv to score raw Criteo lines",
                });
            }
            (Some(InputFormat::Tsv | InputFormat::Parquet), Kind::Tfrecord) => {
                return Err(PredictError::WrongInputKind {
                    path,
                    found: "TFRecords",
                    hint: "pass --input-format tfrecord (or leave it out)",
                });
            }
            (Some(InputFormat::Tsv | InputFormat::Tfrecord), Kind::Parquet) => {
                return Err(PredictError::WrongInputKind {
                    path,
                    found: "Parquet",
                    hint: "pass --input-format parquet (or leave it out)",
                });
            }
            (None, Kind::Other) | (Some(_), Kind::Other) => {
                return Err(PredictError::WrongInputKind {
                    path,
                    found: "neither TFRecords, Parquet nor text",
                    hint: "give prepared parts (criteo-prepare output, or Parquet with its columns) or raw Criteo TSV",
                });
            }
            (Some(f), _) => f,
            (None, Kind::Tfrecord) => InputFormat::Tfrecord,
            (None, Kind::Parquet) => InputFormat::Parquet,
            (None, Kind::Text) => InputFormat::Tsv,
            (None, Kind::Empty) if spec.is_dir() || files.iter().all(|f| is_part_name(f)) => InputFormat::Tfrecord,
            (None, Kind::Empty) => InputFormat::Tsv,
        };
        Ok(match format {
            InputFormat::Tsv => Input::Tsv(files),
            InputFormat::Tfrecord | InputFormat::Parquet if spec.is_dir() => {
                Input::Prepared(PreparedDir::open(spec, opts)?)
            }
            InputFormat::Tfrecord | InputFormat::Parquet => Input::Prepared(PreparedDir::open_files(&files, opts)?),
        })
    }

    /// The input files.
    #[must_use]
    pub fn files(&self) -> Vec<PathBuf> {
        match self {
            Input::Prepared(d) => d.parts().iter().map(|p| p.path.clone()).collect(),
            Input::Tsv(f) => f.clone(),
        }
    }
}

fn is_part_name(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("part-"))
}

/// The output files a batch run owns: `prediction.*`.
fn owned(name: &str) -> bool {
    name.starts_with("prediction.")
}

/// Where a row that could not be scored was.
#[derive(Debug, Clone)]
enum Where {
    /// A record: its index within its block, and its byte offset.
    Record { local: u64, offset: Option<u64> },
    /// A 1-based line of a TSV file.
    Line(u64),
}

/// A row that could not be scored.
#[derive(Debug, Clone)]
struct Unscored {
    at: Where,
    reason: String,
}

/// The output of one unit of work (a block of records, a chunk of lines).
#[derive(Default)]
struct Scored {
    json: Vec<u8>,
    ids: Vec<i64>,
    p1: Vec<f32>,
    /// Rows (index into `ids`) without an id of their own, and their record's
    /// index in the unit: for Parquet, their id is their position.
    positions: Vec<(usize, u64)>,
    errors: Vec<Unscored>,
    eval: Option<Evaluator>,
    rows: u64,
    /// Records or lines seen, scored or not.
    records: u64,
}

impl Scored {
    /// A row that could not be scored: listed, or with `strict` the error.
    fn unscorable(&mut self, strict: bool, input: &Path, at: Where, reason: String) -> Result<(), PredictError> {
        if strict {
            let position = match at {
                Where::Record { offset: Some(o), .. } => format!("record at byte {o}"),
                Where::Record { local, .. } => format!("record {local} of its block"),
                Where::Line(l) => format!("line {l}"),
            };
            return Err(PredictError::Unscorable { input: input.to_path_buf(), position, reason });
        }
        self.errors.push(Unscored { at, reason });
        Ok(())
    }

    fn push(&mut self, format: OutputFormat, id: Option<i64>, local: u64, logit: f32, label: Option<bool>) {
        let p1 = sigmoid(logit);
        match format {
            OutputFormat::Json => writer::write_json_line(&mut self.json, id, p1),
            OutputFormat::Parquet => {
                if id.is_none() {
                    self.positions.push((self.ids.len(), local));
                }
                self.ids.push(id.unwrap_or(0));
                self.p1.push(p1);
            }
        }
        if let Some(y) = label {
            self.eval.get_or_insert_with(Evaluator::new).add(logit, y);
        }
        self.rows += 1;
    }
}

/// Where scored rows go: one output part.
enum PartSink {
    Json(std::io::BufWriter<AtomicFile>),
    Parquet(Box<parquet::file::writer::SerializedFileWriter<AtomicFile>>),
}

fn parquet_schema() -> std::sync::Arc<parquet::schema::types::Type> {
    use parquet::basic::{Repetition, Type as Physical};
    use parquet::schema::types::Type;
    let col = |name: &str, t: Physical| {
        std::sync::Arc::new(
            Type::primitive_type_builder(name, t)
                .with_repetition(Repetition::REQUIRED)
                .build()
                .unwrap_or_else(|_| unreachable!("a valid column")),
        )
    };
    std::sync::Arc::new(
        Type::group_type_builder("predictions")
            .with_fields(vec![
                col("id", Physical::INT64),
                col("score_0", Physical::FLOAT),
                col("score_1", Physical::FLOAT),
            ])
            .build()
            .unwrap_or_else(|_| unreachable!("a valid schema")),
    )
}

impl PartSink {
    fn create(path: &Path, format: OutputFormat) -> Result<Self, PredictError> {
        let file = AtomicFile::create(path)?;
        Ok(match format {
            OutputFormat::Json => PartSink::Json(std::io::BufWriter::with_capacity(1 << 20, file)),
            OutputFormat::Parquet => {
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_created_by(format!("sparky criteo-predict {}", env!("CARGO_PKG_VERSION")))
                    .build();
                PartSink::Parquet(Box::new(
                    parquet::file::writer::SerializedFileWriter::new(file, parquet_schema(), props.into())
                        .map_err(|source| PredictError::Parquet { path: path.to_path_buf(), source })?,
                ))
            }
        })
    }

    fn append(&mut self, s: &Scored, path: &Path) -> Result<(), PredictError> {
        match self {
            PartSink::Json(w) => {
                w.write_all(&s.json).map_err(|source| PredictError::Io { path: path.to_path_buf(), source })
            }
            PartSink::Parquet(w) => {
                use parquet::data_type::{FloatType, Int64Type};
                if s.ids.is_empty() {
                    return Ok(());
                }
                let pq = |source| PredictError::Parquet { path: path.to_path_buf(), source };
                let missing = |what| PredictError::Parquet {
                    path: path.to_path_buf(),
                    source: parquet::errors::ParquetError::General(format!("no writer for the {what} column")),
                };
                let mut rg = w.next_row_group().map_err(pq)?;
                let p0: Vec<f32> = s.p1.iter().map(|&p| writer::class_scores(p)[0]).collect();
                let mut c = rg.next_column().map_err(pq)?.ok_or_else(|| missing("id"))?;
                c.typed::<Int64Type>().write_batch(&s.ids, None, None).map_err(pq)?;
                c.close().map_err(pq)?;
                for col in [&p0, &s.p1] {
                    let mut c = rg.next_column().map_err(pq)?.ok_or_else(|| missing("score"))?;
                    c.typed::<FloatType>().write_batch(col, None, None).map_err(pq)?;
                    c.close().map_err(pq)?;
                }
                rg.close().map_err(pq)?;
                Ok(())
            }
        }
    }

    /// Commits the part (synced later with the others); returns its path and size.
    fn finish(self, path: &Path) -> Result<(PathBuf, u64), PredictError> {
        let file = match self {
            PartSink::Json(w) => {
                w.into_inner().map_err(|e| PredictError::Io { path: path.to_path_buf(), source: e.into_error() })?
            }
            PartSink::Parquet(w) => {
                w.into_inner().map_err(|source| PredictError::Parquet { path: path.to_path_buf(), source })?
            }
        };
        let path = file.commit_unsynced()?;
        let bytes = std::fs::metadata(&path).map_err(|source| PredictError::Io { path: path.clone(), source })?.len();
        Ok((path, bytes))
    }
}

/// What a run collects over its parts.
struct Totals {
    out: OutputDir,
    rows: u64,
    records: u64,
    errors: Vec<serde_json::Value>,
    eval: Option<Evaluator>,
    parts: Vec<PathBuf>,
    bytes: u64,
}

impl Totals {
    fn new(cfg: &BatchConfig) -> Result<Self, PredictError> {
        let out = OutputDir::open(&cfg.output, cfg.overwrite, owned).map_err(|e| match e {
            sparky_io::Error::OutputExists { path } => PredictError::OutputExists(path),
            other => other.into(),
        })?;
        Ok(Self { out, rows: 0, records: 0, errors: Vec::new(), eval: None, parts: Vec::new(), bytes: 0 })
    }

    /// Writes one unit's output into `part`: positions and record numbers
    /// are made absolute from `first_record` (the unit's first record in its
    /// input) and `first_position` (over all inputs).
    fn sink(
        &mut self,
        part: &mut PartSink,
        path: &Path,
        input: &Path,
        mut s: Scored,
        first_record: u64,
        first_position: u64,
    ) -> Result<(), PredictError> {
        for &(row, local) in &s.positions {
            s.ids[row] = (first_position + local) as i64;
        }
        part.append(&s, path)?;
        for u in s.errors {
            let position = match u.at {
                Where::Record { local, offset: Some(o) } => format!("record {} at byte {o}", first_record + local),
                Where::Record { local, offset: None } => format!("record {}", first_record + local),
                Where::Line(l) => format!("line {l}"),
            };
            self.errors.push(
                serde_json::json!({ "input": input.display().to_string(), "position": position, "error": u.reason }),
            );
        }
        if let Some(e) = s.eval {
            self.eval.get_or_insert_with(Evaluator::new).merge(e);
        }
        self.rows += s.rows;
        self.records += s.records;
        Ok(())
    }

    fn part_done(&mut self, part: PartSink, path: &Path) -> Result<(), PredictError> {
        let (path, bytes) = part.finish(path)?;
        self.bytes += bytes;
        self.out.committed(path.clone());
        self.parts.push(path);
        Ok(())
    }

    /// Syncs the parts, writes the errors file and `_SUCCESS`.
    fn finish(mut self, t0: Instant, progress: &Progress) -> Result<PredictSummary, PredictError> {
        if self.rows == 0 && self.records > 0 {
            return Err(PredictError::NothingScored { output: self.out.path().to_path_buf(), records: self.records });
        }
        progress.check()?;
        let mut text = Vec::new();
        for e in &self.errors {
            text.extend_from_slice(e.to_string().as_bytes());
            text.push(b'\n');
        }
        sparky_io::sync_all(&self.parts)?;
        self.out.write(writer::ERRORS_FILE, &text)?;
        let errors = self.errors.len() as u64;
        self.out.commit()?;
        Ok(PredictSummary {
            rows: self.rows,
            errors,
            parts: self.parts,
            bytes: self.bytes,
            metrics: self.eval.map(Evaluator::finish),
            seconds: t0.elapsed().as_secs_f64(),
        })
    }
}

/// Blocks scored in parallel before their output is written.
const WINDOW: usize = 16;

fn pool(threads: usize) -> Result<rayon::ThreadPool, PredictError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| PredictError::Setting { name: "--threads", what: format!("cannot start {threads} threads: {e}") })
}

fn part_path(cfg: &BatchConfig, i: usize, n: usize) -> PathBuf {
    let mut name = writer::part_name(i, n);
    if cfg.output_format == OutputFormat::Parquet {
        name.push_str(".parquet");
    }
    cfg.output.join(name)
}

/// Scores prepared parts, one output part per input part.
///
/// # Errors
/// See [`PredictError`]: parts prepared with other artifacts than the
/// model's, damaged framing (the rows after it could not be counted), a part
/// whose rows differ from its record, a row that cannot be scored with
/// `strict`, no row scored at all, an interrupt. On error nothing is left
/// under a final name in the output folder.
pub fn run_prepared(
    scorer: &Scorer,
    input: &PreparedDir,
    cfg: &BatchConfig,
    progress: &Progress,
) -> Result<PredictSummary, PredictError> {
    let t0 = Instant::now();
    input.check_artifacts(scorer.artifacts())?;
    let reader = Reader::new(input, BLOCK_BYTES, sparky_io::Access::Sequential)?;
    let mut totals = Totals::new(cfg)?;
    let pool = pool(cfg.threads)?;
    let n = reader.parts().len();
    progress.start("scoring", Unit::Bytes, reader.parts().iter().map(|p| p.bytes).sum());
    let blocks = reader.blocks();
    let mut position = 0u64;
    for (i, p) in reader.parts().iter().enumerate() {
        let path = part_path(cfg, i, n);
        let mut part = PartSink::create(&path, cfg.output_format)?;
        let mine: Vec<usize> = (0..blocks.len()).filter(|&b| blocks[b].part == i).collect();
        let mut part_records = 0u64;
        for window in mine.chunks(WINDOW) {
            progress.check()?;
            let outs: Vec<Result<Scored, PredictError>> = pool.install(|| {
                window.par_iter().map(|&b| score_block(scorer, &reader, b, cfg.output_format, cfg.strict)).collect()
            });
            for (o, &b) in outs.into_iter().zip(window) {
                let s = o?;
                let records = s.records;
                totals.sink(&mut part, &path, &p.path, s, part_records, position)?;
                part_records += records;
                position += records;
                let block = blocks[b];
                progress.add(block.end.min(p.bytes) - block.start, records);
            }
        }
        reader.check_counts_of(i, part_records)?;
        totals.part_done(part, &path)?;
    }
    totals.finish(t0, progress)
}

/// Scores the records of one block.
fn score_block(
    scorer: &Scorer,
    reader: &Reader,
    b: usize,
    format: OutputFormat,
    strict: bool,
) -> Result<Scored, PredictError> {
    let mut decoder = scorer.decoder();
    let mut row = Row::default();
    let mut out = Scored::default();
    let path = reader.part_path(reader.blocks()[b].part).to_path_buf();
    reader.read_block(b, &mut decoder, &mut row, |item| {
        let local = out.records;
        out.records += 1;
        match item {
            Item::Row(r) => out.push(format, r.id(), local, scorer.logit(r.ints(), r.ids()), r.label()),
            Item::Bad(bad) => {
                let reason = match &bad.kind {
                    BadKind::Checksum(e) => e.to_string(),
                    other => other.to_string(),
                };
                if strict {
                    return Err(PredictError::from(sparky_prepared::ReadError::Bad(Box::new(bad))));
                }
                out.unscorable(strict, &path, Where::Record { local, offset: bad.at.offset }, reason)?;
            }
        }
        Ok(Flow::Continue)
    })?;
    Ok(out)
}

/// Scores raw TSV files (39 fields, or 40 with a label first, decided line
/// by line), one output part per file; ids are 0-based line numbers over
/// all the files.
///
/// # Errors
/// As [`run_prepared`], for lines.
pub fn run_tsv(
    scorer: &RawScorer,
    inputs: &[PathBuf],
    cfg: &BatchConfig,
    progress: &Progress,
) -> Result<PredictSummary, PredictError> {
    let t0 = Instant::now();
    let mut totals = Totals::new(cfg)?;
    let pool = pool(cfg.threads)?;
    let n = inputs.len();
    let mut position = 0u64;
    progress.start("scoring", Unit::Bytes, 0);
    for (i, input_path) in inputs.iter().enumerate() {
        let path = part_path(cfg, i, n);
        let mut part = PartSink::create(&path, cfg.output_format)?;
        let mapped = input::map_all(&[Source::File(input_path.clone())], totals.out.path())?;
        let chunks = input::chunks(&mapped, 1 << 20);
        let bytes = mapped[0].bytes();
        for window in chunks.chunks(WINDOW) {
            progress.check()?;
            let outs: Vec<Result<Scored, PredictError>> = pool.install(|| {
                window
                    .par_iter()
                    .map(|c| {
                        let mut out = Scored::default();
                        let text = &bytes[c.start..c.end];
                        for (k, line) in (0..c.lines).zip(text.split(|&b| b == b'\n')) {
                            out.records += 1;
                            let global = c.global_line + k;
                            match scorer.logit_tsv(line) {
                                Ok((z, label)) => {
                                    out.push(cfg.output_format, Some((position + global) as i64), 0, z, label);
                                }
                                Err(e) => {
                                    let at = Where::Line(c.first_line + k);
                                    out.unscorable(cfg.strict, input_path, at, e.to_string())?;
                                }
                            }
                        }
                        mapped[0].release(c.start..c.end);
                        Ok(out)
                    })
                    .collect()
            });
            for (o, c) in outs.into_iter().zip(window) {
                totals.sink(&mut part, &path, input_path, o?, 0, 0)?;
                progress.add((c.end - c.start) as u64, c.lines);
            }
        }
        position += chunks.iter().map(|c| c.lines).sum::<u64>();
        drop(mapped);
        totals.part_done(part, &path)?;
    }
    totals.finish(t0, progress)
}
