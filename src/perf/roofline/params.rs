//! The roofline's parameters: efficiencies, the fixed kernel latency and the (unused)
//! overheads, and which file a GPU takes them from.

use crate::error::{Error, Result};
use crate::hardware::GpuSpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Efficiencies and overheads of the roofline model (`perf_model/roofline.toml`,
/// `perf_model/kernel_efficiency/<gpu>.toml`, or any file given explicitly).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RooflineParams {
    /// Fraction of dense tensor peak that GEMMs achieve.
    pub gemm_compute_efficiency: f64,
    /// Fraction of peak memory bandwidth that streaming achieves.
    pub memory_efficiency: f64,
    /// Fraction of dense tensor peak that attention kernels achieve.
    pub attention_compute_efficiency: f64,
    /// CPU cost per iteration, s. Not used by the model, which takes host costs from
    /// the deployment's serving stack (`perf_model/stacks/`); `servesim calibrate`
    /// fits it alongside the efficiencies, and every parameter file carries it.
    pub step_overhead_s: f64,
    /// Extra cost per decoder layer per iteration, s. Not used by the model (launch
    /// costs come from the stack file); fitted by `servesim calibrate`.
    pub per_layer_overhead_s: f64,
    /// Fixed GPU time of every GEMM and attention kernel beside its roofline time, s:
    /// grid launch, prologue, the last wave's tail (`time = latency + max(compute,
    /// memory)`). Inside a CUDA graph too; the CPU's launch cost is the stack's.
    pub kernel_latency_s: f64,
}

/// A parameter file: the five parameters, and for files derived from kernel
/// measurements the `[derivation]` record of how (read by
/// [`crate::calibrate::kernels`]; the model needs only the parameters).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamsFile {
    gemm_compute_efficiency: f64,
    memory_efficiency: f64,
    attention_compute_efficiency: f64,
    step_overhead_s: f64,
    per_layer_overhead_s: f64,
    /// Absent from files fitted before kernels had a fixed latency (the `calibrated/`
    /// in-sample fits): zero, which is what they were fitted with.
    #[serde(default)]
    kernel_latency_s: f64,
    #[serde(rename = "derivation")]
    _derivation: Option<toml::Table>,
}

/// Where a GPU's default roofline parameters come from ([`RooflineParams::source_for`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamsSource {
    /// `kernel_efficiency/<slug>.toml`: derived from kernel measurements of this GPU
    /// (or of the same silicon).
    KernelEfficiency(PathBuf),
    /// `roofline.toml`: the generic defaults (no kernel measurements of this GPU).
    Generic(PathBuf),
}

impl ParamsSource {
    /// The file.
    pub fn path(&self) -> &Path {
        match self {
            ParamsSource::KernelEfficiency(p) | ParamsSource::Generic(p) => p,
        }
    }

    /// A short phrase for descriptions and notes.
    pub fn describe(&self) -> String {
        match self {
            ParamsSource::KernelEfficiency(p) => format!(
                "efficiencies derived from kernel measurements ({})",
                p.display()
            ),
            ParamsSource::Generic(p) => format!(
                "generic efficiencies ({}; no kernel measurements of this GPU)",
                p.display()
            ),
        }
    }
}

impl RooflineParams {
    /// Load `roofline.toml` from the perf-model folder.
    pub fn load(perf_model_dir: &Path) -> Result<Self> {
        Self::from_file(&perf_model_dir.join("roofline.toml"))
    }

    /// The default parameters for `gpu`: those of [`RooflineParams::source_for`].
    ///
    /// The in-sample fits under `calibrated/` (fitted on the validation sets they are
    /// scored on) are never picked here; pass one explicitly (`--roofline-params`) to
    /// compare.
    pub fn load_for(perf_model_dir: &Path, gpu: &GpuSpec) -> Result<Self> {
        Self::from_file(Self::source_for(perf_model_dir, gpu).path())
    }

    /// Which file [`RooflineParams::load_for`] reads for `gpu`:
    /// `kernel_efficiency/<slug>.toml` of the perf-model folder when it exists (written
    /// by `servesim calibrate --kernels` from kernel measurements), else
    /// `roofline.toml`.
    pub fn source_for(perf_model_dir: &Path, gpu: &GpuSpec) -> ParamsSource {
        let path = Self::kernel_efficiency_path(perf_model_dir, gpu);
        if path.is_file() {
            ParamsSource::KernelEfficiency(path)
        } else {
            ParamsSource::Generic(perf_model_dir.join("roofline.toml"))
        }
    }

    /// The slug of `gpu`'s parameter files: the stem of its hardware file
    /// (`a100-sxm4-80gb`), else its name in lowercase with every other character than
    /// letters and digits as `-`.
    pub fn slug(gpu: &GpuSpec) -> String {
        gpu.path
            .as_deref()
            .and_then(Path::file_stem)
            .and_then(|s| s.to_str())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                gpu.name
                    .to_ascii_lowercase()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect()
            })
    }

    /// Where kernel-derived parameters for `gpu` live: `kernel_efficiency/<slug>.toml`.
    pub fn kernel_efficiency_path(perf_model_dir: &Path, gpu: &GpuSpec) -> PathBuf {
        perf_model_dir
            .join("kernel_efficiency")
            .join(format!("{}.toml", Self::slug(gpu)))
    }

    /// Where `servesim calibrate` (the fit on serving measurements) writes parameters
    /// for `gpu`: `calibrated/<slug>.toml`. Such files are in-sample fits on validation
    /// data and are read only when given explicitly.
    pub fn calibrated_path(perf_model_dir: &Path, gpu: &GpuSpec) -> PathBuf {
        perf_model_dir
            .join("calibrated")
            .join(format!("{}.toml", Self::slug(gpu)))
    }

    /// Load and check a parameter file (`roofline.toml`, a `kernel_efficiency/` or
    /// `calibrated/` file, or any file with the same keys).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let f: ParamsFile =
            toml::from_str(&text).map_err(|e| crate::error::toml_error(path, &text, &e))?;
        let p = RooflineParams {
            gemm_compute_efficiency: f.gemm_compute_efficiency,
            memory_efficiency: f.memory_efficiency,
            attention_compute_efficiency: f.attention_compute_efficiency,
            step_overhead_s: f.step_overhead_s,
            per_layer_overhead_s: f.per_layer_overhead_s,
            kernel_latency_s: f.kernel_latency_s,
        };
        for (k, v) in [
            ("gemm_compute_efficiency", p.gemm_compute_efficiency),
            ("memory_efficiency", p.memory_efficiency),
            (
                "attention_compute_efficiency",
                p.attention_compute_efficiency,
            ),
        ] {
            if !(v > 0.0 && v <= 1.5) {
                return Err(Error::input(
                    path,
                    Some(k),
                    format!("must be in (0, 1.5], got {v}"),
                ));
            }
        }
        if !(p.kernel_latency_s >= 0.0 && p.kernel_latency_s < 1e-3) {
            return Err(Error::input(
                path,
                Some("kernel_latency_s"),
                format!("must be in [0, 0.001) s, got {}", p.kernel_latency_s),
            ));
        }
        if p.step_overhead_s < 0.0 || p.per_layer_overhead_s < 0.0 {
            return Err(Error::input(path, None, "overheads must be non-negative"));
        }
        Ok(p)
    }
}
