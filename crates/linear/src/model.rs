//! A trained model: a layout and its weights.

use sparky_proto::sparky::model::v1 as pb;

use crate::layout::{ACTIVE, Layout, NUM_CAT, NUM_INT};
use crate::metrics::sigmoid;

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

    /// The logit of one example. Sums in a fixed order: bias, integer
    /// features, categorical features.
    #[inline]
    #[must_use]
    pub fn logit(&self, ints: &[i64; NUM_INT], ids: &[i64; NUM_CAT]) -> f32 {
        let mut active = [(0u32, 0f32); ACTIVE];
        self.layout.features(ints, ids, &mut active);
        active.iter().map(|&(i, v)| self.weights[i as usize] * v).sum()
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
    pub fn from_proto(p: pb::LinearModel) -> Result<Self, String> {
        let layout = Layout::from_proto(p.layout.as_ref().ok_or("the model has no layout")?)?;
        if p.weights.len() != layout.num_weights() {
            return Err(format!("{} weights, the layout needs {}", p.weights.len(), layout.num_weights()));
        }
        if let Some(i) = p.weights.iter().position(|w| !w.is_finite()) {
            return Err(format!("weight {i} is not finite"));
        }
        Ok(Self { layout, weights: p.weights })
    }
}
