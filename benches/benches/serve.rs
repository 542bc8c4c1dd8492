//! criteo-serve's request path once a body has arrived: parse the JSON,
//! prepare raw rows with the vocabulary, score, write the answer. One row and
//! 512 rows per request, for each kind of instance.

use std::hint::black_box;

use base64::Engine as _;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sparky_criteo::input::Source;
use sparky_criteo::prepare::{self, PrepareConfig, Progress};
use sparky_prepared::schema::{CAT_FEATURES, INT_FEATURES, Mode};

/// A trained export and the rows to send: (TSV lines, serialized Examples).
fn fixture(dir: &std::path::Path) -> (sparky_serve::Loaded, Vec<String>, Vec<Vec<u8>>) {
    let tsv = sparky_benches::tsv(20_000);
    let (train, eval) = tsv.split_at(tsv.len() * 4 / 5);
    let eval = &eval[eval.iter().position(|&b| b == b'\n').expect("lines") + 1..];
    for (name, data, mode) in [("train", train, Mode::Train), ("eval", eval, Mode::Evaluate)] {
        let path = dir.join(format!("{name}.tsv"));
        std::fs::write(&path, data).expect("writing");
        let mut c = PrepareConfig::new(vec![Source::File(path)], dir.join(name), mode, dir.join("model"));
        c.sync = false;
        prepare::run(&c, &Progress::default()).expect("prepare");
    }
    let mut c = sparky_trainer::TrainConfig::new(dir.join("job"), dir.join("train"), dir.join("eval"));
    c.epochs = Some(1);
    c.threads = 1;
    sparky_trainer::run(&c, &Progress::default(), &|_| {}).expect("train");
    let export = sparky_export::newest_export(&dir.join("job")).expect("an export");
    let loaded = sparky_serve::models::load(&export, 1).expect("loading the export");
    let lines: Vec<String> = String::from_utf8_lossy(eval).lines().take(512).map(str::to_string).collect();
    let mut records = Vec::new();
    for e in std::fs::read_dir(dir.join("eval")).expect("eval parts") {
        let p = e.expect("entry").path();
        if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("part-")) {
            let mut r = sparky_tfrecord::RecordReader::open(&p).expect("part");
            let mut buf = Vec::new();
            while records.len() < 512 && r.read_record(&mut buf).expect("record") {
                records.push(buf.clone());
            }
        }
    }
    (loaded, lines, records)
}

/// A TSV line as an object of raw fields (empty fields left out).
fn object(line: &str) -> serde_json::Value {
    let fields: Vec<&str> = line.split('\t').collect();
    let mut m = serde_json::Map::new();
    for (name, v) in INT_FEATURES.iter().zip(&fields[1..14]) {
        if !v.is_empty() {
            m.insert((*name).to_string(), serde_json::json!(v.parse::<i64>().expect("an integer")));
        }
    }
    for (name, v) in CAT_FEATURES.iter().zip(&fields[14..]) {
        if !v.is_empty() {
            m.insert((*name).to_string(), serde_json::json!(v));
        }
    }
    serde_json::Value::Object(m)
}

fn serve(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (loaded, lines, records) = fixture(dir.path());
    let b64 = |r: &Vec<u8>| serde_json::json!({ "b64": base64::engine::general_purpose::STANDARD.encode(r) });
    let kinds: [(&str, Vec<serde_json::Value>); 3] = [
        ("b64", records.iter().map(b64).collect()),
        ("object", lines.iter().map(|l| object(l)).collect()),
        ("tsv", lines.iter().map(|l| serde_json::json!(l)).collect()),
    ];
    let mut g = c.benchmark_group("serve");
    for (kind, instances) in &kinds {
        for n in [1usize, 512] {
            let body = serde_json::json!({ "instances": instances[..n] }).to_string().into_bytes();
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(format!("predict_{kind}_{n}"), |b| {
                b.iter(|| black_box(sparky_serve::rest::predict_body(&body, &loaded).expect("a valid body")));
            });
        }
    }
    g.finish();
}

criterion_group!(benches, serve);
criterion_main!(benches);
