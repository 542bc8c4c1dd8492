//! sparky's model files.
//!
//! - [`envelope`]: every binary model file (the exported model, training
//!   checkpoints) is an `Envelope` message: magic, format version, payload
//!   type, CRC32C of the payload, payload. Reading checks all four.
//! - [`ExportDir`]: a self-contained export folder,
//!   `JOB_DIR/export/Servo/<epoch seconds>/`, holding the weights
//!   (`model.pb`), the preprocessing artifacts the model was trained with
//!   (`artifacts/`), a TensorFlow SavedModel (`saved_model.pb`, whose
//!   `serving_default` signature scores serialized `tf.Example`s), and
//!   `manifest.json` (format version, feature spec,
//!   training flags, metrics at export, and the size and CRC32C of every
//!   file). An export is written in a hidden folder and renamed into place
//!   when complete; loading checks every checksum. Building the vocabulary
//!   from the copied artifacts (for raw rows) is `sparky-predict`'s business:
//!   an export only vouches for their files.
//!
//! ```
//! use sparky_export::envelope;
//! use sparky_proto::sparky::model::v1::OptimizerConfig;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("opt.pb");
//! let msg = OptimizerConfig { learning_rate: 0.1, ..Default::default() };
//! envelope::write(&path, "sparky.model.v1.OptimizerConfig", &msg)?;
//! let back: OptimizerConfig = envelope::read(&path, "sparky.model.v1.OptimizerConfig")?;
//! assert_eq!(back, msg);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sparky_io::DirLock;
use sparky_linear::{LinearModel, Metrics, ModelError};
use sparky_prepared::artifacts::{self, ArtifactError, CheckedArtifacts};
use sparky_prepared::schema::{CAT_FEATURES, INT_FEATURES, LABEL_FEATURE, MISSING_INT, NUM_CAT, NUM_INT};

/// Errors reading or writing model files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// I/O.
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
    /// Not a sparky model file.
    #[error("{}: not a sparky model file ({what})", path.display())]
    NotAModelFile {
        /// The file.
        path: PathBuf,
        /// Why not.
        what: String,
    },
    /// A model file of another payload type.
    #[error("{}: holds a {found}, expected a {expected}", path.display())]
    WrongPayload {
        /// The file.
        path: PathBuf,
        /// What it holds.
        found: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A model file whose payload fails its checksum or does not decode.
    #[error("{}: damaged: {what}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// A file of another format version.
    #[error("{}: format version {found}; this build reads version {supported}", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// Its version, as written.
        found: String,
        /// The version this build reads.
        supported: u32,
    },
    /// A model or checkpoint that decodes but is inconsistent.
    #[error("{}: {source}", path.display())]
    Model {
        /// The file.
        path: PathBuf,
        /// What is inconsistent.
        #[source]
        source: ModelError,
    },
    /// Not an export manifest, or a malformed one.
    #[error("{}: not a {EXPORT_FORMAT} manifest ({what})", path.display())]
    NotAnExport {
        /// The manifest.
        path: PathBuf,
        /// Why not.
        what: String,
    },
    /// A file the manifest lists is missing.
    #[error("{}: missing from the export", .0.display())]
    MissingFile(PathBuf),
    /// A file differs from the manifest's record.
    #[error("{}: altered or damaged: {found_bytes} bytes, CRC32C {found_crc:#010x}; the manifest recorded {bytes} bytes, {crc:#010x}", path.display())]
    Altered {
        /// The file.
        path: PathBuf,
        /// Recorded size.
        bytes: u64,
        /// Recorded CRC32C.
        crc: u32,
        /// Size found.
        found_bytes: u64,
        /// CRC32C found.
        found_crc: u32,
    },
    /// The model's vocabulary sizes differ from its artifacts'.
    #[error("{}: the model's vocabulary sizes differ from its artifacts'", .0.display())]
    VocabularyMismatch(PathBuf),
    /// The SavedModel could not be built.
    #[error("{}: {source}", path.display())]
    SavedModel {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: sparky_savedmodel::SavedModelError,
    },
    /// The preprocessing artifacts inside an export, or to be copied into one.
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
    /// No export where one was expected.
    #[error("{}: no export found (expected a folder with manifest.json, or a job folder with export/Servo/<seconds>/)", .0.display())]
    NotFound(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io { path: path.to_path_buf(), source }
}

pub mod envelope {
    //! The checksummed, versioned frame of sparky's binary model files.

    use std::path::Path;

    use prost::Message;
    use sparky_proto::sparky::model::v1::Envelope;

    use super::{ExportError, io_err};

    /// The magic string of every envelope.
    pub const MAGIC: &str = "sparky";
    /// The format version this build writes and reads.
    pub const VERSION: u32 = 1;

    /// Frames `msg` and returns the bytes.
    #[must_use]
    pub fn encode<M: Message>(payload_type: &str, msg: &M) -> Vec<u8> {
        let payload = msg.encode_to_vec();
        Envelope {
            magic: MAGIC.into(),
            format_version: VERSION,
            payload_type: payload_type.into(),
            payload_crc32c: crc32c::crc32c(&payload),
            payload,
        }
        .encode_to_vec()
    }

    /// Writes `msg` framed to `path`, atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write<M: Message>(path: &Path, payload_type: &str, msg: &M) -> Result<(), ExportError> {
        sparky_io::write_atomic(path, &encode(payload_type, msg))?;
        Ok(())
    }

    /// Checks and decodes framed bytes; `path` names them in errors.
    ///
    /// # Errors
    /// Not an envelope, another version or payload type, a checksum
    /// mismatch, or a payload that does not decode.
    pub fn decode<M: Message + Default>(
        path: &Path,
        bytes: &[u8],
        payload_type: &'static str,
    ) -> Result<M, ExportError> {
        let p = || path.to_path_buf();
        let env = Envelope::decode(bytes).map_err(|e| ExportError::NotAModelFile { path: p(), what: e.to_string() })?;
        if env.magic != MAGIC {
            return Err(ExportError::NotAModelFile { path: p(), what: "no sparky magic".into() });
        }
        if env.format_version != VERSION {
            return Err(ExportError::Version { path: p(), found: env.format_version.to_string(), supported: VERSION });
        }
        if env.payload_type != payload_type {
            return Err(ExportError::WrongPayload { path: p(), found: env.payload_type, expected: payload_type });
        }
        let crc = crc32c::crc32c(&env.payload);
        if crc != env.payload_crc32c {
            return Err(ExportError::Damaged {
                path: p(),
                what: format!("payload CRC32C {crc:#010x}, recorded {:#010x}", env.payload_crc32c),
            });
        }
        M::decode(env.payload.as_slice()).map_err(|e| ExportError::Damaged { path: p(), what: e.to_string() })
    }

    /// Reads and checks a framed file.
    ///
    /// # Errors
    /// As [`decode`], and I/O errors.
    pub fn read<M: Message + Default>(path: &Path, payload_type: &'static str) -> Result<M, ExportError> {
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        decode(path, &bytes, payload_type)
    }
}

/// Payload type name of the exported model.
pub const MODEL_TYPE: &str = "sparky.model.v1.LinearModel";
/// Payload type name of checkpoints.
pub const CHECKPOINT_TYPE: &str = "sparky.model.v1.Checkpoint";
/// The `format` of an export manifest.
pub const EXPORT_FORMAT: &str = "sparky-export";
/// The export format version.
pub const EXPORT_VERSION: u32 = 1;
/// The model file in an export.
pub const MODEL_FILE: &str = "model.pb";
/// The manifest of an export.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The artifacts folder in an export.
pub const ARTIFACTS_DIR: &str = "artifacts";
/// Where exports go in a job folder, as in the guide: `export/Servo/<seconds>/`.
pub const EXPORT_BASE: &str = "export/Servo";
/// The TensorFlow SavedModel in an export.
pub const SAVED_MODEL_FILE: &str = "saved_model.pb";

/// A file an export manifest vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the export folder.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// CRC32C.
    pub crc32c: u32,
}

impl FileEntry {
    fn of(rel: &str, bytes: &[u8]) -> Self {
        Self { file: rel.to_string(), bytes: bytes.len() as u64, crc32c: crc32c::crc32c(bytes) }
    }
}

/// What the model reads, in words: for people and other tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// The label feature.
    pub label: String,
    /// The integer features and their transform.
    pub integer_features: Vec<String>,
    /// How integers enter the model.
    pub integer_transform: sparky_linear::IntTransform,
    /// The categorical (vocabulary id) features.
    pub categorical_features: Vec<String>,
    /// How ids enter the model.
    pub categorical_encoding: sparky_linear::CatEncoding,
    /// Vocabulary sizes, C1..C26.
    pub vocabulary_sizes: Vec<u64>,
    /// Weights in the model.
    pub weights: u64,
    /// Weights that are not zero.
    pub nonzero_weights: u64,
}

/// `manifest.json` of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportManifest {
    /// [`EXPORT_FORMAT`].
    pub format: String,
    /// [`EXPORT_VERSION`].
    pub format_version: u32,
    /// The program that wrote it.
    pub created_by: String,
    /// Seconds since the epoch at export (the folder's name).
    pub exported_at: u64,
    /// Training step at export.
    pub global_step: u64,
    /// What the model reads.
    pub feature_spec: FeatureSpec,
    /// The training flags, as given.
    pub flags: BTreeMap<String, serde_json::Value>,
    /// Evaluation metrics at export, when there was an evaluation.
    pub metrics: Option<Metrics>,
    /// Every file of the export but this manifest.
    pub files: Vec<FileEntry>,
}

/// A loaded export: the model, its artifacts' manifest, its manifest.
#[derive(Debug, Clone)]
pub struct ExportDir {
    /// The export folder.
    pub dir: PathBuf,
    /// The manifest.
    pub manifest: ExportManifest,
    /// The model.
    pub model: LinearModel,
    /// The preprocessing artifacts the model was trained with, checked (their
    /// files' checksums are in the export's manifest).
    pub artifacts: CheckedArtifacts,
}

/// The feature spec of a model.
#[must_use]
pub fn feature_spec(model: &LinearModel) -> FeatureSpec {
    let layout = &model.layout;
    FeatureSpec {
        label: LABEL_FEATURE.into(),
        integer_features: INT_FEATURES.iter().map(|s| (*s).to_string()).collect(),
        integer_transform: layout.int_transform(),
        categorical_features: CAT_FEATURES.iter().map(|s| (*s).to_string()).collect(),
        categorical_encoding: layout.cat_encoding(),
        vocabulary_sizes: layout.vocab_sizes().to_vec(),
        weights: model.weights.len() as u64,
        nonzero_weights: model.nonzero() as u64,
    }
}

/// The model as the SavedModel writer sees it: per feature its name and
/// weights, in the order [`LinearModel::logit`] sums them.
#[must_use]
pub fn scoring_model(model: &LinearModel) -> sparky_savedmodel::ScoringModel<'_> {
    use sparky_linear::layout::bucket_boundaries;
    use sparky_savedmodel::{CatInput, IntInput};
    let layout = &model.layout;
    let w = &model.weights;
    let int_features = (0..NUM_INT)
        .map(|i| {
            let r = layout.int_range(i);
            let input = match layout.int_transform() {
                sparky_linear::IntTransform::LogBuckets => {
                    IntInput::Buckets { boundaries: bucket_boundaries(), weights: &w[r] }
                }
                sparky_linear::IntTransform::Log1p => {
                    IntInput::Log1p { missing_value: MISSING_INT, missing_weight: w[r.start], weight: w[r.start + 1] }
                }
            };
            (INT_FEATURES[i].to_string(), input)
        })
        .collect();
    let cat_features = (0..NUM_CAT)
        .map(|c| {
            let r = layout.cat_range(c);
            let input = match layout.cat_encoding() {
                sparky_linear::CatEncoding::OneHot => CatInput::OneHot { weights: &w[r] },
                sparky_linear::CatEncoding::RankAsNumber => CatInput::RankAsNumber { weight: w[r.start] },
            };
            (CAT_FEATURES[c].to_string(), input)
        })
        .collect();
    sparky_savedmodel::ScoringModel { bias: w[0], int_features, cat_features }
}

/// Writes an export of `model` into `JOB_DIR/export/Servo/<seconds>/` of the
/// locked job folder `job`: the artifacts `artifacts` (their bytes checked
/// against their manifest as they are copied), the model, the SavedModel and
/// the manifest, in a hidden folder renamed into place when complete.
/// Hidden folders that killed runs left there are removed first. Returns the
/// export folder.
///
/// # Errors
/// I/O errors; artifacts whose files changed since they were checked.
pub fn write_export(
    job: &DirLock,
    model: &LinearModel,
    artifacts: &CheckedArtifacts,
    global_step: u64,
    flags: BTreeMap<String, serde_json::Value>,
    metrics: Option<Metrics>,
) -> Result<PathBuf, ExportError> {
    let base = job.path().join(EXPORT_BASE);
    if std::fs::metadata(&base).is_ok_and(|m| !m.is_dir()) {
        return Err(sparky_io::Error::NotAFolder { path: base }.into());
    }
    std::fs::create_dir_all(&base).map_err(io_err(&base))?;
    job.remove_stale_temps_in(&base)?;
    let mut secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    while base.join(secs.to_string()).exists() {
        secs += 1;
    }
    let tmp = base.join(format!(".{secs}.{}.tmp", std::process::id()));
    let dest = base.join(secs.to_string());
    let result = (|| {
        std::fs::create_dir_all(tmp.join(ARTIFACTS_DIR)).map_err(io_err(&dest))?;
        let mut files = Vec::new();
        // The artifacts, whose bytes must be those their manifest vouches for.
        let csv_path = artifacts.dir.join(artifacts::COUNTS_FILE);
        let csv = std::fs::read(&csv_path).map_err(io_err(&csv_path))?;
        artifacts::check_csv(&csv_path, &artifacts.manifest, csv.len() as u64, crc32c::crc32c(&csv))?;
        let manifest_path = artifacts.dir.join(artifacts::MANIFEST_FILE);
        let json = std::fs::read(&manifest_path).map_err(io_err(&manifest_path))?;
        if crc32c::crc32c(&json) != artifacts.manifest_crc32c {
            return Err(ArtifactError::Inconsistent {
                path: manifest_path,
                what: "changed since it was checked at the start of the run".into(),
            }
            .into());
        }
        for (name, bytes) in [(artifacts::COUNTS_FILE, &csv), (artifacts::MANIFEST_FILE, &json)] {
            let rel = format!("{ARTIFACTS_DIR}/{name}");
            sparky_io::write_atomic(tmp.join(&rel), bytes).map_err(|e| rename_err(e, &tmp, &dest))?;
            files.push(FileEntry::of(&rel, bytes));
        }
        let model_bytes = envelope::encode(MODEL_TYPE, &model.to_proto());
        sparky_io::write_atomic(tmp.join(MODEL_FILE), &model_bytes).map_err(|e| rename_err(e, &tmp, &dest))?;
        files.insert(0, FileEntry::of(MODEL_FILE, &model_bytes));
        sparky_savedmodel::write_saved_model(&tmp, &scoring_model(model))
            .map_err(|source| ExportError::SavedModel { path: dest.join(SAVED_MODEL_FILE), source })?;
        let sm_path = tmp.join(SAVED_MODEL_FILE);
        let sm = std::fs::read(&sm_path).map_err(io_err(&dest.join(SAVED_MODEL_FILE)))?;
        files.push(FileEntry::of(SAVED_MODEL_FILE, &sm));
        let manifest = ExportManifest {
            format: EXPORT_FORMAT.into(),
            format_version: EXPORT_VERSION,
            created_by: format!("sparky-export {}", env!("CARGO_PKG_VERSION")),
            exported_at: secs,
            global_step,
            feature_spec: feature_spec(model),
            flags,
            metrics,
            files,
        };
        let mut json = serde_json::to_vec_pretty(&manifest).unwrap_or_else(|_| unreachable!("plain data serialises"));
        json.push(b'\n');
        sparky_io::write_atomic(tmp.join(MANIFEST_FILE), &json).map_err(|e| rename_err(e, &tmp, &dest))?;
        std::fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        sparky_io::sync_dir(&base)?;
        Ok(dest.clone())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Names the export's final folder in an error about its hidden one.
fn rename_err(e: sparky_io::Error, tmp: &Path, dest: &Path) -> ExportError {
    let path = e.path();
    let named = path.strip_prefix(tmp).map_or_else(|_| path.to_path_buf(), |rel| dest.join(rel));
    match e {
        sparky_io::Error::Io { source, .. } => ExportError::Io { path: named, source },
        other => other.into(),
    }
}

/// The newest complete export of a job folder (`export/Servo/<seconds>/` with
/// a manifest), if any.
#[must_use]
pub fn newest_export(job_dir: &Path) -> Option<PathBuf> {
    exports(job_dir).pop().map(|(_, p)| p)
}

/// The complete-looking exports of a job folder or an export base folder,
/// oldest first: `(version, folder)` for every numeric folder holding a
/// manifest (hidden, temporary folders are not listed).
#[must_use]
pub fn exports(dir: &Path) -> Vec<(u64, PathBuf)> {
    let servo = dir.join(EXPORT_BASE);
    let base = if servo.is_dir() { servo } else { dir.to_path_buf() };
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(&base)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()).map(|n| (n, e.path())))
        .filter(|(_, p)| p.join(MANIFEST_FILE).is_file())
        .collect();
    v.sort();
    v
}

impl ExportDir {
    /// Loads an export folder, or the newest export of a job folder, and
    /// checks every file against the manifest.
    ///
    /// # Errors
    /// No export, a damaged or altered file, another version.
    pub fn load(path: &Path) -> Result<Self, ExportError> {
        let dir = if path.join(MANIFEST_FILE).is_file() {
            path.to_path_buf()
        } else {
            newest_export(path).ok_or_else(|| ExportError::NotFound(path.to_path_buf()))?
        };
        let mpath = dir.join(MANIFEST_FILE);
        let text = std::fs::read(&mpath).map_err(io_err(&mpath))?;
        let not_export = |what: String| ExportError::NotAnExport { path: mpath.clone(), what };
        let head: serde_json::Value = serde_json::from_slice(&text).map_err(|e| not_export(e.to_string()))?;
        let format = head.get("format").and_then(serde_json::Value::as_str).unwrap_or_default();
        if format != EXPORT_FORMAT {
            return Err(not_export(format!("its format is {format:?}")));
        }
        let version = head.get("format_version");
        if version.and_then(serde_json::Value::as_u64) != Some(u64::from(EXPORT_VERSION)) {
            return Err(ExportError::Version {
                path: mpath.clone(),
                found: version.map_or_else(|| "(absent)".into(), ToString::to_string),
                supported: EXPORT_VERSION,
            });
        }
        let manifest: ExportManifest = serde_json::from_value(head).map_err(|e| not_export(e.to_string()))?;
        for entry in &manifest.files {
            let path = dir.join(&entry.file);
            let bytes = std::fs::read(&path).map_err(|source| match source.kind() {
                std::io::ErrorKind::NotFound => ExportError::MissingFile(path.clone()),
                _ => ExportError::Io { path: path.clone(), source },
            })?;
            let found = FileEntry::of(&entry.file, &bytes);
            if found != *entry {
                return Err(ExportError::Altered {
                    path,
                    bytes: entry.bytes,
                    crc: entry.crc32c,
                    found_bytes: found.bytes,
                    found_crc: found.crc32c,
                });
            }
        }
        let model_path = dir.join(MODEL_FILE);
        let proto = envelope::read(&model_path, MODEL_TYPE)?;
        let model = LinearModel::from_proto(proto).map_err(|source| ExportError::Model { path: model_path, source })?;
        // The files' checksums were checked above; the vocabulary itself is
        // built only on demand (`sparky-predict`): prepared rows need none.
        let artifacts = artifacts::read_manifest(&dir.join(ARTIFACTS_DIR))?;
        if artifacts.sizes()[..] != *model.layout.vocab_sizes() {
            return Err(ExportError::VocabularyMismatch(dir));
        }
        Ok(Self { dir, manifest, model, artifacts })
    }

    /// The folder of the artifacts copied into the export.
    #[must_use]
    pub fn artifacts_dir(&self) -> PathBuf {
        self.dir.join(ARTIFACTS_DIR)
    }

    /// The version: the export folder's name, seconds since the epoch.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.manifest.exported_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparky_criteo::parse::parse_line;
    use sparky_criteo::vocab::{Counts, Vocabulary};
    use sparky_linear::{CatEncoding, IntTransform, Layout};
    use sparky_prepared::schema::Mode;

    struct Setup {
        dir: tempfile::TempDir,
        art: CheckedArtifacts,
        model: LinearModel,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let mut counts = Counts::default();
        for l in ["0\t1\t\t\t\t\t\t\t\t\t\t\t\t\taaaaaaaa", "1\t2\t\t\t\t\t\t\t\t\t\t\t\t\tbbbbbbbb"] {
            counts.add_row(&parse_line(l.as_bytes(), Mode::Train).unwrap());
        }
        let vocab = Vocabulary::from_counts(&counts, 1);
        let lock = DirLock::acquire(&dir.path().join("model")).unwrap();
        let art = sparky_criteo::artifacts::write(&lock, &vocab, 2, 0, 1, false).unwrap();
        let mut model =
            LinearModel::zeros(Layout::new(IntTransform::LogBuckets, CatEncoding::OneHot, &art.sizes()).unwrap());
        model.weights[0] = -1.25;
        model.weights[5] = 0.5;
        Setup { dir, art, model }
    }

    fn job(s: &Setup) -> DirLock {
        DirLock::acquire(&s.dir.path().join("job")).unwrap()
    }

    #[test]
    fn export_round_trip_and_newest() {
        let s = setup();
        let job = job(&s);
        let a = write_export(&job, &s.model, &s.art, 7, BTreeMap::new(), None).unwrap();
        // A killed run's hidden folder is cleaned by the next export.
        let base = job.path().join(EXPORT_BASE);
        std::fs::create_dir(base.join(".123.45.tmp")).unwrap();
        let b = write_export(&job, &s.model, &s.art, 9, BTreeMap::new(), None).unwrap();
        assert_ne!(a, b);
        let loaded = ExportDir::load(job.path()).unwrap();
        assert_eq!(loaded.dir, b);
        assert_eq!(loaded.manifest.global_step, 9);
        assert_eq!(loaded.model, s.model);
        assert_eq!(loaded.artifacts.manifest_crc32c, s.art.manifest_crc32c);
        assert_eq!(ExportDir::load(&a).unwrap().manifest.global_step, 7);
        assert_eq!(exports(job.path()).len(), 2);
        // Nothing hidden left behind.
        assert!(std::fs::read_dir(&base).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.')));
    }

    #[test]
    fn artifacts_changed_since_they_were_checked_are_not_exported() {
        let s = setup();
        let job = job(&s);
        let csv = s.art.dir.join(artifacts::COUNTS_FILE);
        let text = std::fs::read_to_string(&csv).unwrap();
        std::fs::write(&csv, text.replace(",1,1", ",2,1")).unwrap();
        let e = write_export(&job, &s.model, &s.art, 1, BTreeMap::new(), None).unwrap_err();
        assert!(matches!(e, ExportError::Artifacts(ArtifactError::Checksum { .. })), "{e}");
        assert!(exports(job.path()).is_empty());
        assert_eq!(std::fs::read_dir(job.path().join(EXPORT_BASE)).unwrap().count(), 0, "nothing left");
    }

    #[test]
    fn the_savedmodel_scores_like_the_model() {
        let mut s = setup();
        for (i, w) in s.model.weights.iter_mut().enumerate() {
            *w = ((i * 37 % 101) as f32 - 50.0) / 40.0;
        }
        let e = write_export(&job(&s), &s.model, &s.art, 1, BTreeMap::new(), None).unwrap();
        assert!(e.join(SAVED_MODEL_FILE).is_file());
        let model = &s.model;
        let sm = scoring_model(model);
        for (k, x) in [-10i64, -1, 0, 1, 2, 7, 100, 1 << 40].into_iter().enumerate() {
            let mut ints = [x; 13];
            ints[k % 13] = 3;
            let ids: [i64; 26] = std::array::from_fn(|c| (c as i64 + k as i64) % 4 - 1);
            assert_eq!(sm.logit(&ints, &ids).to_bits(), model.logit(&ints, &ids).to_bits(), "x = {x}");
            assert_eq!(sm.score(&ints, &ids).to_bits(), model.predict(&ints, &ids).to_bits());
        }
    }

    #[test]
    fn damage_is_refused() {
        let s = setup();
        let e = write_export(&job(&s), &s.model, &s.art, 1, BTreeMap::new(), None).unwrap();
        let mpath = e.join(MODEL_FILE);
        let mut bytes = std::fs::read(&mpath).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&mpath, &bytes).unwrap();
        let err = ExportDir::load(&e).unwrap_err();
        assert!(matches!(err, ExportError::Altered { .. }), "{err}");
        assert!(err.to_string().contains("altered or damaged"), "{err}");
        // The envelope alone catches it too.
        let err = envelope::read::<sparky_proto::sparky::model::v1::LinearModel>(&mpath, MODEL_TYPE).unwrap_err();
        assert!(matches!(err, ExportError::Damaged { .. } | ExportError::NotAModelFile { .. }), "{err}");
        // A truncated export: the model file is gone.
        std::fs::remove_file(&mpath).unwrap();
        let err = ExportDir::load(&e).unwrap_err();
        assert!(matches!(err, ExportError::MissingFile(_)), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(ExportDir::load(empty.path()), Err(ExportError::NotFound(_))));
        // The artifacts folder has a manifest.json of another format.
        let err = ExportDir::load(&s.art.dir).unwrap_err();
        assert!(err.to_string().contains("not a sparky-export manifest"), "{err}");
        // A version written as a string is reported as written.
        let m = e.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&m).unwrap().replace("\"format_version\": 1", "\"format_version\": \"1\"");
        std::fs::write(&m, text).unwrap();
        let err = ExportDir::load(&e).unwrap_err();
        assert!(err.to_string().contains("format version \"1\""), "{err}");
    }

    #[test]
    fn envelope_refuses_other_types_and_versions() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pb");
        envelope::write(&p, CHECKPOINT_TYPE, &sparky_proto::sparky::model::v1::Checkpoint::default()).unwrap();
        let e = envelope::read::<sparky_proto::sparky::model::v1::LinearModel>(&p, MODEL_TYPE).unwrap_err();
        assert!(e.to_string().contains("expected a sparky.model.v1.LinearModel"), "{e}");
        use prost::Message;
        let env = sparky_proto::sparky::model::v1::Envelope {
            magic: "sparky".into(),
            format_version: 2,
            ..Default::default()
        };
        std::fs::write(&p, env.encode_to_vec()).unwrap();
        assert!(matches!(
            envelope::read::<sparky_proto::sparky::model::v1::LinearModel>(&p, MODEL_TYPE),
            Err(ExportError::Version { .. })
        ));
        std::fs::write(&p, b"garbage that is not a protobuf \xff\xff\xff").unwrap();
        assert!(envelope::read::<sparky_proto::sparky::model::v1::LinearModel>(&p, MODEL_TYPE).is_err());
    }
}
