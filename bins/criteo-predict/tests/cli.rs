//! criteo-predict as a user runs it: batch over a job folder, streaming over
//! standard input, refusals, and a killed run.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use sparky_criteo::input::Source;
use sparky_criteo::prepare::{self, PrepareConfig, Progress};
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_prepared::schema::Mode;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_criteo-predict"))
}

/// Prepared data and, with `train`, a trained job.
fn setup(dir: &Path, train: bool) {
    for (name, first, n, mode, labelled) in [
        ("train", 0, 5_000, Mode::Train, true),
        ("eval", 5_000, 1_000, Mode::Evaluate, true),
        ("test", 6_000, 60_000, Mode::Predict, false),
    ] {
        let g = Generator::new(GeneratorConfig { seed: 17, labelled });
        let tsv = dir.join(format!("{name}.tsv"));
        let mut out = Vec::new();
        sparky_datagen::generate(&g, first, n, 2, &mut out).unwrap();
        std::fs::write(&tsv, out).unwrap();
        let mut c = PrepareConfig::new(vec![Source::File(tsv)], dir.join(name), mode, dir.join("model"));
        c.sync = false;
        prepare::run(&c, &Progress::default()).unwrap();
    }
    if train {
        let mut c = sparky_trainer::TrainConfig::new(dir.join("job"), dir.join("train"), dir.join("eval"));
        c.epochs = Some(1);
        sparky_trainer::run(&c, &Progress::default(), &|_| {}).unwrap();
    }
}

fn predict(dir: &Path, out: &str, extra: &[&str]) -> Command {
    let mut c = bin();
    c.arg("--model").arg(dir.join("job")).arg("--input").arg(dir.join("test")).arg("--output").arg(dir.join(out));
    c.args(extra);
    c
}

#[test]
fn help_and_missing_model() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), false);
    let o = bin().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for f in ["--model", "--input", "--output", "--input-format", "--format", "--strict", "--overwrite", "Exit codes"] {
        assert!(help.contains(f), "--help lacks {f}");
    }
    let o = predict(dir.path(), "out", &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no export found"), "{}", String::from_utf8_lossy(&o.stderr));
    // Standard input with an output folder is a command-line error (exit 2).
    let o = bin().args(["--model", "x", "--input", "-", "--output", "out"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--output -"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn batch_kill_rerun_and_streaming() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), true);
    let o = predict(dir.path(), "ref", &["-q"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reference = std::fs::read(dir.path().join("ref/prediction.results-00007-of-00008")).unwrap();
    // Refused: the output exists.
    let o = predict(dir.path(), "ref", &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--overwrite"));
    // Killed at once: no _SUCCESS, no visible partial part; a rerun completes.
    let mut child = predict(dir.path(), "k", &["-q"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30));
    let _ = child.kill();
    child.wait().unwrap();
    if !dir.path().join("k/_SUCCESS").exists() {
        for e in std::fs::read_dir(dir.path().join("k")).into_iter().flatten() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.starts_with("prediction.") || name.contains("results"), "{name}");
        }
    }
    let o = predict(dir.path(), "k", &["-q", "--overwrite"]).output().unwrap();
    assert!(o.status.success());
    assert_eq!(std::fs::read(dir.path().join("k/prediction.results-00007-of-00008")).unwrap(), reference);

    // Streaming: one JSON line per input line, available before the input ends.
    let mut child = bin()
        .arg("--model")
        .arg(dir.path().join("job"))
        .args(["--input", "-", "--output", "-", "-q"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let text = std::fs::read_to_string(dir.path().join("test.tsv")).unwrap();
    let mut lines = text.lines();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for i in 0..3 {
        writeln!(stdin, "{}", lines.next().unwrap()).unwrap();
        stdin.flush().unwrap();
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap(); // would hang if not flushed per line
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["id"], i);
        assert_eq!(v["classes"], serde_json::json!(["0", "1"]));
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// The results parts' text, in part order.
fn results(dir: &Path) -> String {
    let mut parts: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("prediction.results-"))
        .collect();
    parts.sort();
    parts.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
}

#[test]
fn parquet_input_is_detected_and_scored_like_tfrecords() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d, true);
    let mut c =
        PrepareConfig::new(vec![Source::File(d.join("test.tsv"))], d.join("test-pq"), Mode::Predict, d.join("model"));
    c.sync = false;
    c.format = sparky_prepared::PartFormat::Parquet;
    prepare::run(&c, &Progress::default()).unwrap();
    let run = |input: &Path, out: &str, extra: &[&str]| {
        let mut c = bin();
        c.arg("--model").arg(d.join("job")).arg("--input").arg(input).arg("--output").arg(d.join(out)).arg("-q");
        c.args(extra).output().unwrap()
    };
    assert!(run(&d.join("test"), "out-tf", &[]).status.success());
    let o = run(&d.join("test-pq"), "out-pq", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(results(&d.join("out-pq")), results(&d.join("out-tf")));
    // A bare folder of Parquet files (as Spark leaves one) with --allow-incomplete.
    let bare = d.join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    for e in std::fs::read_dir(d.join("test-pq")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".parquet") {
            std::fs::copy(&p, bare.join(name.replace("part-r-", "part-").replace(".parquet", "-c000.snappy.parquet")))
                .unwrap();
        }
    }
    std::fs::write(bare.join("_SUCCESS"), b"").unwrap();
    let o = run(&bare, "out-bare", &["--input-format", "parquet"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--allow-incomplete"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = run(&bare, "out-bare", &["--allow-incomplete"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(results(&d.join("out-bare")), results(&d.join("out-tf")));
    // A truncated part (the first one, whose bytes are looked at) is an error naming it.
    let mut parts: Vec<_> = std::fs::read_dir(&bare).unwrap().map(|e| e.unwrap().path()).collect();
    parts.sort();
    let part = parts.into_iter().find(|p| p.extension().is_some_and(|e| e == "parquet")).unwrap();
    let bytes = std::fs::read(&part).unwrap();
    std::fs::write(&part, &bytes[..bytes.len() / 2]).unwrap();
    let o = run(&bare, "out-cut", &["--allow-incomplete", "--input-format", "parquet"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&*part.file_name().unwrap().to_string_lossy()) && err.contains("not a Parquet file"), "{err}");
    assert!(!d.join("out-cut/_SUCCESS").exists());
}
