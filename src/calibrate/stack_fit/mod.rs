//! Fitting a serving stack's host constants to measured runs: the time per iteration
//! the GPU waits for the host (`host.step_us`) and the API server's time per request
//! (`api_server.request_us`).
//!
//! Everything else in a stack file is the engine's own (defaults, capture sizes) or a
//! kernel measurement; these two are what is left of the engine between the measured
//! kernels and the measured latencies, so they are fitted, and each fit says on which
//! validation sets (`fitted_on`) so that cross-validation can leave those out.
//!
//! * `host.step_us` is added to every iteration: it is found by golden-section search
//!   on `[0, 20 ms]` minimising, averaged per set and then over sets, `|ln(simulated /
//!   measured)|` of each serving run's mean time per output token and the median of
//!   it over each static-batch group's batch times.
//! * `api_server.request_us` shifts every request's arrival at the engine by a constant,
//!   which moves its TTFT and E2E by exactly that much and changes nothing else; it is
//!   the median over the client-timed runs of the median per-request TTFT shortfall at
//!   the fitted `step_us`. Runs whose median measured TTFT exceeds
//!   [`QUEUE_FREE_TTFT_S`] are left out: their requests queued, and a shortfall there
//!   is a queueing error, not request handling. Without any run left, the prior.
//!
//! * `host.per_kernel_us`, for a stack that gives `host.prior_per_kernel_us`: the GPU's
//!   idle time per kernel waiting for its dispatch, found in the same alternation on
//!   `[0, 50 µs]`. It is told apart from `step_us` by models with different layer
//!   counts and TP sizes (more kernels per iteration).
//!
//! * `host.per_sequence_serial_us`, for a stack that gives
//!   `host.prior_per_sequence_serial_us`: host work per sequence that stays between
//!   iterations under the stack's overlap, found in the same alternation on `[0,
//!   400 µs]`. It is told apart from `step_us` by batches of different sizes. Held at
//!   its prior with the step (`--hold-step-us`: the rows cannot tell host time apart).
//!
//! * `paged_attention.decode_bandwidth_efficiency`, for a stack that ships its own
//!   decode attention kernel: found with `host.step_us` by alternating golden-section
//!   searches (on `ln` of the efficiency over `[0.01, 1]`) from fixed points, in rounds
//!   until a round lowers the loss by under 0.2 % (at most twelve). The two are told
//!   apart by the data: host time per iteration does not grow with the batch's context,
//!   attention time does.
//!
//! Only measurements on the stack's `platforms` count (a CUDA build's constants are
//! not fitted on AMD rows), and of a static table that names the stack some of its
//! rows ran on ([`crate::validate::groups::group_stack`]), only those rows.
//!
//! Static-batch groups count only where the GPU's kernels are measured (operator
//! profiles, or roofline efficiencies from `perf_model/kernel_efficiency/`): elsewhere
//! the GPU's own error would be absorbed into the stack.

use crate::deployment::{Deployment, DeploymentRequest};
use crate::engine::config::EngineOverrides;
use crate::error::Result;
use crate::paths::DataPaths;
use crate::perf::{LatencyModel, StepShape};
use crate::setup::ReplicaSetup;
use crate::stack::ServingStack;
use crate::units::SimDuration;
use crate::validate::measured::{MeasuredRun, Timing};
use crate::validate::{batch, replay, table_request, Measurement, Metric, StaticTable, TableGroup};
use std::sync::Arc;

mod rewrite;
pub use rewrite::rewrite;

/// The longest median TTFT of a run that can tell the API server's time: request
/// handling takes milliseconds, so a run whose typical request waited a second or more
/// was queueing.
pub const QUEUE_FREE_TTFT_S: f64 = 1.0;

/// The most rounds of the alternating search. The figures are correlated (a longer
/// host step and a shorter per-kernel gap fit almost as well), so the search moves
/// along a valley: two rounds (the limit before the twenty-fifth session) left the
/// Argonne MI300X fit's loss 14 % above where it settles, after nine. The limit only
/// bounds the time of a fit that keeps creeping; no shipped fit reaches it. Starting
/// from the fixed points keeps the result a function of the data.
const MAX_ROUNDS: usize = 12;

/// The search stops after a round that lowers the loss by less than this share of it.
const CONVERGED: f64 = 0.002;

/// The upper end of the search for `host.per_kernel_us`: a dispatch gap longer than
/// this would be slower than launching every kernel from the CPU.
const MAX_PER_KERNEL_US: f64 = 50.0;

/// The upper end of the search for `host.per_sequence_serial_us`: four times the
/// V0 loop's whole per-sequence figure (100 µs).
const MAX_PER_SEQUENCE_SERIAL_US: f64 = 400.0;

/// One measured set to fit on: its name (a validation set's folder) and measurements.
#[derive(Clone, Debug)]
pub struct FitSet {
    /// Name written to `fitted_on`.
    pub name: String,
    /// Its measurements, read by [`crate::validate::open`].
    pub measurements: Vec<Measurement>,
}

/// What a fit found.
#[derive(Clone, Debug, PartialEq)]
pub struct StackFit {
    /// Fitted `host.step_us` (or the value it was held at).
    pub step_us: f64,
    /// Whether `step_us` was held, not fitted.
    pub step_held: bool,
    /// Fitted `paged_attention.decode_bandwidth_efficiency` (stacks with that section;
    /// none without data or prior: the key is dropped and the GPU's own memory
    /// efficiency stands).
    pub decode_bandwidth_efficiency: Option<f64>,
    /// Fitted `host.per_kernel_us` (stacks with `host.prior_per_kernel_us`; its prior
    /// without data).
    pub per_kernel_us: Option<f64>,
    /// Fitted `gemm.bandwidth_efficiency` (stacks with that section; none without data
    /// or prior: the key is dropped and the GPU's own memory efficiency stands).
    pub gemm_bandwidth_efficiency: Option<f64>,
    /// Fitted `host.per_sequence_serial_us` (stacks with
    /// `host.prior_per_sequence_serial_us`; its prior without data or with the step held).
    pub per_sequence_serial_us: Option<f64>,
    /// Fitted `api_server.request_us` when asked for (its prior when no run is timed by
    /// the client).
    pub request_us: Option<f64>,
    /// Rounds of the alternating search (0: the stack has only its host step to fit,
    /// or no data).
    pub rounds: usize,
    /// Loss with the stack's own `step_us`, then with the fitted one.
    pub loss_before: f64,
    /// Loss after.
    pub loss_after: f64,
    /// Sets that had at least one usable unit.
    pub sets: Vec<String>,
    /// Sets whose client-timed runs gave the API server's time.
    pub request_sets: Vec<String>,
    /// Units used per set.
    pub units: Vec<(String, usize)>,
}

/// The stack figures fitted with `host.step_us` (none: the stack has no such figure).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Extras {
    attention: Option<f64>,
    gemm: Option<f64>,
    per_kernel: Option<f64>,
    serial: Option<f64>,
}

impl Extras {
    /// These figures with the one `field` names set to `value`.
    fn with(mut self, field: fn(&mut Extras) -> &mut Option<f64>, value: f64) -> Extras {
        *field(&mut self) = Some(value);
        self
    }

    fn is_empty(&self) -> bool {
        self.attention.is_none()
            && self.gemm.is_none()
            && self.per_kernel.is_none()
            && self.serial.is_none()
    }

    /// `stack` with these figures.
    fn apply(&self, stack: &ServingStack) -> ServingStack {
        let mut s = stack.clone();
        if let (Some(p), Some(e)) = (s.paged_attention.as_mut(), self.attention) {
            p.decode_bandwidth_efficiency = Some(e);
        }
        if let (Some(g), Some(e)) = (s.gemm.as_mut(), self.gemm) {
            g.bandwidth_efficiency = Some(e);
        }
        if let Some(k) = self.per_kernel {
            s.execution.host.per_kernel_us = k;
        }
        if let Some(v) = self.serial {
            s.execution.host.per_sequence_serial_us = v;
        }
        s
    }
}

/// An iteration-time model plus a constant.
struct PlusConstant {
    inner: Arc<dyn LatencyModel>,
    extra: SimDuration,
}

impl LatencyModel for PlusConstant {
    fn step_time(&self, shape: &StepShape) -> SimDuration {
        // The candidate host step, where the stack's own would be paid.
        if shape.pays_host_step() {
            self.inner.step_time(shape) + self.extra
        } else {
            self.inner.step_time(shape)
        }
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

enum Unit {
    Run {
        set: usize,
        run: Box<MeasuredRun>,
        setup: ReplicaSetup,
        replicas: u32,
    },
    Group {
        set: usize,
        group: Box<TableGroup>,
        table: Box<StaticTable>,
        setup: ReplicaSetup,
    },
}

fn with_stack(mut d: Deployment, stack: &Arc<ServingStack>) -> Deployment {
    d.stack = stack.clone();
    d
}

/// Whether `setup`'s GPU kernels rest on measurements.
fn grounded(setup: &ReplicaSetup, paths: &DataPaths) -> bool {
    let slug = crate::perf::measured::MeasuredModel::hardware_slug(&setup.deployment);
    setup.latency.describe().starts_with("measured")
        || slug.is_some_and(|s| {
            paths
                .perf_model
                .join("kernel_efficiency")
                .join(format!("{s}.toml"))
                .is_file()
        })
}

fn build_units(base: &Arc<ServingStack>, sets: &[FitSet], paths: &DataPaths) -> Result<Vec<Unit>> {
    let mut units = Vec::new();
    for (i, s) in sets.iter().enumerate() {
        for m in &s.measurements {
            match m {
                // A run known by its statistics only has no requests to fit: it stays
                // an out-of-sample check.
                Measurement::Run(run) if run.summary.is_some() => {}
                Measurement::Run(run) => {
                    let (mut req, mut ov) =
                        (DeploymentRequest::default(), EngineOverrides::default());
                    run.hints.apply(&mut req, &mut ov);
                    let mut d = Deployment::resolve(&req, paths)?;
                    crate::validate::use_own_system_link(&req, &mut d, paths, &run.source);
                    let d = with_stack(d, base);
                    if !base.runs_on(&d.gpu().vendor) {
                        continue;
                    }
                    let setup = ReplicaSetup::new(d, &ov, paths)?;
                    units.push(Unit::Run {
                        set: i,
                        replicas: run.hints.data_parallel_size.unwrap_or(1).max(1),
                        run: run.clone(),
                        setup,
                    });
                }
                Measurement::Table(t) => {
                    // A table that names the stack its rows ran on fits a stack on its
                    // own rows (one release's constants are not fitted on another's);
                    // a stack the table never names, on every row of its platforms.
                    let stacks = t
                        .groups
                        .iter()
                        .map(|g| crate::validate::groups::group_stack(t, g))
                        .collect::<Result<Vec<_>>>()?;
                    let named = stacks.contains(&base.name);
                    for (g, stack) in t.groups.iter().zip(&stacks) {
                        if named && *stack != base.name {
                            continue;
                        }
                        // As `validate` replays the group (an eager build runs eagerly).
                        let req = table_request(t.kind, g, &DeploymentRequest::default());
                        let Ok(d) = Deployment::resolve(&req, paths) else {
                            continue;
                        };
                        if !base.runs_on(&d.gpu().vendor) {
                            continue;
                        }
                        let ov =
                            crate::validate::table_overrides(t.kind, &EngineOverrides::default());
                        let Ok(setup) = ReplicaSetup::new(with_stack(d, base), &ov, paths) else {
                            continue;
                        };
                        if grounded(&setup, paths) {
                            units.push(Unit::Group {
                                set: i,
                                group: Box::new(g.clone()),
                                table: Box::new(t.clone()),
                                setup,
                            });
                        }
                    }
                }
                // Offline throughput tables, GenZ tables and serving summaries are not
                // fitted on: they stay out-of-sample.
                Measurement::Throughput(_) | Measurement::Genz(_) | Measurement::Summary(_) => {}
            }
        }
    }
    Ok(units)
}

fn plus(setup: &ReplicaSetup, extra_us: f64) -> ReplicaSetup {
    let mut s = setup.clone();
    s.latency = Arc::new(PlusConstant {
        inner: setup.latency.clone(),
        extra: SimDuration::from_secs_f64(extra_us * 1e-6),
    });
    s
}

fn abs_log(sim: f64, meas: f64) -> Option<f64> {
    (sim > 0.0 && meas > 0.0 && sim.is_finite() && meas.is_finite())
        .then(|| (sim / meas).ln().abs())
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

/// The loss of one unit at `extra_us` of host time per iteration.
fn unit_loss(u: &Unit, extra_us: f64) -> Result<Option<f64>> {
    Ok(match u {
        Unit::Run {
            run,
            setup,
            replicas,
            ..
        } => {
            let v = replay::replay("fit", run, &plus(setup, extra_us), *replicas)?;
            v.metrics
                .iter()
                .find(|m| m.metric == Metric::Tpot)
                .and_then(|m| abs_log(m.simulated.mean, m.measured.mean))
        }
        Unit::Group {
            group,
            table,
            setup,
            ..
        } => {
            let v = batch::validate_group(
                "fit",
                &table.source,
                table.kind,
                group,
                &plus(setup, extra_us),
            )?;
            v.rows.pairs(Metric::E2e).and_then(|(s, m)| {
                median(
                    s.iter()
                        .zip(m)
                        .filter_map(|(&s, &m)| abs_log(s, m))
                        .collect(),
                )
            })
        }
    })
}

fn unit_set(u: &Unit) -> usize {
    match u {
        Unit::Run { set, .. } | Unit::Group { set, .. } => *set,
    }
}

/// Mean over sets of the mean unit loss.
fn loss(units: &[Unit], n_sets: usize, extra_us: f64) -> Result<f64> {
    let mut per_set = vec![(0.0, 0usize); n_sets];
    for u in units {
        if let Some(l) = unit_loss(u, extra_us)? {
            let e = &mut per_set[unit_set(u)];
            e.0 += l;
            e.1 += 1;
        }
    }
    let used: Vec<f64> = per_set
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| s / *n as f64)
        .collect();
    Ok(if used.is_empty() {
        f64::NAN
    } else {
        used.iter().sum::<f64>() / used.len() as f64
    })
}

/// The efficiency in `[lo, 1]` minimising `f`: golden-section search on its logarithm,
/// rounded to 4 decimals.
fn fraction_search(lo: f64, mut f: impl FnMut(f64) -> Result<f64>) -> Result<f64> {
    let l = golden(lo.ln(), 0.0, 16, |l| f(l.exp()))?;
    Ok((l.exp() * 1e4).round() / 1e4)
}

/// Golden-section search for the minimum of `f` on `[lo, hi]`.
fn golden(
    mut lo: f64,
    mut hi: f64,
    iters: usize,
    mut f: impl FnMut(f64) -> Result<f64>,
) -> Result<f64> {
    let r = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (hi - r * (hi - lo), lo + r * (hi - lo));
    let (mut fa, mut fb) = (f(a)?, f(b)?);
    for _ in 0..iters {
        if fa <= fb {
            hi = b;
            b = a;
            fb = fa;
            a = hi - r * (hi - lo);
            fa = f(a)?;
        } else {
            lo = a;
            a = b;
            fa = fb;
            b = lo + r * (hi - lo);
            fb = f(b)?;
        }
    }
    Ok(0.5 * (lo + hi))
}

/// Runs `round` from `state` (one round of the search: a proposed state and its loss)
/// until a round lowers the loss by less than [`CONVERGED`] of it, or raises it, and at
/// most [`MAX_ROUNDS`] times; `first` is the loss of `state`. A proposal that raises the
/// loss is not taken. Returns the last state taken and the rounds run.
fn until_converged<S>(
    mut state: S,
    first: f64,
    mut round: impl FnMut(&S) -> Result<(S, f64)>,
) -> Result<(S, usize)> {
    let mut last = first;
    for done in 1..=MAX_ROUNDS {
        let (next, now) = round(&state)?;
        let gain = (last - now) / last;
        if now <= last {
            state = next;
            last = now;
        }
        if gain.is_nan() || gain < CONVERGED {
            return Ok((state, done));
        }
    }
    Ok((state, MAX_ROUNDS))
}

/// One round of the alternating search: each of `x`'s figures in turn by golden
/// section on `try_loss`, the others held (the per-sequence time only where the step is
/// not held with it).
fn search_extras(
    mut x: Extras,
    hold_step: bool,
    mut try_loss: impl FnMut(Extras) -> Result<f64>,
) -> Result<Extras> {
    if x.attention.is_some() {
        let e = fraction_search(0.01, |e| try_loss(x.with(|y| &mut y.attention, e)))?;
        x.attention = Some(e);
    }
    if x.gemm.is_some() {
        let e = fraction_search(0.05, |e| try_loss(x.with(|y| &mut y.gemm, e)))?;
        x.gemm = Some(e);
    }
    if x.per_kernel.is_some() {
        let k = host_search(MAX_PER_KERNEL_US, 2, |k| {
            try_loss(x.with(|y| &mut y.per_kernel, k))
        })?;
        x.per_kernel = Some(k);
    }
    if x.serial.is_some() && !hold_step {
        let v = host_search(MAX_PER_SEQUENCE_SERIAL_US, 1, |v| {
            try_loss(x.with(|y| &mut y.serial, v))
        })?;
        x.serial = Some(v);
    }
    Ok(x)
}

/// The host time in `[0, hi]` µs minimising `f`: golden-section search, rounded to
/// `decimals` places.
fn host_search(hi: f64, decimals: i32, f: impl FnMut(f64) -> Result<f64>) -> Result<f64> {
    let scale = 10f64.powi(decimals);
    Ok((golden(0.0, hi, 14, f)? * scale).round() / scale)
}

/// Fit `stack`'s `host.step_us` (and, with `fit_request`, `api_server.request_us`) on
/// `sets` (see the module docs). With `hold_step_us` the step is held at that value and
/// only the other figures are fitted: for sets that cannot tell the step from them
/// (one model whose iterations are long).
pub fn fit(
    stack: &ServingStack,
    sets: &[FitSet],
    paths: &DataPaths,
    fit_request: bool,
    hold_step_us: Option<f64>,
) -> Result<StackFit> {
    let mut zero = stack.clone();
    zero.execution.host.step_us = 0.0;
    zero.api_server.request_us = 0.0;
    // The stack's own kernels whose figures are fitted with `step_us`: its decode
    // attention kernel's and GEMM library's bandwidth efficiencies and its per-kernel
    // dispatch time (where the file has a prior for it). The searches start from fixed
    // points (10 %, 50 %, 0 µs), never from the file's fitted values nor its priors, so
    // that a fit depends on the data alone: refitting a fitted file gives it back, and
    // changing a prior (used only without data) does not move a fit.
    let host = &stack.execution.host;
    let start = Extras {
        attention: stack.paged_attention.as_ref().map(|_| 0.1),
        gemm: stack.gemm.as_ref().map(|_| 0.5),
        per_kernel: host.prior_per_kernel_us.map(|_| 0.0),
        // A held step holds the host's per-sequence time at its prior as well.
        serial: host
            .prior_per_sequence_serial_us
            .map(|p| if hold_step_us.is_some() { p } else { 0.0 }),
    };
    let variant = |x: &Extras| Arc::new(x.apply(&zero));
    let n = sets.len();
    let search_step = |units: &[Unit]| match hold_step_us {
        Some(v) => Ok(v),
        None => golden(0.0, 20_000.0, 18, |v| loss(units, n, v)),
    };
    // The file as it is (its own figures and step time).
    let loss_before = loss(
        &build_units(&Arc::new(zero.clone()), sets, paths)?,
        n,
        host.step_us,
    )?;
    let mut units = build_units(&variant(&start), sets, paths)?;
    let mut rounds = 0;
    // Without data the priors stand (public measurements, no validation set).
    let (step_us, extras) = if units.is_empty() {
        let prior = Extras {
            attention: stack
                .paged_attention
                .as_ref()
                .and_then(|p| p.prior_decode_bandwidth_efficiency),
            gemm: stack
                .gemm
                .as_ref()
                .and_then(|g| g.prior_bandwidth_efficiency),
            per_kernel: host.prior_per_kernel_us,
            serial: host.prior_per_sequence_serial_us,
        };
        (hold_step_us.unwrap_or(host.prior_step_us), prior)
    } else {
        let mut x = start;
        let mut step_us = search_step(&units)?;
        if !x.is_empty() {
            let first = loss(&units, n, step_us)?;
            let ((y, s, u), r) = until_converged((x, step_us, units), first, |(x, step_us, _)| {
                let y = search_extras(*x, hold_step_us.is_some(), |z| {
                    loss(&build_units(&variant(&z), sets, paths)?, n, *step_us)
                })?;
                let u = build_units(&variant(&y), sets, paths)?;
                let s = search_step(&u)?;
                let l = loss(&u, n, s)?;
                Ok(((y, s, u), l))
            })?;
            (x, step_us, units, rounds) = (y, s, u, r);
        }
        (step_us, x)
    };
    let loss_after = loss(&units, n, step_us)?;
    let mut request = Vec::new();
    let mut request_sets: Vec<String> = Vec::new();
    if fit_request {
        for u in &units {
            if let Unit::Run {
                set,
                run,
                setup,
                replicas,
            } = u
            {
                if run.timing != Timing::Client {
                    continue;
                }
                let v = replay::replay("fit", run, &plus(setup, step_us), *replicas)?;
                if let Some((s, m)) = v.rows.pairs(Metric::Ttft) {
                    // Request handling takes milliseconds; a run whose typical request
                    // waited longer than this queued, and its TTFT says nothing about
                    // the server.
                    if median(m.to_vec()).is_none_or(|t| t > QUEUE_FREE_TTFT_S) {
                        continue;
                    }
                    request.extend(median(s.iter().zip(m).map(|(s, m)| m - s).collect()));
                    if !request_sets.contains(&sets[*set].name) {
                        request_sets.push(sets[*set].name.clone());
                    }
                }
            }
        }
    }
    let mut count = vec![0usize; n];
    for u in &units {
        count[unit_set(u)] += 1;
    }
    Ok(StackFit {
        step_us: (step_us * 10.0).round() / 10.0,
        step_held: hold_step_us.is_some(),
        rounds,
        decode_bandwidth_efficiency: extras.attention,
        gemm_bandwidth_efficiency: extras.gemm,
        per_kernel_us: extras.per_kernel,
        per_sequence_serial_us: extras.serial,
        request_us: fit_request.then(|| {
            median(request).map_or(stack.api_server.prior_request_us, |s| {
                (s * 1e6).max(0.0).round()
            })
        }),
        loss_before,
        loss_after,
        sets: sets
            .iter()
            .zip(&count)
            .filter(|(_, c)| **c > 0)
            .map(|(s, _)| s.name.clone())
            .collect(),
        units: sets.iter().map(|s| s.name.clone()).zip(count).collect(),
        request_sets,
    })
}

#[cfg(test)]
mod tests;
