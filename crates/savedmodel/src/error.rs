//! Errors of the SavedModel writer.

use std::io;
use std::path::PathBuf;

/// Why a model cannot be turned into a SavedModel, or why writing it failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SavedModelError {
    /// A feature has an empty name: `tf.Example` features need one.
    #[error("feature {index} of the {kind} features has an empty name")]
    EmptyFeatureName {
        /// "integer" or "categorical".
        kind: &'static str,
        /// Its position in the model's list of that kind.
        index: usize,
    },
    /// Two features share a name: the graph would parse one Example feature
    /// twice, which `ParseExampleV2` refuses.
    #[error("feature {name:?} is listed twice")]
    DuplicateFeature {
        /// The repeated name.
        name: String,
    },
    /// A bucketed integer feature needs exactly one weight more than it has
    /// boundaries.
    #[error(
        "feature {name:?}: {weights} bucket weights for {boundaries} boundaries (expected {})",
        boundaries + 1
    )]
    BucketWeights {
        /// The feature.
        name: String,
        /// Boundaries given.
        boundaries: usize,
        /// Weights given.
        weights: usize,
    },
    /// A one-hot categorical feature needs at least slot 0, the
    /// out-of-vocabulary weight.
    #[error("feature {name:?}: one-hot weights are empty (slot 0, out of vocabulary, is required)")]
    EmptyVocabulary {
        /// The feature.
        name: String,
    },
    /// The encoded `saved_model.pb` would exceed what protobuf parsers accept
    /// (2 GiB - 1 bytes). Nothing was written.
    #[error(
        "the SavedModel would take {bytes} bytes, more than the protobuf limit of {} bytes",
        crate::MAX_PROTO_BYTES
    )]
    TooLarge {
        /// The encoded size.
        bytes: u64,
    },
    /// Creating or committing the file failed.
    #[error(transparent)]
    Commit(#[from] sparky_io::Error),
    /// Writing the file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}
