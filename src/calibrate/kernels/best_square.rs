//! Efficiencies from one best square GEMM per GPU (`best-square-gemm` sets): for GPUs
//! with no GEMM-by-shape data, the largest rate PyTorch reaches on square matrices
//! (`perf_model/measurements/torch-matmul/`), scaled by what LLM-shaped GEMMs reach of
//! that rate on the GPUs that have both (`Sources::best_square_gemm`).

use super::rows::{peak_of, read_rows};
use super::{median, round_to, SetFit, SetSource};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::hardware::GpuSpec;
use serde::Deserialize;
use std::path::Path;

/// `sources.toml`'s `[best_square_gemm]`: the fraction of a best square GEMM's rate
/// that an LLM's GEMMs reach.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BestSquareGemm {
    /// Median, over GPUs with fitted GEMM tables and a best-square row, of the fitted
    /// `gemm_compute_efficiency` over the best square rate's fraction of the dense peak.
    pub llm_gemm_ratio: f64,
    /// How the ratio was obtained.
    pub note: String,
}

/// One row of a best-square table.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct BestRow {
    pub(super) gpu: String,
    pub(super) dtype: DType,
    pub(super) best_tflops: f64,
}

/// The median best rate (TFLOP/s) of `slug` in `dtype` over `rows`, and how many rows.
pub(super) fn best_of(rows: &[BestRow], slug: &str, dtype: DType) -> (Option<f64>, Vec<f64>) {
    let v: Vec<f64> = rows
        .iter()
        .filter(|r| r.gpu == slug && r.dtype == dtype)
        .map(|r| r.best_tflops)
        .collect();
    (median(&v), v)
}

/// The set's fit and the GEMM efficiency it gives the GPU `slug`: `ratio` × the median
/// best rate over the dense peak of the set's dtype.
pub(super) fn fit(
    measurements: &Path,
    s: &SetSource,
    gpu: &GpuSpec,
    slug: &str,
    ratio: f64,
) -> Result<(SetFit, Option<f64>)> {
    let path = measurements.join(&s.file);
    let rows: Vec<BestRow> = read_rows(&path)?;
    let dtype = s.dtype.unwrap_or(DType::Bf16);
    let (best, mine) = best_of(&rows, slug, dtype);
    let best = best
        .ok_or_else(|| Error::input(&path, Some("gpu"), format!("no `{slug}` rows in {dtype}")))?;
    let peak = peak_of(gpu, dtype, &path)? / 1e12;
    let ec = round_to(ratio * best / peak, 0.0001);
    let list = mine
        .iter()
        .map(|x| format!("{x:.2}"))
        .collect::<Vec<_>>()
        .join(", ");
    let detail = format!(
        "best square {dtype} GEMM {list} TFLOP/s; median {best:.2} / dense {dtype} peak {peak:.1} = {:.4}; × {ratio} (what LLM-shaped GEMMs reach of it) = {ec:.4}",
        best / peak
    );
    let fit = SetFit {
        rows_in_range: mine.len(),
        rows_fitted: mine.len(),
        alone_compute_efficiency: Some(ec),
        ..SetFit::ratio(s, dtype, rows.len(), detail)
    };
    Ok((fit, Some(ec)))
}
