//! Prediction with an exported sparky model: the guide's Cloud ML Engine
//! batch prediction, locally, and the scorers the online server uses.
//!
//! - [`Scorer`]: an export's model, scoring prepared rows (vocabulary ids);
//!   [`RawScorer`]: the model and its vocabulary, scoring raw Criteo rows,
//!   prepared exactly as criteo-prepare prepares them. Two types, so that
//!   nothing can ask a scorer without a vocabulary for raw rows.
//! - [`batch`]: [`run_prepared`] scores prepared parts (checked against
//!   their folder's record, and against the model's artifacts) and
//!   [`run_tsv`] raw TSV files, into `prediction.results-NNNNN-of-MMMMM`
//!   JSON-lines parts (or Parquet), one output part per input part, rows in
//!   input order, in parallel; rows that cannot be scored go to
//!   `prediction.errors_stats-00000-of-00001`.
//! - [`run_stream`]: one JSON line out per TSV line in, flushed as it goes
//!   (the guide's stopgap for online prediction).
//! - [`writer`]: the JSON-lines format.
//!
//! ```no_run
//! use sparky_predict::RawScorer;
//! use sparky_export::ExportDir;
//!
//! let scorer = RawScorer::new(ExportDir::load("job".as_ref())?)?;
//! let line = b"\t1\t5\t0\t1382\t4\t15\t2\t181\t1\t2\t\t2\t68fd1e64\t80e26c9b\tfb936136\t7b4723c4\t25c83c98\t7e0ccccf\tde7995b8\t1f89b1b5\ta73ee510\ta8cd5504\tb2cb9c98\t37c9c164\t2824a5f6\t1adce6ef\t8ba8b39a\t891b62e7\te5ba7672\tf54016b9\t21ddcdc9\tb1252a9d\t07b5194c\t\t3a171ecb\tc5c50484\te8b83407\t9727dd16";
//! let p = scorer.score_tsv(&line[1..])?;
//! println!("p(click) = {p}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod batch;
mod scorer;
pub mod writer;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

pub use batch::{BatchConfig, Input, InputFormat, OutputFormat, run_prepared, run_tsv};
pub use scorer::{RawScorer, Scorer};
use sparky_export::ExportError;
use sparky_linear::Metrics;
use sparky_prepared::{PreparedError, ReadError};

/// Why prediction failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PredictError {
    /// Loading the model.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// Building the vocabulary from the export's artifacts.
    #[error(transparent)]
    Artifacts(#[from] sparky_prepared::ArtifactError),
    /// The export's artifacts changed after it was loaded.
    #[error("{}: the artifacts changed after the export was loaded", .0.display())]
    ArtifactsChanged(PathBuf),
    /// Finding or reading raw inputs.
    #[error(transparent)]
    Input(#[from] sparky_criteo::input::InputError),
    /// A prepared input that is not complete, or prepared with other
    /// artifacts than the model's.
    #[error(transparent)]
    Prepared(#[from] PreparedError),
    /// Reading prepared records failed (damaged framing, an altered part).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Locking, writing or committing outputs, or an interrupt.
    #[error(transparent)]
    Output(#[from] sparky_io::Error),
    /// I/O on a file.
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
    #[error("{}: {position}: {reason} (without --strict such rows are listed in {})", input.display(), writer::ERRORS_FILE)]
    Unscorable {
        /// The input.
        input: PathBuf,
        /// "line 17", "record at byte 1234".
        position: String,
        /// Why.
        reason: String,
    },
    /// A streamed line that could not be scored, with `--strict`.
    #[error("<stdin>: line {line}: {reason}")]
    UnscorableLine {
        /// 1-based line.
        line: u64,
        /// Why.
        reason: String,
    },
    /// Input of another kind than declared or expected.
    #[error("{}: {found}; {hint}", path.display())]
    WrongInputKind {
        /// The file.
        path: PathBuf,
        /// What it looks like.
        found: &'static str,
        /// What to do.
        hint: &'static str,
    },
    /// The output folder holds files and `--overwrite` was not given.
    #[error("{} is not empty; pass --overwrite to replace its contents", .0.display())]
    OutputExists(PathBuf),
    /// Not one row of a non-empty input could be scored.
    #[error("no row could be scored: all {records} rows of the input failed (see the first errors above, or rerun with --strict to stop at the first); nothing was written to {}", output.display())]
    NothingScored {
        /// The output folder.
        output: PathBuf,
        /// Rows (records or lines) seen.
        records: u64,
    },
    /// A setting that does not work.
    #[error("{name}: {what}")]
    Setting {
        /// The setting.
        name: &'static str,
        /// What is wrong.
        what: String,
    },
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

/// Streaming prediction: reads TSV lines (39 fields, or 40 with a label,
/// decided line by line) from `input` and writes one JSON line per input
/// line to `output`, flushing whenever no more input is waiting. A line that
/// cannot be scored gets an `{"line": N, "error": "..."}` line, or ends the
/// run with `strict`. Returns (lines scored, lines in error).
///
/// # Errors
/// Reading or writing fails; a bad line with `strict`.
pub fn run_stream<R: std::io::Read>(
    scorer: &RawScorer,
    input: &mut std::io::BufReader<R>,
    mut output: impl Write,
    strict: bool,
) -> Result<(u64, u64), PredictError> {
    let stdout = Path::new("<stdout>");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PredictError::Io { path, source }
    };
    let mut line = Vec::new();
    let mut out = Vec::with_capacity(1 << 16);
    let (mut ok, mut bad) = (0u64, 0u64);
    let mut n = 0u64;
    loop {
        line.clear();
        let got = input.read_until(b'\n', &mut line).map_err(io(Path::new("<stdin>")))?;
        if got == 0 {
            break;
        }
        n += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        match scorer.logit_tsv(&line) {
            Ok((z, _)) => {
                writer::write_json_line(&mut out, Some(n as i64 - 1), sparky_linear::metrics::sigmoid(z));
                ok += 1;
            }
            Err(e) if strict => return Err(PredictError::UnscorableLine { line: n, reason: e.to_string() }),
            Err(e) => {
                writer::write_error_line(&mut out, n, &e.to_string());
                bad += 1;
            }
        }
        // Flush when no more input is buffered (the next read may wait), or
        // when the output is large.
        if input.buffer().is_empty() || out.len() > 1 << 16 {
            output.write_all(&out).and_then(|()| output.flush()).map_err(io(stdout))?;
            out.clear();
        }
    }
    output.write_all(&out).and_then(|()| output.flush()).map_err(io(stdout))?;
    Ok((ok, bad))
}
