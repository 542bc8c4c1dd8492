//! The error of this crate.

use crate::layout::{NUM_CAT, NUM_INT};

/// Why a model, a layout, optimizer settings or a checkpoint cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A layout record with other feature counts.
    #[error("expected {NUM_INT} integer and {NUM_CAT} categorical features, found {ints} and {cats}")]
    FeatureCount {
        /// Integer features found.
        ints: usize,
        /// Categorical features found.
        cats: usize,
    },
    /// An integer transform this build does not know.
    #[error("unknown integer transform {0}")]
    UnknownIntTransform(i32),
    /// A categorical encoding this build does not know.
    #[error("unknown categorical encoding {0}")]
    UnknownCatEncoding(i32),
    /// An optimizer this build does not know.
    #[error("unknown optimizer {0}")]
    UnknownOptimizer(i32),
    /// More weights than one model can index (2^32).
    #[error("the layout needs {0} weights, too many for one model")]
    TooManyWeights(u64),
    /// A layout record that differs from the layout this build makes.
    #[error("feature names, transforms or slot counts differ from this build's layout")]
    LayoutMismatch,
    /// A weight vector of the wrong length.
    #[error("{found} weights, the layout needs {expected}")]
    WeightCount {
        /// Weights found.
        found: usize,
        /// Weights the layout needs.
        expected: usize,
    },
    /// A weight that is NaN or infinite.
    #[error("weight {0} is not finite")]
    NonFiniteWeight(usize),
    /// A record without a part it needs.
    #[error("the checkpoint has no {0}")]
    Missing(&'static str),
    /// Optimizer state of another size than the model.
    #[error("optimizer state does not match the model size")]
    StateSize,
    /// Optimizer state that is NaN or infinite.
    #[error("optimizer state holds a non-finite value")]
    NonFiniteState,
    /// A setting out of its range.
    #[error("{name} must be {range}, got {value}")]
    Setting {
        /// The setting, as the command line names it.
        name: &'static str,
        /// The valid range, in words.
        range: &'static str,
        /// The value given.
        value: f64,
    },
}
