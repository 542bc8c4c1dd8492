//! Elementary functions and hashing built from IEEE-754 basic operations only.
//!
//! `f64::exp` and `f64::ln` call the platform's libm, whose last bit may
//! differ between platforms and versions. The generator must produce the same
//! bytes everywhere, so it uses these instead: fdlibm's algorithms (the ones
//! in musl), written with `+ - * /` and bit manipulation, which Rust never
//! contracts or reorders. They are accurate to about one unit in the last
//! place (the tests compare them with `std`).

const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
const INV_LN2: f64 = f64::from_bits(0x3FF7_1547_652B_82FE);

const EXP_P1: f64 = f64::from_bits(0x3FC5_5555_5555_553E);
const EXP_P2: f64 = f64::from_bits(0xBF66_C16C_16BE_BD93);
const EXP_P3: f64 = f64::from_bits(0x3F11_566A_AF25_DE2C);
const EXP_P4: f64 = f64::from_bits(0xBEBB_BD41_C5D2_6BF1);
const EXP_P5: f64 = f64::from_bits(0x3E66_3769_72BE_A4D0);

const LG1: f64 = f64::from_bits(0x3FE5_5555_5555_5593);
const LG2: f64 = f64::from_bits(0x3FD9_9999_9997_FA04);
const LG3: f64 = f64::from_bits(0x3FD2_4924_9422_9359);
const LG4: f64 = f64::from_bits(0x3FCC_71C5_1D8E_78AF);
const LG5: f64 = f64::from_bits(0x3FC7_4664_96CB_03DE);
const LG6: f64 = f64::from_bits(0x3FC3_9A09_D078_C69F);
const LG7: f64 = f64::from_bits(0x3FC2_F112_DF3E_5244);

/// `2^k` times `y`, for `y` near 1.
fn scale(y: f64, k: i32) -> f64 {
    let pow2 = |e: i32| f64::from_bits(((e + 1023) as u64) << 52);
    if k > 1023 {
        y * pow2(1023) * pow2(k - 1023)
    } else if k < -1022 {
        y * pow2(-1022) * pow2(k + 1022)
    } else {
        y * pow2(k)
    }
}

/// `e^x` (fdlibm `e_exp.c`).
pub(crate) fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.782_712_893_384 {
        return f64::INFINITY;
    }
    if x < -745.133_219_101_941_1 {
        return 0.0;
    }
    // Round to nearest (half away from zero) without `f64::round`, a libm
    // call on baseline x86-64; any nearby `k` keeps `|r| <= 0.35`.
    let t = x * INV_LN2;
    let k = (t + if t < 0.0 { -0.5 } else { 0.5 }) as i32;
    let k_f = f64::from(k);
    let hi = x - k_f * LN2_HI;
    let lo = k_f * LN2_LO;
    let r = hi - lo;
    let t = r * r;
    let c = r - t * (EXP_P1 + t * (EXP_P2 + t * (EXP_P3 + t * (EXP_P4 + t * EXP_P5))));
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    scale(y, k)
}

/// Natural logarithm (fdlibm `e_log.c`). `ln(0) = -inf`, negative or NaN
/// input gives NaN.
pub(crate) fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x == f64::INFINITY {
        return x;
    }
    let (mut bits, mut k) = (x.to_bits(), 0i32);
    if bits < 1 << 52 {
        // Subnormal: scale into the normal range first.
        bits = (x * f64::from_bits(0x4350_0000_0000_0000)).to_bits(); // 2^54
        k = -54;
    }
    k += ((bits >> 52) as i32) - 1023;
    let mut m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | 0x3FF0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        k += 1;
    }
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let k = f64::from(k);
    k * LN2_HI - ((hfsq - (s * (hfsq + r) + k * LN2_LO)) - f)
}

/// `e^x - 1`, accurate for small `x` (Kahan's trick).
pub(crate) fn exp_m1(x: f64) -> f64 {
    let u = exp(x);
    if u == 1.0 {
        x
    } else if u - 1.0 == -1.0 {
        -1.0
    } else {
        (u - 1.0) * x / ln(u)
    }
}

/// `(e^x - 1) / x`, continuous at 0.
pub(crate) fn exp_m1_over(x: f64) -> f64 {
    if x.abs() > 1e-8 { exp_m1(x) / x } else { 1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x)) }
}

/// The logistic function `1 / (1 + e^-x)`.
pub(crate) fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + exp(-x))
}

/// Hyperbolic tangent.
pub(crate) fn tanh(x: f64) -> f64 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// The SplitMix64 finaliser: a bijection of `u64` that mixes every input bit
/// into every output bit.
pub(crate) const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 2^64 divided by the golden ratio, made odd: multiplying by it is a
/// bijection of `u64` that spreads consecutive integers apart.
pub(crate) const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// A uniform `f64` in `(0, 1)` from 32 random bits: `(r + 1/2) / 2^32`.
pub(crate) fn unit_f32_bits(r: u32) -> f64 {
    (f64::from(r) + 0.5) * (1.0 / 4_294_967_296.0)
}

/// A uniform `f64` in `[0, 1)` from the top 53 bits of `r`.
pub(crate) fn unit_f64(r: u64) -> f64 {
    (r >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> u64 {
        if a == b {
            return 0;
        }
        (a.to_bits() as i64).abs_diff(b.to_bits() as i64)
    }

    fn inputs() -> impl Iterator<Item = f64> {
        let mut s = 1u64;
        (0..200_000).map(move |_| {
            s = s.wrapping_add(GOLDEN);
            unit_f64(mix64(s))
        })
    }

    #[test]
    fn exp_matches_std() {
        for u in inputs() {
            let x = (u - 0.5) * 1400.0;
            assert!(ulps(exp(x), x.exp()) <= 2, "exp({x}) = {} vs {}", exp(x), x.exp());
            let x = (u - 0.5) * 8.0;
            assert!(ulps(exp(x), x.exp()) <= 1, "exp({x})");
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(1000.0), f64::INFINITY);
        assert_eq!(exp(-1000.0), 0.0);
        assert!(exp(f64::NAN).is_nan());
    }

    #[test]
    fn ln_matches_std() {
        for u in inputs() {
            for x in [u * 4.0, (u * 1400.0 - 700.0).exp(), u * 1e-310, 1.0 + u * 1e-9] {
                assert!(ulps(ln(x), x.ln()) <= 1, "ln({x}) = {} vs {}", ln(x), x.ln());
            }
        }
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
    }

    #[test]
    fn derived_functions_match_std() {
        for u in inputs() {
            for x in [(u - 0.5) * 1e-6, (u - 0.5) * 2.0, u * 50.0 - 0.999_999] {
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-14 * b.abs().max(1e-300);
                assert!(close(exp_m1(x), x.exp_m1()), "exp_m1({x})");
                assert!((tanh(x) - x.tanh()).abs() <= 1e-15, "tanh({x})");
                assert!((sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs() <= 1e-15, "sigmoid({x})");
            }
        }
        for x in [0.0, 1e-12, -1e-12, 1e-7, -3e-5] {
            assert!((exp_m1_over(x) - if x == 0.0 { 1.0 } else { x.exp_m1() / x }).abs() < 1e-15);
        }
    }
}
