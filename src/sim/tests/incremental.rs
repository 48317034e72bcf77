//! The incremental API `serve` drives: aborts of running, waiting and preempted requests.

use super::*;

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
