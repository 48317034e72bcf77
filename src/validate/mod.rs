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
//! | [vLLM benchmark JSON](vllm_bench) | per-request `ttfts`, `itls`, lengths; or, saved without them, the run's statistics | arrivals regenerated from `request_rate` + seed (or all at once for `inf`, closed-loop under `max_concurrency`); a summary as `completed` requests of its mean lengths, compared by its means |
//! | [SGLang `bench_serving` JSON lines](sglang_bench) | one vLLM-style result per line (`--output-details`) | each line a run, as a vLLM result |
//! | [LLMServingSim run](llmservingsim) | `requests.jsonl` + `meta.json` | recorded arrivals; engine settings from `meta.json` |
//! | [per-request CSV](csv_run) | arrival / first-token / finish columns | recorded arrivals |
//! | [BLIS run](blis) | `<run>.json` + `<run>_ground_truth.json` | recorded arrivals; engine settings from the run's `config` |
//! | [Argonne table](tables) | static batches, batch E2E | each batch at once through the engine |
//! | [Argonne TTFT figure](tables) | static batches, one output token, batch TTFT | each batch at once through the engine |
//! | [Splitwise table](tables) | static batches, prefill and decode step times | latency model on the exact shapes |
//! | [TensorRT-LLM offline throughput table](throughput_table) | total output tok/s per (model, GPU, TP, PP, precision, ISL, OSL) | all requests at t=0 through the engine ([`offline`]) |
//! | [GenZ-style per-request table](genz) | per-request lengths, TTFT, TPOT/E2E; no timestamps | burst, closed loop at a concurrency or open loop at a rate (stated in the notes and `replay`); one run per configuration |
//! | [AIConfigurator serving summary](serving_summary) | mean TTFT/TPOT per (engine, version, model, GPU, parallelism, precision, ISL, OSL, concurrency) | each row a closed loop at its concurrency ([`closed_loop`]) |
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
//! ## AIConfigurator serving summary
//!
//! `serving_summary.csv` (AIConfigurator's "silicon" ground truth: vLLM 0.11–0.19,
//! SGLang and TensorRT-LLM on H100, H200, B200, GB200) gives mean TTFT and TPOT of
//! closed-loop runs. [`validate_summary`] replays every row of every group (engine,
//! version, model, GPU, precision, TP, PP, attention DP, MoE TP/EP) as a closed loop at
//! its concurrency, `max(4 × concurrency, 64)` requests of fixed ISL/OSL, and compares
//! the means over the steady state (the first `concurrency` requests are warm-up; see
//! [`closed_loop`]). The mappings ([`aic_mapping`]):
//!
//! * **engine → serving stack** (`--serving-stack` overrides): vLLM ≥ 0.14 and
//!   development builds → `vllm-v1`; vLLM 0.8–0.13 → `vllm-v1-sync`; vLLM without a
//!   version → `vllm-v1-sync` when measured before 2026 (the releases then were
//!   0.11–0.13), else `vllm-v1`; SGLang → `sglang`; TensorRT-LLM → `trtllm`;
//! * **model → shipped config**: Llama-3.1-8B-Instruct (and NVIDIA's FP8 checkpoint),
//!   Llama-3.1-70B, Qwen3-32B (and its NVFP4 checkpoint), Qwen3-235B-A22B-FP8 →
//!   Qwen3-235B-A22B, DeepSeek-V3, DeepSeek-R1 / R1-NVFP4 / V3.1-NVFP4 → DeepSeek-V3
//!   (same shapes), gpt-oss-120b; MiniMax-M2.5, Qwen3.5-397B-A17B, Kimi-K2.5 and GLM-5
//!   have no config and are skipped with the reason, as is B300 (no hardware file);
//! * **precision → `--quantization`**: bf16 → bf16, fp8 → fp8 (W8A8), fp4 → nvfp4
//!   (W4A4) except gpt-oss → its MXFP4 checkpoint (weight-only), int4 → int4; the KV
//!   cache (not recorded) is bf16 for bf16 rows and fp8 for quantized ones, the only
//!   reading under which the smooth measured points fit the cache;
//!   `--kv-cache-dtype` overrides;
//! * **parallelism**: dense models at TP × PP; MoE models with `moe_ep = 1` split every
//!   expert over the TP group, with `moe_tp = 1` spread whole experts over all TP × DP
//!   GPUs (`--enable-expert-parallel`, one simulated replica per attention-DP rank);
//!   MoE TP × EP hybrids, attention DP on dense models and inconsistent rows are
//!   skipped with the reason.
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

pub mod aic_launch;
pub mod aic_mapping;
pub mod batch;
pub mod blis;
mod chart;
pub mod closed_loop;
pub mod csv_run;
pub(crate) mod csv_table;
pub mod genz;
pub mod groups;
pub mod inferencex_client;
pub mod llmservingsim;
pub mod mapping;
pub mod measured;
pub mod offline;
pub mod replay;
pub mod report;
pub mod sample;
pub mod serving_summary;
pub mod sglang_bench;
pub mod stats;
pub mod sweep;
pub mod table_settings;
pub mod tables;
pub mod throughput_table;
pub mod vllm_bench;

pub use genz::{GenzGroup, GenzTable};
pub use groups::{
    group_request, table_overrides, table_request, validate_summary, validate_table,
    validate_throughput, GroupRun, TABLE_STACK,
};
pub use measured::{ArrivalMode, EngineHints, MeasuredRequest, MeasuredRun, RunFormat};
pub use report::{Metric, MetricReport, ReplayMode, ThroughputReport, Validation, ValidationKind};
pub use serving_summary::{SummaryGroup, SummaryTable};
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
    /// GenZ-style per-request table: lengths, TTFT, TPOT/E2E, no timestamps (CSV or
    /// JSON lines).
    Genz,
    /// AIConfigurator serving summary (`serving_summary.csv`): mean TTFT/TPOT per
    /// closed-loop point.
    AicSummary,
    /// SGLang `bench_serving` results saved with `--output-details`: one run per line.
    SglangBench,
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
    /// Per-request runs without send times, one per configuration: GenZ-style tables,
    /// and SGLang `bench_serving` files (one run per line).
    Genz(GenzTable),
    /// Closed-loop serving summaries (mean TTFT/TPOT per point).
    Summary(SummaryTable),
}

/// Options of [`open`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpenOptions {
    /// Seed of regenerated arrivals (vLLM benchmark JSON without send times).
    pub seed: u64,
    /// Framework whose Argonne rows are kept (default `vLLM`).
    pub framework: Option<String>,
    /// GenZ tables: replay as a closed loop at this concurrency (over the file's).
    pub concurrency: Option<u32>,
    /// GenZ tables: replay as an open loop at this rate, req/s (over the file's).
    pub request_rate: Option<f64>,
}

/// The format of `path`: a folder is an LLMServingSim run, `.json` a vLLM result (or a
/// BLIS run), `.jsonl` an SGLang `bench_serving` file when its first object has the
/// per-request lists, else an LLMServingSim file unless its first object has GenZ
/// columns and no `queued_ts`; a CSV by its header, tables first, then the per-request CSV with
/// arrival/first-token/finish columns, then GenZ columns (so a servesim `requests.csv`,
/// which has both, stays a per-request CSV).
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
        "jsonl" | "ndjson" if sglang_bench::looks_like_result_lines(path) => {
            Ok(InputFormat::SglangBench)
        }
        "jsonl" | "ndjson" if genz::looks_like_genz_json_lines(path) => Ok(InputFormat::Genz),
        "jsonl" => Ok(InputFormat::Llmservingsim),
        _ => {
            let t = csv_table::CsvTable::read(path)?;
            match tables::detect(&t) {
                Some(TableKind::Argonne | TableKind::ArgonneTtft) => Ok(InputFormat::Argonne),
                Some(TableKind::Splitwise) => Ok(InputFormat::Splitwise),
                None if throughput_table::looks_like_throughput(&t) => {
                    Ok(InputFormat::TrtllmThroughput)
                }
                None if serving_summary::looks_like_summary(&t) => Ok(InputFormat::AicSummary),
                None if csv_run::looks_like_run(&t) => Ok(InputFormat::Csv),
                None if genz::looks_like_genz(&t) => Ok(InputFormat::Genz),
                None => Err(Error::input_at(
                    path,
                    1,
                    None,
                    "unrecognised measurement: expected a vLLM result .json, an SGLang bench_serving .jsonl, an LLMServingSim requests.jsonl or run folder, a per-request CSV (arrival/first-token/finish columns), a GenZ-style per-request table (input/output tokens, TTFT, TPOT or E2E), an Argonne or Splitwise table, a TensorRT-LLM offline throughput table or an AIConfigurator serving summary; or pass --format",
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
    let checked = |run: MeasuredRun| -> Result<Measurement> {
        run.check_times()?;
        Ok(Measurement::Run(Box::new(run)))
    };
    Ok(match format {
        InputFormat::VllmBench => checked(vllm_bench::read(path, opts.seed)?)?,
        InputFormat::Llmservingsim => checked(llmservingsim::read(path)?)?,
        InputFormat::Csv => checked(csv_run::read(path)?)?,
        InputFormat::Blis => checked(blis::read(path)?)?,
        InputFormat::TrtllmThroughput => Measurement::Throughput(throughput_table::read(path)?),
        InputFormat::AicSummary => Measurement::Summary(serving_summary::read(path)?),
        InputFormat::SglangBench => {
            let t = sglang_bench::read(path, opts.seed)?;
            for g in &t.groups {
                g.run.check_times()?;
            }
            Measurement::Genz(t)
        }
        InputFormat::Genz => {
            let replay = genz::ReplayOptions {
                seed: opts.seed,
                concurrency: opts.concurrency,
                request_rate: opts.request_rate,
            };
            Measurement::Genz(genz::read(path, &replay)?)
        }
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
    /// The file `roofline` was read from (to tell whether it was fitted on the set).
    pub roofline_file: Option<std::path::PathBuf>,
    /// Runs the measured server served before a measured run, in order, replayed first
    /// on the same simulated server ([`sweep`]; serving runs only).
    pub earlier: Vec<MeasuredRun>,
}

/// Whether `setup`, used on the measurement at `source`, rests on a parameter fitted on
/// that measurement's set (see [`sample`]).
pub(crate) fn sample_status(
    setup: &ReplicaSetup,
    settings: &Settings,
    paths: &DataPaths,
    source: &Path,
) -> sample::SampleStatus {
    let described = setup.latency.describe();
    let mut files = Vec::new();
    if described.starts_with("roofline") {
        if let Some(f) = &settings.roofline_file {
            files.push(f.clone());
        } else {
            // The file the per-GPU selection reads (kernel measurements: never fitted
            // on a validation set, but its header says so if it ever were).
            let src = RooflineParams::source_for(&paths.perf_model, setup.deployment.gpu());
            files.push(src.path().to_path_buf());
        }
    }
    if described.contains("calibrated on") {
        files.extend(crate::perf::measured::MeasuredModel::link_calibration_file(
            &setup.deployment,
            paths,
        ));
    }
    sample::status(&setup.deployment.stack, &files, source)
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
            let d = d.for_engine(ov);
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

/// Puts `d`, resolved from `req`, on its GPU's calibrated intra-node link (as
/// `--intra-node-link calibrated` does) when `req` names no link and the calibration
/// was fitted on the set of the measurement at `source`: that measurement ran on the
/// calibrated system, so its replay does too (no other system's replay uses it unasked;
/// a cross-validation that leaves the set out drops the file). Returns the calibration
/// file when it was selected.
pub(crate) fn use_own_system_link(
    req: &DeploymentRequest,
    d: &mut Deployment,
    paths: &DataPaths,
    source: &Path,
) -> Option<std::path::PathBuf> {
    // Only GPUs of one replica (or of expert-parallel ranks) talk over the link.
    if req.intra_node_link.is_some() || (d.tp <= 1 && d.ep <= 1) {
        return None;
    }
    let file = crate::perf::measured::MeasuredModel::link_calibration_file(d, paths)?;
    if !sample::fitted_on_source(&file, source) {
        return None;
    }
    d.cluster.calibrated_intra_node = true;
    Some(file)
}

/// The model the run file describes ([`EngineHints::model_config`]), named by its id.
fn own_model(req: &DeploymentRequest, run: &MeasuredRun) -> Result<crate::model::ModelSpec> {
    let id = req.model.clone().unwrap_or_default();
    let config = run.hints.model_config.as_deref().unwrap_or_default();
    crate::model::ModelSpec::from_json(id, &run.source, config)
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
    let mut run = run.clone();
    let mut d = match Deployment::resolve(&req, paths) {
        // A model the catalog does not know, which the file describes and no flag names.
        Err(Error::Unknown { kind: "model", .. } | Error::NotDownloaded { .. })
            if run.hints.model_config.is_some() && settings.deployment.model.is_none() =>
        {
            let model = own_model(&req, &run)?;
            run.notes.push(format!(
                "model `{}` is not in the catalog: built from the run file's own description ({})",
                model.name,
                model.summary()
            ));
            Deployment::resolve_with_model(&req, paths, model)?
        }
        other => other?,
    };
    if let Some(file) = use_own_system_link(&req, &mut d, paths, &run.source) {
        let shown = file
            .strip_prefix(paths.perf_model.parent().unwrap_or(Path::new("")))
            .unwrap_or(&file);
        run.notes.push(format!(
            "intra-node link: the one calibrated on this set's own system ({}; in-sample; --intra-node-link overrides)",
            shown.display()
        ));
    }
    let setup = setup_for(d, &ov, paths, settings.roofline.as_ref())?;
    // One replica per data-parallel rank: the command line's DP size, else the file's.
    let dp = settings
        .deployment
        .data_parallel_size
        .or(run.hints.data_parallel_size)
        .unwrap_or(1)
        .max(1);
    if dp > 1 && setup.deployment.ep > 1 {
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
    let mut v = replay::replay_after(
        name,
        &run,
        &settings.earlier,
        &setup,
        settings.num_replicas.unwrap_or(dp),
    )?;
    v.sample = Some(sample_status(&setup, settings, paths, &run.source));
    Ok(v)
}

#[cfg(test)]
mod format_tests;
#[cfg(test)]
mod tests;
