//! A 1,000-point sweep over the 10-minute Azure conversation sample (1,434 requests per
//! point): 2 devices × 2 TP × 5 replica counts × 2 token budgets × 5 max-num-seqs × 5
//! rate scales. Prints the wall time (target: under 5 minutes on 2 cores).
//!
//! `cargo bench --bench sweep` (add `-- N` for N threads).

use servesim::paths::DataPaths;
use servesim::plan::{exec, run_points, SweepConfig, SweepContext};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

const GRID: &str = r#"
name = "bench-1000"
model = "meta-llama/Llama-3.1-8B"
max-model-len = 8192
slo-ttft-s = 2.0
slo-tpot-s = 0.05
[grid]
hardware = ["h100", "a100-80gb"]
tensor-parallel-size = [1, 2]
num-replicas = [1, 2, 4, 6, 8]
max-num-batched-tokens = [2048, 8192]
max-num-seqs = [32, 64, 128, 256, 512]
[workload]
trace = "../traces/azure_conv_10min_every2nd.csv"
rate-scale = [1, 2, 4, 8, 16]
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let jobs = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or_else(exec::default_jobs);
    let cfg: SweepConfig = toml::from_str(GRID)?;
    let ctx = SweepContext::new(
        cfg,
        Path::new("benches/sweep.rs"),
        &DataPaths::builtin(),
        &BTreeMap::new(),
    )?;
    let n = ctx.grid.num_points();
    let idx: Vec<usize> = (0..n).collect();
    let t = Instant::now();
    let rows = run_points(&ctx, &idx, jobs, &|| {})?;
    let secs = t.elapsed().as_secs_f64();
    let ok = rows.iter().filter(|r| r.get("status") == "ok").count();
    let requests: f64 = rows.iter().filter_map(|r| r.num("completed")).sum();
    println!(
        "sweep: {n} points ({ok} ok) over a 10-minute trace on {jobs} threads in {secs:.1} s ({:.0} simulated requests/s)",
        requests / secs
    );
    Ok(())
}
