//! The guide's whole pipeline on a generated, Criteo-shaped data set, in one
//! call ([`run`]): what `criteo-pipeline` (the README's first command) does.
//!
//! 1. generates training, evaluation and test rows (Kaggle layout and
//!    per-column cardinalities, labels from a planted logistic model);
//! 2. criteo-prepare in train, evaluate and predict modes;
//! 3. criteo-train (FTRL logistic regression, evaluation, TensorBoard logs,
//!    export);
//! 4. criteo-predict on the prepared test rows.
//!
//! Everything goes under one folder, whose outputs of an earlier run are
//! replaced. The [`Report`] holds every step's figures and the best log loss
//! achievable on the evaluation rows (the planted model's own).
//!
//! ```no_run
//! let cfg = sparky_pipeline::PipelineConfig::new("sparky-demo".into());
//! let report = sparky_pipeline::run(&cfg, &sparky_io::Progress::new(), &|step, what| eprintln!("{step:?}: {what}"))?;
//! println!("eval log loss {:.5}", report.train.metrics.log_loss);
//! # Ok::<(), sparky_pipeline::PipelineError>(())
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use sparky_criteo::input::Source;
use sparky_criteo::prepare::{self, PrepareConfig, PrepareSummary};
use sparky_datagen::{GenerateSummary, Generator, GeneratorConfig};
use sparky_export::ExportDir;
use sparky_io::Progress;
use sparky_predict::{BatchConfig, Input, InputFormat, OutputFormat, PredictSummary, Scorer};
use sparky_prepared::schema::Mode;
use sparky_trainer::TrainSummary;

/// Why the pipeline stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// Creating, removing or writing the demo's files.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing generated data.
    #[error(transparent)]
    Output(#[from] sparky_io::Error),
    /// A prepare step.
    #[error(transparent)]
    Prepare(#[from] prepare::PrepareError),
    /// The training step.
    #[error(transparent)]
    Train(#[from] sparky_trainer::TrainError),
    /// The prediction step.
    #[error(transparent)]
    Predict(#[from] sparky_predict::PredictError),
    /// Loading the export.
    #[error(transparent)]
    Export(#[from] sparky_export::ExportError),
    /// Training ran without exporting.
    #[error("training wrote no export")]
    NoExport,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PipelineError + '_ {
    move |source| PipelineError::Io { path: path.to_path_buf(), source }
}

/// The pipeline's settings; [`PipelineConfig::new`] gives the README's.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Folder for the data and every output.
    pub dir: PathBuf,
    /// Training rows to generate.
    pub rows: u64,
    /// Evaluation rows (generated after the training rows, same distribution).
    pub eval_rows: u64,
    /// Unlabelled test rows for batch prediction.
    pub test_rows: u64,
    /// Passes over the training data.
    pub epochs: u64,
    /// Seed of the generated data.
    pub seed: u64,
    /// Threads for every step.
    pub threads: usize,
}

impl PipelineConfig {
    /// 1M training rows, 100k evaluation and 100k test rows, one epoch, seed
    /// 1, every core.
    #[must_use]
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            rows: 1_000_000,
            eval_rows: 100_000,
            test_rows: 100_000,
            epochs: 1,
            seed: 1,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        }
    }
}

/// A step of the pipeline, as reported while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Generating the data.
    Generate,
    /// criteo-prepare in one mode.
    Prepare(Mode),
    /// criteo-train.
    Train,
    /// criteo-predict.
    Predict,
}

/// What the generator wrote.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The training rows.
    pub train: GenerateSummary,
    /// The evaluation rows (their `best_log_loss` is the bar for the model).
    pub eval: GenerateSummary,
    /// The test rows.
    pub test: GenerateSummary,
    /// Seconds.
    pub seconds: f64,
}

/// What the pipeline did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The generated data.
    pub generated: Generated,
    /// The three prepare runs: train, evaluate, predict.
    pub prepared: Vec<PrepareSummary>,
    /// Training.
    pub train: TrainSummary,
    /// The export folder.
    pub export: PathBuf,
    /// Batch prediction over the prepared test rows.
    pub predict: PredictSummary,
    /// Seconds in all.
    pub seconds: f64,
}

impl Report {
    /// The log loss of always predicting the evaluation rows' click rate.
    #[must_use]
    pub fn constant_log_loss(&self) -> f64 {
        let rate = self.train.metrics.label_mean;
        -(rate * rate.ln() + (1.0 - rate) * (1.0 - rate).ln())
    }
}

/// The folders under `dir`, relative: generated data, prepared data, the
/// artifacts, the job, the predictions.
pub const FOLDERS: [&str; 5] = ["data", "prepared", "model", "job", "predictions"];

fn generate(
    g: &Generator,
    first: u64,
    rows: u64,
    threads: usize,
    path: &Path,
) -> Result<GenerateSummary, PipelineError> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, sparky_io::AtomicFile::create(path)?);
    let s = sparky_datagen::generate(g, first, rows, threads, &mut f).map_err(io(path))?;
    let file = f.into_inner().map_err(|e| PipelineError::Io { path: path.to_path_buf(), source: e.into_error() })?;
    file.commit_unsynced()?;
    Ok(s)
}

/// Runs the whole pipeline under `cfg.dir`, replacing the outputs of an
/// earlier run. `step` hears about each step as it starts; `progress` is
/// handed to each step (its stop request ends the run).
///
/// # Errors
/// The first step that fails.
pub fn run(cfg: &PipelineConfig, progress: &Progress, step: &dyn Fn(Step, &str)) -> Result<Report, PipelineError> {
    let t_all = Instant::now();
    let threads = cfg.threads.max(1);
    let p = |s: &str| cfg.dir.join(s);
    for sub in FOLDERS {
        let path = p(sub);
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(io(&path))?;
        }
    }
    std::fs::create_dir_all(p("data")).map_err(io(&cfg.dir))?;

    step(Step::Generate, "generate Criteo-shaped data (criteo-generate)");
    let t = Instant::now();
    let labelled = Generator::new(GeneratorConfig { seed: cfg.seed, labelled: true });
    let unlabelled = Generator::new(GeneratorConfig { seed: cfg.seed, labelled: false });
    let train = generate(&labelled, 0, cfg.rows, threads, &p("data/train.tsv"))?;
    let eval = generate(&labelled, cfg.rows, cfg.eval_rows, threads, &p("data/eval.tsv"))?;
    let test = generate(&unlabelled, cfg.rows + cfg.eval_rows, cfg.test_rows, threads, &p("data/test.tsv"))?;
    let generated = Generated { train, eval, test, seconds: t.elapsed().as_secs_f64() };
    progress.check()?;

    let mut prepared = Vec::new();
    for (name, mode) in [("train", Mode::Train), ("eval", Mode::Evaluate), ("test", Mode::Predict)] {
        step(Step::Prepare(mode), &format!("criteo-prepare --mode {mode}"));
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
        prepared.push(prepare::run(&c, progress)?);
    }

    step(Step::Train, "criteo-train (FTRL-Proximal logistic regression)");
    let mut tc = sparky_trainer::TrainConfig::new(p("job"), p("prepared/train"), p("prepared/eval"));
    tc.epochs = Some(cfg.epochs);
    tc.threads = threads;
    // As criteo-train without hyperparameter flags: FTRL's values are chosen
    // by a search on the training data.
    tc.tune = Some(sparky_trainer::TuneConfig::default());
    let train = sparky_trainer::run(&tc, progress, &|_| {})?;
    let export = train.export_dir.clone().ok_or(PipelineError::NoExport)?;

    step(Step::Predict, "criteo-predict (batch prediction over prepared/test/part-*)");
    let scorer = Scorer::new(ExportDir::load(&export)?);
    let Input::Prepared(test_dir) = Input::resolve(&p("prepared/test"), Some(InputFormat::Tfrecord), false)? else {
        unreachable!("a prepared folder resolves as prepared input")
    };
    let pc = BatchConfig {
        output: p("predictions"),
        output_format: OutputFormat::Json,
        strict: true,
        overwrite: true,
        threads,
    };
    let predict = sparky_predict::run_prepared(&scorer, &test_dir, &pc, progress)?;
    Ok(Report { generated, prepared, train, export, predict, seconds: t_all.elapsed().as_secs_f64() })
}
