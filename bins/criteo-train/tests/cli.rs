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
        "Exit codes",
    ] {
        assert!(help.contains(f), "--help lacks {f}");
    }
}
