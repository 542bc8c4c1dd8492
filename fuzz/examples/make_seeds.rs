//! Writes the seed corpora under `seeds/<target>/` (run from `fuzz/`):
//!
//! ```text
//! cargo run --release --example make_seeds [-- OUT_DIR]
//! ```
//!
//! Every seed is made here from generated data (`sparky-datagen`), from the
//! library's own writers, or from the TensorFlow-written test files of
//! `crates/tfrecord/tests/data/tensorflow`; nothing comes from real Criteo
//! data. The output is deterministic, so rerunning it changes no file.

use std::io::Write;
use std::path::{Path, PathBuf};

use prost::Message;
use sparky_criteo::parse::parse_line;
use sparky_prepared::schema::Mode;
use sparky_criteo::vocab::{Counts, Vocabulary};
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_linear::{CatEncoding, IntTransform, Layout, LinearModel, OptimizerConfig, OptimizerKind, SharedModel};
use sparky_proto::tensorflow as tf;
use sparky_tfrecord::example::Int64ExampleEncoder;
use sparky_tfrecord::{Compression, RecordWriter};

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

struct Out {
    dir: PathBuf,
}

impl Out {
    fn put(&self, target: &str, name: &str, bytes: &[u8]) -> Res {
        let d = self.dir.join(target);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(name), bytes)?;
        Ok(())
    }
}

/// `n` generated TSV lines (without their `\n`).
fn lines(labelled: bool, seed: u64, n: u64) -> Vec<Vec<u8>> {
    let g = Generator::new(GeneratorConfig { seed, labelled });
    (0..n)
        .map(|i| {
            let mut l = Vec::new();
            g.write_row(i, &mut l);
            assert_eq!(l.pop(), Some(b'\n'));
            l
        })
        .collect()
}

/// Rows of int64 values in the Example schema: label or id, 13 integers, 26
/// small vocabulary ids.
fn schema_rows(labelled: bool, n: u64) -> Vec<Vec<i64>> {
    lines(labelled, 7, n)
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mode = if labelled { Mode::Train } else { Mode::Predict };
            let row = parse_line(l, mode).expect("generated lines parse");
            let mut v = vec![row.label.map_or(i as i64, i64::from)];
            v.extend(row.ints);
            v.extend(row.cats.iter().map(|c| match c {
                sparky_criteo::parse::Cat::Hex(h) => i64::from(h % 1000),
                _ => 0,
            }));
            v
        })
        .collect()
}

fn tfrecords(records: &[Vec<u8>]) -> Vec<u8> {
    let mut w = RecordWriter::new(Vec::new());
    for r in records {
        w.write_record(r).expect("in memory");
    }
    w.into_inner().expect("in memory")
}

fn compress(c: Compression, bytes: &[u8]) -> Res<Vec<u8>> {
    let mut e = c.encoder(Vec::new());
    e.write_all(bytes)?;
    Ok(e.finish()?)
}

/// The payloads of a well-formed TFRecord file.
fn payloads(bytes: &[u8]) -> Vec<Vec<u8>> {
    sparky_tfrecord::SliceReader::new(bytes).map(|r| r.expect("a good file").to_vec()).collect()
}

fn tsv(out: &Out) -> Res {
    for (i, l) in lines(true, 1, 12).iter().enumerate() {
        out.put("tsv_row", &format!("train-{i:02}"), l)?;
    }
    for (i, l) in lines(false, 2, 6).iter().enumerate() {
        out.put("tsv_row", &format!("predict-{i:02}"), l)?;
    }
    let edge: &[(&str, &[u8])] = &[
        ("short", b"1\t2"),
        ("crlf", b"0\t1\t\t3\t\t\t\t\t\t\t\t\t\t\t68fd1e64\r"),
        ("extremes", b"0\t-9223372036854775808\t9223372036854775807\t-10\t0\t00"),
        ("text-values", b"1\t\t\t\t\t\t\t\t\t\t\t\t\t\tABCDEF12\tx,\"y\"\t\xc3\xa9t\xc3\xa9\t0000000g\tffffffff"),
        ("tabs", b"\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t"),
    ];
    for (name, bytes) in edge {
        out.put("tsv_row", name, bytes)?;
    }
    Ok(())
}

fn tfrecord(out: &Out, golden: &Path) -> Res {
    // The TensorFlow-written files: the small ones whole, the large ones cut
    // after their third record (305 bytes; every fault they hold is there).
    for entry in std::fs::read_dir(golden)? {
        let p = entry?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if !name.contains(".tfrecord") {
            continue;
        }
        let bytes = std::fs::read(&p)?;
        let bytes = if bytes.len() > 4096 { &bytes[..305] } else { &bytes[..] };
        out.put("tfrecord_reader", &format!("tf-{name}"), bytes)?;
    }
    // Criteo-shaped Examples, written by sparky, plain and compressed.
    let names = Mode::Train.feature_names();
    let enc = Int64ExampleEncoder::new(&names);
    let records: Vec<Vec<u8>> = schema_rows(true, 4)
        .iter()
        .map(|v| {
            let mut b = Vec::new();
            enc.encode(v, &mut b);
            b
        })
        .collect();
    let file = tfrecords(&records);
    out.put("tfrecord_reader", "criteo", &file)?;
    out.put("tfrecord_reader", "criteo.gz", &compress(Compression::Gzip, &file)?)?;
    out.put("tfrecord_reader", "criteo.zlib", &compress(Compression::Zlib, &file)?)?;
    let small = tfrecords(&[b"a".to_vec(), Vec::new(), b"hello".to_vec()]);
    out.put("tfrecord_reader", "small", &small)?;
    let mut bad_len = small.clone();
    bad_len[17 + 3] ^= 1; // the second record's length field
    out.put("tfrecord_reader", "small-bad-length", &bad_len)?;
    let mut bad_payload = small.clone();
    bad_payload[12] ^= 0x40; // the first record's payload
    out.put("tfrecord_reader", "small-bad-payload", &bad_payload)?;
    Ok(())
}

fn examples(out: &Out, golden: &Path) -> Res {
    let golden = std::fs::read(golden.join("examples.tfrecord"))?;
    for (i, p) in payloads(&golden).iter().enumerate() {
        out.put("example_view", &format!("tf-example-{i}"), p)?;
    }
    let mut features = tf::Features::default();
    let kinds = [
        tf::feature::Kind::BytesList(tf::BytesList { value: vec![b"68fd1e64".to_vec(), Vec::new()] }),
        tf::feature::Kind::FloatList(tf::FloatList { value: vec![0.5, -1.0, f32::NAN] }),
        tf::feature::Kind::Int64List(tf::Int64List { value: vec![-10, 0, i64::MAX] }),
    ];
    for (i, k) in kinds.into_iter().enumerate() {
        features.feature.insert(format!("f{i}"), tf::Feature { kind: Some(k) });
    }
    features.feature.insert("empty".into(), tf::Feature { kind: None });
    let mixed = tf::Example { features: Some(features) }.encode_to_vec();
    out.put("example_view", "mixed-kinds", &mixed)?;
    // Non-canonical: two Features messages, the second overriding "b", a
    // list split in two, an unknown field.
    let entry_a: Vec<u8> = {
        let list1 = [0x08, 0x01]; // value 1, unpacked
        let list2 = [0x0a, 0x01, 0x02]; // value 2, packed
        let mut feature = vec![0x1a, 2];
        feature.extend_from_slice(&list1);
        feature.extend_from_slice(&[0x1a, 3]);
        feature.extend_from_slice(&list2);
        let mut e = vec![0x0a, 1, b'a', 0x12, feature.len() as u8];
        e.extend_from_slice(&feature);
        e
    };
    let entry_b = |v: u8| vec![0x0a, 1, b'b', 0x12, 5, 0x1a, 3, 0x0a, 1, v];
    let features = |entries: &[Vec<u8>]| {
        let mut f = Vec::new();
        for e in entries {
            f.push(0x0a);
            f.push(e.len() as u8);
            f.extend_from_slice(e);
        }
        let mut out = vec![0x0a, f.len() as u8];
        out.extend_from_slice(&f);
        out
    };
    let mut noncanonical = features(&[entry_a, entry_b(5)]);
    noncanonical.extend_from_slice(&[0x78, 0x07]); // unknown varint field 15
    noncanonical.extend(features(&[entry_b(7)]));
    assert_eq!(tf::Example::decode(noncanonical.as_slice())?.features.map(|f| f.feature.len()), Some(2));
    out.put("example_view", "non-canonical", &noncanonical)?;

    for (mode, tag) in [(Mode::Train, 0u8), (Mode::Predict, 1u8)] {
        let enc = Int64ExampleEncoder::new(&mode.feature_names());
        for (i, v) in schema_rows(mode.labelled(), 3).iter().enumerate() {
            let mut b = Vec::new();
            enc.encode(v, &mut b);
            out.put("example_view", &format!("criteo-{mode}-{i}"), &b)?;
            // The schema target takes a settings byte first: the layout bit,
            // and a few choices of optional features.
            let settings = tag | ((i as u8 * 3) % 8) << 1;
            let mut s = vec![settings];
            s.extend_from_slice(&b);
            out.put("example_schema", &format!("criteo-{mode}-{i}"), &s)?;
        }
    }
    let mut s = vec![0u8];
    s.extend_from_slice(&mixed);
    out.put("example_schema", "mixed-kinds", &s)?;
    Ok(())
}

fn artifacts(out: &Out) -> Res {
    let mut counts = Counts::default();
    for l in lines(true, 3, 40) {
        counts.add_row(&parse_line(&l, Mode::Train)?);
    }
    // Values that need quoting, and the missing value.
    use sparky_criteo::parse::Cat;
    counts.columns[0].add_n(Cat::Other(b"a,\"b\""), 3);
    counts.columns[1].add_n(Cat::Other(b"line\nbreak"), 2);
    counts.columns[2].add_n(Cat::Missing, 4);
    counts.columns[3].add_n(Cat::Other("\u{e9}t\u{e9}".as_bytes()), 2);
    for (name, min_count) in [("min2", 2u64), ("min3", 3)] {
        let vocab = Vocabulary::from_counts(&counts, min_count);
        let dir = tempfile::tempdir()?;
        let lock = sparky_io::DirLock::acquire(dir.path())?;
        sparky_criteo::artifacts::write(&lock, &vocab, counts.rows, 0, min_count, false)?;
        let json = std::fs::read(dir.path().join(sparky_criteo::artifacts::MANIFEST_FILE))?;
        let csv = std::fs::read(dir.path().join(sparky_criteo::artifacts::COUNTS_FILE))?;
        assert_eq!(csv, sparky_criteo::artifacts::render_csv(&vocab));
        let mut whole = vec![0u8];
        whole.extend_from_slice(&u16::try_from(json.len())?.to_le_bytes());
        whole.extend_from_slice(&json);
        whole.extend_from_slice(&csv);
        out.put("artifacts", &format!("pair-{name}"), &whole)?;
        let mut only_csv = vec![1u8];
        only_csv.extend_from_slice(&csv);
        out.put("artifacts", &format!("csv-{name}"), &only_csv)?;
    }
    let crlf =
        b"\x01feature,value,count,rank\r\ncategorical-feature-1,\"x\"\"y\",2,1\r\ncategorical-feature-1,,1,2\r\n";
    out.put("artifacts", "csv-crlf-quoted", crlf)?;
    Ok(())
}

fn models(out: &Out) -> Res {
    let small: [u64; 26] = std::array::from_fn(|c| c as u64 % 3);
    let layouts = [
        ("log1p-rank", Layout::new(IntTransform::Log1p, CatEncoding::RankAsNumber, &small)?),
        ("buckets-onehot", Layout::new(IntTransform::LogBuckets, CatEncoding::OneHot, &small)?),
        ("log1p-onehot", Layout::new(IntTransform::Log1p, CatEncoding::OneHot, &small)?),
    ];
    for (name, layout) in &layouts {
        let mut m = LinearModel::zeros(layout.clone());
        for (i, w) in m.weights.iter_mut().enumerate() {
            *w = ((i % 7) as f32 - 3.0) / 8.0;
        }
        let payload = m.to_proto();
        let mut env = vec![0u8];
        env.extend(sparky_export::envelope::encode(sparky_export::MODEL_TYPE, &payload));
        out.put("model", &format!("model-{name}"), &env)?;
        let mut raw = vec![2u8];
        raw.extend(payload.encode_to_vec());
        out.put("model", &format!("payload-{name}"), &raw)?;
    }
    for (kind, name) in
        [(OptimizerKind::Ftrl, "ftrl"), (OptimizerKind::Adagrad, "adagrad"), (OptimizerKind::Sgd, "sgd")]
    {
        let layout = layouts[0].1.clone();
        let shared = SharedModel::new(layout, OptimizerConfig::defaults(kind).validate()?);
        let ck = shared.checkpoint(1, 2, 3, 4);
        let mut env = vec![1u8];
        env.extend(sparky_export::envelope::encode(sparky_export::CHECKPOINT_TYPE, &ck));
        out.put("model", &format!("checkpoint-{name}"), &env)?;
        let mut raw = vec![3u8];
        raw.extend(ck.encode_to_vec());
        out.put("model", &format!("checkpoint-payload-{name}"), &raw)?;
    }
    Ok(())
}

fn main() -> Res {
    let out = Out { dir: std::env::args_os().nth(1).map_or_else(|| PathBuf::from("seeds"), PathBuf::from) };
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/tfrecord/tests/data/tensorflow");
    tsv(&out)?;
    tfrecord(&out, &golden)?;
    examples(&out, &golden)?;
    artifacts(&out)?;
    models(&out)?;
    Ok(())
}
