//! A bounded Nelder–Mead minimiser, small enough to read in one sitting.
//!
//! The search runs in the unit box: `x = lo + clamp(u, 0, 1) · (hi − lo)`, so every
//! evaluated point is inside the bounds (a vertex outside the box evaluates at its
//! projection). Standard coefficients (reflection 1, expansion 2, contraction ½,
//! shrink ½); the simplex restarts around the best point until a restart no longer
//! improves, which guards against the early collapse Nelder–Mead is known for.
//! Deterministic: no random numbers.

/// Settings of [`minimize`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NelderMead {
    /// Most function evaluations in all.
    pub max_evals: usize,
    /// Stop a pass when the simplex's values differ by less than this.
    pub f_tol: f64,
    /// Initial simplex edge, as a fraction of each bound's width.
    pub step: f64,
    /// Most restarts.
    pub restarts: usize,
}

impl Default for NelderMead {
    fn default() -> Self {
        NelderMead {
            max_evals: 4000,
            f_tol: 1e-10,
            step: 0.15,
            restarts: 6,
        }
    }
}

/// The result of [`minimize`].
#[derive(Clone, Debug, PartialEq)]
pub struct Minimum {
    /// The best point found (within the bounds).
    pub x: Vec<f64>,
    /// Its value.
    pub f: f64,
    /// Function evaluations used.
    pub evals: usize,
}

/// Minimise `f` over the box `[lo, hi]` starting from `x0` (clamped into the box).
/// Coordinates with `lo == hi` stay fixed.
pub fn minimize(
    mut f: impl FnMut(&[f64]) -> f64,
    x0: &[f64],
    lo: &[f64],
    hi: &[f64],
    opts: &NelderMead,
) -> Minimum {
    let n = x0.len();
    let width: Vec<f64> = (0..n).map(|i| (hi[i] - lo[i]).max(0.0)).collect();
    let to_x = |u: &[f64]| -> Vec<f64> {
        (0..n)
            .map(|i| lo[i] + u[i].clamp(0.0, 1.0) * width[i])
            .collect()
    };
    let free: Vec<usize> = (0..n).filter(|&i| width[i] > 0.0).collect();
    let mut evals = 0usize;
    let mut eval = |u: &[f64], evals: &mut usize| {
        *evals += 1;
        let v = f(&to_x(u));
        if v.is_nan() {
            f64::INFINITY
        } else {
            v
        }
    };
    let mut best_u: Vec<f64> = (0..n)
        .map(|i| {
            if width[i] > 0.0 {
                ((x0[i] - lo[i]) / width[i]).clamp(0.0, 1.0)
            } else {
                0.0
            }
        })
        .collect();
    let mut best_f = eval(&best_u, &mut evals);
    if free.is_empty() {
        return Minimum {
            x: to_x(&best_u),
            f: best_f,
            evals,
        };
    }
    for _ in 0..=opts.restarts {
        let start_f = best_f;
        // Simplex around the best point: one vertex per free coordinate, stepped
        // inwards where the point sits near the upper bound.
        let mut simplex: Vec<(Vec<f64>, f64)> = vec![(best_u.clone(), best_f)];
        for &i in &free {
            let mut u = best_u.clone();
            u[i] += if u[i] + opts.step <= 1.0 {
                opts.step
            } else {
                -opts.step
            };
            let v = eval(&u, &mut evals);
            simplex.push((u, v));
        }
        while evals < opts.max_evals {
            simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
            let (fb, fw) = (simplex[0].1, simplex[simplex.len() - 1].1);
            if (fw - fb).abs() <= opts.f_tol * (1.0 + fb.abs()) {
                break;
            }
            let m = simplex.len() - 1;
            let centroid: Vec<f64> = (0..n)
                .map(|i| simplex[..m].iter().map(|v| v.0[i]).sum::<f64>() / m as f64)
                .collect();
            let along = |t: f64| -> Vec<f64> {
                (0..n)
                    .map(|i| centroid[i] + t * (simplex[m].0[i] - centroid[i]))
                    .collect()
            };
            let xr = along(-1.0);
            let fr = eval(&xr, &mut evals);
            if fr < simplex[0].1 {
                let xe = along(-2.0);
                let fe = eval(&xe, &mut evals);
                simplex[m] = if fe < fr { (xe, fe) } else { (xr, fr) };
            } else if fr < simplex[m - 1].1 {
                simplex[m] = (xr, fr);
            } else {
                let outside = fr < simplex[m].1;
                let xc = along(if outside { -0.5 } else { 0.5 });
                let fc = eval(&xc, &mut evals);
                if fc < simplex[m].1.min(fr) {
                    simplex[m] = (xc, fc);
                } else {
                    let b = simplex[0].0.clone();
                    for v in simplex.iter_mut().skip(1) {
                        for (vi, bi) in v.0.iter_mut().zip(&b) {
                            *vi = bi + 0.5 * (*vi - bi);
                        }
                        v.1 = eval(&v.0, &mut evals);
                    }
                }
            }
        }
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        if simplex[0].1 < best_f {
            best_u = simplex[0].0.iter().map(|u| u.clamp(0.0, 1.0)).collect();
            best_f = simplex[0].1;
        }
        if evals >= opts.max_evals || start_f - best_f <= opts.f_tol * (1.0 + best_f.abs()) {
            break;
        }
    }
    Minimum {
        x: to_x(&best_u),
        f: best_f,
        evals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let rosen = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let m = minimize(
            rosen,
            &[-1.2, 1.0],
            &[-2.0, -2.0],
            &[2.0, 2.0],
            &NelderMead::default(),
        );
        assert!(
            (m.x[0] - 1.0).abs() < 1e-3 && (m.x[1] - 1.0).abs() < 1e-3,
            "{m:?}"
        );
    }

    #[test]
    fn respects_bounds_and_fixed_coordinates() {
        // Unconstrained minimum at (−3, 5); the box stops x at −1; y is fixed at 2.
        let f = |x: &[f64]| (x[0] + 3.0).powi(2) + (x[1] - 5.0).powi(2);
        let m = minimize(
            f,
            &[0.0, 2.0],
            &[-1.0, 2.0],
            &[1.0, 2.0],
            &NelderMead::default(),
        );
        assert!((m.x[0] + 1.0).abs() < 1e-6, "{m:?}");
        assert_eq!(m.x[1], 2.0);
    }
}
