//! Benchmark: the CLI path end to end on a million requests. A 1,000,000-row trace CSV
//! (Poisson at 30 requests/s, ShareGPT-like lognormal lengths: mean 256 in, 200 out) is
//! generated first (not timed); then `servesim simulate` reads it and writes every
//! output file (requests.csv, timeseries.csv, summary.json, config.json) for one replica
//! of Llama-3.1-8B on an H100 with the default (measured) latency model. Prints the wall
//! time and the peak resident memory of the simulate process; then the same for 64
//! replicas sharing a million requests that arrive 64 times as fast.
//!
//! `cargo bench --bench simulate_1m` (set `SERVESIM_BENCH_REQUESTS` to change the count).
//! One long run, not a statistical micro-benchmark, so it uses no harness. The engine is
//! single-threaded; only the start-up reads its profile files on every core.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_servesim");

/// Peak resident memory of process `pid` so far, MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Write a trace of `n` Poisson requests at `rate_rps` to `path` (not timed).
fn generate(path: &Path, n: u64, rate_rps: u32) {
    let status = Command::new(BIN)
        .args(["trace", "gen", "--arrival", "poisson"])
        .args(["--rate-rps", &rate_rps.to_string()])
        .args(["--num-requests", &n.to_string()])
        .args(["--input-len", "lognormal:256:1.5:6144"])
        .args(["--output-len", "lognormal:200:1.2:2048"])
        .args(["--seed", "0", "-o"])
        .arg(path)
        .status()
        .expect("servesim trace gen");
    assert!(status.success(), "trace generation failed");
}

/// One timed `servesim simulate` of `trace` on `replicas` replicas writing into `out`:
/// (wall seconds, peak resident MiB, stdout).
fn simulate(trace: &Path, replicas: u32, out: &Path) -> (f64, f64, String) {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(["simulate", "--trace"])
        .arg(trace)
        .args(["--model", "meta-llama/Llama-3.1-8B", "--hardware", "h100"])
        .args(["--num-replicas", &replicas.to_string()])
        .args(["--max-model-len", "8192", "--output-dir"])
        .arg(out)
        .stdout(Stdio::piped())
        .spawn()
        .expect("servesim simulate");
    // VmHWM only grows; the last reading before the process exits is its peak (up to
    // the final few milliseconds of writing files).
    let mut peak = 0.0_f64;
    let status = loop {
        if let Some(mib) = peak_rss_mib(child.id()) {
            peak = peak.max(mib);
        }
        if let Some(s) = child.try_wait().expect("waiting for simulate") {
            break s;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let wall = start.elapsed().as_secs_f64();
    let stdout = std::io::read_to_string(child.stdout.take().expect("piped")).unwrap_or_default();
    assert!(status.success(), "simulate failed:\n{stdout}");
    (wall, peak, stdout)
}

fn main() {
    let n: u64 = std::env::var("SERVESIM_BENCH_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("servesim-bench-1m-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let trace = dir.join("trace.csv");
    generate(&trace, n, 30);
    let out = dir.join("out");
    let (wall, peak, stdout) = simulate(&trace, 1, &out);
    for line in stdout
        .lines()
        .filter(|l| l.starts_with("requests:") || l.starts_with("engine:") || l.starts_with("TTFT"))
    {
        println!("{line}");
    }
    let files = [
        "requests.csv",
        "timeseries.csv",
        "summary.json",
        "config.json",
    ];
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(out.join(f)).map_or(0, |m| m.len()))
        .sum();
    println!(
        "requests:        {n} (CSV in, {:.0} MB of outputs written)",
        bytes as f64 / 1e6
    );
    println!("wall time:       {wall:.2} s (trace read, simulation, all outputs)");
    println!("peak memory:     {peak:.0} MiB");

    // The same requests at 64 times the rate on 64 replicas: the same load per replica
    // (and about as many iterations in all), so the difference is the router's and the
    // event queue's cost of many replicas.
    let replicas = 64;
    let trace64 = dir.join("trace64.csv");
    generate(&trace64, n, 30 * replicas);
    let (wall64, peak64, _) = simulate(&trace64, replicas, &dir.join("out64"));
    println!(
        "{replicas} replicas at {replicas}x the rate: {wall64:.2} s ({:.2}x one replica), peak memory {peak64:.0} MiB",
        wall64 / wall
    );
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}
