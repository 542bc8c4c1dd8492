//! The prepare job end to end, on generated data: determinism across thread
//! counts, the Example schema and ranks, the three modes, bad lines,
//! refusals, compressed and Parquet outputs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sparky_criteo::artifacts;
use sparky_criteo::input::Source;
use sparky_criteo::parse::{Cat, parse_line};
use sparky_criteo::prepare::{self, BadLines, PartCompression, PartFormat, PrepareConfig, PrepareError, Progress};
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_prepared::schema::{MISSING_INT, Mode, OOV_ID};
use sparky_tfrecord::example::Int64SchemaDecoder;
use sparky_tfrecord::{Compression, RecordReader};

fn generate(path: &Path, first: u64, rows: u64, labelled: bool) {
    let g = Generator::new(GeneratorConfig { seed: 3, labelled });
    let mut out = Vec::new();
    sparky_datagen::generate(&g, first, rows, 2, &mut out).unwrap();
    std::fs::write(path, out).unwrap();
}

fn config(input: &Path, out: PathBuf, mode: Mode, model: PathBuf) -> PrepareConfig {
    let mut c = PrepareConfig::new(vec![Source::File(input.to_path_buf())], out, mode, model);
    c.num_partitions = 4;
    c.chunk_bytes = 64 << 10; // many chunks, so parts straddle them
    c.sync = false;
    c
}

fn run(c: &PrepareConfig) -> Result<prepare::PrepareSummary, PrepareError> {
    prepare::run(c, &Progress::default())
}

/// All Examples of a prepared folder, in part order.
fn read_rows(dir: &Path, mode: Mode) -> Vec<[i64; 40]> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("part-"))
        .collect();
    files.sort();
    let mut dec = Int64SchemaDecoder::new(&mode.feature_names());
    let mut out = Vec::new();
    for f in files {
        let mut r = RecordReader::open_with(&f, Compression::from_path(&f)).unwrap();
        let mut buf = Vec::new();
        while r.read_record(&mut buf).unwrap() {
            let mut row = [0i64; 40];
            dec.decode(&buf, &mut row).unwrap();
            out.push(row);
        }
    }
    out
}

/// (file name, contents) of a folder's files.
type Files = Vec<(String, Vec<u8>)>;

fn file_bytes(dir: &Path) -> Files {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn outputs_are_identical_whatever_the_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("train.tsv");
    generate(&input, 0, 6000, true);
    let mut reference: Option<(Files, Files)> = None;
    for threads in [1, 2, 3] {
        for compression in [PartCompression::None, PartCompression::Gzip] {
            let out = dir.path().join(format!("out-{threads}-{compression:?}"));
            let model = dir.path().join(format!("model-{threads}-{compression:?}"));
            let mut c = config(&input, out.clone(), Mode::Train, model.clone());
            c.threads = threads;
            c.compression = compression;
            run(&c).unwrap();
            let parts: Vec<_> = file_bytes(&out).into_iter().filter(|(n, _)| n.starts_with("part-")).collect();
            assert_eq!(parts.len(), 4);
            if compression == PartCompression::None {
                let arts = file_bytes(&model);
                match &reference {
                    None => reference = Some((parts, arts)),
                    Some((p, a)) => {
                        assert_eq!(&parts, p, "parts differ with {threads} threads");
                        assert_eq!(&arts, a, "artifacts differ with {threads} threads");
                    }
                }
            }
        }
    }
}

#[test]
fn examples_hold_the_schema_and_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("train.tsv");
    generate(&input, 0, 3000, true);
    let out = dir.path().join("out");
    let model = dir.path().join("model");
    let s = run(&config(&input, out.clone(), Mode::Train, model.clone())).unwrap();
    assert_eq!((s.lines, s.rows), (3000, 3000));
    assert!(out.join("_SUCCESS").is_file() && out.join(prepare::PREPARED_FILE).is_file());
    let rows = read_rows(&out, Mode::Train);
    assert_eq!(rows.len(), 3000);
    // Recount the values and check the rank rule on C1: by count, ties by text.
    let text = std::fs::read(&input).unwrap();
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let mut c1: HashMap<Vec<u8>, u64> = HashMap::new();
    for l in &lines {
        let r = parse_line(l, Mode::Train).unwrap();
        let mut t = Vec::new();
        r.cats[0].write_text(&mut t);
        *c1.entry(t).or_default() += 1;
    }
    let mut ranked: Vec<(Vec<u8>, u64)> = c1.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (i, (line, row)) in lines.iter().zip(&rows).enumerate() {
        let r = parse_line(line, Mode::Train).unwrap();
        assert_eq!(row[0], i64::from(r.label.unwrap()), "row {i} label");
        assert_eq!(&row[1..14], &r.ints, "row {i} integers (missing = {MISSING_INT})");
        let mut t = Vec::new();
        r.cats[0].write_text(&mut t);
        let rank = ranked.iter().position(|(v, _)| *v == t).unwrap() as i64 + 1;
        assert_eq!(row[14], rank, "row {i}: C1 {:?}", String::from_utf8_lossy(&t));
    }
    // The artifacts agree with what was written.
    let a = artifacts::load(&model).unwrap();
    assert_eq!(a.manifest.rows_read, 3000);
    assert_eq!(a.vocabulary.columns[0].len(), ranked.len());
}

#[test]
fn evaluate_and_predict_use_the_training_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let (train, eval, test) = (dir.path().join("train.tsv"), dir.path().join("eval.tsv"), dir.path().join("test.tsv"));
    generate(&train, 0, 2000, true);
    generate(&eval, 2000, 500, true);
    generate(&test, 2500, 500, false);
    let model = dir.path().join("model");
    run(&config(&train, dir.path().join("p-train"), Mode::Train, model.clone())).unwrap();
    run(&config(&eval, dir.path().join("p-eval"), Mode::Evaluate, model.clone())).unwrap();
    let mut c = config(&test, dir.path().join("p-test"), Mode::Predict, model.clone());
    c.first_line = 0;
    run(&c).unwrap();
    let vocab = artifacts::load(&model).unwrap().vocabulary;
    let text = std::fs::read(&test).unwrap();
    let rows = read_rows(&dir.path().join("p-test"), Mode::Predict);
    let mut unseen = 0;
    for (i, (line, row)) in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).zip(&rows).enumerate() {
        assert_eq!(row[0], i as i64, "predict mode id is the line number");
        let r = parse_line(line, Mode::Predict).unwrap();
        for c in 0..26 {
            let want = vocab.columns[c].id(r.cats[c]);
            assert_eq!(row[14 + c], want);
            if want == OOV_ID && r.cats[c] != Cat::Missing {
                unseen += 1;
            }
        }
    }
    assert!(unseen > 0, "some test values were never seen in training: they map to id 0");
    assert_eq!(read_rows(&dir.path().join("p-eval"), Mode::Evaluate).len(), 500);
    // Artifacts that are missing are refused.
    let e = run(&config(&test, dir.path().join("p-x"), Mode::Predict, dir.path().join("nope"))).unwrap_err();
    assert!(e.to_string().contains("--mode train"), "{e}");
}

#[test]
fn bad_lines_stop_with_position_or_are_skipped_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("train.tsv");
    generate(&input, 0, 1000, true);
    let mut text = std::fs::read(&input).unwrap();
    // Line 501: a non-integer in I3; line 1001 (the end, no newline): label 7.
    let pos = text.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(499).unwrap().0 + 1;
    let mut bad = b"0\t1\t2\tx3".to_vec();
    bad.extend(std::iter::repeat_n(b'\t', 36));
    bad.push(b'\n');
    text.splice(pos..pos, bad);
    text.extend_from_slice(b"7\t1");
    std::fs::write(&input, &text).unwrap();

    let out = dir.path().join("out");
    let e = run(&config(&input, out.clone(), Mode::Train, dir.path().join("m1"))).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("train.tsv:501: column 4 (I3): not an integer"), "{msg}");
    assert!(!out.join("_SUCCESS").exists());
    assert!(!dir.path().join("m1").join(artifacts::MANIFEST_FILE).exists(), "no artifacts from a failed count");

    let mut c = config(&input, dir.path().join("out2"), Mode::Train, dir.path().join("m2"));
    c.bad_lines = BadLines::Skip;
    let s = run(&c).unwrap();
    assert_eq!((s.lines, s.rows, s.rejected_total()), (1002, 1000, 2));
    let rejects = std::fs::read_to_string(dir.path().join("out2").join(prepare::REJECTS_FILE)).unwrap();
    assert!(rejects.contains("\t501\tcolumn 4 (I3): not an integer"), "{rejects}");
    assert!(rejects.contains("\t1002\tcolumn 1 (label): label must be 0 or 1"), "{rejects}");
    assert_eq!(artifacts::load(&dir.path().join("m2")).unwrap().manifest.rows_rejected, 2);

    // Evaluate mode fails on the bad line during the transform: no parts stay behind.
    let out3 = dir.path().join("out3");
    let e = run(&config(&input, out3.clone(), Mode::Evaluate, dir.path().join("m2"))).unwrap_err();
    assert!(matches!(e, PrepareError::BadLine { line: 501, .. }), "{e}");
    assert!(std::fs::read_dir(&out3).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with("part-")));
}

#[test]
fn existing_outputs_are_refused_without_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("train.tsv");
    generate(&input, 0, 200, true);
    let out = dir.path().join("out");
    let model = dir.path().join("model");
    let mut c = config(&input, out.clone(), Mode::Train, model.clone());
    run(&c).unwrap();
    let e = run(&c).unwrap_err();
    assert!(e.to_string().contains("--overwrite"), "{e}");
    std::fs::remove_dir_all(&model).unwrap();
    let e = run(&c).unwrap_err();
    assert!(matches!(e, PrepareError::OutputExists(_)), "{e}");
    // With --overwrite, fewer parts replace more: stale parts are removed.
    c.overwrite = true;
    c.num_partitions = 2;
    run(&c).unwrap();
    let parts = file_bytes(&out).into_iter().filter(|(n, _)| n.starts_with("part-")).count();
    assert_eq!(parts, 2);
}

#[test]
fn gzip_inputs_and_parquet_outputs() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("train.tsv");
    generate(&plain, 0, 700, true);
    let gz = dir.path().join("train.tsv.gz");
    let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
    enc.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    enc.finish().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    run(&config(&plain, a.clone(), Mode::Train, dir.path().join("ma"))).unwrap();
    run(&config(&gz, b.clone(), Mode::Train, dir.path().join("mb"))).unwrap();
    assert_eq!(read_rows(&a, Mode::Train), read_rows(&b, Mode::Train));
    assert!(std::fs::read_dir(&b).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(".spool")));

    let mut c = config(&plain, dir.path().join("pq"), Mode::Evaluate, dir.path().join("ma"));
    c.format = PartFormat::Parquet;
    run(&c).unwrap();
    let want = read_rows(&a, Mode::Train);
    let mut got: Vec<[i64; 40]> = Vec::new();
    for p in 0..4 {
        let f = std::fs::File::open(dir.path().join("pq").join(format!("part-r-{p:05}.parquet"))).unwrap();
        let reader = SerializedFileReader::new(f).unwrap();
        let schema = reader.metadata().file_metadata().schema_descr();
        assert_eq!(schema.num_columns(), 40);
        assert_eq!(schema.column(0).name(), "clicked");
        assert_eq!(schema.column(39).name(), "categorical-feature-26");
        for row in reader.get_row_iter(None).unwrap() {
            let row = row.unwrap();
            let mut v = [0i64; 40];
            for (i, (_, field)) in row.get_column_iter().enumerate() {
                let parquet::record::Field::Long(x) = field else { panic!("not an int64: {field:?}") };
                v[i] = *x;
            }
            got.push(v);
        }
    }
    assert_eq!(got, want);
}

#[test]
fn odd_inputs_give_clear_errors_or_counted_skips() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    let good = dir.path().join("good.tsv");
    generate(&good, 0, 50, true);
    run(&config(&good, dir.path().join("o-good"), Mode::Train, model.clone())).unwrap();
    let eval = |name: &str, bytes: &[u8], skip: bool| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let mut c = config(&p, dir.path().join(format!("o-{name}")), Mode::Evaluate, model.clone());
        if skip {
            c.bad_lines = BadLines::Skip;
        }
        run(&c)
    };
    // An empty file: no rows, still a complete (empty) output.
    let s = eval("empty.tsv", b"", false).unwrap();
    assert_eq!((s.lines, s.rows, s.parts.len()), (0, 0, 4));
    // CRLF line ends are accepted.
    let text = std::fs::read(&good).unwrap();
    let crlf: Vec<u8> = text.iter().flat_map(|&b| if b == b'\n' { vec![b'\r', b'\n'] } else { vec![b] }).collect();
    assert_eq!(eval("crlf.tsv", &crlf, false).unwrap().rows, 50);
    // A NUL byte in an integer field; a 1 MiB line; a huge integer; invalid UTF-8.
    let long = {
        let mut l = b"0\t1".to_vec();
        l.extend(std::iter::repeat_n(b'7', 1 << 20));
        l.push(b'\n');
        l
    };
    for (name, line, column) in [
        ("nul.tsv", b"0\t1\x002\n".to_vec(), "column 2 (I1): not an integer"),
        ("long.tsv", long, "column 2 (I1): integer out of the 64-bit range"),
        ("huge.tsv", b"1\t99999999999999999999999\n".to_vec(), "column 2 (I1): integer out of the 64-bit range"),
        ("utf8.tsv", [&b"1"[..], &[b'\t'; 14], b"\xff\xfe\n"].concat(), "column 15 (C1): value is not valid UTF-8"),
    ] {
        let mut bytes = line.clone();
        bytes.extend_from_slice(&text);
        let e = eval(name, &bytes, false).unwrap_err().to_string();
        assert!(e.contains(&format!("{name}:1: {column}")), "{e}");
        let s = eval(&format!("skip-{name}"), &bytes, true).unwrap();
        assert_eq!((s.rows, s.rejected_total()), (50, 1), "{name}");
    }
    // Gzip garbage: a clear error naming the file.
    let mut gz = b"\x1f\x8b\x08\x00garbage".to_vec();
    gz.extend_from_slice(&[0u8; 64]);
    let p = dir.path().join("bad.tsv.gz");
    std::fs::File::create(&p).unwrap().write_all(&gz).unwrap();
    let c = config(&p, dir.path().join("o-gz"), Mode::Evaluate, model.clone());
    let e = run(&c).unwrap_err().to_string();
    assert!(e.contains("bad.tsv.gz"), "{e}");
    assert!(!dir.path().join("o-gz/_SUCCESS").exists());
}

/// Generated rows, then lines whose values are not 8 hex digits (sorting
/// among and around the hex ones), so that both kinds meet in the merge.
fn mixed_input(path: &Path, rows: u64) {
    generate(path, 0, rows, true);
    let mut text = std::fs::read(path).unwrap();
    for i in 0..300 {
        let odd = ["x,\"y", "0000000g", "ABCDEF12", "zz", "7fff", "ffffffff0"][i % 6];
        let mut f = vec![(i % 2).to_string()];
        f.extend((0..13).map(|j| ((i * j) % 5).to_string()));
        f.extend((0..26).map(|c| if (i + c) % 3 == 0 { odd.to_string() } else { format!("{:08x}", (i * 7 + c) % 40) }));
        text.extend_from_slice(f.join("\t").as_bytes());
        text.push(b'\n');
    }
    std::fs::write(path, text).unwrap();
}

/// A memory limit that leaves the counting tables `budget` bytes.
fn limit_for(c: &PrepareConfig, budget: u64) -> u64 {
    let mut probe = c.clone();
    probe.memory_limit = 1 << 30;
    let reserved = (1 << 30) - probe.count_budget().unwrap() as u64;
    reserved + budget
}

fn spill_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".spill"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn spilled_counts_give_the_in_memory_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("train.tsv");
    mixed_input(&input, 6000);
    for format in [PartFormat::Tfrecord, PartFormat::Parquet] {
        for min_count in [1, 2] {
            let tag = format!("{format:?}-{min_count}");
            let reference = dir.path().join(format!("ref-{tag}"));
            let ref_model = dir.path().join(format!("ref-model-{tag}"));
            let mut c = config(&input, reference.clone(), Mode::Train, ref_model.clone());
            c.format = format;
            c.min_count = min_count;
            let s = run(&c).unwrap();
            assert_eq!(s.spills, 0);
            for threads in [1, 3] {
                let out = dir.path().join(format!("out-{tag}-{threads}"));
                let model = dir.path().join(format!("model-{tag}-{threads}"));
                let mut c = config(&input, out.clone(), Mode::Train, model.clone());
                c.format = format;
                c.min_count = min_count;
                c.threads = threads;
                c.memory_limit = limit_for(&c, 150_000);
                let s = run(&c).unwrap();
                assert!(s.spills >= 5, "{tag}, {threads} threads: {} spills", s.spills);
                let parts =
                    |d: &Path| file_bytes(d).into_iter().filter(|(n, _)| n.starts_with("part-")).collect::<Files>();
                assert_eq!(parts(&out), parts(&reference), "{tag}, {threads} threads: parts");
                assert_eq!(file_bytes(&model), file_bytes(&ref_model), "{tag}, {threads} threads: artifacts");
                assert_eq!(spill_files(&out), Vec::<String>::new(), "spill files left");
            }
        }
    }
}

#[test]
fn spill_files_are_removed_after_a_failure_and_tiny_limits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("train.tsv");
    mixed_input(&input, 4000);
    // A bad line at the end: counting fails after it has spilled.
    let mut text = std::fs::read(&input).unwrap();
    text.extend_from_slice(b"7\tnot a label\n");
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("out");
    let model = dir.path().join("model");
    let mut c = config(&input, out.clone(), Mode::Train, model.clone());
    c.threads = 2;
    c.memory_limit = limit_for(&c, 150_000);
    let e = run(&c).unwrap_err();
    assert!(matches!(e, PrepareError::BadLine { line: 4301, .. }), "{e}");
    assert_eq!(spill_files(&out), Vec::<String>::new(), "spill files left after a failure");
    assert!(!out.join("_SUCCESS").exists() && !artifacts::exist(&model));

    // A limit too small to hold the batches and 26 small tables: refused at once.
    let out = dir.path().join("out-tiny");
    let mut c = config(&input, out.clone(), Mode::Train, dir.path().join("model-tiny"));
    c.memory_limit = 100_000;
    let e = run(&c).unwrap_err();
    assert!(matches!(e, PrepareError::MemoryLimit { limit: 100_000, .. }), "{e}");
    assert!(e.to_string().contains("--memory-limit 100000 bytes is too small"), "{e}");
    assert!(!out.exists(), "nothing is created before the limit is checked");
}

#[test]
fn evaluate_and_predict_within_a_small_limit_give_the_same_parts() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("train.tsv");
    mixed_input(&input, 3000);
    let test = dir.path().join("test.tsv");
    generate(&test, 3000, 1500, false);
    let model = dir.path().join("model");
    run(&config(&input, dir.path().join("train"), Mode::Train, model.clone())).unwrap();
    for (mode, data) in [(Mode::Evaluate, &input), (Mode::Predict, &test)] {
        for format in [PartFormat::Tfrecord, PartFormat::Parquet] {
            let tag = format!("{mode:?}-{format:?}");
            let parts = |limit: u64, name: &str| {
                let out = dir.path().join(format!("{tag}-{name}"));
                let mut c = config(data, out.clone(), mode, model.clone());
                c.format = format;
                c.threads = 3;
                c.memory_limit = limit;
                run(&c).unwrap();
                assert_eq!(spill_files(&out), Vec::<String>::new(), "{tag}: spill files left");
                file_bytes(&out).into_iter().filter(|(n, _)| n.starts_with("part-")).collect::<Files>()
            };
            // 10 KB cannot hold the tables of a vocabulary of thousands of values: the sorted file is used.
            assert!(parts(1 << 30, "memory") == parts(10_000, "sorted"), "{tag}: parts differ");
        }
    }
}
