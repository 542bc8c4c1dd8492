//! Prints per-column statistics of generated rows: missing rate, distinct
//! values, the variance each column adds to the planted logit, and the
//! summary of the planted model.
//!
//! ```text
//! cargo run --release -p sparky-datagen --example column_stats -- 1000000 [seed]
//! ```

use std::collections::{HashMap, HashSet};

use sparky_datagen::{CARDINALITIES, Generator, GeneratorConfig, generate, int_bucket};

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: u64 = args.next().map_or(200_000, |a| a.parse().expect("rows"));
    let seed: u64 = args.next().map_or(1, |a| a.parse().expect("seed"));
    let generator = Generator::new(GeneratorConfig { seed, labelled: true });
    let mut tsv = Vec::new();
    let summary = generate(&generator, 0, rows, 2, &mut tsv).expect("writing to memory");

    let ranks: Vec<HashMap<Vec<u8>, u32>> = (0..26)
        .map(|c| {
            (1..=CARDINALITIES[c].min(300))
                .map(|r| (format!("{:08x}", generator.categorical_value(c, r)).into_bytes(), r))
                .collect()
        })
        .collect();
    let mut missing = [0u64; 39];
    let mut distinct: Vec<HashSet<&[u8]>> = vec![HashSet::new(); 39];
    let mut sum = [0f64; 39];
    let mut sum2 = [0f64; 39];
    let mut logits = Vec::with_capacity(rows as usize);
    for line in tsv.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut logit = generator.bias();
        for (f, field) in line.split(|&b| b == b'\t').skip(1).enumerate() {
            if field.is_empty() {
                missing[f] += 1;
            } else {
                distinct[f].insert(field);
            }
            let e = if f < 13 {
                let v = (!field.is_empty()).then(|| std::str::from_utf8(field).unwrap().parse::<i64>().unwrap());
                generator.integer_effect(f, int_bucket(v))
            } else {
                ranks[f - 13].get(field).map_or(0.0, |&r| generator.categorical_weight(f - 13, r))
            };
            logit += e;
            sum[f] += e;
            sum2[f] += e * e;
        }
        logits.push(logit);
    }
    let n = rows as f64;
    let mut total_var = 0.0;
    for f in 0..39 {
        let name = if f < 13 { format!("I{}", f + 1) } else { format!("C{}", f - 12) };
        let var = sum2[f] / n - (sum[f] / n).powi(2);
        total_var += var;
        let weighted = if f < 13 {
            String::new()
        } else {
            let c = f - 13;
            let k = (1..=CARDINALITIES[c].min(300)).filter(|&r| generator.categorical_weight(c, r) != 0.0).count();
            format!(" weighted values {k}")
        };
        println!(
            "{name:>4} missing {:.3} distinct {:>8} logit variance {var:.4}{weighted}",
            missing[f] as f64 / n,
            distinct[f].len()
        );
    }
    let mean = logits.iter().sum::<f64>() / n;
    let var = logits.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / n;
    println!("sum of column variances {total_var:.3}, logit mean {mean:.3} variance {var:.3}");
    println!(
        "rows {} positives {:.4} best_log_loss {:.4} expected_entropy {:.4} bytes/row {:.1}",
        summary.rows,
        summary.positives as f64 / n,
        summary.best_log_loss,
        summary.expected_entropy,
        summary.bytes as f64 / n
    );
}
