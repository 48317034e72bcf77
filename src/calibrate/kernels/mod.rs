//! Roofline efficiencies from public kernel measurements (`servesim calibrate
//! --kernels`), for GPUs that have no measured operator profiles.
//!
//! This module reads kernel timings from `perf_model/measurements/` (GEMM and
//! attention tables, vendor micro-benchmarks) as `perf_model/kernel_efficiency/sources.toml`
//! lists them, and writes `perf_model/kernel_efficiency/<hardware>.toml`, which
//! [`RooflineParams::load_for`] picks by default. It never reads a serving benchmark or
//! a validation set: the efficiencies it derives are out-of-sample for every validation.
//!
//! # What the numbers mean
//!
//! The roofline costs a GEMM or attention kernel `L + max(FLOPs / (peak · e_c), bytes /
//! (bandwidth · e_m))` with the GPU's datasheet peak and bandwidth and a fixed kernel
//! latency `L` (launch, grid synchronisation, tile prologue, the last wave's tail). The
//! fit asks which efficiencies and latency make that same cost — [`linear_work`] for a
//! GEMM, [`attention_layer_work`] for an attention layer, exactly as
//! [`Roofline`](crate::perf::roofline::Roofline) computes them — reproduce the measured
//! kernel times, so the derived numbers mean what the model uses them for:
//!
//! * `gemm_compute_efficiency` (`e_c` of linear operators) from GEMM tables;
//! * `attention_compute_efficiency` (`e_c` of attention) from attention tables
//!   (prefill is where it binds);
//! * `memory_efficiency` (`e_m` of every operator) jointly from the memory-bound rows
//!   of all of them (weight streaming at few tokens, KV reads of decode attention);
//! * `kernel_latency_s` (`L`) jointly with them from the GEMM tables, whose sizes run
//!   from latency-dominated to streaming-dominated.
//!
//! # Procedure
//!
//! 1. **Rows.** GEMM rows with both feature counts `n, k` in
//!    [[`MIN_FEATURES`], [`MAX_FEATURES`]] (the per-GPU widths of LLM layers; toy
//!    shapes and vocabulary-sized ones are left out); every attention row. Each row
//!    becomes `(FLOPs / peak, bytes / bandwidth, measured time)`.
//! 2. **Floor.** A set's *floor* is its fastest measured row; rows are fitted when their
//!    ideal time at datasheet peak is at least [`FLOOR_MULTIPLE`] × the floor (rows at
//!    the launch floor say nothing about a rate). A set fitted without a latency
//!    (`fit_latency = false`) keeps [`FLOOR_MULTIPLE_WITHOUT_LATENCY`], where the
//!    latency is at most ~10 % of a row's time.
//! 3. **Sides.** Prefill attention rows are fitted where they are compute-bound at
//!    datasheet peaks (they inform the attention efficiency only); decode attention
//!    rows where they are memory-bound and read at least [`MIN_DECODE_BYTES`] (they
//!    inform the memory efficiency only).
//! 4. **Fit.** Minimise `Σ_sets mean_rows ln(predicted / measured)²` (every set weighs
//!    the same) over the efficiencies in [[`MIN_EFFICIENCY`], 1] on a grid of step 0.01,
//!    then of step 0.0005 around the best point. Given `e_m`, the GEMM and attention
//!    compute efficiencies separate, so the coarse search is exhaustive, not a local
//!    search: the result does not depend on a start point.
//!    The kernel latency is searched on a grid of [`LATENCY_STEP_S`] up to
//!    [`MAX_LATENCY_S`] (every fourth step, then the steps around the best; each
//!    candidate scored at its best efficiencies on a 0.02 grid over every eighth row);
//!    the best and its two neighbours are fitted as above on every row, and the one
//!    with the smallest loss is written.
//!    An efficiency is fitted only if at least [`MIN_BOUND_ROWS`] fitted rows lie on its
//!    side of the ridge point at datasheet peaks (a criterion independent of the fit);
//!    otherwise it keeps `roofline.toml`'s value, and the file says so.
//! 5. **Other sources.** Vendor micro-benchmarks (one large GEMM, STREAM triad) give a
//!    ratio to the datasheet figure directly (median over the rows of one metric, per
//!    GPU from the full-node figure). A GPU may take another's result when it is the
//!    same silicon (`transfer_from`, with the reason in `sources.toml`).
//!
//! Sets with `fit = false` (other dtypes, for comparison) are fitted alone and reported
//! but do not enter the written efficiencies. Every set is also fitted alone, so the
//! file shows how far the kernel classes agree on the shared memory efficiency.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::hardware::{GpuSpec, HardwareCatalog};
use crate::perf::roofline::{attention_layer_work, linear_work, RooflineParams};
use crate::perf::StepShape;
use serde::Deserialize;
use std::path::{Path, PathBuf};

mod best_square;
mod file;
mod fit;
mod rows;
#[cfg(test)]
mod tests;

pub use best_square::BestSquareGemm;
use fit::*;
use rows::*;

pub use file::{read, to_toml};

/// Smallest GEMM feature count fitted (both `n` and `k`).
pub const MIN_FEATURES: f64 = 1024.0;
/// Largest GEMM feature count fitted.
pub const MAX_FEATURES: f64 = 32768.0;
/// Rows are fitted when their ideal time is at least this many times the set's floor
/// (the fixed kernel latency is fitted, so rows where it is a large share of the time
/// inform it; rows at the floor itself inform nothing).
pub const FLOOR_MULTIPLE: f64 = 3.0;
/// [`FLOOR_MULTIPLE`] of sets fitted without a kernel latency.
pub const FLOOR_MULTIPLE_WITHOUT_LATENCY: f64 = 10.0;
/// Largest fixed kernel latency searched, s.
pub const MAX_LATENCY_S: f64 = 12e-6;
/// Grid step of the kernel latency, s.
pub const LATENCY_STEP_S: f64 = 0.25e-6;
/// Efficiency grid step while screening kernel latencies (then refined as usual).
const SCREEN_STEP: f64 = 0.02;
/// Kernel latencies are screened on every this-many-th fitted row.
const SCREEN_STRIDE: usize = 8;
/// Decode-attention rows are fitted when they read at least this many bytes: twice
/// the largest on-chip cache of the GPUs here (MI300X's 256 MB Infinity Cache; NVIDIA
/// L2 is 40–128 MB). The attention harness repeats one call on the same KV cache, so
/// a smaller cache is read from on-chip memory, faster than the datasheet bandwidth,
/// which a serving step (every layer's KV distinct) does not see. The GEMM harness
/// replays six weight copies, so its rows need no such cut.
pub const MIN_DECODE_BYTES: f64 = 512e6;
/// Fitted rows that must lie on an efficiency's side of the ridge point (at datasheet
/// peaks) for it to be derived rather than kept at its default.
pub const MIN_BOUND_ROWS: usize = 20;
/// Lower bound of every efficiency.
pub const MIN_EFFICIENCY: f64 = 0.05;
/// Activation (and KV) bytes per element: the tables measure 16-bit activations, and
/// the roofline charges activations at the deployment's 16-bit activation dtype.
const ACT_BYTES: f64 = 2.0;
/// The command that writes the files (recorded in them).
pub const COMMAND: &str = "servesim calibrate --kernels";

/// `perf_model/kernel_efficiency/sources.toml`: what each GPU's efficiencies come from.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    /// What LLM-shaped GEMMs reach of a best square GEMM's rate (for
    /// `best-square-gemm` sets).
    pub best_square_gemm: Option<BestSquareGemm>,
    /// One entry per GPU, in the order the files are written.
    pub gpu: Vec<GpuSource>,
}

/// The kernel data of one GPU, or the GPU whose result it takes.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSource {
    /// The hardware file's stem (`h100-sxm5-80gb`).
    pub hardware: String,
    /// Kernel measurement sets of this GPU.
    #[serde(default)]
    pub set: Vec<SetSource>,
    /// Take the efficiencies of this GPU (hardware stem) instead: the same silicon.
    pub transfer_from: Option<String>,
    /// How a transfer carries the memory efficiency over (default: as a fraction of
    /// each part's own bandwidth).
    #[serde(default)]
    pub memory_transfer: MemoryTransfer,
    /// Why (required with `transfer_from`), or what else to know.
    pub note: Option<String>,
}

/// How a transferred memory efficiency carries over to a part with other memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MemoryTransfer {
    /// The same fraction of each part's own datasheet bandwidth: the source part's
    /// streams are limited by its memory.
    #[default]
    Fraction,
    /// The same achieved rate (bytes per second), up to the new part's datasheet
    /// bandwidth: the source part's streams are limited on the SMs' side, which the
    /// same die brings along.
    Rate,
}

impl MemoryTransfer {
    /// Its name in `sources.toml` and in the written file.
    pub fn name(self) -> &'static str {
        match self {
            MemoryTransfer::Fraction => "fraction",
            MemoryTransfer::Rate => "rate",
        }
    }
}

/// What a set of kernel measurements is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KernelKind {
    /// `m,n,k,time_us`: one GEMM `[m × k]·[k × n]`.
    Gemm,
    /// `batch_size,prompt_tokens,num_heads,num_kv_heads,head_dim,time_us`: one
    /// attention layer over a batch of uncached prompts.
    AttentionPrefill,
    /// `batch_size,context_tokens,num_heads,num_kv_heads,head_dim,time_us`: one
    /// attention layer for a batch of decodes.
    AttentionDecode,
    /// `metric,one_tile,full_node,unit`: vendor micro-benchmarks (one large GEMM rate,
    /// STREAM triad bandwidth).
    Microbenchmarks,
    /// `gpu,dtype,best_tflops`: the best square GEMM rate per GPU and contributor
    /// (`best_square.rs`).
    BestSquareGemm,
}

impl KernelKind {
    /// The name used in the files.
    pub fn name(self) -> &'static str {
        match self {
            KernelKind::Gemm => "gemm",
            KernelKind::AttentionPrefill => "attention-prefill",
            KernelKind::AttentionDecode => "attention-decode",
            KernelKind::Microbenchmarks => "microbenchmarks",
            KernelKind::BestSquareGemm => "best-square-gemm",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            KernelKind::Gemm,
            KernelKind::AttentionPrefill,
            KernelKind::AttentionDecode,
            KernelKind::Microbenchmarks,
            KernelKind::BestSquareGemm,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

fn yes() -> bool {
    true
}

/// One file of kernel measurements.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSource {
    /// What the rows are.
    pub kind: KernelKind,
    /// Path under `perf_model/measurements/`.
    pub file: String,
    /// GEMM weight dtype (its peak and weight bytes); default bf16. Attention is bf16.
    pub dtype: Option<DType>,
    /// Whether the set enters the written efficiencies (`false`: reported only).
    #[serde(default = "yes")]
    pub fit: bool,
    /// Whether its rows are fitted with a fixed kernel latency (default: yes). Without,
    /// rows whose ideal time is under [`FLOOR_MULTIPLE_WITHOUT_LATENCY`] × the floor
    /// are left out, since only a latency term could explain them; the reason goes in
    /// `note`.
    #[serde(default = "yes")]
    pub fit_latency: bool,
    /// Micro-benchmarks: the metric that gives the GEMM rate (TFLOP/s).
    pub gemm_metric: Option<String>,
    /// Micro-benchmarks: the metric that gives the memory bandwidth (TB/s).
    pub memory_metric: Option<String>,
    /// What to know about the set (caveats).
    pub note: Option<String>,
}

/// The result for one GPU: the parameters and how they were obtained.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelEfficiency {
    /// The parameters as written (overheads are `roofline.toml`'s: unused by the model).
    pub params: RooflineParams,
    /// How.
    pub derivation: Derivation,
}

/// Where a GPU's efficiencies come from.
#[derive(Clone, Debug, PartialEq)]
pub struct Derivation {
    /// Hardware file stem.
    pub hardware: String,
    /// Catalog name.
    pub name: String,
    /// The command that wrote the file.
    pub command: String,
    /// Dense bf16 peak of the hardware file, TFLOP/s.
    pub peak_bf16_tflops: f64,
    /// Datasheet memory bandwidth, GB/s.
    pub bandwidth_gb_per_s: f64,
    /// Efficiencies derived from kernel measurements.
    pub derived: Vec<String>,
    /// Efficiencies kept at `roofline.toml`'s values (no data binds them).
    pub kept_default: Vec<String>,
    /// The GPU whose result this is, for a transfer.
    pub transfer_from: Option<String>,
    /// How the transfer carried the memory efficiency over (rate transfers only).
    pub memory_transfer: Option<MemoryTransfer>,
    /// Why the transfer holds, or other notes.
    pub note: Option<String>,
    /// Every kernel set read.
    pub sets: Vec<SetFit>,
}

/// What one kernel set contributed, and how well the roofline reproduces it.
#[derive(Clone, Debug, PartialEq)]
pub struct SetFit {
    /// What the rows are.
    pub kind: KernelKind,
    /// Path under `perf_model/measurements/`.
    pub file: String,
    /// Dtype of the peak used.
    pub dtype: DType,
    /// Whether the set entered the written efficiencies.
    pub used: bool,
    /// Rows in the file.
    pub rows: usize,
    /// Rows in the shape range (GEMM: `n, k` in range; others: all).
    pub rows_in_range: usize,
    /// Fastest measured row, µs (table sets).
    pub floor_us: Option<f64>,
    /// Rows fitted (ideal time ≥ `FLOOR_MULTIPLE` × floor; micro-benchmarks: the rows
    /// of the two metrics).
    pub rows_fitted: usize,
    /// Fitted rows bound by compute at the written efficiencies.
    pub compute_bound_rows: Option<usize>,
    /// Fitted rows bound by memory at the written efficiencies.
    pub memory_bound_rows: Option<usize>,
    /// The set fitted alone: its compute efficiency (`None`: not bound by enough rows
    /// to say).
    pub alone_compute_efficiency: Option<f64>,
    /// The set fitted alone: its memory efficiency.
    pub alone_memory_efficiency: Option<f64>,
    /// Median |predicted / measured − 1| over the fitted rows with the written
    /// efficiencies (sets not used: with their own), %.
    pub median_abs_err_pct: Option<f64>,
    /// 90th percentile of the same, %.
    pub p90_abs_err_pct: Option<f64>,
    /// Median |error| over all rows in range, fixed-latency rows included, %.
    pub median_abs_err_in_range_pct: Option<f64>,
    /// Micro-benchmarks: the arithmetic, in words.
    pub detail: Option<String>,
    /// Caveats from `sources.toml`.
    pub note: Option<String>,
}

impl SetFit {
    /// A set whose efficiencies are ratios of figures (micro-benchmarks, best square
    /// GEMMs): no fit and no per-row error; `rows` read, every one in range and fitted,
    /// until the caller says otherwise.
    fn ratio(s: &SetSource, dtype: DType, rows: usize, detail: String) -> Self {
        SetFit {
            kind: s.kind,
            file: s.file.clone(),
            dtype,
            used: s.fit,
            rows,
            rows_in_range: rows,
            floor_us: None,
            rows_fitted: rows,
            compute_bound_rows: None,
            memory_bound_rows: None,
            alone_compute_efficiency: None,
            alone_memory_efficiency: None,
            median_abs_err_pct: None,
            p90_abs_err_pct: None,
            median_abs_err_in_range_pct: None,
            detail: Some(detail),
            note: s.note.clone(),
        }
    }
}

/// Where the sources and the written files live.
pub fn folder(perf_model: &Path) -> PathBuf {
    perf_model.join("kernel_efficiency")
}

/// Read `kernel_efficiency/sources.toml`.
pub fn load_sources(perf_model: &Path) -> Result<Sources> {
    let path = folder(perf_model).join("sources.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let s: Sources =
        toml::from_str(&text).map_err(|e| crate::error::toml_error(&path, &text, &e))?;
    for g in &s.gpu {
        if g.transfer_from.is_some() && (!g.set.is_empty() || g.note.is_none()) {
            return Err(Error::input(
                &path,
                Some("transfer_from"),
                format!(
                    "{}: a transfer has no sets of its own and says why in `note`",
                    g.hardware
                ),
            ));
        }
    }
    Ok(s)
}

/// The catalog device whose hardware file stem is `slug`.
pub fn gpu_by_slug<'a>(catalog: &'a HardwareCatalog, slug: &str) -> Result<&'a GpuSpec> {
    catalog
        .entries()
        .iter()
        .find(|g| RooflineParams::slug(g) == slug)
        .ok_or_else(|| Error::Config(format!("no hardware file `{slug}.toml` in the catalog")))
}

/// Derive the efficiencies of every GPU in `sources`, in order (transfers after their
/// source is derived). `defaults` (`roofline.toml`) fills what the data cannot bind.
pub fn derive_all(
    perf_model: &Path,
    catalog: &HardwareCatalog,
    sources: &Sources,
    defaults: &RooflineParams,
) -> Result<Vec<KernelEfficiency>> {
    sources
        .gpu
        .iter()
        .map(|g| derive(perf_model, catalog, sources, defaults, &g.hardware))
        .collect()
}

/// Derive the efficiencies of the GPU `slug` of `sources`.
pub fn derive(
    perf_model: &Path,
    catalog: &HardwareCatalog,
    sources: &Sources,
    defaults: &RooflineParams,
    slug: &str,
) -> Result<KernelEfficiency> {
    let entry = sources
        .gpu
        .iter()
        .find(|g| g.hardware == slug)
        .ok_or_else(|| {
            Error::Config(format!("`{slug}` is not in kernel_efficiency/sources.toml"))
        })?;
    let gpu = gpu_by_slug(catalog, slug)?;
    let mut derivation = Derivation {
        hardware: slug.to_owned(),
        name: gpu.name.clone(),
        command: COMMAND.to_owned(),
        peak_bf16_tflops: gpu
            .dense_bf16_tflops
            .or(gpu.dense_fp16_tflops)
            .unwrap_or(0.0),
        bandwidth_gb_per_s: gpu.memory_bandwidth_gb_per_s,
        derived: Vec::new(),
        kept_default: Vec::new(),
        transfer_from: None,
        memory_transfer: None,
        note: entry.note.clone(),
        sets: Vec::new(),
    };
    if let Some(from) = &entry.transfer_from {
        if from == slug {
            return Err(Error::Config(format!("{slug} transfers from itself")));
        }
        let src = derive(perf_model, catalog, sources, defaults, from)?;
        derivation.derived = src.derivation.derived;
        derivation.kept_default = src.derivation.kept_default;
        derivation.transfer_from = Some(from.clone());
        let mut params = src.params;
        if entry.memory_transfer == MemoryTransfer::Rate {
            let rate = src.params.memory_efficiency * src.derivation.bandwidth_gb_per_s;
            params.memory_efficiency =
                round_to((rate / gpu.memory_bandwidth_gb_per_s).min(1.0), 0.0005);
            derivation.memory_transfer = Some(MemoryTransfer::Rate);
        }
        return Ok(KernelEfficiency { params, derivation });
    }
    let measurements = perf_model.join("measurements");
    let mut prepared = Vec::new();
    let mut micro: Option<(Option<f64>, Option<f64>)> = None;
    for s in &entry.set {
        match s.kind {
            KernelKind::Microbenchmarks => {
                let (fit, ec, em) = microbenchmarks(&measurements, s, gpu)?;
                if s.fit {
                    micro = Some((ec, em));
                }
                derivation.sets.push(fit);
            }
            KernelKind::BestSquareGemm => {
                let ratio = sources.best_square_gemm.as_ref().ok_or_else(|| {
                    Error::Config(format!(
                        "{slug}: a `best-square-gemm` set needs `[best_square_gemm]` in kernel_efficiency/sources.toml"
                    ))
                })?;
                let (fit, ec) =
                    best_square::fit(&measurements, s, gpu, slug, ratio.llm_gemm_ratio)?;
                if s.fit {
                    micro.get_or_insert((None, None)).0 = ec;
                }
                derivation.sets.push(fit);
            }
            _ => prepared.push(prepare(&measurements, s, gpu)?),
        }
    }
    // The joint fit of the table sets.
    let used: Vec<&Prepared> = prepared.iter().filter(|p| p.source.fit).collect();
    let start = Effs {
        gemm: defaults.gemm_compute_efficiency,
        memory: defaults.memory_efficiency,
        attention: defaults.attention_compute_efficiency,
        latency_s: defaults.kernel_latency_s,
    };
    let fit = fit_identified(&used, start);
    let mut params = *defaults;
    let mut derived = [false; 4];
    if !used.is_empty() {
        params.gemm_compute_efficiency = fit.effs.gemm;
        params.memory_efficiency = fit.effs.memory;
        params.attention_compute_efficiency = fit.effs.attention;
        params.kernel_latency_s = fit.effs.latency_s;
        derived = fit.free;
    }
    if let Some((ec, em)) = micro {
        if let Some(v) = ec {
            params.gemm_compute_efficiency = v;
            derived[0] = true;
        }
        if let Some(v) = em {
            params.memory_efficiency = v;
            derived[1] = true;
        }
    }
    for (i, name) in [
        "gemm_compute_efficiency",
        "memory_efficiency",
        "attention_compute_efficiency",
        "kernel_latency_s",
    ]
    .into_iter()
    .enumerate()
    {
        if derived[i] {
            derivation.derived.push(name.to_owned());
        } else {
            derivation.kept_default.push(name.to_owned());
        }
    }
    let written = Effs {
        gemm: params.gemm_compute_efficiency,
        memory: params.memory_efficiency,
        attention: params.attention_compute_efficiency,
        latency_s: params.kernel_latency_s,
    };
    for p in &prepared {
        // Alone at the written kernel latency: the efficiencies each set would give.
        let alone = fit_at_latency(
            &[p],
            Effs {
                latency_s: written.latency_s,
                ..start
            },
        );
        let (ec_alone, em_alone) = (
            alone.free[p.compute_index()].then(|| alone.effs.get(p.compute_index())),
            alone.free[1].then_some(alone.effs.memory),
        );
        let at = if p.source.fit { written } else { alone.effs };
        let (ec, em) = (at.get(p.compute_index()), at.memory);
        let lat = written.latency_s;
        let errs: Vec<f64> = p.fitted.iter().map(|x| x.abs_err(ec, em, lat)).collect();
        let in_range: Vec<f64> = p.in_range.iter().map(|x| x.abs_err(ec, em, lat)).collect();
        let compute_bound = p.fitted.iter().filter(|x| x.compute_bound(ec, em)).count();
        derivation.sets.push(SetFit {
            kind: p.source.kind,
            file: p.source.file.clone(),
            dtype: p.dtype,
            used: p.source.fit,
            rows: p.rows,
            rows_in_range: p.in_range.len(),
            floor_us: Some(p.floor_us),
            rows_fitted: p.fitted.len(),
            compute_bound_rows: Some(compute_bound),
            memory_bound_rows: Some(p.fitted.len() - compute_bound),
            alone_compute_efficiency: ec_alone,
            alone_memory_efficiency: em_alone,
            median_abs_err_pct: quantile(&errs, 0.5).map(|e| round_to(e * 100.0, 0.1)),
            p90_abs_err_pct: quantile(&errs, 0.9).map(|e| round_to(e * 100.0, 0.1)),
            median_abs_err_in_range_pct: quantile(&in_range, 0.5).map(|e| round_to(e * 100.0, 0.1)),
            detail: None,
            note: p.source.note.clone(),
        });
    }
    // Sets in the order of sources.toml.
    let order = |f: &SetFit| {
        entry
            .set
            .iter()
            .position(|s| s.file == f.file && s.kind == f.kind)
    };
    derivation.sets.sort_by_key(order);
    Ok(KernelEfficiency { params, derivation })
}

/// Round `x` to a multiple of `step`.
pub(super) fn round_to(x: f64, step: f64) -> f64 {
    let r = (x / step).round() * step;
    // The decimal places of `step`, so the result prints as that decimal.
    let places = (-step.log10() - 1e-9).ceil().max(0.0) as i32;
    let f = 10f64.powi(places);
    (r * f).round() / f
}

/// The median of `v` (the mean of the middle two for an even count; `None` when empty).
pub(super) fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => None,
        n if n % 2 == 1 => Some(s[n / 2]),
        n => Some(0.5 * (s[n / 2 - 1] + s[n / 2])),
    }
}

/// The `q` quantile (nearest rank below) of `v`.
fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((s.len() - 1) as f64 * q).round() as usize;
    Some(s[i])
}
