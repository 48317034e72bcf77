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
    let e = load_error_with_line(&v06, "block_size_multiple_of", "0");
    assert!(
        e.contains("bad.toml") && e.contains("attention_fallback.block_size_multiple_of"),
        "{e}"
    );
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
/// A build replayed on another vendor's GPU says so in the latency model's description
/// (its own kernels, dispatch and collectives there are not modelled); a build on its
/// own vendor's GPU, or one without platforms, does not.
#[test]
fn a_build_on_another_vendors_gpu_is_named_as_such() {
    use crate::perf::{select_latency_model, LatencyChoice};
    let describe = |stack: &str, hw: &str| {
        let d = deployment(&request(stack, "meta-llama/Llama-3.1-8B", hw)).unwrap();
        select_latency_model(&d, &paths(), LatencyChoice::Roofline)
            .unwrap()
            .describe()
    };
    let foreign = describe("vllm-v1", "mi300x");
    assert!(
        foreign.contains("the engine's NVIDIA build, run here on a GPU by AMD")
            && foreign.contains("is not modelled"),
        "{foreign}"
    );
    for (stack, hw) in [("vllm-v1", "h100"), ("vllm-0.6-rocm", "mi300x")] {
        let own = describe(stack, hw);
        assert!(
            !own.contains("run here on a GPU by"),
            "{stack} on {hw}: {own}"
        );
    }
    let mut any = ServingStack::load(&paths(), Some("vllm-v1")).unwrap();
    any.platforms.clear();
    assert_eq!(any.platform_note("AMD"), None);
    let rocm = ServingStack::load(&paths(), Some("vllm-0.6-rocm")).unwrap();
    assert!(rocm.platform_note("NVIDIA").unwrap().contains("AMD build"));
}

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

mod collectives;
mod graphs;
mod scheduler;

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
