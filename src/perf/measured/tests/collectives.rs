//! Collectives: NCCL's own tests for the work the engine hands to NCCL, links
//! calibrated on one system, and the expert-parallel exchange.

use super::*;

/// Expert parallelism over two data-parallel ranks (Qwen3-30B-A3B on two RTX PRO 6000,
/// the measured DP2 + EP run's setup): once a decode batch touches every expert, each
/// GPU reads half the expert weights, so the MoE block gets faster than on one GPU
/// holding them all, and the exchange of hidden states over PCIe appears as its own
/// cost. For a single token per rank EP cannot help: each GPU computes both ranks'
/// tokens, and the busier GPU touches more of its experts (about 9 of its 64) than one
/// GPU does for one token (8 of 128).
#[test]
fn expert_parallel_moe_block() {
    let model_id = "Qwen/Qwen3-30B-A3B-Instruct-2507";
    let one = deploy(model_id, "rtx-pro-6000", 1);
    let req = DeploymentRequest {
        model: Some(model_id.into()),
        hardware: Some("rtx-pro-6000".into()),
        data_parallel_size: Some(2),
        enable_expert_parallel: true,
        ..Default::default()
    };
    let ep = Deployment::resolve(&req, &DataPaths::builtin()).unwrap();
    assert_eq!((ep.dp, ep.ep), (2, 2));
    let opts = MeasuredOptions::default();
    let m1 = MeasuredModel::new(&one, &DataPaths::builtin(), &opts)
        .unwrap()
        .unwrap();
    let m2 = MeasuredModel::new(&ep, &DataPaths::builtin(), &opts)
        .unwrap()
        .unwrap();
    let part = component;
    let big = decodes(128, 1000);
    let (moe1, moe2) = (part(&m1, &big, "moe"), part(&m2, &big, "moe"));
    println!("moe 128 decodes: 1 GPU {moe1:.5} s, EP2 {moe2:.5} s");
    assert!(moe2 < 0.75 * moe1, "EP2 {moe2} vs one GPU {moe1}");
    assert!(moe2 > 0.4 * moe1, "EP2 {moe2} vs one GPU {moe1}");
    assert_eq!(part(&m1, &big, "expert_exchange"), 0.0);
    assert!(part(&m2, &big, "expert_exchange") > 0.0);
    let small = decodes(1, 1000);
    let (s1, s2) = (part(&m1, &small, "moe"), part(&m2, &small, "moe"));
    assert!(s2 >= s1 && s2 < 1.4 * s1, "1 token: {s2} vs {s1}");
}

/// Qwen3-30B-A3B with NVFP4 experts spread over four B200 (DP4 + EP).
fn qwen3_moe_on_four_b200() -> DeploymentRequest {
    DeploymentRequest {
        model: Some("Qwen/Qwen3-30B-A3B-Instruct-2507".into()),
        hardware: Some("b200".into()),
        quantization: Some("nvfp4".into()),
        data_parallel_size: Some(4),
        enable_expert_parallel: true,
        ..Default::default()
    }
}

/// The expert-parallel exchange is NCCL's all-gather (dispatch) and reduce-scatter
/// (combine) of every rank's hidden states, timed by NCCL's own tests on this GPU; a
/// stack that quantizes before the dispatch (TensorRT-LLM) gathers NVFP4 values, 0.28
/// of the 16-bit bytes, and its combine still moves 16-bit outputs. vLLM's exchange of
/// the same deployment gathers 16-bit values.
#[test]
fn the_expert_dispatch_moves_the_stacks_format() {
    let build = |stack: &str| {
        measured(DeploymentRequest {
            serving_stack: Some(stack.into()),
            ..qwen3_moe_on_four_b200()
        })
    };
    let exchange = |m: &MeasuredModel| component(m, &decodes(256, 1000), "expert_exchange");
    let (trt, vllm) = (build("trtllm"), build("vllm-v1"));
    let text = trt.describe();
    assert!(
        text.contains("all-gathered (measured NCCL all-gather (nccl-tests, 4 GPUs")
            && text.contains("reduce-scattered (measured NCCL reduce-scatter (nccl-tests, 4 GPUs"),
        "{text}"
    );
    let (t, v) = (exchange(&trt), exchange(&vllm));
    // Same combine; the dispatch moves 0.28 of the bytes: between 0.5 and 0.9 of vLLM's.
    assert!(t < 0.9 * v && t > 0.5 * v, "trtllm {t} vs vllm {v}");
}

/// `--expert-load-imbalance` loads the busiest GPU with that many times its balanced
/// share of the routed pairs on the engine-measured fused-MoE tables too (B200, NVFP4
/// experts: `moe/b200__nvfp4.csv`), as it does on profile tables and fitted laws: a
/// large decode batch, whose time grows with the pairs, takes longer on its MoE block,
/// by less than the ratio (the block has a fixed part); 1 changes nothing.
#[test]
fn expert_load_imbalance_reaches_the_measured_moe_table() {
    let build = |imbalance: Option<f64>| {
        measured(DeploymentRequest {
            expert_load_imbalance: imbalance,
            ..qwen3_moe_on_four_b200()
        })
    };
    let moe = |m: &MeasuredModel| component(m, &decodes(1024, 1000), "moe");
    let (even, one, skewed) = (build(None), build(Some(1.0)), build(Some(1.5)));
    assert!(
        even.describe()
            .contains("fused MoE block measured through vLLM on b200 (nvfp4 experts, TP1 EP4"),
        "{}",
        even.describe()
    );
    let (e, s) = (moe(&even), moe(&skewed));
    assert_eq!(e, moe(&one));
    assert!(s > 1.1 * e && s < 1.5 * e, "imbalance 1.5: {s} s vs {e} s");
}

/// The link calibrated on one system's end-to-end runs (the RTX PRO 6000 box of the
/// LLMServingSim runs) is used only when asked for with `--intra-node-link calibrated`:
/// another system with the same GPU (peer-to-peer over PCIe 5) keeps the catalog's
/// link: vLLM runs its own all-reduce between two such GPUs (measured in CUDA graphs on
/// one), NCCL between four (NCCL's own test), and the logits' all-gather is NCCL's. The
/// calibrated box (no peer-to-peer access) runs NCCL at its calibrated rate. A GPU
/// without a calibration refuses the key, naming the flag.
#[test]
fn calibrated_link_only_when_asked() {
    let paths = DataPaths::builtin();
    let req = |hw: &str, link: Option<&str>, tp: u32| DeploymentRequest {
        model: Some("Qwen/Qwen3-32B".into()),
        hardware: Some(hw.into()),
        tensor_parallel_size: Some(tp),
        intra_node_link: link.map(str::to_owned),
        ..Default::default()
    };
    let build = |link: Option<&str>| measured(req("rtx-pro-6000", link, 2));
    let nominal = build(None).describe();
    assert!(!nominal.contains("calibrated on"), "{nominal}");
    assert!(
        nominal.contains("logits_gather: measured NCCL all-gather (nccl-tests, 2 GPUs"),
        "{nominal}"
    );
    assert!(
        nominal.contains("all_reduce: measured vllm-all-reduce in CUDA graphs (2 GPUs"),
        "{nominal}"
    );
    // Naming the engine version picks that version's measurement, and says so.
    let v019 = measured(DeploymentRequest {
        engine_version: Some("0.19.0".into()),
        ..req("rtx-pro-6000", None, 2)
    })
    .describe();
    assert!(
        v019.contains("all_reduce: measured vllm-all-reduce 0.19.0 in CUDA graphs (2 GPUs"),
        "{v019}"
    );
    let four = measured(req("rtx-pro-6000", None, 4)).describe();
    assert!(
        four.contains("all_reduce: measured NCCL all-reduce (nccl-tests, 4 GPUs"),
        "{four}"
    );
    let calibrated = build(Some("calibrated")).describe();
    assert!(
        calibrated.contains("all_reduce: α-β ring/tree over 2 GPUs on PCIe (NCCL, calibrated on RTX PRO 6000 TP2 runs)"),
        "{calibrated}"
    );
    let err = Deployment::resolve(&req("h100", Some("calibrated"), 2), &paths)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--intra-node-link") && err.contains("no calibrated link"),
        "{err}"
    );
}

/// NCCL's own test times the all-reduce where the engine hands it to NCCL and the GPU's
/// profiles have no NCCL table, where that test ran on the GPU's own link: on 4 × L40S
/// (PCIe, where vLLM's custom kernel stops at two GPUs) the collected test ran at 5.2
/// GB/s bus bandwidth, a sixth of PCIe Gen4, so it describes its box's topology and the
/// link is costed instead, at the beyond-pair efficiency, saying why. A link the
/// deployment chose instead of the GPU's own is costed without the note. Where the
/// engine's own all-reduce was measured (H100's vLLM kernel in CUDA graphs) that wins;
/// the logits' all-gather, which no profile holds, is NCCL's test there.
#[test]
fn nccl_tests_time_the_librarys_all_reduce_on_the_gpus_own_link() {
    let build = |hw: &str, link: Option<&str>| {
        measured(DeploymentRequest {
            model: Some("meta-llama/Llama-3.1-8B".into()),
            hardware: Some(hw.into()),
            tensor_parallel_size: Some(4),
            intra_node_link: link.map(str::to_owned),
            ..Default::default()
        })
    };
    // 64 decodes all-reduce 64 × 4096 × 2 B = 512 KiB, twice in each of 32 layers.
    let all_reduce_us = |mm: &MeasuredModel| {
        let rows = mm.breakdown(&decodes(64, 500));
        let (_, s) = rows.into_iter().find(|(n, _)| *n == "all_reduce").unwrap();
        s * 1e6 / 64.0
    };
    let l40s = build("l40s", None);
    let text = l40s.describe();
    assert!(
        text.contains("all_reduce: α-β ring/tree over 4 GPUs on PCIe")
            && text.contains("0.16 of the link's 31.5 GB/s line rate")
            && text.contains("another topology, not used"),
        "{text}"
    );
    // 2·3/4 · 512 KiB at 31.5 GB/s × 0.44 = 56.7 µs, plus a tree's 4 steps of 7.1 µs
    // (the nccl-tests table gave 163–181 µs).
    let us = all_reduce_us(&l40s);
    assert!((us - 85.1).abs() < 1.0, "{us}");
    let chosen = build("l40s", Some("pcie5"));
    assert!(
        !chosen.describe().contains("nccl-tests")
            && !chosen.describe().contains("another topology"),
        "{}",
        chosen.describe()
    );
    assert!(all_reduce_us(&chosen) < 100.0);
    let h100 = build("h100", None).describe();
    assert!(
        h100.contains("all_reduce: measured vllm-all-reduce in CUDA graphs (4 GPUs"),
        "{h100}"
    );
    assert!(
        h100.contains("logits_gather: measured NCCL all-gather (nccl-tests, 4 GPUs"),
        "{h100}"
    );
}
