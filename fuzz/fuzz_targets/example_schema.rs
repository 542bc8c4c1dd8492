//! Arbitrary bytes through `Int64SchemaDecoder` with the 40 Criteo feature
//! names (train or predict layout), some of them optional, against prost.
//!
//! Input: one byte of settings (bit 0: predict names; bits 1..4: which names
//! are optional), then the Example's bytes.
//!
//! Asserts that decoding never panics; that when it succeeds prost decodes
//! the bytes too and every slot holds prost's value (absent optional slots
//! keep their old value and are reported absent); that when prost finds the
//! schema's features all present (or optional) with one int64 each, the
//! decoder succeeds (or answers `Unsupported`); that a `Missing` error names
//! a feature prost does not see either; and that the same decoder gives the
//! same answer on the same bytes twice.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use sparky_prepared::schema::{Mode, NUM_INT};
use sparky_tfrecord::example::{ExampleError, Int64SchemaDecoder};
use sparky_tfrecord::proto::{Example, Feature, feature::Kind};

/// A value no fuzzed Example is likely to hold, to see untouched slots.
const UNTOUCHED: i64 = 0x5a5a_5a5a_5a5a_5a5a;

/// What prost says a schema slot holds.
#[derive(Debug, PartialEq)]
enum Slot {
    Value(i64),
    Absent,
    Bad,
}

fn expected(map: &BTreeMap<String, Feature>, name: &str) -> Slot {
    match map.get(name).map(|f| &f.kind) {
        None => Slot::Absent,
        Some(Some(Kind::Int64List(l))) if l.value.len() == 1 => Slot::Value(l.value[0]),
        Some(_) => Slot::Bad,
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&settings, data)) = input.split_first() else { return };
    let mode = if settings & 1 == 1 { Mode::Predict } else { Mode::Train };
    let names = mode.feature_names();
    let optional: Vec<bool> = (0..names.len())
        .map(|i| match (settings >> 1) & 7 {
            0 => false,
            1 => i == 0,
            2 => (1..=NUM_INT).contains(&i),
            3 => i > NUM_INT,
            4 => true,
            5 => i % 2 == 1,
            6 => i == names.len() - 1,
            _ => i % 3 == 0,
        })
        .collect();
    let optional_names: Vec<&str> = names.iter().zip(&optional).filter(|(_, o)| **o).map(|(n, _)| *n).collect();
    let mut dec = Int64SchemaDecoder::new(&names).with_optional(&optional_names);
    assert_eq!(dec.names(), names.as_slice());

    let mut out = vec![UNTOUCHED; names.len()];
    let got = dec.decode(data, &mut out);
    let present: Vec<bool> = (0..names.len()).map(|i| dec.is_present(i)).collect();

    let prost = Example::decode(data);
    let map = match &prost {
        Ok(ex) => ex.features.as_ref().map(|f| f.feature.clone()).unwrap_or_default(),
        Err(_) => {
            assert!(got.is_err(), "decoded what prost refuses: {out:?}");
            BTreeMap::new()
        }
    };
    if prost.is_ok() {
        let slots: Vec<Slot> = names.iter().map(|n| expected(&map, n)).collect();
        let fine = slots.iter().zip(&optional).all(|(s, &o)| matches!(s, Slot::Value(_)) || (o && *s == Slot::Absent));
        match &got {
            Ok(()) => {
                assert!(fine, "decoded an Example prost says does not fit: {slots:?}");
                for (i, s) in slots.iter().enumerate() {
                    match s {
                        Slot::Value(v) => {
                            assert_eq!(out[i], *v, "{}", names[i]);
                            assert!(present[i], "{}", names[i]);
                        }
                        _ => {
                            assert_eq!(out[i], UNTOUCHED, "{}", names[i]);
                            assert!(!present[i], "{}", names[i]);
                        }
                    }
                }
            }
            Err(ExampleError::Unsupported { .. }) => {}
            Err(e) => {
                assert!(!fine, "refused an Example that fits the schema: {e}\n{slots:?}");
                if let ExampleError::Missing { name } = e {
                    let i = names.iter().position(|n| n == name).expect("a schema name");
                    assert_eq!(slots[i], Slot::Absent, "{name}");
                    assert!(!optional[i], "{name} is optional");
                }
            }
        }
    }
    if let Err(e) = &got {
        let _ = e.to_string();
    }

    // The same decoder again: the same answer, whatever state it kept.
    let mut again = vec![UNTOUCHED; names.len()];
    let second = dec.decode(data, &mut again);
    assert_eq!(second, got);
    if got.is_ok() {
        assert_eq!(again, out);
        assert_eq!((0..names.len()).map(|i| dec.is_present(i)).collect::<Vec<_>>(), present);
    }
});
