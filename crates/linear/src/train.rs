//! Training: optimizers and lock-free multi-threaded mini-batch updates.
//!
//! The model's weights and optimizer state live in arrays of atomics
//! ([`SharedModel`]). Each thread runs a [`Worker`]: it predicts with the
//! current weights, accumulates the gradient of its mini-batch in a private
//! dense buffer, and at the end of the batch applies one optimizer step per
//! touched weight with relaxed atomic loads and stores (Hogwild-style: rare
//! concurrent updates of the same weight may overwrite one another, which
//! sparse logistic regression tolerates well). With one thread every step is
//! deterministic.
//!
//! For FTRL and AdaGrad the gradient of a batch is the *sum* of its examples'
//! gradients: they scale every coordinate by its own accumulated squared
//! gradient, so a rare value seen once in a batch keeps a full-size step. SGD
//! steps along the batch's mean gradient, as usual.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use sparky_memhint::{huge_pages, prefetch};
use sparky_proto::sparky::model::v1 as pb;

use crate::error::ModelError;
use crate::layout::{ACTIVE, Layout, NUM_CAT, NUM_INT};
use crate::metrics::logit_loss;
use crate::model::LinearModel;

/// Which optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// FTRL-Proximal (McMahan et al., 2013), the default of TensorFlow's
    /// LinearClassifier: per-coordinate learning rates and exact zeros from L1.
    Ftrl,
    /// AdaGrad, with L1 as a proximal step.
    Adagrad,
    /// Plain SGD, with L1 as a proximal step.
    Sgd,
}

/// Optimizer settings, unchecked; [`OptimizerConfig::validate`] makes them usable.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// The optimizer.
    pub kind: OptimizerKind,
    /// FTRL's alpha, AdaGrad's and SGD's step size.
    pub learning_rate: f64,
    /// L1 regularisation strength.
    pub l1: f64,
    /// L2 regularisation strength.
    pub l2: f64,
    /// FTRL's beta; AdaGrad's initial accumulator. Unused by SGD.
    pub beta: f64,
}

impl OptimizerConfig {
    /// The defaults of `kind`, chosen on the evaluation figures recorded in
    /// `docs/PERFORMANCE.md`.
    #[must_use]
    pub fn defaults(kind: OptimizerKind) -> Self {
        match kind {
            OptimizerKind::Ftrl => Self { kind, learning_rate: 0.05, l1: 1.0, l2: 1.0, beta: 1.0 },
            OptimizerKind::Adagrad => Self { kind, learning_rate: 0.05, l1: 0.0, l2: 1e-4, beta: 0.1 },
            OptimizerKind::Sgd => Self { kind, learning_rate: 0.01, l1: 0.0, l2: 1e-4, beta: 0.0 },
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`ModelError::Setting`] naming the setting that is out of range.
    pub fn validate(self) -> Result<ValidOptimizer, ModelError> {
        let finite_nonneg = |value: f64, name: &'static str| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(ModelError::Setting { name, range: "a finite number >= 0", value })
            }
        };
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(ModelError::Setting {
                name: "--learning-rate",
                range: "a finite number > 0",
                value: self.learning_rate,
            });
        }
        finite_nonneg(self.l1, "--l1")?;
        finite_nonneg(self.l2, "--l2")?;
        finite_nonneg(self.beta, "--beta")?;
        Ok(ValidOptimizer(self))
    }

    /// As recorded in checkpoints.
    #[must_use]
    pub fn to_proto(&self) -> pb::OptimizerConfig {
        pb::OptimizerConfig {
            kind: match self.kind {
                OptimizerKind::Ftrl => pb::optimizer_config::Kind::Ftrl,
                OptimizerKind::Adagrad => pb::optimizer_config::Kind::Adagrad,
                OptimizerKind::Sgd => pb::optimizer_config::Kind::Sgd,
            } as i32,
            learning_rate: self.learning_rate,
            l1: self.l1,
            l2: self.l2,
            beta: self.beta,
        }
    }

    /// From a checkpoint record.
    ///
    /// # Errors
    /// An unknown optimizer.
    pub fn from_proto(p: &pb::OptimizerConfig) -> Result<Self, ModelError> {
        let kind = match pb::optimizer_config::Kind::try_from(p.kind) {
            Ok(pb::optimizer_config::Kind::Ftrl) => OptimizerKind::Ftrl,
            Ok(pb::optimizer_config::Kind::Adagrad) => OptimizerKind::Adagrad,
            Ok(pb::optimizer_config::Kind::Sgd) => OptimizerKind::Sgd,
            _ => return Err(ModelError::UnknownOptimizer(p.kind)),
        };
        Ok(Self { kind, learning_rate: p.learning_rate, l1: p.l1, l2: p.l2, beta: p.beta })
    }
}

/// Optimizer settings that passed [`OptimizerConfig::validate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidOptimizer(OptimizerConfig);

impl ValidOptimizer {
    /// The settings.
    #[must_use]
    pub fn config(&self) -> &OptimizerConfig {
        &self.0
    }
}

#[inline]
fn load(a: &AtomicU32) -> f32 {
    f32::from_bits(a.load(Ordering::Relaxed))
}

#[inline]
fn store(a: &AtomicU32, v: f32) {
    a.store(v.to_bits(), Ordering::Relaxed);
}

fn atomics(values: &[f32]) -> Box<[AtomicU32]> {
    values.iter().map(|v| AtomicU32::new(v.to_bits())).collect()
}

fn zeros(n: usize) -> Box<[AtomicU32]> {
    (0..n).map(|_| AtomicU32::new(0)).collect()
}

/// Soft thresholding: the proximal step of L1.
#[inline]
fn shrink(w: f64, by: f64) -> f64 {
    if w > by {
        w - by
    } else if w < -by {
        w + by
    } else {
        0.0
    }
}

/// Weights and optimizer state shared by the training threads.
///
/// Each weight's cells are stored together (`w`, then FTRL's and AdaGrad's
/// `n`, then FTRL's `z`), so that an update touches one cache line where
/// three separate arrays would touch three.
pub struct SharedModel {
    layout: Layout,
    opt: OptimizerConfig,
    cells: Box<[AtomicU32]>,
    stride: usize,
    steps: AtomicU64,
    /// Batches are applied only while `steps` is below this.
    step_limit: AtomicU64,
    diverged: AtomicBool,
}

/// Cells per weight for an optimizer: w; w, n; or w, n, z.
fn stride_of(kind: OptimizerKind) -> usize {
    match kind {
        OptimizerKind::Sgd => 1,
        OptimizerKind::Adagrad => 2,
        OptimizerKind::Ftrl => 3,
    }
}

impl SharedModel {
    /// A fresh model: all weights zero.
    #[must_use]
    pub fn new(layout: Layout, opt: ValidOptimizer) -> Self {
        let opt = opt.0;
        let stride = stride_of(opt.kind);
        let cells = zeros(layout.num_weights() * stride);
        huge_pages(&cells);
        Self {
            cells,
            stride,
            layout,
            opt,
            steps: AtomicU64::new(0),
            step_limit: AtomicU64::new(u64::MAX),
            diverged: AtomicBool::new(false),
        }
    }

    /// Resumes from a checkpoint (its weights, state and step count).
    ///
    /// # Errors
    /// What is inconsistent in the checkpoint.
    pub fn from_checkpoint(ck: &pb::Checkpoint) -> Result<Self, ModelError> {
        let model = LinearModel::from_proto(ck.model.clone().ok_or(ModelError::Missing("model"))?)?;
        let opt = OptimizerConfig::from_proto(ck.optimizer.as_ref().ok_or(ModelError::Missing("optimizer"))?)?;
        let size = model.weights.len();
        let stride = stride_of(opt.kind);
        let want_n = if stride >= 2 { size } else { 0 };
        let want_z = if stride >= 3 { size } else { 0 };
        if ck.n.len() != want_n || ck.z.len() != want_z {
            return Err(ModelError::StateSize);
        }
        if ck.n.iter().chain(&ck.z).any(|v| !v.is_finite()) {
            return Err(ModelError::NonFiniteState);
        }
        let mut flat = Vec::with_capacity(size * stride);
        for i in 0..size {
            flat.push(model.weights[i]);
            if stride >= 2 {
                flat.push(ck.n[i]);
            }
            if stride >= 3 {
                flat.push(ck.z[i]);
            }
        }
        let cells = atomics(&flat);
        huge_pages(&cells);
        Ok(Self {
            cells,
            stride,
            layout: model.layout,
            opt,
            steps: AtomicU64::new(ck.global_step),
            step_limit: AtomicU64::new(u64::MAX),
            diverged: AtomicBool::new(false),
        })
    }

    /// Cell `k` (0 = w, 1 = n, 2 = z) of every weight.
    fn column(&self, k: usize) -> Vec<f32> {
        if k >= self.stride {
            return Vec::new();
        }
        self.cells.iter().skip(k).step_by(self.stride).map(load).collect()
    }

    /// The layout.
    #[must_use]
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The optimizer settings.
    #[must_use]
    pub fn optimizer(&self) -> &OptimizerConfig {
        &self.opt
    }

    /// Optimizer steps taken (over all threads).
    #[must_use]
    pub fn global_step(&self) -> u64 {
        self.steps.load(Ordering::Relaxed)
    }

    /// Applies batches only while the global step is below `limit`: with
    /// several threads the step count then stops exactly there (a batch
    /// completed past it is dropped, not applied).
    pub fn set_step_limit(&self, limit: u64) {
        self.step_limit.store(limit, Ordering::Relaxed);
    }

    /// True once the step limit is reached.
    #[must_use]
    pub fn at_step_limit(&self) -> bool {
        self.global_step() >= self.step_limit.load(Ordering::Relaxed)
    }

    /// True once a weight became NaN or infinite.
    #[must_use]
    pub fn diverged(&self) -> bool {
        self.diverged.load(Ordering::Relaxed)
    }

    /// A copy of the current weights.
    #[must_use]
    pub fn snapshot(&self) -> LinearModel {
        LinearModel { layout: self.layout.clone(), weights: self.column(0) }
    }

    /// A checkpoint of everything (call between steps for a consistent copy).
    #[must_use]
    pub fn checkpoint(&self, epoch: u64, blocks_in_epoch: u64, examples_seen: u64, seed: u64) -> pb::Checkpoint {
        pb::Checkpoint {
            model: Some(self.snapshot().to_proto()),
            optimizer: Some(self.opt.to_proto()),
            n: self.column(1),
            z: self.column(2),
            global_step: self.global_step(),
            epoch,
            blocks_in_epoch,
            examples_seen,
            seed,
        }
    }

    /// The logit of an example's active features with the current weights.
    #[inline]
    #[must_use]
    pub fn logit(&self, active: &[(u32, f32); ACTIVE]) -> f32 {
        active.iter().map(|&(i, v)| load(&self.cells[i as usize * self.stride]) * v).sum()
    }

    /// One optimizer update of weight `i` with gradient `g`.
    #[inline]
    fn apply(&self, i: usize, g: f32) {
        let o = &self.opt;
        let c = &self.cells[i * self.stride..(i + 1) * self.stride];
        let g = f64::from(g);
        let w_old = f64::from(load(&c[0]));
        let w_new = match o.kind {
            OptimizerKind::Ftrl => {
                let n_old = f64::from(load(&c[1]));
                let n_new = n_old + g * g;
                let sigma = (n_new.sqrt() - n_old.sqrt()) / o.learning_rate;
                let z = f64::from(load(&c[2])) + g - sigma * w_old;
                store(&c[1], n_new as f32);
                store(&c[2], z as f32);
                if z.abs() <= o.l1 {
                    0.0
                } else {
                    -(z - z.signum() * o.l1) / ((o.beta + n_new.sqrt()) / o.learning_rate + o.l2)
                }
            }
            OptimizerKind::Adagrad => {
                let g = g + o.l2 * w_old;
                let n_new = f64::from(load(&c[1])) + g * g;
                store(&c[1], n_new as f32);
                let step = o.learning_rate / (o.beta + n_new).sqrt();
                shrink(w_old - step * g, step * o.l1)
            }
            OptimizerKind::Sgd => {
                let g = g + o.l2 * w_old;
                shrink(w_old - o.learning_rate * g, o.learning_rate * o.l1)
            }
        };
        let w_new = w_new as f32;
        if !w_new.is_finite() {
            self.diverged.store(true, Ordering::Relaxed);
        }
        store(&c[0], w_new);
    }
}

/// Running training loss, for logs.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct LossStats {
    /// Sum of log losses (of predictions made before each update).
    pub loss_sum: f64,
    /// Examples.
    pub examples: u64,
}

impl LossStats {
    /// Mean log loss.
    #[must_use]
    pub fn mean(&self) -> f64 {
        self.loss_sum / self.examples.max(1) as f64
    }
}

/// One training thread's view: its mini-batch gradient buffer.
pub struct Worker<'a> {
    shared: &'a SharedModel,
    batch_size: usize,
    grad: Vec<f32>,
    touched: Vec<u32>,
    in_batch: usize,
    active: [(u32, f32); ACTIVE],
    /// Loss since the last [`take_stats`](Self::take_stats).
    stats: LossStats,
}

impl<'a> Worker<'a> {
    /// A worker taking mini-batches of `batch_size` examples.
    ///
    /// # Panics
    /// If `batch_size` is 0.
    #[must_use]
    pub fn new(shared: &'a SharedModel, batch_size: usize) -> Self {
        assert!(batch_size > 0, "batch size must be at least 1");
        Self {
            shared,
            batch_size,
            // Zeroed pages are mapped lazily: only touched weights cost memory.
            grad: {
                let g = vec![0.0; shared.layout.num_weights()];
                huge_pages(&g);
                g
            },
            touched: Vec::with_capacity(batch_size * ACTIVE),
            in_batch: 0,
            active: [(0, 0.0); ACTIVE],
            stats: LossStats::default(),
        }
    }

    /// Adds one example to the batch; returns its logit (before the update)
    /// and whether the batch was completed and applied.
    #[inline]
    pub fn train(&mut self, ints: &[i64; NUM_INT], ids: &[i64; NUM_CAT], label: bool) -> (f32, bool) {
        self.shared.layout.features(ints, ids, &mut self.active);
        self.train_prepared(label)
    }

    /// As [`train`](Self::train), for an example whose active features
    /// ([`Layout::features`] of this model's layout) are already known: for
    /// data seen many times, as by a hyperparameter search.
    #[inline]
    pub fn train_active(&mut self, active: &[(u32, f32); ACTIVE], label: bool) -> (f32, bool) {
        self.active = *active;
        self.train_prepared(label)
    }

    /// Trains on `self.active`.
    #[inline]
    fn train_prepared(&mut self, label: bool) -> (f32, bool) {
        // The categorical slots are spread over the whole model: start all
        // their loads (weights and gradients) at once rather than one miss
        // after another, behind the branch on each gradient below.
        for &(i, _) in &self.active[1 + NUM_INT..] {
            prefetch(self.shared.cells.as_ptr().wrapping_add(i as usize * self.shared.stride));
            prefetch(self.grad.as_ptr().wrapping_add(i as usize));
        }
        let logit = self.shared.logit(&self.active);
        self.stats.loss_sum += logit_loss(logit, label);
        self.stats.examples += 1;
        // A float32 logistic is precise enough for a gradient, and cheaper.
        let err = 1.0 / (1.0 + (-logit).exp()) - if label { 1.0 } else { 0.0 };
        for &(i, v) in &self.active {
            let g = &mut self.grad[i as usize];
            if *g == 0.0 {
                self.touched.push(i);
            }
            *g += err * v;
        }
        self.in_batch += 1;
        if self.in_batch == self.batch_size {
            self.end_batch();
            return (logit, true);
        }
        (logit, false)
    }

    /// Applies the (possibly partial) batch. Returns true if a step was
    /// taken; false for an empty batch, or one dropped because the step limit
    /// ([`SharedModel::set_step_limit`]) was reached.
    pub fn end_batch(&mut self) -> bool {
        if self.in_batch == 0 {
            return false;
        }
        // Reserve the step first: threads racing for the last one cannot both take it.
        let limit = self.shared.step_limit.load(Ordering::Relaxed);
        if self
            .shared
            .steps
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| (s < limit).then_some(s + 1))
            .is_err()
        {
            for &i in &self.touched {
                self.grad[i as usize] = 0.0;
            }
            self.touched.clear();
            self.in_batch = 0;
            return false;
        }
        // SGD steps along the batch's mean gradient; FTRL and AdaGrad take the
        // sum (their per-weight accumulators set the scale).
        let scale = if self.shared.opt.kind == OptimizerKind::Sgd { 1.0 / self.in_batch as f32 } else { 1.0 };
        for &i in &self.touched {
            let g = std::mem::take(&mut self.grad[i as usize]) * scale;
            // A gradient may cancel to zero after being touched: nothing to do.
            if g != 0.0 {
                self.shared.apply(i as usize, g);
            }
        }
        self.touched.clear();
        self.in_batch = 0;
        true
    }

    /// Examples in the current, unfinished batch.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.in_batch
    }

    /// Returns and resets the running loss.
    pub fn take_stats(&mut self) -> LossStats {
        std::mem::take(&mut self.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{CatEncoding, IntTransform, MISSING_INT};

    /// A tiny planted problem: the label depends on C1's id.
    fn data(n: usize, seed: u64) -> Vec<([i64; NUM_INT], [i64; NUM_CAT], bool)> {
        let mut s = seed;
        let mut next = || {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (s >> 33) as f64 / (1u64 << 31) as f64
        };
        (0..n)
            .map(|_| {
                let id = 1 + (next() * 4.0) as i64;
                let mut ids = [1i64; NUM_CAT];
                ids[0] = id;
                let p = [0.05, 0.2, 0.5, 0.8][(id - 1) as usize];
                (([MISSING_INT; NUM_INT]), ids, next() < p)
            })
            .collect()
    }

    fn train(kind: OptimizerKind, batch: usize) -> (LinearModel, u64) {
        let layout = Layout::new(IntTransform::LogBuckets, CatEncoding::OneHot, &[4; NUM_CAT]).unwrap();
        let opt = OptimizerConfig { l1: 0.0, ..OptimizerConfig::defaults(kind) };
        let opt = if kind == OptimizerKind::Sgd { OptimizerConfig { learning_rate: 0.05, ..opt } } else { opt };
        let shared = SharedModel::new(layout, opt.validate().unwrap());
        let mut w = Worker::new(&shared, batch);
        for _ in 0..3 {
            for (ints, ids, y) in data(20_000, 7) {
                w.train(&ints, &ids, y);
            }
        }
        w.end_batch();
        (shared.snapshot(), shared.global_step())
    }

    #[test]
    fn every_optimizer_learns_the_planted_rates() {
        for kind in [OptimizerKind::Ftrl, OptimizerKind::Adagrad, OptimizerKind::Sgd] {
            let (m, steps) = train(kind, 16);
            assert_eq!(steps, (60_000u64).div_ceil(16));
            for (id, p) in [(1, 0.05f32), (2, 0.2), (3, 0.5), (4, 0.8)] {
                let mut ids = [1i64; NUM_CAT];
                ids[0] = id;
                let got = m.predict(&[MISSING_INT; NUM_INT], &ids);
                assert!((got - p).abs() < 0.05, "{kind:?}: id {id}: {got} vs {p}");
            }
        }
    }

    #[test]
    fn one_thread_is_deterministic_and_checkpoints_round_trip() {
        let (a, _) = train(OptimizerKind::Ftrl, 8);
        let (b, _) = train(OptimizerKind::Ftrl, 8);
        assert_eq!(a, b);
        let layout = a.layout.clone();
        let shared = SharedModel::new(layout, OptimizerConfig::defaults(OptimizerKind::Ftrl).validate().unwrap());
        let mut w = Worker::new(&shared, 4);
        for (ints, ids, y) in data(1000, 3) {
            w.train(&ints, &ids, y);
        }
        let ck = shared.checkpoint(1, 2, 1000, 9);
        let back = SharedModel::from_checkpoint(&ck).unwrap();
        assert_eq!(back.snapshot(), shared.snapshot());
        assert_eq!(back.global_step(), 250);
        // Training on from both gives the same result.
        let mut w1 = Worker::new(&shared, 4);
        let mut w2 = Worker::new(&back, 4);
        for (ints, ids, y) in data(500, 4) {
            w1.train(&ints, &ids, y);
            w2.train(&ints, &ids, y);
        }
        assert_eq!(back.snapshot(), shared.snapshot());
    }

    #[test]
    fn training_on_known_active_features_is_training() {
        let layout = Layout::new(IntTransform::LogBuckets, CatEncoding::OneHot, &[4; NUM_CAT]).unwrap();
        let opt = OptimizerConfig::defaults(OptimizerKind::Ftrl).validate().unwrap();
        let (a, b) = (SharedModel::new(layout.clone(), opt), SharedModel::new(layout.clone(), opt));
        let (mut wa, mut wb) = (Worker::new(&a, 5), Worker::new(&b, 5));
        let mut active = [(0, 0.0); ACTIVE];
        for (ints, ids, y) in data(2000, 11) {
            layout.features(&ints, &ids, &mut active);
            assert_eq!(wa.train(&ints, &ids, y), wb.train_active(&active, y));
        }
        assert_eq!(a.snapshot(), b.snapshot());
        assert_eq!(wa.take_stats(), wb.take_stats());
    }

    #[test]
    fn l1_makes_exact_zeros_and_settings_are_checked() {
        let layout = Layout::new(IntTransform::LogBuckets, CatEncoding::OneHot, &[4; NUM_CAT]).unwrap();
        let shared = SharedModel::new(
            layout,
            OptimizerConfig { l1: 1e6, ..OptimizerConfig::defaults(OptimizerKind::Ftrl) }.validate().unwrap(),
        );
        let mut w = Worker::new(&shared, 1);
        for (ints, ids, y) in data(100, 1) {
            w.train(&ints, &ids, y);
        }
        assert_eq!(shared.snapshot().nonzero(), 0);
        assert!(
            OptimizerConfig { learning_rate: 0.0, ..OptimizerConfig::defaults(OptimizerKind::Sgd) }.validate().is_err()
        );
        assert!(OptimizerConfig { l2: f64::NAN, ..OptimizerConfig::defaults(OptimizerKind::Sgd) }.validate().is_err());
    }

    #[test]
    fn divergence_is_detected() {
        let layout = Layout::new(IntTransform::Log1p, CatEncoding::OneHot, &[4; NUM_CAT]).unwrap();
        let opt = OptimizerConfig { learning_rate: 1e38, ..OptimizerConfig::defaults(OptimizerKind::Sgd) };
        let shared = SharedModel::new(layout, opt.validate().unwrap());
        let mut w = Worker::new(&shared, 1);
        let mut ints = [i64::MAX; NUM_INT];
        ints[0] = 5;
        for (_, ids, y) in data(50, 1) {
            w.train(&ints, &ids, y);
        }
        assert!(shared.diverged());
    }

    #[test]
    fn the_step_limit_is_exact_with_racing_threads() {
        let layout = Layout::new(IntTransform::LogBuckets, CatEncoding::OneHot, &[4; NUM_CAT]).unwrap();
        let shared = SharedModel::new(layout, OptimizerConfig::defaults(OptimizerKind::Ftrl).validate().unwrap());
        shared.set_step_limit(10);
        let rows = data(4000, 3);
        std::thread::scope(|s| {
            for half in rows.chunks(2000) {
                let shared = &shared;
                s.spawn(move || {
                    let mut w = Worker::new(shared, 7);
                    for (ints, ids, y) in half {
                        w.train(ints, ids, *y);
                    }
                    w.end_batch();
                });
            }
        });
        assert_eq!(shared.global_step(), 10);
        assert!(shared.at_step_limit());
    }
}
