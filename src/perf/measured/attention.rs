//! Attention time from a physical law fitted on measured grids.
//!
//! The measured grids (`attention.csv`: prefill chunk × cached context × decode batch ×
//! decode context) are not interpolated directly: an iteration may hold several chunks
//! and decodes with unequal contexts, which no grid point describes. Instead each grid
//! fits a law in physical units (FLOPs, bytes, keys), which then applies to any batch
//! and to other models on the same accelerator (the features scale with heads and head
//! width). Per layer on one GPU, with `H` query and `K` KV heads per GPU:
//!
//! * `F_p = Σ_chunks 2(d_qk+d_v)·H·n·(c + (n+1)/2)`: causal prefill FLOPs of a chunk of
//!   `n` tokens after `c` cached ones; `B_p = Σ (c+n)·kv_bytes`: the KV it reads;
//! * `F_d = 2(d_qk+d_v)·H·Σctx`, `B_d = Σctx·kv_bytes`: the decodes;
//! * `L = max(c+n, ctx)`: the longest sequence, whose key range one thread block walks
//!   alone (no split over keys inside a varlen prefill kernel).
//!
//! **Prefill and mixed batches**: `t = a + max(b_p·F_p + c_p·B_p + b_d·F_d + e·n_dec·H,
//! g·L)`. The `max` is the work bound (all SMs busy) against the critical path of the
//! longest sequence; with a few long decodes in a mixed batch the path dominates, which
//! is what the measured skew data shows (`alpha` near 1 for 2 decodes, near 0 for 128).
//! In `unified` kernels (vLLM V1: one kernel for the whole batch) the decodes of a
//! mixed batch are in that kernel (`b_d`, `e`); in `separate` kernels (vLLM V0,
//! Sarathi) they run in the decode kernel below and the two times add.
//!
//! **Decode-only batches** (split-KV decode kernels): `t = a_d + c_d·B_d + e_d·n_dec·K
//! + α·c_d·kv_bytes·n_dec·(ctx_max − ctx_mean)`, with `α` the median measured skew
//! coefficient (`t_skew = t_mean + α·(t_max − t_mean)`, ≈ 0.03).
//!
//! All coefficients are non-negative (NNLS), so the time never decreases with more
//! tokens or more context. `g` is found by a search over a log grid with alternating
//! assignment of rows to the two branches of the `max`.

use super::fit::{median, NormalEquations};
use super::profile::AttentionRow;
use crate::perf::StepShape;

/// Attention geometry of one layer on one GPU.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct AttnGeometry {
    /// Query heads per GPU.
    pub q_heads: f64,
    /// KV heads per GPU (1 for a latent cache).
    pub kv_heads: f64,
    /// FLOPs per (query, key, query head): `2·(d_qk + d_v)`.
    pub pair_flops: f64,
    /// KV-cache bytes per token per layer on one GPU.
    pub kv_bytes_per_token: f64,
    /// Sliding window, tokens.
    pub window: Option<f64>,
}

impl AttnGeometry {
    fn cap(&self, x: f64) -> f64 {
        self.window.map_or(x, |w| x.min(w))
    }
}

/// The features of one batch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Features {
    f_p: f64,
    b_p: f64,
    l_p: f64,
    has_prefill: bool,
    n_d: f64,
    f_d: f64,
    b_d: f64,
    l_d: f64,
    skew_bytes: f64,
}

fn features<I: IntoIterator<Item = (f64, f64)>>(
    g: &AttnGeometry,
    prefills: I,
    n_d: f64,
    ctx_sum: f64,
    ctx_max: f64,
) -> Features {
    let mut f = Features::default();
    for (n, c) in prefills {
        if n <= 0.0 {
            continue;
        }
        f.has_prefill = true;
        let attended = g.cap(c + (n + 1.0) / 2.0);
        f.f_p += g.pair_flops * g.q_heads * n * attended;
        let keys = g.cap(c + n);
        f.b_p += keys * g.kv_bytes_per_token;
        f.l_p = f.l_p.max(keys);
    }
    if n_d > 0.0 {
        let sum = match g.window {
            Some(w) => ctx_sum.min(n_d * w),
            None => ctx_sum,
        };
        let max = g.cap(ctx_max).max(sum / n_d);
        f.n_d = n_d;
        f.f_d = g.pair_flops * g.q_heads * sum;
        f.b_d = sum * g.kv_bytes_per_token;
        f.l_d = max;
        f.skew_bytes = n_d * (max - sum / n_d) * g.kv_bytes_per_token;
    }
    f
}

fn row_features(g: &AttnGeometry, r: &AttentionRow) -> Features {
    features(
        g,
        [(r.prefill_chunk, r.kv_prefill)],
        r.n_decode,
        r.n_decode * r.kv_decode,
        r.kv_decode,
    )
}

/// `t = a + max(b_p·F_p + c_p·B_p + b_d·F_d + e·n_dec·H, g·L)`, µs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PrefillLaw {
    /// `[a, b_p, c_p, b_d, e]`.
    pub coef: [f64; 5],
    /// µs per key of the longest sequence.
    pub path_us_per_key: f64,
}

impl PrefillLaw {
    fn work(&self, x: &[f64; 5]) -> f64 {
        self.coef[1..].iter().zip(&x[1..]).map(|(c, v)| c * v).sum()
    }

    fn time(&self, x: &[f64; 5], path: f64) -> f64 {
        self.coef[0] + self.work(x).max(self.path_us_per_key * path)
    }
}

/// `t = a_d + c_d·B_d + e_d·n_dec·K`, µs, plus the skew term; no less than
/// `a_d + B_d / peak` where a memory peak bounds it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct DecodeLaw {
    /// `[a_d, c_d, e_d]`.
    pub coef: [f64; 3],
    /// Measured skew coefficient (0 when not measured).
    pub alpha: f64,
    /// µs per KV byte at the GPU's memory peak (0: unbounded).
    pub floor_us_per_byte: f64,
}

impl DecodeLaw {
    fn time_us(&self, bytes: f64, skew_bytes: f64, seq_heads: f64) -> f64 {
        let law = self.coef[0]
            + self.coef[1] * (bytes + self.alpha * skew_bytes)
            + self.coef[2] * seq_heads;
        law.max(self.coef[0] + self.floor_us_per_byte * bytes)
    }
}

/// The fitted attention law of one grid (or of all grids of one accelerator).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AttentionLaw {
    /// One kernel for the whole batch (vLLM V1) rather than prefill and decode kernels.
    pub unified: bool,
    pub prefill: Option<PrefillLaw>,
    pub decode: Option<DecodeLaw>,
    /// Rows fitted.
    pub rows: usize,
    /// Median relative error on the fitted rows.
    pub median_rel_err: f64,
}

/// Rows used per fit at most (a deterministic stride sample of larger grids).
const MAX_FIT_ROWS: usize = 3000;

impl AttentionLaw {
    /// Fit on measured rows, each with the geometry it was measured at. `alpha` is the
    /// decode skew coefficient. Returns `None` when neither part can be fitted.
    pub(crate) fn fit(
        rows: &[(AttnGeometry, AttentionRow)],
        unified: bool,
        alpha: f64,
    ) -> Option<Self> {
        let pre: Vec<(Features, [f64; 5], f64, f64)> = stride(
            rows.iter()
                .filter(|(_, r)| r.prefill_chunk > 0.0 && (unified || r.n_decode == 0.0)),
            MAX_FIT_ROWS,
        )
        .map(|(g, r)| {
            let f = row_features(g, r);
            let x = prefill_x(g, &f, unified);
            (
                f,
                x,
                f.l_p.max(if unified { f.l_d } else { 0.0 }),
                r.time_us,
            )
        })
        .collect();
        let dec: Vec<([f64; 3], f64)> = stride(
            rows.iter()
                .filter(|(_, r)| r.prefill_chunk == 0.0 && r.n_decode > 0.0),
            MAX_FIT_ROWS,
        )
        .map(|(g, r)| {
            let f = row_features(g, r);
            ([1.0, f.b_d, f.n_d * g.kv_heads], r.time_us)
        })
        .collect();
        let prefill = (pre.len() >= 6).then(|| fit_prefill(&pre)).flatten();
        let decode = (dec.len() >= 4)
            .then(|| {
                let mut ne = NormalEquations::new(3);
                for (x, y) in &dec {
                    ne.add(x, *y, 1.0 / (y * y));
                }
                ne.solve_non_negative().map(|c| DecodeLaw {
                    coef: [c[0], c[1], c[2]],
                    alpha: alpha.clamp(0.0, 1.0),
                    floor_us_per_byte: 0.0,
                })
            })
            .flatten();
        if prefill.is_none() && decode.is_none() {
            return None;
        }
        let mut law = AttentionLaw {
            unified,
            prefill,
            decode,
            rows: pre.len() + dec.len(),
            median_rel_err: 0.0,
        };
        let errs: Vec<f64> = rows
            .iter()
            .filter_map(|(g, r)| law.row_time_us(g, r).map(|p| (p / r.time_us - 1.0).abs()))
            .collect();
        law.median_rel_err = median(&errs).unwrap_or(0.0);
        Some(law)
    }

    /// The law with its decode part reading the KV cache no faster than
    /// `peak_bytes_per_us`: a decode batch takes at least its fixed time plus its KV
    /// bytes at that rate. A law fitted on rows small enough for their KV to stay in the
    /// GPU's cache can price a byte below what memory delivers (the L40S's, with a
    /// 96 MB L2, fits 1.4 TB/s where its GDDR6 gives 0.86); the bound holds large
    /// batches to the memory roofline and leaves the law as fitted wherever it
    /// predicts more.
    /// The median error is recomputed on the fitted `rows`.
    pub(crate) fn with_decode_bandwidth_bound(
        mut self,
        peak_bytes_per_us: f64,
        rows: &[(AttnGeometry, AttentionRow)],
    ) -> Self {
        if let Some(d) = self.decode.as_mut() {
            if peak_bytes_per_us.is_finite() && peak_bytes_per_us > 0.0 {
                d.floor_us_per_byte = 1.0 / peak_bytes_per_us;
            }
        }
        let errs: Vec<f64> = rows
            .iter()
            .filter_map(|(g, r)| self.row_time_us(g, r).map(|p| (p / r.time_us - 1.0).abs()))
            .collect();
        self.median_rel_err = median(&errs).unwrap_or(self.median_rel_err);
        self
    }

    /// The same law on another accelerator: byte terms scaled by `bw_ratio` and FLOP
    /// and per-key terms by `flops_ratio` (reference rate / target rate); fixed and
    /// per-sequence terms unchanged.
    pub(crate) fn transferred(&self, bw_ratio: f64, flops_ratio: f64) -> Self {
        let prefill = self.prefill.map(|p| PrefillLaw {
            coef: [
                p.coef[0],
                p.coef[1] * flops_ratio,
                p.coef[2] * bw_ratio,
                p.coef[3] * flops_ratio,
                p.coef[4],
            ],
            path_us_per_key: p.path_us_per_key * flops_ratio,
        });
        let decode = self.decode.map(|d| DecodeLaw {
            coef: [d.coef[0], d.coef[1] * bw_ratio, d.coef[2]],
            alpha: d.alpha,
            floor_us_per_byte: d.floor_us_per_byte * bw_ratio,
        });
        AttentionLaw {
            prefill,
            decode,
            ..self.clone()
        }
    }

    /// Predicted time of one measured row, µs.
    pub(crate) fn row_time_us(&self, g: &AttnGeometry, r: &AttentionRow) -> Option<f64> {
        self.eval(g, &row_features(g, r), self.unified, 1.0)
    }

    /// [`AttentionLaw::time_us_reading`] of the measured kernel itself.
    #[cfg(test)]
    pub(crate) fn time_us(
        &self,
        g: &AttnGeometry,
        shape: &StepShape,
        separate: bool,
    ) -> Option<f64> {
        self.time_us_reading(g, shape, separate, 1.0)
    }

    /// Time of one layer's attention for `shape` on one GPU, µs; `None` when the
    /// batch needs a part of the law that could not be fitted. `separate`: a mixed
    /// batch runs a prefill kernel and then a decode kernel, whatever the grid's engine
    /// did: a law fitted on one-kernel grids then times the chunks alone by its prefill
    /// part and the decodes by its decode part. `decode_reads`: the decode kernel moves
    /// that many times the KV bytes the measured kernel did (1; more for an engine's
    /// fallback kernel, which reads a key/value head once per query head:
    /// [`crate::stack::AttentionFallback`]).
    pub(crate) fn time_us_reading(
        &self,
        g: &AttnGeometry,
        shape: &StepShape,
        separate: bool,
        decode_reads: f64,
    ) -> Option<f64> {
        let f = features(
            g,
            shape
                .prefills
                .iter()
                .map(|p| (f64::from(p.tokens), f64::from(p.context_tokens))),
            f64::from(shape.num_decodes),
            shape.decode_context_sum as f64,
            f64::from(shape.decode_context_max),
        );
        self.eval(g, &f, self.unified && !separate, decode_reads)
    }

    /// `one_kernel`: the decodes of a mixed batch run inside the prefill kernel (only
    /// for a law fitted on one-kernel grids). `decode_reads`: see
    /// [`AttentionLaw::time_us_reading`].
    fn eval(
        &self,
        g: &AttnGeometry,
        f: &Features,
        one_kernel: bool,
        decode_reads: f64,
    ) -> Option<f64> {
        let decode = |f: &Features| -> Option<f64> {
            let d = self.decode?;
            Some(d.time_us(
                f.b_d * decode_reads,
                f.skew_bytes * decode_reads,
                f.n_d * g.kv_heads,
            ))
        };
        if f.has_prefill {
            let p = self.prefill?;
            let x = prefill_x(g, f, one_kernel);
            if one_kernel {
                Some(p.time(&x, f.l_p.max(f.l_d)))
            } else {
                let pre = p.time(&x, f.l_p);
                Some(pre + if f.n_d > 0.0 { decode(f)? } else { 0.0 })
            }
        } else if f.n_d > 0.0 {
            decode(f)
        } else {
            Some(0.0)
        }
    }
}

fn prefill_x(g: &AttnGeometry, f: &Features, unified: bool) -> [f64; 5] {
    if unified {
        [1.0, f.f_p, f.b_p, f.f_d, f.n_d * g.q_heads]
    } else {
        [1.0, f.f_p, f.b_p, 0.0, 0.0]
    }
}

fn stride<'a, T>(it: impl Iterator<Item = &'a T>, max: usize) -> impl Iterator<Item = &'a T>
where
    T: 'a,
{
    let v: Vec<&'a T> = it.collect();
    let step = v.len().div_ceil(max).max(1);
    v.into_iter().step_by(step)
}

/// Fit `t = a + max(W·c, g·L)`: for each `g` of a log grid, alternate between
/// assigning rows to the branch that binds and solving the NNLS problem; keep the `g`
/// with the smallest squared relative error, then refine it by golden section.
fn fit_prefill(rows: &[(Features, [f64; 5], f64, f64)]) -> Option<PrefillLaw> {
    let solve = |g: f64| -> Option<(f64, PrefillLaw)> {
        // Start: a row is path-bound when the path alone explains most of its time.
        let mut path_bound: Vec<bool> = rows.iter().map(|r| g * r.2 >= 0.8 * r.3).collect();
        let mut best: Option<(f64, PrefillLaw)> = None;
        for _ in 0..8 {
            let mut ne = NormalEquations::new(5);
            for ((_, x, l, y), &pb) in rows.iter().zip(&path_bound) {
                let w = 1.0 / (y * y);
                if pb {
                    ne.add(&[1.0, 0.0, 0.0, 0.0, 0.0], y - g * l, w);
                } else {
                    ne.add(x, *y, w);
                }
            }
            let c = ne.solve_non_negative()?;
            let law = PrefillLaw {
                coef: [c[0], c[1], c[2], c[3], c[4]],
                path_us_per_key: g,
            };
            let loss: f64 = rows
                .iter()
                .map(|(_, x, l, y)| ((law.time(x, *l) - y) / y).powi(2))
                .sum();
            if best.as_ref().is_none_or(|b| loss < b.0) {
                best = Some((loss, law));
            }
            let next: Vec<bool> = rows
                .iter()
                .map(|(_, x, l, _)| g * l > law.work(x))
                .collect();
            if next == path_bound {
                break;
            }
            path_bound = next;
        }
        best
    };
    let grid: Vec<f64> = std::iter::once(0.0)
        .chain((0..25).map(|i| 1e-4 * 10f64.powf(f64::from(i) / 6.0)))
        .collect();
    let mut best: Option<(f64, PrefillLaw, usize)> = None;
    for (i, &g) in grid.iter().enumerate() {
        if let Some((loss, law)) = solve(g) {
            if best.as_ref().is_none_or(|b| loss < b.0) {
                best = Some((loss, law, i));
            }
        }
    }
    let (mut loss, mut law, i) = best?;
    if i > 0 {
        // Golden section on ln g between the neighbouring grid points.
        let lo = grid[i - 1].max(grid[1] / 10f64.powf(1.0 / 6.0)).ln();
        let hi = grid.get(i + 1).copied().unwrap_or(grid[i] * 1.5).ln();
        let (mut a, mut b) = (lo, hi);
        let r = (5f64.sqrt() - 1.0) / 2.0;
        for _ in 0..12 {
            let c = b - r * (b - a);
            let d = a + r * (b - a);
            let fc = solve(c.exp()).map_or(f64::INFINITY, |s| s.0);
            let fd = solve(d.exp()).map_or(f64::INFINITY, |s| s.0);
            if fc < fd {
                b = d;
            } else {
                a = c;
            }
        }
        if let Some((l2, law2)) = solve(((a + b) / 2.0).exp()) {
            if l2 < loss {
                loss = l2;
                law = law2;
            }
        }
    }
    let _ = loss;
    Some(law)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geo() -> AttnGeometry {
        AttnGeometry {
            q_heads: 32.0,
            kv_heads: 8.0,
            pair_flops: 512.0,
            kv_bytes_per_token: 4096.0,
            window: None,
        }
    }

    fn law() -> AttentionLaw {
        AttentionLaw {
            unified: true,
            prefill: Some(PrefillLaw {
                coef: [6.0, 3.9e-9, 2.1e-6, 2.9e-7, 0.02],
                path_us_per_key: 0.0215,
            }),
            decode: Some(DecodeLaw {
                coef: [11.6, 7.0e-7, 0.014],
                alpha: 0.03,
                floor_us_per_byte: 0.0,
            }),
            rows: 0,
            median_rel_err: 0.0,
        }
    }

    /// Pure decode batches of 1–256 sequences at 16–16,384 tokens, timed by `truth`.
    fn decode_rows(truth: &AttentionLaw, g: &AttnGeometry) -> Vec<(AttnGeometry, AttentionRow)> {
        let mut rows = Vec::new();
        for nd in [1.0, 4.0, 32.0, 256.0] {
            for kd in [16.0, 1024.0, 16384.0] {
                let r = AttentionRow {
                    prefill_chunk: 0.0,
                    kv_prefill: 0.0,
                    n_decode: nd,
                    kv_decode: kd,
                    time_us: 0.0,
                };
                let t = truth.row_time_us(g, &r).unwrap();
                rows.push((*g, AttentionRow { time_us: t, ..r }));
            }
        }
        rows
    }

    #[test]
    fn fit_recovers_a_synthetic_max_law() {
        let truth = law();
        let g = geo();
        let mut rows = Vec::new();
        for pc in [16.0, 64.0, 256.0, 1024.0, 2048.0] {
            for kp in [0.0, 512.0, 4096.0, 16384.0] {
                for (nd, kd) in [(0.0, 0.0), (1.0, 1024.0), (8.0, 16384.0), (64.0, 256.0)] {
                    let r = AttentionRow {
                        prefill_chunk: pc,
                        kv_prefill: kp,
                        n_decode: nd,
                        kv_decode: kd,
                        time_us: 0.0,
                    };
                    let t = truth.row_time_us(&g, &r).unwrap();
                    rows.push((g, AttentionRow { time_us: t, ..r }));
                }
            }
        }
        rows.extend(decode_rows(&truth, &g));
        let fitted = AttentionLaw::fit(&rows, true, 0.03).unwrap();
        assert!(fitted.median_rel_err < 0.02, "{fitted:?}");
        let p = fitted.prefill.unwrap();
        assert!((p.path_us_per_key / 0.0215 - 1.0).abs() < 0.1, "{p:?}");
    }

    /// Decode rows whose time per KV byte beats the memory (the KV of small rows
    /// staying in cache): bounded by a peak below the fitted rate, a large batch takes
    /// at least its bytes over the peak, small ones keep the fitted time; a peak above
    /// the fitted rate changes nothing.
    #[test]
    fn decode_reads_no_faster_than_the_memory_peak() {
        let g = geo();
        let truth = law(); // 7.0e-7 µs per byte: ~1.43 TB/s
        let rows = decode_rows(&truth, &g);
        let fitted = AttentionLaw::fit(&rows, false, 0.0).unwrap();
        let loose = fitted.clone().with_decode_bandwidth_bound(2.0e6, &rows);
        for (g, r) in &rows {
            assert_eq!(
                loose.row_time_us(g, r),
                fitted.row_time_us(g, r),
                "2 TB/s binds"
            );
        }
        let bounded = fitted.clone().with_decode_bandwidth_bound(0.864e6, &rows);
        // The smallest rows keep the fitted time.
        assert_eq!(
            bounded.row_time_us(&g, &rows[0].1),
            fitted.row_time_us(&g, &rows[0].1)
        );
        let big = AttentionRow {
            prefill_chunk: 0.0,
            kv_prefill: 0.0,
            n_decode: 256.0,
            kv_decode: 16384.0,
            time_us: 0.0,
        };
        let bytes = 256.0 * 16384.0 * g.kv_bytes_per_token;
        let t = bounded.row_time_us(&g, &big).unwrap();
        assert!(t >= bytes / 0.864e6, "{t} µs for {bytes} bytes");
        assert!(t > fitted.row_time_us(&g, &big).unwrap());
    }

    #[test]
    fn monotone_in_context_and_batch() {
        let l = law();
        let g = geo();
        let mut last = 0.0;
        for ctx in [1u32, 10, 100, 1000, 10_000, 100_000, 1_000_000] {
            let mut s = StepShape::new();
            s.push_prefill(16, ctx);
            for _ in 0..4 {
                s.push_decode(ctx);
            }
            let t = l.time_us(&g, &s, false).unwrap();
            assert!(t.is_finite() && t >= last, "{ctx}: {t}");
            last = t;
        }
        let mut last = 0.0;
        for n in [1, 2, 16, 256, 1024] {
            let mut s = StepShape::new();
            for _ in 0..n {
                s.push_decode(1000);
            }
            let t = l.time_us(&g, &s, false).unwrap();
            assert!(t >= last);
            last = t;
        }
    }

    #[test]
    fn separate_kernels_add_and_missing_parts_are_none() {
        let mut l = law();
        l.unified = false;
        let g = geo();
        let mut s = StepShape::new();
        s.push_prefill(128, 0);
        let p = l.time_us(&g, &s, false).unwrap();
        s.push_decode(500);
        let both = l.time_us(&g, &s, false).unwrap();
        let mut d = StepShape::new();
        d.push_decode(500);
        let dec = l.time_us(&g, &d, false).unwrap();
        assert!((both - p - dec).abs() < 1e-9);
        l.decode = None;
        assert!(l.time_us(&g, &d, false).is_none());
    }

    /// A law fitted on one-kernel grids, asked for a stack that runs the prompt chunks
    /// and the decodes of a mixed batch in two kernels, adds its prefill part (the
    /// chunks alone) and its decode part, as a law of separate-kernel grids does; asked
    /// for a one-kernel stack it times the batch in its prefill part, decodes included.
    #[test]
    fn a_one_kernel_law_times_separate_kernels_as_their_sum() {
        let l = law();
        assert!(l.unified);
        let g = geo();
        let mut chunk = StepShape::new();
        chunk.push_prefill(1000, 0);
        let mut decodes = StepShape::new();
        for _ in 0..600 {
            decodes.push_decode(1500);
        }
        let mut mixed = chunk.clone();
        for _ in 0..600 {
            mixed.push_decode(1500);
        }
        let alone = |s: &StepShape| l.time_us(&g, s, true).unwrap();
        let sum = alone(&chunk) + alone(&decodes);
        assert!((l.time_us(&g, &mixed, true).unwrap() - sum).abs() < 1e-9);
        assert_eq!(alone(&chunk), l.time_us(&g, &chunk, false).unwrap());
        assert_eq!(alone(&decodes), l.time_us(&g, &decodes, false).unwrap());
        assert_ne!(l.time_us(&g, &mixed, false).unwrap(), sum);
    }
}
