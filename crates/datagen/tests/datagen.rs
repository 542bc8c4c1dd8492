//! Integration tests of the generator: determinism, format, distributions and
//! the planted model.

use std::collections::HashSet;
use std::io::{self, Write};

use sparky_datagen::{
    CARDINALITIES, CATEGORICAL_COLUMNS, CHUNK_ROWS, GenerateSummary, Generator, GeneratorConfig, INTEGER_COLUMNS,
    generate, int_bucket,
};

fn generator(seed: u64, labelled: bool) -> Generator {
    Generator::new(GeneratorConfig { seed, labelled })
}

fn run(g: &Generator, first_row: u64, rows: u64, threads: usize) -> (Vec<u8>, GenerateSummary) {
    let mut out = Vec::new();
    let summary = generate(g, first_row, rows, threads, &mut out).expect("writing to memory");
    (out, summary)
}

fn lines(tsv: &[u8]) -> impl Iterator<Item = &[u8]> {
    assert!(tsv.is_empty() || tsv.ends_with(b"\n"));
    tsv.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

/// Rows over several chunks and not a multiple of a chunk.
const ROWS: u64 = 3 * CHUNK_ROWS + 123;

#[test]
fn output_does_not_depend_on_the_thread_count() {
    let g = generator(1, true);
    let (one, s1) = run(&g, 0, ROWS, 1);
    for threads in [2, 3, 8] {
        let (many, s) = run(&g, 0, ROWS, threads);
        assert!(one == many, "{threads} threads");
        // Sums are combined in chunk order, so even the floats are identical.
        assert_eq!(s, s1, "{threads} threads");
    }
    assert_eq!(s1.rows, ROWS);
    assert_eq!(s1.bytes, one.len() as u64);
    assert_eq!(lines(&one).count() as u64, ROWS);
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (a, _) = run(&generator(42, true), 0, 5_000, 2);
    let (b, _) = run(&generator(42, true), 0, 5_000, 3);
    let (c, _) = run(&generator(43, true), 0, 5_000, 2);
    assert!(a == b);
    assert!(a != c);
    // Not merely shifted or partly equal: almost every line differs.
    let same = lines(&a).zip(lines(&c)).filter(|(x, y)| x == y).count();
    assert!(same < 5, "{same} equal lines");
}

#[test]
fn row_ranges_concatenate() {
    let g = generator(7, true);
    let (whole, _) = run(&g, 0, 13_000, 2);
    let (head, _) = run(&g, 0, 5_000, 3);
    let (tail, _) = run(&g, 5_000, 8_000, 1);
    assert!([head, tail].concat() == whole);

    let (far, _) = run(&g, 1 << 40, 10, 1);
    let mut by_row = Vec::new();
    for i in 0..10 {
        g.write_row((1 << 40) + i, &mut by_row);
    }
    assert!(far == by_row);
}

#[test]
fn unlabelled_rows_are_labelled_rows_without_the_label() {
    let (labelled, a) = run(&generator(3, true), 100, 3_000, 2);
    let (unlabelled, b) = run(&generator(3, false), 100, 3_000, 2);
    assert_eq!(generator(3, false).fields(), 39);
    for (l, u) in lines(&labelled).zip(lines(&unlabelled)) {
        assert_eq!(&l[2..], u);
    }
    assert_eq!((a.positives, a.best_log_loss), (b.positives, b.best_log_loss));
}

#[test]
fn write_row_and_row_truth_agree() {
    let g = generator(5, true);
    let mut line = Vec::new();
    for i in [0, 1, 2, 999, 123_456_789, u64::MAX] {
        line.clear();
        let truth = g.write_row(i, &mut line);
        assert_eq!(truth, g.row_truth(i));
        assert_eq!(line[0], if truth.label { b'1' } else { b'0' });
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(truth.probability > 0.0 && truth.probability < 1.0);
    }
}

/// Missing-value targets (from 9,999 real rows), I1..I13 then C1..C26.
const MISSING: [f64; 39] = [
    0.448, 0.000, 0.204, 0.198, 0.049, 0.251, 0.049, 0.001, 0.049, 0.448, 0.049, 0.773, 0.198, // I
    0.0, 0.0, 0.036, 0.036, 0.0, 0.133, 0.0, 0.0, 0.0, 0.0, 0.0, 0.036, 0.0, 0.0, 0.0, 0.036, 0.0, 0.0, 0.450, 0.450,
    0.036, 0.818, 0.0, 0.036, 0.450, 0.450, // C
];

#[test]
fn format_and_distributions() {
    let rows = 200_000u64;
    let g = generator(11, true);
    let (tsv, summary) = run(&g, 0, rows, 2);
    let mut missing = [0u64; 39];
    let mut distinct: Vec<HashSet<&[u8]>> = vec![HashSet::new(); 39];
    let mut negatives = [0u64; 13];
    let mut n = 0u64;
    for line in lines(&tsv) {
        n += 1;
        let fields: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
        assert_eq!(fields.len(), 40, "line {n}");
        assert!(fields[0] == b"0" || fields[0] == b"1", "line {n}");
        for (f, &field) in fields[1..].iter().enumerate() {
            if field.is_empty() {
                missing[f] += 1;
                continue;
            }
            distinct[f].insert(field);
            if f < INTEGER_COLUMNS {
                let v: i64 = std::str::from_utf8(field).unwrap().parse().unwrap();
                assert!(v >= -3, "line {n} I{}: {v}", f + 1);
                assert_eq!(std::str::from_utf8(field).unwrap(), v.to_string(), "canonical");
                negatives[f] += u64::from(v < 0);
            } else {
                assert_eq!(field.len(), 8, "line {n} C{}", f - 12);
                assert!(field.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)), "line {n}");
            }
        }
    }
    assert_eq!(n, rows);
    assert_eq!(summary.rows, rows);

    for f in 0..39 {
        let rate = missing[f] as f64 / rows as f64;
        let target = MISSING[f];
        let tolerance = 5.0 * (target * (1.0 - target) / rows as f64).sqrt() + 1e-9;
        assert!((rate - target).abs() <= tolerance, "feature {f}: missing {rate} vs {target}");
    }
    // Only I2 has negatives: about 10% of its values.
    assert!(negatives.iter().enumerate().all(|(j, &c)| (j == 1) == (c > 0)), "{negatives:?}");
    assert!((negatives[1] as f64 / rows as f64 - 0.1).abs() < 0.01);

    // Distinct values: all of the small columns, a plausible share of the
    // large ones (the real data shows hundreds of thousands in 1M rows).
    let d = |c: usize| distinct[INTEGER_COLUMNS + c].len();
    for (c, n) in CARDINALITIES.iter().enumerate() {
        assert!(d(c) <= *n as usize, "C{}", c + 1);
    }
    for c in [5, 8, 13, 16, 19, 21, 22, 24] {
        assert_eq!(d(c), CARDINALITIES[c] as usize, "C{}: every value shows up", c + 1);
    }
    assert_eq!(d(8), 3);
    for (c, low, high) in [(2, 50_000, 110_000), (11, 50_000, 100_000), (3, 30_000, 70_000), (0, 500, 1_460)] {
        assert!((low..=high).contains(&d(c)), "C{}: {} distinct", c + 1, d(c));
    }
    // Integers: I5 reaches six figures, I10 stays tiny.
    assert!(distinct[4].iter().any(|v| v.len() >= 6));
    assert!(distinct[9].len() <= 12);

    // The most frequent value of a column is the value of rank 1.
    let mut counts = std::collections::HashMap::<&[u8], u32>::new();
    for line in lines(&tsv) {
        let c1 = line.split(|&b| b == b'\t').nth(1 + INTEGER_COLUMNS).unwrap();
        *counts.entry(c1).or_default() += 1;
    }
    let top = counts.iter().max_by_key(|(_, c)| **c).unwrap().0;
    assert_eq!(*top, format!("{:08x}", g.categorical_value(0, 1)).as_bytes());
}

#[test]
fn distinct_ranks_give_distinct_values() {
    let g = generator(1, true);
    for c in 0..CATEGORICAL_COLUMNS {
        let n = CARDINALITIES[c].min(1 << 20);
        let mut values: Vec<u32> = (1..=n).map(|r| g.categorical_value(c, r)).collect();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), n as usize, "C{}", c + 1);
    }
    // The largest ranks too.
    let top: HashSet<u32> =
        (CARDINALITIES[2] - 100_000..=CARDINALITIES[2]).map(|r| g.categorical_value(2, r)).collect();
    assert_eq!(top.len(), 100_001);
    // Columns spell their values differently.
    assert_ne!(g.categorical_value(0, 1), g.categorical_value(1, 1));
    // The seed picks the sample, not the spelling.
    assert_eq!(g.categorical_value(2, 17), generator(99, true).categorical_value(2, 17));
}

#[test]
fn summary_matches_the_planted_model() {
    let g = generator(2, true);
    let first = 10_000;
    let rows = 100_000;
    let (tsv, summary) = run(&g, first, rows, 3);
    let (mut ce, mut entropy, mut positives) = (0.0, 0.0, 0u64);
    for (i, line) in lines(&tsv).enumerate() {
        let t = g.row_truth(first + i as u64);
        assert_eq!(line[0] == b'1', t.label, "row {i}");
        let p = t.probability;
        ce -= if t.label { p.ln() } else { (1.0 - p).ln() };
        entropy -= p * p.ln() + (1.0 - p) * (1.0 - p).ln();
        positives += u64::from(t.label);
    }
    let n = rows as f64;
    assert_eq!(summary.positives, positives);
    assert!((summary.best_log_loss - ce / n).abs() < 1e-10, "{} vs {}", summary.best_log_loss, ce / n);
    assert!((summary.expected_entropy - entropy / n).abs() < 1e-10);

    // The targets: about 25% positive, log loss about 0.42 (constant rate: 0.56).
    let rate = positives as f64 / n;
    assert!((0.24..=0.26).contains(&rate), "positive rate {rate}");
    assert!((0.40..=0.44).contains(&summary.best_log_loss), "{}", summary.best_log_loss);
    // Label noise: the two yardsticks agree to a few standard errors.
    assert!((summary.best_log_loss - summary.expected_entropy).abs() < 0.01);
}

#[test]
fn the_planted_effects_follow_the_documented_shape() {
    let g = generator(1, true);
    for c in 0..CATEGORICAL_COLUMNS {
        let weighted = (1..=300.min(CARDINALITIES[c])).filter(|&r| g.categorical_weight(c, r) != 0.0).count();
        assert!(weighted > 0, "C{}", c + 1);
        // Nothing beyond the frequent values.
        for r in [301, 1_000, CARDINALITIES[c]] {
            if r > 300 && r <= CARDINALITIES[c] {
                assert_eq!(g.categorical_weight(c, r), 0.0, "C{} rank {r}", c + 1);
            }
        }
    }
    // Integer effects are constant per bucket and bounded.
    for j in 0..INTEGER_COLUMNS {
        for b in 0..64 {
            assert!(g.integer_effect(j, b).abs() < 1.0);
        }
    }
}

#[test]
fn int_buckets_do_not_depend_on_ln_rounding() {
    for x in 2..3000i64 {
        let l = (x as f64).ln();
        let sq = l * l;
        assert!((sq - sq.round()).abs() > 1e-6, "ln({x})^2 = {sq} is too close to an integer");
        assert_eq!(int_bucket(Some(x)), (4 + sq.floor() as usize).min(63), "{x}");
    }
    assert_eq!(int_bucket(Some(2167)), 62);
    assert_eq!(int_bucket(Some(2168)), 63);
    assert_eq!(int_bucket(Some(i64::MAX)), 63);
    assert_eq!(int_bucket(Some(-3)), 1);
    assert_eq!(int_bucket(None), 0);
}

/// Accepts `limit` bytes, then fails.
struct Failing {
    written: usize,
    limit: usize,
}

impl Write for Failing {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() > self.limit {
            return Err(io::Error::other("disk full"));
        }
        self.written += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_write_error_stops_generation() {
    let g = generator(1, true);
    for threads in [1, 2, 4] {
        let w = Failing { written: 0, limit: 3_000_000 };
        let err = generate(&g, 0, 1_000_000, threads, w).unwrap_err();
        assert_eq!(err.to_string(), "disk full");
    }
}

#[test]
fn edge_cases() {
    let g = generator(1, true);
    let (out, s) = run(&g, 0, 0, 4);
    assert!(out.is_empty());
    assert_eq!((s.rows, s.bytes, s.positives), (0, 0, 0));
    assert!(s.best_log_loss.is_nan());
    let (one, s) = run(&g, 5, 1, 0);
    assert_eq!(s.rows, 1);
    assert_eq!(lines(&one).count(), 1);
    let err = generate(&g, u64::MAX, 2, 1, io::sink()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    // The last row index is fine.
    generate(&g, u64::MAX - 1, 1, 1, io::sink()).unwrap();
}
