use super::*;
use crate::engine::{EngineConfig, Replica, SchedulerKind};
use crate::metrics::{Recorder, Slo};
use crate::perf::fixed::FixedLatency;
use crate::sim::{NoObserver, RequestSource, Router, Simulation};

fn req(id: u64, arrival_s: f64, output: u32) -> Request {
    Request::new(id, SimTime::from_secs_f64(arrival_s), 16, output)
}

#[test]
fn a_block_bootstrap_lays_blocks_end_to_end() {
    // Arrivals at 0.5, 1.5, …, 9.5 s; blocks of 2 s hold two requests each.
    let reqs: Vec<Request> = (0..10)
        .map(|i| req(i, i as f64 + 0.5, 1 + i as u32))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let out = block_bootstrap(&reqs, 2.0, &mut rng);
    assert_eq!(out.len(), 10);
    for (k, pair) in out.chunks(2).enumerate() {
        // Each block keeps its offsets (0.5 and 1.5 s) at its new place.
        assert_eq!(
            pair[0].arrival,
            SimTime::from_secs_f64(2.0 * k as f64 + 0.5)
        );
        assert_eq!(
            pair[1].arrival,
            SimTime::from_secs_f64(2.0 * k as f64 + 1.5)
        );
        // …and its own requests, in order.
        assert_eq!(pair[1].output_tokens, pair[0].output_tokens + 1);
    }
    assert!(out.windows(2).all(|w| w[0].arrival <= w[1].arrival));
    assert_eq!(
        out.iter().map(|r| r.id).collect::<Vec<_>>(),
        (0..10).collect::<Vec<_>>()
    );
    // Seeded.
    let again = block_bootstrap(&reqs, 2.0, &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!(out, again);
}

#[test]
fn speed_factors_have_mean_one_and_their_spread() {
    let noise = RunNoise {
        prefill_cv: 0.05,
        decode_cv: 0.0,
        source: String::new(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let draws: Vec<(f64, f64)> = (0..20_000).map(|_| noise.draw(&mut rng)).collect();
    let n = draws.len() as f64;
    let mean = draws.iter().map(|d| d.0).sum::<f64>() / n;
    let sd = (draws.iter().map(|d| (d.0 - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!((mean - 1.0).abs() < 0.002, "{mean}");
    assert!((sd / mean - 0.05).abs() < 0.003, "{sd}");
    assert!(draws.iter().all(|d| d.1 == 1.0));
    let shipped = RunNoise::load(&DataPaths::builtin()).unwrap();
    assert!(shipped.prefill_cv > 0.0 && shipped.decode_cv > 0.0);
}

/// One request at a time, every iteration 1 ms: a request with `n` output tokens takes
/// n ms end to end, alone (arrivals 1 s apart never queue).
fn mean_e2e_s(reqs: Vec<Request>) -> Result<Summary> {
    let lat = FixedLatency::from_micros(1000, 0, 0);
    let mut cfg = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 4096);
    cfg.max_num_seqs = 1;
    let mut sim = Simulation::new(
        vec![Replica::new(0, cfg, Arc::new(lat))?],
        Router::default(),
    )?;
    let mut rec = Recorder::new(Slo::default());
    sim.run(
        RequestSource::Open(Box::new(reqs.into_iter().map(Ok))),
        &mut rec,
        &mut NoObserver,
    )?;
    Ok(rec.summary())
}

/// Interval coverage on a workload with a known answer: output lengths uniform on
/// 1..=20, so the population's mean E2E is 10.5 ms. Each of 100 "recorded" traces
/// holds 100 requests drawn from it; its 95 % interval of the mean E2E (200
/// replications, one request per block) should hold 10.5 ms about 95 times.
#[test]
fn the_95_percent_interval_covers_the_true_mean_about_95_percent_of_the_time() {
    let noise = RunNoise {
        prefill_cv: 0.0,
        decode_cv: 0.0,
        source: String::new(),
    };
    let mut covered = 0;
    let traces = 100;
    for t in 0..traces {
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + t);
        let reqs: Vec<Request> = (0..100)
            .map(|i| req(i, i as f64, rng.random_range(1..=20)))
            .collect();
        let reps = replicate(&reqs, 200, 1.0, &noise, t, 2, &|r, _| mean_e2e_s(r)).unwrap();
        let point = mean_e2e_s(reqs).unwrap();
        let iv = intervals(&point, &reps, 1.0, &noise).distributions["e2e_s"]["mean"];
        if iv.ci95[0] <= 0.0105 && 0.0105 <= iv.ci95[1] {
            covered += 1;
        }
    }
    eprintln!("covered {covered} of {traces}");
    assert!(
        (88..=99).contains(&covered),
        "covered {covered} of {traces}"
    );
}

#[test]
fn replications_do_not_depend_on_the_thread_count() {
    let noise = RunNoise::load(&DataPaths::builtin()).unwrap();
    let reqs: Vec<Request> = (0..50).map(|i| req(i, i as f64 * 0.01, 20)).collect();
    let run = |r: Vec<Request>, (p, d): (f64, f64)| {
        let mut s = mean_e2e_s(r)?;
        s.e2e_s.mean *= 0.5 * (p + d);
        Ok(s)
    };
    let one = replicate(&reqs, 8, 0.1, &noise, 5, 1, &run).unwrap();
    let four = replicate(&reqs, 8, 0.1, &noise, 5, 4, &run).unwrap();
    assert_eq!(one, four);
    assert!(replicate(&reqs, 0, 1.0, &noise, 0, 1, &run).is_err());
    assert!(replicate(&reqs, 2, 0.0, &noise, 0, 1, &run).is_err());
}
