//! `parse_line` on arbitrary bytes, in the labelled and unlabelled layouts.
//!
//! Asserts that it never panics, that its verdict (row or error, and which
//! error in which column) is the one a plain reference parser built on
//! `str::parse` gives, that an `Ok` row's values are what the fields say
//! (`Cat::Hex` only from 8 lowercase hex digits, `Cat::Other` keeps the
//! bytes), and that writing the row back out and parsing it again gives the
//! same row (semantically: an empty integer and a literal `-10` are both
//! `MISSING_INT`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparky_criteo::parse::{Cat, Row, RowErrorKind, parse_line};
use sparky_prepared::schema::{MISSING_INT, Mode, NUM_CAT, NUM_INT};

/// What a field should parse to, by the reference rules.
#[derive(Debug, PartialEq)]
enum Want<'a> {
    Label(bool),
    Int(i64),
    Cat(Cat<'a>),
}

/// The reference: split on tabs and use the standard library, field by field
/// in order (the first fault wins, as in the parser).
fn reference(line: &[u8], mode: Mode) -> Result<Vec<Want<'_>>, (Option<usize>, &'static str)> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err((None, "empty line"));
    }
    let labelled = mode.labelled();
    let first_cat = usize::from(labelled) + NUM_INT;
    let mut out = Vec::new();
    for (i, f) in line.split(|&b| b == b'\t').enumerate() {
        if i >= mode.fields() {
            return Err((None, "too many fields"));
        }
        let col = Some(i + 1);
        if labelled && i == 0 {
            match f {
                b"0" => out.push(Want::Label(false)),
                b"1" => out.push(Want::Label(true)),
                _ => return Err((col, "bad label")),
            }
        } else if i < first_cat {
            if f.is_empty() {
                out.push(Want::Int(MISSING_INT));
                continue;
            }
            let digits = f.strip_prefix(b"-").unwrap_or(f);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err((col, "not an integer"));
            }
            let s = std::str::from_utf8(f).expect("ASCII");
            match s.parse::<i64>() {
                Ok(v) => out.push(Want::Int(v)),
                Err(_) => return Err((col, "integer out of range")),
            }
        } else if f.is_empty() {
            out.push(Want::Cat(Cat::Missing));
        } else if f.len() == 8 && f.iter().all(|&b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            let v = u32::from_str_radix(std::str::from_utf8(f).expect("ASCII"), 16).expect("8 hex digits");
            out.push(Want::Cat(Cat::Hex(v)));
        } else if std::str::from_utf8(f).is_err() {
            return Err((col, "invalid UTF-8"));
        } else {
            out.push(Want::Cat(Cat::Other(f)));
        }
    }
    Ok(out)
}

/// Writes a row back as a TSV line: every field, integers as numbers.
fn serialise(row: &Row<'_>, out: &mut Vec<u8>) {
    out.clear();
    if let Some(l) = row.label {
        out.extend_from_slice(if l { b"1\t" } else { b"0\t" });
    }
    for v in row.ints {
        out.extend_from_slice(v.to_string().as_bytes());
        out.push(b'\t');
    }
    for (i, c) in row.cats.iter().enumerate() {
        c.write_text(out);
        if i + 1 < NUM_CAT {
            out.push(b'\t');
        }
    }
    // The parser drops one trailing `\r`: keep a value's own `\r`.
    if out.last() == Some(&b'\r') {
        out.push(b'\r');
    }
}

fn check(data: &[u8], mode: Mode) {
    let got = parse_line(data, mode);
    let want = reference(data, mode);
    match (&got, &want) {
        (Ok(row), Ok(fields)) => {
            assert_eq!(row.label.is_some(), mode.labelled());
            let first_int = usize::from(mode.labelled());
            for (i, w) in fields.iter().enumerate() {
                let have = if i < first_int {
                    Want::Label(row.label.expect("labelled"))
                } else if i < first_int + NUM_INT {
                    Want::Int(row.ints[i - first_int])
                } else {
                    Want::Cat(row.cats[i - first_int - NUM_INT])
                };
                assert_eq!(&have, w, "field {}", i + 1);
            }
            // Fields the line lacks are padded as missing.
            for i in fields.len()..mode.fields() {
                if i < first_int + NUM_INT {
                    assert_eq!(row.ints[i - first_int], MISSING_INT);
                } else {
                    assert_eq!(row.cats[i - first_int - NUM_INT], Cat::Missing);
                }
            }
            for c in &row.cats {
                match c {
                    Cat::Hex(v) => {
                        let mut t = Vec::new();
                        c.write_text(&mut t);
                        assert_eq!(t, format!("{v:08x}").into_bytes());
                    }
                    Cat::Other(b) => {
                        assert!(!b.is_empty() && !b.contains(&b'\t'));
                        assert!(std::str::from_utf8(b).is_ok());
                        let hex = b.len() == 8 && b.iter().all(|&x| matches!(x, b'0'..=b'9' | b'a'..=b'f'));
                        assert!(!hex, "8 lowercase hex digits must be Cat::Hex: {b:?}");
                    }
                    Cat::Missing => {}
                }
            }
            let mut line = Vec::new();
            serialise(row, &mut line);
            let again = parse_line(&line, mode).expect("a written row parses");
            assert_eq!(&again, row);
        }
        (Err(e), Err((column, reason))) => {
            assert_eq!(e.column, *column, "{e}");
            assert_eq!(e.reason(), *reason, "{e}");
            assert_eq!(e.labelled, mode.labelled());
            if let RowErrorKind::TooManyFields { found, expected } = e.kind {
                let stripped = data.strip_suffix(b"\r").unwrap_or(data);
                assert_eq!(found, stripped.iter().filter(|&&b| b == b'\t').count() + 1);
                assert_eq!(expected, mode.fields());
            }
            // Messages must render (column names index a table).
            let _ = e.to_string();
        }
        _ => panic!("parser {got:?}, reference {want:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    check(data, Mode::Train);
    check(data, Mode::Predict);
});
