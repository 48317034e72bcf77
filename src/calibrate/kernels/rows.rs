//! Kernel measurements read and reduced to what the roofline sees: ideal compute and
//! memory times at datasheet peaks and the measured time, per row.

use super::*;

/// One kernel timing as the roofline sees it: ln of the ideal compute and memory times
/// at datasheet peak and of the measured time (seconds).
#[derive(Clone, Copy, Debug)]
pub(super) struct Point {
    pub(super) ln_compute: f64,
    pub(super) ln_memory: f64,
    pub(super) ln_time: f64,
    /// The ideal compute and memory times, s (linear, for the latency law).
    pub(super) compute_s: f64,
    pub(super) memory_s: f64,
    /// Small enough to stay in on-chip cache between the harness's repeats.
    pub(super) cache_resident: bool,
}

impl Point {
    pub(super) fn new(flops: f64, peak: f64, bytes: f64, bandwidth: f64, time_us: f64) -> Self {
        Point {
            ln_compute: (flops / peak).ln(),
            ln_memory: (bytes / bandwidth).ln(),
            ln_time: (time_us * 1e-6).ln(),
            compute_s: flops / peak,
            memory_s: bytes / bandwidth,
            cache_resident: false,
        }
    }

    pub(super) fn ideal_s(&self) -> f64 {
        self.ln_compute.max(self.ln_memory).exp()
    }

    /// Bound by compute at datasheet peaks (both efficiencies 1): the row's arithmetic
    /// intensity is at least the GPU's ridge point. This does not depend on a fit.
    pub(super) fn ideal_compute_bound(&self) -> bool {
        self.ln_compute >= self.ln_memory
    }

    /// ln(predicted / measured) with efficiencies whose logs are `lc`, `lm` and a
    /// fixed kernel latency of `latency_s`.
    pub(super) fn residual(&self, lc: f64, lm: f64, latency_s: f64) -> f64 {
        if latency_s == 0.0 {
            return (self.ln_compute - lc).max(self.ln_memory - lm) - self.ln_time;
        }
        self.residual_linear((-lc).exp(), (-lm).exp(), latency_s)
    }

    /// [`Point::residual`] with the efficiencies' reciprocals (`1 / e_c`, `1 / e_m`).
    pub(super) fn residual_linear(&self, inv_ec: f64, inv_em: f64, latency_s: f64) -> f64 {
        (latency_s + (self.compute_s * inv_ec).max(self.memory_s * inv_em)).ln() - self.ln_time
    }

    pub(super) fn abs_err(&self, ec: f64, em: f64, latency_s: f64) -> f64 {
        (self.residual(ec.ln(), em.ln(), latency_s).exp() - 1.0).abs()
    }

    pub(super) fn compute_bound(&self, ec: f64, em: f64) -> bool {
        self.ln_compute - ec.ln() >= self.ln_memory - em.ln()
    }
}

/// A table set read and reduced to points.
pub(super) struct Prepared {
    pub(super) source: SetSource,
    pub(super) dtype: DType,
    pub(super) rows: usize,
    pub(super) floor_us: f64,
    pub(super) in_range: Vec<Point>,
    pub(super) fitted: Vec<Point>,
}

impl Prepared {
    /// A copy with every `stride`-th fitted row (for screening fits).
    pub(super) fn thinned(&self, stride: usize) -> Prepared {
        Prepared {
            source: self.source.clone(),
            dtype: self.dtype,
            rows: self.rows,
            floor_us: self.floor_us,
            in_range: Vec::new(),
            fitted: self.fitted.iter().step_by(stride.max(1)).copied().collect(),
        }
    }

    /// 0: GEMM compute efficiency; 2: attention compute efficiency.
    pub(super) fn compute_index(&self) -> usize {
        if self.source.kind == KernelKind::Gemm {
            0
        } else {
            2
        }
    }
}

#[derive(Deserialize)]
pub(super) struct GemmRow {
    pub(super) m: f64,
    pub(super) n: f64,
    pub(super) k: f64,
    pub(super) time_us: f64,
}

#[derive(Deserialize)]
pub(super) struct AttentionRow {
    pub(super) batch_size: u32,
    #[serde(alias = "context_tokens")]
    pub(super) prompt_tokens: u32,
    pub(super) num_heads: f64,
    pub(super) num_kv_heads: f64,
    pub(super) head_dim: f64,
    pub(super) time_us: f64,
}

pub(super) fn csv_error(path: &Path, e: csv::Error) -> Error {
    match e.position() {
        Some(p) => Error::input_at(path, p.line(), None, e.to_string()),
        None => Error::input(path, None, e.to_string()),
    }
}

pub(super) fn read_rows<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let mut rdr = csv::Reader::from_path(path).map_err(|e| csv_error(path, e))?;
    rdr.deserialize()
        .map(|r| r.map_err(|e| csv_error(path, e)))
        .collect()
}

pub(super) fn peak_of(gpu: &GpuSpec, dtype: DType, path: &Path) -> Result<f64> {
    gpu.peak_flops(dtype).ok_or_else(|| {
        Error::input(
            path,
            Some("dtype"),
            format!("{} has no dense {dtype} rate", gpu.name),
        )
    })
}

pub(super) fn prepare(measurements: &Path, s: &SetSource, gpu: &GpuSpec) -> Result<Prepared> {
    let path = measurements.join(&s.file);
    let bw = gpu.memory_bandwidth_bytes_per_s();
    let mut in_range = Vec::new();
    let mut floor = f64::INFINITY;
    let (dtype, rows) = match s.kind {
        KernelKind::Gemm => {
            let dtype = s.dtype.unwrap_or(DType::Bf16);
            let peak = peak_of(gpu, dtype, &path)?;
            let rows: Vec<GemmRow> = read_rows(&path)?;
            for r in &rows {
                floor = floor.min(r.time_us);
                let range = MIN_FEATURES..=MAX_FEATURES;
                if !(range.contains(&r.n) && range.contains(&r.k)) {
                    continue;
                }
                let (flops, bytes) =
                    linear_work(r.m, r.k, r.n, dtype.bytes_per_element(), ACT_BYTES);
                in_range.push(Point::new(flops, peak, bytes, bw, r.time_us));
            }
            (dtype, rows.len())
        }
        KernelKind::AttentionPrefill | KernelKind::AttentionDecode => {
            let dtype = DType::Bf16;
            let peak = peak_of(gpu, dtype, &path)?;
            let rows: Vec<AttentionRow> = read_rows(&path)?;
            let mut shape = StepShape::new();
            for r in &rows {
                floor = floor.min(r.time_us);
                shape.clear();
                for _ in 0..r.batch_size {
                    if s.kind == KernelKind::AttentionPrefill {
                        shape.push_prefill(r.prompt_tokens, 0);
                    } else {
                        shape.push_decode(r.prompt_tokens);
                    }
                }
                let (flops, bytes) = attention_layer_work(
                    r.num_heads,
                    r.num_kv_heads,
                    r.head_dim,
                    ACT_BYTES,
                    ACT_BYTES,
                    &shape,
                );
                let mut point = Point::new(flops, peak, bytes, bw, r.time_us);
                point.cache_resident =
                    s.kind == KernelKind::AttentionDecode && bytes < MIN_DECODE_BYTES;
                in_range.push(point);
            }
            (dtype, rows.len())
        }
        KernelKind::Microbenchmarks | KernelKind::BestSquareGemm => {
            unreachable!("handled by `microbenchmarks` and `best_square::fit`")
        }
    };
    if !(floor.is_finite() && floor > 0.0) {
        return Err(Error::input(&path, None, "no rows with a positive time"));
    }
    let multiple = if s.fit_latency {
        FLOOR_MULTIPLE
    } else {
        FLOOR_MULTIPLE_WITHOUT_LATENCY
    };
    let min_ideal = multiple * floor * 1e-6;
    // Prefill attention informs the attention compute efficiency only (its rows with
    // little arithmetic are bound by per-tile work, not by bandwidth); decode attention
    // informs the memory efficiency only.
    let side_ok = |p: &Point| match s.kind {
        KernelKind::AttentionPrefill => p.ideal_compute_bound(),
        KernelKind::AttentionDecode => !p.ideal_compute_bound(),
        _ => true,
    };
    let fitted = in_range
        .iter()
        .copied()
        .filter(|p| p.ideal_s() >= min_ideal && side_ok(p) && !p.cache_resident)
        .collect();
    Ok(Prepared {
        source: s.clone(),
        dtype,
        rows,
        floor_us: floor,
        in_range,
        fitted,
    })
}

#[derive(Deserialize)]
pub(super) struct MicroRow {
    pub(super) metric: String,
    pub(super) full_node: f64,
    pub(super) unit: String,
}

/// Efficiencies from vendor micro-benchmarks: the median full-node figure of each
/// metric, per GPU, over the datasheet figure.
pub(super) fn microbenchmarks(
    measurements: &Path,
    s: &SetSource,
    gpu: &GpuSpec,
) -> Result<(SetFit, Option<f64>, Option<f64>)> {
    let path = measurements.join(&s.file);
    let rows: Vec<MicroRow> = read_rows(&path)?;
    let dtype = s.dtype.unwrap_or(DType::Bf16);
    let per_gpu = |metric: &Option<String>, unit: &str| -> Result<Vec<f64>> {
        let Some(m) = metric else {
            return Ok(Vec::new());
        };
        let v: Vec<f64> = rows
            .iter()
            .filter(|r| &r.metric == m)
            .map(|r| {
                if r.unit == unit {
                    Ok(r.full_node / f64::from(gpu.gpus_per_node))
                } else {
                    Err(Error::input(
                        &path,
                        Some("unit"),
                        format!("{m}: expected {unit}, got {}", r.unit),
                    ))
                }
            })
            .collect::<Result<_>>()?;
        if v.is_empty() {
            return Err(Error::input(
                &path,
                Some("metric"),
                format!("no `{m}` rows"),
            ));
        }
        Ok(v)
    };
    let gemm = per_gpu(&s.gemm_metric, "TFLOP/s")?;
    let mem = per_gpu(&s.memory_metric, "TB/s")?;
    let peak = peak_of(gpu, dtype, &path)? / 1e12;
    let bw = gpu.memory_bandwidth_bytes_per_s() / 1e12;
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ec = median(&gemm).map(|g| round_to(g / peak, 0.0001));
    let em = median(&mem).map(|m| round_to(m / bw, 0.0001));
    let mut detail = Vec::new();
    if let (Some(m), Some(e)) = (&s.gemm_metric, ec) {
        detail.push(format!(
            "{m}: full node / {} GPUs = {} TFLOP/s per GPU; median {:.1} / dense {dtype} peak {peak:.1} = {e:.4}",
            gpu.gpus_per_node,
            list(&gemm),
            median(&gemm).unwrap_or(0.0),
        ));
    }
    if let (Some(m), Some(e)) = (&s.memory_metric, em) {
        detail.push(format!(
            "{m}: full node / {} GPUs = {} TB/s per GPU; median {:.3} / datasheet {bw:.4} TB/s = {e:.4}",
            gpu.gpus_per_node,
            list(&mem),
            median(&mem).unwrap_or(0.0),
        ));
    }
    let fit = SetFit {
        rows_fitted: gemm.len() + mem.len(),
        alone_compute_efficiency: ec,
        alone_memory_efficiency: em,
        ..SetFit::ratio(s, dtype, rows.len(), detail.join("; "))
    };
    Ok((fit, ec, em))
}
