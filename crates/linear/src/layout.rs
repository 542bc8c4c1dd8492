//! How raw features become the model's active weights.
//!
//! Every example activates exactly one weight per input feature, plus the
//! bias: [`ACTIVE`] weights in all. Weight 0 is the bias; then each integer
//! feature's slots; then each categorical feature's slots.

use sparky_prepared::schema::{CAT_FEATURES, INT_FEATURES, LABEL_FEATURE};
pub use sparky_prepared::schema::{MISSING_INT, NUM_CAT, NUM_INT};
use sparky_proto::sparky::model::v1 as pb;

use crate::error::ModelError;

/// Active weights per example: the bias and one per feature.
pub const ACTIVE: usize = 1 + NUM_INT + NUM_CAT;

/// Slots of an integer feature under [`IntTransform::LogBuckets`].
pub const BUCKETS: usize = 64;

/// The bucket boundaries of [`IntTransform::LogBuckets`]: the bucket of `x` is
/// the number of boundaries `<= x`. Buckets: 0 missing (`x <= -10`), 1
/// negative, 2 zero, 3 one, then `4 + floor(ln(x)^2)` for `x >= 2`, capped at
/// the last slot. Written as integer thresholds (the smallest `x` whose
/// `floor(ln(x)^2)` reaches each value), so that every implementation of the
/// rule (this one, the TensorFlow graph of the SavedModel export) agrees
/// exactly.
#[must_use]
pub fn bucket_boundaries() -> &'static [i64; BUCKETS - 1] {
    static TABLE: std::sync::OnceLock<[i64; BUCKETS - 1]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0i64; BUCKETS - 1];
        t[0] = MISSING_INT + 1; // negative (but not missing)
        t[1] = 0;
        t[2] = 1;
        t[3] = 2; // bucket 4: floor(ln(x)^2) = 0 for x = 2
        for (k, slot) in t.iter_mut().enumerate().skip(4) {
            // The smallest integer x with ln(x)^2 >= k - 3, i.e. x >= exp(sqrt(k - 3)).
            let target = ((k - 3) as f64).sqrt().exp();
            let mut x = target.ceil() as i64;
            // Guard against rounding in exp: step to the exact threshold.
            while x > 2 && ((x - 1) as f64).ln().powi(2) >= (k - 3) as f64 {
                x -= 1;
            }
            while (x as f64).ln().powi(2) < (k - 3) as f64 {
                x += 1;
            }
            *slot = x;
        }
        t
    })
}

/// The [`IntTransform::LogBuckets`] bucket of `x`.
#[inline]
#[must_use]
pub fn int_bucket(x: i64) -> usize {
    let b = bucket_boundaries();
    if x < b[3] {
        // Missing, negative, zero, one.
        return b[..3].iter().filter(|&&t| t <= x).count();
    }
    // partition_point: number of boundaries <= x.
    b.partition_point(|&t| t <= x)
}

/// How an integer feature enters the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntTransform {
    /// One-hot logarithmic buckets ([`bucket_boundaries`]): captures any
    /// monotone or non-monotone effect of the count, and missingness.
    LogBuckets,
    /// Two slots: a missing indicator (`x == -10`), and `ln(1 + max(x, 0))`
    /// as a value.
    Log1p,
}

/// How a categorical feature (a vocabulary id) enters the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CatEncoding {
    /// One weight per vocabulary id; id 0 (and any id outside the vocabulary)
    /// is the shared out-of-vocabulary weight.
    OneHot,
    /// The id as a number, `ln(1 + max(id, 0))`, with one weight: the guide's literal
    /// suggestion, kept only to show how much worse it is.
    RankAsNumber,
}

/// The weight layout of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    int_transform: IntTransform,
    cat_encoding: CatEncoding,
    vocab_sizes: Vec<u64>,
    /// Start of each feature's slots: ints then cats; the last entry is the total.
    offsets: Vec<u64>,
}

impl Layout {
    /// A layout for the given vocabulary sizes (C1..C26: ids `1..=size`).
    ///
    /// # Errors
    /// [`ModelError::TooManyWeights`] when the model would need 2^32 weights
    /// or more.
    pub fn new(
        int_transform: IntTransform,
        cat_encoding: CatEncoding,
        vocab_sizes: &[u64; NUM_CAT],
    ) -> Result<Self, ModelError> {
        let mut offsets = Vec::with_capacity(NUM_INT + NUM_CAT + 1);
        let mut at = 1u64; // the bias
        for _ in 0..NUM_INT {
            offsets.push(at);
            at += Self::int_slots(int_transform);
        }
        for &v in vocab_sizes {
            offsets.push(at);
            at = at.saturating_add(Self::cat_slots(cat_encoding, v));
        }
        offsets.push(at);
        if at >= u64::from(u32::MAX) {
            return Err(ModelError::TooManyWeights(at));
        }
        Ok(Self { int_transform, cat_encoding, vocab_sizes: vocab_sizes.to_vec(), offsets })
    }

    fn int_slots(t: IntTransform) -> u64 {
        match t {
            IntTransform::LogBuckets => BUCKETS as u64,
            IntTransform::Log1p => 2,
        }
    }

    fn cat_slots(e: CatEncoding, vocab: u64) -> u64 {
        match e {
            CatEncoding::OneHot => vocab.saturating_add(1),
            CatEncoding::RankAsNumber => 1,
        }
    }

    /// Number of weights.
    #[must_use]
    pub fn num_weights(&self) -> usize {
        self.offsets[NUM_INT + NUM_CAT] as usize
    }

    /// The integer transform.
    #[must_use]
    pub fn int_transform(&self) -> IntTransform {
        self.int_transform
    }

    /// The categorical encoding.
    #[must_use]
    pub fn cat_encoding(&self) -> CatEncoding {
        self.cat_encoding
    }

    /// Vocabulary sizes, C1..C26.
    #[must_use]
    pub fn vocab_sizes(&self) -> &[u64] {
        &self.vocab_sizes
    }

    /// The weight range of integer feature `i` (0-based).
    #[must_use]
    pub fn int_range(&self, i: usize) -> std::ops::Range<usize> {
        self.offsets[i] as usize..self.offsets[i + 1] as usize
    }

    /// The weight range of categorical feature `c` (0-based).
    #[must_use]
    pub fn cat_range(&self, c: usize) -> std::ops::Range<usize> {
        self.offsets[NUM_INT + c] as usize..self.offsets[NUM_INT + c + 1] as usize
    }

    /// The active (weight index, value) pairs of one example, bias first.
    #[inline]
    pub fn features(&self, ints: &[i64; NUM_INT], ids: &[i64; NUM_CAT], out: &mut [(u32, f32); ACTIVE]) {
        out[0] = (0, 1.0);
        for i in 0..NUM_INT {
            let base = self.offsets[i] as u32;
            let x = ints[i];
            out[1 + i] = match self.int_transform {
                IntTransform::LogBuckets => (base + int_bucket(x) as u32, 1.0),
                IntTransform::Log1p if x == MISSING_INT => (base, 1.0),
                IntTransform::Log1p => (base + 1, (x.max(0) as f32).ln_1p()),
            };
        }
        for c in 0..NUM_CAT {
            let base = self.offsets[NUM_INT + c] as u32;
            let v = self.vocab_sizes[c];
            let id = ids[c];
            out[1 + NUM_INT + c] = match self.cat_encoding {
                // Ids outside the vocabulary share the out-of-vocabulary slot 0.
                CatEncoding::OneHot => (base + if id < 0 || id as u64 > v { 0 } else { id as u32 }, 1.0),
                CatEncoding::RankAsNumber => (base, (id as f32).max(0.0).ln_1p()),
            };
        }
    }

    /// The layout as recorded in model files; feature names as in the Example
    /// schema.
    #[must_use]
    pub fn to_proto(&self) -> pb::FeatureLayout {
        pb::FeatureLayout {
            label: LABEL_FEATURE.into(),
            int_features: (0..NUM_INT)
                .map(|i| pb::IntFeature {
                    name: INT_FEATURES[i].into(),
                    transform: match self.int_transform {
                        IntTransform::LogBuckets => pb::IntTransform::LogBuckets,
                        IntTransform::Log1p => pb::IntTransform::Log1p,
                    } as i32,
                    slots: Self::int_slots(self.int_transform) as u32,
                })
                .collect(),
            categorical_features: (0..NUM_CAT)
                .map(|c| pb::CategoricalFeature {
                    name: CAT_FEATURES[c].into(),
                    vocabulary_size: self.vocab_sizes[c],
                    encoding: match self.cat_encoding {
                        CatEncoding::OneHot => pb::CategoricalEncoding::OneHot,
                        CatEncoding::RankAsNumber => pb::CategoricalEncoding::RankAsNumber,
                    } as i32,
                    slots: Self::cat_slots(self.cat_encoding, self.vocab_sizes[c]),
                })
                .collect(),
        }
    }

    /// Rebuilds a layout from its record, checking it.
    ///
    /// # Errors
    /// What is inconsistent in the record.
    pub fn from_proto(p: &pb::FeatureLayout) -> Result<Self, ModelError> {
        if p.int_features.len() != NUM_INT || p.categorical_features.len() != NUM_CAT {
            return Err(ModelError::FeatureCount { ints: p.int_features.len(), cats: p.categorical_features.len() });
        }
        let int_transform = match pb::IntTransform::try_from(p.int_features[0].transform) {
            Ok(pb::IntTransform::LogBuckets) => IntTransform::LogBuckets,
            Ok(pb::IntTransform::Log1p) => IntTransform::Log1p,
            _ => return Err(ModelError::UnknownIntTransform(p.int_features[0].transform)),
        };
        let cat_encoding = match pb::CategoricalEncoding::try_from(p.categorical_features[0].encoding) {
            Ok(pb::CategoricalEncoding::OneHot) => CatEncoding::OneHot,
            Ok(pb::CategoricalEncoding::RankAsNumber) => CatEncoding::RankAsNumber,
            _ => return Err(ModelError::UnknownCatEncoding(p.categorical_features[0].encoding)),
        };
        let sizes: [u64; NUM_CAT] = std::array::from_fn(|c| p.categorical_features[c].vocabulary_size);
        let layout = Self::new(int_transform, cat_encoding, &sizes)?;
        if layout.to_proto() != *p {
            return Err(ModelError::LayoutMismatch);
        }
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_rule() {
        assert_eq!(int_bucket(MISSING_INT), 0);
        assert_eq!(int_bucket(-100), 0);
        assert_eq!(int_bucket(-3), 1);
        assert_eq!(int_bucket(-1), 1);
        assert_eq!(int_bucket(0), 2);
        assert_eq!(int_bucket(1), 3);
        for x in 2i64..200_000 {
            let want = (4 + ((x as f64).ln().powi(2)).floor() as usize).min(BUCKETS - 1);
            assert_eq!(int_bucket(x), want, "x = {x}");
        }
        assert_eq!(int_bucket(i64::MAX), BUCKETS - 1);
        let b = bucket_boundaries();
        assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
        assert_eq!(&b[..8], &[-9, 0, 1, 2, 3, 5, 6, 8]);
    }

    #[test]
    fn features_activate_one_slot_each() {
        let sizes: [u64; NUM_CAT] = std::array::from_fn(|c| c as u64 + 1);
        let l = Layout::new(IntTransform::LogBuckets, CatEncoding::OneHot, &sizes).unwrap();
        assert_eq!(l.num_weights(), 1 + 13 * 64 + (1..=26u64).map(|v| v + 1).sum::<u64>() as usize);
        let mut out = [(0, 0.0); ACTIVE];
        let ints = [MISSING_INT; NUM_INT];
        let mut ids = [0i64; NUM_CAT];
        ids[0] = 1;
        ids[1] = 99; // beyond the vocabulary: out of vocabulary
        ids[2] = -5;
        l.features(&ints, &ids, &mut out);
        assert_eq!(out[0], (0, 1.0));
        assert_eq!(out[1].0 as usize, l.int_range(0).start);
        assert_eq!(out[14].0 as usize, l.cat_range(0).start + 1);
        assert_eq!(out[15].0 as usize, l.cat_range(1).start);
        assert_eq!(out[16].0 as usize, l.cat_range(2).start);
        for (k, (i, _)) in out.iter().enumerate().skip(1) {
            let r = if k <= NUM_INT { l.int_range(k - 1) } else { l.cat_range(k - 1 - NUM_INT) };
            assert!(r.contains(&(*i as usize)));
        }
        let round = Layout::from_proto(&l.to_proto()).unwrap();
        assert_eq!(round, l);
        let mut p = l.to_proto();
        p.categorical_features[3].slots += 1;
        assert!(Layout::from_proto(&p).is_err());
    }

    /// Found by `fuzz/model`: a recorded layout whose vocabularies are each
    /// below 2^32 - 1 but need 2^32 weights or more together made
    /// `from_proto` panic (in `Layout::new`) instead of refusing it.
    #[test]
    fn fuzz_from_proto_refuses_a_layout_of_too_many_weights() {
        let small = Layout::new(IntTransform::LogBuckets, CatEncoding::OneHot, &[0; NUM_CAT]).unwrap();
        let mut p = small.to_proto();
        for c in &mut p.categorical_features[..2] {
            c.vocabulary_size = u64::from(u32::MAX) - 16;
            c.slots = c.vocabulary_size + 1;
        }
        let e = Layout::from_proto(&p).unwrap_err();
        assert!(matches!(e, ModelError::TooManyWeights(_)), "{e}");
        assert!(e.to_string().contains("too many"), "{e}");
        // One such vocabulary alone still fits.
        p.categorical_features[1] = small.to_proto().categorical_features[1].clone();
        p.categorical_features[0].vocabulary_size = u64::from(u32::MAX) - 2000;
        p.categorical_features[0].slots = p.categorical_features[0].vocabulary_size + 1;
        assert_eq!(Layout::from_proto(&p).unwrap().num_weights(), 1 + 13 * 64 + (u32::MAX as usize - 1999) + 25);
    }

    #[test]
    fn log1p_and_rank_as_number() {
        let l = Layout::new(IntTransform::Log1p, CatEncoding::RankAsNumber, &[10; NUM_CAT]).unwrap();
        assert_eq!(l.num_weights(), 1 + 26 + 26);
        let mut out = [(0, 0.0); ACTIVE];
        let mut ints = [MISSING_INT; NUM_INT];
        ints[1] = 3;
        ints[2] = -2;
        let ids = [4i64; NUM_CAT];
        l.features(&ints, &ids, &mut out);
        assert_eq!(out[1], (1, 1.0));
        assert_eq!(out[2], (4, 4f32.ln()));
        assert_eq!(out[3], (6, 0.0));
        assert_eq!(out[14], (27, 5f32.ln()));
    }
}
