//! Evaluation metrics: log loss, exact AUC, accuracy, calibration.

use serde::{Deserialize, Serialize};

/// The figures of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Mean binary cross-entropy (natural log).
    pub log_loss: f64,
    /// Area under the ROC curve, exact (ties count one half).
    pub auc: f64,
    /// Fraction of examples whose prediction at threshold 0.5 is right.
    pub accuracy: f64,
    /// Mean predicted probability.
    pub mean_prediction: f64,
    /// Mean label (the click rate).
    pub label_mean: f64,
    /// Examples evaluated.
    pub examples: u64,
}

/// `ln(1 + e^x)`, without overflow.
#[inline]
#[must_use]
pub fn softplus(x: f64) -> f64 {
    if x > 0.0 { x + (-x).exp().ln_1p() } else { x.exp().ln_1p() }
}

/// The logistic function in float32, rounded from a float64 evaluation (so
/// it is within half an ulp of exact; TensorFlow's float32 `Sigmoid` kernel
/// agrees to an ulp or two).
#[inline]
#[must_use]
pub fn sigmoid(x: f32) -> f32 {
    (1.0 / (1.0 + (-f64::from(x)).exp())) as f32
}

/// Log loss of one example from its logit: `-ln p` if clicked, else
/// `-ln(1 - p)`, computed from the logit so that it stays finite.
#[inline]
#[must_use]
pub fn logit_loss(logit: f32, label: bool) -> f64 {
    let z = f64::from(logit);
    if label { softplus(-z) } else { softplus(z) }
}

/// Collects (logit, label) pairs and computes [`Metrics`]. AUC needs every
/// pair, so memory grows with the evaluation set (8 bytes per example).
#[derive(Debug, Default, Clone)]
pub struct Evaluator {
    pairs: Vec<(f32, bool)>,
    loss: f64,
    prob: f64,
    positives: u64,
    correct: u64,
}

impl Evaluator {
    /// An empty evaluator.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one example.
    #[inline]
    pub fn add(&mut self, logit: f32, label: bool) {
        self.pairs.push((logit, label));
        self.loss += logit_loss(logit, label);
        self.prob += f64::from(sigmoid(logit));
        self.positives += u64::from(label);
        self.correct += u64::from((logit > 0.0) == label);
    }

    /// Adds everything another evaluator collected.
    pub fn merge(&mut self, other: Evaluator) {
        self.pairs.extend(other.pairs);
        self.loss += other.loss;
        self.prob += other.prob;
        self.positives += other.positives;
        self.correct += other.correct;
    }

    /// Examples so far.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True before any example.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The metrics (sorts the pairs for AUC).
    #[must_use]
    pub fn finish(mut self) -> Metrics {
        let n = self.pairs.len() as u64;
        let auc = exact_auc(&mut self.pairs);
        let d = n.max(1) as f64;
        Metrics {
            log_loss: self.loss / d,
            auc,
            accuracy: self.correct as f64 / d,
            mean_prediction: self.prob / d,
            label_mean: self.positives as f64 / d,
            examples: n,
        }
    }
}

/// Exact ROC AUC: the probability that a random positive scores above a
/// random negative, ties counting one half. NaN when one class is absent.
#[must_use]
pub fn exact_auc(pairs: &mut [(f32, bool)]) -> f64 {
    pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let positives = pairs.iter().filter(|p| p.1).count() as u64;
    let negatives = pairs.len() as u64 - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    // Count, for each positive, the negatives below it (+ half the tied ones).
    let mut below = 0u64; // negatives strictly below the current group
    let mut twice_wins = 0u128; // 2 * (pairs won) to keep halves exact
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        let (mut pos, mut neg) = (0u64, 0u64);
        while j < pairs.len() && pairs[j].0.total_cmp(&pairs[i].0).is_eq() {
            if pairs[j].1 {
                pos += 1;
            } else {
                neg += 1;
            }
            j += 1;
        }
        twice_wins += u128::from(pos) * u128::from(2 * below + neg);
        below += neg;
        i = j;
    }
    twice_wins as f64 / (2.0 * positives as f64 * negatives as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brute_auc(pairs: &[(f32, bool)]) -> f64 {
        let (mut wins, mut total) = (0.0, 0.0);
        for a in pairs.iter().filter(|p| p.1) {
            for b in pairs.iter().filter(|p| !p.1) {
                total += 1.0;
                if a.0 > b.0 {
                    wins += 1.0;
                } else if a.0 == b.0 {
                    wins += 0.5;
                }
            }
        }
        wins / total
    }

    #[test]
    fn known_values() {
        let mut e = Evaluator::new();
        for (z, y) in [(2.0, true), (1.0, false), (0.5, true), (-1.0, false)] {
            e.add(z, y);
        }
        let m = e.finish();
        assert!((m.auc - 0.75).abs() < 1e-12);
        // (2,T) right, (1,F) wrong, (0.5,T) right, (-1,F) right.
        assert_eq!(m.accuracy, 0.75);
        assert_eq!(m.examples, 4);
        assert_eq!(m.label_mean, 0.5);
    }

    #[test]
    fn loss_from_logits_is_stable() {
        assert!((logit_loss(0.0, true) - std::f64::consts::LN_2).abs() < 1e-12);
        assert!(logit_loss(1000.0, true) < 1e-12);
        assert!((logit_loss(1000.0, false) - 1000.0).abs() < 1e-9);
        assert!((logit_loss(-3.0, false) - (1.0 + (-3f64).exp()).ln()).abs() < 1e-12);
        assert_eq!(sigmoid(0.0), 0.5);
    }

    proptest! {
        #[test]
        fn auc_matches_brute_force(pairs in proptest::collection::vec((-3i8..3, any::<bool>()), 2..60)) {
            let mut p: Vec<(f32, bool)> = pairs.iter().map(|&(s, y)| (f32::from(s), y)).collect();
            let want = brute_auc(&p);
            let got = exact_auc(&mut p);
            if want.is_nan() {
                prop_assert!(got.is_nan());
            } else {
                prop_assert!((got - want).abs() < 1e-12, "{} vs {}", got, want);
            }
        }
    }
}
