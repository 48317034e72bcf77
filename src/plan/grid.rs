//! The sweep description (a TOML file) and its expansion into points.
//!
//! A grid is the cartesian product of its axes, expanded in this fixed order, outermost
//! first (the last axis varies fastest):
//!
//! 1. `hardware`, 2. `tensor-parallel-size`, 3. `pipeline-parallel-size`,
//! 4. `num-replicas`, 5. `max-num-seqs`, 6. `max-num-batched-tokens`,
//! 7. `enable-chunked-prefill`, 8. the workload load (`rate-scale` of a trace, or
//!    `rate-rps` of a generator).
//!
//! A point's index is its position in that product (mixed radix over the axis lengths),
//! so index `i` names the same point on every machine and in every shard. A
//! *configuration* is a point without its load: configuration `i / loads`.

use crate::error::{Error, Result};
use crate::trace::synth::LengthDist;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// A `sweep`/`plan` config file.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SweepConfig {
    /// Name of the sweep (output folder `output/sweep-<name>/`).
    pub name: Option<String>,
    /// Model (HuggingFace id, short name or config.json path). Default: Llama-3.1-8B.
    pub model: Option<String>,
    /// Longest sequence served. Default: the model's.
    pub max_model_len: Option<u32>,
    /// Weight and activation dtype.
    pub dtype: Option<String>,
    /// Weight quantization.
    pub quantization: Option<String>,
    /// KV-cache dtype.
    pub kv_cache_dtype: Option<String>,
    /// Fraction of GPU memory the engine may use.
    pub gpu_memory_utilization: Option<f64>,
    /// Scheduler for every point. Default: the serving stack's.
    pub scheduler: Option<crate::engine::SchedulerKind>,
    /// Serving stack for every point (a name under `perf_model/stacks/` or a file).
    /// Default: vllm-v1, or the stack of `scheduler`'s engine.
    pub serving_stack: Option<String>,
    /// Every point runs eagerly, each kernel launched by the CPU (vLLM's
    /// `--enforce-eager`). Default: the stack's CUDA graphs.
    pub enforce_eager: Option<bool>,
    /// Every tensor-parallel all-reduce goes to the collective library (vLLM's and
    /// SGLang's `--disable-custom-all-reduce`). Default: the stack's custom kernel.
    pub disable_custom_all_reduce: Option<bool>,
    /// Router policy for every point. Default: round-robin.
    pub route: Option<crate::sim::RoutePolicy>,
    /// Seed of the workload generator (and of vLLM-JSON arrivals). Default: 0.
    pub seed: Option<u64>,
    /// TTFT SLO (s) for goodput and attainment.
    pub slo_ttft_s: Option<f64>,
    /// TPOT SLO (s) for goodput and attainment.
    pub slo_tpot_s: Option<f64>,
    /// Price overrides, USD per GPU-hour, keyed by hardware name or alias.
    #[serde(default)]
    pub prices: std::collections::BTreeMap<String, f64>,
    /// The axes.
    #[serde(default)]
    pub grid: GridAxes,
    /// The workload.
    #[serde(default)]
    pub workload: WorkloadConfig,
}

/// The grid axes; an absent axis has the single value "default".
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GridAxes {
    /// Hardware names or aliases. Default: `["h100"]`.
    pub hardware: Option<Vec<String>>,
    /// Tensor-parallel sizes. Default: `[1]`.
    pub tensor_parallel_size: Option<Vec<u32>>,
    /// Pipeline-parallel sizes. Default: `[1]`.
    pub pipeline_parallel_size: Option<Vec<u32>>,
    /// Replica counts. Default: `[1]`.
    pub num_replicas: Option<Vec<u32>>,
    /// `--max-num-seqs` values. Default: the scheduler's.
    pub max_num_seqs: Option<Vec<u32>>,
    /// `--max-num-batched-tokens` values. Default: the scheduler's.
    pub max_num_batched_tokens: Option<Vec<u32>>,
    /// `--enable-chunked-prefill` values. Default: the scheduler's.
    pub enable_chunked_prefill: Option<Vec<bool>>,
}

/// The workload: a trace replayed at several rate scales, or a generator at several
/// rates. Exactly one of `trace` and `arrival` must be given.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WorkloadConfig {
    /// Trace file, relative to the config file's folder.
    pub trace: Option<PathBuf>,
    /// Rate scales of the trace (2 = twice the recorded rate). Default: `[1]`.
    pub rate_scale: Option<Vec<f64>>,
    /// Replay at most this many requests of the trace.
    pub max_requests: Option<u64>,
    /// Generator arrival process: `poisson`, `constant` or `gamma`.
    pub arrival: Option<String>,
    /// Coefficient of variation of gamma gaps.
    pub cv: Option<f64>,
    /// Generator rates, requests per second.
    pub rate_rps: Option<Vec<f64>>,
    /// Generator prompt lengths (`fixed:N`, `uniform:LO:HI`, `lognormal:MEAN:CV[:MAX]`).
    pub input: Option<String>,
    /// Generator output lengths.
    pub output: Option<String>,
    /// Generate arrivals over this many seconds.
    pub duration_s: Option<f64>,
    /// Or generate this many requests.
    pub num_requests: Option<u64>,
}

/// A validated workload.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkloadSpec {
    /// A trace file replayed at rate scales.
    Trace {
        /// The file.
        path: PathBuf,
        /// Rate scales, one per load level.
        rate_scales: Vec<f64>,
        /// Request cap.
        max_requests: Option<u64>,
    },
    /// A generator at several rates.
    Synthetic {
        /// Arrival process name (`poisson`, `constant`, `gamma`).
        arrival: String,
        /// Gamma cv.
        cv: f64,
        /// Rates, requests per second.
        rates_rps: Vec<f64>,
        /// Prompt lengths.
        input: LengthDist,
        /// Output lengths.
        output: LengthDist,
        /// Duration limit, s.
        duration_s: Option<f64>,
        /// Request-count limit.
        num_requests: Option<u64>,
    },
}

impl WorkloadSpec {
    /// The load levels (rate scales or rates).
    pub fn loads(&self) -> &[f64] {
        match self {
            WorkloadSpec::Trace { rate_scales, .. } => rate_scales,
            WorkloadSpec::Synthetic { rates_rps, .. } => rates_rps,
        }
    }

    /// A short name for reports.
    pub fn name(&self) -> String {
        match self {
            WorkloadSpec::Trace { path, .. } => path
                .file_name()
                .map_or_else(|| "trace".into(), |s| s.to_string_lossy().into_owned()),
            WorkloadSpec::Synthetic { arrival, .. } => format!("synthetic-{arrival}"),
        }
    }
}

/// One configuration (a point without its load).
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigPoint {
    /// Configuration index (point index / number of loads).
    pub index: usize,
    /// Hardware name as written in the grid.
    pub hardware: String,
    /// Tensor-parallel size.
    pub tp: u32,
    /// Pipeline-parallel size.
    pub pp: u32,
    /// Replicas.
    pub replicas: u32,
    /// `--max-num-seqs` (None: default).
    pub max_num_seqs: Option<u32>,
    /// `--max-num-batched-tokens` (None: default).
    pub max_num_batched_tokens: Option<u32>,
    /// `--enable-chunked-prefill` (None: default).
    pub enable_chunked_prefill: Option<bool>,
}

/// One point of the grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Position in the cartesian product.
    pub index: usize,
    /// Its configuration.
    pub config: ConfigPoint,
    /// Rate scale (trace) or rate in requests per second (generator).
    pub load: f64,
}

/// A validated grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    /// Hardware axis.
    pub hardware: Vec<String>,
    /// TP axis.
    pub tp: Vec<u32>,
    /// PP axis.
    pub pp: Vec<u32>,
    /// Replica axis.
    pub replicas: Vec<u32>,
    /// max-num-seqs axis.
    pub max_num_seqs: Vec<Option<u32>>,
    /// max-num-batched-tokens axis.
    pub max_num_batched_tokens: Vec<Option<u32>>,
    /// chunked-prefill axis.
    pub enable_chunked_prefill: Vec<Option<bool>>,
    /// The workload and its loads (the innermost axis).
    pub workload: WorkloadSpec,
}

fn axis<T: Clone>(file: &Path, field: &str, v: &Option<Vec<T>>, default: T) -> Result<Vec<T>> {
    match v {
        None => Ok(vec![default]),
        Some(v) if v.is_empty() => Err(Error::input(
            file,
            Some(field),
            "an axis needs at least one value (leave it out for the default)",
        )),
        Some(v) => Ok(v.clone()),
    }
}

fn opt_axis<T: Clone>(file: &Path, field: &str, v: &Option<Vec<T>>) -> Result<Vec<Option<T>>> {
    match v {
        None => Ok(vec![None]),
        Some(v) => Ok(axis(file, field, &Some(v.clone()), v[0].clone())?
            .into_iter()
            .map(Some)
            .collect()),
    }
}

fn positive(file: &Path, field: &str, v: &[f64]) -> Result<()> {
    match v.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
        Some(x) => Err(Error::input(
            file,
            Some(field),
            format!("values must be positive and finite, got {x}"),
        )),
        None => Ok(()),
    }
}

impl SweepConfig {
    /// Read and parse `path` (errors name the file, line and key).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&text).map_err(|e| crate::error::toml_error(path, &text, &e))
    }

    /// Check the axes and workload; `file` names the config in errors and anchors its
    /// relative paths ([`crate::paths::relative_to_config`]); `traces_dir`, the shipped
    /// traces, is named when a trace is missing.
    pub fn grid(&self, file: &Path, traces_dir: &Path) -> Result<Grid> {
        let g = &self.grid;
        let w = &self.workload;
        let ints = |field: &str, v: &[u32]| -> Result<()> {
            if v.contains(&0) {
                Err(Error::input(file, Some(field), "values must be at least 1"))
            } else {
                Ok(())
            }
        };
        let tp = axis(
            file,
            "grid.tensor-parallel-size",
            &g.tensor_parallel_size,
            1,
        )?;
        ints("grid.tensor-parallel-size", &tp)?;
        let pp = axis(
            file,
            "grid.pipeline-parallel-size",
            &g.pipeline_parallel_size,
            1,
        )?;
        ints("grid.pipeline-parallel-size", &pp)?;
        let replicas = axis(file, "grid.num-replicas", &g.num_replicas, 1)?;
        ints("grid.num-replicas", &replicas)?;
        let seqs = opt_axis(file, "grid.max-num-seqs", &g.max_num_seqs)?;
        ints(
            "grid.max-num-seqs",
            &seqs.iter().flatten().copied().collect::<Vec<_>>(),
        )?;
        let mbt = opt_axis(
            file,
            "grid.max-num-batched-tokens",
            &g.max_num_batched_tokens,
        )?;
        ints(
            "grid.max-num-batched-tokens",
            &mbt.iter().flatten().copied().collect::<Vec<_>>(),
        )?;
        let workload = match (&w.trace, &w.arrival) {
            (Some(_), Some(_)) | (None, None) => return Err(Error::input(
                file,
                Some("workload"),
                "give exactly one of `trace` (with `rate-scale`) and `arrival` (with `rate-rps`)",
            )),
            (Some(trace), None) => {
                let rate_scales = axis(file, "workload.rate-scale", &w.rate_scale, 1.0)?;
                positive(file, "workload.rate-scale", &rate_scales)?;
                let path = crate::paths::relative_to_config(file, trace);
                if !path.is_file() {
                    return Err(Error::input(
                        file,
                        Some("workload.trace"),
                        format!(
                            "no file {}: paths in a config are relative to the config's folder (the shipped traces are in {})",
                            path.display(),
                            traces_dir.display()
                        ),
                    ));
                }
                WorkloadSpec::Trace {
                    path,
                    rate_scales,
                    max_requests: w.max_requests,
                }
            }
            (None, Some(arrival)) => {
                if !matches!(arrival.as_str(), "poisson" | "constant" | "gamma") {
                    return Err(Error::input(
                        file,
                        Some("workload.arrival"),
                        format!("`{arrival}`: expected poisson, constant or gamma"),
                    ));
                }
                let rates_rps = match &w.rate_rps {
                    Some(v) if !v.is_empty() => v.clone(),
                    _ => {
                        return Err(Error::input(
                            file,
                            Some("workload.rate-rps"),
                            "a generator needs at least one rate",
                        ))
                    }
                };
                positive(file, "workload.rate-rps", &rates_rps)?;
                let dist = |field: &str, v: &Option<String>, default: &str| {
                    v.as_deref()
                        .unwrap_or(default)
                        .parse::<LengthDist>()
                        .map_err(|e| Error::input(file, Some(field), e.to_string()))
                };
                if w.duration_s.is_some() == w.num_requests.is_some() {
                    return Err(Error::input(
                        file,
                        Some("workload"),
                        "a generator needs exactly one of `duration-s` and `num-requests`",
                    ));
                }
                if let Some(d) = w.duration_s {
                    positive(file, "workload.duration-s", &[d])?;
                }
                let cv = w.cv.unwrap_or(1.0);
                positive(file, "workload.cv", &[cv])?;
                WorkloadSpec::Synthetic {
                    arrival: arrival.clone(),
                    cv,
                    rates_rps,
                    input: dist("workload.input", &w.input, "lognormal:1024:1.0:8192")?,
                    output: dist("workload.output", &w.output, "lognormal:256:1.0:2048")?,
                    duration_s: w.duration_s,
                    num_requests: w.num_requests,
                }
            }
        };
        Ok(Grid {
            hardware: axis(file, "grid.hardware", &g.hardware, "h100".to_owned())?,
            tp,
            pp,
            replicas,
            max_num_seqs: seqs,
            max_num_batched_tokens: mbt,
            enable_chunked_prefill: opt_axis(
                file,
                "grid.enable-chunked-prefill",
                &g.enable_chunked_prefill,
            )?,
            workload,
        })
    }
}

impl Grid {
    /// Configurations (points without their load).
    pub fn num_configs(&self) -> usize {
        self.hardware.len()
            * self.tp.len()
            * self.pp.len()
            * self.replicas.len()
            * self.max_num_seqs.len()
            * self.max_num_batched_tokens.len()
            * self.enable_chunked_prefill.len()
    }

    /// Points (configurations × loads).
    pub fn num_points(&self) -> usize {
        self.num_configs() * self.workload.loads().len()
    }

    /// Configuration `index` (`< num_configs()`).
    pub fn config(&self, index: usize) -> ConfigPoint {
        let mut i = index;
        let mut take = |n: usize| {
            let r = i % n;
            i /= n;
            r
        };
        // Innermost axis first.
        let chunked = take(self.enable_chunked_prefill.len());
        let mbt = take(self.max_num_batched_tokens.len());
        let seqs = take(self.max_num_seqs.len());
        let rep = take(self.replicas.len());
        let pp = take(self.pp.len());
        let tp = take(self.tp.len());
        let hw = take(self.hardware.len());
        ConfigPoint {
            index,
            hardware: self.hardware[hw].clone(),
            tp: self.tp[tp],
            pp: self.pp[pp],
            replicas: self.replicas[rep],
            max_num_seqs: self.max_num_seqs[seqs],
            max_num_batched_tokens: self.max_num_batched_tokens[mbt],
            enable_chunked_prefill: self.enable_chunked_prefill[chunked],
        }
    }

    /// Point `index` (`< num_points()`).
    pub fn point(&self, index: usize) -> Point {
        let loads = self.workload.loads();
        Point {
            index,
            config: self.config(index / loads.len()),
            load: loads[index % loads.len()],
        }
    }
}
