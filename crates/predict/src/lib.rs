//! Prediction with an exported sparky model: the guide's Cloud ML Engine
//! batch prediction, locally.
//!
//! - [`Scorer`]: an export's model and vocabulary, scoring prepared rows
//!   (vocabulary ids) or raw Criteo TSV lines, which it prepares exactly as
//!   criteo-prepare does.
//! - [`run_batch`]: scores `part-*` TFRecords (or TSV files) into
//!   `prediction.results-NNNNN-of-MMMMM` JSON-lines parts (or Parquet), one
//!   output part per input file, rows in input order, in parallel; records
//!   that cannot be scored go to `prediction.errors_stats-00000-of-00001`.
//! - [`run_stream`]: one JSON line out per TSV line in, flushed as it goes
//!   (the guide's stopgap for online prediction).
//! - [`writer`]: the JSON-lines format.
//!
//! ```no_run
//! use sparky_predict::Scorer;
//! use sparky_export::ExportDir;
//!
//! let scorer = Scorer::new(ExportDir::load("job".as_ref())?)?;
//! let line = b"\t1\t5\t0\t1382\t4\t15\t2\t181\t1\t2\t\t2\t68fd1e64\t80e26c9b\tfb936136\t7b4723c4\t25c83c98\t7e0ccccf\tde7995b8\t1f89b1b5\ta73ee510\ta8cd5504\tb2cb9c98\t37c9c164\t2824a5f6\t1adce6ef\t8ba8b39a\t891b62e7\te5ba7672\tf54016b9\t21ddcdc9\tb1252a9d\t07b5194c\t\t3a171ecb\tc5c50484\te8b83407\t9727dd16";
//! let p = scorer.score_tsv(line)?;
//! println!("p(click) = {p}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod writer;

use std::io::{BufRead, Write};

use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use sparky_criteo::input::{self, Source};
use sparky_criteo::parse::{RowError, parse_line};
use sparky_criteo::schema::{Mode, NUM_CAT, NUM_INT};
use sparky_criteo::vocab::Vocabulary;
use sparky_export::{ExportDir, ExportError};
use sparky_linear::{Evaluator, LinearModel, Metrics};
use sparky_tfrecord::example::{ExampleError, Int64SchemaDecoder};
use sparky_tfrecord::{AtomicFile, Compression, MappedFile, ReaderOptions, RecordReader, SliceReader};

/// Why prediction failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PredictError {
    /// Loading the model.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// Finding or reading inputs.
    #[error(transparent)]
    Input(#[from] input::InputError),
    /// Reading records.
    #[error(transparent)]
    Record(#[from] sparky_tfrecord::Error),
    /// Writing outputs.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing Parquet.
    #[error("{}: {source}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// A record or line that could not be scored, with `--strict`.
    #[error("{input}: {position}: {reason} (without --strict such rows are listed in {})", writer::ERRORS_FILE)]
    Unscorable {
        /// The input.
        input: String,
        /// "record 5 at byte 1234" or "line 17".
        position: String,
        /// Why.
        reason: String,
    },
    /// The output folder holds files.
    #[error("{} is not empty; pass --overwrite to replace its contents", .0.display())]
    OutputExists(PathBuf),
    /// Raw TSV input given to a scorer made without the vocabulary.
    #[error("scoring TSV lines needs the export's vocabulary: make the Scorer with Scorer::new")]
    NoVocabulary,
    /// A setting that does not work.
    #[error("{0}")]
    Config(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PredictError + '_ {
    move |source| PredictError::Io { path: path.to_path_buf(), source }
}

/// An export's model, and its vocabulary where raw lines are to be scored.
pub struct Scorer {
    model: LinearModel,
    vocab: Option<Vocabulary>,
    export: PathBuf,
}

impl Scorer {
    /// Takes a loaded export and loads its vocabulary: the scorer can score
    /// prepared rows and raw TSV lines.
    ///
    /// # Errors
    /// The export's artifacts cannot be loaded.
    pub fn new(e: ExportDir) -> Result<Self, ExportError> {
        let vocab = e.artifacts()?.vocabulary;
        Ok(Self { model: e.model, vocab: Some(vocab), export: e.dir })
    }

    /// Takes a loaded export without loading its vocabulary, which prepared
    /// rows (vocabulary ids already) do not need: for large vocabularies it
    /// starts seconds sooner. [`logit_tsv`](Self::logit_tsv) and
    /// [`score_tsv`](Self::score_tsv) are then unavailable.
    #[must_use]
    pub fn for_prepared_rows(e: ExportDir) -> Self {
        Self { model: e.model, vocab: None, export: e.dir }
    }

    /// True when the scorer can score raw TSV lines (made with [`new`](Self::new)).
    #[must_use]
    pub fn scores_tsv(&self) -> bool {
        self.vocab.is_some()
    }

    /// The export folder.
    #[must_use]
    pub fn export_dir(&self) -> &Path {
        &self.export
    }

    /// The model.
    #[must_use]
    pub fn model(&self) -> &LinearModel {
        &self.model
    }

    /// p(click) of a prepared row.
    #[inline]
    #[must_use]
    pub fn score(&self, ints: &[i64; NUM_INT], ids: &[i64; NUM_CAT]) -> f32 {
        self.model.predict(ints, ids)
    }

    /// The logit of a raw TSV line (39 fields, or 40 with a label first), and
    /// its label if it has one. The line is prepared exactly as criteo-prepare
    /// prepares it.
    ///
    /// # Errors
    /// A malformed line.
    ///
    /// # Panics
    /// If the scorer was made with [`for_prepared_rows`](Self::for_prepared_rows).
    pub fn logit_tsv(&self, line: &[u8], labelled: bool) -> Result<(f32, Option<bool>), RowError> {
        let vocab = self.vocab.as_ref().expect("a Scorer made with for_prepared_rows cannot score TSV lines");
        let row = parse_line(line, if labelled { Mode::Evaluate } else { Mode::Predict })?;
        let mut ids = [0i64; NUM_CAT];
        vocab.ids(&row, &mut ids);
        Ok((self.model.logit(&row.ints, &ids), row.label))
    }

    /// p(click) of a raw, unlabelled TSV line (39 fields).
    ///
    /// # Errors
    /// A malformed line.
    ///
    /// # Panics
    /// If the scorer was made with [`for_prepared_rows`](Self::for_prepared_rows).
    pub fn score_tsv(&self, line: &[u8]) -> Result<f32, RowError> {
        self.logit_tsv(line, false).map(|(z, _)| sparky_linear::metrics::sigmoid(z))
    }
}

/// What the input files hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// TFRecords of prepared Examples (criteo-prepare output).
    Tfrecord,
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

/// A batch prediction job.
#[derive(Debug, Clone)]
pub struct PredictConfig {
    /// Input files, in order (see [`resolve_inputs`]).
    pub inputs: Vec<PathBuf>,
    /// The output folder.
    pub output: PathBuf,
    /// What the inputs hold.
    pub input_format: InputFormat,
    /// What to write.
    pub output_format: OutputFormat,
    /// Stop at the first row that cannot be scored.
    pub strict: bool,
    /// Replace the output folder's contents.
    pub overwrite: bool,
    /// Worker threads.
    pub threads: usize,
}

/// What a batch job did.
#[derive(Debug, Clone)]
pub struct PredictSummary {
    /// Rows scored.
    pub rows: u64,
    /// Rows that could not be scored.
    pub errors: u64,
    /// Output parts.
    pub parts: Vec<PathBuf>,
    /// Bytes written.
    pub bytes: u64,
    /// Metrics, when the input had labels.
    pub metrics: Option<Metrics>,
    /// Seconds.
    pub seconds: f64,
}

/// Resolves `--input`: a file, a glob, or a folder (for TFRecords its
/// `part-*` files; for TSV its data files).
pub fn resolve_inputs(spec: &Path, format: InputFormat) -> Result<Vec<PathBuf>, PredictError> {
    let mut files: Vec<PathBuf> = input::resolve(spec)?
        .into_iter()
        .filter_map(|s| match s {
            Source::File(p) => Some(p),
            Source::Stdin => None,
        })
        .collect();
    if spec.is_dir() && format == InputFormat::Tfrecord {
        files.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("part-")));
        files.retain(|p| !p.to_string_lossy().ends_with(".parquet"));
    }
    if files.is_empty() {
        return Err(PredictError::Config(format!("{}: no input files", spec.display())));
    }
    Ok(files)
}

/// A row that could not be scored.
#[derive(Debug, Clone)]
struct Unscored {
    position: String,
    reason: String,
}

/// The output of one unit of work.
#[derive(Default)]
struct Scored {
    json: Vec<u8>,
    ids: Vec<i64>,
    p1: Vec<f32>,
    errors: Vec<Unscored>,
    eval: Option<Evaluator>,
    rows: u64,
}

impl Scored {
    /// A row that could not be scored: listed, or with `strict` the error.
    fn unscorable(&mut self, strict: bool, input: &str, position: String, reason: String) -> Result<(), PredictError> {
        if strict {
            return Err(PredictError::Unscorable { input: input.to_string(), position, reason });
        }
        self.errors.push(Unscored { position, reason });
        Ok(())
    }

    fn push(&mut self, format: OutputFormat, id: Option<i64>, position: i64, logit: f32, label: Option<bool>) {
        let p1 = sparky_linear::metrics::sigmoid(logit);
        match format {
            OutputFormat::Json => writer::write_json_line(&mut self.json, id, p1),
            OutputFormat::Parquet => {
                self.ids.push(id.unwrap_or(position));
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
            Type::primitive_type_builder(name, t).with_repetition(Repetition::REQUIRED).build().expect("valid column"),
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
            .expect("valid schema"),
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
            PartSink::Json(w) => w.write_all(&s.json).map_err(io_err(path)),
            PartSink::Parquet(w) => {
                if s.ids.is_empty() {
                    return Ok(());
                }
                let pq = |source| PredictError::Parquet { path: path.to_path_buf(), source };
                let mut rg = w.next_row_group().map_err(pq)?;
                let p0: Vec<f32> = s.p1.iter().map(|&p| writer::class_scores(p)[0]).collect();
                let mut c = rg.next_column().map_err(pq)?.expect("id column");
                c.typed::<parquet::data_type::Int64Type>().write_batch(&s.ids, None, None).map_err(pq)?;
                c.close().map_err(pq)?;
                for col in [&p0, &s.p1] {
                    let mut c = rg.next_column().map_err(pq)?.expect("score column");
                    c.typed::<parquet::data_type::FloatType>().write_batch(col, None, None).map_err(pq)?;
                    c.close().map_err(pq)?;
                }
                rg.close().map_err(pq)?;
                Ok(())
            }
        }
    }

    fn finish(self, path: &Path) -> Result<u64, PredictError> {
        let file = match self {
            PartSink::Json(w) => {
                w.into_inner().map_err(|e| PredictError::Io { path: path.to_path_buf(), source: e.into_error() })?
            }
            PartSink::Parquet(w) => {
                w.into_inner().map_err(|source| PredictError::Parquet { path: path.to_path_buf(), source })?
            }
        };
        // Synced all together at the end of the run (sparky_tfrecord::sync_all).
        file.commit_unsynced()?;
        Ok(std::fs::metadata(path).map_err(io_err(path))?.len())
    }
}

/// Names of the features the scorer reads from prepared Examples: `id` and
/// `clicked` (both optional), the 13 integers, the 26 ids.
fn example_names() -> Vec<String> {
    ["id".to_string(), "clicked".to_string()]
        .into_iter()
        .chain((1..=NUM_INT).map(|i| format!("integer-feature-{i}")))
        .chain((1..=NUM_CAT).map(|i| format!("categorical-feature-{i}")))
        .collect()
}

/// Scores one prepared Example's bytes into `out`.
fn score_example(
    scorer: &Scorer,
    decoder: &mut Int64SchemaDecoder,
    bytes: &[u8],
    row: &mut [i64; 2 + NUM_INT + NUM_CAT],
    out: &mut Scored,
    format: OutputFormat,
    position: i64,
) -> Result<(), ExampleError> {
    decoder.decode(bytes, row)?;
    let id = decoder.is_present(0).then_some(row[0]);
    let label = decoder.is_present(1).then_some(row[1] == 1);
    let ints: &[i64; NUM_INT] = row[2..2 + NUM_INT].try_into().expect("13");
    let ids: &[i64; NUM_CAT] = row[2 + NUM_INT..].try_into().expect("26");
    out.push(format, id, position, scorer.model.logit(ints, ids), label);
    Ok(())
}

/// Records per unit of parallel work.
const BLOCK: u64 = 1024;
/// Units scored in parallel before their output is written.
const WINDOW: usize = 32;

/// Scores the records of one uncompressed TFRecord file.
fn score_mapped(
    scorer: &Scorer,
    path: &Path,
    format: OutputFormat,
    strict: bool,
    first_position: i64,
    mut sink: impl FnMut(Scored) -> Result<(), PredictError>,
) -> Result<(), PredictError> {
    let file = MappedFile::open(path)?;
    let bytes = file.bytes();
    let name = path.display().to_string();
    let names = example_names();
    // Walk the framing one window of blocks at a time, score the window,
    // release its pages: each page is faulted in once and resident memory
    // does not grow with the file. Damaged framing ends the usable part.
    // The next window's framing is walked while this one is scored.
    type Window = (Vec<(std::ops::Range<usize>, u64)>, Option<sparky_tfrecord::Error>);
    let walk = |at: (usize, u64)| -> Result<Window, sparky_tfrecord::Error> {
        match sparky_tfrecord::record_blocks_from(bytes, at, BLOCK, WINDOW, Some(path), ReaderOptions::default()) {
            Ok(w) => Ok((w, None)),
            Err(e) => {
                let bad = e.position().map_or(0, |p| p.offset) as usize;
                let good = sparky_tfrecord::record_blocks_from(
                    &bytes[..bad.max(at.0)],
                    at,
                    BLOCK,
                    WINDOW,
                    Some(path),
                    ReaderOptions::default(),
                )?;
                Ok((good, Some(e)))
            }
        }
    };
    let framing_error;
    let mut current = walk((0, 0))?;
    loop {
        let (window, error) = current;
        let full = window.len() == WINDOW && error.is_none();
        let next_at = window.last().map_or((0, 0), |last| (last.0.end, last.1 + BLOCK));
        let score_window = || {
            window
                .par_iter()
                .map(|(range, first)| {
                    let mut decoder = Int64SchemaDecoder::new(&names).with_optional(&["id", "clicked"]);
                    let mut row = [0i64; 2 + NUM_INT + NUM_CAT];
                    let mut out = Scored::default();
                    let mut start = range.start;
                    let mut index = *first;
                    // Restart after a record whose payload fails its checksum.
                    'outer: while start < range.end {
                        let mut r =
                            SliceReader::new(&bytes[start..range.end]).with_path(path).with_start(start as u64, index);
                        while let Some(rec) = r.next_record() {
                            match rec {
                                Ok(b) => {
                                    let at = r.records() - 1;
                                    if let Err(e) = score_example(
                                        scorer,
                                        &mut decoder,
                                        b,
                                        &mut row,
                                        &mut out,
                                        format,
                                        first_position + at as i64,
                                    ) {
                                        out.unscorable(strict, &name, format!("record {at}"), e.to_string())?;
                                    }
                                }
                                Err(e) => {
                                    let p = e.position().cloned().expect("stream errors have positions");
                                    if strict {
                                        return Err(e.into());
                                    }
                                    out.errors.push(Unscored {
                                        position: format!("record {} at byte {}", p.record, p.offset),
                                        reason: e.to_string(),
                                    });
                                    if let sparky_tfrecord::Error::PayloadChecksum { len, .. } = e {
                                        start = (p.offset
                                            + sparky_tfrecord::HEADER_LEN as u64
                                            + len
                                            + sparky_tfrecord::FOOTER_LEN as u64)
                                            as usize;
                                        index = p.record + 1;
                                        continue 'outer;
                                    }
                                    break 'outer;
                                }
                            }
                        }
                        break;
                    }
                    Ok(out)
                })
                .collect::<Vec<Result<Scored, PredictError>>>()
        };
        let (outs, next) = rayon::join(score_window, || full.then(|| walk(next_at)));
        for o in outs {
            sink(o?)?;
        }
        if let (Some(first), Some(last)) = (window.first(), window.last()) {
            file.release(first.0.start..last.0.end);
        }
        match next {
            Some(next) => current = next?,
            None => {
                framing_error = error;
                break;
            }
        }
    }
    if let Some(e) = framing_error {
        if strict {
            return Err(e.into());
        }
        let p = e.position().cloned().expect("stream errors have positions");
        let mut out = Scored::default();
        out.errors.push(Unscored {
            position: format!("record {} at byte {}", p.record, p.offset),
            reason: format!("{e}; the rest of the file was not scored"),
        });
        sink(out)?;
    }
    Ok(())
}

/// Scores the records of a compressed TFRecord file (a stream).
fn score_stream(
    scorer: &Scorer,
    path: &Path,
    format: OutputFormat,
    strict: bool,
    first_position: i64,
    mut sink: impl FnMut(Scored) -> Result<(), PredictError>,
) -> Result<(), PredictError> {
    let mut r = RecordReader::open(path)?;
    let names = example_names();
    let name = path.display().to_string();
    let mut decoder = Int64SchemaDecoder::new(&names).with_optional(&["id", "clicked"]);
    let mut row = [0i64; 2 + NUM_INT + NUM_CAT];
    let mut buf = Vec::new();
    let mut out = Scored::default();
    let mut index = 0i64;
    loop {
        match r.read_record(&mut buf) {
            Ok(true) => {
                if let Err(e) =
                    score_example(scorer, &mut decoder, &buf, &mut row, &mut out, format, first_position + index)
                {
                    out.unscorable(strict, &name, format!("record {index}"), e.to_string())?;
                }
                index += 1;
                if out.rows >= BLOCK * 16 {
                    sink(std::mem::take(&mut out))?;
                }
            }
            Ok(false) => break,
            Err(e) => {
                if strict {
                    return Err(e.into());
                }
                let p = e.position().cloned().expect("stream errors have positions");
                out.errors.push(Unscored {
                    position: format!("record {} at byte {}", p.record, p.offset),
                    reason: format!("{e}; the rest of the file was not scored"),
                });
                break;
            }
        }
    }
    sink(out)
}

/// Scores the lines of a raw TSV input.
fn score_tsv_file(
    scorer: &Scorer,
    path: &Path,
    spool_dir: &Path,
    format: OutputFormat,
    strict: bool,
    first_line: u64,
    mut sink: impl FnMut(Scored) -> Result<(), PredictError>,
) -> Result<u64, PredictError> {
    let mapped = input::map_all(&[Source::File(path.to_path_buf())], spool_dir)?;
    let chunks = input::chunks(&mapped, 1 << 20);
    let bytes = mapped[0].bytes();
    // 40 fields: labelled. Decided by the first line.
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let labelled = first.iter().filter(|&&b| b == b'\t').count() + 1 == Mode::Train.fields();
    let name = path.display().to_string();
    for window in chunks.chunks(WINDOW.min(16)) {
        let outs: Vec<Result<Scored, PredictError>> = window
            .par_iter()
            .map(|c| {
                let mut out = Scored::default();
                let text = &bytes[c.start..c.end];
                for (line_no, line) in (c.first_line..).zip(text.split(|&b| b == b'\n')) {
                    if line.is_empty() && line_no >= c.first_line + c.lines {
                        break;
                    }
                    let global = first_line + c.global_line + (line_no - c.first_line);
                    match scorer.logit_tsv(line, labelled) {
                        Ok((z, label)) => out.push(format, Some(global as i64), global as i64, z, label),
                        Err(e) => {
                            out.unscorable(strict, &name, format!("line {line_no}"), e.to_string())?;
                        }
                    }
                }
                Ok(out)
            })
            .collect();
        for o in outs {
            sink(o?)?;
        }
    }
    Ok(chunks.iter().map(|c| c.lines).sum())
}

/// Runs batch prediction.
///
/// # Errors
/// See [`PredictError`]; on error no `_SUCCESS` is written and no output part
/// is left half-written.
pub fn run_batch(scorer: &Scorer, cfg: &PredictConfig) -> Result<PredictSummary, PredictError> {
    let t0 = Instant::now();
    if cfg.input_format == InputFormat::Tsv && !scorer.scores_tsv() {
        return Err(PredictError::NoVocabulary);
    }
    let out = &cfg.output;
    if out.exists() && std::fs::read_dir(out).map_err(io_err(out))?.next().is_some() {
        if !cfg.overwrite {
            return Err(PredictError::OutputExists(out.clone()));
        }
        for e in std::fs::read_dir(out).map_err(io_err(out))?.filter_map(Result::ok) {
            let n = e.file_name().to_string_lossy().into_owned();
            if n == "_SUCCESS" || n.starts_with("prediction.") {
                std::fs::remove_file(e.path()).map_err(io_err(&e.path()))?;
            }
        }
    }
    std::fs::create_dir_all(out).map_err(io_err(out))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads.max(1))
        .build()
        .map_err(|e| PredictError::Config(format!("cannot start {} threads: {e}", cfg.threads)))?;
    let n = cfg.inputs.len();
    let mut rows = 0u64;
    let mut errors: Vec<(String, Unscored)> = Vec::new();
    let mut eval: Option<Evaluator> = None;
    let mut parts = Vec::with_capacity(n);
    let mut bytes = 0u64;
    let mut position = 0u64;
    for (i, input) in cfg.inputs.iter().enumerate() {
        let mut name = writer::part_name(i, n);
        if cfg.output_format == OutputFormat::Parquet {
            name.push_str(".parquet");
        }
        let path = out.join(name);
        let mut part = PartSink::create(&path, cfg.output_format)?;
        let input_name = input.display().to_string();
        let mut part_rows = 0u64;
        let mut sink = |s: Scored| -> Result<(), PredictError> {
            part.append(&s, &path)?;
            part_rows += s.rows;
            errors.extend(s.errors.into_iter().map(|u| (input_name.clone(), u)));
            if let Some(e) = s.eval {
                eval.get_or_insert_with(Evaluator::new).merge(e);
            }
            Ok(())
        };
        pool.install(|| -> Result<(), PredictError> {
            match cfg.input_format {
                InputFormat::Tfrecord if Compression::from_path(input) == Compression::None => {
                    score_mapped(scorer, input, cfg.output_format, cfg.strict, position as i64, &mut sink)
                }
                InputFormat::Tfrecord => {
                    score_stream(scorer, input, cfg.output_format, cfg.strict, position as i64, &mut sink)
                }
                InputFormat::Tsv => {
                    let lines = score_tsv_file(scorer, input, out, cfg.output_format, cfg.strict, position, &mut sink)?;
                    position += lines;
                    Ok(())
                }
            }
        })?;
        if cfg.input_format == InputFormat::Tfrecord {
            position += part_rows;
        }
        rows += part_rows;
        bytes += part.finish(&path)?;
        parts.push(path);
    }
    let mut text = Vec::new();
    for (input, u) in &errors {
        let line = serde_json::json!({ "input": input, "position": u.position, "error": u.reason });
        text.extend_from_slice(line.to_string().as_bytes());
        text.push(b'\n');
    }
    sparky_tfrecord::sync_all(&parts)?;
    sparky_tfrecord::write_atomic(out.join(writer::ERRORS_FILE), &text)?;
    sparky_tfrecord::write_atomic(out.join("_SUCCESS"), b"")?;
    Ok(PredictSummary {
        rows,
        errors: errors.len() as u64,
        parts,
        bytes,
        metrics: eval.map(Evaluator::finish),
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Streaming prediction: reads TSV lines (39 fields, or 40 with a label) from
/// `input` and writes one JSON line per input line to `output`, flushing
/// whenever no more input is waiting. A line that cannot be scored gets an
/// `{"line": N, "error": "..."}` line, or ends the run with `strict`.
/// Returns (lines scored, lines in error).
pub fn run_stream<R: std::io::Read>(
    scorer: &Scorer,
    input: &mut std::io::BufReader<R>,
    mut output: impl Write,
    strict: bool,
) -> Result<(u64, u64), PredictError> {
    if !scorer.scores_tsv() {
        return Err(PredictError::NoVocabulary);
    }
    let stdout_path = PathBuf::from("<stdout>");
    let mut line = Vec::new();
    let mut out = Vec::with_capacity(1 << 16);
    let (mut ok, mut bad) = (0u64, 0u64);
    let mut n = 0u64;
    loop {
        line.clear();
        let got = input.read_until(b'\n', &mut line).map_err(io_err(Path::new("<stdin>")))?;
        if got == 0 {
            break;
        }
        n += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let labelled = line.iter().filter(|&&b| b == b'\t').count() + 1 == Mode::Train.fields();
        match scorer.logit_tsv(&line, labelled) {
            Ok((z, _)) => {
                writer::write_json_line(&mut out, Some(n as i64 - 1), sparky_linear::metrics::sigmoid(z));
                ok += 1;
            }
            Err(e) if strict => {
                return Err(PredictError::Unscorable {
                    input: "<stdin>".into(),
                    position: format!("line {n}"),
                    reason: e.to_string(),
                });
            }
            Err(e) => {
                writer::write_error_line(&mut out, n, &e.to_string());
                bad += 1;
            }
        }
        // Flush when no more input is buffered (the next read may wait), or
        // when the output is large.
        if input.buffer().is_empty() || out.len() > 1 << 16 {
            output.write_all(&out).map_err(io_err(&stdout_path))?;
            output.flush().map_err(io_err(&stdout_path))?;
            out.clear();
        }
    }
    output.write_all(&out).map_err(io_err(&stdout_path))?;
    output.flush().map_err(io_err(&stdout_path))?;
    Ok((ok, bad))
}
