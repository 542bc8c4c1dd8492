//! Choosing the learning rate, L1 and L2 on the training data itself.
//!
//! The search (`search`, run by the training job) reads a sample of the *training* folder only (never the
//! evaluation folder), splits it into a training sample and a held-out
//! slice (every fifth row), and runs successive halving over the grid
//! [`LEARNING_RATES`] × [`L1S`] × [`L2S`]: every point is trained on a small
//! prefix of the sample and scored on the held-out slice; the best third go
//! on to a prefix three times larger, and so on until one is left. FTRL's L1
//! and L2 act against sums of gradients, which grow with the rows seen, so a
//! trial on a fraction of the training rows runs with that fraction of the
//! point's L1 and L2 (without this the search favours too little
//! regularisation: measured in `docs/PERFORMANCE.md`). Small data, on which
//! the budget lets every point train on all the rows several times, is
//! cross-validated instead ([`MAX_FOLDS`] folds at most): one held-out fifth
//! of a few thousand rows is too noisy to rank the points by. Each
//! trial trains the way the real run will (same optimizer, mini-batch size,
//! feature layout and number of passes), on one thread, so the choice
//! depends only on the data, the settings and the seed, not on the thread
//! count. The work of the whole search (examples trained on, plus half an
//! example per held-out prediction) is bounded by [`TuneConfig`]'s budget,
//! by default one epoch's worth.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sparky_linear::layout::{ACTIVE, NUM_CAT, NUM_INT};
use sparky_linear::metrics::logit_loss;
use sparky_linear::{CatEncoding, Layout, OptimizerConfig, OptimizerKind, SharedModel, Worker};
use sparky_prepared::{Flow, Item, Reader, Row, RowDecoder};

use crate::TrainError;

/// FTRL learning rates (alpha) searched.
pub const LEARNING_RATES: [f64; 4] = [0.05, 0.1, 0.2, 0.4];
/// L1 strengths searched.
pub const L1S: [f64; 4] = [0.0, 0.3, 1.0, 3.0];
/// L2 strengths searched.
pub const L2S: [f64; 3] = [0.0, 1.0, 10.0];
/// Each rung keeps the best 1/ETA of its points, on ETA times more rows.
const ETA: usize = 3;
/// The smallest training prefix of the first rung.
const MIN_RUNG_ROWS: u64 = 500;
/// Held-out rows scored per training row of a rung (at most).
const HOLDOUT_PER_ROW: f64 = 0.5;
/// A held-out prediction costs about half an example's training.
const EVAL_COST: f64 = 0.5;
/// At most this many training rows are sampled (160 bytes each in memory).
const MAX_SAMPLE_ROWS: u64 = 1_000_000;
/// At most this many folds in cross-validation.
pub const MAX_FOLDS: u64 = 5;
/// At most this many rows are held out.
const MAX_HOLDOUT_ROWS: u64 = 250_000;

/// How the search is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TuneConfig {
    /// Work allowed, in epochs of the training data (examples trained on,
    /// plus half an example per held-out prediction).
    pub budget_epochs: f64,
    /// Work allowed at least, in examples, however small the data: small
    /// folders get a full search for little time.
    pub min_work: u64,
}

impl Default for TuneConfig {
    fn default() -> Self {
        Self { budget_epochs: 1.0, min_work: 2_000_000 }
    }
}

/// One trial: a grid point trained on a prefix of the sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// The rung (0 first).
    pub rung: u32,
    /// Training rows of the sample used (each seen `passes` times).
    pub rows: u64,
    /// Held-out rows scored.
    pub holdout_rows: u64,
    /// Learning rate.
    pub learning_rate: f64,
    /// L1.
    pub l1: f64,
    /// L2.
    pub l2: f64,
    /// Mean log loss on the held-out rows.
    pub holdout_log_loss: f64,
}

/// The values chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Chosen {
    /// Learning rate.
    pub learning_rate: f64,
    /// L1.
    pub l1: f64,
    /// L2.
    pub l2: f64,
}

/// What the search did: `JOB_DIR/tuning.json`, and the `tuning` entry of
/// `metrics.json` and of the export's flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    /// `successive-halving` (one held-out slice), or `cross-validation`
    /// (small data: every point on all the rows, k folds).
    pub method: String,
    /// Folds of the cross-validation (`cross-validation`); 1 for one
    /// held-out slice (`successive-halving`).
    pub folds: u64,
    /// The values chosen.
    pub chosen: Chosen,
    /// Mean held-out log loss of the chosen values, in the last rung (over
    /// all the folds in cross-validation).
    pub chosen_holdout_log_loss: f64,
    /// Training rows of the folder (recorded or estimated).
    pub train_rows: u64,
    /// Rows in the training sample.
    pub sample_rows: u64,
    /// Rows in the held-out slice.
    pub holdout_rows: u64,
    /// Passes over its prefix each trial made (the planned epochs of the run).
    pub passes: f64,
    /// The budget, in epochs.
    pub budget_epochs: f64,
    /// Work done, in examples (training examples + half the held-out predictions).
    pub work: u64,
    /// The seed.
    pub seed: u64,
    /// Every trial, rung by rung, best first within a rung.
    pub trials: Vec<Trial>,
    /// Seconds the search took (not reproducible, unlike the rest).
    pub seconds: f64,
}

/// The rows of the sample, compactly.
struct SampleRow {
    ints: [i64; NUM_INT],
    ids: [u32; NUM_CAT],
    label: bool,
}

/// What the search needs from the run.
pub(crate) struct SearchInput<'a> {
    pub dir: &'a std::path::Path,
    pub train: &'a Reader,
    pub sizes: [u64; NUM_CAT],
    pub layout: &'a Layout,
    pub base: OptimizerConfig,
    pub batch_size: usize,
    pub threads: usize,
    pub seed: u64,
    pub shuffle: bool,
    /// Recorded rows of the training folder, if known.
    pub rows: Option<u64>,
    /// Planned passes over the data (epochs), if known.
    pub epochs: Option<f64>,
    pub skip_corrupt: bool,
}

/// The grid, in a fixed order.
fn grid() -> Vec<Chosen> {
    let mut g = Vec::new();
    for &learning_rate in &LEARNING_RATES {
        for &l1 in &L1S {
            for &l2 in &L2S {
                g.push(Chosen { learning_rate, l1, l2 });
            }
        }
    }
    g
}

/// The rungs: (points, training rows, held-out rows) each.
fn plan(points: usize, s0: u64, avail: u64, holdout: u64) -> Vec<(usize, u64, u64)> {
    let mut rungs = Vec::new();
    let mut n = points.max(1);
    let mut rows = s0;
    loop {
        let r = rows.min(avail);
        rungs.push((n, r, ((r as f64 * HOLDOUT_PER_ROW) as u64).clamp(1, holdout.max(1))));
        // The rung that leaves one point is the last: training that point
        // once more would decide nothing.
        n = n.div_ceil(ETA);
        if n <= 1 {
            break;
        }
        rows = rows.saturating_mul(ETA as u64);
    }
    rungs
}

/// The work of a plan; trials repeated at an unchanged size are free (their
/// results are reused).
fn plan_work(rungs: &[(usize, u64, u64)], passes: f64) -> f64 {
    let mut work = 0.0;
    let mut prev: Option<(u64, u64)> = None;
    for &(n, rows, hold) in rungs {
        if prev != Some((rows, hold)) {
            work += n as f64 * ((rows as f64 * passes).ceil() + hold as f64 * EVAL_COST);
        }
        prev = Some((rows, hold));
    }
    work
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs the search. See the module documentation.
pub(crate) fn search(inp: &SearchInput<'_>, cfg: TuneConfig) -> Result<Tuning, TrainError> {
    let t0 = Instant::now();
    let train = inp.train;
    let blocks = train.blocks().len();
    if blocks == 0 {
        return Err(TrainError::NoRows { dir: inp.dir.to_path_buf(), what: "train on" });
    }
    let order = crate::data::epoch_order(blocks, inp.seed ^ 0x7475_6e65, 0, inp.shuffle);
    // Rows of the folder: recorded, or estimated from the first block.
    let mut decoder = RowDecoder::new(Some(inp.sizes)).labelled();
    let mut row = Row::default();
    let n_rows = match inp.rows {
        Some(r) => r,
        None => {
            let stats = train.read_block(order[0], &mut decoder, &mut row, |_| Ok::<_, TrainError>(Flow::Continue))?;
            (stats.records.max(1)).saturating_mul(blocks as u64)
        }
    };
    let passes = inp.epochs.unwrap_or(1.0).clamp(0.05, 20.0);
    let budget = (cfg.budget_epochs * n_rows as f64).max(cfg.min_work as f64);
    let points = grid();
    // The held-out slice: every fifth row, at most a fifth of the data.
    let holdout_cap = (n_rows / 5).clamp(1, MAX_HOLDOUT_ROWS);
    let avail = n_rows.saturating_sub(holdout_cap).clamp(1, MAX_SAMPLE_ROWS);
    // The largest first rung whose plan fits the budget.
    let rungs_for = |s0: u64| {
        let last = plan(points.len(), s0, avail, u64::MAX).last().map_or(s0, |r| r.1);
        let hold = ((last as f64 * HOLDOUT_PER_ROW) as u64).clamp(1, holdout_cap);
        plan(points.len(), s0, avail, hold)
    };
    let (mut lo, mut hi) = (MIN_RUNG_ROWS.min(avail), avail);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if plan_work(&rungs_for(mid), passes) <= budget {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let rungs = rungs_for(lo);
    // Small data, which the budget lets every point train on whole: k-fold
    // cross-validation over all the rows (k up to 5, as the budget allows)
    // instead of one held-out fifth, for a steadier choice.
    let small = lo >= avail && avail.saturating_add(holdout_cap) >= n_rows && n_rows <= MAX_SAMPLE_ROWS;
    let cv_work = |k: u64| {
        let n = n_rows as f64;
        points.len() as f64 * k as f64 * ((n * (k - 1) as f64 / k as f64 * passes).ceil() + n / k as f64 * EVAL_COST)
    };
    let folds = if small { (2..=MAX_FOLDS).rev().find(|&k| cv_work(k) <= budget).unwrap_or(1) } else { 1 };
    let (want_train, want_hold) = if folds > 1 {
        (n_rows, 0)
    } else {
        (rungs.iter().map(|r| r.1).max().unwrap_or(0), rungs.iter().map(|r| r.2).max().unwrap_or(0))
    };

    // Read the sample: blocks in the seeded order, every fifth row held out.
    let mut sample: Vec<SampleRow> = Vec::with_capacity(want_train as usize);
    let mut holdout: Vec<SampleRow> = Vec::with_capacity(want_hold as usize);
    let mut k = 0u64;
    for &b in &order {
        if sample.len() as u64 >= want_train && holdout.len() as u64 >= want_hold {
            break;
        }
        train.read_block(b, &mut decoder, &mut row, |item| {
            let r = match item {
                Item::Row(r) => r,
                Item::Bad(b) if inp.skip_corrupt && b.is_checksum() => return Ok(Flow::Continue),
                Item::Bad(b) => return Err(TrainError::from(Box::new(b))),
            };
            let mut ids = [0u32; NUM_CAT];
            for (o, &i) in ids.iter_mut().zip(r.ids()) {
                *o = u32::try_from(i).unwrap_or(0);
            }
            let s = SampleRow { ints: *r.ints(), ids, label: r.label() == Some(true) };
            let to_holdout = k % 5 == 4 && (holdout.len() as u64) < want_hold;
            k += 1;
            if to_holdout {
                holdout.push(s);
            } else if (sample.len() as u64) < want_train {
                sample.push(s);
            } else if (holdout.len() as u64) < want_hold {
                holdout.push(s);
            }
            Ok(Flow::Continue)
        })?;
    }
    if inp.shuffle {
        // Prefixes mix all the blocks read.
        let mut state = inp.seed ^ 0x5eed;
        for i in (1..sample.len()).rev() {
            state = splitmix(state);
            sample.swap(i, (state % (i as u64 + 1)) as usize);
        }
    }
    if folds > 1 && sample.len() >= folds as usize {
        return cross_validate(inp, &points, sample, folds, passes, n_rows, cfg, t0);
    }
    if sample.is_empty() || holdout.is_empty() {
        return Err(TrainError::NoRows { dir: inp.dir.to_path_buf(), what: "train on (too few rows to tune on)" });
    }
    let layout = compact_layout(inp.layout, &mut sample, &mut holdout)?;
    // The decoded rows are freed as soon as the model's view of them is built.
    let (sample, holdout) = {
        let (s, h) = (sample, holdout);
        (Active::of(&layout, &s), Active::of(&layout, &h))
    };

    // Successive halving.
    let mut alive: Vec<usize> = (0..points.len()).collect();
    let mut trials = Vec::new();
    let mut cache: HashMap<(usize, u64, u64), f64> = HashMap::new();
    let mut work = 0u64;
    let mut best = (0usize, f64::INFINITY);
    for (rung, &(keep, rows, hold)) in rungs.iter().enumerate() {
        alive.truncate(keep);
        let rows = rows.min(sample.len() as u64);
        let hold = hold.min(holdout.len() as u64);
        // L1 and L2 act against sums of gradients over the rows seen: a
        // trial on a fraction of the rows gets that fraction of them.
        let scale = (rows as f64 / n_rows as f64).min(1.0);
        let todo: Vec<usize> = alive.iter().copied().filter(|&p| !cache.contains_key(&(p, rows, hold))).collect();
        let train_idx: Vec<u32> = (0..rows as u32).collect();
        let results = in_parallel(inp.threads, &todo, |p| {
            let opt = point_optimizer(inp.base, points[p], scale);
            fit(&layout, opt, inp.batch_size, passes, &sample, &train_idx)
                .map_or(f64::INFINITY, |m| loss_sum(&m, &holdout, 0..hold as usize) / hold.max(1) as f64)
        });
        for (p, loss) in results {
            work += (rows as f64 * passes).ceil() as u64 + (hold as f64 * EVAL_COST) as u64;
            cache.insert((p, rows, hold), loss);
        }
        // Rank: by loss (a diverged trial last), ties by grid order.
        let loss_of = |p: &usize| {
            let l = cache[&(*p, rows, hold)];
            if l.is_finite() { l } else { f64::INFINITY }
        };
        alive.sort_by(|a, b| loss_of(a).total_cmp(&loss_of(b)).then(a.cmp(b)));
        for p in &alive {
            let c = points[*p];
            trials.push(Trial {
                rung: rung as u32,
                rows,
                holdout_rows: hold,
                learning_rate: c.learning_rate,
                l1: c.l1,
                l2: c.l2,
                holdout_log_loss: cache[&(*p, rows, hold)],
            });
        }
        best = (alive[0], loss_of(&alive[0]));
        alive.truncate(alive.len().div_ceil(ETA).max(1));
    }
    Ok(Tuning {
        method: "successive-halving".into(),
        folds: 1,
        chosen: points[best.0],
        chosen_holdout_log_loss: best.1,
        train_rows: n_rows,
        sample_rows: sample.len() as u64,
        holdout_rows: holdout.len() as u64,
        passes,
        budget_epochs: cfg.budget_epochs,
        work,
        seed: inp.seed,
        trials,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// With one-hot ids, renumbers each feature's ids densely over the sample
/// (id 0, out of vocabulary, stays 0): a trial's model then holds only the
/// weights the sample can touch, and learns exactly what it would with the
/// full layout (one-hot weights are independent of one another).
fn compact_layout(full: &Layout, sample: &mut [SampleRow], holdout: &mut [SampleRow]) -> Result<Layout, TrainError> {
    if full.cat_encoding() != CatEncoding::OneHot {
        return Ok(full.clone());
    }
    let mut maps: Vec<HashMap<u32, u32>> = vec![HashMap::new(); NUM_CAT];
    let mut sizes = [0u64; NUM_CAT];
    for r in sample.iter_mut().chain(holdout.iter_mut()) {
        for (c, id) in r.ids.iter_mut().enumerate() {
            if *id == 0 || u64::from(*id) > full.vocab_sizes()[c] {
                *id = 0;
                continue;
            }
            let m = &mut maps[c];
            let next = m.len() as u32 + 1;
            *id = *m.entry(*id).or_insert(next);
            sizes[c] = sizes[c].max(u64::from(*id));
        }
    }
    Ok(Layout::new(full.int_transform(), CatEncoding::OneHot, &sizes)?)
}

/// Rows as the model sees them: the weight index of each active feature
/// (and its value, unless every value is 1, as with the default encodings).
struct Active {
    idx: Vec<[u32; ACTIVE]>,
    vals: Option<Vec<[f32; ACTIVE]>>,
    labels: Vec<bool>,
}

impl Active {
    fn of(layout: &Layout, rows: &[SampleRow]) -> Self {
        let mut a = [(0u32, 0f32); ACTIVE];
        let mut ids = [0i64; NUM_CAT];
        let (mut idx, mut vals) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
        let mut ones = true;
        for r in rows {
            for (o, &i) in ids.iter_mut().zip(&r.ids) {
                *o = i64::from(i);
            }
            layout.features(&r.ints, &ids, &mut a);
            idx.push(a.map(|(i, _)| i));
            let v = a.map(|(_, v)| v);
            ones &= v.iter().all(|&x| x == 1.0);
            vals.push(v);
        }
        Self { idx, vals: (!ones).then_some(vals), labels: rows.iter().map(|r| r.label).collect() }
    }

    fn len(&self) -> usize {
        self.labels.len()
    }

    /// Row `i` into `out`; returns its label.
    #[inline]
    fn get(&self, i: usize, out: &mut [(u32, f32); ACTIVE]) -> bool {
        match &self.vals {
            Some(v) => {
                for (o, (&k, &x)) in out.iter_mut().zip(self.idx[i].iter().zip(&v[i])) {
                    *o = (k, x);
                }
            }
            None => {
                for (o, &k) in out.iter_mut().zip(&self.idx[i]) {
                    *o = (k, 1.0);
                }
            }
        }
        self.labels[i]
    }
}

/// A grid point's settings, L1 and L2 scaled by `scale`.
fn point_optimizer(base: OptimizerConfig, c: Chosen, scale: f64) -> OptimizerConfig {
    OptimizerConfig { learning_rate: c.learning_rate, l1: c.l1 * scale, l2: c.l2 * scale, ..base }
}

/// `f` of every point of `todo`, on up to `threads` threads: (point, value).
fn in_parallel(threads: usize, todo: &[usize], f: impl Fn(usize) -> f64 + Sync) -> Vec<(usize, f64)> {
    let results = Mutex::new(Vec::with_capacity(todo.len()));
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, todo.len().max(1)) {
            s.spawn(|| {
                while let Some(&p) = todo.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let v = f(p);
                    results.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((p, v));
                }
            });
        }
    });
    results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Trains a fresh model on the rows `train` of `rows` for `passes` passes,
/// on one thread; `None` if it diverged.
fn fit(
    layout: &Layout,
    opt: OptimizerConfig,
    batch_size: usize,
    passes: f64,
    rows: &Active,
    train: &[u32],
) -> Option<SharedModel> {
    let shared = SharedModel::new(layout.clone(), opt.validate().ok()?);
    let mut worker = Worker::new(&shared, batch_size);
    let total = (train.len() as f64 * passes).ceil() as usize;
    let mut active = [(0u32, 0f32); ACTIVE];
    for &i in train.iter().cycle().take(total) {
        let label = rows.get(i as usize, &mut active);
        worker.train_active(&active, label);
    }
    worker.end_batch();
    drop(worker);
    (!shared.diverged()).then_some(shared)
}

/// The summed log loss of `model` on the rows `which` of `rows` (infinite
/// for a non-finite loss).
fn loss_sum(model: &SharedModel, rows: &Active, which: impl Iterator<Item = usize>) -> f64 {
    let mut active = [(0u32, 0f32); ACTIVE];
    let mut sum = 0.0;
    for i in which {
        let label = rows.get(i, &mut active);
        sum += logit_loss(model.logit(&active), label);
    }
    if sum.is_finite() { sum } else { f64::INFINITY }
}

/// Small data: every point trained on all but one of `folds` folds (rows
/// `i` with `i % folds == j` held out) and scored on that fold, for each
/// fold; ranked by the mean log loss over all the rows.
#[allow(clippy::too_many_arguments)]
fn cross_validate(
    inp: &SearchInput<'_>,
    points: &[Chosen],
    mut rows: Vec<SampleRow>,
    folds: u64,
    passes: f64,
    n_rows: u64,
    cfg: TuneConfig,
    t0: Instant,
) -> Result<Tuning, TrainError> {
    let layout = compact_layout(inp.layout, &mut rows, &mut [])?;
    let all = Active::of(&layout, &rows);
    drop(rows);
    let (n, k) = (all.len(), folds as usize);
    let sets: Vec<(Vec<u32>, Vec<u32>)> = (0..k)
        .map(|j| {
            let (hold, train): (Vec<u32>, Vec<u32>) = (0..n as u32).partition(|&i| i as usize % k == j);
            (train, hold)
        })
        .collect();
    let train_rows = sets[0].0.len() as u64;
    let scale = (train_rows as f64 / n_rows as f64).min(1.0);
    let todo: Vec<usize> = (0..points.len()).collect();
    let mut results = in_parallel(inp.threads, &todo, |p| {
        let opt = point_optimizer(inp.base, points[p], scale);
        let mut sum = 0.0;
        for (train, hold) in &sets {
            sum += fit(&layout, opt, inp.batch_size, passes, &all, train)
                .map_or(f64::INFINITY, |m| loss_sum(&m, &all, hold.iter().map(|&i| i as usize)));
        }
        sum / n as f64
    });
    results.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    let work = sets
        .iter()
        .map(|(t, h)| (t.len() as f64 * passes).ceil() as u64 + (h.len() as f64 * EVAL_COST) as u64)
        .sum::<u64>()
        * points.len() as u64;
    let trials = results
        .iter()
        .map(|&(p, loss)| Trial {
            rung: 0,
            rows: train_rows,
            holdout_rows: sets[0].1.len() as u64,
            learning_rate: points[p].learning_rate,
            l1: points[p].l1,
            l2: points[p].l2,
            holdout_log_loss: loss,
        })
        .collect();
    Ok(Tuning {
        method: "cross-validation".into(),
        folds,
        chosen: points[results[0].0],
        chosen_holdout_log_loss: results[0].1,
        train_rows: n_rows,
        sample_rows: n as u64,
        holdout_rows: n as u64,
        passes,
        budget_epochs: cfg.budget_epochs,
        work,
        seed: inp.seed,
        trials,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Only FTRL is searched; the other optimizers keep their defaults.
#[must_use]
pub fn searchable(kind: OptimizerKind) -> bool {
    kind == OptimizerKind::Ftrl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_halve_the_points_and_grow_the_rows() {
        let p = plan(48, 1000, 1_000_000, 20_000);
        let points: Vec<usize> = p.iter().map(|r| r.0).collect();
        assert_eq!(points, [48, 16, 6, 2]);
        let rows: Vec<u64> = p.iter().map(|r| r.1).collect();
        assert_eq!(rows, [1000, 3000, 9000, 27_000]);
        assert!(p.iter().all(|r| r.2 <= r.1 / 2 && r.2 <= 20_000));
        // Capped by the rows there are: repeated rungs cost nothing more.
        let small = plan(48, 4000, 5000, 1000);
        assert_eq!(small.iter().map(|r| r.1).collect::<Vec<_>>(), [4000, 5000, 5000, 5000]);
        assert_eq!(plan_work(&small, 1.0), 48.0 * (4000.0 + 1000.0 * EVAL_COST) + 16.0 * (5000.0 + 1000.0 * EVAL_COST));
        assert_eq!(grid().len(), LEARNING_RATES.len() * L1S.len() * L2S.len());
    }
}
