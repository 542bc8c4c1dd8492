//! Shared fixtures of sparky's criterion benchmarks: Criteo-shaped rows,
//! Examples and TFRecord files, generated (never the real Criteo data).

use sparky_criteo::parse::parse_line;
use sparky_criteo::vocab::{Counts, Vocabulary};
use sparky_datagen::{Generator, GeneratorConfig};
use sparky_prepared::schema::Mode;
use sparky_tfrecord::example::Int64ExampleEncoder;

/// `n` labelled TSV lines from the generator (seed 1), one buffer.
#[must_use]
pub fn tsv(n: u64) -> Vec<u8> {
    let generator = Generator::new(GeneratorConfig { seed: 1, ..GeneratorConfig::default() });
    let mut out = Vec::new();
    sparky_datagen::generate(&generator, 0, n, 2, &mut out).expect("writing to memory");
    out
}

/// The vocabulary of some TSV text.
#[must_use]
pub fn vocabulary(tsv: &[u8]) -> Vocabulary {
    let mut counts = Counts::default();
    for line in tsv.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        counts.add_row(&parse_line(line, Mode::Train).expect("generated lines parse"));
    }
    Vocabulary::from_counts(&counts, 1)
}

/// Prepared rows (label, 13 integers, 26 vocabulary ids) of some TSV text.
#[must_use]
pub fn prepared_rows(tsv: &[u8], vocab: &Vocabulary) -> Vec<[i64; 40]> {
    tsv.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let row = parse_line(line, Mode::Train).expect("generated lines parse");
            let mut v = [0i64; 40];
            v[0] = i64::from(row.label == Some(true));
            v[1..14].copy_from_slice(&row.ints);
            let ids: &mut [i64; 26] = (&mut v[14..]).try_into().expect("26");
            vocab.ids(&row, ids);
            v
        })
        .collect()
}

/// The encoded Examples of prepared rows, with the guide's feature names.
#[must_use]
pub fn examples(rows: &[[i64; 40]]) -> Vec<Vec<u8>> {
    let enc = Int64ExampleEncoder::new(&Mode::Train.feature_names());
    rows.iter()
        .map(|r| {
            let mut b = Vec::new();
            enc.encode(r, &mut b);
            b
        })
        .collect()
}

/// A TFRecord file's bytes holding `examples`.
#[must_use]
pub fn tfrecord_bytes(examples: &[Vec<u8>]) -> Vec<u8> {
    let mut w = sparky_tfrecord::RecordWriter::new(Vec::new());
    for e in examples {
        w.write_record(e).expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}
