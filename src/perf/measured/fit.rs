//! Small fitting tools: weighted least squares with non-negative coefficients over a
//! handful of columns, and Nelder–Mead for the few non-linear fits.
//!
//! Every fit in this module family minimises *relative* error (weights `1/y²` or the
//! squared log ratio), because operator times span four orders of magnitude and a
//! 10 µs kernel matters as much, relatively, as a 10 ms one.

/// `1 / (1 + e^-x)`: a fitted parameter mapped into (0, 1).
pub(crate) fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The inverse of [`logistic`], for a starting fraction in (0, 1).
pub(crate) fn logit(f: f64) -> f64 {
    (f / (1.0 - f)).ln()
}

/// Accumulated normal equations `AᵀWA c = AᵀWy` of a linear least-squares problem.
#[derive(Clone, Debug)]
pub(crate) struct NormalEquations {
    k: usize,
    ata: Vec<f64>,
    aty: Vec<f64>,
    rows: usize,
}

impl NormalEquations {
    /// An empty system with `k` columns.
    pub(crate) fn new(k: usize) -> Self {
        NormalEquations {
            k,
            ata: vec![0.0; k * k],
            aty: vec![0.0; k],
            rows: 0,
        }
    }

    /// Add the row `x` with target `y` and weight `w`.
    pub(crate) fn add(&mut self, x: &[f64], y: f64, w: f64) {
        debug_assert_eq!(x.len(), self.k);
        for (i, &xi) in x.iter().enumerate() {
            let wx = w * xi;
            if wx == 0.0 {
                continue;
            }
            self.aty[i] += wx * y;
            let row = &mut self.ata[i * self.k..(i + 1) * self.k];
            for (a, &xj) in row.iter_mut().zip(x) {
                *a += wx * xj;
            }
        }
        self.rows += 1;
    }

    /// Solve with every coefficient constrained to be ≥ 0: solve on the active
    /// columns, drop the most negative one, repeat. Columns that no row uses get 0.
    /// Returns `None` when nothing can be solved (no rows).
    pub(crate) fn solve_non_negative(&self) -> Option<Vec<f64>> {
        if self.rows == 0 {
            return None;
        }
        let k = self.k;
        let mut active: Vec<usize> = (0..k).filter(|&i| self.ata[i * k + i] > 0.0).collect();
        loop {
            if active.is_empty() {
                return Some(vec![0.0; k]);
            }
            let n = active.len();
            // Scale columns to unit diagonal for conditioning.
            let scale: Vec<f64> = active.iter().map(|&i| self.ata[i * k + i].sqrt()).collect();
            let mut m = vec![0.0; n * (n + 1)];
            for (a, &i) in active.iter().enumerate() {
                for (b, &j) in active.iter().enumerate() {
                    m[a * (n + 1) + b] = self.ata[i * k + j] / (scale[a] * scale[b]);
                }
                m[a * (n + 1) + a] += 1e-12;
                m[a * (n + 1) + n] = self.aty[i] / scale[a];
            }
            let sol = gauss_solve(&mut m, n)?;
            let c: Vec<f64> = sol.iter().zip(&scale).map(|(v, s)| v / s).collect();
            let (worst, min) =
                c.iter().enumerate().fold(
                    (0, f64::INFINITY),
                    |acc, (i, &v)| if v < acc.1 { (i, v) } else { acc },
                );
            if min >= 0.0 {
                let mut out = vec![0.0; k];
                for (a, &i) in active.iter().enumerate() {
                    out[i] = c[a];
                }
                return Some(out);
            }
            active.remove(worst);
        }
    }
}

/// Gaussian elimination with partial pivoting on an `n × (n+1)` augmented matrix.
fn gauss_solve(m: &mut [f64], n: usize) -> Option<Vec<f64>> {
    let w = n + 1;
    for col in 0..n {
        let piv = (col..n).max_by(|&a, &b| {
            m[a * w + col]
                .abs()
                .partial_cmp(&m[b * w + col].abs())
                .unwrap_or(std::cmp::Ordering::Equal)
        })?;
        if m[piv * w + col].abs() < 1e-300 {
            return None;
        }
        if piv != col {
            for j in 0..w {
                m.swap(piv * w + j, col * w + j);
            }
        }
        for r in 0..n {
            if r == col {
                continue;
            }
            let f = m[r * w + col] / m[col * w + col];
            if f != 0.0 {
                for j in col..w {
                    m[r * w + j] -= f * m[col * w + j];
                }
            }
        }
    }
    let x: Vec<f64> = (0..n).map(|i| m[i * w + n] / m[i * w + i]).collect();
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// The parameters minimising `Σ ln(predict(p, s) / measured(s))²` over `samples`, from
/// `x0` (two Nelder–Mead passes, of `evals.0` evaluations with a wide simplex, then
/// `evals.1` with a narrow one: the restart shakes the simplex out of flat regions),
/// and the median relative error there.
pub(crate) fn fit_log_ratio<S>(
    samples: &[S],
    x0: &[f64],
    evals: (usize, usize),
    measured: impl Fn(&S) -> f64,
    predict: impl Fn(&[f64], &S) -> f64,
) -> (Vec<f64>, f64) {
    let loss = |p: &[f64]| -> f64 {
        samples
            .iter()
            .map(|s| (predict(p, s) / measured(s)).ln().powi(2))
            .sum()
    };
    let mut p = nelder_mead(loss, x0, 0.7, evals.0);
    p = nelder_mead(loss, &p, 0.3, evals.1);
    let errs: Vec<f64> = samples
        .iter()
        .map(|s| (predict(&p, s) / measured(s) - 1.0).abs())
        .collect();
    let err = median(&errs).unwrap_or(0.0);
    (p, err)
}

/// Minimise `f` from `x0` with the Nelder–Mead simplex (initial step `step` in every
/// coordinate). Deterministic; stops after `max_evals` evaluations or when the simplex
/// values agree to `1e-12` relative.
pub(crate) fn nelder_mead(
    f: impl Fn(&[f64]) -> f64,
    x0: &[f64],
    step: f64,
    max_evals: usize,
) -> Vec<f64> {
    let n = x0.len();
    let mut simplex: Vec<Vec<f64>> = vec![x0.to_vec()];
    for i in 0..n {
        let mut x = x0.to_vec();
        x[i] += step;
        simplex.push(x);
    }
    let mut fx: Vec<f64> = simplex.iter().map(|x| f(x)).collect();
    let mut evals = n + 1;
    let lerp = |a: &[f64], b: &[f64], t: f64| -> Vec<f64> {
        a.iter().zip(b).map(|(p, q)| p + t * (q - p)).collect()
    };
    while evals < max_evals {
        let mut order: Vec<usize> = (0..=n).collect();
        order.sort_by(|&a, &b| {
            fx[a]
                .partial_cmp(&fx[b])
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        simplex = order.iter().map(|&i| simplex[i].clone()).collect();
        fx = order.iter().map(|&i| fx[i]).collect();
        if (fx[n] - fx[0]).abs() <= 1e-12 * (fx[0].abs() + 1e-300) {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| simplex[..n].iter().map(|x| x[j]).sum::<f64>() / n as f64)
            .collect();
        let reflected = lerp(&centroid, &simplex[n], -1.0);
        let fr = f(&reflected);
        evals += 1;
        if fr < fx[0] {
            let expanded = lerp(&centroid, &simplex[n], -2.0);
            let fe = f(&expanded);
            evals += 1;
            if fe < fr {
                simplex[n] = expanded;
                fx[n] = fe;
            } else {
                simplex[n] = reflected;
                fx[n] = fr;
            }
        } else if fr < fx[n - 1] {
            simplex[n] = reflected;
            fx[n] = fr;
        } else {
            let contracted = lerp(&centroid, &simplex[n], 0.5);
            let fc = f(&contracted);
            evals += 1;
            if fc < fx[n] {
                simplex[n] = contracted;
                fx[n] = fc;
            } else {
                for i in 1..=n {
                    simplex[i] = lerp(&simplex[0], &simplex[i], 0.5);
                    fx[i] = f(&simplex[i]);
                }
                evals += n;
            }
        }
    }
    let best = (0..=n)
        .min_by(|&a, &b| {
            fx[a]
                .partial_cmp(&fx[b])
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .unwrap_or(0);
    simplex.swap_remove(best)
}

/// Median of `v` (sorted copy); `None` when empty.
pub(crate) fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    // Selection instead of a full sort (start-up takes medians of thousands of errors):
    // the order statistics are the same values a sort puts there.
    let mut s = v.to_vec();
    let n = s.len();
    let (below, mid, _) = s.select_nth_unstable_by(n / 2, f64::total_cmp);
    let mid = *mid;
    Some(if n % 2 == 1 {
        mid
    } else {
        let lower = below.iter().copied().max_by(f64::total_cmp).expect("n ≥ 2");
        0.5 * (lower + mid)
    })
}

/// The median by a full sort (the implementation before selection): the oracle
/// [`median`] is tested against.
#[cfg(test)]
fn median_by_sort(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_linear_law() {
        let mut ne = NormalEquations::new(2);
        for x in 1..20 {
            let x = f64::from(x);
            ne.add(&[1.0, x], 3.0 + 2.0 * x, 1.0);
        }
        let c = ne.solve_non_negative().unwrap();
        assert!(
            (c[0] - 3.0).abs() < 1e-9 && (c[1] - 2.0).abs() < 1e-9,
            "{c:?}"
        );
    }

    #[test]
    fn negative_coefficients_are_dropped() {
        let mut ne = NormalEquations::new(2);
        for x in 1..20 {
            let x = f64::from(x);
            ne.add(&[1.0, x], 100.0 - x, 1.0);
        }
        let c = ne.solve_non_negative().unwrap();
        assert_eq!(c[1], 0.0);
        assert!(c[0] > 0.0);
        assert!(NormalEquations::new(3).solve_non_negative().is_none());
    }

    #[test]
    fn nelder_mead_finds_a_quadratic_minimum() {
        let x = nelder_mead(
            |p| (p[0] - 1.0).powi(2) + 10.0 * (p[1] + 2.0).powi(2),
            &[0.0, 0.0],
            0.5,
            2000,
        );
        assert!(
            (x[0] - 1.0).abs() < 1e-4 && (x[1] + 2.0).abs() < 1e-4,
            "{x:?}"
        );
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn selection_median_equals_the_sorted_one() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for n in 1..200 {
            let v: Vec<f64> = (0..n)
                // Finite values, ties and zeros (the errors medians are taken of are
                // never NaN or -0.0, where a sort by `partial_cmp` has no order).
                .map(|_| match rng.random_range(0..6) {
                    0 | 1 => 0.0,
                    2 => f64::from(rng.random_range(0..5_i32)),
                    _ => rng.random_range(-1e3..1e3),
                })
                .collect();
            let a = median(&v).unwrap();
            let b = median_by_sort(&v).unwrap();
            assert_eq!(a.to_bits(), b.to_bits(), "{v:?}");
        }
    }
}
