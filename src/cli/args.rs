//! Argument groups shared by subcommands, named as vLLM names them so users can paste
//! real settings. Each group also deserializes from a TOML config file with the same
//! (kebab-case) keys; flags given on the command line override the file.

use crate::engine::{PreemptionMode, SchedulerKind};
use clap::Args;
use serde::Deserialize;

/// Fill every `None` field of `self` from `file`.
pub trait Merge {
    /// Command-line values win; the file fills the gaps.
    fn merge_from(&mut self, file: Self);
}

/// Implement [`Merge`] field by field for a struct of `Option`s.
#[macro_export]
macro_rules! merge_fields {
    ($t:ty { $($f:ident),* $(,)? }) => {
        impl $crate::cli::args::Merge for $t {
            fn merge_from(&mut self, file: Self) {
                $( if self.$f.is_none() { self.$f = file.$f; } )*
            }
        }
    };
}

/// What is deployed where.
#[derive(Args, Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DeploymentArgs {
    /// Model: a shipped HuggingFace id (`meta-llama/Llama-3.1-8B`) or unique short name
    /// (`llama-3.1-8b`), a path to a config.json, a checkpoint folder holding one, or an
    /// `org/name` in the local HuggingFace cache ($HF_HUB_CACHE, $HF_HOME/hub,
    /// ~/.cache/huggingface/hub). Default: meta-llama/Llama-3.1-8B.
    #[arg(long, value_name = "NAME|PATH")]
    pub model: Option<String>,

    /// Accelerator: a catalog name or alias (`h100`, `a100-80gb`, `rtx4090`, `mi300x`),
    /// or a path to a hardware .toml file. Default: h100.
    #[arg(long, value_name = "NAME|PATH")]
    pub hardware: Option<String>,

    /// GPUs each layer is split across (`-tp` is accepted too). Default: 1.
    #[arg(long = "tensor-parallel-size", value_name = "N")]
    #[serde(rename = "tensor-parallel-size")]
    pub tensor_parallel_size: Option<u32>,

    /// Pipeline stages the layers are split into (`-pp` is accepted too). Default: 1.
    #[arg(long = "pipeline-parallel-size", value_name = "N")]
    #[serde(rename = "pipeline-parallel-size")]
    pub pipeline_parallel_size: Option<u32>,

    /// Weight and activation dtype: auto (the checkpoint's torch_dtype), bfloat16,
    /// float16, float32.
    #[arg(long, value_name = "DTYPE")]
    pub dtype: Option<String>,

    /// Weight quantization: fp8, int8, awq, gptq (int4), mxfp4, nvfp4, or none (16-bit
    /// matrices, even for a checkpoint that declares a quantized format: reports say
    /// so). Default: what the checkpoint's quantization_config declares, else none.
    #[arg(long, value_name = "METHOD")]
    pub quantization: Option<String>,

    /// KV-cache dtype: auto (the model dtype), fp8, fp8_e4m3, fp8_e5m2, bfloat16, float16.
    #[arg(long, value_name = "DTYPE")]
    pub kv_cache_dtype: Option<String>,

    /// Longest sequence (prompt + output) served. Default: the model's
    /// max_position_embeddings.
    #[arg(long, value_name = "TOKENS")]
    pub max_model_len: Option<u32>,

    /// Fraction of each GPU's memory the engine may use (vLLM semantics: weights and KV
    /// cache share it), or on a stack whose `[memory]` says `kv_cache_budget = "free"`
    /// (`trtllm`) the fraction of the memory left free after the model that the KV cache
    /// takes (TensorRT-LLM's `free_gpu_memory_fraction`). Default: 0.9.
    #[arg(long, value_name = "FRACTION")]
    pub gpu_memory_utilization: Option<f64>,

    /// Attention data-parallel ranks, each its own engine (scheduler and KV cache) of
    /// TP × PP GPUs; with --enable-expert-parallel they share the experts. Default: 1.
    #[arg(long = "data-parallel-size", value_name = "N")]
    #[serde(rename = "data-parallel-size")]
    pub data_parallel_size: Option<u32>,

    /// Spread each MoE layer's routed experts, whole, over the TP × DP GPUs (all-to-all
    /// dispatch and combine) instead of splitting every expert over the TP group.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub enable_expert_parallel: Option<bool>,

    /// With expert parallelism: tokens on the busiest GPU over the mean (1 = perfectly
    /// balanced routing). Default: 1.
    #[arg(long, value_name = "RATIO")]
    pub expert_load_imbalance: Option<f64>,

    /// GPUs per node: groups larger than this cross the inter-node link. Default: the
    /// device file's (8 for SXM/OAM boards).
    #[arg(long, value_name = "N")]
    pub gpus_per_node: Option<u32>,

    /// Link between nodes, a key of perf_model/interconnects.toml (`ib-ndr`, `ib-hdr`,
    /// `roce-100g`, ...). Default: the device file's scale-out network.
    #[arg(long, value_name = "KEY")]
    pub inter_node_link: Option<String>,

    /// Link between GPUs of one node, a key of perf_model/interconnects.toml
    /// (`nvlink4-nvswitch`, `pcie4`, ...); the device's own port rate caps it (its
    /// PCIe rate for PCIe links, its scale-up rate otherwise). `calibrated`: the link
    /// fitted on one system's runs where the GPU's profiles have one
    /// (profiles/<gpu>/network/link_calibration.toml). Default: the device file's.
    #[arg(long, value_name = "KEY")]
    pub intra_node_link: Option<String>,

    /// Serving stack that runs the model: its scheduler defaults, CUDA graphs, host
    /// work, API server and collectives (a name under perf_model/stacks/: vllm-v1,
    /// vllm-0.6, vllm-0.5, sglang, trtllm; or a stack .toml file). Default: vllm-v1, or
    /// the stack of --scheduler's engine (vllm-v0 → vllm-0.6, orca/static → vllm-0.5).
    #[arg(long, value_name = "NAME|PATH")]
    pub serving_stack: Option<String>,

    /// The serving engine's version (e.g. 0.19.0): the stack's defaults that version
    /// lacks are dropped (`since_version` in the stack file: vLLM before 0.5.3 has no
    /// long-context chunked prefill, V1 before 0.8.5 no large-GPU defaults), and where
    /// the stack's own all-reduce was measured in that version on this GPU
    /// (perf_model/measurements/tp-collectives), that measurement alone is used.
    /// Default: every default of the stack, every version measured averaged. Without
    /// --serving-stack a vLLM version also picks vLLM's stack of its generation
    /// (vllm-v1 from 0.14, vllm-v1-sync 0.8 – 0.13, vllm-0.6 for 0.6 – 0.7, its ROCm build
    /// on AMD, vllm-0.5 before); name the stack for another engine's version.
    #[arg(long, value_name = "VERSION")]
    pub engine_version: Option<String>,

    /// Run every iteration eagerly, each kernel launched by the CPU, as vLLM's
    /// --enforce-eager does: no CUDA graphs, whatever the serving stack captures.
    /// Default: the stack's graphs.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub enforce_eager: Option<bool>,

    /// Send every tensor-parallel all-reduce to the collective library (NCCL, RCCL)
    /// instead of the serving stack's custom all-reduce kernel, as vLLM's and SGLang's
    /// --disable-custom-all-reduce do. Default: the stack's (vLLM: its own kernel for
    /// messages up to 8 MiB between NVLink GPUs).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub disable_custom_all_reduce: Option<bool>,

    /// The batch sizes (tokens) captured as CUDA graphs, comma-separated, instead of the
    /// serving stack's list (vLLM's --cuda-graph-sizes / cudagraph_capture_sizes,
    /// SGLang's --cuda-graph-bs, TensorRT-LLM's cuda_graph_config.batch_sizes); a
    /// batch runs as the smallest captured size that holds it, eagerly above the
    /// largest. Default: the stack's.
    #[arg(
        long,
        value_name = "N,N,...",
        value_delimiter = ',',
        alias = "cudagraph-capture-sizes",
        alias = "cuda-graph-bs"
    )]
    pub cuda_graph_sizes: Option<Vec<u32>>,

    /// Capture CUDA graphs up to this batch size (tokens) from the stack's list, in place
    /// of any limit the stack sets by device (SGLang's --cuda-graph-max-bs, vLLM's
    /// max_cudagraph_capture_size). Default: the stack's.
    #[arg(long, value_name = "N", alias = "cuda-graph-max-bs")]
    pub max_cuda_graph_size: Option<u32>,

    /// vLLM V0: decode batches whose longest context exceeds this many tokens run
    /// eagerly (max_seq_len_to_capture). Default: the stack's (8,192 for vLLM V0).
    #[arg(long, value_name = "TOKENS")]
    pub max_seq_len_to_capture: Option<u32>,

    /// The engine runs as a library, as offline benchmarks (vLLM's benchmark_latency and
    /// benchmark_throughput, its LLM class) run it, with the batch defaults it takes
    /// there (vLLM V1: 16,384 tokens and 1,024 sequences on GPUs of 70 GiB or more
    /// other than the A100, 8,192 and 256 elsewhere, against the server's 8,192 / 2,048).
    /// Default: the server's.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub offline: Option<bool>,
}

merge_fields!(DeploymentArgs {
    model,
    hardware,
    tensor_parallel_size,
    pipeline_parallel_size,
    dtype,
    quantization,
    kv_cache_dtype,
    max_model_len,
    gpu_memory_utilization,
    data_parallel_size,
    enable_expert_parallel,
    expert_load_imbalance,
    gpus_per_node,
    inter_node_link,
    intra_node_link,
    serving_stack,
    engine_version,
    enforce_eager,
    disable_custom_all_reduce,
    cuda_graph_sizes,
    max_cuda_graph_size,
    max_seq_len_to_capture,
    offline
});

/// Scheduler settings (vLLM knob names; defaults are vLLM's for the chosen scheduler).
#[derive(Args, Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct EngineArgs {
    /// Scheduling policy. Default: the serving stack's (vllm-v1 for vLLM V1).
    #[arg(long, value_enum)]
    pub scheduler: Option<SchedulerKind>,

    /// Most sequences per iteration. Default: the serving stack's (256 for vLLM).
    #[arg(long, value_name = "N")]
    pub max_num_seqs: Option<u32>,

    /// Most tokens per iteration. Default: the serving stack's with chunked prefill
    /// (2048 for vLLM), else max(max-model-len, that).
    #[arg(long, value_name = "TOKENS")]
    pub max_num_batched_tokens: Option<u32>,

    /// Split long prompts into chunks mixed with decodes (`--enable-chunked-prefill`
    /// alone means true). Default: the serving stack's (on for vLLM V1, off for V0).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub enable_chunked_prefill: Option<bool>,

    /// Decode iterations per scheduling decision (vLLM V0 multi-step). Default: the
    /// serving stack's (1).
    #[arg(long, value_name = "N")]
    pub num_scheduler_steps: Option<u32>,

    /// Tokens per KV-cache block. Default: the serving stack's (16 for vLLM).
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub block_size: Option<u32>,

    /// Reuse KV blocks of shared prompt prefixes (`--enable-prefix-caching` alone means
    /// true). Default: the serving stack's (on for vLLM V1, off for V0).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub enable_prefix_caching: Option<bool>,

    /// What preemption does to an evicted request's KV. Default: recompute.
    #[arg(long, value_enum)]
    pub preemption_mode: Option<PreemptionMode>,

    /// Override the number of KV-cache blocks per replica (vLLM's
    /// --num-gpu-blocks-override), at most 16,777,216. Default: from the memory plan.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::engine::config::MAX_GPU_BLOCKS)))]
    pub num_gpu_blocks_override: Option<u32>,

    /// Schedule iteration k+1 while iteration k runs (vLLM's --async-scheduling;
    /// `--async-scheduling` alone means true). Default: the serving stack's (on for
    /// vLLM ≥ 0.14).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub async_scheduling: Option<bool>,

    /// Keep KV for running requests' remaining output before admitting more, where the
    /// serving stack does (SGLang's new-token ratio, TensorRT-LLM's GUARANTEED_NO_EVICT);
    /// false admits on the prompt alone and preempts when KV runs out (vLLM; TensorRT-LLM's
    /// MAX_UTILIZATION). Default: the stack's.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub kv_reservation: Option<bool>,

    /// SGLang's --enable-mixed-chunk: running decodes join each prefill batch instead of
    /// waiting for it (`--enable-mixed-chunk` alone means true; SGLang scheduler only).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub enable_mixed_chunk: Option<bool>,

    /// SGLang's --max-prefill-tokens: no further prompt joins a prefill batch once it
    /// holds this many tokens (the last one admitted may overshoot; SGLang scheduler
    /// only). Default: the chunked-prefill size alone.
    #[arg(long, value_name = "TOKENS")]
    pub max_prefill_tokens: Option<u32>,

    /// SGLang's --scheduler-recv-interval: the scheduler takes new requests only every N
    /// decode iterations (at once after prompt work or when idle), so a request may wait
    /// up to N iterations before it is scheduled (SGLang scheduler only). Default 1.
    #[arg(long, value_name = "N")]
    pub scheduler_recv_interval: Option<u32>,
}

merge_fields!(EngineArgs {
    scheduler,
    max_num_seqs,
    max_num_batched_tokens,
    enable_chunked_prefill,
    num_scheduler_steps,
    block_size,
    enable_prefix_caching,
    preemption_mode,
    num_gpu_blocks_override,
    async_scheduling,
    kv_reservation,
    enable_mixed_chunk,
    max_prefill_tokens,
    scheduler_recv_interval
});

impl EngineArgs {
    /// The library's overrides.
    pub fn overrides(&self) -> crate::engine::config::EngineOverrides {
        crate::engine::config::EngineOverrides {
            scheduler: self.scheduler,
            max_num_seqs: self.max_num_seqs,
            max_num_batched_tokens: self.max_num_batched_tokens,
            enable_chunked_prefill: self.enable_chunked_prefill,
            num_scheduler_steps: self.num_scheduler_steps,
            block_size: self.block_size,
            enable_prefix_caching: self.enable_prefix_caching,
            preemption_mode: self.preemption_mode,
            num_gpu_blocks_override: self.num_gpu_blocks_override,
            async_scheduling: self.async_scheduling,
            kv_reservation: self.kv_reservation,
            enable_mixed_chunk: self.enable_mixed_chunk,
            max_prefill_tokens: self.max_prefill_tokens,
            scheduler_recv_interval: self.scheduler_recv_interval,
        }
    }
}

/// Output format of printed results.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// An aligned text table.
    #[default]
    Table,
    /// JSON.
    Json,
    /// CSV.
    Csv,
}

/// vLLM spells the parallel sizes `-tp` and `-pp`; clap's short flags are one letter,
/// so rewrite them to the long forms before parsing.
pub fn expand_vllm_short_flags(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    args.into_iter()
        .map(|a| match a.to_str() {
            Some("-tp") => "--tensor-parallel-size".into(),
            Some("-pp") => "--pipeline-parallel-size".into(),
            Some(s) if s.starts_with("-tp=") => {
                format!("--tensor-parallel-size={}", &s[4..]).into()
            }
            Some(s) if s.starts_with("-pp=") => {
                format!("--pipeline-parallel-size={}", &s[4..]).into()
            }
            _ => a,
        })
        .collect()
}

impl DeploymentArgs {
    /// The library's request.
    pub fn request(&self) -> crate::deployment::DeploymentRequest {
        crate::deployment::DeploymentRequest {
            model: self.model.clone(),
            hardware: self.hardware.clone(),
            tensor_parallel_size: self.tensor_parallel_size,
            pipeline_parallel_size: self.pipeline_parallel_size,
            dtype: self.dtype.clone(),
            quantization: self.quantization.clone(),
            kv_cache_dtype: self.kv_cache_dtype.clone(),
            max_model_len: self.max_model_len,
            gpu_memory_utilization: self.gpu_memory_utilization,
            // The serving stack's: no flag sets it.
            kv_cache_budget: None,
            data_parallel_size: self.data_parallel_size,
            enable_expert_parallel: self.enable_expert_parallel.unwrap_or(false),
            expert_load_imbalance: self.expert_load_imbalance,
            gpus_per_node: self.gpus_per_node,
            inter_node_link: self.inter_node_link.clone(),
            intra_node_link: self.intra_node_link.clone(),
            serving_stack: self.serving_stack.clone(),
            engine_version: self.engine_version.clone(),
            enforce_eager: self.enforce_eager,
            disable_custom_all_reduce: self.disable_custom_all_reduce,
            graphs: crate::deployment::GraphFlags {
                sizes: self.cuda_graph_sizes.clone(),
                max_size: self.max_cuda_graph_size,
                max_context: self.max_seq_len_to_capture,
            },
            offline: self.offline.unwrap_or(false),
        }
    }

    /// The library's request for an engine run with `engine`'s settings: without
    /// `--serving-stack`, a `--scheduler` other than vllm-v1 picks its engine's stack
    /// ([`crate::stack::ServingStack::default_name_for`]).
    pub fn request_for(&self, engine: &EngineArgs) -> crate::deployment::DeploymentRequest {
        let mut r = self.request();
        if r.serving_stack.is_none() {
            if let Some(k) = engine.scheduler {
                r.serving_stack = Some(crate::stack::ServingStack::default_name_for(k).to_owned());
            }
        }
        r
    }
}

/// Print `rows` of (key, value) as a table, JSON object or two-line CSV.
pub fn print_record(
    format: Format,
    value: &impl serde::Serialize,
    rows: &[(String, String)],
) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match format {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(value)?)?,
        Format::Csv => {
            let obj = serde_json::to_value(value)?;
            let map = obj
                .as_object()
                .ok_or_else(|| anyhow::anyhow!("not a record"))?;
            let mut w = csv::Writer::from_writer(out);
            w.write_record(map.keys())?;
            w.write_record(map.values().map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            }))?;
            w.flush()?;
        }
        Format::Table => {
            let width = rows
                .iter()
                .map(|(k, _)| k.chars().count())
                .max()
                .unwrap_or(0);
            for (k, v) in rows {
                writeln!(out, "{k:<width$}  {v}")?;
            }
        }
    }
    Ok(())
}

/// Bytes as GiB with two decimals.
pub fn gib(bytes: f64) -> String {
    format!("{:.2} GiB", bytes / crate::units::BYTES_PER_GIB)
}
