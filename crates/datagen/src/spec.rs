//! The constants of the generated world: per-column distributions and the
//! planted click model. Fitted to the first 8,000 rows of Kaggle `train.txt`
//! (see the crate docs); none of those rows is stored here.

/// Integer columns.
pub(crate) const INTS: usize = 13;
/// Categorical columns.
pub(crate) const CATS: usize = 26;

/// An integer column: among present values, `P(-1), P(-2), P(-3)`, then
/// `P(0)`, the rest `x >= 1` with `ln x` logistic(`mu`, `scale`), truncated
/// to `[0, ln(cap + 1))` and floored (`x = floor(e^y)`). The planted effect on
/// the logit is `amp * tanh((v - center) / 1.2)` with `v` a representative
/// `ln x` of the value's bucket, and `missing` when the value is missing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IntSpec {
    pub(crate) negative: [f64; 3],
    pub(crate) zero: f64,
    pub(crate) mu: f64,
    pub(crate) scale: f64,
    pub(crate) cap: u32,
    pub(crate) amp: f64,
    pub(crate) center: f64,
    pub(crate) missing: f64,
}

const fn int(zero: f64, mu: f64, scale: f64, cap: u32, amp: f64, center: f64, missing: f64) -> IntSpec {
    IntSpec { negative: [0.0; 3], zero, mu, scale, cap, amp, center, missing }
}

/// Width of the `tanh` of the integer effects, in units of `ln x`.
pub(crate) const INT_EFFECT_WIDTH: f64 = 1.2;

pub(crate) const INT_SPECS: [IntSpec; INTS] = [
    int(0.479, 0.80, 0.75, 5_775, 0.45, 1.1, -0.15), // I1
    IntSpec { negative: [0.0990, 0.0008, 0.0002], ..int(0.181, 1.30, 1.80, 257_675, -0.20, 2.6, 0.0) }, // I2
    int(0.008, 1.70, 1.00, 65_535, -0.25, 1.9, 0.10), // I3
    int(0.072, 1.60, 0.65, 969, 0.20, 1.6, 0.05),    // I4
    int(0.016, 7.70, 1.50, 23_159_456, -0.35, 6.0, 0.20), // I5
    int(0.061, 3.70, 1.05, 431_037, -0.30, 3.9, 0.15), // I6
    int(0.253, 1.50, 0.90, 56_311, 0.40, 1.6, -0.10), // I7
    int(0.120, 2.30, 0.60, 6_047, -0.15, 2.3, 0.0),  // I8
    int(0.031, 3.60, 1.05, 29_019, 0.20, 3.8, -0.05), // I9
    int(0.506, -1.40, 0.30, 11, 0.35, 0.3, -0.10),   // I10
    int(0.266, 0.30, 0.60, 231, 0.45, 0.7, -0.20),   // I11
    int(0.744, -0.30, 0.70, 4_008, 0.25, 0.5, -0.05), // I12
    int(0.059, 1.70, 0.75, 7_393, -0.25, 1.8, 0.05), // I13
];

/// A categorical column: Zipf(`exponent`) over `cardinality` values (the
/// Kaggle cardinalities); its most frequent values carry a planted weight of
/// standard deviation `sigma`. Exponents were fitted to the real sample: so
/// that the expected number of distinct values among its present values
/// matches the real count, or, for columns whose real sample shows nearly
/// all values (C6, C9, C14, C17, C20, C22, C23, C25), so that the top value's
/// frequency matches (C1, C5 and C8 lie between the two fits). Sigmas were set by hand, then scaled so that the
/// planted model's log loss is about 0.42.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CatSpec {
    pub(crate) cardinality: u32,
    pub(crate) exponent: f64,
    pub(crate) sigma: f64,
}

const fn cat(cardinality: u32, exponent: f64, sigma: f64) -> CatSpec {
    CatSpec { cardinality, exponent, sigma }
}

pub(crate) const CAT_SPECS: [CatSpec; CATS] = [
    cat(1_460, 1.80, 0.36),      // C1
    cat(583, 1.42, 0.45),        // C2
    cat(10_131_227, 1.02, 0.54), // C3
    cat(2_202_608, 1.08, 0.45),  // C4
    cat(305, 2.30, 0.27),        // C5
    cat(24, 1.70, 0.27),         // C6
    cat(12_517, 0.96, 0.45),     // C7
    cat(633, 2.05, 0.27),        // C8
    cat(3, 3.31, 0.27),          // C9
    cat(93_145, 1.10, 0.36),     // C10
    cat(5_683, 1.04, 0.45),      // C11
    cat(8_351_593, 1.03, 0.54),  // C12
    cat(3_194, 1.02, 0.45),      // C13
    cat(27, 1.28, 0.45),         // C14
    cat(14_992, 1.13, 0.36),     // C15
    cat(5_461_306, 1.05, 0.45),  // C16
    cat(10, 1.28, 0.36),         // C17
    cat(5_652, 1.25, 0.36),      // C18
    cat(2_173, 1.34, 0.45),      // C19
    cat(4, 0.48, 0.27),          // C20
    cat(7_046_547, 1.04, 0.45),  // C21
    cat(18, 1.67, 0.36),         // C22
    cat(15, 1.42, 0.45),         // C23
    cat(286_181, 1.16, 0.45),    // C24
    cat(105, 1.40, 0.45),        // C25
    cat(142_572, 1.10, 0.36),    // C26
];

/// A categorical value carries a planted weight only if it is among the
/// column's `MAX_EFFECT_RANKS` most frequent values and its probability
/// (counting missing rows) is at least `MIN_EFFECT_PROBABILITY`: at least 300
/// expected occurrences per million rows, enough to learn its weight.
pub(crate) const MAX_EFFECT_RANKS: u32 = 300;
/// See [`MAX_EFFECT_RANKS`].
pub(crate) const MIN_EFFECT_PROBABILITY: f64 = 3e-4;

/// The mean of the logit: the bias is this minus the expected value of every
/// column's effect. Chosen so that about 25% of rows are positive.
pub(crate) const MEAN_LOGIT: f64 = -1.56;

/// Columns that are missing together, and how often. Feature index: I1..I13
/// are 0..=12, C1..C26 are 13..=38. Columns in no unit are never missing.
pub(crate) const MISSING_UNITS: [(f64, &[usize]); 12] = [
    (0.448, &[0, 9]),                   // I1, I10
    (0.204, &[2]),                      // I3
    (0.198, &[3, 12]),                  // I4, I13
    (0.049, &[4]),                      // I5
    (0.251, &[5]),                      // I6
    (0.049, &[6, 8, 10]),               // I7, I9, I11
    (0.001, &[7]),                      // I8
    (0.773, &[11]),                     // I12
    (0.036, &[15, 16, 24, 28, 33, 36]), // C3, C4, C12, C16, C21, C24
    (0.133, &[18]),                     // C6
    (0.450, &[31, 32, 37, 38]),         // C19, C20, C25, C26
    (0.818, &[34]),                     // C22
];
