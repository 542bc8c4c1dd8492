//! Checks that the planted model is learnable: trains a logistic regression
//! (one weight per integer bucket, one per categorical value seen at least
//! `MIN_COUNT` times, AdaGrad, a few passes) on rows `0..N` and compares its
//! log loss on rows `N..N + N/5` with the planted model's.
//!
//! ```text
//! cargo run --release -p sparky-datagen --example learnability -- 1000000 [passes]
//! ```

use std::collections::HashMap;

use sparky_datagen::{Generator, GeneratorConfig, INT_BUCKETS, generate, int_bucket};

const MIN_COUNT: u32 = 30;

fn parse(line: &[u8], out: &mut Vec<(usize, u32)>) -> bool {
    out.clear();
    let mut fields = line.split(|&b| b == b'\t');
    let label = fields.next() == Some(b"1");
    for (f, field) in fields.enumerate() {
        if f < 13 {
            let v = (!field.is_empty()).then(|| std::str::from_utf8(field).unwrap().parse::<i64>().unwrap());
            out.push((f, int_bucket(v) as u32));
        } else if !field.is_empty() {
            out.push((f, u32::from_str_radix(std::str::from_utf8(field).unwrap(), 16).unwrap()));
        }
    }
    label
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(1_000_000, |a| a.parse().unwrap());
    let passes: usize = args.next().map_or(3, |a| a.parse().unwrap());
    let generator = Generator::new(GeneratorConfig::default());
    let mut train = Vec::new();
    generate(&generator, 0, n, 2, &mut train).unwrap();
    let mut test = Vec::new();
    let test_summary = generate(&generator, n, n / 5, 2, &mut test).unwrap();

    // Vocabulary: (column, value) → id for values seen MIN_COUNT times.
    let mut counts: HashMap<(usize, u32), u32> = HashMap::new();
    let mut row = Vec::new();
    for line in train.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        parse(line, &mut row);
        for &(f, v) in &row {
            if f >= 13 {
                *counts.entry((f, v)).or_default() += 1;
            }
        }
    }
    let mut vocab: HashMap<(usize, u32), usize> = HashMap::new();
    let base = 1 + 13 * INT_BUCKETS;
    for (&key, &c) in &counts {
        if c >= MIN_COUNT {
            let id = base + vocab.len();
            vocab.insert(key, id);
        }
    }
    let dims = base + vocab.len();
    println!("{} categorical values with >= {MIN_COUNT} occurrences", vocab.len());
    let ids = |row: &[(usize, u32)], out: &mut Vec<usize>| {
        out.clear();
        out.push(0);
        for &(f, v) in row {
            if f < 13 {
                out.push(1 + f * INT_BUCKETS + v as usize);
            } else if let Some(&id) = vocab.get(&(f, v)) {
                out.push(id);
            }
        }
    };

    let mut w = vec![0.0f64; dims];
    let mut g2 = vec![1e-6f64; dims];
    let lr = 0.05;
    let mut x = Vec::new();
    let eval = |w: &[f64], data: &[u8]| {
        let (mut loss, mut rows) = (0.0, 0usize);
        let mut row = Vec::new();
        let mut x = Vec::new();
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let y = parse(line, &mut row);
            ids(&row, &mut x);
            let z: f64 = x.iter().map(|&i| w[i]).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            loss -= if y { p.ln() } else { (1.0 - p).ln() };
            rows += 1;
        }
        loss / rows as f64
    };
    for pass in 0..passes {
        for line in train.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let y = parse(line, &mut row);
            ids(&row, &mut x);
            let z: f64 = x.iter().map(|&i| w[i]).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let g = p - f64::from(u8::from(y));
            for &i in &x {
                let gi = g + 1e-6 * w[i];
                g2[i] += gi * gi;
                w[i] -= lr * gi / g2[i].sqrt();
            }
        }
        println!("pass {}: held-out log loss {:.4}", pass + 1, eval(&w, &test));
    }
    println!(
        "planted model on the held-out rows: log loss {:.4} (expected entropy {:.4})",
        test_summary.best_log_loss, test_summary.expected_entropy
    );
}
