//! The efficiency fit: which efficiencies the rows identify, and an exhaustive grid
//! search over them (see the procedure in the parent module).

use super::*;

/// GEMM compute, memory and attention compute efficiencies, and the fixed latency of
/// every kernel (s).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Effs {
    pub(super) gemm: f64,
    pub(super) memory: f64,
    pub(super) attention: f64,
    pub(super) latency_s: f64,
}

impl Effs {
    pub(super) fn get(&self, i: usize) -> f64 {
        [self.gemm, self.memory, self.attention][i]
    }
}

/// The result of [`fit_identified`].
pub(super) struct FitResult {
    pub(super) effs: Effs,
    /// Which of (gemm, memory, attention, latency) were fitted (the others kept their
    /// start).
    pub(super) free: [bool; 4],
}

/// Fit the efficiencies and the kernel latency the sets bind. The latency is free when
/// a GEMM set fitted with one has at least [`MIN_BOUND_ROWS`] fitted rows (GEMMs span
/// sizes from latency-dominated to streaming-dominated, which is what separates the
/// two); it is screened by [`screen_latency`], then the best step and its two
/// neighbours are fitted in full on every row and the one with the smallest loss kept.
pub(super) fn fit_identified(sets: &[&Prepared], start: Effs) -> FitResult {
    let gemm_rows: usize = sets
        .iter()
        .filter(|s| s.source.kind == KernelKind::Gemm && s.source.fit_latency)
        .map(|s| s.fitted.len())
        .sum();
    if gemm_rows < MIN_BOUND_ROWS {
        return fit_at_latency(sets, start);
    }
    let steps = (MAX_LATENCY_S / LATENCY_STEP_S).round() as i64;
    let centre = screen_latency(sets, start, steps);
    let mut chosen: Option<(f64, FitResult)> = None;
    for i in (centre - 1).max(0)..=(centre + 1).min(steps) {
        let latency_s = round_to(i as f64 * LATENCY_STEP_S, 1e-8);
        let fit = fit_at_latency(sets, Effs { latency_s, ..start });
        let loss = total_loss(sets, &fit.effs);
        if chosen.as_ref().is_none_or(|(l, _)| loss < *l) {
            chosen = Some((loss, fit));
        }
    }
    let mut fit = chosen.expect("at least one latency").1;
    fit.free[3] = true;
    fit
}

/// The latency grid step (of `steps` × [`LATENCY_STEP_S`]) with the smallest loss,
/// scored on every [`SCREEN_STRIDE`]-th row at the best efficiencies of a
/// [`SCREEN_STEP`] grid: every fourth step first, then the steps around the best.
fn screen_latency(sets: &[&Prepared], start: Effs, steps: i64) -> i64 {
    let thinned: Vec<Prepared> = sets.iter().map(|s| s.thinned(SCREEN_STRIDE)).collect();
    let thinned: Vec<&Prepared> = thinned.iter().collect();
    let free = identified(sets);
    let loss_at = |i: i64| {
        let at = Effs {
            latency_s: i as f64 * LATENCY_STEP_S,
            ..start
        };
        total_loss(
            &thinned,
            &search(&thinned, at, free, f64::INFINITY, SCREEN_STEP),
        )
    };
    let coarse = (0..=steps).step_by(4);
    let mut best = coarse
        .map(|i| (loss_at(i), i))
        .fold((f64::INFINITY, 0), better);
    let centre = best.1;
    for i in (centre - 3).max(0)..=(centre + 3).min(steps) {
        if i % 4 != 0 {
            best = better(best, (loss_at(i), i));
        }
    }
    best.1
}

/// The smaller loss of two (loss, step) pairs; ties go to the smaller step.
fn better(a: (f64, i64), b: (f64, i64)) -> (f64, i64) {
    if b.0 < a.0 || (b.0 == a.0 && b.1 < a.1) {
        b
    } else {
        a
    }
}

/// Summed set losses at `e`.
fn total_loss(sets: &[&Prepared], e: &Effs) -> f64 {
    sets.iter()
        .map(|s| set_loss(s, e.get(s.compute_index()).ln(), e.memory.ln(), e.latency_s))
        .sum()
}

/// Which of (gemm, memory, attention) the sets bind: an efficiency is free when at
/// least [`MIN_BOUND_ROWS`] fitted rows lie on its side of the ridge point.
fn identified(sets: &[&Prepared]) -> [bool; 3] {
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
    free
}

/// Fit the efficiencies the sets bind at `start`'s kernel latency (the others keep
/// their start).
pub(super) fn fit_at_latency(sets: &[&Prepared], start: Effs) -> FitResult {
    let free = identified(sets);
    FitResult {
        effs: grid_fit(sets, start, free),
        free: [free[0], free[1], free[2], false],
    }
}

/// Mean squared residual of `s` at log efficiencies `lc`, `lm` and kernel latency
/// `latency_s`.
pub(super) fn set_loss(s: &Prepared, lc: f64, lm: f64, latency_s: f64) -> f64 {
    if s.fitted.is_empty() {
        return 0.0;
    }
    let (inv_ec, inv_em) = ((-lc).exp(), (-lm).exp());
    s.fitted
        .iter()
        .map(|p| {
            if latency_s == 0.0 {
                p.residual(lc, lm, 0.0)
            } else {
                p.residual_linear(inv_ec, inv_em, latency_s)
            }
            .powi(2)
        })
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

/// Exhaustive grid minimisation of the summed set losses at `start`'s kernel latency:
/// for every memory efficiency, the best GEMM and attention efficiencies (they
/// separate); coarse (0.01), then fine (0.0005) within ±0.01 of the coarse optimum.
/// Ties go to the first (smallest) value.
pub(super) fn grid_fit(sets: &[&Prepared], start: Effs, free: [bool; 3]) -> Effs {
    let coarse = search(sets, start, free, f64::INFINITY, 0.01);
    search(sets, coarse, free, 0.01, 0.0005)
}

/// One grid search around `centre` (`half` = ∞: over the whole range) with `step`.
fn search(sets: &[&Prepared], centre: Effs, free: [bool; 3], half: f64, step: f64) -> Effs {
    let latency_s = centre.latency_s;
    let best_for = |c: usize, lm: f64, cands: &[f64]| -> (f64, f64) {
        let group: Vec<&&Prepared> = sets.iter().filter(|s| s.compute_index() == c).collect();
        let mut best = (f64::INFINITY, cands[0]);
        for &e in cands {
            let lc = e.ln();
            let l: f64 = group.iter().map(|s| set_loss(s, lc, lm, latency_s)).sum();
            if l < best.0 {
                best = (l, e);
            }
        }
        best
    };
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
                    latency_s,
                },
            );
        }
    }
    best.1
}
