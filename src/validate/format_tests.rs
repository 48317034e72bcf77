//! Detection of the GenZ and serving-summary formats, and what their validations say
//! about the replay.

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn headers_pick_the_format_without_stealing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let genz = write(
        d,
        "g.csv",
        "request_id,prompt_tokens,completion_tokens,ttft_ms,tpot_ms\n0,10,3,5,1\n",
    );
    assert_eq!(detect(&genz).unwrap(), InputFormat::Genz);
    // servesim's requests.csv has ttft_s/tpot_s/e2e_s too, but its timestamps win.
    let run = write(
        d,
        "requests.csv",
        "request_id,arrival_time_s,input_tokens,output_tokens,first_token_time_s,finish_time_s,ttft_s,tpot_s,e2e_s\n0,0,10,3,0.1,0.2,0.1,0.05,0.2\n",
    );
    assert_eq!(detect(&run).unwrap(), InputFormat::Csv);
    let aic = write(
        d,
        "s.csv",
        "engine,engine_version,gpu,model,precision,tp,pp,isl,osl,concurrency,ttft_ms,tpot_ms\nvllm,0.12.0,h100-sxm5-80gb,Qwen/Qwen3-32B,bf16,2,1,1024,128,8,154,18\n",
    );
    assert_eq!(detect(&aic).unwrap(), InputFormat::AicSummary);
    let tput = write(
        d,
        "t.csv",
        "model,gpu,num_gpus,tp,pp,precision,isl,osl,num_requests,total_output_throughput_tok_s,ttft,e2e,input_tokens,output_tokens\nm,H100,1,1,1,FP8,1,1,1,1,1,1,1,1\n",
    );
    assert_eq!(detect(&tput).unwrap(), InputFormat::TrtllmThroughput);
    let jsonl = write(
        d,
        "g.jsonl",
        "{\"input_tokens\": 10, \"output_tokens\": 3, \"ttft\": 0.1, \"e2e\": 0.2}\n",
    );
    assert_eq!(detect(&jsonl).unwrap(), InputFormat::Genz);
    let lss = write(
        d,
        "requests.jsonl",
        "{\"queued_ts\": 1, \"first_token_ts\": 2, \"last_token_ts\": 3, \"input_toks\": 4, \"output_toks\": 5}\n",
    );
    assert_eq!(detect(&lss).unwrap(), InputFormat::Llmservingsim);
    // --format genz reads a servesim requests.csv as a table without timestamps.
    let Measurement::Genz(t) =
        open(&run, Some(InputFormat::Genz), &OpenOptions::default()).unwrap()
    else {
        panic!("a GenZ table");
    };
    assert_eq!(t.groups[0].run.requests.len(), 1);
}

fn genz_file(dir: &Path) -> std::path::PathBuf {
    let mut text =
        String::from("model,hardware,input_tokens,output_tokens,ttft_ms,tpot_ms,e2e_ms\n");
    for i in 0..12u32 {
        let (inp, out) = (200 + 50 * i, 8 + i);
        let (ttft, tpot) = (20.0 + f64::from(i), 8.0);
        let e2e = ttft + tpot * f64::from(out - 1);
        text += &format!("meta-llama/Llama-3.1-8B,h100,{inp},{out},{ttft},{tpot},{e2e}\n");
    }
    write(dir, "genz.csv", &text)
}

/// Each replay mode is stated in the notes and in `validation.json`.
#[test]
fn genz_replay_modes_are_stated() {
    let dir = tempfile::tempdir().unwrap();
    let p = genz_file(dir.path());
    let paths = DataPaths::builtin();
    let settings = Settings {
        deployment: DeploymentRequest {
            max_model_len: Some(4096),
            ..DeploymentRequest::default()
        },
        ..Settings::default()
    };
    let cases = [
        (None, None, "burst", "replay mode: burst"),
        (
            Some(3),
            None,
            "closed-loop",
            "replay mode: closed loop at concurrency 3",
        ),
        (
            None,
            Some(4.0),
            "regenerated",
            "replay mode: open loop, Poisson arrivals at 4 req/s",
        ),
    ];
    for (concurrency, request_rate, mode, note) in cases {
        let opts = OpenOptions {
            seed: 1,
            concurrency,
            request_rate,
            ..OpenOptions::default()
        };
        let Measurement::Genz(t) = open(&p, None, &opts).unwrap() else {
            panic!("a GenZ table");
        };
        assert_eq!(t.groups.len(), 1);
        let run = &t.groups[0].run;
        let v = validate_run("g", run, &settings, &paths).unwrap();
        assert_eq!(v.deployment.model, "meta-llama/Llama-3.1-8B");
        assert!(
            v.notes.iter().any(|n| n.starts_with(note)),
            "{mode}: {:?}",
            v.notes
        );
        for m in [Metric::Ttft, Metric::Tpot, Metric::E2e] {
            assert!(v.median_abs_pct(m).is_finite(), "{mode} {m:?}");
        }
        let out = dir.path().join(mode);
        v.write(&out).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("validation.json")).unwrap())
                .unwrap();
        assert_eq!(json["replay"]["mode"], mode, "{json}");
        match mode {
            "closed-loop" => assert_eq!(json["replay"]["concurrency"], 3),
            "regenerated" => {
                assert_eq!(json["replay"]["seed"], 1);
                assert_eq!(json["replay"]["request_rate_rps"], 4.0);
            }
            _ => {}
        }
        assert!(json["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with(note)));
    }
}

#[test]
fn a_few_summary_rows_replay_as_closed_loops() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "serving_summary.csv",
        "engine,engine_version,gpu,model,precision,gemm_quant,moe_quant,tp,pp,attention_dp,moe_tp,moe_ep,isl,osl,batch_size,concurrency,ttft_ms,tpot_ms,measured_date,image,wip,source_id,copies\n\
         vllm,0.12.0,h100-sxm5-80gb,Qwen/Qwen3-32B,bf16 (blank in source),,,8,1,,1,1,1024,128,8,8,91,8.7,,,,a,1\n\
         vllm,0.12.0,h100-sxm5-80gb,Qwen/Qwen3-32B,bf16 (blank in source),,,8,1,,1,1,1024,128,8,8,92,8.8,,,,b,1\n\
         vllm,0.19.0,b200,MiniMaxAI/MiniMax-M2.5,fp8,fp8,fp8,2,1,1,2,1,1024,1024,4,4,100,5,,,,c,1\n",
    );
    let Measurement::Summary(t) = open(&p, None, &OpenOptions::default()).unwrap() else {
        panic!("a serving summary");
    };
    assert_eq!((t.groups.len(), t.skipped.len()), (1, 1));
    let out = validate_summary(
        &t,
        &Settings::default(),
        &DataPaths::builtin(),
        |_| true,
        &|_, _| {},
    )
    .unwrap();
    let v = out[0].1.as_ref().unwrap();
    assert_eq!(v.kind, ValidationKind::ServingSummary);
    assert_eq!(v.replay, Some(ReplayMode::ClosedLoop { concurrency: None }));
    assert_eq!(v.deployment.tensor_parallel_size, 8);
    assert_eq!(v.deployment.serving_stack, "vllm-v1-sync");
    let (sim, meas) = v.rows.pairs(Metric::Tpot).unwrap();
    assert_eq!(meas, [0.0087, 0.0088]);
    // The repeated point is simulated once.
    assert_eq!(sim[0], sim[1]);
    assert!(sim[0] > 0.001 && sim[0] < 0.1, "{sim:?}");
    assert_eq!(
        v.rows.keys[0][..6],
        ["2", "1024", "128", "8", "64", "false"]
    );
    assert!(v
        .notes
        .iter()
        .any(|n| n.starts_with("replay mode: closed loop per row")));
    assert!(v.notes.iter().any(|n| n.contains("stack vllm-v1-sync")));
    // --serving-stack wins.
    let given = Settings {
        deployment: DeploymentRequest {
            serving_stack: Some("vllm-v1".into()),
            ..DeploymentRequest::default()
        },
        ..Settings::default()
    };
    let out = validate_summary(&t, &given, &DataPaths::builtin(), |_| true, &|_, _| {}).unwrap();
    assert_eq!(
        out[0].1.as_ref().unwrap().deployment.serving_stack,
        "vllm-v1"
    );

    // A launch rule beside the table that cannot be read stops the whole replay, once,
    // naming its file, line and key.
    write(
        dir.path(),
        "launch.toml",
        "requests_per_client = \"many\"\n",
    );
    let e = validate_summary(&t, &given, &DataPaths::builtin(), |_| true, &|_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("launch.toml:1: field `requests_per_client`"),
        "{e}"
    );
}

/// An SGLang `bench_serving` file (one result per line, with details) is told from
/// LLMServingSim's and GenZ's JSON lines, and each line becomes a run that replays
/// through the engine as a vLLM result would.
#[test]
fn sglang_result_lines_are_runs_one_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let line = |rate: &str| {
        format!(
            r#"{{"backend": "sglang", "request_rate": {rate}, "max_concurrency": 4, "input_lens": [64, 64, 64, 64], "output_lens": [8, 8, 8, 8], "ttfts": [0.02, 0.02, 0.03, 0.03], "itls": [[0.01,0.01,0.01,0.01,0.01,0.01,0.01],[0.01,0.01,0.01,0.01,0.01,0.01,0.01],[0.01,0.01,0.01,0.01,0.01,0.01,0.01],[0.01,0.01,0.01,0.01,0.01,0.01,0.01]], "errors": ["", "", "", ""]}}"#
        )
    };
    let p = write(
        dir.path(),
        "sglang.jsonl",
        &format!("{}\n{}\n", line("Infinity"), line("2.0")),
    );
    assert_eq!(detect(&p).unwrap(), InputFormat::SglangBench);
    let Measurement::Genz(t) = open(&p, None, &OpenOptions::default()).unwrap() else {
        panic!("expected one run per line")
    };
    assert_eq!(t.groups.len(), 2);
    let settings = Settings {
        deployment: DeploymentRequest {
            model: Some("meta-llama/Llama-3.1-8B".into()),
            ..DeploymentRequest::default()
        },
        ..Settings::default()
    };
    let paths = DataPaths::builtin();
    for g in &t.groups {
        let v = validate_run("s", &g.run, &settings, &paths).unwrap();
        let ttft = v.metrics.iter().find(|m| m.metric == Metric::Ttft).unwrap();
        assert_eq!(ttft.measured.count, 4);
        assert_eq!(ttft.simulated.count, 4);
        assert!(v
            .notes
            .iter()
            .any(|n| n.contains("one benchmark run of the file")));
    }
    // The line at a rate keeps its client's cap of 4 requests in flight.
    let v = validate_run("s", &t.groups[1].run, &settings, &paths).unwrap();
    assert!(
        v.notes
            .iter()
            .any(|n| n.contains("at most 4 requests in flight")),
        "{:?}",
        v.notes
    );
}

/// A vLLM result saved without `--save-detailed` replays its mean requests and compares
/// the printed statistics: the error is that of the means.
#[test]
fn a_vllm_summary_result_compares_its_means() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "r.json",
        r#"{"backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B", "request_rate": "inf", "max_concurrency": 4, "completed": 16, "total_input_tokens": 4096, "total_output_tokens": 512, "output_throughput": 900.0, "mean_ttft_ms": 40.0, "median_ttft_ms": 38.0, "p99_ttft_ms": 70.0, "mean_tpot_ms": 8.0, "mean_itl_ms": 8.0, "mean_e2el_ms": 300.0}"#,
    );
    assert_eq!(detect(&p).unwrap(), InputFormat::VllmBench);
    let Measurement::Run(run) = open(&p, None, &OpenOptions::default()).unwrap() else {
        panic!("expected a run")
    };
    assert!(run.summary.is_some());
    let v = validate_run("r", &run, &Settings::default(), &DataPaths::builtin()).unwrap();
    assert_eq!(
        v.replay,
        Some(ReplayMode::ClosedLoop {
            concurrency: Some(4)
        })
    );
    let ttft = v.metrics.iter().find(|m| m.metric == Metric::Ttft).unwrap();
    assert_eq!(ttft.simulated.count, 16);
    assert!((ttft.measured.p50 - 0.038).abs() < 1e-12);
    let want = 100.0 * (ttft.simulated.mean - 0.040) / 0.040;
    let e = ttft.errors.unwrap();
    assert!((e.bias_pct - want).abs() < 1e-9 && (e.median_abs_pct - want.abs()).abs() < 1e-9);
    let tput = v.throughput.unwrap();
    assert!((tput.measured_output_tokens_per_s - 900.0).abs() < 1e-12);
}

#[test]
fn the_shipped_public_runs_open_as_their_manifests_say() {
    // perf_model/measurements/serving-public-runs: every run a manifest lists opens, the
    // vLLM 0.15 closed loops as closed loops and the bursts as bursts.
    let root = DataPaths::builtin()
        .perf_model
        .join("measurements/serving-public-runs");
    let mut seen = 0;
    for set in [
        "llm-k8s",
        "benchmaq-sglang",
        "benchmaq-vllm",
        "benchmaxxing-vllm",
        "benchmaxxing-sglang",
    ] {
        let manifest = std::fs::read_to_string(root.join(set).join("runs.csv")).unwrap();
        for line in manifest.lines().skip(1) {
            let file = root.join(set).join(line.split(',').next().unwrap());
            let m = open(&file, None, &OpenOptions::default()).unwrap();
            let run = match m {
                Measurement::Run(r) => *r,
                Measurement::Genz(g) => g.groups.into_iter().next().unwrap().run,
                _ => panic!("{}: not a serving run", file.display()),
            };
            assert!(!run.requests.is_empty(), "{}", file.display());
            match set {
                "benchmaq-vllm"
                | "benchmaq-sglang"
                | "benchmaxxing-vllm"
                | "benchmaxxing-sglang" => {
                    assert_eq!(run.arrivals, ArrivalMode::AllAtOnce, "{}", file.display());
                    assert!(run.max_concurrency.is_some(), "{}", file.display());
                }
                // Poisson at 1, 4 and 16 req/s (no send times: regenerated), then all at once.
                _ if line.contains("qps_inf") => {
                    assert_eq!(run.arrivals, ArrivalMode::AllAtOnce);
                    assert_eq!(run.max_concurrency, None);
                }
                _ => assert!(matches!(run.arrivals, ArrivalMode::Regenerated { .. })),
            }
            seen += 1;
        }
    }
    assert_eq!(seen, 12 + 24 + 66 + 65 + 12);
}
