//! Engine tests: hand-computed scenarios and property tests of the invariants.

use super::*;
use crate::engine::{EngineConfig, PreemptionMode, Replica, SchedulerKind};
use crate::perf::fixed::FixedLatency;
use crate::units::SimTime;
use proptest::prelude::*;
use std::sync::Arc;

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

/// Checks invariants at every step: time order, budgets, KV accounting.
struct Checker {
    last: SimTime,
    max_tokens: u64,
    max_seqs: usize,
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
        self.steps += 1;
        assert!(self.steps < 1_000_000, "run did not end: starvation?");
    }
}

fn run(cfg: EngineConfig, lat: FixedLatency, reqs: Vec<Request>) -> Vec<RequestRecord> {
    let mut checker = Checker {
        last: SimTime::ZERO,
        max_tokens: u64::from(cfg.max_num_batched_tokens),
        max_seqs: cfg.max_num_seqs as usize,
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

#[test]
fn rejects_requests_that_can_never_fit() {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    // 4 blocks of 16 tokens = 64 tokens of KV; max_model_len 100.
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 4, 100);
    cfg.max_num_batched_tokens = 128;
    let recs = run(
        cfg,
        lat,
        vec![req(1, 0, 90, 20), req(2, 0, 60, 10), req(3, 0, 30, 10)],
    );
    let status = |id| recs.iter().find(|r| r.request_id == id).unwrap().status;
    assert_eq!(status(1), RequestStatus::Rejected); // 110 > max_model_len
    assert_eq!(status(2), RequestStatus::Rejected); // 69 KV tokens > 64
    assert_eq!(status(3), RequestStatus::Finished);
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
    ) {
        let mut cfg = EngineConfig::defaults_for(kind, blocks, 200);
        cfg.block_size = 4;
        cfg.max_num_seqs = max_seqs;
        cfg.enable_chunked_prefill = chunked;
        cfg.num_scheduler_steps = steps;
        cfg.enable_prefix_caching = prefix;
        cfg.max_num_batched_tokens = if chunked { budget } else { budget.max(200) };
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

#[test]
fn closed_loop_keeps_exactly_concurrency_requests_in_flight() {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    let replica = Replica::new(0, cfg, Arc::new(lat)).unwrap();
    let mut sim = Simulation::new(vec![replica], Router::default()).unwrap();
    let mut sink = Collect(Vec::new());
    let mut obs = MaxOutstanding(0);
    let reqs: Vec<Request> = (0..50)
        .map(|i| req(i, 0, 20 + i as u32, 5 + (i % 7) as u32))
        .collect();
    let src = RequestSource::ClosedLoop {
        requests: Box::new(reqs.into_iter().map(Ok)),
        concurrency: 3,
    };
    let stats = sim.run(src, &mut sink, &mut obs).unwrap();
    assert_eq!(sink.0.len(), 50);
    assert_eq!(stats.requests_in, 50);
    assert_eq!(
        obs.0, 3,
        "closed loop must hold exactly 3 requests in flight"
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

fn disaggregated(prefill: u32, decode: u32, cfg: &EngineConfig, lat: FixedLatency) -> Simulation {
    use crate::engine::ReplicaRole;
    let mut replicas = Vec::new();
    for i in 0..prefill + decode {
        let role = if i < prefill {
            ReplicaRole::Prefill
        } else {
            ReplicaRole::Decode
        };
        replicas.push(
            Replica::new(i, cfg.clone(), Arc::new(lat))
                .unwrap()
                .with_role(role),
        );
    }
    Simulation::new(replicas, Router::default()).unwrap()
}

fn run_sim(sim: &mut Simulation, reqs: Vec<Request>) -> Vec<RequestRecord> {
    let mut sink = Collect(Vec::new());
    let mut checker = Checker {
        last: SimTime::ZERO,
        max_tokens: u64::MAX,
        max_seqs: usize::MAX,
        check_budget: false,
        steps: 0,
    };
    let src = RequestSource::Open(Box::new(reqs.into_iter().map(Ok)));
    sim.run(src, &mut sink, &mut checker).unwrap();
    sink.0
}

#[test]
fn disaggregated_prefill_hands_off_to_decode_by_hand() {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    // Prefill replica: prompt 100 → 2.0 ms, first token at 2.0 ms. The KV lands on the
    // decode replica at once (no link): decodes of 1.1 ms → tokens at 3.1 and 4.2 ms.
    let mut sim = disaggregated(1, 1, &cfg, lat);
    let recs = run_sim(&mut sim, vec![req(1, 0, 100, 3)]);
    assert_eq!(recs.len(), 1);
    assert_eq!((ms(recs[0].ttft_s), ms(recs[0].e2e_s)), (2.0, 4.2));
    assert_eq!(recs[0].replica, 1, "the decode replica reports the request");
    // A one-token output finishes on the prefill replica.
    let mut sim = disaggregated(1, 1, &cfg, lat);
    let recs = run_sim(&mut sim, vec![req(2, 0, 100, 1)]);
    assert_eq!((recs[0].replica, ms(recs[0].e2e_s)), (0, 2.0));
}

#[test]
fn kv_transfer_delays_decoding_not_the_first_token() {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    cfg.kv_bytes_per_token = 1e6; // 100 tokens = 100 MB
    let link = crate::hardware::LinkSpec {
        key: "test".into(),
        name: "test".into(),
        bandwidth_bytes_per_s: 100e9,
        pair_bandwidth_bytes_per_s: 100e9,
        latency_s: 0.0,
        allreduce_bus_efficiency: 1.0,
        max_gpus: None,
    };
    // 100 MB at 100 GB/s = 1 ms in flight: decodes end at 4.1 and 5.2 ms.
    let mut sim = disaggregated(1, 1, &cfg, lat).with_kv_transfer_link(link);
    let recs = run_sim(&mut sim, vec![req(1, 0, 100, 3)]);
    assert_eq!((ms(recs[0].ttft_s), ms(recs[0].e2e_s)), (2.0, 5.2));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn disaggregated_clusters_end_every_request_once(
        trace in arb_trace(),
        prefill in 1u32..3,
        decode in 1u32..3,
        blocks in 6u32..40,
    ) {
        let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, blocks, 200);
        cfg.block_size = 4;
        let lat = FixedLatency::from_micros(50, 1, 5);
        let n = trace.len();
        let mut sim = disaggregated(prefill, decode, &cfg, lat);
        let recs = run_sim(&mut sim, trace);
        let mut ids: Vec<u64> = recs.iter().map(|r| r.request_id).collect();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), n);
        prop_assert_eq!(recs.len(), n);
    }
}

#[test]
fn pipeline_keeps_two_batches_in_flight_by_hand() {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    cfg.pipeline_stages = 2;
    // Each stage takes half a batch's time.
    // 0.00  A prefill 100 (2.0 ms): stage 0 [0, 1.0], stage 1 [1.0, 2.0] → A t1 at 2.0
    // 1.00  B (arrived 0.5) prefill 50 (1.5): stage 0 [1.0, 1.75], stage 1 waits for A:
    //       [2.0, 2.75] → B t1 at 2.75 (a bubble of 0.25 ms)
    // 2.00  A decode (1.1): stage 0 [2.0, 2.55], stage 1 [2.75, 3.30] → A t2 at 3.30, done
    // 2.75  B decode (1.1): stage 0 [2.75, 3.30], stage 1 [3.30, 3.85] → B t2 at 3.85
    let recs = run(cfg, lat, vec![req(1, 0, 100, 2), req(2, 500, 50, 2)]);
    let a = recs.iter().find(|r| r.request_id == 1).unwrap();
    let b = recs.iter().find(|r| r.request_id == 2).unwrap();
    assert_eq!((ms(a.ttft_s), ms(a.e2e_s)), (2.0, 3.3));
    assert_eq!((ms(b.ttft_s), ms(b.e2e_s)), (2.25, 3.35));
}

#[test]
fn pipeline_raises_throughput_only_under_load() {
    let lat = FixedLatency::from_micros(2000, 20, 200);
    let finish = |stages: u32, reqs: Vec<Request>| {
        let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 4000, 4096);
        cfg.pipeline_stages = stages;
        let recs = run(cfg, lat, reqs);
        let end = recs.iter().map(|r| r.finish_time_s).fold(0.0, f64::max);
        let e2e = recs.iter().map(|r| r.e2e_s).sum::<f64>() / recs.len() as f64;
        (end, e2e)
    };
    // One request alone: a pipeline cannot overlap anything, so latency is the same.
    let one = vec![req(0, 0, 200, 50)];
    let (_, e2e1) = finish(1, one.clone());
    let (_, e2e2) = finish(2, one);
    assert!((e2e1 - e2e2).abs() < 1e-6, "{e2e1} vs {e2e2}");
    // Many requests at once: two batches in flight finish the load sooner.
    let many: Vec<Request> = (0..64).map(|i| req(i, i * 10, 200, 50)).collect();
    let (end1, _) = finish(1, many.clone());
    let (end2, _) = finish(2, many);
    assert!(
        end2 < 0.9 * end1,
        "PP2 makespan {end2} should beat PP1 {end1}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn pipelined_replicas_end_every_request_once(
        trace in arb_trace(),
        stages in 2u32..5,
        (kind, chunked, steps) in arb_scheduler(),
        blocks in 6u32..40,
    ) {
        let mut cfg = EngineConfig::defaults_for(kind, blocks, 200);
        cfg.block_size = 4;
        cfg.enable_chunked_prefill = chunked;
        cfg.num_scheduler_steps = steps;
        cfg.max_num_batched_tokens = if chunked { 128 } else { 256 };
        cfg.pipeline_stages = stages;
        let n = trace.len();
        let recs = run(cfg, FixedLatency::from_micros(50, 1, 5), trace);
        let mut ids: Vec<u64> = recs.iter().map(|r| r.request_id).collect();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), n);
        prop_assert_eq!(recs.len(), n);
    }
}

/// Records everything for the incremental-API tests.
#[derive(Default)]
struct Events {
    tokens: Vec<(u64, u32)>,
    ends: Vec<u64>,
}
impl RequestSink for Events {
    fn on_tokens(&mut self, e: &crate::engine::TokenEvent) {
        self.tokens.push((e.request_id, e.generated));
    }
    fn on_request_end(&mut self, r: RequestRecord) {
        self.ends.push(r.request_id);
    }
}

fn one_replica(cfg: EngineConfig) -> Simulation {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let replica = Replica::new(0, cfg, Arc::new(lat)).unwrap();
    Simulation::new(vec![replica], Router::default()).unwrap()
}

#[test]
fn abort_a_running_request_mid_step_frees_its_kv() {
    let mut sim = one_replica(EngineConfig::defaults_for(SchedulerKind::VllmV1, 100, 4096));
    let mut ev = Events::default();
    sim.add_request(req(1, 0, 40, 50), &mut ev);
    sim.add_request(req(2, 0, 40, 3), &mut ev);
    sim.start_idle(&mut NoObserver);
    // Both prefills share the first iteration (1 ms + 80 × 10 µs = 1.8 ms); abort 1 halfway.
    sim.process_until(SimTime::from_nanos(900_000), &mut ev, &mut NoObserver);
    assert_eq!(sim.replicas()[0].num_running(), 2);
    assert!(sim.abort(1));
    assert!(!sim.abort(1), "a request is aborted once");
    assert!(!sim.abort(99), "unknown ids are ignored");
    let r = &sim.replicas()[0];
    r.check_invariants();
    assert_eq!(r.num_running(), 1);
    assert_eq!(r.kv_used_blocks(), 3, "only request 2's 40 tokens are held");
    let mut t = sim.now();
    while let Some(next) = sim.next_event_time() {
        t = next;
        sim.process_until(t, &mut ev, &mut NoObserver);
        sim.start_idle(&mut NoObserver);
    }
    assert!(t > SimTime::ZERO);
    assert!(
        ev.tokens.iter().all(|&(id, _)| id == 2),
        "no tokens after abort"
    );
    assert_eq!(ev.tokens.last(), Some(&(2, 3)));
    assert_eq!(ev.ends, vec![2], "an aborted request leaves no record");
    assert_eq!(sim.num_outstanding(), 0);
    assert_eq!(sim.replicas()[0].kv_used_blocks(), 0);
}

#[test]
fn abort_a_waiting_request_lets_the_queue_move_on() {
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 100, 4096);
    cfg.max_num_seqs = 1;
    let mut sim = one_replica(cfg);
    let mut ev = Events::default();
    for id in 1..=3 {
        sim.add_request(req(id, 0, 20, 2), &mut ev);
    }
    sim.start_idle(&mut NoObserver);
    assert_eq!(sim.replicas()[0].num_waiting(), 2);
    assert!(sim.abort(2));
    assert_eq!(sim.replicas()[0].num_waiting(), 1);
    while let Some(t) = sim.next_event_time() {
        sim.process_until(t, &mut ev, &mut NoObserver);
        sim.start_idle(&mut NoObserver);
        sim.replicas()[0].check_invariants();
    }
    assert_eq!(ev.ends, vec![1, 3]);
    assert_eq!(sim.num_outstanding(), 0);
}

#[test]
fn abort_a_preempted_request_and_slot_reuse_stay_consistent() {
    // Tight KV forces preemptions; abort whichever request is waiting after a few
    // steps, then add a new one that may reuse its slot while a step is in flight.
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 8, 64);
    cfg.block_size = 4;
    let mut sim = one_replica(cfg);
    let mut ev = Events::default();
    for id in 0..3 {
        sim.add_request(req(id, 0, 8, 8), &mut ev);
    }
    sim.start_idle(&mut NoObserver);
    let mut aborted = None;
    let mut added = false;
    while let Some(t) = sim.next_event_time() {
        sim.process_until(t, &mut ev, &mut NoObserver);
        if aborted.is_none() && sim.replicas()[0].num_waiting() > 0 {
            let id = (0..3).rev().find(|&id| !ev.ends.contains(&id)).unwrap();
            assert!(sim.abort(id));
            aborted = Some(id);
        }
        sim.start_idle(&mut NoObserver);
        if aborted.is_some() && !added {
            sim.add_request(req(10, 0, 8, 4), &mut ev);
            added = true;
        }
        sim.replicas()[0].check_invariants();
    }
    let aborted = aborted.expect("KV pressure leaves someone waiting");
    assert!(!ev.ends.contains(&aborted));
    assert_eq!(
        ev.ends.len(),
        3,
        "the two others and the late request finish"
    );
    assert_eq!(sim.num_outstanding(), 0);
    assert_eq!(sim.replicas()[0].kv_used_blocks(), 0);
}

/// Two data-parallel ranks in lock-step: a short decode on one rank waits for the
/// other rank's long prefill in every shared iteration, and neither starts a new
/// iteration before the group's is over. The same ranks stepping alone do not wait.
#[test]
fn lockstep_ranks_end_each_iteration_together() {
    let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    // 1 ms per iteration + 10 µs per prefill token + 0 per decode.
    let lat = Arc::new(FixedLatency::from_micros(1000, 10, 0));
    let run_pair = |lockstep: bool| {
        let group = lockstep.then_some(0);
        let replicas = (0..2)
            .map(|i| {
                Replica::new(i, cfg.clone(), lat.clone())
                    .unwrap()
                    .with_lockstep(group)
            })
            .collect();
        let mut sim = Simulation::new(replicas, Router::new(RoutePolicy::RoundRobin)).unwrap();
        let mut sink = Collect(Vec::new());
        let mut checker = Checker {
            last: SimTime::ZERO,
            max_tokens: u64::from(cfg.max_num_batched_tokens),
            max_seqs: cfg.max_num_seqs as usize,
            check_budget: true,
            steps: 0,
        };
        // Request 0 (replica 0): 1 prompt token, 3 outputs. Request 1 (replica 1):
        // a 1000-token prompt, 1 output.
        let reqs = vec![req(0, 0, 1, 3), req(1, 0, 1000, 1)];
        let src = RequestSource::Open(Box::new(reqs.into_iter().map(Ok)));
        sim.run(src, &mut sink, &mut checker).unwrap();
        let mut recs = sink.0;
        recs.sort_by_key(|r| r.request_id);
        assert_eq!(recs.len(), 2);
        (recs[0].clone(), recs[1].clone())
    };
    let (a, b) = run_pair(false);
    assert_eq!((a.replica, b.replica), (0, 1));
    // Alone: 1.01 ms for the short prefill, then two 1 ms decodes; 11 ms prefill.
    assert_eq!(ms(a.first_token_time_s), 1.01);
    assert_eq!(ms(a.finish_time_s), 3.01);
    assert_eq!(ms(b.finish_time_s), 11.0);
    let (a, b) = run_pair(true);
    // Lock-step: the first iteration lasts the long prefill's 11 ms on both ranks;
    // rank 1 is then done, and rank 0 decodes alone.
    assert_eq!(ms(a.first_token_time_s), 11.0);
    assert_eq!(ms(b.finish_time_s), 11.0);
    assert_eq!(ms(a.finish_time_s), 13.0);
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

#[test]
fn api_server_shifts_ttft_and_e2e_but_not_tpot() {
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    let reqs = vec![req(1, 0, 100, 3), req(2, 1000, 50, 2)];
    let plain = run(cfg.clone(), lat, reqs.clone());
    let api = crate::stack::ApiServer {
        request_us: 200.0,
        per_prompt_token_us: 2.0,
        per_token_out_us: 300.0,
        source: String::new(),
        fitted_on: Vec::new(),
        prior_request_us: 0.0,
    };
    let replica = Replica::new(0, cfg, Arc::new(lat)).unwrap();
    let mut sim = Simulation::new(vec![replica], Router::default())
        .unwrap()
        .with_api_server(&api);
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

/// One request per ms into a replica that serves one at a time (each takes
/// about 1 ms prefill + 40 ms decode): clients waiting 100 ms give up on all but
/// the first few, which end exactly once, without a record, and free their KV.
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
    let done = sink.0.len() as u64;
    assert!((2..20).contains(&done), "{done} finished");
    assert_eq!(
        done + stats.timed_out,
        20,
        "every request ends exactly once"
    );
    for r in &sink.0 {
        let e2e_s = r.finish_time_s - r.arrival_time_s;
        assert!(e2e_s <= 0.1 + 1e-9, "a finished request beat its deadline");
    }
    assert_eq!(sim.num_outstanding(), 0);
    assert_eq!(sim.replicas()[0].kv_used_blocks(), 0);
}
