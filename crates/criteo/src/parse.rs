//! Parsing one Criteo TSV line, without allocating.

use std::fmt;

use sparky_prepared::schema::{MISSING_INT, Mode, NUM_CAT, NUM_INT, column_name};

/// A categorical value as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cat<'a> {
    /// An empty field.
    Missing,
    /// Exactly 8 lowercase hex digits (every Criteo value), as a number.
    Hex(u32),
    /// Any other non-empty value, as its bytes (valid UTF-8).
    Other(&'a [u8]),
}

impl Cat<'_> {
    /// Appends the value's text to `out`: empty for missing, 8 lowercase hex
    /// digits for [`Cat::Hex`], the bytes for [`Cat::Other`].
    pub fn write_text(&self, out: &mut Vec<u8>) {
        match self {
            Cat::Missing => {}
            Cat::Hex(v) => out.extend_from_slice(&hex8(*v)),
            Cat::Other(b) => out.extend_from_slice(b),
        }
    }
}

/// The 8 lowercase hex digits of `v`.
#[must_use]
pub fn hex8(v: u32) -> [u8; 8] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 8];
    for (i, o) in out.iter_mut().enumerate() {
        *o = DIGITS[((v >> (28 - 4 * i)) & 0xf) as usize];
    }
    out
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<'a> {
    /// The label (train and evaluate), `None` in predict mode.
    pub label: Option<bool>,
    /// I1..I13, with [`MISSING_INT`] for empty fields.
    pub ints: [i64; NUM_INT],
    /// C1..C26.
    pub cats: [Cat<'a>; NUM_CAT],
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RowErrorKind {
    /// The line is empty.
    EmptyLine,
    /// More fields than the mode's layout has.
    TooManyFields {
        /// Fields found.
        found: usize,
        /// Fields expected.
        expected: usize,
    },
    /// The label is not `0` or `1`.
    BadLabel(String),
    /// An integer column holds something else.
    NotAnInteger(String),
    /// An integer column holds a number outside the 64-bit range.
    IntegerOutOfRange(String),
    /// A categorical value is not valid UTF-8.
    InvalidUtf8,
    /// A line whose layout is decided by its field count
    /// ([`parse_line_any`]) has neither 39 nor 40 fields.
    FieldCount {
        /// Fields found.
        found: usize,
    },
}

/// A malformed line: what is wrong, and in which column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RowError {
    /// The 1-based field number, when the fault is in one field.
    pub column: Option<usize>,
    /// What is wrong.
    pub kind: RowErrorKind,
    /// The mode the line was read in (for column names).
    pub labelled: bool,
}

/// Shows at most 40 characters of a field, escaped.
fn snippet(field: &[u8]) -> String {
    let s = String::from_utf8_lossy(&field[..field.len().min(40)]).into_owned();
    if field.len() > 40 { format!("{s}…") } else { s }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = self.column {
            // Column names follow the labelled layout; predict lines lack the label.
            let name = column_name(if self.labelled { c - 1 } else { c });
            write!(f, "column {c} ({name}): ")?;
        }
        match &self.kind {
            RowErrorKind::EmptyLine => write!(f, "empty line"),
            RowErrorKind::TooManyFields { found, expected } => {
                write!(f, "{found} tab-separated fields, expected {expected}")
            }
            RowErrorKind::BadLabel(s) => write!(f, "label must be 0 or 1, found {s:?}"),
            RowErrorKind::NotAnInteger(s) => write!(f, "not an integer: {s:?}"),
            RowErrorKind::IntegerOutOfRange(s) => {
                write!(f, "integer out of the 64-bit range: {s:?}")
            }
            RowErrorKind::InvalidUtf8 => write!(f, "value is not valid UTF-8"),
            RowErrorKind::FieldCount { found } => write!(
                f,
                "{found} tab-separated fields: a raw line has {} (unlabelled) or {} (label first)",
                Mode::Predict.fields(),
                Mode::Train.fields()
            ),
        }
    }
}

impl RowError {
    /// A short reason without the column, for summaries: `"not an integer"`.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self.kind {
            RowErrorKind::EmptyLine => "empty line",
            RowErrorKind::TooManyFields { .. } => "too many fields",
            RowErrorKind::BadLabel(_) => "bad label",
            RowErrorKind::NotAnInteger(_) => "not an integer",
            RowErrorKind::IntegerOutOfRange(_) => "integer out of range",
            RowErrorKind::InvalidUtf8 => "invalid UTF-8",
            RowErrorKind::FieldCount { .. } => "wrong number of fields",
        }
    }
}

const HEX_INVALID: u8 = 0xff;

const HEX_TABLE: [u8; 256] = {
    let mut t = [HEX_INVALID; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Parses exactly 8 lowercase hex digits.
#[inline]
pub(crate) fn parse_hex8(b: &[u8]) -> Option<u32> {
    if b.len() != 8 {
        return None;
    }
    let mut v = 0u32;
    let mut bad = 0u8;
    for &c in b {
        let d = HEX_TABLE[c as usize];
        bad |= d & 0xf0;
        v = (v << 4) | u32::from(d & 0x0f);
    }
    (bad == 0).then_some(v)
}

/// Parses one integer field as [`parse_line`] does: empty is missing
/// ([`MISSING_INT`]), otherwise `-?[0-9]+` within the 64-bit range.
///
/// # Errors
/// Anything else, with the value in the message.
#[inline]
pub fn parse_int_field(b: &[u8]) -> Result<i64, RowErrorKind> {
    if b.is_empty() { Ok(MISSING_INT) } else { parse_int(b) }
}

/// Parses one categorical field as [`parse_line`] does: empty is missing,
/// exactly 8 lowercase hex digits a number, anything else its text.
///
/// # Errors
/// A value that is not valid UTF-8.
#[inline]
pub fn parse_cat(b: &[u8]) -> Result<Cat<'_>, RowErrorKind> {
    if b.is_empty() {
        return Ok(Cat::Missing);
    }
    match parse_hex8(b) {
        Some(v) => Ok(Cat::Hex(v)),
        None if std::str::from_utf8(b).is_err() => Err(RowErrorKind::InvalidUtf8),
        None => Ok(Cat::Other(b)),
    }
}

/// Parses one raw line whose layout is not declared: 40 fields are a
/// labelled line, 39 an unlabelled one, decided line by line (a short line is
/// an error here, not padded: it could be either).
///
/// # Errors
/// Another field count, or a malformed field.
pub fn parse_line_any(line: &[u8]) -> Result<Row<'_>, RowError> {
    let trimmed = line.strip_suffix(b"\r").unwrap_or(line);
    let fields = memchr::memchr_iter(b'\t', trimmed).count() + 1;
    let mode = if fields == Mode::Train.fields() {
        Mode::Evaluate
    } else if fields == Mode::Predict.fields() {
        Mode::Predict
    } else if trimmed.is_empty() {
        return Err(RowError { column: None, kind: RowErrorKind::EmptyLine, labelled: false });
    } else {
        return Err(RowError { column: None, kind: RowErrorKind::FieldCount { found: fields }, labelled: false });
    };
    parse_line(line, mode)
}

/// Parses `-?[0-9]+` into an i64.
#[inline]
fn parse_int(b: &[u8]) -> Result<i64, RowErrorKind> {
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() {
        return Err(RowErrorKind::NotAnInteger(snippet(b)));
    }
    if digits.len() <= 18 {
        // Cannot overflow.
        let mut v: i64 = 0;
        for &c in digits {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return Err(RowErrorKind::NotAnInteger(snippet(b)));
            }
            v = v * 10 + i64::from(d);
        }
        return Ok(if neg { -v } else { v });
    }
    // Long: accumulate negatively so that i64::MIN fits.
    let mut v: i64 = 0;
    let mut overflow = false;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return Err(RowErrorKind::NotAnInteger(snippet(b)));
        }
        match v.checked_mul(10).and_then(|x| x.checked_sub(i64::from(d))) {
            Some(x) => v = x,
            None => overflow = true,
        }
    }
    if overflow {
        return Err(RowErrorKind::IntegerOutOfRange(snippet(b)));
    }
    if neg { Ok(v) } else { v.checked_neg().ok_or_else(|| RowErrorKind::IntegerOutOfRange(snippet(b))) }
}

/// Parses one line (without its `\n`; a trailing `\r` is dropped) in the
/// layout of `mode`: 40 fields with a label, or 39 without.
///
/// A line with fewer fields than the layout is padded with empty (missing)
/// fields: some public copies of the data strip trailing empty fields.
///
/// ```
/// use sparky_criteo::parse::{Cat, parse_line};
/// use sparky_prepared::schema::{MISSING_INT, Mode};
///
/// let line = b"1\t5\t\t3\t\t\t\t\t\t\t\t\t\t\t68fd1e64";
/// let row = parse_line(line, Mode::Train).unwrap();
/// assert_eq!(row.label, Some(true));
/// assert_eq!(row.ints[0], 5);
/// assert_eq!(row.ints[1], MISSING_INT);
/// assert_eq!(row.cats[0], Cat::Hex(0x68fd1e64));
/// assert_eq!(row.cats[1], Cat::Missing); // padded
/// ```
pub fn parse_line(line: &[u8], mode: Mode) -> Result<Row<'_>, RowError> {
    let labelled = mode.labelled();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let err = |column: Option<usize>, kind| RowError { column, kind, labelled };
    if line.is_empty() {
        return Err(err(None, RowErrorKind::EmptyLine));
    }
    let expected = mode.fields();
    let mut row = Row { label: None, ints: [MISSING_INT; NUM_INT], cats: [Cat::Missing; NUM_CAT] };
    let first_int = usize::from(labelled);
    let first_cat = first_int + NUM_INT;
    let mut start = 0usize;
    let mut field = 0usize;
    let mut tabs = memchr::memchr_iter(b'\t', line);
    loop {
        let end = tabs.next();
        let value = &line[start..end.unwrap_or(line.len())];
        if field >= expected {
            // This field, the one its tab opens (if any), one per tab left.
            let found = expected + 1 + usize::from(end.is_some()) + tabs.count();
            return Err(err(None, RowErrorKind::TooManyFields { found, expected }));
        }
        if field >= first_cat {
            if !value.is_empty() {
                row.cats[field - first_cat] = parse_cat(value).map_err(|k| err(Some(field + 1), k))?;
            }
        } else if field >= first_int {
            if !value.is_empty() {
                row.ints[field - first_int] = parse_int(value).map_err(|k| err(Some(field + 1), k))?;
            }
        } else {
            row.label = Some(match value {
                b"0" => false,
                b"1" => true,
                _ => return Err(err(Some(1), RowErrorKind::BadLabel(snippet(value)))),
            });
        }
        field += 1;
        match end {
            Some(e) => start = e + 1,
            None => break,
        }
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn line(fields: &[&str]) -> Vec<u8> {
        fields.join("\t").into_bytes()
    }

    #[test]
    fn full_lines_both_modes() {
        let mut f = vec!["0"];
        let ints: Vec<String> = (0..13).map(|i| (i * 7 - 3).to_string()).collect();
        f.extend(ints.iter().map(String::as_str));
        f.extend(["68fd1e64", "", "ABCDEF12", "x,\"y"]);
        f.extend(std::iter::repeat_n("00000000", 22));
        let l = line(&f);
        let row = parse_line(&l, Mode::Train).unwrap();
        assert_eq!(row.label, Some(false));
        assert_eq!(row.ints[0], -3);
        assert_eq!(row.ints[12], 81);
        assert_eq!(row.cats[0], Cat::Hex(0x68fd_1e64));
        assert_eq!(row.cats[1], Cat::Missing);
        assert_eq!(row.cats[2], Cat::Other(b"ABCDEF12"), "uppercase is kept as text");
        assert_eq!(row.cats[3], Cat::Other(b"x,\"y"));
        assert_eq!(row.cats[25], Cat::Hex(0));
        // Predict mode: the same without the label.
        let l = line(&f[1..]);
        let row = parse_line(&l, Mode::Predict).unwrap();
        assert_eq!(row.label, None);
        assert_eq!(row.ints[0], -3);
        assert_eq!(row.cats[0], Cat::Hex(0x68fd_1e64));
    }

    #[test]
    fn crlf_padding_and_errors() {
        let mut f: Vec<&str> = vec!["1"];
        f.extend(std::iter::repeat_n("", 39));
        let mut l = line(&f);
        l.extend_from_slice(b"\r");
        let row = parse_line(&l, Mode::Evaluate).unwrap();
        assert_eq!(row.label, Some(true));
        assert!(row.ints.iter().all(|&v| v == MISSING_INT));
        assert!(row.cats.iter().all(|&c| c == Cat::Missing));
        // Stripped trailing fields are padded.
        assert_eq!(
            parse_line(b"1\t2", Mode::Train).unwrap(),
            Row {
                ints: {
                    let mut i = [MISSING_INT; 13];
                    i[0] = 2;
                    i
                },
                ..row.clone()
            }
        );

        let e = parse_line(b"", Mode::Train).unwrap_err();
        assert_eq!(e.to_string(), "empty line");
        let mut long = f.clone();
        long.push("x");
        let e = parse_line(&line(&long), Mode::Train).unwrap_err();
        assert_eq!(e.to_string(), "41 tab-separated fields, expected 40");
        let e = parse_line(&line(&f), Mode::Predict).unwrap_err();
        assert_eq!(e.to_string(), "40 tab-separated fields, expected 39");
        let e = parse_line(b"2\t1", Mode::Train).unwrap_err();
        assert_eq!(e.to_string(), "column 1 (label): label must be 0 or 1, found \"2\"");
        let e = parse_line(b"\t1", Mode::Train).unwrap_err();
        assert_eq!(e.column, Some(1));
        let e = parse_line(b"0\t1\t1.5", Mode::Train).unwrap_err();
        assert_eq!(e.to_string(), "column 3 (I2): not an integer: \"1.5\"");
        let e = parse_line(b"1.5", Mode::Predict).unwrap_err();
        assert_eq!(e.to_string(), "column 1 (I1): not an integer: \"1.5\"");
        let e = parse_line(b"0\t99999999999999999999", Mode::Train).unwrap_err();
        assert_eq!(e.kind, RowErrorKind::IntegerOutOfRange("99999999999999999999".into()));
        let e = parse_line(b"0\t-", Mode::Train).unwrap_err();
        assert_eq!(e.kind, RowErrorKind::NotAnInteger("-".into()));
        let mut bad = line(&f[..14]);
        bad.extend_from_slice(b"\t\xff\xfe");
        let e = parse_line(&bad, Mode::Train).unwrap_err();
        assert_eq!(e.to_string(), "column 15 (C1): value is not valid UTF-8");
        assert_eq!(parse_line(b"0\t9223372036854775807", Mode::Train).unwrap().ints[0], i64::MAX);
        assert_eq!(parse_line(b"0\t-9223372036854775808", Mode::Train).unwrap().ints[0], i64::MIN);
        assert!(parse_line(b"0\t9223372036854775808", Mode::Train).is_err());
    }

    /// Found by `fuzz/tsv_row`: a line with two or more fields too many was
    /// reported with one field fewer than it has.
    #[test]
    fn fuzz_too_many_fields_counts_every_field() {
        for extra in 1..4 {
            for mode in [Mode::Train, Mode::Predict] {
                let found = mode.fields() + extra;
                let mut line = if mode.labelled() { b"0".to_vec() } else { Vec::new() };
                line.resize(line.len() + found - 1, b'\t');
                let e = parse_line(&line, mode).unwrap_err();
                assert_eq!(e.kind, RowErrorKind::TooManyFields { found, expected: mode.fields() }, "{mode}");
            }
        }
    }

    #[test]
    fn hex() {
        assert_eq!(parse_hex8(b"ffffffff"), Some(u32::MAX));
        assert_eq!(parse_hex8(b"0000000g"), None);
        assert_eq!(parse_hex8(b"FFFFFFFF"), None);
        assert_eq!(parse_hex8(b"fffffff"), None);
        assert_eq!(&hex8(0x0123_abcd), b"0123abcd");
    }

    proptest! {
        #[test]
        fn integers_round_trip(v: i64) {
            prop_assert_eq!(parse_int(v.to_string().as_bytes()), Ok(v));
        }

        #[test]
        fn hex_round_trips(v: u32) {
            prop_assert_eq!(parse_hex8(&hex8(v)), Some(v));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_line(&bytes, Mode::Train);
            let _ = parse_line(&bytes, Mode::Predict);
        }

        #[test]
        fn integer_field_agrees_with_std(s in "-?[0-9]{1,25}|[0-9a-z+-]{0,6}") {
            let line = format!("0\t{s}");
            let std_parse = s.parse::<i64>().ok().filter(|_| !s.starts_with('+'));
            match parse_line(line.as_bytes(), Mode::Train) {
                Ok(row) => prop_assert_eq!(Some(row.ints[0]), std_parse.or(s.is_empty().then_some(MISSING_INT))),
                Err(_) => prop_assert!(std_parse.is_none()),
            }
        }
    }

    #[test]
    fn layout_by_field_count_and_single_fields() {
        let mut f = vec!["1"];
        f.extend(std::iter::repeat_n("2", 13));
        f.extend(std::iter::repeat_n("0000000a", 26));
        let labelled = line(&f);
        let unlabelled = line(&f[1..]);
        assert_eq!(parse_line_any(&labelled).unwrap().label, Some(true));
        let row = parse_line_any(&unlabelled).unwrap();
        assert_eq!((row.label, row.ints[0], row.cats[25]), (None, 2, Cat::Hex(10)));
        let short = line(&f[..20]);
        let e = parse_line_any(&short).unwrap_err();
        assert_eq!(e.kind, RowErrorKind::FieldCount { found: 20 });
        assert!(e.to_string().contains("39 (unlabelled) or 40"), "{e}");
        assert_eq!(parse_line_any(b"").unwrap_err().kind, RowErrorKind::EmptyLine);
        assert_eq!(parse_int_field(b""), Ok(MISSING_INT));
        assert_eq!(parse_int_field(b"-3"), Ok(-3));
        assert!(parse_int_field(b"x").is_err());
        assert_eq!(parse_cat(b""), Ok(Cat::Missing));
        assert_eq!(parse_cat(b"68fd1e64"), Ok(Cat::Hex(0x68fd_1e64)));
        assert_eq!(parse_cat(b"68FD1E64"), Ok(Cat::Other(b"68FD1E64")));
        assert_eq!(parse_cat(b"\xff"), Err(RowErrorKind::InvalidUtf8));
    }
}
