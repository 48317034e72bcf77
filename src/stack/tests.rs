use super::*;
use crate::hardware::LinkSpec;
use crate::perf::StepShape;

fn paths() -> DataPaths {
    DataPaths::builtin()
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
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(ServingStack::dir(&paths()).join("vllm-v1.toml")).unwrap();
    let bad = dir.path().join("bad.toml");
    let negative: String = text
        .lines()
        .map(|l| {
            if l.starts_with("step_us =") {
                "step_us = -1.0"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&bad, negative).unwrap();
    let e = ServingStack::load(&paths(), bad.to_str())
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.toml") && e.contains("host.step_us"), "{e}");
    std::fs::write(
        &bad,
        text.replace("mode = \"full-and-piecewise\"", "mode = \"sometimes\""),
    )
    .unwrap();
    let e = ServingStack::load(&paths(), bad.to_str())
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.toml:") && e.contains("sometimes"), "{e}");
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
}

fn nvlink() -> LinkSpec {
    LinkSpec {
        key: "nvlink4-nvswitch".into(),
        name: "NVLink4".into(),
        bandwidth_bytes_per_s: 450e9,
        pair_bandwidth_bytes_per_s: 450e9,
        latency_s: 2.9e-6,
        allreduce_bus_efficiency: 0.82,
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
    assert!(!c.applies(&pcie, 2, false));
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

    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&rocm.path).unwrap();
    let bad = dir.path().join("bad.toml");
    let over: String = text
        .lines()
        .map(|l| {
            if l.starts_with("decode_bandwidth_efficiency") {
                "decode_bandwidth_efficiency = 1.5".to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&bad, over).unwrap();
    let e = ServingStack::load(&paths(), Some(bad.to_str().unwrap()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("paged_attention.decode_bandwidth_efficiency"),
        "{e}"
    );
}
