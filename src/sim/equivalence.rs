//! The fast engine against its oracle: replicas that advance steady decoders as one
//! aggregate (the decode cohort), in a kernel that asks only the replicas an event
//! reached to start an iteration, must give exactly what the reference engine (every
//! request scheduled and advanced one by one, every replica asked at every instant)
//! gives: the same records (every float to the bit, in the same order), the same
//! inter-token gaps, the same counters.

use super::*;
use crate::engine::{
    EngineConfig, PreemptionMode, Replica, ReplicaRole, SchedulerKind, TokenEvent,
};
use crate::perf::fixed::FixedLatency;
use crate::stack::ApiServer;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Everything a run reports, in a comparable form.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    /// Records in end order, with every float's bits.
    records: Vec<String>,
    /// Inter-token gaps (ns) and how often each occurred.
    itl: BTreeMap<u64, u64>,
    /// Output tokens reported.
    tokens: u64,
    /// Per replica: iterations, sequences and tokens summed over iterations, the largest
    /// batch, preemptions, busy time.
    counters: Vec<(u64, u64, u64, u32, u64, SimDuration)>,
    stats: String,
}

impl RequestSink for Tally {
    fn on_tokens(&mut self, e: &TokenEvent) {
        if !e.first {
            *self.itl.entry(e.gap.as_nanos()).or_default() += 1;
        }
        if e.count > 1 {
            *self.itl.entry(0).or_default() += u64::from(e.count - 1);
        }
        self.tokens += u64::from(e.count);
    }
    fn on_request_end(&mut self, r: RequestRecord) {
        let bits = r.times_s().map(f64::to_bits);
        self.records.push(format!(
            "{} {} {} {} {} {:?} {} {} {:?}",
            r.request_id,
            r.replica,
            r.input_tokens,
            r.output_tokens,
            r.arrival_time_s.to_bits(),
            bits,
            r.preemptions,
            r.prefix_hit_tokens,
            r.status
        ));
    }
    fn per_request_tokens(&self) -> bool {
        false
    }
    fn on_decode_tokens(&mut self, _: u32, _: SimTime, gap: SimDuration, requests: u32) {
        *self.itl.entry(gap.as_nanos()).or_default() += u64::from(requests);
        self.tokens += u64::from(requests);
    }
}

/// A step time that depends on every part of the batch's shape, prefill order
/// included, so that a cohort that got any of it wrong would show.
#[derive(Clone, Copy, Debug)]
struct ShapeLatency;

impl crate::perf::LatencyModel for ShapeLatency {
    fn step_time(&self, shape: &crate::perf::StepShape) -> SimDuration {
        let mut ns = 50_000 + 5_000 * u64::from(shape.num_decodes);
        ns += 3 * shape.decode_context_sum + 7 * u64::from(shape.decode_context_max);
        for (i, p) in shape.prefills.iter().enumerate() {
            ns += (1_000 + i as u64) * u64::from(p.tokens) + 2 * u64::from(p.context_tokens);
        }
        SimDuration::from_nanos(ns)
    }

    fn describe(&self) -> String {
        "every part of the shape".into()
    }
}

/// Checks every replica's invariants (the cohort's included) whenever time moves.
struct Invariants;
impl Observer for Invariants {
    fn on_advance(&mut self, _: SimTime, _: SimTime, replicas: &[Replica]) {
        for r in replicas {
            r.check_invariants();
        }
    }
    fn on_step_start(&mut self, _: SimTime, _: SimDuration, r: &Replica) {
        r.check_invariants();
    }
}

/// How the replicas are put together.
#[derive(Clone, Copy, Debug)]
enum Cluster {
    /// Independent replicas behind a router.
    Replicas(u32, RoutePolicy),
    /// Data-parallel ranks in lock step.
    Lockstep(u32),
    /// Prefill and decode replicas.
    Disaggregated(u32, u32),
}

#[derive(Clone, Debug)]
struct Scenario {
    cfg: EngineConfig,
    cluster: Cluster,
    api: bool,
    timeout_us: Option<u64>,
    closed_loop: Option<u32>,
}

fn run(s: &Scenario, trace: &[Request], reference: bool) -> Tally {
    let replica = |i: u32| {
        Replica::new(i, s.cfg.clone(), Arc::new(ShapeLatency))
            .unwrap()
            .with_reference_engine(reference)
    };
    let (replicas, router) = match s.cluster {
        Cluster::Replicas(n, policy) => ((0..n).map(replica).collect(), Router::new(policy)),
        Cluster::Lockstep(n) => (
            (0..n).map(|i| replica(i).with_lockstep(Some(0))).collect(),
            Router::new(RoutePolicy::LeastOutstanding),
        ),
        Cluster::Disaggregated(p, d) => (
            (0..p + d)
                .map(|i| {
                    let role = if i < p {
                        ReplicaRole::Prefill
                    } else {
                        ReplicaRole::Decode
                    };
                    replica(i).with_role(role)
                })
                .collect(),
            Router::default(),
        ),
    };
    let mut sim = Simulation::new(replicas, router).unwrap();
    if reference {
        sim = sim.with_every_replica_trying();
    }
    if s.api {
        sim = sim.with_api_server(&ApiServer {
            request_us: 300.0,
            per_prompt_token_us: 2.0,
            per_token_out_us: 40.0,
            handlers: 0,
            source: String::new(),
            fitted_on: Vec::new(),
            prior_request_us: 0.0,
        });
    }
    if let Some(us) = s.timeout_us {
        sim = sim.with_client_timeout(SimDuration::from_nanos(us * 1000));
    }
    let requests = Box::new(trace.iter().cloned().map(Ok));
    let source = match s.closed_loop {
        Some(concurrency) => RequestSource::ClosedLoop {
            requests,
            concurrency,
        },
        None => RequestSource::Open(requests),
    };
    let mut tally = Tally::default();
    // A bound, so that a scenario the engine cannot finish fails instead of hanging.
    sim = sim.with_max_iterations(200_000);
    tally.stats = match sim.run(source, &mut tally, &mut Invariants) {
        Ok(stats) => format!("{stats:?}"),
        Err(e) => format!("error: {e}"),
    };
    tally.counters = sim
        .replicas()
        .iter()
        .map(|r| {
            let c = r.counters();
            (
                c.iterations,
                c.batch_seqs_sum,
                c.batch_tokens_sum,
                c.batch_seqs_max,
                c.preemptions,
                c.busy,
            )
        })
        .collect();
    tally
}

fn arb_scheduler() -> impl Strategy<Value = (SchedulerKind, bool, u32)> {
    prop_oneof![
        3 => Just((SchedulerKind::VllmV1, true, 1)),
        1 => Just((SchedulerKind::VllmV1, false, 1)),
        1 => Just((SchedulerKind::VllmV0, false, 1)),
        1 => Just((SchedulerKind::VllmV0, true, 1)),
        1 => Just((SchedulerKind::VllmV0, false, 4)),
        1 => Just((SchedulerKind::Sglang, true, 1)),
        1 => Just((SchedulerKind::Sglang, false, 1)),
        1 => Just((SchedulerKind::Orca, false, 1)),
        1 => Just((SchedulerKind::Static, false, 1)),
    ]
}

/// Requests with gaps of up to 3 ms, prompts of 1–150 tokens, outputs of 1–60, and
/// sometimes a session or shared prompt prefixes.
fn arb_trace() -> impl Strategy<Value = Vec<Request>> {
    proptest::collection::vec((0u64..3_000, 1u32..150, 1u32..60, 0u64..4, 0u64..3), 1..60).prop_map(
        |v| {
            let mut t = 0;
            v.into_iter()
                .enumerate()
                .map(|(i, (gap, input, output, session, prefix))| {
                    t += gap;
                    let mut r =
                        Request::new(i as u64, SimTime::from_nanos(t * 1000), input, output);
                    match (session, prefix) {
                        (1, _) => r.session_id = Some(i as u64 % 3),
                        (_, 1 | 2) => {
                            // Prompts of one of two families share their leading blocks.
                            let blocks = input.div_ceil(8) as u64;
                            r.prefix_hash_ids = (0..blocks)
                                .map(|b| {
                                    if b < 3 {
                                        prefix * 100 + b
                                    } else {
                                        i as u64 * 1000 + b
                                    }
                                })
                                .collect();
                            r.hash_block_tokens = 8;
                        }
                        _ => {}
                    }
                    r
                })
                .collect()
        },
    )
}

fn arb_cluster() -> impl Strategy<Value = Cluster> {
    prop_oneof![
        6 => Just(Cluster::Replicas(1, RoutePolicy::RoundRobin)),
        1 => (2u32..4, prop_oneof![
            Just(RoutePolicy::RoundRobin),
            Just(RoutePolicy::LeastOutstanding),
            Just(RoutePolicy::LeastKvLoad),
            Just(RoutePolicy::PrefixAffinity),
        ]).prop_map(|(n, p)| Cluster::Replicas(n, p)),
        1 => (2u32..4).prop_map(Cluster::Lockstep),
        1 => (1u32..3, 1u32..3).prop_map(|(p, d)| Cluster::Disaggregated(p, d)),
    ]
}

prop_compose! {
    fn arb_scenario()(
        (kind, chunked, steps) in arb_scheduler(),
        cluster in arb_cluster(),
        blocks in 8u32..120,
        block_size in prop_oneof![Just(4u32), Just(16)],
        max_seqs in 1u32..24,
        budget in 16u32..400,
        swap in any::<bool>(),
        prefix in any::<bool>(),
        stages in prop_oneof![4 => Just(1u32), 1 => Just(2)],
        async_scheduling in any::<bool>(),
        api in any::<bool>(),
        timeout_us in prop_oneof![4 => Just(None), 1 => (2_000u64..40_000).prop_map(Some)],
        closed_loop in prop_oneof![4 => Just(None), 1 => (1u32..6).prop_map(Some)],
    ) -> Scenario {
        let mut cfg = EngineConfig::defaults_for(kind, blocks, 256);
        cfg.block_size = block_size;
        cfg.max_num_seqs = max_seqs;
        cfg.enable_chunked_prefill = chunked;
        cfg.num_scheduler_steps = steps;
        cfg.enable_prefix_caching = prefix;
        cfg.max_num_batched_tokens = if chunked { budget } else { budget.max(256) };
        cfg.pipeline_stages = stages;
        cfg.async_scheduling = async_scheduling;
        if swap {
            cfg.preemption_mode = PreemptionMode::Swap;
            cfg.kv_bytes_per_token = 1000.0;
            cfg.swap_bandwidth_bytes_per_s = 1e9;
        }
        // A client timeout needs an open loop (a closed loop would wait for ever).
        let closed_loop = if timeout_us.is_some() { None } else { closed_loop };
        Scenario { cfg, cluster, api, timeout_us, closed_loop }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn the_fast_engine_gives_what_the_reference_gives(
        scenario in arb_scenario(),
        trace in arb_trace(),
    ) {
        let reference = run(&scenario, &trace, true);
        let fast = run(&scenario, &trace, false);
        // A run the engine cannot finish (see `pipelined_preemption_can_livelock`) must
        // stop at the same iteration in both.
        prop_assert_eq!(fast, reference);
    }
}

/// The cohort does take over in steady decoding (otherwise the property above would
/// compare the reference with itself).
#[test]
fn steady_decoders_join_the_cohort() {
    let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    let lat = FixedLatency::from_micros(50, 1, 5);
    let mut replica = Replica::new(0, cfg, Arc::new(lat)).unwrap();
    let mut tally = Tally::default();
    for i in 0..4 {
        replica.add_request(
            Request::new(i, SimTime::ZERO, 20, 30),
            SimTime::ZERO,
            &mut tally,
        );
    }
    let mut now = SimTime::ZERO;
    for _ in 0..3 {
        let start = replica.try_start_step(now).expect("work to do");
        now = start.done;
        replica.finish_step(now, &mut tally);
        replica.check_invariants();
    }
    assert_eq!(replica.num_running(), 4);
    assert_eq!(replica.cohort_size(), 4, "all four decode as one cohort");
    while let Some(start) = replica.try_start_step(now) {
        now = start.done;
        replica.finish_step(now, &mut tally);
        replica.check_invariants();
    }
    assert_eq!(tally.records.len(), 4);
    assert_eq!(tally.tokens, 4 * 30);
}

/// A known livelock of the engine (reference and fast alike), kept visible: with two
/// pipeline stages a request in flight cannot be preempted, so two requests whose KV
/// does not fit together preempt each other for ever (recompute) and neither finishes.
/// The run stops at its iteration bound instead of hanging. To be fixed in the engine
/// (issue 16); until then this test documents the behaviour.
#[test]
fn pipelined_preemption_can_livelock() {
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV0, 32, 256);
    cfg.max_num_seqs = 2;
    cfg.max_num_batched_tokens = 35;
    cfg.enable_chunked_prefill = true;
    cfg.block_size = 4;
    cfg.pipeline_stages = 2;
    cfg.async_scheduling = false;
    let s = Scenario {
        cfg,
        cluster: Cluster::Replicas(1, RoutePolicy::RoundRobin),
        api: false,
        timeout_us: None,
        closed_loop: Some(2),
    };
    let trace = [
        Request::new(0, SimTime::ZERO, 68, 26),
        Request::new(1, SimTime::ZERO, 60, 34),
    ];
    for reference in [true, false] {
        let t = run(&s, &trace, reference);
        assert!(
            t.stats.contains("limit of engine iterations"),
            "reference={reference}: {}",
            t.stats
        );
    }
}
