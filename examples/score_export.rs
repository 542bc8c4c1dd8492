//! Writes an export (as criteo-train does), loads it back with every
//! checksum verified, and scores raw TSV lines in-process.

use std::collections::BTreeMap;

use sparky_criteo::artifacts;
use sparky_criteo::parse::parse_line;
use sparky_criteo::vocab::{Counts, Vocabulary};
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_export::ExportDir;
use sparky_io::DirLock;
use sparky_linear::{CatEncoding, IntTransform, Layout, OptimizerConfig, OptimizerKind, SharedModel, Worker};
use sparky_predict::RawScorer;
use sparky_prepared::schema::Mode;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let generator = Generator::new(GeneratorConfig::default());
    let mut tsv = Vec::new();
    sparky_datagen::generate(&generator, 0, 50_000, 2, &mut tsv)?;
    let lines: Vec<&[u8]> = tsv.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();

    // Artifacts and a quickly trained model.
    let mut counts = Counts::default();
    for l in &lines {
        counts.add_row(&parse_line(l, Mode::Train)?);
    }
    let vocab = Vocabulary::from_counts(&counts, 1);
    let artifacts = artifacts::write(&DirLock::acquire(&dir.path().join("model"))?, &vocab, counts.rows, 0, 1, false)?;
    let sizes = vocab.sizes();
    let shared = SharedModel::new(
        Layout::new(IntTransform::LogBuckets, CatEncoding::OneHot, &sizes)?,
        OptimizerConfig::defaults(OptimizerKind::Ftrl).validate()?,
    );
    let mut worker = Worker::new(&shared, 128);
    for l in &lines {
        let r = parse_line(l, Mode::Train)?;
        let mut ids = [0i64; 26];
        vocab.ids(&r, &mut ids);
        worker.train(&r.ints, &ids, r.label == Some(true));
    }
    worker.end_batch();

    // Export: weights, artifacts, SavedModel and manifest, renamed into place when complete.
    let job = DirLock::acquire(&dir.path().join("job"))?;
    let export =
        sparky_export::write_export(&job, &shared.snapshot(), &artifacts, shared.global_step(), BTreeMap::new(), None)?;
    println!("exported to {}", export.display());

    // Load it as criteo-predict does (a job folder finds its newest export) and score raw lines.
    let scorer = RawScorer::new(ExportDir::load(&dir.path().join("job"))?)?;
    for line in lines.iter().take(3) {
        // Drop the label: score_tsv takes the 39 fields of Kaggle's test.txt.
        let unlabelled = &line[line.iter().position(|&b| b == b'\t').expect("a tab") + 1..];
        println!("p(click) = {:.4}", scorer.score_tsv(unlabelled)?);
    }
    Ok(())
}
