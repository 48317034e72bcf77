//! From the names of the AIConfigurator serving summary
//! ([`serving_summary`](super::serving_summary)) to servesim's catalogs, serving stacks,
//! formats and parallelism. Every choice is stated in the returned notes; what has no
//! faithful counterpart is an `Err` with the reason (the group is skipped).

use super::mapping::{HardwareMapping, ModelMapping};

/// A model of the table mapped to the model catalog, and whether it has routed experts.
#[derive(Clone, Debug, PartialEq)]
pub struct AicModel {
    /// The catalog entry.
    pub mapping: ModelMapping,
    /// Whether its FFNs are mixtures of experts.
    pub moe: bool,
}

/// Map a model name of the table.
pub fn model(name: &str) -> Result<AicModel, String> {
    let n = name.trim().to_ascii_lowercase();
    let map = |id: &str, moe: bool, note: Option<String>| {
        Ok(AicModel {
            mapping: ModelMapping {
                model: id.to_owned(),
                max_model_len: None,
                note,
            },
            moe,
        })
    };
    let same = |id: &str, why: &str| Some(format!("{name}: simulated as {id} ({why})"));
    match n.as_str() {
        "meta-llama/llama-3.1-8b-instruct" => map("meta-llama/Llama-3.1-8B-Instruct", false, None),
        "nvidia/llama-3.1-8b-instruct-fp8" => map(
            "meta-llama/Llama-3.1-8B-Instruct",
            false,
            same(
                "meta-llama/Llama-3.1-8B-Instruct",
                "its ModelOpt FP8 checkpoint: same shapes",
            ),
        ),
        "meta-llama/llama-3.1-70b" => map("meta-llama/Llama-3.1-70B", false, None),
        "qwen/qwen3-32b" => map("Qwen/Qwen3-32B", false, None),
        "nvidia/qwen3-32b-nvfp4" => map(
            "Qwen/Qwen3-32B",
            false,
            same(
                "Qwen/Qwen3-32B",
                "its ModelOpt NVFP4 checkpoint: same shapes",
            ),
        ),
        "qwen/qwen3-235b-a22b-fp8" => map(
            "Qwen/Qwen3-235B-A22B",
            true,
            same(
                "Qwen/Qwen3-235B-A22B",
                "its block-FP8 checkpoint: same shapes",
            ),
        ),
        "deepseek-ai/deepseek-v3" => map("deepseek-ai/DeepSeek-V3", true, None),
        "deepseek-ai/deepseek-r1" | "nvidia/deepseek-r1-nvfp4" | "nvidia/deepseek-v3.1-nvfp4" => {
            map(
                "deepseek-ai/DeepSeek-V3",
                true,
                same(
                    "deepseek-ai/DeepSeek-V3",
                    "the same architecture and shapes: 61 layers, MLA, 256 routed experts, top-8",
                ),
            )
        }
        "openai/gpt-oss-120b" => map("openai/gpt-oss-120b", true, None),
        _ => Err(format!(
            "model `{name}` has no shipped config with the same shapes"
        )),
    }
}

/// Map a GPU of the table (servesim slugs already).
pub fn hardware(slug: &str) -> Result<HardwareMapping, String> {
    let map =
        |hw: &str, note: Option<&str>| Ok(HardwareMapping::new(hw, 1, note.map(str::to_owned)));
    match slug.trim().to_ascii_lowercase().as_str() {
        "h100-sxm5-80gb" => map("H100-SXM5-80GB", None),
        "h200-sxm-141gb" => map("H200-SXM-141GB", None),
        "b200" => map("B200", None),
        "gb200" => map(
            "GB200 (per GPU)",
            Some("gb200: one GPU of a GB200 NVL72 (the TP group within its NVLink domain)"),
        ),
        "mi300x" => map("MI300X", None),
        "mi325x" => map("MI325X", None),
        _ => Err(format!("GPU `{slug}` has no hardware file")),
    }
}

/// The serving stack of an engine, its version as the table writes it, and the latest
/// `measured_date` of the group (for rows without a version).
pub fn stack(
    engine: &str,
    version: &str,
    latest_date: Option<&str>,
) -> Result<(String, String), String> {
    let v = version.trim();
    match engine.trim().to_ascii_lowercase().as_str() {
        "vllm" => {
            // The stack of the version's generation (the rule every command uses).
            let by_version = crate::stack::ServingStack::vllm_name_for_version(v, "NVIDIA");
            match (by_version, v.is_empty(), latest_date) {
                (Some("vllm-v1"), _, _) => Ok(("vllm-v1".into(), format!("vLLM {v}: stack vllm-v1 (V1 engine, asynchronous scheduling, vLLM ≥ 0.14)"))),
                (Some("vllm-v1-sync"), _, _) => Ok(("vllm-v1-sync".into(), format!("vLLM {v}: stack vllm-v1-sync (V1 engine, synchronous scheduling, vLLM 0.8–0.13)"))),
                (Some(_), _, _) => Err(format!("vLLM {v} predates the V1 engine (0.8) that the table's settings assume")),
                (None, true, Some(d)) if d < "2026-01-01" => Ok(("vllm-v1-sync".into(), format!("vLLM version not recorded; measured up to {d}, when vLLM's releases were 0.11–0.13: stack vllm-v1-sync (an assumption)"))),
                (None, true, _) => Ok(("vllm-v1".into(), "vLLM version not recorded (measured 2026 or undated): stack vllm-v1 (an assumption)".into())),
                (None, false, _) => Ok(("vllm-v1".into(), format!("vLLM `{v}` (a development build): stack vllm-v1, as vLLM ≥ 0.14"))),
            }
        }
        "sglang" => Ok(("sglang".into(), format!("SGLang {}: stack sglang (its host figures are estimates, not fitted on any measurement)", if v.is_empty() { "(version not recorded)" } else { v }))),
        "trtllm" => Ok(("trtllm".into(), format!("TensorRT-LLM {}: stack trtllm (PyTorch backend defaults; its host figures are estimates)", if v.is_empty() { "(version not recorded)" } else { v }))),
        _ => Err(format!("engine `{engine}` has no serving stack")),
    }
}

/// The formats of a `precision` for `model`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Formats {
    /// `--quantization`.
    pub quantization: String,
    /// `--kv-cache-dtype` (`None`: the activation dtype).
    pub kv_cache_dtype: Option<String>,
    /// What was chosen and why.
    pub note: String,
}

/// Why quantized rows get an FP8 KV cache: the table does not record it, and at bf16 a
/// measured point that runs smoothly would not fit.
const FP8_KV: &str = "KV cache fp8 (not recorded; at bf16 the cache of Llama-3.1-70B fp8 on one H200 holds about 170k tokens, less than the 32 × 9216 that its measured row at concurrency 32, ISL 1024, OSL 8192 keeps in flight without a sign of preemption)";

/// The weight and KV formats of a `precision` (`--quantization`, `--kv-cache-dtype`),
/// for `model`: 16-bit rows keep a 16-bit KV cache, quantized rows an FP8 one.
pub fn formats(precision: &str, model: &str) -> Result<Formats, String> {
    let p = precision.trim().to_ascii_lowercase();
    let gpt_oss = model.to_ascii_lowercase().contains("gpt-oss");
    let (q, weights) = match p.as_str() {
        "bf16" | "bf16 (blank in source)" => {
            return Ok(Formats {
                quantization: "bf16".into(),
                kv_cache_dtype: None,
                note: "bf16: 16-bit weights, activations and KV cache".into(),
            })
        }
        "fp8" => ("fp8", "fp8: FP8 weights and activations (W8A8; per-tensor and block scales alike)"),
        "fp4" if gpt_oss => ("mxfp4", "fp4 on gpt-oss: the released MXFP4 checkpoint, weight-only at the 16-bit rate (the source labels it nvfp4; Hopper has no FP4 arithmetic)"),
        "fp4" => ("nvfp4", "fp4: NVFP4 weights and activations (W4A4) at the FP4 tensor rate"),
        "int4" => ("int4", "int4: weight-only INT4 at the 16-bit rate"),
        _ => return Err(format!("precision `{precision}` has no weight format")),
    };
    Ok(Formats {
        quantization: q.into(),
        kv_cache_dtype: Some("fp8".into()),
        note: format!("{weights}; {FP8_KV}"),
    })
}

/// How one serving instance is laid out, in servesim's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Tensor-parallel size of each attention rank.
    pub tp: u32,
    /// Pipeline stages.
    pub pp: u32,
    /// Attention data-parallel ranks (simulated replicas).
    pub dp: u32,
    /// Whole experts spread over all `tp × dp` GPUs.
    pub expert_parallel: bool,
    /// What the mapping reads.
    pub note: String,
}

/// The layout of `tp`, `pp`, `attention_dp`, `moe_tp`, `moe_ep` (`None` where blank or
/// 0) for a dense or mixture-of-experts model.
pub fn layout(
    tp: u32,
    pp: u32,
    dp: u32,
    moe_tp: Option<u32>,
    moe_ep: Option<u32>,
    moe: bool,
) -> Result<Layout, String> {
    let dp = dp.max(1);
    let gpus = tp * dp;
    let out = |expert_parallel: bool, note: String| {
        Ok(Layout {
            tp,
            pp,
            dp,
            expert_parallel,
            note,
        })
    };
    if !moe {
        return if dp > 1 {
            Err(format!(
                "attention DP {dp} on a dense model is not a layout servesim models"
            ))
        } else {
            out(false, format!("dense: TP{tp} PP{pp}"))
        };
    }
    let (Some(mtp), Some(mep)) = (moe_tp, moe_ep) else {
        return Err("MoE model without moe_tp/moe_ep: the expert layout is not recorded".into());
    };
    if mtp * mep != gpus {
        return Err(format!(
            "tp × attention_dp = {tp} × {dp} ≠ moe_tp × moe_ep = {mtp} × {mep}: an inconsistent row"
        ));
    }
    match (mtp, mep) {
        (_, 1) if dp == 1 => out(false, format!("MoE TP{tp}: every expert split over the {tp} GPUs (moe_tp {mtp}, no EP)")),
        (_, 1) => Err(format!("attention DP {dp} with experts split by TP (moe_tp {mtp}) is not modelled")),
        (1, _) => out(true, format!("MoE TP{tp} × attention DP{dp} with EP{mep}: whole experts spread over all {gpus} GPUs; each DP rank a simulated replica")),
        _ => Err(format!("MoE TP{mtp} × EP{mep} hybrid is not modelled (servesim splits every expert over the TP group or spreads whole experts over all GPUs)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_hardware_and_stacks_map_or_skip() {
        let m = model("deepseek-ai/DeepSeek-R1").unwrap();
        assert_eq!(m.mapping.model, "deepseek-ai/DeepSeek-V3");
        assert!(m.moe);
        assert!(!model("nvidia/Llama-3.1-8B-Instruct-FP8").unwrap().moe);
        for n in [
            "MiniMaxAI/MiniMax-M2.5",
            "moonshotai/Kimi-K2.5",
            "zhipuai/GLM-5",
            "Qwen/Qwen3.5-397B-A17B",
        ] {
            assert!(model(n).unwrap_err().contains("no shipped config"), "{n}");
        }
        assert_eq!(hardware("gb200").unwrap().hardware, "GB200 (per GPU)");
        assert_eq!(hardware("mi300x").unwrap().hardware, "MI300X");
        assert_eq!(hardware("MI325X").unwrap().hardware, "MI325X");
        assert!(hardware("b300-sxm (no catalog entry)").is_err());
        assert!(hardware("mi355x (no catalog entry)").is_err());

        let s = |e, v, d| stack(e, v, d).map(|x| x.0);
        assert_eq!(s("vllm", "0.19.0", None).unwrap(), "vllm-v1");
        assert_eq!(s("vllm", "0.14.1", None).unwrap(), "vllm-v1");
        assert_eq!(s("vllm", "0.12.0", None).unwrap(), "vllm-v1-sync");
        assert_eq!(s("vllm", "0.8.5", None).unwrap(), "vllm-v1-sync");
        assert!(s("vllm", "0.6.3", None).is_err());
        assert_eq!(s("vllm", "", Some("2025-11-03")).unwrap(), "vllm-v1-sync");
        assert_eq!(s("vllm", "", Some("2026-02-01")).unwrap(), "vllm-v1");
        assert_eq!(s("vllm", "nightly-5b8c30d", None).unwrap(), "vllm-v1");
        assert_eq!(s("sglang", "0.5.9", None).unwrap(), "sglang");
        assert_eq!(s("trtllm", "", None).unwrap(), "trtllm");
        assert!(s("tgi", "3.0", None).is_err());

        let f = |p, m| formats(p, m).map(|f| (f.quantization, f.kv_cache_dtype));
        let fp8 = Some("fp8".to_owned());
        assert_eq!(
            f("fp4", "openai/gpt-oss-120b").unwrap(),
            ("mxfp4".into(), fp8.clone())
        );
        assert_eq!(
            f("fp4", "Qwen/Qwen3-32B").unwrap(),
            ("nvfp4".into(), fp8.clone())
        );
        assert_eq!(f("fp8", "Qwen/Qwen3-32B").unwrap(), ("fp8".into(), fp8));
        assert_eq!(
            f("bf16 (blank in source)", "x").unwrap(),
            ("bf16".into(), None)
        );
        assert!(f("fp6", "x").is_err());
    }

    #[test]
    fn layouts_read_tp_dp_and_ep() {
        let l = layout(4, 1, 1, Some(4), Some(1), true).unwrap();
        assert_eq!((l.tp, l.dp, l.expert_parallel), (4, 1, false));
        let l = layout(8, 1, 1, Some(1), Some(8), true).unwrap();
        assert_eq!((l.tp, l.dp, l.expert_parallel), (8, 1, true));
        let l = layout(2, 1, 2, Some(1), Some(4), true).unwrap();
        assert_eq!((l.tp, l.dp, l.expert_parallel), (2, 2, true));
        assert!(layout(4, 1, 1, Some(2), Some(2), true)
            .unwrap_err()
            .contains("hybrid"));
        assert!(layout(16, 1, 1, Some(4), Some(8), true)
            .unwrap_err()
            .contains("inconsistent"));
        assert!(layout(1, 1, 8, Some(8), Some(1), true).is_err());
        assert!(layout(4, 1, 1, None, None, true).is_err());
        // Dense: the MoE columns are not read.
        let l = layout(2, 1, 0, None, None, false).unwrap();
        assert_eq!((l.tp, l.dp, l.expert_parallel), (2, 1, false));
        assert!(layout(2, 1, 2, None, None, false).is_err());
    }

    #[test]
    fn every_mapping_resolves_in_the_shipped_catalogs() {
        let paths = crate::paths::DataPaths::builtin();
        let models = crate::model::ModelCatalog::load(&paths.model_configs).unwrap();
        let hw = crate::hardware::HardwareCatalog::load(&paths.hardware_dir()).unwrap();
        for n in [
            "meta-llama/Llama-3.1-8B-Instruct",
            "nvidia/Llama-3.1-8B-Instruct-FP8",
            "meta-llama/Llama-3.1-70B",
            "Qwen/Qwen3-32B",
            "nvidia/Qwen3-32B-NVFP4",
            "Qwen/Qwen3-235B-A22B-FP8",
            "deepseek-ai/DeepSeek-V3",
            "deepseek-ai/DeepSeek-R1",
            "openai/gpt-oss-120b",
        ] {
            let m = model(n).unwrap();
            let spec = models.resolve(&m.mapping.model).unwrap();
            let moe = spec
                .layers
                .iter()
                .any(|l| matches!(l.ffn, crate::model::FfnSpec::Moe { .. }));
            assert_eq!(moe, m.moe, "{n}");
        }
        for g in ["h100-sxm5-80gb", "h200-sxm-141gb", "b200", "gb200"] {
            hw.get(&hardware(g).unwrap().hardware).unwrap();
        }
        for s in ["vllm-v1", "vllm-v1-sync", "sglang", "trtllm"] {
            assert!(
                paths
                    .perf_model
                    .join("stacks")
                    .join(format!("{s}.toml"))
                    .is_file(),
                "{s}"
            );
        }
    }
}
