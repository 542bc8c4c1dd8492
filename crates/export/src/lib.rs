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
//!   when complete; loading checks every checksum.
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
use sparky_criteo::artifacts::{self, ArtifactError, Artifacts};
use sparky_linear::{LinearModel, Metrics};

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
    /// An atomic write failed.
    #[error(transparent)]
    Write(#[from] sparky_tfrecord::Error),
    /// Not a sparky model file, or damaged.
    #[error("{}: {what}", path.display())]
    Invalid {
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
        /// Its version.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The preprocessing artifacts inside an export.
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
    pub fn write<M: Message>(path: &Path, payload_type: &str, msg: &M) -> Result<(), ExportError> {
        sparky_tfrecord::write_atomic(path, &encode(payload_type, msg))?;
        Ok(())
    }

    /// Checks and decodes framed bytes; `path` names them in errors.
    pub fn decode<M: Message + Default>(path: &Path, bytes: &[u8], payload_type: &str) -> Result<M, ExportError> {
        let invalid = |what: String| ExportError::Invalid { path: path.to_path_buf(), what };
        let env = Envelope::decode(bytes).map_err(|e| invalid(format!("not a sparky model file ({e})")))?;
        if env.magic != MAGIC {
            return Err(invalid("not a sparky model file (no sparky magic)".into()));
        }
        if env.format_version != VERSION {
            return Err(ExportError::Version {
                path: path.to_path_buf(),
                found: env.format_version,
                supported: VERSION,
            });
        }
        if env.payload_type != payload_type {
            return Err(invalid(format!("holds a {}, expected a {payload_type}", env.payload_type)));
        }
        let crc = crc32c::crc32c(&env.payload);
        if crc != env.payload_crc32c {
            return Err(invalid(format!("damaged: payload CRC32C {crc:#010x}, recorded {:#010x}", env.payload_crc32c)));
        }
        M::decode(env.payload.as_slice()).map_err(|e| invalid(format!("damaged payload ({e})")))
    }

    /// Reads and checks a framed file.
    pub fn read<M: Message + Default>(path: &Path, payload_type: &str) -> Result<M, ExportError> {
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

/// A loaded export: the model, its artifacts, its manifest.
#[derive(Debug, Clone)]
pub struct ExportDir {
    /// The export folder.
    pub dir: PathBuf,
    /// The manifest.
    pub manifest: ExportManifest,
    /// The model.
    pub model: LinearModel,
    /// The manifest of the preprocessing artifacts the model was trained
    /// with (vocabulary sizes, policies); [`ExportDir::artifacts`] loads the
    /// vocabulary.
    pub artifacts_manifest: artifacts::Manifest,
}

/// The feature spec of a model.
#[must_use]
pub fn feature_spec(model: &LinearModel) -> FeatureSpec {
    let layout = &model.layout;
    FeatureSpec {
        label: "clicked".into(),
        integer_features: (1..=13).map(|i| format!("integer-feature-{i}")).collect(),
        integer_transform: layout.int_transform(),
        categorical_features: (1..=26).map(|i| format!("categorical-feature-{i}")).collect(),
        categorical_encoding: layout.cat_encoding(),
        vocabulary_sizes: layout.vocab_sizes().to_vec(),
        weights: model.weights.len() as u64,
        nonzero_weights: model.nonzero() as u64,
    }
}

fn file_entry(dir: &Path, rel: &str) -> Result<FileEntry, ExportError> {
    let path = dir.join(rel);
    let bytes = std::fs::read(&path).map_err(io_err(&path))?;
    Ok(FileEntry { file: rel.to_string(), bytes: bytes.len() as u64, crc32c: crc32c::crc32c(&bytes) })
}

/// The TensorFlow view of a model, for the SavedModel in every export:
/// the same features, weights and float32 arithmetic (see
/// [`sparky_savedmodel`]).
#[must_use]
pub fn scoring_model(model: &LinearModel) -> sparky_savedmodel::ScoringModel<'_> {
    use sparky_linear::layout::{MISSING_INT, NUM_CAT, NUM_INT, bucket_boundaries};
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
            (format!("integer-feature-{}", i + 1), input)
        })
        .collect();
    let cat_features = (0..NUM_CAT)
        .map(|c| {
            let r = layout.cat_range(c);
            let input = match layout.cat_encoding() {
                sparky_linear::CatEncoding::OneHot => CatInput::OneHot { weights: &w[r] },
                sparky_linear::CatEncoding::RankAsNumber => CatInput::RankAsNumber { weight: w[r.start] },
            };
            (format!("categorical-feature-{}", c + 1), input)
        })
        .collect();
    sparky_savedmodel::ScoringModel { bias: w[0], int_features, cat_features }
}

/// The SavedModel file in an export.
pub const SAVED_MODEL_FILE: &str = "saved_model.pb";

/// Writes an export of `model` under `base` (`JOB_DIR/export/Servo`), named by
/// the current time in seconds (or the next free second). Returns its folder.
pub fn write_export(
    base: &Path,
    model: &LinearModel,
    artifacts_dir: &Path,
    global_step: u64,
    flags: BTreeMap<String, serde_json::Value>,
    metrics: Option<Metrics>,
) -> Result<PathBuf, ExportError> {
    std::fs::create_dir_all(base).map_err(io_err(base))?;
    let mut secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    while base.join(secs.to_string()).exists() {
        secs += 1;
    }
    let tmp = base.join(format!(".{secs}.{}.tmp", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    let result = (|| {
        std::fs::create_dir_all(tmp.join(ARTIFACTS_DIR)).map_err(io_err(&tmp))?;
        // Copy the artifacts, checked first.
        artifacts::verify(artifacts_dir)?;
        for f in [artifacts::COUNTS_FILE, artifacts::MANIFEST_FILE] {
            let from = artifacts_dir.join(f);
            let bytes = std::fs::read(&from).map_err(io_err(&from))?;
            sparky_tfrecord::write_atomic(tmp.join(ARTIFACTS_DIR).join(f), &bytes)?;
        }
        envelope::write(&tmp.join(MODEL_FILE), MODEL_TYPE, &model.to_proto())?;
        let mut rels = vec![
            MODEL_FILE.to_string(),
            format!("{ARTIFACTS_DIR}/{}", artifacts::COUNTS_FILE),
            format!("{ARTIFACTS_DIR}/{}", artifacts::MANIFEST_FILE),
        ];
        sparky_savedmodel::write_saved_model(&tmp, &scoring_model(model))
            .map_err(|e| ExportError::Invalid { path: tmp.join(SAVED_MODEL_FILE), what: e.to_string() })?;
        rels.push(SAVED_MODEL_FILE.to_string());
        let files = rels.iter().map(|r| file_entry(&tmp, r)).collect::<Result<Vec<_>, _>>()?;
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
        let mut json = serde_json::to_vec_pretty(&manifest).expect("serialisable");
        json.push(b'\n');
        sparky_tfrecord::write_atomic(tmp.join(MANIFEST_FILE), &json)?;
        let dest = base.join(secs.to_string());
        std::fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        Ok(dest)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// The newest export folder under `job_dir/export/Servo`, if any.
#[must_use]
pub fn newest_export(job_dir: &Path) -> Option<PathBuf> {
    let servo = job_dir.join("export").join("Servo");
    std::fs::read_dir(&servo)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()).map(|n| (n, e.path())))
        .filter(|(_, p)| p.join(MANIFEST_FILE).is_file())
        .max_by_key(|(n, _)| *n)
        .map(|(_, p)| p)
}

impl ExportDir {
    /// Loads an export: `path` is an export folder, or a job folder whose
    /// newest export is taken. Every checksum is verified.
    pub fn load(path: &Path) -> Result<Self, ExportError> {
        let dir = if path.join(MANIFEST_FILE).is_file() {
            path.to_path_buf()
        } else {
            newest_export(path).ok_or_else(|| ExportError::NotFound(path.to_path_buf()))?
        };
        let mpath = dir.join(MANIFEST_FILE);
        let text = std::fs::read(&mpath).map_err(io_err(&mpath))?;
        let invalid = |what: String| ExportError::Invalid { path: mpath.clone(), what };
        let head: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| invalid(format!("not an export manifest ({e})")))?;
        if head.get("format").and_then(serde_json::Value::as_str) != Some(EXPORT_FORMAT) {
            return Err(invalid(format!("not a {EXPORT_FORMAT} manifest")));
        }
        let version = head.get("format_version").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if version != u64::from(EXPORT_VERSION) {
            return Err(ExportError::Version {
                path: mpath.clone(),
                found: version.min(u64::from(u32::MAX)) as u32,
                supported: EXPORT_VERSION,
            });
        }
        let manifest: ExportManifest =
            serde_json::from_value(head).map_err(|e| invalid(format!("malformed export manifest ({e})")))?;
        for entry in &manifest.files {
            let found = file_entry(&dir, &entry.file).map_err(|e| match e {
                ExportError::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
                    ExportError::Invalid { path, what: "missing from the export".into() }
                }
                other => other,
            })?;
            if found != *entry {
                return Err(ExportError::Invalid {
                    path: dir.join(&entry.file),
                    what: format!(
                        "altered or damaged: {} bytes, CRC32C {:#010x}; the manifest recorded {} bytes, {:#010x}",
                        found.bytes, found.crc32c, entry.bytes, entry.crc32c
                    ),
                });
            }
        }
        let proto = envelope::read(&dir.join(MODEL_FILE), MODEL_TYPE)?;
        let model =
            LinearModel::from_proto(proto).map_err(|what| ExportError::Invalid { path: dir.join(MODEL_FILE), what })?;
        // The files' checksums were checked above; the vocabulary itself is
        // built only on demand (`artifacts`): scoring prepared rows needs none.
        let (artifacts_manifest, _) = artifacts::read_manifest(&dir.join(ARTIFACTS_DIR))?;
        if artifacts_manifest.sizes_in_order().ok().as_deref() != Some(model.layout.vocab_sizes()) {
            return Err(ExportError::Invalid {
                path: dir.clone(),
                what: "the model's vocabulary sizes differ from its artifacts'".into(),
            });
        }
        Ok(Self { dir, manifest, model, artifacts_manifest })
    }

    /// Loads the preprocessing artifacts of this export, vocabulary included
    /// (what scoring raw TSV lines needs; it takes a while for large
    /// vocabularies).
    ///
    /// # Errors
    /// The artifacts were altered since the export was loaded, or cannot be
    /// read.
    pub fn artifacts(&self) -> Result<Artifacts, ExportError> {
        let a = artifacts::load(&self.dir.join(ARTIFACTS_DIR))?;
        if a.manifest != self.artifacts_manifest {
            return Err(ExportError::Invalid {
                path: self.dir.join(ARTIFACTS_DIR),
                what: "the artifacts changed after the export was loaded".into(),
            });
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparky_criteo::parse::parse_line;
    use sparky_criteo::schema::Mode;
    use sparky_criteo::vocab::{Counts, Vocabulary};
    use sparky_linear::{CatEncoding, IntTransform, Layout};

    fn setup() -> (tempfile::TempDir, PathBuf, LinearModel) {
        let dir = tempfile::tempdir().unwrap();
        let art = dir.path().join("model");
        let mut counts = Counts::default();
        for l in ["0\t1\t\t\t\t\t\t\t\t\t\t\t\t\taaaaaaaa", "1\t2\t\t\t\t\t\t\t\t\t\t\t\t\tbbbbbbbb"] {
            counts.add_row(&parse_line(l.as_bytes(), Mode::Train).unwrap());
        }
        let vocab = Vocabulary::from_counts(&counts, 1);
        artifacts::write(&art, &vocab, 2, 0, 1, false).unwrap();
        let sizes: Vec<u64> = vocab.sizes().iter().map(|&s| s as u64).collect();
        let mut model = LinearModel::zeros(Layout::new(IntTransform::LogBuckets, CatEncoding::OneHot, &sizes));
        model.weights[0] = -1.25;
        model.weights[5] = 0.5;
        (dir, art, model)
    }

    #[test]
    fn export_round_trip_and_newest() {
        let (dir, art, model) = setup();
        let base = dir.path().join("job/export/Servo");
        let a = write_export(&base, &model, &art, 7, BTreeMap::new(), None).unwrap();
        let b = write_export(&base, &model, &art, 9, BTreeMap::new(), None).unwrap();
        assert_ne!(a, b);
        let loaded = ExportDir::load(&dir.path().join("job")).unwrap();
        assert_eq!(loaded.dir, b);
        assert_eq!(loaded.manifest.global_step, 9);
        assert_eq!(loaded.model, model);
        assert_eq!(ExportDir::load(&a).unwrap().manifest.global_step, 7);
        // Nothing hidden left behind.
        assert!(std::fs::read_dir(&base).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with('.')));
    }

    #[test]
    fn the_savedmodel_scores_like_the_model() {
        let (dir, art, mut model) = setup();
        for (i, w) in model.weights.iter_mut().enumerate() {
            *w = ((i * 37 % 101) as f32 - 50.0) / 40.0;
        }
        let e = write_export(&dir.path().join("Servo"), &model, &art, 1, BTreeMap::new(), None).unwrap();
        assert!(e.join(SAVED_MODEL_FILE).is_file());
        let sm = scoring_model(&model);
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
        let (dir, art, model) = setup();
        let base = dir.path().join("export/Servo");
        let e = write_export(&base, &model, &art, 1, BTreeMap::new(), None).unwrap();
        let mpath = e.join(MODEL_FILE);
        let mut bytes = std::fs::read(&mpath).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&mpath, &bytes).unwrap();
        let err = ExportDir::load(&e).unwrap_err();
        assert!(err.to_string().contains("altered or damaged"), "{err}");
        // The envelope alone catches it too.
        let err = envelope::read::<sparky_proto::sparky::model::v1::LinearModel>(&mpath, MODEL_TYPE).unwrap_err();
        assert!(matches!(err, ExportError::Invalid { .. }), "{err}");
        // A truncated export: the model file is gone.
        std::fs::remove_file(&mpath).unwrap();
        let err = ExportDir::load(&e).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(ExportDir::load(empty.path()), Err(ExportError::NotFound(_))));
        // The artifacts folder has a manifest.json of another format.
        assert!(ExportDir::load(&art).unwrap_err().to_string().contains("not a sparky-export manifest"));
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
            Err(ExportError::Version { found: 2, .. })
        ));
        std::fs::write(&p, b"garbage that is not a protobuf \xff\xff\xff").unwrap();
        assert!(envelope::read::<sparky_proto::sparky::model::v1::LinearModel>(&p, MODEL_TYPE).is_err());
    }
}
