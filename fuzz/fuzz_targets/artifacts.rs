//! Arbitrary bytes as preprocessing artifacts (`manifest.json` and the value
//! counts CSV) through `artifacts::from_bytes`.
//!
//! Input: one mode byte, then
//! - mode 0: a 2-byte little-endian manifest length, the manifest, the CSV;
//! - mode 1: the CSV alone; the harness writes a manifest that vouches for it
//!   (right size and CRC32C, vocabulary sizes counted loosely from the CSV's
//!   lines), so that the CSV parser and the consistency checks are reached;
//! - mode 2: as mode 1, with one vocabulary size off by one.
//!
//! Asserts that loading never panics, and that loaded artifacts are
//! coherent: the sizes the manifest records, counts positive and in rank
//! order, every value's id its rank, and the vocabulary written back out
//! (`render_csv`) loads again to the same entries.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sparky_criteo::artifacts::{self, Artifacts, render_csv};
use sparky_prepared::artifacts::{COUNTS_FILE, ExampleSchema, FORMAT, FORMAT_VERSION, FileCheck, Manifest};
use sparky_prepared::schema::{CAT_FEATURES, MISSING_INT, NUM_CAT, OOV_ID};

/// A manifest vouching for `csv`, with these vocabulary sizes.
fn manifest_for(csv: &[u8], sizes: &[u64; NUM_CAT]) -> Vec<u8> {
    let m = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        created_by: "sparky-fuzz".into(),
        rows_read: 1,
        rows_rejected: 0,
        min_count: 1,
        missing_integer: MISSING_INT,
        missing_categorical: "a category of its own".into(),
        oov_id: OOV_ID,
        vocabulary_sizes: (0..NUM_CAT).map(|c| (CAT_FEATURES[c].to_string(), sizes[c])).collect::<BTreeMap<_, _>>(),
        example_schema: ExampleSchema::default(),
        counts_csv: FileCheck {
            file: COUNTS_FILE.into(),
            bytes: csv.len() as u64,
            crc32c: crc32c::crc32c(csv),
            rows: sizes.iter().fold(0u64, |a, &b| a.wrapping_add(b)),
        },
    };
    serde_json::to_vec(&m).expect("serialisable")
}

/// Rows per feature, counted by line prefix (quoted line breaks fool it).
fn loose_sizes(csv: &[u8]) -> [u64; NUM_CAT] {
    let mut sizes = [0u64; NUM_CAT];
    for line in csv.split(|&b| b == b'\n') {
        let Some(name) = line.split(|&b| b == b',').next() else { continue };
        if let Some(n) = name.strip_prefix(b"categorical-feature-")
            && let Some(c) = std::str::from_utf8(n).ok().and_then(|s| s.parse::<usize>().ok())
            && (1..=NUM_CAT).contains(&c)
        {
            sizes[c - 1] += 1;
        }
    }
    sizes
}

fn check_loaded(a: &Artifacts, json: &[u8]) {
    assert_eq!(a.manifest_crc32c, crc32c::crc32c(json));
    assert_eq!(a.vocabulary.columns.len(), NUM_CAT);
    let mut sizes = [0u64; NUM_CAT];
    for (c, col) in a.vocabulary.columns.iter().enumerate() {
        sizes[c] = col.len() as u64;
        assert_eq!(a.manifest.vocabulary_sizes.get(CAT_FEATURES[c]), Some(&sizes[c]));
        let entries = col.entries();
        for (i, (value, count)) in entries.iter().enumerate() {
            assert!(*count > 0);
            if i > 0 {
                assert!(entries[i - 1].1 >= *count, "rank order");
            }
            assert_eq!(
                col.id(value.as_cat()),
                i as i64 + 1,
                "{}: the id of {value:?} is not its rank",
                CAT_FEATURES[c]
            );
        }
    }
    // Written back and loaded again: the same vocabulary.
    let csv = render_csv(&a.vocabulary);
    let json2 = manifest_for(&csv, &sizes);
    let b = artifacts::from_bytes(Path::new("again"), &json2, &csv).expect("rendered artifacts load");
    for c in 0..NUM_CAT {
        assert_eq!(a.vocabulary.columns[c].entries(), b.vocabulary.columns[c].entries());
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else { return };
    let dir = Path::new("model");
    match mode % 3 {
        0 => {
            let Some((len, rest)) = rest.split_first_chunk::<2>() else { return };
            let n = usize::from(u16::from_le_bytes(*len)).min(rest.len());
            let (json, csv) = rest.split_at(n);
            if let Ok(a) = artifacts::from_bytes(dir, json, csv) {
                check_loaded(&a, json);
            }
        }
        m => {
            let csv = rest;
            let mut sizes = loose_sizes(csv);
            if m == 2 {
                let c = csv.len() % NUM_CAT;
                sizes[c] = sizes[c].wrapping_add(if csv.len() % 2 == 0 { 1 } else { u64::MAX });
            }
            let json = manifest_for(csv, &sizes);
            match artifacts::from_bytes(dir, &json, csv) {
                Ok(a) => check_loaded(&a, &json),
                Err(e) => {
                    assert!(
                        !matches!(
                            e,
                            artifacts::ArtifactError::Checksum { .. } | artifacts::ArtifactError::Manifest { .. }
                        ),
                        "the harness's manifest was refused: {e}"
                    );
                    let _ = e.to_string();
                }
            }
        }
    }
});
