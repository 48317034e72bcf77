//! Per-point output rows: `points.csv`, `points.json`, `sweep.json`, and the merge of
//! shards.
//!
//! Every value is formatted once, as text (floats with 6 decimals), and both files are
//! written from that text. Merging reads the CSV text back and writes it again, so a
//! merged folder is byte-identical to an unsharded run.

use super::exec::{Outcome, PointMetrics};
use super::grid::Point;
use crate::error::{Error, Result};
use crate::metrics::DistStats;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

/// How a column is written in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A number (written as its text).
    Num,
    /// A string.
    Str,
    /// `true`/`false`.
    Bool,
}

/// The columns of `points.csv`, in order.
pub const COLUMNS: &[(&str, Kind)] = &[
    ("index", Kind::Num),
    ("config_index", Kind::Num),
    ("status", Kind::Str),
    ("reason", Kind::Str),
    ("hardware", Kind::Str),
    ("tensor_parallel_size", Kind::Num),
    ("pipeline_parallel_size", Kind::Num),
    ("num_replicas", Kind::Num),
    ("max_num_seqs", Kind::Num),
    ("max_num_batched_tokens", Kind::Num),
    ("enable_chunked_prefill", Kind::Bool),
    ("workload", Kind::Str),
    ("load", Kind::Num),
    ("offered_rps", Kind::Num),
    ("gpus", Kind::Num),
    ("completed", Kind::Num),
    ("rejected", Kind::Num),
    ("throughput_rps", Kind::Num),
    ("output_tokens_per_s", Kind::Num),
    ("total_tokens_per_s", Kind::Num),
    ("goodput_rps", Kind::Num),
    ("slo_attainment", Kind::Num),
    ("ttft_mean_s", Kind::Num),
    ("ttft_p50_s", Kind::Num),
    ("ttft_p90_s", Kind::Num),
    ("ttft_p99_s", Kind::Num),
    ("tpot_mean_s", Kind::Num),
    ("tpot_p50_s", Kind::Num),
    ("tpot_p90_s", Kind::Num),
    ("tpot_p99_s", Kind::Num),
    ("e2e_mean_s", Kind::Num),
    ("e2e_p50_s", Kind::Num),
    ("e2e_p90_s", Kind::Num),
    ("e2e_p99_s", Kind::Num),
    ("price_usd_per_gpu_hour", Kind::Num),
    ("energy_usd_per_gpu_hour", Kind::Num),
    ("cost_usd_per_hour", Kind::Num),
    ("usd_per_million_output_tokens", Kind::Num),
    ("usd_per_million_total_tokens", Kind::Num),
    ("note", Kind::Str),
];

/// The position of column `name` in [`COLUMNS`].
pub fn col(name: &str) -> usize {
    COLUMNS
        .iter()
        .position(|(c, _)| *c == name)
        .expect("known column name")
}

/// One output row: a value (text) per column; empty = none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row(pub Vec<String>);

impl Row {
    /// The text of column `name`.
    pub fn get(&self, name: &str) -> &str {
        &self.0[col(name)]
    }

    /// Column `name` as a number (None when empty or not a number).
    pub fn num(&self, name: &str) -> Option<f64> {
        self.get(name).parse().ok()
    }

    /// The point index.
    pub fn index(&self) -> usize {
        self.get("index").parse().unwrap_or(usize::MAX)
    }
}

/// A float with fixed precision; non-finite values are empty.
pub fn fmt_f(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.6}")
    } else {
        String::new()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn dist(d: &DistStats) -> [String; 4] {
    [fmt_f(d.mean), fmt_f(d.p50), fmt_f(d.p90), fmt_f(d.p99)]
}

/// The row of `point` with its `outcome`, `workload` naming the load's meaning.
pub fn point_row(
    point: &Point,
    configs_loads: usize,
    workload: &str,
    outcome: &Outcome,
    offered_rps: f64,
) -> Row {
    let c = &point.config;
    let mut v: Vec<String> = vec![
        point.index.to_string(),
        (point.index / configs_loads.max(1)).to_string(),
        String::new(),
        String::new(),
        c.hardware.clone(),
        c.tp.to_string(),
        c.pp.to_string(),
        c.replicas.to_string(),
        opt(c.max_num_seqs),
        opt(c.max_num_batched_tokens),
        opt(c.enable_chunked_prefill),
        workload.to_owned(),
        fmt_f(point.load),
        fmt_f(offered_rps),
    ];
    let empty_tail = COLUMNS.len() - v.len();
    match outcome {
        Outcome::Infeasible(reason) => {
            v[2] = "infeasible".into();
            v[3] = reason.replace(['\n', '\r'], " ");
            v.extend(std::iter::repeat_n(String::new(), empty_tail));
        }
        Outcome::Ok(m) => {
            v[2] = "ok".into();
            metrics_cells(&mut v, m);
        }
    }
    debug_assert_eq!(v.len(), COLUMNS.len());
    Row(v)
}

fn metrics_cells(v: &mut Vec<String>, m: &PointMetrics) {
    v.push(m.gpus.to_string());
    v.push(m.completed.to_string());
    v.push(m.rejected.to_string());
    v.push(fmt_f(m.throughput_rps));
    v.push(fmt_f(m.output_tokens_per_s));
    v.push(fmt_f(m.total_tokens_per_s));
    v.push(fmt_f(m.goodput_rps));
    v.push(fmt_f(m.slo_attainment));
    v.extend(dist(&m.ttft));
    v.extend(dist(&m.tpot));
    v.extend(dist(&m.e2e));
    v.push(m.price_usd_per_gpu_hour.map(fmt_f).unwrap_or_default());
    v.push(
        m.energy_usd_per_gpu_hour
            .flatten()
            .map(fmt_f)
            .unwrap_or_default(),
    );
    v.push(m.cost_usd_per_hour().map(fmt_f).unwrap_or_default());
    v.push(
        m.usd_per_million_output_tokens()
            .map(fmt_f)
            .unwrap_or_default(),
    );
    v.push(
        m.usd_per_million_total_tokens()
            .map(fmt_f)
            .unwrap_or_default(),
    );
    let cost = if m.price_usd_per_gpu_hour.is_none() {
        Some("no price for this hardware: cost left empty, excluded from cost ranking (set --price-per-gpu-hour NAME=USD)")
    } else if m.energy_usd_per_gpu_hour == Some(None) {
        Some("no power figure for this hardware: cost left empty, excluded from cost ranking (set --power-w)")
    } else {
        None
    };
    let notes: Vec<&str> = cost.into_iter().chain(m.stack_note.as_deref()).collect();
    v.push(notes.join("; "));
}

/// What every shard of one sweep shares (`sweep.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepMeta {
    /// Sweep name.
    pub name: String,
    /// Points in the whole grid.
    pub total_points: usize,
    /// Loads per configuration.
    pub loads_per_config: usize,
}

/// Which slice of the grid a run computes: points with `index % count == index_of_shard`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: usize,
    /// Shards in all.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::input(
                "<command line>",
                Some("shard"),
                format!("`{s}`: expected I/N with 0 <= I < N (e.g. 0/4)"),
            )
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// The point indices of this shard among `total`.
    pub fn indices(&self, total: usize) -> Vec<usize> {
        (self.index..total).step_by(self.count).collect()
    }
}

fn json_cell(out: &mut String, kind: Kind, v: &str) {
    if v.is_empty() {
        out.push_str("null");
        return;
    }
    match kind {
        Kind::Num | Kind::Bool => out.push_str(v),
        Kind::Str => out.push_str(&serde_json::to_string(v).unwrap_or_else(|_| "null".into())),
    }
}

/// `points.json`'s text: one object per row, numbers and booleans typed.
pub fn points_json(rows: &[Row]) -> String {
    table_json(COLUMNS, rows.iter().map(|r| r.0.as_slice()))
}

/// Rows of text cells as a JSON array of objects, one line per row, each cell typed by
/// its column's [`Kind`] (an empty cell is `null`).
pub fn table_json<'a>(
    columns: &[(&str, Kind)],
    rows: impl ExactSizeIterator<Item = &'a [String]>,
) -> String {
    let mut json = String::from("[\n");
    let n = rows.len();
    for (k, r) in rows.enumerate() {
        json.push_str("  {");
        for (i, ((name, kind), v)) in columns.iter().zip(r).enumerate() {
            if i > 0 {
                json.push_str(", ");
            }
            json.push('"');
            json.push_str(name);
            json.push_str("\": ");
            json_cell(&mut json, *kind, v);
        }
        json.push('}');
        if k + 1 < n {
            json.push(',');
        }
        json.push('\n');
    }
    json.push_str("]\n");
    json
}

/// Write `points.csv`, `points.json` and `sweep.json` (and `shard.json` when sharded)
/// into `dir`; rows must be sorted by index.
pub fn write_points(
    dir: &Path,
    meta: &SweepMeta,
    shard: Option<Shard>,
    rows: &[Row],
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let csv_path = dir.join("points.csv");
    let mut w = csv::Writer::from_path(&csv_path)
        .map_err(|e| Error::input(&csv_path, None, e.to_string()))?;
    let csv_err = |e: csv::Error| Error::input(&csv_path, None, e.to_string());
    w.write_record(COLUMNS.iter().map(|(c, _)| *c))
        .map_err(csv_err)?;
    for r in rows {
        w.write_record(&r.0).map_err(csv_err)?;
    }
    w.flush().map_err(|e| Error::io(&csv_path, e))?;

    let json = points_json(rows);
    let json_path = dir.join("points.json");
    std::fs::write(&json_path, json).map_err(|e| Error::io(&json_path, e))?;
    crate::report::write_json(&dir.join("sweep.json"), meta)?;
    let shard_path = dir.join("shard.json");
    match shard {
        Some(s) => crate::report::write_json(&shard_path, &s)?,
        None => {
            if shard_path.exists() {
                std::fs::remove_file(&shard_path).map_err(|e| Error::io(&shard_path, e))?;
            }
        }
    }
    Ok(())
}

/// Read the rows and metadata of a sweep folder.
pub fn read_points(dir: &Path) -> Result<(SweepMeta, Vec<Row>)> {
    let meta_path = dir.join("sweep.json");
    let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
    let meta: SweepMeta = serde_json::from_str(&text)
        .map_err(|e| Error::input_at(&meta_path, e.line() as u64, None, e.to_string()))?;
    let csv_path = dir.join("points.csv");
    let mut r = csv::Reader::from_path(&csv_path)
        .map_err(|e| Error::input(&csv_path, None, e.to_string()))?;
    let header = r
        .headers()
        .map_err(|e| Error::input(&csv_path, Some("header"), e.to_string()))?
        .clone();
    if header.iter().ne(COLUMNS.iter().map(|(c, _)| *c)) {
        return Err(Error::input_at(
            &csv_path,
            1,
            None,
            "the columns differ from this version of servesim's",
        ));
    }
    let mut rows = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| Error::input_at(&csv_path, i as u64 + 2, None, e.to_string()))?;
        rows.push(Row(rec.iter().map(str::to_owned).collect()));
    }
    Ok((meta, rows))
}

/// Join shard folders into `out`: every point exactly once, same sweep in all.
pub fn merge(dirs: &[&Path], out: &Path) -> Result<(SweepMeta, Vec<Row>)> {
    let mut meta: Option<SweepMeta> = None;
    let mut all: Vec<Option<Row>> = Vec::new();
    for dir in dirs {
        let (m, rows) = read_points(dir)?;
        match &meta {
            None => {
                all = vec![None; m.total_points];
                meta = Some(m);
            }
            Some(prev) if *prev != m => {
                return Err(Error::input(
                    dir.join("sweep.json"),
                    None,
                    format!(
                    "a different sweep ({} with {} points) from the first folder's ({} with {})",
                    m.name, m.total_points, prev.name, prev.total_points
                ),
                ))
            }
            Some(_) => {}
        }
        for row in rows {
            let i = row.index();
            let slot = all.get_mut(i).ok_or_else(|| {
                Error::input(
                    dir.join("points.csv"),
                    Some("index"),
                    format!("point {i} is outside the grid"),
                )
            })?;
            if slot.is_some() {
                return Err(Error::input(
                    dir.join("points.csv"),
                    Some("index"),
                    format!("point {i} appears in more than one folder"),
                ));
            }
            *slot = Some(row);
        }
    }
    let meta = meta.ok_or_else(|| Error::Config("merge needs at least one folder".into()))?;
    let missing: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_none())
        .map(|(i, _)| i)
        .take(10)
        .collect();
    if !missing.is_empty() {
        return Err(Error::Config(format!(
            "points missing from the folders given (first: {missing:?}); is a shard absent?"
        )));
    }
    let rows: Vec<Row> = all.into_iter().flatten().collect();
    write_points(out, &meta, None, &rows)?;
    Ok((meta, rows))
}

/// Write `rows` as a CSV to `w` (for stdout).
pub fn write_csv_to(w: impl Write, rows: &[Row]) -> Result<()> {
    let mut w = csv::Writer::from_writer(w);
    let e = |e: csv::Error| Error::Config(e.to_string());
    w.write_record(COLUMNS.iter().map(|(c, _)| *c)).map_err(e)?;
    for r in rows {
        w.write_record(&r.0).map_err(e)?;
    }
    w.flush().map_err(|err| Error::Config(err.to_string()))
}
