//! Serving stacks: how an engine (vLLM V1, vLLM 0.5/0.6, SGLang, TensorRT-LLM) executes
//! the iterations the scheduler plans, as data (`perf_model/stacks/<name>.toml`).
//!
//! A stack holds
//!
//! * its **scheduler defaults** ([`SchedulerDefaults`]): the engine's own defaults for
//!   `--max-num-seqs`, the token budget, chunked prefill, prefix caching, multi-step;
//!   every engine flag still overrides them;
//! * its **execution traits** ([`Execution`]): which batches run as CUDA graphs (padded
//!   up to a captured size, no per-kernel launch gaps) and which run eagerly (the CPU
//!   launches every kernel), and the host work per iteration (fixed, per sequence, per
//!   prefill) and whether it overlaps the GPU;
//! * the **API server** on the request path ([`ApiServer`]): request handling and
//!   tokenization before the engine sees a request, and the streaming of each token;
//! * its **collectives** ([`CustomAllReduce`]): a custom all-reduce kernel that replaces
//!   NCCL for small tensor-parallel messages on NVLink;
//! * its **memory budget** ([`KvCacheBudget`]): whether the memory fraction covers the
//!   whole GPU (vLLM) or the memory left free after the model (TensorRT-LLM).
//!
//! Every quantity is physical (microseconds, bytes) and says where it comes from: a
//! public measurement, the engine's source, or a fit on named validation sets
//! (`fitted_on`). [`ServingStack::load`] checks every field and names the file, line
//! and key of a bad one.

mod attention_fallback;
mod collective;
mod execution;
mod file;
pub mod version;

pub use attention_fallback::{AttentionFallback, BackendInputs, PerQueryHeadReads};
pub use collective::CustomAllReduce;
pub use execution::{
    CaptureLimit, CaptureLimits, ExecPlan, Execution, GraphKind, GraphMode, HostCost, HostOverlap,
    StepCost,
};

use crate::engine::SchedulerKind;
use crate::error::{Error, Result};
use crate::paths::DataPaths;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The stack used when none is named: current vLLM (V1 engine).
pub const DEFAULT_STACK: &str = "vllm-v1";

/// The framework a stack file stands for when it names none (its `framework` key).
pub const DEFAULT_FRAMEWORK: &str = "vLLM";

/// The engine's own scheduler defaults.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SchedulerDefaults {
    /// Scheduling policy.
    pub kind: SchedulerKind,
    /// `--max-num-seqs`.
    pub max_num_seqs: u32,
    /// Token budget per iteration with chunked prefill (without it the budget is
    /// `max(max_model_len, this)`, as vLLM V0 sizes it).
    pub max_num_batched_tokens: u32,
    /// The budget with chunked prefill where the engine picks another than
    /// `max_num_batched_tokens` for it (vLLM 0.5.0 – 0.6.4: 512 tokens).
    pub chunked_prefill_budget: Option<u32>,
    /// The first engine version whose budget with chunked prefill is
    /// `max_num_batched_tokens` again (vLLM 0.6.5), if any.
    pub chunked_prefill_budget_until: Option<String>,
    /// Chunked prefill on by default.
    pub enable_chunked_prefill: bool,
    /// Prefix caching on by default.
    pub enable_prefix_caching: bool,
    /// Decode iterations per scheduling decision (V0 multi-step).
    pub num_scheduler_steps: u32,
    /// KV block size, tokens.
    pub block_size: u32,
    /// Asynchronous scheduling: iteration k+1 is scheduled when iteration k starts.
    pub async_scheduling: bool,
    /// Larger defaults the engine picks on GPUs with more memory, if it does.
    pub large_device: Option<LargeDeviceDefaults>,
    /// Smaller token budgets the engine picks on GPUs with less memory, if it does
    /// (ascending by memory limit).
    pub small_device: Vec<SmallDeviceBudget>,
    /// Chunked prefill the engine switches on by itself for long-context models, if it
    /// does.
    pub long_context: Option<LongContextDefaults>,
    /// KV set aside for running requests' future tokens before admitting more (SGLang).
    pub kv_reservation: Option<crate::engine::config::KvReservation>,
    /// Prompts longer than the token budget without chunked prefill: the budget grows
    /// to `max_model_len` (vLLM) or they are turned away (TensorRT-LLM).
    pub long_prompts: crate::engine::LongPrompts,
    /// A sequence limit above the token budget: allowed, a default lowered to a given
    /// budget (vLLM V1), or an error (vLLM V0).
    pub seqs_over_budget: crate::engine::SeqsOverBudget,
    /// What `max_num_seqs` bounds with pipeline parallelism: the running requests
    /// (vLLM V1) or each micro-batch in flight (TensorRT-LLM).
    pub max_num_seqs_scope: crate::engine::SeqLimitScope,
    /// The defaults of the engine run as a library (vLLM's `LLM` class, as offline
    /// benchmarks run it) where they differ from the server's.
    pub offline: Option<OfflineDefaults>,
}

/// Batch defaults of an engine run as a library ([`SchedulerDefaults::offline`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OfflineDefaults {
    /// `--max-num-seqs`.
    pub max_num_seqs: u32,
    /// `--max-num-batched-tokens`.
    pub max_num_batched_tokens: u32,
    /// `--max-num-seqs` where the large-device defaults apply.
    pub large_device_max_num_seqs: Option<u32>,
    /// `--max-num-batched-tokens` where the large-device defaults apply.
    pub large_device_max_num_batched_tokens: Option<u32>,
}

/// vLLM V0's default for a model served with a long context (0.5.3 – 0.6.x,
/// `EngineArgs.create_engine_config`): where the user leaves `--enable-chunked-prefill`
/// unset and `max_model_len` exceeds 32,768 tokens, chunked prefill is switched on
/// (to keep the memory-profiling forward pass small), with the engine's budget for
/// chunked prefill ([`SchedulerDefaults::chunked_prefill_budget`]), unless the model
/// uses sliding-window attention. With multi-step scheduling the engine does not chunk
/// prompts (0.6.0–0.6.2 refuse the combination; 0.6.3 and later budget
/// `max(max_model_len, 2048)`), so the rule is not applied there.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LongContextDefaults {
    /// The first engine version with the rule (none: every version of the stack).
    pub since_version: Option<String>,
    /// The first engine version without it again (none: no such version).
    pub until_version: Option<String>,
    /// Chunked prefill is switched on when `max_model_len` exceeds this, tokens.
    pub above_max_model_len: u32,
    /// Not when prefix caching is on (vLLM 0.5.3 – 0.6.0 kept the two apart).
    pub unless_prefix_caching: bool,
}

impl LongContextDefaults {
    /// Whether the engine switches chunked prefill on by itself where the user left
    /// `--enable-chunked-prefill` unset; `sliding`: whether the model has
    /// sliding-window layers.
    pub fn applies(
        &self,
        max_model_len: u32,
        sliding: bool,
        num_scheduler_steps: u32,
        prefix_caching: bool,
    ) -> bool {
        max_model_len > self.above_max_model_len
            && !sliding
            && num_scheduler_steps <= 1
            && !(self.unless_prefix_caching && prefix_caching)
    }
}

/// The scheduler defaults an engine picks on a large GPU (vLLM's
/// `EngineArgs.get_batch_defaults`: 8,192 tokens and 1,024 sequences for the OpenAI
/// server on GPUs with at least 70 GiB that are not A100s, whose throughput the larger
/// budget lowered).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LargeDeviceDefaults {
    /// The first engine version with these defaults (none: every version of the stack).
    pub since_version: Option<String>,
    /// The least total device memory, GiB (as the engine reads it: the runtime's total).
    pub min_memory_gib: f64,
    /// Case-insensitive parts of a device name that keep the small defaults.
    pub exclude_names: Vec<String>,
    /// `--max-num-seqs` on such a device.
    pub max_num_seqs: u32,
    /// `--max-num-batched-tokens` on such a device.
    pub max_num_batched_tokens: u32,
}

/// A token budget the engine picks on GPUs with less memory than a limit (SGLang's
/// `chunked_prefill_size`: 2,048 tokens below 35 GiB, 4,096 below 60 GiB).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SmallDeviceBudget {
    /// The tier holds GPUs with less total memory than this, GiB.
    pub below_memory_gib: f64,
    /// `--max-num-batched-tokens` on such a device.
    pub max_num_batched_tokens: u32,
}

impl SchedulerDefaults {
    /// The token budget per iteration the engine picks with chunked prefill on or off
    /// (off: the floor under `max_model_len`).
    pub fn budget(&self, chunked: bool) -> u32 {
        match self.chunked_prefill_budget {
            Some(b) if chunked => b,
            _ => self.max_num_batched_tokens,
        }
    }

    /// The defaults of engine version `version` (none: the stack's, every rule it
    /// holds): the large-device and long-context rules that version lacks are dropped.
    pub fn for_version(&self, version: Option<&str>) -> SchedulerDefaults {
        let mut s = self.clone();
        if version::reached(version, s.chunked_prefill_budget_until.as_deref()) {
            s.chunked_prefill_budget = None;
        }
        if !s
            .large_device
            .as_ref()
            .is_none_or(|l| version::at_least(version, l.since_version.as_deref()))
        {
            s.large_device = None;
        }
        if !s.long_context.as_ref().is_none_or(|l| {
            version::at_least(version, l.since_version.as_deref())
                && !version::reached(version, l.until_version.as_deref())
        }) {
            s.long_context = None;
        }
        s
    }

    /// The defaults of the engine run as a library (vLLM's `LLM` class: offline
    /// benchmarks) where the stack gives them, else its own.
    pub fn offline(&self) -> SchedulerDefaults {
        let mut s = self.clone();
        if let Some(o) = &self.offline {
            s.max_num_seqs = o.max_num_seqs;
            s.max_num_batched_tokens = o.max_num_batched_tokens;
            if let Some(l) = s.large_device.as_mut() {
                l.max_num_seqs = o.large_device_max_num_seqs.unwrap_or(l.max_num_seqs);
                l.max_num_batched_tokens = o
                    .large_device_max_num_batched_tokens
                    .unwrap_or(l.max_num_batched_tokens);
            }
        }
        s
    }

    /// The defaults the engine picks on `gpu`: the large-device ones where they apply.
    pub fn for_device(&self, gpu: &crate::hardware::GpuSpec) -> SchedulerDefaults {
        let mut s = self.clone();
        if let Some(l) = &self.large_device {
            let name = gpu.name.to_ascii_lowercase();
            let big = gpu.memory_bytes() >= l.min_memory_gib * crate::units::BYTES_PER_GIB;
            let excluded = l
                .exclude_names
                .iter()
                .any(|x| name.contains(&x.to_ascii_lowercase()));
            if big && !excluded {
                s.max_num_seqs = l.max_num_seqs;
                s.max_num_batched_tokens = l.max_num_batched_tokens;
            }
        }
        let gib = gpu.memory_bytes() / crate::units::BYTES_PER_GIB;
        if let Some(t) = self.small_device.iter().find(|t| gib < t.below_memory_gib) {
            s.max_num_batched_tokens = t.max_num_batched_tokens;
        }
        s
    }
}

/// Work outside the engine on a request's path: the API server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ApiServer {
    /// Request handling before the engine sees a request (HTTP, validation, handing it
    /// to the engine process), µs.
    pub request_us: f64,
    /// Tokenization, per prompt token, µs.
    pub per_prompt_token_us: f64,
    /// From a token leaving the engine to the client receiving it (detokenization,
    /// streaming), µs.
    pub per_token_out_us: f64,
    /// Request handlers per engine, each working one request at a time (vLLM's API
    /// server: one process, one event loop, 1): a burst of requests queues for them,
    /// each taking `request_us + per_prompt_token_us × prompt` of a handler. 0: no
    /// queue, every request is handled at once.
    pub handlers: u32,
    /// Where the figures come from.
    pub source: String,
    /// Validation sets the figures were fitted on (empty when not fitted).
    pub fitted_on: Vec<String>,
    /// `request_us` without any validation set (used when a fit has no data).
    pub prior_request_us: f64,
}

impl ApiServer {
    /// Time from the client sending a request to the engine seeing it where no other
    /// request is being handled, µs.
    pub fn ingress_us(&self, prompt_tokens: u32) -> f64 {
        self.request_us + self.per_prompt_token_us * f64::from(prompt_tokens)
    }

    /// Whether the server adds nothing to a request's path.
    pub fn is_zero(&self) -> bool {
        self.request_us == 0.0 && self.per_prompt_token_us == 0.0 && self.per_token_out_us == 0.0
    }
}

/// The stack's own decode attention kernel, where it is not the GPU's measured one:
/// the paged-attention kernel a stack ships for a platform (vLLM's ROCm build of
/// 2024, say) may reach far less of the memory bandwidth than the kernels the GPU's
/// efficiencies were derived from. Roofline models only (measured operator profiles
/// already time the engine's own kernels).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PagedAttention {
    /// Fraction of the GPU's peak memory bandwidth the decode kernel attains reading
    /// the KV cache (none: the GPU's own memory efficiency).
    pub decode_bandwidth_efficiency: Option<f64>,
    /// The kernel reads each key/value head once per query head that uses it (one
    /// thread block per query head, as vLLM's original paged-attention kernel), so
    /// grouped-query attention saves no KV traffic.
    pub reads_kv_per_query_head: bool,
    /// Where the figure comes from.
    pub source: String,
    /// Validation sets it was fitted on (empty when not fitted).
    pub fitted_on: Vec<String>,
    /// The figure without any validation set (used when a fit has no data); none: the
    /// GPU's own efficiency.
    pub prior_decode_bandwidth_efficiency: Option<f64>,
}

/// The generation of the kernels a stack runs, by the PyTorch and cuBLAS it ships:
/// which measured operator tables describe it. The same GEMM on the same GPU can take
/// 40 µs under one cuBLAS and 65 µs under an older one (H100, 80 × 4096 × 12288:
/// AIConfigurator's vLLM 0.19 table against Vidur's profile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelGeneration {
    /// Engines and profilers of 2023–24: vLLM up to 0.6, Sarathi-Serve (Vidur's
    /// profiles), LLMServingSim's v0 profiler.
    V0,
    /// The vLLM V1 era: vLLM 0.8 and later (PyTorch 2.6 or newer), SGLang 0.4–0.5,
    /// TensorRT-LLM's PyTorch backend, AIConfigurator's vLLM kernel tables.
    V1,
}

/// How an iteration that mixes prompt chunks with decodes runs its attention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MixedBatchAttention {
    /// One varlen kernel over the whole batch, each decode a one-token query (vLLM V1's
    /// FlashAttention backend).
    OneKernel,
    /// A prefill (context) kernel for the prompt chunks and a decode (generation)
    /// kernel for the rest, one after the other (TensorRT-LLM's attention op, vLLM V0).
    SeparateKernels,
}

/// The stack's own GEMM library, where it is not the one the GPU's efficiencies were
/// derived from: the dense and expert GEMMs of a 2024 ROCm build (hipBLASLt of ROCm
/// 6.1 under vLLM 0.6) stream weights at a smaller fraction of the bandwidth than the
/// newer kernels behind `perf_model/kernel_efficiency/`. Roofline models only (measured
/// operator profiles already time the engine's own GEMMs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StackGemm {
    /// Fraction of the GPU's peak memory bandwidth the GEMMs reach streaming weights
    /// (none: the GPU's own memory efficiency).
    pub bandwidth_efficiency: Option<f64>,
    /// Where the figure comes from.
    pub source: String,
    /// Validation sets it was fitted on (empty when not fitted).
    pub fitted_on: Vec<String>,
    /// The figure without any validation set (used when a fit has no data); none: the
    /// GPU's own efficiency.
    pub prior_bandwidth_efficiency: Option<f64>,
}

/// What the engine's memory fraction (`--gpu-memory-utilization`) is a fraction of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KvCacheBudget {
    /// vLLM's meaning: weights, activations, runtime and KV cache together take that
    /// fraction of the whole GPU; the KV cache gets what the rest leaves.
    #[default]
    Total,
    /// TensorRT-LLM's (`free_gpu_memory_fraction`): the model is loaded first and the
    /// KV cache takes that fraction of the memory then free.
    Free,
}

impl KvCacheBudget {
    /// KV-cache bytes of a GPU of `capacity` bytes whose weights, activations and
    /// runtime take `rest` bytes, at memory fraction `fraction` (negative when the rest
    /// does not fit).
    pub fn kv_cache_bytes(self, capacity: f64, rest: f64, fraction: f64) -> f64 {
        match self {
            KvCacheBudget::Total => capacity * fraction - rest,
            KvCacheBudget::Free => fraction * (capacity - rest),
        }
    }

    /// The share of a GPU the engine may fill with weights at memory fraction
    /// `fraction` (the whole GPU when the fraction applies to what they leave free).
    pub fn weight_share(self, fraction: f64) -> f64 {
        match self {
            KvCacheBudget::Total => fraction,
            KvCacheBudget::Free => 1.0,
        }
    }
}

/// One serving stack (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServingStack {
    /// Short name (`vllm-v1`), the file stem.
    pub name: String,
    /// The engine and versions it stands for.
    pub description: String,
    /// The file it was read from.
    pub path: PathBuf,
    /// Scheduler defaults.
    pub scheduler: SchedulerDefaults,
    /// How iterations execute.
    pub execution: Execution,
    /// The API server on the request path.
    pub api_server: ApiServer,
    /// The tensor-parallel all-reduce kernel used instead of NCCL where it applies.
    pub custom_all_reduce: Option<CustomAllReduce>,
    /// Vendors whose accelerators this build of the engine runs on (`NVIDIA`, `AMD`;
    /// as in the hardware files' `vendor`); empty: any. `fit-stack` fits only on
    /// measurements from these.
    pub platforms: Vec<String>,
    /// The engine's name in measurement tables (the `Framework` column of Argonne's
    /// tables): `fit-stack` fits on the rows of this framework. Default
    /// [`DEFAULT_FRAMEWORK`].
    pub framework: String,
    /// The stack's own decode attention kernel, where it differs from the GPU's.
    pub paged_attention: Option<PagedAttention>,
    /// When the engine leaves FlashAttention for its own paged-attention decode kernel
    /// (vLLM V0's backend selection; `[attention_fallback]`).
    pub attention_fallback: Option<AttentionFallback>,
    /// The generation of its kernels: measured operators of this generation are
    /// preferred (none: the operator profiles, whatever their generation).
    pub kernel_generation: Option<KernelGeneration>,
    /// How its mixed prefill-and-decode iterations run attention (none: as the
    /// measured attention grid's engine did).
    pub mixed_batch_attention: Option<MixedBatchAttention>,
    /// The stack's own GEMM library, where it differs from the GPU's.
    pub gemm: Option<StackGemm>,
    /// What `--gpu-memory-utilization` is a fraction of (`[memory]`; default: the
    /// whole GPU, vLLM's meaning).
    pub kv_cache_budget: KvCacheBudget,
    /// How its MoE layers exchange tokens between expert-parallel ranks (`[moe]`).
    pub moe: StackMoe,
}

/// How a stack's MoE layers exchange tokens between expert-parallel ranks.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StackMoe {
    /// The hidden states are quantized to the experts' activation format (FP8, NVFP4)
    /// before the dispatch all-gather, so it moves those bytes instead of 16-bit ones.
    pub quantize_before_dispatch: bool,
    /// Each token's router logits (one value per routed expert, in the activation
    /// dtype) travel with its hidden state in the dispatch all-gather, as in vLLM's
    /// all-gather dispatch, where every rank routes the gathered tokens itself.
    pub dispatch_router_logits: bool,
    /// Bytes of routing decision each token carries per selected expert in the
    /// dispatch (TensorRT-LLM: an int32 expert id and an fp32 weight, 8).
    pub dispatch_bytes_per_selected_expert: f64,
    /// Where that comes from.
    pub source: String,
}

impl ServingStack {
    /// The stack's fitted figures by section, each with the validation sets it was
    /// fitted on (empty: not fitted): what makes a validation on those sets in-sample.
    pub fn fitted_sections(&self) -> Vec<(&'static str, &[String])> {
        let mut v: Vec<(&'static str, &[String])> = vec![
            ("host.step_us", &self.execution.host.fitted_on),
            ("api_server.request_us", &self.api_server.fitted_on),
        ];
        if !self.execution.host.chosen_on.is_empty() {
            v.push((
                "host (a figure chosen by reading)",
                &self.execution.host.chosen_on,
            ));
        }
        if let Some(c) = &self.custom_all_reduce {
            v.push(("custom_all_reduce", &c.fitted_on));
        }
        if let Some(p) = &self.paged_attention {
            v.push(("paged_attention", &p.fitted_on));
        }
        if let Some(g) = &self.gemm {
            v.push(("gemm", &g.fitted_on));
        }
        v
    }

    /// Whether this build runs on accelerators of `vendor` (any, without `platforms`).
    pub fn runs_on(&self, vendor: &str) -> bool {
        self.platforms.is_empty()
            || self
                .platforms
                .iter()
                .any(|p| p.eq_ignore_ascii_case(vendor))
    }

    /// What a description of a deployment should say when this build does not run on
    /// accelerators of `vendor`: the model then describes this build's kernels, host
    /// loop and collectives on another vendor's GPU, not that vendor's own build of the
    /// engine (docs/validation.md: SGLang's ROCm build decodes DeepSeek-R1 on MI300X
    /// 1.5–3.4 × slower than its NVIDIA build simulated there).
    pub fn platform_note(&self, vendor: &str) -> Option<String> {
        (!self.runs_on(vendor)).then(|| {
            format!(
                "the engine's {} build, run here on a GPU by {vendor}: its {vendor} build (own kernels, dispatch and collectives) is not modelled",
                self.platforms.join(" / ")
            )
        })
    }

    /// The folder of stack files under `paths`.
    pub fn dir(paths: &DataPaths) -> PathBuf {
        paths.perf_model.join("stacks")
    }

    /// The stacks shipped under `paths`, by name.
    pub fn names(paths: &DataPaths) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(Self::dir(paths))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        v.sort();
        v
    }

    /// The stack `name_or_path`: a name under `perf_model/stacks/` (case-insensitive) or
    /// a path to a stack file; [`DEFAULT_STACK`] when `None`.
    pub fn load(paths: &DataPaths, name_or_path: Option<&str>) -> Result<Self> {
        let name = name_or_path.unwrap_or(DEFAULT_STACK);
        let as_path = Path::new(name);
        let path = if as_path.extension().is_some_and(|x| x == "toml") || as_path.is_file() {
            as_path.to_owned()
        } else {
            let lower = name.to_ascii_lowercase();
            let p = Self::dir(paths).join(format!("{lower}.toml"));
            if !p.is_file() {
                let known = Self::names(paths);
                let mut suggestions =
                    crate::error::closest_names(&lower, known.iter().map(String::as_str), 3);
                if suggestions.is_empty() {
                    suggestions = known;
                }
                return Err(Error::Unknown {
                    kind: "serving stack",
                    name: name.to_owned(),
                    suggestions,
                });
            }
            p
        };
        Self::from_file(&path)
    }

    /// Read and check a stack file.
    pub fn from_file(path: &Path) -> Result<Self> {
        file::read(path)
    }

    /// The vLLM stack of engine version `version` (`0.8.3`, `v0.6.1`, `0.19.0rc1`) on a GPU
    /// of `vendor`: V1 with asynchronous scheduling from 0.14 (and 1.x), V1 synchronous
    /// 0.8 – 0.13, the V0 engine of 0.6 – 0.7 (its ROCm build on AMD), 0.5 before; `None`
    /// where `version` does not read as `major.minor`.
    pub fn vllm_name_for_version(version: &str, vendor: &str) -> Option<&'static str> {
        let parts = version::numeric_parts(version)?;
        let (&major, &minor) = (parts.first()?, parts.get(1)?);
        Some(match (major, minor) {
            (0, m) if m >= 14 => DEFAULT_STACK,
            (0, m) if m >= 8 => "vllm-v1-sync",
            (0, m) if m >= 6 && vendor.eq_ignore_ascii_case("amd") => "vllm-0.6-rocm",
            (0, m) if m >= 6 => "vllm-0.6",
            (0, _) => "vllm-0.5",
            _ => DEFAULT_STACK,
        })
    }

    /// The stack that stands for `kind` when only a scheduler is named: V1 → the
    /// default stack, V0 → vLLM 0.6, orca and static → vLLM 0.5 (a synchronous engine
    /// loop like theirs).
    pub fn default_name_for(kind: SchedulerKind) -> &'static str {
        match kind {
            SchedulerKind::VllmV1 => DEFAULT_STACK,
            SchedulerKind::VllmV0 => "vllm-0.6",
            SchedulerKind::Sglang => "sglang",
            SchedulerKind::Orca | SchedulerKind::Static => "vllm-0.5",
        }
    }

    /// One line for reports.
    pub fn summary(&self) -> String {
        format!("{} ({})", self.name, self.description)
    }
}

#[cfg(test)]
mod tests;
