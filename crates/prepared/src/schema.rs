//! The Criteo layout and the Example schema, declared once for every crate.
//!
//! A raw line holds a label (train and evaluate data), 13 integer features
//! I1..I13 and 26 categorical features C1..C26, tab-separated, empty fields
//! missing. A prepared row is a `tf.train.Example` of one int64 per feature:
//! `clicked` (or `id` in predict mode), `integer-feature-1..13` (missing:
//! [`MISSING_INT`]) and `categorical-feature-1..26` (the value's rank in its
//! vocabulary, [`OOV_ID`] for values not in it).

use std::fmt;
use std::str::FromStr;

/// Integer features I1..I13.
pub const NUM_INT: usize = 13;
/// Categorical features C1..C26.
pub const NUM_CAT: usize = 26;
/// Fields of a labelled TSV line: label, I1..I13, C1..C26.
pub const LABELLED_FIELDS: usize = 1 + NUM_INT + NUM_CAT;
/// Fields of an unlabelled TSV line (Kaggle's `test.txt`).
pub const UNLABELLED_FIELDS: usize = NUM_INT + NUM_CAT;
/// Values of one prepared Example: label or id, 13 integers, 26 vocabulary ids.
pub const ROW_VALUES: usize = 1 + NUM_INT + NUM_CAT;
/// The value a missing integer becomes (the guide's choice; the real data has
/// nothing below -3).
pub const MISSING_INT: i64 = -10;
/// The vocabulary id of a value not in the vocabulary (unseen in training, or
/// seen fewer than the minimum count). Vocabulary ids start at 1.
pub const OOV_ID: i64 = 0;

/// The label feature of train and evaluate mode Examples.
pub const LABEL_FEATURE: &str = "clicked";
/// The row-number feature of predict mode Examples.
pub const ID_FEATURE: &str = "id";

/// The integer features' Example names, I1..I13.
pub const INT_FEATURES: [&str; NUM_INT] = [
    "integer-feature-1",
    "integer-feature-2",
    "integer-feature-3",
    "integer-feature-4",
    "integer-feature-5",
    "integer-feature-6",
    "integer-feature-7",
    "integer-feature-8",
    "integer-feature-9",
    "integer-feature-10",
    "integer-feature-11",
    "integer-feature-12",
    "integer-feature-13",
];

/// The categorical features' Example names, C1..C26.
pub const CAT_FEATURES: [&str; NUM_CAT] = [
    "categorical-feature-1",
    "categorical-feature-2",
    "categorical-feature-3",
    "categorical-feature-4",
    "categorical-feature-5",
    "categorical-feature-6",
    "categorical-feature-7",
    "categorical-feature-8",
    "categorical-feature-9",
    "categorical-feature-10",
    "categorical-feature-11",
    "categorical-feature-12",
    "categorical-feature-13",
    "categorical-feature-14",
    "categorical-feature-15",
    "categorical-feature-16",
    "categorical-feature-17",
    "categorical-feature-18",
    "categorical-feature-19",
    "categorical-feature-20",
    "categorical-feature-21",
    "categorical-feature-22",
    "categorical-feature-23",
    "categorical-feature-24",
    "categorical-feature-25",
    "categorical-feature-26",
];

/// The TSV column names, in the labelled layout: `label`, `I1`..`I13`, `C1`..`C26`.
pub const COLUMNS: [&str; LABELLED_FIELDS] = [
    "label", "I1", "I2", "I3", "I4", "I5", "I6", "I7", "I8", "I9", "I10", "I11", "I12", "I13", "C1", "C2", "C3", "C4",
    "C5", "C6", "C7", "C8", "C9", "C10", "C11", "C12", "C13", "C14", "C15", "C16", "C17", "C18", "C19", "C20", "C21",
    "C22", "C23", "C24", "C25", "C26",
];

/// The TSV column name of field `f` (0-based, labelled layout).
///
/// # Panics
/// If `f` is 40 or more.
#[must_use]
pub fn column_name(f: usize) -> &'static str {
    COLUMNS[f]
}

/// Which of the guide's three runs: it decides the input layout, whether a
/// vocabulary is built or loaded, and the first feature of each Example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Labelled input; builds the vocabulary and writes the artifacts.
    Train,
    /// Labelled input; loads the artifacts.
    Evaluate,
    /// Unlabelled input (39 fields, as Kaggle's `test.txt`); loads the
    /// artifacts; Examples carry `id` instead of `clicked`.
    Predict,
}

impl Mode {
    /// True when lines carry a label.
    #[must_use]
    pub fn labelled(self) -> bool {
        !matches!(self, Mode::Predict)
    }

    /// Fields per TSV line.
    #[must_use]
    pub fn fields(self) -> usize {
        if self.labelled() { LABELLED_FIELDS } else { UNLABELLED_FIELDS }
    }

    /// The first feature of this mode's Examples: `clicked` or `id`.
    #[must_use]
    pub fn first_feature(self) -> &'static str {
        if self.labelled() { LABEL_FEATURE } else { ID_FEATURE }
    }

    /// The Example feature names, in the order every Example of that mode
    /// carries them: the label (or id), the 13 integer features, the 26
    /// categorical features.
    #[must_use]
    pub fn feature_names(self) -> [&'static str; ROW_VALUES] {
        let mut out = [""; ROW_VALUES];
        out[0] = self.first_feature();
        out[1..=NUM_INT].copy_from_slice(&INT_FEATURES);
        out[1 + NUM_INT..].copy_from_slice(&CAT_FEATURES);
        out
    }

    /// The lowercase name used on the command line and in `_prepare.json`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Train => "train",
            Mode::Evaluate => "evaluate",
            Mode::Predict => "predict",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Mode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mode {0:?}: expected train, evaluate or predict")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "train" => Ok(Mode::Train),
            "evaluate" | "eval" => Ok(Mode::Evaluate),
            "predict" => Ok(Mode::Predict),
            _ => Err(UnknownMode(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = Mode::Train.feature_names();
        assert_eq!(n.len(), ROW_VALUES);
        assert_eq!(n[0], "clicked");
        for i in 0..NUM_INT {
            assert_eq!(n[1 + i], format!("integer-feature-{}", i + 1));
            assert_eq!(column_name(1 + i), format!("I{}", i + 1));
        }
        for c in 0..NUM_CAT {
            assert_eq!(n[1 + NUM_INT + c], format!("categorical-feature-{}", c + 1));
            assert_eq!(column_name(1 + NUM_INT + c), format!("C{}", c + 1));
        }
        assert_eq!(Mode::Predict.feature_names()[0], "id");
        assert_eq!(column_name(0), "label");
        for m in [Mode::Train, Mode::Evaluate, Mode::Predict] {
            assert_eq!(m.to_string().parse::<Mode>().unwrap(), m);
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{m}\""));
        }
        assert!("Predict".parse::<Mode>().is_err());
        assert_eq!(Mode::Predict.fields(), 39);
        assert_eq!(Mode::Evaluate.fields(), 40);
    }
}
