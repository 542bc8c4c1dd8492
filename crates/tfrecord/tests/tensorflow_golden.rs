//! Reads every file TensorFlow 2.21 wrote in `tests/data/tensorflow` and
//! checks the readers against `MANIFEST.json`: record lengths and payloads,
//! Example values, and for the corrupted files the same number of good records
//! before an error and the byte offset TensorFlow reports.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sparky_io::MappedFile;
use sparky_tfrecord::example::{ExampleView, FeatureRef};
use sparky_tfrecord::{Compression, Error, ReaderOptions, RecordReader, SliceReader};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tensorflow")
}

fn manifest() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(data_dir().join("MANIFEST.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap().as_object().unwrap().clone()
}

/// Reads a whole file with the streaming reader: (records, error).
fn stream(path: &Path, opts: ReaderOptions) -> (Vec<Vec<u8>>, Option<Error>) {
    let mut r = RecordReader::open(path).unwrap().with_options(opts);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    loop {
        match r.read_record(&mut buf) {
            Ok(true) => out.push(buf.clone()),
            Ok(false) => return (out, None),
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Reads a whole uncompressed file through the memory map.
fn mapped(path: &Path) -> (Vec<Vec<u8>>, Option<Error>) {
    let file = MappedFile::open(path).unwrap();
    let mut out = Vec::new();
    for r in SliceReader::new(file.bytes()).with_path(path) {
        match r {
            Ok(p) => out.push(p.to_vec()),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

#[test]
fn every_manifest_file_is_covered() {
    let m = manifest();
    let mut on_disk: Vec<String> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "MANIFEST.json" && n != "README.md")
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = m.keys().cloned().collect();
    listed.sort();
    assert_eq!(on_disk, listed);
}

#[test]
fn compression_from_name_matches_manifest() {
    for (name, entry) in manifest() {
        let c = Compression::from_path(Path::new(&name));
        assert_eq!(c.tensorflow_name(), entry["compression"].as_str().unwrap().replace("NONE", ""), "{name}");
    }
}

#[test]
fn raw_files_match() {
    for (name, entry) in manifest() {
        let Some(lengths) = entry.get("record_lengths") else {
            continue;
        };
        let want: Vec<u64> = lengths.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        let path = data_dir().join(&name);
        for (records, err) in [stream(&path, ReaderOptions::default()), mapped(&path)] {
            assert!(err.is_none(), "{name}: {err:?}");
            let got: Vec<u64> = records.iter().map(|r| r.len() as u64).collect();
            assert_eq!(got, want, "{name}");
            if name == "raw.tfrecord" {
                assert_eq!(records[1], b"a");
                assert_eq!(records[2], (0..=255u8).collect::<Vec<_>>());
                assert!(records[3].iter().all(|&b| b == b'x'));
            }
        }
    }
}

/// Compares one decoded feature with its manifest entry.
fn check_feature(file: &str, i: usize, name: &str, f: &FeatureRef<'_>, want: &Value) {
    let kind = want["kind"].as_str().unwrap();
    let ctx = format!("{file} record {i} feature {name}");
    match (kind, f) {
        ("empty", FeatureRef::Empty) => {}
        ("int64", FeatureRef::Int64(l)) => {
            let want: Vec<i64> = want["values"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
            assert_eq!(l.int64s(), want, "{ctx}");
        }
        ("float", FeatureRef::Float(l)) => {
            let want: Vec<f32> = want["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| match v {
                    Value::String(s) if s == "inf" => f32::INFINITY,
                    Value::String(s) if s == "-inf" => f32::NEG_INFINITY,
                    v => v.as_f64().unwrap() as f32,
                })
                .collect();
            assert_eq!(l.floats(), want, "{ctx}");
        }
        ("bytes", FeatureRef::Bytes(l)) => {
            let want: Vec<Vec<u8>> =
                want["values"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().as_bytes().to_vec()).collect();
            let got: Vec<Vec<u8>> = l.bytes().into_iter().map(<[u8]>::to_vec).collect();
            assert_eq!(got, want, "{ctx}");
        }
        _ => panic!("{ctx}: manifest says {kind}, read {}", f.kind_name()),
    }
}

#[test]
fn example_files_match() {
    let mut checked = 0;
    for (name, entry) in manifest() {
        if entry["kind"] != "tf.train.Example" {
            continue;
        }
        let want = entry["records"].as_array().unwrap();
        let (records, err) = stream(&data_dir().join(&name), ReaderOptions::default());
        assert!(err.is_none(), "{name}: {err:?}");
        assert_eq!(records.len(), want.len(), "{name}");
        for (i, (bytes, want)) in records.iter().zip(want).enumerate() {
            let want = want.as_object().unwrap();
            let mut seen = Vec::new();
            for entry in ExampleView::new(bytes).features() {
                let (fname, f) = entry.unwrap();
                let w = want.get(fname).unwrap_or_else(|| panic!("{name} record {i}: unexpected feature {fname}"));
                check_feature(&name, i, fname, &f, w);
                seen.push(fname.to_string());
            }
            seen.sort();
            let mut keys: Vec<String> = want.keys().cloned().collect();
            keys.sort();
            assert_eq!(seen, keys, "{name} record {i}");
            // prost agrees with the borrowed view.
            use prost::Message;
            let prost = sparky_tfrecord::proto::Example::decode(bytes.as_slice()).unwrap();
            assert_eq!(ExampleView::new(bytes).to_proto().unwrap().encode_to_vec(), prost.encode_to_vec());
        }
        checked += 1;
    }
    assert_eq!(checked, 3, "plain, GZIP and ZLIB");
}

#[test]
fn corrupt_files_fail_at_the_same_record_as_tensorflow() {
    let mut checked = 0;
    for (name, entry) in manifest() {
        if entry.get("corrupt") != Some(&Value::Bool(true)) {
            continue;
        }
        let before = entry["records_before_error"].as_u64().unwrap();
        let path = data_dir().join(&name);
        for (how, (records, err)) in [("stream", stream(&path, ReaderOptions::default())), ("mmap", mapped(&path))] {
            let err = err.unwrap_or_else(|| panic!("{name} ({how}): read {} records and no error", records.len()));
            assert_eq!(records.len() as u64, before, "{name} ({how}): {err}");
            let pos = err.position().unwrap();
            assert_eq!(pos.record, before, "{name} ({how})");
            assert!(err.is_corruption());
            match entry["tensorflow_error"].as_str() {
                // "DataLossError: corrupted record at 28" -> 28
                Some(tf) => {
                    let offset: u64 = tf.rsplit(' ').next().unwrap().parse().unwrap();
                    assert_eq!(err.tensorflow_offset(), Some(offset), "{name} ({how}): {err} vs {tf}");
                    let kind_ok = if tf.contains("truncated") {
                        matches!(err, Error::TruncatedPayload { .. })
                    } else {
                        matches!(err, Error::LengthChecksum { .. } | Error::PayloadChecksum { .. })
                    };
                    assert!(kind_ok, "{name} ({how}): {err} vs {tf}");
                }
                // TensorFlow says nothing: the file ends inside a header. We do.
                None => assert!(matches!(err, Error::TruncatedHeader { .. }), "{name}: {err}"),
            }
            assert!(err.to_string().contains(&name), "message names the file: {err}");
        }
        checked += 1;
    }
    assert_eq!(checked, 5);
}

#[test]
fn skipping_corrupt_payloads_recovers_the_rest() {
    // flipped-payload-bit damages one payload of raw.tfrecord; skipping it
    // yields the other three records, and the count says one was lost.
    let path = data_dir().join("flipped-payload-bit.tfrecord");
    let opts = ReaderOptions { skip_corrupt_payloads: true, ..Default::default() };
    let mut r = RecordReader::open(&path).unwrap().with_options(opts);
    let mut buf = Vec::new();
    let mut lengths = Vec::new();
    while r.read_record(&mut buf).unwrap() {
        lengths.push(buf.len());
    }
    assert_eq!(lengths, vec![0, 1, 70000]);
    assert_eq!(r.skipped(), 1);
}
