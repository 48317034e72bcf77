//! Static-batch tables: one row per (model, device, TP, batch, lengths), batches of
//! identical requests all submitted at once.
//!
//! * **Argonne LLM-Inference-Bench** (`All_results.csv` and tables with its columns:
//!   `Hardware, Num of Hardware, Framework, Model, Input Output Length, Batch Size,
//!   Latency`): input = output length, `Latency` = the whole batch's wall time (the E2E
//!   of its last request), `Num of Hardware` = TP. The same table with separate
//!   lengths (`Input Length`, `Output Length`) names its batch time `Batch Latency`
//!   (results of `benchmark_latency.py`, say). Only rows of one framework are kept
//!   (vLLM by default). Tables that vary an engine setting beside these (the weight
//!   and KV-cache formats, the KV block size, the kind of parallelism, speculative
//!   decoding) group their rows by it too ([`super::table_settings`]). `Num of Hardware` counts
//!   devices as the table names them; the engine's TP is that times the mapping's
//!   [`devices_per_table_device`](HardwareMapping::devices_per_table_device) (2 for an
//!   MI250, whose OAM vLLM sees as two GPUs).
//! * **Argonne TTFT figures** (`Fig_21__all_results_TTFT.csv`,
//!   `Fig_22__all_results_TTFT_ITL.csv`: `Input Length, Output Length, Batch Size` and
//!   `Latency` or `TTFT Latency`): one `llm.generate()` of the batch with one output token,
//!   so the latency is the batch's TTFT (the last request's first token), the compared
//!   metric. A bare `Latency` column is read as TTFT only where `Output Length` is 1.
//!   Fig 22's `end_latency` is not read: the dataset's README does not document it.
//! * **Splitwise** (`perf_model.csv`: `model, hardware, prompt_size, batch_size,
//!   token_size, prompt_time, token_time, e2e_time, tensor_parallel`, times in ms):
//!   `prompt_time` = prefill of the batch, `token_time` = mean decode iteration. Its
//!   `e2e_time` is kept only for `token_size` ≤ 256 (longer runs stopped early, see the
//!   dataset's README).
//!
//! Repeated configurations are averaged; their spread is kept to show the noise.

use super::csv_table::CsvTable;
use super::mapping::{self, HardwareMapping, ModelMapping};
use super::table_settings::{GroupSetting, RowSetting, SettingColumns};
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
    /// Argonne LLM-Inference-Bench TTFT figures: batch TTFT (one output token).
    ArgonneTtft,
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
    /// Devices as the table counts them (Argonne `Num of Hardware`, Splitwise
    /// `tensor_parallel`); see [`TableGroup::tensor_parallel_size`].
    pub tp: u32,
    /// The engine setting the table varies, where it varies one (default otherwise).
    pub setting: GroupSetting,
}

impl GroupKey {
    /// A file-name-safe label (`llama-2-7b-hf_nvidia-a100-gpu_tp1`) with the table's
    /// device count; [`TableGroup::slug`] gives the simulated TP instead.
    pub fn slug(&self) -> String {
        self.slug_with_tp(self.tp)
    }

    fn slug_with_tp(&self, tp: u32) -> String {
        format!(
            "{}_{}_tp{}{}",
            slug_part(&self.model),
            slug_part(&self.hardware),
            tp,
            self.setting.slug_suffix()
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
    /// Batch time to first token: the last request's (Argonne TTFT figures).
    pub ttft_s: Option<f64>,
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

impl TableGroup {
    /// The simulated tensor-parallel size: the table's device count times the catalog
    /// devices in one of them (saturating: an absurd count then fails to resolve),
    /// over the pipeline stages where the table splits them so.
    pub fn tensor_parallel_size(&self) -> u32 {
        let pp = self.key.setting.pipeline_stages().max(1);
        (self
            .key
            .tp
            .saturating_mul(self.hardware.devices_per_table_device)
            / pp)
            .max(1)
    }

    /// A file-name-safe label with the simulated TP
    /// (`llama-2-7b-hf_amd-mi250-gpu_tp2` for one MI250 OAM).
    pub fn slug(&self) -> String {
        self.key.slug_with_tp(self.tensor_parallel_size())
    }
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
    /// What was read and how, for every group (columns left unread, say).
    pub notes: Vec<String>,
    /// The engine whose rows were kept (Argonne tables, which mix engines); none for
    /// tables of one engine.
    pub framework: Option<String>,
}

/// The table format of a CSV header, if it is one.
pub(crate) fn detect(t: &CsvTable) -> Option<TableKind> {
    if t.col(&["prompt_time"]).is_some() && t.col(&["token_time"]).is_some() {
        Some(TableKind::Splitwise)
    } else if t.col(&["Batch Size"]).is_some()
        && (t.col(&["Input Output Length"]).is_some()
            || (t.col(&["Input Length"]).is_some()
                && t.col(&["Output Length"]).is_some()
                && t.col(&[BATCH_LATENCY]).is_some()))
    {
        Some(TableKind::Argonne)
    } else if t.col(&["Input Length"]).is_some()
        && t.col(&["Output Length"]).is_some()
        && t.col(&["Batch Size"]).is_some()
        && t.col(TTFT_COLUMNS).is_some()
    {
        Some(TableKind::ArgonneTtft)
    } else {
        None
    }
}

/// The latency columns of the Argonne TTFT figures, preferred first.
const TTFT_COLUMNS: &[&str] = &["TTFT Latency", "Latency"];

/// The whole batch's wall time in a table with separate input and output lengths.
const BATCH_LATENCY: &str = "Batch Latency";

/// Read a static-batch table; `framework` picks Argonne rows (default `vLLM`).
pub fn read(path: &Path, framework: Option<&str>) -> Result<StaticTable> {
    let t = CsvTable::read(path)?;
    match detect(&t) {
        Some(kind @ (TableKind::Argonne | TableKind::ArgonneTtft)) => {
            argonne(&t, kind, framework.unwrap_or("vLLM"))
        }
        Some(TableKind::Splitwise) => splitwise(&t),
        None => Err(Error::input_at(
            path,
            1,
            None,
            "not a static-batch table: expected Argonne columns (`Input Output Length`, `Batch Size`, `Latency`; or `Input Length`, `Output Length`, `Batch Size`, `Batch Latency`), Argonne TTFT columns (`Input Length`, `Output Length`, `Batch Size`, `TTFT Latency` or `Latency`) or Splitwise columns (`prompt_time`, `token_time`)",
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

fn finish(
    path: &Path,
    kind: TableKind,
    groups: Groups,
    mut skipped: Vec<String>,
    notes: Vec<String>,
) -> StaticTable {
    let mut out = Vec::new();
    for (key, rows) in groups {
        let (m, h) = (mapping::model(&key.model), mapping::hardware(&key.hardware));
        let (model, hardware) = match (m, h) {
            (Ok(m), Ok(h)) => (m, h),
            (m, h) => {
                // The simulated TP where the device maps, as the groups' slugs show it.
                let per = h.as_ref().map_or(1, |h| h.devices_per_table_device);
                let e = m.err().or(h.err()).unwrap_or_default();
                let tp = if per == 1 {
                    format!("TP{}", key.tp)
                } else {
                    format!("× {} (TP{})", key.tp, key.tp.saturating_mul(per))
                };
                skipped.push(format!(
                    "{} on {} {tp} ({} configurations): {e}",
                    key.model,
                    key.hardware,
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
                let (e2e, ttft, prefill, decode) = match kind {
                    TableKind::Argonne => (Some(acc.mean(0)), None, None, None),
                    TableKind::ArgonneTtft => (None, Some(acc.mean(0)), None, None),
                    TableKind::Splitwise => (
                        (o <= 256).then(|| acc.mean(2)),
                        None,
                        Some(acc.mean(0)),
                        Some(acc.mean(1)),
                    ),
                };
                BatchRow {
                    batch_size: b,
                    input_len: i,
                    output_len: o,
                    e2e_s: e2e,
                    ttft_s: ttft,
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
        notes,
        framework: None,
    }
}

/// Rows of an Argonne table (`kind` Argonne or ArgonneTtft) of one framework.
fn argonne(t: &CsvTable, kind: TableKind, framework: &str) -> Result<StaticTable> {
    let settings = SettingColumns::find(t)?;
    let c_hw = t.required(&["Hardware"])?;
    let c_n = t.required(&["Num of Hardware"])?;
    let c_fw = t.required(&["Framework"])?;
    let c_model = t.required(&["Model"])?;
    let c_b = t.required(&["Batch Size"])?;
    // (input, output) length columns; the same column twice for All_results.csv.
    let (c_in, c_out, c_lat) = if kind == TableKind::ArgonneTtft {
        (
            t.required(&["Input Length"])?,
            t.required(&["Output Length"])?,
            t.required(TTFT_COLUMNS)?,
        )
    } else if let Some(c_len) = t.col(&["Input Output Length"]) {
        (c_len, c_len, t.required(&["Latency"])?)
    } else {
        (
            t.required(&["Input Length"])?,
            t.required(&["Output Length"])?,
            t.required(&[BATCH_LATENCY])?,
        )
    };
    // A bare `Latency` is the batch's TTFT only when one token is generated.
    let lat_is_ttft_only_at_one_token =
        kind == TableKind::ArgonneTtft && t.header[c_lat].eq_ignore_ascii_case("Latency");
    let mut groups = Groups::new();
    let mut frameworks = BTreeMap::<String, usize>::new();
    let mut left_out = BTreeMap::<String, usize>::new();
    for row in &t.rows {
        let fw = t.text(row, c_fw)?;
        *frameworks.entry(fw.to_owned()).or_default() += 1;
        if !fw.eq_ignore_ascii_case(framework) {
            continue;
        }
        let mut key = GroupKey {
            model: t.text(row, c_model)?.to_owned(),
            hardware: t.text(row, c_hw)?.to_owned(),
            tp: t.count(row, c_n)?,
            setting: GroupSetting::default(),
        };
        // The devices as the engine sees them (an MI250 OAM is two), where the table
        // says how they are split.
        let devices = if settings.splits_devices() {
            key.tp.saturating_mul(
                mapping::hardware(&key.hardware).map_or(1, |h| h.devices_per_table_device),
            )
        } else {
            key.tp
        };
        match settings.read(t, row, devices)? {
            RowSetting::Keep(s) => key.setting = s,
            RowSetting::Leave(why) => {
                *left_out.entry(why).or_default() += 1;
                continue;
            }
        }
        let (input, output, b) = (
            t.count(row, c_in)?,
            t.count(row, c_out)?,
            t.count(row, c_b)?,
        );
        if lat_is_ttft_only_at_one_token && output != 1 {
            return Err(t.bad(
                row,
                c_out,
                format!("`Latency` is the batch's TTFT only with one output token, got {output}; name the column `TTFT Latency` if it is TTFT"),
            ));
        }
        let lat = t.num(row, c_lat)?;
        if lat <= 0.0 {
            return Err(t.bad(row, c_lat, format!("must be positive, got {lat}")));
        }
        groups
            .entry(key)
            .or_default()
            .entry((b, input, output))
            .or_default()
            .add([lat, 0.0, 0.0], lat);
    }
    let skipped: Vec<String> = left_out
        .iter()
        .map(|(why, n)| format!("{n} rows of {framework}: {why}"))
        .collect();
    if groups.is_empty() && !skipped.is_empty() {
        return Err(Error::input(
            &t.path,
            None,
            format!(
                "no row of framework `{framework}` can be replayed: {}",
                skipped.join("; ")
            ),
        ));
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
    let mut notes = settings.notes(t);
    if kind == TableKind::ArgonneTtft {
        notes.push(format!(
            "TTFT = column `{}`: one llm.generate() of the batch with its output length, i.e. the time to the last request's first token",
            t.header[c_lat]
        ));
        if let Some(c) = t.col(&["end_latency"]) {
            notes.push(format!(
                "column `{}` is not read: the dataset's README does not document it (where All_results.csv has the same model, device and batch at 1024/1024 tokens, it equals that row's `Latency`, which is validated there)",
                t.header[c]
            ));
        }
    }
    let mut table = finish(&t.path, kind, groups, skipped, notes);
    table.framework = Some(framework.to_owned());
    Ok(table)
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
            setting: GroupSetting::default(),
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
    Ok(finish(
        &t.path,
        TableKind::Splitwise,
        groups,
        Vec::new(),
        Vec::new(),
    ))
}

/// `s` as part of a file name: its last `/` component in lowercase, every character
/// other than ASCII letters, digits and `.` as `-` (`meta-llama/Llama-3.1-8B` →
/// `llama-3.1-8b`).
pub(crate) fn slug_part(s: &str) -> String {
    let s = s.rsplit('/').next().unwrap_or(s).to_ascii_lowercase();
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "tables_tests.rs"]
mod tests;
