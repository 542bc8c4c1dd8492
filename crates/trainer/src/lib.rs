//! The training job behind `criteo-train`: the guide's TensorFlow trainer,
//! natively.
//!
//! [`run`] reads the `part-*` files criteo-prepare wrote, trains a
//! [`sparky_linear`] model on every core, evaluates it on the evaluation
//! folder every `eval_every` steps and at the end, logs scalars for
//! TensorBoard (training loss in `JOB_DIR`, evaluation metrics in
//! `JOB_DIR/eval`), checkpoints to `JOB_DIR/checkpoints/` (and resumes from
//! the newest checkpoint when rerun), writes `JOB_DIR/metrics.json`, and
//! exports the model to `JOB_DIR/export/Servo/<seconds>/`.
//!
//! Work is split into blocks of about [`data::BLOCK_BYTES`] bytes, taken by the
//! threads in an order shuffled per epoch with the seed. Training runs in
//! rounds between logging points; between rounds the main thread evaluates,
//! checkpoints or stops. With one thread, a run is exactly reproducible.

pub mod data;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use serde::Serialize;
use sparky_criteo::artifacts;
use sparky_criteo::prepare::read_prepared;
use sparky_events::EventWriter;
use sparky_export::{CHECKPOINT_TYPE, ExportError, envelope};
use sparky_linear::layout::{NUM_CAT, NUM_INT};
use sparky_linear::{CatEncoding, Evaluator, IntTransform, Layout, Metrics, OptimizerConfig, SharedModel, Worker};
use sparky_proto::sparky::model::v1 as pb;
use sparky_tfrecord::example::{ExampleError, Int64SchemaDecoder};

use crate::data::{Dataset, Flow, Row};

/// Why training failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// I/O on a file or folder.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No `part-*` files.
    #[error("{}: no part-* files to read (run criteo-prepare first)", .0.display())]
    NoData(PathBuf),
    /// A corrupt record.
    #[error(transparent)]
    Record(#[from] sparky_tfrecord::Error),
    /// An Example without the expected features.
    #[error("{}: {at}: {source}", path.display())]
    Example {
        /// The file.
        path: PathBuf,
        /// Which record: "record at byte N" or "record N".
        at: String,
        /// What is wrong.
        #[source]
        source: ExampleError,
    },
    /// A label other than 0 or 1.
    #[error("{}: {at}: label \"clicked\" is {value}, expected 0 or 1", path.display())]
    Label {
        /// The file.
        path: PathBuf,
        /// Which record: "record at byte N" or "record N".
        at: String,
        /// The value found.
        value: i64,
    },
    /// Preprocessing artifacts could not be found or loaded.
    #[error("{0}")]
    Artifacts(String),
    /// A model file.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// A setting out of range.
    #[error("{0}")]
    Config(String),
    /// Training produced non-finite weights or loss.
    #[error(
        "training diverged at step {step}: {what}; nothing was checkpointed or exported from this point (lower --learning-rate)"
    )]
    Diverged {
        /// The global step.
        step: u64,
        /// What went non-finite.
        what: String,
    },
    /// The job folder holds another run and `--overwrite` was not given.
    #[error("{0}")]
    Resume(String),
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
        }
    }
}

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
}

/// Where the checkpoints of a job go.
#[must_use]
pub fn checkpoint_dir(job_dir: &Path) -> PathBuf {
    job_dir.join("checkpoints")
}

/// The newest checkpoint of a job: (step, path).
pub fn newest_checkpoint(job_dir: &Path) -> Option<(u64, PathBuf)> {
    std::fs::read_dir(checkpoint_dir(job_dir))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("ckpt-")?.strip_suffix(".pb")?.parse::<u64>().ok()?;
            Some((step, e.path()))
        })
        .max_by_key(|(s, _)| *s)
}

/// Finds the artifacts of a prepared folder, and checks that another
/// prepared folder used the same ones.
fn find_artifacts(cfg: &TrainConfig) -> Result<PathBuf, TrainError> {
    let recorded = |dir: &Path| read_prepared(dir).ok();
    let train = recorded(&cfg.train_dir);
    let dir = match (&cfg.artifact_dir, &train) {
        (Some(d), _) => d.clone(),
        (None, Some(p)) => p.artifacts.dir.clone(),
        (None, None) => {
            return Err(TrainError::Artifacts(format!(
                "{}: no _prepare.json says where the preprocessing artifacts are; pass --artifact-dir",
                cfg.train_dir.display()
            )));
        }
    };
    let loaded_crc = crc32c_of(&dir.join(artifacts::MANIFEST_FILE))
        .map_err(|e| TrainError::Artifacts(format!("{}: {e}", dir.join(artifacts::MANIFEST_FILE).display())))?;
    for (what, p) in [("training", train), ("evaluation", recorded(&cfg.eval_dir))] {
        if let Some(p) = p {
            if p.artifacts.manifest_crc32c != loaded_crc {
                return Err(TrainError::Artifacts(format!(
                    "the {what} data was prepared with other artifacts than those in {} (its _prepare.json names {}); prepare both with the same --model",
                    dir.display(),
                    p.artifacts.dir.display()
                )));
            }
            if p.mode == "predict" {
                return Err(TrainError::Artifacts(format!(
                    "the {what} data was prepared in predict mode: it has no labels"
                )));
            }
        }
    }
    Ok(dir)
}

/// CRC32C of a file, as criteo-prepare records for the artifact manifest.
fn crc32c_of(path: &Path) -> std::io::Result<u32> {
    Ok(crc32c::crc32c(&std::fs::read(path)?))
}

/// Scores every example of a dataset with a snapshot of the model.
pub fn evaluate(model: &sparky_linear::LinearModel, data: &Dataset, threads: usize) -> Result<Metrics, TrainError> {
    let next = AtomicUsize::new(0);
    let results: Vec<Result<Evaluator, TrainError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut decoder = Int64SchemaDecoder::new(&data::feature_names());
                    let mut eval = Evaluator::new();
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        if b >= data.blocks() {
                            break;
                        }
                        data.read_block(b, &mut decoder, |row| {
                            let (ints, ids) = split(row);
                            eval.add(model.logit(ints, ids), row[0] == 1);
                            Flow::Continue
                        })?;
                    }
                    Ok(eval)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("evaluation thread panicked")).collect()
    });
    let mut all = Evaluator::new();
    for r in results {
        all.merge(r?);
    }
    Ok(all.finish())
}

#[inline]
fn split(row: &Row) -> (&[i64; NUM_INT], &[i64; NUM_CAT]) {
    let ints: &[i64; NUM_INT] = row[1..=NUM_INT].try_into().expect("13 integers");
    let ids: &[i64; NUM_CAT] = row[1 + NUM_INT..].try_into().expect("26 ids");
    (ints, ids)
}

/// State of the epoch loop, saved in checkpoints.
#[derive(Debug, Clone, Copy)]
struct Position {
    epoch: u64,
    blocks_done: u64,
    examples: u64,
}

/// Runs training. `stop` requests a clean early end (a signal handler sets
/// it): the current steps finish, then the model is evaluated, checkpointed
/// and exported. `log` receives progress lines.
pub fn run(cfg: &TrainConfig, stop: &AtomicBool, log: &dyn Fn(&LogLine)) -> Result<TrainSummary, TrainError> {
    let t0 = Instant::now();
    if cfg.batch_size == 0 {
        return Err(TrainError::Config("--batch-size must be at least 1".into()));
    }
    if cfg.threads == 0 {
        return Err(TrainError::Config("--threads must be at least 1".into()));
    }
    let opt = cfg.optimizer.validate().map_err(TrainError::Config)?;
    let artifact_dir = find_artifacts(cfg)?;
    // The vocabulary sizes and intact files are all training needs: the ids
    // are in the data already.
    let (manifest, _) = artifacts::verify(&artifact_dir).map_err(|e| TrainError::Artifacts(e.to_string()))?;
    let sizes = manifest.sizes_in_order().map_err(|e| {
        TrainError::Artifacts(format!("{}: {e}", artifact_dir.join(artifacts::MANIFEST_FILE).display()))
    })?;
    let layout = Layout::new(cfg.int_transform, cfg.cat_encoding, &sizes);

    let train = Dataset::open(&cfg.train_dir, cfg.skip_corrupt)?;
    let eval = Dataset::open(&cfg.eval_dir, cfg.skip_corrupt)?;

    // Start afresh or resume.
    let ckdir = checkpoint_dir(&cfg.job_dir);
    if cfg.overwrite && cfg.job_dir.exists() {
        for sub in [ckdir.clone(), cfg.job_dir.join("eval")] {
            if sub.exists() {
                std::fs::remove_dir_all(&sub).map_err(io_err(&sub))?;
            }
        }
        for e in std::fs::read_dir(&cfg.job_dir).map_err(io_err(&cfg.job_dir))?.filter_map(Result::ok) {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("events.out.tfevents.") || n == "metrics.json" {
                std::fs::remove_file(e.path()).map_err(io_err(&e.path()))?;
            }
        }
    }
    std::fs::create_dir_all(&ckdir).map_err(io_err(&ckdir))?;
    let (shared, mut pos, resumed_from) = match newest_checkpoint(&cfg.job_dir) {
        Some((step, path)) => {
            let ck: pb::Checkpoint = envelope::read(&path, CHECKPOINT_TYPE)?;
            let shared = SharedModel::from_checkpoint(&ck)
                .map_err(|e| TrainError::Resume(format!("{}: {e}", path.display())))?;
            if *shared.layout() != layout {
                return Err(TrainError::Resume(format!(
                    "{}: the checkpoint was trained with other preprocessing artifacts or feature settings; pass --overwrite to start afresh",
                    path.display()
                )));
            }
            if shared.optimizer().kind != cfg.optimizer.kind {
                return Err(TrainError::Resume(format!(
                    "{}: the checkpoint was trained with {:?}, not {:?}; pass --overwrite to start afresh",
                    path.display(),
                    shared.optimizer().kind,
                    cfg.optimizer.kind
                )));
            }
            let blocks = if ck.blocks_in_epoch as usize <= train.blocks() { ck.blocks_in_epoch } else { 0 };
            (shared, Position { epoch: ck.epoch, blocks_done: blocks, examples: ck.examples_seen }, Some(step))
        }
        None => (SharedModel::new(layout, opt), Position { epoch: 0, blocks_done: 0, examples: 0 }, None),
    };

    let mut train_events = EventWriter::create(&cfg.job_dir).map_err(io_err(&cfg.job_dir))?;
    let eval_dir = cfg.job_dir.join("eval");
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
    let log_every = cfg.log_every.max(1);
    let total_blocks = train.blocks() as u64;

    // One worker (mini-batch state) and decoder per thread, kept across
    // rounds: a batch spans logging points, and ends only when full or at
    // the end of an epoch.
    let mut workers: Vec<Worker<'_>> = (0..cfg.threads).map(|_| Worker::new(&shared, cfg.batch_size)).collect();
    let mut decoders: Vec<Int64SchemaDecoder> =
        (0..cfg.threads).map(|_| Int64SchemaDecoder::new(&data::feature_names())).collect();
    while !stop.load(Ordering::Relaxed) && !planned_done(shared.global_step(), &pos) {
        // One round: until the next logging point, the end of the epoch, the
        // step limit, or a stop request.
        let start_step = shared.global_step();
        let target = ((start_step / log_every) + 1) * log_every;
        let limit = cfg.train_steps.unwrap_or(u64::MAX);
        let order = if cfg.shuffle {
            data::shuffled(train.blocks(), cfg.seed ^ pos.epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        } else {
            (0..train.blocks()).collect()
        };
        let claimed = AtomicU64::new(pos.blocks_done);
        let pause = AtomicBool::new(false);
        let round_start = Instant::now();
        let outcomes: Vec<Result<(sparky_linear::train::LossStats, u64, u64), TrainError>> = std::thread::scope(|s| {
            let handles: Vec<_> = workers
                .iter_mut()
                .zip(decoders.iter_mut())
                .map(|(worker, decoder)| {
                    let (claimed, pause, order, train, shared) = (&claimed, &pause, &order, &train, &shared);
                    s.spawn(move || {
                        let mut examples = 0u64;
                        let mut skipped = 0u64;
                        let mut hard_stop = false;
                        while !pause.load(Ordering::Relaxed) && !hard_stop {
                            let k = claimed.fetch_add(1, Ordering::Relaxed);
                            if k >= total_blocks {
                                break;
                            }
                            let read = train.read_block(order[k as usize], decoder, |row| {
                                let (ints, ids) = split(row);
                                let (_, stepped) = worker.train(ints, ids, row[0] == 1);
                                examples += 1;
                                if stepped {
                                    let step = shared.global_step();
                                    if step >= limit || stop.load(Ordering::Relaxed) || shared.diverged() {
                                        // Exact stops: the step limit, a signal, divergence.
                                        hard_stop = true;
                                        pause.store(true, Ordering::Relaxed);
                                        return Flow::Stop;
                                    }
                                    if step >= target {
                                        // Soft stop (a logging point): finish this block first.
                                        pause.store(true, Ordering::Relaxed);
                                    }
                                }
                                Flow::Continue
                            });
                            let stats = match read {
                                Ok(stats) => stats,
                                Err(e) => {
                                    // Stop the other threads too.
                                    pause.store(true, Ordering::Relaxed);
                                    return Err(e);
                                }
                            };
                            skipped += stats.skipped;
                        }
                        Ok((worker.take_stats(), examples, skipped))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("training thread panicked")).collect()
        });
        let secs = round_start.elapsed().as_secs_f64();
        train_seconds += secs;
        let mut loss = sparky_linear::train::LossStats::default();
        let mut round_examples = 0;
        for o in outcomes {
            let (l, e, sk) = o?;
            loss.loss_sum += l.loss_sum;
            loss.examples += l.examples;
            round_examples += e;
            skipped += sk;
        }
        run_examples += round_examples;
        pos.examples += round_examples;
        let step = shared.global_step();
        if shared.diverged() || !loss.loss_sum.is_finite() {
            return Err(TrainError::Diverged {
                step,
                what: if shared.diverged() {
                    "a weight became infinite or NaN".into()
                } else {
                    "the loss became infinite or NaN".into()
                },
            });
        }
        pos.blocks_done = claimed.load(Ordering::Relaxed).min(total_blocks);
        if pos.blocks_done >= total_blocks {
            // The end of an epoch: the last, partial batches are applied.
            for w in &mut workers {
                w.end_batch();
            }
            pos.epoch += 1;
            pos.blocks_done = 0;
        }
        let epoch_frac = pos.epoch as f64 + pos.blocks_done as f64 / total_blocks.max(1) as f64;
        let rate = round_examples as f64 / secs.max(1e-9);
        if loss.examples > 0 {
            train_events
                .add_scalars(
                    step,
                    &[
                        ("loss", loss.mean()),
                        ("global_step/sec", (step - start_step) as f64 / secs.max(1e-9)),
                        ("examples/sec", rate),
                        ("epoch", epoch_frac),
                    ],
                )
                .map_err(io_err(train_events.path()))?;
            train_events.flush().map_err(io_err(train_events.path()))?;
        }
        let mut line = LogLine { step, epoch: epoch_frac, loss: loss.mean(), examples_per_sec: rate, eval: None };
        if step >= next_eval {
            let m = evaluate(&shared.snapshot(), &eval, cfg.threads)?;
            write_eval_events(&mut eval_events, step, &m)?;
            line.eval = Some(m);
            last_metrics = Some(m);
            next_eval = (step / cfg.eval_every + 1) * cfg.eval_every;
        }
        log(&line);
        if last_checkpoint.elapsed().as_secs() >= cfg.checkpoint_secs {
            save_checkpoint(cfg, &shared, pos)?;
            last_checkpoint = Instant::now();
        }
        if round_examples == 0 && pos.blocks_done == 0 && total_blocks == 0 {
            break;
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
            let m = evaluate(&shared.snapshot(), &eval, cfg.threads)?;
            write_eval_events(&mut eval_events, step, &m)?;
            m
        }
    };
    log(&LogLine {
        step,
        epoch: pos.epoch as f64 + pos.blocks_done as f64 / total_blocks.max(1) as f64,
        loss: f64::NAN,
        examples_per_sec: 0.0,
        eval: Some(metrics),
    });
    save_checkpoint(cfg, &shared, pos)?;
    let mf = MetricsFile {
        log_loss: metrics.log_loss,
        auc: metrics.auc,
        accuracy: metrics.accuracy,
        mean_prediction: metrics.mean_prediction,
        label_mean: metrics.label_mean,
        examples: metrics.examples,
        global_step: step,
    };
    let mut json = serde_json::to_vec_pretty(&mf).expect("serialisable");
    json.push(b'\n');
    sparky_tfrecord::write_atomic(cfg.job_dir.join("metrics.json"), &json)?;
    let export_dir = if cfg.export {
        let model = shared.snapshot();
        Some(sparky_export::write_export(
            &cfg.job_dir.join("export").join("Servo"),
            &model,
            &artifact_dir,
            step,
            cfg.flags.clone(),
            Some(metrics),
        )?)
    } else {
        None
    };
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
        interrupted: stop.load(Ordering::Relaxed),
    })
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
fn save_checkpoint(cfg: &TrainConfig, shared: &SharedModel, pos: Position) -> Result<(), TrainError> {
    let dir = checkpoint_dir(&cfg.job_dir);
    let step = shared.global_step();
    let ck = shared.checkpoint(pos.epoch, pos.blocks_done, pos.examples, cfg.seed);
    envelope::write(&dir.join(format!("ckpt-{step}.pb")), CHECKPOINT_TYPE, &ck)?;
    let mut all: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
        .map_err(io_err(&dir))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let s = name.strip_prefix("ckpt-")?.strip_suffix(".pb")?.parse::<u64>().ok()?;
            Some((s, e.path()))
        })
        .collect();
    all.sort();
    let n = all.len();
    for (_, p) in all.into_iter().take(n.saturating_sub(3)) {
        std::fs::remove_file(&p).map_err(io_err(&p))?;
    }
    Ok(())
}
