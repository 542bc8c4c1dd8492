//! The preprocessing artifacts: the vocabulary that train mode builds and
//! evaluate and predict modes load.
//!
//! Two files in the model folder:
//!
//! - `categorical-value-counts.csv`: header `feature,value,count,rank`, one row
//!   per vocabulary entry, in feature then rank order. `value` is the value's
//!   text; the missing value is the empty text. Values holding `,`, `"` or a
//!   line break are quoted, CSV style.
//! - `manifest.json`: the format and its version, rows read, minimum count,
//!   the missing-value policy, the out-of-vocabulary id, the vocabulary size
//!   per feature, the Example schema, and the CSV's size and CRC32C.
//!
//! Loading checks the format, the version and the checksum, and that the CSV
//! agrees with the manifest, so that altered or foreign artifacts are refused.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sparky_tfrecord::AtomicFile;

use crate::schema::{
    ID_FEATURE, LABEL_FEATURE, MISSING_INT, NUM_CAT, NUM_INT, OOV_ID, cat_feature_name, int_feature_name,
};
use crate::vocab::{ColumnVocab, Counts, Value, Vocabulary, text_cmp};

/// The `format` field of the manifest.
pub const FORMAT: &str = "sparky-criteo-artifacts";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// File name of the value counts.
pub const COUNTS_FILE: &str = "categorical-value-counts.csv";
/// File name of the manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The CSV header line.
pub const CSV_HEADER: &str = "feature,value,count,rank";

/// Why artifacts could not be written or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// A file is absent.
    #[error("no preprocessing artifacts in {}: {file} is missing (run criteo-prepare --mode train with this --model folder first)", dir.display())]
    Missing {
        /// The model folder.
        dir: PathBuf,
        /// The missing file.
        file: &'static str,
    },
    /// Artifacts exist where train mode would write.
    #[error("{} already holds preprocessing artifacts; pass --overwrite to replace them", dir.display())]
    Exists {
        /// The model folder.
        dir: PathBuf,
    },
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An atomic write failed.
    #[error(transparent)]
    Write(#[from] sparky_tfrecord::Error),
    /// The manifest is not the JSON this format expects.
    #[error("{}: not a valid artifact manifest: {source}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest belongs to another format.
    #[error("{}: format {found:?} is not {FORMAT:?}", path.display())]
    WrongFormat {
        /// The manifest.
        path: PathBuf,
        /// The format it names.
        found: String,
    },
    /// The manifest has another version.
    #[error("{}: artifacts of format version {found}; this build reads version {FORMAT_VERSION} (rerun criteo-prepare --mode train)", path.display())]
    WrongVersion {
        /// The manifest.
        path: PathBuf,
        /// The version it names.
        found: u32,
    },
    /// The CSV does not match the checksum in the manifest.
    #[error("{}: altered or damaged: its CRC32C is {found:#010x} and size {found_bytes} bytes, the manifest recorded {expected:#010x} and {expected_bytes} bytes", path.display())]
    Checksum {
        /// The CSV.
        path: PathBuf,
        /// Recorded CRC32C.
        expected: u32,
        /// Actual CRC32C.
        found: u32,
        /// Recorded size.
        expected_bytes: u64,
        /// Actual size.
        found_bytes: u64,
    },
    /// The CSV is malformed or inconsistent.
    #[error("{}:{line}: {what}", path.display())]
    Csv {
        /// The CSV.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        what: String,
    },
    /// The CSV and the manifest disagree.
    #[error("{}: {what}", path.display())]
    Inconsistent {
        /// The manifest.
        path: PathBuf,
        /// What disagrees.
        what: String,
    },
}

/// The Example schema, as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExampleSchema {
    /// Label feature of train and evaluate mode Examples.
    pub label: String,
    /// Row-number feature of predict mode Examples.
    pub id: String,
    /// Integer feature names.
    pub integer_features: Vec<String>,
    /// Categorical feature names (vocabulary ids).
    pub categorical_features: Vec<String>,
    /// Every feature's type.
    pub dtype: String,
    /// Values per feature.
    pub values_per_feature: u32,
}

impl Default for ExampleSchema {
    fn default() -> Self {
        Self {
            label: LABEL_FEATURE.into(),
            id: ID_FEATURE.into(),
            integer_features: (0..NUM_INT).map(int_feature_name).collect(),
            categorical_features: (0..NUM_CAT).map(cat_feature_name).collect(),
            dtype: "int64".into(),
            values_per_feature: 1,
        }
    }
}

/// Size and checksum of a file the manifest vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheck {
    /// File name, relative to the model folder.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// CRC32C of the whole file.
    pub crc32c: u32,
    /// Data rows (lines after the header).
    pub rows: u64,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written by this build.
    pub format_version: u32,
    /// The program that wrote it.
    pub created_by: String,
    /// Input rows counted into the vocabulary.
    pub rows_read: u64,
    /// Input lines rejected (with `--bad-lines skip`).
    pub rows_rejected: u64,
    /// Values seen fewer times are out of the vocabulary.
    pub min_count: u64,
    /// What a missing integer becomes.
    pub missing_integer: i64,
    /// How a missing categorical value is treated.
    pub missing_categorical: String,
    /// The id of values not in the vocabulary.
    pub oov_id: i64,
    /// Vocabulary size per categorical feature (ids 1..=size).
    pub vocabulary_sizes: BTreeMap<String, u64>,
    /// The Example schema criteo-prepare writes.
    pub example_schema: ExampleSchema,
    /// The value counts file.
    pub counts_csv: FileCheck,
}

/// Loaded artifacts: the manifest and the vocabulary.
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// The manifest as read.
    pub manifest: Manifest,
    /// The vocabulary rebuilt from the CSV.
    pub vocabulary: Vocabulary,
    /// CRC32C of `manifest.json`, identifying these artifacts.
    pub manifest_crc32c: u32,
}

/// Appends `value` to `out` as a CSV field, quoted when needed.
fn csv_field(out: &mut Vec<u8>, value: &[u8]) {
    if value.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        for &b in value {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(value);
    }
}

/// True when `dir` holds either artifact file.
#[must_use]
pub fn exist(dir: &Path) -> bool {
    dir.join(MANIFEST_FILE).exists() || dir.join(COUNTS_FILE).exists()
}

/// Renders the CSV of a vocabulary.
#[must_use]
pub fn render_csv(vocabulary: &Vocabulary) -> Vec<u8> {
    let total: usize = vocabulary.columns.iter().map(ColumnVocab::len).sum();
    let mut out = Vec::with_capacity(40 * total + 64);
    out.extend_from_slice(CSV_HEADER.as_bytes());
    out.push(b'\n');
    let mut text = Vec::new();
    let mut num = itoa::Buffer::new();
    for (c, col) in vocabulary.columns.iter().enumerate() {
        let name = cat_feature_name(c);
        for (i, (value, count)) in col.entries().iter().enumerate() {
            out.extend_from_slice(name.as_bytes());
            out.push(b',');
            text.clear();
            value.as_cat().write_text(&mut text);
            csv_field(&mut out, &text);
            out.push(b',');
            out.extend_from_slice(num.format(*count).as_bytes());
            out.push(b',');
            out.extend_from_slice(num.format(i + 1).as_bytes());
            out.push(b'\n');
        }
    }
    out
}

/// Writes both artifact files into `dir` (created if needed), atomically, the
/// manifest last. Returns the manifest written.
///
/// # Errors
/// [`ArtifactError::Exists`] when artifacts are there and `overwrite` is
/// false; I/O errors.
pub fn write(
    dir: &Path,
    vocabulary: &Vocabulary,
    rows_read: u64,
    rows_rejected: u64,
    min_count: u64,
    overwrite: bool,
) -> Result<Manifest, ArtifactError> {
    if exist(dir) && !overwrite {
        return Err(ArtifactError::Exists { dir: dir.to_path_buf() });
    }
    std::fs::create_dir_all(dir).map_err(|source| ArtifactError::Io { path: dir.to_path_buf(), source })?;
    let csv = render_csv(vocabulary);
    let rows = vocabulary.columns.iter().map(|c| c.len() as u64).sum();
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        created_by: format!("sparky-criteo {}", env!("CARGO_PKG_VERSION")),
        rows_read,
        rows_rejected,
        min_count,
        missing_integer: MISSING_INT,
        missing_categorical:
            "a category of its own, ranked with the other values; written as the empty value in the CSV".into(),
        oov_id: OOV_ID,
        vocabulary_sizes: vocabulary
            .columns
            .iter()
            .enumerate()
            .map(|(c, v)| (cat_feature_name(c), v.len() as u64))
            .collect(),
        example_schema: ExampleSchema::default(),
        counts_csv: FileCheck { file: COUNTS_FILE.into(), bytes: csv.len() as u64, crc32c: crc32c::crc32c(&csv), rows },
    };
    // A stale manifest must never vouch for a new CSV: remove it first.
    let manifest_path = dir.join(MANIFEST_FILE);
    if manifest_path.exists() {
        std::fs::remove_file(&manifest_path)
            .map_err(|source| ArtifactError::Io { path: manifest_path.clone(), source })?;
    }
    sparky_tfrecord::write_atomic(dir.join(COUNTS_FILE), &csv)?;
    let mut json = serde_json::to_vec_pretty(&manifest).expect("serialisable");
    json.push(b'\n');
    let mut f = AtomicFile::create(&manifest_path)?;
    f.write_all(&json).map_err(|source| ArtifactError::Io { path: manifest_path.clone(), source })?;
    f.commit()?;
    Ok(manifest)
}

/// Header of a partial counts file (see [`write_partial_counts`]).
pub const PARTIAL_HEADER: &str = "feature,value,count";

/// Writes the value counts of one shard of the input, for a later
/// [`merge_partial_counts`]: CSV with header `feature,value,count`, first two
/// pseudo-rows `__rows__,,N` and `__rejected__,,R`, then every (feature,
/// value, count) in feature then value order. The file is written atomically.
pub fn write_partial_counts(path: &Path, counts: &Counts, rejected: u64) -> Result<(), ArtifactError> {
    let mut out = Vec::new();
    out.extend_from_slice(PARTIAL_HEADER.as_bytes());
    out.extend_from_slice(format!("\n__rows__,,{}\n__rejected__,,{rejected}\n", counts.rows).as_bytes());
    let mut text = Vec::new();
    let mut num = itoa::Buffer::new();
    for (c, col) in counts.columns.iter().enumerate() {
        let name = cat_feature_name(c);
        let mut entries: Vec<_> = col.iter().collect();
        entries.sort_unstable_by(|a, b| text_cmp(a.0, b.0));
        for (value, n) in entries {
            out.extend_from_slice(name.as_bytes());
            out.push(b',');
            text.clear();
            value.write_text(&mut text);
            csv_field(&mut out, &text);
            out.push(b',');
            out.extend_from_slice(num.format(n).as_bytes());
            out.push(b'\n');
        }
    }
    sparky_tfrecord::write_atomic(path, &out)?;
    Ok(())
}

/// Reads a partial counts file: (counts, rejected lines).
pub fn read_partial_counts(path: &Path) -> Result<(Counts, u64), ArtifactError> {
    let data = std::fs::read(path).map_err(|source| ArtifactError::Io { path: path.to_path_buf(), source })?;
    let err = |line: u64, what: String| ArtifactError::Csv { path: path.to_path_buf(), line, what };
    let mut records = CsvRecords { data: &data, pos: 0, line: 1 };
    let mut fields = Vec::new();
    match records.next_record(&mut fields).map_err(|(l, w)| err(l, w))? {
        Some(_) if fields.join(&b","[..]) == PARTIAL_HEADER.as_bytes() => {}
        _ => return Err(err(1, format!("the first line must be the header {PARTIAL_HEADER:?}"))),
    }
    let names: Vec<String> = (0..NUM_CAT).map(cat_feature_name).collect();
    let mut counts = Counts::default();
    let mut rejected = 0;
    while let Some(line) = records.next_record(&mut fields).map_err(|(l, w)| err(l, w))? {
        if fields.len() != 3 {
            return Err(err(line, format!("{} fields, expected 3 (feature,value,count)", fields.len())));
        }
        let n = std::str::from_utf8(&fields[2])
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| err(line, "the count is not a non-negative integer".into()))?;
        match fields[0].as_slice() {
            b"__rows__" => counts.rows += n,
            b"__rejected__" => rejected += n,
            f => {
                let Some(c) = names.iter().position(|x| x.as_bytes() == f) else {
                    return Err(err(line, format!("unknown feature {:?}", String::from_utf8_lossy(f))));
                };
                counts.columns[c].add_n(Value::from_text(&fields[1]).as_cat(), n);
            }
        }
    }
    Ok((counts, rejected))
}

/// Merges partial counts files into the artifacts train mode would have
/// written for the whole input: the same CSV and manifest, byte for byte.
pub fn merge_partial_counts(
    files: &[PathBuf],
    dir: &Path,
    min_count: u64,
    overwrite: bool,
) -> Result<Manifest, ArtifactError> {
    if exist(dir) && !overwrite {
        return Err(ArtifactError::Exists { dir: dir.to_path_buf() });
    }
    let mut total = Counts::default();
    let mut rejected = 0;
    for f in files {
        let (c, r) = read_partial_counts(f)?;
        total = Counts::merged(total, c);
        rejected += r;
    }
    let vocab = Vocabulary::from_counts(&total, min_count);
    write(dir, &vocab, total.rows, rejected, min_count, overwrite)
}

/// Splits CSV text into records of fields, honouring quotes. Yields
/// (1-based line of the record's start, fields).
struct CsvRecords<'a> {
    data: &'a [u8],
    pos: usize,
    line: u64,
}

impl CsvRecords<'_> {
    fn next_record(&mut self, fields: &mut Vec<Vec<u8>>) -> Result<Option<u64>, (u64, String)> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        fields.clear();
        let start_line = self.line;
        let mut field = Vec::new();
        let mut quoted = false;
        let mut at_field_start = true;
        while self.pos < self.data.len() {
            let b = self.data[self.pos];
            self.pos += 1;
            if quoted {
                match b {
                    b'"' if self.data.get(self.pos) == Some(&b'"') => {
                        field.push(b'"');
                        self.pos += 1;
                    }
                    b'"' => {
                        quoted = false;
                        if !matches!(self.data.get(self.pos), None | Some(b',' | b'\n' | b'\r')) {
                            return Err((self.line, "text after a closing quote".into()));
                        }
                    }
                    b'\n' => {
                        self.line += 1;
                        field.push(b);
                    }
                    _ => field.push(b),
                }
                continue;
            }
            match b {
                b'"' if at_field_start => {
                    quoted = true;
                    at_field_start = false;
                }
                b',' => {
                    fields.push(std::mem::take(&mut field));
                    at_field_start = true;
                }
                b'\n' => {
                    self.line += 1;
                    fields.push(std::mem::take(&mut field));
                    return Ok(Some(start_line));
                }
                b'\r' if self.data.get(self.pos) == Some(&b'\n') => {}
                _ => {
                    field.push(b);
                    at_field_start = false;
                }
            }
        }
        if quoted {
            return Err((start_line, "unterminated quoted value".into()));
        }
        fields.push(field);
        Ok(Some(start_line))
    }
}

/// Parses the CSV into per-column (value, count) lists in rank order,
/// checking its structure.
fn parse_csv(path: &Path, data: &[u8]) -> Result<Vec<Vec<(Value, u64)>>, ArtifactError> {
    let err = |line: u64, what: String| ArtifactError::Csv { path: path.to_path_buf(), line, what };
    let mut records = CsvRecords { data, pos: 0, line: 1 };
    let mut fields = Vec::new();
    match records.next_record(&mut fields).map_err(|(l, w)| err(l, w))? {
        Some(_) if fields.len() == 4 && fields.join(&b","[..]) == CSV_HEADER.as_bytes() => {}
        _ => {
            return Err(err(1, format!("the first line must be the header {CSV_HEADER:?}")));
        }
    }
    let names: Vec<String> = (0..NUM_CAT).map(cat_feature_name).collect();
    let mut columns: Vec<Vec<(Value, u64)>> = vec![Vec::new(); NUM_CAT];
    let mut current = 0usize;
    while let Some(line) = records.next_record(&mut fields).map_err(|(l, w)| err(l, w))? {
        if fields.len() != 4 {
            return Err(err(line, format!("{} fields, expected 4 (feature,value,count,rank)", fields.len())));
        }
        let Some(c) = names.iter().position(|n| n.as_bytes() == fields[0].as_slice()) else {
            return Err(err(line, format!("unknown feature {:?}", String::from_utf8_lossy(&fields[0]))));
        };
        if c < current {
            return Err(err(
                line,
                format!("feature {} after {}: rows must be in feature order", names[c], names[current]),
            ));
        }
        current = c;
        let num = |f: &[u8], what: &str| -> Result<u64, ArtifactError> {
            std::str::from_utf8(f).ok().and_then(|s| s.parse::<u64>().ok()).ok_or_else(|| {
                err(line, format!("{what} {:?} is not a non-negative integer", String::from_utf8_lossy(f)))
            })
        };
        let count = num(&fields[2], "count")?;
        let rank = num(&fields[3], "rank")?;
        let col = &mut columns[c];
        if rank != col.len() as u64 + 1 {
            return Err(err(line, format!("rank {rank} of {}, expected {}", names[c], col.len() + 1)));
        }
        if count == 0 {
            return Err(err(line, "count 0".into()));
        }
        if let Some((_, prev)) = col.last()
            && *prev < count
        {
            return Err(err(line, format!("count {count} above the previous rank's {prev}: not in rank order")));
        }
        col.push((Value::from_text(&fields[1]), count));
    }
    Ok(columns)
}

/// The line of row `index` (0-based) of categorical column `c` in a CSV
/// that [`parse_csv`] accepted, for error messages.
fn line_of_row(data: &[u8], c: usize, index: usize) -> u64 {
    let name = cat_feature_name(c);
    let mut records = CsvRecords { data, pos: 0, line: 1 };
    let mut fields = Vec::new();
    let mut rows = 0;
    while let Ok(Some(line)) = records.next_record(&mut fields) {
        if fields.first().is_some_and(|f| f.as_slice() == name.as_bytes()) {
            if rows == index {
                return line;
            }
            rows += 1;
        }
    }
    0
}

/// Loads and checks the artifacts in `dir`.
///
/// # Errors
/// Missing files, another format or version, a checksum mismatch, a
/// malformed CSV, or a CSV that disagrees with the manifest.
pub fn load(dir: &Path) -> Result<Artifacts, ArtifactError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let csv_path = dir.join(COUNTS_FILE);
    for (p, file) in [(&manifest_path, MANIFEST_FILE), (&csv_path, COUNTS_FILE)] {
        if !p.exists() {
            return Err(ArtifactError::Missing { dir: dir.to_path_buf(), file });
        }
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ArtifactError::Io { path, source }
    };
    let json = std::fs::read(&manifest_path).map_err(io(&manifest_path))?;
    let csv = std::fs::read(&csv_path).map_err(io(&csv_path))?;
    from_bytes(dir, &json, &csv)
}

/// Reads and checks `manifest.json` of the artifacts in `dir` (format,
/// version, Example schema, missing-value policy) without reading the CSV:
/// enough to know the vocabulary sizes. Returns the manifest and the CRC32C
/// of its file. [`verify`] also checks the CSV's checksum; [`load`] builds
/// the vocabulary.
///
/// # Errors
/// A missing or unreadable manifest, another format or version, a schema or
/// policy other than this build's.
pub fn read_manifest(dir: &Path) -> Result<(Manifest, u32), ArtifactError> {
    let path = dir.join(MANIFEST_FILE);
    if !path.exists() {
        return Err(ArtifactError::Missing { dir: dir.to_path_buf(), file: MANIFEST_FILE });
    }
    let json = std::fs::read(&path).map_err(|source| ArtifactError::Io { path: path.clone(), source })?;
    Ok((manifest_from_bytes(dir, &json)?, crc32c::crc32c(&json)))
}

/// Checks the artifacts in `dir` as [`load`] does, but for the CSV only its
/// size and checksum, streamed: no vocabulary is built. For programs that
/// need the vocabulary sizes and a guarantee that the files are intact (the
/// trainer, the export writer), not the ids.
///
/// # Errors
/// As [`read_manifest`], and a missing CSV or one whose size or checksum
/// differs from the manifest's record.
pub fn verify(dir: &Path) -> Result<(Manifest, u32), ArtifactError> {
    let (manifest, crc) = read_manifest(dir)?;
    let csv_path = dir.join(COUNTS_FILE);
    if !csv_path.exists() {
        return Err(ArtifactError::Missing { dir: dir.to_path_buf(), file: COUNTS_FILE });
    }
    let io = |source| ArtifactError::Io { path: csv_path.clone(), source };
    let mut f = std::fs::File::open(&csv_path).map_err(io)?;
    let (mut found, mut bytes, mut lines) = (0u32, 0u64, 0u64);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        found = crc32c::crc32c_append(found, &buf[..n]);
        bytes += n as u64;
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
    check_csv(&csv_path, &manifest, bytes, found)?;
    // The sizes are what the caller takes on trust: they must at least add up
    // to the CSV's rows (a header line, then one line per value).
    let sizes = manifest.vocabulary_sizes.values().try_fold(0u64, |a, &b| a.checked_add(b));
    if lines.checked_sub(1) != Some(manifest.counts_csv.rows) || sizes != Some(manifest.counts_csv.rows) {
        return Err(ArtifactError::Inconsistent {
            path: dir.join(MANIFEST_FILE),
            what: format!(
                "the vocabulary sizes add up to {} and the manifest records {} CSV rows; the CSV has {lines} lines",
                sizes.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string()),
                manifest.counts_csv.rows
            ),
        });
    }
    Ok((manifest, crc))
}

impl Manifest {
    /// The vocabulary sizes of C1..C26, in feature order.
    ///
    /// # Errors
    /// A feature missing from `vocabulary_sizes` (names it).
    pub fn sizes_in_order(&self) -> Result<Vec<u64>, String> {
        (0..NUM_CAT)
            .map(|c| {
                let name = cat_feature_name(c);
                self.vocabulary_sizes.get(&name).copied().ok_or_else(|| format!("no vocabulary size for {name}"))
            })
            .collect()
    }
}

/// Parses and checks the bytes of `manifest.json` (see [`read_manifest`]).
fn manifest_from_bytes(dir: &Path, json: &[u8]) -> Result<Manifest, ArtifactError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    // Check the format and version before the rest of the structure, so that
    // a newer or foreign manifest gets the right message.
    let head: serde_json::Value = serde_json::from_slice(json)
        .map_err(|source| ArtifactError::Manifest { path: manifest_path.clone(), source })?;
    let format = head.get("format").and_then(serde_json::Value::as_str).unwrap_or_default();
    if format != FORMAT {
        return Err(ArtifactError::WrongFormat { path: manifest_path, found: format.to_string() });
    }
    let version = head.get("format_version").and_then(serde_json::Value::as_u64).unwrap_or(0);
    if version != u64::from(FORMAT_VERSION) {
        return Err(ArtifactError::WrongVersion {
            path: manifest_path,
            found: version.min(u64::from(u32::MAX)) as u32,
        });
    }
    let manifest: Manifest = serde_json::from_value(head)
        .map_err(|source| ArtifactError::Manifest { path: manifest_path.clone(), source })?;
    let inconsistent = |what: String| ArtifactError::Inconsistent { path: manifest_path.clone(), what };
    if manifest.example_schema != ExampleSchema::default() {
        return Err(inconsistent("the Example schema differs from the one this build writes".into()));
    }
    if manifest.oov_id != OOV_ID || manifest.missing_integer != MISSING_INT {
        return Err(inconsistent("the out-of-vocabulary id or the missing integer differs from this build's".into()));
    }
    Ok(manifest)
}

/// The CSV's size and checksum against the manifest's record.
fn check_csv(csv_path: &Path, manifest: &Manifest, bytes: u64, found: u32) -> Result<(), ArtifactError> {
    if found != manifest.counts_csv.crc32c || bytes != manifest.counts_csv.bytes {
        return Err(ArtifactError::Checksum {
            path: csv_path.to_path_buf(),
            expected: manifest.counts_csv.crc32c,
            found,
            expected_bytes: manifest.counts_csv.bytes,
            found_bytes: bytes,
        });
    }
    Ok(())
}

/// Checks and loads artifacts from the bytes of their two files; `dir`
/// names them in errors. [`load`] reads the files and calls this.
///
/// # Errors
/// As [`load`], but for missing files.
pub fn from_bytes(dir: &Path, json: &[u8], csv: &[u8]) -> Result<Artifacts, ArtifactError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let csv_path = dir.join(COUNTS_FILE);
    let manifest = manifest_from_bytes(dir, json)?;
    check_csv(&csv_path, &manifest, csv.len() as u64, crc32c::crc32c(csv))?;
    let columns = parse_csv(&csv_path, csv)?;
    let inconsistent = |what: String| ArtifactError::Inconsistent { path: manifest_path.clone(), what };
    for (c, col) in columns.iter().enumerate() {
        let name = cat_feature_name(c);
        let recorded = manifest.vocabulary_sizes.get(&name).copied();
        if recorded != Some(col.len() as u64) {
            return Err(inconsistent(format!(
                "{name}: the manifest records {recorded:?} values, the CSV holds {}",
                col.len()
            )));
        }
    }
    let columns: Vec<_> = {
        use rayon::prelude::*;
        columns.into_par_iter().map(ColumnVocab::try_from_ranked).collect()
    };
    let mut vocab_columns = Vec::with_capacity(NUM_CAT);
    for (c, col) in columns.into_iter().enumerate() {
        // A value listed twice would have two ranks but one id.
        vocab_columns.push(col.map_err(|(rank, first)| ArtifactError::Csv {
            path: csv_path.clone(),
            line: line_of_row(csv, c, rank as usize - 1),
            what: format!("{} at rank {rank} repeats the value of rank {first}", cat_feature_name(c)),
        })?);
    }
    let vocabulary = Vocabulary { columns: vocab_columns };
    Ok(Artifacts { manifest, vocabulary, manifest_crc32c: crc32c::crc32c(json) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Cat;
    use crate::vocab::Counts;

    fn sample_vocab() -> Vocabulary {
        let mut counts = Counts::default();
        counts.columns[0].add_n(Cat::Hex(0x68fd_1e64), 3);
        counts.columns[0].add_n(Cat::Missing, 2);
        counts.columns[0].add_n(Cat::Other(b"a,\"b\""), 2);
        counts.columns[25].add_n(Cat::Hex(1), 1);
        Vocabulary::from_counts(&counts, 1)
    }

    #[test]
    fn csv_layout() {
        let csv = String::from_utf8(render_csv(&sample_vocab())).unwrap();
        assert_eq!(
            csv,
            "feature,value,count,rank\n\
             categorical-feature-1,68fd1e64,3,1\n\
             categorical-feature-1,,2,2\n\
             categorical-feature-1,\"a,\"\"b\"\"\",2,3\n\
             categorical-feature-26,00000001,1,1\n"
        );
    }

    #[test]
    fn write_load_round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let vocab = sample_vocab();
        let m = write(dir.path(), &vocab, 7, 1, 1, false).unwrap();
        assert_eq!(m.vocabulary_sizes["categorical-feature-1"], 3);
        let a = load(dir.path()).unwrap();
        assert_eq!(a.manifest, m);
        for c in 0..NUM_CAT {
            assert_eq!(a.vocabulary.columns[c].entries(), vocab.columns[c].entries());
        }
        assert_eq!(a.vocabulary.columns[0].id(Cat::Other(b"a,\"b\"")), 3);

        // Train mode refuses to overwrite without being told.
        assert!(matches!(write(dir.path(), &vocab, 7, 1, 1, false), Err(ArtifactError::Exists { .. })));
        write(dir.path(), &vocab, 8, 0, 1, true).unwrap();

        // An altered CSV.
        let csv = dir.path().join(COUNTS_FILE);
        let text = std::fs::read_to_string(&csv).unwrap().replace(",3,1", ",4,1");
        std::fs::write(&csv, text).unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(matches!(e, ArtifactError::Checksum { .. }), "{e}");
        assert!(e.to_string().contains("altered"));

        // Another version.
        write(dir.path(), &vocab, 8, 0, 1, true).unwrap();
        let mpath = dir.path().join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&mpath).unwrap().replace("\"format_version\": 1", "\"format_version\": 2");
        std::fs::write(&mpath, text).unwrap();
        assert!(matches!(load(dir.path()), Err(ArtifactError::WrongVersion { found: 2, .. })));

        // Missing.
        std::fs::remove_file(&mpath).unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(matches!(e, ArtifactError::Missing { file: MANIFEST_FILE, .. }));
        assert!(e.to_string().contains("--mode train"));
    }

    /// Found by `fuzz/artifacts`: a CSV listing a value twice in one column
    /// loaded, the value taking the later rank's id and the earlier rank's id
    /// never given.
    #[test]
    fn fuzz_a_value_listed_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &sample_vocab(), 7, 0, 1, false).unwrap();
        let json = std::fs::read(dir.path().join(MANIFEST_FILE)).unwrap();
        let mut manifest: Manifest = serde_json::from_slice(&json).unwrap();
        let csv = "feature,value,count,rank\n\
                   categorical-feature-1,68fd1e64,3,1\n\
                   categorical-feature-1,,2,2\n\
                   categorical-feature-1,68fd1e64,2,3\n\
                   categorical-feature-26,00000001,1,1\n";
        manifest.counts_csv.bytes = csv.len() as u64;
        manifest.counts_csv.crc32c = crc32c::crc32c(csv.as_bytes());
        let json = serde_json::to_vec(&manifest).unwrap();
        let e = from_bytes(dir.path(), &json, csv.as_bytes()).unwrap_err();
        assert!(matches!(e, ArtifactError::Csv { line: 4, .. }), "{e}");
        assert!(e.to_string().contains("categorical-feature-1 at rank 3 repeats the value of rank 1"), "{e}");
    }

    #[test]
    fn verify_checks_the_files_without_building_the_vocabulary() {
        let dir = tempfile::tempdir().unwrap();
        let m = write(dir.path(), &sample_vocab(), 7, 0, 1, false).unwrap();
        let (checked, crc) = verify(dir.path()).unwrap();
        assert_eq!(checked, m);
        assert_eq!(crc, load(dir.path()).unwrap().manifest_crc32c);
        let mut sizes = vec![0; NUM_CAT];
        (sizes[0], sizes[25]) = (3, 1);
        assert_eq!(checked.sizes_in_order().unwrap(), sizes);

        // One byte of the CSV altered: read_manifest does not look, verify does.
        let csv = dir.path().join(COUNTS_FILE);
        let text = std::fs::read_to_string(&csv).unwrap().replace(",3,1", ",4,1");
        std::fs::write(&csv, text).unwrap();
        assert_eq!(read_manifest(dir.path()).unwrap().0, m);
        let e = verify(dir.path()).unwrap_err();
        assert!(matches!(e, ArtifactError::Checksum { .. }), "{e}");
        std::fs::remove_file(&csv).unwrap();
        assert!(matches!(verify(dir.path()), Err(ArtifactError::Missing { file: COUNTS_FILE, .. })));

        // Sizes that do not add up to the CSV's rows, with the checksums right.
        let m = write(dir.path(), &sample_vocab(), 7, 0, 1, true).unwrap();
        let mut bigger = m.clone();
        *bigger.vocabulary_sizes.get_mut("categorical-feature-2").unwrap() = 1 << 40;
        std::fs::write(dir.path().join(MANIFEST_FILE), serde_json::to_vec(&bigger).unwrap()).unwrap();
        let e = verify(dir.path()).unwrap_err();
        assert!(matches!(e, ArtifactError::Inconsistent { .. }), "{e}");

        // A manifest without a size for C26.
        let mut other = m.clone();
        other.vocabulary_sizes.remove("categorical-feature-26");
        assert!(other.sizes_in_order().unwrap_err().contains("categorical-feature-26"));
    }

    #[test]
    fn altered_manifest_sizes_are_caught() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &sample_vocab(), 7, 0, 1, false).unwrap();
        let mpath = dir.path().join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&mpath)
            .unwrap()
            .replace("\"categorical-feature-1\": 3", "\"categorical-feature-1\": 4");
        std::fs::write(&mpath, text).unwrap();
        let e = load(dir.path()).unwrap_err();
        assert!(matches!(e, ArtifactError::Inconsistent { .. }), "{e}");
    }

    #[test]
    fn partial_counts_merge_to_the_whole() {
        use crate::parse::parse_line;
        use crate::schema::Mode;
        let lines: Vec<String> = (0..200)
            .map(|i| {
                let mut f = vec![(i % 2).to_string()];
                f.extend((0..13).map(|j| ((i * j) % 7).to_string()));
                f.extend((0..26).map(|c| match (i + c) % 5 {
                    0 => String::new(),
                    1 => "x,\"y".to_string(),
                    k => format!("{:08x}", (i * 31 + c * 7 + k) % 11),
                }));
                f.join("\t")
            })
            .collect();
        let count = |ls: &[String]| {
            let mut c = Counts::default();
            for l in ls {
                c.add_row(&parse_line(l.as_bytes(), Mode::Train).unwrap());
            }
            c
        };
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("whole");
        write(&whole, &Vocabulary::from_counts(&count(&lines), 2), 200, 3, 2, false).unwrap();
        let mut files = Vec::new();
        for (k, shard) in lines.chunks(70).enumerate() {
            let f = dir.path().join(format!("counts-{k}.csv"));
            write_partial_counts(&f, &count(shard), u64::from(k == 1) * 3).unwrap();
            files.push(f);
        }
        let merged = dir.path().join("merged");
        merge_partial_counts(&files, &merged, 2, false).unwrap();
        for f in [COUNTS_FILE, MANIFEST_FILE] {
            assert_eq!(std::fs::read(whole.join(f)).unwrap(), std::fs::read(merged.join(f)).unwrap(), "{f}");
        }
    }

    #[test]
    fn csv_structure_errors_name_the_line() {
        let p = Path::new("x.csv");
        let e = parse_csv(p, b"feature,value,count,rank\ncategorical-feature-1,a,1,2\n").unwrap_err();
        assert_eq!(e.to_string(), "x.csv:2: rank 2 of categorical-feature-1, expected 1");
        let e = parse_csv(p, b"feature,value,count,rank\ncategorical-feature-1,a,1,1\ncategorical-feature-1,b,2,2\n")
            .unwrap_err();
        assert!(e.to_string().starts_with("x.csv:3: count 2 above"), "{e}");
        let e = parse_csv(p, b"nope\n").unwrap_err();
        assert!(e.to_string().contains("header"));
        let e = parse_csv(p, b"feature,value,count,rank\ncategorical-feature-1,\"a,1,1\n").unwrap_err();
        assert!(e.to_string().contains("unterminated"), "{e}");
    }
}
