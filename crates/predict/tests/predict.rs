//! Prediction end to end: raw TSV scores equal prepare-then-predict scores,
//! JSON lines and Parquet outputs, errors, refusals, and streaming.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use sparky_criteo::input::Source;
use sparky_criteo::prepare::{self, PrepareConfig, Progress};
use sparky_criteo::schema::Mode;
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_export::ExportDir;
use sparky_predict::{InputFormat, OutputFormat, PredictConfig, PredictError, Scorer};

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
    sparky_trainer::run(&c, &AtomicBool::new(false), &|_| {}).unwrap();
    f
}

fn batch(
    inputs: Vec<PathBuf>,
    output: PathBuf,
    input_format: InputFormat,
    output_format: OutputFormat,
) -> PredictConfig {
    PredictConfig { inputs, output, input_format, output_format, strict: false, overwrite: false, threads: 2 }
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
    let scorer = Scorer::new(ExportDir::load(&f.path("job")).unwrap()).unwrap();
    let tf = sparky_predict::resolve_inputs(&f.path("test"), InputFormat::Tfrecord).unwrap();
    assert_eq!(tf.len(), 3);
    let a = sparky_predict::run_batch(&scorer, &batch(tf, f.path("out-tf"), InputFormat::Tfrecord, OutputFormat::Json))
        .unwrap();
    let b = sparky_predict::run_batch(
        &scorer,
        &batch(vec![f.path("test.tsv")], f.path("out-tsv"), InputFormat::Tsv, OutputFormat::Json),
    )
    .unwrap();
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
fn a_scorer_without_vocabulary_scores_records_alike_and_refuses_tsv() {
    let f = fixture();
    let light = Scorer::for_prepared_rows(ExportDir::load(&f.path("job")).unwrap());
    assert!(!light.scores_tsv());
    let full = Scorer::new(ExportDir::load(&f.path("job")).unwrap()).unwrap();
    assert!(full.scores_tsv());
    let tf = sparky_predict::resolve_inputs(&f.path("test"), InputFormat::Tfrecord).unwrap();
    sparky_predict::run_batch(
        &light,
        &batch(tf.clone(), f.path("out-light"), InputFormat::Tfrecord, OutputFormat::Json),
    )
    .unwrap();
    sparky_predict::run_batch(&full, &batch(tf, f.path("out-full"), InputFormat::Tfrecord, OutputFormat::Json))
        .unwrap();
    assert_eq!(read_json(&f.path("out-light")), read_json(&f.path("out-full")));
    let e = sparky_predict::run_batch(
        &light,
        &batch(vec![f.path("test.tsv")], f.path("out-tsv"), InputFormat::Tsv, OutputFormat::Json),
    )
    .unwrap_err();
    assert!(matches!(e, PredictError::NoVocabulary), "{e}");
    assert!(!f.path("out-tsv").exists(), "nothing written");
    let mut input = std::io::BufReader::new(&b"1\t2\n"[..]);
    let e = sparky_predict::run_stream(&light, &mut input, Vec::new(), false).unwrap_err();
    assert!(matches!(e, PredictError::NoVocabulary), "{e}");
}

#[test]
fn labelled_input_gives_metrics_and_parquet_columns() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::RowAccessor;
    let f = fixture();
    let scorer = Scorer::new(ExportDir::load(&f.path("job")).unwrap()).unwrap();
    let s = sparky_predict::run_batch(
        &scorer,
        &batch(vec![f.path("eval.tsv")], f.path("out"), InputFormat::Tsv, OutputFormat::Json),
    )
    .unwrap();
    let m = s.metrics.expect("40 fields: labelled");
    assert_eq!(m.examples, 2000);
    let trained = ExportDir::load(&f.path("job")).unwrap().manifest.metrics.unwrap();
    assert!((m.log_loss - trained.log_loss).abs() < 1e-9, "the same rows as the evaluation folder");

    let tf = sparky_predict::resolve_inputs(&f.path("test"), InputFormat::Tfrecord).unwrap();
    sparky_predict::run_batch(&scorer, &batch(tf, f.path("pq"), InputFormat::Tfrecord, OutputFormat::Parquet)).unwrap();
    let json = {
        let tf = sparky_predict::resolve_inputs(&f.path("test"), InputFormat::Tfrecord).unwrap();
        sparky_predict::run_batch(&scorer, &batch(tf, f.path("js"), InputFormat::Tfrecord, OutputFormat::Json))
            .unwrap();
        read_json(&f.path("js"))
    };
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
}

#[test]
fn unscorable_rows_are_listed_or_stop_with_strict() {
    let f = fixture();
    let scorer = Scorer::new(ExportDir::load(&f.path("job")).unwrap()).unwrap();
    // A TSV with a bad line 3.
    let mut text = std::fs::read_to_string(f.path("test.tsv")).unwrap();
    let third = text.match_indices('\n').nth(1).unwrap().0 + 1;
    text.insert_str(third, "oops\n");
    std::fs::write(f.path("bad.tsv"), &text).unwrap();
    let s = sparky_predict::run_batch(
        &scorer,
        &batch(vec![f.path("bad.tsv")], f.path("o1"), InputFormat::Tsv, OutputFormat::Json),
    )
    .unwrap();
    assert_eq!((s.rows, s.errors), (2000, 1));
    let stats = std::fs::read_to_string(f.path("o1/prediction.errors_stats-00000-of-00001")).unwrap();
    assert!(stats.contains("\"position\":\"line 3\"") && stats.contains("not an integer"), "{stats}");
    let mut strict = batch(vec![f.path("bad.tsv")], f.path("o2"), InputFormat::Tsv, OutputFormat::Json);
    strict.strict = true;
    let e = sparky_predict::run_batch(&scorer, &strict).unwrap_err();
    assert!(matches!(e, PredictError::Unscorable { .. }) && e.to_string().contains("line 3"), "{e}");
    assert!(!f.path("o2/_SUCCESS").exists());

    // A damaged TFRecord payload: listed with its byte offset, the rest scored.
    let part = f.path("test/part-r-00001.tfrecord");
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&part, &bytes).unwrap();
    let tf = sparky_predict::resolve_inputs(&f.path("test"), InputFormat::Tfrecord).unwrap();
    let s = sparky_predict::run_batch(&scorer, &batch(tf, f.path("o3"), InputFormat::Tfrecord, OutputFormat::Json))
        .unwrap();
    assert_eq!((s.rows, s.errors), (1999, 1));
    let stats = std::fs::read_to_string(f.path("o3/prediction.errors_stats-00000-of-00001")).unwrap();
    assert!(stats.contains("record 0 at byte 0") && stats.contains("checksum"), "{stats}");

    // An existing output is refused without --overwrite.
    let tf = sparky_predict::resolve_inputs(&f.path("test"), InputFormat::Tfrecord).unwrap();
    let mut again = batch(tf, f.path("o3"), InputFormat::Tfrecord, OutputFormat::Json);
    assert!(matches!(sparky_predict::run_batch(&scorer, &again), Err(PredictError::OutputExists(_))));
    again.overwrite = true;
    sparky_predict::run_batch(&scorer, &again).unwrap();

    // Streaming answers every line, errors included.
    let input = b"oops\n\t1\t2\n";
    let mut r = std::io::BufReader::new(&input[..]);
    let mut out = Vec::new();
    let (ok, bad) = sparky_predict::run_stream(&scorer, &mut r, &mut out, false).unwrap();
    assert_eq!((ok, bad), (1, 1));
    let lines: Vec<&str> = std::str::from_utf8(&out).unwrap().lines().collect();
    assert!(lines[0].contains("\"error\"") && lines[0].contains("\"line\":1"), "{lines:?}");
    assert!(lines[1].starts_with("{\"id\": 1, \"classes\""), "{lines:?}");
}

#[test]
fn damaged_framing_scores_what_precedes_it() {
    let f = fixture();
    let scorer = Scorer::for_prepared_rows(ExportDir::load(&f.path("job")).unwrap());
    let part = sparky_predict::resolve_inputs(&f.path("test"), InputFormat::Tfrecord).unwrap()[0].clone();
    let bytes = std::fs::read(&part).unwrap();
    let records = sparky_tfrecord::SliceReader::new(&bytes).count();
    assert!(records > 100);
    // Flip a bit of a length field in the middle of the file (record 100).
    let at = sparky_tfrecord::record_blocks(&bytes, 100, None, sparky_tfrecord::ReaderOptions::default()).unwrap()[1]
        .0
        .start;
    let mut bad = bytes.clone();
    bad[at + 2] ^= 4;
    std::fs::create_dir_all(f.path("bad")).unwrap();
    std::fs::write(f.path("bad/part-r-00000.tfrecord"), &bad).unwrap();
    let inputs = vec![f.path("bad/part-r-00000.tfrecord")];
    let s = sparky_predict::run_batch(
        &scorer,
        &batch(inputs.clone(), f.path("out"), InputFormat::Tfrecord, OutputFormat::Json),
    )
    .unwrap();
    assert_eq!((s.rows, s.errors), (100, 1));
    let errors = std::fs::read_to_string(f.path("out/prediction.errors_stats-00000-of-00001")).unwrap();
    assert!(errors.contains(&format!("record 100 at byte {at}")), "{errors}");
    assert!(errors.contains("the rest of the file was not scored"), "{errors}");
    let mut strict = batch(inputs, f.path("out-strict"), InputFormat::Tfrecord, OutputFormat::Json);
    strict.strict = true;
    let e = sparky_predict::run_batch(&scorer, &strict).unwrap_err();
    assert!(e.to_string().contains(&format!("offset {at}")) || e.to_string().contains(&at.to_string()), "{e}");
    assert!(!f.path("out-strict/_SUCCESS").exists());
}
