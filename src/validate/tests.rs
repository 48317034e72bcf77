//! Smoke tests: a simulated run, replayed as a measurement, validates against itself.

use super::*;
use crate::sim::{RequestSource, Router};
use crate::simulate::{run, RunOptions};
use crate::trace::Request;
use crate::units::SimTime;

fn request() -> DeploymentRequest {
    DeploymentRequest {
        model: Some("meta-llama/Llama-3.1-8B".into()),
        hardware: Some("h100".into()),
        max_model_len: Some(4096),
        ..DeploymentRequest::default()
    }
}

#[test]
fn a_simulated_run_validates_against_itself() {
    let paths = DataPaths::builtin();
    let d = Deployment::resolve(&request(), &paths).unwrap();
    // Latencies as clients see them, through the stack's API server, as `simulate`
    // writes them.
    let api = d.stack.api_server.clone();
    let setup = ReplicaSetup::new(d, &EngineOverrides::default(), &paths).unwrap();
    let reqs: Vec<Request> = (0..20u32)
        .map(|i| {
            Request::new(
                u64::from(i),
                SimTime::from_secs_f64(0.05 * f64::from(i)),
                100 + 37 * i,
                10 + 3 * i,
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim");
    run(
        setup.replicas(1).unwrap(),
        Router::default(),
        RequestSource::Open(Box::new(reqs.into_iter().map(Ok))),
        &RunOptions {
            output_dir: Some(out.clone()),
            api_server: Some(api),
            ..RunOptions::default()
        },
    )
    .unwrap();

    let csv = out.join("requests.csv");
    assert_eq!(detect(&csv).unwrap(), InputFormat::Csv);
    let Measurement::Run(measured) = open(&csv, None, &OpenOptions::default()).unwrap() else {
        panic!("a run");
    };
    assert_eq!(measured.requests.len(), 20);
    let settings = Settings {
        deployment: request(),
        ..Settings::default()
    };
    let v = validate_run("self", &measured, &settings, &paths).unwrap();
    for m in [Metric::Ttft, Metric::Tpot, Metric::E2e] {
        let e = v
            .metrics
            .iter()
            .find(|r| r.metric == m)
            .unwrap()
            .errors
            .unwrap();
        assert_eq!(e.count, 20, "{m:?}");
        // requests.csv keeps nanoseconds: the replay is exact up to rounding.
        assert!(e.median_abs_pct < 1e-3, "{m:?}: {e:?}");
        assert!(e.pearson_r > 0.999_999, "{m:?}: {e:?}");
    }
    let t = v.throughput.unwrap();
    assert!(t.error_pct.abs() < 1e-3, "{t:?}");

    let files = dir.path().join("validation");
    v.write(&files).unwrap();
    let csv = std::fs::read_to_string(files.join("comparison.csv")).unwrap();
    assert_eq!(csv.lines().count(), 21);
    assert!(csv.starts_with("request_id,arrival_s,input_tokens,output_tokens,measured_ttft_s,"));
    let svg = std::fs::read_to_string(files.join("validation.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("TPOT: CDF"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(files.join("validation.json")).unwrap())
            .unwrap();
    assert_eq!(json["kind"], "serving-run");
    assert_eq!(json["metrics"][0]["metric"], "ttft");

    // A dense model's data-parallel ranks are independent engines: DP given on the
    // command line replays on that many replicas, as a DP size in the file does.
    let dp2 = Settings {
        deployment: DeploymentRequest {
            data_parallel_size: Some(2),
            ..request()
        },
        ..Settings::default()
    };
    assert_eq!(
        validate_run("dp", &measured, &dp2, &paths)
            .unwrap()
            .num_replicas,
        2
    );
    let mut hinted = measured.clone();
    hinted.hints.data_parallel_size = Some(3);
    assert_eq!(
        validate_run("dp", &hinted, &settings, &paths)
            .unwrap()
            .num_replicas,
        3
    );
    assert_eq!(
        validate_run("dp", &hinted, &dp2, &paths)
            .unwrap()
            .num_replicas,
        2
    );
}

#[test]
fn a_tiny_splitwise_table_validates() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("perf_model.csv");
    std::fs::write(
        &p,
        "model,hardware,prompt_size,batch_size,token_size,peak_power,average_power,prompt_time,token_time,e2e_time,tensor_parallel\n\
         llama2-70b,a100-80gb,512,1,128,1,1,200,50,6500,4\n\
         llama2-70b,a100-80gb,1024,4,128,1,1,900,55,7900,4\n\
         bloom-176b,a100-80gb,512,1,128,1,1,300,70,9000,8\n",
    )
    .unwrap();
    let Measurement::Table(t) = open(&p, None, &OpenOptions::default()).unwrap() else {
        panic!("a table");
    };
    assert_eq!(t.skipped.len(), 1);
    let out = validate_table(&t, &Settings::default(), &DataPaths::builtin(), |_| true).unwrap();
    assert_eq!(out.len(), 1);
    let v = out[0].1.as_ref().unwrap();
    assert_eq!(v.kind, ValidationKind::StepTimes);
    assert_eq!(v.deployment.tensor_parallel_size, 4);
    assert!(v.median_abs_pct(Metric::Ttft).is_finite());
    assert!(v.median_abs_pct(Metric::Tpot).is_finite());
    assert_eq!(v.rows.keys.len(), 2);
    // Given parameters replace the selection.
    let slow = Settings {
        roofline: Some(crate::perf::roofline::RooflineParams {
            memory_efficiency: 0.1,
            ..crate::perf::roofline::RooflineParams::load(&DataPaths::builtin().perf_model).unwrap()
        }),
        ..Settings::default()
    };
    let out = validate_table(&t, &slow, &DataPaths::builtin(), |_| true).unwrap();
    let w = out[0].1.as_ref().unwrap();
    assert!(w.notes.iter().any(|n| n.contains("--roofline-params")));
    let tpot = |v: &Validation| simulated_mean(v, Metric::Tpot);
    assert!(tpot(w) > 2.0 * tpot(v));
}

#[test]
fn unknown_inputs_are_refused_with_the_formats() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.csv");
    std::fs::write(&p, "a,b\n1,2\n").unwrap();
    let e = detect(&p).unwrap_err().to_string();
    assert!(e.contains("x.csv:1") && e.contains("--format"), "{e}");
}

/// A run recorded with DP2 + expert parallelism becomes a DP2/EP2 deployment; flags
/// still win, and plain DP leaves the deployment alone (independent replicas).
#[test]
fn data_and_expert_parallel_hints_fill_the_deployment() {
    use crate::validate::EngineHints;
    let hints = EngineHints {
        data_parallel_size: Some(2),
        enable_expert_parallel: Some(true),
        ..Default::default()
    };
    let (mut req, mut ov) = (DeploymentRequest::default(), EngineOverrides::default());
    hints.apply(&mut req, &mut ov);
    assert_eq!(req.data_parallel_size, Some(2));
    assert!(req.enable_expert_parallel);

    let mut flagged = DeploymentRequest {
        data_parallel_size: Some(4),
        ..Default::default()
    };
    hints.apply(&mut flagged, &mut ov);
    assert_eq!(flagged.data_parallel_size, Some(4));
    assert!(!flagged.enable_expert_parallel);

    let plain = EngineHints {
        data_parallel_size: Some(2),
        ..Default::default()
    };
    let mut req = DeploymentRequest::default();
    plain.apply(&mut req, &mut ov);
    assert_eq!(req.data_parallel_size, None);
}

#[test]
fn a_tiny_argonne_ttft_table_validates_on_ttft() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("fig21.csv");
    std::fs::write(
        &p,
        "Hardware,Num of Hardware,Framework,Model,Input Length,Output Length,Batch Size,Latency\n\
         Nvidia GH200 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,1024,1,16,0.36\n\
         AMD MI250 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,1024,1,16,2.16\n",
    )
    .unwrap();
    assert_eq!(detect(&p).unwrap(), InputFormat::Argonne);
    let Measurement::Table(t) =
        open(&p, Some(InputFormat::Argonne), &OpenOptions::default()).unwrap()
    else {
        panic!("a table");
    };
    let out = validate_table(&t, &Settings::default(), &DataPaths::builtin(), |_| true).unwrap();
    assert_eq!(out.len(), 2);
    for (slug, v) in &out {
        let v = v.as_ref().unwrap();
        assert_eq!(v.kind, ValidationKind::StaticBatch, "{slug}");
        let ttft = v.metrics.iter().find(|m| m.metric == Metric::Ttft).unwrap();
        assert_eq!(ttft.errors.unwrap().count, 1, "{slug}");
        assert!(ttft.simulated.mean > 0.0, "{slug}");
        assert!(v.metrics.iter().all(|m| m.metric == Metric::Ttft), "{slug}");
        assert!(
            v.notes.iter().any(|n| n.contains("last first token")),
            "{slug}"
        );
    }
    // One MI250 in the table is one OAM: TP2 over its two GCDs.
    let (slug, mi) = out.iter().find(|(s, _)| s.contains("mi250")).unwrap();
    assert_eq!(slug, "llama-2-7b-hf_amd-mi250-gpu_tp2");
    let mi = mi.as_ref().unwrap();
    assert_eq!(mi.deployment.hardware, "MI250 (per GCD)");
    assert_eq!(mi.deployment.tensor_parallel_size, 2);
    // The Splitwise format is not an Argonne table.
    let e = open(&p, Some(InputFormat::Splitwise), &OpenOptions::default()).unwrap_err();
    assert!(e.to_string().contains("--format"), "{e}");
}

#[test]
fn a_throughput_table_is_detected_and_opened() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("throughput_offline.csv");
    std::fs::write(
        &p,
        "model,gpu,num_gpus,tp,pp,precision,isl,osl,num_requests,total_output_throughput_tok_s\n\
         nvidia/Llama-3.1-8B-Instruct-FP8,H100,1,1,1,FP8,128,128,8,28312\n",
    )
    .unwrap();
    assert_eq!(detect(&p).unwrap(), InputFormat::TrtllmThroughput);
    let Measurement::Throughput(t) = open(&p, None, &OpenOptions::default()).unwrap() else {
        panic!("a throughput table");
    };
    let out = validate_throughput(&t, &Settings::default(), &DataPaths::builtin(), |_| true);
    assert_eq!(out.len(), 1);
    let v = out[0].1.as_ref().unwrap();
    assert_eq!(v.name, "llama-3.1-8b-instruct_h100_tp1_pp1_fp8");
    assert!(v.median_abs_pct(Metric::OutputThroughput).is_finite());
    // A flag wins over the mapping and turns the per-row KV cap off.
    let given = Settings {
        engine: EngineOverrides {
            max_num_seqs: Some(2),
            ..EngineOverrides::default()
        },
        ..Settings::default()
    };
    let out = validate_throughput(&t, &given, &DataPaths::builtin(), |_| true);
    let w = out[0].1.as_ref().unwrap();
    assert_eq!(w.rows.keys[0][4], "2");
    assert!(v.rows.keys[0][4].parse::<u32>().unwrap() > 8);
}

/// A replay runs on the system its measurements came from: the RTX PRO 6000 link
/// calibrated on the LLMServingSim set's runs is selected for a multi-GPU run of that
/// set, never for another set's run, a single GPU, or when a link is given.
#[test]
fn a_set_replays_on_its_own_systems_calibrated_link() {
    let paths = DataPaths::builtin();
    let req = |tp: u32, link: Option<&str>| DeploymentRequest {
        model: Some("Qwen/Qwen3-32B".into()),
        hardware: Some("rtx-pro-6000".into()),
        tensor_parallel_size: Some(tp),
        intra_node_link: link.map(str::to_owned),
        ..Default::default()
    };
    let own =
        std::path::Path::new("../shared/validation/llmservingsim-vllm-bench/RTXPRO6000_Qwen3-32B");
    let other =
        std::path::Path::new("../shared/validation/trtllm-perf-overview/throughput_offline.csv");
    let resolved = |r: &DeploymentRequest| Deployment::resolve(r, &paths).unwrap();
    let r = req(2, None);
    let mut d = resolved(&r);
    let file = use_own_system_link(&r, &mut d, &paths, own);
    assert!(file.is_some_and(|f| f.ends_with("network/link_calibration.toml")));
    assert!(d.cluster.calibrated_intra_node);
    for (r, source) in [
        (req(2, None), other),
        (req(1, None), own),
        (req(2, Some("pcie5")), own),
    ] {
        let mut d = resolved(&r);
        let before = d.cluster.calibrated_intra_node;
        assert!(use_own_system_link(&r, &mut d, &paths, source).is_none());
        assert_eq!(d.cluster.calibrated_intra_node, before);
    }
}

/// The static table `text` (written to a file `name`), with the rows of `framework`
/// where it mixes engines (default vLLM).
fn static_table(name: &str, text: &str, framework: Option<&str>) -> StaticTable {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    let opts = OpenOptions {
        framework: framework.map(str::to_owned),
        ..OpenOptions::default()
    };
    let Measurement::Table(t) = open(&p, None, &opts).unwrap() else {
        panic!("a table");
    };
    t
}

/// The Argonne runs passed `--enable-chunked-prefill` as a `store_true` flag (off): a
/// long-context model (Qwen2-7B, 131,072 tokens) is replayed with whole-prompt
/// prefills, not vLLM's long-context default; a flag still wins.
#[test]
fn argonne_tables_replay_chunked_prefill_off_as_their_scripts_passed_it() {
    let t = static_table(
        "all.csv",
        "Hardware,Num of Hardware,Framework,Model,Input Output Length,Batch Size,Latency,Throughput\n\
         Nvidia A100 GPU,2,vLLM,Qwen/Qwen2-7B,128,16,2.0,2048\n",
        None,
    );
    let engine = |settings: &Settings| {
        let out = validate_table(&t, settings, &DataPaths::builtin(), |_| true).unwrap();
        out[0].1.as_ref().unwrap().engine.clone().unwrap()
    };
    let e = engine(&Settings::default());
    assert_eq!(e.max_model_len, 131_072);
    assert!(!e.enable_chunked_prefill);
    assert_eq!(e.max_num_batched_tokens, 131_072);
    let mut chunked = Settings::default();
    chunked.engine.enable_chunked_prefill = Some(true);
    assert!(engine(&chunked).enable_chunked_prefill);
}

/// The Splitwise characterization predates vLLM's CUDA graphs and custom all-reduce: replayed
/// eagerly and through NCCL, with a note saying why; flags set to false win.
#[test]
fn splitwise_tables_replay_eagerly_through_nccl_as_engines_of_their_date_ran() {
    let t = static_table(
        "perf_model.csv",
        "model,hardware,prompt_size,batch_size,token_size,peak_power,average_power,prompt_time,token_time,e2e_time,tensor_parallel\n\
         llama2-70b,h100-80gb,512,1,128,1,1,60,30,3900,8\n",
        None,
    );
    let run = |settings: &Settings| {
        let out = validate_table(&t, settings, &DataPaths::builtin(), |_| true).unwrap();
        out[0].1.as_ref().unwrap().clone()
    };
    let v = run(&Settings::default());
    assert!(
        v.latency_model.contains("eager (no CUDA graphs)"),
        "{}",
        v.latency_model
    );
    assert!(
        v.latency_model.contains("NCCL all-reduce"),
        "{}",
        v.latency_model
    );
    assert!(v
        .notes
        .iter()
        .any(|n| n.contains("predates vLLM's CUDA graphs")));
    let mut flags = Settings::default();
    flags.deployment.enforce_eager = Some(false);
    flags.deployment.disable_custom_all_reduce = Some(false);
    let w = run(&flags);
    assert!(
        !w.latency_model.contains("eager (no CUDA graphs)"),
        "{}",
        w.latency_model
    );
    assert!(
        !w.latency_model.contains("NCCL all-reduce"),
        "{}",
        w.latency_model
    );
    assert!(!w
        .notes
        .iter()
        .any(|n| n.contains("predates vLLM's CUDA graphs")));
    // Eager launches and NCCL make the TP8 decode step longer.
    let tpot = |v: &Validation| simulated_mean(v, Metric::Tpot);
    assert!(tpot(&v) > tpot(&w), "{} {}", tpot(&v), tpot(&w));
}

/// vLLM's XPU build captures no graphs: the Intel rows of Argonne's table replay eagerly
/// (the hardware note says why), the NVIDIA rows with graphs; a flag set to false wins.
#[test]
fn intel_rows_replay_eagerly_as_the_xpu_build_runs() {
    let t = static_table(
        "all.csv",
        "Hardware,Num of Hardware,Framework,Model,Input Output Length,Batch Size,Latency,Throughput\n\
         Intel Max 1550,1,vLLM,meta-llama/Llama-2-7b-hf,128,1,2.0,128\n\
         Nvidia A100 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,128,1,2.0,128\n",
        None,
    );
    let run = |settings: &Settings| {
        let out = validate_table(&t, settings, &DataPaths::builtin(), |_| true).unwrap();
        assert_eq!(out.len(), 2);
        out.into_iter()
            .map(|(_, v)| v.unwrap())
            .partition::<Vec<_>, _>(|v| v.deployment.hardware.contains("Max 1550"))
    };
    let eager = |v: &Validation| v.latency_model.contains("eager (no CUDA graphs)");
    let (intel, nvidia) = run(&Settings::default());
    assert!(eager(&intel[0]), "{}", intel[0].latency_model);
    assert!(!eager(&nvidia[0]), "{}", nvidia[0].latency_model);
    assert!(intel[0].notes.iter().any(|n| n.contains("XPU build")));
    let mut flags = Settings::default();
    flags.deployment.enforce_eager = Some(false);
    let (intel, _) = run(&flags);
    assert!(!eager(&intel[0]), "{}", intel[0].latency_model);
}

/// Argonne's table mixes engines: the TensorRT-LLM rows replay on TensorRT-LLM's stack
/// of their date, not vLLM's; an engine no stack stands for is an error naming the
/// column, unless `--serving-stack` names one.
#[test]
fn argonne_rows_of_another_engine_replay_on_that_engines_stack() {
    let table = |framework: &str| {
        static_table(
            "all.csv",
            "Hardware,Num of Hardware,Framework,Model,Input Output Length,Batch Size,Latency,Throughput\n\
             Nvidia A100 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,128,1,1.6,160\n\
             Nvidia A100 GPU,1,TensorRT-LLM,meta-llama/Llama-2-7b-hf,128,1,1.5,170\n\
             Nvidia A100 GPU,1,llama.cpp,meta-llama/Llama-2-7b-hf,128,1,3.0,85\n",
            Some(framework),
        )
    };
    let paths = DataPaths::builtin();
    let model = |t: &StaticTable, settings: &Settings| {
        let out = validate_table(t, settings, &paths, |_| true).unwrap();
        out[0].1.as_ref().unwrap().latency_model.clone()
    };
    let trt = table("TensorRT-LLM");
    assert!(model(&trt, &Settings::default()).contains("serving stack trtllm-0.11"));
    let out = validate_table(&trt, &Settings::default(), &paths, |_| true).unwrap();
    let notes = &out[0].1.as_ref().unwrap().notes;
    assert!(
        notes.iter().any(|n| n.contains("TensorRT-LLM rows, replayed on that engine's stack `trtllm-0.11`")),
        "{notes:?}"
    );
    // The vLLM rows of the A100 ran about 0.6.1 (the mapping's release for that device).
    assert!(model(&table("vLLM"), &Settings::default()).contains("serving stack vllm-0.6"));
    let cpp = table("llama.cpp");
    let err = validate_table(&cpp, &Settings::default(), &paths, |_| true).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("Framework") && msg.contains("llama.cpp"),
        "{msg}"
    );
    let mut named = Settings::default();
    named.deployment.serving_stack = Some("vllm-0.5".into());
    assert!(model(&cpp, &named).contains("serving stack vllm-0.5"));
    assert!(model(&trt, &named).contains("serving stack vllm-0.5"));
    assert!(model(&table("vLLM"), &named).contains("serving stack vllm-0.5"));
}

/// Each engine's stack names that engine in its `framework` key, which `fit-stack` reads
/// a table's rows by; the vLLM stacks take the default.
#[test]
fn each_engines_stack_names_that_engine() {
    let paths = DataPaths::builtin();
    for (framework, stack) in groups::FRAMEWORK_STACKS {
        let s = crate::stack::ServingStack::load(&paths, Some(stack)).unwrap();
        assert_eq!(s.framework, *framework, "{stack}");
    }
    for (stack, framework) in [
        (TABLE_STACK, crate::stack::DEFAULT_FRAMEWORK),
        (crate::validate::mapping::ROCM_TABLE_STACK, "vLLM"),
        ("sglang", "SGLang"),
        ("trtllm", "TensorRT-LLM"),
    ] {
        let s = crate::stack::ServingStack::load(&paths, Some(stack)).unwrap();
        assert_eq!(s.framework, framework, "{stack}");
    }
}

/// The simulated mean of `metric` in `v`.
fn simulated_mean(v: &Validation, metric: Metric) -> f64 {
    v.metrics
        .iter()
        .find(|m| m.metric == metric)
        .unwrap()
        .simulated
        .mean
}
