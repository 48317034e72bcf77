//! Maximum sustainable rate (bisection), fewest replicas for a target rate, ranking and
//! the Pareto frontier.
//!
//! A load is *sustainable* when the run meets the SLO ([`PlanSlo::met`]). Overload
//! shows as a growing queue, that is as TTFT growing over the run, so give a TTFT
//! limit: with only a TPOT limit, a load whose queue grows but whose decode steps stay
//! fast passes. (Finished requests per second is no test on a finite trace: the drain
//! after the last arrival lowers it at every load.)

use super::exec::{Outcome, PointMetrics};
use crate::error::{Error, Result};

/// How the SLO is judged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SloTarget {
    /// The given percentile of TTFT and of TPOT within their limits (50, 90, 95, 99 or
    /// 99.9).
    Percentile(f64),
    /// At least this fraction of all requests meets both limits.
    Attainment(f64),
}

/// The SLO of a plan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanSlo {
    /// TTFT limit, s.
    pub ttft_s: Option<f64>,
    /// TPOT limit, s.
    pub tpot_s: Option<f64>,
    /// How they are judged.
    pub target: SloTarget,
}

impl PlanSlo {
    /// Check the values (`field` names in errors are the CLI flags).
    pub fn validate(&self) -> Result<()> {
        let bad = |f: &str, m: String| Err(Error::input("<command line>", Some(f), m));
        for (f, v) in [("slo-ttft-s", self.ttft_s), ("slo-tpot-s", self.tpot_s)] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return bad(f, format!("must be positive, got {v}"));
                }
            }
        }
        if self.ttft_s.is_none() && self.tpot_s.is_none() {
            return bad("slo-ttft-s", "give --slo-ttft-s and/or --slo-tpot-s".into());
        }
        match self.target {
            SloTarget::Percentile(p) if ![50.0, 90.0, 95.0, 99.0, 99.9].contains(&p) => bad(
                "slo-percentile",
                format!("{p}: supported percentiles are 50, 90, 95, 99 and 99.9"),
            ),
            SloTarget::Attainment(a) if !(a > 0.0 && a <= 1.0) => {
                bad("slo-attainment", format!("must be in (0, 1], got {a}"))
            }
            _ => Ok(()),
        }
    }

    /// Whether a run meets the SLO (and finished at least one request).
    pub fn met(&self, m: &PointMetrics) -> bool {
        if m.completed == 0 {
            return false;
        }
        match self.target {
            SloTarget::Attainment(a) => m.slo_attainment >= a,
            SloTarget::Percentile(p) => {
                let pick = |d: &crate::metrics::DistStats| match p {
                    50.0 => d.p50,
                    90.0 => d.p90,
                    95.0 => d.p95,
                    99.9 => d.p99_9,
                    _ => d.p99,
                };
                self.ttft_s.is_none_or(|s| pick(&m.ttft) <= s)
                    && self.tpot_s.is_none_or(|s| pick(&m.tpot) <= s)
            }
        }
    }
}

/// The result of a maximum-rate search.
#[derive(Clone, Debug, PartialEq)]
pub struct MaxRate {
    /// Largest sustainable load found (rate scale or rate), 0 when none is.
    pub load: f64,
    /// The run at that load.
    pub at_max: Option<PointMetrics>,
    /// The search hit its doubling limit: the true maximum is higher.
    pub capped: bool,
    /// Simulations run.
    pub evaluations: u32,
    /// Why the configuration cannot run, if it cannot.
    pub infeasible: Option<String>,
}

/// Doublings (or halvings) before the search gives up on bracketing.
pub const MAX_BRACKET_STEPS: u32 = 20;

/// Find the largest `load` at which `eval(load)` meets `slo`: from `start`, double
/// (or halve) until the answer changes, then bisect until the bracket's relative width
/// is at most `tolerance`. Deterministic: the same inputs evaluate the same loads.
///
/// With a looser SLO every load that met the tighter one still meets it, so the search
/// takes the same path until the first load where they differ, and the looser answer is
/// never lower.
pub fn max_rate(
    eval: impl Fn(f64) -> Result<Outcome>,
    slo: &PlanSlo,
    start: f64,
    tolerance: f64,
) -> Result<MaxRate> {
    let mut evaluations = 0;
    let mut probe = |x: f64| -> Result<std::result::Result<Option<PointMetrics>, String>> {
        evaluations += 1;
        Ok(match eval(x)? {
            Outcome::Ok(m) => Ok(slo.met(&m).then_some(*m)),
            Outcome::Infeasible(r) => Err(r),
        })
    };
    let first = match probe(start)? {
        Err(reason) => {
            return Ok(MaxRate {
                load: 0.0,
                at_max: None,
                capped: false,
                evaluations,
                infeasible: Some(reason),
            })
        }
        Ok(m) => m,
    };
    let (mut lo, mut hi, mut best);
    match first {
        Some(m) => {
            lo = start;
            best = Some(m);
            hi = f64::INFINITY;
            for _ in 0..MAX_BRACKET_STEPS {
                let x = lo * 2.0;
                match probe(x)?.ok().flatten() {
                    Some(m) => {
                        lo = x;
                        best = Some(m);
                    }
                    None => {
                        hi = x;
                        break;
                    }
                }
            }
            if hi.is_infinite() {
                return Ok(MaxRate {
                    load: lo,
                    at_max: best,
                    capped: true,
                    evaluations,
                    infeasible: None,
                });
            }
        }
        None => {
            hi = start;
            lo = 0.0;
            best = None;
            for _ in 0..MAX_BRACKET_STEPS {
                let x = hi / 2.0;
                if let Some(m) = probe(x)?.ok().flatten() {
                    lo = x;
                    best = Some(m);
                    break;
                }
                hi = x;
            }
            if best.is_none() {
                return Ok(MaxRate {
                    load: 0.0,
                    at_max: None,
                    capped: false,
                    evaluations,
                    infeasible: None,
                });
            }
        }
    }
    while (hi - lo) / lo > tolerance {
        let mid = 0.5 * (lo + hi);
        match probe(mid)?.ok().flatten() {
            Some(m) => {
                lo = mid;
                best = Some(m);
            }
            None => hi = mid,
        }
    }
    Ok(MaxRate {
        load: lo,
        at_max: best,
        capped: false,
        evaluations,
        infeasible: None,
    })
}

/// The fewest replicas, at most `max_replicas`, whose run at the target meets the
/// SLO: starting from `guess`, step down while one fewer still meets it, or up until
/// one does. Returns the count and its run, or None when none up to the cap does.
pub fn fewest_replicas(
    eval: impl Fn(u32) -> Result<Outcome>,
    slo: &PlanSlo,
    guess: u32,
    max_replicas: u32,
) -> Result<Option<(u32, PointMetrics)>> {
    let met = |n: u32| -> Result<Option<PointMetrics>> {
        Ok(match eval(n)? {
            Outcome::Ok(m) => slo.met(&m).then_some(*m),
            Outcome::Infeasible(_) => None,
        })
    };
    let mut n = guess.clamp(1, max_replicas.max(1));
    match met(n)? {
        Some(mut m) => {
            while n > 1 {
                match met(n - 1)? {
                    Some(m2) => {
                        n -= 1;
                        m = m2;
                    }
                    None => break,
                }
            }
            Ok(Some((n, m)))
        }
        None => {
            while n < max_replicas {
                n += 1;
                if let Some(m) = met(n)? {
                    return Ok(Some((n, m)));
                }
            }
            Ok(None)
        }
    }
}
