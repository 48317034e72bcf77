//! Engine tests: hand-computed scenarios and property tests of the invariants.

use super::*;
use crate::engine::{EngineConfig, PreemptionMode, Replica, SchedulerKind};
use crate::perf::fixed::FixedLatency;
use crate::units::SimTime;
use proptest::prelude::*;
use std::sync::Arc;

mod autoscale;
mod clients;
mod cluster;
mod failures;
mod incremental;
mod sglang;

fn req(id: u64, arrival_us: u64, input: u32, output: u32) -> Request {
    Request {
        id,
        arrival: SimTime::from_nanos(arrival_us * 1000),
        input_tokens: input,
        output_tokens: output,
        session_id: None,
        prefix_hash_ids: Vec::new(),
        hash_block_tokens: 16,
    }
}

struct Collect(Vec<RequestRecord>);
impl RequestSink for Collect {
    fn on_tokens(&mut self, _: &crate::engine::TokenEvent) {}
    fn on_request_end(&mut self, r: RequestRecord) {
        self.0.push(r);
    }
}

/// `x` milliseconds.
fn millis(x: f64) -> SimDuration {
    SimDuration::from_secs_f64(x * 1e-3)
}

/// Whether `a` seconds is `b_ms` milliseconds (to a nanosecond).
fn close(a: f64, b_ms: f64) -> bool {
    (a - b_ms * 1e-3).abs() < 1e-9
}

/// Run `reqs` open-loop to the end; check that nothing is left on any replica and no
/// KV is held; the records sorted by request id.
fn run_to_end(sim: &mut Simulation, reqs: Vec<Request>) -> (Vec<RequestRecord>, RunStats) {
    let mut sink = Collect(Vec::new());
    let src = RequestSource::Open(Box::new(reqs.into_iter().map(Ok)));
    let stats = sim.run(src, &mut sink, &mut NoObserver).unwrap();
    assert_eq!(sim.num_outstanding(), 0);
    for r in sim.replicas() {
        assert_eq!(r.kv_used_blocks(), 0, "KV leaked");
    }
    let mut recs = sink.0;
    recs.sort_by_key(|r| r.request_id);
    (recs, stats)
}

/// Checks invariants at every step: time order, budgets, KV accounting.
struct Checker {
    last: SimTime,
    max_tokens: u64,
    max_seqs: usize,
    max_batch_seqs: usize,
    check_budget: bool,
    steps: u64,
}
impl Observer for Checker {
    fn on_advance(&mut self, from: SimTime, to: SimTime, replicas: &[Replica]) {
        assert!(from <= to && self.last <= from, "time went backwards");
        self.last = to;
        for r in replicas {
            r.check_invariants();
        }
    }
    fn on_step_start(&mut self, now: SimTime, d: SimDuration, r: &Replica) {
        assert!(now >= self.last);
        assert!(d > SimDuration::ZERO);
        r.check_invariants();
        if self.check_budget {
            assert!(
                r.tokens_in_newest_batch() <= self.max_tokens,
                "token budget exceeded"
            );
        }
        assert!(r.num_running() <= self.max_seqs, "max_num_seqs exceeded");
        assert!(
            r.seqs_in_newest_batch() as usize <= self.max_batch_seqs,
            "a batch over max_num_seqs"
        );
        self.steps += 1;
        assert!(self.steps < 1_000_000, "run did not end: starvation?");
    }
}

fn run(cfg: EngineConfig, lat: FixedLatency, reqs: Vec<Request>) -> Vec<RequestRecord> {
    let mut checker = Checker {
        last: SimTime::ZERO,
        max_tokens: u64::from(cfg.max_num_batched_tokens),
        max_seqs: cfg.max_running() as usize,
        max_batch_seqs: cfg.max_num_seqs as usize,
        check_budget: cfg.scheduler != SchedulerKind::Static,
        steps: 0,
    };
    let replica = Replica::new(0, cfg, Arc::new(lat)).unwrap();
    let mut sim = Simulation::new(vec![replica], Router::default()).unwrap();
    let mut sink = Collect(Vec::new());
    let src = RequestSource::Open(Box::new(reqs.into_iter().map(Ok)));
    sim.run(src, &mut sink, &mut checker).unwrap();
    sink.0
}

fn ms(x: f64) -> f64 {
    (x * 1e6).round() / 1e3
}

#[test]
fn v1_two_requests_by_hand() {
    // Step cost: 1 ms + 10 µs per prefill token + 100 µs per decode.
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    // A: t=0, prompt 100, 3 tokens. B: t=1 ms, prompt 50, 2 tokens.
    // [0, 2.0]   A prefill 100          = 1 + 1.0      → A token 1 at 2.0
    // [2.0, 3.6] A decode + B prefill 50 = 1 + 0.1 + 0.5 → A token 2, B token 1 at 3.6
    // [3.6, 4.8] A decode + B decode    = 1 + 0.2      → A token 3, B token 2 at 4.8
    let recs = run(cfg, lat, vec![req(1, 0, 100, 3), req(2, 1000, 50, 2)]);
    assert_eq!(recs.len(), 2);
    let a = recs.iter().find(|r| r.request_id == 1).unwrap();
    let b = recs.iter().find(|r| r.request_id == 2).unwrap();
    assert_eq!((ms(a.ttft_s), ms(a.e2e_s), ms(a.tpot_s)), (2.0, 4.8, 1.4));
    assert_eq!((ms(b.ttft_s), ms(b.e2e_s), ms(b.tpot_s)), (2.6, 3.8, 1.2));
    assert_eq!(ms(b.queue_s), 1.0);
}

#[test]
fn v1_chunks_long_prompts_by_the_token_budget() {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    cfg.max_num_batched_tokens = 64;
    // 100-token prompt: chunk 64 (1.64 ms) then 36 (1.36 ms) → first token at 3.0 ms;
    // then one decode (1.1 ms) → 4.1 ms.
    let recs = run(cfg, lat, vec![req(7, 0, 100, 2)]);
    assert_eq!((ms(recs[0].ttft_s), ms(recs[0].e2e_s)), (3.0, 4.1));
}

#[test]
fn v0_prefill_pauses_decodes() {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV0, 1000, 4096);
    // A: prompt 100, 3 tokens at 0; B: prompt 50, 2 tokens at 1 ms.
    // [0, 2.0]   A prefill 100 (1 + 1.0)        → A token 1
    // [2.0, 3.5] B prefill 50 alone (1 + 0.5)   → B token 1 (TTFT 2.5 after its 1 ms arrival)
    // [3.5, 4.7] A + B decode (1 + 0.2)         → A token 2, B token 2 (B done: e2e 3.7)
    // [4.7, 5.8] A decode (1 + 0.1)             → A token 3 (e2e 5.8)
    let recs = run(cfg, lat, vec![req(1, 0, 100, 3), req(2, 1000, 50, 2)]);
    let a = recs.iter().find(|r| r.request_id == 1).unwrap();
    let b = recs.iter().find(|r| r.request_id == 2).unwrap();
    assert_eq!((ms(a.ttft_s), ms(a.e2e_s)), (2.0, 5.8));
    assert_eq!((ms(b.ttft_s), ms(b.e2e_s)), (2.5, 3.7));
}

#[test]
fn static_batch_waits_for_the_whole_batch() {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let cfg = EngineConfig::defaults_for(SchedulerKind::Static, 1000, 4096);
    // A (prompt 100, 3 tokens) starts alone at 0: prefill 2.0, decodes 1.1 each → 4.2.
    // B (arrives at 1 ms) waits for the batch to end: prefill 50 from 4.2 → 5.7,
    // decode → 6.8.
    let recs = run(cfg, lat, vec![req(1, 0, 100, 3), req(2, 1000, 50, 2)]);
    let b = recs.iter().find(|r| r.request_id == 2).unwrap();
    assert_eq!((ms(b.ttft_s), ms(b.e2e_s), ms(b.queue_s)), (4.7, 5.8, 3.2));
}

#[test]
fn multi_step_streams_tokens_in_groups() {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV0, 1000, 4096);
    cfg.num_scheduler_steps = 4;
    // prefill 10 tokens: 1.1 ms → t1. Then a group of 4 decode steps of 1.1 ms, but only
    // 2 tokens remain: the group runs 2 iterations (2.2 ms) → finish at 3.3 ms.
    let recs = run(cfg, lat, vec![req(1, 0, 10, 3)]);
    assert_eq!((ms(recs[0].ttft_s), ms(recs[0].e2e_s)), (1.1, 3.3));
}

/// A latency model charging 2 ms for an iteration that the host schedules and 1 ms for
/// a multi-step group's follow-on iteration.
struct FollowOnCheap;
impl crate::perf::LatencyModel for FollowOnCheap {
    fn step_time(&self, shape: &crate::perf::StepShape) -> SimDuration {
        crate::perf::step_duration(if shape.follow_on { 1e-3 } else { 2e-3 })
    }
    fn describe(&self) -> String {
        "`follow-on iterations cost half`".into()
    }
}

/// The iterations of a multi-step group after its first reach the latency model marked
/// as follow-ons (their host work is the first's); single-step decoding marks none.
#[test]
fn multi_step_follow_on_iterations_are_marked() {
    let e2e_ms = |steps: u32| {
        let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV0, 1000, 4096);
        cfg.num_scheduler_steps = steps;
        let replica = Replica::new(0, cfg, Arc::new(FollowOnCheap)).unwrap();
        let mut sim = Simulation::new(vec![replica], Router::default()).unwrap();
        let (recs, _) = run_to_end(&mut sim, vec![req(1, 0, 10, 9)]);
        ms(recs[0].e2e_s)
    };
    // Prefill (2 ms), then 8 decodes: one group of 4 (2 + 3 × 1 ms) and one of 4.
    assert_eq!(e2e_ms(4), 2.0 + 2.0 * (2.0 + 3.0));
    // Single-step: every iteration scheduled.
    assert_eq!(e2e_ms(1), 2.0 * 9.0);
}

/// The end status of each of `reqs`, in order, run on `cfg`.
fn statuses(cfg: EngineConfig, reqs: Vec<Request>) -> Vec<RequestStatus> {
    let ids: Vec<u64> = reqs.iter().map(|r| r.id).collect();
    let recs = run(cfg, FixedLatency::from_micros(1000, 10, 100), reqs);
    let status = |id| recs.iter().find(|r| r.request_id == id).unwrap().status;
    ids.into_iter().map(status).collect()
}

#[test]
fn rejects_requests_that_can_never_fit() {
    use RequestStatus::{Finished, Rejected};
    // 4 blocks of 16 tokens = 64 tokens of KV; max_model_len 100: 110 tokens are over
    // max_model_len, 69 KV tokens over the cache.
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 4, 100);
    cfg.max_num_batched_tokens = 128;
    let reqs = vec![req(1, 0, 90, 20), req(2, 0, 60, 10), req(3, 0, 30, 10)];
    assert_eq!(statuses(cfg, reqs), [Rejected, Rejected, Finished]);
    // TensorRT-LLM without chunked context: a 40-token budget rejects a 50-token
    // prompt on arrival and runs a 40-token one whole once nothing else is scheduled.
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 100, 1000);
    cfg.enable_chunked_prefill = false;
    cfg.long_prompts = crate::engine::LongPrompts::Reject;
    cfg.max_num_batched_tokens = 40;
    let reqs = vec![req(1, 0, 50, 5), req(2, 0, 40, 5), req(3, 0, 10, 5)];
    assert_eq!(statuses(cfg, reqs), [Rejected, Finished, Finished]);
}

/// A latency model that breaks (NaN, negative or zero seconds) once a batch holds
/// `from_seqs` sequences.
struct Breaks {
    from_seqs: u32,
    broken_s: f64,
}
impl crate::perf::LatencyModel for Breaks {
    fn step_time(&self, shape: &crate::perf::StepShape) -> SimDuration {
        crate::perf::step_duration(if shape.num_seqs() >= self.from_seqs {
            self.broken_s
        } else {
            1e-3
        })
    }
    fn describe(&self) -> String {
        "`breaks at two sequences`".into()
    }
}

#[test]
fn an_invalid_iteration_time_ends_the_run_naming_the_model_and_the_batch() {
    for broken_s in [f64::NAN, f64::INFINITY, -1e-3, 0.0] {
        let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
        let model = Breaks {
            from_seqs: 2,
            broken_s,
        };
        let replica = Replica::new(0, cfg, Arc::new(model)).unwrap();
        let mut sim = Simulation::new(vec![replica], Router::default()).unwrap();
        let mut sink = Collect(Vec::new());
        // The first request runs alone for a while; the second joins its batch.
        let reqs = vec![req(1, 0, 100, 50), req(2, 5000, 30, 5)];
        let src = RequestSource::Open(Box::new(reqs.into_iter().map(Ok)));
        let err = sim.run(src, &mut sink, &mut NoObserver).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::InvalidStepTime { .. }), "{msg}");
        assert!(msg.contains("`breaks at two sequences`"), "{msg}");
        assert!(
            msg.contains(
                "1 prefill chunks (30 new tokens; contexts before them [0]) and 1 decodes"
            ),
            "{msg}"
        );
    }
}

#[test]
fn preemption_recomputes_and_everyone_finishes() {
    let lat = FixedLatency::from_micros(100, 1, 10);
    // 8 blocks × 4 tokens = 32 tokens of KV for three 8-token prompts generating 8 each.
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 8, 64);
    cfg.block_size = 4;
    let recs = run(cfg, lat, (0..3).map(|i| req(i, 0, 8, 8)).collect());
    assert!(recs.iter().all(|r| r.status == RequestStatus::Finished));
    assert!(
        recs.iter().map(|r| r.preemptions).sum::<u32>() > 0,
        "KV pressure must preempt"
    );
}

use crate::engine::RequestStatus;

fn arb_scheduler() -> impl Strategy<Value = (SchedulerKind, bool, u32)> {
    prop_oneof![
        Just((SchedulerKind::VllmV1, true, 1)),
        Just((SchedulerKind::VllmV1, false, 1)),
        Just((SchedulerKind::VllmV0, false, 1)),
        Just((SchedulerKind::VllmV0, true, 1)),
        Just((SchedulerKind::VllmV0, false, 4)),
        Just((SchedulerKind::Sglang, true, 1)),
        Just((SchedulerKind::Sglang, false, 1)),
        Just((SchedulerKind::Orca, false, 1)),
        Just((SchedulerKind::Static, false, 1)),
    ]
}

fn arb_trace() -> impl Strategy<Value = Vec<Request>> {
    proptest::collection::vec((0u64..5_000, 1u32..120, 1u32..40, 0u64..4), 1..40).prop_map(|v| {
        let mut t = 0;
        v.into_iter()
            .enumerate()
            .map(|(i, (gap, inp, out, session))| {
                t += gap;
                let mut r = req(i as u64, t, inp, out);
                if session > 0 {
                    r.session_id = Some(session);
                }
                r
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_request_ends_exactly_once(
        trace in arb_trace(),
        (kind, chunked, steps) in arb_scheduler(),
        blocks in 3u32..40,
        max_seqs in 1u32..8,
        budget in 128u32..512,
        swap in any::<bool>(),
        prefix in any::<bool>(),
        reserve in any::<bool>(),
        variant in any::<bool>(),
    ) {
        let mut cfg = EngineConfig::defaults_for(kind, blocks, 200);
        if reserve && kind == SchedulerKind::Sglang {
            cfg.kv_reservation = Some(sglang::RESERVE);
        }
        // SGLang's mixed chunks; TensorRT-LLM's budget that turns long prompts away.
        cfg.enable_mixed_chunk = variant && kind == SchedulerKind::Sglang;
        let capped = variant && !chunked && kind == SchedulerKind::VllmV1;
        if capped {
            cfg.long_prompts = crate::engine::LongPrompts::Reject;
        }
        cfg.block_size = 4;
        cfg.max_num_seqs = max_seqs;
        cfg.enable_chunked_prefill = chunked;
        cfg.num_scheduler_steps = steps;
        cfg.enable_prefix_caching = prefix;
        cfg.max_num_batched_tokens = match (capped, chunked) {
            (true, _) => budget.min(140),
            (false, true) => budget,
            (false, false) => budget.max(200),
        };
        if swap {
            cfg.preemption_mode = PreemptionMode::Swap;
            cfg.kv_bytes_per_token = 1000.0;
            cfg.swap_bandwidth_bytes_per_s = 1e9;
        }
        let lat = FixedLatency::from_micros(50, 1, 5);
        let n = trace.len();
        let arrivals: Vec<(u64, f64)> = trace.iter().map(|r| (r.id, r.arrival.as_secs_f64())).collect();
        let recs = run(cfg.clone(), lat, trace.clone());
        prop_assert_eq!(recs.len(), n);
        let mut ids: Vec<u64> = recs.iter().map(|r| r.request_id).collect();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), n, "a request ended twice or never");
        for r in &recs {
            let arrival = arrivals.iter().find(|a| a.0 == r.request_id).unwrap().1;
            prop_assert!((r.arrival_time_s - arrival).abs() < 1e-9);
            if r.status == RequestStatus::Finished {
                prop_assert!(r.scheduled_time_s >= r.arrival_time_s);
                prop_assert!(r.first_token_time_s >= r.scheduled_time_s);
                prop_assert!(r.finish_time_s >= r.first_token_time_s);
            }
        }
        // Same inputs, same outputs.
        let again = run(cfg, lat, trace);
        prop_assert_eq!(format!("{recs:?}"), format!("{again:?}"));
    }
}

/// Records the most requests ever outstanding at a step start.
struct MaxOutstanding(usize);
impl Observer for MaxOutstanding {
    fn on_step_start(&mut self, _: SimTime, _: SimDuration, r: &Replica) {
        self.0 = self.0.max(r.num_outstanding());
    }
}

/// Runs `reqs` through one replica from the source `make` builds: the records by id,
/// the most requests ever outstanding at a step start, and the requests taken in.
fn run_source<'a>(
    reqs: &'a [Request],
    make: impl FnOnce(Box<dyn Iterator<Item = crate::error::Result<Request>> + 'a>) -> RequestSource<'a>,
) -> (Vec<RequestRecord>, usize, u64) {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    let replica = Replica::new(0, cfg, Arc::new(lat)).unwrap();
    let mut sim = Simulation::new(vec![replica], Router::default()).unwrap();
    let mut sink = Collect(Vec::new());
    let mut obs = MaxOutstanding(0);
    let it = Box::new(reqs.iter().cloned().map(Ok));
    let stats = sim.run(make(it), &mut sink, &mut obs).unwrap();
    sink.0.sort_by_key(|r| r.request_id);
    (sink.0, obs.0, stats.requests_in)
}

#[test]
fn closed_loop_keeps_exactly_concurrency_requests_in_flight() {
    let reqs: Vec<Request> = (0..50)
        .map(|i| req(i, 0, 20 + i as u32, 5 + (i % 7) as u32))
        .collect();
    let (records, most, taken) = run_source(&reqs, |requests| RequestSource::ClosedLoop {
        requests,
        concurrency: 3,
    });
    assert_eq!(records.len(), 50);
    assert_eq!(taken, 50);
    assert_eq!(
        most, 3,
        "closed loop must hold exactly 3 requests in flight"
    );
}

/// A capped open loop is the open loop when the cap never binds, the closed loop when
/// every request arrives at once, and in between never holds more than the cap in
/// flight nor sends a request before its time.
#[test]
fn a_capped_open_loop_sends_at_its_times_within_the_cap() {
    let spaced: Vec<Request> = (0..30).map(|i| req(i, i * 50_000, 40, 6)).collect();
    let (open, ..) = run_source(&spaced, RequestSource::Open);
    let (capped, ..) = run_source(&spaced, |requests| RequestSource::CappedOpen {
        requests,
        concurrency: 30,
    });
    assert_eq!(open, capped, "a cap that never binds changes nothing");

    let burst: Vec<Request> = (0..30).map(|i| req(i, 0, 40 + i as u32, 6)).collect();
    let (closed, ..) = run_source(&burst, |requests| RequestSource::ClosedLoop {
        requests,
        concurrency: 4,
    });
    let (capped, ..) = run_source(&burst, |requests| RequestSource::CappedOpen {
        requests,
        concurrency: 4,
    });
    assert_eq!(
        closed, capped,
        "at time zero the capped loop is the closed loop"
    );

    // Arrivals every 2 ms, each request ~8 ms of work: the cap of 2 binds.
    let dense: Vec<Request> = (0..40).map(|i| req(i, i * 2_000, 100, 8)).collect();
    let (capped, most, _) = run_source(&dense, |requests| RequestSource::CappedOpen {
        requests,
        concurrency: 2,
    });
    assert_eq!(capped.len(), 40);
    assert!(most <= 2, "{most} in flight");
    let sent: Vec<f64> = capped.iter().map(|r| r.arrival_time_s).collect();
    for (r, q) in capped.iter().zip(&dense) {
        assert!(r.arrival_time_s + 1e-12 >= q.arrival.as_secs_f64());
    }
    assert!(sent.windows(2).all(|w| w[0] <= w[1]), "sent in order");
    assert!(
        capped.last().unwrap().arrival_time_s > dense.last().unwrap().arrival.as_secs_f64(),
        "the cap holds requests back"
    );
}

/// With asynchronous scheduling a step that follows another back to back admits only
/// the arrivals before the previous step started. When the previous step ended the
/// last request in flight, nothing follows back to back: a closed loop's next request
/// (arriving at that very instant) must start at once, not stall the run.
#[test]
fn async_closed_loop_admits_the_next_request_when_the_engine_empties() {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    cfg.async_scheduling = true;
    for concurrency in [1, 2] {
        let replica = Replica::new(0, cfg.clone(), Arc::new(lat)).unwrap();
        let mut sim = Simulation::new(vec![replica], Router::default()).unwrap();
        let mut sink = Collect(Vec::new());
        let reqs: Vec<Request> = (0..6).map(|i| req(i, 0, 100, 20)).collect();
        let src = RequestSource::ClosedLoop {
            requests: Box::new(reqs.into_iter().map(Ok)),
            concurrency,
        };
        sim.run(src, &mut sink, &mut NoObserver).unwrap();
        assert_eq!(sink.0.len(), 6);
        // Identical waves: every TTFT is one prefill step, 1 ms + c × 100 × 10 µs.
        let want = 0.001 + f64::from(concurrency) * 0.001;
        for r in &sink.0 {
            assert!(
                (r.ttft_s - want).abs() < 1e-9,
                "c={concurrency}: {}",
                r.ttft_s
            );
        }
    }
}

#[test]
fn an_iteration_limit_ends_the_run_with_an_error() {
    // One request of 10 output tokens: a prefill and 9 decodes, 10 iterations.
    let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1024, 4096);
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let sim = |max: Option<u64>| {
        let replica = Replica::new(0, cfg.clone(), Arc::new(lat)).unwrap();
        let mut sim = Simulation::new(vec![replica], Router::default()).unwrap();
        if let Some(m) = max {
            sim = sim.with_max_iterations(m);
        }
        let src = RequestSource::Open(Box::new(std::iter::once(Ok(req(0, 0, 100, 10)))));
        sim.run(src, &mut Collect(Vec::new()), &mut NoObserver)
    };
    assert!(sim(None).is_ok());
    assert!(sim(Some(10)).is_ok());
    match sim(Some(4)) {
        Err(Error::IterationLimit {
            iterations,
            outstanding,
            ..
        }) => assert_eq!((iterations, outstanding), (5, 1)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn async_scheduling_defers_a_request_that_arrives_mid_step_by_one_step() {
    // As `v1_two_requests_by_hand`, but iteration k+1 is decided when k starts: B
    // (arrived at 1 ms, during A's prefill) misses the step decided at 0 and the one
    // decided at 2.0 ms; it first runs in the iteration decided at 3.1 ms.
    // [0, 2.0]   A prefill 100                     → A token 1 at 2.0
    // [2.0, 3.1] A decode (decided at 0: B unseen)  → A token 2 at 3.1
    // [3.1, 4.7] A decode + B prefill 50 (decided at 2.0, B seen) → A done, B token 1
    // [4.7, 5.8] B decode                          → B token 2 at 5.8
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    cfg.async_scheduling = true;
    let recs = run(cfg, lat, vec![req(1, 0, 100, 3), req(2, 1000, 50, 2)]);
    let a = recs.iter().find(|r| r.request_id == 1).unwrap();
    let b = recs.iter().find(|r| r.request_id == 2).unwrap();
    assert_eq!((ms(a.ttft_s), ms(a.e2e_s)), (2.0, 4.7));
    assert_eq!((ms(b.ttft_s), ms(b.e2e_s)), (3.7, 4.8));
}

/// An API server taking `request_us + per_token_us × prompt` per request in and
/// `out_us` per token out, with `handlers` handlers.
fn api_server(
    request_us: f64,
    per_token_us: f64,
    out_us: f64,
    handlers: u32,
) -> crate::stack::ApiServer {
    crate::stack::ApiServer {
        request_us,
        per_prompt_token_us: per_token_us,
        per_token_out_us: out_us,
        handlers,
        source: String::new(),
        fitted_on: Vec::new(),
        prior_request_us: 0.0,
    }
}

/// One replica of `cfg` timed by `lat`, behind `api`.
fn behind_api_server(
    cfg: EngineConfig,
    lat: FixedLatency,
    api: crate::stack::ApiServer,
) -> Simulation {
    let replica = Replica::new(0, cfg, Arc::new(lat)).unwrap();
    Simulation::new(vec![replica], Router::default())
        .unwrap()
        .with_api_server(&api)
}

#[test]
fn api_server_shifts_ttft_and_e2e_but_not_tpot() {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    let reqs = vec![req(1, 0, 100, 3), req(2, 1000, 50, 2)];
    let plain = run(cfg.clone(), lat, reqs.clone());
    let mut sim = behind_api_server(cfg, lat, api_server(200.0, 2.0, 300.0, 0));
    let mut sink = Collect(Vec::new());
    let src = RequestSource::Open(Box::new(reqs.into_iter().map(Ok)));
    sim.run(src, &mut sink, &mut NoObserver).unwrap();
    for p in &plain {
        let c = sink
            .0
            .iter()
            .find(|r| r.request_id == p.request_id)
            .unwrap();
        // A: in 200 + 200 µs; B: in 200 + 100 µs (it then waits less: A's prefill
        // now ends at 2.4 ms, B arrives at 1.3 ms). Out: 300 µs.
        let ingress = (200.0 + 2.0 * f64::from(p.input_tokens)) * 1e-6;
        assert!((c.arrival_time_s - p.arrival_time_s).abs() < 1e-12);
        assert!(c.ttft_s >= ingress + 300e-6, "{c:?}");
        assert!((c.tpot_s - p.tpot_s).abs() < 1e-12 || p.request_id == 2);
    }
    // A alone in front: exactly shifted by its ingress and egress.
    let a = sink.0.iter().find(|r| r.request_id == 1).unwrap();
    let pa = plain.iter().find(|r| r.request_id == 1).unwrap();
    assert!((a.ttft_s - pa.ttft_s - (400e-6 + 300e-6)).abs() < 1e-9);
}

/// A closed loop of four sends all four at once: with one handler of 1 ms each they
/// reach the engine 1, 2, 3 and 4 ms later, and each client's TTFT counts its wait.
/// Every request ends once, and the next wave is sent as the previous one ends.
#[test]
fn a_closed_loop_burst_queues_for_the_api_servers_handler() {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    let mut sim = behind_api_server(cfg, lat, api_server(1000.0, 0.0, 0.0, 1));
    let mut sink = Collect(Vec::new());
    let reqs: Vec<Request> = (0..8).map(|i| req(i, 0, 10, 2)).collect();
    let src = RequestSource::ClosedLoop {
        requests: Box::new(reqs.into_iter().map(Ok)),
        concurrency: 4,
    };
    sim.run(src, &mut sink, &mut NoObserver).unwrap();
    let mut ids: Vec<u64> = sink.0.iter().map(|r| r.request_id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..8).collect::<Vec<_>>());
    let first: Vec<&RequestRecord> = sink.0.iter().filter(|r| r.request_id < 4).collect();
    // Sent at 0; the k-th (0-based) waits k ms and is handled for 1 ms.
    for r in &first {
        assert!(r.arrival_time_s.abs() < 1e-12, "{r:?}");
        let through = 1e-3 * (r.request_id + 1) as f64;
        assert!(r.ttft_s > through, "{r:?}");
    }
    let ttft = |id: u64| first.iter().find(|r| r.request_id == id).unwrap().ttft_s;
    assert!(ttft(3) > ttft(0) + 2.5e-3, "{} vs {}", ttft(3), ttft(0));
    // The second wave is sent as the first ends, never before.
    let first_end = first
        .iter()
        .map(|r| r.arrival_time_s + r.e2e_s)
        .fold(f64::INFINITY, f64::min);
    for r in sink.0.iter().filter(|r| r.request_id >= 4) {
        assert!(r.arrival_time_s >= first_end - 1e-12, "{r:?}");
    }
}

/// One request per ms into a replica that serves one at a time (each takes
/// about 1 ms prefill + 40 ms decode): clients waiting 100 ms give up on all but
/// the first few, which end exactly once, with a `timed_out` record at their
/// deadline, and free their KV.
#[test]
fn client_timeouts_abort_the_requests_that_wait_too_long() {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    cfg.max_num_seqs = 1;
    let replica = Replica::new(0, cfg, Arc::new(lat)).unwrap();
    let mut sim = Simulation::new(vec![replica], Router::default())
        .unwrap()
        .with_client_timeout(SimDuration::from_millis(100));
    let mut sink = Collect(Vec::new());
    let reqs: Vec<Request> = (0..20).map(|i| req(i, i * 1000, 20, 40)).collect();
    let src = RequestSource::Open(Box::new(reqs.into_iter().map(Ok)));
    let stats = sim.run(src, &mut sink, &mut NoObserver).unwrap();
    let done = sink
        .0
        .iter()
        .filter(|r| r.status == RequestStatus::Finished)
        .count() as u64;
    assert!((2..20).contains(&done), "{done} finished");
    let mut ids: Vec<u64> = sink.0.iter().map(|r| r.request_id).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..20).collect::<Vec<_>>(),
        "every request ends exactly once"
    );
    assert_eq!(done + stats.timed_out, 20);
    for r in &sink.0 {
        let e2e_s = r.finish_time_s - r.arrival_time_s;
        match r.status {
            RequestStatus::Finished => assert!(e2e_s <= 0.1 + 1e-9, "beat its deadline"),
            RequestStatus::TimedOut => {
                assert!((e2e_s - 0.1).abs() < 1e-9, "ends at its deadline: {r:?}");
                assert!(r.e2e_s.is_nan() && r.attempts == 1);
            }
            s => panic!("unexpected {s:?}"),
        }
    }
    assert_eq!(sim.num_outstanding(), 0);
    assert_eq!(sim.replicas()[0].kv_used_blocks(), 0);
}
