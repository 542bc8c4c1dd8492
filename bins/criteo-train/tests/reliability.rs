//! criteo-train against altered, empty and out-of-range data, hostile flags,
//! interrupted exports and a concurrent run: each case of the reliability
//! issue that concerns training, named `case_NN_...` after its number there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sparky_criteo::input::Source;
use sparky_criteo::prepare::{self, PrepareConfig, Progress};
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_prepared::schema::Mode;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_criteo-train"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

struct Fx {
    dir: tempfile::TempDir,
}

impl Fx {
    fn p(&self, s: &str) -> PathBuf {
        self.dir.path().join(s)
    }

    /// criteo-train --job-dir JOB --train-dir TRAIN --eval-dir eval EXTRA...
    fn train(&self, job: &str, train: &str, extra: &[&str]) -> Output {
        let mut c = bin();
        c.arg("--job-dir").arg(self.p(job)).arg("--train-dir").arg(self.p(train)).arg("--eval-dir").arg(self.p("eval"));
        c.args(extra).arg("-q");
        c.output().unwrap()
    }
}

fn tsv(path: &Path, first: u64, rows: u64) {
    let g = Generator::new(GeneratorConfig { seed: 29, labelled: true });
    let mut out = Vec::new();
    sparky_datagen::generate(&g, first, rows, 2, &mut out).unwrap();
    std::fs::write(path, out).unwrap();
}

fn fixture() -> Fx {
    let f = Fx { dir: tempfile::tempdir().unwrap() };
    tsv(&f.p("train.tsv"), 0, 6000);
    tsv(&f.p("eval.tsv"), 6000, 1000);
    for (name, mode) in [("train", Mode::Train), ("eval", Mode::Evaluate)] {
        let mut c = PrepareConfig::new(vec![Source::File(f.p(&format!("{name}.tsv")))], f.p(name), mode, f.p("model"));
        c.num_partitions = 3;
        c.sync = false;
        prepare::run(&c, &Progress::default()).unwrap();
    }
    f
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn case_01_08_altered_or_incomplete_training_data_is_refused() {
    let f = fixture();
    copy_dir(&f.p("train"), &f.p("deleted"));
    std::fs::remove_file(f.p("deleted/part-r-00001.tfrecord")).unwrap();
    let o = f.train("job1", "deleted", &["--epochs", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("part-r-00001.tfrecord is listed") && stderr(&o).contains("missing"), "{}", stderr(&o));
    // Read anyway with --allow-incomplete.
    let o = f.train("job1", "deleted", &["--epochs", "1", "--allow-incomplete", "--artifact-dir"]);
    assert_eq!(o.status.code(), Some(2), "--artifact-dir needs a value");
    let model = f.p("model");
    let o =
        f.train("job1", "deleted", &["--epochs", "1", "--allow-incomplete", "--artifact-dir", model.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A killed prepare's folder (no _SUCCESS), named by --artifact-dir or not.
    copy_dir(&f.p("train"), &f.p("killed"));
    std::fs::remove_file(f.p("killed/_SUCCESS")).unwrap();
    let o = f.train("job2", "killed", &["--epochs", "1", "--artifact-dir", model.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("did not finish"), "{}", stderr(&o));

    // A part that is a folder (case 8): named, not "No such device".
    copy_dir(&f.p("train"), &f.p("withdir"));
    std::fs::create_dir(f.p("withdir/part-r-00005.tfrecord")).unwrap();
    let o = f.train("job3", "withdir", &["--epochs", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("part-r-00005.tfrecord") && stderr(&o).contains("not a file"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("No such device"), "{}", stderr(&o));
}

#[test]
fn case_16_18_hostile_flags_are_usage_errors_naming_the_range() {
    let f = fixture();
    for (flag, value) in [
        ("--batch-size", "18446744073709551615"),
        ("--batch-size", "4294967296"),
        ("--batch-size", "0"),
        ("--threads", "0"),
        ("--threads", "100000"),
        ("--learning-rate", "nan"),
        ("--learning-rate", "inf"),
        ("--learning-rate", "0"),
        ("--learning-rate", "-1"),
        ("--l2", "nan"),
        ("--l1", "-1"),
        ("--epochs", "0"),
        ("--train-steps", "0"),
    ] {
        let o = f.train("job", "train", &[&format!("{flag}={value}")]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag), "{flag} {value}: {}", stderr(&o));
        assert!(!f.p("job").exists(), "nothing started");
    }
}

#[test]
fn case_19_empty_data_is_refused() {
    let f = fixture();
    std::fs::write(f.p("empty.tsv"), b"").unwrap();
    let mut c = PrepareConfig::new(vec![Source::File(f.p("empty.tsv"))], f.p("empty"), Mode::Evaluate, f.p("model"));
    c.sync = false;
    prepare::run(&c, &Progress::default()).unwrap();
    let o = f.train("job", "empty", &["--epochs", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no rows to train on"), "{}", stderr(&o));
    assert!(!f.p("job/metrics.json").exists());
}

#[test]
fn case_20_out_of_range_labels_and_ids_are_errors_naming_the_record() {
    let f = fixture();
    let enc = sparky_tfrecord::example::Int64ExampleEncoder::new(&Mode::Train.feature_names());
    for (name, label, id) in [("label2", 2i64, 1i64), ("id-1", 0, -1), ("idbig", 1, 1 << 40)] {
        let mut w = sparky_tfrecord::RecordWriter::new(Vec::new());
        let mut buf = Vec::new();
        for k in 0..5 {
            let mut v = vec![if k == 3 { label } else { 0 }];
            v.extend([3i64; 13]);
            v.extend([if k == 3 { id } else { 1 }; 26]);
            buf.clear();
            enc.encode(&v, &mut buf);
            w.write_record(&buf).unwrap();
        }
        std::fs::create_dir(f.p(name)).unwrap();
        std::fs::write(f.p(&format!("{name}/part-r-00000.tfrecord")), w.into_inner().unwrap()).unwrap();
        let model = f.p("model");
        let o = f.train(
            &format!("job-{name}"),
            name,
            &["--epochs", "1", "--allow-incomplete", "--artifact-dir", model.to_str().unwrap()],
        );
        assert_eq!(o.status.code(), Some(1), "{name}");
        let err = stderr(&o);
        assert!(err.contains("part-r-00000.tfrecord: record at byte"), "{name}: {err}");
        assert!(
            err.contains(if name == "label2" { "expected 0 or 1" } else { "outside the vocabulary" }),
            "{name}: {err}"
        );
    }
}

#[test]
fn case_21_step_limits_are_exact_and_divergence_is_an_error() {
    let f = fixture();
    let o = f.train("job", "train", &["--train-steps", "10", "--threads", "2", "--batch-size", "16"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(f.p("job/metrics.json")).unwrap()).unwrap();
    assert_eq!(m["global_step"], 10);
    let o = f.train("job2", "train", &["--learning-rate", "1e300", "--epochs", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("diverged"), "{}", stderr(&o));
    assert!(!f.p("job2/export").exists() && !f.p("job2/metrics.json").exists(), "no export of a diverged model");
}

#[test]
fn case_13_14_interrupted_exports_are_cleaned_by_the_next_run() {
    let f = fixture();
    // What a second Ctrl-C during an export leaves: a hidden export folder.
    std::fs::create_dir_all(f.p("job/export/Servo/.1700000000.4242.tmp/artifacts")).unwrap();
    std::fs::write(f.p("job/export/Servo/.1700000000.4242.tmp/model.pb"), b"half").unwrap();
    std::fs::create_dir_all(f.p("job/checkpoints")).unwrap();
    std::fs::write(f.p("job/checkpoints/.ckpt-9.pb.4242-0.tmp"), b"half").unwrap();
    let o = f.train("job", "train", &["--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let hidden = |d: &str| {
        std::fs::read_dir(f.p(d))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
            .count()
    };
    assert_eq!(hidden("job/export/Servo"), 0);
    assert_eq!(hidden("job/checkpoints"), 0);
    // An export that cannot be written (its folder is a file): the error
    // names the export's path, and no metrics.json claims the run finished.
    std::fs::remove_dir_all(f.p("job3")).ok();
    std::fs::create_dir_all(f.p("job3/export")).unwrap();
    std::fs::write(f.p("job3/export/Servo"), b"not a folder").unwrap();
    let o = f.train("job3", "train", &["--epochs", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("export/Servo: exists and is not a folder"), "{}", stderr(&o));
    assert!(!f.p("job3/metrics.json").exists());
}

#[test]
fn concurrent_runs_on_one_job_fail_clearly() {
    let f = fixture();
    let first = bin()
        .arg("--job-dir")
        .arg(f.p("job"))
        .arg("--train-dir")
        .arg(f.p("train"))
        .arg("--eval-dir")
        .arg(f.p("eval"))
        .args(["--epochs", "200", "-q"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while !f.p("job/checkpoints").exists() && t0.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let o = f.train("job", "train", &["--epochs", "1"]);
    // SAFETY: signalling our own child: it finishes cleanly.
    unsafe { libc::kill(first.id() as i32, libc::SIGINT) };
    let done = first.wait_with_output().unwrap();
    assert!(done.status.success(), "{:?}: {}", done.status, stderr(&done));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("in use by another sparky run"), "{}", stderr(&o));
}

#[test]
fn a_full_disk_fails_cleanly_naming_the_file() {
    use std::os::unix::process::CommandExt;
    let f = fixture();
    let mut c = bin();
    c.arg("--job-dir").arg(f.p("job")).arg("--train-dir").arg(f.p("train")).arg("--eval-dir").arg(f.p("eval"));
    c.args(["--epochs", "1", "-q"]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit { rlim_cur: 64 << 10, rlim_max: 64 << 10 };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("File too large"), "{}", stderr(&o));
    assert!(stderr(&o).contains("ckpt-") || stderr(&o).contains("export"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("/.ckpt-"), "names the file, not its temporary name: {}", stderr(&o));
    let hidden = std::fs::read_dir(f.p("job/checkpoints"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(hidden, 0);
    assert!(!f.p("job/metrics.json").exists() && !f.p("job/export").exists());
    // With room again, a rerun completes.
    let o = f.train("job", "train", &["--epochs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
}
