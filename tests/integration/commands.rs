//! Every subcommand runs on shipped data and prints what it promises.

use crate::util::*;

#[test]
fn default_simulation_runs_and_writes_its_files() {
    let (o, dir) = servesim(&["simulate", "--max-requests", "200"]);
    ok(&o);
    let out = stdout(&o);
    assert!(
        out.contains("Llama-3.1-8B") && out.contains("H100"),
        "{out}"
    );
    assert!(out.contains("TTFT (ms)"), "{out}");
    let run = dir
        .path()
        .join("output/llama-3.1-8b_h100-sxm5-80gb_azure_conv_5min");
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["completed"], 200);
    assert_eq!(summary["rejected"], 0);
    for k in ["ttft_s", "tpot_s", "e2e_s", "itl_s", "queue_s"] {
        for q in ["mean", "p50", "p90", "p99"] {
            let v = summary[k][q].as_f64().unwrap();
            assert!(v > 0.0, "{k}.{q} = {v}");
        }
    }
    assert!(summary["output_tokens_per_s"].as_f64().unwrap() > 0.0);
    let csv = std::fs::read_to_string(run.join("requests.csv")).unwrap();
    assert!(csv.starts_with("request_id,replica,arrival_time_s,input_tokens,output_tokens,scheduled_time_s,first_token_time_s,finish_time_s,ttft_s,tpot_s,e2e_s,queue_s,preemptions,prefix_hit_tokens,status,attempts"));
    assert_eq!(csv.lines().count(), 201);
}

#[test]
fn every_example_config_runs() {
    let root = root();
    let mut n = 0;
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        // sweep_*/plan_* files are grids for `sweep`/`plan` (checked in tests/plan.rs).
        let grid = name.starts_with("sweep_") || name.starts_with("plan_");
        if p.extension().is_some_and(|x| x == "toml") && !grid {
            let o = servesim_in(
                &root,
                &[
                    "simulate",
                    "--config",
                    p.to_str().unwrap(),
                    "--no-output",
                    "--max-requests",
                    "60",
                ],
            );
            assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
            n += 1;
        }
    }
    assert!(n >= 3);
}

#[test]
fn memory_json_has_the_promised_keys() {
    let (o, _d) = servesim(&[
        "memory",
        "--model",
        "llama-3.1-70b",
        "--hardware",
        "h100",
        "-tp",
        "4",
        "--format",
        "json",
    ]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    for k in [
        "params_total",
        "params_active",
        "weight_bytes_per_gpu",
        "kv_bytes_per_token",
        "kv_cache_bytes_per_gpu",
        "max_kv_tokens",
        "fits",
    ] {
        assert!(!v[k].is_null(), "missing {k}");
    }
    assert_eq!(v["fits"], true);
    assert_eq!(v["params_total"], 70_553_706_496u64);
}

#[test]
fn memory_min_gpus_finds_the_smallest_fit() {
    let (o, _d) = servesim(&[
        "memory",
        "--model",
        "llama-3.1-70b",
        "--hardware",
        "h100",
        "--min-gpus",
        "--max-model-len",
        "8192",
        "--format",
        "json",
    ]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    // 141 GB of bf16 weights need two 80 GB GPUs.
    assert_eq!(
        v["tensor_parallel_size"].as_u64().unwrap() * v["pipeline_parallel_size"].as_u64().unwrap(),
        2
    );
    // Without --hardware: one row per catalog device.
    let (o, _d) = servesim(&[
        "memory",
        "--model",
        "llama-3.1-8b",
        "--format",
        "csv",
        "--max-model-len",
        "8192",
    ]);
    ok(&o);
    assert!(stdout(&o).lines().count() > 20);
}

#[test]
fn estimate_reports_latency_and_bottleneck() {
    let (o, _d) = servesim(&[
        "estimate",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "h100",
        "--batch-size",
        "4",
        "--input-len",
        "512",
        "--output-len",
        "64",
        "--format",
        "json",
    ]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let ttft = v["ttft_s"].as_f64().unwrap();
    let tpot = v["tpot_s"].as_f64().unwrap();
    assert!(ttft > 0.0 && tpot > 0.0 && v["e2e_s"].as_f64().unwrap() > ttft);
    assert_eq!(v["bottleneck"]["phase"], "decode");
    assert!(!v["prefill_ops"].as_array().unwrap().is_empty());
}

#[test]
fn list_shows_every_shipped_model_and_device() {
    let (o, _d) = servesim(&["list", "models", "--format", "csv"]);
    ok(&o);
    assert_eq!(stdout(&o).lines().count(), 97, "96 models and a header");
    let (o, _d) = servesim(&["list", "hardware"]);
    ok(&o);
    for name in ["H100-SXM5-80GB", "RTX4090", "MI300X"] {
        assert!(stdout(&o).contains(name), "{name} missing");
    }
}

/// `list stacks` shows every stack file with what its constants were fitted on, and the
/// JSON carries the same rows.
#[test]
fn list_stacks_shows_every_stack_and_its_fitted_sets() {
    let (o, _d) = servesim(&["list", "stacks", "--format", "json"]);
    ok(&o);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows = rows.as_array().unwrap();
    let files = std::fs::read_dir(root().join("perf_model/stacks"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert_eq!(rows.len(), files);
    let v1 = rows.iter().find(|r| r["name"] == "vllm-v1").unwrap();
    assert_eq!(v1["kernel_generation"], "v1");
    assert!(v1["fitted_on"]
        .as_str()
        .unwrap()
        .contains("blis-vllm015-h100"));
    let rocm = rows.iter().find(|r| r["name"] == "vllm-0.6-rocm").unwrap();
    assert_eq!(rocm["platforms"], "AMD");
    assert!(rocm["host_per_kernel_us"].as_f64().unwrap() > 0.0);
    let (o, _d) = servesim(&["list", "stacks"]);
    ok(&o);
    assert!(stdout(&o).contains("vllm-0.6-rocm") && stdout(&o).contains("fitted on"));
}

/// The README's `servesim list stacks` block is the command's real output (refitting a
/// stack changes both; `scripts/readme_examples.py --only list` refreshes it).
#[test]
fn readme_list_stacks_is_real_output() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("$ servesim list stacks\n")
        .expect("README shows `servesim list stacks`")
        + "$ servesim list stacks\n".len();
    let expected = &readme[start..start + readme[start..].find("```").unwrap()];
    let (o, _d) = servesim(&["list", "stacks"]);
    ok(&o);
    assert_eq!(stdout(&o), expected);
}

#[test]
fn rejected_requests_come_with_the_reason() {
    // TensorRT-LLM without chunked context turns the longer of two prompts away.
    let (_dir, trace) = temp_file(
        "t.csv",
        "arrival_time_s,input_tokens,output_tokens\n0.0,9000,8\n0.1,100,8\n",
    );
    let (o, _d) = servesim(&[
        "simulate",
        "--serving-stack",
        "trtllm",
        "--trace",
        trace.to_str().unwrap(),
        "--no-output",
    ]);
    ok(&o);
    let out = stdout(&o);
    assert!(out.contains("1 completed, 1 rejected"), "{out}");
    assert!(
        out.contains("prompts over the 8192-token budget")
            && out.contains("--enable-chunked-prefill"),
        "{out}"
    );
}

#[test]
fn closed_loop_concurrency_bounds_the_batch() {
    let (o, _d) = servesim(&[
        "simulate",
        "--concurrency",
        "4",
        "--max-requests",
        "80",
        "--no-output",
        "--format",
        "json",
    ]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["completed"], 80);
    assert!(v["engine"]["batch_size_max"].as_u64().unwrap() <= 4);
}

/// `--max-concurrency`: the trace's arrival times still count, but never more than N
/// requests run at once; with a cap above the load nothing changes; it refuses
/// `--concurrency` beside it and a cap of zero.
#[test]
fn max_concurrency_caps_an_open_loop() {
    let run = |extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--max-requests",
            "80",
            "--no-output",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let (o, _d) = servesim(&args);
        ok(&o);
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()
    };
    let capped = run(&["--max-concurrency", "3"]);
    assert_eq!(capped["completed"], 80);
    assert!(capped["engine"]["batch_size_max"].as_u64().unwrap() <= 3);
    // A cap above the load: the same requests at the same times (the time-weighted
    // engine means may differ in their last bit: the loop visits a few more instants).
    let (loose, open) = (run(&["--max-concurrency", "100000"]), run(&[]));
    for key in [
        "completed",
        "duration_s",
        "ttft_s",
        "tpot_s",
        "e2e_s",
        "itl_s",
    ] {
        assert_eq!(loose[key], open[key], "{key}");
    }
    let (o, _d) = servesim(&["simulate", "--max-concurrency", "0", "--no-output"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--max-concurrency must be at least 1"));
    let (o, _d) = servesim(&["simulate", "--max-concurrency", "2", "--concurrency", "2"]);
    assert!(!o.status.success());
}

/// A vLLM result recorded by a closed loop (no rate limit, `max_concurrency` 2) replays
/// as a closed loop of 2 clients, whatever send times it recorded; the flags override.
#[test]
fn a_closed_loop_recording_replays_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.json");
    let n = 12;
    let list = |v: &str| vec![v; n].join(",");
    let starts: Vec<String> = (0..n)
        .map(|i| format!("{}", 100.0 + 0.001 * i as f64))
        .collect();
    std::fs::write(
        &f,
        format!(
            r#"{{"request_rate": "inf", "max_concurrency": 2, "input_lens": [{}], "output_lens": [{}], "ttfts": [{}], "itls": [{}], "start_times": [{}]}}"#,
            list("200"),
            list("20"),
            list("0.05"),
            list("[]"),
            starts.join(",")
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["simulate", "--trace", f.to_str().unwrap(), "--no-output"];
        args.extend_from_slice(extra);
        args.extend(["--format", "json"]);
        let (o, _d) = servesim(&args);
        ok(&o);
        (
            serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (v, err) = run(&[]);
    assert!(err.contains("closed loop of 2 clients"), "{err}");
    assert_eq!(v["completed"], 12);
    assert_eq!(v["engine"]["batch_size_max"], 2);
    let (v, err) = run(&["--max-concurrency", "4"]);
    assert!(!err.contains("closed loop of"), "{err}");
    assert_eq!(v["engine"]["batch_size_max"], 4);
}

/// Run the shipped example config `name` into a temporary folder: the folder (kept
/// while the guard lives), the run's output folder and its summary.json.
fn run_example(name: &str) -> (tempfile::TempDir, std::path::PathBuf, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let root = root();
    let cfg = root.join("examples").join(name);
    let o = servesim_in(
        &root,
        &[
            "simulate",
            "--config",
            cfg.to_str().unwrap(),
            "--output-dir",
            out.to_str().unwrap(),
        ],
    );
    ok(&o);
    let summary =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    (dir, out, summary)
}

#[test]
fn slo_windows_reach_the_summary_and_the_timeseries() {
    let (_dir, out, summary) = run_example("slo_windows_llama8b_h100.toml");
    let w = &summary["slo_windows"];
    assert_eq!(w["window_s"], 10.0);
    assert_eq!(w["target"], 0.9);
    let (n, meeting) = (
        w["windows"].as_u64().unwrap(),
        w["windows_meeting_target"].as_u64().unwrap(),
    );
    assert!(n >= 5 && meeting < n, "{w}");
    let worst = w["worst"]["attainment"].as_f64().unwrap();
    assert!(worst <= summary["slo_attainment"].as_f64().unwrap(), "{w}");
    // Every timeseries row carries its window's attainment; the worst window's rows
    // carry the worst value.
    let ts = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    let mut lines = ts.lines();
    assert!(lines.next().unwrap().ends_with(",slo_window_attainment"));
    let start = w["worst"]["start_s"].as_f64().unwrap();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let t: f64 = f[0].parse().unwrap();
        if t >= start && t < start + 10.0 {
            let a: f64 = f.last().unwrap().parse().unwrap();
            assert!((a - worst).abs() < 1e-4, "{line}");
        }
    }
    // The flags need an SLO and each other.
    let (o, _d) = servesim(&["simulate", "--slo-window-s", "10", "--no-output"]);
    fails_with(&o, &["--slo-window-s needs an SLO"]);
    let (o, _d) = servesim(&[
        "simulate",
        "--slo-ttft-s",
        "1",
        "--slo-window-target",
        "0.5",
        "--no-output",
    ]);
    fails_with(&o, &["--slo-window-target needs --slo-window-s"]);
    let (o, _d) = servesim(&[
        "simulate",
        "--slo-ttft-s",
        "1",
        "--slo-window-s",
        "-5",
        "--no-output",
    ]);
    fails_with(&o, &["--slo-window-s"]);
}

#[test]
fn runs_report_their_cost_per_token() {
    let root = root();
    let cfg = root.join("examples/cost_llama8b_h100.toml");
    let o = servesim_in(
        &root,
        &[
            "simulate",
            "--config",
            cfg.to_str().unwrap(),
            "--no-output",
            "--format",
            "json",
        ],
    );
    ok(&o);
    let s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let c = &s["cost"];
    // 1 GPU at 2.50 USD/h rent + 0.7 kW × 0.12 USD/kWh = 2.584 USD/h over the run.
    assert_eq!(c["gpus"], 1);
    assert!((c["rent_usd_per_hour"].as_f64().unwrap() - 2.5).abs() < 1e-12);
    assert!((c["energy_usd_per_hour"].as_f64().unwrap() - 0.084).abs() < 1e-12);
    let hours = s["duration_s"].as_f64().unwrap() / 3600.0;
    let usd = c["usd"].as_f64().unwrap();
    assert!((usd - 2.584 * hours).abs() < 1e-9, "{c}");
    let out = s["output_tokens"].as_f64().unwrap();
    let total = out + s["input_tokens"].as_f64().unwrap();
    assert!((c["usd_per_million_output_tokens"].as_f64().unwrap() - usd / out * 1e6).abs() < 1e-9);
    assert!((c["usd_per_million_total_tokens"].as_f64().unwrap() - usd / total * 1e6).abs() < 1e-9);
    // Flags that need each other, and ranges.
    let (o, _d) = servesim(&["simulate", "--power-w", "700", "--no-output"]);
    fails_with(&o, &["--power-w needs --price-per-kwh"]);
    let (o, _d) = servesim(&["simulate", "--price-per-kwh", "-1", "--no-output"]);
    fails_with(&o, &["--price-per-kwh"]);
    // A sweep's rows carry the energy price and both costs per million tokens.
    let dir = tempfile::tempdir().unwrap();
    let o = servesim_in(
        &root,
        &[
            "sweep",
            "--config",
            "examples/sweep_llama8b_small.toml",
            "--output-dir",
            dir.path().to_str().unwrap(),
            "--price-per-kwh",
            "0.1",
            "--power-w",
            "1000",
            "--no-charts",
        ],
    );
    ok(&o);
    let mut r = csv::Reader::from_path(dir.path().join("points.csv")).unwrap();
    let h = r.headers().unwrap().clone();
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    let row = r.records().next().unwrap().unwrap();
    let num = |name: &str| row[col(name)].parse::<f64>().unwrap();
    assert!((num("energy_usd_per_gpu_hour") - 0.1).abs() < 1e-9);
    let per_hour = num("cost_usd_per_hour");
    assert!((per_hour - (num("price_usd_per_gpu_hour") + 0.1) * num("gpus")).abs() < 1e-6);
    let expect = per_hour / (num("total_tokens_per_s") * 3600.0) * 1e6;
    assert!((num("usd_per_million_total_tokens") - expect).abs() < 1e-4 * expect);
}

#[test]
fn impatient_clients_end_every_request_once_with_their_outcome() {
    let (_dir, out, summary) = run_example("client_retries_llama8b_h100.toml");
    let c = &summary["clients"];
    let completed = summary["completed"].as_u64().unwrap();
    let gave_up = c["timed_out"].as_u64().unwrap() + c["abandoned"].as_u64().unwrap();
    assert!(gave_up > 0 && c["retries"].as_u64().unwrap() > 0, "{c}");
    // requests.csv: one row per request of the trace, its status and attempts.
    let csv = std::fs::read_to_string(out.join("requests.csv")).unwrap();
    let mut ids = std::collections::BTreeSet::new();
    let (mut finished, mut ended_early, mut retried) = (0, 0, 0);
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert!(ids.insert(f[0].to_owned()), "request {} ended twice", f[0]);
        let attempts: u32 = f[15].parse().unwrap();
        assert!((1..=3).contains(&attempts), "{line}");
        retried += u64::from(attempts - 1);
        match f[14] {
            "finished" => finished += 1,
            "timed_out" | "abandoned" => {
                ended_early += 1;
                assert!(f[10].is_empty(), "no E2E for a request given up: {line}");
            }
            s => panic!("status {s}: {line}"),
        }
    }
    assert_eq!(ids.len(), 1445);
    assert_eq!((finished, ended_early), (completed, gave_up));
    assert_eq!(retried, c["retries"].as_u64().unwrap());
    // The flags are checked.
    let (o, _d) = servesim(&["simulate", "--max-retries", "2", "--no-output"]);
    fails_with(&o, &["--client-timeout-s"]);
    let (o, _d) = servesim(&["simulate", "--client-timeout-s", "-1", "--no-output"]);
    fails_with(&o, &["--client-timeout-s must be"]);
    let (o, _d) = servesim(&[
        "simulate",
        "--client-timeout-s",
        "5",
        "--retry-backoff-s",
        "10",
        "--retry-backoff-max-s",
        "2",
        "--no-output",
    ]);
    fails_with(&o, &["backoff"]);
}

#[test]
fn failed_replicas_lose_their_requests_and_restart() {
    let (_dir, out, summary) = run_example("failures_llama8b_h100.toml");
    let f = &summary["failures"];
    assert_eq!(f["outages"], 2, "{f}");
    // Replica 0 down from 10 s and replica 2 from 25 s, each for its outage plus a
    // restart of more than a minute: down until the end of the run.
    let end = summary["duration_s"].as_f64().unwrap();
    let down = f["replica_down_s"].as_f64().unwrap();
    assert!(
        (down - ((end - 10.0) + (end - 25.0))).abs() < 1.0,
        "{f} over {end} s"
    );
    assert!(summary["clients"]["retries"].as_u64().unwrap() > 0);
    // No request on replica 0 after it failed; every request ends once.
    let csv = std::fs::read_to_string(out.join("requests.csv")).unwrap();
    let mut n = 0;
    for line in csv.lines().skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        n += 1;
        let (replica, finish): (u32, f64) = (c[1].parse().unwrap(), c[7].parse().unwrap());
        if c[14] == "finished" && replica == 0 {
            // It is back only after 10 + 20 + 63 s, past the end of the run.
            assert!(finish <= 10.0, "replica 0 served after failing: {line}");
        }
    }
    assert_eq!(n, 1445);
    // The flags are checked.
    let (o, _d) = servesim(&["simulate", "--mtbf-h", "1", "--no-output"]);
    fails_with(&o, &["--mttr-min"]);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("f.csv");
    std::fs::write(&bad, "time_s,replica,duration_s\n5,7,1\n").unwrap();
    let (o, _d) = servesim(&[
        "simulate",
        "--failures",
        bad.to_str().unwrap(),
        "--no-output",
    ]);
    fails_with(&o, &["replica 7"]);
    std::fs::write(&bad, "time_s,replica,duration_s\n5,0,soon\n").unwrap();
    let (o, _d) = servesim(&[
        "simulate",
        "--failures",
        bad.to_str().unwrap(),
        "--no-output",
    ]);
    fails_with(&o, &["line 2", "duration_s"]);
}

#[test]
fn an_autoscaled_hour_reports_its_replicas_and_gpu_hours() {
    let (_dir, out, summary) = run_example("autoscale_llama70b_h100.toml");
    let a = &summary["autoscale"];
    let peak = a["peak_replicas"].as_u64().unwrap();
    let mean = a["mean_replicas"].as_f64().unwrap();
    assert!(
        peak > 1 && peak <= 6 && mean >= 1.0 && mean < peak as f64,
        "{a}"
    );
    // GPU-hours: the mean replicas × 4 GPUs over the run; the static fleet at the peak.
    let hours = summary["duration_s"].as_f64().unwrap() / 3600.0;
    let gpu_hours = a["gpu_hours"].as_f64().unwrap();
    assert!((gpu_hours - mean * 4.0 * hours).abs() < 0.05, "{a}");
    let static_peak = a["static_peak_gpu_hours"].as_f64().unwrap();
    assert!((static_peak - peak as f64 * 4.0 * hours).abs() < 0.05 && gpu_hours < static_peak);
    assert!(
        summary.get("cost").is_none(),
        "the whole-fleet cost would bill parked replicas"
    );
    // timeseries.csv: the replicas column starts at min-replicas and reaches the peak.
    let ts = std::fs::read_to_string(out.join("timeseries.csv")).unwrap();
    let mut lines = ts.lines();
    assert!(lines.next().unwrap().ends_with(",replicas"));
    let counts: Vec<u64> = lines
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts[0], 1);
    assert_eq!(counts.iter().max().copied(), Some(peak));
}

#[test]
fn replications_give_every_statistic_an_interval() {
    let (_dir, _out, summary) = run_example("replications_llama8b_h100.toml");
    let iv = &summary["intervals"];
    assert_eq!(iv["replications"], 50);
    assert_eq!(iv["block_s"], 15.0);
    for (dist, stat) in [("ttft_s", "p99"), ("tpot_s", "p50"), ("e2e_s", "mean")] {
        let i = &iv[dist][stat];
        let (v, lo, hi) = (
            i["value"].as_f64().unwrap(),
            i["ci95"][0].as_f64().unwrap(),
            i["ci95"][1].as_f64().unwrap(),
        );
        assert_eq!(
            v,
            summary[dist][stat].as_f64().unwrap(),
            "the run's own value"
        );
        assert!(lo < hi && lo > 0.0, "{dist} {stat}: {i}");
    }
    let t = &iv["output_tokens_per_s"];
    assert!(t["ci95"][0].as_f64().unwrap() < t["ci95"][1].as_f64().unwrap());
    // The flags are checked.
    let (o, _d) = servesim(&["simulate", "--bootstrap-block-s", "10", "--no-output"]);
    fails_with(&o, &["--bootstrap-block-s needs --replications"]);
    let (o, _d) = servesim(&["simulate", "--replications", "0", "--no-output"]);
    fails_with(&o, &["--replications must be at least 1"]);
}
