//! A deployment: one model on GPUs of one kind, with its parallelism and number formats.
//! Every command that describes a deployment resolves the same [`DeploymentRequest`]
//! (vLLM's flag names) into a validated [`Deployment`].

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::hardware::{ClusterSpec, GpuSpec, HardwareCatalog};
use crate::model::{ModelCatalog, ModelSpec};
use crate::paths::DataPaths;
use crate::stack::{BackendInputs, Execution, PerQueryHeadReads, ServingStack};
use serde::Serialize;
use std::sync::Arc;

/// The model used when none is named.
pub const DEFAULT_MODEL: &str = "meta-llama/Llama-3.1-8B";
/// The hardware used when none is named.
pub const DEFAULT_HARDWARE: &str = "h100";

/// What the user asked for, before resolution. `None` means "the default".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeploymentRequest {
    /// Model name or config.json path.
    pub model: Option<String>,
    /// Hardware name, alias or .toml path.
    pub hardware: Option<String>,
    /// Tensor-parallel size.
    pub tensor_parallel_size: Option<u32>,
    /// Pipeline-parallel size.
    pub pipeline_parallel_size: Option<u32>,
    /// `auto`, `bfloat16`, `float16`, `float32`.
    pub dtype: Option<String>,
    /// Weight quantization (`fp8`, `int8`, `awq`, `gptq`, `mxfp4`, `nvfp4`).
    pub quantization: Option<String>,
    /// KV-cache dtype (`auto`, `fp8`, ...).
    pub kv_cache_dtype: Option<String>,
    /// Longest sequence served.
    pub max_model_len: Option<u32>,
    /// Fraction of GPU memory the engine may use.
    pub gpu_memory_utilization: Option<f64>,
    /// What `gpu_memory_utilization` is a fraction of (default: the serving stack's
    /// `[memory]`); a replay of another engine's runs sets that engine's.
    pub kv_cache_budget: Option<crate::stack::KvCacheBudget>,
    /// Attention data-parallel ranks (each its own engine) sharing the experts.
    pub data_parallel_size: Option<u32>,
    /// Spread routed experts over the TP × DP GPUs instead of splitting each.
    pub enable_expert_parallel: bool,
    /// Tokens on the busiest expert-parallel GPU over the mean (1 = perfectly balanced).
    pub expert_load_imbalance: Option<f64>,
    /// GPUs per node (default: the device file's).
    pub gpus_per_node: Option<u32>,
    /// Key of the link between nodes in `perf_model/interconnects.toml` (default: the
    /// device file's scale-out NIC).
    pub inter_node_link: Option<String>,
    /// Key of the link between GPUs of a node (default: the device file's).
    pub intra_node_link: Option<String>,
    /// Serving stack: a name under `perf_model/stacks/` or a stack file (default: vLLM's
    /// stack of [`Self::engine_version`]'s generation where one is given,
    /// [`crate::stack::ServingStack::vllm_name_for_version`], else
    /// [`crate::stack::DEFAULT_STACK`]).
    pub serving_stack: Option<String>,
    /// The serving engine's version (`0.19.0`), where known: measurements of that
    /// version are preferred to the average over the versions measured.
    pub engine_version: Option<String>,
    /// `Some(true)`: every iteration runs eagerly, each kernel launched by the CPU
    /// (vLLM's `--enforce-eager`), whatever CUDA graphs the stack captures. `None`: the
    /// stack's.
    pub enforce_eager: Option<bool>,
    /// CUDA-graph settings that replace the stack's.
    pub graphs: GraphFlags,
    /// `Some(true)`: every tensor-parallel all-reduce goes to the collective library
    /// (NCCL, RCCL), the stack's custom all-reduce kernel unused (vLLM's and SGLang's
    /// `--disable-custom-all-reduce`). `None`: the stack's.
    pub disable_custom_all_reduce: Option<bool>,
    /// The engine runs as a library (vLLM's `LLM` class, as offline benchmarks run it):
    /// the stack's offline batch defaults apply where it has them.
    pub offline: bool,
}

/// CUDA-graph settings given on the command line; each replaces the stack's where set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GraphFlags {
    /// Captured sizes (`--cuda-graph-sizes`).
    pub sizes: Option<Vec<u32>>,
    /// Largest captured size kept (`--max-cuda-graph-size`).
    pub max_size: Option<u32>,
    /// Longest decode context a graph runs (`--max-seq-len-to-capture`).
    pub max_context: Option<u32>,
}

impl GraphFlags {
    fn is_empty(&self) -> bool {
        *self == GraphFlags::default()
    }

    /// `on_device` (the stack's execution as the device's rules cut it) with these
    /// settings. A list or a largest size replaces the device's cut, as the engines' own
    /// flags do (SGLang's `--cuda-graph-max-bs` raises its memory-based limit too), so
    /// those start from `stack`, the stack's uncut execution.
    fn apply(&self, stack: &Execution, on_device: &Execution) -> Result<Execution> {
        let flag = |f: &str, msg: &str| Error::input("<command line>", Some(f), msg);
        let mut e = if self.sizes.is_some() || self.max_size.is_some() {
            stack.clone()
        } else {
            on_device.clone()
        };
        if let Some(sizes) = &self.sizes {
            if sizes.is_empty() || sizes.contains(&0) {
                return Err(flag(
                    "cuda-graph-sizes",
                    "sizes must be whole numbers of at least 1",
                ));
            }
            let mut s = sizes.clone();
            s.sort_unstable();
            s.dedup();
            e = e.with_capture_sizes(s);
        }
        if let Some(m) = self.max_size {
            if m == 0 {
                return Err(flag(
                    "max-cuda-graph-size",
                    "must be at least 1 (use --enforce-eager for no graphs)",
                ));
            }
            let kept: Vec<u32> = e
                .capture_sizes
                .iter()
                .copied()
                .filter(|&c| c <= m)
                .collect();
            e = e.with_capture_sizes(kept);
        }
        if let Some(c) = self.max_context {
            if c == 0 {
                return Err(flag("max-seq-len-to-capture", "must be at least 1"));
            }
            e.max_capture_context = Some(c);
        }
        Ok(e)
    }
}

/// A resolved, validated deployment.
#[derive(Clone, Debug)]
pub struct Deployment {
    /// The model.
    pub model: ModelSpec,
    /// The GPUs and their links.
    pub cluster: ClusterSpec,
    /// Tensor-parallel size.
    pub tp: u32,
    /// Pipeline-parallel size.
    pub pp: u32,
    /// Activation (and unquantized weight) format.
    pub act_dtype: DType,
    /// Weight format of quantizable matrices; `None` = what the checkpoint declares.
    pub weight_dtype: Option<DType>,
    /// KV-cache format.
    pub kv_dtype: DType,
    /// Longest sequence served.
    pub max_model_len: u32,
    /// Fraction of GPU memory the engine may use.
    pub gpu_memory_utilization: f64,
    /// What `gpu_memory_utilization` is a fraction of.
    pub kv_cache_budget: crate::stack::KvCacheBudget,
    /// Attention data-parallel ranks; each is one simulated replica of `tp × pp` GPUs.
    pub dp: u32,
    /// Expert-parallel size: routed experts are spread over `ep` GPUs, whole (1 = each
    /// expert split over the TP group instead).
    pub ep: u32,
    /// Tokens on the busiest expert-parallel GPU over the mean.
    pub expert_load_imbalance: f64,
    /// The serving stack that runs it.
    pub stack: Arc<ServingStack>,
    /// The serving engine's version, where known ([`DeploymentRequest::engine_version`]).
    pub engine_version: Option<String>,
    /// The KV cache's block size when the engine sets one other than its stack's
    /// default ([`Deployment::for_engine`]; read by [`Deployment::kv_block_size`]).
    pub kv_block_size: Option<u32>,
}

/// A short description of a deployment for reports.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DeploymentSummary {
    /// Model id.
    pub model: String,
    /// Hardware name.
    pub hardware: String,
    /// Tensor-parallel size.
    pub tensor_parallel_size: u32,
    /// Pipeline-parallel size.
    pub pipeline_parallel_size: u32,
    /// Activation dtype.
    pub dtype: String,
    /// Weight format of the quantizable matrices.
    pub weight_dtype: String,
    /// KV-cache dtype.
    pub kv_cache_dtype: String,
    /// Longest sequence served.
    pub max_model_len: u32,
    /// Fraction of GPU memory the engine may use.
    pub gpu_memory_utilization: f64,
    /// Serving stack.
    pub serving_stack: String,
}

/// `--intra-node-link` value that selects the link calibrated on one system's end-to-end
/// runs (`perf_model/profiles/<gpu>/network/link_calibration.toml`), where the GPU's
/// measured model has one.
pub const CALIBRATED_LINK: &str = "calibrated";

fn parse_dtype(flag: &str, value: &str) -> Result<DType> {
    value
        .parse::<DType>()
        .map_err(|msg| Error::input("<command line>", Some(flag), msg))
}

impl Deployment {
    /// Resolve `req` against the catalogs under `paths`.
    pub fn resolve(req: &DeploymentRequest, paths: &DataPaths) -> Result<Self> {
        let models = ModelCatalog::for_paths(paths)?;
        let model = models.resolve(req.model.as_deref().unwrap_or(DEFAULT_MODEL))?;
        Self::resolve_with_model(req, paths, model)
    }

    /// Resolve `req` with an already built `model` (a measurement file's own description
    /// of a model the catalog does not hold, say); `req.model` is not read.
    pub fn resolve_with_model(
        req: &DeploymentRequest,
        paths: &DataPaths,
        model: ModelSpec,
    ) -> Result<Self> {
        let hardware = HardwareCatalog::load(&paths.hardware_dir())?;
        let gpu = hardware.resolve(req.hardware.as_deref().unwrap_or(DEFAULT_HARDWARE))?;
        // Without a stack named, an engine version picks vLLM's stack of that generation.
        let by_version = match (&req.serving_stack, &req.engine_version) {
            (None, Some(v)) => ServingStack::vllm_name_for_version(v, &gpu.vendor),
            _ => None,
        };
        let name = req.serving_stack.as_deref().or(by_version);
        let stack = Arc::new(ServingStack::load(paths, name)?);
        let mut d = Self::from_parts(model, gpu, stack, req)?;
        let link = |flag: &str, key: &str| {
            hardware.interconnects().link_spec(key).ok_or_else(|| {
                let known: Vec<&str> = hardware
                    .interconnects()
                    .links
                    .keys()
                    .map(String::as_str)
                    .collect();
                Error::Unknown {
                    kind: if flag == "inter" {
                        "inter-node link"
                    } else {
                        "intra-node link"
                    },
                    name: key.to_owned(),
                    suggestions: crate::error::closest_names(key, known, 3),
                }
            })
        };
        if let Some(key) = &req.inter_node_link {
            d.cluster = d.cluster.with_inter_node(link("inter", key)?);
        }
        if let Some(key) = &req.intra_node_link {
            if key == CALIBRATED_LINK {
                if crate::perf::measured::MeasuredModel::link_calibration_file(&d, paths).is_none()
                {
                    return Err(Error::input(
                        "<command line>",
                        Some("--intra-node-link"),
                        format!(
                            "`{CALIBRATED_LINK}`: {} has no calibrated link (perf_model/profiles/<gpu>/network/link_calibration.toml)",
                            d.gpu().name
                        ),
                    ));
                }
                d.cluster = d.cluster.with_calibrated_intra_node();
            } else {
                let capped = d.gpu().capped_link(link("intra", key)?);
                d.cluster = d.cluster.with_intra_node(capped);
            }
        }
        if let Some(n) = req.gpus_per_node {
            d.cluster = d.cluster.with_gpus_per_node(n)?;
        }
        Ok(d)
    }

    /// Build from an already resolved model, GPU and serving stack (`req`'s names for
    /// them are not read).
    pub fn from_parts(
        model: ModelSpec,
        gpu: GpuSpec,
        stack: Arc<ServingStack>,
        req: &DeploymentRequest,
    ) -> Result<Self> {
        // The engine's defaults in its version and on this GPU (vLLM raises them on
        // large GPUs).
        let versioned = stack.scheduler.for_version(req.engine_version.as_deref());
        let on_device = if req.offline {
            versioned.offline()
        } else {
            versioned
        }
        .for_device(&gpu);
        let tp = req.tensor_parallel_size.unwrap_or(1);
        // The CUDA graphs it captures there (SGLang sizes them by memory and TP).
        let graphs = stack.execution.on_device(
            gpu.memory_bytes() / crate::units::BYTES_PER_GIB,
            tp,
            req.engine_version.as_deref(),
        );
        // Or the command line's, or none at all (`--enforce-eager`).
        let eager = req.enforce_eager == Some(true);
        let flags = !req.graphs.is_empty();
        // Or the library's all-reduce for every message (`--disable-custom-all-reduce`).
        let library_all_reduce =
            req.disable_custom_all_reduce == Some(true) && stack.custom_all_reduce.is_some();
        let stack = if on_device == stack.scheduler
            && graphs.is_none()
            && !eager
            && !flags
            && !library_all_reduce
        {
            stack
        } else {
            let mut s = (*stack).clone();
            s.scheduler = on_device;
            if let Some(e) = graphs {
                s.execution = e;
            }
            if flags {
                s.execution = req.graphs.apply(&stack.execution, &s.execution)?;
            }
            if eager {
                s.execution = s.execution.eager();
            }
            if library_all_reduce {
                s.custom_all_reduce = None;
            }
            Arc::new(s)
        };
        let pp = req.pipeline_parallel_size.unwrap_or(1);
        let act_dtype = match req.dtype.as_deref().map(str::trim) {
            None | Some("auto") => model.unquantized_dtype(),
            Some(d) => {
                let d = parse_dtype("dtype", d)?;
                if !matches!(d, DType::Bf16 | DType::Fp16 | DType::Fp32) {
                    return Err(Error::input(
                        "<command line>",
                        Some("dtype"),
                        format!("`{d}` is not an activation dtype; use auto, bfloat16, float16 or float32 (quantized weights go in --quantization)"),
                    ));
                }
                d
            }
        };
        let weight_dtype = match req.quantization.as_deref().map(str::trim) {
            // `none`: unquantized matrices, in the activation dtype, even where the
            // checkpoint declares a quantized format (its weights dequantized).
            Some("none") => Some(act_dtype),
            None | Some("auto") => {
                if req.dtype.as_deref().is_some_and(|d| d != "auto")
                    && model.weight_format.quantization.is_none()
                {
                    Some(act_dtype)
                } else {
                    None
                }
            }
            Some(q) => Some(parse_dtype("quantization", q)?),
        };
        let kv_dtype = match req.kv_cache_dtype.as_deref().map(str::trim) {
            None | Some("auto") => act_dtype,
            Some(d) => parse_dtype("kv-cache-dtype", d)?,
        };
        let max_model_len = match req.max_model_len {
            Some(n) => n,
            None => u32::try_from(model.max_position_embeddings).unwrap_or(u32::MAX),
        };
        let util = req.gpu_memory_utilization.unwrap_or(0.9);
        let dp = req.data_parallel_size.unwrap_or(1);
        let moe = model
            .layers
            .iter()
            .any(|l| matches!(l.ffn, crate::model::FfnSpec::Moe { .. }));
        if req.enable_expert_parallel && !moe {
            return Err(Error::Config(format!(
                "--enable-expert-parallel needs a mixture-of-experts model; {} is dense",
                model.name
            )));
        }
        let ep = if req.enable_expert_parallel {
            tp * dp
        } else {
            1
        };
        let d = Deployment {
            cluster: ClusterSpec::new(gpu),
            model,
            tp,
            pp,
            act_dtype,
            weight_dtype,
            kv_dtype,
            max_model_len,
            gpu_memory_utilization: util,
            kv_cache_budget: req.kv_cache_budget.unwrap_or(stack.kv_cache_budget),
            dp,
            ep,
            expert_load_imbalance: req.expert_load_imbalance.unwrap_or(1.0),
            stack,
            engine_version: req.engine_version.clone(),
            kv_block_size: None,
        };
        d.validate()?;
        Ok(d)
    }

    /// Check parallelism and limits against the model.
    pub fn validate(&self) -> Result<()> {
        let cfg = |m: String| Err(Error::Config(m));
        if self.tp == 0 || self.pp == 0 {
            return cfg(
                "--tensor-parallel-size and --pipeline-parallel-size must be at least 1".into(),
            );
        }
        let heads = self
            .model
            .layers
            .first()
            .map_or(0, |l| l.attention.num_heads);
        if heads % u64::from(self.tp) != 0 {
            return cfg(format!(
                "--tensor-parallel-size {} does not divide the {} attention heads of {}",
                self.tp, heads, self.model.name
            ));
        }
        if u64::from(self.pp) > self.model.num_layers {
            return cfg(format!(
                "--pipeline-parallel-size {} exceeds the {} layers of {}",
                self.pp, self.model.num_layers, self.model.name
            ));
        }
        if self.dp == 0 {
            return cfg("--data-parallel-size must be at least 1".into());
        }
        if !(self.expert_load_imbalance >= 1.0 && self.expert_load_imbalance.is_finite()) {
            return cfg(format!(
                "--expert-load-imbalance is the busiest GPU's share over the mean and must be at least 1, got {}",
                self.expert_load_imbalance
            ));
        }
        if self.ep > 1 {
            let experts = self.model.layers.iter().find_map(|l| match l.ffn {
                crate::model::FfnSpec::Moe { num_experts, .. } => Some(num_experts),
                _ => None,
            });
            match experts {
                None => return cfg(format!("--enable-expert-parallel needs a mixture-of-experts model; {} is dense", self.model.name)),
                Some(e) if e % u64::from(self.ep) != 0 => {
                    return cfg(format!(
                        "expert parallelism over {} GPUs (TP {} × DP {}) does not divide the {e} experts of {}",
                        self.ep, self.tp, self.dp, self.model.name
                    ))
                }
                _ => {}
            }
        }
        if !(self.gpu_memory_utilization > 0.0 && self.gpu_memory_utilization <= 1.0) {
            return cfg(format!(
                "--gpu-memory-utilization must be in (0, 1], got {}",
                self.gpu_memory_utilization
            ));
        }
        if self.max_model_len == 0 {
            return cfg("--max-model-len must be at least 1".into());
        }
        if u64::from(self.max_model_len) > self.model.max_position_embeddings {
            return cfg(format!(
                "--max-model-len {} exceeds the model's max_position_embeddings ({})",
                self.max_model_len, self.model.max_position_embeddings
            ));
        }
        for dtype in [self.act_dtype, self.kv_dtype]
            .into_iter()
            .chain(self.weight_dtype)
        {
            if self.gpu().peak_flops(dtype.compute_dtype()).is_none()
                && self.gpu().peak_flops(DType::Bf16).is_none()
            {
                return cfg(format!(
                    "{} has no published {dtype} math rate",
                    self.gpu().name
                ));
            }
        }
        Ok(())
    }

    /// The KV cache's block size in tokens: the engine's where it was set
    /// ([`Deployment::for_engine`]), else the stack's default.
    pub fn kv_block_size(&self) -> u32 {
        self.kv_block_size
            .unwrap_or(self.stack.scheduler.block_size)
    }

    /// This deployment as an engine with `overrides` runs it: their KV block size, which
    /// vLLM V0 picks its attention backend by, where they set one.
    pub fn for_engine(mut self, overrides: &crate::engine::config::EngineOverrides) -> Self {
        if let Some(b) = overrides.block_size {
            self.kv_block_size = Some(b);
        }
        self
    }

    /// The accelerator.
    pub fn gpu(&self) -> &GpuSpec {
        &self.cluster.gpu
    }

    /// The stack's fallback decode kernel on this GPU and why this deployment's engine
    /// runs it instead of FlashAttention ([`ServingStack::attention_fallback`]; builds
    /// for NVIDIA GPUs), or None.
    pub fn attention_fallback(&self) -> Option<(PerQueryHeadReads, &'static str)> {
        let f = self.stack.attention_fallback.as_ref()?;
        if self.gpu().vendor != "NVIDIA" {
            return None;
        }
        let inputs = BackendInputs {
            version: self.engine_version.as_deref(),
            sliding_window: self
                .model
                .layer_kinds()
                .iter()
                .any(|k| matches!(k.kind, crate::model::AttentionKind::Sliding { .. })),
            fp8_kv_cache: self.kv_dtype == DType::Fp8,
            block_size: self.kv_block_size(),
            host_cpu_arch: &self.gpu().host_cpu_arch,
        };
        f.reason(&inputs)
            .map(|why| (f.on_gpu(self.gpu().l2_cache_bytes()), why))
    }

    /// GPUs per simulated replica (one data-parallel rank).
    pub fn num_gpus(&self) -> u32 {
        self.tp * self.pp
    }

    /// Routed-expert instances held by one GPU of a layer with `total` experts.
    pub fn experts_per_gpu(&self, total: u64) -> u64 {
        if self.ep > 1 {
            total / u64::from(self.ep)
        } else {
            total
        }
    }

    /// The format a quantizable matrix of the model is stored in.
    pub fn matrix_dtype(&self) -> DType {
        self.weight_dtype
            .or(self
                .model
                .weight_format
                .quantization
                .as_ref()
                .map(|q| q.dtype))
            .unwrap_or(self.act_dtype)
    }

    /// [`Self::matrix_dtype`] for reports, saying when a flag overrides the format the
    /// checkpoint declares (`bf16, the checkpoint's fp8 overridden by --quantization`).
    pub fn matrix_dtype_label(&self) -> String {
        let m = self.matrix_dtype();
        match &self.model.weight_format.quantization {
            Some(q) if self.weight_dtype.is_some() && q.dtype != m => format!(
                "{m}, the checkpoint's {} overridden by --quantization",
                q.dtype
            ),
            _ => m.to_string(),
        }
    }

    /// Peak FLOP/s for math in `dtype`, falling back to the 16-bit rate where the
    /// device has no native rate (weight-only FP8/INT8 kernels on older GPUs).
    pub fn peak_flops(&self, dtype: DType) -> f64 {
        let g = self.gpu();
        g.peak_flops(dtype.compute_dtype())
            .or_else(|| g.peak_flops(self.act_dtype))
            .or_else(|| g.peak_flops(DType::Bf16))
            .or_else(|| g.peak_flops(DType::Fp16))
            .unwrap_or(0.0)
    }

    /// A short description for reports.
    pub fn summary(&self) -> DeploymentSummary {
        DeploymentSummary {
            model: self.model.name.clone(),
            hardware: self.gpu().name.clone(),
            tensor_parallel_size: self.tp,
            pipeline_parallel_size: self.pp,
            dtype: self.act_dtype.to_string(),
            weight_dtype: self.matrix_dtype_label(),
            kv_cache_dtype: self.kv_dtype.to_string(),
            max_model_len: self.max_model_len,
            gpu_memory_utilization: self.gpu_memory_utilization,
            serving_stack: self.stack.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intra(hw: &str, link: &str) -> crate::hardware::LinkSpec {
        let req = DeploymentRequest {
            hardware: Some(hw.into()),
            tensor_parallel_size: Some(2),
            intra_node_link: Some(link.into()),
            ..Default::default()
        };
        let d = Deployment::resolve(&req, &DataPaths::builtin()).unwrap();
        d.cluster.intra_node.clone()
    }

    /// A link flag names the kind of link; the device's own port rate caps it.
    #[test]
    fn link_flags_are_capped_by_the_devices_ports() {
        // RTX 3090's NVLink bridge runs at 56.25 GB/s, not the table's A100 rate.
        let l = intra("rtx3090", "nvlink3-bridge");
        assert_eq!(l.bandwidth_bytes_per_s, 56.25e9);
        assert!(l.name.contains("RTX3090's 56.25 GB/s"), "{}", l.name);
        // A PCIe Gen5 link on a Gen4 card runs at Gen4's rate.
        assert_eq!(intra("rtx3090", "pcie5").bandwidth_bytes_per_s, 31.5e9);
        // Nothing to cap: H100 SXM drives NVLink4 at the table's rate.
        let h = intra("h100", "nvlink4-nvswitch");
        assert_eq!(h.bandwidth_bytes_per_s, 450e9);
        assert!(!h.name.contains(" at "), "{}", h.name);
    }

    /// `--quantization none` on a checkpoint that declares FP8 means its unquantized
    /// dtype, and reports say so.
    #[test]
    fn quantization_none_unquantizes_a_quantized_checkpoint() {
        let resolve = |q: Option<&str>| {
            let req = DeploymentRequest {
                model: Some("deepseek-ai/DeepSeek-V3".into()),
                hardware: Some("h200".into()),
                tensor_parallel_size: Some(8),
                quantization: q.map(str::to_owned),
                ..Default::default()
            };
            Deployment::resolve(&req, &DataPaths::builtin()).unwrap()
        };
        let declared = resolve(None);
        assert_eq!(declared.matrix_dtype(), DType::Fp8);
        assert_eq!(declared.matrix_dtype_label(), "fp8");
        let none = resolve(Some("none"));
        assert_eq!(none.matrix_dtype(), DType::Bf16);
        assert_eq!(
            none.summary().weight_dtype,
            "bf16, the checkpoint's fp8 overridden by --quantization"
        );
        let ratio = none.model.weight_bytes(none.weight_dtype)
            / declared.model.weight_bytes(declared.weight_dtype);
        assert!((1.9..2.0).contains(&ratio), "{ratio}");
    }
}
