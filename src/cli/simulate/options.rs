//! The run options `simulate` builds from its flags: fleet price, client behaviour,
//! replica failures, time windows.

use super::*;

/// The fleet's price by the hour from the flags and the device files: None when a
/// group's device has no price and none is given.
pub(super) fn fleet_price(
    run: &RunArgs,
    setups: &[(u32, ReplicaRole, ReplicaSetup)],
) -> Result<Option<crate::cost::FleetPrice>> {
    if let Some(p) = run.price_per_gpu_hour {
        if !(p.is_finite() && p >= 0.0) {
            anyhow::bail!("--price-per-gpu-hour must be a finite number of USD ≥ 0, got {p}");
        }
    }
    if run.power_w.is_some() && run.price_per_kwh.is_none() {
        anyhow::bail!("--power-w needs --price-per-kwh");
    }
    let energy = run
        .price_per_kwh
        .map(|k| crate::cost::EnergyPrice::new(k, run.power_w))
        .transpose()?;
    let mut fleet = crate::cost::FleetPrice::default();
    for (count, _, s) in setups {
        let d = &s.deployment;
        let gpus = count * d.dp * d.num_gpus();
        let Some(rent) = run.price_per_gpu_hour.or(d.gpu().price_usd_per_gpu_hour) else {
            return Ok(None);
        };
        let power = match &energy {
            Some(e) => match e.power_w(d.gpu().tdp_w) {
                Some(w) => Some((e, w)),
                None => anyhow::bail!(
                    "--price-per-kwh: {} has no power figure (tdp_w) in its device file; give --power-w",
                    d.gpu().name
                ),
            },
            None => None,
        };
        fleet.add(gpus, rent, power);
    }
    Ok(Some(fleet))
}

/// Attainment a window must reach to meet the SLO when `--slo-window-target` is not
/// given.
pub(super) const DEFAULT_SLO_WINDOW_TARGET: f64 = 0.9;

/// The clients' policy from the flags: None when they wait for everything.
pub(super) fn client_policy(run: &RunArgs) -> Result<Option<crate::sim::ClientPolicy>> {
    let secs = |flag: &str, v: Option<f64>| -> Result<Option<crate::units::SimDuration>> {
        match v {
            None => Ok(None),
            Some(s) if s.is_finite() && s > 0.0 && s <= 1e9 => {
                Ok(Some(crate::units::SimDuration::from_secs_f64(s)))
            }
            Some(s) => anyhow::bail!("{flag} must be a number of seconds in (0, 1e9], got {s}"),
        }
    };
    let timeout = secs("--client-timeout-s", run.client_timeout_s)?;
    let abandon_after = secs("--abandon-after-s", run.abandon_after_s)?;
    let backoff_base = secs("--retry-backoff-s", run.retry_backoff_s)?;
    let backoff_max = secs("--retry-backoff-max-s", run.retry_backoff_max_s)?;
    let retry_flags = run.max_retries.is_some() || backoff_base.is_some() || backoff_max.is_some();
    let failures = run.failures.is_some() || run.mtbf_h.is_some();
    if timeout.is_none() && abandon_after.is_none() && !(failures && retry_flags) {
        if retry_flags {
            anyhow::bail!(
                "--max-retries and the retry backoff need --client-timeout-s or replica failures (clients retry requests that timed out or failed)"
            );
        }
        return Ok(None);
    }
    let d = crate::sim::ClientPolicy::default();
    let policy = crate::sim::ClientPolicy {
        timeout,
        abandon_after,
        max_retries: run.max_retries.unwrap_or(0),
        backoff_base: backoff_base.unwrap_or(d.backoff_base),
        backoff_max: backoff_max.unwrap_or(d.backoff_max.max(backoff_base.unwrap_or_default())),
        seed: run.seed.unwrap_or(0),
    };
    Ok(Some(policy.checked()?))
}

/// The failure plan from the flags, for replicas whose weights weigh
/// `weight_bytes` each: None when replicas never fail.
pub(super) fn failure_plan(
    run: &RunArgs,
    weight_bytes: &[f64],
    paths: &DataPaths,
) -> Result<Option<crate::sim::failures::FailurePlan>> {
    use crate::sim::failures::{read_schedule, FailurePlan, Outages};
    use crate::units::SimDuration;
    let outages = match (&run.failures, run.mtbf_h, run.mttr_min) {
        (None, None, None) => return Ok(None),
        (Some(path), None, None) => Outages::Schedule(read_schedule(path)?),
        (None, Some(h), Some(m)) => {
            for (flag, v) in [("--mtbf-h", h), ("--mttr-min", m)] {
                if !(v.is_finite() && v > 0.0 && v <= 1e6) {
                    anyhow::bail!("{flag} must be a positive number up to 1e6, got {v}");
                }
            }
            Outages::Rates {
                mtbf: SimDuration::from_secs_f64(h * 3600.0),
                mttr: SimDuration::from_secs_f64(m * 60.0),
                seed: run.seed.unwrap_or(0),
            }
        }
        (Some(_), _, _) => {
            anyhow::bail!("give either --failures or --mtbf-h with --mttr-min, not both")
        }
        _ => anyhow::bail!("random failures need both --mtbf-h and --mttr-min"),
    };
    let startup = crate::startup::Startup::load(paths)?;
    Ok(Some(FailurePlan {
        outages,
        restart: weight_bytes.iter().map(|&b| startup.restart(b)).collect(),
    }))
}

/// Parse `START:END` (END optional) seconds.
pub(super) fn parse_window(s: &str) -> Result<(f64, f64)> {
    let (a, b) = s.split_once(':').unwrap_or((s, ""));
    let start: f64 = a
        .trim()
        .parse()
        .with_context(|| format!("--time-window: bad start `{a}` (expected START:END seconds)"))?;
    let end: f64 = if b.trim().is_empty() {
        f64::INFINITY
    } else {
        b.trim()
            .parse()
            .with_context(|| format!("--time-window: bad end `{b}` (expected START:END seconds)"))?
    };
    if !(start >= 0.0 && end > start) {
        anyhow::bail!("--time-window: need 0 <= START < END, got {start}:{end}");
    }
    Ok((start, end))
}
