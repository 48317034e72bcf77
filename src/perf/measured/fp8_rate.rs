//! What FP8 matrices gain over 16-bit ones on a GPU, as measured, for stacks whose own
//! kernels were not measured in FP8.
//!
//! A stack of another kernel generation than the GPU's FP8 GEMM grid (a 2024 engine on
//! H100, whose grid was measured through vLLM 0.19) times its FP8 and NVFP4 matrices
//! with the 16-bit GEMM law of its own kernels, the compute term scaled up. The tensor
//! peaks say FP8 runs at twice the 16-bit rate; the GPUs reach less than that (clocks
//! under load, the quantization of the activations): on the grids measured through one
//! engine in both formats, the FP8 law's compute rate is 1.5–1.9× the 16-bit law's on
//! Hopper and Ada, below 1× on B200. That measured ratio scales the 16-bit law instead
//! of the peak ratio.

use super::gemm::GemmModel;
use super::measurements::GemmGrid;

/// The FP8-over-16-bit compute rate of one GPU, from its two engine GEMM grids.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fp8Rate {
    /// The FP8 law's compute rate over the 16-bit law's.
    pub ratio: f64,
    /// Where it comes from, for the model's description.
    pub label: String,
}

impl Fp8Rate {
    /// The ratio of the compute rates of the GEMM laws fitted on `fp8` and `bf16`,
    /// measured through the same engine (`None` when the grids' engines differ or a law
    /// cannot be fitted). `peak_*_flops_per_us` and `bytes_per_us` seed the fits.
    pub(crate) fn from_grids(
        fp8: &GemmGrid,
        bf16: &GemmGrid,
        peak_fp8_flops_per_us: f64,
        peak_bf16_flops_per_us: f64,
        bytes_per_us: f64,
    ) -> Option<Self> {
        if fp8.generation != bf16.generation {
            return None;
        }
        let f = GemmModel::fit_cached(&fp8.law_samples(), peak_fp8_flops_per_us, bytes_per_us)?;
        let b = GemmModel::fit_cached(&bf16.law_samples(), peak_bf16_flops_per_us, bytes_per_us)?;
        let ratio = f.flops_per_us / b.flops_per_us;
        (ratio.is_finite() && ratio > 0.0).then(|| Fp8Rate {
            ratio,
            label: format!(
                "FP8 at {ratio:.2}× the 16-bit compute rate, as the GEMM laws fitted on {} ({:.0} TFLOP/s) and {} ({:.0} TFLOP/s) have it",
                fp8.source,
                f.flops_per_us / 1e6,
                bf16.source,
                b.flops_per_us / 1e6
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::DataPaths;
    use crate::perf::measured::measurements::{load_gemm, GridFormat};

    fn rate(slug: &str, peak_bf16_tflops: f64, bw_gb_s: f64) -> Fp8Rate {
        let pm = DataPaths::builtin().perf_model;
        let f = load_gemm(&pm, slug, GridFormat::Fp8).unwrap().unwrap();
        let b = load_gemm(&pm, slug, GridFormat::Bf16).unwrap().unwrap();
        Fp8Rate::from_grids(
            &f,
            &b,
            2.0 * peak_bf16_tflops * 1e6,
            peak_bf16_tflops * 1e6,
            bw_gb_s * 1e3,
        )
        .unwrap()
    }

    #[test]
    fn hopper_fp8_gains_less_than_its_peak_ratio() {
        // H100 SXM: 989.4 TFLOP/s bf16 dense, 3.35 TB/s. The laws' compute rates are
        // ~1,208 (FP8) and ~774 (bf16) TFLOP/s, 1.56× (the grids' largest GEMMs reach
        // ~1,445 and ~816 at their 90th percentile, 1.77×): well short of the peaks' 2×.
        let r = rate("h100-sxm5-80gb", 989.4, 3350.0);
        assert!(r.ratio > 1.4 && r.ratio < 2.0, "{r:?}");
        assert!(r.label.contains("h100-sxm5-80gb__fp8.csv"), "{}", r.label);
    }

    #[test]
    fn grids_of_different_engines_give_no_ratio() {
        let pm = DataPaths::builtin().perf_model;
        let f = load_gemm(&pm, "h100-sxm5-80gb", GridFormat::Fp8)
            .unwrap()
            .unwrap();
        let mut b = load_gemm(&pm, "h100-sxm5-80gb", GridFormat::Bf16)
            .unwrap()
            .unwrap();
        b.generation = match f.generation {
            crate::stack::KernelGeneration::V0 => crate::stack::KernelGeneration::V1,
            crate::stack::KernelGeneration::V1 => crate::stack::KernelGeneration::V0,
        };
        assert!(Fp8Rate::from_grids(&f, &b, 1.0, 1.0, 1.0).is_none());
    }
}
