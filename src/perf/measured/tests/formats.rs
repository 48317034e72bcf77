//! GPUs known only by engine-measured kernel tables, and quantized formats: FP8
//! GEMMs from the FP8 grid, MoE blocks in the experts' own format.

use super::*;

/// A GPU without model profiles but with kernels measured through an engine (H200:
/// GEMM grid, attention, fused MoE) gets the measured model built from those tables.
/// H200 is H100's die with 1.43× the memory bandwidth: a decode step of the same
/// model is no slower than on H100 and not faster than the bandwidth ratio allows.
#[test]
fn kernel_tables_stand_in_for_profiles() {
    let opts = MeasuredOptions::default();
    let h200 = model("Qwen/Qwen3-30B-A3B-Instruct-2507", "h200", 1, &opts);
    assert_eq!(h200.tier(), MeasuredTier::KernelTables);
    let d = h200.describe();
    for part in [
        "kernel tables of h200-sxm-141gb, no model profiles",
        "moe: fused MoE block measured through vLLM on h200-sxm-141gb (bfloat16 experts",
        "points of measurements/gemm/h200-sxm-141gb__bfloat16.csv",
        "attention: law fitted on attention measured through vLLM's backend on h200-sxm-141gb",
    ] {
        assert!(d.contains(part), "{part} not in {d}");
    }
    let h100 = model("Qwen/Qwen3-30B-A3B-Instruct-2507", "h100", 1, &opts);
    for n in [1, 16, 64, 256] {
        let s = decodes(n, 1024);
        let ratio = h200.step_time_s(&s) / h100.step_time_s(&s);
        assert!(
            (4.8 / 3.35_f64).recip() * 0.95 <= ratio && ratio <= 1.05,
            "{n}: {ratio}"
        );
    }
    // A GPU with neither profiles nor kernel tables keeps the roofline.
    let paths = DataPaths::builtin();
    let l4 = deploy("meta-llama/Llama-3.1-8B", "l4", 1);
    assert!(MeasuredModel::new(&l4, &paths, &opts).unwrap().is_none());
}

/// On a stack of another kernel generation than its GEMM grid (v0; the grid is v1),
/// H200 times its GEMMs with its compute twin's law (H100's profiles, same chip and
/// clocks), the memory-bound term scaled by the bandwidth ratio: a large prefill's
/// compute-bound linear layers take as long as on H100, a batch-1 decode's
/// memory-bound ones less, by no more than the ratio. On a v1 stack its own grid stays.
#[test]
fn a_compute_twin_times_gemms_where_the_grid_is_of_another_generation() {
    let paths = DataPaths::builtin();
    let opts = MeasuredOptions::default();
    let build = |hw: &str, stack: &str| {
        let d = deploy_on("meta-llama/Llama-3.1-8B", hw, 1, Some(stack));
        MeasuredModel::new(&d, &paths, &opts).unwrap().unwrap()
    };
    let v0 = build("h200", "vllm-0.6");
    let d = v0.describe();
    assert!(
        d.contains("measured points of h100-sxm5-80gb (compute twin; memory term × 1.433"),
        "{d}"
    );
    let v1 = build("h200", "vllm-v1").describe();
    assert!(
        v1.contains("points of measurements/gemm/h200-sxm-141gb__bfloat16.csv"),
        "{v1}"
    );
    assert!(!v1.contains("of h100-sxm5-80gb (compute twin"), "{v1}");
    // Linear time only (attention and the rest come from H200's own tables).
    let h100 = build("h100", "vllm-0.6");
    let linear = |m: &MeasuredModel, s: &StepShape| component(m, s, "linear");
    let mut prefill = StepShape::new();
    prefill.push_prefill(8192, 0);
    let r = linear(&v0, &prefill) / linear(&h100, &prefill);
    assert!((0.85..=1.15).contains(&r), "prefill linear H200/H100 {r}");
    let decode = decodes(1, 512);
    let r = linear(&v0, &decode) / linear(&h100, &decode);
    assert!(
        (1.0 / 1.433 - 0.02..1.0).contains(&r),
        "decode linear H200/H100 {r}"
    );
}

/// H200 has no fused elementwise kernels of its own; on every stack its compute
/// twin's (H100's) law times them, the streaming rate scaled by the bandwidth ratio: a
/// batch-1 decode's small kernels pay H100's fixed cost per kernel (nearly H100's
/// time, where the roofline bandwidth alone had almost none), a large prefill's stream
/// at H200's bandwidth.
#[test]
fn a_compute_twin_times_the_elementwise_kernels() {
    let paths = DataPaths::builtin();
    let opts = MeasuredOptions::default();
    let build = |hw: &str| {
        let d = deploy_on("meta-llama/Llama-3.1-8B", hw, 1, Some("vllm-v1"));
        MeasuredModel::new(&d, &paths, &opts).unwrap().unwrap()
    };
    let (h200, h100) = (build("h200"), build("h100"));
    let d = h200.describe();
    assert!(
        d.contains(
            "elementwise: bandwidth law fitted on h100-sxm5-80gb fused elementwise kernels (compute twin; bandwidth × 1.433"
        ),
        "{d}"
    );
    let elementwise = |m: &MeasuredModel, s: &StepShape| component(m, s, "elementwise");
    let decode = decodes(1, 512);
    let r = elementwise(&h200, &decode) / elementwise(&h100, &decode);
    assert!((0.9..=1.0).contains(&r), "decode elementwise H200/H100 {r}");
    let mut prefill = StepShape::new();
    prefill.push_prefill(16384, 0);
    let r = elementwise(&h200, &prefill) / elementwise(&h100, &prefill);
    assert!(
        (1.0 / 1.433..1.0 / 1.433 + 0.05).contains(&r),
        "prefill elementwise H200/H100 {r}"
    );
}

/// FP8 weights take the FP8 GEMM grid measured through the engine (no profile holds
/// FP8 GEMMs): a large prefill's linear layers run faster than in bf16, but not at the
/// tensor peak's 2×, because the FP8 kernels reach a smaller share of their peak.
#[test]
fn fp8_linear_layers_come_from_the_fp8_grid() {
    let paths = DataPaths::builtin();
    for hw in ["h100", "h200"] {
        let bf16 = deploy("meta-llama/Llama-3.1-8B", hw, 1);
        let fp8 = Deployment::resolve(
            &DeploymentRequest {
                model: Some("meta-llama/Llama-3.1-8B".into()),
                hardware: Some(hw.into()),
                quantization: Some("fp8".into()),
                ..Default::default()
            },
            &paths,
        )
        .unwrap();
        let opts = MeasuredOptions::default();
        let m16 = MeasuredModel::new(&bf16, &paths, &opts).unwrap().unwrap();
        let m8 = MeasuredModel::new(&fp8, &paths, &opts).unwrap().unwrap();
        assert!(
            m8.describe()
                .contains("linear: FP8 GEMM measured through the engine's linear layer"),
            "{}",
            m8.describe()
        );
        let linear = |m: &MeasuredModel, s: &StepShape| component(m, s, "linear");
        let mut prefill = StepShape::new();
        prefill.push_prefill(4096, 0);
        let r = linear(&m8, &prefill) / linear(&m16, &prefill);
        assert!((0.5..0.9).contains(&r), "{hw} prefill fp8/bf16 {r}");
        // One decode reads half the weight bytes.
        let r = linear(&m8, &decodes(1, 512)) / linear(&m16, &decodes(1, 512));
        assert!((0.45..0.8).contains(&r), "{hw} decode fp8/bf16 {r}");
    }
}

/// The measured model of `model` on `hw` at TP `tp` with `--quantization q`.
fn quantized(model: &str, hw: &str, tp: u32, q: Option<&str>) -> MeasuredModel {
    measured(DeploymentRequest {
        model: Some(model.into()),
        hardware: Some(hw.into()),
        tensor_parallel_size: Some(tp),
        quantization: q.map(str::to_owned),
        ..Default::default()
    })
}

/// The MoE block's time in a step.
fn moe_time(m: &MeasuredModel, s: &StepShape) -> f64 {
    component(m, s, "moe")
}

/// The MoE block is timed in the experts' own weight format where the tensor cores run
/// it natively: DeepSeek-V3's block-FP8 checkpoint takes the block-FP8 table, NVFP4
/// experts the NVFP4 table (faster than bf16: a quarter of the weight bytes), and
/// weight-only MXFP4 (gpt-oss) the bf16 one.
#[test]
fn moe_blocks_are_timed_in_the_experts_format() {
    let resolve = quantized;
    let has = |m: &MeasuredModel, part: &str| {
        assert!(
            m.describe().contains(part),
            "{part} not in {}",
            m.describe()
        );
    };
    let ds = resolve("deepseek-ai/DeepSeek-V3", "h200", 8, None);
    has(&ds, "(fp8_block experts, TP8 EP1");
    let fp4 = resolve("Qwen/Qwen3-30B-A3B-Instruct-2507", "b200", 1, Some("nvfp4"));
    has(&fp4, "(nvfp4 experts, TP1 EP1");
    let bf16 = resolve("Qwen/Qwen3-30B-A3B-Instruct-2507", "b200", 1, None);
    has(&bf16, "(bfloat16 experts, TP1 EP1");
    let moe = moe_time;
    let s = decodes(64, 1024);
    assert!(moe(&fp4, &s) < 0.7 * moe(&bf16, &s));
    let oss = resolve("openai/gpt-oss-20b", "b200", 1, None);
    assert!(!oss.describe().contains("mxfp4"), "{}", oss.describe());
}

/// A model profile measured in bf16 does not time experts the tensor cores run in a
/// narrower format: on the RTX PRO 6000 (an LLMServingSim profile of Qwen3-30B-A3B in
/// bf16, no NVFP4 table) NVFP4 experts take the GEMM law in their own format, which
/// streams a quarter of the bf16 weight bytes, while bf16 experts keep the profile.
#[test]
fn bf16_profile_tables_do_not_time_narrower_experts() {
    let resolve = |q| quantized("Qwen/Qwen3-30B-A3B-Instruct-2507", "rtx-pro-6000", 1, q);
    let bf16 = resolve(None);
    let fp4 = resolve(Some("nvfp4"));
    assert!(
        bf16.describe().contains("moe: measured MoE block"),
        "{}",
        bf16.describe()
    );
    assert!(
        !fp4.describe().contains("moe: measured MoE block"),
        "{}",
        fp4.describe()
    );
    let s = decodes(16, 1024);
    let r = moe_time(&fp4, &s) / moe_time(&bf16, &s);
    assert!(
        (0.15..0.6).contains(&r),
        "nvfp4/bf16 expert time at 16 decodes: {r}"
    );
}

/// vLLM 0.5–0.6 decode a sliding-window model in their own paged-attention kernel
/// (`[attention_fallback]`), which reads each key/value head once per query head: a
/// grouped-query batch whose KV is far beyond L2 costs more than on the same engine
/// from 0.6.4 on (FlashAttention), by at most the read factor; one whose KV fits in L2
/// costs the same, and a model without a window is untouched.
#[test]
fn a_v0_engine_decodes_a_sliding_window_model_in_its_own_kernel() {
    let paths = DataPaths::builtin();
    let opts = MeasuredOptions::default();
    let build = |model: &str, version: &str| {
        let req = DeploymentRequest {
            model: Some(model.into()),
            hardware: Some("h100".into()),
            serving_stack: Some("vllm-0.6".into()),
            engine_version: Some(version.into()),
            ..Default::default()
        };
        let d = Deployment::resolve(&req, &paths).unwrap();
        MeasuredModel::new(&d, &paths, &opts).unwrap().unwrap()
    };
    let mistral = |v| build("mistralai/Mistral-7B-v0.1", v);
    let (fallback, flash) = (mistral("0.6.3"), mistral("0.6.4"));
    let d = fallback.describe();
    assert!(
        d.contains("paged-attention kernel (the model's sliding window)"),
        "{d}"
    );
    assert!(!flash.describe().contains("paged-attention kernel"));
    let attention = |m: &MeasuredModel, s: &StepShape| component(m, s, "attention");
    // 64 × 4,000 tokens of 4 KiB per layer: 1 GB, far beyond H100's 50 MB of L2.
    let big = decodes(64, 4000);
    let r = attention(&fallback, &big) / attention(&flash, &big);
    assert!((1.3..=1.0 + 3.0 * 0.343).contains(&r), "{r}");
    let small = decodes(1, 512);
    assert_eq!(attention(&fallback, &small), attention(&flash, &small));
    let llama = |v| build("meta-llama/Meta-Llama-3-8B", v);
    assert_eq!(
        attention(&llama("0.6.3"), &big),
        attention(&llama("0.6.4"), &big)
    );
}

/// vLLM 0.5–0.6 also leave FlashAttention for a KV block size that is not a multiple
/// of 16 (`block_size_multiple_of`): the engine's `--block-size` reaches the latency
/// model through [`ReplicaSetup`], so a grouped-query batch far beyond L2 decodes slower
/// with blocks of 8 than of 16 or 32, which decode alike.
#[test]
fn a_v0_engine_with_blocks_of_eight_decodes_in_its_own_kernel() {
    let paths = DataPaths::builtin();
    let setup = |block: u32| {
        let req = DeploymentRequest {
            model: Some("meta-llama/Meta-Llama-3-8B".into()),
            hardware: Some("h100".into()),
            serving_stack: Some("vllm-0.6".into()),
            engine_version: Some("0.6.1".into()),
            ..Default::default()
        };
        let d = Deployment::resolve(&req, &paths).unwrap();
        let ov = crate::engine::config::EngineOverrides {
            block_size: Some(block),
            ..Default::default()
        };
        crate::setup::ReplicaSetup::new(d, &ov, &paths).unwrap()
    };
    let big = decodes(64, 4000);
    let step = |b| setup(b).latency.step_time(&big);
    let (b8, b16, b32) = (step(8), step(16), step(32));
    assert_eq!(b16, b32);
    assert!(b8 > b16, "{b8:?} vs {b16:?}");
    let s8 = setup(8);
    assert_eq!(s8.engine.block_size, s8.deployment.kv_block_size());
    let d = s8.latency.describe();
    assert!(
        d.contains("a KV block size FlashAttention does not take"),
        "{d}"
    );
    assert!(!setup(16)
        .latency
        .describe()
        .contains("paged-attention kernel"));
}
