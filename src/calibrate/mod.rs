//! Calibration: fit the free physical parameters of the roofline model
//! ([`RooflineParams`]) of one GPU to measured times.
//!
//! This module only fits numbers; the model it fits is [`Roofline`] as it is, and the
//! measurements come from [`validate`](crate::validate)'s readers.
//!
//! # What is fitted
//!
//! Three efficiencies (GEMM, attention, memory streaming) in `[0.05, 1]`, and two
//! overheads (per iteration in `[0, 30 ms]`, per layer and iteration in `[0, 500 µs]`),
//! split by what they are a property of:
//!
//! * **the GPU**: the GEMM and memory-streaming efficiencies (cuBLAS, HBM). Each GPU in
//!   the data gets its own pair; GPUs of one chip can be fitted as one group
//!   ([`Calibration::new`]).
//! * **the serving stack**: the attention efficiency (FlashAttention or not, paged
//!   kernels) and the overheads (CUDA graphs, scheduler and output-processing CPU
//!   time). The stack `None` is the simulated one, vLLM, and is what is written; sets
//!   measured on other stacks (Splitwise's unnamed engine) get these three of their
//!   own, fitted alongside but never written. With no set on the simulated stack they
//!   keep their starting values.
//!
//! A GPU group's written file is its own GEMM and memory efficiencies plus the simulated
//! stack's three, so measurements of vLLM on one GPU inform the stack
//! parameters written for another.
//!
//! # How
//!
//! A robust least squares on log time: with `r = ln(predicted / measured)`, minimise
//! `Σ_sets mean_i huber(r_i; δ = 0.1) + λ Σ_eff ln(eff / eff₀)²` with λ = 2·10⁻³, a
//! weak prior toward the starting values (from `roofline.toml`): it keeps an efficiency
//! the data barely sees from absorbing costs the roofline lacks (without it, Argonne's
//! large-batch decodes, slowed by vLLM 0.5's per-sequence CPU work, drive the attention
//! efficiency to its lower bound), and moves a clearly measured one by less than a few
//! per cent.
//! Each set weighs the same whatever its size. The minimiser is a bounded, restarted
//! Nelder–Mead ([`optimize`]).
//!
//! Predictions: a step-time table (Splitwise) is the roofline on the exact shapes; a
//! static batch (Argonne) is the sum of its recorded iterations ([`shapes`]); a serving
//! run is re-simulated for every parameter vector (E2E and TPOT per request; TTFT, a
//! queueing time under overload, is left to follow).
//!
//! ```
//! use servesim::calibrate::{optimize::{minimize, NelderMead}};
//! let m = minimize(|x| (x[0] - 0.3).powi(2), &[0.9], &[0.05], &[1.0], &NelderMead::default());
//! assert!((m.x[0] - 0.3).abs() < 1e-4);
//! ```

use crate::deployment::Deployment;
use crate::engine::RequestStatus;
use crate::error::Result;
use crate::perf::roofline::{Roofline, RooflineParams};
use crate::perf::{LatencyModel, StepShape};
use crate::setup::ReplicaSetup;
use crate::validate::measured::MeasuredRun;
use crate::validate::replay::requests_of;
use crate::validate::{Metric, TableGroup, TableKind};
use std::sync::Arc;

mod fit;
pub mod kernels;
pub mod optimize;
pub mod shapes;
pub mod stack_fit;
mod write;

pub use fit::{Fit, GroupFit, MetricFit, SetFit, StackParams};
pub use write::{calibrated_toml, utc_date};

/// Names of the five parameters, in [`RooflineParams`] order.
pub const PARAM_NAMES: [&str; 5] = [
    "gemm_compute_efficiency",
    "memory_efficiency",
    "attention_compute_efficiency",
    "step_overhead_s",
    "per_layer_overhead_s",
];

/// One measured time predicted from weighted iteration shapes.
#[derive(Clone, Debug)]
struct StepItem {
    deployment: usize,
    metric: Metric,
    shapes: shapes::WeightedShapes,
    /// The prediction is `Σ w·t / divisor` (the number of steps for a mean).
    divisor: f64,
    measured_s: f64,
}

/// A serving run, re-simulated for every parameter vector.
#[derive(Clone, Debug)]
struct RunItem {
    setup: ReplicaSetup,
    replicas: u32,
    run: MeasuredRun,
}

/// A named set of measurements (one table group, one run) on one GPU and one stack.
#[derive(Clone, Debug)]
struct DataSet {
    name: String,
    /// Index of its GPU group.
    group: usize,
    /// Its serving stack when not the simulated one.
    stack: Option<String>,
    steps: Vec<StepItem>,
    runs: Vec<RunItem>,
    /// Measurements left out (static batches the engine preempts or rejects).
    left_out: usize,
}

/// GPUs sharing one pair of GEMM and memory efficiencies.
#[derive(Clone, Debug, PartialEq)]
struct Group {
    /// Catalog names of its GPUs.
    members: Vec<String>,
}

/// The measurements to fit, with the deployments they were taken on.
#[derive(Clone, Debug, Default)]
pub struct Calibration {
    deployments: Vec<Deployment>,
    groups: Vec<Group>,
    sets: Vec<DataSet>,
}

impl Calibration {
    /// An empty calibration in which the GPUs of each of `groups` (catalog names) share
    /// their efficiencies; any other GPU in the data gets a group of its own.
    pub fn new(groups: &[Vec<String>]) -> Self {
        Calibration {
            deployments: Vec::new(),
            groups: groups
                .iter()
                .map(|g| Group { members: g.clone() })
                .collect(),
            sets: Vec::new(),
        }
    }

    /// Sets added so far.
    pub fn num_sets(&self) -> usize {
        self.sets.len()
    }

    /// Measurements added so far.
    pub fn num_items(&self) -> usize {
        self.sets
            .iter()
            .map(|s| {
                s.steps.len()
                    + s.runs
                        .iter()
                        .map(|r| 2 * r.run.requests.len())
                        .sum::<usize>()
            })
            .sum()
    }

    fn group_of(&mut self, gpu: &str) -> usize {
        match self
            .groups
            .iter()
            .position(|g| g.members.iter().any(|m| m.eq_ignore_ascii_case(gpu)))
        {
            Some(i) => i,
            None => {
                self.groups.push(Group {
                    members: vec![gpu.to_owned()],
                });
                self.groups.len() - 1
            }
        }
    }

    fn deployment_index(&mut self, d: &Deployment) -> usize {
        let key = |x: &Deployment| (x.summary(), x.model.name.clone());
        match self.deployments.iter().position(|x| key(x) == key(d)) {
            Some(i) => i,
            None => {
                self.deployments.push(d.clone());
                self.deployments.len() - 1
            }
        }
    }

    /// Start a set named `name`, measured on the GPU `gpu` (catalog name) with the
    /// serving stack `stack` (`None`: the simulated vLLM; a name: a stack whose
    /// attention efficiency and overheads are its own). Returns its index.
    pub fn add_set(&mut self, name: &str, gpu: &str, stack: Option<&str>) -> usize {
        let group = self.group_of(gpu);
        self.sets.push(DataSet {
            name: name.to_owned(),
            group,
            stack: stack.map(str::to_owned),
            steps: Vec::new(),
            runs: Vec::new(),
            left_out: 0,
        });
        self.sets.len() - 1
    }

    /// Add to `set` a measured time of `metric` predicted as `Σ w·step_time / divisor`
    /// over `shapes` on `d`.
    pub fn add_steps(
        &mut self,
        set: usize,
        d: &Deployment,
        metric: Metric,
        shapes: shapes::WeightedShapes,
        divisor: f64,
        measured_s: f64,
    ) {
        let deployment = self.deployment_index(d);
        self.sets[set].steps.push(StepItem {
            deployment,
            metric,
            shapes,
            divisor,
            measured_s,
        });
    }

    /// Add a static-batch table group measured on `setup`'s deployment with `stack` as
    /// a new set. Argonne batches are run once through the engine to record their
    /// iterations; batches it preempts or rejects are left out (their time depends on
    /// the KV capacity and preemption policy, not only on the fitted step times).
    /// Argonne TTFT figures (one output token) fit TTFT the same way. Splitwise rows give
    /// the prefill (TTFT) and the mean decode iteration (TPOT).
    pub fn add_table_group(
        &mut self,
        name: &str,
        kind: TableKind,
        group: &TableGroup,
        setup: &ReplicaSetup,
        stack: Option<&str>,
    ) -> Result<usize> {
        let d = &setup.deployment;
        let set = self.add_set(name, &d.gpu().name, stack);
        for r in &group.rows {
            match kind {
                TableKind::Splitwise => {
                    let mut prefill = StepShape::new();
                    for _ in 0..r.batch_size {
                        prefill.push_prefill(r.input_len, 0);
                    }
                    if let Some(m) = r.prefill_s {
                        self.add_steps(set, d, Metric::Ttft, vec![(prefill, 1.0)], 1.0, m);
                    }
                    let steps = r.output_len.saturating_sub(1);
                    if let (Some(m), true) = (r.decode_step_s, steps > 0) {
                        let dec = shapes::static_decodes(r.batch_size, r.input_len, r.output_len);
                        self.add_steps(
                            set,
                            d,
                            Metric::Tpot,
                            shapes::compress(&dec),
                            f64::from(steps),
                            m,
                        );
                    }
                }
                TableKind::Argonne | TableKind::ArgonneTtft => {
                    // With one output token the batch's E2E is its TTFT, so the sum of
                    // its recorded iterations fits either; longer TTFT rows would need
                    // the decodes split off, and are left out.
                    let (metric, measured) = if kind == TableKind::Argonne {
                        (Metric::E2e, r.e2e_s)
                    } else {
                        (Metric::Ttft, r.ttft_s)
                    };
                    let Some(m) = measured else { continue };
                    if metric == Metric::Ttft && r.output_len != 1 {
                        self.sets[set].left_out += 1;
                        continue;
                    }
                    let rec = Arc::new(shapes::Recording::new(setup.latency.clone()));
                    let mut s = setup.clone();
                    s.latency = rec.clone();
                    let records = crate::estimate::run_static_batch(
                        &s,
                        crate::estimate::BatchSpec {
                            batch_size: r.batch_size,
                            input_len: r.input_len,
                            output_len: r.output_len,
                        },
                        None,
                    )?;
                    // A batch the engine rejects or preempts measures the KV capacity and
                    // the preemption policy more than the step times being fitted.
                    if records
                        .iter()
                        .any(|x| x.status != RequestStatus::Finished || x.preemptions > 0)
                    {
                        self.sets[set].left_out += 1;
                        continue;
                    }
                    self.add_steps(set, d, metric, shapes::compress(&rec.take()), 1.0, m);
                }
            }
        }
        Ok(set)
    }

    /// Add a measured serving run, replayed on `replicas` replicas of `setup`, as a
    /// new set on `stack`.
    pub fn add_run(
        &mut self,
        name: &str,
        run: &MeasuredRun,
        setup: &ReplicaSetup,
        replicas: u32,
        stack: Option<&str>,
    ) {
        let set = self.add_set(name, &setup.deployment.gpu().name, stack);
        self.deployment_index(&setup.deployment);
        self.sets[set].runs.push(RunItem {
            setup: setup.clone(),
            replicas,
            run: run.clone(),
        });
    }

    /// (metric, predicted, measured) of every measurement of `set` under `p`.
    pub fn predict(&self, set: usize, p: &RooflineParams) -> Result<Vec<(Metric, f64, f64)>> {
        let s = &self.sets[set];
        let mut out = Vec::new();
        let mut models: Vec<Option<Roofline>> = vec![None; self.deployments.len()];
        for it in &s.steps {
            let m = models[it.deployment].get_or_insert_with(|| {
                roofline_with_overheads(&self.deployments[it.deployment], p)
            });
            let t: f64 = it
                .shapes
                .iter()
                .map(|(shape, w)| w * m.evaluate(shape, None))
                .sum();
            out.push((it.metric, t / it.divisor, it.measured_s));
        }
        for r in &s.runs {
            let mut setup = r.setup.clone();
            let latency: Arc<dyn LatencyModel> =
                Arc::new(roofline_with_overheads(&setup.deployment, p));
            setup.latency = latency;
            let sim = crate::simulate::simulate_requests(
                &setup,
                r.replicas,
                requests_of(&r.run),
                crate::simulate::ReplayOptions::default(),
            )?;
            let by_id: std::collections::HashMap<u64, _> =
                sim.records.iter().map(|x| (x.request_id, x)).collect();
            for m in &r.run.requests {
                let rec = by_id
                    .get(&m.id)
                    .filter(|x| x.status == RequestStatus::Finished);
                out.push((Metric::E2e, rec.map_or(f64::NAN, |x| x.e2e_s), m.e2e_s));
                out.push((Metric::Tpot, rec.map_or(f64::NAN, |x| x.tpot_s), m.tpot_s()));
            }
        }
        Ok(out)
    }
}

/// The roofline of `d` with `p`, its host time being `p`'s fitted overheads
/// (`step_overhead_s + per_layer_overhead_s × layers` per iteration, serial, no launch
/// cost) in place of the serving stack's: the form calibration fits.
pub fn roofline_with_overheads(d: &Deployment, p: &RooflineParams) -> Roofline {
    let mut d = d.clone();
    let stack = Arc::make_mut(&mut d.stack);
    let e = &mut stack.execution;
    e.host = crate::stack::HostCost {
        step_us: (p.step_overhead_s + p.per_layer_overhead_s * d.model.num_layers as f64) * 1e6,
        per_sequence_us: 0.0,
        per_prefill_us: 0.0,
        overlap: crate::stack::HostOverlap::Serial,
        source: "calibration".into(),
        fitted_on: Vec::new(),
        chosen_on: Vec::new(),
        prior_step_us: 0.0,
        prior_source: String::new(),
        per_kernel_us: 0.0,
        prior_per_kernel_us: None,
        per_sequence_serial_us: 0.0,
        prior_per_sequence_serial_us: None,
    };
    e.kernel_launch_us = 0.0;
    e.graph_launch_us = 0.0;
    Roofline::new(&d, *p)
}

#[cfg(test)]
mod tests;
