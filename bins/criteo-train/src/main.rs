//! `criteo-train`: trains the linear click classifier. See `criteo-train --help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use sparky_cli::{ProgressBar, human_count};
use sparky_io::Progress;
use sparky_linear::{CatEncoding, IntTransform, OptimizerConfig, OptimizerKind};
use sparky_trainer::{LogLine, TrainConfig, TuneConfig, Tuning};

/// The run's progress, and the stop request of SIGINT and SIGTERM.
static PROGRESS: Progress = Progress::new();

/// A finite number above 0.
fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a finite number above 0")),
    }
}

/// A finite number, 0 or above.
fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a finite number of 0 or more")),
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OptimizerArg {
    /// FTRL-Proximal (McMahan et al., 2013), as TensorFlow's LinearClassifier; defaults: --learning-rate 0.05 --l1 1 --l2 1.
    Ftrl,
    /// AdaGrad; defaults: --learning-rate 0.05 --l1 0 --l2 0.0001.
    Adagrad,
    /// SGD on the batch's mean gradient; defaults: --learning-rate 0.01 --l1 0 --l2 0.0001.
    Sgd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TuneArg {
    /// Search when none of --learning-rate, --l1, --l2 is given (FTRL only).
    Auto,
    /// Never search: the optimizer's fixed defaults fill what is not given.
    Off,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum IntTransformArg {
    /// One-hot buckets: missing, negative, 0, 1, then 4 + floor(ln(x)^2).
    LogBuckets,
    /// A missing indicator and ln(1 + x) as a value.
    Log1p,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CatEncodingArg {
    /// One weight per vocabulary id (id 0: not in the vocabulary).
    OneHot,
    /// The rank id as a number (the guide's literal suggestion; much worse, kept for comparison).
    RankAsNumber,
}

/// Trains the guide's linear classifier (logistic regression) on the TFRecord
/// parts criteo-prepare wrote, on every core.
///
/// Categorical features are one-hot vocabulary ids, integers are one-hot
/// logarithmic buckets (with missing as a bucket of its own), plus a bias.
/// Training runs for --train-steps mini-batches or --epochs passes; with
/// neither it runs epoch after epoch until interrupted (Ctrl-C or SIGTERM),
/// then finishes the step, evaluates, checkpoints and exports, and exits 0.
/// Unless --learning-rate, --l1 or --l2 is given (or --tune off), FTRL's
/// values are first chosen by a search on the training data (see --tune).
///
/// During the first pass every log line also shows the progressive
/// validation loss: the log loss of each example scored before it is trained
/// on (as Vowpal Wabbit's average loss), an honest estimate of how well the
/// model predicts new data, with no evaluation pass.
///
/// In JOB_DIR: checkpoints/ (rerunning resumes from the newest one; --overwrite
/// starts afresh), TensorBoard event files (training loss and
/// progressive_validation/loss here, evaluation metrics in eval/:
/// tensorboard --logdir JOB_DIR), tuning.json (the search), metrics.json (the
/// final evaluation: log_loss, auc, accuracy, mean_prediction, label_mean,
/// examples, global_step, plus the optimizer settings, the progressive
/// validation loss and the search) and export/Servo/EPOCH_SECONDS/ (the
/// weights, the preprocessing artifacts, and a manifest: everything
/// criteo-predict needs).
///
/// Example:
///
///   criteo-train --job-dir job --train-dir prepared/train --eval-dir prepared/eval --epochs 2
#[derive(Debug, Parser)]
#[command(name = "criteo-train", version, after_help = sparky_cli::EXIT_CODES_HELP)]
struct Args {
    /// Folder for checkpoints, TensorBoard logs, metrics.json and exports.
    #[arg(long, value_name = "DIR")]
    job_dir: PathBuf,

    /// Prepared training data: a folder of part-* TFRecord files (any compression).
    #[arg(long, value_name = "DIR")]
    train_dir: PathBuf,

    /// Prepared evaluation data (criteo-prepare --mode evaluate).
    #[arg(long, value_name = "DIR")]
    eval_dir: PathBuf,

    /// Preprocessing artifacts [default: the folder TRAIN_DIR/_prepare.json names].
    #[arg(long, value_name = "DIR")]
    artifact_dir: Option<PathBuf>,

    /// Read prepared folders that are not complete criteo-prepare runs (no
    /// _prepare.json or _SUCCESS, parts missing, extra or of another size):
    /// the part-* files present are read, and their rows are not checked
    /// against a record. For data you know to be what you want.
    #[arg(long)]
    allow_incomplete: bool,

    /// Examples per mini-batch (per thread), 1 to 1048576; one optimizer step per batch.
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    batch_size: u32,

    /// Stop when the global step (mini-batches over all runs) reaches N (at least 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    train_steps: Option<u64>,

    /// Stop after N passes over the training data (counting resumed runs; at least 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    epochs: Option<u64>,

    /// The optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Ftrl)]
    optimizer: OptimizerArg,

    /// Step size (FTRL's alpha), a finite number above 0 [default: chosen by
    /// the search (see --tune), else per optimizer, see --optimizer]. Giving
    /// it, --l1 or --l2 turns the search off.
    #[arg(long, value_name = "X", value_parser = positive)]
    learning_rate: Option<f64>,

    /// L1 regularisation, 0 or more [default: chosen by the search, else per optimizer].
    #[arg(long, value_name = "X", value_parser = non_negative)]
    l1: Option<f64>,

    /// L2 regularisation, 0 or more [default: chosen by the search, else per optimizer].
    #[arg(long, value_name = "X", value_parser = non_negative)]
    l2: Option<f64>,

    /// Choose --learning-rate, --l1 and --l2 before training: with `auto`
    /// (the default) and none of the three given, FTRL's values are searched
    /// on the training data alone (never --eval-dir): successive halving over
    /// learning rate {0.05, 0.1, 0.2, 0.4} x L1 {0, 0.3, 1, 3} x L2 {0, 1, 10},
    /// each point trained on a sample for the planned number of passes and
    /// scored on a held-out fifth of the rows; the best third go on to three
    /// times more rows (small data, which every point can train on whole, is
    /// cross-validated instead). The choice and every trial are logged and written to
    /// JOB_DIR/tuning.json, metrics.json and the export's manifest; a resumed
    /// job keeps them. With --threads 1 (or any thread count) and the same
    /// --seed the choice is reproducible. `off` trains with the fixed
    /// defaults (faster start; use it when the defaults are known to suit the
    /// data).
    #[arg(long, value_enum, default_value_t = TuneArg::Auto)]
    tune: TuneArg,

    /// The search's work limit, in epochs of the training data (examples
    /// trained on, plus half an example per held-out prediction); at least
    /// 2 million examples however small the data. Raise it for a steadier
    /// choice on large data, lower it to start training sooner.
    #[arg(long, default_value_t = 1.0, value_name = "EPOCHS", value_parser = positive)]
    tune_budget: f64,

    /// FTRL's beta, or AdaGrad's initial accumulator, 0 or more [default: 1 for FTRL, 0.1 for AdaGrad].
    #[arg(long, value_name = "X", value_parser = non_negative)]
    beta: Option<f64>,

    /// How integer features enter the model.
    #[arg(long, value_enum, default_value_t = IntTransformArg::LogBuckets)]
    int_transform: IntTransformArg,

    /// How categorical features enter the model.
    #[arg(long, value_enum, default_value_t = CatEncodingArg::OneHot)]
    categorical_encoding: CatEncodingArg,

    /// Evaluate every N steps (0: only at the end).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    eval_every: u64,

    /// Log the training loss to TensorBoard every N steps.
    #[arg(long, default_value_t = 100, value_name = "N")]
    log_every: u64,

    /// Checkpoint at least every N seconds (and always at the end).
    #[arg(long, default_value_t = 600, value_name = "N")]
    checkpoint_secs: u64,

    /// Training threads, 1 to 256 [default: the number of cores]. With 1 and a
    /// fixed --seed, runs are exactly reproducible.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,

    /// Seed of the per-epoch shuffling of record blocks.
    #[arg(long, default_value_t = 1, value_name = "N")]
    seed: u64,

    /// Read the blocks in file order every epoch instead of shuffling them:
    /// for time-ordered data (as the guide's head/tail split), training in
    /// time order.
    #[arg(long)]
    no_shuffle: bool,

    /// Start afresh: delete this job's checkpoints, event files and metrics first.
    #[arg(long)]
    overwrite: bool,

    /// Skip (and count) records whose checksum fails instead of stopping.
    #[arg(long)]
    skip_corrupt_records: bool,

    /// Do not export at the end.
    #[arg(long)]
    no_export: bool,

    /// Print only the final figures: no progress, no log lines.
    #[arg(short, long)]
    quiet: bool,
}

fn fmt_metrics(m: &sparky_linear::Metrics) -> String {
    format!(
        "log_loss {:.5}  auc {:.5}  accuracy {:.4}  mean_prediction {:.4}  label_mean {:.4}  examples {}",
        m.log_loss, m.auc, m.accuracy, m.mean_prediction, m.label_mean, m.examples
    )
}

/// The search's outcome as a few log lines: the choice, then each rung's best.
fn tuning_text(t: &Tuning) -> String {
    let c = &t.chosen;
    let mut s = format!(
        "criteo-train: search on the training data ({} sample rows, {} held out, {} passes, {:.1} s): chose --learning-rate {} --l1 {} --l2 {} (held-out log_loss {:.5})",
        t.sample_rows, t.holdout_rows, t.passes, t.seconds, c.learning_rate, c.l1, c.l2, t.chosen_holdout_log_loss
    );
    let rungs = t.trials.iter().map(|x| x.rung).max().map_or(0, |r| r + 1);
    for r in 0..rungs {
        let of: Vec<_> = t.trials.iter().filter(|x| x.rung == r).collect();
        let best: Vec<String> = of
            .iter()
            .take(3)
            .map(|x| format!("{}/{}/{} {:.5}", x.learning_rate, x.l1, x.l2, x.holdout_log_loss))
            .collect();
        s.push_str(&format!(
            "\ncriteo-train:   rung {r}: {} points on {} rows, {} held out; best (lr/l1/l2 loss): {}",
            of.len(),
            of[0].rows,
            of[0].holdout_rows,
            best.join(", ")
        ));
    }
    s
}

fn run(args: Args) -> Result<(), sparky_trainer::TrainError> {
    let kind = match args.optimizer {
        OptimizerArg::Ftrl => OptimizerKind::Ftrl,
        OptimizerArg::Adagrad => OptimizerKind::Adagrad,
        OptimizerArg::Sgd => OptimizerKind::Sgd,
    };
    let d = OptimizerConfig::defaults(kind);
    let optimizer = OptimizerConfig {
        kind,
        learning_rate: args.learning_rate.unwrap_or(d.learning_rate),
        l1: args.l1.unwrap_or(d.l1),
        l2: args.l2.unwrap_or(d.l2),
        beta: args.beta.unwrap_or(d.beta),
    };
    let explicit = args.learning_rate.is_some() || args.l1.is_some() || args.l2.is_some();
    let mut cfg = TrainConfig::new(args.job_dir.clone(), args.train_dir.clone(), args.eval_dir.clone());
    if args.tune == TuneArg::Auto && !explicit && sparky_trainer::tune::searchable(kind) {
        cfg.tune = Some(TuneConfig { budget_epochs: args.tune_budget, ..TuneConfig::default() });
    }
    cfg.artifact_dir = args.artifact_dir.clone();
    cfg.allow_incomplete = args.allow_incomplete;
    cfg.batch_size = args.batch_size as usize;
    cfg.train_steps = args.train_steps;
    cfg.epochs = args.epochs;
    cfg.optimizer = optimizer;
    cfg.int_transform = match args.int_transform {
        IntTransformArg::LogBuckets => IntTransform::LogBuckets,
        IntTransformArg::Log1p => IntTransform::Log1p,
    };
    cfg.cat_encoding = match args.categorical_encoding {
        CatEncodingArg::OneHot => CatEncoding::OneHot,
        CatEncodingArg::RankAsNumber => CatEncoding::RankAsNumber,
    };
    cfg.eval_every = args.eval_every;
    cfg.log_every = args.log_every;
    cfg.checkpoint_secs = args.checkpoint_secs;
    if let Some(t) = args.threads {
        cfg.threads = usize::from(t);
    }
    cfg.seed = args.seed;
    cfg.shuffle = !args.no_shuffle;
    cfg.overwrite = args.overwrite;
    cfg.skip_corrupt = args.skip_corrupt_records;
    cfg.export = !args.no_export;
    let flags = serde_json::json!({
        "batch_size": cfg.batch_size, "train_steps": cfg.train_steps, "epochs": cfg.epochs,
        "optimizer": optimizer, "int_transform": cfg.int_transform, "categorical_encoding": cfg.cat_encoding,
        "threads": cfg.threads, "seed": cfg.seed, "shuffle": cfg.shuffle,
        "tune": if cfg.tune.is_some() { "auto" } else { "off" }, "tune_budget": args.tune_budget,
    });
    cfg.flags = flags.as_object().expect("an object").clone().into_iter().collect();
    if cfg.train_steps.is_none() && cfg.epochs.is_none() && !args.quiet {
        eprintln!("criteo-train: no --train-steps or --epochs: training until interrupted (Ctrl-C finishes cleanly)");
    }
    sparky_cli::stop_on_signals(&PROGRESS);
    let quiet = args.quiet;
    let bar = ProgressBar::start(quiet, &PROGRESS);
    let last_print = Mutex::new(Instant::now());
    let log = |l: &LogLine| {
        if quiet {
            return;
        }
        if let Some(t) = &l.tuning {
            bar.println(&tuning_text(t));
            return;
        }
        if let Some(m) = &l.eval {
            bar.println(&format!("criteo-train: eval at step {} (epoch {:.2}): {}", l.step, l.epoch, fmt_metrics(m)));
            return;
        }
        let mut last = last_print.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.elapsed().as_secs_f64() >= 2.0 {
            *last = Instant::now();
            let pv = match (l.progressive_loss, l.progressive_average_loss) {
                (Some(p), Some(a)) => format!(" (progressive validation: {p:.5}, average {a:.5})"),
                _ => String::new(),
            };
            bar.println(&format!(
                "criteo-train: step {} epoch {:.2} loss {:.5}{pv} {} examples/s",
                l.step,
                l.epoch,
                l.loss,
                human_count(l.examples_per_sec as u64)
            ));
        }
    };
    let s = sparky_trainer::run(&cfg, &PROGRESS, &log);
    drop(bar);
    let s = s?;
    println!("{}", fmt_metrics(&s.metrics));
    if quiet {
        return Ok(());
    }
    if let Some(r) = s.resumed_from {
        eprintln!("criteo-train: resumed from step {r}");
    }
    let o = &s.optimizer;
    eprintln!(
        "criteo-train: trained with --learning-rate {} --l1 {} --l2 {}{}",
        o.learning_rate,
        o.l1,
        o.l2,
        match (&s.tuning, s.tuning_reused) {
            (Some(_), true) => " (chosen by this job's earlier search, tuning.json)",
            (Some(_), false) => " (chosen by the search)",
            (None, _) if s.resumed_from.is_some() => " (those of the checkpoint)",
            (None, _) => "",
        }
    );
    if let Some(p) = s.progressive_loss {
        eprintln!(
            "criteo-train: progressive validation (first pass, each example scored before training on it): log_loss {p:.5}"
        );
    }
    if s.skipped_records > 0 {
        eprintln!("criteo-train: skipped {} corrupt records", s.skipped_records);
    }
    eprintln!(
        "criteo-train: {} {} steps, {} epochs, {} examples in {:.2} s of training ({} examples/s, {} threads){}",
        if s.interrupted { "stopped by signal after" } else { "trained" },
        s.global_step,
        s.epochs,
        s.examples,
        s.train_seconds,
        human_count((s.examples as f64 / s.train_seconds.max(1e-9)) as u64),
        cfg.threads,
        s.export_dir.as_ref().map(|d| format!("; exported to {}", d.display())).unwrap_or_default(),
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    sparky_cli::main_wrapper("criteo-train", || run(args))
}
