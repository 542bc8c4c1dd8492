//! criteo-train as a user runs it: a killed run resumes from its last
//! checkpoint, SIGINT finishes cleanly, bad flags are refused.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use sparky_criteo::input::Source;
use sparky_criteo::prepare::{self, PrepareConfig, Progress};
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_prepared::schema::Mode;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_criteo-train"))
}

fn prepare_data(dir: &Path, rows: u64) {
    let g = Generator::new(GeneratorConfig { seed: 13, labelled: true });
    for (name, first, n, mode) in [("train", 0, rows, Mode::Train), ("eval", rows, rows / 10, Mode::Evaluate)] {
        let tsv = dir.join(format!("{name}.tsv"));
        let mut out = Vec::new();
        sparky_datagen::generate(&g, first, n, 2, &mut out).unwrap();
        std::fs::write(&tsv, out).unwrap();
        let mut c = PrepareConfig::new(vec![Source::File(tsv)], dir.join(name), mode, dir.join("model"));
        c.sync = false;
        prepare::run(&c, &Progress::default()).unwrap();
    }
}

fn train(dir: &Path, extra: &[&str]) -> Command {
    let mut c = bin();
    c.arg("--job-dir")
        .arg(dir.join("job"))
        .arg("--train-dir")
        .arg(dir.join("train"))
        .arg("--eval-dir")
        .arg(dir.join("eval"));
    c.args(extra);
    c
}

#[test]
fn killed_then_resumed_and_interrupted_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    prepare_data(dir.path(), 40_000);
    // Continuous training (no --train-steps, no --epochs), checkpointing every round.
    let mut child = train(dir.path(), &["--checkpoint-secs", "0", "--log-every", "20", "--batch-size", "64", "-q"])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let ckdir = dir.path().join("job/checkpoints");
    let mut waited = 0;
    while std::fs::read_dir(&ckdir).map_or(0, Iterator::count) == 0 && waited < 600 {
        std::thread::sleep(Duration::from_millis(50));
        waited += 1;
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL: no clean-up at all
    child.wait().unwrap();
    let ck: Vec<String> =
        std::fs::read_dir(&ckdir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(ck.iter().any(|n| n.starts_with("ckpt-") && n.ends_with(".pb")), "{ck:?}");
    assert!(!dir.path().join("job/metrics.json").exists());

    // Rerun continuous training, then SIGINT: it finishes the step,
    // evaluates, checkpoints, exports, and exits 0.
    let child = train(dir.path(), &["--checkpoint-secs", "0", "--log-every", "20", "--batch-size", "64"])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SIGINT, as Ctrl-C sends. SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("resumed from step"), "{err}");
    assert!(err.contains("stopped by signal"), "{err}");
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("job/metrics.json")).unwrap()).unwrap();
    assert!(metrics["global_step"].as_u64().unwrap() > 0);
    assert!(dir.path().join("job/export/Servo").read_dir().unwrap().count() >= 1);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("log_loss "));
}

#[test]
fn bad_settings_exit_1_with_a_message_and_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    prepare_data(dir.path(), 2_000);
    // A value out of range is a command-line error (exit 2) naming the flag and the range.
    let o = train(dir.path(), &["--learning-rate=-1", "--epochs", "1"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--learning-rate") && err.contains("above 0"), "{err}");
    // A setting the library refuses: exit 1 with a message.
    let o = train(dir.path(), &["--epochs", "1", "--artifact-dir", "nowhere"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("nowhere"), "{}", String::from_utf8_lossy(&o.stderr));
    let o = train(dir.path(), &["--optimizer", "newton"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = bin().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for f in [
        "--job-dir",
        "--train-dir",
        "--eval-dir",
        "--batch-size",
        "--train-steps",
        "--epochs",
        "--optimizer",
        "--learning-rate",
        "--l1",
        "--l2",
        "--eval-every",
        "--threads",
        "--seed",
        "--overwrite",
        "--artifact-dir",
        "--tune",
        "--tune-budget",
        "progressive validation",
        "Exit codes",
    ] {
        assert!(help.contains(f), "--help lacks {f}");
    }
}

#[test]
fn searches_by_default_and_explicit_values_or_tune_off_skip_the_search() {
    let dir = tempfile::tempdir().unwrap();
    prepare_data(dir.path(), 4_000);
    let job = dir.path().join("job");
    let metrics =
        || -> serde_json::Value { serde_json::from_slice(&std::fs::read(job.join("metrics.json")).unwrap()).unwrap() };
    let base = ["--epochs", "1", "--threads", "1", "--batch-size", "32", "--overwrite"];

    // No hyperparameter flag: the search chooses, logs and records.
    let out = train(dir.path(), &base).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("search on the training data") && err.contains("chose --learning-rate"), "{err}");
    assert!(err.contains("progressive validation"), "{err}");
    let m = metrics();
    let chosen = &m["tuning"]["chosen"];
    assert_eq!(m["optimizer"]["learning_rate"], chosen["learning_rate"]);
    assert!(job.join("tuning.json").is_file());

    // Any one of --learning-rate, --l1, --l2: no search, the others at their defaults.
    for (flag, value, key) in [("--l2", "3", "l2"), ("--l1", "0.5", "l1"), ("--learning-rate", "0.3", "learning_rate")]
    {
        let out = train(dir.path(), &base).args([flag, value]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(!String::from_utf8_lossy(&out.stderr).contains("search on the training data"));
        assert!(!job.join("tuning.json").exists(), "{flag}");
        let m = metrics();
        assert!(m.get("tuning").is_none());
        let mut want = serde_json::json!({"learning_rate": 0.05, "l1": 1.0, "l2": 1.0});
        want[key] = value.parse::<f64>().unwrap().into();
        for k in ["learning_rate", "l1", "l2"] {
            assert_eq!(m["optimizer"][k], want[k], "{flag}: {k}");
        }
    }
    // --tune off: the fixed defaults.
    let out = train(dir.path(), &base).args(["--tune", "off", "-q"]).output().unwrap();
    assert!(out.status.success());
    assert!(!job.join("tuning.json").exists());
    assert_eq!(metrics()["optimizer"]["l1"], 1.0);
    // A budget of nothing is a command-line error.
    let out = train(dir.path(), &base).args(["--tune-budget", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
