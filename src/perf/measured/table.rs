//! Interpolation over measured points that never falls off the table into nonsense.
//!
//! A [`MonotoneTable`] holds a measured time as a function of one size (tokens,
//! sequences, bytes). Measured medians are noisy and occasionally decrease with size;
//! the table first makes them non-decreasing with the pool-adjacent-violators
//! algorithm (the least-squares non-decreasing fit, which moves noisy points less than
//! a running maximum would), then:
//!
//! * between points: linear interpolation;
//! * below the smallest point: the smallest point's value (a floor: a kernel never gets
//!   faster than its fixed cost);
//! * above the largest point: a straight line with the slope of the secant from the
//!   point at about half the largest size to the largest (the operator's marginal cost
//!   over the last doubling, which is its bandwidth- or compute-bound slope).
//!
//! Results are therefore finite, non-negative and non-decreasing for every input.

/// Measured `y(x)`, made non-decreasing, with floor and linear extrapolation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct MonotoneTable {
    xs: Vec<f64>,
    ys: Vec<f64>,
    /// Slope used beyond the last point (≥ 0).
    tail_slope: f64,
}

impl MonotoneTable {
    /// A table from `(x, y)` points in any order. Points with equal `x` are averaged.
    /// Returns `None` when there is no finite point with `x ≥ 0` and `y ≥ 0`.
    pub(crate) fn from_points(points: impl IntoIterator<Item = (f64, f64)>) -> Option<Self> {
        let mut pts: Vec<(f64, f64)> = points
            .into_iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite() && *x >= 0.0 && *y >= 0.0)
            .collect();
        if pts.is_empty() {
            return None;
        }
        pts.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
        let mut xs: Vec<f64> = Vec::with_capacity(pts.len());
        let mut sums: Vec<(f64, f64)> = Vec::with_capacity(pts.len());
        for (x, y) in pts {
            if xs.last() == Some(&x) {
                let s = sums.last_mut().expect("xs and sums grow together");
                s.0 += y;
                s.1 += 1.0;
            } else {
                xs.push(x);
                sums.push((y, 1.0));
            }
        }
        let means: Vec<f64> = sums.iter().map(|(s, n)| s / n).collect();
        let weights: Vec<f64> = sums.iter().map(|(_, n)| *n).collect();
        let ys = pava(&means, &weights);
        let last = xs.len() - 1;
        let tail_slope = if last == 0 {
            0.0
        } else {
            let half = xs[last] / 2.0;
            let i = xs
                .iter()
                .position(|&x| x >= half)
                .unwrap_or(0)
                .min(last - 1);
            ((ys[last] - ys[i]) / (xs[last] - xs[i])).max(0.0)
        };
        Some(MonotoneTable { xs, ys, tail_slope })
    }

    /// The value at `x` (see the module docs for the rules off the table).
    pub(crate) fn eval(&self, x: f64) -> f64 {
        let n = self.xs.len();
        if x.is_nan() || x <= self.xs[0] {
            return self.ys[0];
        }
        if x >= self.xs[n - 1] {
            return self.ys[n - 1] + self.tail_slope * (x - self.xs[n - 1]);
        }
        // First index with xs[i] >= x; i ≥ 1 here.
        let i = self.xs.partition_point(|&v| v < x);
        let (x0, x1, y0, y1) = (self.xs[i - 1], self.xs[i], self.ys[i - 1], self.ys[i]);
        y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    }

    /// The last (largest-`x`) smoothed point.
    pub(crate) fn last_point(&self) -> (f64, f64) {
        let n = self.xs.len() - 1;
        (self.xs[n], self.ys[n])
    }

    /// The smoothed points, in increasing `x`.
    #[cfg(test)]
    pub(crate) fn points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.xs.iter().copied().zip(self.ys.iter().copied())
    }
}

/// Weighted pool-adjacent-violators: the non-decreasing sequence closest to `y` in
/// weighted least squares.
fn pava(y: &[f64], w: &[f64]) -> Vec<f64> {
    // Blocks of (value, weight, length).
    let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(y.len());
    for (&v, &wt) in y.iter().zip(w) {
        blocks.push((v, wt, 1));
        while blocks.len() >= 2 {
            let b = blocks[blocks.len() - 1];
            let a = blocks[blocks.len() - 2];
            if a.0 <= b.0 {
                break;
            }
            let wt = a.1 + b.1;
            let merged = ((a.0 * a.1 + b.0 * b.1) / wt, wt, a.2 + b.2);
            blocks.pop();
            *blocks.last_mut().expect("two blocks were present") = merged;
        }
    }
    blocks
        .into_iter()
        .flat_map(|(v, _, n)| std::iter::repeat_n(v, n))
        .collect()
}

/// A measured time over two sizes (tokens × activated experts for MoE blocks): one
/// [`MonotoneTable`] over the first size per measured value of the second, linear
/// between them, constant below the first, linear beyond the last.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Table2 {
    keys: Vec<f64>,
    rows: Vec<MonotoneTable>,
}

impl Table2 {
    /// From `(x, key, y)` points. Returns `None` when no key has a valid point.
    pub(crate) fn from_points(points: &[(f64, f64, f64)]) -> Option<Self> {
        let mut keys: Vec<f64> = points
            .iter()
            .map(|p| p.1)
            .filter(|k| k.is_finite())
            .collect();
        keys.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        keys.dedup();
        let mut out = Table2 {
            keys: Vec::new(),
            rows: Vec::new(),
        };
        for k in keys {
            let t =
                MonotoneTable::from_points(points.iter().filter(|p| p.1 == k).map(|p| (p.0, p.2)));
            if let Some(t) = t {
                out.keys.push(k);
                out.rows.push(t);
            }
        }
        (!out.keys.is_empty()).then_some(out)
    }

    /// The value at `(x, key)`; never below the value of a smaller key at the same `x`.
    pub(crate) fn eval(&self, x: f64, key: f64) -> f64 {
        let n = self.keys.len();
        if n == 1 || key.is_nan() || key <= self.keys[0] {
            return self.rows[0].eval(x);
        }
        let i = if key >= self.keys[n - 1] {
            n - 1
        } else {
            self.keys.partition_point(|&k| k < key)
        };
        let (k0, k1) = (self.keys[i - 1], self.keys[i]);
        let (y0, y1) = (self.rows[i - 1].eval(x), self.rows[i].eval(x));
        let slope = ((y1 - y0) / (k1 - k0)).max(0.0);
        y0 + slope * (key - k0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_floors_and_extrapolates() {
        let t = MonotoneTable::from_points([(1.0, 10.0), (2.0, 12.0), (4.0, 16.0), (8.0, 24.0)])
            .unwrap();
        assert_eq!(t.eval(0.0), 10.0);
        assert_eq!(t.eval(-5.0), 10.0);
        assert_eq!(t.eval(3.0), 14.0);
        // Secant from x = 4 to 8: slope 2.
        assert_eq!(t.eval(16.0), 40.0);
        assert!(t.eval(f64::NAN).is_finite());
    }

    #[test]
    fn noise_is_made_monotone() {
        let t = MonotoneTable::from_points([(1.0, 10.0), (2.0, 8.0), (3.0, 12.0), (4.0, 11.0)])
            .unwrap();
        let ys: Vec<f64> = t.points().map(|p| p.1).collect();
        assert_eq!(ys, vec![9.0, 9.0, 11.5, 11.5]);
        let mut last = 0.0;
        for i in 0..100 {
            let v = t.eval(f64::from(i) * 0.1);
            assert!(v >= last);
            last = v;
        }
    }

    #[test]
    fn duplicates_are_averaged_and_bad_points_dropped() {
        let t = MonotoneTable::from_points([(1.0, 2.0), (1.0, 4.0), (f64::NAN, 1.0), (2.0, -1.0)])
            .unwrap();
        assert_eq!(t.eval(1.0), 3.0);
        assert_eq!(t.eval(100.0), 3.0);
        assert!(MonotoneTable::from_points([(f64::NAN, 1.0)]).is_none());
    }

    #[test]
    fn table2_interpolates_between_keys() {
        let pts = [
            (1.0, 8.0, 10.0),
            (100.0, 8.0, 20.0),
            (1.0, 16.0, 20.0),
            (100.0, 16.0, 40.0),
        ];
        let t = Table2::from_points(&pts).unwrap();
        assert_eq!(t.eval(1.0, 8.0), 10.0);
        assert_eq!(t.eval(1.0, 12.0), 15.0);
        assert_eq!(t.eval(1.0, 4.0), 10.0);
        assert_eq!(t.eval(1.0, 24.0), 30.0);
    }
}
