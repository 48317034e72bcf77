//! A measured run replayed after the runs its server served before it.
//!
//! Benchmark sweeps often run every point on one server, and their clients build the
//! i-th prompt of every point from the same tokens: vLLM's `bench serve --dataset-name
//! random` makes prompt i a run of consecutive token ids from an offset that depends only
//! on the seed and i (so a longer point's prompt i starts with a shorter point's prompt
//! i), and SGLang's `bench_serving` builds prompt i from the same text at every length.
//! With the prefix cache on, a later point then finds the earlier points' prompts
//! cached. Replaying it alone, on a cold cache, computes prompts the measured server did
//! not.
//!
//! The same holds of sweeps that send one fixed set of prompts at several request rates
//! (vLLM's `benchmark_serving.py` with a ShareGPT sample at a fixed seed): prompt i is
//! then the same prompt in every run.
//!
//! [`sweep_requests`] lays the earlier runs and the measured one out on one timeline, an
//! hour apart, each request carrying prefix ids by its index in its run: block j of
//! prompt i has the same id in every run, so a prompt shares its first blocks with the
//! same-index prompt of every earlier, shorter or longer, run. Only the last run is
//! compared; the others are replayed for the cache they leave.

use super::measured::MeasuredRun;
use super::replay::requests_of;
use crate::engine::RequestRecord;
use crate::error::{Error, Result};
use crate::trace::{Request, DEFAULT_HASH_BLOCK_TOKENS};
use crate::units::SimTime;

/// Simulated time between the starts of consecutive runs of a sweep, s: each run ends
/// long before the next begins (checked by [`check_spacing`]).
pub const SPACING_S: f64 = 3600.0;

/// Ids of earlier runs' requests start at `(k + 1) << EARLIER_ID_SHIFT` for the k-th
/// earlier run, far above any file's own request ids (positions in the file).
const EARLIER_ID_SHIFT: u32 = 40;

/// The first id of a request replayed for its load only (an earlier run's).
pub const FIRST_EARLIER_ID: u64 = 1 << EARLIER_ID_SHIFT;

/// Prefix ids of prompt `index` of its run, `tokens` long: one id per full block of
/// [`DEFAULT_HASH_BLOCK_TOKENS`], the same for the same index and block in every run.
pub fn index_prefix(index: u64, tokens: u32) -> Vec<u64> {
    let blocks = u64::from(tokens / DEFAULT_HASH_BLOCK_TOKENS);
    (0..blocks).map(|j| ((index + 1) << 24) | j).collect()
}

/// Whether `run` is an open loop: each request sent at its own time (recorded,
/// regenerated, or all at once), no client cap holding any back.
fn is_open_loop(run: &MeasuredRun) -> bool {
    run.max_concurrency
        .is_none_or(|c| c as usize >= run.requests.len() + run.load_only.len())
}

/// The requests of `earlier` (in order) and then of `run`, each run starting an hour
/// after the previous one (its requests at their own times from there), prefix ids by
/// index; `run`'s requests keep their ids.
pub fn sweep_requests(earlier: &[MeasuredRun], run: &MeasuredRun) -> Result<Vec<Request>> {
    let mut out = Vec::new();
    for (k, r) in earlier.iter().chain(std::iter::once(run)).enumerate() {
        if !is_open_loop(r) {
            return Err(Error::input(
                &r.source,
                None,
                "replayed after earlier runs (--after), every run must be an open loop (a burst, or requests at their own times, with no client cap below its number of requests): a capped client's sends depend on the server it ran against",
            ));
        }
        let start = SimTime::from_secs_f64(SPACING_S * k as f64);
        let base = if k < earlier.len() {
            (k as u64 + 1) << EARLIER_ID_SHIFT
        } else {
            0
        };
        for (i, mut q) in requests_of(r).into_iter().enumerate() {
            q.prefix_hash_ids = index_prefix(i as u64, q.input_tokens);
            q.hash_block_tokens = DEFAULT_HASH_BLOCK_TOKENS;
            q.arrival = start + q.arrival.saturating_duration_since(SimTime::ZERO);
            q.id += base;
            out.push(q);
        }
    }
    Ok(out)
}

/// Checks that each earlier run of a sweep ended before the next began (`records` of
/// all runs; the measured one, last, may run as long as it ran).
pub fn check_spacing(records: &[RequestRecord]) -> Result<()> {
    for r in records.iter().filter(|r| r.request_id >= FIRST_EARLIER_ID) {
        let k = (r.request_id >> EARLIER_ID_SHIFT) as usize - 1;
        if r.finish_time_s >= SPACING_S * (k as f64 + 1.0) {
            return Err(Error::Config(format!(
                "run {} of the sweep did not finish within {SPACING_S} s of simulated time, so it would overlap the next: a sweep replay needs runs that end",
                k + 1
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::DeploymentRequest;
    use crate::paths::DataPaths;
    use crate::validate::measured::{ArrivalMode, EngineHints, MeasuredRequest, RunFormat, Timing};
    use crate::validate::report::{Metric, ReplayMode};
    use crate::validate::{validate_run, Settings};

    /// A burst of `n` prompts of `tokens` measured in the file `source`.
    fn burst(source: &str, n: u64, tokens: u32) -> MeasuredRun {
        MeasuredRun {
            source: source.into(),
            format: RunFormat::VllmBench,
            requests: (0..n)
                .map(|id| MeasuredRequest {
                    id,
                    arrival_s: 0.0,
                    input_tokens: tokens,
                    output_tokens: 16,
                    ttft_s: 0.2,
                    e2e_s: 0.4,
                    prefix_hash_ids: Vec::new(),
                })
                .collect(),
            itls_s: None,
            arrivals: ArrivalMode::AllAtOnce,
            timing: Timing::Client,
            load_only: Vec::new(),
            client_timeout_s: None,
            max_concurrency: Some(n as u32),
            hints: EngineHints::default(),
            notes: Vec::new(),
            summary: None,
            stated_output_tokens_per_s: None,
        }
    }

    fn settings(earlier: Vec<MeasuredRun>) -> Settings {
        Settings {
            deployment: DeploymentRequest {
                model: Some("meta-llama/Llama-3.1-8B".into()),
                hardware: Some("h100".into()),
                ..DeploymentRequest::default()
            },
            earlier,
            ..Settings::default()
        }
    }

    fn mean(v: &crate::validate::Validation, m: Metric) -> f64 {
        v.metrics
            .iter()
            .find(|r| r.metric == m)
            .unwrap()
            .simulated
            .mean
    }

    #[test]
    fn a_later_point_finds_the_earlier_points_prompts_cached() {
        let paths = DataPaths::builtin();
        let later = burst("ctx2048.json", 8, 2048);
        let alone = validate_run("alone", &later, &settings(Vec::new()), &paths).unwrap();
        let warm = settings(vec![burst("ctx1024.json", 8, 1024)]);
        let after = validate_run("after", &later, &warm, &paths).unwrap();
        assert_eq!(after.replay, Some(ReplayMode::AfterEarlierRuns { runs: 1 }));
        // Only the measured run is compared.
        assert_eq!(after.rows.keys.len(), 8);
        assert!(
            after
                .notes
                .iter()
                .any(|n| n.contains("8192 of 16384 prompt tokens (50.0%)")),
            "{:?}",
            after.notes
        );
        assert!(mean(&after, Metric::Ttft) < 0.8 * mean(&alone, Metric::Ttft));
        // An earlier run of other prompts' lengths still shares by index: a longer
        // earlier run leaves the whole of each shorter prompt but its last block cached.
        let longer = settings(vec![burst("ctx4096.json", 8, 4096)]);
        let v = validate_run("after-longer", &later, &longer, &paths).unwrap();
        assert!(
            v.notes.iter().any(|n| n.contains("16256 of 16384")),
            "{:?}",
            v.notes
        );
    }

    #[test]
    fn a_sweep_replay_refuses_capped_clients_and_keeps_open_loop_times() {
        let paths = DataPaths::builtin();
        // A client cap below the run's requests: its sends depended on the server.
        let mut capped = burst("capped.json", 8, 1024);
        capped.max_concurrency = Some(4);
        let later = burst("b.json", 8, 2048);
        let err = validate_run("x", &later, &settings(vec![capped.clone()]), &paths)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("capped.json:") && err.contains("--after"),
            "{err}"
        );
        let earlier = settings(vec![burst("a.json", 8, 512)]);
        let err = validate_run("x", &capped, &earlier, &paths)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("capped.json:"), "{err}");
        // Paced runs keep their own times, an hour after the previous run's start.
        let mut paced = burst("paced.json", 4, 1024);
        paced.arrivals = ArrivalMode::Recorded;
        paced.max_concurrency = None;
        for (i, r) in paced.requests.iter_mut().enumerate() {
            r.arrival_s = 0.5 * i as f64;
        }
        let reqs = sweep_requests(std::slice::from_ref(&paced), &paced).unwrap();
        let at: Vec<f64> = reqs.iter().map(|q| q.arrival.as_secs_f64()).collect();
        assert_eq!(at, [0.0, 0.5, 1.0, 1.5, 3600.0, 3600.5, 3601.0, 3601.5]);
        assert_eq!(reqs[4].id, 0);
        assert!(reqs[0].id >= FIRST_EARLIER_ID);
        assert_eq!(reqs[1].prefix_hash_ids, reqs[5].prefix_hash_ids);
    }

    #[test]
    fn same_index_prompts_share_their_common_blocks() {
        let short = index_prefix(3, 1024);
        let long = index_prefix(3, 2048 + 15);
        assert_eq!(short.len(), 64);
        assert_eq!(long.len(), 128);
        assert_eq!(&long[..64], &short[..]);
        // Another index shares nothing.
        let other = index_prefix(4, 1024);
        assert!(other.iter().all(|h| !short.contains(h)));
    }

    #[test]
    fn only_an_earlier_run_must_end_before_the_next_begins() {
        let rec = |request_id: u64, finish_time_s: f64| crate::engine::RequestRecord {
            request_id,
            replica: 0,
            arrival_time_s: 0.0,
            input_tokens: 16,
            output_tokens: 2,
            scheduled_time_s: 0.0,
            first_token_time_s: 0.1,
            finish_time_s,
            ttft_s: 0.1,
            tpot_s: 0.1,
            e2e_s: finish_time_s,
            queue_s: 0.0,
            preemptions: 0,
            prefix_hit_tokens: 0,
            status: crate::engine::RequestStatus::Finished,
            attempts: 1,
        };
        // The measured run (own ids) may outlast the spacing; the first earlier run
        // (ids from FIRST_EARLIER_ID) may not reach the second run's start.
        assert!(check_spacing(&[rec(FIRST_EARLIER_ID, 100.0), rec(0, 2.0 * SPACING_S)]).is_ok());
        let err = check_spacing(&[rec(FIRST_EARLIER_ID + 3, SPACING_S + 1.0)]).unwrap_err();
        assert!(err.to_string().contains("run 1 of the sweep"), "{err}");
    }
}
