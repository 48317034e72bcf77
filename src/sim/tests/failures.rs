//! Replica failures (`sim/failures.rs`): lost requests, the router avoiding a replica
//! that is down, the restart. Every iteration takes 1 ms, one request at a time.

use super::*;
use crate::engine::RequestStatus;
use crate::sim::failures::{FailurePlan, Outage, Outages};

/// `n` replicas serving one request at a time, every iteration 1 ms, with `outages`
/// and a 5 ms restart.
fn failing(n: u32, outages: Vec<Outage>, clients: Option<ClientPolicy>) -> Simulation {
    let lat = FixedLatency::from_micros(1000, 0, 0);
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    cfg.max_num_seqs = 1;
    let replicas = (0..n)
        .map(|i| Replica::new(i, cfg.clone(), Arc::new(lat)).unwrap())
        .collect();
    let mut sim = Simulation::new(replicas, Router::new(RoutePolicy::RoundRobin)).unwrap();
    if let Some(p) = clients {
        sim = sim.with_clients(p);
    }
    sim.with_failures(FailurePlan {
        outages: Outages::Schedule(outages),
        restart: vec![millis(5.0); n as usize],
    })
    .unwrap()
}

/// The replica fails at 3.5 ms for 10 ms and restarts in 5 ms (back at 18.5 ms). A
/// (sent at 0, 10 tokens, first token at 1 ms) is lost at 3.5 ms; B, sent at 5 ms,
/// finds no replica up; C, sent at 20 ms, is served from 20 to 30 ms.
#[test]
fn a_failure_loses_the_replicas_requests_until_it_has_restarted() {
    let outage = Outage {
        at: SimTime::from_nanos(3_500_000),
        replica: 0,
        down_for: millis(10.0),
    };
    let mut sim = failing(1, vec![outage], None);
    let reqs = vec![
        req(0, 0, 16, 10),
        req(1, 5_000, 16, 10),
        req(2, 20_000, 16, 10),
    ];
    let (recs, stats) = run_to_end(&mut sim, reqs);
    let status: Vec<_> = recs.iter().map(|r| r.status).collect();
    assert_eq!(
        status,
        [
            RequestStatus::Failed,
            RequestStatus::Failed,
            RequestStatus::Finished
        ]
    );
    let (a, b, c) = (&recs[0], &recs[1], &recs[2]);
    assert!(close(a.finish_time_s, 3.5) && close(a.ttft_s, 1.0) && a.e2e_s.is_nan());
    assert!(close(b.finish_time_s, 5.0) && b.ttft_s.is_nan());
    assert!(close(c.arrival_time_s, 20.0) && close(c.e2e_s, 10.0) && close(c.ttft_s, 1.0));
    assert_eq!(stats.outages, 1);
    assert!((stats.replica_down_s - 0.015).abs() < 1e-12);
}

/// Two replicas, round-robin: while replica 0 is down (1–16 ms) every request goes to
/// replica 1; afterwards both take requests again.
#[test]
fn the_router_sends_nothing_to_a_replica_that_is_down() {
    let outage = Outage {
        at: SimTime::from_nanos(1_000_000),
        replica: 0,
        down_for: millis(10.0),
    };
    let mut sim = failing(2, vec![outage], None);
    let reqs: Vec<Request> = (0..8).map(|i| req(i, 2_000 + 2_000 * i, 16, 2)).collect();
    let (recs, _) = run_to_end(&mut sim, reqs);
    for r in &recs {
        assert_eq!(r.status, RequestStatus::Finished);
        let sent_ms = r.arrival_time_s * 1e3;
        if sent_ms < 16.0 {
            assert_eq!(r.replica, 1, "{r:?}");
        }
    }
    assert!(recs.iter().any(|r| r.replica == 0), "replica 0 came back");
}

/// With retries, a request lost to the failure is sent again after its backoff until
/// the replica is back (or its retries run out), and its record counts the attempts.
#[test]
fn clients_retry_requests_lost_to_a_failure() {
    let outage = Outage {
        at: SimTime::from_nanos(3_500_000),
        replica: 0,
        down_for: millis(10.0),
    };
    let policy = ClientPolicy {
        max_retries: 5,
        backoff_base: millis(4.0),
        backoff_max: millis(8.0),
        ..ClientPolicy::default()
    };
    let mut sim = failing(1, vec![outage], Some(policy));
    let (recs, stats) = run_to_end(&mut sim, vec![req(0, 0, 16, 10)]);
    let a = &recs[0];
    assert_eq!(a.status, RequestStatus::Finished, "{a:?}");
    // Sends at 0, 3.5 ms + ≥ 2 ms (down: fails at once), …, until one lands after
    // the restart at 18.5 ms: at least 3 attempts, times from the first send.
    assert!(a.attempts >= 3, "{a:?}");
    assert!(close(a.arrival_time_s, 0.0));
    assert!(
        a.queue_s >= 18.5e-3 && close(a.e2e_s - a.queue_s, 10.0),
        "{a:?}"
    );
    assert_eq!(stats.outages, 1);
}

#[test]
fn failures_of_replicas_that_do_not_exist_are_errors() {
    let lat = FixedLatency::from_micros(1000, 0, 0);
    let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    let sim = Simulation::new(
        vec![Replica::new(0, cfg, Arc::new(lat)).unwrap()],
        Router::default(),
    )
    .unwrap();
    let plan = FailurePlan {
        outages: Outages::Schedule(vec![Outage {
            at: SimTime::ZERO,
            replica: 3,
            down_for: millis(1.0),
        }]),
        restart: vec![millis(1.0)],
    };
    let e = sim.with_failures(plan).unwrap_err().to_string();
    assert!(e.contains("replica 3") && e.contains("1 replicas"), "{e}");
}
