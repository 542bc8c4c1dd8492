//! The model description and its scoring rule, which the graph reproduces.

use std::collections::HashSet;

use crate::SavedModelError;

/// How an integer feature enters the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IntInput<'a> {
    /// One-hot buckets: bucket = number of `boundaries` that are <= x (x as
    /// read, an int64); the weight of that bucket is added.
    /// `weights.len() == boundaries.len() + 1`.
    ///
    /// The rule counts boundaries, so it holds whether or not they are sorted;
    /// the graph compares in int64, so it is exact for every x.
    Buckets {
        /// Bucket boundaries, normally increasing.
        boundaries: &'a [i64],
        /// One weight per bucket.
        weights: &'a [f32],
    },
    /// Two weights: `missing_weight` added when x == `missing_value`, else
    /// `weight * ln(1 + max(x, 0))` (computed in float32).
    Log1p {
        /// The value that means "missing" (sparky writes -10).
        missing_value: i64,
        /// Added for a missing value.
        missing_weight: f32,
        /// Multiplies `ln(1 + max(x, 0))` otherwise.
        weight: f32,
    },
}

/// How a categorical (vocabulary id) feature enters the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CatInput<'a> {
    /// `weights[id]`; ids outside `0..weights.len()` use `weights[0]` (the
    /// out-of-vocabulary slot).
    OneHot {
        /// One weight per id; slot 0 is out of vocabulary.
        weights: &'a [f32],
    },
    /// `weight * ln(1 + max(id, 0))` (the guide's "rank as a number"; an
    /// option only).
    RankAsNumber {
        /// Multiplies `ln(1 + max(id, 0))`.
        weight: f32,
    },
}

/// A trained logistic-regression model, borrowed from wherever its weights
/// live: p(click) = sigmoid(bias + the sum of one term per feature).
///
/// The features are read from `tf.Example`s by name; each must be an int64
/// list of exactly one value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScoringModel<'a> {
    /// Added to every logit.
    pub bias: f32,
    /// Example feature name -> input, in the order of `score`'s `ints`.
    pub int_features: Vec<(String, IntInput<'a>)>,
    /// Example feature name -> input, in the order of `score`'s `ids`.
    pub cat_features: Vec<(String, CatInput<'a>)>,
}

impl IntInput<'_> {
    /// This feature's term of the logit for the value `x`.
    ///
    /// # Panics
    ///
    /// For `Buckets` with fewer weights than the bucket `x` falls in (a model
    /// that [`ScoringModel::validate`] refuses).
    #[must_use]
    pub fn term(&self, x: i64) -> f32 {
        match *self {
            IntInput::Buckets { boundaries, weights } => weights[boundaries.iter().filter(|&&b| b <= x).count()],
            IntInput::Log1p { missing_value, missing_weight, weight } => {
                if x == missing_value {
                    missing_weight
                } else {
                    log1p_term(x, weight)
                }
            }
        }
    }
}

impl CatInput<'_> {
    /// This feature's term of the logit for the id `id`.
    ///
    /// # Panics
    ///
    /// For `OneHot` with no weights at all (a model that
    /// [`ScoringModel::validate`] refuses).
    #[must_use]
    pub fn term(&self, id: i64) -> f32 {
        match *self {
            CatInput::OneHot { weights } => match usize::try_from(id) {
                Ok(i) if i < weights.len() => weights[i],
                _ => weights[0],
            },
            CatInput::RankAsNumber { weight } => log1p_term(id, weight),
        }
    }
}

/// `weight * ln(1 + max(x, 0))` in float32, in the graph's order: cast,
/// clamp, log1p, multiply.
fn log1p_term(x: i64, weight: f32) -> f32 {
    // `as` rounds to nearest, as TensorFlow's int64 -> float Cast does.
    let v = (x as f32).max(0.0);
    v.ln_1p() * weight
}

use sparky_linear::model::AddN;

/// The logistic function, as sparky computes it everywhere.
pub(crate) use sparky_linear::metrics::sigmoid;

impl ScoringModel<'_> {
    /// Checks what the graph relies on: non-empty, distinct feature names;
    /// `boundaries.len() + 1` weights for each bucketed feature; at least the
    /// out-of-vocabulary weight for each one-hot feature.
    /// [`write_saved_model`](crate::write_saved_model) calls it first.
    pub fn validate(&self) -> Result<(), SavedModelError> {
        let mut seen = HashSet::new();
        let names = self
            .int_features
            .iter()
            .map(|(n, _)| ("integer", n))
            .enumerate()
            .chain(self.cat_features.iter().map(|(n, _)| ("categorical", n)).enumerate());
        for (index, (kind, name)) in names {
            if name.is_empty() {
                return Err(SavedModelError::EmptyFeatureName { kind, index });
            }
            if !seen.insert(name.as_str()) {
                return Err(SavedModelError::DuplicateFeature { name: name.clone() });
            }
        }
        for (name, input) in &self.int_features {
            if let IntInput::Buckets { boundaries, weights } = input
                && weights.len() != boundaries.len() + 1
            {
                return Err(SavedModelError::BucketWeights {
                    name: name.clone(),
                    boundaries: boundaries.len(),
                    weights: weights.len(),
                });
            }
        }
        for (name, input) in &self.cat_features {
            if let CatInput::OneHot { weights } = input
                && weights.is_empty()
            {
                return Err(SavedModelError::EmptyVocabulary { name: name.clone() });
            }
        }
        Ok(())
    }

    /// The logit for one row: the feature terms summed in float32 in the
    /// graph's order (integer features, then categorical features, grouped as
    /// `AddN` groups them), then the bias added.
    ///
    /// # Panics
    ///
    /// When `ints` or `ids` do not have one value per feature, or the model
    /// fails [`validate`](Self::validate).
    #[must_use]
    pub fn logit(&self, ints: &[i64], ids: &[i64]) -> f32 {
        assert_eq!(ints.len(), self.int_features.len(), "one value per integer feature");
        assert_eq!(ids.len(), self.cat_features.len(), "one id per categorical feature");
        let mut sum = AddN::new(ints.len() + ids.len());
        for ((_, input), &x) in self.int_features.iter().zip(ints) {
            sum.push(input.term(x));
        }
        for ((_, input), &id) in self.cat_features.iter().zip(ids) {
            sum.push(input.term(id));
        }
        sum.total() + self.bias
    }

    /// p(click) for one row of raw feature values (ints in `int_features`
    /// order, ids in `cat_features` order), computed exactly as the graph
    /// computes it (float32 sums in the same order), so tests can compare.
    ///
    /// The graph's `scores` output is `[1 - p, p]` with this `p`. Only the
    /// transcendental functions (`ln_1p`, the sigmoid) may differ from
    /// TensorFlow's by an ulp or two; everything else is bit for bit.
    ///
    /// # Panics
    ///
    /// As [`logit`](Self::logit).
    #[must_use]
    pub fn score(&self, ints: &[i64], ids: &[i64]) -> f32 {
        sigmoid(self.logit(ints, ids))
    }

    /// Number of float weights the model holds, the bias included: what the
    /// SavedModel's size is mostly made of (4 bytes each).
    #[must_use]
    pub fn num_weights(&self) -> usize {
        let ints: usize = self
            .int_features
            .iter()
            .map(|(_, i)| match i {
                IntInput::Buckets { weights, .. } => weights.len(),
                IntInput::Log1p { .. } => 2,
            })
            .sum();
        let cats: usize = self
            .cat_features
            .iter()
            .map(|(_, c)| match c {
                CatInput::OneHot { weights } => weights.len(),
                CatInput::RankAsNumber { .. } => 1,
            })
            .sum();
        1 + ints + cats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's order, written out with an explicit list.
    fn add_n_reference(terms: &[f32]) -> f32 {
        let n = terms.len();
        if n == 1 {
            return terms[0];
        }
        let r = match n % 8 {
            0 => 8,
            1 => 9,
            r => r,
        };
        let mut total = terms[..r].iter().skip(1).fold(terms[0], |a, &b| a + b);
        for g in terms[r..].chunks(8) {
            total += g.iter().skip(1).fold(g[0], |a, &b| a + b);
        }
        total
    }

    #[test]
    fn add_n_groups_like_the_kernel() {
        for n in 1..=41 {
            let terms: Vec<f32> =
                (0..n).map(|i| ((i * 7919) % 101) as f32 * 1.37e-3 - 0.05 + (i as f32) * 1e4).collect();
            let mut s = AddN::new(n);
            for &t in &terms {
                s.push(t);
            }
            assert_eq!(s.total().to_bits(), add_n_reference(&terms).to_bits(), "n = {n}");
        }
    }

    #[test]
    fn add_n_differs_from_a_plain_left_fold() {
        // Proof that the grouping matters: some inputs give another float.
        // n = 10: the first two terms, then a group of eight ones summed apart
        // (8, which 1e8 can absorb) rather than added one by one (each lost).
        let terms = [1e8f32, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
        let mut s = AddN::new(terms.len());
        for &t in &terms {
            s.push(t);
        }
        let left: f32 = terms.iter().skip(1).fold(terms[0], |a, &b| a + b);
        assert_eq!(left, 1e8);
        assert_eq!(s.total(), 1e8 + 8.0);
        assert_eq!(s.total(), add_n_reference(&terms));
    }
}
