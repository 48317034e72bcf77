//! Benchmark: simulate 1,000,000 requests (Poisson at 30 requests/s, ShareGPT-like
//! lognormal lengths) on one replica of Llama-3.1-8B on an H100 with the default
//! latency model, and report wall time, simulated time and peak memory.
//!
//! `cargo bench --bench simulate_1m` (set `SERVESIM_BENCH_REQUESTS` to change the count).
//! This is a single long run, not a statistical micro-benchmark, so it uses no harness.

use servesim::deployment::{Deployment, DeploymentRequest};
use servesim::engine::config::EngineOverrides;
use servesim::paths::DataPaths;
use servesim::setup::ReplicaSetup;
use servesim::sim::{RequestSource, Router};
use servesim::simulate::{run, RunOptions};
use servesim::trace::synth::{
    ArrivalProcess, LengthDist, LengthModel, SynthConfig, SynthLimit, SynthTrace,
};
use std::time::Instant;

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let n: u64 = std::env::var("SERVESIM_BENCH_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let paths = DataPaths::builtin();
    let d = Deployment::resolve(
        &DeploymentRequest {
            model: Some("meta-llama/Llama-3.1-8B".into()),
            hardware: Some("h100".into()),
            max_model_len: Some(8192),
            ..Default::default()
        },
        &paths,
    )
    .expect("deployment");
    let setup = ReplicaSetup::new(d, &EngineOverrides::default(), &paths).expect("setup");
    // ShareGPT-like: long-tailed prompts (mean 256) and outputs (mean 200).
    let trace = SynthTrace::new(SynthConfig {
        arrival: ArrivalProcess::Poisson { rate_rps: 30.0 },
        lengths: LengthModel::Independent {
            input: LengthDist::LogNormal {
                mean: 256.0,
                cv: 1.5,
                max: Some(6144),
            },
            output: LengthDist::LogNormal {
                mean: 200.0,
                cv: 1.2,
                max: Some(2048),
            },
        },
        limit: SynthLimit::Requests(n),
        seed: 0,
    })
    .expect("trace");
    let start = Instant::now();
    let result = run(
        setup.replicas(1).expect("replicas"),
        Router::default(),
        RequestSource::Open(Box::new(trace.map(Ok))),
        &RunOptions::default(),
    )
    .expect("run");
    let wall = start.elapsed().as_secs_f64();
    let sim = result.stats.end_time.as_secs_f64();
    let s = &result.summary;
    println!(
        "requests:        {} completed, {} rejected",
        s.completed, s.rejected
    );
    println!("iterations:      {}", s.engine.iterations);
    println!("simulated time:  {sim:.0} s");
    println!("wall time:       {wall:.2} s");
    println!(
        "speed:           {:.0}× real time, {:.0} requests/s",
        sim / wall,
        n as f64 / wall
    );
    if let Some(mib) = peak_rss_mib() {
        println!("peak memory:     {mib:.0} MiB");
    }
    println!(
        "TTFT p50 {:.1} ms, TPOT p50 {:.2} ms, mean batch {:.1}",
        s.ttft_s.p50 * 1e3,
        s.tpot_s.p50 * 1e3,
        s.engine.batch_size_mean
    );
}
