//! Shape-based predictors fitted on every measured operator of one accelerator, for
//! operators (or models) that were not measured themselves.
//!
//! **GEMMs.** A linear operator multiplying `m` tokens by a `k × n` weight (`count`
//! weight instances, e.g. the experts an MoE batch touches) takes
//!
//! ```text
//! t = t0 + max( 2·m·k·n·count / (P · m/(m + m½)),   (k·n·w + m·(k+n)·a)·count / B )
//! ```
//!
//! `t0` is the fixed cost of a kernel, `P` the FLOP rate large GEMMs reach, `m½` the
//! token count at which a GEMM reaches half of it (small `m` leaves most of the tile
//! unused), `B` the bandwidth weight streaming reaches, `w` and `a` the weight and
//! activation bytes per element. The four parameters are fitted per accelerator on all
//! its measured linear operators (every model, every TP size, the LM head) by
//! minimising the squared log ratio with Nelder–Mead. Tables that sum `j` separately
//! timed kernels (q, k, v) pay `j·t0`.
//!
//! **Memory passes** (norms, rotary embedding, activation, embedding gather):
//! `t = t0 + bytes / B`, fitted the same way on the measured elementwise operators of
//! sources that use fused kernels.

use super::fit::{fit_log_ratio, logistic, logit, median, NormalEquations};
use super::profile::{GpuProfiles, OpKind};

/// One measured GEMM point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct GemmSample {
    pub m: f64,
    pub k: f64,
    pub n: f64,
    pub kernels: f64,
    pub time_us: f64,
    /// Bytes per weight element as measured (2 for 16-bit, 1 for FP8).
    pub weight_bytes: f64,
}

/// The fitted GEMM law of one accelerator (16-bit weights and activations).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GemmModel {
    /// Fixed cost per kernel, µs.
    pub t0_us: f64,
    /// Large-GEMM rate, FLOP/µs.
    pub flops_per_us: f64,
    /// Tokens at half the large-GEMM rate.
    pub m_half: f64,
    /// Weight-streaming bandwidth, bytes/µs.
    pub bytes_per_us: f64,
    /// Points fitted.
    pub samples: usize,
    /// Median relative error on the fitted points.
    pub median_rel_err: f64,
}

/// The weight side of a GEMM on one GPU.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct GemmOperand {
    /// Input and output features of one weight instance.
    pub k: f64,
    pub n: f64,
    /// Weight and activation bytes per element.
    pub weight_bytes: f64,
    pub act_bytes: f64,
    /// Multiplies the fitted FLOP rate (for formats faster than 16-bit).
    pub compute_scale: f64,
}

impl GemmOperand {
    /// A 16-bit `k × n` GEMM, as measured.
    pub(crate) fn measured(k: f64, n: f64) -> Self {
        GemmOperand {
            k,
            n,
            weight_bytes: MEASURED_ELEMENT_BYTES,
            act_bytes: MEASURED_ELEMENT_BYTES,
            compute_scale: 1.0,
        }
    }
}

/// Bytes per element of the 16-bit formats every profile was measured in.
const MEASURED_ELEMENT_BYTES: f64 = 2.0;

impl GemmModel {
    /// Time of `count` GEMMs of `m` tokens by the weight `op` in one kernel launch, µs.
    pub(crate) fn time_us(&self, m: f64, count: f64, op: &GemmOperand) -> f64 {
        let GemmOperand {
            k,
            n,
            weight_bytes: w,
            act_bytes: a,
            compute_scale,
        } = *op;
        let m = m.max(0.0);
        let eff = m / (m + self.m_half);
        let compute = if m > 0.0 {
            2.0 * m * k * n * count / (self.flops_per_us * compute_scale * eff)
        } else {
            0.0
        };
        let memory = (k * n * w + m * (k + n) * a) * count / self.bytes_per_us;
        self.t0_us + compute.max(memory)
    }

    fn predict(&self, s: &GemmSample) -> f64 {
        let op = GemmOperand {
            weight_bytes: s.weight_bytes,
            ..GemmOperand::measured(s.k, s.n)
        };
        self.time_us(s.m, 1.0, &op) + (s.kernels - 1.0) * self.t0_us
    }

    /// Fit on `samples`, starting from the accelerator's peaks (FLOP/µs and
    /// bytes/µs). The weight-streaming rate is a fraction of the memory peak (a
    /// logistic of its parameter, so the search moves smoothly below the bound): where
    /// a grid's small-M points are carried by the compute term the rate is not pinned
    /// down, and a served step streams every layer's weights from HBM (B200's FP8 grid
    /// alone fitted 15 TB/s on a 7.7 TB/s part before). `None` with fewer than 8
    /// samples.
    pub(crate) fn fit(
        samples: &[GemmSample],
        peak_flops_per_us: f64,
        peak_bytes_per_us: f64,
    ) -> Option<Self> {
        if samples.len() < 8 {
            return None;
        }
        let unpack = |p: &[f64]| GemmModel {
            t0_us: p[0].exp(),
            flops_per_us: p[1].exp(),
            m_half: p[2].exp(),
            bytes_per_us: peak_bytes_per_us.max(1.0) * logistic(p[3]),
            samples: samples.len(),
            median_rel_err: 0.0,
        };
        let x0 = [
            5.0_f64.ln(),
            (0.7 * peak_flops_per_us.max(1.0)).ln(),
            128.0_f64.ln(),
            logit(0.8),
        ];
        let (p, err) = fit_log_ratio(
            samples,
            &x0,
            (800, 600),
            |s| s.time_us,
            |p, s| unpack(p).predict(s),
        );
        Some(GemmModel {
            median_rel_err: err,
            ..unpack(&p)
        })
    }

    /// [`GemmModel::fit`] through the fit cache (the same bits, fitted once per data).
    pub(crate) fn fit_cached(
        samples: &[GemmSample],
        peak_flops_per_us: f64,
        peak_bytes_per_us: f64,
    ) -> Option<Self> {
        let mut inputs = vec![peak_flops_per_us, peak_bytes_per_us];
        for s in samples {
            inputs.extend([s.m, s.k, s.n, s.kernels, s.time_us, s.weight_bytes]);
        }
        let [t0_us, flops_per_us, m_half, bytes_per_us, median_rel_err] =
            super::fit_cache::cached("gemm-law", &inputs, || {
                Self::fit(samples, peak_flops_per_us, peak_bytes_per_us).map(|g| {
                    [
                        g.t0_us,
                        g.flops_per_us,
                        g.m_half,
                        g.bytes_per_us,
                        g.median_rel_err,
                    ]
                })
            })?;
        Some(GemmModel {
            t0_us,
            flops_per_us,
            m_half,
            bytes_per_us,
            samples: samples.len(),
            median_rel_err,
        })
    }

    /// The GEMM points of `gpu` (linear operators and the LM head), thinned to at most
    /// about 25 sizes per table (every size ≤ 16, then log-spaced).
    pub(crate) fn samples(gpu: &GpuProfiles) -> Vec<GemmSample> {
        let mut out = Vec::new();
        for (_, _, op) in gpu.all_ops() {
            if !matches!(op.kind, OpKind::Linear | OpKind::LmHead) {
                continue;
            }
            for (m, t) in thinned_points(op.raw.clone()) {
                out.push(GemmSample {
                    m,
                    k: op.in_features,
                    n: op.out_features,
                    kernels: op.kernels,
                    time_us: t,
                    weight_bytes: MEASURED_ELEMENT_BYTES,
                });
            }
        }
        out
    }
}

/// The `(tokens, µs)` points of one GEMM table a law is fitted on: the positive ones,
/// by tokens, every size up to 16 and then sizes about 1.3× apart (so a densely
/// measured table does not outweigh the others).
pub(crate) fn thinned_points(mut pts: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    pts.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let mut last_kept = 0.0_f64;
    pts.retain(|&(m, t)| {
        if m <= 0.0 || t <= 0.0 || (m > 16.0 && m < last_kept * 1.3) {
            return false;
        }
        last_kept = m;
        true
    });
    pts
}

/// How a fitted GEMM law describes itself: `GEMM law fitted on N <what> (t0 …)`.
pub(crate) fn law_label(name: &str, g: &GemmModel, what: &str) -> String {
    format!(
        "{name} fitted on {} {what} (t0 {:.1} µs, {:.0} TFLOP/s, m½ {:.0}, {:.0} GB/s; median error {:.1}%)",
        g.samples,
        g.t0_us,
        g.flops_per_us / 1e6,
        g.m_half,
        g.bytes_per_us / 1e3,
        g.median_rel_err * 100.0
    )
}

/// A memory-pass law `t = t0 + bytes / B`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StreamModel {
    /// Fixed cost per kernel, µs.
    pub t0_us: f64,
    /// Bandwidth, bytes/µs.
    pub bytes_per_us: f64,
    /// Median relative error on the fitted points (0 when not fitted).
    pub median_rel_err: f64,
}

impl StreamModel {
    /// Time to read and write `bytes`, µs.
    pub(crate) fn time_us(&self, bytes: f64) -> f64 {
        self.t0_us + bytes.max(0.0) / self.bytes_per_us
    }

    /// Fit on the elementwise operators of sources with fused kernels: every
    /// `(bytes moved, µs)` point. `None` without at least 8 points or a positive rate.
    pub(crate) fn fit(gpu: &GpuProfiles) -> Option<Self> {
        let mut pts = Vec::new();
        for (m, _, op) in gpu.all_ops() {
            if !m.meta.fused_elementwise
                || !matches!(
                    op.kind,
                    OpKind::Elementwise | OpKind::Embedding | OpKind::Final
                )
            {
                continue;
            }
            let per_token = (op.in_features + op.out_features) * MEASURED_ELEMENT_BYTES;
            for &(tokens, t) in &op.raw {
                if tokens > 0.0 && t > 0.0 {
                    pts.push((tokens * per_token, t));
                }
            }
        }
        if pts.len() < 8 {
            return None;
        }
        let mut ne = NormalEquations::new(2);
        for &(b, t) in &pts {
            ne.add(&[1.0, b], t, 1.0 / (t * t));
        }
        let c = ne.solve_non_negative()?;
        if c[1] <= 0.0 {
            return None;
        }
        let mut s = StreamModel {
            t0_us: c[0],
            bytes_per_us: 1.0 / c[1],
            median_rel_err: 0.0,
        };
        let errs: Vec<f64> = pts
            .iter()
            .map(|&(b, t)| (s.time_us(b) / t - 1.0).abs())
            .collect();
        s.median_rel_err = median(&errs).unwrap_or(0.0);
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A law of 4 µs, 300 TFLOP/s, m½ 100 streaming `bytes_per_us`.
    fn synthetic_law(bytes_per_us: f64) -> GemmModel {
        GemmModel {
            t0_us: 4.0,
            flops_per_us: 3e8,
            m_half: 100.0,
            bytes_per_us,
            samples: 0,
            median_rel_err: 0.0,
        }
    }

    /// 16-bit points of every `(k, n)` at every `m`, timed by `truth`.
    fn samples_of(truth: &GemmModel, shapes: &[(f64, f64)], ms: &[f64]) -> Vec<GemmSample> {
        shapes
            .iter()
            .flat_map(|&(k, n)| {
                ms.iter().map(move |&m| {
                    let s = GemmSample {
                        m,
                        k,
                        n,
                        kernels: 1.0,
                        time_us: 0.0,
                        weight_bytes: 2.0,
                    };
                    GemmSample {
                        time_us: truth.predict(&s),
                        ..s
                    }
                })
            })
            .collect()
    }

    /// The cached fit is the fresh fit, bit for bit, whether the entry was there or not.
    #[test]
    fn cached_fit_equals_the_fresh_fit() {
        let truth = GemmModel {
            t0_us: 3.0,
            flops_per_us: 2e8,
            m_half: 64.0,
            bytes_per_us: 1.5e6,
            samples: 0,
            median_rel_err: 0.0,
        };
        let samples: Vec<GemmSample> = [1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 8192.0]
            .iter()
            .flat_map(|&m| {
                [(4096.0, 4096.0), (4096.0, 14336.0)].map(|(k, n)| {
                    let mut s = GemmSample {
                        m,
                        k,
                        n,
                        kernels: 1.0,
                        time_us: 0.0,
                        weight_bytes: 2.0,
                    };
                    s.time_us = truth.predict(&s) * (1.0 + 0.01 * (m.ln() - 3.0));
                    s
                })
            })
            .collect();
        let fresh = GemmModel::fit(&samples, 3e8, 2e6).unwrap();
        for _ in 0..2 {
            let cached = GemmModel::fit_cached(&samples, 3e8, 2e6).unwrap();
            assert_eq!(format!("{cached:?}"), format!("{fresh:?}"));
            assert_eq!(cached.t0_us.to_bits(), fresh.t0_us.to_bits());
            assert_eq!(cached.m_half.to_bits(), fresh.m_half.to_bits());
        }
    }

    #[test]
    fn fit_recovers_a_synthetic_law() {
        let samples = samples_of(
            &synthetic_law(1.5e6),
            &[
                (4096.0, 6144.0),
                (4096.0, 4096.0),
                (4096.0, 28672.0),
                (14336.0, 4096.0),
            ],
            &[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0],
        );
        let g = GemmModel::fit(&samples, 5e8, 2e6).unwrap();
        assert!(g.median_rel_err < 0.01, "{g:?}");
        for s in &samples {
            assert!((g.predict(s) / s.time_us - 1.0).abs() < 0.03);
        }
    }

    /// Grid points timed as if the weights streamed at twice the memory peak (a
    /// benchmark whose weights stay in L2 between repeats) fit a law that streams them
    /// at the peak at most: a served step reads every layer's weights from HBM.
    #[test]
    fn fitted_weight_streaming_never_beats_the_memory_peak() {
        let peak_bytes_per_us = 1.0e6;
        let samples = samples_of(
            &synthetic_law(2.0 * peak_bytes_per_us),
            &[(8192.0, 8192.0), (8192.0, 28672.0)],
            &[1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0],
        );
        let g = GemmModel::fit(&samples, 5e8, peak_bytes_per_us).unwrap();
        assert!(g.bytes_per_us <= peak_bytes_per_us, "{g:?}");
        assert!(g.bytes_per_us > 0.9 * peak_bytes_per_us, "{g:?}");
    }

    #[test]
    fn time_is_monotone_and_finite() {
        let g = synthetic_law(1.5e6);
        let mut last = 0.0;
        for m in [0.0, 1.0, 2.0, 10.0, 1e3, 1e6] {
            let t = g.time_us(m, 1.0, &GemmOperand::measured(4096.0, 4096.0));
            assert!(t.is_finite() && t >= last, "{m}: {t}");
            last = t;
        }
    }
}
