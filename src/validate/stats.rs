//! Error statistics of simulated against measured values.
//!
//! Per pair `i` the relative error is `e_i = (sim_i − meas_i) / meas_i`. Pairs where
//! either value is missing (NaN) or the measurement is not positive are left out.
//!
//! * median absolute % error = `100 · median |e_i|`
//! * MAPE = `100 · mean |e_i|`
//! * signed bias = `100 · mean e_i` (positive: the simulator predicts too much: too
//!   long for latencies, too fast for throughputs)
//! * Pearson r of the (sim, meas) pairs (NaN with fewer than two pairs or no spread)
//!
//! Quantiles interpolate linearly between order statistics, as numpy's default
//! (`np.percentile`, which vLLM's benchmark uses).

use serde::Serialize;

/// Summary of one sample, in the sample's unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Quantiles {
    /// Values summarised (NaNs excluded).
    pub count: usize,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Quantiles {
    /// Summarise `values`, ignoring NaNs (all NaN fields when nothing is left).
    pub fn of(values: &[f64]) -> Self {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return Quantiles {
                count: 0,
                mean: f64::NAN,
                p50: f64::NAN,
                p90: f64::NAN,
                p99: f64::NAN,
            };
        }
        v.sort_by(f64::total_cmp);
        Quantiles {
            count: v.len(),
            mean: v.iter().sum::<f64>() / v.len() as f64,
            p50: quantile_sorted(&v, 0.50),
            p90: quantile_sorted(&v, 0.90),
            p99: quantile_sorted(&v, 0.99),
        }
    }
}

/// The `q`-quantile (0..=1) of sorted, NaN-free `v` with linear interpolation; NaN
/// when empty.
pub fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    match v.len() {
        0 => f64::NAN,
        1 => v[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            let frac = pos - lo as f64;
            v[lo] + (v[hi] - v[lo]) * frac
        }
    }
}

/// The median of `values` (NaNs ignored; NaN when none are left).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    quantile_sorted(&v, 0.5)
}

/// How far simulated values are from measured ones, pair by pair. Percentages are in
/// percent (12.5 means 12.5 %).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ErrorStats {
    /// Pairs compared.
    pub count: usize,
    /// Median of |sim − meas| / meas, %.
    pub median_abs_pct: f64,
    /// Mean of |sim − meas| / meas, %.
    pub mape_pct: f64,
    /// Mean of (sim − meas) / meas, % (positive: the simulator predicts too long a
    /// latency, or too high a throughput).
    pub bias_pct: f64,
    /// Pearson correlation of simulated and measured values.
    pub pearson_r: f64,
}

impl ErrorStats {
    /// Compare `sim[i]` with `meas[i]` for every usable pair.
    pub fn of(sim: &[f64], meas: &[f64]) -> Self {
        let pairs: Vec<(f64, f64)> = sim
            .iter()
            .zip(meas)
            .map(|(&s, &m)| (s, m))
            .filter(|&(s, m)| s.is_finite() && m.is_finite() && m > 0.0)
            .collect();
        let rel: Vec<f64> = pairs.iter().map(|&(s, m)| (s - m) / m).collect();
        let abs: Vec<f64> = rel.iter().map(|e| e.abs()).collect();
        let n = rel.len();
        let mean = |v: &[f64]| {
            if v.is_empty() {
                f64::NAN
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        ErrorStats {
            count: n,
            median_abs_pct: 100.0 * median(&abs),
            mape_pct: 100.0 * mean(&abs),
            bias_pct: 100.0 * mean(&rel),
            pearson_r: pearson(
                &pairs.iter().map(|p| p.0).collect::<Vec<_>>(),
                &pairs.iter().map(|p| p.1).collect::<Vec<_>>(),
            ),
        }
    }
}

/// Pearson correlation of `x` and `y` (same length); NaN with fewer than two points or
/// when either has no spread.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return f64::NAN;
    }
    let mx = x[..n].iter().sum::<f64>() / n as f64;
    let my = y[..n].iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (dx, dy) = (x[i] - mx, y[i] - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return f64::NAN;
    }
    sxy / (sxx.sqrt() * syy.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn errors_of_a_hand_computed_example() {
        // Relative errors: +10 %, −20 %, +50 %, 0 %.
        let meas = [10.0, 20.0, 2.0, 5.0];
        let sim = [11.0, 16.0, 3.0, 5.0];
        let e = ErrorStats::of(&sim, &meas);
        assert_eq!(e.count, 4);
        // |e| sorted: 0, 10, 20, 50 → median 15.
        close(e.median_abs_pct, 15.0);
        close(e.mape_pct, (10.0 + 20.0 + 50.0 + 0.0) / 4.0);
        close(e.bias_pct, (10.0 - 20.0 + 50.0 + 0.0) / 4.0);
        // Pearson by hand: means 8.75 (sim), 9.25 (meas).
        // dx = 2.25, 7.25, −5.75, −3.75; dy = 0.75, 10.75, −7.25, −4.25
        // Σdxdy = 1.6875 + 77.9375 + 41.6875 + 15.9375 = 137.25
        // Σdx² = 5.0625 + 52.5625 + 33.0625 + 14.0625 = 104.75
        // Σdy² = 0.5625 + 115.5625 + 52.5625 + 18.0625 = 186.75
        close(e.pearson_r, 137.25 / (104.75f64.sqrt() * 186.75f64.sqrt()));
        close(e.pearson_r, 0.981_307_305_562_078_7);
    }

    #[test]
    fn unusable_pairs_are_skipped() {
        let e = ErrorStats::of(&[1.0, f64::NAN, 2.0, 3.0], &[1.0, 1.0, 0.0, f64::NAN]);
        assert_eq!(e.count, 1);
        close(e.median_abs_pct, 0.0);
        assert!(e.pearson_r.is_nan());
        let empty = ErrorStats::of(&[], &[]);
        assert_eq!(empty.count, 0);
        assert!(empty.mape_pct.is_nan());
    }

    #[test]
    fn perfect_and_anti_correlation() {
        close(pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]), 1.0);
        close(pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0);
        assert!(pearson(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        // np.percentile([1,2,3,4], [50, 90, 99]) = 2.5, 3.7, 3.97
        let q = Quantiles::of(&[4.0, 1.0, f64::NAN, 3.0, 2.0]);
        assert_eq!(q.count, 4);
        close(q.mean, 2.5);
        close(q.p50, 2.5);
        close(q.p90, 3.7);
        close(q.p99, 3.97);
        assert!(Quantiles::of(&[]).mean.is_nan());
    }
}
