//! Parses Criteo TSV lines, counts the categorical values, ranks them into
//! per-feature vocabularies, writes the artifacts criteo-prepare writes, and
//! loads them back.

use sparky_criteo::artifacts;
use sparky_criteo::parse::parse_line;
use sparky_criteo::vocab::{Counts, Vocabulary};
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_prepared::schema::Mode;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 10,000 generated rows (never the real Criteo data in examples).
    let generator = Generator::new(GeneratorConfig::default());
    let mut tsv = Vec::new();
    sparky_datagen::generate(&generator, 0, 10_000, 2, &mut tsv)?;

    let mut counts = Counts::default();
    for line in tsv.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        counts.add_row(&parse_line(line, Mode::Train)?);
    }
    // Keep values seen at least twice; rarer ones get the out-of-vocabulary id 0.
    let vocab = Vocabulary::from_counts(&counts, 2);
    println!("vocabulary sizes C1..C26: {:?}", vocab.sizes());
    let (top, n) = &vocab.columns[0].entries()[0];
    println!("most frequent C1 value: {} ({n} times) has id 1", String::from_utf8_lossy(&top.text()));

    let dir = tempfile::tempdir()?;
    // Writers hold the folder's lock: two runs cannot write one vocabulary.
    let lock = sparky_io::DirLock::acquire(dir.path())?;
    let written = artifacts::write(&lock, &vocab, counts.rows, 0, 2, false)?;
    println!(
        "wrote {} ({} bytes) and {}",
        artifacts::COUNTS_FILE,
        written.manifest.counts_csv.bytes,
        artifacts::MANIFEST_FILE
    );
    let loaded = artifacts::load(dir.path())?;
    assert_eq!(loaded.vocabulary.sizes(), vocab.sizes());

    // Map a row to its ids, as criteo-prepare does.
    let first = tsv.split(|&b| b == b'\n').next().expect("a line");
    let row = parse_line(first, Mode::Train)?;
    let mut ids = [0i64; 26];
    loaded.vocabulary.ids(&row, &mut ids);
    println!("first row: label {:?}, integers {:?}, ids {:?}", row.label, row.ints, ids);
    Ok(())
}
