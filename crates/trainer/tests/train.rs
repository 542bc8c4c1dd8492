//! Training end to end on generated data: learning, reproducibility,
//! resuming, TensorBoard events, metrics.json, exports, stops, and bad input.

use std::path::{Path, PathBuf};

use sparky_criteo::input::Source;
use sparky_criteo::prepare::{self, PrepareConfig, Progress};
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_export::ExportDir;
use sparky_prepared::PartFormat;
use sparky_prepared::schema::Mode;
use sparky_trainer::{TrainConfig, TrainError};

struct Fixture {
    dir: tempfile::TempDir,
    best_eval_log_loss: f64,
}

impl Fixture {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
}

/// Generates 20,000 training and 4,000 evaluation rows and prepares them.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let g = Generator::new(GeneratorConfig { seed: 5, labelled: true });
    let mut best = 0.0;
    for (name, first, rows, mode) in [("train", 0, 20_000, Mode::Train), ("eval", 20_000, 4_000, Mode::Evaluate)] {
        let tsv = dir.path().join(format!("{name}.tsv"));
        let mut out = Vec::new();
        let s = sparky_datagen::generate(&g, first, rows, 2, &mut out).unwrap();
        best = s.best_log_loss;
        std::fs::write(&tsv, out).unwrap();
        let mut c = PrepareConfig::new(vec![Source::File(tsv)], dir.path().join(name), mode, dir.path().join("model"));
        c.num_partitions = 3;
        c.sync = false;
        prepare::run(&c, &Progress::default()).unwrap();
    }
    Fixture { dir, best_eval_log_loss: best }
}

fn config(f: &Fixture, job: &str) -> TrainConfig {
    let mut c = TrainConfig::new(f.path(job), f.path("train"), f.path("eval"));
    c.threads = 1;
    c.batch_size = 64;
    c.log_every = 50;
    c
}

fn train(c: &TrainConfig) -> Result<sparky_trainer::TrainSummary, TrainError> {
    sparky_trainer::run(c, &Progress::new(), &|_| {})
}

#[test]
fn learns_logs_exports_and_reproduces() {
    let f = fixture();
    let mut c = config(&f, "job");
    c.epochs = Some(3);
    c.eval_every = 300;
    let s = train(&c).unwrap();
    assert_eq!(s.epochs, 3);
    assert_eq!(s.examples, 60_000);
    assert_eq!(s.global_step, 3 * 20_000u64.div_ceil(64), "one step per batch, a partial one at each epoch's end");
    let m = s.metrics;
    assert_eq!(m.examples, 4_000);
    // Far better than the constant click rate, and not far from the planted model.
    let rate = m.label_mean;
    let constant = -(rate * rate.ln() + (1.0 - rate) * (1.0 - rate).ln());
    assert!(m.log_loss < constant - 0.05, "{m:?} vs constant {constant}");
    assert!(m.log_loss < f.best_eval_log_loss + 0.05, "{} vs best {}", m.log_loss, f.best_eval_log_loss);
    assert!(m.auc > 0.75, "{m:?}");

    // metrics.json has the guide's keys.
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(f.path("job/metrics.json")).unwrap()).unwrap();
    for k in ["log_loss", "auc", "accuracy", "mean_prediction", "label_mean", "examples", "global_step"] {
        assert!(json.get(k).is_some(), "metrics.json lacks {k}");
    }
    assert_eq!(json["global_step"], s.global_step);

    // TensorBoard: training loss in the job folder, evaluation in eval/.
    let events = |d: &Path| -> Vec<(i64, String, f64)> {
        let file = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("events.out.tfevents."))
            .unwrap();
        sparky_events::read_scalars(&file).unwrap()
    };
    let train_events = events(&f.path("job"));
    assert!(train_events.iter().filter(|e| e.1 == "loss").count() >= 10);
    let eval_events = events(&f.path("job/eval"));
    let aucs: Vec<_> = eval_events.iter().filter(|e| e.1 == "auc").collect();
    assert!(aucs.len() >= 3, "{eval_events:?}");
    assert_eq!(aucs.last().unwrap().0 as u64, s.global_step);

    // The export loads and scores like the trained model.
    let e = ExportDir::load(&f.path("job")).unwrap();
    assert_eq!(e.manifest.global_step, s.global_step);
    assert_eq!(e.manifest.metrics.unwrap().log_loss, m.log_loss);
    assert!(e.dir.join("saved_model.pb").is_file());

    // With one thread and the same seed, a second run is identical.
    let mut c2 = config(&f, "job2");
    c2.epochs = Some(3);
    c2.eval_every = 300;
    let s2 = train(&c2).unwrap();
    assert_eq!(s2.metrics.log_loss.to_bits(), m.log_loss.to_bits());
    let e2 = ExportDir::load(&f.path("job2")).unwrap();
    assert_eq!(e2.model, e.model);
}

#[test]
fn resumes_from_the_newest_checkpoint() {
    let f = fixture();
    let mut c = config(&f, "job");
    c.train_steps = Some(100);
    let s = train(&c).unwrap();
    assert_eq!((s.global_step, s.resumed_from), (100, None));
    c.train_steps = Some(250);
    let s = train(&c).unwrap();
    assert_eq!((s.global_step, s.resumed_from), (250, Some(100)));
    assert!(s.examples <= 150 * 64, "only the remaining steps ran: {}", s.examples);
    // A run already past its limit only evaluates and exports.
    let s = train(&c).unwrap();
    assert_eq!((s.global_step, s.examples), (250, 0));
    // --overwrite starts afresh.
    c.overwrite = true;
    c.train_steps = Some(10);
    let s = train(&c).unwrap();
    assert_eq!((s.global_step, s.resumed_from), (10, None));
    // Another optimizer cannot resume this job.
    c.overwrite = false;
    c.optimizer = sparky_linear::OptimizerConfig::defaults(sparky_linear::OptimizerKind::Sgd);
    let e = train(&c).unwrap_err();
    assert!(e.to_string().contains("--overwrite"), "{e}");
}

#[test]
fn a_stop_request_still_evaluates_checkpoints_and_exports() {
    let f = fixture();
    let c = config(&f, "job");
    let stop = Progress::new();
    stop.request_stop();
    let s = sparky_trainer::run(&c, &stop, &|_| {}).unwrap();
    assert!(s.interrupted);
    assert_eq!(s.metrics.examples, 4_000);
    assert!(sparky_trainer::newest_checkpoint(&f.path("job")).is_some());
    assert!(s.export_dir.unwrap().join("manifest.json").is_file());
}

#[test]
fn data_prepared_with_other_artifacts_is_refused() {
    let f = fixture();
    // Evaluation data prepared with another vocabulary: ids would mean other values.
    let g = Generator::new(GeneratorConfig { seed: 6, labelled: true });
    let mut out = Vec::new();
    sparky_datagen::generate(&g, 0, 500, 1, &mut out).unwrap();
    std::fs::write(f.path("other.tsv"), out).unwrap();
    let mut p = PrepareConfig::new(
        vec![Source::File(f.path("other.tsv"))],
        f.path("other"),
        Mode::Train,
        f.path("other-model"),
    );
    p.sync = false;
    prepare::run(&p, &Progress::default()).unwrap();
    let mut c = config(&f, "job");
    c.eval_dir = f.path("other");
    c.epochs = Some(1);
    let e = train(&c).unwrap_err().to_string();
    assert!(e.contains("prepared with other artifacts"), "{e}");
    // A checkpoint from a job trained on other artifacts cannot be resumed.
    let mut c = config(&f, "job2");
    c.train_dir = f.path("other");
    c.eval_dir = f.path("other");
    c.train_steps = Some(3);
    train(&c).unwrap();
    let mut c = config(&f, "job2");
    c.train_steps = Some(6);
    let e = train(&c).unwrap_err().to_string();
    assert!(e.contains("other preprocessing artifacts") && e.contains("--overwrite"), "{e}");
}

#[test]
fn bad_inputs_are_named() {
    let f = fixture();
    // A flipped payload byte: an error with file and offset, or skipped and counted.
    let part = f.path("train/part-r-00001.tfrecord");
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[500] ^= 0x40;
    std::fs::write(&part, &bytes).unwrap();
    let mut c = config(&f, "job");
    c.epochs = Some(1);
    let e = train(&c).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("part-r-00001.tfrecord") && msg.contains("at byte"), "{msg}");
    assert!(matches!(e, TrainError::Record(_)));
    c.skip_corrupt = true;
    c.overwrite = true;
    let s = train(&c).unwrap();
    assert_eq!(s.skipped_records, 1);

    // Evaluation data prepared in predict mode has no labels.
    let test = f.path("test.tsv");
    let g = Generator::new(GeneratorConfig { seed: 5, labelled: false });
    let mut out = Vec::new();
    sparky_datagen::generate(&g, 0, 100, 1, &mut out).unwrap();
    std::fs::write(&test, out).unwrap();
    let mut p = PrepareConfig::new(vec![Source::File(test)], f.path("test"), Mode::Predict, f.path("model"));
    p.sync = false;
    prepare::run(&p, &Progress::default()).unwrap();
    let mut c = config(&f, "job3");
    c.eval_dir = f.path("test");
    c.skip_corrupt = true;
    c.epochs = Some(1);
    let e = train(&c).unwrap_err();
    assert!(e.to_string().contains("predict mode"), "{e}");
    // Without the _prepare.json the folder is refused; read anyway, the
    // missing label is named with file and record.
    std::fs::remove_file(f.path("test/_prepare.json")).unwrap();
    let e = train(&c).unwrap_err();
    assert!(e.to_string().contains("_prepare.json"), "{e}");
    c.allow_incomplete = true;
    let e = train(&c).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("record at byte 0") && msg.contains("\"clicked\" is missing"), "{msg}");
}

#[test]
fn parquet_parts_train_the_same_model_as_tfrecord_parts() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(s);
    let g = Generator::new(GeneratorConfig { seed: 7, labelled: true });
    for (name, first, rows) in [("train", 0, 6_000), ("eval", 6_000, 1_500)] {
        let mut out = Vec::new();
        sparky_datagen::generate(&g, first, rows, 2, &mut out).unwrap();
        std::fs::write(p(&format!("{name}.tsv")), out).unwrap();
    }
    // The same rows prepared twice: TFRecord parts, then Parquet parts (with
    // the artifacts of the first run: evaluate mode).
    for (suffix, format, train_mode) in
        [("", PartFormat::Tfrecord, Mode::Train), ("-pq", PartFormat::Parquet, Mode::Evaluate)]
    {
        for (name, mode) in [("train", train_mode), ("eval", Mode::Evaluate)] {
            let tsv = p(&format!("{name}.tsv"));
            let mut c = PrepareConfig::new(vec![Source::File(tsv)], p(&format!("{name}{suffix}")), mode, p("model"));
            c.num_partitions = 2;
            c.sync = false;
            c.format = format;
            prepare::run(&c, &Progress::default()).unwrap();
        }
    }
    assert!(p("train-pq/part-r-00000.parquet").is_file());
    let run = |suffix: &str, job: &str| {
        let mut c = TrainConfig::new(p(job), p(&format!("train{suffix}")), p(&format!("eval{suffix}")));
        c.artifact_dir = Some(p("model"));
        c.threads = 1;
        c.batch_size = 64;
        c.epochs = Some(2);
        // Blocks differ (1 MiB of records, a row group): file order makes the rows' order the same.
        c.shuffle = false;
        let s = train(&c).unwrap();
        (s, ExportDir::load(&p(job)).unwrap())
    };
    let (s1, e1) = run("", "job-tf");
    let (s2, e2) = run("-pq", "job-pq");
    assert_eq!((s1.examples, s1.global_step), (s2.examples, s2.global_step));
    assert_eq!(s1.metrics.log_loss.to_bits(), s2.metrics.log_loss.to_bits());
    assert_eq!(e1.model, e2.model, "the same model, byte for byte");

    // The parts as Spark leaves a folder (other names, `_SUCCESS`, no
    // `_prepare.json`): read with --allow-incomplete and --artifact-dir.
    for name in ["train", "eval"] {
        let spark = p(&format!("{name}-spark"));
        std::fs::create_dir_all(&spark).unwrap();
        for (i, part) in ["part-r-00000.parquet", "part-r-00001.parquet"].iter().enumerate() {
            let to = spark.join(format!("part-{i:05}-0f3a9c1e-c000.snappy.parquet"));
            std::fs::copy(p(&format!("{name}-pq/{part}")), to).unwrap();
        }
        std::fs::write(spark.join("_SUCCESS"), b"").unwrap();
    }
    let mut c = TrainConfig::new(p("job-spark"), p("train-spark"), p("eval-spark"));
    c.artifact_dir = Some(p("model"));
    c.threads = 1;
    c.batch_size = 64;
    c.epochs = Some(2);
    c.shuffle = false;
    let e = train(&c).unwrap_err();
    assert!(e.to_string().contains("--allow-incomplete"), "{e}");
    c.allow_incomplete = true;
    let s3 = train(&c).unwrap();
    assert_eq!(s3.examples, s2.examples);
    assert_eq!(ExportDir::load(&p("job-spark")).unwrap().model, e2.model);
}
