//! Validation: replay measured GPU benchmarks through the simulator and report how far
//! the simulated latencies are from the measured ones.
//!
//! This module reads measurements and compares; it never changes how requests are
//! served (that is [`engine`](crate::engine)) or how long an iteration takes (that is
//! [`perf`](crate::perf)).
//!
//! # Inputs ([`open`])
//!
//! | format | what | replayed as |
//! |---|---|---|
//! | [vLLM benchmark JSON](vllm_bench) | per-request `ttfts`, `itls`, lengths | arrivals regenerated from `request_rate` + seed (or all at once for `inf`, closed-loop under `max_concurrency`) |
//! | [LLMServingSim run](llmservingsim) | `requests.jsonl` + `meta.json` | recorded arrivals; engine settings from `meta.json` |
//! | [per-request CSV](csv_run) | arrival / first-token / finish columns | recorded arrivals |
//! | [BLIS run](blis) | `<run>.json` + `<run>_ground_truth.json` | recorded arrivals; engine settings from the run's `config` |
//! | [Argonne table](tables) | static batches, batch E2E | each batch at once through the engine |
//! | [Argonne TTFT figure](tables) | static batches, one output token, batch TTFT | each batch at once through the engine |
//! | [Splitwise table](tables) | static batches, prefill and decode step times | latency model on the exact shapes |
//! | [TensorRT-LLM offline throughput table](throughput_table) | total output tok/s per (model, GPU, TP, PP, precision, ISL, OSL) | all requests at t=0 through the engine ([`offline`]) |
//!
//! ## TensorRT-LLM offline throughput
//!
//! `throughput_offline.csv` (the trtllm-perf-overview set) gives, per row, the total
//! output throughput of `trtllm-bench throughput`: `num_requests` requests of exactly
//! ISL/OSL tokens queued at once, CUDA graphs on, large batches. [`validate_throughput`]
//! replays every row through the simulated engine and compares output tokens per
//! second ([`Metric::OutputThroughput`]), per group of (model, GPU, TP, PP, precision)
//! and over all rows. What each row becomes:
//!
//! * **model**: the ModelOpt checkpoint's base model from `model_configs/`
//!   (Llama-3.3-70B as Llama-3.1-70B, which has the same shapes; Qwen3-30B-A3B as
//!   Qwen3-30B-A3B-Instruct-2507); Llama 4 has no config and is skipped with the reason;
//! * **precision**: FP8 → fp8 weights and activations, FP4 → [`nvfp4`](crate::dtype::DType::Nvfp4)
//!   at the device's FP4 tensor rate; the KV cache is fp8, as the checkpoints declare;
//! * **parallelism**: dense models at the listed TP × PP; MoE models ran with `--ep` and
//!   attention data parallelism, so the listed TP becomes that many attention-DP
//!   replicas of TP1 with the experts spread over them (`data_parallel_size`,
//!   `enable_expert_parallel`);
//! * **engine**: vLLM V1 scheduling with chunked prefill, 8192 tokens and up to 8192
//!   sequences per iteration (the largest CUDA-graph batch), each row capped at the
//!   requests whose whole ISL + OSL fits the KV cache (TRT-LLM admits without
//!   eviction); `kv_cache_free_gpu_mem_fraction` 0.95 of the memory left after the
//!   weights, converted to `gpu_memory_utilization`. Flags override every choice.
//!
//! Every assumption is repeated in the notes of each group's `validation.json`; the CLI
//! writes `summary.json` (per group and overall median absolute % error, MAPE and
//! signed bias, positive when the simulator is too fast) and one folder per group.
//!
//! # Metrics ([`stats`])
//!
//! Per metric (TTFT, TPOT, E2E; ITL as a distribution; output throughput):
//! simulated and measured mean/p50/p90/p99, and per pair the median absolute % error,
//! MAPE, signed bias and Pearson r. [`Validation::write`] writes `validation.json`,
//! `comparison.csv` and `validation.svg`.
//!
//! ```
//! use servesim::validate::stats::ErrorStats;
//! let e = ErrorStats::of(&[1.1, 0.9], &[1.0, 1.0]);
//! assert!((e.median_abs_pct - 10.0).abs() < 1e-9);
//! assert!(e.bias_pct.abs() < 1e-9);
//! ```

use crate::deployment::{Deployment, DeploymentRequest};
use crate::engine::config::EngineOverrides;
use crate::error::{Error, Result};
use crate::paths::DataPaths;
use crate::perf::roofline::{ParamsSource, Roofline, RooflineParams};
use crate::setup::ReplicaSetup;
use std::path::Path;

pub mod batch;
pub mod blis;
mod chart;
pub mod csv_run;
pub(crate) mod csv_table;
pub mod llmservingsim;
pub mod mapping;
pub mod measured;
pub mod offline;
pub mod replay;
pub mod report;
pub mod stats;
pub mod tables;
pub mod throughput_table;
pub mod vllm_bench;

pub use measured::{ArrivalMode, EngineHints, MeasuredRequest, MeasuredRun, RunFormat};
pub use report::{Metric, MetricReport, ThroughputReport, Validation, ValidationKind};
pub use tables::{BatchRow, StaticTable, TableGroup, TableKind};
pub use throughput_table::{ThroughputGroup, ThroughputTable};

/// A short name for the measurement at `path`: its file stem, or for a run folder (or
/// the `requests.jsonl` in one) the folder's name, in lowercase.
pub fn default_name(path: &Path) -> String {
    let p = if path.file_name().is_some_and(|n| n == "requests.jsonl") {
        path.parent().unwrap_or(path)
    } else {
        path
    };
    let name = if p.is_dir() {
        p.file_name()
    } else {
        p.file_stem()
    };
    name.map_or("run".into(), |s| s.to_string_lossy().to_ascii_lowercase())
}

/// The input formats of [`open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum InputFormat {
    /// vLLM `benchmark_serving` result JSON.
    VllmBench,
    /// LLMServingSim `requests.jsonl` (or its run folder).
    Llmservingsim,
    /// Per-request CSV with arrival, first-token and finish times.
    Csv,
    /// Argonne LLM-Inference-Bench static-batch table (All_results.csv or a TTFT figure).
    Argonne,
    /// Splitwise profiling table.
    Splitwise,
    /// TensorRT-LLM offline throughput table (`throughput_offline.csv`).
    TrtllmThroughput,
    /// BLIS replay run: `<run>.json` with `<run>_ground_truth.json` beside it.
    Blis,
}

/// A measurement, read.
#[derive(Clone, Debug, PartialEq)]
pub enum Measurement {
    /// A serving run with per-request timings.
    Run(Box<MeasuredRun>),
    /// A static-batch table.
    Table(StaticTable),
    /// An offline throughput table.
    Throughput(ThroughputTable),
}

/// Options of [`open`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpenOptions {
    /// Seed of regenerated arrivals (vLLM benchmark JSON without send times).
    pub seed: u64,
    /// Framework whose Argonne rows are kept (default `vLLM`).
    pub framework: Option<String>,
}

/// The format of `path`: a folder is an LLMServingSim run, `.json` a vLLM result,
/// `.jsonl` an LLMServingSim file; a CSV by its header.
pub fn detect(path: &Path) -> Result<InputFormat> {
    if path.is_dir() {
        return Ok(InputFormat::Llmservingsim);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "json" if blis::looks_like_run(path) => Ok(InputFormat::Blis),
        "json" => Ok(InputFormat::VllmBench),
        "jsonl" => Ok(InputFormat::Llmservingsim),
        _ => {
            let t = csv_table::CsvTable::read(path)?;
            match tables::detect(&t) {
                Some(TableKind::Argonne | TableKind::ArgonneTtft) => Ok(InputFormat::Argonne),
                Some(TableKind::Splitwise) => Ok(InputFormat::Splitwise),
                None if throughput_table::looks_like_throughput(&t) => {
                    Ok(InputFormat::TrtllmThroughput)
                }
                None if csv_run::looks_like_run(&t) => Ok(InputFormat::Csv),
                None => Err(Error::input_at(
                    path,
                    1,
                    None,
                    "unrecognised measurement: expected a vLLM result .json, an LLMServingSim requests.jsonl or run folder, a per-request CSV (arrival/first-token/finish columns), an Argonne or Splitwise table, or a TensorRT-LLM offline throughput table; or pass --format",
                )),
            }
        }
    }
}

/// Read the measurement at `path` (format detected when `format` is `None`).
pub fn open(path: &Path, format: Option<InputFormat>, opts: &OpenOptions) -> Result<Measurement> {
    let format = match format {
        Some(f) => f,
        None => detect(path)?,
    };
    Ok(match format {
        InputFormat::VllmBench => Measurement::Run(Box::new(vllm_bench::read(path, opts.seed)?)),
        InputFormat::Llmservingsim => Measurement::Run(Box::new(llmservingsim::read(path)?)),
        InputFormat::Csv => Measurement::Run(Box::new(csv_run::read(path)?)),
        InputFormat::Blis => Measurement::Run(Box::new(blis::read(path)?)),
        InputFormat::TrtllmThroughput => Measurement::Throughput(throughput_table::read(path)?),
        InputFormat::Argonne | InputFormat::Splitwise => {
            let t = tables::read(path, opts.framework.as_deref())?;
            let fits = match format {
                InputFormat::Argonne => {
                    matches!(t.kind, TableKind::Argonne | TableKind::ArgonneTtft)
                }
                _ => t.kind == TableKind::Splitwise,
            };
            if !fits {
                return Err(Error::input_at(
                    path,
                    1,
                    None,
                    format!(
                        "--format {format:?} given but the header is a {:?} table",
                        t.kind
                    ),
                ));
            }
            Measurement::Table(t)
        }
    })
}

/// What the user sets for a validation (flags, config file); the measurement's own
/// records fill the rest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    /// Deployment settings.
    pub deployment: DeploymentRequest,
    /// Engine settings.
    pub engine: EngineOverrides,
    /// Replicas (default: the run's data-parallel size, else 1).
    pub num_replicas: Option<u32>,
    /// Roofline parameters to use instead of the per-GPU selection
    /// ([`RooflineParams::load_for`]).
    pub roofline: Option<RooflineParams>,
}

/// The replicas' setup for `d`: the usual selection, or a roofline with `roofline`.
fn setup_for(
    d: Deployment,
    ov: &EngineOverrides,
    paths: &DataPaths,
    roofline: Option<&RooflineParams>,
) -> Result<ReplicaSetup> {
    match roofline {
        None => ReplicaSetup::new(d, ov, paths),
        Some(p) => {
            let mm = crate::memory::MemoryModel::load(&paths.perf_model)?;
            let latency = std::sync::Arc::new(Roofline::new(&d, *p));
            ReplicaSetup::with_latency(d, ov, &mm, latency)
        }
    }
}

/// Where the roofline parameters of `setup` come from, for the notes.
fn params_note(setup: &ReplicaSetup, paths: &DataPaths, given: bool) -> Option<String> {
    if !setup.latency.describe().starts_with("roofline") {
        return None;
    }
    if given {
        return Some("roofline parameters given with --roofline-params".into());
    }
    let source = RooflineParams::source_for(&paths.perf_model, setup.deployment.gpu());
    let file = source.path();
    let file = file.strip_prefix(&paths.perf_model).unwrap_or(file);
    Some(match source {
        ParamsSource::KernelEfficiency(_) => format!(
            "roofline parameters from perf_model/{} (derived from public kernel measurements of this GPU or the same silicon; not fitted on any validation set)",
            file.display()
        ),
        ParamsSource::Generic(_) => format!(
            "roofline parameters from perf_model/{} (generic defaults: no kernel measurements of this GPU)",
            file.display()
        ),
    })
}

/// Validate a measured run: `settings` first, the run's recorded engine settings fill
/// the gaps; replicas default to the run's data-parallel size.
pub fn validate_run(
    name: &str,
    run: &MeasuredRun,
    settings: &Settings,
    paths: &DataPaths,
) -> Result<Validation> {
    let (mut req, mut ov) = (settings.deployment.clone(), settings.engine);
    run.hints.apply(&mut req, &mut ov);
    let d = Deployment::resolve(&req, paths)?;
    let setup = setup_for(d, &ov, paths, settings.roofline.as_ref())?;
    let dp = run.hints.data_parallel_size.unwrap_or(1).max(1);
    let mut run = run.clone();
    if dp > 1 && run.hints.enable_expert_parallel == Some(true) {
        run.notes.push(format!(
                        "measured with DP{dp} + expert parallelism: simulated as {dp} replicas (one per DP rank, each with its own scheduler and KV cache) whose MoE layers share the experts (EP{}) and which step in lock-step, each iteration as long as the slowest rank's (an idle rank's dummy step is not timed)",
            setup.deployment.ep
        ));
    }
    if let Some(v) = &run.hints.engine_version {
        run.notes.push(format!(
            "measured on {v}; the simulated scheduler is {:?}",
            setup.engine.scheduler
        ));
    }
    run.notes
        .extend(params_note(&setup, paths, settings.roofline.is_some()));
    replay::replay(name, &run, &setup, settings.num_replicas.unwrap_or(dp))
}

/// The deployment request of a table group: `base` (flags) wins; the group's mapped
/// model, device, TP ([`TableGroup::tensor_parallel_size`]: the table's device count
/// times the catalog devices in each) and `max_model_len` fill the gaps, with `float16`
/// as the measured dtype and [`TABLE_STACK`] as the serving stack.
pub fn group_request(group: &TableGroup, base: &DeploymentRequest) -> DeploymentRequest {
    let mut r = base.clone();
    r.model.get_or_insert_with(|| group.model.model.clone());
    r.hardware
        .get_or_insert_with(|| group.hardware.hardware.clone());
    r.tensor_parallel_size
        .get_or_insert(group.tensor_parallel_size());
    if r.max_model_len.is_none() {
        r.max_model_len = group.model.max_model_len;
    }
    r.dtype.get_or_insert_with(|| "float16".into());
    if r.serving_stack.is_none() {
        r.serving_stack = Some(TABLE_STACK.into());
    }
    r
}

/// The serving stack static-batch tables are replayed on unless one is given: the
/// Argonne tables ran vLLM 0.5.x–0.6.1 (V0).
pub const TABLE_STACK: &str = "vllm-0.6";

/// Validate each group of `table` that `keep` accepts, each with its own deployment
/// (`settings` first, the group's mapping fills the gaps), returning `(group slug,
/// outcome)` in group order: a group that cannot be simulated (the model does not fit,
/// say) is an `Err` there, not the end of the run. The default serving stack is
/// [`TABLE_STACK`]: the tables were measured with vLLM ≤ 0.6.
pub fn validate_table(
    table: &StaticTable,
    settings: &Settings,
    paths: &DataPaths,
    mut keep: impl FnMut(&TableGroup) -> bool,
) -> Vec<(String, Result<Validation>)> {
    let ov = settings.engine;
    let one = |g: &TableGroup| -> Result<Validation> {
        let req = group_request(g, &settings.deployment);
        let d = Deployment::resolve(&req, paths)?;
        let setup = setup_for(d, &ov, paths, settings.roofline.as_ref())?;
        let mut v = batch::validate_group(&g.slug(), &table.source, table.kind, g, &setup)?;
        v.notes.extend(table.notes.iter().cloned());
        v.notes
            .extend(params_note(&setup, paths, settings.roofline.is_some()));
        Ok(v)
    };
    table
        .groups
        .iter()
        .filter(|g| keep(g))
        .map(|g| (g.slug(), one(g)))
        .collect()
}

/// Whether the model `name` (as the catalog resolves it) has mixture-of-experts layers.
fn is_moe(name: &str, paths: &DataPaths) -> Result<bool> {
    let model = crate::model::ModelCatalog::load(&paths.model_configs)?.resolve(name)?;
    Ok(model
        .layers
        .iter()
        .any(|l| matches!(l.ffn, crate::model::FfnSpec::Moe { .. })))
}

/// Validate each group of an offline throughput `table` that `keep` accepts (see the
/// module docs for how a row is replayed), returning `(group, outcome)` in group order
/// (the validation is named by the group's slug); a group that cannot be simulated is
/// an `Err` there. `settings` win over every mapped choice; a given `--max-num-seqs`
/// also turns off the per-row KV cap. Groups run on all available cores; the results do
/// not depend on how many.
pub fn validate_throughput<'a>(
    table: &'a ThroughputTable,
    settings: &Settings,
    paths: &DataPaths,
    mut keep: impl FnMut(&ThroughputGroup) -> bool,
) -> Vec<(&'a ThroughputGroup, Result<Validation>)> {
    let ov = offline::engine_overrides(&settings.engine);
    let one = |g: &ThroughputGroup| -> Result<Validation> {
        let model = settings
            .deployment
            .model
            .clone()
            .unwrap_or_else(|| g.model.model.clone());
        let moe = is_moe(&model, paths)?;
        let mut req = offline::group_request(g, &settings.deployment, moe);
        let mut notes = Vec::new();
        if moe && g.key.tp > 1 {
            notes.push(format!(
                "MoE run with --ep and attention DP (the EP size is not listed): the listed TP{} is read as {} attention data-parallel ranks of TP1 (simulated replicas) with the routed experts spread over all their GPUs",
                g.key.tp, g.key.tp
            ));
        }
        if req.gpu_memory_utilization.is_none() {
            let f = offline::KV_CACHE_FREE_GPU_MEM_FRACTION;
            req.gpu_memory_utilization = Some(f);
            let d = Deployment::resolve(&req, paths)?;
            let e = ov.resolve_unsized(&d.stack.scheduler, d.max_model_len);
            let plan = crate::memory::plan(
                &d,
                &crate::memory::MemoryModel::load(&paths.perf_model)?,
                &crate::memory::MemoryOptions {
                    block_size: e.block_size,
                    max_num_batched_tokens: e.max_num_batched_tokens,
                    max_num_seqs: e.max_num_seqs,
                    seq_len: None,
                },
            );
            let u = offline::utilization_for_free_fraction(&plan, f);
            req.gpu_memory_utilization = Some(u);
            notes.push(format!(
                "kv_cache_free_gpu_mem_fraction {f} (the README's usual value) of the memory left after weights, activations and runtime = gpu_memory_utilization {u:.4} of the whole GPU"
            ));
        }
        let d = Deployment::resolve(&req, paths)?;
        let replicas = settings.num_replicas.unwrap_or(d.dp);
        let setup = setup_for(d, &ov, paths, settings.roofline.as_ref())?;
        notes.extend(params_note(&setup, paths, settings.roofline.is_some()));
        offline::validate_group(
            offline::GroupRun {
                name: &g.key.slug(),
                source: &table.source,
                setup: &setup,
                replicas,
                cap_to_kv: settings.engine.max_num_seqs.is_none(),
                notes,
            },
            g,
        )
    };
    let groups: Vec<&ThroughputGroup> = table.groups.iter().filter(|g| keep(g)).collect();
    let items: Vec<usize> = (0..groups.len()).collect();
    let results = crate::plan::exec::par_map(
        &items,
        crate::plan::exec::default_jobs(),
        |i| one(groups[i]),
        &|| {},
    );
    groups.into_iter().zip(results).collect()
}

#[cfg(test)]
mod tests;
