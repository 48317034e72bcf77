//! Replay a measured serving run through simulated replicas and pair every request's
//! simulated timings with its measured ones.

use super::measured::{output_rate, ArrivalMode, MeasuredRun, RunSummary, Timing};
use super::report::{
    ComparisonRows, Metric, MetricReport, ReplayMode, ThroughputReport, Validation, ValidationKind,
};
use super::stats::{ErrorStats, Quantiles};
use super::sweep;
use crate::engine::{RequestRecord, RequestStatus};
use crate::error::Result;
use crate::setup::ReplicaSetup;
use crate::simulate::simulate_requests;
use crate::trace::Request;
use crate::units::SimTime;

/// The requests of `run`, as the simulator replays them: the measured ones and those
/// replayed for their load only, by arrival (ties: measured first, in file order).
pub fn requests_of(run: &MeasuredRun) -> Vec<Request> {
    let mut out: Vec<Request> = run
        .requests
        .iter()
        .map(|r| {
            let mut q = Request::new(
                r.id,
                SimTime::from_secs_f64(r.arrival_s),
                r.input_tokens,
                r.output_tokens,
            );
            q.prefix_hash_ids.clone_from(&r.prefix_hash_ids);
            q
        })
        .collect();
    if !run.load_only.is_empty() {
        out.extend(run.load_only.iter().map(|r| {
            Request::new(
                r.id,
                SimTime::from_secs_f64(r.arrival_s),
                r.input_tokens,
                r.output_tokens,
            )
        }));
        out.sort_by_key(|q| q.arrival);
    }
    out
}

/// How [`replay`] sends the requests of `run` (`closed_loop`: the client's cap on
/// requests in flight, if any: a closed loop for a burst, a capped open loop for timed
/// arrivals).
pub fn replay_mode(run: &MeasuredRun, closed_loop: Option<u32>) -> ReplayMode {
    match (&run.arrivals, closed_loop) {
        (ArrivalMode::AllAtOnce, Some(c)) => ReplayMode::ClosedLoop {
            concurrency: Some(c),
        },
        (ArrivalMode::AllAtOnce, None) => ReplayMode::Burst,
        (ArrivalMode::Recorded, _) => ReplayMode::Recorded,
        (
            ArrivalMode::Regenerated {
                seed,
                request_rate_rps,
            },
            _,
        ) => ReplayMode::Regenerated {
            seed: *seed,
            request_rate_rps: *request_rate_rps,
            max_concurrency: closed_loop,
        },
    }
}

/// Replay `run` on `num_replicas` replicas of `setup` and compare.
pub fn replay(
    name: &str,
    run: &MeasuredRun,
    setup: &ReplicaSetup,
    num_replicas: u32,
) -> Result<Validation> {
    replay_after(name, run, &[], setup, num_replicas)
}

/// [`replay`] `run` after the runs `earlier` on the same simulated server, in order, the
/// prompts of the same index sharing their first tokens ([`super::sweep`]); only `run`
/// is compared. No earlier runs: [`replay`].
pub fn replay_after(
    name: &str,
    run: &MeasuredRun,
    earlier: &[MeasuredRun],
    setup: &ReplicaSetup,
    num_replicas: u32,
) -> Result<Validation> {
    let mut notes = run.notes.clone();
    let timed = !matches!(run.arrivals, ArrivalMode::AllAtOnce);
    if let (Some(c), true) = (run.max_concurrency, timed) {
        notes.push(format!(
            "max_concurrency {c} with timed arrivals: at most {c} requests in flight, a request whose time has come waiting for a slot as the benchmark client's semaphore holds it (its latencies count from when it is sent, as the client times them)"
        ));
    }
    let sweep = !earlier.is_empty();
    // A sweep's runs are open loops an hour apart (each within its client's cap).
    let closed_loop = if sweep { None } else { run.max_concurrency };
    let client_side = run.timing == Timing::Client;
    if client_side && !setup.deployment.stack.api_server.is_zero() {
        notes.push(format!(
            "times measured by the client: the serving stack's API server ({} µs per request + {} µs per prompt token in, {} µs per token out) is on every request's path",
            setup.deployment.stack.api_server.request_us,
            setup.deployment.stack.api_server.per_prompt_token_us,
            setup.deployment.stack.api_server.per_token_out_us
        ));
    }
    let (replay, requests) = if sweep {
        let mode = ReplayMode::AfterEarlierRuns {
            runs: earlier.len() as u32,
        };
        (mode, sweep::sweep_requests(earlier, run)?)
    } else {
        (replay_mode(run, closed_loop), requests_of(run))
    };
    let out = simulate_requests(
        setup,
        num_replicas,
        requests,
        crate::simulate::ReplayOptions {
            closed_loop,
            hold_until_arrival: timed,
            keep_itls: run.itls_s.is_some() || run.summary.is_some(),
            load_only_from_id: sweep.then_some(sweep::FIRST_EARLIER_ID),
            max_iterations: None,
            api_server: client_side,
            client_timeout: run
                .client_timeout_s
                .map(crate::units::SimDuration::from_secs_f64),
        },
    )?;
    if sweep {
        sweep::check_spacing(&out.records)?;
        let ours = out
            .records
            .iter()
            .filter(|r| r.request_id < sweep::FIRST_EARLIER_ID);
        let (hit, all) = ours.fold((0u64, 0u64), |(h, a), r| {
            (
                h + u64::from(r.prefix_hit_tokens),
                a + u64::from(r.input_tokens),
            )
        });
        notes.push(format!(
            "replayed after {} earlier run(s) of the same server ({}), in that order, an hour apart: prompt i of every run shares its first tokens with prompt i of the others, as the benchmark clients' prompts by index do; prefix-cache hits on this run: {hit} of {all} prompt tokens ({:.1}%)",
            earlier.len(),
            earlier
                .iter()
                .map(|r| r.source.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            100.0 * hit as f64 / all.max(1) as f64
        ));
    }
    let mut by_id: std::collections::HashMap<u64, &RequestRecord> =
        std::collections::HashMap::with_capacity(out.records.len());
    for r in &out.records {
        by_id.insert(r.request_id, r);
    }
    let mut rows = ComparisonRows {
        key_columns: vec!["request_id", "arrival_s", "input_tokens", "output_tokens"],
        ..ComparisonRows::default()
    };
    let mut cols: [(Vec<f64>, Vec<f64>); 3] = Default::default();
    let mut rejected = 0usize;
    for m in &run.requests {
        rows.keys.push(vec![
            m.id.to_string(),
            format!("{:.6}", m.arrival_s),
            m.input_tokens.to_string(),
            m.output_tokens.to_string(),
        ]);
        let s = by_id
            .get(&m.id)
            .copied()
            .filter(|r| r.status == RequestStatus::Finished);
        if s.is_none() {
            rejected += 1;
        }
        let sim = |f: fn(&RequestRecord) -> f64| s.map_or(f64::NAN, f);
        let vals = [
            (sim(|r| r.ttft_s), m.ttft_s),
            (sim(|r| r.tpot_s), m.tpot_s()),
            (sim(|r| r.e2e_s), m.e2e_s),
        ];
        for (c, (sv, mv)) in cols.iter_mut().zip(vals) {
            c.0.push(sv);
            c.1.push(mv);
        }
    }
    if rejected > 0 {
        notes.push(format!(
            "{rejected} requests did not finish in the simulation (rejected as longer than max_model_len or the whole KV cache{}) and are left out of the errors",
            if run.client_timeout_s.is_some() {
                ", or given up by their client"
            } else {
                ""
            }
        ));
    }
    if let Some(t) = run.client_timeout_s {
        let sim_timed_out = out
            .records
            .iter()
            .filter(|r| r.status == RequestStatus::TimedOut)
            .count();
        let all = run.requests.len() + run.load_only.len();
        let pct = |n: usize| 100.0 * n as f64 / all.max(1) as f64;
        notes.push(format!(
            "clients give up after {t:.1} s (the run's timed-out requests): a simulated request not finished by then is aborted; {} requests that timed out in the measurement are replayed for their load; timed out: {} of {all} measured ({:.1}%), {sim_timed_out} simulated ({:.1}%)",
            run.load_only.len(),
            run.load_only.len(),
            pct(run.load_only.len()),
            pct(sim_timed_out)
        ));
    }
    for (m, (s, me)) in [Metric::Ttft, Metric::Tpot, Metric::E2e]
        .into_iter()
        .zip(cols)
    {
        rows.metrics.push((m, s, me));
    }
    let mut metrics = match &run.summary {
        Some(s) => summary_reports(s, &rows, &out.itls_s),
        None => rows.reports(),
    };
    if let Some(meas) = &run.itls_s {
        metrics.insert(
            2,
            MetricReport {
                metric: Metric::Itl,
                simulated: Quantiles::of(&out.itls_s),
                measured: Quantiles::of(meas),
                errors: None,
            },
        );
    }
    let sim_rate = output_rate(
        out.records
            .iter()
            .filter(|r| {
                r.status == RequestStatus::Finished && r.request_id < sweep::FIRST_EARLIER_ID
            })
            .map(|r| (r.arrival_time_s, r.finish_time_s, r.output_tokens)),
    );
    Ok(Validation {
        name: name.to_owned(),
        kind: ValidationKind::ServingRun,
        source: run.source.clone(),
        deployment: setup.deployment.summary(),
        engine: Some(setup.engine.clone()),
        num_replicas,
        latency_model: setup.latency.describe(),
        replay: Some(replay),
        metrics,
        throughput: Some(ThroughputReport::new(sim_rate, run.output_tokens_per_s())),
        notes,
        sample: None,
        rows,
    })
}

/// The reports of a run known by its statistics only: the simulated distribution of
/// each metric beside the printed one, the error that of the means.
fn summary_reports(s: &RunSummary, rows: &ComparisonRows, sim_itls: &[f64]) -> Vec<MetricReport> {
    let simulated = |m: Metric| {
        rows.metrics
            .iter()
            .find(|(x, ..)| *x == m)
            .map_or_else(|| Quantiles::of(&[]), |(_, sim, _)| Quantiles::of(sim))
    };
    let report = |metric: Metric, simulated: Quantiles, measured: Quantiles| MetricReport {
        metric,
        simulated,
        measured,
        errors: Some(ErrorStats::of(&[simulated.mean], &[measured.mean])),
    };
    vec![
        report(Metric::Ttft, simulated(Metric::Ttft), s.ttft_s),
        report(Metric::Tpot, simulated(Metric::Tpot), s.tpot_s),
        report(Metric::Itl, Quantiles::of(sim_itls), s.itl_s),
        report(Metric::E2e, simulated(Metric::E2e), s.e2e_s),
    ]
}
