//! A law of the engine's fused-MoE block, fitted on every expert shape measured on a GPU.
//!
//! `perf_model/measurements/moe/<gpu>__<format>.csv` times vLLM's fused-MoE block for
//! the expert shapes of about a dozen models, each split over 1–32 GPUs by tensor
//! parallelism. A model whose shape (or split) is not among them took the dense GEMM
//! law, batched over the touched experts; but the fused kernel is not a dense GEMM: its
//! grouped tiles run each expert's few rows at a fraction of the dense rate, and each
//! touched expert costs its own setup. On H100 the block-FP8 table gives 0.59 PFLOP/s
//! for the fused kernel (with its activation traffic timed apart, below) where the
//! dense FP8 GEMMs of the same GPU reach 1.2.
//!
//! The law is that of one kernel over `a` touched experts, each a `hidden × inter`
//! slice (`inter` the expert width on this GPU, three weight matrices), carrying `p`
//! token-expert pairs:
//!
//! `t = t0 + c·a + max(3·a·hidden·inter·w / B, 6·p·hidden·inter / F) + κ·p·hidden / B`
//!
//! with `w` the bytes per weight. The last term is the pairs' activation traffic, which
//! does not shrink with the expert width: each pair gathers its token's hidden state
//! into the first GEMM, the second GEMM writes a `hidden`-wide row per pair (its inner
//! dimension is only `inter`), and the weighted combine reads those rows back: about `κ`
//! bytes per pair per model-width value. At a narrow per-GPU slice (a wide model split
//! eight ways) this traffic, not the FLOPs, bounds a large batch; without it the fit
//! timed the H100 bf16 table's slices of ≤ 256 columns 29 % short at 2,048 tokens and
//! more, and the wider ones 18 % long. `t0`, `c`, `B`, `F` and `κ` are fitted on every
//! tensor-parallel row (no expert parallelism: those rows time a GPU's share of
//! experts under routing the law does not describe) of the file, under the tables'
//! balanced routing (`a = min(E, T·k)` for `T` tokens of top-`k` over `E` experts).
//! Fitted on kernel measurements only.

#[cfg(test)]
use super::fit::median;
use super::fit::{fit_log_ratio, logistic, logit};
use serde::Deserialize;
use std::path::Path;

/// One measured block: its shape on the GPU and time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct MoeLawSample {
    /// Model width.
    pub hidden: f64,
    /// Expert width on this GPU (`inter_size / moe_tp`).
    pub inter: f64,
    /// Experts the tokens touched.
    pub touched: f64,
    /// Token-expert pairs.
    pub pairs: f64,
    /// Bytes per weight element.
    pub weight_bytes: f64,
    /// Measured µs.
    pub time_us: f64,
}

/// The fitted law (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MoeLaw {
    /// Fixed cost of the block, µs.
    pub t0_us: f64,
    /// Cost per touched expert, µs.
    pub per_expert_us: f64,
    /// Weight-streaming rate, bytes/µs.
    pub bytes_per_us: f64,
    /// Compute rate, FLOP/µs.
    pub flops_per_us: f64,
    /// Activation bytes moved per token-expert pair per model-width value (`κ`).
    pub act_bytes_per_pair_value: f64,
    /// Rows fitted.
    pub samples: usize,
    /// Median relative error on them.
    pub median_rel_err: f64,
}

impl MoeLaw {
    /// Time of the block over `touched` experts of width `inter` on this GPU, with
    /// `pairs` token-expert pairs, weights of `weight_bytes` bytes, µs.
    pub(crate) fn time_us(
        &self,
        touched: f64,
        pairs: f64,
        hidden: f64,
        inter: f64,
        weight_bytes: f64,
    ) -> f64 {
        let bytes = 3.0 * touched * hidden * inter * weight_bytes;
        let flops = 6.0 * pairs * hidden * inter;
        let activations = self.act_bytes_per_pair_value * pairs * hidden;
        self.t0_us
            + self.per_expert_us * touched
            + (bytes / self.bytes_per_us).max(flops / self.flops_per_us)
            + activations / self.bytes_per_us
    }

    fn predict(&self, s: &MoeLawSample) -> f64 {
        self.time_us(s.touched, s.pairs, s.hidden, s.inter, s.weight_bytes)
    }

    /// Fit on `samples` (least squares of the log ratio), starting from the GPU's
    /// peaks, the streaming rate a fraction of the memory peak (as
    /// [`GemmModel::fit`](super::gemm::GemmModel::fit)). `None` with fewer than 16
    /// samples.
    pub(crate) fn fit(
        samples: &[MoeLawSample],
        peak_flops_per_us: f64,
        peak_bytes_per_us: f64,
    ) -> Option<Self> {
        if samples.len() < 16 {
            return None;
        }
        let unpack = |p: &[f64]| MoeLaw {
            t0_us: p[0].exp(),
            per_expert_us: p[1].exp(),
            bytes_per_us: peak_bytes_per_us.max(1.0) * logistic(p[2]),
            flops_per_us: p[3].exp(),
            act_bytes_per_pair_value: p[4].exp(),
            samples: samples.len(),
            median_rel_err: 0.0,
        };
        let x0 = [
            10.0_f64.ln(),
            0.5_f64.ln(),
            logit(0.7),
            (0.4 * peak_flops_per_us.max(1.0)).ln(),
            4.0_f64.ln(),
        ];
        let (p, err) = fit_log_ratio(
            samples,
            &x0,
            (1600, 1000),
            |s| s.time_us,
            |p, s| unpack(p).predict(s),
        );
        Some(MoeLaw {
            median_rel_err: err,
            ..unpack(&p)
        })
    }

    /// [`MoeLaw::fit`] through the fit cache (the same bits, fitted once per data).
    pub(crate) fn fit_cached(
        samples: &[MoeLawSample],
        peak_flops_per_us: f64,
        peak_bytes_per_us: f64,
    ) -> Option<Self> {
        let mut inputs = vec![peak_flops_per_us, peak_bytes_per_us];
        for s in samples {
            inputs.extend([
                s.hidden,
                s.inter,
                s.touched,
                s.pairs,
                s.weight_bytes,
                s.time_us,
            ]);
        }
        let [t0_us, per_expert_us, bytes_per_us, flops_per_us, act_bytes_per_pair_value, median_rel_err] =
            super::fit_cache::cached("moe-law-activations", &inputs, || {
                Self::fit(samples, peak_flops_per_us, peak_bytes_per_us).map(|g| {
                    [
                        g.t0_us,
                        g.per_expert_us,
                        g.bytes_per_us,
                        g.flops_per_us,
                        g.act_bytes_per_pair_value,
                        g.median_rel_err,
                    ]
                })
            })?;
        Some(MoeLaw {
            t0_us,
            per_expert_us,
            bytes_per_us,
            flops_per_us,
            act_bytes_per_pair_value,
            samples: samples.len(),
            median_rel_err,
        })
    }

    /// How the law describes itself.
    pub(crate) fn describe(&self, file: &str) -> String {
        format!(
            "fused-MoE law fitted on {} rows of {file} (t0 {:.1} µs, {:.2} µs per touched expert, {:.0} GB/s, {:.0} TFLOP/s, {:.1} activation bytes per pair per model-width value; median error {:.1}%)",
            self.samples,
            self.t0_us,
            self.per_expert_us,
            self.bytes_per_us / 1e3,
            self.flops_per_us / 1e6,
            self.act_bytes_per_pair_value,
            100.0 * self.median_rel_err
        )
    }
}

#[derive(Deserialize)]
struct Row {
    hidden_size: f64,
    inter_size: f64,
    num_experts: f64,
    topk: f64,
    moe_tp: f64,
    moe_ep: u32,
    distribution: String,
    num_tokens: f64,
    time_us: f64,
}

/// The tensor-parallel, balanced-routing rows of a fused-MoE file as law samples, with
/// weights of `weight_bytes` bytes.
pub(crate) fn samples(file: &Path, weight_bytes: f64) -> crate::error::Result<Vec<MoeLawSample>> {
    let mut rdr =
        csv::Reader::from_path(file).map_err(|e| super::measurements::csv_error(file, e))?;
    let mut out = Vec::new();
    for rec in rdr.deserialize::<Row>() {
        let r = rec.map_err(|e| super::measurements::csv_error(file, e))?;
        if r.moe_ep != 1 || r.distribution != "balanced" || r.moe_tp < 1.0 {
            continue;
        }
        out.push(MoeLawSample {
            hidden: r.hidden_size,
            inter: r.inter_size / r.moe_tp,
            touched: r.num_experts.min(r.num_tokens * r.topk),
            pairs: r.num_tokens * r.topk,
            weight_bytes,
            time_us: r.time_us,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::DataPaths;

    fn h100(format: &str, weight_bytes: f64) -> Vec<MoeLawSample> {
        let file = DataPaths::builtin()
            .perf_model
            .join(format!("measurements/moe/h100-sxm5-80gb__{format}.csv"));
        samples(&file, weight_bytes).unwrap()
    }

    #[test]
    fn the_law_predicts_an_expert_shape_it_was_not_fitted_on() {
        // Every shape of H100's block-FP8 table left out in turn: the law fitted on the
        // others times it within 25 % (median over its rows); fitted on all, within 12 %.
        let all = h100("fp8_block", 1.0);
        let peak = (989e6, 3.35e6);
        let law = MoeLaw::fit(&all, peak.0, peak.1).unwrap();
        assert!(law.median_rel_err < 0.12, "{law:?}");
        let mut shape_keys: Vec<u64> = all.iter().map(|s| s.hidden as u64).collect();
        shape_keys.sort_unstable();
        shape_keys.dedup();
        for h in shape_keys {
            let (out, fit): (Vec<_>, Vec<_>) = all.iter().partition(|s| s.hidden as u64 == h);
            let fit: Vec<MoeLawSample> = fit.into_iter().copied().collect();
            let law = MoeLaw::fit(&fit, peak.0, peak.1).unwrap();
            let errs: Vec<f64> = out
                .iter()
                .map(|s| (law.predict(s) / s.time_us - 1.0).abs())
                .collect();
            let m = median(&errs).unwrap();
            assert!(m < 0.25, "hidden {h} left out: median error {m}");
        }
    }

    #[test]
    fn narrow_and_wide_slices_are_timed_alike_at_large_batches() {
        // The activation traffic term: at 16,384 token-expert pairs and more, slices of
        // at most 256 columns (a wide model split eight ways and more) and wider ones are
        // each timed within 20 % (median signed error); a law without it timed the
        // narrow ones about 30 % short and the wide ones about 20 % long.
        let all = h100("bfloat16", 2.0);
        let law = MoeLaw::fit(&all, 989e6, 3.35e6).unwrap();
        let signed = |narrow: bool| {
            let errs: Vec<f64> = all
                .iter()
                .filter(|s| s.pairs >= 16384.0 && (s.inter <= 256.0) == narrow)
                .map(|s| law.predict(s) / s.time_us - 1.0)
                .collect();
            median(&errs).unwrap()
        };
        for narrow in [true, false] {
            let e = signed(narrow);
            assert!(e.abs() < 0.20, "narrow {narrow}: median signed error {e}");
        }
    }

    #[test]
    fn the_fused_kernel_is_slower_than_dense_gemms_and_monotone() {
        let law = MoeLaw::fit(&h100("bfloat16", 2.0), 989e6, 3.35e6).unwrap();
        // Below H100's dense bf16 peak, above a tenth of it.
        assert!(
            law.flops_per_us < 989e6 && law.flops_per_us > 98.9e6,
            "{law:?}"
        );
        // More tokens never take less time; more touched experts neither.
        let mut last = 0.0;
        for t in [1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 8192.0] {
            let a = (t * 8.0_f64).min(160.0);
            let x = law.time_us(a, 8.0 * t, 5120.0, 192.0, 2.0);
            assert!(x >= last, "{t}: {x} < {last}");
            last = x;
        }
    }
}
