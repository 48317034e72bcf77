//! Benchmark: runs dominated by start-up, through the CLI, median of 20 each.
//!
//! * one request on Llama-3.1-8B on an H100 (start-up alone);
//! * Vidur's own workload: 10,000 requests, Poisson at 0.75 req/s with Splitwise
//!   conversation lengths (resampled from the Azure 2023 conversation sample in
//!   `traces/`), Llama-2-70B on A100-80GB at TP2, vLLM V0 scheduler, 128 sequences,
//!   4,096 batched tokens.
//!
//! `cargo bench --bench small_runs`. Wall times include process start, reading the
//! latency model's data and the trace, and the summary on stdout (no output files).

use std::process::{Command, Stdio};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_servesim");
const RUNS: usize = 20;

/// Median wall time of `RUNS` runs of `servesim args`, ms.
fn median_ms(args: &[&str]) -> f64 {
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let out = Command::new(BIN)
                .args(args)
                .stdout(Stdio::null())
                .output()
                .expect("servesim");
            assert!(
                out.status.success(),
                "servesim {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2]
}

fn main() {
    let dir = std::env::temp_dir().join(format!("servesim-bench-small-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    let one = dir.join("one.csv");
    std::fs::write(
        &one,
        "request_id,arrival_time_s,input_tokens,output_tokens\n0,0,128,16\n",
    )
    .expect("write trace");
    let vidur = dir.join("vidur.csv");
    let root = env!("CARGO_MANIFEST_DIR");
    let sample = format!("{root}/traces/azure_conv_10min_every2nd.csv");
    let status = Command::new(BIN)
        .args([
            "trace",
            "gen",
            "--rate-rps",
            "0.75",
            "--num-requests",
            "10000",
        ])
        .args(["--resample-from", &sample, "--seed", "0", "-o"])
        .arg(&vidur)
        .status()
        .expect("servesim trace gen");
    assert!(status.success(), "trace generation failed");

    let one = one.to_str().expect("UTF-8 path");
    let ms = median_ms(&[
        "simulate",
        "--trace",
        one,
        "--model",
        "meta-llama/Llama-3.1-8B",
        "--hardware",
        "h100",
        "--no-output",
    ]);
    println!("one request, Llama-3.1-8B on H100:            {ms:.1} ms (median of {RUNS})");
    let vidur = vidur.to_str().expect("UTF-8 path");
    let ms = median_ms(&[
        "simulate",
        "--trace",
        vidur,
        "--model",
        "meta-llama/Llama-2-70b-hf",
        "--hardware",
        "a100-80gb",
        "--tensor-parallel-size",
        "2",
        "--scheduler",
        "vllm-v0",
        "--max-num-seqs",
        "128",
        "--max-num-batched-tokens",
        "4096",
        "--no-output",
    ]);
    println!("Vidur workload (10,000 requests, 70B A100 TP2): {ms:.1} ms (median of {RUNS})");
    let _ = std::fs::remove_dir_all(&dir);
}
