//! Clusters: disaggregated prefill and decode, pipeline stages, lock-step data-parallel ranks.

use super::*;

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
        max_batch_seqs: usize::MAX,
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
        beyond_pair_bus_efficiency: None,
        copy_efficiency: None,
        max_gpus: None,
    };
    // 100 MB at 100 GB/s = 1 ms in flight: decodes end at 4.1 and 5.2 ms.
    let mut sim = disaggregated(1, 1, &cfg, lat).with_kv_transfer_link(link);
    let recs = run_sim(&mut sim, vec![req(1, 0, 100, 3)]);
    assert_eq!((ms(recs[0].ttft_s), ms(recs[0].e2e_s)), (2.0, 5.2));
}

/// TensorRT-LLM's limit is a micro-batch's: with two stages and `max_num_seqs` 2, four
/// requests run at once in two micro-batches of two, where vLLM V1's replica-wide
/// limit runs two and queues the others until they finish.
#[test]
fn a_micro_batch_limit_runs_that_many_per_stage() {
    use crate::engine::SeqLimitScope;
    let lat = FixedLatency::from_micros(1000, 10, 100);
    let run_with = |scope| {
        let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
        cfg.pipeline_stages = 2;
        cfg.max_num_seqs = 2;
        cfg.max_num_seqs_scope = scope;
        let mut recs = run(cfg, lat, (0..4).map(|i| req(i, 0, 10, 4)).collect());
        recs.sort_by_key(|r| r.request_id);
        recs
    };
    let first_finish = |recs: &[RequestRecord]| {
        recs.iter()
            .map(|r| r.finish_time_s)
            .fold(f64::MAX, f64::min)
    };
    let per_stage = run_with(SeqLimitScope::MicroBatch);
    let last_first_token = per_stage.iter().map(|r| r.ttft_s).fold(0.0, f64::max);
    assert!(
        last_first_token < first_finish(&per_stage),
        "all four should start before any ends: {per_stage:?}"
    );
    let replica = run_with(SeqLimitScope::Replica);
    assert!(
        replica[2].ttft_s >= first_finish(&replica),
        "the third request should wait for a seat: {replica:?}"
    );
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
        seqs in 1u32..6,
        per_micro_batch in any::<bool>(),
    ) {
        let mut cfg = EngineConfig::defaults_for(kind, blocks, 200);
        cfg.block_size = 4;
        cfg.enable_chunked_prefill = chunked;
        cfg.num_scheduler_steps = steps;
        cfg.max_num_batched_tokens = if chunked { 128 } else { 256 };
        cfg.pipeline_stages = stages;
        cfg.max_num_seqs = seqs;
        if per_micro_batch {
            cfg.max_num_seqs_scope = crate::engine::SeqLimitScope::MicroBatch;
        }
        let n = trace.len();
        let recs = run(cfg, FixedLatency::from_micros(50, 1, 5), trace);
        let mut ids: Vec<u64> = recs.iter().map(|r| r.request_id).collect();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), n);
        prop_assert_eq!(recs.len(), n);
    }
}

/// Two ranks behind a round-robin router, in one lock-step group or stepping alone,
/// run on `reqs` under the invariant checker; their records by request id.
fn run_two_ranks(
    cfg: &EngineConfig,
    lat: &Arc<FixedLatency>,
    reqs: Vec<Request>,
    lockstep: bool,
) -> Vec<RequestRecord> {
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
        max_seqs: cfg.max_running() as usize,
        max_batch_seqs: cfg.max_num_seqs as usize,
        check_budget: true,
        steps: 0,
    };
    let src = RequestSource::Open(Box::new(reqs.into_iter().map(Ok)));
    sim.run(src, &mut sink, &mut checker).unwrap();
    let mut recs = sink.0;
    recs.sort_by_key(|r| r.request_id);
    recs
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
        // Request 0 (replica 0): 1 prompt token, 3 outputs. Request 1 (replica 1):
        // a 1000-token prompt, 1 output.
        let reqs = vec![req(0, 0, 1, 3), req(1, 0, 1000, 1)];
        let recs = run_two_ranks(&cfg, &lat, reqs, lockstep);
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

/// Lock-step ranks with pipeline parallelism pipeline their micro-batches: ranks given
/// the same requests run exactly as the same ranks stepping alone (each stage's ranks
/// meet, the stages overlap), where waiting for the whole pipeline to drain before the
/// next micro-batch would double the time of a two-stage decode.
#[test]
fn lockstep_ranks_pipeline_their_micro_batches() {
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    cfg.pipeline_stages = 2;
    // One request per micro-batch, one micro-batch per stage.
    cfg.max_num_seqs = 1;
    cfg.max_num_seqs_scope = crate::engine::SeqLimitScope::MicroBatch;
    let lat = Arc::new(FixedLatency::from_micros(1000, 1, 0));
    let run_pair = |lockstep: bool| {
        // Round robin: each rank gets two identical requests, one per micro-batch.
        let reqs = (0..4).map(|i| req(i, 0, 10, 8)).collect();
        run_two_ranks(&cfg, &lat, reqs, lockstep)
            .iter()
            .map(|r| (r.replica, r.first_token_time_s, r.finish_time_s))
            .collect::<Vec<_>>()
    };
    let alone = run_pair(false);
    assert_eq!(run_pair(true), alone);
    // Two micro-batches in flight per rank: 8 tokens of 1 ms iterations, the second
    // micro-batch half an iteration behind, end by 8.5 ms (not 16).
    let last = alone.iter().map(|r| r.2).fold(0.0, f64::max);
    assert!(ms(last) <= 8.6, "{last}");
}
