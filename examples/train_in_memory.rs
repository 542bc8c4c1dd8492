//! Trains the linear classifier on rows held in memory (no files), on two
//! threads, and evaluates it on held-out rows.

use sparky_criteo::parse::parse_line;
use sparky_criteo::vocab::{Counts, Vocabulary};
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_linear::{
    CatEncoding, Evaluator, IntTransform, Layout, OptimizerConfig, OptimizerKind, SharedModel, Worker,
};
use sparky_prepared::schema::Mode;

/// (label, integers, vocabulary ids) of TSV text.
fn rows(tsv: &[u8], vocab: &Vocabulary) -> Vec<(bool, [i64; 13], [i64; 26])> {
    tsv.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let r = parse_line(l, Mode::Train).expect("generated lines parse");
            let mut ids = [0i64; 26];
            vocab.ids(&r, &mut ids);
            (r.label == Some(true), r.ints, ids)
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let generator = Generator::new(GeneratorConfig::default());
    let (mut train_tsv, mut eval_tsv) = (Vec::new(), Vec::new());
    sparky_datagen::generate(&generator, 0, 200_000, 2, &mut train_tsv)?;
    let eval_summary = sparky_datagen::generate(&generator, 200_000, 20_000, 2, &mut eval_tsv)?;

    let mut counts = Counts::default();
    for l in train_tsv.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        counts.add_row(&parse_line(l, Mode::Train)?);
    }
    let vocab = Vocabulary::from_counts(&counts, 1);
    let train = rows(&train_tsv, &vocab);
    let eval = rows(&eval_tsv, &vocab);

    let sizes = vocab.sizes();
    let layout = Layout::new(IntTransform::LogBuckets, CatEncoding::OneHot, &sizes)?;
    let shared = SharedModel::new(layout, OptimizerConfig::defaults(OptimizerKind::Ftrl).validate()?);
    // Two threads, each on half of the rows, updating the same weights.
    std::thread::scope(|s| {
        for half in train.chunks(train.len().div_ceil(2)) {
            let shared = &shared;
            s.spawn(move || {
                let mut worker = Worker::new(shared, 256);
                for (label, ints, ids) in half {
                    worker.train(ints, ids, *label);
                }
                worker.end_batch();
            });
        }
    });
    let model = shared.snapshot();
    let mut e = Evaluator::new();
    for (label, ints, ids) in &eval {
        e.add(model.logit(ints, ids), *label);
    }
    let m = e.finish();
    println!(
        "{} steps; eval log loss {:.4} (best achievable {:.4}), AUC {:.4}, {} of {} weights non-zero",
        shared.global_step(),
        m.log_loss,
        eval_summary.best_log_loss,
        m.auc,
        model.nonzero(),
        model.weights.len()
    );
    Ok(())
}
