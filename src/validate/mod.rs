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
//! | [Argonne table](tables) | static batches, batch E2E | each batch at once through the engine |
//! | [Argonne TTFT figure](tables) | static batches, one output token, batch TTFT | each batch at once through the engine |
//! | [Splitwise table](tables) | static batches, prefill and decode step times | latency model on the exact shapes |
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
use crate::engine::SchedulerKind;
use crate::error::{Error, Result};
use crate::paths::DataPaths;
use crate::perf::roofline::{Roofline, RooflineParams};
use crate::setup::ReplicaSetup;
use std::path::Path;

pub mod batch;
mod chart;
pub mod csv_run;
pub(crate) mod csv_table;
pub mod llmservingsim;
pub mod mapping;
pub mod measured;
pub mod replay;
pub mod report;
pub mod stats;
pub mod tables;
pub mod vllm_bench;

pub use measured::{ArrivalMode, EngineHints, MeasuredRequest, MeasuredRun, RunFormat};
pub use report::{Metric, MetricReport, ThroughputReport, Validation, ValidationKind};
pub use tables::{BatchRow, StaticTable, TableGroup, TableKind};

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
}

/// A measurement, read.
#[derive(Clone, Debug, PartialEq)]
pub enum Measurement {
    /// A serving run with per-request timings.
    Run(Box<MeasuredRun>),
    /// A static-batch table.
    Table(StaticTable),
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
        "json" => Ok(InputFormat::VllmBench),
        "jsonl" => Ok(InputFormat::Llmservingsim),
        _ => {
            let t = csv_table::CsvTable::read(path)?;
            match tables::detect(&t) {
                Some(TableKind::Argonne | TableKind::ArgonneTtft) => Ok(InputFormat::Argonne),
                Some(TableKind::Splitwise) => Ok(InputFormat::Splitwise),
                None if csv_run::looks_like_run(&t) => Ok(InputFormat::Csv),
                None => Err(Error::input_at(
                    path,
                    1,
                    None,
                    "unrecognised measurement: expected a vLLM result .json, an LLMServingSim requests.jsonl or run folder, a per-request CSV (arrival/first-token/finish columns), or an Argonne or Splitwise table; or pass --format",
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
            let p = p.for_stack(paths, ov.scheduler_kind())?;
            let latency = std::sync::Arc::new(Roofline::new(&d, p));
            ReplicaSetup::with_latency(d, ov, &mm, latency)
        }
    }
}

/// Where the roofline parameters of `setup` come from, for the notes.
fn params_note(setup: &ReplicaSetup, paths: &DataPaths, given: bool) -> Option<String> {
    if !setup.latency.describe().starts_with("roofline") {
        return None;
    }
    let calibrated = RooflineParams::calibrated_path(&paths.perf_model, setup.deployment.gpu());
    Some(if given {
        "roofline parameters given with --roofline-params".into()
    } else if calibrated.is_file() {
        format!("roofline parameters from {}", calibrated.display())
    } else {
        "roofline parameters from roofline.toml (no calibrated file for this GPU)".into()
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
/// as the measured dtype.
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
    r
}

/// Validate each group of `table` that `keep` accepts, each with its own deployment
/// (`settings` first, the group's mapping fills the gaps), returning `(group slug,
/// outcome)` in group order: a group that cannot be simulated (the model does not fit,
/// say) is an `Err` there, not the end of the run. vLLM V0 is the default scheduler:
/// the tables were measured with vLLM ≤ 0.6.
pub fn validate_table(
    table: &StaticTable,
    settings: &Settings,
    paths: &DataPaths,
    mut keep: impl FnMut(&TableGroup) -> bool,
) -> Vec<(String, Result<Validation>)> {
    let mut ov = settings.engine;
    ov.scheduler.get_or_insert(SchedulerKind::VllmV0);
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

#[cfg(test)]
mod tests;
