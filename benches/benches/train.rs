//! The trainer's inner loops: one epoch of updates over decoded rows (FTRL,
//! one thread), the decode + update path, and evaluation.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sparky_linear::{
    CatEncoding, Evaluator, IntTransform, Layout, OptimizerConfig, OptimizerKind, SharedModel, Worker,
};
use sparky_prepared::{Row, RowDecoder};

fn split(r: &[i64; 40]) -> (&[i64; 13], &[i64; 26]) {
    (r[1..14].try_into().expect("13"), r[14..].try_into().expect("26"))
}

fn train(c: &mut Criterion) {
    let tsv = sparky_benches::tsv(50_000);
    let vocab = sparky_benches::vocabulary(&tsv);
    let rows = sparky_benches::prepared_rows(&tsv, &vocab);
    let examples = sparky_benches::examples(&rows);
    let sizes = vocab.sizes();
    let layout = Layout::new(IntTransform::LogBuckets, CatEncoding::OneHot, &sizes).expect("a small layout");
    let mut g = c.benchmark_group("train");
    g.throughput(Throughput::Elements(rows.len() as u64));
    for kind in [OptimizerKind::Ftrl, OptimizerKind::Adagrad, OptimizerKind::Sgd] {
        let shared = SharedModel::new(layout.clone(), OptimizerConfig::defaults(kind).validate().expect("valid"));
        g.bench_function(format!("update_{kind:?}").to_lowercase(), |b| {
            let mut w = Worker::new(&shared, 256);
            b.iter(|| {
                for r in &rows {
                    let (ints, ids) = split(r);
                    w.train(ints, ids, r[0] == 1);
                }
                w.end_batch();
                black_box(shared.global_step())
            });
        });
    }
    let shared =
        SharedModel::new(layout.clone(), OptimizerConfig::defaults(OptimizerKind::Ftrl).validate().expect("valid"));
    g.bench_function("decode_and_update_ftrl", |b| {
        let mut w = Worker::new(&shared, 256);
        // The trainer's decoder: labels and ids checked against the vocabulary.
        let mut dec = RowDecoder::new(Some(sizes)).labelled();
        let mut r = Row::default();
        b.iter(|| {
            for e in &examples {
                dec.decode(e, &mut r).expect("valid");
                w.train(r.ints(), r.ids(), r.label() == Some(true));
            }
            w.end_batch();
            black_box(shared.global_step())
        });
    });
    let model = shared.snapshot();
    g.bench_function("evaluate", |b| {
        b.iter(|| {
            let mut e = Evaluator::new();
            for r in &rows {
                let (ints, ids) = split(r);
                e.add(model.logit(ints, ids), r[0] == 1);
            }
            black_box(e.finish().auc)
        });
    });
    g.finish();
}

criterion_group!(benches, train);
criterion_main!(benches);
