//! Runs the `criteo-generate` binary.

use std::io::Read;
use std::process::{Command, Output, Stdio};

fn generate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_criteo-generate")).args(args).output().expect("running criteo-generate")
}

fn summary(text: &[u8]) -> serde_json::Value {
    let text = std::str::from_utf8(text).unwrap();
    assert_eq!(text.lines().count(), 1, "one summary line: {text:?}");
    serde_json::from_str(text).unwrap()
}

#[test]
fn help_teaches_every_flag_and_its_default() {
    let out = generate(&["--help"]);
    assert!(out.status.success());
    // Lines wrap at the terminal's width: compare with whitespace collapsed.
    let help = String::from_utf8(out.stdout).unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
    for needle in [
        "--rows <N>",
        "--first-row <K>",
        "[default: 0]",
        "--seed <S>",
        "[default: 1]",
        "--unlabelled",
        "[default: labelled, 40 fields]",
        "--threads <T>",
        "[default: the number of CPUs]",
        "--out <PATH|->",
        "[default: -]",
        "atomically",
        "best_log_loss",
        "standard error",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

#[test]
fn writes_a_file_and_prints_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.tsv");
    let out = generate(&["--rows", "5000", "--seed", "3", "--threads", "2", "--out", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty());
    let s = summary(&out.stdout);
    let data = std::fs::read(&path).unwrap();
    assert_eq!(s["rows"], 5000);
    assert_eq!(s["bytes"], data.len() as u64);
    assert_eq!(data.iter().filter(|&&b| b == b'\n').count(), 5000);
    for key in ["positives", "best_log_loss", "expected_entropy", "seconds"] {
        assert!(s[key].is_number(), "{key}: {s}");
    }
    // Only the file itself: the temporary file was renamed.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["train.tsv"]);

    // The same bytes on standard output, whatever the thread count; the
    // summary then goes to standard error.
    let piped = generate(&["--rows", "5000", "--seed", "3", "--threads", "1"]);
    assert!(piped.status.success());
    assert!(piped.stdout == data);
    assert_eq!(summary(&piped.stderr)["positives"], s["positives"]);
}

#[test]
fn first_row_and_unlabelled() {
    let whole = generate(&["--rows", "300", "--unlabelled"]);
    let tail = generate(&["--rows", "100", "--first-row", "200", "--unlabelled"]);
    assert!(whole.status.success() && tail.status.success());
    assert!(whole.stdout.ends_with(&tail.stdout));
    let first = tail.stdout.split(|&b| b == b'\n').next().unwrap();
    assert_eq!(first.split(|&b| b == b'\t').count(), 39);
}

#[test]
fn errors_name_the_problem_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-folder").join("train.tsv");
    let out = generate(&["--rows", "10", "--out", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("criteo-generate: error: creating the output file: "), "{err}");
    assert!(err.contains("missing-folder"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let out = generate(&["--rows", "10", "--threads", "0"]);
    assert!(!out.status.success());
    let out = generate(&["--seed", "1"]);
    assert!(!out.status.success(), "--rows is required");
}

#[cfg(unix)]
#[test]
fn a_device_is_written_not_replaced() {
    let out = generate(&["--rows", "1000", "--out", "/dev/null"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(summary(&out.stdout)["rows"], 1000);
    let meta = std::fs::metadata("/dev/null").unwrap();
    assert!(!meta.is_file(), "/dev/null was replaced by a file");
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_criteo-generate"))
        .args(["--rows", "100000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut head = [0u8; 4096];
    stdout.read_exact(&mut head).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}
