//! `criteo-pipeline`: the guide's three steps on a generated data set, in one
//! command. See `criteo-pipeline --help`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use clap::Parser;
use sparky_cli::{human_bytes, human_count, human_rate};
use sparky_criteo::input::Source;
use sparky_criteo::prepare::{self, PrepareConfig, Progress};
use sparky_criteo::schema::Mode;
use sparky_datagen::{GenerateSummary, Generator, GeneratorConfig};
use sparky_export::ExportDir;
use sparky_predict::{InputFormat, OutputFormat, PredictConfig, Scorer};

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

    /// Training rows to generate.
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    rows: u64,

    /// Evaluation rows (generated after the training rows, same distribution).
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    eval_rows: u64,

    /// Unlabelled test rows for batch prediction.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    test_rows: u64,

    /// Passes over the training data.
    #[arg(long, default_value_t = 1, value_name = "N")]
    epochs: u64,

    /// Seed of the generated data.
    #[arg(long, default_value_t = 1, value_name = "N")]
    seed: u64,

    /// Threads for every step [default: the number of cores].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
enum PipelineError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Prepare(#[from] prepare::PrepareError),
    #[error(transparent)]
    Train(#[from] sparky_trainer::TrainError),
    #[error(transparent)]
    Predict(#[from] sparky_predict::PredictError),
    #[error(transparent)]
    Export(#[from] sparky_export::ExportError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PipelineError + '_ {
    move |source| PipelineError::Io { path: path.to_path_buf(), source }
}

fn step(n: usize, what: &str) {
    eprintln!("\n[{n}/6] {what}");
}

fn generate(
    g: &Generator,
    first: u64,
    rows: u64,
    threads: usize,
    path: &Path,
) -> Result<GenerateSummary, PipelineError> {
    let mut f = create_buffered(path)?;
    let s = sparky_datagen::generate(g, first, rows, threads, &mut f).map_err(io(path))?;
    f.into_inner().map_err(|e| PipelineError::Io { path: path.to_path_buf(), source: e.into_error() })?;
    Ok(s)
}

fn create_buffered(path: &Path) -> Result<std::io::BufWriter<std::fs::File>, PipelineError> {
    Ok(std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).map_err(io(path))?))
}

#[allow(clippy::too_many_lines)]
fn run(args: &Args) -> Result<(), PipelineError> {
    let t_all = Instant::now();
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1);
    let d = &args.dir;
    let p = |s: &str| d.join(s);
    for sub in ["data", "prepared", "model", "job", "predictions"] {
        let path = p(sub);
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
        }
    }
    std::fs::create_dir_all(p("data")).map_err(io(d))?;
    eprintln!("criteo-pipeline: the guide's pipeline on generated data, in {} ({threads} threads)", d.display());

    step(1, "generate Criteo-shaped data (criteo-generate)");
    let t = Instant::now();
    let labelled = Generator::new(GeneratorConfig { seed: args.seed, labelled: true });
    let unlabelled = Generator::new(GeneratorConfig { seed: args.seed, labelled: false });
    let train = generate(&labelled, 0, args.rows, threads, &p("data/train.tsv"))?;
    let eval = generate(&labelled, args.rows, args.eval_rows, threads, &p("data/eval.tsv"))?;
    let test = generate(&unlabelled, args.rows + args.eval_rows, args.test_rows, threads, &p("data/test.tsv"))?;
    let secs = t.elapsed().as_secs_f64();
    let rows = train.rows + eval.rows + test.rows;
    eprintln!(
        "  {} rows, {} in {secs:.2} s ({}): data/train.tsv ({} rows, {:.1}% clicked), data/eval.tsv, data/test.tsv",
        human_count(rows),
        human_bytes(train.bytes + eval.bytes + test.bytes),
        human_rate(rows, secs),
        human_count(train.rows),
        100.0 * train.positives as f64 / train.rows.max(1) as f64
    );

    let mut prepared = Vec::new();
    for (n, name, mode) in [(2, "train", Mode::Train), (3, "eval", Mode::Evaluate), (4, "test", Mode::Predict)] {
        step(n, &format!("criteo-prepare --mode {mode}"));
        let mut c = PrepareConfig::new(
            vec![Source::File(p(&format!("data/{name}.tsv")))],
            p(&format!("prepared/{name}")),
            mode,
            p("model"),
        );
        c.threads = threads;
        // Demo data: parts are not flushed to disk one by one (see --no-sync),
        // so the figures show sparky's speed rather than the disk's.
        c.sync = false;
        let s = prepare::run(&c, &Progress::default())?;
        eprintln!(
            "  {} rows in {:.2} s ({}, {}/s of input) -> prepared/{name}/ ({} parts, {}){}",
            human_count(s.rows),
            s.total_seconds,
            human_rate(s.rows, s.total_seconds),
            human_bytes((s.input_bytes as f64 / s.total_seconds.max(1e-9)) as u64),
            s.parts.len(),
            human_bytes(s.output_bytes()),
            if mode == Mode::Train { "; vocabulary -> model/" } else { "" }
        );
        prepared.push(s);
    }

    step(5, "criteo-train (FTRL-Proximal logistic regression)");
    let mut tc = sparky_trainer::TrainConfig::new(p("job"), p("prepared/train"), p("prepared/eval"));
    tc.epochs = Some(args.epochs);
    tc.threads = threads;
    let s = sparky_trainer::run(&tc, &AtomicBool::new(false), &|_| {})?;
    eprintln!(
        "  {} examples ({} epochs) in {:.2} s of training ({}); {} steps -> job/ (checkpoints, TensorBoard events, metrics.json)",
        human_count(s.examples),
        s.epochs,
        s.train_seconds,
        human_rate(s.examples, s.train_seconds),
        s.global_step
    );
    let export = s.export_dir.clone().expect("the pipeline exports");
    eprintln!("  exported to {} (weights, artifacts, SavedModel)", export.display());

    step(6, "criteo-predict (batch prediction over prepared/test/part-*)");
    let scorer = Scorer::for_prepared_rows(ExportDir::load(&export)?);
    let pc = PredictConfig {
        inputs: sparky_predict::resolve_inputs(&p("prepared/test"), InputFormat::Tfrecord)?,
        output: p("predictions"),
        input_format: InputFormat::Tfrecord,
        output_format: OutputFormat::Json,
        strict: true,
        overwrite: true,
        threads,
    };
    let ps = sparky_predict::run_batch(&scorer, &pc)?;
    eprintln!(
        "  {} rows scored in {:.2} s ({}) -> predictions/prediction.results-* ({})",
        human_count(ps.rows),
        ps.seconds,
        human_rate(ps.rows, ps.seconds),
        human_bytes(ps.bytes)
    );

    let m = s.metrics;
    let rate = m.label_mean;
    let constant = -(rate * rate.ln() + (1.0 - rate) * (1.0 - rate).ln());
    println!();
    println!("evaluation on {} held-out rows:", human_count(m.examples));
    println!("  log loss          {:.5}", m.log_loss);
    println!("  best achievable   {:.5}  (the planted model's own log loss on these rows)", eval.best_log_loss);
    println!("  constant rate     {constant:.5}  (always predicting the click rate)");
    println!("  AUC               {:.5}", m.auc);
    println!("  accuracy          {:.5}", m.accuracy);
    println!("  mean prediction   {:.5}  (label mean {:.5})", m.mean_prediction, m.label_mean);
    println!("throughput ({threads} threads):");
    for (name, s) in ["prepare train", "prepare eval", "prepare test"].iter().zip(&prepared) {
        println!("  {name:<15} {:>10}", human_rate(s.rows, s.total_seconds));
    }
    println!("  {:<15} {:>10} examples per second", "train", human_rate(s.examples, s.train_seconds));
    println!("  {:<15} {:>10}", "predict", human_rate(ps.rows, ps.seconds));
    println!("outputs under {}:", d.display());
    println!("  data/                  generated TSV (train, eval, test)");
    println!("  model/                 vocabulary artifacts (categorical-value-counts.csv, manifest.json)");
    println!("  prepared/{{train,eval,test}}/part-r-*.tfrecord   tf.train.Example files");
    println!(
        "  job/                   checkpoints, metrics.json, TensorBoard: tensorboard --logdir {}",
        p("job").display()
    );
    println!("  {}", export.strip_prefix(d).unwrap_or(&export).display());
    println!("                         the export: model.pb, artifacts/, saved_model.pb, manifest.json");
    println!("  predictions/           prediction.results-* (JSON lines)");
    println!("the same with the separate tools:");
    let dd = d.display();
    println!("  criteo-generate --rows {} --out {dd}/data/train.tsv", args.rows);
    println!("  criteo-prepare -b {dd} -i data/train.tsv -o prepared/train -m train -x model");
    println!("  criteo-prepare -b {dd} -i data/eval.tsv -o prepared/eval -m evaluate -x model");
    println!("  criteo-prepare -b {dd} -i data/test.tsv -o prepared/test -m predict -x model");
    println!(
        "  criteo-train --job-dir {dd}/job --train-dir {dd}/prepared/train --eval-dir {dd}/prepared/eval --epochs {}",
        args.epochs
    );
    println!("  criteo-predict --model {dd}/job --input {dd}/prepared/test --output {dd}/predictions");
    eprintln!("\ncriteo-pipeline: done in {:.1} s", t_all.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    sparky_cli::main_wrapper("criteo-pipeline", || run(&args))
}
