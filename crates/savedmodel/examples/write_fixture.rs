//! Writes a SavedModel of random weights, predict-mode Examples and the
//! scores sparky expects for them, for `scripts/check_savedmodel.py` to
//! compare against TensorFlow:
//!
//! ```text
//! cargo run -p sparky-savedmodel --example write_fixture -- OUTDIR [--rows N] [--weights W] [--seed S] [--export-shape]
//! ```
//!
//! By default the model mixes every input kind; `--export-shape` makes it
//! exactly what sparky's export holds: every integer feature bucketed, every
//! categorical feature one-hot. Its logits then involve no transcendental
//! function, and TensorFlow's equal sparky's bit for bit.
//!
//! - `OUTDIR/saved_model/saved_model.pb`: the model (Criteo-shaped: bias, 13
//!   integer and 26 categorical features, about `W` weights in all);
//! - `OUTDIR/examples.tfrecord`: `N` Examples carrying `id`, `clicked` and
//!   the 39 features, every kind of edge value included (missing, negative,
//!   out of vocabulary, int64 extremes, values float32 cannot tell apart);
//! - `OUTDIR/expected.tsv`: per Example, `1 - p` and `p` from
//!   `ScoringModel::score`, then the logit, printed so that they parse back
//!   exactly.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use sparky_savedmodel::{CatInput, IntInput, ScoringModel, write_saved_model};
use sparky_tfrecord::example::Int64ExampleEncoder;
use sparky_tfrecord::{Compression, FileWriter};

/// SplitMix64: small, seeded, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn weight(&mut self) -> f32 {
        (self.unit() * 2.0 - 1.0) as f32 * 0.8
    }
}

/// sparky's LOG_BUCKETS boundaries: missing (-10) below -9, negatives, 0, 1,
/// then the smallest x with floor(ln(x)^2) >= k for k = 1..=59.
fn log_bucket_boundaries() -> Vec<i64> {
    let mut b = vec![-9, 0, 1, 2];
    b.extend((1..=59).map(|k| f64::from(k).sqrt().exp().ceil() as i64));
    b
}

/// Boundaries float32 cannot separate: 2^24 + 1 rounds to 2^24, 2^53 + 1 to
/// 2^53 even in float64.
const EXACT_BOUNDARIES: [i64; 5] = [16_777_216, 16_777_217, 16_777_218, (1 << 53) + 1, i64::MAX];

const EXACT_PROBES: [i64; 12] = [
    16_777_215,
    16_777_216,
    16_777_217,
    16_777_218,
    16_777_219,
    1 << 53,
    (1 << 53) + 1,
    (1 << 53) + 2,
    i64::MAX - 1,
    i64::MAX,
    i64::MIN,
    -10,
];

fn int_value(rng: &mut Rng, feature: usize) -> i64 {
    if feature == 12 {
        return EXACT_PROBES[rng.below(EXACT_PROBES.len() as u64) as usize];
    }
    match rng.below(20) {
        0 | 1 => -10,
        2 => -(rng.below(9) as i64 + 1),
        3..=6 => rng.below(4) as i64,
        7 => [i64::MIN, i64::MAX, -11, 1 << 40][rng.below(4) as usize],
        _ => (rng.unit() * 16.0).exp() as i64,
    }
}

fn cat_value(rng: &mut Rng, vocabulary: usize) -> i64 {
    let v = vocabulary as i64;
    match rng.below(10) {
        0 => [-1, -5, i64::MIN, 0][rng.below(4) as usize],
        1 => [v, v + 1, v + 1000, i64::MAX][rng.below(4) as usize],
        _ => rng.below(vocabulary as u64) as i64,
    }
}

struct Args {
    out: PathBuf,
    rows: usize,
    weights: usize,
    seed: u64,
    export_shape: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut out = None;
    let mut rows = 10_000;
    let mut weights = 200_000;
    let mut seed = 1;
    let mut export_shape = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value =
            |name: &str| it.next().and_then(|v| v.parse::<u64>().ok()).ok_or_else(|| format!("{name} needs a number"));
        match a.as_str() {
            "--rows" => rows = value("--rows")? as usize,
            "--weights" => weights = value("--weights")? as usize,
            "--seed" => seed = value("--seed")?,
            "--export-shape" => export_shape = true,
            _ if out.is_none() && !a.starts_with("--") => out = Some(PathBuf::from(a)),
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    let out = out.ok_or("usage: write_fixture OUTDIR [--rows N] [--weights W] [--seed S] [--export-shape]")?;
    Ok(Args { out, rows, weights, seed, export_shape })
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Rng(args.seed);

    // Integer features 1-11 as sparky exports them (LOG_BUCKETS), 12 as
    // LOG1P (unless --export-shape), 13 with boundaries only an int64
    // comparison tells apart.
    let log_boundaries = log_bucket_boundaries();
    let mixed = !args.export_shape;
    let int_weights: Vec<Vec<f32>> = (0..13)
        .map(|f| {
            let n = match f {
                11 if mixed => 0,
                12 => EXACT_BOUNDARIES.len() + 1,
                _ => log_boundaries.len() + 1,
            };
            (0..n).map(|_| rng.weight()).collect()
        })
        .collect();
    // Categorical 1-24 one-hot, 25-26 rank as a number. Vocabulary sizes
    // spread from a handful to a third of the weights, as in Criteo.
    let budget = args.weights.saturating_sub(13 * 64 + 1).max(24 * 2);
    let shares: Vec<f64> = (0..26).map(|i| 0.6f64.powi(i)).collect();
    let total: f64 = shares.iter().sum();
    let cat_weights: Vec<Vec<f32>> = shares
        .iter()
        .map(|s| {
            let n = ((budget as f64 * s / total) as usize).max(2);
            (0..n).map(|_| rng.weight()).collect()
        })
        .collect();

    let model = ScoringModel {
        bias: -1.25,
        int_features: (0..13)
            .map(|f| {
                let input = match f {
                    11 if mixed => IntInput::Log1p { missing_value: -10, missing_weight: 0.3, weight: -0.17 },
                    12 => IntInput::Buckets { boundaries: &EXACT_BOUNDARIES, weights: &int_weights[f] },
                    _ => IntInput::Buckets { boundaries: &log_boundaries, weights: &int_weights[f] },
                };
                (format!("integer-feature-{}", f + 1), input)
            })
            .collect(),
        cat_features: (0..26)
            .map(|f| {
                let input = match f {
                    24 if mixed => CatInput::RankAsNumber { weight: 0.05 },
                    25 if mixed => CatInput::RankAsNumber { weight: -0.03 },
                    _ => CatInput::OneHot { weights: &cat_weights[f] },
                };
                (format!("categorical-feature-{}", f + 1), input)
            })
            .collect(),
    };

    let model_dir = args.out.join("saved_model");
    std::fs::create_dir_all(&model_dir)?;
    let start = Instant::now();
    write_saved_model(&model_dir, &model)?;
    let elapsed = start.elapsed();
    let size = std::fs::metadata(model_dir.join("saved_model.pb"))?.len();
    println!(
        "saved_model.pb: {} weights, {size} bytes, written in {:.3} s",
        model.num_weights(),
        elapsed.as_secs_f64()
    );

    // Examples: id first, the features, clicked last (names in any order:
    // the encoder sorts them as prost would).
    let mut names = vec!["id".to_string()];
    names.extend(model.int_features.iter().map(|(n, _)| n.clone()));
    names.extend(model.cat_features.iter().map(|(n, _)| n.clone()));
    names.push("clicked".to_string());
    let encoder = Int64ExampleEncoder::new(&names);
    let mut writer = FileWriter::create(args.out.join("examples.tfrecord"), Compression::None)?;
    let mut expected = String::new();
    let mut values = vec![0i64; names.len()];
    let mut buf = Vec::new();
    for row in 0..args.rows {
        let ints: Vec<i64> = (0..13).map(|f| int_value(&mut rng, f)).collect();
        let ids: Vec<i64> = model
            .cat_features
            .iter()
            .map(|(_, c)| match c {
                CatInput::OneHot { weights } => cat_value(&mut rng, weights.len()),
                CatInput::RankAsNumber { .. } => cat_value(&mut rng, 1000),
            })
            .collect();
        values[0] = row as i64;
        values[1..14].copy_from_slice(&ints);
        values[14..40].copy_from_slice(&ids);
        values[40] = (rng.below(4) == 0).into();
        buf.clear();
        encoder.encode(&values, &mut buf);
        writer.write_record(&buf)?;
        let p = model.score(&ints, &ids);
        let logit = model.logit(&ints, &ids);
        writeln!(expected, "{}\t{p}\t{logit}", 1.0 - p)?;
    }
    writer.finish()?;
    std::fs::write(args.out.join("expected.tsv"), expected)?;
    println!("{} examples, expected scores in expected.tsv", args.rows);
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
