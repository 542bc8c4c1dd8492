//! A trained model: a layout and its weights.

use sparky_proto::sparky::model::v1 as pb;

use crate::error::ModelError;
use crate::layout::{ACTIVE, Layout, NUM_CAT, NUM_INT};
use crate::metrics::sigmoid;

/// A float32 sum in the order TensorFlow's CPU `AddN` kernel adds its `n`
/// inputs: the first `r` terms left to right (`r = n % 8`, or 8 when that is
/// 0, or 9 when it is 1), then each following group of eight summed left to
/// right and added to the total. Fed one term at a time: no allocation.
///
/// ```
/// use sparky_linear::model::AddN;
/// let mut s = AddN::new(3);
/// for t in [1.0, 2.0, 3.0] {
///     s.push(t);
/// }
/// assert_eq!(s.total(), 6.0);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AddN {
    first: usize,
    seen: usize,
    total: f32,
    group: f32,
}

impl AddN {
    /// A sum of `n` terms.
    #[must_use]
    pub fn new(n: usize) -> Self {
        let first = match n % 8 {
            _ if n < 2 => n,
            0 => 8,
            1 => 9,
            r => r,
        };
        Self { first, seen: 0, total: 0.0, group: 0.0 }
    }

    /// Adds the next term.
    #[inline]
    pub fn push(&mut self, t: f32) {
        if self.seen < self.first {
            self.total = if self.seen == 0 { t } else { self.total + t };
        } else {
            let k = (self.seen - self.first) % 8;
            self.group = if k == 0 { t } else { self.group + t };
            if k == 7 {
                self.total += self.group;
            }
        }
        self.seen += 1;
    }

    /// The sum of the terms pushed (all `n` of them).
    #[must_use]
    pub fn total(&self) -> f32 {
        self.total
    }
}

/// A logistic-regression model: `p(click) = sigmoid(sum of active weights x values)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    /// How features map to weights.
    pub layout: Layout,
    /// One weight per slot; weight 0 is the bias.
    pub weights: Vec<f32>,
}

impl LinearModel {
    /// A model of all-zero weights (predicts 0.5).
    #[must_use]
    pub fn zeros(layout: Layout) -> Self {
        let n = layout.num_weights();
        Self { layout, weights: vec![0.0; n] }
    }

    /// The logit of one example: the 39 feature terms summed in float32 in
    /// the order TensorFlow's `AddN` kernel sums them ([`AddN`]), then the
    /// bias added, so that the SavedModel export computes bit-identical
    /// logits.
    #[inline]
    #[must_use]
    pub fn logit(&self, ints: &[i64; NUM_INT], ids: &[i64; NUM_CAT]) -> f32 {
        let mut active = [(0u32, 0f32); ACTIVE];
        self.layout.features(ints, ids, &mut active);
        let mut sum = AddN::new(ACTIVE - 1);
        for &(i, v) in &active[1..] {
            sum.push(self.weights[i as usize] * v);
        }
        sum.total() + self.weights[0] * active[0].1
    }

    /// p(click) of one example.
    #[inline]
    #[must_use]
    pub fn predict(&self, ints: &[i64; NUM_INT], ids: &[i64; NUM_CAT]) -> f32 {
        sigmoid(self.logit(ints, ids))
    }

    /// Non-zero weights (after L1, many are exactly zero).
    #[must_use]
    pub fn nonzero(&self) -> usize {
        self.weights.iter().filter(|w| **w != 0.0).count()
    }

    /// The model as a protobuf message.
    #[must_use]
    pub fn to_proto(&self) -> pb::LinearModel {
        pb::LinearModel { layout: Some(self.layout.to_proto()), weights: self.weights.clone() }
    }

    /// Rebuilds a model from its message, checking it.
    ///
    /// # Errors
    /// What is inconsistent: the layout, the weight count, a non-finite weight.
    pub fn from_proto(p: pb::LinearModel) -> Result<Self, ModelError> {
        let layout = Layout::from_proto(p.layout.as_ref().ok_or(ModelError::Missing("layout"))?)?;
        if p.weights.len() != layout.num_weights() {
            return Err(ModelError::WeightCount { found: p.weights.len(), expected: layout.num_weights() });
        }
        if let Some(i) = p.weights.iter().position(|w| !w.is_finite()) {
            return Err(ModelError::NonFiniteWeight(i));
        }
        Ok(Self { layout, weights: p.weights })
    }
}
