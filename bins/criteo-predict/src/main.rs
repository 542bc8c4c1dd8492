//! `criteo-predict`: scores rows with an exported model. See `criteo-predict --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use sparky_cli::{ProgressBar, human_bytes, human_rate};
use sparky_export::ExportDir;
use sparky_io::Progress;
use sparky_predict::{BatchConfig, Input, InputFormat, OutputFormat, PredictError, RawScorer, Scorer};

/// The run's progress, and the stop request of SIGINT and SIGTERM.
static PROGRESS: Progress = Progress::new();

#[derive(Debug, Clone, Copy, ValueEnum)]
enum InputFormatArg {
    /// TFRecords of prepared Examples (criteo-prepare output; any compression).
    Tfrecord,
    /// Parquet parts of prepared rows (criteo-prepare --format parquet, or Spark or
    /// pandas output with the same columns by name; see docs/formats.md).
    Parquet,
    /// Raw Criteo TSV, prepared on the fly with the export's artifacts: 39 fields,
    /// or 40 with a label first, decided line by line (with labels, log loss and
    /// AUC are printed too).
    Tsv,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    /// JSON lines: {"id": N, "classes": ["0", "1"], "scores": [p0, p1]}.
    Json,
    /// Parquet with columns id, score_0, score_1.
    Parquet,
}

/// Scores rows with a model exported by criteo-train, as the guide's Cloud ML
/// Engine batch prediction did.
///
/// Batch: the input is checked first: a prepared folder must be complete
/// (_SUCCESS, exactly the parts its _prepare.json lists, with their sizes and
/// rows) and prepared with the model's artifacts; its kind (prepared
/// TFRecords or raw TSV) is detected from its bytes. Each input file becomes
/// one output part,
/// OUTPUT/prediction.results-00000-of-00004 ..., one JSON line per row in
/// input order: {"id": N, "classes": ["0", "1"], "scores": [p0, p1]} with
/// p0 = 1 - p1 = 1 - p(click); "id" appears where the input carries one
/// (criteo-prepare --mode predict output) and is the 0-based line number for
/// TSV input. Rows that cannot be scored are listed with their position and
/// reason in OUTPUT/prediction.errors_stats-00000-of-00001 (or stop the run
/// with --strict). _SUCCESS is written last.
///
/// Streaming: --input - --output - reads TSV lines from standard input and
/// answers each with one JSON line on standard output, flushed as it goes.
///
/// Examples:
///
///   criteo-predict --model job --input prepared/test --output predictions
///
///   tail -n 5 test.txt | criteo-predict --model job --input - --output -
#[derive(Debug, Parser)]
#[command(name = "criteo-predict", version, after_help = sparky_cli::EXIT_CODES_HELP)]
struct Args {
    /// An export folder, or a job folder (then its newest export under export/Servo/).
    #[arg(long, value_name = "PATH")]
    model: PathBuf,

    /// A folder of part-* files, a file, a glob (quote it), or - for standard input (streaming).
    #[arg(long, value_name = "PATH")]
    input: PathBuf,

    /// The output folder, or - for standard output (streaming, with --input -).
    #[arg(long, value_name = "DIR")]
    output: PathBuf,

    /// What the input holds [default: detected: a prepared folder, Parquet's magic,
    /// TFRecord framing, or text; TSV for standard input].
    #[arg(long, value_enum, value_name = "FORMAT")]
    input_format: Option<InputFormatArg>,

    /// Read a prepared folder that is not a complete criteo-prepare run (no
    /// _prepare.json or _SUCCESS, parts missing, extra or of another size): the
    /// part-* files present are scored, their rows not checked against a record.
    #[arg(long)]
    allow_incomplete: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Json)]
    format: FormatArg,

    /// Stop at the first row that cannot be scored, instead of listing it.
    #[arg(long)]
    strict: bool,

    /// Replace the output folder's contents.
    #[arg(long)]
    overwrite: bool,

    /// Worker threads, 1 to 256 [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,

    /// Print nothing but errors.
    #[arg(short, long)]
    quiet: bool,
}

/// A command-line error (exit code 2), as clap reports one.
fn usage_error(msg: &str) -> ! {
    use clap::CommandFactory;
    Args::command().error(clap::error::ErrorKind::ArgumentConflict, msg).exit()
}

fn run(args: Args) -> Result<(), PredictError> {
    let stdin = args.input.as_os_str() == "-";
    let stdout = args.output.as_os_str() == "-";
    if stdin || stdout {
        if !(stdin && stdout) {
            usage_error("streaming needs both --input - and --output - (a batch run reads files and writes a folder)");
        }
        if matches!(args.input_format, Some(InputFormatArg::Tfrecord | InputFormatArg::Parquet))
            || matches!(args.format, FormatArg::Parquet)
        {
            usage_error(
                "streaming reads TSV lines and writes JSON lines: drop --input-format tfrecord/parquet and --format parquet",
            );
        }
        let scorer = RawScorer::new(ExportDir::load(&args.model)?)?;
        let mut input = std::io::BufReader::with_capacity(1 << 16, std::io::stdin().lock());
        let (ok, bad) = sparky_predict::run_stream(&scorer, &mut input, std::io::stdout().lock(), args.strict)?;
        if !args.quiet {
            eprintln!("criteo-predict: {ok} lines scored, {bad} in error");
        }
        return Ok(());
    }
    let export = ExportDir::load(&args.model)?;
    let format = args.input_format.map(|f| match f {
        InputFormatArg::Tsv => InputFormat::Tsv,
        InputFormatArg::Tfrecord => InputFormat::Tfrecord,
        InputFormatArg::Parquet => InputFormat::Parquet,
    });
    let input = Input::resolve(&args.input, format, args.allow_incomplete)?;
    let cfg = BatchConfig {
        output: args.output.clone(),
        output_format: match args.format {
            FormatArg::Json => OutputFormat::Json,
            FormatArg::Parquet => OutputFormat::Parquet,
        },
        strict: args.strict,
        overwrite: args.overwrite,
        threads: args.threads.map_or_else(|| std::thread::available_parallelism().map_or(1, usize::from), usize::from),
    };
    sparky_cli::stop_on_signals(&PROGRESS);
    let bar = ProgressBar::start(args.quiet, &PROGRESS);
    // Prepared records carry vocabulary ids already: only raw lines need the
    // vocabulary, whose loading dominates small runs.
    let (s, export_dir) = match &input {
        Input::Prepared(dir) => {
            let scorer = Scorer::new(export);
            (sparky_predict::run_prepared(&scorer, dir, &cfg, &PROGRESS), scorer.export_dir().to_path_buf())
        }
        Input::Tsv(files) => {
            let scorer = RawScorer::new(export)?;
            (sparky_predict::run_tsv(&scorer, files, &cfg, &PROGRESS), scorer.export_dir().to_path_buf())
        }
    };
    drop(bar);
    let s = s?;
    if !args.quiet {
        eprintln!(
            "criteo-predict: {} rows scored ({} could not be) with {} in {:.2} s ({}); {} parts, {} in {}",
            s.rows,
            s.errors,
            export_dir.display(),
            s.seconds,
            human_rate(s.rows, s.seconds),
            s.parts.len(),
            human_bytes(s.bytes),
            cfg.output.display()
        );
        if let Some(m) = s.metrics {
            eprintln!(
                "criteo-predict: labelled input: log_loss {:.5} auc {:.5} accuracy {:.4} examples {}",
                m.log_loss, m.auc, m.accuracy, m.examples
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    sparky_cli::main_wrapper("criteo-predict", || run(args))
}
