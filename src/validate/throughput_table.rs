//! The TensorRT-LLM offline throughput table (`throughput_offline.csv` of the
//! trtllm-perf-overview set, transcribed from TRT-LLM's performance overview):
//!
//! `model, gpu, num_gpus, tp, pp, precision, isl, osl, num_requests,
//! total_output_throughput_tok_s`
//!
//! One row is one `trtllm-bench throughput` run: `num_requests` requests of exactly
//! `isl` prompt and `osl` output tokens, all queued at once, and the output tokens per
//! second of the whole system (all `num_gpus` GPUs). `precision` is `FP8` (Hopper) or
//! `FP4` (Blackwell) and names the NVIDIA ModelOpt checkpoint; one model name may stand
//! for both (`nvidia/Qwen3-235B-A22B-FP8|FP4`); `FP16` is an unquantized engine.
//!
//! An optional column `engine_version` names the TensorRT-LLM release of the row
//! (blank or absent: the PyTorch-backend releases, 0.19 and later, as the shared set's
//! README says); a release before 0.19 ran a TensorRT engine that `trtllm-bench build`
//! compiled ([`EngineFlow`]).
//!
//! Optional columns give how a run's engine was built and run where the page states it
//! rather than leaving it to `trtllm-bench`: `max_batch_size` and `max_num_tokens` (the
//! engine's compiled limits, both or neither), `kv_cache_free_gpu_mem_fraction` and
//! `scheduler_policy` (`guaranteed_no_evict` or `max_utilization`), the last two the
//! same on every row of a group ([`RunSettings`]).
//!
//! Rows are grouped by (model, GPU, num_gpus, TP, PP, precision, release). Groups whose
//! model or GPU has no catalog entry are skipped with the reason; malformed rows are
//! errors naming the file, line and field.

use super::csv_table::CsvTable;
use super::mapping::{self, HardwareMapping, ModelMapping};
use crate::dtype::DType;
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The column that identifies the table.
const THROUGHPUT: &str = "total_output_throughput_tok_s";

/// Whether the table's header is a TensorRT-LLM offline throughput table's.
pub(crate) fn looks_like_throughput(t: &CsvTable) -> bool {
    [THROUGHPUT, "isl", "osl", "num_requests"]
        .iter()
        .all(|c| t.col(&[c]).is_some())
}

/// The checkpoint precision of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// FP8 weights and activations (ModelOpt FP8 checkpoints, Hopper; or an engine
    /// built with `--quantization FP8`).
    Fp8,
    /// NVFP4 weights and activations (ModelOpt FP4 checkpoints, Blackwell).
    Fp4,
    /// An unquantized 16-bit engine (fp16 weights, activations and KV cache).
    Fp16,
}

impl Precision {
    /// The table's spelling (`FP8`).
    pub fn label(self) -> &'static str {
        match self {
            Precision::Fp8 => "FP8",
            Precision::Fp4 => "FP4",
            Precision::Fp16 => "FP16",
        }
    }

    /// The weight (and activation) format of the matrices.
    pub fn weight_dtype(self) -> DType {
        match self {
            Precision::Fp8 => DType::Fp8,
            Precision::Fp4 => DType::Nvfp4,
            Precision::Fp16 => DType::Fp16,
        }
    }
}

/// How a TensorRT-LLM release ran the model in `trtllm-bench throughput`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineFlow {
    /// The PyTorch backend (0.19 and later; the default from 1.0): no engine build,
    /// CUDA graphs and the overlap scheduler, MoE models with attention data
    /// parallelism where the run says `--ep`.
    PyTorch,
    /// A TensorRT engine compiled by `trtllm-bench build` (before 0.19), run by the C++
    /// executor; MoE experts split by tensor parallelism.
    TensorRtEngine,
}

/// The first release whose `trtllm-bench` ran the PyTorch backend.
const PYTORCH_FLOW_FROM: (u32, u32) = (0, 19);

/// `(major, minor)` of a release string (`0.17.0`, `1.0.0rc3`).
pub(crate) fn major_minor(v: &str) -> Option<(u32, u32)> {
    let mut it = v.trim().split('.');
    let major = it.next()?.parse().ok()?;
    let minor: String = it
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "FP8" => Ok(Precision::Fp8),
            "FP4" | "NVFP4" => Ok(Precision::Fp4),
            "FP16" => Ok(Precision::Fp16),
            _ => Err(format!("unknown precision `{s}`; expected FP8 or FP4")),
        }
    }
}

/// What the table names a group by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ThroughputKey {
    /// Model as the table names it.
    pub model: String,
    /// GPU as the table names it.
    pub gpu: String,
    /// GPUs of the whole system.
    pub num_gpus: u32,
    /// Tensor-parallel size.
    pub tp: u32,
    /// Pipeline-parallel size.
    pub pp: u32,
    /// Checkpoint precision.
    pub precision: Precision,
    /// The TensorRT-LLM release, where the table gives it.
    pub engine_version: Option<String>,
}

/// Lowercase, with runs of characters other than letters, digits and `.` as one `-`.
fn clean(s: &str) -> String {
    let mut out = String::new();
    for c in s.to_ascii_lowercase().chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

impl ThroughputKey {
    /// How the row's release ran the model (no release given: the PyTorch backend).
    pub fn flow(&self) -> EngineFlow {
        match self.engine_version.as_deref().and_then(major_minor) {
            Some(v) if v < PYTORCH_FLOW_FROM => EngineFlow::TensorRtEngine,
            _ => EngineFlow::PyTorch,
        }
    }

    /// The serving stack of the row's `trtllm-bench` run: `trtllm` (the PyTorch
    /// backend, and a table that names no release) or `trtllm-engine` (a TensorRT engine
    /// driven by the C++ executor).
    pub fn stack(&self) -> &'static str {
        match self.flow() {
            EngineFlow::PyTorch => "trtllm",
            EngineFlow::TensorRtEngine => "trtllm-engine",
        }
    }

    /// A file-name-safe label (`llama-3.1-8b-instruct_h100_tp1_pp1_fp8`): the model
    /// without its owner, precision suffix or remark, the GPU, TP, PP and precision
    /// (and `_trtllm-<release>` where the table gives one).
    pub fn slug(&self) -> String {
        let m = self.model.split('(').next().unwrap_or(&self.model);
        let m = m.rsplit('/').next().unwrap_or(m).to_ascii_lowercase();
        let m = ["-fp8|fp4", "-fp8", "-fp4"]
            .iter()
            .find_map(|s| m.strip_suffix(s))
            .unwrap_or(&m);
        let release = self
            .engine_version
            .as_deref()
            .map_or(String::new(), |v| format!("_trtllm-{}", clean(v)));
        format!(
            "{}_{}_tp{}_pp{}_{}{release}",
            clean(m),
            clean(&self.gpu),
            self.tp,
            self.pp,
            self.precision.label().to_ascii_lowercase()
        )
    }
}

/// The batch and token limits compiled into a row's engine, where the table gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct EngineLimits {
    /// Sequences per iteration (`--max_batch_size`).
    pub max_batch_size: u32,
    /// Tokens per iteration (`--max_num_tokens`).
    pub max_num_tokens: u32,
}

/// TensorRT-LLM's capacity scheduler (`--scheduler_policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CapacityPolicy {
    /// Admit a request only when its whole sequence fits the KV cache (the default).
    GuaranteedNoEvict,
    /// Admit while blocks last; pause the newest requests (their KV dropped) when the
    /// cache runs short.
    MaxUtilization,
}

impl std::str::FromStr for CapacityPolicy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "guaranteed_no_evict" => Ok(CapacityPolicy::GuaranteedNoEvict),
            "max_utilization" => Ok(CapacityPolicy::MaxUtilization),
            _ => Err(format!(
                "unknown scheduler policy `{s}`; expected guaranteed_no_evict or max_utilization"
            )),
        }
    }
}

/// How a group's runs were made, where the table says (the same on all its rows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct RunSettings {
    /// `--kv_cache_free_gpu_mem_fraction`.
    pub kv_cache_free_gpu_mem_fraction: Option<f64>,
    /// `--scheduler_policy`.
    pub scheduler_policy: Option<CapacityPolicy>,
}

/// The optional run-setting columns of a table.
struct RunColumns {
    batch: Option<usize>,
    tokens: Option<usize>,
    kv: Option<usize>,
    policy: Option<usize>,
}

impl RunColumns {
    fn of(t: &CsvTable) -> RunColumns {
        RunColumns {
            batch: t.col(&["max_batch_size"]),
            tokens: t.col(&["max_num_tokens"]),
            kv: t.col(&["kv_cache_free_gpu_mem_fraction"]),
            policy: t.col(&["scheduler_policy"]),
        }
    }

    /// A row's engine limits and run settings; blank cells give none.
    fn read(
        &self,
        t: &CsvTable,
        row: &(u64, Vec<String>),
    ) -> Result<(Option<EngineLimits>, RunSettings)> {
        let blank = |c: Option<usize>| -> Result<Option<usize>> {
            Ok(match c {
                Some(c) if !t.text(row, c)?.is_empty() => Some(c),
                _ => None,
            })
        };
        let limits = match (blank(self.batch)?, blank(self.tokens)?) {
            (Some(b), Some(n)) => Some(EngineLimits {
                max_batch_size: t.count(row, b)?,
                max_num_tokens: t.count(row, n)?,
            }),
            (None, None) => None,
            (Some(c), None) | (None, Some(c)) => {
                return Err(t.bad(
                    row,
                    c,
                    "max_batch_size and max_num_tokens go together: give both or neither".into(),
                ))
            }
        };
        let kv = match blank(self.kv)? {
            Some(c) => {
                let f = t.num(row, c)?;
                if !(f > 0.0 && f <= 1.0) {
                    return Err(t.bad(row, c, format!("must be in (0, 1], got {f}")));
                }
                Some(f)
            }
            None => None,
        };
        let policy = match blank(self.policy)? {
            Some(c) => Some(t.text(row, c)?.parse().map_err(|m| t.bad(row, c, m))?),
            None => None,
        };
        Ok((
            limits,
            RunSettings {
                kv_cache_free_gpu_mem_fraction: kv,
                scheduler_policy: policy,
            },
        ))
    }
}

/// One measured configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThroughputRow {
    /// 1-based line of the row in the file.
    pub line: u64,
    /// Prompt tokens per request.
    pub isl: u32,
    /// Output tokens per request.
    pub osl: u32,
    /// Requests of the run.
    pub num_requests: u32,
    /// Measured output tokens per second of the whole system.
    pub output_tokens_per_s: f64,
    /// The engine's compiled limits, where the table gives them.
    pub engine_limits: Option<EngineLimits>,
}

/// The rows of one (model, GPU, GPUs, TP, PP, precision), with the catalog mapping.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThroughputGroup {
    /// The table's names.
    pub key: ThroughputKey,
    /// The catalog model.
    pub model: ModelMapping,
    /// The catalog device.
    pub hardware: HardwareMapping,
    /// Configurations, sorted by (ISL, OSL, requests).
    pub rows: Vec<ThroughputRow>,
    /// How the runs were made, where the table says.
    pub run: RunSettings,
}

/// An offline throughput table, grouped.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThroughputTable {
    /// The file.
    pub source: PathBuf,
    /// Groups that map to the catalogs, sorted by key.
    pub groups: Vec<ThroughputGroup>,
    /// Groups left out, with the reason.
    pub skipped: Vec<String>,
}

/// Read an offline throughput table.
pub fn read(path: &Path) -> Result<ThroughputTable> {
    let t = CsvTable::read(path)?;
    if !looks_like_throughput(&t) {
        return Err(Error::input_at(
            path,
            1,
            None,
            format!("not a TensorRT-LLM offline throughput table: expected the columns model, gpu, num_gpus, tp, pp, precision, isl, osl, num_requests, {THROUGHPUT}"),
        ));
    }
    read_table(&t)
}

pub(crate) fn read_table(t: &CsvTable) -> Result<ThroughputTable> {
    let c_model = t.required(&["model"])?;
    let c_gpu = t.required(&["gpu"])?;
    let c_n = t.required(&["num_gpus"])?;
    let c_tp = t.required(&["tp"])?;
    let c_pp = t.required(&["pp"])?;
    let c_prec = t.required(&["precision"])?;
    let c_isl = t.required(&["isl"])?;
    let c_osl = t.required(&["osl"])?;
    let c_req = t.required(&["num_requests"])?;
    let c_tput = t.required(&[THROUGHPUT])?;
    let c_version = t.col(&["engine_version"]);
    let run_cols = RunColumns::of(t);
    let mut groups: BTreeMap<ThroughputKey, BTreeMap<(u32, u32, u32), ThroughputRow>> =
        BTreeMap::new();
    let mut runs: BTreeMap<ThroughputKey, (u64, RunSettings)> = BTreeMap::new();
    for row in &t.rows {
        let model = t.text(row, c_model)?;
        if model.is_empty() {
            return Err(t.bad(row, c_model, "empty model name".into()));
        }
        let gpu = t.text(row, c_gpu)?;
        if gpu.is_empty() {
            return Err(t.bad(row, c_gpu, "empty GPU name".into()));
        }
        let (n, tp, pp) = (t.count(row, c_n)?, t.count(row, c_tp)?, t.count(row, c_pp)?);
        if u64::from(tp) * u64::from(pp) != u64::from(n) {
            return Err(t.bad(row, c_n, format!("{n} GPUs is not tp × pp = {tp} × {pp}")));
        }
        let precision: Precision = t
            .text(row, c_prec)?
            .parse()
            .map_err(|m| t.bad(row, c_prec, m))?;
        let (isl, osl, reqs) = (
            t.count(row, c_isl)?,
            t.count(row, c_osl)?,
            t.count(row, c_req)?,
        );
        let tput = t.num(row, c_tput)?;
        if tput <= 0.0 {
            return Err(t.bad(row, c_tput, format!("must be positive, got {tput}")));
        }
        let engine_version = match c_version {
            Some(c) => {
                let v = t.text(row, c)?;
                if v.is_empty() {
                    None
                } else if major_minor(v).is_none() {
                    return Err(t.bad(
                        row,
                        c,
                        format!("`{v}` is not a release (major.minor[.patch])"),
                    ));
                } else {
                    Some(v.to_owned())
                }
            }
            None => None,
        };
        let key = ThroughputKey {
            model: model.to_owned(),
            gpu: gpu.to_owned(),
            num_gpus: n,
            tp,
            pp,
            precision,
            engine_version,
        };
        let (engine_limits, run) = run_cols.read(t, row)?;
        let (first_line, first) = *runs.entry(key.clone()).or_insert((row.0, run));
        if first != run {
            return Err(t.bad(
                row,
                c_model,
                format!("kv_cache_free_gpu_mem_fraction and scheduler_policy differ from line {first_line} of the same group (model, GPU, parallelism, precision, release)"),
            ));
        }
        let rows = groups.entry(key).or_default();
        if let Some(first) = rows.get(&(isl, osl, reqs)) {
            return Err(t.bad(
                row,
                c_isl,
                format!(
                    "the same configuration (ISL {isl}, OSL {osl}, {reqs} requests) as line {}",
                    first.line
                ),
            ));
        }
        rows.insert(
            (isl, osl, reqs),
            ThroughputRow {
                line: row.0,
                isl,
                osl,
                num_requests: reqs,
                output_tokens_per_s: tput,
                engine_limits,
            },
        );
    }
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (key, rows) in groups {
        let mapped = mapping::trtllm_model(&key.model).and_then(|m| {
            if mapping::trtllm_precision_matches(&key.model, key.precision.label()) {
                Ok(m)
            } else {
                Err(format!(
                    "model `{}` names another checkpoint than precision {}",
                    key.model,
                    key.precision.label()
                ))
            }
        });
        match (mapped, mapping::trtllm_hardware(&key.gpu)) {
            (Ok(model), Ok(hardware)) => out.push(ThroughputGroup {
                run: runs[&key].1,
                key,
                model,
                hardware,
                rows: rows.into_values().collect(),
            }),
            (Err(e), _) | (_, Err(e)) => skipped.push(format!(
                "{} on {} × {} TP{} PP{} {} ({} rows): {e}",
                key.model,
                key.num_gpus,
                key.gpu,
                key.tp,
                key.pp,
                key.precision.label(),
                rows.len()
            )),
        }
    }
    Ok(ThroughputTable {
        source: t.path.clone(),
        groups: out,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "model,gpu,num_gpus,tp,pp,precision,isl,osl,num_requests,total_output_throughput_tok_s\n";

    fn write(body: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("throughput_offline.csv");
        std::fs::write(&p, format!("{HEAD}{body}")).unwrap();
        (dir, p)
    }

    #[test]
    fn rows_group_sort_and_skip() {
        let (_d, p) = write(
            "nvidia/Llama-3.1-8B-Instruct-FP8,H100,1,1,1,FP8,1000,1000,3000,15220\n\
             nvidia/Llama-3.1-8B-Instruct-FP8,H100,1,1,1,FP8,128,128,30000,28312\n\
             nvidia/Qwen3-235B-A22B-FP8|FP4,B200,8,8,1,FP4,128,128,30000,80000.5\n\
             nvidia/Mistral-Large-3-675B-FP4,B200,1,1,1,FP4,128,128,30000,25342\n\
             nvidia/Qwen3-30B-A3B-FP4,H100,1,1,1,FP8,128,128,30000,1000\n\
             nvidia/Llama-3.1-8B-Instruct-FP8,MI300X,1,1,1,FP8,128,128,30000,1000\n",
        );
        let t = read(&p).unwrap();
        assert_eq!(t.groups.len(), 2);
        let g = &t.groups[0];
        assert_eq!(g.key.slug(), "llama-3.1-8b-instruct_h100_tp1_pp1_fp8");
        assert_eq!(g.model.model, "meta-llama/Llama-3.1-8B-Instruct");
        assert_eq!(g.hardware.hardware, "H100-SXM5-80GB");
        assert_eq!(
            g.rows
                .iter()
                .map(|r| (r.line, r.isl, r.num_requests))
                .collect::<Vec<_>>(),
            vec![(3, 128, 30000), (2, 1000, 3000)]
        );
        let q = &t.groups[1];
        assert_eq!(q.key.slug(), "qwen3-235b-a22b_b200_tp8_pp1_fp4");
        assert_eq!(q.key.precision.weight_dtype(), DType::Nvfp4);
        assert_eq!(q.rows[0].output_tokens_per_s, 80000.5);
        assert_eq!(t.skipped.len(), 3, "{:?}", t.skipped);
        assert!(t.skipped.iter().any(|s| s.contains("Mistral-Large-3")));
        assert!(t.skipped.iter().any(|s| s.contains("another checkpoint")));
        assert!(t.skipped.iter().any(|s| s.contains("MI300X")));
    }

    /// The 0.17 overview's spelling: models by family and size, GPUs with their memory,
    /// FP16 rows, a release column (in the group's key and slug).
    #[test]
    fn releases_fp16_rows_and_the_0_17_names_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(
            &p,
            format!(
                "{},engine_version\n\
                 LLaMA v3.1 8B,A100-SXM4-80GB,1,1,1,FP16,128,128,30000,6627.27,0.17.0\n\
                 Mixtral 8x7B,H100 80GB HBM3,2,2,1,FP8,128,128,30000,27451.13,0.17.0\n\
                 LLaMA v3.1 70B,GH200 480GB,1,1,1,FP8,128,128,30000,3636.91,\n",
                HEAD.trim_end()
            ),
        )
        .unwrap();
        let t = read(&p).unwrap();
        assert_eq!(t.groups.len(), 3, "{:?}", t.skipped);
        // Sorted by the table's names: 70B, 8B, Mixtral.
        let a100 = &t.groups[1];
        assert_eq!(a100.model.model, "meta-llama/Llama-3.1-8B");
        assert_eq!(a100.hardware.hardware, "A100-SXM4-80GB");
        assert_eq!(a100.key.precision.weight_dtype(), DType::Fp16);
        assert_eq!(a100.key.flow(), EngineFlow::TensorRtEngine);
        assert_eq!(
            a100.key.slug(),
            "llama-v3.1-8b_a100-sxm4-80gb_tp1_pp1_fp16_trtllm-0.17.0"
        );
        let gh200 = &t.groups[0];
        assert_eq!(gh200.model.model, "meta-llama/Llama-3.1-70B");
        assert_eq!(gh200.hardware.hardware, "GH200-96GB");
        assert_eq!(gh200.key.engine_version, None);
        assert_eq!(gh200.key.flow(), EngineFlow::PyTorch);
        assert_eq!(t.groups[2].model.model, "mistralai/Mixtral-8x7B-v0.1");
        // A release that is not one names its line and field.
        std::fs::write(
            &p,
            format!(
                "{},engine_version\nMixtral 8x7B,H100 80GB HBM3,2,2,1,FP8,128,128,30000,1,latest\n",
                HEAD.trim_end()
            ),
        )
        .unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.contains("t.csv:2: field `engine_version`: `latest` is not a release"),
            "{e}"
        );
    }

    /// The 0.10 / 0.11 pages' engines: limits per row, KV fraction and capacity
    /// policy per group; half-given limits, a fraction out of range, an unknown policy
    /// and a group whose rows disagree name their line and field.
    #[test]
    fn engine_limits_and_run_settings_read_per_row_and_group() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        let head = format!(
            "{},engine_version,max_batch_size,max_num_tokens,kv_cache_free_gpu_mem_fraction,scheduler_policy\n",
            HEAD.trim_end()
        );
        let write = |body: &str| std::fs::write(&p, format!("{head}{body}")).unwrap();
        write(
            "LLaMA v2 70B,H100 80GB HBM3,4,4,1,FP8,128,128,30000,9000,0.11.0,4096,8192,0.99,guaranteed_no_evict\n\
             LLaMA v2 70B,H100 80GB HBM3,4,4,1,FP8,128,4096,1500,3000,0.11.0,256,8192,0.99,guaranteed_no_evict\n\
             LLaMA v3 8B,L40S,1,1,1,FP16,128,128,2000,5000,0.10.0,,,0.9,MAX_UTILIZATION\n",
        );
        let t = read(&p).unwrap();
        let llama2 = &t.groups[0];
        assert_eq!(
            llama2
                .rows
                .iter()
                .map(|r| r.engine_limits)
                .collect::<Vec<_>>(),
            [
                Some(EngineLimits {
                    max_batch_size: 4096,
                    max_num_tokens: 8192
                }),
                Some(EngineLimits {
                    max_batch_size: 256,
                    max_num_tokens: 8192
                }),
            ]
        );
        assert_eq!(llama2.run.kv_cache_free_gpu_mem_fraction, Some(0.99));
        assert_eq!(
            llama2.run.scheduler_policy,
            Some(CapacityPolicy::GuaranteedNoEvict)
        );
        let l40s = &t.groups[1];
        assert_eq!(l40s.rows[0].engine_limits, None);
        assert_eq!(
            l40s.run.scheduler_policy,
            Some(CapacityPolicy::MaxUtilization)
        );
        for (body, want) in [
            (
                "LLaMA v3 8B,L40S,1,1,1,FP8,128,128,2000,5000,0.10.0,2048,,0.9,max_utilization\n",
                ":2: field `max_batch_size`: max_batch_size and max_num_tokens go together",
            ),
            (
                "LLaMA v3 8B,L40S,1,1,1,FP8,128,128,2000,5000,0.10.0,2048,2048,1.5,max_utilization\n",
                ":2: field `kv_cache_free_gpu_mem_fraction`: must be in (0, 1], got 1.5",
            ),
            (
                "LLaMA v3 8B,L40S,1,1,1,FP8,128,128,2000,5000,0.10.0,2048,2048,0.9,fcfs\n",
                ":2: field `scheduler_policy`: unknown scheduler policy `fcfs`",
            ),
            (
                "LLaMA v3 8B,L40S,1,1,1,FP8,128,128,2000,5000,0.10.0,2048,2048,0.9,max_utilization\n\
                 LLaMA v3 8B,L40S,1,1,1,FP8,128,2048,2000,900,0.10.0,2048,2048,0.95,max_utilization\n",
                ":3: field `model`: kv_cache_free_gpu_mem_fraction and scheduler_policy differ from line 2",
            ),
        ] {
            write(body);
            let e = read(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn malformed_rows_name_line_and_field() {
        let cases = [
            (
                "nvidia/Llama-3.1-8B-Instruct-FP8,H100,1,1,1,FP8,128,128,30000,28312\n\
                 nvidia/Llama-3.1-8B-Instruct-FP8,H100,1,1,1,FP8,128,abc,30000,28312\n",
                ":3: field `osl`: not a finite number: `abc`",
            ),
            (
                "nvidia/Llama-3.1-8B-Instruct-FP8,H100,1,1,1,INT4,128,128,30000,28312\n",
                ":2: field `precision`: unknown precision `INT4`",
            ),
            (
                "nvidia/Llama-3.1-8B-Instruct-FP8,H100,4,2,1,FP8,128,128,30000,28312\n",
                ":2: field `num_gpus`: 4 GPUs is not tp × pp = 2 × 1",
            ),
            (
                "nvidia/Llama-3.1-8B-Instruct-FP8,H100,1,1,1,FP8,128,128,30000,-5\n",
                ":2: field `total_output_throughput_tok_s`: must be positive, got -5",
            ),
            (
                "nvidia/Llama-3.1-8B-Instruct-FP8,H100,1,1,1,FP8,128,128,0,28312\n",
                ":2: field `num_requests`: must be a whole number ≥ 1, got 0",
            ),
            (
                "nvidia/Llama-3.1-8B-Instruct-FP8,H100,1,1,1,FP8,128,128\n",
                ":2: field `num_requests`: missing value",
            ),
            (
                "nvidia/Llama-3.1-8B-Instruct-FP8,H100,1,1,1,FP8,128,128,30000,1\n\
                 nvidia/Llama-3.1-8B-Instruct-FP8,H100,1,1,1,FP8,128,128,30000,2\n",
                ":3: field `isl`: the same configuration (ISL 128, OSL 128, 30000 requests) as line 2",
            ),
        ];
        for (body, want) in cases {
            let (_d, p) = write(body);
            let e = read(&p).unwrap_err().to_string();
            assert!(
                e.contains(&format!("throughput_offline.csv{want}")),
                "{e}\nwanted {want}"
            );
        }
        let (_d, p) = write("");
        std::fs::write(&p, "model,gpu\nx,y\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.contains(":1: not a TensorRT-LLM offline throughput table"),
            "{e}"
        );
    }
}
