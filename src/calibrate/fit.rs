//! The objective and the fit: parameter vector layout, robust loss, prior, and the
//! before/after report.
//!
//! Vector layout: for each GPU group its (GEMM, memory) efficiencies; then the
//! simulated stack's (attention, step overhead, per-layer overhead); then the same three
//! for each other stack, in order of first appearance.

use super::optimize::{self, NelderMead};
use super::{Calibration, PARAM_NAMES};
use crate::error::{Error, Result};
use crate::perf::roofline::RooflineParams;
use crate::validate::stats::ErrorStats;
use crate::validate::Metric;
use serde::Serialize;

/// Bounds of each parameter, in [`PARAM_NAMES`] order.
const LO: [f64; 5] = [0.05, 0.05, 0.05, 0.0, 0.0];
const HI: [f64; 5] = [1.0, 1.0, 1.0, 0.03, 0.0005];
/// Huber threshold on log residuals (about 10 %).
const DELTA: f64 = 0.1;
/// Weight of the prior on the efficiencies.
const PRIOR: f64 = 2e-3;

/// The parameters a serving stack has of its own.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct StackParams {
    /// Fraction of dense peak its attention kernels achieve.
    pub attention_compute_efficiency: f64,
    /// Its CPU cost per iteration, s.
    pub step_overhead_s: f64,
    /// Its extra cost per layer and iteration, s.
    pub per_layer_overhead_s: f64,
}

/// Errors of one metric of one set, before and after the fit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricFit {
    /// The metric.
    pub metric: Metric,
    /// With the starting parameters.
    pub before: ErrorStats,
    /// With the fitted parameters (a set's own stack parameters included).
    pub after: ErrorStats,
    /// With its GPU's parameters as written, where they differ from `after` (sets on a
    /// stack of their own).
    pub as_written: Option<ErrorStats>,
}

/// The fit of one set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SetFit {
    /// The set's name.
    pub name: String,
    /// Its GPU group's members.
    pub gpus: Vec<String>,
    /// Its stack's name and own parameters, where it is not the simulated stack.
    pub own_stack: Option<(String, StackParams)>,
    /// Measurements left out of the fit (static batches the simulated engine preempts
    /// or rejects).
    pub left_out: usize,
    /// Per metric.
    pub metrics: Vec<MetricFit>,
}

/// The written parameters of one GPU group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupFit {
    /// Catalog names of its GPUs.
    pub members: Vec<String>,
    /// Its GEMM and memory efficiencies with the simulated stack's parameters.
    pub params: RooflineParams,
}

/// The outcome of [`Calibration::fit`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fit {
    /// The starting parameters.
    pub start: RooflineParams,
    /// Per GPU group.
    pub groups: Vec<GroupFit>,
    /// Whether any set measured the simulated stack (else its parameters kept their
    /// start).
    pub stack_fitted: bool,
    /// The objective before the fit.
    pub loss_before: f64,
    /// The objective after the fit.
    pub loss_after: f64,
    /// Objective evaluations used.
    pub evals: usize,
    /// Per set.
    pub sets: Vec<SetFit>,
}

impl Fit {
    /// The written parameters of the GPU named `gpu`, if it was in the data.
    pub fn params_for(&self, gpu: &str) -> Option<RooflineParams> {
        self.groups
            .iter()
            .find(|g| g.members.iter().any(|m| m.eq_ignore_ascii_case(gpu)))
            .map(|g| g.params)
    }
}

fn huber(r: f64) -> f64 {
    let a = r.abs();
    if a <= DELTA {
        0.5 * r * r
    } else {
        DELTA * (a - 0.5 * DELTA)
    }
}

impl Calibration {
    /// The distinct stacks other than the simulated one, in order of first appearance.
    fn stacks(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in self.sets.iter().filter_map(|s| s.stack.as_deref()) {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// Offset of the simulated stack's three parameters in the vector.
    fn stack_base(&self) -> usize {
        2 * self.groups.len()
    }

    /// The parameters of GPU group `g` on stack `stack` under vector `x`.
    fn params(&self, x: &[f64], g: usize, stack: Option<&str>) -> RooflineParams {
        let k = match stack {
            None => self.stack_base(),
            Some(name) => {
                let i = self
                    .stacks()
                    .iter()
                    .position(|s| *s == name)
                    .expect("every set's stack is listed");
                self.stack_base() + 3 * (i + 1)
            }
        };
        RooflineParams {
            gemm_compute_efficiency: x[2 * g],
            memory_efficiency: x[2 * g + 1],
            attention_compute_efficiency: x[k],
            step_overhead_s: x[k + 1],
            per_layer_overhead_s: x[k + 2],
            // This in-sample serving fit predates kernel latencies and models none.
            kernel_latency_s: 0.0,
        }
    }

    fn set_params(&self, x: &[f64], set: usize) -> RooflineParams {
        let s = &self.sets[set];
        self.params(x, s.group, s.stack.as_deref())
    }

    fn loss(&self, x: &[f64], start: &RooflineParams) -> f64 {
        let mut total = 0.0;
        for set in 0..self.sets.len() {
            let Ok(pred) = self.predict(set, &self.set_params(x, set)) else {
                return f64::INFINITY;
            };
            let (mut sum, mut n) = (0.0, 0usize);
            for (_, p, m) in pred {
                if !(m > 0.0 && m.is_finite()) {
                    continue;
                }
                n += 1;
                sum += if p > 0.0 && p.is_finite() {
                    huber((p / m).ln())
                } else {
                    huber(10.0)
                };
            }
            if n > 0 {
                total += sum / n as f64;
            }
        }
        let sq = |v: f64, v0: f64| (v / v0).ln().powi(2);
        let mut prior = 0.0;
        for g in 0..self.groups.len() {
            prior += sq(x[2 * g], start.gemm_compute_efficiency)
                + sq(x[2 * g + 1], start.memory_efficiency);
        }
        for k in (self.stack_base()..x.len()).step_by(3) {
            prior += sq(x[k], start.attention_compute_efficiency);
        }
        total + PRIOR * prior
    }

    fn errors(&self, set: usize, p: &RooflineParams) -> Result<Vec<(Metric, ErrorStats)>> {
        let pred = self.predict(set, p)?;
        let mut metrics: Vec<Metric> = pred.iter().map(|x| x.0).collect();
        metrics.sort();
        metrics.dedup();
        Ok(metrics
            .into_iter()
            .map(|m| {
                let (s, me): (Vec<f64>, Vec<f64>) =
                    pred.iter().filter(|x| x.0 == m).map(|x| (x.1, x.2)).unzip();
                (m, ErrorStats::of(&s, &me))
            })
            .collect())
    }

    /// Fit every parameter, starting from `start` (see the [module docs](super)).
    pub fn fit(&self, start: &RooflineParams, opts: &NelderMead) -> Result<Fit> {
        if self
            .sets
            .iter()
            .all(|s| s.steps.is_empty() && s.runs.is_empty())
        {
            return Err(Error::Config(
                "nothing to calibrate: no usable measurement".into(),
            ));
        }
        let s0 = [
            start.gemm_compute_efficiency,
            start.memory_efficiency,
            start.attention_compute_efficiency,
            start.step_overhead_s,
            start.per_layer_overhead_s,
        ];
        debug_assert_eq!(PARAM_NAMES.len(), s0.len());
        let used: Vec<bool> = (0..self.groups.len())
            .map(|g| self.sets.iter().any(|s| s.group == g))
            .collect();
        let stack_fitted = self.sets.iter().any(|s| s.stack.is_none());
        let (mut x0, mut lo, mut hi) = (Vec::new(), Vec::new(), Vec::new());
        let mut push = |j: usize, free: bool| {
            x0.push(s0[j]);
            lo.push(if free { LO[j] } else { s0[j] });
            hi.push(if free { HI[j] } else { s0[j] });
        };
        for &u in &used {
            push(0, u);
            push(1, u);
        }
        for j in 2..5 {
            push(j, stack_fitted);
        }
        for _ in self.stacks() {
            for j in 2..5 {
                push(j, true);
            }
        }
        let loss_before = self.loss(&x0, start);
        let m = optimize::minimize(|x| self.loss(x, start), &x0, &lo, &hi, opts);
        let mut sets = Vec::new();
        for (i, s) in self.sets.iter().enumerate() {
            let before = self.errors(i, start)?;
            let fitted = self.set_params(&m.x, i);
            let after = self.errors(i, &fitted)?;
            let written = match s.stack {
                Some(_) => Some(self.errors(i, &self.params(&m.x, s.group, None))?),
                None => None,
            };
            sets.push(SetFit {
                name: s.name.clone(),
                gpus: self.groups[s.group].members.clone(),
                own_stack: s.stack.clone().map(|name| {
                    (
                        name,
                        StackParams {
                            attention_compute_efficiency: fitted.attention_compute_efficiency,
                            step_overhead_s: fitted.step_overhead_s,
                            per_layer_overhead_s: fitted.per_layer_overhead_s,
                        },
                    )
                }),
                left_out: s.left_out,
                metrics: before
                    .into_iter()
                    .zip(after)
                    .enumerate()
                    .map(|(k, ((metric, b), (_, a)))| MetricFit {
                        metric,
                        before: b,
                        after: a,
                        as_written: written.as_ref().map(|w| w[k].1),
                    })
                    .collect(),
            });
        }
        let groups = (0..self.groups.len())
            .filter(|&g| used[g])
            .map(|g| GroupFit {
                members: self.groups[g].members.clone(),
                params: self.params(&m.x, g, None),
            })
            .collect();
        Ok(Fit {
            start: *start,
            groups,
            stack_fitted,
            loss_before,
            loss_after: m.f,
            evals: m.evals,
            sets,
        })
    }
}
