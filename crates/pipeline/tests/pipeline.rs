//! The whole pipeline on a small generated set: every step's outputs, and a
//! model that learned.

use sparky_pipeline::{PipelineConfig, Step};
use sparky_prepared::schema::Mode;

#[test]
fn the_pipeline_runs_end_to_end_and_reruns_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = PipelineConfig::new(dir.path().join("demo"));
    (cfg.rows, cfg.eval_rows, cfg.test_rows, cfg.threads) = (30_000, 5_000, 3_000, 2);
    let steps = std::sync::Mutex::new(Vec::new());
    let r = sparky_pipeline::run(&cfg, &sparky_io::Progress::new(), &|s, _| steps.lock().unwrap().push(s)).unwrap();
    assert_eq!(
        *steps.lock().unwrap(),
        [
            Step::Generate,
            Step::Prepare(Mode::Train),
            Step::Prepare(Mode::Evaluate),
            Step::Prepare(Mode::Predict),
            Step::Train,
            Step::Predict
        ]
    );
    assert_eq!(r.prepared.iter().map(|p| p.rows).collect::<Vec<_>>(), [30_000, 5_000, 3_000]);
    assert_eq!(r.train.metrics.examples, 5_000);
    assert_eq!(r.predict.rows, 3_000);
    assert_eq!(r.predict.errors, 0);
    // It learned: well below the constant click rate's loss, within reach of the planted model's.
    let m = r.train.metrics;
    assert!(m.log_loss < r.constant_log_loss() - 0.03, "{} vs {}", m.log_loss, r.constant_log_loss());
    assert!(m.log_loss < r.generated.eval.best_log_loss + 0.06, "{} vs {}", m.log_loss, r.generated.eval.best_log_loss);
    for f in
        ["data/train.tsv", "model/manifest.json", "prepared/test/_SUCCESS", "job/metrics.json", "predictions/_SUCCESS"]
    {
        assert!(cfg.dir.join(f).exists(), "{f}");
    }
    assert!(r.export.join("saved_model.pb").is_file());
    let first = std::fs::read_to_string(cfg.dir.join("predictions/prediction.results-00000-of-00008")).unwrap();
    let v: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    assert_eq!(v["id"], 0, "ids are the 0-based lines of the test file");

    // A second run replaces the first in place.
    let r2 = sparky_pipeline::run(&cfg, &sparky_io::Progress::new(), &|_, _| {}).unwrap();
    assert_eq!(r2.predict.rows, 3_000);
    assert_eq!(sparky_export::exports(&cfg.dir.join("job")).len(), 1, "the first run's job was replaced");
}
