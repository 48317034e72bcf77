//! Loading the measured profiles of one accelerator from `perf_model/profiles/<slug>/`.
//!
//! The layout, columns and units are documented in `perf_model/profiles/README.md`
//! (written by `scripts/convert_profiles.py`). Every malformed value is an
//! [`Error::Input`] naming the file, line and column; nothing here panics on data.

use super::table::{MonotoneTable, Table2};
use crate::error::{Error, Result};
use crate::hardware::LinkSpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The layer shape a profile was measured for (`[shape]` of `profile.toml`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileShape {
    pub hidden_size: u64,
    pub num_attention_heads: u64,
    pub num_key_value_heads: u64,
    pub head_dim: u64,
    pub intermediate_size: u64,
    pub gated_mlp: bool,
    pub vocab_size: u64,
    pub num_experts: u64,
    pub experts_per_token: u64,
    pub expert_intermediate_size: u64,
    pub qk_norm: bool,
}

/// `profile.toml`: where a model's measurements come from.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProfileMeta {
    pub model: String,
    pub source: String,
    pub repository: String,
    pub commit: String,
    pub path: String,
    pub hardware_name: String,
    pub engine: String,
    pub dtype: String,
    /// True when norms, rotary embedding and activations were timed with fused kernels
    /// like vLLM's (Vidur/Sarathi, vLLM 0.19); false for PyTorch-native modules.
    pub fused_elementwise: bool,
    /// `unified` (one kernel for prefill chunks and decodes, vLLM V1) or `separate`.
    pub attention_kernel: String,
    /// The PyTorch/cuBLAS generation the operators were timed under.
    pub kernel_generation: crate::stack::KernelGeneration,
    pub tensor_parallel_sizes: Vec<u32>,
    pub shape: ProfileShape,
}

/// What an operator is, from `shapes.csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum OpKind {
    /// A GEMM: `in_features × out_features` weight on one GPU.
    Linear,
    /// A per-layer memory pass reading `in_features` and writing `out_features`
    /// elements per token.
    Elementwise,
    /// The token embedding (once per iteration).
    Embedding,
    /// The final norm (once per iteration).
    Final,
    /// The LM head, by sequences.
    LmHead,
    /// The sampler, by sequences.
    Sampler,
    /// A whole MoE block (`moe.csv`).
    Moe,
}

impl OpKind {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "linear" => OpKind::Linear,
            "elementwise" => OpKind::Elementwise,
            "embedding" => OpKind::Embedding,
            "final" => OpKind::Final,
            "lm_head" => OpKind::LmHead,
            "sampler" => OpKind::Sampler,
            "moe" => OpKind::Moe,
            _ => return None,
        })
    }
}

/// One measured operator table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct MeasuredOp {
    pub name: String,
    pub kind: OpKind,
    pub in_features: f64,
    pub out_features: f64,
    /// Kernels summed into the time (3 for separately timed q, k, v).
    pub kernels: f64,
    pub calls_per_layer: f64,
    /// Raw medians `(size, µs)` as measured.
    pub raw: Vec<(f64, f64)>,
    /// The same, made monotone.
    pub table: MonotoneTable,
}

/// One row of `attention.csv` (µs for one layer on one GPU).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct AttentionRow {
    pub prefill_chunk: f64,
    pub kv_prefill: f64,
    pub n_decode: f64,
    pub kv_decode: f64,
    pub time_us: f64,
}

/// One row of `skew_samples.csv`: a decode batch with two context lengths.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SkewSample {
    pub mixed: bool,
    pub n_decode: f64,
    pub n_long: f64,
    pub prefill_chunk: f64,
    pub kv_prefill: f64,
    pub kv_short: f64,
    pub kv_long: f64,
    /// Measured with every decode at the mean context.
    pub t_mean_us: f64,
    pub t_skew_us: f64,
}

/// Everything measured for one model at one tensor-parallel size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct TpProfile {
    pub tp: u32,
    pub ops: Vec<MeasuredOp>,
    pub attention: Vec<AttentionRow>,
    pub moe: Option<Table2>,
    /// `(mixed, n_decode, alpha_median)` from `skew.csv`.
    pub skew: Vec<(bool, f64, f64)>,
    /// Read by the accuracy tests only.
    #[cfg_attr(not(test), allow(dead_code))]
    pub skew_samples: Vec<SkewSample>,
}

/// A model's profile on one GPU.
#[derive(Clone, Debug)]
pub(crate) struct ModelProfile {
    pub meta: ProfileMeta,
    pub tps: Vec<TpProfile>,
}

impl ModelProfile {
    /// A short label: `"llmservingsim-perf RTXPRO6000 meta-llama/Llama-3.1-8B"`.
    pub(crate) fn label(&self) -> String {
        format!(
            "{} {} {}",
            self.meta.source, self.meta.hardware_name, self.meta.model
        )
    }

    /// The measurements at `tp`, if any.
    pub(crate) fn at_tp(&self, tp: u32) -> Option<&TpProfile> {
        self.tps.iter().find(|t| t.tp == tp)
    }
}

/// A measured collective: time by message size for one group layout.
#[derive(Clone, Debug)]
pub(crate) struct CollectiveTable {
    pub num_workers: u32,
    pub devices_per_node: u32,
    pub table: MonotoneTable,
    /// The one engine or library version it was measured in, where it was chosen for
    /// that version (none: every version measured, or unrecorded).
    pub version: Option<String>,
    /// Why the table does not describe the GPU's own link (it ran far below it: another
    /// topology), or none. A marked table is never used; the link's α-β is, with this
    /// note.
    pub unlike_link: Option<String>,
}

/// Every measurement of one accelerator.
#[derive(Clone, Debug, Default)]
pub(crate) struct GpuProfiles {
    pub slug: String,
    pub models: Vec<ModelProfile>,
    pub all_reduce: Vec<CollectiveTable>,
    pub send_recv: Vec<CollectiveTable>,
    /// The intra-node link as calibrated on end-to-end measurements, if any
    /// (`network/link_calibration.toml`).
    pub calibrated_link: Option<LinkSpec>,
}

/// The file name of a link calibration in a profile folder's `network/`.
pub(crate) const LINK_CALIBRATION_FILE: &str = "link_calibration.toml";

/// `network/link_calibration.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkCalibration {
    name: String,
    latency_us: f64,
    bus_bandwidth_gb_per_s: f64,
    #[allow(dead_code)]
    source: String,
}

fn load_calibrated_link(path: &Path) -> Result<Option<LinkSpec>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let c: LinkCalibration =
        toml::from_str(&text).map_err(|e| crate::error::toml_error(path, &text, &e))?;
    for (k, v) in [
        ("latency_us", c.latency_us),
        ("bus_bandwidth_gb_per_s", c.bus_bandwidth_gb_per_s),
    ] {
        if !(v.is_finite() && v > 0.0) {
            return Err(Error::input(
                path,
                Some(k),
                format!("must be positive, got {v}"),
            ));
        }
    }
    Ok(Some(LinkSpec {
        key: "calibrated".into(),
        name: c.name,
        bandwidth_bytes_per_s: c.bus_bandwidth_gb_per_s * crate::units::BYTES_PER_GB,
        pair_bandwidth_bytes_per_s: c.bus_bandwidth_gb_per_s * crate::units::BYTES_PER_GB,
        latency_s: c.latency_us * 1e-6,
        allreduce_bus_efficiency: 1.0,
        beyond_pair_bus_efficiency: None,
        copy_efficiency: None,
        max_gpus: None,
    }))
}

impl GpuProfiles {
    /// Load `<profiles_dir>/<slug>/`, leaving out the models named in `exclude`
    /// (case-insensitive). A missing folder gives an empty set.
    pub(crate) fn load(profiles_dir: &Path, slug: &str, exclude: &[String]) -> Result<Self> {
        let dir = profiles_dir.join(slug);
        let mut out = GpuProfiles {
            slug: slug.to_owned(),
            ..Default::default()
        };
        if !dir.is_dir() {
            return Ok(out);
        }
        let mut pending: Vec<(ProfileMeta, Vec<(PathBuf, u32)>)> = Vec::new();
        for org in sorted_dirs(&dir)? {
            if org.file_name().is_some_and(|n| n == "network") {
                continue;
            }
            for model_dir in sorted_dirs(&org)? {
                let toml_path = model_dir.join("profile.toml");
                if !toml_path.is_file() {
                    continue;
                }
                let text =
                    std::fs::read_to_string(&toml_path).map_err(|e| Error::io(&toml_path, e))?;
                let meta: ProfileMeta = toml::from_str(&text)
                    .map_err(|e| crate::error::toml_error(&toml_path, &text, &e))?;
                if exclude.iter().any(|x| x.eq_ignore_ascii_case(&meta.model)) {
                    continue;
                }
                let tps = meta
                    .tensor_parallel_sizes
                    .iter()
                    .map(|&tp| (model_dir.join(format!("tp{tp}")), tp))
                    .filter(|(d, _)| d.is_dir())
                    .collect();
                pending.push((meta, tps));
            }
        }
        out.models = load_models(pending)?;
        let net = dir.join("network");
        out.all_reduce = load_collective(&net.join("all_reduce.csv"))?;
        out.send_recv = load_collective(&net.join("send_recv.csv"))?;
        out.calibrated_link = load_calibrated_link(&net.join(LINK_CALIBRATION_FILE))?;
        Ok(out)
    }

    /// True when at least one model was measured on this accelerator.
    pub(crate) fn has_models(&self) -> bool {
        !self.models.is_empty()
    }

    /// Every measured operator of every model and TP size, with its profile.
    pub(crate) fn all_ops(&self) -> impl Iterator<Item = (&ModelProfile, &TpProfile, &MeasuredOp)> {
        self.models.iter().flat_map(|m| {
            m.tps
                .iter()
                .flat_map(move |t| t.ops.iter().map(move |o| (m, t, o)))
        })
    }
}

/// Read the TP folders of every model, spread over the available cores (start-up reads
/// a few dozen files per GPU). The result and the first error, if any, are those of
/// reading them in order on one thread.
fn load_models(pending: Vec<(ProfileMeta, Vec<(PathBuf, u32)>)>) -> Result<Vec<ModelProfile>> {
    let jobs: Vec<(usize, &Path, u32)> = pending
        .iter()
        .enumerate()
        .flat_map(|(m, (_, tps))| tps.iter().map(move |(d, tp)| (m, d.as_path(), *tp)))
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len().max(1));
    let per_thread = jobs.len().div_ceil(threads).max(1);
    let loaded: Vec<Result<TpProfile>> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|&(_, dir, tp)| load_tp(dir, tp))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a profile-loading thread panicked"))
            .collect()
    });
    let owners: Vec<usize> = jobs.iter().map(|&(m, _, _)| m).collect();
    drop(jobs);
    let mut models: Vec<ModelProfile> = pending
        .into_iter()
        .map(|(meta, _)| ModelProfile {
            meta,
            tps: Vec::new(),
        })
        .collect();
    for (m, tp) in owners.into_iter().zip(loaded) {
        models[m].tps.push(tp?);
    }
    Ok(models)
}

fn sorted_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    Ok(v)
}

/// A CSV file read into one text buffer (every field trimmed, back to back) with each
/// row's line number, after checking the header is exactly `header`. One buffer instead
/// of a record per row: start-up reads tens of thousands of rows.
struct Csv {
    path: PathBuf,
    /// The fields' text, concatenated.
    text: String,
    /// End of each field in `text`, `header.len()` per row.
    ends: Vec<u32>,
    /// Line number of each row.
    lines: Vec<u64>,
    header: Vec<&'static str>,
}

impl Csv {
    fn read(path: &Path, header: &[&'static str]) -> Result<Option<Csv>> {
        if !path.is_file() {
            return Ok(None);
        }
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_path(path)
            .map_err(|e| csv_error(path, e))?;
        let got: Vec<String> = rdr
            .headers()
            .map_err(|e| csv_error(path, e))?
            .iter()
            .map(str::to_owned)
            .collect();
        if got != header {
            return Err(Error::input_at(
                path,
                1,
                None,
                format!(
                    "expected columns {}, found {}",
                    header.join(","),
                    got.join(",")
                ),
            ));
        }
        let mut csv = Csv {
            path: path.to_owned(),
            text: String::new(),
            ends: Vec::new(),
            lines: Vec::new(),
            header: header.to_vec(),
        };
        let mut rec = csv::StringRecord::new();
        while rdr.read_record(&mut rec).map_err(|e| csv_error(path, e))? {
            csv.lines.push(rec.position().map_or(0, |p| p.line()));
            // The reader checks that every row has the header's field count.
            for f in rec.iter() {
                csv.text.push_str(f.trim());
                let end = u32::try_from(csv.text.len()).map_err(|_| {
                    Error::input(path, None, "file too large (over 4 GiB of fields)")
                })?;
                csv.ends.push(end);
            }
        }
        Ok(Some(csv))
    }

    /// Rows read.
    fn len(&self) -> usize {
        self.lines.len()
    }

    /// Field `col` of row `i` as a finite, non-negative number.
    fn num(&self, i: usize, col: usize) -> Result<f64> {
        let s = self.text(i, col);
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
            _ => Err(Error::input_at(
                &self.path,
                self.lines[i],
                Some(self.header[col]),
                format!("expected a non-negative number, found `{s}`"),
            )),
        }
    }

    /// Field `col` of row `i`, trimmed.
    fn text(&self, i: usize, col: usize) -> &str {
        let k = i * self.header.len() + col;
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        &self.text[start..self.ends[k] as usize]
    }

    fn line(&self, i: usize) -> u64 {
        self.lines[i]
    }
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line());
    match line {
        Some(l) => Error::input_at(path, l, None, e.to_string()),
        None => Error::input(path, None, e.to_string()),
    }
}

/// The profile of one TP folder: from the start-up cache when it holds this folder's
/// files as they are now ([`super::profile_cache`]), else parsed (and stored).
fn load_tp(dir: &Path, tp: u32) -> Result<TpProfile> {
    super::profile_cache::cached(dir, tp, || parse_tp(dir, tp))
}

/// Parse one TP folder's CSV files.
pub(super) fn parse_tp(dir: &Path, tp: u32) -> Result<TpProfile> {
    // shapes.csv: op,kind,in_features,out_features,kernels,calls_per_layer
    let shapes_path = dir.join("shapes.csv");
    let shapes = Csv::read(
        &shapes_path,
        &[
            "op",
            "kind",
            "in_features",
            "out_features",
            "kernels",
            "calls_per_layer",
        ],
    )?
    .ok_or_else(|| Error::input(&shapes_path, None, "missing (every tp folder needs one)"))?;
    let mut ops: Vec<MeasuredOp> = Vec::new();
    for i in 0..shapes.len() {
        let kind_s = shapes.text(i, 1);
        let kind = OpKind::parse(kind_s).ok_or_else(|| {
            Error::input_at(
                &shapes.path,
                shapes.line(i),
                Some("kind"),
                format!("unknown kind `{kind_s}` (linear, elementwise, embedding, final, lm_head, sampler, moe)"),
            )
        })?;
        ops.push(MeasuredOp {
            name: shapes.text(i, 0).to_owned(),
            kind,
            in_features: shapes.num(i, 2)?,
            out_features: shapes.num(i, 3)?,
            kernels: shapes.num(i, 4)?.max(1.0),
            calls_per_layer: shapes.num(i, 5)?,
            raw: Vec::new(),
            table: MonotoneTable::from_points([(1.0, 0.0)]).expect("one valid point"),
        });
    }
    for (file, size_col) in [("ops.csv", "tokens"), ("per_sequence.csv", "sequences")] {
        let path = dir.join(file);
        let Some(csv) = Csv::read(&path, &["op", size_col, "time_us"])? else {
            continue;
        };
        for i in 0..csv.len() {
            let name = csv.text(i, 0);
            let op = ops.iter_mut().find(|o| o.name == name).ok_or_else(|| {
                Error::input_at(
                    &path,
                    csv.line(i),
                    Some("op"),
                    format!("`{name}` is not listed in {}", shapes_path.display()),
                )
            })?;
            op.raw.push((csv.num(i, 1)?, csv.num(i, 2)?));
        }
    }
    let mut kept = Vec::with_capacity(ops.len());
    for mut op in ops {
        if op.kind == OpKind::Moe {
            continue; // timed in moe.csv
        }
        match MonotoneTable::from_points(op.raw.iter().copied()) {
            Some(t) => {
                op.table = t;
                kept.push(op);
            }
            None => {
                return Err(Error::input(
                    &shapes_path,
                    Some("op"),
                    format!(
                        "`{}` has no measurements in ops.csv or per_sequence.csv",
                        op.name
                    ),
                ))
            }
        }
    }
    let att_path = dir.join("attention.csv");
    let mut attention = Vec::new();
    if let Some(csv) = Csv::read(
        &att_path,
        &[
            "prefill_chunk",
            "kv_prefill",
            "n_decode",
            "kv_decode",
            "time_us",
        ],
    )? {
        for i in 0..csv.len() {
            let row = AttentionRow {
                prefill_chunk: csv.num(i, 0)?,
                kv_prefill: csv.num(i, 1)?,
                n_decode: csv.num(i, 2)?,
                kv_decode: csv.num(i, 3)?,
                time_us: csv.num(i, 4)?,
            };
            if row.prefill_chunk == 0.0 && row.n_decode == 0.0 {
                return Err(Error::input_at(
                    &att_path,
                    csv.line(i),
                    Some("prefill_chunk"),
                    "a row needs a prefill chunk or decodes",
                ));
            }
            if row.time_us > 0.0 {
                attention.push(row);
            }
        }
    }
    let moe_path = dir.join("moe.csv");
    let moe = match Csv::read(&moe_path, &["tokens", "activated_experts", "time_us"])? {
        None => None,
        Some(csv) => {
            let mut pts = Vec::with_capacity(csv.len());
            for i in 0..csv.len() {
                pts.push((csv.num(i, 0)?, csv.num(i, 1)?, csv.num(i, 2)?));
            }
            Some(
                Table2::from_points(&pts)
                    .ok_or_else(|| Error::input(&moe_path, None, "no valid rows"))?,
            )
        }
    };
    let skew_path = dir.join("skew.csv");
    let mut skew = Vec::new();
    if let Some(csv) = Csv::read(
        &skew_path,
        &["regime", "n_decode", "samples", "alpha_median"],
    )? {
        for i in 0..csv.len() {
            let mixed = regime(&csv, i)?;
            let alpha: f64 = csv.text(i, 3).parse().map_err(|_| {
                Error::input_at(
                    &skew_path,
                    csv.line(i),
                    Some("alpha_median"),
                    "not a number",
                )
            })?;
            skew.push((mixed, csv.num(i, 1)?, alpha));
        }
    }
    let mut skew_samples = Vec::new();
    if let Some(csv) = Csv::read(
        &dir.join("skew_samples.csv"),
        &[
            "regime",
            "n_decode",
            "n_long",
            "prefill_chunk",
            "kv_prefill",
            "kv_short",
            "kv_long",
            "t_mean_us",
            "t_max_us",
            "t_skew_us",
        ],
    )? {
        for i in 0..csv.len() {
            skew_samples.push(SkewSample {
                mixed: regime(&csv, i)?,
                n_decode: csv.num(i, 1)?,
                n_long: csv.num(i, 2)?,
                prefill_chunk: csv.num(i, 3)?,
                kv_prefill: csv.num(i, 4)?,
                kv_short: csv.num(i, 5)?,
                kv_long: csv.num(i, 6)?,
                t_mean_us: csv.num(i, 7)?,
                t_skew_us: csv.num(i, 9)?,
            });
        }
    }
    Ok(TpProfile {
        tp,
        ops: kept,
        attention,
        moe,
        skew,
        skew_samples,
    })
}

fn regime(csv: &Csv, i: usize) -> Result<bool> {
    match csv.text(i, 0) {
        "mixed" => Ok(true),
        "pure" => Ok(false),
        other => Err(Error::input_at(
            &csv.path,
            csv.line(i),
            Some("regime"),
            format!("expected `pure` or `mixed`, found `{other}`"),
        )),
    }
}

fn load_collective(path: &Path) -> Result<Vec<CollectiveTable>> {
    let Some(csv) = Csv::read(
        path,
        &["num_workers", "devices_per_node", "size_bytes", "time_us"],
    )?
    else {
        return Ok(Vec::new());
    };
    // (workers, devices per node) -> points
    type Points = Vec<(f64, f64)>;
    let mut groups: Vec<(u32, u32, Points)> = Vec::new();
    for i in 0..csv.len() {
        let w = csv.num(i, 0)? as u32;
        let d = csv.num(i, 1)? as u32;
        let p = (csv.num(i, 2)?, csv.num(i, 3)?);
        match groups.iter_mut().find(|g| g.0 == w && g.1 == d) {
            Some(g) => g.2.push(p),
            None => groups.push((w, d, vec![p])),
        }
    }
    Ok(groups
        .into_iter()
        .filter_map(|(w, d, pts)| {
            MonotoneTable::from_points(pts).map(|table| CollectiveTable {
                num_workers: w,
                devices_per_node: d,
                table,
                version: None,
                unlike_link: None,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::DataPaths;

    fn profiles_dir() -> PathBuf {
        DataPaths::builtin().perf_model.join("profiles")
    }

    #[test]
    fn loads_a_shipped_gpu() {
        let g = GpuProfiles::load(&profiles_dir(), "rtx4090", &[]).unwrap();
        assert_eq!(g.models.len(), 1);
        let m = &g.models[0];
        assert_eq!(m.meta.model, "meta-llama/Llama-3.1-8B");
        let tp = m.at_tp(1).unwrap();
        assert!(tp.attention.len() > 1000);
        let qkv = tp.ops.iter().find(|o| o.name == "qkv_proj").unwrap();
        assert_eq!((qkv.in_features, qkv.out_features), (4096.0, 6144.0));
        assert!(tp.ops.iter().any(|o| o.kind == OpKind::Sampler));
    }

    #[test]
    fn unknown_gpu_is_empty_and_exclusion_works() {
        let g = GpuProfiles::load(&profiles_dir(), "no-such-gpu", &[]).unwrap();
        assert!(!g.has_models());
        let g = GpuProfiles::load(
            &profiles_dir(),
            "rtx4090",
            &["META-LLAMA/Llama-3.1-8B".to_owned()],
        )
        .unwrap();
        assert!(!g.has_models());
    }

    #[test]
    fn bad_values_name_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let tp = dir.path().join("tp1");
        std::fs::create_dir_all(&tp).unwrap();
        std::fs::write(
            tp.join("shapes.csv"),
            "op,kind,in_features,out_features,kernels,calls_per_layer\nqkv_proj,linear,8,8,1,1\n",
        )
        .unwrap();
        std::fs::write(
            tp.join("ops.csv"),
            "op,tokens,time_us\nqkv_proj,1,2\nqkv_proj,2,abc\n",
        )
        .unwrap();
        let e = load_tp(&tp, 1).unwrap_err().to_string();
        assert!(e.contains("ops.csv:3: field `time_us`"), "{e}");
        std::fs::write(tp.join("ops.csv"), "op,tokens\nqkv_proj,1\n").unwrap();
        let e = load_tp(&tp, 1).unwrap_err().to_string();
        assert!(
            e.contains("ops.csv:1") && e.contains("expected columns"),
            "{e}"
        );
        std::fs::write(tp.join("ops.csv"), "op,tokens,time_us\nmlp,1,2\n").unwrap();
        let e = load_tp(&tp, 1).unwrap_err().to_string();
        assert!(e.contains("field `op`") && e.contains("not listed"), "{e}");
    }
}
