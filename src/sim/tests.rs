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
                r.tokens_in_step() <= self.max_tokens,
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
