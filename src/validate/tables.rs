//! Static-batch tables: one row per (model, device, TP, batch, lengths), batches of
//! identical requests all submitted at once.
//!
//! * **Argonne LLM-Inference-Bench** (`All_results.csv` and tables with its columns:
//!   `Hardware, Num of Hardware, Framework, Model, Input Output Length, Batch Size,
//!   Latency`): input = output length, `Latency` = the whole batch's wall time (the E2E
//!   of its last request), `Num of Hardware` = TP. Only rows of one framework are kept
//!   (vLLM by default). Tables that vary another setting (KV block size or dtype,
//!   speculative decoding, pipeline parallelism) are refused.
//! * **Splitwise** (`perf_model.csv`: `model, hardware, prompt_size, batch_size,
//!   token_size, prompt_time, token_time, e2e_time, tensor_parallel`, times in ms):
//!   `prompt_time` = prefill of the batch, `token_time` = mean decode iteration. Its
//!   `e2e_time` is kept only for `token_size` ≤ 256 (longer runs stopped early, see the
//!   dataset's README).
//!
//! Repeated configurations are averaged; their spread is kept to show the noise.

use super::csv_table::CsvTable;
use super::mapping::{self, HardwareMapping, ModelMapping};
use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which table format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TableKind {
    /// Argonne LLM-Inference-Bench: batch E2E.
    Argonne,
    /// Splitwise profiling: per-step prefill and decode times.
    Splitwise,
}

/// What the table names a group by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GroupKey {
    /// Model as the table names it.
    pub model: String,
    /// Device as the table names it.
    pub hardware: String,
    /// Tensor-parallel size.
    pub tp: u32,
}

impl GroupKey {
    /// A file-name-safe label (`llama-2-7b-hf_nvidia-a100-gpu_tp1`).
    pub fn slug(&self) -> String {
        let clean = |s: &str| {
            let s = s.rsplit('/').next().unwrap_or(s).to_ascii_lowercase();
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect::<String>()
        };
        format!(
            "{}_{}_tp{}",
            clean(&self.model),
            clean(&self.hardware),
            self.tp
        )
    }
}

/// One measured static-batch configuration (repeats averaged). Times in seconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchRow {
    /// Requests in the batch.
    pub batch_size: u32,
    /// Prompt tokens per request.
    pub input_len: u32,
    /// Output tokens per request.
    pub output_len: u32,
    /// Batch end-to-end time (Argonne `Latency`; Splitwise `e2e_time` where reliable).
    pub e2e_s: Option<f64>,
    /// Prefill time of the whole batch (Splitwise `prompt_time`).
    pub prefill_s: Option<f64>,
    /// Mean decode iteration (Splitwise `token_time`).
    pub decode_step_s: Option<f64>,
    /// Measured rows averaged.
    pub repeats: u32,
    /// (max − min) / mean of the repeats' main time (0 for one repeat).
    pub spread: f64,
}

/// The rows of one (model, device, TP), with the catalog mapping.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableGroup {
    /// The table's names.
    pub key: GroupKey,
    /// The catalog model.
    pub model: ModelMapping,
    /// The catalog device.
    pub hardware: HardwareMapping,
    /// Configurations, sorted by (batch, input, output).
    pub rows: Vec<BatchRow>,
}

/// A static-batch table, grouped.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StaticTable {
    /// The file.
    pub source: PathBuf,
    /// Its format.
    pub kind: TableKind,
    /// Groups that map to the catalogs, sorted by key.
    pub groups: Vec<TableGroup>,
    /// Groups left out, with the reason.
    pub skipped: Vec<String>,
}

/// The table format of a CSV header, if it is one.
pub(crate) fn detect(t: &CsvTable) -> Option<TableKind> {
    if t.col(&["prompt_time"]).is_some() && t.col(&["token_time"]).is_some() {
        Some(TableKind::Splitwise)
    } else if t.col(&["Input Output Length"]).is_some() && t.col(&["Batch Size"]).is_some() {
        Some(TableKind::Argonne)
    } else {
        None
    }
}

/// Read a static-batch table; `framework` picks Argonne rows (default `vLLM`).
pub fn read(path: &Path, framework: Option<&str>) -> Result<StaticTable> {
    let t = CsvTable::read(path)?;
    match detect(&t) {
        Some(TableKind::Argonne) => argonne(&t, framework.unwrap_or("vLLM")),
        Some(TableKind::Splitwise) => splitwise(&t),
        None => Err(Error::input_at(
            path,
            1,
            None,
            "not a static-batch table: expected Argonne columns (`Input Output Length`, `Batch Size`, `Latency`) or Splitwise columns (`prompt_time`, `token_time`)",
        )),
    }
}

/// Accumulates repeats of one configuration.
#[derive(Default)]
struct Acc {
    n: u32,
    sums: [f64; 3],
    min: f64,
    max: f64,
}

impl Acc {
    fn add(&mut self, vals: [f64; 3], main: f64) {
        if self.n == 0 {
            self.min = main;
            self.max = main;
        }
        self.n += 1;
        for (s, v) in self.sums.iter_mut().zip(vals) {
            *s += v;
        }
        self.min = self.min.min(main);
        self.max = self.max.max(main);
    }
    fn mean(&self, i: usize) -> f64 {
        self.sums[i] / f64::from(self.n)
    }
}

type Groups = BTreeMap<GroupKey, BTreeMap<(u32, u32, u32), Acc>>;

fn finish(path: &Path, kind: TableKind, groups: Groups, mut skipped: Vec<String>) -> StaticTable {
    let mut out = Vec::new();
    for (key, rows) in groups {
        let (m, h) = (mapping::model(&key.model), mapping::hardware(&key.hardware));
        let (model, hardware) = match (m, h) {
            (Ok(m), Ok(h)) => (m, h),
            (Err(e), _) | (_, Err(e)) => {
                skipped.push(format!(
                    "{} on {} TP{} ({} configurations): {e}",
                    key.model,
                    key.hardware,
                    key.tp,
                    rows.len()
                ));
                continue;
            }
        };
        let rows = rows
            .into_iter()
            .map(|((b, i, o), acc)| {
                let main = acc.mean(0);
                let spread = if main > 0.0 {
                    (acc.max - acc.min) / main
                } else {
                    0.0
                };
                let (e2e, prefill, decode) = match kind {
                    TableKind::Argonne => (Some(acc.mean(0)), None, None),
                    TableKind::Splitwise => (
                        (o <= 256).then(|| acc.mean(2)),
                        Some(acc.mean(0)),
                        Some(acc.mean(1)),
                    ),
                };
                BatchRow {
                    batch_size: b,
                    input_len: i,
                    output_len: o,
                    e2e_s: e2e,
                    prefill_s: prefill,
                    decode_step_s: decode,
                    repeats: acc.n,
                    spread,
                }
            })
            .collect();
        out.push(TableGroup {
            key,
            model,
            hardware,
            rows,
        });
    }
    StaticTable {
        source: path.to_owned(),
        kind,
        groups: out,
        skipped,
    }
}

fn argonne(t: &CsvTable, framework: &str) -> Result<StaticTable> {
    for varied in [
        "KV Cache Block_size",
        "KV Cache",
        "kv_cache_dtype",
        "speculative model",
        "Parallelism Type",
    ] {
        if t.col(&[varied]).is_some() {
            return Err(Error::input_at(
                &t.path,
                1,
                Some(varied),
                "this table varies an engine setting that `validate` does not map; use All_results.csv",
            ));
        }
    }
    let c_hw = t.required(&["Hardware"])?;
    let c_n = t.required(&["Num of Hardware"])?;
    let c_fw = t.required(&["Framework"])?;
    let c_model = t.required(&["Model"])?;
    let c_len = t.required(&["Input Output Length"])?;
    let c_b = t.required(&["Batch Size"])?;
    let c_lat = t.required(&["Latency"])?;
    let mut groups = Groups::new();
    let mut frameworks = BTreeMap::<String, usize>::new();
    for row in &t.rows {
        let fw = t.text(row, c_fw)?;
        *frameworks.entry(fw.to_owned()).or_default() += 1;
        if !fw.eq_ignore_ascii_case(framework) {
            continue;
        }
        let key = GroupKey {
            model: t.text(row, c_model)?.to_owned(),
            hardware: t.text(row, c_hw)?.to_owned(),
            tp: t.count(row, c_n)?,
        };
        let (len, b) = (t.count(row, c_len)?, t.count(row, c_b)?);
        let lat = t.num(row, c_lat)?;
        if lat <= 0.0 {
            return Err(t.bad(row, c_lat, format!("must be positive, got {lat}")));
        }
        groups
            .entry(key)
            .or_default()
            .entry((b, len, len))
            .or_default()
            .add([lat, 0.0, 0.0], lat);
    }
    if groups.is_empty() {
        return Err(Error::input(
            &t.path,
            Some("Framework"),
            format!(
                "no rows of framework `{framework}`; the table has {}",
                frameworks.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(finish(&t.path, TableKind::Argonne, groups, Vec::new()))
}

fn splitwise(t: &CsvTable) -> Result<StaticTable> {
    let c_model = t.required(&["model"])?;
    let c_hw = t.required(&["hardware"])?;
    let c_tp = t.required(&["tensor_parallel"])?;
    let c_p = t.required(&["prompt_size"])?;
    let c_b = t.required(&["batch_size"])?;
    let c_o = t.required(&["token_size"])?;
    let c_pt = t.required(&["prompt_time"])?;
    let c_tt = t.required(&["token_time"])?;
    let c_e = t.required(&["e2e_time"])?;
    let mut groups = Groups::new();
    for row in &t.rows {
        let key = GroupKey {
            model: t.text(row, c_model)?.to_owned(),
            hardware: t.text(row, c_hw)?.to_owned(),
            tp: t.count(row, c_tp)?,
        };
        let cfg = (t.count(row, c_b)?, t.count(row, c_p)?, t.count(row, c_o)?);
        let mut ms = [0.0; 3];
        for (slot, c) in ms.iter_mut().zip([c_pt, c_tt, c_e]) {
            let v = t.num(row, c)?;
            if v <= 0.0 {
                return Err(t.bad(row, c, format!("must be positive, got {v}")));
            }
            *slot = v / 1e3;
        }
        groups
            .entry(key)
            .or_default()
            .entry(cfg)
            .or_default()
            .add(ms, ms[0]);
    }
    Ok(finish(&t.path, TableKind::Splitwise, groups, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argonne_rows_group_dedupe_and_skip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.csv");
        std::fs::write(
            &p,
            "Hardware,Num of Hardware,Framework,Model,Input Output Length,Batch Size,Latency,Throughput\n\
             Nvidia A100 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,128,1,1.0,1\n\
             Nvidia A100 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,128,1,3.0,1\n\
             Nvidia A100 GPU,1,TensorRT-LLM,meta-llama/Llama-2-7b-hf,128,1,9.0,1\n\
             Nvidia GH200 GPU,1,vLLM,meta-llama/Llama-2-7b-hf,128,1,1.0,1\n",
        )
        .unwrap();
        let t = read(&p, None).unwrap();
        assert_eq!(t.kind, TableKind::Argonne);
        assert_eq!(t.groups.len(), 1);
        let r = &t.groups[0].rows[0];
        assert_eq!((r.batch_size, r.input_len, r.output_len), (1, 128, 128));
        assert_eq!(r.e2e_s, Some(2.0));
        assert_eq!(r.repeats, 2);
        assert_eq!(r.spread, 1.0);
        assert_eq!(t.groups[0].hardware.hardware, "A100-SXM4-40GB");
        assert!(t.skipped[0].contains("GH200"));
        assert_eq!(t.groups[0].key.slug(), "llama-2-7b-hf_nvidia-a100-gpu_tp1");
    }

    #[test]
    fn splitwise_units_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        let head = "model,hardware,prompt_size,batch_size,token_size,peak_power,average_power,prompt_time,token_time,e2e_time,tensor_parallel\n";
        std::fs::write(
            &p,
            format!("{head}llama2-70b,a100-80gb,512,2,1024,1,1,200,50,9000,4\n"),
        )
        .unwrap();
        let t = read(&p, None).unwrap();
        let r = &t.groups[0].rows[0];
        assert_eq!(r.prefill_s, Some(0.2));
        assert_eq!(r.decode_step_s, Some(0.05));
        assert_eq!(r.e2e_s, None, "long-output e2e is unreliable");
        std::fs::write(
            &p,
            format!("{head}llama2-70b,a100-80gb,512,2,128,1,1,-3,50,9000,4\n"),
        )
        .unwrap();
        let e = read(&p, None).unwrap_err().to_string();
        assert!(
            e.ends_with("s.csv:2: field `prompt_time`: must be positive, got -3"),
            "{e}"
        );
        std::fs::write(&p, "a,b\n1,2\n").unwrap();
        assert!(read(&p, None)
            .unwrap_err()
            .to_string()
            .contains("not a static-batch table"));
    }
}
