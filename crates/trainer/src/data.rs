//! The order in which blocks of prepared data are read.

/// A deterministic permutation of `0..n` for `seed` (SplitMix64 and
/// Fisher-Yates).
#[must_use]
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// The block order of epoch `epoch`: shuffled with the seed, or file order.
#[must_use]
pub fn epoch_order(blocks: usize, seed: u64, epoch: u64, shuffle: bool) -> Vec<usize> {
    if shuffle { shuffled(blocks, seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15)) } else { (0..blocks).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_are_permutations_and_reproducible() {
        let a = shuffled(1000, 7);
        let mut s = a.clone();
        s.sort_unstable();
        assert_eq!(s, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, shuffled(1000, 7));
        assert_ne!(a, shuffled(1000, 8));
        assert!(shuffled(0, 1).is_empty());
        assert_eq!(epoch_order(5, 1, 3, false), [0, 1, 2, 3, 4]);
        assert_ne!(epoch_order(100, 1, 0, true), epoch_order(100, 1, 1, true));
    }
}
