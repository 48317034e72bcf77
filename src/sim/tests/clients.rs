//! Simulated clients (`sim/client.rs`): timeouts, retries with backoff, abandonment.
//! Every iteration here takes exactly 1 ms and a replica runs one request at a time,
//! so each outcome can be worked out by hand.

use super::*;
use crate::engine::RequestStatus;
use rand::{RngExt, SeedableRng};

/// One replica serving one request at a time, every iteration 1 ms: a request with
/// `n` output tokens that starts at `t` has its first token at `t + 1 ms` and ends
/// at `t + n ms`.
fn one_at_a_time(policy: ClientPolicy) -> Simulation {
    let lat = FixedLatency::from_micros(1000, 0, 0);
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    cfg.max_num_seqs = 1;
    let replica = Replica::new(0, cfg, Arc::new(lat)).unwrap();
    Simulation::new(vec![replica], Router::default())
        .unwrap()
        .with_clients(policy)
}

/// A (10 tokens) runs 0–10 ms. B (10 tokens, sent at 0) starts at 10 ms, has its
/// first token at 11 ms and times out at 15.5 ms, mid-decode; its client sends it
/// again after a backoff of 2–4 ms (base 4 ms, equal jitter), the replica is free,
/// and the second attempt runs from `r` to `r + 10 ms`.
#[test]
fn a_timed_out_request_is_retried_after_its_backoff_and_ends_once() {
    let policy = ClientPolicy {
        timeout: Some(millis(15.5)),
        max_retries: 1,
        backoff_base: millis(4.0),
        backoff_max: millis(4.0),
        seed: 7,
        ..ClientPolicy::default()
    };
    let mut sim = one_at_a_time(policy);
    let (recs, stats) = run_to_end(&mut sim, vec![req(0, 0, 16, 10), req(1, 0, 16, 10)]);
    assert_eq!(recs.len(), 2);
    let (a, b) = (&recs[0], &recs[1]);
    assert_eq!((a.status, a.attempts), (RequestStatus::Finished, 1));
    assert!(close(a.e2e_s, 10.0));
    // The jitter: the first draw of the policy's seeded stream.
    let u: f64 = rand_chacha::ChaCha8Rng::seed_from_u64(7).random();
    let resend_ms = 15.5 + 2.0 + 2.0 * u;
    assert_eq!((b.status, b.attempts), (RequestStatus::Finished, 2));
    assert_eq!(stats.timed_out, 0);
    // Times run from the first send: the user waited for both attempts.
    assert!(close(b.arrival_time_s, 0.0), "{b:?}");
    assert!(close(b.queue_s, resend_ms), "{b:?}");
    assert!(close(b.ttft_s, resend_ms + 1.0), "{b:?}");
    assert!(close(b.e2e_s, resend_ms + 10.0), "{b:?}");
    assert!(close(b.finish_time_s, resend_ms + 10.0), "{b:?}");
    assert!(close(b.tpot_s, 1.0), "{b:?}");
}

/// The same without retries: B ends timed out at its deadline, with the first token
/// it had and no E2E.
#[test]
fn without_retries_a_timed_out_request_ends_at_its_deadline() {
    let mut sim = one_at_a_time(ClientPolicy::with_timeout(millis(15.5)));
    let (recs, stats) = run_to_end(&mut sim, vec![req(0, 0, 16, 10), req(1, 0, 16, 10)]);
    let b = &recs[1];
    assert_eq!((b.status, b.attempts), (RequestStatus::TimedOut, 1));
    assert_eq!(stats.timed_out, 1);
    assert!(close(b.finish_time_s, 15.5));
    assert!(close(b.ttft_s, 11.0));
    assert!(b.e2e_s.is_nan() && b.tpot_s.is_nan());
}

/// Three requests sent at 0; clients leave after 5 ms without a token. A has its
/// first token at 1 ms and finishes; B and C are still waiting at 5 ms and leave.
/// Abandoned requests are not retried, even with retries allowed.
#[test]
fn clients_abandon_requests_without_a_first_token_in_time() {
    let policy = ClientPolicy {
        abandon_after: Some(millis(5.0)),
        timeout: Some(millis(100.0)),
        max_retries: 3,
        ..ClientPolicy::default()
    };
    let mut sim = one_at_a_time(policy);
    let (recs, _) = run_to_end(
        &mut sim,
        vec![req(0, 0, 16, 10), req(1, 0, 16, 10), req(2, 0, 16, 10)],
    );
    let status: Vec<_> = recs.iter().map(|r| (r.status, r.attempts)).collect();
    assert_eq!(
        status,
        [
            (RequestStatus::Finished, 1),
            (RequestStatus::Abandoned, 1),
            (RequestStatus::Abandoned, 1)
        ]
    );
    for r in &recs[1..] {
        assert!(close(r.finish_time_s, 5.0) && r.ttft_s.is_nan());
    }
    assert!(close(recs[0].e2e_s, 10.0));
}

/// The metrics: goodput counts only completed requests, and SLO attainment counts
/// requests whose clients gave up as misses.
#[test]
fn the_summary_counts_each_outcome() {
    let policy = ClientPolicy {
        timeout: Some(millis(15.5)),
        ..ClientPolicy::default()
    };
    let mut sim = one_at_a_time(policy);
    let mut rec = crate::metrics::Recorder::new(crate::metrics::Slo::default()).with_clients();
    let reqs = vec![req(0, 0, 16, 10), req(1, 0, 16, 10), req(2, 0, 16, 10)];
    sim.run(
        RequestSource::Open(Box::new(reqs.into_iter().map(Ok))),
        &mut rec,
        &mut NoObserver,
    )
    .unwrap();
    let s = rec.summary();
    let c = s.clients.expect("clients summary");
    // A finishes at 10 ms; B runs from 10 ms and times out at 15.5; C then runs from
    // 16 ms (the iteration B left ends then) and times out at 15.5 ms already waiting.
    assert_eq!(
        (s.completed, c.timed_out, c.abandoned, c.retries),
        (1, 2, 0, 0)
    );
    assert!((c.completed_fraction - 1.0 / 3.0).abs() < 1e-12);
    assert!((s.slo_attainment - 1.0 / 3.0).abs() < 1e-12);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever the clients do, and whether the replica fails, every request ends
    /// exactly once, no KV is left held, and nothing ends before it arrived.
    #[test]
    fn every_request_ends_once_whatever_the_clients_do(
        gaps in proptest::collection::vec(0u64..3_000, 1..40),
        outs in proptest::collection::vec(1u32..30, 40),
        timeout_ms in proptest::option::of(2u64..40),
        abandon_ms in proptest::option::of(1u64..20),
        retries in 0u32..3,
        seqs in 1u32..4,
        outage in proptest::option::of((0u64..60, 0u64..30, 0u64..10)),
    ) {
        let policy = ClientPolicy {
            timeout: timeout_ms.map(SimDuration::from_millis),
            abandon_after: abandon_ms.map(SimDuration::from_millis),
            max_retries: retries,
            backoff_base: millis(1.0),
            backoff_max: millis(8.0),
            seed: 3,
        };
        let lat = FixedLatency::from_micros(500, 20, 100);
        let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
        cfg.max_num_seqs = seqs;
        let replica = Replica::new(0, cfg, Arc::new(lat)).unwrap();
        let mut sim = Simulation::new(vec![replica], Router::default())
            .unwrap()
            .with_clients(policy);
        if let Some((at, down, restart)) = outage {
            sim = sim
                .with_failures(crate::sim::failures::FailurePlan {
                    outages: crate::sim::failures::Outages::Schedule(vec![
                        crate::sim::failures::Outage {
                            at: SimTime::from_nanos(at * 1_000_000),
                            replica: 0,
                            down_for: SimDuration::from_millis(down),
                        },
                    ]),
                    restart: vec![SimDuration::from_millis(restart)],
                })
                .unwrap();
        }
        let mut t = 0;
        let reqs: Vec<Request> = gaps
            .iter()
            .zip(&outs)
            .enumerate()
            .map(|(i, (g, o))| {
                t += g;
                req(i as u64, t, 32, *o)
            })
            .collect();
        let n = reqs.len() as u64;
        let (recs, stats) = run_to_end(&mut sim, reqs);
        let ids: Vec<u64> = recs.iter().map(|r| r.request_id).collect();
        prop_assert_eq!(ids, (0..n).collect::<Vec<_>>());
        prop_assert_eq!(
            recs.iter().filter(|r| r.status == RequestStatus::TimedOut).count() as u64,
            stats.timed_out
        );
        for r in &recs {
            prop_assert!(r.finish_time_s >= r.arrival_time_s);
            prop_assert!(r.attempts >= 1 && r.attempts <= policy.max_retries + 1);
            if let (Some(t), None) = (timeout_ms, outage) {
                // Nobody waits past the deadline of the last attempt (each send's
                // own timeout, plus at most the backoffs between them).
                let longest = (t * u64::from(r.attempts) + 8 * u64::from(r.attempts - 1)) as f64;
                prop_assert!(r.finish_time_s - r.arrival_time_s <= longest * 1e-3 + 1e-9);
            }
        }
    }
}
