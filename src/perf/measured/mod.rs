//! The measured-data latency model: iteration time composed from operator timings
//! measured on real accelerators (`perf_model/profiles/`, converted from Vidur and
//! LLMServingSim by `scripts/convert_profiles.py`).
//!
//! For a deployment on an accelerator with profiles, every operator of an iteration is
//! predicted from the best data available, and [`LatencyModel::describe`] says which:
//!
//! | component | exact profile (same layer shape and TP size) | other models on the same GPU |
//! |---|---|---|
//! | linear layers | measured table over tokens | measured table of the same GEMM shape, else the GEMM law fitted on all linear tables of the GPU (`gemm.rs`) |
//! | attention | law fitted on the model's grid (`attention.rs`) | law fitted on all grids of the GPU; roofline where no grid covers |
//! | MoE block | measured tokens × activated experts table | expert GEMMs over the expected touched experts |
//! | norms, rotary, activation | measured tables (fused-kernel sources only) | bandwidth law fitted on the GPU's fused kernels |
//! | LM head, sampler | measured tables by sequences | GEMM law; sampler table scaled by vocabulary |
//! | TP all-reduce, PP send | measured NCCL table where the GPU has one, else α-β on the cluster link | same |
//! | host work, launches, CUDA-graph padding | the serving stack (`perf_model/stacks/`, [`crate::stack`]) | same |
//!
//! Tables never fall off their edge: they are made monotone, floored at the smallest
//! measured size and extended linearly beyond the largest (`table.rs`).
//!
//! Accelerators without model profiles whose kernels were measured through an engine
//! (`perf_model/measurements/`: H200, B200, GB200, L40S) use the same composition on
//! those tables alone ([`MeasuredTier::KernelTables`]): linear layers from the GEMM
//! grid (the GEMM law fitted on it beyond its edge), attention from the engine's
//! attention law, the MoE block from the fused-MoE table, elementwise passes and the
//! sampler at the roofline bandwidth. Accelerators with neither use the roofline model
//! (see [`crate::perf::select_latency_model`]).
//!
//! **Kernel times.** Every source times kernels on the GPU (the vLLM 0.19 profiles
//! one kernel at a time in eager mode, Vidur per kernel), without the CPU's launch gaps.
//! They are summed back to back, which is how a CUDA graph runs them; the serving
//! stack's execution model adds launch-bound time for eager iterations and host work
//! (see [`crate::stack`]).

mod attention;
mod attention_fit;
mod build;
mod collectives;
mod comm;
mod fit;
mod fit_cache;
mod fp8_rate;
mod gemm;
mod measurements;
mod moe_law;
mod ops;
mod profile;
mod profile_cache;
mod table;

#[cfg(test)]
mod tests;

use super::{Bound, LatencyModel, OpCost, StepShape};
use crate::deployment::Deployment;
use crate::dtype::DType;
use crate::error::Result;
use crate::paths::DataPaths;
use crate::perf::roofline::RooflineParams;
use crate::units::SimDuration;
use std::path::{Path, PathBuf};

/// Options for building a [`MeasuredModel`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeasuredOptions {
    /// Models whose profiles are ignored (as `org/name`, case-insensitive), to test the
    /// shape-based prediction on a model that was measured.
    pub exclude_models: Vec<String>,
    /// Never use the deployment's own profile, even when one matches.
    pub shape_based_only: bool,
}

/// How much of the prediction comes from the deployment's own measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeasuredTier {
    /// The model (same layer shape) was profiled at this TP size on this accelerator.
    ExactProfile,
    /// Other models were profiled on this accelerator; operators are predicted from
    /// their shapes.
    ShapeBased,
    /// No model was profiled on this accelerator, but its kernels were measured through
    /// an engine (`perf_model/measurements/`: the GEMM grid, attention, the fused-MoE
    /// block); operators are predicted from those, the rest from the roofline.
    KernelTables,
}

/// Iteration time from measured operator timings (see the module docs).
#[derive(Clone, Debug)]
pub struct MeasuredModel {
    composition: ops::Composition,
    tier: MeasuredTier,
    description: String,
}

impl MeasuredModel {
    /// The folder of measured profiles under `paths`.
    pub fn profiles_dir(paths: &DataPaths) -> PathBuf {
        paths.perf_model.join("profiles")
    }

    /// The profile folder name of the deployment's accelerator: the stem of its
    /// hardware file (`h100-sxm5-80gb`).
    pub fn hardware_slug(d: &Deployment) -> Option<String> {
        d.gpu()
            .path
            .as_ref()
            .and_then(|p| p.file_stem())
            .map(|s| s.to_string_lossy().into_owned())
    }

    /// The link calibrated on one system's runs for the deployment's accelerator
    /// (`profiles/<gpu>/network/link_calibration.toml`), if that file exists.
    pub fn link_calibration_file(d: &Deployment, paths: &DataPaths) -> Option<PathBuf> {
        let file = Self::profiles_dir(paths)
            .join(Self::hardware_slug(d)?)
            .join("network")
            .join(profile::LINK_CALIBRATION_FILE);
        file.is_file().then_some(file)
    }

    /// Accelerators with at least one model profile under `paths`, sorted.
    pub fn profiled_hardware(paths: &DataPaths) -> Vec<String> {
        let dir = Self::profiles_dir(paths);
        let mut v: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter(|e| has_profile_toml(&e.path()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The measured model of `d`, or `None` when its accelerator has neither profiles
    /// nor engine-measured kernel tables.
    pub fn new(d: &Deployment, paths: &DataPaths, opts: &MeasuredOptions) -> Result<Option<Self>> {
        let Some(slug) = Self::hardware_slug(d) else {
            return Ok(None);
        };
        let dir = Self::profiles_dir(paths);
        let gpu = profile::GpuProfiles::load(&dir, &slug, &opts.exclude_models)?;
        let engine_attention = measurements::load_attention(&paths.perf_model, &slug)?;
        let kernel_tables_only = !gpu.has_models();
        // The engine-measured GEMM grid serves a GPU without profiles, or a stack whose
        // kernel generation some of the GPU's profiles lack; where every profile is of
        // the stack's generation, the GEMM law fitted on them describes this box and
        // generation (and the grid, another box, is not read).
        let needs_grid = kernel_tables_only
            || d.stack
                .kernel_generation
                .is_some_and(|g| gpu.models.iter().any(|m| m.meta.kernel_generation != g));
        let engine_gemm = if needs_grid {
            measurements::load_gemm(&paths.perf_model, &slug, measurements::GridFormat::Bf16)?
        } else {
            None
        };
        let twin = if kernel_tables_only {
            compute_twin(d, paths, &dir, engine_gemm.as_ref(), opts)?
        } else {
            None
        };
        if kernel_tables_only
            && engine_attention.is_empty()
            && engine_gemm.is_none()
            && !measurements::moe_path(&paths.perf_model, &slug, measurements::MoeFormat::Bf16)
                .is_file()
        {
            return Ok(None);
        }
        // The GPU's collective measurements, read once: only groups of several GPUs
        // exchange anything (a single GPU never reads them).
        let collectives = if d.tp > 1 || d.ep > 1 {
            collectives::GpuCollectives::load(&paths.perf_model, &slug)?
        } else {
            collectives::GpuCollectives::default()
        };
        // The library's own tests are checked against the GPU's own link (see
        // `collectives`); the engine's tables are taken as measured.
        let line_rate = d.cluster.gpu.intra_node.bandwidth_bytes_per_s;
        let engine_all_reduce = match d
            .stack
            .custom_all_reduce
            .as_ref()
            .and_then(|c| c.measured_implementation.as_deref())
        {
            Some(imp) if d.tp > 1 => collectives.tables(
                collectives::CollectiveRows::EngineGraph(imp),
                d.engine_version.as_deref(),
                line_rate,
            ),
            _ => Vec::new(),
        };
        let library = comm::LibraryTests::of(&collectives, d.tp, d.ep, line_rate);
        // No profile holds FP8 GEMMs: the FP8 grid times FP8 and NVFP4 matrices wherever
        // it was measured through an engine of the stack's kernel generation (read only
        // for such deployments: a 16-bit one never needs it).
        let fp8_matrices = matches!(d.matrix_dtype(), DType::Fp8 | DType::Nvfp4);
        let fp8_grid = if fp8_matrices {
            measurements::load_gemm(&paths.perf_model, &slug, measurements::GridFormat::Fp8)?
        } else {
            None
        };
        let (engine_gemm_fp8, fp8_other) = match fp8_grid {
            Some(g) if d.stack.kernel_generation == Some(g.generation) => (Some(g), None),
            other => (None, other),
        };
        // A grid of another generation still says what FP8 gains over 16-bit on this
        // GPU: the stack's 16-bit law is scaled by that, not by the peak ratio.
        let fp8_rate = match &fp8_other {
            Some(f) => {
                measurements::load_gemm(&paths.perf_model, &slug, measurements::GridFormat::Bf16)?
                    .and_then(|b| {
                        fp8_rate::Fp8Rate::from_grids(
                            f,
                            &b,
                            d.peak_flops(DType::Fp8) / 1e6,
                            d.peak_flops(DType::Bf16) / 1e6,
                            d.gpu().memory_bandwidth_bytes_per_s() / 1e6,
                        )
                    })
            }
            None => None,
        };
        let inputs = build::Inputs {
            twin: twin.as_ref(),
            engine_gemm: engine_gemm.as_ref(),
            engine_gemm_fp8: engine_gemm_fp8.as_ref(),
            fp8_rate: fp8_rate.as_ref(),
            engine_all_reduce: &engine_all_reduce,
            library: &library,
            engine_attention: &engine_attention,
            gpu: &gpu,
            paths,
            exclude_models: &opts.exclude_models,
            roofline: RooflineParams::load_for(&paths.perf_model, d.gpu())?,
            roofline_file: {
                let src = RooflineParams::source_for(&paths.perf_model, d.gpu());
                let p = src.path();
                p.strip_prefix(&paths.perf_model)
                    .unwrap_or(p)
                    .display()
                    .to_string()
            },
            shape_based_only: opts.shape_based_only,
        };
        let built = build::build(d, &inputs);
        let tier = if built.exact.is_some() {
            MeasuredTier::ExactProfile
        } else if kernel_tables_only {
            MeasuredTier::KernelTables
        } else {
            MeasuredTier::ShapeBased
        };
        let mut parts = vec![format!(
            "measured ({}) {} on {} × TP{} PP{}",
            match (&built.exact, tier) {
                (Some(p), _) => format!("exact profile: {p}"),
                (None, MeasuredTier::KernelTables) => {
                    format!("kernel tables of {slug}, no model profiles")
                }
                (None, _) => format!("shape-based on {slug}"),
            },
            d.model.name,
            d.gpu().name,
            d.tp,
            d.pp
        )];
        for (component, sources) in &built.sources {
            parts.push(format!("{component}: {}", sources.join(" + ")));
        }
        Ok(Some(MeasuredModel {
            composition: built.composition,
            tier,
            description: parts.join("; "),
        }))
    }

    /// Which tier of data the model rests on.
    pub fn tier(&self) -> MeasuredTier {
        self.tier
    }

    /// The iteration time of `shape` split by component, seconds: `linear`, `moe`,
    /// `attention`, `elementwise`, `all_reduce`, `expert_exchange`, `head` (embedding, final norm, LM
    /// head, sampler), `pp_send`, `overhead`.
    pub fn breakdown(&self, shape: &StepShape) -> Vec<(&'static str, f64)> {
        let b = self.composition.evaluate(shape);
        vec![
            ("linear", b.linear * 1e-6),
            ("moe", b.moe * 1e-6),
            ("attention", b.attention * 1e-6),
            ("elementwise", b.elementwise * 1e-6),
            ("all_reduce", b.all_reduce * 1e-6),
            ("expert_exchange", b.expert_exchange * 1e-6),
            ("head", b.head * 1e-6),
            ("pp_send", b.pp_send * 1e-6),
            ("overhead", b.overhead * 1e-6),
        ]
    }

    /// The iteration time of `shape`, seconds.
    pub fn step_time_s(&self, shape: &StepShape) -> f64 {
        let c = &self.composition;
        if shape.prefills.is_empty() && shape.num_decodes == 1 && !shape.follow_on {
            // One decode: the shape is its context alone.
            let context = f64::from(shape.decode_context_max);
            return c.single_decode.get(context, || c.evaluate(shape).total()) * 1e-6;
        }
        c.evaluate(shape).total() * 1e-6
    }
}

fn has_profile_toml(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .any(|org| {
            std::fs::read_dir(org.path())
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .any(|m| m.path().join("profile.toml").is_file())
        })
}

impl LatencyModel for MeasuredModel {
    fn step_time(&self, shape: &StepShape) -> SimDuration {
        if shape.is_empty() {
            return SimDuration::ZERO;
        }
        super::step_duration(self.step_time_s(shape))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    /// The components of [`MeasuredModel::breakdown`] that take any time. FLOPs and
    /// bytes are not known; the bound is known only where the component is one by
    /// nature (links for `all_reduce`, `expert_exchange`, `pp_send`; host time for
    /// `overhead`); kernels' measured times have none.
    fn op_breakdown(&self, shape: &StepShape) -> Vec<OpCost> {
        self.breakdown(shape)
            .into_iter()
            .filter(|(_, t)| *t > 0.0)
            .map(|(name, time_s)| OpCost {
                name: name.to_owned(),
                count: None,
                flops: None,
                bytes: None,
                time_s,
                bound: match name {
                    "all_reduce" | "expert_exchange" | "pp_send" => Some(Bound::Communication),
                    "overhead" => Some(Bound::Overhead),
                    _ => None,
                },
            })
            .collect()
    }
}

/// A GPU's compute twin (`compute_twin` in its device file): the same chip, enabled
/// units and clocks, differing only in memory.
pub(crate) struct Twin {
    /// The twin's operator profiles.
    pub profiles: profile::GpuProfiles,
    /// This GPU's memory bandwidth over the twin's.
    pub bandwidth_ratio: f64,
    /// Whether the twin's GEMM law times this GPU's GEMMs: where this GPU's grid (if
    /// any) is of another kernel generation than the stack's and the twin has profiles
    /// of the stack's generation.
    pub times_gemms: bool,
}

/// The compute twin of `d`'s GPU, whose profiles exist: the same chip at the same
/// clocks runs the same kernels, only faster where they stream memory. Its fused
/// elementwise kernels always stand for this GPU's (their fixed cost is the chip's);
/// its GEMM law only where this GPU has no GEMM grid of the stack's kernel generation
/// ([`Twin::times_gemms`]).
fn compute_twin(
    d: &Deployment,
    paths: &DataPaths,
    dir: &std::path::Path,
    grid: Option<&measurements::GemmGrid>,
    opts: &MeasuredOptions,
) -> Result<Option<Twin>> {
    let Some(twin) = &d.gpu().compute_twin else {
        return Ok(None);
    };
    let profiles = profile::GpuProfiles::load(dir, twin, &opts.exclude_models)?;
    if !profiles.has_models() {
        return Ok(None);
    }
    let times_gemms = d.stack.kernel_generation.is_some_and(|generation| {
        !grid.is_some_and(|g| g.generation == generation)
            && profiles
                .models
                .iter()
                .any(|m| m.meta.kernel_generation == generation)
    });
    let catalog = crate::hardware::HardwareCatalog::load(&paths.hardware_dir())?;
    let Some(spec) = catalog.by_file_stem(twin) else {
        return Err(crate::error::Error::input(
            d.gpu().path.clone().unwrap_or_default(),
            Some("compute_twin"),
            format!("no device file {twin}.toml in {}", catalog.dir().display()),
        ));
    };
    let bandwidth_ratio =
        d.gpu().memory_bandwidth_bytes_per_s() / spec.memory_bandwidth_bytes_per_s();
    Ok(Some(Twin {
        profiles,
        bandwidth_ratio,
        times_gemms,
    }))
}
