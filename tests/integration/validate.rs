//! `servesim validate` on a TensorRT-LLM offline throughput table: a small in-repo
//! fixture (`tests/fixtures/trtllm_throughput_small.csv`: real configurations of the
//! trtllm-perf-overview table with few requests, so the measured figures are only
//! there to be compared with) run end to end.

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
        "skipped: Llama-4-Scout",
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
    assert_eq!(dense["model"], "meta-llama/Llama-3.1-70B");

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
        "line,isl,osl,num_requests,max_num_seqs,simulated_preemptions,measured_output_throughput_tok_per_s,simulated_output_throughput_tok_per_s,error_output_throughput_pct"
    );
    assert_eq!(lines.len(), 3);
    // Every request fits the KV cache at once (the cap is far above 64), so none is
    // preempted.
    let first: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(&first[..4], ["2", "128", "128", "64"]);
    assert!(first[4].parse::<u32>().unwrap() >= 64, "{csv}");
    assert_eq!(first[5], "0");
    let simulated: f64 = first[7].parse().unwrap();
    assert!(simulated > 0.0 && simulated.is_finite(), "{csv}");
    assert_eq!(first[6], "28312.00");
}

#[test]
fn malformed_throughput_row_names_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("tput.txt");
    let good = std::fs::read_to_string(fixture()).unwrap();
    let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
    lines[2] = lines[2].replace(",FP8,", ",FP16,");
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
    fails_with(&o, &["tput.txt:3", "field `precision`", "FP16"]);
}
