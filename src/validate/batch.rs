//! Static-batch validation.
//!
//! * Batch E2E (Argonne): each configuration's `batch_size` identical requests arrive
//!   together at time zero and run through the simulated engine (its scheduler, token
//!   budget, KV cache and preemption), as `servesim estimate` runs its batch
//!   ([`run_static_batch`]); the simulated batch E2E is the last request's.
//! * Batch TTFT (Argonne TTFT figures): the same replay; the simulated batch TTFT is the
//!   latest first token of the batch (the measured one-token `llm.generate()`).
//! * Step times (Splitwise): the latency model is asked for the exact shapes: the
//!   prefill of `batch × prompt` tokens (TTFT), and every decode iteration of the batch
//!   with its context growing from `prompt + 1` to `prompt + output − 1`, averaged
//!   (TPOT). Where the table's E2E is reliable, simulated E2E = prefill + Σ decodes.

use super::report::{ComparisonRows, Metric, Validation, ValidationKind};
use super::tables::{TableGroup, TableKind};
use crate::engine::{RequestRecord, RequestStatus};
use crate::error::Result;
use crate::estimate::{run_static_batch, BatchSpec};
use crate::perf::{LatencyModel, StepShape};
use crate::setup::ReplicaSetup;
use std::path::Path;

/// The prefill time, the mean decode iteration and their total for a static batch on
/// `latency`, s; an error where the model gives no usable time for an iteration.
pub fn step_times(
    latency: &dyn LatencyModel,
    batch: u32,
    input: u32,
    output: u32,
) -> Result<[f64; 3]> {
    let time =
        |shape: &StepShape| crate::perf::checked_step_time(latency, shape).map(|d| d.as_secs_f64());
    let mut shape = StepShape::new();
    for _ in 0..batch {
        shape.push_prefill(input, 0);
    }
    let prefill = time(&shape)?;
    let steps = output.saturating_sub(1);
    let mut decode = 0.0;
    for j in 0..steps {
        shape.clear();
        for _ in 0..batch {
            shape.push_decode(input + j + 1);
        }
        decode += time(&shape)?;
    }
    let mean = if steps > 0 {
        decode / f64::from(steps)
    } else {
        f64::NAN
    };
    Ok([prefill, mean, prefill + decode])
}

/// Validate one table group on `setup` (whose deployment is the group's).
pub fn validate_group(
    name: &str,
    source: &Path,
    kind: TableKind,
    group: &TableGroup,
    setup: &ReplicaSetup,
) -> Result<Validation> {
    let mut notes: Vec<String> = [&group.model.note, &group.hardware.note]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let mut rows = ComparisonRows {
        key_columns: vec![
            "batch_size",
            "input_len",
            "output_len",
            "repeats",
            "spread_pct",
            "simulated_preemptions",
        ],
        ..ComparisonRows::default()
    };
    let mut ttft = (Vec::new(), Vec::new());
    let mut tpot = (Vec::new(), Vec::new());
    let mut e2e = (Vec::new(), Vec::new());
    let mut rejected = 0usize;
    for r in &group.rows {
        let mut preemptions = String::new();
        match kind {
            TableKind::Splitwise => {
                let [p, d, total] = step_times(
                    setup.latency.as_ref(),
                    r.batch_size,
                    r.input_len,
                    r.output_len,
                )?;
                ttft.0.push(p);
                ttft.1.push(r.prefill_s.unwrap_or(f64::NAN));
                tpot.0.push(d);
                tpot.1.push(r.decode_step_s.unwrap_or(f64::NAN));
                e2e.0.push(total);
                e2e.1.push(r.e2e_s.unwrap_or(f64::NAN));
            }
            TableKind::Argonne | TableKind::ArgonneTtft => {
                let records = run_static_batch(
                    setup,
                    BatchSpec {
                        batch_size: r.batch_size,
                        input_len: r.input_len,
                        output_len: r.output_len,
                    },
                    None,
                )?;
                let done = records
                    .iter()
                    .filter(|x| x.status == RequestStatus::Finished);
                let all_finished = records.iter().all(|x| x.status == RequestStatus::Finished);
                if !all_finished {
                    rejected += 1;
                }
                // The batch's time: its latest request (NaN if any was rejected).
                let latest = |f: fn(&RequestRecord) -> f64| {
                    if all_finished {
                        done.clone().map(f).fold(f64::NAN, f64::max)
                    } else {
                        f64::NAN
                    }
                };
                if kind == TableKind::Argonne {
                    e2e.0.push(latest(|x| x.e2e_s));
                    e2e.1.push(r.e2e_s.unwrap_or(f64::NAN));
                } else {
                    ttft.0.push(latest(|x| x.ttft_s));
                    ttft.1.push(r.ttft_s.unwrap_or(f64::NAN));
                }
                preemptions = done.map(|x| x.preemptions).sum::<u32>().to_string();
            }
        }
        rows.keys.push(vec![
            r.batch_size.to_string(),
            r.input_len.to_string(),
            r.output_len.to_string(),
            r.repeats.to_string(),
            format!("{:.1}", 100.0 * r.spread),
            preemptions,
        ]);
    }
    match kind {
        TableKind::Splitwise => {
            rows.metrics.push((Metric::Ttft, ttft.0, ttft.1));
            rows.metrics.push((Metric::Tpot, tpot.0, tpot.1));
            rows.metrics.push((Metric::E2e, e2e.0, e2e.1));
            notes.push(
                "TTFT = prefill of the whole batch, TPOT = mean decode iteration, both from the latency model on the exact shapes; E2E only where token_size ≤ 256 (longer runs stopped early)".into(),
            );
        }
        TableKind::Argonne => {
            rows.metrics.push((Metric::E2e, e2e.0, e2e.1));
            notes.push("E2E = the whole batch's latency; all requests arrive at once and run through the simulated engine".into());
        }
        TableKind::ArgonneTtft => {
            rows.metrics.push((Metric::Ttft, ttft.0, ttft.1));
            notes.push("TTFT = the whole batch's time to its last first token; all requests arrive at once and run through the simulated engine, whose token budget (max-num-batched-tokens) splits the batch's prefill into iterations".into());
        }
    }
    if rejected > 0 {
        notes.push(format!(
            "{rejected} configurations had requests the simulated engine rejects (longer than max_model_len or the whole KV cache)"
        ));
    }
    Ok(Validation {
        name: name.to_owned(),
        kind: match kind {
            TableKind::Argonne | TableKind::ArgonneTtft => ValidationKind::StaticBatch,
            TableKind::Splitwise => ValidationKind::StepTimes,
        },
        source: source.to_owned(),
        deployment: setup.deployment.summary(),
        engine: (kind != TableKind::Splitwise).then(|| setup.engine.clone()),
        num_replicas: 1,
        latency_model: setup.latency.describe(),
        replay: None,
        metrics: rows.reports(),
        throughput: None,
        notes,
        sample: None,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::fixed::FixedLatency;

    #[test]
    fn step_times_average_the_decodes() {
        // Prefill: 1 ms + 200 tokens × 10 µs; each decode: 1 ms + 2 × 100 µs.
        let lat = FixedLatency::from_micros(1000, 10, 100);
        let [p, d, total] = step_times(&lat, 2, 100, 3).unwrap();
        assert!((p - 0.003).abs() < 1e-12, "{p}");
        assert!((d - 0.0012).abs() < 1e-12, "{d}");
        assert!((total - (p + 2.0 * d)).abs() < 1e-12);
        assert!(step_times(&lat, 1, 10, 1).unwrap()[1].is_nan());
    }
}
