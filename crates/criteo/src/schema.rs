//! The Criteo data layout and the Example schema sparky writes.

use std::fmt;
use std::str::FromStr;

/// Integer features I1..I13.
pub const NUM_INT: usize = 13;
/// Categorical features C1..C26.
pub const NUM_CAT: usize = 26;
/// Fields of a labelled line: label, I1..I13, C1..C26.
pub const LABELLED_FIELDS: usize = 1 + NUM_INT + NUM_CAT;
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

/// Name of integer feature `i` (0-based): `integer-feature-{i+1}`.
#[must_use]
pub fn int_feature_name(i: usize) -> String {
    format!("integer-feature-{}", i + 1)
}

/// Name of categorical feature `c` (0-based): `categorical-feature-{c+1}`.
#[must_use]
pub fn cat_feature_name(c: usize) -> String {
    format!("categorical-feature-{}", c + 1)
}

/// The TSV column name of field `f` (0-based, labelled layout): `label`,
/// `I1`..`I13`, `C1`..`C26`.
#[must_use]
pub fn column_name(f: usize) -> String {
    match f {
        0 => "label".to_string(),
        f if f <= NUM_INT => format!("I{f}"),
        f => format!("C{}", f - NUM_INT),
    }
}

/// Which of the guide's three runs: it decides the input layout, whether a
/// vocabulary is built or loaded, and the first feature of each Example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    /// Fields per line.
    #[must_use]
    pub fn fields(self) -> usize {
        if self.labelled() { LABELLED_FIELDS } else { LABELLED_FIELDS - 1 }
    }

    /// The Example feature names, in the order every Example of that mode carries them: the label
    /// (or id), the 13 integer features, the 26 categorical features.
    #[must_use]
    pub fn feature_names(self) -> Vec<String> {
        let first = if self.labelled() { LABEL_FEATURE } else { ID_FEATURE };
        std::iter::once(first.to_string())
            .chain((0..NUM_INT).map(int_feature_name))
            .chain((0..NUM_CAT).map(cat_feature_name))
            .collect()
    }

    /// The lowercase name used on the command line.
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

/// Number of int64 values in one prepared row: label or id, 13 integers, 26
/// vocabulary ids.
pub const ROW_VALUES: usize = 1 + NUM_INT + NUM_CAT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = Mode::Train.feature_names();
        assert_eq!(n.len(), ROW_VALUES);
        assert_eq!(n[0], "clicked");
        assert_eq!(n[1], "integer-feature-1");
        assert_eq!(n[13], "integer-feature-13");
        assert_eq!(n[14], "categorical-feature-1");
        assert_eq!(n[39], "categorical-feature-26");
        assert_eq!(Mode::Predict.feature_names()[0], "id");
        assert_eq!(column_name(0), "label");
        assert_eq!(column_name(13), "I13");
        assert_eq!(column_name(14), "C1");
        assert_eq!(column_name(39), "C26");
        for m in [Mode::Train, Mode::Evaluate, Mode::Predict] {
            assert_eq!(m.to_string().parse::<Mode>().unwrap(), m);
        }
        assert!("Predict".parse::<Mode>().is_err());
        assert_eq!(Mode::Predict.fields(), 39);
    }
}
