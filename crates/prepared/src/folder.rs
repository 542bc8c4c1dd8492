//! The prepared folder: what criteo-prepare records in `_prepare.json`, and
//! [`PreparedDir::open`], which checks that a folder holds exactly that.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sparky_io::SUCCESS_FILE;
use sparky_tfrecord::Compression;

use crate::artifacts::{ArtifactError, CheckedArtifacts, version_text};
use crate::schema::Mode;

/// File name of the job record in a prepared folder.
pub const PREPARED_FILE: &str = "_prepare.json";
/// The rejected-lines report (with `--bad-lines skip`).
pub const REJECTS_FILE: &str = "_rejects";
/// The `format` of `_prepare.json`.
pub const PREPARED_FORMAT: &str = "sparky-criteo-prepared";
/// The `format_version` of `_prepare.json` this build writes and reads.
pub const PREPARED_VERSION: u32 = 1;

/// Output container of a prepare run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartFormat {
    /// TFRecord files of `tf.train.Example`.
    Tfrecord,
    /// Parquet files with one required INT64 column per feature.
    Parquet,
}

/// Output compression of a prepare run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartCompression {
    /// Plain files.
    None,
    /// GZIP: a whole-file gzip stream for TFRecord (`.gz` names), the GZIP
    /// codec inside Parquet.
    Gzip,
}

/// One part, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    /// File name within the folder.
    pub file: String,
    /// Rows (Examples) in it.
    pub rows: u64,
    /// Bytes on disk.
    pub bytes: u64,
}

/// Where the artifacts a prepared folder used are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// The model folder, as an absolute path when it was written.
    pub dir: PathBuf,
    /// CRC32C of its `manifest.json`.
    pub manifest_crc32c: u32,
}

/// `_prepare.json`: what a prepare run wrote, for the tools that read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreparedManifest {
    /// Always [`PREPARED_FORMAT`].
    pub format: String,
    /// [`PREPARED_VERSION`].
    pub format_version: u32,
    /// The program that wrote it.
    pub created_by: String,
    /// The mode of the run.
    pub mode: Mode,
    /// The artifacts used.
    pub artifacts: ArtifactRef,
    /// The inputs, as given.
    pub inputs: Vec<String>,
    /// Input lines.
    pub lines: u64,
    /// Rows written.
    pub rows: u64,
    /// Lines rejected.
    pub rejected: u64,
    /// Global number of the first line.
    pub first_line: u64,
    /// Output container.
    pub output_format: PartFormat,
    /// Output compression.
    pub compression: PartCompression,
    /// The parts, in order.
    pub parts: Vec<PartInfo>,
}

impl PreparedManifest {
    /// The manifest's bytes as written to `_prepare.json`.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec_pretty(self).unwrap_or_else(|_| unreachable!("plain data serialises"));
        json.push(b'\n');
        json
    }

    /// Parses and checks `_prepare.json`'s bytes; `path` names it in errors.
    ///
    /// # Errors
    /// Not JSON, another format or version, a missing or mistyped field, a
    /// part name that is not a plain `part-*` file name, or rows that do not
    /// add up.
    pub fn from_bytes(path: &Path, json: &[u8]) -> Result<Self, PreparedError> {
        let bad = |what: String| PreparedError::BadManifest { path: path.to_path_buf(), what };
        let head: serde_json::Value = serde_json::from_slice(json)
            .map_err(|source| PreparedError::ManifestJson { path: path.to_path_buf(), source })?;
        let format = head.get("format").and_then(serde_json::Value::as_str).unwrap_or_default();
        if format != PREPARED_FORMAT {
            return Err(bad(format!("format {format:?} is not {PREPARED_FORMAT:?}")));
        }
        let version = head.get("format_version");
        if version.and_then(serde_json::Value::as_u64) != Some(u64::from(PREPARED_VERSION)) {
            return Err(bad(format!(
                "format version {}; this build reads version {PREPARED_VERSION}",
                version_text(version)
            )));
        }
        let m: PreparedManifest = serde_json::from_value(head)
            .map_err(|source| PreparedError::ManifestJson { path: path.to_path_buf(), source })?;
        for p in &m.parts {
            if !p.file.starts_with("part-") || p.file.contains(['/', '\\']) {
                return Err(bad(format!("part name {:?} is not a part-* file name", p.file)));
            }
        }
        let rows = m.parts.iter().try_fold(0u64, |a, p| a.checked_add(p.rows));
        if rows != Some(m.rows) {
            return Err(bad(format!("the parts' rows do not add up to the {} rows recorded", m.rows)));
        }
        Ok(m)
    }
}

/// Why a prepared folder cannot be read as complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PreparedError {
    /// Reading the folder or a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The path is not a folder.
    #[error("{}: not a folder of prepared data", .0.display())]
    NotAFolder(PathBuf),
    /// `_prepare.json` is missing.
    #[error("{}: no {PREPARED_FILE}: not a folder criteo-prepare completed (pass --allow-incomplete to read the part-* files present anyway)", .0.display())]
    NoManifest(PathBuf),
    /// `_prepare.json` is not valid JSON or lacks a field.
    #[error("{}: damaged: {source}", path.display())]
    ManifestJson {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// `_prepare.json` is of another format or version, or inconsistent.
    #[error("{}: {what}", path.display())]
    BadManifest {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// `_SUCCESS` is missing: the run that wrote the folder did not finish.
    #[error("{}: no {SUCCESS_FILE}: the prepare run that wrote this folder did not finish (rerun it; --allow-incomplete reads the parts present anyway)", .0.display())]
    Incomplete(PathBuf),
    /// A part `_prepare.json` lists is absent.
    #[error("{}: {part} is listed in {PREPARED_FILE} but missing (the folder was altered after criteo-prepare; --allow-incomplete reads what is present)", dir.display())]
    MissingPart {
        /// The folder.
        dir: PathBuf,
        /// The part's file name.
        part: String,
    },
    /// A `part-*` file that `_prepare.json` does not list.
    #[error("{}: not written by the prepare run of this folder ({PREPARED_FILE} does not list it); remove it, or pass --allow-incomplete", path.display())]
    UnlistedPart {
        /// The file.
        path: PathBuf,
    },
    /// A part whose size differs from the record.
    #[error("{}: {found} bytes, {PREPARED_FILE} recorded {recorded}: truncated or altered", path.display())]
    PartSize {
        /// The file.
        path: PathBuf,
        /// Bytes recorded.
        recorded: u64,
        /// Bytes found.
        found: u64,
    },
    /// A `part-*` entry that is not a regular file.
    #[error("{}: a part-* entry that is not a file ({what})", path.display())]
    PartNotAFile {
        /// The entry.
        path: PathBuf,
        /// What it is.
        what: &'static str,
    },
    /// No parts at all.
    #[error("{}: no part-* files to read (run criteo-prepare first)", .0.display())]
    NoParts(PathBuf),
    /// The folder was prepared in a mode the caller cannot use.
    #[error("{}: prepared in {found} mode; {expected}", dir.display())]
    WrongMode {
        /// The folder.
        dir: PathBuf,
        /// Its mode.
        found: Mode,
        /// What the caller needs, in words.
        expected: &'static str,
    },
    /// The folder was prepared with other artifacts than the caller's.
    #[error("{}: prepared with other artifacts than those in {} ({PREPARED_FILE} names {}, whose manifest had CRC32C {recorded:#010x}; these have {found:#010x}); prepare the data again with --model {}", dir.display(), artifacts.display(), recorded_dir.display(), artifacts.display())]
    OtherArtifacts {
        /// The prepared folder.
        dir: PathBuf,
        /// The artifacts the caller uses.
        artifacts: PathBuf,
        /// The artifacts the folder was prepared with.
        recorded_dir: PathBuf,
        /// Their recorded manifest CRC32C.
        recorded: u32,
        /// The caller's manifest CRC32C.
        found: u32,
    },
    /// The artifacts `_prepare.json` names cannot be used.
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
    /// Files given one by one lie in different folders.
    #[error("{} and {}: parts of one input must lie in one prepared folder", a.display(), b.display())]
    MixedFolders {
        /// One folder.
        a: PathBuf,
        /// Another.
        b: PathBuf,
    },
}

/// How strictly [`PreparedDir::open`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenOptions {
    /// Read the `part-*` files present even when the folder is not a complete
    /// prepare run's (no `_prepare.json` or `_SUCCESS`, parts missing, extra
    /// or of another size). Rows are then not checked against a record.
    pub allow_incomplete: bool,
}

/// What a part holds on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// TFRecords, with this whole-file compression.
    Tfrecord(Compression),
    /// Parquet.
    Parquet,
}

/// A part to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The file.
    pub path: PathBuf,
    /// Its size on disk.
    pub bytes: u64,
    /// The rows `_prepare.json` recorded for it, when there is a record.
    pub rows: Option<u64>,
    /// What it holds.
    pub kind: PartKind,
}

impl Part {
    fn new(path: PathBuf, bytes: u64, rows: Option<u64>) -> Self {
        let kind = if path.extension().is_some_and(|e| e == "parquet") {
            PartKind::Parquet
        } else {
            PartKind::Tfrecord(Compression::from_path(&path))
        };
        Self { path, bytes, rows, kind }
    }
}

/// A prepared folder (or some of its parts) whose contents were checked
/// against what criteo-prepare recorded.
#[derive(Debug, Clone)]
pub struct PreparedDir {
    dir: PathBuf,
    manifest: Option<PreparedManifest>,
    parts: Vec<Part>,
}

/// A `part-*` entry of a folder: (name, path, size).
fn part_entries(dir: &Path) -> Result<Vec<(String, PathBuf, u64)>, PreparedError> {
    let io = |source| PreparedError::Io { path: dir.to_path_buf(), source };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("part-") {
            continue; // markers, hidden and temporary files
        }
        let path = entry.path();
        let meta = std::fs::metadata(&path).map_err(|source| PreparedError::Io { path: path.clone(), source })?;
        if !meta.is_file() {
            let what = if meta.is_dir() { "a folder" } else { "a device, pipe or socket" };
            return Err(PreparedError::PartNotAFile { path, what });
        }
        out.push((name, path, meta.len()));
    }
    out.sort();
    Ok(out)
}

impl PreparedDir {
    /// Opens a prepared folder and checks it: `_prepare.json` readable and of
    /// this format, `_SUCCESS` present, and the `part-*` files exactly those
    /// `_prepare.json` lists, each of its recorded size. With
    /// [`OpenOptions::allow_incomplete`] only the parts' presence and kind
    /// are required.
    ///
    /// # Errors
    /// See [`PreparedError`]: each names the folder or file.
    pub fn open(dir: &Path, opts: OpenOptions) -> Result<Self, PreparedError> {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(PreparedError::NotAFolder(dir.to_path_buf())),
            Err(source) => return Err(PreparedError::Io { path: dir.to_path_buf(), source }),
        }
        let entries = part_entries(dir)?;
        let manifest = Self::read_manifest(dir, opts)?;
        let mut parts = Vec::new();
        match &manifest {
            Some(m) => {
                for info in &m.parts {
                    match entries.iter().find(|(n, _, _)| *n == info.file) {
                        Some((_, path, bytes)) if *bytes == info.bytes => {
                            parts.push(Part::new(path.clone(), *bytes, Some(info.rows)));
                        }
                        Some((_, path, bytes)) if !opts.allow_incomplete => {
                            return Err(PreparedError::PartSize {
                                path: path.clone(),
                                recorded: info.bytes,
                                found: *bytes,
                            });
                        }
                        Some((_, path, bytes)) => parts.push(Part::new(path.clone(), *bytes, None)),
                        None if !opts.allow_incomplete => {
                            return Err(PreparedError::MissingPart { dir: dir.to_path_buf(), part: info.file.clone() });
                        }
                        None => {}
                    }
                }
                for (name, path, bytes) in &entries {
                    if !m.parts.iter().any(|p| p.file == *name) {
                        if !opts.allow_incomplete {
                            return Err(PreparedError::UnlistedPart { path: path.clone() });
                        }
                        parts.push(Part::new(path.clone(), *bytes, None));
                    }
                }
            }
            None => parts.extend(entries.into_iter().map(|(_, p, b)| Part::new(p, b, None))),
        }
        if parts.is_empty() && manifest.as_ref().is_none_or(|m| !m.parts.is_empty()) {
            return Err(PreparedError::NoParts(dir.to_path_buf()));
        }
        Ok(Self { dir: dir.to_path_buf(), manifest, parts })
    }

    /// Opens the given part files of one prepared folder: each must be listed
    /// in the folder's `_prepare.json` with its size (a chosen subset, as a
    /// glob selects), and the folder complete, as [`open`](Self::open)
    /// checks.
    ///
    /// # Errors
    /// As [`open`](Self::open); files of several folders.
    pub fn open_files(files: &[PathBuf], opts: OpenOptions) -> Result<Self, PreparedError> {
        let folder = |p: &Path| p.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let Some(first) = files.first() else { return Err(PreparedError::NoParts(PathBuf::from("."))) };
        let dir = folder(first);
        for f in files {
            let d = folder(f);
            if d != dir {
                return Err(PreparedError::MixedFolders { a: dir, b: d });
            }
        }
        let whole = Self::open(&dir, OpenOptions { allow_incomplete: true })?;
        let strict = !opts.allow_incomplete;
        if strict {
            // The folder itself must be complete; the selection may be partial.
            Self::read_manifest(&dir, opts)?;
        }
        let mut parts = Vec::with_capacity(files.len());
        for f in files {
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            match whole.parts.iter().find(|p| p.path.file_name() == f.file_name()) {
                Some(p) if p.rows.is_some() || !strict => parts.push(p.clone()),
                Some(p) => {
                    let recorded = whole.manifest.as_ref().and_then(|m| m.parts.iter().find(|i| i.file == name));
                    return Err(match recorded {
                        Some(info) => {
                            PreparedError::PartSize { path: p.path.clone(), recorded: info.bytes, found: p.bytes }
                        }
                        None => PreparedError::UnlistedPart { path: p.path.clone() },
                    });
                }
                None => {
                    let meta = std::fs::metadata(f).map_err(|source| PreparedError::Io { path: f.clone(), source })?;
                    let what = if meta.is_dir() { "a folder" } else { "not a part-* file" };
                    return Err(PreparedError::PartNotAFile { path: f.clone(), what });
                }
            }
        }
        Ok(Self { dir, manifest: whole.manifest, parts })
    }

    /// Reads `_prepare.json` and checks `_SUCCESS` (see [`open`](Self::open)).
    fn read_manifest(dir: &Path, opts: OpenOptions) -> Result<Option<PreparedManifest>, PreparedError> {
        let path = dir.join(PREPARED_FILE);
        let manifest = match std::fs::read(&path) {
            Ok(json) => Some(PreparedManifest::from_bytes(&path, &json)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !opts.allow_incomplete {
                    return Err(PreparedError::NoManifest(dir.to_path_buf()));
                }
                None
            }
            Err(source) => return Err(PreparedError::Io { path, source }),
        };
        if !opts.allow_incomplete && !dir.join(SUCCESS_FILE).is_file() {
            return Err(PreparedError::Incomplete(dir.to_path_buf()));
        }
        Ok(manifest)
    }

    /// The folder.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What criteo-prepare recorded, when there is a record.
    #[must_use]
    pub fn manifest(&self) -> Option<&PreparedManifest> {
        self.manifest.as_ref()
    }

    /// The mode the data was prepared in, when recorded.
    #[must_use]
    pub fn mode(&self) -> Option<Mode> {
        self.manifest.as_ref().map(|m| m.mode)
    }

    /// The parts to read, in order.
    #[must_use]
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The rows recorded for all the parts to read, when every one has a record.
    #[must_use]
    pub fn recorded_rows(&self) -> Option<u64> {
        self.parts.iter().map(|p| p.rows).sum()
    }

    /// Refuses data prepared in predict mode (no labels), naming `use_`.
    ///
    /// # Errors
    /// [`PreparedError::WrongMode`].
    pub fn require_labels(&self, use_: &'static str) -> Result<(), PreparedError> {
        match self.mode() {
            Some(Mode::Predict) => {
                Err(PreparedError::WrongMode { dir: self.dir.clone(), found: Mode::Predict, expected: use_ })
            }
            _ => Ok(()),
        }
    }

    /// The artifacts `_prepare.json` names, checked ([`crate::artifacts::verify`])
    /// and matched against the recorded checksum.
    ///
    /// # Errors
    /// No record (a folder without `_prepare.json`), the artifacts cannot be
    /// verified, or they are not the ones the data was prepared with.
    pub fn artifacts(&self) -> Result<Option<CheckedArtifacts>, PreparedError> {
        let Some(m) = &self.manifest else { return Ok(None) };
        let a = crate::artifacts::verify(&m.artifacts.dir)?;
        self.check_artifacts(&a)?;
        Ok(Some(a))
    }

    /// Checks that the data was prepared with the artifacts `a` (the CRC32C
    /// of their manifest matches the record). Folders without a record pass.
    ///
    /// # Errors
    /// [`PreparedError::OtherArtifacts`].
    pub fn check_artifacts(&self, a: &CheckedArtifacts) -> Result<(), PreparedError> {
        match &self.manifest {
            Some(m) if m.artifacts.manifest_crc32c != a.manifest_crc32c => Err(PreparedError::OtherArtifacts {
                dir: self.dir.clone(),
                artifacts: a.dir.clone(),
                recorded_dir: m.artifacts.dir.clone(),
                recorded: m.artifacts.manifest_crc32c,
                found: a.manifest_crc32c,
            }),
            _ => Ok(()),
        }
    }
}
