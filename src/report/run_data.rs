//! A run folder read back for its report: `summary.json` (required), and where present
//! `config.json`, `timeseries.csv`, `distributions.csv` and `throughput.csv`.

use crate::error::{Error, Result};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// One row of `timeseries.csv`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
pub struct SeriesRow {
    /// The second.
    pub time_s: f64,
    /// Requests running.
    pub running: f64,
    /// Requests waiting.
    pub waiting: f64,
    /// KV blocks in use.
    pub kv_blocks_used: f64,
}

/// One row of `distributions.csv`.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct CdfRow {
    /// `ttft_s`, `tpot_s`, `itl_s`, `e2e_s` or `queue_s`.
    pub metric: String,
    /// The quantile, 0 to 1.
    pub quantile: f64,
    /// The value at it, s.
    pub value_s: f64,
}

/// One row of `throughput.csv`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
pub struct ThroughputRow {
    /// The second.
    pub time_s: f64,
    /// Requests finished in it.
    pub completed: f64,
    /// Output tokens produced in it.
    pub output_tokens: f64,
}

/// What a run folder holds.
#[derive(Clone, Debug)]
pub struct RunData {
    /// The run's name (its folder's).
    pub name: String,
    /// The folder.
    pub dir: PathBuf,
    /// `summary.json`.
    pub summary: serde_json::Value,
    /// `config.json` as written, if present.
    pub config: Option<String>,
    /// `timeseries.csv` (empty if absent).
    pub timeseries: Vec<SeriesRow>,
    /// `distributions.csv` (empty if absent).
    pub cdfs: Vec<CdfRow>,
    /// `throughput.csv` (empty if absent).
    pub throughput: Vec<ThroughputRow>,
}

impl RunData {
    /// Read the run folder `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let summary_path = dir.join("summary.json");
        if !summary_path.is_file() {
            return Err(Error::input(
                dir,
                None,
                "not a run folder: no summary.json (run `servesim simulate --output-dir` first)",
            ));
        }
        let text =
            std::fs::read_to_string(&summary_path).map_err(|e| Error::io(&summary_path, e))?;
        let summary = serde_json::from_str(&text).map_err(|e| {
            Error::input_at(
                &summary_path,
                e.line() as u64,
                None,
                format!("invalid JSON: {e}"),
            )
        })?;
        let config_path = dir.join("config.json");
        let config = config_path
            .is_file()
            .then(|| std::fs::read_to_string(&config_path))
            .transpose()
            .map_err(|e| Error::io(&config_path, e))?;
        let name = dir
            .canonicalize()
            .unwrap_or_else(|_| dir.to_owned())
            .file_name()
            .map_or_else(
                || dir.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
        Ok(RunData {
            name,
            dir: dir.to_owned(),
            summary,
            config,
            timeseries: read_csv(&dir.join("timeseries.csv"))?,
            cdfs: read_csv(&dir.join("distributions.csv"))?,
            throughput: read_csv(&dir.join("throughput.csv"))?,
        })
    }

    /// The CDF points of `metric`, `(quantile, seconds)`.
    pub fn cdf(&self, metric: &str) -> Vec<(f64, f64)> {
        self.cdfs
            .iter()
            .filter(|r| r.metric == metric)
            .map(|r| (r.quantile, r.value_s))
            .collect()
    }
}

/// The rows of the CSV file `path` (none if it does not exist); a bad row is an error
/// naming its line.
fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let mut rdr =
        csv::Reader::from_path(path).map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    let mut rows = Vec::new();
    for r in rdr.deserialize() {
        rows.push(r.map_err(|e: csv::Error| {
            let line = e.position().map_or(0, |p| p.line());
            Error::input_at(path, line, None, e.to_string())
        })?);
    }
    Ok(rows)
}
