//! criteo-predict against damaged, foreign and hostile inputs, signals, a
//! full disk and a concurrent run: each case of the reliability issue that
//! concerns prediction, named `case_NN_...` after its number there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sparky_criteo::input::Source;
use sparky_criteo::prepare::{self, PrepareConfig, Progress};
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_prepared::schema::Mode;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_criteo-predict"))
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

    /// criteo-predict --model job --input INPUT --output OUT EXTRA...
    fn predict(&self, input: &str, out: &str, extra: &[&str]) -> Output {
        let mut c = bin();
        c.arg("--model").arg(self.p("job")).arg("--input").arg(self.p(input)).arg("--output").arg(self.p(out));
        c.args(extra).arg("-q");
        c.output().unwrap()
    }

    /// Asserts a failed run left nothing in its output folder.
    fn assert_nothing_left(&self, out: &str) {
        let left: Vec<String> = std::fs::read_dir(self.p(out))
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(left.is_empty(), "{out}: {left:?}");
    }
}

fn tsv(path: &Path, first: u64, rows: u64, labelled: bool) {
    let g = Generator::new(GeneratorConfig { seed: 23, labelled });
    let mut out = Vec::new();
    sparky_datagen::generate(&g, first, rows, 2, &mut out).unwrap();
    std::fs::write(path, out).unwrap();
}

fn prep(f: &Fx, name: &str, mode: Mode, model: &str, parts: usize) {
    let mut c = PrepareConfig::new(vec![Source::File(f.p(&format!("{name}.tsv")))], f.p(name), mode, f.p(model));
    c.num_partitions = parts;
    c.sync = false;
    prepare::run(&c, &Progress::default()).unwrap();
}

/// A trained job, and prepared evaluation and test folders.
fn fixture() -> Fx {
    let f = Fx { dir: tempfile::tempdir().unwrap() };
    tsv(&f.p("train.tsv"), 0, 4000, true);
    tsv(&f.p("eval.tsv"), 4000, 1000, true);
    tsv(&f.p("test.tsv"), 5000, 3000, false);
    prep(&f, "train", Mode::Train, "model", 2);
    prep(&f, "eval", Mode::Evaluate, "model", 2);
    prep(&f, "test", Mode::Predict, "model", 3);
    let mut c = sparky_trainer::TrainConfig::new(f.p("job"), f.p("train"), f.p("eval"));
    c.epochs = Some(1);
    c.threads = 1;
    sparky_trainer::run(&c, &Progress::default(), &|_| {}).unwrap();
    f
}

/// Copies a folder's files.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// The byte offsets of the records of an uncompressed TFRecord file.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        v.push(p);
        p += 16 + u64::from_le_bytes(bytes[p..p + 8].try_into().unwrap()) as usize;
    }
    v
}

#[test]
fn case_01_altered_prepared_folders_are_refused() {
    let f = fixture();
    let part = |d: &str, n: usize| f.p(&format!("{d}/part-r-{n:05}.tfrecord"));
    // Deleted, truncated at a record boundary, emptied, a foreign part added.
    for (name, damage) in [("deleted", 0), ("truncated", 1), ("emptied", 2), ("foreign", 3)] {
        copy_dir(&f.p("test"), &f.p(name));
        let p = part(name, 1);
        match damage {
            0 => std::fs::remove_file(&p).unwrap(),
            1 => {
                let bytes = std::fs::read(&p).unwrap();
                let cut = record_offsets(&bytes)[10];
                std::fs::write(&p, &bytes[..cut]).unwrap();
            }
            2 => std::fs::write(&p, b"").unwrap(),
            _ => {
                std::fs::copy(&p, part(name, 7)).unwrap();
            }
        }
        let o = f.predict(name, &format!("out-{name}"), &[]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains("part-r-0000"), "{name}: {}", stderr(&o));
        f.assert_nothing_left(&format!("out-{name}"));
        // --allow-incomplete scores what is there.
        let o = f.predict(name, &format!("out-{name}"), &["--allow-incomplete"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
    // A killed prepare's folder: no _SUCCESS.
    copy_dir(&f.p("test"), &f.p("killed"));
    std::fs::remove_file(f.p("killed/_SUCCESS")).unwrap();
    let o = f.predict("killed", "out-killed", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("did not finish"), "{}", stderr(&o));
}

#[test]
fn case_02_parts_prepared_with_other_artifacts_are_refused() {
    let f = fixture();
    // The evaluation rows prepared with another vocabulary (another -x).
    tsv(&f.p("other.tsv"), 9000, 800, true);
    prep(&f, "other", Mode::Train, "model2", 1);
    let mut c = PrepareConfig::new(vec![Source::File(f.p("eval.tsv"))], f.p("eval2"), Mode::Evaluate, f.p("model2"));
    c.sync = false;
    prepare::run(&c, &Progress::default()).unwrap();
    let o = f.predict("eval2", "out", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("prepared with other artifacts"), "{}", stderr(&o));
    f.assert_nothing_left("out");
}

#[test]
fn case_03_damaged_framing_fails_the_run_instead_of_dropping_rows() {
    let f = fixture();
    // A bad length header in the middle of a part.
    copy_dir(&f.p("test"), &f.p("bad"));
    let p = f.p("bad/part-r-00000.tfrecord");
    let mut bytes = std::fs::read(&p).unwrap();
    let at = record_offsets(&bytes)[300];
    bytes[at + 1] ^= 0x10;
    std::fs::write(&p, &bytes).unwrap();
    let o = f.predict("bad", "out", &["--allow-incomplete"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("at byte {at}")), "{}", stderr(&o));
    f.assert_nothing_left("out");

    // A truncated gzip member.
    let mut c = PrepareConfig::new(vec![Source::File(f.p("test.tsv"))], f.p("gz"), Mode::Predict, f.p("model"));
    c.compression = prepare::PartCompression::Gzip;
    c.num_partitions = 2;
    c.sync = false;
    prepare::run(&c, &Progress::default()).unwrap();
    let gz = f.p("gz/part-r-00001.tfrecord.gz");
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let o = f.predict("gz", "out-gz", &["--allow-incomplete"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("part-r-00001.tfrecord.gz"), "{}", stderr(&o));
    f.assert_nothing_left("out-gz");
}

#[test]
fn case_04_a_tsv_file_is_recognised_or_refused_with_what_to_pass() {
    let f = fixture();
    // Without --input-format: detected as text and scored as raw lines.
    let o = f.predict("test.tsv", "out", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = std::fs::read_to_string(f.p("out/prediction.results-00000-of-00001")).unwrap().lines().count();
    assert_eq!(lines, 3000);
    // Declared as TFRecords: refused, saying what to pass.
    let o = f.predict("test.tsv", "out2", &["--input-format", "tfrecord"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--input-format tsv"), "{}", stderr(&o));
    f.assert_nothing_left("out2");
}

#[test]
fn case_05_a_short_first_line_does_not_shift_the_rest() {
    let f = fixture();
    let text = std::fs::read_to_string(f.p("test.tsv")).unwrap();
    let short: String = "1\t2\t3\n".to_string() + &text;
    std::fs::write(f.p("short.tsv"), short).unwrap();
    let o = f.predict("short.tsv", "out-short", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = f.predict("test.tsv", "out-plain", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let scores = |out: &str| -> Vec<String> {
        std::fs::read_to_string(f.p(&format!("{out}/prediction.results-00000-of-00001")))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["scores"].to_string()
            })
            .collect()
    };
    assert_eq!(scores("out-short"), scores("out-plain"), "every other line scored as without the short one");
    let errors = std::fs::read_to_string(f.p("out-short/prediction.errors_stats-00000-of-00001")).unwrap();
    assert!(errors.contains("line 1") && errors.contains("3 tab-separated fields"), "{errors}");
}

#[test]
fn case_06_no_row_scored_is_a_failure() {
    let f = fixture();
    std::fs::write(f.p("garbage.tsv"), "this is not criteo\nnor this\n").unwrap();
    let header: String = (0..39).map(|i| format!("c{i}")).collect::<Vec<_>>().join("\t") + "\n";
    std::fs::write(f.p("header.tsv"), header).unwrap();
    let text = std::fs::read_to_string(f.p("test.tsv")).unwrap();
    let head: String = text.lines().take(5).collect::<Vec<_>>().join("\r");
    std::fs::write(f.p("cr.tsv"), head).unwrap();
    for name in ["garbage.tsv", "header.tsv", "cr.tsv"] {
        let o = f.predict(name, "out", &[]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        assert!(stderr(&o).contains("no row could be scored"), "{name}: {}", stderr(&o));
        f.assert_nothing_left("out");
    }
}

#[test]
fn case_07_a_part_that_is_a_folder_is_refused_and_parts_keep_their_numbers() {
    let f = fixture();
    copy_dir(&f.p("test"), &f.p("withdir"));
    std::fs::create_dir(f.p("withdir/part-r-00009.tfrecord")).unwrap();
    for extra in [&[][..], &["--strict"][..], &["--allow-incomplete"][..]] {
        let o = f.predict("withdir", "out", extra);
        assert_eq!(o.status.code(), Some(1), "{extra:?}");
        assert!(stderr(&o).contains("part-r-00009.tfrecord") && stderr(&o).contains("not a file"), "{}", stderr(&o));
    }
    // One output part per input part, numbered as the inputs.
    let o = f.predict("test", "out", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    for i in 0..3 {
        assert!(f.p(&format!("out/prediction.results-{i:05}-of-00003")).is_file());
    }
}

#[test]
fn case_10_failed_runs_leave_no_complete_looking_part() {
    let f = fixture();
    // --strict on a part with a damaged payload.
    copy_dir(&f.p("test"), &f.p("bad"));
    let p = f.p("bad/part-r-00002.tfrecord");
    let mut bytes = std::fs::read(&p).unwrap();
    let at = record_offsets(&bytes)[100];
    bytes[at + 20] ^= 1;
    std::fs::write(&p, &bytes).unwrap();
    let o = f.predict("bad", "out", &["--strict"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&format!("at byte {at}")), "{}", stderr(&o));
    f.assert_nothing_left("out");
    // A full disk: writes fail with EFBIG past 64 KiB.
    let mut c = bin();
    c.arg("--model").arg(f.p("job")).arg("--input").arg(f.p("test")).arg("--output").arg(f.p("full"));
    limit_file_size(&mut c, 64 << 10);
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("prediction.results-"), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("/.prediction."),
        "the message names the output, not its temporary name: {}",
        stderr(&o)
    );
    f.assert_nothing_left("full");
}

/// Makes the child's writes beyond `bytes` fail (EFBIG), as on a full disk.
fn limit_file_size(c: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
}

#[test]
fn case_12_sigterm_stops_cleanly_and_a_rerun_needs_no_cleanup() {
    let f = fixture();
    // Enough input to be stopped mid-run: the test rows many times over, as raw lines.
    let text = std::fs::read(f.p("test.tsv")).unwrap();
    let mut big = Vec::with_capacity(text.len() * 150);
    for _ in 0..150 {
        big.extend_from_slice(&text);
    }
    std::fs::write(f.p("big.tsv"), &big).unwrap();
    let mut stopped = false;
    for wait_ms in [150u64, 60, 300] {
        let mut child = bin()
            .arg("--model")
            .arg(f.p("job"))
            .arg("--input")
            .arg(f.p("big.tsv"))
            .arg("--output")
            .arg(f.p("out"))
            .args(["-q", "--threads", "1", "--overwrite"])
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        if status.code() == Some(130) {
            f.assert_nothing_left("out");
            stopped = true;
            break;
        }
        assert!(status.success(), "{status:?}");
    }
    assert!(stopped, "never caught the run in the middle");
    let o = f.predict("big.tsv", "out", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn case_17_18_hostile_flags_are_usage_errors() {
    let f = fixture();
    for extra in [&["--threads", "100000"][..], &["--threads", "0"][..]] {
        let o = f.predict("test", "out", extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("--threads"), "{}", stderr(&o));
    }
    let o = bin()
        .arg("--model")
        .arg(f.p("job"))
        .args(["--input", "-", "--output", "-", "--format", "parquet"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o =
        bin().arg("--model").arg(f.p("job")).args(["--input", "-"]).arg("--output").arg(f.p("dir")).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn case_20_out_of_range_values_in_records_are_not_scored() {
    let f = fixture();
    // A hand-made part: id -1 and an id past the vocabulary, and a label 2.
    let enc = sparky_tfrecord::example::Int64ExampleEncoder::new(&Mode::Train.feature_names());
    let mut w = sparky_tfrecord::RecordWriter::new(Vec::new());
    let mut buf = Vec::new();
    for (label, id) in [(0, 1), (1, -1), (0, 1 << 40), (2, 1)] {
        let mut v = vec![label];
        v.extend([3i64; 13]);
        v.extend([id; 26]);
        buf.clear();
        enc.encode(&v, &mut buf);
        w.write_record(&buf).unwrap();
    }
    std::fs::create_dir(f.p("hand")).unwrap();
    std::fs::write(f.p("hand/part-r-00000.tfrecord"), w.into_inner().unwrap()).unwrap();
    let o = f.predict("hand", "out", &["--allow-incomplete"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let errors = std::fs::read_to_string(f.p("out/prediction.errors_stats-00000-of-00001")).unwrap();
    assert_eq!(errors.lines().count(), 3, "{errors}");
    assert!(errors.contains("is -1, outside the vocabulary") && errors.contains("label"), "{errors}");
    assert_eq!(std::fs::read_to_string(f.p("out/prediction.results-00000-of-00001")).unwrap().lines().count(), 1);
}

#[test]
fn case_22_streaming_strict_does_not_point_to_a_file_it_does_not_write() {
    use std::io::Write;
    let f = fixture();
    let mut child = bin()
        .arg("--model")
        .arg(f.p("job"))
        .args(["--input", "-", "--output", "-", "--strict"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"oops\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("line 1") && !stderr(&o).contains("errors_stats"), "{}", stderr(&o));
}

#[test]
fn concurrent_runs_on_one_output_fail_clearly() {
    let f = fixture();
    let text = std::fs::read(f.p("test.tsv")).unwrap();
    std::fs::write(f.p("big.tsv"), text.repeat(100)).unwrap();
    let mut first = bin()
        .arg("--model")
        .arg(f.p("job"))
        .arg("--input")
        .arg(f.p("big.tsv"))
        .arg("--output")
        .arg(f.p("out"))
        .args(["-q", "--threads", "1"])
        .spawn()
        .unwrap();
    // Wait for the first run to hold the folder.
    let t0 = std::time::Instant::now();
    while !f.p("out").exists() && t0.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let o = f.predict("big.tsv", "out", &["--overwrite"]);
    let done = first.wait().unwrap();
    assert!(done.success());
    if o.status.code() == Some(1) {
        assert!(stderr(&o).contains("in use by another sparky run"), "{}", stderr(&o));
    } else {
        // The first run had already finished: then the second ran after it.
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert!(f.p("out/_SUCCESS").is_file());
}
