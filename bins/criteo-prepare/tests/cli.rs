//! criteo-prepare as a user runs it: flags, exit codes, messages, and what a
//! killed or failing run leaves behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sparky_datagen::{Generator, GeneratorConfig};
use sparky_tfrecord::{Compression, RecordReader};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_criteo-prepare"))
}

fn generate(path: &Path, rows: u64) {
    let g = Generator::new(GeneratorConfig { seed: 11, labelled: true });
    let mut out = Vec::new();
    sparky_datagen::generate(&g, 0, rows, 2, &mut out).unwrap();
    std::fs::write(path, out).unwrap();
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Names and contents of the visible files of a folder.
fn visible(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().path())
                .filter(|p| p.is_file() && !p.file_name().unwrap().to_string_lossy().starts_with('.'))
                .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every part file present reads to its end without error.
fn parts_are_whole(dir: &Path) -> usize {
    let mut n = 0;
    for (name, _) in visible(dir) {
        if name.starts_with("part-") {
            let p = dir.join(&name);
            let mut r = RecordReader::open_with(&p, Compression::from_path(&p)).unwrap();
            let mut buf = Vec::new();
            while r.read_record(&mut buf).unwrap_or_else(|e| panic!("{name} is damaged: {e}")) {}
            n += 1;
        }
    }
    n
}

#[test]
fn usage_errors_exit_2_and_help_teaches() {
    let o = bin().args(["-i", "x", "-o", "y", "-x", "z"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "--mode is required");
    assert!(stderr(&o).contains("--mode"), "{}", stderr(&o));
    let o = bin().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--base",
        "--in",
        "--out",
        "--mode",
        "--model",
        "--num-partitions",
        "--compression",
        "--format",
        "--min-count",
        "--bad-lines",
        "--overwrite",
        "--threads",
        "[default: 8]",
        "Exit codes",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    assert!(bin().arg("--version").output().unwrap().status.success());
}

#[test]
fn base_joins_relative_paths_and_errors_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    generate(&dir.path().join("train.tsv"), 300);
    // No trailing slash needed on --base.
    let o = bin()
        .args(["-b", dir.path().to_str().unwrap(), "-i", "train.tsv", "-o", "out", "-m", "train", "-x", "model", "-q"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("out/_SUCCESS").is_file() && dir.path().join("model/manifest.json").is_file());
    assert!(stderr(&o).contains("300 rows"), "one-line summary: {}", stderr(&o));
    // A missing input: exit 1, a message naming it.
    let o = bin()
        .args(["-b", dir.path().to_str().unwrap(), "-i", "nope.tsv", "-o", "o2", "-m", "train", "-x", "m2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nope.tsv") && stderr(&o).starts_with("criteo-prepare: error:"), "{}", stderr(&o));
    // Standard input works too.
    let tsv = std::fs::read(dir.path().join("train.tsv")).unwrap();
    let mut child = bin()
        .args([
            "-i",
            "-",
            "-o",
            dir.path().join("o3").to_str().unwrap(),
            "-m",
            "evaluate",
            "-x",
            dir.path().join("model").to_str().unwrap(),
            "-q",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &tsv).unwrap();
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(parts_are_whole(&dir.path().join("o3")), 8);
}

#[test]
fn a_killed_run_leaves_no_partial_output_and_a_rerun_completes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("train.tsv");
    generate(&input, 150_000);
    let run = |out: &Path, model: &Path| {
        let mut c = bin();
        c.args([
            "-i",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-m",
            "train",
            "-x",
            model.to_str().unwrap(),
        ]);
        c.args(["--overwrite", "-q", "--threads", "2"]);
        c
    };
    // The reference: an uninterrupted run, timed.
    let t = Instant::now();
    let o = run(&dir.path().join("ref"), &dir.path().join("ref-model")).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let full = t.elapsed();
    let reference = visible(&dir.path().join("ref"));
    for (k, frac) in [0.05, 0.2, 0.4, 0.6, 0.8, 0.95].into_iter().enumerate() {
        let out = dir.path().join(format!("out{k}"));
        let model = dir.path().join(format!("model{k}"));
        let mut child = run(&out, &model).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(full.mul_f64(frac));
        // SIGKILL: no chance to clean up.
        let _ = child.kill();
        let status = child.wait().unwrap();
        if !out.join("_SUCCESS").exists() {
            // Whatever parts exist are whole; no _SUCCESS claims completeness.
            parts_are_whole(&out);
        } else {
            assert!(status.success(), "a _SUCCESS marker only after a complete run");
        }
        // The artifacts are complete or absent: the manifest is written last.
        if model.join("manifest.json").exists() {
            sparky_criteo_artifacts_load(&model);
        }
        // A rerun replaces everything and equals the reference.
        let o = run(&out, &model).output().unwrap();
        assert!(o.status.success(), "rerun after a kill at {frac}: {}", stderr(&o));
        let again: Vec<_> = visible(&out).into_iter().filter(|(n, _)| n != "_prepare.json").collect();
        let want: Vec<_> = reference.iter().filter(|(n, _)| n != "_prepare.json").cloned().collect();
        assert_eq!(again, want, "kill at {frac} of the run");
    }
}

/// Loads artifacts through the library (the binary's dependency).
fn sparky_criteo_artifacts_load(dir: &Path) {
    // The test crate sees only the binary; check the files' structure by
    // running evaluate mode on an empty input instead.
    let empty = dir.join("..").join(format!("empty-{}.tsv", std::process::id()));
    std::fs::write(&empty, "").unwrap();
    let out = dir.join("..").join(format!("probe-{}", dir.file_name().unwrap().to_string_lossy()));
    let o = bin()
        .args([
            "-i",
            empty.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-m",
            "evaluate",
            "-x",
            dir.to_str().unwrap(),
            "-q",
            "--overwrite",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "artifacts present after a kill must load: {}", stderr(&o));
}

#[cfg(unix)]
#[test]
fn a_full_disk_fails_clearly_and_leaves_nothing_half_written() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("train.tsv");
    generate(&input, 20_000);
    let out = dir.path().join("out");
    let mut c = bin();
    c.args(["-i", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "-m", "train", "-x"]);
    c.arg(dir.path().join("model"));
    // Files may not grow beyond 2 MiB: writes fail as on a full disk (EFBIG).
    // SAFETY: setrlimit and signal are async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 2 << 20, rlim_max: 2 << 20 };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let msg = stderr(&o);
    assert!(msg.to_lowercase().contains("too large"), "{msg}");
    assert!(msg.contains("part-r-") || msg.contains("categorical-value-counts.csv"), "names the file: {msg}");
    assert!(!msg.contains(".tmp:"), "names the file, not its temporary name: {msg}");
    assert!(!out.join("_SUCCESS").exists());
    assert!(!dir.path().join("model/manifest.json").exists() || msg.contains("part-r-"));
    let left: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(left.iter().all(|n| !n.starts_with("part-") && !n.ends_with(".tmp")), "{left:?}");
}

#[test]
fn an_output_that_cannot_be_created_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("train.tsv");
    generate(&input, 50);
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let out: PathBuf = blocker.join("out");
    let o = bin()
        .args(["-i", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "-m", "evaluate", "-x", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nowhere"), "artifacts are checked first: {}", stderr(&o));
    let o = bin()
        .args(["-i", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "-m", "train", "-x"])
        .arg(dir.path().join("m"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("file/out"), "{}", stderr(&o));
    let _ = Duration::ZERO;
}

#[test]
fn memory_limit_is_printed_parsed_and_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    generate(&dir.path().join("train.tsv"), 3000);
    let d = dir.path().to_str().unwrap();
    let o = bin()
        .args(["-b", d, "-i", "train.tsv", "-o", "o", "-m", "train", "-x", "m", "--memory-limit", "lots"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("512M"), "the error shows the form: {}", stderr(&o));
    // Too small: exit 1 at once, nothing created.
    let o = bin()
        .args(["-b", d, "-i", "train.tsv", "-o", "o", "-m", "train", "-x", "m", "--memory-limit", "64K"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--memory-limit 65536 bytes is too small"), "{}", stderr(&o));
    assert!(!dir.path().join("o").exists() && !dir.path().join("m").exists());
    // The default is printed; a small limit spills and says so.
    let o = bin().args(["-b", d, "-i", "train.tsv", "-o", "o", "-m", "train", "-x", "m", "-q"]).output().unwrap();
    assert!(o.status.success() && stderr(&o).contains("half of this machine's memory"), "{}", stderr(&o));
    let o = bin()
        .args([
            "-b",
            d,
            "-i",
            "train.tsv",
            "-o",
            "o2",
            "-m",
            "train",
            "-x",
            "m2",
            "-q",
            "--threads",
            "1",
            "--memory-limit",
            "620K",
        ])
        .output()
        .unwrap();
    assert!(o.status.success() && stderr(&o).contains("memory limit 620.0 KiB"), "{}", stderr(&o));
    assert!(stderr(&o).contains("spilled to disk"), "{}", stderr(&o));
    let parts = |d: &str| -> Vec<_> {
        visible(&dir.path().join(d)).into_iter().filter(|(n, _)| n.starts_with("part-")).collect()
    };
    assert!(parts("o").len() == 8 && parts("o") == parts("o2"), "the parts of a spilling run are the in-memory run's");
    assert!(visible(&dir.path().join("m")) == visible(&dir.path().join("m2")), "so are the artifacts");
}

#[test]
fn a_killed_spilling_run_leaves_nothing_complete_looking_and_a_rerun_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("train.tsv");
    generate(&input, 60_000);
    let run = |out: &Path, model: &Path, limit: &str| {
        let mut c = bin();
        c.args(["-i", input.to_str().unwrap(), "-o", out.to_str().unwrap(), "-m", "train"]);
        c.args(["-x", model.to_str().unwrap(), "--overwrite", "-q", "--threads", "2", "--memory-limit", limit]);
        c
    };
    let o = run(&dir.path().join("ref"), &dir.path().join("ref-model"), "1G").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let parts = |d: &Path| -> Vec<_> { visible(d).into_iter().filter(|(n, _)| n.starts_with("part-")).collect() };
    let reference = parts(&dir.path().join("ref"));
    let t = Instant::now();
    let (out, model) = (dir.path().join("out"), dir.path().join("model"));
    let o = run(&out, &model, "1M").output().unwrap();
    assert!(o.status.success() && stderr(&o).contains("spilled to disk"), "{}", stderr(&o));
    let full = t.elapsed();
    for frac in [0.3, 0.7] {
        let mut child = run(&out, &model, "1M").stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(full.mul_f64(frac));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if !status.success() {
            assert!(!out.join("_SUCCESS").exists(), "a killed run leaves no _SUCCESS");
            assert!(!model.join("manifest.json").exists() || model.join("categorical-value-counts.csv").exists());
        }
        let o = run(&out, &model, "1M").output().unwrap();
        assert!(o.status.success(), "rerun after a kill at {frac}: {}", stderr(&o));
        let left: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.') && n != ".lock")
            .collect();
        assert!(left.iter().all(|n| !n.contains("spill")), "spill files left: {left:?}");
        assert!(parts(&out) == reference, "kill at {frac}: the rerun's parts differ from the in-memory run's");
    }
}
