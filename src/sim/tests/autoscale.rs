//! The autoscaler driving a simulation (`sim/autoscale.rs`): replicas start only after
//! their start-up, the router uses them only then, drained replicas are parked.

use super::*;
use crate::sim::autoscale::{AutoscalePolicy, ScaleMetric};

/// Three replicas of which one starts up; every iteration 1 ms, one request at a time.
/// Ten requests arrive at 0: at the first evaluation (10 ms) nine are still in flight
/// on replica 0, so with a target of 4 per replica the autoscaler wants three and
/// starts replicas 1 and 2, which take requests from 10 + 20 = 30 ms on.
#[test]
fn replicas_the_autoscaler_starts_take_requests_after_their_startup() {
    let lat = FixedLatency::from_micros(1000, 0, 0);
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    cfg.max_num_seqs = 1;
    let replicas = (0..3)
        .map(|i| Replica::new(i, cfg.clone(), Arc::new(lat)).unwrap())
        .collect();
    let policy = AutoscalePolicy {
        metric: ScaleMetric::Concurrency,
        target: 4.0,
        min_replicas: 1,
        max_replicas: 3,
        interval: millis(10.0),
        cooldown: millis(1000.0),
        startup: millis(20.0),
    };
    let mut sim = Simulation::new(replicas, Router::new(RoutePolicy::LeastOutstanding))
        .unwrap()
        .with_autoscaler(policy)
        .unwrap();
    // Ten at 0 (all on replica 0), then one every 2 ms from 31 ms.
    let mut reqs: Vec<Request> = (0..10).map(|i| req(i, 0, 16, 10)).collect();
    reqs.extend((0..6).map(|i| req(10 + i, 31_000 + 2_000 * i, 16, 10)));
    let (recs, _) = run_to_end(&mut sim, reqs);
    for r in &recs {
        assert_eq!(r.status, crate::engine::RequestStatus::Finished);
        if r.request_id < 10 {
            assert_eq!(r.replica, 0, "{r:?}");
        } else if r.replica != 0 {
            assert!(
                r.arrival_time_s >= 0.030 - 1e-9,
                "before its start-up: {r:?}"
            );
        }
    }
    assert!(recs.iter().any(|r| r.replica == 1) && recs.iter().any(|r| r.replica == 2));
    let timeline = sim.autoscale_timeline().unwrap();
    assert_eq!(
        timeline[..2],
        [(SimTime::ZERO, 1), (SimTime::from_nanos(10_000_000), 3)]
    );
    let s = sim.autoscale_summary(1, Some(1.0)).unwrap();
    assert_eq!((s.peak_replicas, s.scale_ups, s.scale_downs), (3, 1, 0));
}

#[test]
fn an_autoscaled_cluster_has_max_replicas_and_no_failures() {
    let lat = FixedLatency::from_micros(1000, 0, 0);
    let cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    let two = || {
        (0..2)
            .map(|i| Replica::new(i, cfg.clone(), Arc::new(lat)).unwrap())
            .collect::<Vec<_>>()
    };
    let policy = AutoscalePolicy {
        metric: ScaleMetric::Queue,
        target: 1.0,
        min_replicas: 1,
        max_replicas: 3,
        interval: millis(10.0),
        cooldown: millis(10.0),
        startup: millis(10.0),
    };
    let e = Simulation::new(two(), Router::default())
        .unwrap()
        .with_autoscaler(policy)
        .unwrap_err()
        .to_string();
    assert!(e.contains("max-replicas (3)"), "{e}");
}
