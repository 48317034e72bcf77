//! From the model and device names of published tables to the shipped catalogs.
//!
//! A table name maps to a catalog entry only where the shapes that set the latency are
//! the same; every approximation is stated in the mapping's notes, and names with no
//! faithful counterpart are skipped with the reason.

use serde::Serialize;

/// A table's model name mapped to the model catalog.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelMapping {
    /// The catalog id.
    pub model: String,
    /// `--max-model-len` the measured engine would have used, where the catalog
    /// entry's differs.
    pub max_model_len: Option<u32>,
    /// What differs from the measured model.
    pub note: Option<String>,
}

/// A table's device name mapped to the hardware catalog.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HardwareMapping {
    /// The catalog name.
    pub hardware: String,
    /// Catalog devices (the GPUs the engine sees, one tensor-parallel rank each) in one
    /// device as the table counts it: 2 for an AMD MI250 OAM, whose two GCDs vLLM sees
    /// as two GPUs; 1 elsewhere.
    pub devices_per_table_device: u32,
    /// What is uncertain.
    pub note: Option<String>,
    /// The serving stack the table ran on this device, where it is not the table's
    /// default (vLLM's ROCm build on AMD).
    pub serving_stack: Option<String>,
    /// The engine's build for this device captures no graphs and has no custom
    /// all-reduce (vLLM's XPU build): replayed eagerly, every all-reduce through the
    /// collective library, unless a flag says otherwise.
    pub eager_build: bool,
}

impl HardwareMapping {
    /// `devices_per_table_device` catalog devices `hardware` per table device, on the
    /// table's default stack.
    pub fn new(hardware: &str, devices_per_table_device: u32, note: Option<String>) -> Self {
        HardwareMapping {
            hardware: hardware.to_owned(),
            devices_per_table_device,
            note,
            serving_stack: None,
            eager_build: false,
        }
    }
}

/// The serving stack of the tables' runs on AMD GPUs: vLLM 0.6's ROCm build.
pub const ROCM_TABLE_STACK: &str = "vllm-0.6-rocm";

/// Map a model name of the Argonne or Splitwise tables.
pub fn model(name: &str) -> Result<ModelMapping, String> {
    let exact = |id: &str| {
        Ok(ModelMapping {
            model: id.to_owned(),
            max_model_len: None,
            note: None,
        })
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "meta-llama/llama-2-7b-hf" => exact("meta-llama/Llama-2-7b-hf"),
        "meta-llama/llama-2-13b-hf" => exact("meta-llama/Llama-2-13b-hf"),
        "meta-llama/llama-2-70b-hf" | "llama2-70b" => exact("meta-llama/Llama-2-70b-hf"),
        "meta-llama/meta-llama-3-8b" => exact("meta-llama/Meta-Llama-3-8B"),
        "meta-llama/meta-llama-3-70b" => exact("meta-llama/Meta-Llama-3-70B"),
        "mistralai/mistral-7b-v0.1" => exact("mistralai/Mistral-7B-v0.1"),
        "mistralai/mixtral-8x7b-v0.1" => exact("mistralai/Mixtral-8x7B-v0.1"),
        "mistralai/mixtral-8x7b-instruct-v0.1" => Ok(ModelMapping {
            model: "mistralai/Mixtral-8x7B-v0.1".into(),
            max_model_len: None,
            note: Some(format!(
                "{name}: mistralai/Mixtral-8x7B-v0.1's config (the Instruct model has the same shapes)"
            )),
        }),
        "mistralai/mixtral-8x22b-v0.1" => exact("mistralai/Mixtral-8x22B-v0.1"),
        "facebook/opt-6.7b" => exact("facebook/opt-6.7b"),
        "qwen/qwen2-72b" => exact("Qwen/Qwen2-72B"),
        "qwen/qwen2-7b" => exact("Qwen/Qwen2-7B"),
        "qwen/qwen1.5-7b" => exact("Qwen/Qwen1.5-7B"),
        "deci/decilm-7b" => exact("Deci/DeciLM-7B"),
        "baai/aquila-7b" => exact("BAAI/Aquila-7B"),
        "bigscience/bloom-7b1" => exact("bigscience/bloom-7b1"),
        "eleutherai/gpt-j-6b" => exact("EleutherAI/gpt-j-6b"),
        "huggyllama/llama-7b" => Ok(ModelMapping {
            model: "meta-llama/Llama-2-7b-hf".into(),
            max_model_len: Some(2048),
            note: Some(format!(
                "{name} (LLaMA 1) is not shipped; meta-llama/Llama-2-7b-hf has the same layer shapes (32 layers, hidden 4096, 32 heads, MLP 11008, vocabulary 32000); max_model_len is LLaMA 1's 2048"
            )),
        }),
        _ => Err(format!(
            "model `{name}` has no shipped config with the same shapes"
        )),
    }
}

/// Why `Num of Hardware` 1 is one MI250 OAM (two GCDs), not one GCD.
const MI250_NOTE: &str = "the table counts MI250 OAMs (`Num of Hardware`), each two GCDs that ROCm and vLLM see as two 64 GB GPUs: simulated at TP = 2 × Num on MI250 (per GCD). Evidence: Llama-2-70B in float16 (~138 GB of weights) runs at Num 2, which two 64 GB GCDs cannot hold; Mixtral-8x7B (~93 GB) runs at Num 1, more than one GCD holds; the repo's vLLM/MI250 script passes --tensor-parallel-size 4 and 8 where the table has Num 2 and 4. vLLM v0.6.1 (ROCm build) per that folder's README";

/// Why both Intel names are the same part, seen whole.
const MAX1550_NOTE: &str = "\"Intel Max 1550\" and \"Intel PVC GPU\" are the same part: the repo's hardware matrix heads the column \"Intel Max1550\" and links it to vLLM/PVC (later renamed vLLM/Max1550), whose README, titled \"... on Intel PVC\", shows sysmon listing \"Intel(R) Data Center GPU Max 1550\". One device = one whole card (both stacks): that README runs --tensor-parallel-size 1 \"on single GPU (both tiles)\", with 896 EUs (112 Xe cores) per GPU on Aurora, hence the Aurora entry. vLLM v0.5.2 (XPU build); Xe Link's rate is not in the references, so TP > 1 collectives are costed over PCIe Gen5 (pessimistic)";

/// How vLLM's XPU build runs an iteration.
const XPU_NOTE: &str = "vLLM's XPU build (v0.5.2 here) captures no graphs: its executor sets enforce_eager (\"CUDA graph is not supported on XPU, fallback to the eager mode\"), and its all-reduces go through torch.distributed's oneCCL backend (vLLM's custom all-reduce is CUDA's); replayed so (--enforce-eager --disable-custom-all-reduce; either flag set to false overrides)";

/// Why the "Intel PVC GPU" rows disagree with the "Intel Max 1550" rows.
const PVC_ROWS_NOTE: &str = "The \"Intel PVC GPU\" rows take 3.0–9.8× as long as the \"Intel Max 1550\" rows of the same 24 configurations (Llama-2-7B, Llama-3-8B, Mistral-7B, TP1, 128 and 256 tokens, batch 1–64): a different software setup that the repo does not describe";

/// Map a device name of the Argonne or Splitwise tables.
pub fn hardware(name: &str) -> Result<HardwareMapping, String> {
    let map = |hw: &str, devices_per_table_device: u32, note: Option<&str>| {
        Ok(HardwareMapping::new(
            hw,
            devices_per_table_device,
            note.map(str::to_owned),
        ))
    };
    // The vLLM release a device's rows ran on, where the repository says which.
    let release = |m: Result<HardwareMapping, String>, stack: &str| {
        m.map(|mut h| {
            h.serving_stack = Some(stack.into());
            h
        })
    };
    // The Argonne AMD runs used vLLM's ROCm build (v0.6.1 per the dataset's README).
    let rocm = |m: Result<HardwareMapping, String>| release(m, ROCM_TABLE_STACK);
    // The Intel runs used vLLM's XPU build, which captures no graphs ([`XPU_NOTE`]).
    let xpu = |m: Result<HardwareMapping, String>| {
        m.map(|mut h| {
            h.eager_build = true;
            h.note = Some(format!("{}. {XPU_NOTE}", h.note.unwrap_or_default()));
            h
        })
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "nvidia a100 gpu" => release(
            map(
                "A100-SXM4-40GB",
                1,
                Some("the table says only \"Nvidia A100 GPU\"; most likely the ALCF Polaris A100-SXM4-40GB. vLLM of mid-September 2024, about 0.6.1 (the A100 scripts' requirements files are that release's), replayed on vllm-0.6"),
            ),
            "vllm-0.6",
        ),
        "nvidia h100 gpu" => map(
            "H100-SXM5-80GB",
            1,
            Some("the table does not say SXM or PCIe, 80 or 94 GB; taken as H100-SXM5-80GB"),
        ),
        "nvidia gh200 gpu" => release(
            map(
                "GH200-96GB",
                1,
                Some("the JLSE GH200, 96 GB HBM3 per the dataset's README; vLLM 0.5.3.post1 (installed by vLLM/GH200/run-throughput-bench.sh in NGC's pytorch:24.06 container), replayed on vllm-0.5; datasheet clocks assumed"),
            ),
            "vllm-0.5",
        ),
        "amd mi300x gpu" => rocm(map("MI300X", 1, Some("vLLM ROCm build (v0.6.1 per the repo's README)"))),
        "amd mi250 gpu" => rocm(map("MI250 (per GCD)", 2, Some(MI250_NOTE))),
        "intel max 1550" => xpu(map("Max 1550 (Aurora, 112 Xe cores)", 1, Some(MAX1550_NOTE))),
        "intel pvc gpu" => xpu(Ok(HardwareMapping::new(
            "Max 1550 (Aurora, 112 Xe cores)",
            1,
            Some(format!("{MAX1550_NOTE}. {PVC_ROWS_NOTE}")),
        ))),
        "a100-80gb" => map("A100-SXM4-80GB", 1, Some("DGX-A100")),
        "a100-sxm4-80gb" => map("A100-SXM4-80GB", 1, None),
        "h100-80gb" => map("H100-SXM5-80GB", 1, Some("H100 SXM5 80 GB: a DGX-H100 in Splitwise's table, an \"H100-HBM3-80GB\" system on TensorRT-LLM's 2023 page")),
        "l40s" => map("L40S", 1, Some("L40S 48GB; GPUs linked by PCIe 4 only")),
        "h200-sxm-141gb" => map("H200-SXM-141GB", 1, Some("H200 SXM 141 GB: TensorRT-LLM's 2024 page names no variant")),
        "h100-80gb-pcap" => Err("power-capped H100 (h100-80gb-pcap): no catalog entry models the capped clocks".into()),
        _ => Err(format!("device `{name}` has no hardware file")),
    }
}

/// Map a model name of the TensorRT-LLM performance overview (`nvidia/<model>-FP8`,
/// `…-FP8|FP4` where one name stands for both checkpoints) to the model catalog. The
/// precision suffix is not part of the shapes; [`trtllm_precision_matches`] checks it.
pub fn trtllm_model(name: &str) -> Result<ModelMapping, String> {
    let base = trtllm_base_name(name);
    let map = |id: &str, note: Option<String>| {
        Ok(ModelMapping {
            model: id.to_owned(),
            max_model_len: None,
            note,
        })
    };
    // A name that does not say base or Instruct: the two share their shapes.
    let either = |id: &str| {
        map(
            id,
            Some(format!(
                "{name}: {id} (the table does not say base or Instruct; they share their shapes)"
            )),
        )
    };
    match base.as_str() {
        "llama-3.1-8b-instruct" => map("meta-llama/Llama-3.1-8B-Instruct", None),
        "llama-3.3-70b-instruct" => map("meta-llama/Llama-3.3-70B-Instruct", None),
        "llama-3.1-405b-instruct" => map(
            "meta-llama/Llama-3.1-405B",
            Some(format!(
                "{name}: the shipped meta-llama/Llama-3.1-405B config has the Instruct model's shapes"
            )),
        ),
        "qwen3-235b-a22b" => map("Qwen/Qwen3-235B-A22B", None),
        "qwen3-30b-a3b" => map(
            "Qwen/Qwen3-30B-A3B-Instruct-2507",
            Some(format!(
                "{name}: Qwen/Qwen3-30B-A3B-Instruct-2507 has the same layer shapes as Qwen3-30B-A3B (it differs in maximum length)"
            )),
        ),
        "llama-4-scout-17b-16e-instruct" | "llama-4-scout-17b-16e" => map(
            "meta-llama/Llama-4-Scout-17B-16E-Instruct",
            Some(format!(
                "{name}: the language model only (the vision encoder is not run by a text benchmark); chunked local attention is costed as full attention"
            )),
        ),
        "llama-4-maverick-17b-128e-instruct" => map(
            "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
            Some(format!(
                "{name}: the language model only; chunked local attention is costed as full attention"
            )),
        ),
        // The 0.12 – 0.17 overviews name models by family and size ("LLaMA v3.1 8B"),
        // built from Hugging Face weights with `trtllm-bench build`.
        "llama-v3.1-8b" => either("meta-llama/Llama-3.1-8B"),
        "llama-v3.1-70b" => either("meta-llama/Llama-3.1-70B"),
        "llama-v3.1-405b" => either("meta-llama/Llama-3.1-405B"),
        "llama-v3-8b" => either("meta-llama/Meta-Llama-3-8B"),
        "llama-v3-70b" => either("meta-llama/Meta-Llama-3-70B"),
        "mistral-7b" => map(
            "mistralai/Mistral-7B-v0.1",
            Some(format!("{name}: mistralai/Mistral-7B-v0.1 (the table does not name the release; v0.3 has the same layers and a 32,768-token vocabulary)")),
        ),
        "gptj-6b" => map("EleutherAI/gpt-j-6b", None),
        "llama-v2-7b" => map("meta-llama/Llama-2-7b-hf", None),
        "llama-v2-70b" => map("meta-llama/Llama-2-70b-hf", None),
        "mixtral-8x7b" => map("mistralai/Mixtral-8x7B-v0.1", None),
        "mixtral-8x22b" => map("mistralai/Mixtral-8x22B-v0.1", None),
        _ => Err(format!(
            "model `{name}` has no shipped config with the same shapes"
        )),
    }
}

/// The lowercase model name without the `nvidia/` owner, the precision suffix
/// (`-fp8`, `-fp4`, `-fp8|fp4`) and a parenthesised remark.
fn trtllm_base_name(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    let n = n.split('(').next().unwrap_or(&n).trim();
    let n = n.rsplit('/').next().unwrap_or(n);
    let mut n = n.split_whitespace().collect::<Vec<_>>().join("-");
    for suffix in ["-fp8|fp4", "-fp8", "-fp4"] {
        if let Some(stripped) = n.strip_suffix(suffix) {
            n = stripped.to_owned();
            break;
        }
    }
    n
}

/// Whether a TensorRT-LLM model name is compatible with `precision` (`FP8`/`FP4`): a
/// name that names only the other checkpoint is not.
pub fn trtllm_precision_matches(name: &str, precision: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    let p = precision.trim().to_ascii_lowercase();
    let names_fp8 = n.ends_with("-fp8") || n.contains("fp8|fp4") || n.contains("fp8/fp4");
    let names_fp4 = n.ends_with("-fp4") || n.contains("fp8|fp4") || n.contains("fp8/fp4");
    match p.as_str() {
        "fp8" => names_fp8 || !names_fp4,
        "fp4" => names_fp4 || !names_fp8,
        "fp16" => !names_fp8 && !names_fp4,
        _ => false,
    }
}

/// Map a GPU name of the TensorRT-LLM performance overview (the systems its README
/// lists) to the hardware catalog.
pub fn trtllm_hardware(name: &str) -> Result<HardwareMapping, String> {
    let map = |hw: &str, note: &str| Ok(HardwareMapping::new(hw, 1, Some(note.to_owned())));
    match name.trim().to_ascii_lowercase().as_str() {
        "h100" => map("H100-SXM5-80GB", "H100: H100 SXM 80GB in a DGX H100, per the README"),
        "h200" => map("H200-SXM-141GB", "H200: H200 SXM 141GB in a DGX H200, per the README"),
        "b200" => map("B200", "B200: B200 180GB in a DGX B200, per the README"),
        "gb200" => map(
            "GB200 (per GPU)",
            "GB200: one GPU of a GB200 NVL72; the README says 192GB, the device file has the current datasheet's 186 GB",
        ),
        "rtx6000problackwellserver" => map(
            "RTX PRO 6000 Blackwell Server Edition",
            "RTX6000ProBlackwellServer: RTX PRO 6000 Blackwell Server Edition, GPUs linked by PCIe 5 only",
        ),
        // The column names of the 0.12, 0.15 and 0.17 overviews.
        "h100 80gb hbm3" => map("H100-SXM5-80GB", "H100 80GB HBM3: H100 SXM5 80GB (an HGX/DGX H100 board)"),
        "h200 141gb hbm3" => map("H200-SXM-141GB", "H200 141GB HBM3: H200 SXM 141GB (an HGX/DGX H200 board)"),
        "gh200 480gb" => map(
            "GH200-96GB",
            "GH200 480GB: a GH200 superchip with 480 GB of CPU memory, whose GPU has 96 GB of HBM3",
        ),
        "l40s" => map("L40S", "L40S: L40S 48GB, GPUs linked by PCIe 4 only"),
        "a100-sxm4-80gb" => map("A100-SXM4-80GB", "A100-SXM4-80GB: A100 SXM4 80GB (an HGX/DGX A100 board)"),
        "a100-pcie-80gb" => map("A100-PCIe-80GB", "A100-PCIE-80GB: A100 PCIe 80GB (the hardware file joins pairs by an NVLink bridge, larger groups by PCIe 4; the page does not say which the system had)"),
        "gh200 96gb hbm3 cg1" => map("GH200-96GB", "GH200 96GB HBM3 CG1: the GPU of a GH200 superchip, 96 GB of HBM3"),
        _ => Err(format!("GPU `{name}` has no hardware file")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_and_skips() {
        let m = model("meta-llama/Meta-Llama-3-8B").unwrap();
        assert_eq!(m.model, "meta-llama/Meta-Llama-3-8B");
        assert_eq!(m.max_model_len, None);
        assert!(m.note.is_none());
        let m = model("huggyllama/llama-7b").unwrap();
        assert!(m.note.unwrap().contains("same layer shapes"));
        assert_eq!(
            model("llama2-70b").unwrap().model,
            "meta-llama/Llama-2-70b-hf"
        );
        assert!(model("bloom-176b").is_err());
        let a100 = hardware("Nvidia A100 GPU").unwrap();
        assert_eq!(a100.hardware, "A100-SXM4-40GB");
        assert_eq!(a100.devices_per_table_device, 1);
        assert!(hardware("h100-80gb-pcap").is_err());
        assert!(hardware("Habana Gaudi2").is_err());
    }

    #[test]
    fn argonne_gh200_mi250_and_intel_names() {
        let gh200 = hardware("Nvidia GH200 GPU").unwrap();
        assert_eq!(gh200.hardware, "GH200-96GB");
        assert_eq!(gh200.devices_per_table_device, 1);
        assert!(gh200.note.unwrap().contains("96 GB"));
        // Each NVIDIA platform's rows replay on the vLLM release its scripts installed:
        // GH200 0.5.3.post1, A100 about 0.6.1 (asynchronous output processing).
        assert_eq!(gh200.serving_stack.as_deref(), Some("vllm-0.5"));
        assert_eq!(
            hardware("Nvidia A100 GPU")
                .unwrap()
                .serving_stack
                .as_deref(),
            Some("vllm-0.6")
        );

        // One MI250 in the table is one OAM: two GCDs, two vLLM GPUs.
        let mi250 = hardware("  AMD MI250 GPU ").unwrap();
        assert_eq!(mi250.hardware, "MI250 (per GCD)");
        assert_eq!(mi250.devices_per_table_device, 2);
        assert!(mi250.note.unwrap().contains("TP = 2 × Num"));

        // Max 1550 and PVC are the same part, a whole card per device.
        let max = hardware("Intel Max 1550").unwrap();
        let pvc = hardware("intel pvc gpu").unwrap();
        assert_eq!(max.hardware, pvc.hardware);
        assert_eq!(max.hardware, "Max 1550 (Aurora, 112 Xe cores)");
        assert_eq!(max.devices_per_table_device, 1);
        assert_eq!(pvc.devices_per_table_device, 1);
        assert!(max.note.unwrap().contains("both tiles"));
        let pvc_note = pvc.note.unwrap();
        assert!(pvc_note.contains("both tiles") && pvc_note.contains("3.0–9.8×"));
        // vLLM's XPU build captures no graphs; the CUDA and ROCm builds do.
        assert!(max.eager_build && pvc.eager_build && pvc_note.contains("enforce_eager"));
        assert!(!gh200.eager_build && !mi250.eager_build);
    }

    #[test]
    fn every_mapping_resolves_in_the_shipped_catalogs() {
        let paths = crate::paths::DataPaths::builtin();
        let models = crate::model::ModelCatalog::load(&paths.model_configs).unwrap();
        let hw = crate::hardware::HardwareCatalog::load(&paths.hardware_dir()).unwrap();
        for n in [
            "meta-llama/Llama-2-7b-hf",
            "meta-llama/Llama-2-13b-hf",
            "llama2-70b",
            "meta-llama/Meta-Llama-3-8B",
            "meta-llama/Meta-Llama-3-70B",
            "mistralai/Mistral-7B-v0.1",
            "mistralai/Mixtral-8x7B-v0.1",
            "mistralai/Mixtral-8x7B-Instruct-v0.1",
            "mistralai/Mixtral-8x22B-v0.1",
            "facebook/opt-6.7b",
            "Qwen/Qwen2-7B",
            "Qwen/Qwen2-72B",
            "huggyllama/llama-7b",
            "Qwen/Qwen1.5-7B",
            "Deci/DeciLM-7B",
            "BAAI/Aquila-7B",
            "bigscience/bloom-7b1",
            "EleutherAI/gpt-j-6b",
        ] {
            models.resolve(&model(n).unwrap().model).unwrap();
        }
        // Every model of the Argonne table has a config (none is skipped).
        let table = paths
            .model_configs
            .join("../../shared/validation/argonne-llm-inference-bench/All_results.csv");
        if let Ok(text) = std::fs::read_to_string(&table) {
            let mut r = csv::Reader::from_reader(text.as_bytes());
            let col = r
                .headers()
                .unwrap()
                .iter()
                .position(|h| h == "Model")
                .unwrap();
            for row in r.records() {
                let name = row.unwrap()[col].to_owned();
                let m = model(&name).unwrap_or_else(|e| panic!("{e}"));
                models.resolve(&m.model).unwrap();
            }
        }
        // The stand-ins have the shapes of the models they stand for.
        let shape = |id: &str| {
            let s = models.resolve(id).unwrap();
            let a = &s.layers[0].attention;
            (
                s.hidden_size,
                s.num_layers,
                s.vocab_size,
                a.num_heads,
                a.num_kv_heads,
            )
        };
        assert_eq!(shape("meta-llama/Llama-2-7b-hf"), (4096, 32, 32000, 32, 32));
        assert_eq!(
            model("huggyllama/llama-7b").unwrap().max_model_len,
            Some(2048)
        );
        for n in [
            "Nvidia A100 GPU",
            "Nvidia H100 GPU",
            "Nvidia GH200 GPU",
            "AMD MI300X GPU",
            "AMD MI250 GPU",
            "Intel Max 1550",
            "Intel PVC GPU",
            "a100-80gb",
            "a100-sxm4-80gb",
            "h100-80gb",
            "l40s",
            "h200-sxm-141gb",
        ] {
            let m = hardware(n).unwrap();
            let g = hw.get(&m.hardware).unwrap();
            // The catalog entry is the device one engine rank sees: a table device
            // holds `devices_per_table_device` of them.
            assert!(m.devices_per_table_device >= 1, "{n}");
            assert_eq!(g.name, m.hardware, "{n}");
        }
    }

    /// The MI250 reading of `Num of Hardware` is the only one under which the table's
    /// largest models fit: checked against the shipped model configs and device memory.
    #[test]
    fn mi250_device_count_is_the_reading_under_which_the_models_fit() {
        let paths = crate::paths::DataPaths::builtin();
        let models = crate::model::ModelCatalog::load(&paths.model_configs).unwrap();
        let hw = crate::hardware::HardwareCatalog::load(&paths.hardware_dir()).unwrap();
        let m = hardware("AMD MI250 GPU").unwrap();
        let gcd_bytes = hw.get(&m.hardware).unwrap().memory_bytes();
        let fp16_bytes_per_param = 2.0;
        // (model, the smallest `Num of Hardware` the table runs it at)
        for (name, num) in [
            ("meta-llama/Llama-2-70b-hf", 2.0),
            ("mistralai/Mixtral-8x7B-v0.1", 1.0),
        ] {
            let cfg = models.resolve(&model(name).unwrap().model).unwrap();
            let weights = cfg.params().total as f64 * fp16_bytes_per_param;
            assert!(weights > num * gcd_bytes, "{name} would fit on {num} GCDs");
            let per = f64::from(m.devices_per_table_device);
            assert!(
                weights < num * per * gcd_bytes,
                "{name} must fit on {num} OAMs"
            );
        }
        for n in [
            "nvidia/Llama-3.1-8B-Instruct-FP8",
            "nvidia/Llama-3.3-70B-Instruct-FP8|FP4",
            "nvidia/Llama-3.1-405B-Instruct-FP4",
            "nvidia/Qwen3-235B-A22B-FP8|FP4",
            "nvidia/Qwen3-30B-A3B-FP4",
        ] {
            models.resolve(&trtllm_model(n).unwrap().model).unwrap();
        }
        for n in ["H100", "H200", "B200", "GB200", "RTX6000ProBlackwellServer"] {
            hw.get(&trtllm_hardware(n).unwrap().hardware).unwrap();
        }
    }

    #[test]
    fn trtllm_names_map_skip_and_check_precision() {
        let m = trtllm_model("nvidia/Llama-3.3-70B-Instruct-FP8|FP4").unwrap();
        assert_eq!(m.model, "meta-llama/Llama-3.3-70B-Instruct");
        assert_eq!(
            trtllm_model("nvidia/Llama-3.1-8B-Instruct-FP8")
                .unwrap()
                .model,
            "meta-llama/Llama-3.1-8B-Instruct"
        );
        assert_eq!(
            trtllm_model("nvidia/Qwen3-30B-A3B-FP4").unwrap().model,
            "Qwen/Qwen3-30B-A3B-Instruct-2507"
        );
        let m = trtllm_model("Llama-4-Scout-17B-16E (nvidia FP8/FP4 ckpt)").unwrap();
        assert_eq!(m.model, "meta-llama/Llama-4-Scout-17B-16E-Instruct");
        assert!(m.note.unwrap().contains("language model only"));
        let m = trtllm_model("nvidia/Llama-4-Maverick-17B-128E-Instruct-FP8|FP4").unwrap();
        assert_eq!(m.model, "meta-llama/Llama-4-Maverick-17B-128E-Instruct");
        let e = trtllm_model("nvidia/Mistral-Large-3-675B-FP4").unwrap_err();
        assert!(e.contains("no shipped config"), "{e}");
        assert!(trtllm_model("nvidia/Mystery-1B-FP8").is_err());
        assert!(trtllm_precision_matches("nvidia/Qwen3-30B-A3B-FP4", "FP4"));
        assert!(!trtllm_precision_matches("nvidia/Qwen3-30B-A3B-FP4", "FP8"));
        assert!(trtllm_precision_matches(
            "nvidia/Qwen3-235B-A22B-FP8|FP4",
            "fp8"
        ));
        assert!(!trtllm_precision_matches(
            "nvidia/Qwen3-235B-A22B-FP8|FP4",
            "int4"
        ));
        assert_eq!(
            trtllm_hardware("RTX6000ProBlackwellServer")
                .unwrap()
                .hardware,
            "RTX PRO 6000 Blackwell Server Edition"
        );
        assert!(trtllm_hardware("MI300X").is_err());
    }
}
