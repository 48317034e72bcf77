//! The tensor-parallel all-reduce: the stack's custom kernel or the collective library.

use super::*;

#[test]
fn disable_custom_all_reduce_hands_every_all_reduce_to_the_library() {
    let req = |disable: bool| crate::deployment::DeploymentRequest {
        tensor_parallel_size: Some(4),
        disable_custom_all_reduce: Some(disable),
        ..request("vllm-0.5", "meta-llama/Llama-2-70b-hf", "a100-80gb")
    };
    assert!(deployment(&req(false))
        .unwrap()
        .stack
        .custom_all_reduce
        .is_some());
    assert!(deployment(&req(true))
        .unwrap()
        .stack
        .custom_all_reduce
        .is_none());
    // vllm-project/vllm#2192's A/B: the same static batch with NCCL's all-reduce is
    // slower (1 MiB messages at batch 64), and the latency model says which one runs.
    let run = |disable: bool| {
        let setup = crate::setup::ReplicaSetup::new(
            deployment(&req(disable)).unwrap(),
            &Default::default(),
            &paths(),
        )
        .unwrap();
        let label = setup.latency.describe();
        let batch = crate::estimate::BatchSpec {
            batch_size: 64,
            input_len: 256,
            output_len: 16,
        };
        (
            crate::estimate::estimate(&setup, batch).unwrap().tpot_s,
            label,
        )
    };
    let (custom, custom_label) = run(false);
    let (nccl, nccl_label) = run(true);
    assert!(nccl > custom * 1.05, "{custom} {nccl}");
    assert!(custom_label.contains("vllm-all-reduce"), "{custom_label}");
    assert!(nccl_label.contains("NCCL all-reduce"), "{nccl_label}");
    // Every stack that has such a kernel gives it up; the ROCm stack has none.
    for (stack, hw) in [
        ("vllm-v1", "h100"),
        ("sglang", "h100"),
        ("trtllm", "h100"),
        ("vllm-0.6-rocm", "mi300x"),
    ] {
        let req = |disable: bool| crate::deployment::DeploymentRequest {
            tensor_parallel_size: Some(2),
            disable_custom_all_reduce: Some(disable),
            ..request(stack, "meta-llama/Llama-2-7b-hf", hw)
        };
        let kept = deployment(&req(false))
            .unwrap()
            .stack
            .custom_all_reduce
            .clone();
        assert_eq!(kept.is_some(), stack != "vllm-0.6-rocm", "{stack}");
        assert!(
            deployment(&req(true))
                .unwrap()
                .stack
                .custom_all_reduce
                .is_none(),
            "{stack}"
        );
    }
}
