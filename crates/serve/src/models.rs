//! The models a server holds: for each name, the newest complete export under
//! its base path, found by polling and swapped in atomically.
//!
//! A request takes an `Arc` of the version it starts on, so a swap never
//! disturbs requests in flight, and the old version is freed when the last of
//! them finishes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use sparky_criteo::parse::Cat;
use sparky_export::ExportDir;
use sparky_predict::RawScorer;
use sparky_prepared::reader::RowDecoder;
use sparky_prepared::schema::NUM_CAT;

use crate::error::ApiError;

/// One loaded version of a model: its model and vocabulary.
#[derive(Debug)]
pub struct Loaded {
    /// The export's version (its folder's name).
    pub version: u64,
    /// The export folder.
    pub path: PathBuf,
    /// Scores raw and prepared rows.
    pub scorer: RawScorer,
    /// What parsing requests needs of it, computed once.
    pub(crate) prep: Prep,
}

/// What every request of a version needs, computed at load rather than per
/// request: vocabulary sizes, the ids of missing values, and a pool of
/// Example decoders (building one allocates).
#[derive(Debug)]
pub(crate) struct Prep {
    pub(crate) sizes: [u64; NUM_CAT],
    pub(crate) missing_ids: [i64; NUM_CAT],
    decoders: Mutex<Vec<RowDecoder>>,
}

impl Prep {
    fn new(scorer: &RawScorer) -> Self {
        let mut missing_ids = [0; NUM_CAT];
        for (m, c) in missing_ids.iter_mut().zip(&scorer.vocabulary().columns) {
            *m = c.id(Cat::Missing);
        }
        Self { sizes: scorer.artifacts().sizes(), missing_ids, decoders: Mutex::new(Vec::new()) }
    }

    /// A decoder from the pool, or a new one.
    pub(crate) fn take_decoder(&self, scorer: &RawScorer) -> RowDecoder {
        self.decoders.lock().unwrap_or_else(PoisonError::into_inner).pop().unwrap_or_else(|| scorer.decoder())
    }

    /// Returns a decoder to the pool.
    pub(crate) fn give_back(&self, d: RowDecoder) {
        let mut pool = self.decoders.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < 64 {
            pool.push(d);
        }
    }
}

/// How a request names the version it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSel {
    /// Whatever is loaded.
    Latest,
    /// This version number.
    Number(u64),
    /// A version label (criteo-serve assigns none).
    Label(String),
}

/// What a poll did to one model.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PollEvent {
    /// A version was loaded and now serves.
    Loaded {
        /// The model's name.
        model: String,
        /// The version now served.
        version: u64,
        /// The version it replaced.
        replaced: Option<u64>,
    },
    /// A version could not be loaded; the one loaded before (if any) keeps serving.
    Skipped {
        /// The model's name.
        model: String,
        /// The version skipped.
        version: u64,
        /// Why, with the causes.
        reason: String,
    },
}

/// One served model.
#[derive(Debug)]
pub struct Model {
    name: String,
    base: PathBuf,
    current: RwLock<Option<Arc<Loaded>>>,
    /// Versions that failed to load, with their manifest's modification time
    /// then: retried only once the manifest changes.
    failed: Mutex<HashMap<u64, Option<SystemTime>>>,
}

fn manifest_mtime(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir.join(sparky_export::MANIFEST_FILE)).and_then(|m| m.modified()).ok()
}

impl Model {
    /// A model named `name` whose versions are the exports under `base` (a
    /// job folder, its `export/Servo`, or any folder of numeric versions).
    #[must_use]
    pub fn new(name: impl Into<String>, base: impl Into<PathBuf>) -> Self {
        Self { name: name.into(), base: base.into(), current: RwLock::new(None), failed: Mutex::new(HashMap::new()) }
    }

    /// The model's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The folder its versions are found in.
    #[must_use]
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The version serving now, if any.
    #[must_use]
    pub fn current(&self) -> Option<Arc<Loaded>> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Looks for a newer complete export and swaps it in: the newest version
    /// that loads and verifies wins; versions that fail are reported once and
    /// skipped until their manifest changes. Blocking (reads the files).
    pub fn poll(&self) -> Vec<PollEvent> {
        let mut events = Vec::new();
        let current = self.current().map(|l| l.version);
        let mut versions = sparky_export::exports(&self.base);
        versions.retain(|(v, _)| current.is_none_or(|c| *v > c));
        // Newest first: fall back to older ones only while they are newer than
        // what serves.
        for (version, dir) in versions.into_iter().rev() {
            let mtime = manifest_mtime(&dir);
            {
                let failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
                if failed.get(&version).is_some_and(|m| *m == mtime) {
                    continue;
                }
            }
            match load(&dir, version) {
                Ok(loaded) => {
                    let replaced = {
                        let mut cur = self.current.write().unwrap_or_else(PoisonError::into_inner);
                        cur.replace(Arc::new(loaded)).map(|old| old.version)
                    };
                    self.failed.lock().unwrap_or_else(PoisonError::into_inner).retain(|v, _| *v > version);
                    events.push(PollEvent::Loaded { model: self.name.clone(), version, replaced });
                    break;
                }
                Err(reason) => {
                    self.failed.lock().unwrap_or_else(PoisonError::into_inner).insert(version, mtime);
                    events.push(PollEvent::Skipped { model: self.name.clone(), version, reason });
                }
            }
        }
        events
    }

    /// The loaded version a request asks for.
    ///
    /// # Errors
    /// Nothing loaded yet (unavailable), or another version asked for (not found).
    pub fn select(&self, sel: &VersionSel) -> Result<Arc<Loaded>, ApiError> {
        let Some(loaded) = self.current() else {
            return Err(ApiError::Unavailable(format!(
                "model \"{}\" has no version loaded yet (looking for exports under {})",
                self.name,
                self.base.display()
            )));
        };
        match sel {
            VersionSel::Latest => Ok(loaded),
            VersionSel::Number(v) if *v == loaded.version => Ok(loaded),
            VersionSel::Number(v) => Err(ApiError::NotFound(format!(
                "model \"{}\" has no version {v} loaded (version {} serves)",
                self.name, loaded.version
            ))),
            VersionSel::Label(l) => Err(ApiError::NotFound(format!(
                "model \"{}\" has no version labelled \"{l}\" (criteo-serve assigns no labels; version {} serves)",
                self.name, loaded.version
            ))),
        }
    }
}

/// Loads the export in `dir`, served as `version`: its folder's name, as TF
/// Serving numbers versions (a copied export is a new version).
///
/// # Errors
/// The export or its vocabulary cannot be loaded or verified: the error and
/// its causes on one line.
pub fn load(dir: &Path, version: u64) -> Result<Loaded, String> {
    let export = ExportDir::load(dir).map_err(|e| sparky_io::error_chain(&e))?;
    let path = export.dir.clone();
    let scorer = RawScorer::new(export).map_err(|e| sparky_io::error_chain(&e))?;
    let prep = Prep::new(&scorer);
    Ok(Loaded { version, path, scorer, prep })
}

/// The models a server holds, by name.
#[derive(Debug, Default)]
pub struct Registry {
    models: BTreeMap<String, Arc<Model>>,
}

impl Registry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a model; a second model of the same name replaces the first.
    pub fn add(&mut self, model: Model) {
        self.models.insert(model.name.clone(), Arc::new(model));
    }

    /// The model named `name`.
    ///
    /// # Errors
    /// No such model (not found).
    pub fn get(&self, name: &str) -> Result<&Arc<Model>, ApiError> {
        self.models.get(name).ok_or_else(|| {
            let served: Vec<&str> = self.models.keys().map(String::as_str).collect();
            ApiError::NotFound(format!("no model named \"{name}\" is served (served: {})", served.join(", ")))
        })
    }

    /// Every model, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Model>> {
        self.models.values()
    }

    /// True when no model was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Polls every model once (see [`Model::poll`]).
    pub fn poll(&self) -> Vec<PollEvent> {
        self.models.values().flat_map(|m| m.poll()).collect()
    }
}
