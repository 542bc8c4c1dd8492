//! Random numbers and the two samplers: Walker/Vose alias tables, and Zipf's
//! law by an alias table over geometric blocks of ranks with rejection inside
//! a block.

use crate::math::{GOLDEN, exp, exp_m1_over, ln, mix64, unit_f32_bits};

/// The random stream of one row: wyrand (Wang Yi's generator: a Weyl
/// sequence mixed by one 64×64→128-bit multiplication) started from a state
/// that is a bijective mix of the seed's key and the row index, so every row
/// is a pure function of (seed, index).
pub(crate) struct RowRng(u64);

impl RowRng {
    pub(crate) fn new(seed_key: u64, index: u64) -> Self {
        Self(mix64(seed_key ^ index.wrapping_mul(GOLDEN)))
    }

    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xA076_1D64_78BD_642F);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xE703_7ED1_A0B4_28DB);
        (t >> 64) as u64 ^ t as u64
    }
}

#[derive(Debug, Clone, Copy)]
struct AliasEntry {
    /// Keep this entry when the low 32 random bits are below this.
    threshold: u32,
    /// Otherwise take this entry.
    alias: u32,
}

/// Walker's alias method (Vose's construction): one `u64` draws an index with
/// probability proportional to its weight, quantised to 2^-32.
#[derive(Debug, Clone)]
pub(crate) struct AliasTable {
    entries: Vec<AliasEntry>,
}

impl AliasTable {
    /// `weights` must be non-negative with a positive sum, at most 2^32 of them.
    pub(crate) fn new(weights: &[f64]) -> Self {
        let n = weights.len();
        assert!(n > 0 && n <= u32::MAX as usize, "alias table of {n} entries");
        let total: f64 = weights.iter().sum();
        assert!(total > 0.0 && total.is_finite(), "alias weights sum to {total}");
        let mut p: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut entries = vec![AliasEntry { threshold: u32::MAX, alias: 0 }; n];
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| p[i] < 1.0);
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            entries[s] = AliasEntry { threshold: to_threshold(p[s]), alias: l as u32 };
            p[l] = (p[l] + p[s]) - 1.0;
            if p[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // What is left has probability 1 (up to rounding): always itself.
        for i in small.into_iter().chain(large) {
            entries[i] = AliasEntry { threshold: u32::MAX, alias: i as u32 };
        }
        Self { entries }
    }

    /// The index drawn by the random word `r`: its high half picks an entry,
    /// its low half decides between the entry and its alias.
    #[inline]
    pub(crate) fn sample(&self, r: u64) -> usize {
        let i = (((r >> 32) * self.entries.len() as u64) >> 32) as usize;
        let e = self.entries[i];
        // Indexing rather than `if`: the choice is unpredictable.
        [i, e.alias as usize][usize::from((r as u32) >= e.threshold)]
    }

    /// The probability of drawing index `i` (for tests).
    #[cfg(test)]
    pub(crate) fn probability(&self, i: usize) -> f64 {
        let n = self.entries.len() as f64;
        let scale = 4_294_967_296.0;
        let own = f64::from(self.entries[i].threshold) / scale;
        let mut p = if self.entries[i].alias as usize == i { 1.0 } else { own };
        for (j, e) in self.entries.iter().enumerate() {
            if j != i && e.alias as usize == i {
                p += 1.0 - f64::from(e.threshold) / scale;
            }
        }
        p / n
    }
}

fn to_threshold(p: f64) -> u32 {
    let t = (p * 4_294_967_296.0).round();
    if t >= f64::from(u32::MAX) { u32::MAX } else { t.max(0.0) as u32 }
}

/// A block of ranks `first..first + width`. Ranks below 32 have a block each;
/// a block starting at `a >= 32` holds `a / 16` ranks, so `k^-s` varies by at
/// most a factor `(17/16)^s` inside it.
#[derive(Debug, Clone, Copy)]
struct Block {
    first: u32,
    width: u32,
    /// `c0 + c1 * k` is a lower bound of `(k / first)^-s` on the block: its
    /// tangent at the block's middle (the function is convex), lowered by
    /// 1e-6 to absorb the rounding to `f32` (below 5e-7 for `s <= 4`); 2 for
    /// a block of one rank (always accept).
    c0: f32,
    c1: f32,
}

/// An alias-table entry holding both of its blocks, so that a draw needs one
/// memory access and no branch.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Take `blocks[0]` (the entry's own) when the low 32 random bits are
    /// below this, else `blocks[1]` (its alias).
    threshold: u32,
    blocks: [Block; 2],
}

/// Zipf's law over ranks `1..=n`: `P(k) ∝ k^-exponent`, for any `n < 2^32`
/// and `0 < exponent <= 4`, in O(1) expected time and O(log n) memory (240
/// blocks for `n = 10^7`).
///
/// An alias table picks a block with probability proportional to the sum of
/// `k^-s` over its ranks (summed directly for blocks of up to 64 ranks, by
/// Euler–Maclaurin beyond, where the first neglected term is below 1e-20 of
/// the sum). Inside a block, `k` is drawn uniformly and accepted with
/// probability `(k / first)^-s`: at least 94% for `s = 1`, and almost always
/// decided by the linear lower bound without evaluating the power. The
/// result is exact up to the 2^-32 quantisation of the alias table and of
/// the uniform draws of `k` and of the acceptance test (32 bits each, from
/// one `u64`). It needs `ln` and `exp` in a few percent of draws, where the
/// rejection-inversion method of Hörmann and Derflinger (1996) needs them in
/// every draw.
#[derive(Debug, Clone)]
pub(crate) struct Zipf {
    exponent: f64,
    /// `sum_{k=1}^{n} k^-exponent`.
    norm: f64,
    entries: Vec<Entry>,
    #[cfg(test)]
    table: AliasTable,
    #[cfg(test)]
    blocks: Vec<Block>,
}

impl Zipf {
    pub(crate) fn new(n: u32, exponent: f64) -> Self {
        assert!(n >= 1 && exponent > 0.0 && exponent <= 4.0, "Zipf({n}, {exponent})");
        let s = exponent;
        let pow = |k: f64| exp(-s * ln(k));
        let mut blocks = Vec::new();
        let mut weights = Vec::new();
        let mut first = 1u32;
        loop {
            let width = (first / 16).max(1).min(n - first + 1);
            let last = first + (width - 1);
            let (a, b) = (f64::from(first), f64::from(last));
            let weight = if width <= 64 {
                (first..=last).rev().map(|k| pow(f64::from(k))).sum()
            } else {
                // Euler–Maclaurin: integral + end corrections + derivative terms.
                let d1 = |x: f64| -s * pow(x) / x;
                let d3 = |x: f64| -s * (s + 1.0) * (s + 2.0) * pow(x) / (x * x * x);
                let lr = ln(b / a);
                let integral = a * pow(a) * exp_m1_over((1.0 - s) * lr) * lr;
                integral + (pow(a) + pow(b)) / 2.0 + (d1(b) - d1(a)) / 12.0 - (d3(b) - d3(a)) / 720.0
            };
            let block = if width == 1 {
                Block { first, width, c0: 2.0, c1: 0.0 }
            } else {
                let mid = (a + b) / 2.0;
                let g = pow(mid) / pow(a);
                let slope = -s * g / mid;
                Block { first, width, c0: (g - slope * mid - 1e-6) as f32, c1: slope as f32 }
            };
            blocks.push(block);
            weights.push(weight);
            if last == n {
                break;
            }
            first = last + 1;
        }
        let norm = weights.iter().rev().sum();
        let table = AliasTable::new(&weights);
        let entries = table
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| Entry { threshold: e.threshold, blocks: [blocks[i], blocks[e.alias as usize]] })
            .collect();
        Self {
            exponent,
            norm,
            entries,
            #[cfg(test)]
            table,
            #[cfg(test)]
            blocks,
        }
    }

    /// A rank in `1..=n`.
    #[inline]
    pub(crate) fn sample(&self, rng: &mut RowRng) -> u32 {
        // As `AliasTable::sample`.
        let r = rng.next_u64();
        let e = &self.entries[(((r >> 32) * self.entries.len() as u64) >> 32) as usize];
        // Indexing rather than `if`: the choice is unpredictable.
        let b = e.blocks[usize::from((r as u32) >= e.threshold)];
        // The same steps for blocks of one rank (whose bound accepts always):
        // fewer unpredictable branches is faster than skipping a draw.
        loop {
            let r = rng.next_u64();
            let k = b.first + (((r >> 32) * u64::from(b.width)) >> 32) as u32;
            let u = unit_f32_bits(r as u32);
            if u < f64::from(b.c0) + f64::from(b.c1) * f64::from(k) || self.accept(b, k, u) {
                return k;
            }
        }
    }

    /// The exact acceptance test, when the linear bound did not decide.
    #[cold]
    #[inline(never)]
    fn accept(&self, b: Block, k: u32, u: f64) -> bool {
        u < exp(-self.exponent * ln(f64::from(k) / f64::from(b.first)))
    }

    /// The probability of rank `k` under Zipf's law.
    pub(crate) fn probability(&self, k: u32) -> f64 {
        exp(-self.exponent * ln(f64::from(k))) / self.norm
    }

    /// The probability of the block holding rank `k` as sampled, and the
    /// block's ranks (for tests).
    #[cfg(test)]
    fn block_of(&self, k: u32) -> (f64, u32, u32) {
        let i = self.blocks.partition_point(|b| b.first + b.width <= k);
        let b = self.blocks[i];
        (self.table.probability(i), b.first, b.first + (b.width - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_probabilities_match_weights() {
        let weights = [5.0, 0.0, 1.0, 3.0, 0.5, 0.5, 10.0];
        let t = AliasTable::new(&weights);
        let total: f64 = weights.iter().sum();
        for (i, w) in weights.iter().enumerate() {
            assert!((t.probability(i) - w / total).abs() < 1e-9, "entry {i}");
        }
        let mut rng = RowRng::new(1, 2);
        let mut counts = [0u32; 7];
        for _ in 0..200_000 {
            counts[t.sample(rng.next_u64())] += 1;
        }
        assert_eq!(counts[1], 0);
        for (i, w) in weights.iter().enumerate() {
            let expected = 200_000.0 * w / total;
            assert!((f64::from(counts[i]) - expected).abs() < 5.0 * expected.sqrt() + 1.0, "{i}: {counts:?}");
        }
    }

    fn direct(first: u32, last: u32, s: f64) -> f64 {
        (first..=last).rev().map(|k| f64::from(k).powf(-s)).sum()
    }

    #[test]
    fn block_masses_match_direct_sums() {
        for (n, s) in [(10_131_227u32, 1.02), (2_202_608, 1.08), (93_145, 1.1), (5_000_000, 1.0), (300_000, 2.5)] {
            let z = Zipf::new(n, s);
            assert!(z.blocks.len() < 260, "{} blocks", z.blocks.len());
            let norm = direct(1, n, s);
            assert!((z.norm - norm).abs() < 1e-12 * norm, "n={n} s={s}: {} vs {norm}", z.norm);
            for k in [1u32, 2, 31, 32, 100, 1_000, 1_024, 1_100, 50_000, n] {
                let p = f64::from(k).powf(-s) / norm;
                assert!((z.probability(k) - p).abs() < 1e-11 * p, "rank {k}: {} vs {p}", z.probability(k));
                let (sampled, first, last) = z.block_of(k);
                let block = direct(first, last, s) / norm;
                assert!(first <= k && k <= last);
                assert!((sampled - block).abs() < 1e-8 * block + 1e-9, "block {first}..={last}: {sampled} vs {block}");
            }
        }
    }

    #[test]
    fn zipf_frequencies_follow_the_law() {
        // Small enough to count every rank; blocks start at rank 32.
        for (n, s) in [(3u32, 3.31), (400, 1.02), (400, 2.3), (300, 0.5)] {
            let z = Zipf::new(n, s);
            let norm = direct(1, n, s);
            let draws = 1_000_000;
            let mut rng = RowRng::new(9, u64::from(n));
            let mut counts = vec![0u32; n as usize + 1];
            for _ in 0..draws {
                let k = z.sample(&mut rng);
                assert!((1..=n).contains(&k));
                counts[k as usize] += 1;
            }
            for k in 1..=n {
                let expected = f64::from(draws) * f64::from(k).powf(-s) / norm;
                let c = f64::from(counts[k as usize]);
                assert!((c - expected).abs() < 5.0 * expected.sqrt() + 1.0, "({n}, {s}) rank {k}: {c} vs {expected}");
            }
        }
    }

    #[test]
    fn zipf_inside_a_large_block_follows_the_law() {
        // Inside one block P(k) ∝ k^-s: compare the mass of its lower half.
        let s = 1.0;
        let z = Zipf::new(100_000, s);
        let (_, first, last) = z.block_of(66_000);
        assert!(last - first > 3000, "{first}..={last}");
        let b = z.blocks[z.blocks.iter().position(|b| b.first == first).unwrap()];
        let half = first + b.width / 2;
        let mut rng = RowRng::new(5, 5);
        let (mut low, mut total) = (0u32, 0u32);
        while total < 400_000 {
            // Draw inside the block as `sample` does after picking it.
            let k = loop {
                let r = rng.next_u64();
                let k = b.first + (((r >> 32) * u64::from(b.width)) >> 32) as u32;
                let u = unit_f32_bits(r as u32);
                let kf = f64::from(k);
                if u < f64::from(b.c0) + f64::from(b.c1) * kf || u < exp(-s * ln(kf / f64::from(b.first))) {
                    break k;
                }
            };
            total += 1;
            low += u32::from(k < half);
        }
        let p = direct(first, half - 1, s) / direct(first, last, s);
        let expected = f64::from(total) * p;
        assert!((f64::from(low) - expected).abs() < 5.0 * (expected * (1.0 - p)).sqrt(), "{low} vs {expected}");
    }

    #[test]
    fn the_linear_bound_is_below_the_power() {
        for (n, s) in [(10_000_000u32, 1.02), (1_000_000, 3.3), (100_000, 0.5), (1_000_000, 4.0)] {
            let z = Zipf::new(n, s);
            for b in z.blocks.iter().filter(|b| b.width > 1) {
                for k in [b.first, b.first + b.width / 3, b.first + b.width / 2, b.first + b.width - 1] {
                    let g = (f64::from(k) / f64::from(b.first)).powf(-s);
                    assert!(f64::from(b.c0) + f64::from(b.c1) * f64::from(k) <= g, "block at {}: k = {k}", b.first);
                }
            }
        }
    }
}
