//! `plan`: the maximum sustainable rate of every configuration of a grid, the fewest
//! replicas for a target rate, ranked by cost, with the cost/latency Pareto frontier.

use super::exec::{par_map, PointMetrics, SweepContext};
use super::grid::{ConfigPoint, WorkloadSpec};
use super::search::{fewest_replicas, max_rate, MaxRate, PlanSlo};
use crate::error::Result;

/// Options of a plan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlanOptions {
    /// The SLO.
    pub slo: PlanSlo,
    /// Relative width of the final bisection bracket (0.02 = 2 %).
    pub tolerance: f64,
    /// Target rate, requests per second (None: no replica search).
    pub target_rps: Option<f64>,
    /// Threads.
    pub jobs: usize,
    /// Most replicas tried for the target.
    pub max_replicas: u32,
    /// Replications for the maximum rate's 95 % interval (0: none) and the bootstrap
    /// block length, s (see [`crate::replicate`]).
    pub replications: u32,
    /// Bootstrap block length, s, with `replications`.
    pub bootstrap_block_s: f64,
    /// Spare replicas: the target's fleet still meets the SLO with this many replicas
    /// down (`plan --headroom`). The answer counts them, and so does its cost.
    pub headroom: u32,
}

/// The maximum rate of one configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigResult {
    /// The configuration.
    pub config: ConfigPoint,
    /// The search result.
    pub max: MaxRate,
    /// The maximum as requests per second.
    pub max_rps: f64,
    /// The 2.5th and 97.5th percentiles of the maximum over the replications, req/s
    /// (with [`PlanOptions::replications`]).
    pub max_rps_ci95: Option<[f64; 2]>,
}

/// The fewest replicas of one configuration family (the configuration without its
/// replica count) for the target rate.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetResult {
    /// The family (its `replicas` is the answer, or the first grid value when none).
    pub config: ConfigPoint,
    /// Replicas needed (spares included) and the run at the target with the spares
    /// down (its GPUs and cost those of the whole fleet), or None when not reachable.
    pub answer: Option<(u32, PointMetrics)>,
}

/// The whole plan.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanReport {
    /// One entry per configuration, in configuration order.
    pub configs: Vec<ConfigResult>,
    /// One entry per family, in order of first appearance (only with a target).
    pub targets: Vec<TargetResult>,
}

/// The load (rate scale or rate) the search starts from: scale 1 for a trace, the
/// first listed rate for a generator.
pub fn start_load(ctx: &SweepContext) -> f64 {
    match &ctx.grid.workload {
        WorkloadSpec::Trace { .. } => 1.0,
        WorkloadSpec::Synthetic { rates_rps, .. } => rates_rps[0],
    }
}

/// Run the plan; `tick` is called after each configuration and family.
pub fn plan(
    ctx: &SweepContext,
    opts: &PlanOptions,
    tick: &(dyn Fn() + Sync),
) -> Result<PlanReport> {
    opts.slo.validate()?;
    let start = start_load(ctx);
    let indices: Vec<usize> = (0..ctx.grid.num_configs()).collect();
    let configs: Vec<Result<ConfigResult>> = par_map(
        &indices,
        opts.jobs,
        |i| {
            let (config, max, max_rps) = search(ctx, i, opts, start)?;
            Ok(ConfigResult {
                max_rps,
                config,
                max,
                max_rps_ci95: None,
            })
        },
        tick,
    );
    let mut configs: Vec<ConfigResult> = configs.into_iter().collect::<Result<_>>()?;
    if opts.replications > 0 {
        for (c, iv) in configs
            .iter_mut()
            .zip(max_rate_intervals(ctx, opts, start)?)
        {
            c.max_rps_ci95 = Some(iv);
        }
    }
    let mut targets = Vec::new();
    if let Some(target) = opts.target_rps {
        // Families: the configurations with the first replica count stand for theirs.
        let first = ctx.grid.replicas[0];
        let fam: Vec<usize> = configs
            .iter()
            .filter(|c| c.config.replicas == first)
            .map(|c| c.config.index)
            .collect();
        let load = match &ctx.grid.workload {
            WorkloadSpec::Trace { .. } => target / ctx.offered_rps(1.0),
            WorkloadSpec::Synthetic { .. } => target,
        };
        let res: Vec<Result<TargetResult>> = par_map(
            &fam,
            opts.jobs,
            |i| {
                let c = &configs[i];
                // Guess from this family member's per-replica maximum.
                let per_replica = c.max_rps / f64::from(c.config.replicas);
                let guess = if per_replica > 0.0 {
                    (target / per_replica)
                        .ceil()
                        .min(f64::from(opts.max_replicas)) as u32
                } else {
                    1
                };
                let answer = if c.max.infeasible.is_some() || opts.headroom >= opts.max_replicas {
                    None
                } else {
                    // The replicas left serving with `headroom` of them down.
                    fewest_replicas(
                        |n| ctx.evaluate(&c.config, n, load),
                        &opts.slo,
                        guess,
                        opts.max_replicas - opts.headroom,
                    )?
                    .map(|(serving, m)| with_spares(serving, m, opts.headroom))
                };
                let mut config = c.config.clone();
                if let Some((n, _)) = &answer {
                    config.replicas = *n;
                }
                Ok(TargetResult { config, answer })
            },
            tick,
        );
        targets = res.into_iter().collect::<Result<_>>()?;
    }
    Ok(PlanReport { configs, targets })
}

/// The answer for a fleet that keeps `spares` more replicas than the `serving` ones
/// whose run `m` met the SLO: the whole fleet's replicas, GPUs and so cost.
fn with_spares(serving: u32, mut m: PointMetrics, spares: u32) -> (u32, PointMetrics) {
    let n = serving + spares;
    m.gpus = m.gpus / serving * n;
    (n, m)
}

/// The maximum-rate search of configuration `i` of `ctx` from load `start`: the
/// configuration, the search's result and the maximum in requests per second.
fn search(
    ctx: &SweepContext,
    i: usize,
    opts: &PlanOptions,
    start: f64,
) -> Result<(ConfigPoint, MaxRate, f64)> {
    let c = ctx.grid.config(i);
    let max = max_rate(
        |load| ctx.evaluate(&c, c.replicas, load),
        &opts.slo,
        start,
        opts.tolerance,
    )?;
    let rps = if max.load > 0.0 {
        ctx.offered_rps(max.load)
    } else {
        0.0
    };
    Ok((c, max, rps))
}

/// The 95 % interval of every configuration's maximum rate over `opts.replications`
/// replications of the workload and the GPUs' run-to-run speed (see
/// [`SweepContext::replication`]), in configuration order.
fn max_rate_intervals(ctx: &SweepContext, opts: &PlanOptions, start: f64) -> Result<Vec<[f64; 2]>> {
    if !(opts.bootstrap_block_s.is_finite() && opts.bootstrap_block_s > 0.0) {
        return Err(crate::error::Error::Config(format!(
            "--bootstrap-block-s must be a positive number of seconds, got {}",
            opts.bootstrap_block_s
        )));
    }
    let noise = crate::replicate::RunNoise::load(ctx.paths())?;
    let reps: Vec<SweepContext> = (0..opts.replications)
        .map(|r| ctx.replication(r, opts.bootstrap_block_s, &noise))
        .collect();
    let n_configs = ctx.grid.num_configs();
    let pairs: Vec<usize> = (0..n_configs * reps.len()).collect();
    let maxima: Vec<Result<f64>> = par_map(
        &pairs,
        opts.jobs,
        |k| {
            let (i, r) = (k / reps.len(), k % reps.len());
            Ok(search(&reps[r], i, opts, start)?.2)
        },
        &|| {},
    );
    let maxima: Vec<f64> = maxima.into_iter().collect::<Result<_>>()?;
    Ok(maxima
        .chunks(reps.len().max(1))
        .map(crate::replicate::percentile_interval)
        .collect())
}

/// The ranking of target results: priced answers by cost per hour, then $ per million
/// output tokens, then index; unpriced and unreachable ones after, in index order.
pub fn rank_targets(t: &[TargetResult]) -> Vec<usize> {
    let key = |r: &TargetResult| {
        r.answer.as_ref().and_then(|(_, m)| {
            Some((
                m.cost_usd_per_hour()?,
                m.usd_per_million_output_tokens().unwrap_or(f64::INFINITY),
            ))
        })
    };
    let mut order: Vec<usize> = (0..t.len()).collect();
    order.sort_by(|&a, &b| match (key(&t[a]), key(&t[b])) {
        (Some(x), Some(y)) => {
            x.0.total_cmp(&y.0)
                .then(x.1.total_cmp(&y.1))
                .then(a.cmp(&b))
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(&b),
    });
    order
}

/// The ranking of configurations by $ per million output tokens at their maximum rate
/// (priced first; then by index).
pub fn rank_configs(c: &[ConfigResult]) -> Vec<usize> {
    let key = |r: &ConfigResult| {
        r.max
            .at_max
            .as_ref()
            .and_then(|m| m.usd_per_million_output_tokens())
    };
    let mut order: Vec<usize> = (0..c.len()).collect();
    order.sort_by(|&a, &b| match (key(&c[a]), key(&c[b])) {
        (Some(x), Some(y)) => x.total_cmp(&y).then(a.cmp(&b)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(&b),
    });
    order
}
