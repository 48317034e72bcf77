//! Fixed-precision decimal text of floats without `core::fmt`, for the per-request and
//! per-second rows of large runs.
//!
//! [`push_fixed`] writes exactly what `format!("{x:.decimals$}")` writes (the exact
//! binary value rounded half to even at the last digit), so files are byte-identical to
//! the formatter's; the tests hold it to `format!` on random and edge-case values.
//! A finite `x = m · 2^e` (53-bit `m`) is scaled by `10^decimals` in 128-bit integer
//! arithmetic, then shifted with rounding: no floating-point step, so nothing to round
//! twice. Values out of that range (and infinities) go through `format!`.

use std::io::Write;

/// Largest `decimals` handled without `format!` (`m · 10^18 < 2^113`).
const MAX_DECIMALS: u32 = 18;

/// `10^i` for `i ≤ MAX_DECIMALS`.
const POW10: [u64; MAX_DECIMALS as usize + 1] = {
    let mut t = [1u64; MAX_DECIMALS as usize + 1];
    let mut i = 1;
    while i < t.len() {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// Append `x` with `decimals` digits after the point, as `format!("{x:.decimals$}")`
/// would (NaN included, as "NaN").
pub fn push_fixed(out: &mut String, x: f64, decimals: u32) {
    let mut bytes = Vec::with_capacity(32);
    push_fixed_bytes(&mut bytes, x, decimals);
    out.push_str(std::str::from_utf8(&bytes).expect("ASCII digits"));
}

/// [`push_fixed`] into a byte buffer (the row writers' form: no UTF-8 check per cell).
pub fn push_fixed_bytes(out: &mut Vec<u8>, x: f64, decimals: u32) {
    if let Some(v) = scaled_by_float(x, decimals) {
        return push_scaled_u64(out, v, decimals);
    }
    let Some(scaled) = scaled(x, decimals) else {
        let d = decimals as usize;
        write!(out, "{x:.d$}").expect("writing to a Vec cannot fail");
        return;
    };
    if x.is_sign_negative() {
        out.push(b'-');
    }
    match u64::try_from(scaled) {
        Ok(v) => push_scaled_u64(out, v, decimals),
        Err(_) => {
            let unit = 10u128.pow(decimals);
            push_parts(out, scaled / unit, scaled % unit, decimals);
        }
    }
}

/// Most bytes one number takes (`u64::MAX` has 20 digits, plus a point).
const BUF: usize = 24;

/// Append `v / 10^decimals` with `decimals` digits after the point (`v` already scaled).
fn push_scaled_u64(out: &mut Vec<u8>, v: u64, decimals: u32) {
    // A constant divisor for the usual 9 digits (a multiplication, not a division).
    let (mut int, mut frac) = match decimals {
        9 => (v / 1_000_000_000, v % 1_000_000_000),
        d => (v / POW10[d as usize], v % POW10[d as usize]),
    };
    let point = usize::from(decimals > 0);
    // At most 21 bytes: `v` has the digits of `int` followed by `decimals` more.
    let len = digits(int) + point + decimals as usize;
    let slot = open_slot(out, len);
    let mut i = len;
    if decimals == 9 {
        // The usual nine digits as two independent groups of four and five, shorter
        // chains of dependent divisions than one group of nine.
        let (hi, lo) = (frac / 10_000, frac % 10_000);
        slot[i - 2..i].copy_from_slice(pair(lo % 100));
        slot[i - 4..i - 2].copy_from_slice(pair(lo / 100));
        slot[i - 6..i - 4].copy_from_slice(pair(hi % 100));
        slot[i - 8..i - 6].copy_from_slice(pair(hi / 100 % 100));
        slot[i - 9] = b'0' + (hi / 10_000) as u8;
        slot[i - 10] = b'.';
        fill_int(&mut slot[..i - 10], &mut int);
        return;
    }
    for _ in 0..decimals / 2 {
        i -= 2;
        slot[i..i + 2].copy_from_slice(pair(frac % 100));
        frac /= 100;
    }
    if decimals % 2 == 1 {
        i -= 1;
        slot[i] = b'0' + frac as u8;
    }
    if point == 1 {
        i -= 1;
        slot[i] = b'.';
    }
    fill_int(&mut slot[..i], &mut int);
}

/// Append the decimal text of `v` (as `itoa` or `to_string` writes it).
pub fn push_u64(out: &mut Vec<u8>, v: u64) {
    let len = digits(v);
    fill_int(open_slot(out, len), &mut { v });
}

/// Grow `out` by `len ≤ BUF` bytes and return them, to be written in place.
///
/// The length is known before the text is written, so the digits go straight into
/// `out`: growing by a constant `BUF` bytes and cutting back is a fixed-size store the
/// compiler inlines, where appending a digit buffer of variable length was a `memcpy`
/// call per cell, a noticeable share of writing a million-row `requests.csv`.
fn open_slot(out: &mut Vec<u8>, len: usize) -> &mut [u8] {
    let start = out.len();
    out.extend_from_slice(&[b'0'; BUF]);
    out.truncate(start + len);
    &mut out[start..]
}

/// Fill `slot` (exactly as long as `int` has digits) with the digits of `int`.
fn fill_int(slot: &mut [u8], int: &mut u64) {
    let mut i = slot.len();
    while *int >= 100 {
        i -= 2;
        slot[i..i + 2].copy_from_slice(pair(*int % 100));
        *int /= 100;
    }
    if *int >= 10 {
        slot[i - 2..i].copy_from_slice(pair(*int));
    } else {
        slot[i - 1] = b'0' + *int as u8;
    }
}

/// Number of decimal digits of `v` (1 for 0).
fn digits(v: u64) -> usize {
    v.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// The two decimal digits of `n` (< 100).
fn pair(n: u64) -> &'static [u8] {
    const DIGITS: &[u8; 200] = b"\
        0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let i = n as usize * 2;
    &DIGITS[i..i + 2]
}

/// `int.frac`, the fraction zero-padded to `decimals` digits (no point when 0).
fn push_parts(out: &mut Vec<u8>, int: u128, frac: u128, decimals: u32) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(int).as_bytes());
    if decimals > 0 {
        out.push(b'.');
        let frac = buf.format(frac);
        out.resize(out.len() + decimals as usize - frac.len(), b'0');
        out.extend_from_slice(frac.as_bytes());
    }
}

/// The common case of [`scaled`] in floating point: `x · 10^decimals` (one rounding)
/// split into its integer part and fraction, both exact below 2^52. The exact product
/// lies within half a unit in the last place (at most `y · 2^-53`) of `y`, so when the
/// fraction is farther than that from one half, the exact product rounds the same way
/// as `y`; otherwise (about 2 % of times of a day's length, none of small ones) and
/// for negative, huge or non-finite `x`: None, and [`scaled`] decides.
fn scaled_by_float(x: f64, decimals: u32) -> Option<u64> {
    const LIMIT: f64 = (1u64 << 52) as f64;
    if decimals > MAX_DECIMALS || !x.is_finite() || x.is_sign_negative() {
        return None;
    }
    let y = x * POW10[decimals as usize] as f64;
    // `x` is finite, so `y` is a number (or infinite).
    if y >= LIMIT {
        return None;
    }
    let t = y as u64;
    let f = y - t as f64;
    let margin = y * f64::EPSILON;
    if f + margin < 0.5 {
        Some(t)
    } else if f - margin > 0.5 {
        Some(t + 1)
    } else {
        None
    }
}

/// `|x| · 10^decimals` rounded half to even, or None where `format!` must do it.
fn scaled(x: f64, decimals: u32) -> Option<u128> {
    if !x.is_finite() || decimals > MAX_DECIMALS {
        return None;
    }
    let bits = x.abs().to_bits();
    let exp_bits = (bits >> 52) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    // x = m · 2^e exactly.
    let (m, e) = if exp_bits == 0 {
        (frac, -1074)
    } else {
        (frac | (1 << 52), exp_bits - 1075)
    };
    let p = u128::from(m) * u128::from(POW10[decimals as usize]);
    if e >= 0 {
        // Integers this large are rare in outputs; keep the product in range.
        return if e <= 14 { Some(p << e) } else { None };
    }
    let s = (-e) as u32;
    if s >= 120 {
        // p < 2^113 ≤ half of 2^s: rounds to zero.
        return Some(0);
    }
    let q = p >> s;
    let r = p & ((1u128 << s) - 1);
    let half = 1u128 << (s - 1);
    Some(if r > half || (r == half && q & 1 == 1) {
        q + 1
    } else {
        q
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(x: f64, d: u32) {
        let mut s = String::new();
        push_fixed(&mut s, x, d);
        let du = d as usize;
        assert_eq!(
            s,
            format!("{x:.du$}"),
            "x = {x:e} ({:#x}), {d} decimals",
            x.to_bits()
        );
    }

    #[test]
    fn edge_cases_match_the_formatter() {
        let values = [
            0.0,
            -0.0,
            0.5,
            1.5,
            2.5,
            0.125,
            0.0000000005,
            0.0000000015,
            0.0000000025,
            1e-300,
            f64::MIN_POSITIVE,
            5e-324,
            -1e-12,
            0.999999999_5,
            9.9999999995,
            33340.412345678,
            4.5e15,
            9.007199254740993e15,
            1e20,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        for x in values {
            for d in [0, 1, 2, 3, 6, 9, 12, 18, 19] {
                check(x, d);
                check(-x, d);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn any_float_matches_the_formatter(bits in any::<u64>(), d in 0u32..20) {
            check(f64::from_bits(bits), d);
        }

        #[test]
        fn times_in_seconds_match_the_formatter(ns in 0u64..10_000_000_000_000_000, d in 0u32..12) {
            check(ns as f64 / 1e9, d);
        }

        #[test]
        fn integers_match_the_formatter(v in any::<u64>(), small in 0u64..1000) {
            for v in [v, small, v >> 32] {
                let mut out = b"x".to_vec();
                push_u64(&mut out, v);
                prop_assert_eq!(String::from_utf8(out[1..].to_vec()).unwrap(), v.to_string());
            }
        }

        /// The floating-point shortcut gives the exact path's answer whenever it gives one.
        #[test]
        fn the_float_shortcut_agrees_with_the_exact_scaling(bits in any::<u64>(), ns in 0u64..100_000_000_000_000_000, d in 0u32..19) {
            for x in [f64::from_bits(bits), ns as f64 / 1e9, (ns % 1_000_000) as f64 / 1e9] {
                if let Some(v) = scaled_by_float(x, d) {
                    prop_assert_eq!(Some(u128::from(v)), scaled(x, d), "x = {:e}, {} decimals", x, d);
                }
            }
        }

        #[test]
        fn exact_halves_match_the_formatter(k in 0u64..1_000_000_000, d in 0u32..6) {
            // k + 0.5 units of the last digit, exactly representable for small d.
            let x = (k as f64 * 2.0 + 1.0) / (2.0 * 10f64.powi(d as i32));
            check(x, d);
        }
    }
}
