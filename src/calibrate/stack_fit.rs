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
//! * `paged_attention.decode_bandwidth_efficiency`, for a stack that ships its own
//!   decode attention kernel: found with `host.step_us` by alternating golden-section
//!   searches (on `ln` of the efficiency over `[0.01, 1]`), from the priors, two rounds. The two are
//!   told apart by the data: host time per iteration does not grow with the batch's
//!   context, attention time does.
//!
//! Only measurements on the stack's `platforms` count (a CUDA build's constants are
//! not fitted on AMD rows).
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

/// The longest median TTFT of a run that can tell the API server's time: request
/// handling takes milliseconds, so a run whose typical request waited a second or more
/// was queueing.
pub const QUEUE_FREE_TTFT_S: f64 = 1.0;

/// Rounds of the alternating search. The figures are correlated (a longer host step
/// and a shorter per-kernel gap fit almost as well), so more rounds crawl along a flat
/// valley: eight rounds on the Argonne MI300X rows take 10 minutes and lower the loss
/// by under 1 %. Starting from the priors keeps the result a function of the data.
const ROUNDS: usize = 2;

/// The upper end of the search for `host.per_kernel_us`: a dispatch gap longer than
/// this would be slower than launching every kernel from the CPU.
const MAX_PER_KERNEL_US: f64 = 50.0;

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
    /// Fitted `api_server.request_us` when asked for (its prior when no run is timed by
    /// the client).
    pub request_us: Option<f64>,
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
}

impl Extras {
    fn is_empty(&self) -> bool {
        self.attention.is_none() && self.gemm.is_none() && self.per_kernel.is_none()
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
        self.inner.step_time(shape) + self.extra
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
                    for g in &t.groups {
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
        };
        (hold_step_us.unwrap_or(host.prior_step_us), prior)
    } else {
        let mut x = start;
        if !x.is_empty() {
            for _ in 0..ROUNDS {
                let step_us = search_step(&units)?;
                let try_loss = |y: Extras| -> Result<f64> {
                    loss(&build_units(&variant(&y), sets, paths)?, n, step_us)
                };
                if x.attention.is_some() {
                    x.attention = Some(fraction_search(0.01, |e| {
                        try_loss(Extras {
                            attention: Some(e),
                            ..x
                        })
                    })?);
                }
                if x.gemm.is_some() {
                    x.gemm = Some(fraction_search(0.05, |e| {
                        try_loss(Extras { gemm: Some(e), ..x })
                    })?);
                }
                if x.per_kernel.is_some() {
                    let k = golden(0.0, MAX_PER_KERNEL_US, 14, |k| {
                        try_loss(Extras {
                            per_kernel: Some(k),
                            ..x
                        })
                    })?;
                    x.per_kernel = Some((k * 100.0).round() / 100.0);
                }
                units = build_units(&variant(&x), sets, paths)?;
            }
        }
        (search_step(&units)?, x)
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
        decode_bandwidth_efficiency: extras.attention,
        gemm_bandwidth_efficiency: extras.gemm,
        per_kernel_us: extras.per_kernel,
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

/// The stack file at `path` with `fit`'s values, `fitted_on` and sources written in
/// (comments and every other key kept).
pub fn rewrite(path: &std::path::Path, fit: &StackFit, command: &str) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::error::Error::io(path, e))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| crate::error::Error::input(path, None, e.to_string()))?;
    let sets: toml_edit::Array = fit.sets.iter().map(String::as_str).collect();
    let date = crate::calibrate::utc_date();
    doc["host"]["step_us"] = toml_edit::value(fit.step_us);
    doc["host"]["fitted_on"] = toml_edit::value(sets.clone());
    doc["host"]["source"] = toml_edit::value(if fit.sets.is_empty() {
        format!("the prior (no measured set to fit on; `{command}` on {date})")
    } else {
        format!(
        "[fit] exposed host time per iteration, {} by `{command}` on {date} (mean |ln(simulated/measured)| of run TPOT and static-batch E2E {:.3} -> {:.3}; units per set: {})",
        if fit.step_held { "held (the section's other figures fitted)" } else { "fitted" },
        fit.loss_before,
        fit.loss_after,
        fit.units
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
        )
    });
    if let Some(k) = fit.per_kernel_us {
        doc["host"]["per_kernel_us"] = toml_edit::value(k);
    }
    let fitted = if fit.sets.is_empty() {
        format!("the prior (no measured set to fit on; `{command}` on {date})")
    } else {
        format!("[fit] with host.step_us, by `{command}` on {date}")
    };
    let unfitted =
        format!("no data to fit on (`{command}` on {date}): the GPU's memory efficiency");
    for (section, key, value) in [
        (
            "gemm",
            "bandwidth_efficiency",
            fit.gemm_bandwidth_efficiency,
        ),
        (
            "paged_attention",
            "decode_bandwidth_efficiency",
            fit.decode_bandwidth_efficiency,
        ),
    ] {
        let Some(t) = doc
            .get_mut(section)
            .and_then(toml_edit::Item::as_table_like_mut)
        else {
            continue;
        };
        // Replacing an item in place keeps the comments above its key.
        let mut set = |k: &str, item: toml_edit::Item| match t.get_mut(k) {
            Some(old) => *old = item,
            None => {
                t.insert(k, item);
            }
        };
        match value {
            Some(e) => {
                set(key, toml_edit::value(e));
                set("fitted_on", toml_edit::value(sets.clone()));
                set("source", toml_edit::value(fitted.as_str()));
            }
            None => {
                // No data and no prior: nothing says how fast the stack's own kernel is.
                set("fitted_on", toml_edit::value(toml_edit::Array::new()));
                set("source", toml_edit::value(unfitted.as_str()));
                t.remove(key);
            }
        }
    }
    if let Some(r) = fit.request_us {
        let on: toml_edit::Array = fit.request_sets.iter().map(String::as_str).collect();
        doc["api_server"]["request_us"] = toml_edit::value(r);
        doc["api_server"]["fitted_on"] = toml_edit::value(on);
        doc["api_server"]["source"] = toml_edit::value(if fit.request_sets.is_empty() {
            format!("the prior (no client-timed run to fit on; `{command}` on {date})")
        } else {
            format!(
                "[fit] median TTFT shortfall per request of the client-timed runs at the fitted host time, by `{command}` on {date}"
            )
        });
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::measured::{ArrivalMode, EngineHints, MeasuredRequest, RunFormat};

    /// A serving run generated by the simulator itself on `stack`.
    fn synthetic_run(stack: &ServingStack, paths: &DataPaths) -> MeasuredRun {
        let hints = EngineHints {
            model: Some("meta-llama/Llama-3.1-8B".into()),
            hardware: Some("h100".into()),
            max_model_len: Some(4096),
            ..EngineHints::default()
        };
        let (mut req, mut ov) = (DeploymentRequest::default(), EngineOverrides::default());
        hints.apply(&mut req, &mut ov);
        let d = with_stack(
            Deployment::resolve(&req, paths).unwrap(),
            &Arc::new(stack.clone()),
        );
        let setup = ReplicaSetup::new(d, &ov, paths).unwrap();
        let reqs: Vec<crate::trace::Request> = (0..40)
            .map(|i| {
                crate::trace::Request::new(
                    i,
                    crate::units::SimTime::from_secs_f64(i as f64 * 0.05),
                    300 + (i as u32 % 7) * 50,
                    60,
                )
            })
            .collect();
        let out = crate::simulate::simulate_requests(&setup, 1, reqs.clone(), Default::default())
            .unwrap();
        let requests = reqs
            .iter()
            .map(|q| {
                let r = out.records.iter().find(|r| r.request_id == q.id).unwrap();
                MeasuredRequest {
                    id: q.id,
                    arrival_s: q.arrival.as_secs_f64(),
                    input_tokens: q.input_tokens,
                    output_tokens: q.output_tokens,
                    ttft_s: r.ttft_s,
                    e2e_s: r.e2e_s,
                    prefix_hash_ids: Vec::new(),
                }
            })
            .collect();
        MeasuredRun {
            source: "synthetic".into(),
            format: RunFormat::Csv,
            requests,
            itls_s: None,
            arrivals: ArrivalMode::Recorded,
            timing: Timing::Engine,
            load_only: Vec::new(),
            client_timeout_s: None,
            max_concurrency: None,
            hints,
            notes: Vec::new(),
        }
    }

    #[test]
    fn recovers_the_host_time_that_generated_a_run_and_rewrites_the_file() {
        let paths = DataPaths::builtin();
        let mut truth = ServingStack::load(&paths, Some("vllm-v1")).unwrap();
        truth.execution.host.step_us = 800.0;
        let run = synthetic_run(&truth, &paths);
        let sets = vec![FitSet {
            name: "synthetic".into(),
            measurements: vec![Measurement::Run(Box::new(run))],
        }];
        let start = ServingStack::load(&paths, Some("vllm-v1")).unwrap();
        let f = fit(&start, &sets, &paths, true, None).unwrap();
        assert!((f.step_us - 800.0).abs() < 25.0, "{f:?}");
        assert!(
            f.loss_after <= f.loss_before && f.loss_after < 0.01,
            "{f:?}"
        );
        assert_eq!(f.sets, vec!["synthetic".to_owned()]);
        // Engine-timed runs say nothing of the API server: its prior stands.
        assert_eq!(f.request_us, Some(start.api_server.prior_request_us));
        assert!(f.request_sets.is_empty());

        let text = rewrite(&start.path, &f, "test").unwrap();
        let back: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(back["host"]["step_us"].as_float(), Some(f.step_us));
        assert_eq!(back["host"]["fitted_on"][0].as_str(), Some("synthetic"));
        assert!(
            text.contains("# vLLM's custom all-reduce"),
            "comments are kept"
        );

        // No set: the priors.
        let f = fit(&start, &[], &paths, true, None).unwrap();
        assert_eq!(f.step_us, start.execution.host.prior_step_us);
        assert!(f.sets.is_empty());
        // vllm-v1 has no figures of its own kernels to fit.
        assert_eq!(
            (
                f.per_kernel_us,
                f.gemm_bandwidth_efficiency,
                f.decode_bandwidth_efficiency
            ),
            (None, None, None)
        );
    }

    /// Without data, the ROCm build's own figures fall back to their priors (public
    /// timings of the build); where a figure has no prior it is dropped from the
    /// rewritten file so that the GPU's own efficiency stands.
    #[test]
    fn a_stacks_own_kernel_figures_take_their_priors_without_data() {
        let paths = DataPaths::builtin();
        let rocm = ServingStack::load(&paths, Some("vllm-0.6-rocm")).unwrap();
        let f = fit(&rocm, &[], &paths, false, None).unwrap();
        assert_eq!(f.step_us, rocm.execution.host.prior_step_us);
        assert_eq!(f.per_kernel_us, rocm.execution.host.prior_per_kernel_us);
        let gemm_prior = rocm.gemm.as_ref().unwrap().prior_bandwidth_efficiency;
        let attn_prior = rocm
            .paged_attention
            .as_ref()
            .unwrap()
            .prior_decode_bandwidth_efficiency;
        assert!(gemm_prior.is_some() && attn_prior.is_some());
        assert_eq!(f.gemm_bandwidth_efficiency, gemm_prior);
        assert_eq!(f.decode_bandwidth_efficiency, attn_prior);
        let text = rewrite(&rocm.path, &f, "test").unwrap();
        let back: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(back["gemm"]["bandwidth_efficiency"].as_float(), gemm_prior);
        assert_eq!(
            back["host"]["per_kernel_us"].as_float(),
            rocm.execution.host.prior_per_kernel_us
        );

        // The same file without the efficiencies' priors: the keys go.
        let bare: String = std::fs::read_to_string(&rocm.path)
            .unwrap()
            .lines()
            .filter(|l| {
                !l.starts_with("prior_bandwidth_efficiency")
                    && !l.starts_with("prior_decode_bandwidth_efficiency")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rocm.toml");
        std::fs::write(&file, &bare).unwrap();
        let bare = ServingStack::load(&paths, file.to_str()).unwrap();
        let f = fit(&bare, &[], &paths, false, None).unwrap();
        assert_eq!(f.gemm_bandwidth_efficiency, None);
        assert_eq!(f.decode_bandwidth_efficiency, None);
        let text = rewrite(&bare.path, &f, "test").unwrap();
        let back: toml::Value = toml::from_str(&text).unwrap();
        assert!(back["gemm"].get("bandwidth_efficiency").is_none(), "{text}");
        assert!(back["paged_attention"]
            .get("decode_bandwidth_efficiency")
            .is_none());
        std::fs::write(&file, &text).unwrap();
        let reloaded = ServingStack::load(&paths, file.to_str()).unwrap();
        assert_eq!(reloaded.gemm.unwrap().bandwidth_efficiency, None);

        // Fitted values replace the old ones in place, keeping the comments above them.
        let fitted = StackFit {
            decode_bandwidth_efficiency: Some(0.3),
            gemm_bandwidth_efficiency: Some(0.6),
            sets: vec!["synthetic".into()],
            ..f
        };
        let text = rewrite(&rocm.path, &fitted, "test").unwrap();
        assert!(
            text.contains("# The ROCm build's paged-attention decode kernel"),
            "{text}"
        );
        std::fs::write(&file, &text).unwrap();
        let reloaded = ServingStack::load(&paths, file.to_str()).unwrap();
        assert_eq!(reloaded.gemm.unwrap().bandwidth_efficiency, Some(0.6));
        assert_eq!(
            reloaded
                .paged_attention
                .unwrap()
                .decode_bandwidth_efficiency,
            Some(0.3)
        );
    }
}
