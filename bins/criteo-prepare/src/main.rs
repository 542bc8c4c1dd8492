//! `criteo-prepare`: Criteo TSV to ranked TFRecord (or Parquet) parts, with
//! vocabulary artifacts. See `criteo-prepare --help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use sparky_cli::{ProgressBar, human_bytes, human_count, human_rate};
use sparky_criteo::input;
use sparky_criteo::prepare::{self, BadLines, PartCompression, PartFormat, PrepareConfig, Progress};
use sparky_io::DirLock;
use sparky_prepared::schema::Mode;

/// The run's progress, and the stop request of SIGINT and SIGTERM.
static PROGRESS: Progress = Progress::new();

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    /// Labelled input (40 fields); build the vocabulary and write the artifacts to --model.
    Train,
    /// Labelled input (40 fields); load the artifacts from --model.
    Evaluate,
    /// Unlabelled input (39 fields, as Kaggle's test.txt); load the artifacts; Examples carry `id`.
    Predict,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompressionArg {
    /// Plain files.
    None,
    /// GZIP (TFRecord: whole-file gzip, names end in .gz; Parquet: the GZIP codec).
    Gzip,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    /// TFRecord files of tf.train.Example, as the guide's trainer reads.
    Tfrecord,
    /// Parquet files with one INT64 column per feature, for Spark and pandas.
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StageArg {
    /// The whole job (the usual single-machine run).
    All,
    /// Count one shard of train-mode input into a partial counts file (--out is that file).
    Count,
    /// Merge partial counts files (--in: a folder or glob of them) into the artifacts in --model,
    /// byte-identical to what a single train-mode run writes.
    Merge,
    /// Transform with existing artifacts, also in train mode (the per-shard step after a merge);
    /// use --first-part and --first-line to make part names and ids globally consistent.
    Transform,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum BadLinesArg {
    /// Stop at the first malformed line, naming the file, line and column.
    Error,
    /// Skip malformed lines, count them, and list them in OUT/_rejects.
    Skip,
}

/// Turns Criteo Kaggle TSV (label, I1..I13, C1..C26; empty field = missing)
/// into TFRecord files of tf.train.Example, ready for training.
///
/// Missing integers become -10; a missing categorical value is a category of
/// its own. Each categorical value is replaced by its rank in a per-feature
/// vocabulary sorted by descending count (ties by value); rank 1 is the most
/// frequent value, id 0 means "not in the vocabulary". Train mode builds the
/// vocabulary and writes it to --model (categorical-value-counts.csv and
/// manifest.json); evaluate and predict modes load it.
///
/// Outputs: OUT/part-r-00000.tfrecord ... (each part a consecutive run of
/// input lines, in order), OUT/_prepare.json (what was done, and where the
/// artifacts are), and OUT/_SUCCESS, written last. Every file is written under
/// a temporary name and renamed when complete.
///
/// Example (the guide's three runs):
///
///   criteo-prepare -b data -i train.tsv -o prepared/train -m train -x model
///   criteo-prepare -b data -i eval.tsv  -o prepared/eval  -m evaluate -x model
///   criteo-prepare -b data -i test.txt  -o prepared/test  -m predict -x model
#[derive(Debug, Parser)]
#[command(name = "criteo-prepare", version, after_help = sparky_cli::EXIT_CODES_HELP)]
struct Args {
    /// Folder that relative --in, --out and --model paths are taken from.
    #[arg(short = 'b', long, value_name = "DIR")]
    base: Option<PathBuf>,

    /// Input: a TSV file, a folder (its files, except names starting with . or _),
    /// a glob such as 'day_*.gz' (quote it), or - for standard input. Files ending
    /// in .gz are decompressed.
    #[arg(short = 'i', long = "in", value_name = "PATH")]
    input: PathBuf,

    /// Output folder for the part files. It must be empty or absent, unless --overwrite.
    /// (With --stage count: the partial counts file. Not used by --stage merge.)
    #[arg(short = 'o', long, value_name = "DIR", required_unless_present = "stage")]
    out: Option<PathBuf>,

    /// Which run this is (required, except for --stage count and merge, which are train mode).
    #[arg(short = 'm', long, value_enum, required_unless_present = "stage")]
    mode: Option<ModeArg>,

    /// Folder of the preprocessing artifacts: written in train mode, read otherwise.
    /// (Not used by --stage count.)
    #[arg(short = 'x', long, value_name = "DIR", required_unless_present = "stage")]
    model: Option<PathBuf>,

    /// Number of part files (1 to 100000); part p holds lines [p*L/P, (p+1)*L/P) of the L input lines.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    num_partitions: u32,

    /// Output compression.
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    compression: CompressionArg,

    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Tfrecord)]
    format: FormatArg,

    /// Train mode: values seen fewer times are left out of the vocabulary (id 0); at least 1.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    min_count: u64,

    /// What to do with a malformed line (too many fields, a non-integer in an
    /// integer column, a label other than 0/1). Lines with too few fields are
    /// padded with missing values, as some public copies strip them.
    #[arg(long, value_enum, default_value_t = BadLinesArg::Error)]
    bad_lines: BadLinesArg,

    /// Replace the contents of --out, and in train mode the artifacts in --model.
    #[arg(long)]
    overwrite: bool,

    /// Do not flush part files to disk (fsync) before renaming them into place.
    /// Faster when the disk is slower than the page cache; a killed run still
    /// leaves no complete-looking partial file, but after an operating-system
    /// crash a part could be incomplete. Artifacts, _prepare.json and _SUCCESS
    /// are always synced.
    #[arg(long)]
    no_sync: bool,

    /// Memory for the vocabulary's tables, such as 512M or 2G
    /// (K, M, G, T: powers of 1024; a plain number is bytes) [default: half of
    /// the machine's memory, printed at the start]. Counting holds one table
    /// entry per distinct value (about 13 bytes); when the tables would
    /// outgrow the limit, counts spill to sorted runs in hidden files in --out,
    /// merged at the end, and the run completes with the same artifacts and
    /// parts. Set it when the data's distinct values outgrow the memory you
    /// can give (Kaggle's 45M lines: about 34M values, 450 MB; Criteo's 1 TB
    /// logs: several GB), or to leave room for other work. Not counted:
    /// fixed per-thread buffers (Parquet: about 20 MiB a thread) and the
    /// mapped input's pages. Too small to hold the threads' batches and 26
    /// small tables is refused before any work. Evaluate and predict modes:
    /// when the vocabulary would take more (about 24 bytes a value), its ids
    /// are looked up in a sorted file written in --out instead (slower, same
    /// parts).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    memory_limit: Option<u64>,

    /// Worker threads, 1 to 256 [default: the number of cores]. Outputs are identical whatever the count.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,

    /// Run one stage of a sharded job (for a cluster: see integrations/spark) instead of the
    /// whole job [default: the whole job].
    #[arg(long, value_enum)]
    stage: Option<StageArg>,

    /// Transform stage: number of the first part file this shard writes.
    #[arg(long, default_value_t = 0, value_name = "N")]
    first_part: usize,

    /// Transform stage: global 0-based number of this shard's first input line
    /// (the predict-mode `id` of its first row).
    #[arg(long, default_value_t = 0, value_name = "N")]
    first_line: u64,

    /// No progress bar (drawn only when standard error is a terminal anyway): only the
    /// summary lines and errors.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Input(#[from] input::InputError),
    #[error(transparent)]
    Prepare(#[from] prepare::PrepareError),
    #[error(transparent)]
    Artifacts(#[from] sparky_prepared::ArtifactError),
}

/// `512M`, `2G`, `1.5G`, `65536`: K, M, G, T are powers of 1024.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = t[i..].to_ascii_uppercase();
            let mult: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => return Err(format!("unknown unit {:?} (use K, M, G or T, e.g. 512M)", &t[i..])),
            };
            (&t[..i], mult)
        }
        None => (t, 1),
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("{s:?} is not a size such as 512M or 2G"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("{s:?} is not a size such as 512M or 2G"));
    }
    Ok((v * mult as f64) as u64)
}

fn join(base: Option<&Path>, p: &Path) -> PathBuf {
    match base {
        Some(b) if p.is_relative() && p.as_os_str() != "-" => b.join(p),
        _ => p.to_path_buf(),
    }
}

/// The error clap would print for a missing flag (exit code 2).
fn missing(flag: &str, stage: &str) -> ! {
    use clap::CommandFactory;
    Args::command()
        .error(clap::error::ErrorKind::MissingRequiredArgument, format!("{flag} is required with --stage {stage}"))
        .exit()
}

fn run(args: Args) -> Result<(), CliError> {
    let base = args.base.as_deref();
    let stage = args.stage.unwrap_or(StageArg::All);
    let stage_name = format!("{stage:?}").to_lowercase();
    let model_arg = || args.model.clone().unwrap_or_else(|| missing("--model", &stage_name));
    let out_arg = || args.out.clone().unwrap_or_else(|| missing("--out", &stage_name));
    if stage == StageArg::Merge {
        let files: Vec<PathBuf> = input::resolve(&join(base, &args.input))?
            .into_iter()
            .filter_map(|s| match s {
                input::Source::File(p) => Some(p),
                input::Source::Stdin => None,
            })
            .collect();
        let model = join(base, &model_arg());
        let lock = DirLock::acquire(&model).map_err(sparky_prepared::ArtifactError::from)?;
        let m = sparky_criteo::artifacts::merge_partial_counts(&files, &lock, args.min_count, args.overwrite)?;
        eprintln!(
            "criteo-prepare: merged {} partial counts ({} rows, {} rejected) into {}",
            files.len(),
            m.manifest.rows_read,
            m.manifest.rows_rejected,
            model.display()
        );
        return Ok(());
    }
    let sources = input::resolve(&join(base, &args.input))?;
    let mode = match (args.mode, stage) {
        (Some(ModeArg::Train), _) | (None, StageArg::Count) => Mode::Train,
        (Some(ModeArg::Evaluate), _) => Mode::Evaluate,
        (Some(ModeArg::Predict), _) => Mode::Predict,
        (None, _) => missing("--mode", &stage_name),
    };
    if stage == StageArg::Count && mode != Mode::Train {
        missing("--mode train (or no --mode)", &stage_name);
    }
    // The count stage writes no artifacts: any model folder will do.
    let model = if stage == StageArg::Count { args.model.clone().unwrap_or_default() } else { model_arg() };
    let mut cfg = PrepareConfig::new(sources, join(base, &out_arg()), mode, join(base, &model));
    cfg.num_partitions = args.num_partitions as usize;
    cfg.compression = match args.compression {
        CompressionArg::None => PartCompression::None,
        CompressionArg::Gzip => PartCompression::Gzip,
    };
    cfg.format = match args.format {
        FormatArg::Tfrecord => PartFormat::Tfrecord,
        FormatArg::Parquet => PartFormat::Parquet,
    };
    cfg.min_count = args.min_count;
    cfg.bad_lines = match args.bad_lines {
        BadLinesArg::Error => BadLines::Error,
        BadLinesArg::Skip => BadLines::Skip,
    };
    cfg.overwrite = args.overwrite;
    cfg.sync = !args.no_sync;
    if let Some(t) = args.threads {
        cfg.threads = usize::from(t);
    }
    cfg.first_part = args.first_part;
    cfg.first_line = args.first_line;
    cfg.load_artifacts = stage == StageArg::Transform;
    if let Some(limit) = args.memory_limit {
        cfg.memory_limit = limit;
    }
    if stage == StageArg::All {
        eprintln!(
            "criteo-prepare: memory limit {}{}",
            human_bytes(cfg.memory_limit),
            if args.memory_limit.is_some() { "" } else { " (half of this machine's memory; see --memory-limit)" }
        );
    }
    sparky_cli::stop_on_signals(&PROGRESS);
    let bar = ProgressBar::start(args.quiet, &PROGRESS);
    if stage == StageArg::Count {
        let (rows, rejected) = prepare::count_stage(&cfg, &cfg.out_dir, &PROGRESS)?;
        drop(bar);
        eprintln!("criteo-prepare: counted {rows} rows ({rejected} rejected) into {}", cfg.out_dir.display());
        return Ok(());
    }
    let s = prepare::run(&cfg, &PROGRESS)?;
    drop(bar);
    let rejected = s.rejected_total();
    let reasons: Vec<String> = s.rejected.iter().map(|(r, n)| format!("{n} {r}")).collect();
    eprintln!(
        "criteo-prepare: {mode}: {} rows from {} lines ({} rejected{}) of {} in {:.2} s ({}, {}/s); {} parts, {} in {}",
        s.rows,
        s.lines,
        rejected,
        if reasons.is_empty() { String::new() } else { format!(": {}", reasons.join(", ")) },
        human_bytes(s.input_bytes),
        s.total_seconds,
        human_rate(s.rows, s.total_seconds),
        human_bytes((s.input_bytes as f64 / s.total_seconds.max(1e-9)) as u64),
        s.parts.len(),
        human_bytes(s.output_bytes()),
        cfg.out_dir.display(),
    );
    let sizes: Vec<String> = s.vocabulary_sizes.iter().map(|&n| human_count(n)).collect();
    eprintln!(
        "criteo-prepare: vocabulary sizes C1..C26: {} ({} {})",
        sizes.join(" "),
        if mode == Mode::Train && !cfg.load_artifacts { "written to" } else { "read from" },
        cfg.model_dir.display()
    );
    if mode == Mode::Train && !cfg.load_artifacts {
        eprintln!(
            "criteo-prepare: counting {:.2} s{}, writing parts {:.2} s",
            s.count_seconds,
            if s.spills > 0 {
                format!(" ({} runs spilled to disk within the memory limit)", s.spills)
            } else {
                String::new()
            },
            s.write_seconds
        );
    }
    Ok(())
}

/// Makes glibc's malloc serve every allocation of 128 KiB or more by its own
/// mapping, given back to the system when freed. By default the threshold
/// rises after each large free, and freed tables and buffers then stay
/// resident in the heap: with counting tables that grow, spill and give way
/// to the vocabulary, that kept up to twice the memory limit resident.
fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc tunable; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

fn main() -> ExitCode {
    fixed_mmap_threshold();
    let args = Args::parse();
    sparky_cli::main_wrapper("criteo-prepare", || run(args))
}
