use super::*;
use crate::hardware::LinkSpec;
use crate::perf::StepShape;

fn paths() -> DataPaths {
    DataPaths::builtin()
}

/// The error loading `stack`'s file with every line starting with `key` set to `value`.
fn load_error_with_line(stack: &ServingStack, key: &str, value: &str) -> String {
    let text = std::fs::read_to_string(&stack.path).unwrap();
    let edited: String = text
        .lines()
        .map(|l| {
            if l.split('=').next().is_some_and(|k| k.trim() == key) {
                format!("{key} = {value}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    load_error(&edited)
}

/// The error loading a stack file `bad.toml` holding `text`.
fn load_error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, text).unwrap();
    ServingStack::load(&paths(), Some(bad.to_str().unwrap()))
        .unwrap_err()
        .to_string()
}

fn decodes(n: u32, ctx: u32) -> StepShape {
    let mut s = StepShape::new();
    for _ in 0..n {
        s.push_decode(ctx);
    }
    s
}

#[test]
fn every_shipped_stack_loads_and_the_default_is_vllm_v1() {
    let names = ServingStack::names(&paths());
    for want in [
        "vllm-v1",
        "vllm-v1-sync",
        "vllm-0.6",
        "vllm-0.5",
        "vllm-0.6-rocm",
        "sglang",
        "trtllm",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
    for n in &names {
        let s = ServingStack::load(&paths(), Some(n)).unwrap();
        assert_eq!(&s.name, n);
        assert!(!s.description.is_empty());
    }
    let d = ServingStack::load(&paths(), None).unwrap();
    assert_eq!(d.name, DEFAULT_STACK);
    assert!(d.scheduler.async_scheduling);
    assert_eq!(d.scheduler.kind, SchedulerKind::VllmV1);
    let v0 = ServingStack::load(&paths(), Some("VLLM-0.6")).unwrap();
    assert_eq!(v0.scheduler.kind, SchedulerKind::VllmV0);
    assert!(!v0.scheduler.enable_chunked_prefill);
}

#[test]
fn unknown_stacks_and_bad_fields_are_named() {
    let e = ServingStack::load(&paths(), Some("vllm-v2"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown serving stack `vllm-v2`") && e.contains("vllm-v1"),
        "{e}"
    );
    let v1 = ServingStack::load(&paths(), Some("vllm-v1")).unwrap();
    let e = load_error_with_line(&v1, "step_us", "-1.0");
    assert!(e.contains("bad.toml") && e.contains("host.step_us"), "{e}");
    let v06 = ServingStack::load(&paths(), Some("vllm-0.6")).unwrap();
    for key in ["per_sequence_serial_us", "prior_per_sequence_serial_us"] {
        let e = load_error_with_line(&v06, key, "-5.0");
        assert!(
            e.contains("bad.toml") && e.contains(&format!("host.{key}")),
            "{e}"
        );
    }
    let text = std::fs::read_to_string(&v1.path).unwrap();
    let e = load_error(&text.replace("mode = \"full-and-piecewise\"", "mode = \"sometimes\""));
    assert!(e.contains("bad.toml:") && e.contains("sometimes"), "{e}");
    let e = load_error(&text.replace("max_num_seqs = 1024", "max_num_seqs = 0"));
    assert!(
        e.contains("scheduler.large_device.max_num_seqs") && e.contains("at least 1"),
        "{e}"
    );
}

#[test]
fn graphs_pad_to_the_captured_size_and_large_or_mixed_batches_follow_the_mode() {
    let v1 = ServingStack::load(&paths(), Some("vllm-v1"))
        .unwrap()
        .execution;
    let p = v1.plan(&decodes(5, 100));
    assert_eq!((p.kind, p.tokens), (GraphKind::Full, 8.0));
    let p = v1.plan(&decodes(300, 100));
    assert_eq!((p.kind, p.tokens), (GraphKind::Full, 304.0));
    let mut mixed = decodes(3, 100);
    mixed.push_prefill(100, 0);
    let p = v1.plan(&mixed);
    assert_eq!((p.kind, p.tokens), (GraphKind::Piecewise, 104.0));
    mixed.push_prefill(2000, 0);
    let p = v1.plan(&mixed);
    assert_eq!((p.kind, p.tokens), (GraphKind::Eager, 2103.0));

    let v0 = ServingStack::load(&paths(), Some("vllm-0.6"))
        .unwrap()
        .execution;
    assert_eq!(v0.plan(&decodes(3, 100)).kind, GraphKind::Full);
    assert_eq!(
        v0.plan(&decodes(3, 9000)).kind,
        GraphKind::Eager,
        "beyond max_seq_len_to_capture"
    );
    assert_eq!(v0.plan(&decodes(257, 100)).kind, GraphKind::Eager);
    let mut prefill = StepShape::new();
    prefill.push_prefill(16, 0);
    assert_eq!(v0.plan(&prefill).kind, GraphKind::Eager);
}

#[test]
fn step_time_adds_or_overlaps_host_work_and_launches_bound_eager_steps() {
    let mut e = ServingStack::load(&paths(), Some("vllm-0.6"))
        .unwrap()
        .execution;
    e.host.step_us = 100.0;
    e.host.per_sequence_us = 10.0;
    e.host.per_sequence_serial_us = 0.0;
    e.host.overlap = HostOverlap::Serial;
    e.kernel_launch_us = 8.0;
    let shape = decodes(4, 100);
    let graph = e.plan(&shape);
    let cost = StepCost {
        gpu_us: 1000.0,
        kernels: 500.0,
        layers: 32.0,
    };
    // Serial: kernels + per-sequence work + exposed time.
    assert_eq!(e.step_us(&graph, &cost, &shape), 1000.0 + 40.0 + 100.0);
    // Eager: 500 launches × 8 µs outlast the 1 ms of kernels.
    let eager = ExecPlan {
        kind: GraphKind::Eager,
        tokens: 4.0,
    };
    assert_eq!(e.step_us(&eager, &cost, &shape), 4000.0 + 40.0 + 100.0);
    // Overlapped: the per-sequence work hides behind the GPU unless it is longer.
    e.host.overlap = HostOverlap::Async;
    assert_eq!(e.step_us(&graph, &cost, &shape), 1000.0 + 100.0);
    e.host.per_sequence_us = 400.0;
    assert_eq!(e.step_us(&graph, &cost, &shape), 1600.0 + 100.0);
    // A dispatch gap per kernel adds to the GPU's time whatever the overlap.
    e.host.per_kernel_us = 2.0;
    assert_eq!(e.step_us(&graph, &cost, &shape), 1600.0 + 100.0 + 1000.0);
    // Per-sequence work the overlap does not reach adds whatever the overlap.
    e.host.per_kernel_us = 0.0;
    e.host.per_sequence_us = 10.0;
    e.host.per_sequence_serial_us = 30.0;
    assert_eq!(e.step_us(&graph, &cost, &shape), 1000.0 + 100.0 + 120.0);
    e.host.overlap = HostOverlap::Serial;
    assert_eq!(
        e.step_us(&graph, &cost, &shape),
        1000.0 + 100.0 + 40.0 + 120.0
    );
    // A multi-step group's follow-on iteration repeats neither the host step nor the
    // between-iteration work per sequence; the output work per sequence stays.
    let mut follow = shape.clone();
    follow.follow_on = true;
    assert_eq!(e.step_us(&graph, &cost, &follow), 1000.0 + 40.0);
}

fn nvlink() -> LinkSpec {
    LinkSpec {
        key: "nvlink4-nvswitch".into(),
        name: "NVLink4".into(),
        bandwidth_bytes_per_s: 450e9,
        pair_bandwidth_bytes_per_s: 450e9,
        latency_s: 2.9e-6,
        allreduce_bus_efficiency: 0.82,
        beyond_pair_bus_efficiency: None,
        copy_efficiency: None,
        max_gpus: None,
    }
}

#[test]
fn custom_all_reduce_one_shot_two_shot_and_limits() {
    let c = ServingStack::load(&paths(), Some("vllm-v1"))
        .unwrap()
        .custom_all_reduce
        .unwrap();
    let link = nvlink();
    assert!(c.applies(&link, 4, false));
    assert!(!c.applies(&link, 3, false), "3 GPUs are not supported");
    assert!(!c.applies(&link, 8, true), "not across nodes");
    let pcie = LinkSpec {
        key: "pcie5".into(),
        ..nvlink()
    };
    // Between PCIe-only GPUs vLLM keeps its kernel for two GPUs only.
    assert!(c.applies(&pcie, 2, false));
    assert!(!c.applies(&pcie, 4, false));
    let trt = ServingStack::load(&paths(), Some("trtllm"))
        .unwrap()
        .custom_all_reduce
        .unwrap();
    assert!(
        !trt.applies(&pcie, 2, false),
        "TensorRT-LLM's says NVLink only"
    );
    let v1 = ServingStack::load(&paths(), Some("vllm-v1")).unwrap();
    let e = load_error_with_line(&v1, "pcie_world_sizes", "[3]");
    assert!(
        e.contains("bad.toml") && e.contains("custom_all_reduce.pcie_world_sizes"),
        "{e}"
    );
    let rate = 450e9 * c.bandwidth_efficiency * 1e-6;
    // 64 KiB on 4 GPUs: one-shot, every GPU reads its 3 peers' buffers.
    let s = 65536.0;
    let t = c.time_us(&link, 4, s).unwrap();
    assert!((t - (c.latency_us + 3.0 * s / rate)).abs() < 1e-9);
    // 1 MiB on 4 GPUs: two-shot.
    let s = 1048576.0;
    let t = c.time_us(&link, 4, s).unwrap();
    assert!((t - (2.0 * c.latency_us + 2.0 * 0.75 * s / rate)).abs() < 1e-9);
    // 2 GPUs: one-shot up to the limit; above it, NCCL.
    let t = c.time_us(&link, 2, s).unwrap();
    assert!((t - (c.latency_us + s / rate)).abs() < 1e-9);
    assert!(c.time_us(&link, 4, 16.0 * 1048576.0).is_none());
}

#[test]
fn api_server_ingress_grows_with_the_prompt() {
    let mut a = ServingStack::load(&paths(), None).unwrap().api_server;
    a.request_us = 1000.0;
    a.per_prompt_token_us = 0.5;
    assert_eq!(a.ingress_us(2000), 2000.0);
    assert!(!a.is_zero());
}

/// A stack built for one vendor says so, and its own decode attention kernel slows
/// decode attention (and only that) in the roofline model.
/// vLLM 0.6's loop splits its per-sequence host work the same way on CUDA and ROCm
/// (one Python loop): both stacks take the split read off vllm-project/vllm#7049
/// (`scripts/fit_v0_output_overlap.py`) as the overlapped part and the serial prior,
/// and fit the serial part; vLLM 0.5's synchronous loop keeps all of it serial.
#[test]
fn v0_loops_split_the_per_sequence_host_work_alike() {
    let h = |name: &str| {
        ServingStack::load(&paths(), Some(name))
            .unwrap()
            .execution
            .host
    };
    let (cuda, rocm, v05) = (h("vllm-0.6"), h("vllm-0.6-rocm"), h("vllm-0.5"));
    assert_eq!(cuda.per_sequence_us, rocm.per_sequence_us);
    assert_eq!(
        cuda.prior_per_sequence_serial_us,
        rocm.prior_per_sequence_serial_us
    );
    let prior = cuda.prior_per_sequence_serial_us.unwrap();
    assert_eq!(prior + cuda.per_sequence_us, v05.per_sequence_us);
    assert_eq!(
        (v05.per_sequence_serial_us, v05.overlap),
        (0.0, HostOverlap::Serial)
    );
}

#[test]
fn a_rocm_build_runs_on_amd_only_and_its_decode_kernel_is_its_own() {
    let rocm = ServingStack::load(&paths(), Some("vllm-0.6-rocm")).unwrap();
    assert!(rocm.runs_on("AMD") && !rocm.runs_on("NVIDIA"));
    let v1 = ServingStack::load(&paths(), Some("vllm-v1")).unwrap();
    assert!(v1.runs_on("NVIDIA") && !v1.runs_on("AMD"));
    let p = rocm
        .paged_attention
        .clone()
        .expect("the ROCm build ships its own kernel");
    let e = p.decode_bandwidth_efficiency.expect("fitted");
    assert!(e > 0.0 && e <= 1.0 && p.reads_kv_per_query_head);

    let e = load_error_with_line(&rocm, "decode_bandwidth_efficiency", "1.5");
    assert!(
        e.contains("paged_attention.decode_bandwidth_efficiency"),
        "{e}"
    );
}

/// The ROCm build's own GEMM library and dispatch gap: its dense GEMMs stream weights at
/// the stack's efficiency instead of the GPU's (roofline), each kernel adds the fitted
/// gap, and a bad efficiency is named by its key.
#[test]
fn a_rocm_builds_gemms_and_dispatch_gaps_are_its_own() {
    use crate::deployment::Deployment;
    use crate::perf::{select_latency_model, LatencyChoice};
    let rocm = ServingStack::load(&paths(), Some("vllm-0.6-rocm")).unwrap();
    let g = rocm.gemm.clone().expect("the ROCm build has its own GEMMs");
    let eff = g.bandwidth_efficiency.expect("fitted");
    assert!(eff > 0.0 && eff < 1.0 && !g.fitted_on.is_empty());
    assert!(rocm.execution.host.per_kernel_us > 0.0);
    assert!(rocm.execution.host.prior_per_kernel_us.is_some());

    let req = request("vllm-0.6-rocm", "meta-llama/Llama-2-70b-hf", "mi300x");
    let d = Deployment::resolve(&req, &paths()).unwrap();
    let mut own_gpu = d.clone();
    std::sync::Arc::make_mut(&mut own_gpu.stack).gemm = None;
    let shape = decodes(1, 512);
    let op = |d: &Deployment, name: &str| {
        select_latency_model(d, &paths(), LatencyChoice::Roofline)
            .unwrap()
            .op_breakdown(&shape)
            .into_iter()
            .find(|o| o.name == name)
            .unwrap()
            .time_s
    };
    // One decode token: the weight stream bounds the GEMM, so its time scales with
    // the inverse of the bandwidth efficiency.
    let (stack_t, gpu_t) = (op(&d, "gate_up_proj"), op(&own_gpu, "gate_up_proj"));
    let gpu_eff = crate::perf::roofline::RooflineParams::load_for(&paths().perf_model, d.gpu())
        .unwrap()
        .memory_efficiency;
    assert!(
        (stack_t / gpu_t - gpu_eff / eff).abs() < 0.02 * gpu_eff / eff,
        "{stack_t} vs {gpu_t} ({eff} vs {gpu_eff})"
    );
    // Attention is not a GEMM.
    assert_eq!(op(&d, "attention"), op(&own_gpu, "attention"));

    let e = load_error_with_line(&rocm, "bandwidth_efficiency", "1.5");
    assert!(e.contains("gemm.bandwidth_efficiency"), "{e}");
}

#[test]
fn vllm_raises_its_batch_defaults_on_large_gpus_but_not_a100() {
    let v1 = ServingStack::load(&paths(), None).unwrap();
    let hw = crate::hardware::HardwareCatalog::load(&paths().hardware_dir()).unwrap();
    let on = |name: &str| {
        let s = v1.scheduler.for_device(hw.get(name).unwrap());
        (s.max_num_batched_tokens, s.max_num_seqs)
    };
    assert_eq!(on("h100"), (8192, 1024));
    assert_eq!(on("h200"), (8192, 1024));
    assert_eq!(on("rtx-pro-6000"), (8192, 1024));
    assert_eq!(on("a100-80gb"), (2048, 256), "A100 is excluded by name");
    assert_eq!(on("l40s"), (2048, 256), "48 GB is below 70 GiB");
    // Stacks without the rule keep their defaults everywhere.
    let v0 = ServingStack::load(&paths(), Some("vllm-0.5")).unwrap();
    assert_eq!(
        v0.scheduler.for_device(hw.get("h100").unwrap()),
        v0.scheduler
    );
}

#[test]
fn trtllm_gives_its_kv_cache_a_share_of_the_free_memory() {
    let trt = ServingStack::load(&paths(), Some("trtllm")).unwrap();
    assert_eq!(trt.kv_cache_budget, KvCacheBudget::Free);
    for name in ["vllm-v1", "vllm-0.6-rocm", "sglang"] {
        let s = ServingStack::load(&paths(), Some(name)).unwrap();
        assert_eq!(s.kv_cache_budget, KvCacheBudget::Total, "{name}");
    }
    // 100 GB on a GPU of 180: 0.9 of the whole GPU leaves 62 GB, 0.9 of the free 72.
    let (c, rest) = (180e9, 100e9);
    assert!((KvCacheBudget::Total.kv_cache_bytes(c, rest, 0.9) - 62e9).abs() < 1.0);
    assert!((KvCacheBudget::Free.kv_cache_bytes(c, rest, 0.9) - 72e9).abs() < 1.0);
    assert_eq!(KvCacheBudget::Free.weight_share(0.9), 1.0);
    let e = load_error_with_line(&trt, "kv_cache_budget", "\"whole\"");
    assert!(e.contains("bad.toml") && e.contains("whole"), "{e}");
}

/// The engine settings `stack` gives `model` with `--max-model-len max_len` (the
/// model's own when `None`) and `ov`, on one H100, memory plan included.
fn engine_for(
    stack: &str,
    model: &str,
    max_len: Option<u32>,
    ov: crate::engine::config::EngineOverrides,
) -> crate::engine::config::EngineConfig {
    engine_of_version(stack, model, max_len, ov, None)
}

/// A deployment request for `model` on `hardware` served by `stack`.
fn request(stack: &str, model: &str, hardware: &str) -> crate::deployment::DeploymentRequest {
    crate::deployment::DeploymentRequest {
        model: Some(model.into()),
        hardware: Some(hardware.into()),
        serving_stack: Some(stack.into()),
        ..Default::default()
    }
}

/// `req` resolved against the shipped data.
fn deployment(
    req: &crate::deployment::DeploymentRequest,
) -> crate::error::Result<crate::deployment::Deployment> {
    crate::deployment::Deployment::resolve(req, &paths())
}

/// The engine settings of `req` with `ov`, memory plan included.
fn engine_with(
    req: &crate::deployment::DeploymentRequest,
    ov: &crate::engine::config::EngineOverrides,
) -> crate::error::Result<crate::engine::config::EngineConfig> {
    crate::setup::ReplicaSetup::new(deployment(req)?, ov, &paths()).map(|s| s.engine)
}

/// As [`engine_for`], for engine version `version`.
fn engine_of_version(
    stack: &str,
    model: &str,
    max_len: Option<u32>,
    ov: crate::engine::config::EngineOverrides,
    version: Option<&str>,
) -> crate::engine::config::EngineConfig {
    let req = crate::deployment::DeploymentRequest {
        max_model_len: max_len,
        engine_version: version.map(str::to_owned),
        ..request(stack, model, "h100")
    };
    engine_with(&req, &ov).unwrap()
}

/// vLLM 0.5.3 – 0.6.x switch chunked prefill on, at 512 tokens, for a model served
/// with more than 32,768 tokens of context, unless the user says otherwise, the model
/// slides its attention window or multi-step scheduling is on.
#[test]
fn v0_stacks_chunk_the_prefill_of_long_context_models_as_vllm_does() {
    use crate::engine::config::EngineOverrides;
    let none = EngineOverrides::default();
    let chunk = |c: &crate::engine::config::EngineConfig| {
        (c.enable_chunked_prefill, c.max_num_batched_tokens)
    };
    for stack in ["vllm-0.5", "vllm-0.6"] {
        // Llama 3.1: 131,072 tokens.
        let c = engine_for(stack, "meta-llama/Llama-3.1-8B", None, none);
        assert_eq!(chunk(&c), (true, 512), "{stack}");
        // The same model served at 8K keeps whole-prompt prefills in one iteration.
        let c = engine_for(stack, "meta-llama/Llama-3.1-8B", Some(8192), none);
        assert_eq!(chunk(&c), (false, 8192), "{stack}");
        // At exactly 32,768 the rule does not fire (vLLM: `> 32768`).
        let c = engine_for(stack, "meta-llama/Llama-3.1-8B", Some(32768), none);
        assert_eq!(chunk(&c), (false, 32768), "{stack}");
        // A model with a sliding window (Phi-3.5-mini declares one of 262,144 tokens)
        // is left alone.
        let c = engine_for(stack, "microsoft/Phi-3.5-mini-instruct", None, none);
        assert_eq!(chunk(&c), (false, 131072), "{stack}");
        // The user's word wins, either way, and so does the budget given.
        let off = EngineOverrides {
            enable_chunked_prefill: Some(false),
            ..none
        };
        let c = engine_for(stack, "meta-llama/Llama-3.1-8B", Some(65536), off);
        assert_eq!(chunk(&c), (false, 65536), "{stack}");
        let budget = EngineOverrides {
            max_num_batched_tokens: Some(4096),
            ..none
        };
        let c = engine_for(stack, "meta-llama/Llama-3.1-8B", None, budget);
        assert_eq!(chunk(&c), (true, 4096), "{stack}");
        // Chunked prefill asked for takes the engine's chunked budget, whatever the
        // context.
        let on = EngineOverrides {
            enable_chunked_prefill: Some(true),
            ..none
        };
        let c = engine_for(stack, "meta-llama/Llama-3.1-8B", Some(8192), on);
        assert_eq!(chunk(&c), (true, 512), "{stack}");
        // Multi-step scheduling does not chunk prompts.
        let steps = EngineOverrides {
            num_scheduler_steps: Some(8),
            ..none
        };
        let c = engine_for(stack, "meta-llama/Llama-3.1-8B", Some(65536), steps);
        assert_eq!(chunk(&c), (false, 65536), "{stack}");
    }
    // vLLM 0.5 kept chunked prefill and prefix caching apart; 0.6.1 on did not.
    let prefix = EngineOverrides {
        enable_prefix_caching: Some(true),
        ..none
    };
    let c = engine_for("vllm-0.5", "meta-llama/Llama-3.1-8B", Some(65536), prefix);
    assert_eq!(chunk(&c), (false, 65536));
    let c = engine_for("vllm-0.6", "meta-llama/Llama-3.1-8B", Some(65536), prefix);
    assert_eq!(chunk(&c), (true, 512));
    // V1 always chunks, at its own budget.
    let c = engine_for("vllm-v1", "meta-llama/Llama-3.1-8B", None, none);
    assert_eq!(chunk(&c), (true, 8192));
}

/// The small profiling pass is what lets a long-context model fit: Llama 3.1 405B in
/// FP8 on eight H100s at its full 131,072 tokens, which vLLM 0.6 serves.
#[test]
fn a_long_context_model_fits_with_the_chunked_budget_it_profiles_with() {
    let req = crate::deployment::DeploymentRequest {
        tensor_parallel_size: Some(8),
        quantization: Some("fp8".into()),
        ..request("vllm-0.6", "meta-llama/Llama-3.1-405B", "h100")
    };
    let d = crate::deployment::Deployment::resolve(&req, &paths()).unwrap();
    let s = crate::setup::ReplicaSetup::new(d.clone(), &Default::default(), &paths()).unwrap();
    assert_eq!(s.engine.max_num_batched_tokens, 512);
    assert!(s.engine.kv_capacity_tokens() >= 131_072);
    // Forcing whole-prompt prefills back profiles a 131,072-token pass, which does not.
    let off = crate::engine::config::EngineOverrides {
        enable_chunked_prefill: Some(false),
        ..Default::default()
    };
    let e = crate::setup::ReplicaSetup::new(d, &off, &paths())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("does not fit"), "{e}");
}

#[test]
fn a_chunked_prefill_budget_of_zero_is_refused_with_its_key() {
    let s = ServingStack::load(&paths(), Some("vllm-0.6")).unwrap();
    let e = load_error_with_line(&s, "chunked_prefill_budget", "0");
    assert!(
        e.contains("scheduler.chunked_prefill_budget") && e.contains("at least 1"),
        "{e}"
    );
}

/// A token budget below the sequence limit: vLLM V1 lowers its default limit to a given
/// budget and refuses an explicit limit above it, vLLM V0 refuses either, SGLang runs.
#[test]
fn a_budget_below_the_sequence_limit_follows_each_engine() {
    use crate::engine::config::EngineOverrides;
    let budget = |seqs: Option<u32>| EngineOverrides {
        max_num_batched_tokens: Some(128),
        max_num_seqs: seqs,
        ..EngineOverrides::default()
    };
    let setup = |stack: &str, ov: EngineOverrides| {
        let req = crate::deployment::DeploymentRequest {
            max_model_len: Some(8192),
            ..request(stack, "meta-llama/Llama-3.1-8B", "h100")
        };
        engine_with(&req, &ov)
    };
    let v1 = setup("vllm-v1", budget(None)).unwrap();
    assert_eq!((v1.max_num_seqs, v1.max_num_batched_tokens), (128, 128));
    let e = setup("vllm-v1", budget(Some(256))).unwrap_err().to_string();
    assert!(
        e.contains("--max-num-batched-tokens (128) is below --max-num-seqs (256)"),
        "{e}"
    );
    let chunked = EngineOverrides {
        enable_chunked_prefill: Some(true),
        ..budget(None)
    };
    assert!(setup("vllm-0.6", chunked).is_err());
    let sg = setup("sglang", budget(None)).unwrap();
    assert_eq!(sg.max_num_batched_tokens, 128);
    assert!(sg.max_num_seqs > 128);
}

/// Run as a library (`--offline`), vLLM V1 takes its LLM class's batch defaults: 16,384
/// tokens and 1,024 sequences on large GPUs, 8,192 and 256 on an A100; stacks without
/// such defaults keep theirs.
#[test]
fn offline_runs_take_the_library_batch_defaults() {
    let batch = |stack: &str, hardware: &str, offline: bool| {
        let req = crate::deployment::DeploymentRequest {
            max_model_len: Some(8192),
            offline,
            ..request(stack, "meta-llama/Llama-3.1-8B", hardware)
        };
        let e = engine_with(&req, &Default::default()).unwrap();
        (e.max_num_seqs, e.max_num_batched_tokens)
    };
    assert_eq!(batch("vllm-v1", "h100", false), (1024, 8192));
    assert_eq!(batch("vllm-v1", "h100", true), (1024, 16384));
    assert_eq!(batch("vllm-v1", "a100-sxm4-80gb", false), (256, 2048));
    assert_eq!(batch("vllm-v1", "a100-sxm4-80gb", true), (256, 8192));
    assert_eq!(batch("vllm-v1-sync", "h100", true), (1024, 16384));
    for stack in ["vllm-0.6", "sglang"] {
        assert_eq!(
            batch(stack, "h100", true),
            batch(stack, "h100", false),
            "{stack}"
        );
    }
}

/// A stack's per-version defaults follow the engine version a deployment names: vLLM
/// 0.5.0 – 0.5.2 lack the long-context rule, V1 before 0.8.5 the large-GPU defaults; a
/// deployment that names no version takes every rule of its stack.
#[test]
fn per_version_defaults_follow_the_named_engine_version() {
    let none = crate::engine::config::EngineOverrides::default();
    let llama = "meta-llama/Llama-3.1-8B";
    let at = |stack: &str, v: Option<&str>| {
        let c = engine_of_version(stack, llama, None, none, v);
        (
            c.enable_chunked_prefill,
            c.max_num_batched_tokens,
            c.max_num_seqs,
        )
    };
    assert_eq!(at("vllm-0.5", Some("0.5.2")), (false, 131_072, 256));
    assert_eq!(at("vllm-0.5", Some("0.5.3")), (true, 512, 256));
    assert_eq!(at("vllm-0.5", None), (true, 512, 256));
    assert_eq!(at("vllm-0.6", Some("0.6.4")), (true, 512, 256));
    assert_eq!(at("vllm-0.6", Some("0.6.5")), (true, 2048, 256));
    assert_eq!(at("vllm-0.6", None), (true, 512, 256));
    // AMD's fork stops the long-context rule on ROCm from 0.6.6.
    let rocm = ServingStack::load(&paths(), Some("vllm-0.6-rocm")).unwrap();
    let of = |v: Option<&str>| rocm.scheduler.for_version(v);
    assert!(of(Some("0.6.1")).long_context.is_some());
    assert!(of(None).long_context.is_some());
    assert!(of(Some("0.6.6")).long_context.is_none());
    assert_eq!(of(Some("0.6.4")).chunked_prefill_budget, Some(512));
    assert_eq!(of(Some("0.6.6")).chunked_prefill_budget, None);
    assert_eq!(at("vllm-v1-sync", Some("0.8.4")), (true, 2048, 256));
    assert_eq!(at("vllm-v1-sync", Some("0.10.1")), (true, 8192, 1024));
    assert_eq!(at("vllm-v1-sync", None), (true, 8192, 1024));
    let s = ServingStack::load(&paths(), Some("vllm-0.5")).unwrap();
    let e = load_error_with_line(&s, "since_version", "\"soon\"");
    assert!(
        e.contains("scheduler.long_context.since_version") && e.contains("soon"),
        "{e}"
    );
}

#[test]
fn sglang_sets_kv_aside_for_running_outputs_and_its_figures_are_checked() {
    let s = ServingStack::load(&paths(), Some("sglang")).unwrap();
    assert_eq!(s.scheduler.kind, SchedulerKind::Sglang);
    let none = crate::engine::config::EngineOverrides::default();
    let c = engine_of_version("sglang", "meta-llama/Llama-3.1-8B", None, none, None);
    let r = c.kv_reservation.expect("the SGLang stack reserves KV");
    assert!(r.min_ratio < r.initial_ratio && r.initial_ratio <= 1.0);
    assert_eq!(c.scheduler, SchedulerKind::Sglang);
    assert!(
        c.max_num_seqs >= 2048,
        "SGLang sizes its request pool from memory"
    );
    // Another scheduler on the stack drops it (vLLM admits on the prompt alone).
    let v1 = crate::engine::config::EngineOverrides {
        scheduler: Some(SchedulerKind::VllmV1),
        ..none
    };
    let c = engine_of_version("sglang", "meta-llama/Llama-3.1-8B", None, v1, None);
    assert!(c.kv_reservation.is_none());
    let e = load_error_with_line(&s, "min_ratio", "0.9");
    assert!(
        e.contains("scheduler.kv_reservation") && e.contains("min_ratio"),
        "{e}"
    );
}

#[test]
fn sglang_sizes_its_prefill_chunk_by_gpu_memory() {
    let sg = ServingStack::load(&paths(), Some("sglang")).unwrap();
    let hw = crate::hardware::HardwareCatalog::load(&paths().hardware_dir()).unwrap();
    let on = |name: &str| {
        sg.scheduler
            .for_device(hw.get(name).unwrap())
            .max_num_batched_tokens
    };
    assert_eq!(on("rtx-4090"), 2048, "24 GB is below 35 GiB");
    assert_eq!(on("a100-40gb"), 4096);
    assert_eq!(on("l40s"), 4096);
    assert_eq!(on("a100-80gb"), 8192);
    assert_eq!(on("h100"), 8192);
    assert_eq!(on("h200"), 8192, "141 GB is below 160 GiB");
    assert_eq!(on("b200"), 16384);
    let e = load_error_with_line(&sg, "below_memory_gib", "40.0");
    assert!(
        e.contains("scheduler.small_device.below_memory_gib") && e.contains("increasing"),
        "{e}"
    );
}

#[test]
fn tensorrt_llm_keeps_its_token_budget_without_chunked_context() {
    // vLLM raises its budget to max_model_len without chunked prefill; TensorRT-LLM
    // keeps max_num_tokens and turns longer prompts away.
    let none = crate::engine::config::EngineOverrides::default();
    let c = engine_for("trtllm", "meta-llama/Llama-3.1-8B", None, none);
    assert!(!c.enable_chunked_prefill && c.max_model_len > 8192);
    assert_eq!(
        (c.max_num_batched_tokens, c.longest_prompt()),
        (8192, Some(8192))
    );
    let chunked = crate::engine::config::EngineOverrides {
        enable_chunked_prefill: Some(true),
        ..none
    };
    let c = engine_for("trtllm", "meta-llama/Llama-3.1-8B", None, chunked);
    assert_eq!((c.max_num_batched_tokens, c.longest_prompt()), (8192, None));
    let v0 = engine_for("vllm-0.5", "meta-llama/Llama-3.1-8B", Some(16384), none);
    assert_eq!(
        (v0.max_num_batched_tokens, v0.longest_prompt()),
        (16384, None)
    );
}

#[test]
fn tensorrt_llm_serves_without_eviction_unless_told_otherwise() {
    let none = crate::engine::config::EngineOverrides::default();
    let c = engine_for("trtllm", "meta-llama/Llama-3.1-8B", None, none);
    let r = c.kv_reservation.expect("GUARANTEED_NO_EVICT");
    assert_eq!(
        (r.initial_ratio, r.min_ratio, r.clip_output_tokens),
        (1.0, 1.0, None)
    );
    let off = crate::engine::config::EngineOverrides {
        kv_reservation: Some(false),
        ..none
    };
    assert!(engine_for("trtllm", "meta-llama/Llama-3.1-8B", None, off)
        .kv_reservation
        .is_none());
    assert!(engine_for("vllm-v1", "meta-llama/Llama-3.1-8B", None, none)
        .kv_reservation
        .is_none());
    // Asking for one where the stack has none is an error naming the flag.
    let on = crate::engine::config::EngineOverrides {
        kv_reservation: Some(true),
        ..none
    };
    let req = request("vllm-v1", "meta-llama/Llama-3.1-8B", "h100");
    let e = engine_with(&req, &on).unwrap_err().to_string();
    assert!(
        e.contains("--kv-reservation") && e.contains("vllm-v1"),
        "{e}"
    );
}

mod collectives;
mod graphs;

#[test]
fn a_vllm_version_picks_the_stack_of_its_generation() {
    let pick = ServingStack::vllm_name_for_version;
    assert_eq!(pick("0.15.1", "NVIDIA"), Some(DEFAULT_STACK));
    assert_eq!(pick("v0.19.0rc1", "NVIDIA"), Some(DEFAULT_STACK));
    assert_eq!(pick("1.0.0", "NVIDIA"), Some(DEFAULT_STACK));
    assert_eq!(pick("0.13.0", "NVIDIA"), Some("vllm-v1-sync"));
    assert_eq!(pick("0.8.3", "NVIDIA"), Some("vllm-v1-sync"));
    assert_eq!(pick("0.7.3", "NVIDIA"), Some("vllm-0.6"));
    assert_eq!(pick("0.6.1", "AMD"), Some("vllm-0.6-rocm"));
    assert_eq!(pick("0.5.3.post1", "NVIDIA"), Some("vllm-0.5"));
    assert_eq!(pick("main", "NVIDIA"), None);
    assert_eq!(pick("0", "NVIDIA"), None);
    // Every name it gives is a shipped stack.
    for v in ["0.15", "0.8", "0.6", "0.4"] {
        ServingStack::load(&paths(), pick(v, "NVIDIA")).unwrap();
    }
    ServingStack::load(&paths(), pick("0.6", "AMD")).unwrap();
}

#[test]
fn the_engine_version_picks_the_stack_unless_one_is_named() {
    use crate::deployment::{Deployment, DeploymentRequest};
    let req = |stack: Option<&str>, version: Option<&str>, hw: &str| DeploymentRequest {
        model: Some("meta-llama/Llama-3.1-8B".into()),
        hardware: Some(hw.into()),
        serving_stack: stack.map(str::to_owned),
        engine_version: version.map(str::to_owned),
        ..DeploymentRequest::default()
    };
    let name = |r: DeploymentRequest| {
        Deployment::resolve(&r, &paths())
            .unwrap()
            .stack
            .name
            .clone()
    };
    assert_eq!(name(req(None, Some("0.8.3"), "h100")), "vllm-v1-sync");
    assert_eq!(name(req(None, Some("0.6.1"), "mi300x")), "vllm-0.6-rocm");
    assert_eq!(name(req(None, None, "h100")), DEFAULT_STACK);
    assert_eq!(name(req(Some("sglang"), Some("0.5.9"), "h100")), "sglang");
    assert_eq!(name(req(None, Some("nightly"), "h100")), DEFAULT_STACK);
}

#[test]
fn tensorrt_llm_limits_each_micro_batch_and_vllm_the_replica() {
    use crate::engine::SeqLimitScope;
    let none = crate::engine::config::EngineOverrides::default();
    // The C++ runtime's in-flight batching (TensorRT engines); the PyTorch backend
    // (`trtllm`) keeps the replica-wide limit (its stack file says why).
    for stack in ["trtllm-engine", "trtllm-0.11"] {
        let mut c = engine_for(stack, "meta-llama/Llama-3.1-8B", None, none);
        assert_eq!(c.max_num_seqs_scope, SeqLimitScope::MicroBatch, "{stack}");
        c.pipeline_stages = 2;
        assert_eq!(c.max_running(), 2 * c.max_num_seqs, "{stack}");
    }
    for stack in ["vllm-v1", "trtllm"] {
        let mut c = engine_for(stack, "meta-llama/Llama-3.1-8B", None, none);
        c.pipeline_stages = 2;
        assert_eq!(
            (c.max_num_seqs_scope, c.max_running()),
            (SeqLimitScope::Replica, c.max_num_seqs),
            "{stack}"
        );
    }
}
