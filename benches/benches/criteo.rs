//! Criteo preprocessing: parsing lines, counting values, ranking, and turning
//! parsed rows into framed Examples.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sparky_criteo::parse::parse_line;
use sparky_criteo::vocab::{Counts, Vocabulary};
use sparky_prepared::schema::Mode;
use sparky_tfrecord::example::Int64ExampleEncoder;

fn criteo(c: &mut Criterion) {
    let tsv = sparky_benches::tsv(50_000);
    let lines: Vec<&[u8]> = tsv.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let mut g = c.benchmark_group("criteo");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("parse", |b| {
        b.iter(|| {
            let mut s = 0i64;
            for l in &lines {
                s = s.wrapping_add(parse_line(l, Mode::Train).expect("valid").ints[0]);
            }
            black_box(s)
        });
    });
    g.bench_function("parse_and_count", |b| {
        b.iter(|| {
            let mut counts = Counts::default();
            for l in &lines {
                counts.add_row(&parse_line(l, Mode::Train).expect("valid"));
            }
            black_box(counts.rows)
        });
    });
    let mut counts = Counts::default();
    for l in &lines {
        counts.add_row(&parse_line(l, Mode::Train).expect("valid"));
    }
    g.bench_function("rank_vocabulary", |b| b.iter(|| black_box(Vocabulary::from_counts(&counts, 1).sizes())));
    let vocab = Vocabulary::from_counts(&counts, 1);
    let enc = Int64ExampleEncoder::new(&Mode::Train.feature_names());
    g.bench_function("parse_lookup_encode", |b| {
        let mut out = Vec::with_capacity(2 << 20);
        let mut values = [0i64; 40];
        b.iter(|| {
            out.clear();
            for l in &lines {
                let row = parse_line(l, Mode::Train).expect("valid");
                values[0] = i64::from(row.label == Some(true));
                values[1..14].copy_from_slice(&row.ints);
                let ids: &mut [i64; 26] = (&mut values[14..]).try_into().expect("26");
                vocab.ids(&row, ids);
                enc.encode(&values, &mut out);
            }
            black_box(out.len())
        });
    });
    g.finish();
}

criterion_group!(benches, criteo);
criterion_main!(benches);
