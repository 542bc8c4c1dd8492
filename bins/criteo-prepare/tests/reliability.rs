//! criteo-prepare against concurrent runs, failing commits, signals, hostile
//! flags and damaged inputs: each case of the reliability issue that
//! concerns preparation, named `case_NN_...` after its number there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_criteo-prepare"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn generate(path: &Path, rows: u64) {
    let g = sparky_datagen::Generator::new(sparky_datagen::GeneratorConfig { seed: 31, labelled: true });
    let mut out = Vec::new();
    sparky_datagen::generate(&g, 0, rows, 2, &mut out).unwrap();
    std::fs::write(path, out).unwrap();
}

/// criteo-prepare -b DIR EXTRA...
fn prepare(dir: &Path, extra: &[&str]) -> Output {
    bin().arg("-b").arg(dir).args(extra).arg("-q").output().unwrap()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A large input (the same rows many times), for runs to be caught in the middle.
fn big_input(dir: &Path) -> PathBuf {
    let small = dir.join("small.tsv");
    generate(&small, 20_000);
    let text = std::fs::read(&small).unwrap();
    let big = dir.join("big.tsv");
    std::fs::write(&big, text.repeat(20)).unwrap();
    big
}

#[test]
fn case_09_concurrent_runs_on_one_output_or_model_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    big_input(dir.path());
    let mut first = bin()
        .arg("-b")
        .arg(dir.path())
        .args(["-i", "big.tsv", "-o", "out", "-m", "train", "-x", "model", "--threads", "1", "-q"])
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !dir.path().join("out").exists() && t0.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Another output, the same model folder; then the same output.
    let on_model = prepare(dir.path(), &["-i", "small.tsv", "-o", "out2", "-m", "train", "-x", "model", "--overwrite"]);
    let on_out = prepare(dir.path(), &["-i", "small.tsv", "-o", "out", "-m", "train", "-x", "model3", "--overwrite"]);
    let done = first.wait().unwrap();
    assert!(done.success());
    for o in [&on_model, &on_out] {
        assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
        assert!(stderr(o).contains("in use by another sparky run"), "{}", stderr(o));
    }
    // The folder shows exactly the first run's record.
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/_prepare.json")).unwrap()).unwrap();
    assert_eq!(m["rows"], 400_000);
    assert!(dir.path().join("out/_SUCCESS").is_file());
}

#[test]
fn case_11_a_failing_commit_leaves_no_parts_and_names_the_output() {
    let dir = tempfile::tempdir().unwrap();
    generate(&dir.path().join("t.tsv"), 2000);
    // _prepare.json cannot be written (a folder holds its name).
    std::fs::create_dir_all(dir.path().join("out/_prepare.json")).unwrap();
    let o = prepare(dir.path(), &["-i", "t.tsv", "-o", "out", "-m", "train", "-x", "model", "--overwrite"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("out/_prepare.json"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("/._prepare.json"), "names the output, not its temporary name: {}", stderr(&o));
    assert_eq!(names(&dir.path().join("out")), ["_prepare.json"], "no parts, no marker");
    // A rerun after fixing the cause works without manual clean-up.
    std::fs::remove_dir(dir.path().join("out/_prepare.json")).unwrap();
    let o = prepare(dir.path(), &["-i", "t.tsv", "-o", "out", "-m", "train", "-x", "model", "--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn case_12_sigterm_removes_what_was_started() {
    let dir = tempfile::tempdir().unwrap();
    big_input(dir.path());
    let mut caught = false;
    for wait_ms in [400u64, 150, 900] {
        let mut child = bin()
            .arg("-b")
            .arg(dir.path())
            .args(["-i", "big.tsv", "-o", "out", "-m", "train", "-x", "model", "--threads", "1", "--overwrite", "-q"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        if status.code() == Some(130) {
            let left = names(&dir.path().join("out"));
            assert!(left.is_empty(), "{left:?}");
            caught = true;
            break;
        }
        assert!(status.success(), "{status:?}");
    }
    assert!(caught, "never caught the run in the middle");
    let o = prepare(dir.path(), &["-i", "big.tsv", "-o", "out", "-m", "train", "-x", "model", "--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn case_18_values_out_of_range_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    generate(&dir.path().join("t.tsv"), 10);
    for flag in ["--num-partitions=0", "--min-count=0", "--threads=0", "--threads=100000", "--num-partitions=100001"] {
        let o = prepare(dir.path(), &["-i", "t.tsv", "-o", "out", "-m", "train", "-x", "model", flag]);
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag.split('=').next().unwrap()), "{flag}: {}", stderr(&o));
        assert!(!dir.path().join("out").exists());
    }
}

#[test]
fn case_22_messages_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(&d.join("t.tsv"), 500);
    // -x pointing at a file.
    std::fs::write(d.join("afile"), b"x").unwrap();
    let o = prepare(d, &["-i", "t.tsv", "-o", "out", "-m", "train", "-x", "afile"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("afile") && stderr(&o).contains("not a folder"), "{}", stderr(&o));
    let o = prepare(d, &["-i", "t.tsv", "-o", "out", "-m", "evaluate", "-x", "afile"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not a folder"), "{}", stderr(&o));
    // A manifest whose sizes do not add up: a sentence, not debug text.
    let o = prepare(d, &["-i", "t.tsv", "-o", "out", "-m", "train", "-x", "model"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mpath = d.join("model/manifest.json");
    let text = std::fs::read_to_string(&mpath).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["vocabulary_sizes"]["categorical-feature-3"] = serde_json::json!(1_000_000_000_000u64);
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    let o = prepare(d, &["-i", "t.tsv", "-o", "out-e", "-m", "evaluate", "-x", "model"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("add up to") && !stderr(&o).contains("Some("), "{}", stderr(&o));
    // format_version written as a string is reported as written.
    std::fs::write(&mpath, text.replace("\"format_version\": 1", "\"format_version\": \"1\"")).unwrap();
    let o = prepare(d, &["-i", "t.tsv", "-o", "out-e", "-m", "evaluate", "-x", "model"]);
    assert!(stderr(&o).contains("format version \"1\""), "{}", stderr(&o));
    std::fs::write(&mpath, text).unwrap();

    // GZIP input with bytes after its last member: the compressed offset.
    let gz = d.join("junk.tsv.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &std::fs::read(d.join("t.tsv")).unwrap()).unwrap();
    enc.finish().unwrap();
    let mut bytes = std::fs::read(&gz).unwrap();
    bytes.extend_from_slice(b"trailing junk");
    std::fs::write(&gz, bytes).unwrap();
    let o = prepare(d, &["-i", "junk.tsv.gz", "-o", "out-gz", "-m", "evaluate", "-x", "model"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at compressed byte"), "{}", stderr(&o));
    assert!(names(&d.join("out-gz")).is_empty());

    // --stage count does not replace an existing file without --overwrite.
    let o = prepare(d, &["--stage", "count", "-i", "t.tsv", "-o", "counts-0.csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = prepare(d, &["--stage", "count", "-i", "t.tsv", "-o", "counts-0.csv"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--overwrite"), "{}", stderr(&o));
    // --stage merge refuses a partial with a line removed, and the same partial twice.
    std::fs::create_dir(d.join("parts")).unwrap();
    std::fs::copy(d.join("counts-0.csv"), d.join("parts/a.csv")).unwrap();
    std::fs::copy(d.join("counts-0.csv"), d.join("parts/b.csv")).unwrap();
    let o = prepare(d, &["--stage", "merge", "-i", "parts", "-x", "merged"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("counted twice"), "{}", stderr(&o));
    let text = std::fs::read_to_string(d.join("counts-0.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.remove(10);
    std::fs::write(d.join("parts/b.csv"), lines.join("\n") + "\n").unwrap();
    let o = prepare(d, &["--stage", "merge", "-i", "parts", "-x", "merged"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("removed or edited"), "{}", stderr(&o));
}
