//! CUDA graphs: capture sizes by device, --enforce-eager and the capture flags.

use super::*;

#[test]
fn sglang_captures_decode_graphs_by_gpu_memory_and_tp() {
    // cuda_graph_max_bs from 0.5.3: H100 256 (512 from TP4), A100-40GB 32 (160 from
    // TP4), RTX 4090 24, B200 512; 160 before 0.5.3.
    let largest = |hw: &str, tp: u32, version: Option<&str>| {
        let req = crate::deployment::DeploymentRequest {
            tensor_parallel_size: Some(tp),
            engine_version: version.map(str::to_owned),
            ..request("sglang", "meta-llama/Llama-3.1-8B", hw)
        };
        *deployment(&req)
            .unwrap()
            .stack
            .execution
            .capture_sizes
            .last()
            .unwrap()
    };
    assert_eq!(largest("h100", 1, None), 256);
    assert_eq!(largest("h100", 4, None), 512);
    assert_eq!(largest("h200", 2, Some("0.5.6.post2")), 256);
    assert_eq!(largest("a100-sxm4-40gb", 1, None), 32);
    assert_eq!(largest("a100-sxm4-40gb", 4, None), 160);
    assert_eq!(largest("rtx-4090", 1, None), 24);
    assert_eq!(largest("b200", 1, None), 512);
    assert_eq!(largest("h100", 1, Some("0.5.1.post1")), 160);
    // vLLM's capture list does not depend on the device.
    let v1 = ServingStack::load(&paths(), Some("vllm-v1")).unwrap();
    assert_eq!(v1.execution.on_device(80.0, 1, None), None);
}

#[test]
fn capture_limits_of_zero_are_errors_naming_the_key() {
    let sg = ServingStack::load(&paths(), Some("sglang")).unwrap();
    let e = load_error_with_line(&sg, "min_tp", "0");
    assert!(
        e.contains("cuda_graphs.by_device") && e.contains("at least 1"),
        "{e}"
    );
    let e = load_error_with_line(&sg, "max_capture_size", "0");
    assert!(e.contains("cuda_graphs.by_device.max_capture_size"), "{e}");
}

#[test]
fn enforce_eager_launches_every_kernel_from_the_cpu() {
    use crate::stack::GraphMode;
    let resolve = |stack: &str, model: &str, eager: Option<bool>| {
        let req = crate::deployment::DeploymentRequest {
            enforce_eager: eager,
            ..request(stack, model, "h100")
        };
        deployment(&req).unwrap()
    };
    // Whatever the stack captures (SGLang's sizes also depend on the device).
    for stack in ["vllm-v1", "vllm-0.6", "sglang", "trtllm"] {
        let d = resolve(stack, "Qwen/Qwen3-0.6B", Some(true));
        assert_eq!(d.stack.execution.graph_mode, GraphMode::None, "{stack}");
        assert!(d.stack.execution.capture_sizes.is_empty(), "{stack}");
        let kept = resolve(stack, "Qwen/Qwen3-0.6B", Some(false));
        assert_ne!(kept.stack.execution.graph_mode, GraphMode::None, "{stack}");
    }
    // A small model's decode step is shorter than launching its kernels one by one:
    // eager decoding is launch-bound, a large model's is not.
    let tpot = |model: &str, eager: Option<bool>| {
        let setup = crate::setup::ReplicaSetup::new(
            resolve("vllm-v1", model, eager),
            &Default::default(),
            &paths(),
        )
        .unwrap();
        let batch = crate::estimate::BatchSpec {
            batch_size: 1,
            input_len: 128,
            output_len: 64,
        };
        crate::estimate::estimate(&setup, batch).unwrap().tpot_s
    };
    let small = (
        tpot("Qwen/Qwen3-0.6B", None),
        tpot("Qwen/Qwen3-0.6B", Some(true)),
    );
    assert!(small.1 > small.0 * 1.1, "{small:?}");
    let large = (
        tpot("Qwen/Qwen3-14B", None),
        tpot("Qwen/Qwen3-14B", Some(true)),
    );
    assert!(large.1 < large.0 * 1.02, "{large:?}");
}

#[test]
fn graph_flags_replace_the_stacks_capture_settings() {
    use crate::deployment::{DeploymentRequest, GraphFlags};
    use crate::stack::GraphMode;
    let resolve = |stack: &str, graphs: GraphFlags| {
        deployment(&DeploymentRequest {
            graphs,
            ..request(stack, "meta-llama/Llama-3.1-8B", "h100")
        })
    };
    let sizes = |stack: &str, graphs: GraphFlags| {
        resolve(stack, graphs)
            .unwrap()
            .stack
            .execution
            .capture_sizes
            .clone()
    };
    // A list replaces the stack's (and SGLang's cut by device), sorted, once each.
    let listed = GraphFlags {
        sizes: Some(vec![8, 1, 4, 4]),
        ..GraphFlags::default()
    };
    assert_eq!(sizes("sglang", listed.clone()), [1, 4, 8]);
    assert_eq!(sizes("vllm-v1", listed), [1, 4, 8]);
    // A maximum replaces the device's limit, as SGLang's --cuda-graph-max-bs does: one
    // H100 at TP1 captures up to 256 by memory, up to 512 when told.
    let raised = GraphFlags {
        max_size: Some(512),
        ..GraphFlags::default()
    };
    assert_eq!(sizes("sglang", raised).last(), Some(&512));
    // A maximum cuts the stack's list.
    let capped = GraphFlags {
        max_size: Some(64),
        ..GraphFlags::default()
    };
    let v1 = sizes("vllm-v1", capped.clone());
    assert_eq!(v1.last(), Some(&64));
    assert!(v1.len() > 3);
    let exec = &resolve("vllm-v1", capped).unwrap().stack.execution;
    assert_eq!(
        exec.describe_graphs(),
        "full and piecewise CUDA graphs up to 64 tokens"
    );
    // A maximum below every captured size leaves no graph: every batch eager.
    let none_left = GraphFlags {
        sizes: Some(vec![8, 16]),
        max_size: Some(4),
        ..GraphFlags::default()
    };
    let exec = &resolve("vllm-v1", none_left).unwrap().stack.execution;
    assert_eq!(exec.graph_mode, GraphMode::None);
    assert_eq!(exec.describe_graphs(), "eager (no CUDA graphs)");
    // V0's longest captured decode context.
    let context = GraphFlags {
        max_context: Some(32768),
        ..GraphFlags::default()
    };
    let d = resolve("vllm-0.6", context).unwrap();
    assert_eq!(d.stack.execution.max_capture_context, Some(32768));
    assert!(d
        .stack
        .execution
        .describe_graphs()
        .ends_with(", contexts up to 32768"));
    // Zeros are errors naming their flag.
    for (flags, name) in [
        (
            GraphFlags {
                sizes: Some(vec![0]),
                ..GraphFlags::default()
            },
            "cuda-graph-sizes",
        ),
        (
            GraphFlags {
                max_size: Some(0),
                ..GraphFlags::default()
            },
            "max-cuda-graph-size",
        ),
        (
            GraphFlags {
                max_context: Some(0),
                ..GraphFlags::default()
            },
            "max-seq-len-to-capture",
        ),
    ] {
        let e = resolve("vllm-v1", flags).unwrap_err().to_string();
        assert!(e.contains(&format!("`{name}`")), "{e}");
    }
}
