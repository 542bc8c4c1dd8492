//! The training job behind `criteo-train`: the guide's TensorFlow trainer,
//! natively.
//!
//! [`run`] opens the prepared training and evaluation folders (checked
//! against what criteo-prepare recorded, with `sparky-prepared`), trains a
//! [`sparky_linear`] model on every core, evaluates it on the evaluation
//! folder every `eval_every` steps and at the end, logs scalars for
//! TensorBoard (training loss in `JOB_DIR`, evaluation metrics in
//! `JOB_DIR/eval`), checkpoints to `JOB_DIR/checkpoints/` (and resumes from
//! the newest checkpoint when rerun), writes `JOB_DIR/metrics.json`, and
//! exports the model to `JOB_DIR/export/Servo/<seconds>/`.
//!
//! Work is split into the reader's blocks (about
//! [`sparky_prepared::reader::BLOCK_BYTES`] each), taken by the threads in an
//! order shuffled per epoch with the seed. Training runs in rounds between
//! logging points; between rounds the main thread evaluates, checkpoints or
//! stops. With one thread, a run is exactly reproducible. Every whole pass
//! over a folder is checked against the rows `_prepare.json` recorded.

pub mod data;
pub mod tune;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;
use sparky_events::EventWriter;
use sparky_export::{CHECKPOINT_TYPE, ExportError, envelope};
use sparky_io::{Access, DirLock, Progress, Unit};
use sparky_linear::train::LossStats;
use sparky_linear::{
    CatEncoding, Evaluator, IntTransform, Layout, Metrics, ModelError, OptimizerConfig, SharedModel, Worker,
};
use sparky_prepared::reader::BLOCK_BYTES;
use sparky_prepared::{
    BadKind, BadRecord, CheckedArtifacts, Flow, Item, OpenOptions, PreparedDir, PreparedError, ReadError, Reader, Row,
    RowDecoder,
};
use sparky_proto::sparky::model::v1 as pb;
pub use tune::{TuneConfig, Tuning};

/// Why training failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// I/O on a file or folder of the job.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Locking the job folder or writing a file of it failed.
    #[error(transparent)]
    Output(#[from] sparky_io::Error),
    /// A prepared folder is not complete, or not usable here.
    #[error(transparent)]
    Prepared(#[from] PreparedError),
    /// Reading prepared records failed (damaged framing, an altered part).
    #[error(transparent)]
    Read(ReadError),
    /// A record whose payload fails its checksum (without `--skip-corrupt-records`).
    #[error(transparent)]
    Record(sparky_tfrecord::Error),
    /// A record that is not a usable labelled row.
    #[error(transparent)]
    BadRow(Box<BadRecord>),
    /// No prepared rows to train or evaluate on.
    #[error("{}: no rows to {what} (the prepared folder is empty)", dir.display())]
    NoRows {
        /// The folder.
        dir: PathBuf,
        /// "train on" or "evaluate on".
        what: &'static str,
    },
    /// Where the preprocessing artifacts are is not recorded.
    #[error("{}: no _prepare.json says where the preprocessing artifacts are; pass --artifact-dir", .0.display())]
    NoArtifacts(PathBuf),
    /// A model file.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// A setting out of range, or a layout too large.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A setting out of range.
    #[error("{name} must be {range}, got {value}")]
    Setting {
        /// The setting, as the command line names it.
        name: &'static str,
        /// The valid range, in words.
        range: &'static str,
        /// The value given.
        value: String,
    },
    /// Training produced non-finite weights or loss.
    #[error(
        "training diverged at step {step}: {what}; nothing was checkpointed or exported from this point (lower --learning-rate)"
    )]
    Diverged {
        /// The global step.
        step: u64,
        /// What went non-finite.
        what: &'static str,
    },
    /// The job folder's newest checkpoint cannot be resumed with these settings.
    #[error("{}: the checkpoint was trained with {what}; pass --overwrite to start afresh", path.display())]
    Resume {
        /// The checkpoint.
        path: PathBuf,
        /// What differs, in words.
        what: String,
    },
    /// The job folder's record of an earlier hyperparameter search is damaged.
    #[error("{}: not a search record ({source}); remove it to search again, or pass --overwrite", path.display())]
    TuningRecord {
        /// `JOB_DIR/tuning.json`.
        path: PathBuf,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// A checkpoint that cannot be used.
    #[error("{}: {source}", path.display())]
    Checkpoint {
        /// The checkpoint.
        path: PathBuf,
        /// What is inconsistent.
        #[source]
        source: ModelError,
    },
}

impl From<ReadError> for TrainError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Bad(b) => TrainError::from(b),
            other => TrainError::Read(other),
        }
    }
}

impl From<Box<BadRecord>> for TrainError {
    fn from(b: Box<BadRecord>) -> Self {
        match b.kind {
            BadKind::Checksum(e) => TrainError::Record(e),
            _ => TrainError::BadRow(b),
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io { path: path.to_path_buf(), source }
}

/// Everything a training run needs; build with [`TrainConfig::new`] and
/// adjust the fields.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// Checkpoints, event files, metrics and exports go here.
    pub job_dir: PathBuf,
    /// Prepared training data (`part-*` files).
    pub train_dir: PathBuf,
    /// Prepared evaluation data.
    pub eval_dir: PathBuf,
    /// The preprocessing artifacts; found from `train_dir/_prepare.json` when `None`.
    pub artifact_dir: Option<PathBuf>,
    /// Read prepared folders that are not complete prepare runs (see
    /// [`OpenOptions::allow_incomplete`]).
    pub allow_incomplete: bool,
    /// Examples per mini-batch (per thread).
    pub batch_size: usize,
    /// Stop when the global step reaches this.
    pub train_steps: Option<u64>,
    /// Stop after this many passes over the training data (counting resumed ones).
    pub epochs: Option<u64>,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// How integers enter the model.
    pub int_transform: IntTransform,
    /// How categorical ids enter the model.
    pub cat_encoding: CatEncoding,
    /// Evaluate every this many steps (0: only at the end).
    pub eval_every: u64,
    /// Log the training loss every this many steps.
    pub log_every: u64,
    /// Checkpoint at least this often, in seconds.
    pub checkpoint_secs: u64,
    /// Training threads.
    pub threads: usize,
    /// Shuffling seed.
    pub seed: u64,
    /// Shuffle the blocks each epoch (otherwise: file and record order, which
    /// for time-ordered data means training in time order).
    pub shuffle: bool,
    /// Start afresh even if the job folder holds checkpoints.
    pub overwrite: bool,
    /// Skip (and count) records whose payload fails its checksum.
    pub skip_corrupt: bool,
    /// Export at the end.
    pub export: bool,
    /// Recorded in the export manifest.
    pub flags: BTreeMap<String, serde_json::Value>,
    /// Choose the learning rate, L1 and L2 by a search on the training data
    /// ([`tune`]) before training; `None` trains with `optimizer` as given.
    /// Only FTRL is searched. A job folder that already holds a search
    /// (`tuning.json`) or a checkpoint keeps its values.
    pub tune: Option<TuneConfig>,
}

impl TrainConfig {
    /// A configuration with the defaults.
    #[must_use]
    pub fn new(job_dir: PathBuf, train_dir: PathBuf, eval_dir: PathBuf) -> Self {
        Self {
            job_dir,
            train_dir,
            eval_dir,
            artifact_dir: None,
            allow_incomplete: false,
            batch_size: 256,
            train_steps: None,
            epochs: None,
            optimizer: OptimizerConfig::defaults(sparky_linear::OptimizerKind::Ftrl),
            int_transform: IntTransform::LogBuckets,
            cat_encoding: CatEncoding::OneHot,
            eval_every: 0,
            log_every: 100,
            checkpoint_secs: 600,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            seed: 1,
            shuffle: true,
            overwrite: false,
            skip_corrupt: false,
            export: true,
            flags: BTreeMap::new(),
            tune: None,
        }
    }

    fn validate(&self) -> Result<(), TrainError> {
        let setting = |name, range, value: String| Err(TrainError::Setting { name, range, value });
        if self.batch_size == 0 || self.batch_size > MAX_BATCH {
            return setting("--batch-size", "between 1 and 1048576", self.batch_size.to_string());
        }
        if self.threads == 0 || self.threads > MAX_THREADS {
            return setting("--threads", "between 1 and 1024", self.threads.to_string());
        }
        if self.epochs == Some(0) {
            return setting("--epochs", "at least 1", "0".into());
        }
        if let Some(t) = self.tune
            && !(t.budget_epochs.is_finite() && t.budget_epochs > 0.0)
        {
            return setting("--tune-budget", "a finite number above 0", t.budget_epochs.to_string());
        }
        Ok(())
    }
}

/// A mean training log loss above this (nats; predicting 0.5 for every
/// example scores ln 2 = 0.69) means the model diverged: its weights swing
/// between extremes. Training stops with [`TrainError::Diverged`] rather
/// than export such a model.
pub const DIVERGED_LOSS: f64 = 5.0;
/// Rounds of fewer examples are too noisy to judge divergence by.
const DIVERGENCE_MIN_EXAMPLES: u64 = 1000;

/// The largest mini-batch accepted.
pub const MAX_BATCH: usize = 1 << 20;
/// The most threads accepted.
pub const MAX_THREADS: usize = 1024;

/// A line of progress, for the binary to show.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// Global step.
    pub step: u64,
    /// Completed epochs (fractional).
    pub epoch: f64,
    /// Mean training loss since the previous line.
    pub loss: f64,
    /// Training examples per second since the previous line.
    pub examples_per_sec: f64,
    /// Evaluation metrics, on evaluation lines.
    pub eval: Option<Metrics>,
    /// Progressive validation, on lines of the first pass over the data: the
    /// mean log loss of this round's examples, each scored before it was
    /// trained on.
    pub progressive_loss: Option<f64>,
    /// The same, averaged over every first-pass example of this run so far.
    pub progressive_average_loss: Option<f64>,
    /// The hyperparameter search, on the line announcing it (step 0).
    pub tuning: Option<Box<Tuning>>,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    /// Final evaluation.
    pub metrics: Metrics,
    /// Final global step.
    pub global_step: u64,
    /// Completed epochs.
    pub epochs: u64,
    /// Training examples processed in this run.
    pub examples: u64,
    /// Seconds spent training (excluding evaluation) in this run.
    pub train_seconds: f64,
    /// Seconds in all.
    pub total_seconds: f64,
    /// The step this run resumed from, if it did.
    pub resumed_from: Option<u64>,
    /// The export folder.
    pub export_dir: Option<PathBuf>,
    /// Records skipped as corrupt.
    pub skipped_records: u64,
    /// True when a stop was requested (signal) before the planned end.
    pub interrupted: bool,
    /// The optimizer settings trained with (chosen by the search, given, or
    /// those of the resumed checkpoint).
    pub optimizer: OptimizerConfig,
    /// The hyperparameter search, when the values were chosen by one (in
    /// this run, or in an earlier run of the job folder).
    pub tuning: Option<Tuning>,
    /// True when the search's values came from the job folder, not a new search.
    pub tuning_reused: bool,
    /// Progressive validation over the first-pass examples of this run: the
    /// mean log loss of each example scored before it was trained on.
    pub progressive_loss: Option<f64>,
}

/// `metrics.json`.
#[derive(Debug, Clone, Serialize)]
struct MetricsFile {
    log_loss: f64,
    auc: f64,
    accuracy: f64,
    mean_prediction: f64,
    label_mean: f64,
    examples: u64,
    global_step: u64,
    /// The settings trained with.
    optimizer: OptimizerConfig,
    /// Progressive validation loss of this run's first-pass examples.
    #[serde(skip_serializing_if = "Option::is_none")]
    progressive_validation_loss: Option<f64>,
    /// The hyperparameter search.
    #[serde(skip_serializing_if = "Option::is_none")]
    tuning: Option<Tuning>,
}

/// Where the checkpoints of a job go.
#[must_use]
pub fn checkpoint_dir(job_dir: &Path) -> PathBuf {
    job_dir.join("checkpoints")
}

/// The checkpoints of a job, oldest first: (step, path).
fn checkpoints(job_dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut all: Vec<(u64, PathBuf)> = std::fs::read_dir(checkpoint_dir(job_dir))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("ckpt-")?.strip_suffix(".pb")?.parse::<u64>().ok()?;
            Some((step, e.path()))
        })
        .collect();
    all.sort();
    all
}

/// The newest checkpoint of a job: (step, path).
#[must_use]
pub fn newest_checkpoint(job_dir: &Path) -> Option<(u64, PathBuf)> {
    checkpoints(job_dir).pop()
}

/// The data and artifacts of a run, checked.
struct Inputs {
    train: Reader,
    eval: Reader,
    artifacts: CheckedArtifacts,
}

/// Opens the training and evaluation folders and finds and checks the
/// artifacts both were prepared with (once).
fn open_inputs(cfg: &TrainConfig) -> Result<Inputs, TrainError> {
    let opts = OpenOptions { allow_incomplete: cfg.allow_incomplete };
    let train = PreparedDir::open(&cfg.train_dir, opts)?;
    let eval = PreparedDir::open(&cfg.eval_dir, opts)?;
    train.require_labels("training needs labelled data (criteo-prepare --mode train or evaluate)")?;
    eval.require_labels("evaluation needs labelled data (criteo-prepare --mode evaluate)")?;
    let artifacts = match &cfg.artifact_dir {
        Some(dir) => sparky_prepared::artifacts::verify(dir).map_err(PreparedError::from)?,
        None => train.artifacts()?.ok_or_else(|| TrainError::NoArtifacts(cfg.train_dir.clone()))?,
    };
    train.check_artifacts(&artifacts)?;
    eval.check_artifacts(&artifacts)?;
    for (dir, what) in [(&train, "train on"), (&eval, "evaluate on")] {
        if dir.recorded_rows() == Some(0) {
            return Err(TrainError::NoRows { dir: dir.dir().to_path_buf(), what });
        }
    }
    Ok(Inputs {
        train: Reader::new(&train, BLOCK_BYTES, Access::Normal)?,
        eval: Reader::new(&eval, BLOCK_BYTES, Access::Sequential)?,
        artifacts,
    })
}

/// Scores every example of a folder with a snapshot of the model, and checks
/// the records read against the record.
///
/// # Errors
/// A record that cannot be read or used; counts that differ from the record;
/// no rows at all.
pub fn evaluate(
    model: &sparky_linear::LinearModel,
    data: &Reader,
    sizes: [u64; sparky_prepared::NUM_CAT],
    threads: usize,
) -> Result<Metrics, TrainError> {
    let next = AtomicUsize::new(0);
    let results: Vec<Result<(Evaluator, Vec<u64>), TrainError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut decoder = RowDecoder::new(Some(sizes)).labelled();
                    let mut row = Row::default();
                    let mut eval = Evaluator::new();
                    let mut counts = vec![0u64; data.parts().len()];
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        if b >= data.blocks().len() {
                            break;
                        }
                        let stats = data.read_block(b, &mut decoder, &mut row, |item| match item {
                            Item::Row(r) => {
                                eval.add(model.logit(r.ints(), r.ids()), r.label() == Some(true));
                                Ok(Flow::Continue)
                            }
                            Item::Bad(b) => Err(TrainError::from(Box::new(b))),
                        })?;
                        counts[stats.part] += stats.records;
                    }
                    Ok((eval, counts))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    let mut all = Evaluator::new();
    let mut counts = vec![0u64; data.parts().len()];
    for r in results {
        let (e, c) = r?;
        all.merge(e);
        counts.iter_mut().zip(c).for_each(|(a, b)| *a += b);
    }
    data.check_counts(&counts)?;
    if all.is_empty() {
        return Err(TrainError::NoRows {
            dir: data.parts().first().and_then(|p| p.path.parent()).map(Path::to_path_buf).unwrap_or_default(),
            what: "evaluate on",
        });
    }
    Ok(all.finish())
}

/// State of the epoch loop, saved in checkpoints.
#[derive(Debug, Clone, Copy)]
struct Position {
    epoch: u64,
    blocks_done: u64,
    examples: u64,
}

/// The model to train: new, or resumed from the job's newest checkpoint.
struct Start {
    shared: SharedModel,
    pos: Position,
    resumed_from: Option<u64>,
}

/// Clears a job folder for `--overwrite`: checkpoints, event files,
/// `metrics.json`, the search record.
fn clear_job(job: &DirLock) -> Result<(), TrainError> {
    for sub in [checkpoint_dir(job.path()), job.path().join("eval")] {
        if sub.exists() {
            std::fs::remove_dir_all(&sub).map_err(io_err(&sub))?;
        }
    }
    for e in std::fs::read_dir(job.path()).map_err(io_err(job.path()))?.filter_map(Result::ok) {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with("events.out.tfevents.") || n == "metrics.json" || n == TUNING_FILE {
            std::fs::remove_file(e.path()).map_err(io_err(&e.path()))?;
        }
    }
    Ok(())
}

/// The search's record in a job folder: its values are kept on resume.
pub const TUNING_FILE: &str = "tuning.json";

/// The optimizer to start with: as configured, or chosen by a search (new,
/// or recorded in the job folder by an earlier run). A job that already has
/// a checkpoint but no search record is not searched (the checkpoint's
/// values are kept).
fn choose_optimizer(
    cfg: &TrainConfig,
    job: &DirLock,
    inputs: &Inputs,
    layout: &Layout,
    rows_per_epoch: Option<u64>,
) -> Result<(OptimizerConfig, Option<Tuning>, bool), TrainError> {
    let Some(tc) = cfg.tune.filter(|_| tune::searchable(cfg.optimizer.kind)) else {
        return Ok((cfg.optimizer, None, false));
    };
    let with = |t: &Tuning| OptimizerConfig {
        learning_rate: t.chosen.learning_rate,
        l1: t.chosen.l1,
        l2: t.chosen.l2,
        ..cfg.optimizer
    };
    let path = job.path().join(TUNING_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let t: Tuning = serde_json::from_slice(&bytes)
                .map_err(|source| TrainError::TuningRecord { path: path.clone(), source })?;
            return Ok((with(&t), Some(t), true));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(TrainError::Io { path, source: e }),
    }
    if newest_checkpoint(job.path()).is_some() {
        return Ok((cfg.optimizer, None, false));
    }
    let epochs = match (cfg.epochs, cfg.train_steps, rows_per_epoch) {
        (Some(e), _, _) => Some(e as f64),
        (None, Some(steps), Some(rows)) if rows > 0 => Some(steps as f64 * cfg.batch_size as f64 / rows as f64),
        _ => None,
    };
    let input = tune::SearchInput {
        dir: &cfg.train_dir,
        train: &inputs.train,
        sizes: inputs.artifacts.sizes(),
        layout,
        base: cfg.optimizer,
        batch_size: cfg.batch_size,
        threads: cfg.threads,
        seed: cfg.seed,
        shuffle: cfg.shuffle,
        rows: rows_per_epoch,
        epochs,
        skip_corrupt: cfg.skip_corrupt,
    };
    let t = tune::search(&input, tc)?;
    let mut json = serde_json::to_vec_pretty(&t).unwrap_or_else(|_| unreachable!("plain data serialises"));
    json.push(b'\n');
    sparky_io::write_atomic(&path, &json)?;
    Ok((with(&t), Some(t), false))
}

/// Starts a model afresh with `opt`, or resumes the newest checkpoint (with
/// its own settings), which must match the layout and optimizer.
fn start_or_resume(
    cfg: &TrainConfig,
    job: &DirLock,
    layout: Layout,
    blocks: usize,
    opt: OptimizerConfig,
) -> Result<Start, TrainError> {
    let opt = opt.validate()?;
    let ckdir = checkpoint_dir(job.path());
    std::fs::create_dir_all(&ckdir).map_err(io_err(&ckdir))?;
    job.remove_stale_temps_in(&ckdir)?;
    let Some((step, path)) = newest_checkpoint(job.path()) else {
        let pos = Position { epoch: 0, blocks_done: 0, examples: 0 };
        return Ok(Start { shared: SharedModel::new(layout, opt), pos, resumed_from: None });
    };
    let ck: pb::Checkpoint = envelope::read(&path, CHECKPOINT_TYPE)?;
    let shared =
        SharedModel::from_checkpoint(&ck).map_err(|source| TrainError::Checkpoint { path: path.clone(), source })?;
    let resume = |what: String| TrainError::Resume { path: path.clone(), what };
    if *shared.layout() != layout {
        return Err(resume("other preprocessing artifacts or feature settings".into()));
    }
    if shared.optimizer().kind != cfg.optimizer.kind {
        return Err(resume(format!("{:?}, not {:?}", shared.optimizer().kind, cfg.optimizer.kind)));
    }
    let blocks_done = if ck.blocks_in_epoch as usize <= blocks { ck.blocks_in_epoch } else { 0 };
    let pos = Position { epoch: ck.epoch, blocks_done, examples: ck.examples_seen };
    Ok(Start { shared, pos, resumed_from: Some(step) })
}

/// What the threads of one round did.
#[derive(Default)]
struct Round {
    loss: LossStats,
    examples: u64,
    skipped: u64,
    /// Records read per part, from blocks read whole.
    records: Vec<u64>,
    /// True when a block was left unfinished (a hard stop).
    incomplete: bool,
}

/// Trains until the next logging point, the end of the epoch, the step limit
/// or a stop request, each thread taking blocks in `order` from `claimed`.
#[allow(clippy::too_many_arguments)]
fn train_round(
    cfg: &TrainConfig,
    shared: &SharedModel,
    train: &Reader,
    sizes: [u64; sparky_prepared::NUM_CAT],
    workers: &mut [Worker<'_>],
    order: &[usize],
    claimed: &AtomicU64,
    progress: &Progress,
) -> Result<Round, TrainError> {
    let total_blocks = order.len() as u64;
    let target = ((shared.global_step() / cfg.log_every.max(1)) + 1) * cfg.log_every.max(1);
    let limit = cfg.train_steps.unwrap_or(u64::MAX);
    let pause = AtomicBool::new(false);
    let parts = train.parts().len();
    let outcomes: Vec<Result<Round, TrainError>> = std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .iter_mut()
            .map(|worker| {
                let pause = &pause;
                s.spawn(move || {
                    let mut decoder = RowDecoder::new(Some(sizes)).labelled();
                    let mut row = Row::default();
                    let mut round = Round { records: vec![0; parts], ..Round::default() };
                    let mut hard_stop = false;
                    while !pause.load(Ordering::Relaxed) && !hard_stop {
                        let k = claimed.fetch_add(1, Ordering::Relaxed);
                        if k >= total_blocks {
                            break;
                        }
                        let read = train.read_block(order[k as usize], &mut decoder, &mut row, |item| {
                            let r = match item {
                                Item::Row(r) => r,
                                Item::Bad(b) if cfg.skip_corrupt && b.is_checksum() => {
                                    round.skipped += 1;
                                    return Ok(Flow::Continue);
                                }
                                Item::Bad(b) => return Err(TrainError::from(Box::new(b))),
                            };
                            let (_, stepped) = worker.train(r.ints(), r.ids(), r.label() == Some(true));
                            round.examples += 1;
                            // A batch ended: applied, or dropped at the step limit.
                            if worker.pending() == 0 {
                                let step = shared.global_step();
                                if step >= limit || progress.stop_requested() || shared.diverged() {
                                    // Exact stops: the step limit, a signal, divergence.
                                    hard_stop = true;
                                    pause.store(true, Ordering::Relaxed);
                                    return Ok(Flow::Stop);
                                }
                                if stepped && step >= target {
                                    // Soft stop (a logging point): finish this block first.
                                    pause.store(true, Ordering::Relaxed);
                                }
                            }
                            Ok(Flow::Continue)
                        });
                        match read {
                            Ok(stats) if stats.complete => round.records[stats.part] += stats.records,
                            Ok(_) => round.incomplete = true,
                            Err(e) => {
                                // Stop the other threads too.
                                pause.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                    }
                    round.loss = worker.take_stats();
                    Ok(round)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    let mut all = Round { records: vec![0; parts], ..Round::default() };
    for o in outcomes {
        let r = o?;
        all.loss.loss_sum += r.loss.loss_sum;
        all.loss.examples += r.loss.examples;
        all.examples += r.examples;
        all.skipped += r.skipped;
        all.records.iter_mut().zip(r.records).for_each(|(a, b)| *a += b);
        all.incomplete |= r.incomplete;
    }
    Ok(all)
}

/// Runs training. `progress` counts the examples trained on; a stop request
/// in it (a signal) ends the run early but cleanly: the current steps
/// finish, then the model is evaluated, checkpointed and exported. `log`
/// receives progress lines.
///
/// # Errors
/// See [`TrainError`].
pub fn run(cfg: &TrainConfig, progress: &Progress, log: &dyn Fn(&LogLine)) -> Result<TrainSummary, TrainError> {
    let t0 = Instant::now();
    cfg.validate()?;
    cfg.optimizer.validate()?;
    let job = DirLock::acquire(&cfg.job_dir)?;
    job.remove_stale_temps()?;
    let inputs = open_inputs(cfg)?;
    let sizes = inputs.artifacts.sizes();
    let layout = Layout::new(cfg.int_transform, cfg.cat_encoding, &sizes)?;
    let train = &inputs.train;
    let total_blocks = train.blocks().len() as u64;
    if total_blocks == 0 {
        return Err(TrainError::NoRows { dir: cfg.train_dir.clone(), what: "train on" });
    }
    if cfg.overwrite {
        clear_job(&job)?;
    }
    let rows_per_epoch = inputs.train.parts().iter().map(|p| p.rows).sum::<Option<u64>>();
    let (optimizer, tuning, tuning_reused) = choose_optimizer(cfg, &job, &inputs, &layout, rows_per_epoch)?;
    let Start { shared, mut pos, resumed_from } = start_or_resume(cfg, &job, layout, train.blocks().len(), optimizer)?;
    if let Some(n) = cfg.train_steps {
        shared.set_step_limit(n);
    }
    if let Some(t) = &tuning {
        log(&LogLine {
            step: shared.global_step(),
            epoch: pos.epoch as f64,
            loss: f64::NAN,
            examples_per_sec: 0.0,
            eval: None,
            progressive_loss: None,
            progressive_average_loss: None,
            tuning: Some(Box::new(t.clone())),
        });
    }
    let planned = match (cfg.epochs, rows_per_epoch) {
        (Some(e), Some(r)) => e.saturating_sub(pos.epoch).saturating_mul(r),
        _ => 0,
    };
    progress.start("training", Unit::Rows, planned);

    let mut train_events = EventWriter::create(job.path()).map_err(io_err(job.path()))?;
    let eval_dir = job.path().join("eval");
    let mut eval_events = EventWriter::create(&eval_dir).map_err(io_err(&eval_dir))?;

    let planned_done = |step: u64, pos: &Position| {
        cfg.train_steps.is_some_and(|n| step >= n) || cfg.epochs.is_some_and(|e| pos.epoch >= e)
    };
    let mut next_eval = shared.global_step().checked_div(cfg.eval_every).map_or(u64::MAX, |k| (k + 1) * cfg.eval_every);
    let mut last_checkpoint = Instant::now();
    let mut train_seconds = 0.0;
    let mut run_examples = 0u64;
    let mut skipped = 0u64;
    let mut last_metrics: Option<Metrics> = None;
    // Progressive validation: the first pass's examples, each scored before
    // it was trained on.
    let mut progressive = LossStats::default();
    // Records read per part in the current epoch, when this run read it from
    // its start: checked against `_prepare.json` at the epoch's end.
    let mut epoch_records: Option<Vec<u64>> = (pos.blocks_done == 0).then(|| vec![0; train.parts().len()]);

    // One worker (mini-batch state) per thread, kept across rounds: a batch
    // spans logging points, and ends only when full or at the end of an epoch.
    let mut workers: Vec<Worker<'_>> = (0..cfg.threads).map(|_| Worker::new(&shared, cfg.batch_size)).collect();
    while !progress.stop_requested() && !planned_done(shared.global_step(), &pos) {
        let start_step = shared.global_step();
        let first_pass = pos.epoch == 0;
        let order = data::epoch_order(train.blocks().len(), cfg.seed, pos.epoch, cfg.shuffle);
        let claimed = AtomicU64::new(pos.blocks_done);
        let round_start = Instant::now();
        let round = train_round(cfg, &shared, train, sizes, &mut workers, &order, &claimed, progress)?;
        progress.add(round.examples, round.examples);
        let secs = round_start.elapsed().as_secs_f64();
        train_seconds += secs;
        run_examples += round.examples;
        pos.examples += round.examples;
        skipped += round.skipped;
        if round.incomplete {
            // A block was left unfinished: this epoch's counts cannot be checked.
            epoch_records = None;
        }
        if let Some(counts) = &mut epoch_records {
            counts.iter_mut().zip(&round.records).for_each(|(a, b)| *a += b);
        }
        let step = shared.global_step();
        if shared.diverged() || !round.loss.loss_sum.is_finite() {
            let what =
                if shared.diverged() { "a weight became infinite or NaN" } else { "the loss became infinite or NaN" };
            return Err(TrainError::Diverged { step, what });
        }
        if round.loss.examples >= DIVERGENCE_MIN_EXAMPLES && round.loss.mean() > DIVERGED_LOSS {
            return Err(TrainError::Diverged { step, what: "the training loss is far above that of predicting 0.5" });
        }
        pos.blocks_done = claimed.load(Ordering::Relaxed).min(total_blocks);
        if pos.blocks_done >= total_blocks {
            // The end of an epoch: the last, partial batches are applied.
            for w in &mut workers {
                w.end_batch();
            }
            if let Some(counts) = epoch_records.take() {
                train.check_counts(&counts)?;
                if counts.iter().sum::<u64>() == 0 {
                    return Err(TrainError::NoRows { dir: cfg.train_dir.clone(), what: "train on" });
                }
            }
            epoch_records = Some(vec![0; train.parts().len()]);
            pos.epoch += 1;
            pos.blocks_done = 0;
        }
        let epoch_frac = pos.epoch as f64 + pos.blocks_done as f64 / total_blocks as f64;
        let rate = round.examples as f64 / secs.max(1e-9);
        let pv = (first_pass && round.loss.examples > 0).then(|| {
            progressive.loss_sum += round.loss.loss_sum;
            progressive.examples += round.loss.examples;
            (round.loss.mean(), progressive.mean())
        });
        if round.loss.examples > 0 {
            let mut scalars = vec![
                ("loss", round.loss.mean()),
                ("global_step/sec", (step - start_step) as f64 / secs.max(1e-9)),
                ("examples/sec", rate),
                ("epoch", epoch_frac),
            ];
            if let Some((round_pv, avg_pv)) = pv {
                scalars.push(("progressive_validation/loss", round_pv));
                scalars.push(("progressive_validation/average_loss", avg_pv));
            }
            train_events
                .add_scalars(step, &scalars)
                .and_then(|()| train_events.flush())
                .map_err(io_err(train_events.path()))?;
        }
        let mut line = LogLine {
            step,
            epoch: epoch_frac,
            loss: round.loss.mean(),
            examples_per_sec: rate,
            eval: None,
            progressive_loss: pv.map(|p| p.0),
            progressive_average_loss: pv.map(|p| p.1),
            tuning: None,
        };
        if step >= next_eval {
            let m = evaluate(&shared.snapshot(), &inputs.eval, sizes, cfg.threads)?;
            write_eval_events(&mut eval_events, step, &m)?;
            line.eval = Some(m);
            last_metrics = Some(m);
            next_eval = (step / cfg.eval_every + 1) * cfg.eval_every;
        }
        log(&line);
        if last_checkpoint.elapsed().as_secs() >= cfg.checkpoint_secs {
            save_checkpoint(cfg, &job, &shared, pos)?;
            last_checkpoint = Instant::now();
        }
    }

    // The end: pending examples are applied, then evaluate (unless this very
    // step was just evaluated), checkpoint, export.
    if cfg.train_steps.is_none_or(|n| shared.global_step() < n) {
        for w in &mut workers {
            w.end_batch();
        }
    }
    drop(workers);
    let step = shared.global_step();
    let metrics = match last_metrics {
        Some(m) if next_eval > step && cfg.eval_every > 0 && step % cfg.eval_every == 0 => m,
        _ => {
            let m = evaluate(&shared.snapshot(), &inputs.eval, sizes, cfg.threads)?;
            write_eval_events(&mut eval_events, step, &m)?;
            m
        }
    };
    log(&LogLine {
        step,
        epoch: pos.epoch as f64 + pos.blocks_done as f64 / total_blocks as f64,
        loss: f64::NAN,
        examples_per_sec: 0.0,
        eval: Some(metrics),
        progressive_loss: None,
        progressive_average_loss: None,
        tuning: None,
    });
    if metrics.log_loss > DIVERGED_LOSS {
        return Err(TrainError::Diverged { step, what: "the evaluation loss is far above that of predicting 0.5" });
    }
    save_checkpoint(cfg, &job, &shared, pos)?;
    let progressive_loss = (progressive.examples > 0).then(|| progressive.mean());
    let export_dir = finish(cfg, &job, &shared, &inputs.artifacts, step, metrics, tuning.as_ref(), progressive_loss)?;
    Ok(TrainSummary {
        metrics,
        global_step: step,
        epochs: pos.epoch,
        examples: run_examples,
        train_seconds,
        total_seconds: t0.elapsed().as_secs_f64(),
        resumed_from,
        export_dir,
        skipped_records: skipped,
        interrupted: progress.stop_requested(),
        optimizer: *shared.optimizer(),
        tuning,
        tuning_reused,
        progressive_loss,
    })
}

/// Writes the export, then `metrics.json`.
#[allow(clippy::too_many_arguments)]
fn finish(
    cfg: &TrainConfig,
    job: &DirLock,
    shared: &SharedModel,
    artifacts: &CheckedArtifacts,
    step: u64,
    metrics: Metrics,
    tuning: Option<&Tuning>,
    progressive_loss: Option<f64>,
) -> Result<Option<PathBuf>, TrainError> {
    let mf = MetricsFile {
        log_loss: metrics.log_loss,
        auc: metrics.auc,
        accuracy: metrics.accuracy,
        mean_prediction: metrics.mean_prediction,
        label_mean: metrics.label_mean,
        examples: metrics.examples,
        global_step: step,
        optimizer: *shared.optimizer(),
        progressive_validation_loss: progressive_loss,
        tuning: tuning.cloned(),
    };
    let mut json = serde_json::to_vec_pretty(&mf).unwrap_or_else(|_| unreachable!("plain data serialises"));
    json.push(b'\n');
    // The export first: metrics.json describes a run whose export (if any) is complete.
    let export = if cfg.export {
        let model = shared.snapshot();
        // The flags as given, with the settings actually trained with (chosen
        // by the search, or those of a resumed checkpoint) and the search.
        let mut flags = cfg.flags.clone();
        let plain = "plain data serialises";
        flags.insert("optimizer".into(), serde_json::to_value(shared.optimizer()).expect(plain));
        if let Some(t) = tuning {
            flags.insert("tuning".into(), serde_json::to_value(t).expect(plain));
        }
        Some(sparky_export::write_export(job, &model, artifacts, step, flags, Some(metrics))?)
    } else {
        None
    };
    sparky_io::write_atomic(job.path().join("metrics.json"), &json)?;
    Ok(export)
}

fn write_eval_events(w: &mut EventWriter, step: u64, m: &Metrics) -> Result<(), TrainError> {
    w.add_scalars(
        step,
        &[
            ("loss", m.log_loss),
            ("average_loss", m.log_loss),
            ("auc", m.auc),
            ("accuracy", m.accuracy),
            ("prediction/mean", m.mean_prediction),
            ("label/mean", m.label_mean),
        ],
    )
    .and_then(|()| w.flush())
    .map_err(io_err(w.path()))
}

/// Writes `ckpt-<step>.pb` and keeps the three newest.
fn save_checkpoint(cfg: &TrainConfig, job: &DirLock, shared: &SharedModel, pos: Position) -> Result<(), TrainError> {
    let dir = checkpoint_dir(job.path());
    let step = shared.global_step();
    let ck = shared.checkpoint(pos.epoch, pos.blocks_done, pos.examples, cfg.seed);
    envelope::write(&dir.join(format!("ckpt-{step}.pb")), CHECKPOINT_TYPE, &ck)?;
    let all = checkpoints(job.path());
    let n = all.len();
    for (_, p) in all.into_iter().take(n.saturating_sub(3)) {
        std::fs::remove_file(&p).map_err(io_err(&p))?;
    }
    Ok(())
}
