//! The preprocessing artifacts' files: the contract between the run that
//! builds the vocabulary (criteo-prepare in train mode) and every reader.
//!
//! Two files in the model folder:
//!
//! - `categorical-value-counts.csv`: header `feature,value,count,rank`, one row
//!   per vocabulary entry, in feature then rank order (the guide's artifact;
//!   `sparky-criteo` writes it and rebuilds the vocabulary from it).
//! - `manifest.json`: the format and its version, rows read, minimum count,
//!   the missing-value policy, the out-of-vocabulary id, the vocabulary size
//!   per feature, the Example schema, and the CSV's size and CRC32C. It is
//!   written last: it is the commit point.
//!
//! This module reads and checks the manifest ([`read_manifest`]) and the
//! CSV's size and checksum ([`verify`]), without building the vocabulary:
//! what the trainer, the exporter and the predictor of prepared rows need.
//! The CRC32C of `manifest.json` identifies a set of artifacts: prepared
//! folders record it, so that data prepared with other artifacts is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::schema::{CAT_FEATURES, ID_FEATURE, INT_FEATURES, LABEL_FEATURE, MISSING_INT, NUM_CAT, OOV_ID};

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

/// Why artifacts could not be written, read or trusted.
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
    /// The model folder is not a folder.
    #[error("{}: the preprocessing artifacts' folder is not a folder", .0.display())]
    NotAFolder(PathBuf),
    /// Artifacts exist where train mode would write.
    #[error("{} already holds preprocessing artifacts; pass --overwrite to replace them", dir.display())]
    Exists {
        /// The model folder.
        dir: PathBuf,
    },
    /// Reading a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing, locking or committing failed.
    #[error(transparent)]
    Write(#[from] sparky_io::Error),
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
        /// The version it names, as written.
        found: String,
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
    /// The CSV and the manifest disagree, or the manifest is inconsistent.
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
            integer_features: INT_FEATURES.iter().map(|s| (*s).to_string()).collect(),
            categorical_features: CAT_FEATURES.iter().map(|s| (*s).to_string()).collect(),
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

impl Manifest {
    /// A manifest for these vocabulary sizes (C1..C26) and CSV, with this
    /// build's schema and policies.
    #[must_use]
    pub fn new(sizes: &[u64; NUM_CAT], rows_read: u64, rows_rejected: u64, min_count: u64, csv: &[u8]) -> Self {
        Self {
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
            vocabulary_sizes: CAT_FEATURES.iter().zip(sizes).map(|(n, &s)| ((*n).to_string(), s)).collect(),
            example_schema: ExampleSchema::default(),
            counts_csv: FileCheck {
                file: COUNTS_FILE.into(),
                bytes: csv.len() as u64,
                crc32c: crc32c::crc32c(csv),
                rows: sizes.iter().sum(),
            },
        }
    }

    /// The vocabulary sizes of C1..C26, in feature order (checked present
    /// when the manifest was read).
    #[must_use]
    pub fn sizes(&self) -> [u64; NUM_CAT] {
        std::array::from_fn(|c| self.vocabulary_sizes.get(CAT_FEATURES[c]).copied().unwrap_or(0))
    }

    /// The manifest's bytes as written to `manifest.json`.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec_pretty(self).unwrap_or_else(|_| unreachable!("plain data serialises"));
        json.push(b'\n');
        json
    }
}

/// Artifacts whose manifest was read and checked: enough to know the
/// vocabulary sizes and to identify the artifacts.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedArtifacts {
    /// The model folder.
    pub dir: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
    /// CRC32C of `manifest.json`, identifying these artifacts.
    pub manifest_crc32c: u32,
}

impl CheckedArtifacts {
    /// The vocabulary sizes of C1..C26.
    #[must_use]
    pub fn sizes(&self) -> [u64; NUM_CAT] {
        self.manifest.sizes()
    }
}

/// True when `dir` holds either artifact file.
#[must_use]
pub fn exist(dir: &Path) -> bool {
    dir.join(MANIFEST_FILE).exists() || dir.join(COUNTS_FILE).exists()
}

fn check_dir(dir: &Path) -> Result<(), ArtifactError> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(ArtifactError::NotAFolder(dir.to_path_buf())),
        _ => Ok(()),
    }
}

/// Reads a file of the artifacts, a missing one named as such.
fn read_file(dir: &Path, file: &'static str) -> Result<Vec<u8>, ArtifactError> {
    let path = dir.join(file);
    std::fs::read(&path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ArtifactError::Missing { dir: dir.to_path_buf(), file },
        _ => ArtifactError::Io { path, source },
    })
}

/// Reads and checks `manifest.json` of the artifacts in `dir` (format,
/// version, Example schema, missing-value policy, a size for every feature
/// that adds up to the CSV's rows) without reading the CSV.
///
/// # Errors
/// A missing or unreadable manifest, another format or version, a schema or
/// policy other than this build's.
pub fn read_manifest(dir: &Path) -> Result<CheckedArtifacts, ArtifactError> {
    check_dir(dir)?;
    let json = read_file(dir, MANIFEST_FILE)?;
    let manifest = manifest_from_bytes(dir, &json)?;
    Ok(CheckedArtifacts { dir: dir.to_path_buf(), manifest, manifest_crc32c: crc32c::crc32c(&json) })
}

/// Checks the artifacts in `dir`: the manifest as [`read_manifest`] does, and
/// the CSV's size, checksum and line count against the manifest's record,
/// streamed: no vocabulary is built.
///
/// # Errors
/// As [`read_manifest`], and a missing CSV or one whose size, checksum or
/// line count differs from the manifest's record.
pub fn verify(dir: &Path) -> Result<CheckedArtifacts, ArtifactError> {
    let checked = read_manifest(dir)?;
    let csv_path = dir.join(COUNTS_FILE);
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => ArtifactError::Missing { dir: dir.to_path_buf(), file: COUNTS_FILE },
        _ => ArtifactError::Io { path: csv_path.clone(), source },
    };
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
    check_csv(&csv_path, &checked.manifest, bytes, found)?;
    // A header line, then one line per value.
    if lines.checked_sub(1) != Some(checked.manifest.counts_csv.rows) {
        return Err(ArtifactError::Inconsistent {
            path: dir.join(MANIFEST_FILE),
            what: format!(
                "the manifest records {} CSV rows; the CSV has {lines} lines",
                checked.manifest.counts_csv.rows
            ),
        });
    }
    Ok(checked)
}

/// The CSV's size and checksum against the manifest's record.
///
/// # Errors
/// [`ArtifactError::Checksum`] when they differ.
pub fn check_csv(csv_path: &Path, manifest: &Manifest, bytes: u64, found: u32) -> Result<(), ArtifactError> {
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

/// How a `format_version` field was written, for messages: `1`, `"1"`, absent.
pub(crate) fn version_text(v: Option<&serde_json::Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => v.to_string(),
    }
}

/// Parses and checks the bytes of `manifest.json` of the artifacts in `dir`.
///
/// # Errors
/// As [`read_manifest`].
pub fn manifest_from_bytes(dir: &Path, json: &[u8]) -> Result<Manifest, ArtifactError> {
    let path = dir.join(MANIFEST_FILE);
    // Check the format and version before the rest of the structure, so that
    // a newer or foreign manifest gets the right message.
    let head: serde_json::Value =
        serde_json::from_slice(json).map_err(|source| ArtifactError::Manifest { path: path.clone(), source })?;
    let format = head.get("format").and_then(serde_json::Value::as_str).unwrap_or_default();
    if format != FORMAT {
        return Err(ArtifactError::WrongFormat { path, found: format.to_string() });
    }
    let version = head.get("format_version");
    if version.and_then(serde_json::Value::as_u64) != Some(u64::from(FORMAT_VERSION)) {
        return Err(ArtifactError::WrongVersion { path, found: version_text(version) });
    }
    let manifest: Manifest =
        serde_json::from_value(head).map_err(|source| ArtifactError::Manifest { path: path.clone(), source })?;
    let inconsistent = |what: String| ArtifactError::Inconsistent { path: path.clone(), what };
    if manifest.example_schema != ExampleSchema::default() {
        return Err(inconsistent("the Example schema differs from the one this build writes".into()));
    }
    if manifest.oov_id != OOV_ID || manifest.missing_integer != MISSING_INT {
        return Err(inconsistent("the out-of-vocabulary id or the missing integer differs from this build's".into()));
    }
    if let Some(name) = CAT_FEATURES.iter().find(|n| !manifest.vocabulary_sizes.contains_key(**n)) {
        return Err(inconsistent(format!("no vocabulary size for {name}")));
    }
    if let Some(name) = manifest.vocabulary_sizes.keys().find(|n| !CAT_FEATURES.contains(&n.as_str())) {
        return Err(inconsistent(format!("a vocabulary size for {name:?}, which is not a categorical feature")));
    }
    let total = manifest.vocabulary_sizes.values().try_fold(0u64, |a, &b| a.checked_add(b));
    if total != Some(manifest.counts_csv.rows) {
        return Err(inconsistent(format!(
            "the vocabulary sizes add up to {} and the manifest records {} CSV rows",
            total.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string()),
            manifest.counts_csv.rows
        )));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, sizes: &[u64; NUM_CAT]) -> Manifest {
        let mut csv = format!("{CSV_HEADER}\n");
        for (c, &n) in sizes.iter().enumerate() {
            for r in 1..=n {
                csv.push_str(&format!("{},{r:08x},{},{r}\n", CAT_FEATURES[c], 100 - r));
            }
        }
        let m = Manifest::new(sizes, 10, 0, 1, csv.as_bytes());
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(COUNTS_FILE), &csv).unwrap();
        std::fs::write(dir.join(MANIFEST_FILE), m.to_json()).unwrap();
        m
    }

    #[test]
    fn verify_checks_files_without_building_the_vocabulary() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut sizes = [0u64; NUM_CAT];
        (sizes[0], sizes[25]) = (3, 1);
        let m = write(dir, &sizes);
        let checked = verify(dir).unwrap();
        assert_eq!(checked.manifest, m);
        assert_eq!(checked.sizes(), sizes);
        assert_eq!(checked.manifest_crc32c, crc32c::crc32c(&std::fs::read(dir.join(MANIFEST_FILE)).unwrap()));

        // One byte of the CSV altered: read_manifest does not look, verify does.
        let csv = dir.join(COUNTS_FILE);
        let text = std::fs::read_to_string(&csv).unwrap().replace(",99,1", ",98,1");
        std::fs::write(&csv, text).unwrap();
        assert_eq!(read_manifest(dir).unwrap().manifest, m);
        let e = verify(dir).unwrap_err();
        assert!(matches!(e, ArtifactError::Checksum { .. }), "{e}");
        assert!(e.to_string().contains(COUNTS_FILE), "{e}");
        std::fs::remove_file(&csv).unwrap();
        assert!(matches!(verify(dir), Err(ArtifactError::Missing { file: COUNTS_FILE, .. })));

        // Sizes that do not add up to the CSV's rows.
        let m = write(dir, &sizes);
        let mut bigger = m.clone();
        *bigger.vocabulary_sizes.get_mut("categorical-feature-2").unwrap() = 1 << 40;
        std::fs::write(dir.join(MANIFEST_FILE), bigger.to_json()).unwrap();
        assert!(matches!(verify(dir), Err(ArtifactError::Inconsistent { .. })));

        // A manifest without a size for C26.
        let mut other = m.clone();
        other.vocabulary_sizes.remove("categorical-feature-26");
        std::fs::write(dir.join(MANIFEST_FILE), other.to_json()).unwrap();
        let e = read_manifest(dir).unwrap_err();
        assert!(e.to_string().contains("categorical-feature-26"), "{e}");
    }

    #[test]
    fn versions_formats_and_damage_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let m = write(dir, &[1; NUM_CAT]);
        let mpath = dir.join(MANIFEST_FILE);
        let json = String::from_utf8(m.to_json()).unwrap();
        std::fs::write(&mpath, json.replace("\"format_version\": 1", "\"format_version\": \"1\"")).unwrap();
        let e = read_manifest(dir).unwrap_err();
        assert!(e.to_string().contains("format version \"1\""), "{e}");
        std::fs::write(&mpath, json.replace("\"format_version\": 1", "\"format_version\": 2")).unwrap();
        assert!(matches!(read_manifest(dir), Err(ArtifactError::WrongVersion { .. })));
        std::fs::write(&mpath, json.replace(FORMAT, "other")).unwrap();
        assert!(matches!(read_manifest(dir), Err(ArtifactError::WrongFormat { .. })));
        std::fs::write(&mpath, &json[..json.len() / 2]).unwrap();
        let e = read_manifest(dir).unwrap_err();
        assert!(matches!(e, ArtifactError::Manifest { .. }), "{e}");
        assert!(e.to_string().contains(&mpath.display().to_string()), "{e}");
        // A file where the folder should be.
        let e = read_manifest(&mpath).unwrap_err();
        assert!(matches!(e, ArtifactError::NotAFolder(_)), "{e}");
        assert!(matches!(read_manifest(&dir.join("nope")), Err(ArtifactError::Missing { .. })));
    }
}
