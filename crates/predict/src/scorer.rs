//! Scoring with an export: prepared rows ([`Scorer`]) and raw rows
//! ([`RawScorer`], which also holds the vocabulary).

use std::path::{Path, PathBuf};

use sparky_criteo::parse::{Row as RawRow, RowError, parse_line_any};
use sparky_criteo::vocab::Vocabulary;
use sparky_export::ExportDir;
use sparky_linear::LinearModel;
use sparky_linear::metrics::sigmoid;
use sparky_prepared::schema::{NUM_CAT, NUM_INT};
use sparky_prepared::{CheckedArtifacts, RowDecoder};

use crate::PredictError;

/// An export's model, scoring prepared rows (vocabulary ids). It needs no
/// vocabulary, so it starts at once whatever the vocabulary's size.
#[derive(Debug, Clone)]
pub struct Scorer {
    model: LinearModel,
    export: PathBuf,
    version: u64,
    artifacts: CheckedArtifacts,
}

impl Scorer {
    /// Takes a loaded export.
    #[must_use]
    pub fn new(e: ExportDir) -> Self {
        let version = e.version();
        Self { model: e.model, export: e.dir, version, artifacts: e.artifacts }
    }

    /// The export folder.
    #[must_use]
    pub fn export_dir(&self) -> &Path {
        &self.export
    }

    /// The export's version (its folder's name, seconds since the epoch).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The model.
    #[must_use]
    pub fn model(&self) -> &LinearModel {
        &self.model
    }

    /// The artifacts the model was trained with (their manifest, checked).
    #[must_use]
    pub fn artifacts(&self) -> &CheckedArtifacts {
        &self.artifacts
    }

    /// A decoder of prepared Examples that checks ids against this model's
    /// vocabulary sizes.
    #[must_use]
    pub fn decoder(&self) -> RowDecoder {
        RowDecoder::new(Some(self.artifacts.sizes()))
    }

    /// The logit of a prepared row.
    #[inline]
    #[must_use]
    pub fn logit(&self, ints: &[i64; NUM_INT], ids: &[i64; NUM_CAT]) -> f32 {
        self.model.logit(ints, ids)
    }

    /// p(click) of a prepared row.
    #[inline]
    #[must_use]
    pub fn score(&self, ints: &[i64; NUM_INT], ids: &[i64; NUM_CAT]) -> f32 {
        self.model.predict(ints, ids)
    }
}

/// An export's model and vocabulary: scores raw Criteo rows, prepared exactly
/// as criteo-prepare prepares them, and (through [`Deref`](std::ops::Deref))
/// prepared rows.
#[derive(Debug)]
pub struct RawScorer {
    scorer: Scorer,
    vocab: Vocabulary,
}

impl std::ops::Deref for RawScorer {
    type Target = Scorer;

    fn deref(&self) -> &Scorer {
        &self.scorer
    }
}

impl RawScorer {
    /// Takes a loaded export and builds the vocabulary from its artifacts
    /// (checked against the export's record of them).
    ///
    /// # Errors
    /// The artifacts cannot be loaded, or differ from those the export recorded.
    pub fn new(e: ExportDir) -> Result<Self, PredictError> {
        let dir = e.artifacts_dir();
        let a = sparky_criteo::artifacts::load(&dir)?;
        if a.manifest_crc32c != e.artifacts.manifest_crc32c {
            return Err(PredictError::ArtifactsChanged(dir));
        }
        Ok(Self { scorer: Scorer::new(e), vocab: a.vocabulary })
    }

    /// The model alone.
    #[must_use]
    pub fn scorer(&self) -> &Scorer {
        &self.scorer
    }

    /// The vocabulary.
    #[must_use]
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocab
    }

    /// The logit of a parsed raw row.
    #[inline]
    #[must_use]
    pub fn logit_row(&self, row: &RawRow<'_>) -> f32 {
        let mut ids = [0i64; NUM_CAT];
        self.vocab.ids(row, &mut ids);
        self.scorer.logit(&row.ints, &ids)
    }

    /// The logit of a raw TSV line and its label if it has one: 40 fields
    /// are a labelled line, 39 an unlabelled one, decided for each line.
    ///
    /// # Errors
    /// A malformed line, or one of another field count.
    pub fn logit_tsv(&self, line: &[u8]) -> Result<(f32, Option<bool>), RowError> {
        let row = parse_line_any(line)?;
        Ok((self.logit_row(&row), row.label))
    }

    /// p(click) of a raw TSV line (39 fields, or 40 with a label first).
    ///
    /// # Errors
    /// As [`logit_tsv`](Self::logit_tsv).
    pub fn score_tsv(&self, line: &[u8]) -> Result<f32, RowError> {
        self.logit_tsv(line).map(|(z, _)| sigmoid(z))
    }
}
