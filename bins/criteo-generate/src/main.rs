//! `criteo-generate`: writes Criteo-shaped TSV data with a planted click
//! model. The work is done by `sparky_datagen`; this is argument parsing,
//! output handling and exit codes.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use sparky_datagen::{GenerateSummary, Generator, GeneratorConfig, generate};
use sparky_io::AtomicFile;

const AFTER_HELP: &str = "\
Output: Kaggle train.txt layout, one row per line: label, I1..I13, C1..C26 separated by tabs (40 fields), or \
39 fields without the label with --unlabelled. An empty field is a missing value. Row i is a pure function of \
(seed, i): the bytes do not depend on --threads, and --first-row splits one stream into disjoint files of the \
same distribution (for example --rows 1000000 for training, then --first-row 1000000 --rows 100000 for \
evaluation, same seed).

Summary: one JSON line {rows, bytes, positives, best_log_loss, expected_entropy, seconds} goes to standard \
output when --out is a file, and to standard error when the data goes to standard output. best_log_loss is \
the planted model's own log loss on the rows written (the best a model can score on them); expected_entropy \
is its expectation over the label draws (the mean binary entropy of the planted probabilities).";

/// Writes Criteo-shaped TSV data (Kaggle display-advertising layout) with a
/// planted click model, deterministically and in parallel.
#[derive(Debug, Parser)]
#[command(name = "criteo-generate", version, after_help = format!("{AFTER_HELP}\n\n{}", sparky_cli::EXIT_CODES_HELP))]
struct Args {
    /// Number of rows to write (required).
    #[arg(long, value_name = "N")]
    rows: u64,

    /// Index of the first row: rows K..K+N are written.
    #[arg(long, value_name = "K", default_value_t = 0)]
    first_row: u64,

    /// Seed: picks the sample; the distributions and the planted model are the same for every seed.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,

    /// Omit the label column (39 fields, like Kaggle test.txt) [default: labelled, 40 fields].
    #[arg(long)]
    unlabelled: bool,

    /// Worker threads; the output does not depend on it [default: the number of CPUs].
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u32).range(1..=1024))]
    threads: Option<u32>,

    /// Output file, written atomically (a hidden temporary file in the same folder, renamed when
    /// complete), or - for standard output. A path that exists and is not a regular file (/dev/null,
    /// a named pipe) is written directly.
    #[arg(long, value_name = "PATH|-", default_value = "-")]
    out: PathBuf,
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("creating the output file")]
    Create(#[source] sparky_io::Error),
    #[error("opening {}", .path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("writing {}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("writing standard output")]
    Stdout(#[source] io::Error),
    #[error("finishing the output file")]
    Commit(#[source] sparky_io::Error),
}

fn main() -> ExitCode {
    let args = Args::parse();
    sparky_cli::main_wrapper("criteo-generate", || run(&args))
}

fn run(args: &Args) -> Result<(), Error> {
    let generator = Generator::new(GeneratorConfig { seed: args.seed, labelled: !args.unlabelled });
    let threads = match args.threads {
        Some(t) => t as usize,
        None => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
    };
    let started = Instant::now();
    let to_stdout = args.out.as_os_str() == "-";
    let summary = if to_stdout {
        let mut out = io::stdout().lock();
        let summary = generate(&generator, args.first_row, args.rows, threads, &mut out).map_err(Error::Stdout)?;
        out.flush().map_err(Error::Stdout)?;
        summary
    } else if fs::metadata(&args.out).is_ok_and(|m| !m.is_file()) {
        // Renaming a file over /dev/null would replace the device.
        let open = |source| Error::Open { path: args.out.clone(), source };
        let mut out = fs::OpenOptions::new().write(true).open(&args.out).map_err(open)?;
        generate(&generator, args.first_row, args.rows, threads, &mut out)
            .map_err(|source| Error::Write { path: args.out.clone(), source })?
    } else {
        let mut file = AtomicFile::create(&args.out).map_err(Error::Create)?;
        let summary = generate(&generator, args.first_row, args.rows, threads, &mut file)
            .map_err(|source| Error::Write { path: file.path().to_path_buf(), source })?;
        file.commit().map_err(Error::Commit)?;
        summary
    };
    let line = summary_json(&summary, started.elapsed().as_secs_f64());
    if to_stdout {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
    Ok(())
}

fn summary_json(s: &GenerateSummary, seconds: f64) -> String {
    serde_json::json!({
        "rows": s.rows,
        "bytes": s.bytes,
        "positives": s.positives,
        "best_log_loss": s.best_log_loss,
        "expected_entropy": s.expected_entropy,
        "seconds": (seconds * 1000.0).round() / 1000.0,
    })
    .to_string()
}
