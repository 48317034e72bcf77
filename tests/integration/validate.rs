//! `servesim validate` end to end on tables: a TensorRT-LLM offline throughput table (a
//! small in-repo fixture, `tests/fixtures/trtllm_throughput_small.csv`: real
//! configurations of the trtllm-perf-overview table with few requests, so the measured
//! figures are only there to be compared with), GenZ-style per-request tables written
//! on the fly, and a few real rows of the AIConfigurator serving summary
//! (`tests/fixtures/aic_serving_summary_small.csv`).

use crate::util::*;

fn fixture() -> std::path::PathBuf {
    root().join("tests/fixtures/trtllm_throughput_small.csv")
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn trtllm_throughput_table_validates_end_to_end() {
    let input = fixture();
    let (o, dir) = servesim(&["validate", input.to_str().unwrap(), "--output-dir", "out"]);
    ok(&o);
    let text = stdout(&o);
    for needle in [
        "total output throughput",
        "llama-3.1-8b-instruct_h100_tp1_pp1_fp8",
        "qwen3-30b-a3b_rtx6000problackwellserver_tp2_pp1_fp4",
        "llama-3.3-70b-instruct_rtx6000problackwellserver_tp1_pp2_fp4",
        "skipped: nvidia/Mistral-Large-3-675B-FP4",
        "wrote out/summary.json",
    ] {
        assert!(text.contains(needle), "stdout lacks `{needle}`:\n{text}");
    }
    let out = dir.path().join("out");
    let summary = json(&out.join("summary.json"));
    let sets = summary["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 3, "{summary}");
    assert_eq!(summary["overall"]["count"], 4, "{summary}");
    assert_eq!(summary["skipped"].as_array().unwrap().len(), 1);
    let by_name = |n: &str| sets.iter().find(|s| s["name"] == n).unwrap().clone();

    // The MoE group: attention DP over the listed TP2, experts spread over both GPUs.
    let moe = by_name("qwen3-30b-a3b_rtx6000problackwellserver_tp2_pp1_fp4");
    assert_eq!(moe["tensor_parallel_size"], 1);
    assert_eq!(moe["num_replicas"], 2);
    assert_eq!(moe["model"], "Qwen/Qwen3-30B-A3B-Instruct-2507");
    let dense = by_name("llama-3.3-70b-instruct_rtx6000problackwellserver_tp1_pp2_fp4");
    assert_eq!(dense["pipeline_parallel_size"], 2);
    assert_eq!(dense["model"], "meta-llama/Llama-3.3-70B-Instruct");

    let v = json(&out.join("llama-3.1-8b-instruct_h100_tp1_pp1_fp8/validation.json"));
    assert_eq!(v["kind"], "offline-throughput");
    assert_eq!(v["deployment"]["weight_dtype"], "fp8");
    assert_eq!(v["deployment"]["kv_cache_dtype"], "fp8");
    assert_eq!(v["deployment"]["max_model_len"], 1200);
    assert_eq!(v["metrics"][0]["metric"], "output_throughput");
    assert_eq!(v["metrics"][0]["errors"]["count"], 2);
    let fp4 = json(
        &out.join("llama-3.3-70b-instruct_rtx6000problackwellserver_tp1_pp2_fp4/validation.json"),
    );
    assert_eq!(fp4["deployment"]["weight_dtype"], "nvfp4");

    let csv =
        std::fs::read_to_string(out.join("llama-3.1-8b-instruct_h100_tp1_pp1_fp8/comparison.csv"))
            .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "line,isl,osl,num_requests,max_num_seqs,max_num_tokens,simulated_preemptions,measured_output_throughput_tok_per_s,simulated_output_throughput_tok_per_s,error_output_throughput_pct"
    );
    assert_eq!(lines.len(), 3);
    // Every request fits the KV cache at once (the cap is far above 64), so none is
    // preempted.
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(&first[..4], ["2", "128", "128", "64"]);
    assert!(first[4].parse::<u32>().unwrap() >= 64, "{csv}");
    // The PyTorch backend's budget (no engine build on this release).
    assert_eq!(first[5], "8192");
    assert_eq!(first[6], "0");
    let simulated: f64 = first[8].parse().unwrap();
    assert!(simulated > 0.0 && simulated.is_finite(), "{csv}");
    assert_eq!(first[7], "28312.00");
}

#[test]
fn malformed_throughput_row_names_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("tput.txt");
    let good = std::fs::read_to_string(fixture()).unwrap();
    let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
    lines[2] = lines[2].replace(",FP8,", ",INT4,");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    // The format is named explicitly (the extension says nothing).
    let o = servesim_in(
        dir.path(),
        &[
            "validate",
            bad.to_str().unwrap(),
            "--format",
            "trtllm-throughput",
        ],
    );
    fails_with(&o, &["tput.txt:3", "field `precision`", "INT4"]);
}

/// A GenZ-style table of one configuration: 12 requests, times in ms, a concurrency
/// column (so a closed loop), model and hardware columns (so no flags are needed).
fn genz_csv(dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = String::from(
        "request_id,model,hardware,concurrency,input_tokens,output_tokens,ttft_ms,tpot_ms,e2e_ms\n",
    );
    for i in 0..12u32 {
        let (inp, out, ttft, tpot) = (300 + 40 * i, 10 + i, 25.0 + f64::from(i), 9.0);
        let e2e = ttft + tpot * f64::from(out - 1);
        text += &format!("{i},meta-llama/Llama-3.1-8B,h100,2,{inp},{out},{ttft},{tpot},{e2e}\n");
    }
    let p = dir.join("genz.csv");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn genz_table_validates_end_to_end_with_its_replay_mode() {
    let dir = tempfile::tempdir().unwrap();
    let input = genz_csv(dir.path());
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "validate",
            "genz.csv",
            "--max-model-len",
            "4096",
            "--output-dir",
        ];
        a.extend_from_slice(extra);
        a
    };
    let o = servesim_in(dir.path(), &args(&["closed"]));
    ok(&o);
    let text = stdout(&o);
    for needle in [
        "genz: 12 requests of meta-llama/Llama-3.1-8B",
        "TTFT",
        "note: replay mode: closed loop at concurrency 2 (from the file's columns)",
        "TTFT in ms, TPOT in ms, E2E in ms",
    ] {
        assert!(text.contains(needle), "stdout lacks `{needle}`:\n{text}");
    }
    let v = json(&dir.path().join("closed/validation.json"));
    assert_eq!(v["replay"]["mode"], "closed-loop");
    assert_eq!(v["replay"]["concurrency"], 2);
    assert_eq!(v["metrics"][0]["errors"]["count"], 12);
    let csv = std::fs::read_to_string(dir.path().join("closed/comparison.csv")).unwrap();
    assert_eq!(csv.lines().count(), 13);
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("0,0.000000,300,10,0.025000,"),
        "{csv}"
    );

    // The flag replaces the column: an open loop at 5 req/s from the seed.
    let o = servesim_in(
        dir.path(),
        &args(&["open", "--request-rate", "5", "--seed", "2"]),
    );
    ok(&o);
    assert!(stdout(&o).contains("replay mode: open loop, Poisson arrivals at 5 req/s (given on the command line) regenerated in row order with seed 2"));
    let v = json(&dir.path().join("open/validation.json"));
    assert_eq!(v["replay"]["mode"], "regenerated");
    assert_eq!(v["replay"]["request_rate_rps"], 5.0);

    // The replay flags mean nothing to a measurement with its own send times.
    let o = servesim(&[
        "validate",
        fixture().to_str().unwrap(),
        "--concurrency",
        "4",
    ])
    .0;
    fails_with(
        &o,
        &["--concurrency and --request-rate apply to GenZ-style tables"],
    );
    assert!(input.is_file());
}

#[test]
fn genz_json_lines_of_two_configurations_validate_per_group() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for hw in ["h100", "a100-80gb"] {
        for i in 0..4u32 {
            text += &format!(
                "{{\"model\": \"meta-llama/Llama-3.1-8B\", \"gpu\": \"{hw}\", \"prompt_tokens\": {}, \"completion_tokens\": 8, \"ttft_s\": 0.05, \"itl_s\": 0.01}}\n",
                200 + 10 * i
            );
        }
    }
    std::fs::write(dir.path().join("runs.jsonl"), text).unwrap();
    let o = servesim_in(
        dir.path(),
        &[
            "validate",
            "runs.jsonl",
            "--max-model-len",
            "2048",
            "--output-dir",
            "out",
        ],
    );
    ok(&o);
    let text = stdout(&o);
    assert!(text.contains("llama-3.1-8b_a100-80gb"), "{text}");
    assert!(text.contains("burst"), "{text}");
    let summary = json(&dir.path().join("out/summary.json"));
    let sets = summary["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 2, "{summary}");
    assert_eq!(sets[0]["name"], "llama-3.1-8b_h100");
    assert_eq!(sets[0]["replay"]["mode"], "burst");
    assert_eq!(sets[1]["requests"], 4);
    assert!(
        sets[1]["hardware"].as_str().unwrap().starts_with("A100"),
        "{summary}"
    );
    let v = json(&dir.path().join("out/llama-3.1-8b_h100/validation.json"));
    assert_eq!(v["replay"]["mode"], "burst");
}

#[test]
fn aic_serving_summary_rows_validate_end_to_end() {
    let input = root().join("tests/fixtures/aic_serving_summary_small.csv");
    let (o, dir) = servesim(&["validate", input.to_str().unwrap(), "--output-dir", "out"]);
    ok(&o);
    let text = stdout(&o);
    for needle in [
        "mean TTFT and TPOT per closed-loop row",
        "trtllm-1.0.0rc3_llama-3.1-8b-instruct_h100-sxm5-80gb_tp1_bf16",
        "vllm-0.12.0_qwen3-32b_h100-sxm5-80gb_tp8_bf16",
        "TTFT med|err| %",
        "TPOT bias %",
        "skipped: vllm-0.19.0_minimax-m2.5_b200_tp1_fp4 (1 rows): model `MiniMaxAI/MiniMax-M2.5` has no shipped config",
        "wrote out/summary.json",
    ] {
        assert!(text.contains(needle), "stdout lacks `{needle}`:\n{text}");
    }
    let all = text.lines().find(|l| l.starts_with("all ")).unwrap();
    assert!(all.split_whitespace().any(|c| c == "3"), "{all}");
    let out = dir.path().join("out");
    let summary = json(&out.join("summary.json"));
    let sets = summary["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 2, "{summary}");
    assert_eq!(summary["overall"]["ttft"]["count"], 3);
    assert_eq!(summary["overall"]["tpot"]["count"], 3);
    let q = sets.iter().find(|s| s["engine"] == "vllm").unwrap();
    assert_eq!(q["serving_stack"], "vllm-v1-sync");
    assert_eq!(q["tensor_parallel_size"], 8);
    assert_eq!(q["rows"], 2);
    let t = sets.iter().find(|s| s["engine"] == "trtllm").unwrap();
    assert_eq!(t["serving_stack"], "trtllm");

    let v = json(&out.join("vllm-0.12.0_qwen3-32b_h100-sxm5-80gb_tp8_bf16/validation.json"));
    assert_eq!(v["kind"], "serving-summary");
    assert_eq!(v["replay"]["mode"], "closed-loop");
    assert_eq!(v["deployment"]["weight_dtype"], "bf16");
    assert_eq!(v["metrics"][0]["metric"], "ttft");
    assert_eq!(v["metrics"][1]["metric"], "tpot");
    let csv = std::fs::read_to_string(
        out.join("vllm-0.12.0_qwen3-32b_h100-sxm5-80gb_tp8_bf16/comparison.csv"),
    )
    .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "line,isl,osl,concurrency,num_requests,wip,simulated_preemptions,measured_ttft_s,simulated_ttft_s,error_ttft_pct,measured_tpot_s,simulated_tpot_s,error_tpot_pct"
    );
    assert!(
        lines[1].starts_with("3,1024,128,8,64,false,0,0.090797,"),
        "{csv}"
    );
    assert!(lines[2].starts_with("4,1024,128,16,64,false,"), "{csv}");
}

/// `fit-stack` with no measured set keeps every figure at its prior and says so, instead
/// of printing an undefined loss; the written file names the prior as its source.
#[test]
fn fit_stack_without_measurements_keeps_the_priors() {
    let (o, dir) = servesim(&[
        "fit-stack",
        "--serving-stack",
        "vllm-v1-sync",
        "--output",
        "fitted.toml",
    ]);
    ok(&o);
    let out = stdout(&o);
    assert!(
        out.contains("vllm-v1-sync: no measurement to fit on; host.step_us at its prior 0.0 µs"),
        "{out}"
    );
    assert!(!out.contains("NaN"), "{out}");
    let written = std::fs::read_to_string(dir.path().join("fitted.toml")).unwrap();
    assert!(
        written.contains("the prior (no measured set to fit on"),
        "{written}"
    );
}

/// `fit-stack --hold-step-us` refuses a negative or non-finite time, naming the flag,
/// and with no measured set holds the step at the given value.
#[test]
fn fit_stack_holds_the_step_it_is_given() {
    let fit = |hold: &str| servesim(&["fit-stack", "--serving-stack", "vllm-0.5", hold]);
    let (o, _dir) = fit("--hold-step-us=-5");
    fails_with(&o, &["--hold-step-us -5"]);
    let (o, _dir) = fit("--hold-step-us=1234.5");
    ok(&o);
    let out = stdout(&o);
    assert!(out.contains("host.step_us held at 1234.5 µs"), "{out}");
}
