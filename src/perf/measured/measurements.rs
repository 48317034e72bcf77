//! Kernel measurements of whole GPUs, beside the per-model profiles
//! (`perf_model/measurements/`, see its README):
//!
//! * `tp-collectives/*.csv`: in [`super::collectives`];
//! * `attention/<gpu>__{context,generation}.csv`: one attention layer through vLLM's
//!   backend (FlashAttention, FlashInfer), prefill and decode, by batch, length and
//!   heads per GPU;
//! * `moe/<gpu>__bfloat16.csv`: vLLM's fused-MoE block by expert shape, TP/EP split
//!   and tokens.

use super::attention::AttnGeometry;
use super::build::MEASURED_ELEMENT_BYTES;
use super::profile::AttentionRow;
use super::table::MonotoneTable;
use crate::error::{Error, Result};
use crate::stack::KernelGeneration;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct AttnRecord {
    batch_size: f64,
    #[serde(alias = "prompt_tokens")]
    context_tokens: f64,
    num_heads: f64,
    num_kv_heads: f64,
    head_dim: f64,
    time_us: f64,
}

/// One attention layer measured through the engine's backend: its per-GPU geometry and
/// the batch in the profiles' row format. Prefill rows hold one prompt with no cached
/// prefix (batches of several prompts are left out: a row has one prefill chunk);
/// decode rows `batch_size` decodes of `context_tokens` each.
pub(crate) fn load_attention(
    perf_model: &Path,
    slug: &str,
) -> Result<Vec<(AttnGeometry, AttentionRow)>> {
    let dir = perf_model.join("measurements").join("attention");
    let files: Vec<(PathBuf, bool)> = [("context", true), ("generation", false)]
        .into_iter()
        .map(|(kind, prefill)| (dir.join(format!("{slug}__{kind}.csv")), prefill))
        .filter(|(f, _)| f.is_file())
        .collect();
    let paths: Vec<PathBuf> = files.iter().map(|(f, _)| f.clone()).collect();
    super::profile_cache::cached_parse("attention", &paths, slug, || parse_attention(&files))
}

/// [`load_attention`]'s parse of its files (`true`: a prefill table).
fn parse_attention(files: &[(PathBuf, bool)]) -> Result<Vec<(AttnGeometry, AttentionRow)>> {
    let mut out = Vec::new();
    for (file, prefill) in files {
        let (file, prefill) = (file.as_path(), *prefill);
        let mut rdr = csv::Reader::from_path(file).map_err(|e| csv_error(file, e))?;
        for rec in rdr.deserialize::<AttnRecord>() {
            let r = rec.map_err(|e| csv_error(file, e))?;
            if prefill && r.batch_size != 1.0 {
                continue;
            }
            let g = AttnGeometry {
                q_heads: r.num_heads,
                kv_heads: r.num_kv_heads,
                pair_flops: 4.0 * r.head_dim,
                kv_bytes_per_token: 2.0 * r.num_kv_heads * r.head_dim * MEASURED_ELEMENT_BYTES,
                window: None,
            };
            let row = if prefill {
                AttentionRow {
                    prefill_chunk: r.context_tokens,
                    kv_prefill: 0.0,
                    n_decode: 0.0,
                    kv_decode: 0.0,
                    time_us: r.time_us,
                }
            } else {
                AttentionRow {
                    prefill_chunk: 0.0,
                    kv_prefill: 0.0,
                    n_decode: r.batch_size,
                    kv_decode: r.context_tokens,
                    time_us: r.time_us,
                }
            };
            out.push((g, row));
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct MoeRecord {
    hidden_size: u64,
    inter_size: u64,
    num_experts: u64,
    topk: u64,
    moe_tp: u32,
    moe_ep: u32,
    distribution: String,
    num_tokens: f64,
    time_us: f64,
}

/// The shape of one MoE layer on one GPU, as `moe/<gpu>__bfloat16.csv` keys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MoeShape {
    pub hidden: u64,
    /// The full (unsplit) expert width.
    pub inter: u64,
    pub experts: u64,
    pub topk: u64,
    pub tp: u32,
    pub ep: u32,
}

/// The expert weight formats the fused-MoE block was measured in
/// (`moe/<gpu>__<format>.csv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MoeFormat {
    Bf16,
    /// Per-tensor FP8 weights and activations.
    Fp8,
    /// FP8 with 128 × 128 weight blocks (DeepSeek-V3's checkpoints).
    Fp8Block,
    /// NVFP4 weights and activations.
    Nvfp4,
}

impl MoeFormat {
    /// The measured format that times experts stored as `dtype` (`block`: the
    /// checkpoint declares a weight block size): the formats the tensor cores run
    /// natively (FP8, NVFP4) take their own table. Weight-only formats (MXFP4 and INT4
    /// weights, 16-bit math) take the bf16 table: their time depends on which
    /// dequantizing kernel the engine picks, and the measured one is not what every
    /// engine runs (vLLM 0.19's MXFP4 path on B200 takes 374 µs for 16 tokens of
    /// gpt-oss-20b's 32 experts, 7× their weight-streaming time). `None` where nothing
    /// was measured (INT8, FP32).
    pub(crate) fn of(dtype: crate::dtype::DType, block: bool) -> Option<Self> {
        use crate::dtype::DType;
        match dtype {
            DType::Bf16 | DType::Fp16 | DType::Mxfp4 | DType::Int4 => Some(MoeFormat::Bf16),
            DType::Fp8 if block => Some(MoeFormat::Fp8Block),
            DType::Fp8 => Some(MoeFormat::Fp8),
            DType::Nvfp4 => Some(MoeFormat::Nvfp4),
            DType::Fp32 | DType::Int8 => None,
        }
    }

    /// Bytes per stored value of the format, scales included: its dtype's storage size
    /// (NVFP4: half a byte plus one 1-byte scale per 16 values).
    pub(crate) fn bytes_per_value(self) -> f64 {
        use crate::dtype::DType;
        match self {
            MoeFormat::Bf16 => DType::Bf16,
            MoeFormat::Fp8 | MoeFormat::Fp8Block => DType::Fp8,
            MoeFormat::Nvfp4 => DType::Nvfp4,
        }
        .bytes_per_element()
    }

    pub(crate) fn file_tag(self) -> &'static str {
        match self {
            MoeFormat::Bf16 => "bfloat16",
            MoeFormat::Fp8 => "fp8",
            MoeFormat::Fp8Block => "fp8_block",
            MoeFormat::Nvfp4 => "nvfp4",
        }
    }
}

/// The fused-MoE block (routing, grouped expert GEMMs, combine; no router GEMM)
/// measured through vLLM on the GPU `slug` with experts in `format`, for `shape` under
/// balanced routing, by the tokens entering the block; `None` when not measured.
pub(crate) fn load_moe(
    perf_model: &Path,
    slug: &str,
    format: MoeFormat,
    shape: &MoeShape,
) -> Result<Option<MonotoneTable>> {
    let file = moe_path(perf_model, slug, format);
    if !file.is_file() {
        return Ok(None);
    }
    let mut rdr = csv::Reader::from_path(&file).map_err(|e| csv_error(&file, e))?;
    let mut pts = Vec::new();
    for rec in rdr.deserialize::<MoeRecord>() {
        let r = rec.map_err(|e| csv_error(&file, e))?;
        let here = MoeShape {
            hidden: r.hidden_size,
            inter: r.inter_size,
            experts: r.num_experts,
            topk: r.topk,
            tp: r.moe_tp,
            ep: r.moe_ep,
        };
        if here == *shape && r.distribution == "balanced" {
            pts.push((r.num_tokens, r.time_us));
        }
    }
    Ok(MonotoneTable::from_points(pts))
}

#[derive(Deserialize)]
struct GemmRecord {
    m: f64,
    n: f64,
    k: f64,
    time_us: f64,
}

/// Dense 16-bit GEMMs measured through the engine's linear layer on one GPU
/// (`gemm/<gpu>__bfloat16.csv`): time by tokens `m` on a grid of weight shapes `k × n`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct GemmGrid {
    ks: Vec<f64>,
    ns: Vec<f64>,
    /// `(k, n)` → `(m, µs)` points, keyed by grid indices.
    points: std::collections::BTreeMap<(usize, usize), Vec<(f64, f64)>>,
    /// The file it came from, relative to the perf-model folder.
    pub source: String,
    /// The kernel generation of the engine it was measured through (`manifest.csv`).
    pub generation: KernelGeneration,
    /// Bytes per weight element of the measured format (2 for bf16, 1 for FP8).
    pub weight_bytes: f64,
}

impl GemmGrid {
    /// The time of a `k × n` weight by tokens, interpolated bilinearly in `(k, n)`
    /// between the four grid shapes around it at every measured `m` (exact for
    /// `t = a + b·k·n`, which both the compute- and the bandwidth-bound GEMM follow);
    /// `None` when `(k, n)` lies outside the grid or a corner was not measured.
    pub(crate) fn table(&self, k: f64, n: f64) -> Option<MonotoneTable> {
        let (k0, k1, wk) = bracket(&self.ks, k)?;
        let (n0, n1, wn) = bracket(&self.ns, n)?;
        let corner = |i: usize, j: usize| self.points.get(&(i, j));
        let (a, b, c, d) = (
            corner(k0, n0)?,
            corner(k0, n1)?,
            corner(k1, n0)?,
            corner(k1, n1)?,
        );
        let at = |v: &[(f64, f64)], m: f64| v.iter().find(|p| p.0 == m).map(|p| p.1);
        let pts = a.iter().filter_map(|&(m, t00)| {
            let (t01, t10, t11) = (at(b, m)?, at(c, m)?, at(d, m)?);
            let lo = t00 + (t01 - t00) * wn;
            let hi = t10 + (t11 - t10) * wn;
            Some((m, lo + (hi - lo) * wk))
        });
        MonotoneTable::from_points(pts.collect::<Vec<_>>())
    }
}

impl GemmGrid {
    /// The grid's points as GEMM-law samples: weight shapes with both sides of at least
    /// `MIN_LAW_SIDE` (the sizes of real models' layers; the tiny corners of the grid
    /// are launch-bound and would pull the law's fixed cost), tokens thinned as profile
    /// tables are ([`super::gemm::thinned_points`]).
    pub(crate) fn law_samples(&self) -> Vec<super::gemm::GemmSample> {
        const MIN_LAW_SIDE: f64 = 1024.0;
        let mut out = Vec::new();
        for (&(i, j), pts) in &self.points {
            let (k, n) = (self.ks[i], self.ns[j]);
            if k < MIN_LAW_SIDE || n < MIN_LAW_SIDE {
                continue;
            }
            for (m, t) in super::gemm::thinned_points(pts.clone()) {
                out.push(super::gemm::GemmSample {
                    m,
                    k,
                    n,
                    kernels: 1.0,
                    time_us: t,
                    weight_bytes: self.weight_bytes,
                });
            }
        }
        out
    }
}

/// The fused-MoE measurement file of the GPU `slug` for experts in `format` (it may
/// not exist).
pub(crate) fn moe_path(perf_model: &Path, slug: &str, format: MoeFormat) -> PathBuf {
    perf_model
        .join("measurements")
        .join("moe")
        .join(format!("{slug}__{}.csv", format.file_tag()))
}

/// Indices of the grid values around `x` and the weight of the upper one; `None`
/// outside the grid.
fn bracket(grid: &[f64], x: f64) -> Option<(usize, usize, f64)> {
    let first = *grid.first()?;
    let last = *grid.last()?;
    if !(first..=last).contains(&x) {
        return None;
    }
    let hi = grid.partition_point(|&v| v < x);
    if grid[hi] == x {
        return Some((hi, hi, 0.0));
    }
    let lo = hi - 1;
    Some((lo, hi, (x - grid[lo]) / (grid[hi] - grid[lo])))
}

#[derive(Deserialize)]
struct GemmManifestRow {
    file: String,
    kernel_generation: KernelGeneration,
}

/// The formats of the GEMM grids (`gemm/<gpu>__<format>.csv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GridFormat {
    /// bf16 weights and activations (`torch.nn.functional.linear`).
    Bf16,
    /// Per-tensor FP8 weights, activations quantized on the fly (vLLM's scaled-mm).
    Fp8,
}

impl GridFormat {
    fn file_tag(self) -> &'static str {
        match self {
            GridFormat::Bf16 => "bfloat16",
            GridFormat::Fp8 => "fp8",
        }
    }

    fn weight_bytes(self) -> f64 {
        match self {
            GridFormat::Bf16 => MEASURED_ELEMENT_BYTES,
            GridFormat::Fp8 => 1.0,
        }
    }
}

/// The GEMM grid of `format` measured through the engine on the GPU `slug`; `None`
/// when there is no file for it or `gemm/manifest.csv` does not give its kernel
/// generation.
pub(crate) fn load_gemm(
    perf_model: &Path,
    slug: &str,
    format: GridFormat,
) -> Result<Option<GemmGrid>> {
    let name = format!("{slug}__{}.csv", format.file_tag());
    let rel = format!("measurements/gemm/{name}");
    let file = perf_model.join(&rel);
    let manifest = perf_model.join("measurements/gemm/manifest.csv");
    if !file.is_file() || !manifest.is_file() {
        return Ok(None);
    }
    super::profile_cache::cached_parse(
        "gemm",
        &[file.clone(), manifest.clone()],
        (&name, format.weight_bytes().to_bits()),
        || parse_gemm(&file, &manifest, name.clone(), rel, format),
    )
}

/// [`load_gemm`]'s parse of the grid `file` (called `name` in `manifest`, `rel` under
/// the perf-model folder).
fn parse_gemm(
    file: &Path,
    manifest: &Path,
    name: String,
    rel: String,
    format: GridFormat,
) -> Result<Option<GemmGrid>> {
    let mut generation = None;
    let mut rdr = csv::Reader::from_path(manifest).map_err(|e| csv_error(manifest, e))?;
    for rec in rdr.deserialize::<GemmManifestRow>() {
        let r = rec.map_err(|e| csv_error(manifest, e))?;
        if r.file == name {
            generation = Some(r.kernel_generation);
        }
    }
    let Some(generation) = generation else {
        return Ok(None);
    };
    let mut rdr = csv::Reader::from_path(file).map_err(|e| csv_error(file, e))?;
    let mut rows = Vec::new();
    for rec in rdr.deserialize::<GemmRecord>() {
        let r = rec.map_err(|e| csv_error(file, e))?;
        if [r.m, r.n, r.k, r.time_us]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0)
        {
            rows.push(r);
        }
    }
    let sorted_unique = |f: fn(&GemmRecord) -> f64| {
        let mut v: Vec<f64> = rows.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    };
    let (ks, ns) = (sorted_unique(|r| r.k), sorted_unique(|r| r.n));
    let mut points: std::collections::BTreeMap<(usize, usize), Vec<(f64, f64)>> =
        std::collections::BTreeMap::new();
    for r in &rows {
        let i = ks.partition_point(|&v| v < r.k);
        let j = ns.partition_point(|&v| v < r.n);
        points.entry((i, j)).or_default().push((r.m, r.time_us));
    }
    Ok(Some(GemmGrid {
        ks,
        ns,
        points,
        source: rel,
        generation,
        weight_bytes: format.weight_bytes(),
    }))
}

pub(super) fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map_or(0, |p| p.line());
    Error::input_at(path, line, None, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::DataPaths;

    /// Every shipped GEMM grid and attention table, read through the start-up cache
    /// (a hit or a miss, whichever this machine has) and through postcard, is its
    /// fresh parse bit for bit.
    #[test]
    fn cached_grids_and_attention_tables_are_their_fresh_parses() {
        let pm = DataPaths::builtin().perf_model;
        let mut grids = 0;
        for slug in [
            "a100-sxm4-80gb",
            "h100-sxm5-80gb",
            "h200-sxm-141gb",
            "b200",
            "gb200",
            "l40s",
            "rtx-pro-6000-blackwell-server",
        ] {
            for format in [GridFormat::Bf16, GridFormat::Fp8] {
                let name = format!("{slug}__{}.csv", format.file_tag());
                let dir = pm.join("measurements/gemm");
                let (file, manifest) = (dir.join(&name), dir.join("manifest.csv"));
                if !file.is_file() {
                    continue;
                }
                let rel = format!("measurements/gemm/{name}");
                let fresh = parse_gemm(&file, &manifest, name, rel, format).unwrap();
                assert!(fresh.is_some(), "{slug} {format:?}");
                let loaded = load_gemm(&pm, slug, format).unwrap();
                assert_eq!(bits(&loaded), bits(&fresh), "{slug} {format:?}");
                let back: Option<GemmGrid> =
                    postcard::from_bytes(&postcard::to_stdvec(&fresh).unwrap()).unwrap();
                assert_eq!(bits(&back), bits(&fresh), "{slug} {format:?}");
                grids += 1;
            }
            let dir = pm.join("measurements/attention");
            let files: Vec<(PathBuf, bool)> = [("context", true), ("generation", false)]
                .map(|(k, p)| (dir.join(format!("{slug}__{k}.csv")), p))
                .into_iter()
                .collect();
            let fresh = parse_attention(&files).unwrap();
            assert!(!fresh.is_empty(), "{slug}");
            assert_eq!(
                bits(&load_attention(&pm, slug).unwrap()),
                bits(&fresh),
                "{slug}"
            );
        }
        assert_eq!(grids, 13);
    }

    /// Exact bits of a serializable value (PartialEq would let -0.0 == 0.0 through).
    fn bits(v: &impl serde::Serialize) -> Vec<u8> {
        postcard::to_stdvec(v).unwrap()
    }

    #[test]
    fn h100_mixtral_moe_block_grows_with_tokens() {
        let shape = MoeShape {
            hidden: 4096,
            inter: 14336,
            experts: 8,
            topk: 2,
            tp: 2,
            ep: 1,
        };
        let t = load_moe(
            &DataPaths::builtin().perf_model,
            "h100-sxm5-80gb",
            MoeFormat::Bf16,
            &shape,
        )
        .unwrap()
        .expect("Mixtral TP2 rows");
        assert!(t.eval(1.0) > 10.0 && t.eval(4096.0) > 4.0 * t.eval(1.0));
        let other = MoeShape { hidden: 1, ..shape };
        assert!(load_moe(
            &DataPaths::builtin().perf_model,
            "h100-sxm5-80gb",
            MoeFormat::Bf16,
            &other,
        )
        .unwrap()
        .is_none());
    }

    /// Bilinear interpolation in `(k, n)` reproduces a time `a + b·k·n + c·m` exactly
    /// between grid shapes (the form both bandwidth- and compute-bound GEMMs follow).
    #[test]
    fn gemm_grid_interpolation_is_exact_for_a_time_linear_in_the_weight_size() {
        let time = |m: f64, k: f64, n: f64| 3.0 + 1e-6 * k * n + 0.01 * m;
        let (ks, ns, ms) = (
            vec![1024.0, 4096.0, 16384.0],
            vec![2048.0, 8192.0, 65536.0],
            [1.0, 64.0, 512.0],
        );
        let mut points = std::collections::BTreeMap::new();
        for (i, &k) in ks.iter().enumerate() {
            for (j, &n) in ns.iter().enumerate() {
                points.insert((i, j), ms.iter().map(|&m| (m, time(m, k, n))).collect());
            }
        }
        let g = GemmGrid {
            ks,
            ns,
            points,
            source: "synthetic".into(),
            generation: KernelGeneration::V1,
            weight_bytes: 2.0,
        };
        for (k, n) in [(3000.0, 5000.0), (4096.0, 22016.0), (11008.0, 4096.0)] {
            let t = g.table(k, n).unwrap();
            for m in ms {
                let want = time(m, k, n);
                assert!((t.eval(m) / want - 1.0).abs() < 1e-12, "{k} {n} {m}");
            }
        }
        assert!(g.table(500.0, 4096.0).is_none() && g.table(4096.0, 70000.0).is_none());
    }

    #[test]
    fn gemm_grid_is_exact_on_its_points_and_interpolates_between_them() {
        let g = load_gemm(
            &DataPaths::builtin().perf_model,
            "h100-sxm5-80gb",
            GridFormat::Bf16,
        )
        .unwrap()
        .expect("H100 bf16 grid");
        assert_eq!(g.generation, KernelGeneration::V1);
        // A grid shape: the measured 80 × 4096 × 12288 point (41.7 µs) survives the
        // monotone smoothing within a few %.
        let qkv = g.table(4096.0, 12288.0).unwrap().eval(80.0);
        assert!((qkv / 41.7 - 1.0).abs() < 0.05, "{qkv}");
        // Between shapes: n = 22016 lies between the 16384 and 51200 columns.
        let (lo, mid, hi) = (
            g.table(4096.0, 16384.0).unwrap().eval(256.0),
            g.table(4096.0, 22016.0).unwrap().eval(256.0),
            g.table(4096.0, 51200.0).unwrap().eval(256.0),
        );
        assert!(lo < mid && mid < hi, "{lo} {mid} {hi}");
        // Off the grid: no table (the caller falls back to the profiles or the law).
        assert!(g.table(100_000.0, 4096.0).is_none());
        assert!(g.table(4096.0, 8.0).is_none());
        assert!(load_gemm(
            &DataPaths::builtin().perf_model,
            "no-such-gpu",
            GridFormat::Bf16,
        )
        .unwrap()
        .is_none());
    }

    #[test]
    fn h100_attention_has_prefill_and_decode_rows() {
        let rows = load_attention(&DataPaths::builtin().perf_model, "h100-sxm5-80gb").unwrap();
        assert!(rows.iter().any(|(_, r)| r.prefill_chunk > 0.0));
        assert!(rows.iter().any(|(_, r)| r.n_decode > 0.0));
        assert!(rows
            .iter()
            .all(|(g, r)| g.q_heads >= 1.0 && r.time_us > 0.0));
    }
}
