//! The hyperparameter search and progressive validation, end to end on
//! generated data: the search reads only the training data, is reproducible,
//! is recorded (tuning.json, metrics.json, the export), is not repeated on
//! resume; the progressive validation loss is logged and falls.

use std::path::{Path, PathBuf};

use sparky_criteo::input::Source;
use sparky_criteo::prepare::{self, PrepareConfig, Progress};
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_export::ExportDir;
use sparky_prepared::schema::Mode;
use sparky_trainer::{TUNING_FILE, TrainConfig, TrainSummary, TuneConfig, Tuning};

/// 12,000 training and 2,000 evaluation rows, prepared.
fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let g = Generator::new(GeneratorConfig { seed: 21, labelled: true });
    for (name, first, rows, mode) in [("train", 0, 12_000, Mode::Train), ("eval", 12_000, 2_000, Mode::Evaluate)] {
        let tsv = dir.path().join(format!("{name}.tsv"));
        let mut out = Vec::new();
        sparky_datagen::generate(&g, first, rows, 2, &mut out).unwrap();
        std::fs::write(&tsv, out).unwrap();
        let mut c = PrepareConfig::new(vec![Source::File(tsv)], dir.path().join(name), mode, dir.path().join("model"));
        c.num_partitions = 3;
        c.sync = false;
        prepare::run(&c, &Progress::default()).unwrap();
    }
    dir
}

/// A small search budget keeps the tests quick.
const TUNE: TuneConfig = TuneConfig { budget_epochs: 1.0, min_work: 150_000 };

fn config(dir: &Path, job: &str) -> TrainConfig {
    let mut c = TrainConfig::new(dir.join(job), dir.join("train"), dir.join("eval"));
    c.threads = 1;
    c.batch_size = 32;
    c.log_every = 20;
    c.epochs = Some(1);
    c.tune = Some(TUNE);
    c
}

fn train(c: &TrainConfig) -> TrainSummary {
    sparky_trainer::run(c, &Progress::new(), &|_| {}).unwrap()
}

fn json(p: PathBuf) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// The search without its (non-reproducible) duration.
fn table(t: &Tuning) -> Tuning {
    Tuning { seconds: 0.0, ..t.clone() }
}

#[test]
fn the_search_reads_only_training_data_is_reproducible_and_recorded() {
    let d = fixture();
    let a = train(&config(d.path(), "a"));
    let t = a.tuning.clone().expect("searched");
    assert!(!a.tuning_reused);
    assert_eq!(
        (a.optimizer.learning_rate, a.optimizer.l1, a.optimizer.l2),
        (t.chosen.learning_rate, t.chosen.l1, t.chosen.l2)
    );
    // Successive halving: 48 points, then fewer on more rows, one chosen.
    let first: Vec<_> = t.trials.iter().filter(|x| x.rung == 0).collect();
    assert_eq!(first.len(), 48);
    let last = t.trials.iter().map(|x| x.rung).max().unwrap();
    assert!(last >= 1, "{t:?}");
    assert!(t.trials.iter().filter(|x| x.rung == last).count() <= 3);
    assert!(t.trials.iter().all(|x| x.rows <= t.sample_rows && x.holdout_rows <= t.holdout_rows));
    assert!(t.sample_rows + t.holdout_rows <= 12_000);
    assert!(t.work as f64 <= 150_000.0 * 1.01, "the budget bounds the work: {}", t.work);

    // The evaluation folder replaced by the training folder (on which the
    // least regularised point would win): the same search, to the bit.
    let mut cb = config(d.path(), "b");
    cb.eval_dir = d.path().join("train");
    let b = train(&cb);
    assert_eq!(table(b.tuning.as_ref().unwrap()), table(&t));
    assert_ne!(b.metrics.log_loss, a.metrics.log_loss, "b was evaluated on other data");
    // One thread, same seed: the same model, byte for byte.
    let (ea, eb) = (ExportDir::load(&d.path().join("a")).unwrap(), ExportDir::load(&d.path().join("b")).unwrap());
    assert_eq!(ea.model, eb.model);
    // The search runs each trial on one thread: the choice does not depend
    // on --threads.
    let mut cc = config(d.path(), "c");
    cc.threads = 3;
    assert_eq!(table(train(&cc).tuning.as_ref().unwrap()), table(&t));
    // A different seed samples differently.
    let mut cs = config(d.path(), "s");
    cs.seed = 2;
    assert_ne!(table(train(&cs).tuning.as_ref().unwrap()).trials, t.trials);

    // Small data with room in the budget: k-fold cross-validation over all
    // the rows, again blind to the evaluation folder.
    let cv = |job: &str, eval: &str| {
        let mut c = config(d.path(), job);
        c.tune = Some(TuneConfig { budget_epochs: 1.0, min_work: 1_000_000 });
        c.eval_dir = d.path().join(eval);
        table(train(&c).tuning.as_ref().unwrap())
    };
    let (x, y) = (cv("cv1", "eval"), cv("cv2", "train"));
    assert_eq!(x, y);
    assert_eq!((x.method.as_str(), x.sample_rows, x.trials.len()), ("cross-validation", 12_000, 48));
    assert!(x.folds >= 2 && x.work <= 1_000_000, "{} folds, work {}", x.folds, x.work);

    // Recorded: tuning.json, metrics.json, the export's manifest.
    let file: Tuning = serde_json::from_value(json(d.path().join("a").join(TUNING_FILE))).unwrap();
    assert_eq!(table(&file), table(&t));
    let m = json(d.path().join("a/metrics.json"));
    assert_eq!(m["tuning"]["chosen"]["l1"], t.chosen.l1);
    assert_eq!(m["optimizer"]["learning_rate"], t.chosen.learning_rate);
    assert!(m["log_loss"].is_f64(), "the guide's keys stay");
    assert_eq!(ea.manifest.flags["optimizer"]["l2"], t.chosen.l2);
    assert_eq!(ea.manifest.flags["tuning"]["chosen"]["learning_rate"], t.chosen.learning_rate);
}

#[test]
fn no_search_without_tune_and_none_again_on_resume() {
    let d = fixture();
    // Off: the optimizer as given, no record.
    let mut c = config(d.path(), "off");
    c.tune = None;
    c.optimizer.l2 = 3.0;
    let s = train(&c);
    assert!(s.tuning.is_none());
    assert_eq!(s.optimizer, c.optimizer);
    assert!(!d.path().join("off").join(TUNING_FILE).exists());
    assert!(json(d.path().join("off/metrics.json")).get("tuning").is_none());

    // Searched, then resumed: the recorded values, no new search.
    let mut c = config(d.path(), "job");
    c.epochs = None;
    c.train_steps = Some(100);
    let first = train(&c);
    let chosen = first.optimizer;
    assert!(first.tuning.is_some());
    c.train_steps = Some(200);
    let again = train(&c);
    assert_eq!(again.resumed_from, Some(100));
    assert!(again.tuning_reused);
    assert_eq!(again.optimizer, chosen);
    assert_eq!(table(again.tuning.as_ref().unwrap()), table(first.tuning.as_ref().unwrap()));
    // A damaged record is an error naming it, not a silent new search.
    let record = d.path().join("job").join(TUNING_FILE);
    let good = std::fs::read(&record).unwrap();
    std::fs::write(&record, b"{\"chosen\": 1").unwrap();
    let e = sparky_trainer::run(&c, &Progress::new(), &|_| {}).unwrap_err();
    assert!(matches!(e, sparky_trainer::TrainError::TuningRecord { .. }) && e.to_string().contains(TUNING_FILE), "{e}");
    std::fs::write(&record, good).unwrap();
    // Without the record, the checkpoint's values are kept, still without a search.
    std::fs::remove_file(d.path().join("job").join(TUNING_FILE)).unwrap();
    c.train_steps = Some(300);
    let third = train(&c);
    assert!(third.tuning.is_none() && !d.path().join("job").join(TUNING_FILE).exists());
    assert_eq!(third.optimizer, chosen);
    // --overwrite searches afresh (the same data and seed: the same choice).
    c.overwrite = true;
    c.train_steps = Some(100);
    let fresh = train(&c);
    assert!(!fresh.tuning_reused && fresh.resumed_from.is_none());
    assert_eq!(fresh.optimizer, chosen);
}

#[test]
fn progressive_validation_is_logged_and_falls_on_learnable_data() {
    let d = fixture();
    let mut c = config(d.path(), "job");
    c.tune = None;
    c.epochs = Some(2);
    let lines = std::sync::Mutex::new(Vec::new());
    let s = sparky_trainer::run(&c, &Progress::new(), &|l| lines.lock().unwrap().push(l.clone())).unwrap();
    let lines = lines.into_inner().unwrap();
    // On first-pass lines only.
    let pv: Vec<(f64, f64, f64)> =
        lines.iter().filter_map(|l| Some((l.epoch, l.progressive_loss?, l.progressive_average_loss?))).collect();
    assert!(pv.len() >= 10, "{}", pv.len());
    assert!(pv.iter().all(|p| p.0 <= 1.0));
    assert!(lines.iter().any(|l| l.epoch > 1.0 && l.eval.is_none() && l.progressive_loss.is_none()));
    // Learning shows: late rounds predict unseen examples better than early ones.
    let mean = |v: &[(f64, f64, f64)]| v.iter().map(|p| p.1).sum::<f64>() / v.len() as f64;
    let k = pv.len() / 4;
    assert!(mean(&pv[pv.len() - k..]) < mean(&pv[..k]) - 0.01, "{pv:?}");
    let overall = s.progressive_loss.unwrap();
    assert!((overall - pv.last().unwrap().2).abs() < 1e-12);
    assert_eq!(json(d.path().join("job/metrics.json"))["progressive_validation_loss"], overall);
    // And in TensorBoard, next to the training loss.
    let file = std::fs::read_dir(d.path().join("job"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("events.out.tfevents."))
        .unwrap();
    let events = sparky_events::read_scalars(&file).unwrap();
    let tb: Vec<f64> = events.iter().filter(|e| e.1 == "progressive_validation/loss").map(|e| e.2).collect();
    assert_eq!(tb.len(), pv.len());
    assert!(events.iter().any(|e| e.1 == "progressive_validation/average_loss"));
}
