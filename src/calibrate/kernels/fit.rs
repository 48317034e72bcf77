//! The efficiency fit: which efficiencies the rows identify, and an exhaustive grid
//! search over them (see the procedure in the parent module).

use super::*;

/// GEMM compute, memory and attention compute efficiencies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Effs {
    pub(super) gemm: f64,
    pub(super) memory: f64,
    pub(super) attention: f64,
}

impl Effs {
    pub(super) fn get(&self, i: usize) -> f64 {
        [self.gemm, self.memory, self.attention][i]
    }
}

/// The result of [`fit_identified`].
pub(super) struct FitResult {
    pub(super) effs: Effs,
    /// Which of (gemm, memory, attention) were fitted (the others kept their start).
    pub(super) free: [bool; 3],
}

/// Fit the efficiencies the sets bind: an efficiency is free when at least
/// [`MIN_BOUND_ROWS`] fitted rows lie on its side of the ridge point; the others keep
/// their start.
pub(super) fn fit_identified(sets: &[&Prepared], start: Effs) -> FitResult {
    let has = |c: usize| {
        sets.iter()
            .any(|s| s.compute_index() == c && !s.fitted.is_empty())
    };
    let mut free = [has(0), true, has(2)];
    // Rows on each side of the ridge point at datasheet peaks: an efficiency the rows
    // do not reach cannot be fitted (counting the rows bound *at the fit* instead would
    // let the fit create its own evidence by lowering an efficiency).
    let mut sides = [0usize; 3];
    for s in sets {
        for p in &s.fitted {
            if p.ideal_compute_bound() {
                sides[s.compute_index()] += 1;
            } else {
                sides[1] += 1;
            }
        }
    }
    for (f, n) in free.iter_mut().zip(sides) {
        *f = *f && n >= MIN_BOUND_ROWS;
    }
    FitResult {
        effs: grid_fit(sets, start, free),
        free,
    }
}

/// Mean squared residual of `s` at log efficiencies `lc`, `lm`.
pub(super) fn set_loss(s: &Prepared, lc: f64, lm: f64) -> f64 {
    if s.fitted.is_empty() {
        return 0.0;
    }
    s.fitted
        .iter()
        .map(|p| p.residual(lc, lm).powi(2))
        .sum::<f64>()
        / s.fitted.len() as f64
}

/// Candidate values of one efficiency: the grid in `[lo, hi]` of step `step` when
/// free, else its fixed value.
pub(super) fn candidates(free: bool, fixed: f64, lo: f64, hi: f64, step: f64) -> Vec<f64> {
    if !free {
        return vec![fixed];
    }
    let lo = lo.max(MIN_EFFICIENCY);
    let hi = hi.min(1.0);
    let n = ((hi - lo) / step + 1e-9).floor() as usize;
    (0..=n)
        .map(|i| round_to(lo + i as f64 * step, step))
        .collect()
}

/// Exhaustive grid minimisation of the summed set losses: for every memory efficiency,
/// the best GEMM and attention efficiencies (they separate); coarse (0.01), then fine
/// (0.0005) within ±0.01 of the coarse optimum. Ties go to the first (smallest) value.
pub(super) fn grid_fit(sets: &[&Prepared], start: Effs, free: [bool; 3]) -> Effs {
    let best_for = |c: usize, lm: f64, cands: &[f64]| -> (f64, f64) {
        let group: Vec<&&Prepared> = sets.iter().filter(|s| s.compute_index() == c).collect();
        let mut best = (f64::INFINITY, cands[0]);
        for &e in cands {
            let lc = e.ln();
            let l: f64 = group.iter().map(|s| set_loss(s, lc, lm)).sum();
            if l < best.0 {
                best = (l, e);
            }
        }
        best
    };
    let search = |centre: Effs, half: f64, step: f64| -> Effs {
        let range = |i: usize, c: f64| {
            if half.is_infinite() {
                candidates(free[i], c, MIN_EFFICIENCY, 1.0, step)
            } else {
                candidates(free[i], c, c - half, c + half, step)
            }
        };
        let (gs, ms, as_) = (
            range(0, centre.gemm),
            range(1, centre.memory),
            range(2, centre.attention),
        );
        let mut best = (f64::INFINITY, centre);
        for &m in &ms {
            let lm = m.ln();
            let (lg, g) = best_for(0, lm, &gs);
            let (la, a) = best_for(2, lm, &as_);
            if lg + la < best.0 {
                best = (
                    lg + la,
                    Effs {
                        gemm: g,
                        memory: m,
                        attention: a,
                    },
                );
            }
        }
        best.1
    };
    let coarse = search(start, f64::INFINITY, 0.01);
    search(coarse, 0.01, 0.0005)
}
