//! TFRecord codec: read + verify (memory map, stream), write, and Example
//! encode/decode for Criteo-shaped records (label, 13 and 26 int64 features
//! with the guide's long feature names).

use std::hint::black_box;
use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use sparky_io::MappedFile;
use sparky_prepared::schema::Mode;
use sparky_tfrecord::example::{ExampleView, Int64ExampleEncoder, Int64SchemaDecoder};
use sparky_tfrecord::{RecordReader, RecordWriter, SliceReader};

fn codec(c: &mut Criterion) {
    let tsv = sparky_benches::tsv(20_000);
    let vocab = sparky_benches::vocabulary(&tsv);
    let rows = sparky_benches::prepared_rows(&tsv, &vocab);
    let examples = sparky_benches::examples(&rows);
    let file = sparky_benches::tfrecord_bytes(&examples);
    let names = Mode::Train.feature_names();

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("part-r-00000.tfrecord");
    std::fs::File::create(&path).and_then(|mut f| f.write_all(&file)).expect("write fixture");

    let mut g = c.benchmark_group("tfrecord");
    g.throughput(Throughput::Bytes(file.len() as u64));
    g.bench_function("read_verify_mmap", |b| {
        let m = MappedFile::open(&path).expect("map");
        b.iter(|| {
            let mut n = 0usize;
            for r in SliceReader::new(m.bytes()) {
                n += r.expect("valid").len();
            }
            black_box(n)
        });
    });
    g.bench_function("read_verify_stream", |b| {
        let mut buf = Vec::new();
        b.iter(|| {
            let mut r = RecordReader::new(file.as_slice());
            let mut n = 0usize;
            while r.read_record(&mut buf).expect("valid") {
                n += buf.len();
            }
            black_box(n)
        });
    });
    g.bench_function("write", |b| {
        let mut out = Vec::with_capacity(file.len());
        b.iter(|| {
            out.clear();
            let mut w = RecordWriter::new(&mut out);
            for e in &examples {
                w.write_record(e).expect("in memory");
            }
            w.into_inner().expect("in memory");
            black_box(out.len())
        });
    });
    g.finish();

    let mut g = c.benchmark_group("example");
    g.throughput(Throughput::Elements(examples.len() as u64));
    g.bench_function("decode_schema", |b| {
        let mut dec = Int64SchemaDecoder::new(&names);
        let mut row = [0i64; 40];
        b.iter(|| {
            let mut s = 0i64;
            for e in &examples {
                dec.decode(e, &mut row).expect("valid");
                s = s.wrapping_add(row[39]);
            }
            black_box(s)
        });
    });
    g.bench_function("decode_row", |b| {
        // The readers' decoder: the schema decoder plus label and id-range checks.
        let mut dec = sparky_prepared::RowDecoder::new(Some([u64::MAX >> 1; 26])).labelled();
        let mut row = sparky_prepared::Row::default();
        b.iter(|| {
            let mut s = 0i64;
            for e in &examples {
                dec.decode(e, &mut row).expect("valid");
                s = s.wrapping_add(row.ids()[25]);
            }
            black_box(s)
        });
    });
    g.bench_function("decode_view", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &examples {
                for f in ExampleView::new(e).features() {
                    let (_, f) = f.expect("valid");
                    n += f.as_int64().map_or(0, sparky_tfrecord::example::ValueList::len);
                }
            }
            black_box(n)
        });
    });
    g.bench_function("decode_prost", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for e in &examples {
                n += sparky_tfrecord::proto::Example::decode(e.as_slice())
                    .expect("valid")
                    .features
                    .map_or(0, |f| f.feature.len());
            }
            black_box(n)
        });
    });
    g.bench_function("encode_fixed_schema", |b| {
        let enc = Int64ExampleEncoder::new(&names);
        let mut out = Vec::with_capacity(2048);
        b.iter(|| {
            let mut n = 0usize;
            for r in &rows {
                out.clear();
                enc.encode(r, &mut out);
                n += out.len();
            }
            black_box(n)
        });
    });
    g.bench_function("encode_prost", |b| {
        let protos: Vec<sparky_tfrecord::proto::Example> =
            examples.iter().map(|e| sparky_tfrecord::proto::Example::decode(e.as_slice()).expect("valid")).collect();
        let mut out = Vec::with_capacity(2048);
        b.iter(|| {
            let mut n = 0usize;
            for p in &protos {
                out.clear();
                p.encode(&mut out).expect("vec grows");
                n += out.len();
            }
            black_box(n)
        });
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
