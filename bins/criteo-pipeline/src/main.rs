//! `criteo-pipeline`: the guide's three steps on a generated data set, in one
//! command. The work is `sparky_pipeline::run`; this prints. See
//! `criteo-pipeline --help`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sparky_cli::{ProgressBar, human_bytes, human_count, human_rate};
use sparky_io::Progress;
use sparky_pipeline::{PipelineConfig, PipelineError, Report, Step};

/// The run's progress, and the stop request of SIGINT and SIGTERM.
static PROGRESS: Progress = Progress::new();

/// Runs the whole pipeline of the guide "Using Spark to feed TensorFlow" on a
/// generated, Criteo-shaped data set, with nothing but this build:
///
///  1. generates training, evaluation and test rows (Kaggle layout, the Kaggle
///     per-column cardinalities, labels from a planted logistic model);
///  2. criteo-prepare in train, evaluate and predict modes;
///  3. criteo-train (FTRL logistic regression, evaluation, TensorBoard logs, export);
///  4. criteo-predict on the test rows.
///
/// It prints the evaluation metrics next to the best log loss achievable on
/// those rows (the planted model's own), the throughput of every step, where
/// every output went, and the equivalent commands of the separate tools.
/// Everything goes under --dir, whose outputs of an earlier run are replaced.
#[derive(Debug, Parser)]
#[command(name = "criteo-pipeline", version, after_help = sparky_cli::EXIT_CODES_HELP)]
struct Args {
    /// Folder for the data and every output.
    #[arg(long, default_value = "sparky-demo", value_name = "DIR")]
    dir: PathBuf,

    /// Training rows to generate (at least 1).
    #[arg(long, default_value_t = 1_000_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    rows: u64,

    /// Evaluation rows (generated after the training rows, same distribution; at least 1).
    #[arg(long, default_value_t = 100_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    eval_rows: u64,

    /// Unlabelled test rows for batch prediction (at least 1).
    #[arg(long, default_value_t = 100_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    test_rows: u64,

    /// Passes over the training data (at least 1).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    epochs: u64,

    /// Seed of the generated data.
    #[arg(long, default_value_t = 1, value_name = "N")]
    seed: u64,

    /// Threads for every step, 1 to 256 [default: the number of cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,

    /// Print only the final figures.
    #[arg(short, long)]
    quiet: bool,
}

fn print_report(args: &Args, r: &Report, threads: usize) {
    let d = args.dir.display();
    let g = &r.generated;
    let rows = g.train.rows + g.eval.rows + g.test.rows;
    if !args.quiet {
        eprintln!(
            "  generated {} rows, {} in {:.2} s ({}); {:.1}% of the training rows clicked",
            human_count(rows),
            human_bytes(g.train.bytes + g.eval.bytes + g.test.bytes),
            g.seconds,
            human_rate(rows, g.seconds),
            100.0 * g.train.positives as f64 / g.train.rows.max(1) as f64
        );
    }
    let m = r.train.metrics;
    println!();
    println!("evaluation on {} held-out rows:", human_count(m.examples));
    println!("  log loss          {:.5}", m.log_loss);
    println!("  best achievable   {:.5}  (the planted model's own log loss on these rows)", g.eval.best_log_loss);
    println!("  constant rate     {:.5}  (always predicting the click rate)", r.constant_log_loss());
    println!("  AUC               {:.5}", m.auc);
    println!("  accuracy          {:.5}", m.accuracy);
    println!("  mean prediction   {:.5}  (label mean {:.5})", m.mean_prediction, m.label_mean);
    println!("throughput ({threads} threads):");
    for (name, s) in ["prepare train", "prepare eval", "prepare test"].iter().zip(&r.prepared) {
        println!(
            "  {name:<15} {:>10}  ({} rows, {} parts, {})",
            human_rate(s.rows, s.total_seconds),
            human_count(s.rows),
            s.parts.len(),
            human_bytes(s.output_bytes())
        );
    }
    let t = &r.train;
    println!(
        "  {:<15} {:>10} examples per second ({} epochs, {} steps)",
        "train",
        human_rate(t.examples, t.train_seconds),
        t.epochs,
        t.global_step
    );
    println!("  {:<15} {:>10}", "predict", human_rate(r.predict.rows, r.predict.seconds));
    println!("outputs under {d}:");
    println!("  data/                  generated TSV (train, eval, test)");
    println!("  model/                 vocabulary artifacts (categorical-value-counts.csv, manifest.json)");
    println!("  prepared/{{train,eval,test}}/part-r-*.tfrecord   tf.train.Example files");
    println!(
        "  job/                   checkpoints, metrics.json, TensorBoard: tensorboard --logdir {}",
        args.dir.join("job").display()
    );
    println!("  {}", r.export.strip_prefix(&args.dir).unwrap_or(&r.export).display());
    println!("                         the export: model.pb, artifacts/, saved_model.pb, manifest.json");
    println!("  predictions/           prediction.results-* (JSON lines)");
    println!("the same with the separate tools:");
    println!("  criteo-generate --rows {} --out {d}/data/train.tsv", args.rows);
    println!("  criteo-prepare -b {d} -i data/train.tsv -o prepared/train -m train -x model");
    println!("  criteo-prepare -b {d} -i data/eval.tsv -o prepared/eval -m evaluate -x model");
    println!("  criteo-prepare -b {d} -i data/test.tsv -o prepared/test -m predict -x model");
    println!(
        "  criteo-train --job-dir {d}/job --train-dir {d}/prepared/train --eval-dir {d}/prepared/eval --epochs {}",
        args.epochs
    );
    println!("  criteo-predict --model {d}/job --input {d}/prepared/test --output {d}/predictions");
    println!("and online, with TensorFlow Serving's REST and gRPC APIs (README, \"4. Serve\"):");
    println!("  criteo-serve --model-base-path {d}/job/export/Servo");
    println!(
        "  curl -s -d \"{{\\\"instances\\\": [\\\"$(head -n 1 {d}/data/test.tsv | sed 's/\\t/\\\\t/g')\\\"]}}\" localhost:8501/v1/models/sparky:predict"
    );
    if !args.quiet {
        eprintln!("\ncriteo-pipeline: done in {:.1} s", r.seconds);
    }
}

fn run(args: &Args) -> Result<(), PipelineError> {
    let mut cfg = PipelineConfig::new(args.dir.clone());
    (cfg.rows, cfg.eval_rows, cfg.test_rows, cfg.epochs, cfg.seed) =
        (args.rows, args.eval_rows, args.test_rows, args.epochs, args.seed);
    if let Some(t) = args.threads {
        cfg.threads = usize::from(t);
    }
    if !args.quiet {
        eprintln!(
            "criteo-pipeline: the guide's pipeline on generated data, in {} ({} threads)",
            cfg.dir.display(),
            cfg.threads
        );
    }
    sparky_cli::stop_on_signals(&PROGRESS);
    let bar = ProgressBar::start(args.quiet, &PROGRESS);
    let step = |s: Step, what: &str| {
        if !args.quiet {
            let n = match s {
                Step::Generate => 1,
                Step::Prepare(m) => 2 + m as usize,
                Step::Train => 5,
                Step::Predict => 6,
            };
            bar.println(&format!("[{n}/6] {what}"));
        }
    };
    let report = sparky_pipeline::run(&cfg, &PROGRESS, &step);
    drop(bar);
    print_report(args, &report?, cfg.threads);
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    sparky_cli::main_wrapper("criteo-pipeline", || run(&args))
}
