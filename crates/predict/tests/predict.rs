//! Prediction end to end: raw TSV scores equal prepare-then-predict scores,
//! JSON lines and Parquet outputs, errors, refusals, and streaming.

use std::path::{Path, PathBuf};

use sparky_criteo::input::Source;
use sparky_criteo::prepare::{self, PrepareConfig, Progress};
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_export::ExportDir;
use sparky_predict::{BatchConfig, Input, InputFormat, OutputFormat, PredictError, PredictSummary, RawScorer, Scorer};
use sparky_prepared::schema::Mode;
use sparky_prepared::{PartFormat, PreparedDir};

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
}

fn generate(path: &Path, first: u64, rows: u64, labelled: bool) {
    let g = Generator::new(GeneratorConfig { seed: 9, labelled });
    let mut out = Vec::new();
    sparky_datagen::generate(&g, first, rows, 2, &mut out).unwrap();
    std::fs::write(path, out).unwrap();
}

fn prep(f: &Fixture, name: &str, mode: Mode) {
    let mut c =
        PrepareConfig::new(vec![Source::File(f.path(&format!("{name}.tsv")))], f.path(name), mode, f.path("model"));
    c.num_partitions = 3;
    c.sync = false;
    prepare::run(&c, &Progress::default()).unwrap();
}

/// Trains a small model; prepares a predict-mode test set.
fn fixture() -> Fixture {
    let f = Fixture { dir: tempfile::tempdir().unwrap() };
    generate(&f.path("train.tsv"), 0, 8000, true);
    generate(&f.path("eval.tsv"), 8000, 2000, true);
    generate(&f.path("test.tsv"), 10_000, 2000, false);
    prep(&f, "train", Mode::Train);
    prep(&f, "eval", Mode::Evaluate);
    prep(&f, "test", Mode::Predict);
    let mut c = sparky_trainer::TrainConfig::new(f.path("job"), f.path("train"), f.path("eval"));
    c.epochs = Some(1);
    c.threads = 1;
    sparky_trainer::run(&c, &Progress::default(), &|_| {}).unwrap();
    f
}

fn batch(output: PathBuf, output_format: OutputFormat) -> BatchConfig {
    BatchConfig { output, output_format, strict: false, overwrite: false, threads: 2 }
}

/// The prepared folder `name`, checked.
fn prepared(f: &Fixture, name: &str) -> PreparedDir {
    match Input::resolve(&f.path(name), Some(InputFormat::Tfrecord), false).unwrap() {
        Input::Prepared(d) => d,
        Input::Tsv(_) => unreachable!("a prepared folder"),
    }
}

fn run_p(scorer: &Scorer, input: &PreparedDir, cfg: &BatchConfig) -> Result<PredictSummary, PredictError> {
    sparky_predict::run_prepared(scorer, input, cfg, &Progress::default())
}

fn run_t(scorer: &RawScorer, input: &[PathBuf], cfg: &BatchConfig) -> Result<PredictSummary, PredictError> {
    sparky_predict::run_tsv(scorer, input, cfg, &Progress::default())
}

/// (id, p0, p1) of every line of every results part, in part order.
fn read_json(dir: &Path) -> Vec<(Option<i64>, f64, f64)> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("prediction.results-"))
        .collect();
    parts.sort();
    let mut out = Vec::new();
    for p in parts {
        for line in std::fs::read_to_string(p).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["classes"], serde_json::json!(["0", "1"]));
            let s = v["scores"].as_array().unwrap();
            out.push((v.get("id").and_then(serde_json::Value::as_i64), s[0].as_f64().unwrap(), s[1].as_f64().unwrap()));
        }
    }
    out
}

#[test]
fn raw_tsv_scores_equal_prepare_then_predict() {
    let f = fixture();
    let scorer = RawScorer::new(ExportDir::load(&f.path("job")).unwrap()).unwrap();
    let tf = prepared(&f, "test");
    assert_eq!(tf.parts().len(), 3);
    let a = run_p(&scorer, &tf, &batch(f.path("out-tf"), OutputFormat::Json)).unwrap();
    let b = run_t(&scorer, &[f.path("test.tsv")], &batch(f.path("out-tsv"), OutputFormat::Json)).unwrap();
    assert_eq!((a.rows, b.rows, a.errors, b.errors), (2000, 2000, 0, 0));
    assert!(f.path("out-tf/prediction.results-00002-of-00003").is_file());
    assert!(f.path("out-tf/prediction.errors_stats-00000-of-00001").is_file());
    assert!(f.path("out-tf/_SUCCESS").is_file());
    let x = read_json(&f.path("out-tf"));
    let y = read_json(&f.path("out-tsv"));
    assert_eq!(x, y, "identical ids and scores");
    for (i, (id, p0, p1)) in x.iter().enumerate() {
        assert_eq!(*id, Some(i as i64), "ids in input order");
        assert!((p0 + p1 - 1.0).abs() < 1e-6);
    }
    // Streaming gives the same lines for the same rows.
    let text = std::fs::read(f.path("test.tsv")).unwrap();
    let mut input = std::io::BufReader::new(text.as_slice());
    let mut out = Vec::new();
    let (ok, bad) = sparky_predict::run_stream(&scorer, &mut input, &mut out, false).unwrap();
    assert_eq!((ok, bad), (2000, 0));
    let streamed: Vec<String> = String::from_utf8(out).unwrap().lines().map(str::to_string).collect();
    let batch_lines: Vec<String> = std::fs::read_to_string(f.path("out-tsv/prediction.results-00000-of-00001"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(streamed, batch_lines);
}

#[test]
fn the_model_only_scorer_scores_records_like_the_raw_scorer() {
    let f = fixture();
    let light = Scorer::new(ExportDir::load(&f.path("job")).unwrap());
    let full = RawScorer::new(ExportDir::load(&f.path("job")).unwrap()).unwrap();
    let tf = prepared(&f, "test");
    run_p(&light, &tf, &batch(f.path("out-light"), OutputFormat::Json)).unwrap();
    run_p(&full, &tf, &batch(f.path("out-full"), OutputFormat::Json)).unwrap();
    assert_eq!(read_json(&f.path("out-light")), read_json(&f.path("out-full")));
    // Raw TSV needs the vocabulary: only a RawScorer takes it (run_tsv's type).
    // The kind of input is detected, and a declared kind the bytes contradict
    // is refused with what to pass.
    assert!(matches!(Input::resolve(&f.path("test.tsv"), None, false).unwrap(), Input::Tsv(_)));
    assert!(matches!(Input::resolve(&f.path("test"), None, false).unwrap(), Input::Prepared(_)));
    let e = Input::resolve(&f.path("test.tsv"), Some(InputFormat::Tfrecord), false).unwrap_err();
    assert!(e.to_string().contains("--input-format tsv"), "{e}");
    let part = f.path("test/part-r-00000.tfrecord");
    let e = Input::resolve(&part, Some(InputFormat::Tsv), false).unwrap_err();
    assert!(matches!(e, PredictError::WrongInputKind { .. }), "{e}");
}

#[test]
fn labelled_input_gives_metrics_and_parquet_columns() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;
    let f = fixture();
    let scorer = RawScorer::new(ExportDir::load(&f.path("job")).unwrap()).unwrap();
    let s = run_t(&scorer, &[f.path("eval.tsv")], &batch(f.path("out"), OutputFormat::Json)).unwrap();
    let m = s.metrics.expect("40 fields: labelled");
    assert_eq!(m.examples, 2000);
    let trained = ExportDir::load(&f.path("job")).unwrap().manifest.metrics.unwrap();
    assert!((m.log_loss - trained.log_loss).abs() < 1e-9, "the same rows as the evaluation folder");

    let tf = prepared(&f, "test");
    run_p(&scorer, &tf, &batch(f.path("pq"), OutputFormat::Parquet)).unwrap();
    run_p(&scorer, &tf, &batch(f.path("js"), OutputFormat::Json)).unwrap();
    let json = read_json(&f.path("js"));
    let mut rows = Vec::new();
    for p in 0..3 {
        let file = std::fs::File::open(f.path(&format!("pq/prediction.results-{p:05}-of-00003.parquet"))).unwrap();
        let r = SerializedFileReader::new(file).unwrap();
        let names: Vec<String> =
            r.metadata().file_metadata().schema_descr().columns().iter().map(|c| c.name().to_string()).collect();
        assert_eq!(names, ["id", "score_0", "score_1"]);
        for row in r.get_row_iter(None).unwrap() {
            let row = row.unwrap();
            rows.push((row.get_long(0).unwrap(), row.get_float(1).unwrap(), row.get_float(2).unwrap()));
        }
    }
    assert_eq!(rows.len(), json.len());
    for ((id, p0, p1), (jid, j0, j1)) in rows.iter().zip(&json) {
        assert_eq!(Some(*id), *jid);
        assert_eq!((*p0, *p1), (*j0 as f32, *j1 as f32), "the JSON numbers are the shortest text of the same floats");
    }
    // Labelled prepared rows have no id: in Parquet their id is their position.
    let ev = prepared(&f, "eval");
    run_p(&scorer, &ev, &batch(f.path("pq-eval"), OutputFormat::Parquet)).unwrap();
    let mut ids = Vec::new();
    for p in 0..3 {
        let file = std::fs::File::open(f.path(&format!("pq-eval/prediction.results-{p:05}-of-00003.parquet"))).unwrap();
        for row in SerializedFileReader::new(file).unwrap().get_row_iter(None).unwrap() {
            ids.push(row.unwrap().get_long(0).unwrap());
        }
    }
    assert_eq!(ids, (0..2000).collect::<Vec<i64>>());
}

#[test]
fn unscorable_rows_are_listed_or_stop_with_strict() {
    let f = fixture();
    let scorer = RawScorer::new(ExportDir::load(&f.path("job")).unwrap()).unwrap();
    // A TSV with a bad line 3.
    let mut text = std::fs::read_to_string(f.path("test.tsv")).unwrap();
    let third = text.match_indices('\n').nth(1).unwrap().0 + 1;
    text.insert_str(third, "oops\n");
    std::fs::write(f.path("bad.tsv"), &text).unwrap();
    let s = run_t(&scorer, &[f.path("bad.tsv")], &batch(f.path("o1"), OutputFormat::Json)).unwrap();
    assert_eq!((s.rows, s.errors), (2000, 1));
    let stats = std::fs::read_to_string(f.path("o1/prediction.errors_stats-00000-of-00001")).unwrap();
    assert!(stats.contains("\"position\":\"line 3\"") && stats.contains("fields"), "{stats}");
    let mut strict = batch(f.path("o2"), OutputFormat::Json);
    strict.strict = true;
    let e = run_t(&scorer, &[f.path("bad.tsv")], &strict).unwrap_err();
    assert!(matches!(e, PredictError::Unscorable { .. }) && e.to_string().contains("line 3"), "{e}");
    assert!(!f.path("o2/_SUCCESS").exists());
    assert!(!f.path("o2/prediction.results-00000-of-00001").exists(), "no complete-looking part");

    // A damaged TFRecord payload: listed with its byte offset, the rest scored.
    let part = f.path("test/part-r-00001.tfrecord");
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&part, &bytes).unwrap();
    let tf = prepared(&f, "test");
    let s = run_p(&scorer, &tf, &batch(f.path("o3"), OutputFormat::Json)).unwrap();
    assert_eq!((s.rows, s.errors), (1999, 1));
    let stats = std::fs::read_to_string(f.path("o3/prediction.errors_stats-00000-of-00001")).unwrap();
    assert!(stats.contains("record 0 at byte 0") && stats.contains("checksum"), "{stats}");

    // An existing output is refused without --overwrite.
    let mut again = batch(f.path("o3"), OutputFormat::Json);
    let e = run_p(&scorer, &tf, &again).unwrap_err();
    assert!(matches!(e, PredictError::OutputExists(_)), "{e}");
    again.overwrite = true;
    run_p(&scorer, &tf, &again).unwrap();

    // Streaming answers every line, errors included.
    let input = b"oops\n\t1\t2\n";
    let mut r = std::io::BufReader::new(&input[..]);
    let mut out = Vec::new();
    let (ok, bad) = sparky_predict::run_stream(&scorer, &mut r, &mut out, false).unwrap();
    assert_eq!((ok, bad), (0, 2));
    let lines: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
    assert!(lines[0].contains("\"error\"") && lines[0].contains("\"line\":1"), "{lines:?}");
    assert!(lines[1].contains("\"line\":2") && lines[1].contains("fields"), "{lines:?}");
}

#[test]
fn damaged_framing_fails_the_run_and_leaves_nothing() {
    let f = fixture();
    let scorer = Scorer::new(ExportDir::load(&f.path("job")).unwrap());
    let part = f.path("test/part-r-00000.tfrecord");
    let bytes = std::fs::read(&part).unwrap();
    let records = sparky_tfrecord::SliceReader::new(&bytes).count();
    assert!(records > 100);
    // Flip a bit of a length field in the middle of the file (record 100):
    // the rows after it cannot be counted, so the run fails, strict or not.
    let at = sparky_tfrecord::record_blocks(&bytes, 100, None, sparky_tfrecord::ReaderOptions::default()).unwrap()[1]
        .0
        .start;
    let mut bad = bytes.clone();
    bad[at + 2] ^= 4;
    std::fs::write(&part, &bad).unwrap();
    let tf = prepared(&f, "test");
    for strict in [false, true] {
        let mut cfg = batch(f.path("out"), OutputFormat::Json);
        cfg.strict = strict;
        let e = run_p(&scorer, &tf, &cfg).unwrap_err();
        assert!(e.to_string().contains(&format!("at byte {at}")), "{e}");
        assert!(e.to_string().contains("part-r-00000.tfrecord"), "{e}");
        let left: Vec<_> = std::fs::read_dir(f.path("out")).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

/// The lines of every results part, in part order.
fn result_lines(dir: &Path) -> Vec<String> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("prediction.results-"))
        .collect();
    parts.sort();
    parts
        .iter()
        .flat_map(|p| std::fs::read_to_string(p).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

#[test]
fn parquet_parts_predict_the_lines_of_tfrecord_parts() {
    let f = fixture();
    let mut c =
        PrepareConfig::new(vec![Source::File(f.path("test.tsv"))], f.path("test-pq"), Mode::Predict, f.path("model"));
    c.num_partitions = 3;
    c.sync = false;
    c.format = PartFormat::Parquet;
    prepare::run(&c, &Progress::default()).unwrap();
    let scorer = Scorer::new(ExportDir::load(&f.path("job")).unwrap());
    // Detected by their bytes: a folder, and a glob of its parts.
    for (spec, out) in [(f.path("test-pq"), "out-pq"), (f.path("test-pq/part-*"), "out-glob")] {
        let Input::Prepared(pq) = Input::resolve(&spec, None, false).unwrap() else { panic!("prepared parts") };
        assert_eq!(pq.parts().len(), 3);
        let s = run_p(&scorer, &pq, &batch(f.path(out), OutputFormat::Json)).unwrap();
        assert_eq!((s.rows, s.errors), (2000, 0));
    }
    run_p(&scorer, &prepared(&f, "test"), &batch(f.path("out-tf"), OutputFormat::Json)).unwrap();
    let tf = result_lines(&f.path("out-tf"));
    assert_eq!(tf.len(), 2000);
    assert_eq!(result_lines(&f.path("out-pq")), tf, "the same lines");
    assert_eq!(result_lines(&f.path("out-glob")), tf);
    // A declared format the bytes contradict says what to pass.
    let e = Input::resolve(&f.path("test-pq/part-*"), Some(InputFormat::Tfrecord), false).unwrap_err();
    assert!(e.to_string().contains("--input-format parquet"), "{e}");
    let e = Input::resolve(&f.path("test/part-*"), Some(InputFormat::Parquet), false).unwrap_err();
    assert!(e.to_string().contains("--input-format tfrecord"), "{e}");
}
