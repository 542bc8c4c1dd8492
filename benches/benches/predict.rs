//! The prediction writer: scoring decoded rows and formatting JSON lines.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sparky_linear::{CatEncoding, IntTransform, Layout, LinearModel};

fn predict(c: &mut Criterion) {
    let tsv = sparky_benches::tsv(50_000);
    let vocab = sparky_benches::vocabulary(&tsv);
    let rows = sparky_benches::prepared_rows(&tsv, &vocab);
    let sizes = vocab.sizes();
    let mut model =
        LinearModel::zeros(Layout::new(IntTransform::LogBuckets, CatEncoding::OneHot, &sizes).expect("a small layout"));
    for (i, w) in model.weights.iter_mut().enumerate() {
        *w = ((i * 7919) % 1000) as f32 / 1000.0 - 0.5;
    }
    let mut g = c.benchmark_group("predict");
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("json_lines_writer", |b| {
        let mut out = Vec::with_capacity(8 << 20);
        b.iter(|| {
            out.clear();
            for (i, r) in rows.iter().enumerate() {
                let p = sparky_linear::metrics::sigmoid(r[0] as f32 * 0.01 - 1.0 + (i % 7) as f32 * 0.1);
                sparky_predict::writer::write_json_line(&mut out, Some(i as i64), p);
            }
            black_box(out.len())
        });
    });
    g.bench_function("score_and_write", |b| {
        let mut out = Vec::with_capacity(8 << 20);
        b.iter(|| {
            out.clear();
            for (i, r) in rows.iter().enumerate() {
                let p = model.predict(r[1..14].try_into().expect("13"), r[14..].try_into().expect("26"));
                sparky_predict::writer::write_json_line(&mut out, Some(i as i64), p);
            }
            black_box(out.len())
        });
    });
    g.finish();
}

criterion_group!(benches, predict);
criterion_main!(benches);
