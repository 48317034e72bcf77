//! Attention laws from the measured grids: fitting one per profile or per accelerator,
//! and transferring an accelerator's law to a GPU whose grids lack prefill or decode
//! measurements.

use super::attention::{AttentionLaw, AttnGeometry};
use super::build::{Inputs, MEASURED_ELEMENT_BYTES};
use super::fit::median;
use super::profile::{GpuProfiles, ModelProfile, ProfileShape, TpProfile};
use crate::deployment::Deployment;
use crate::dtype::DType;
use crate::hardware::HardwareCatalog;

pub(crate) fn profile_geometry(p: &ProfileShape, tp: u32) -> AttnGeometry {
    let t = tp as u64;
    let kv = p.num_key_value_heads.div_ceil(t).max(1) as f64;
    let d = p.head_dim as f64;
    AttnGeometry {
        q_heads: (p.num_attention_heads.div_ceil(t)).max(1) as f64,
        kv_heads: kv,
        pair_flops: 4.0 * d,
        kv_bytes_per_token: 2.0 * kv * d * MEASURED_ELEMENT_BYTES,
        window: None,
    }
}

fn pure_alpha<'a>(tps: impl Iterator<Item = &'a TpProfile>) -> f64 {
    let v: Vec<f64> = tps
        .flat_map(|t| t.skew.iter())
        .filter(|(mixed, _, _)| !mixed)
        .map(|(_, _, a)| *a)
        .collect();
    median(&v).unwrap_or(0.0).max(0.0)
}

/// Fit the attention law of one profile at one TP size.
pub(crate) fn fit_profile_attention(m: &ModelProfile, t: &TpProfile) -> Option<AttentionLaw> {
    let g = profile_geometry(&m.meta.shape, t.tp);
    let rows: Vec<_> = t.attention.iter().map(|r| (g, *r)).collect();
    AttentionLaw::fit(
        &rows,
        m.meta.attention_kernel == "unified",
        pure_alpha(std::iter::once(t)),
    )
}

/// Fit one attention law on every grid of the accelerator (only the unified-kernel
/// grids where there are any: kernels of different engines are not mixed).
pub(crate) fn fit_gpu_attention(gpu: &GpuProfiles) -> Option<AttentionLaw> {
    let has_rows = |m: &ModelProfile| m.tps.iter().any(|t| !t.attention.is_empty());
    let unified = gpu
        .models
        .iter()
        .any(|m| m.meta.attention_kernel == "unified" && has_rows(m));
    let mut rows = Vec::new();
    let mut tps = Vec::new();
    for m in &gpu.models {
        if (m.meta.attention_kernel == "unified") != unified {
            continue;
        }
        for t in &m.tps {
            let g = profile_geometry(&m.meta.shape, t.tp);
            rows.extend(t.attention.iter().map(|r| (g, *r)));
            tps.push(t);
        }
    }
    AttentionLaw::fit(&rows, unified, pure_alpha(tps.into_iter()))
}

/// Fit an attention law on the GPU's attention measured through vLLM's backend
/// ([`super::measurements::load_attention`]), for prefill and for decode on the rows
/// of the deployment's head size whose per-GPU KV-head count is nearest its own (on a
/// log scale; several counts at equal distance are all kept): how well the kernel fills
/// the GPU depends on the heads it has to spread, so rows of a distant head count would
/// bias the law. The rows are pure prefill or pure decode batches, so a mixed batch is
/// costed as its prefill part plus its decode part (the law is fitted as for separate
/// kernels: nothing in the rows shows how one kernel shares the GPU between the two).
///
/// The decode part reads the KV cache no faster than `peak_bytes_per_us`, the GPU's
/// memory bandwidth ([`AttentionLaw::with_decode_bandwidth_bound`]).
pub(crate) fn fit_engine_attention(
    rows: &[(AttnGeometry, super::profile::AttentionRow)],
    g: &AttnGeometry,
    peak_bytes_per_us: f64,
) -> Option<AttentionLaw> {
    let mut picked = Vec::new();
    for prefill in [true, false] {
        let of_kind: Vec<_> = rows
            .iter()
            .filter(|(x, r)| (r.prefill_chunk > 0.0) == prefill && x.pair_flops == g.pair_flops)
            .collect();
        let distance = |x: &AttnGeometry| (x.kv_heads / g.kv_heads).ln().abs();
        let nearest = of_kind
            .iter()
            .map(|(x, _)| distance(x))
            .fold(f64::INFINITY, f64::min);
        picked.extend(
            of_kind
                .into_iter()
                .filter(|(x, _)| distance(x) <= nearest + 1e-9)
                .copied(),
        );
    }
    AttentionLaw::fit(&picked, false, 0.0)
        .map(|l| l.with_decode_bandwidth_bound(peak_bytes_per_us, &picked))
}

/// For an accelerator whose grids lack prefill or decode measurements: the law of the
/// accelerator with the most unified-kernel (vLLM V1) profiles, transferred by the
/// ratio of memory bandwidths and peak FLOP rates.
pub(crate) fn reference_attention(
    d: &Deployment,
    inp: &Inputs<'_>,
) -> Option<(AttentionLaw, String)> {
    let dir = inp.paths.perf_model.join("profiles");
    let mut best: Option<(usize, String)> = None;
    for slug in super::MeasuredModel::profiled_hardware(inp.paths) {
        if slug == inp.gpu.slug {
            continue;
        }
        let n = count_unified_profiles(&dir.join(&slug));
        if n > 0 && best.as_ref().is_none_or(|b| n > b.0) {
            best = Some((n, slug));
        }
    }
    let (_, slug) = best?;
    let reference = GpuProfiles::load(&dir, &slug, inp.exclude_models).ok()?;
    let law = fit_gpu_attention(&reference)?;
    let catalog = HardwareCatalog::load(&inp.paths.hardware_dir()).ok()?;
    let ref_gpu = catalog.by_file_stem(&slug)?;
    let bw_ratio = ref_gpu.memory_bandwidth_bytes_per_s() / d.gpu().memory_bandwidth_bytes_per_s();
    let ref_flops = ref_gpu
        .peak_flops(DType::Bf16)
        .or(ref_gpu.peak_flops(DType::Fp16))?;
    let flops_ratio = ref_flops / d.peak_flops(d.act_dtype);
    if !(bw_ratio.is_finite() && flops_ratio.is_finite() && bw_ratio > 0.0 && flops_ratio > 0.0) {
        return None;
    }
    let label = format!(
        "law fitted on all {slug} grids ({} rows, median error {:.1}%), transferred by bandwidth ratio {:.2} and FLOP ratio {:.2}",
        law.rows,
        law.median_rel_err * 100.0,
        bw_ratio,
        flops_ratio
    );
    Some((law.transferred(bw_ratio, flops_ratio), label))
}

/// Profiles under `dir` (one accelerator) that declare unified attention kernels.
fn count_unified_profiles(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for org in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for m in std::fs::read_dir(org.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let text = std::fs::read_to_string(m.path().join("profile.toml")).unwrap_or_default();
            if text.contains("attention_kernel = \"unified\"") {
                n += 1;
            }
        }
    }
    n
}
