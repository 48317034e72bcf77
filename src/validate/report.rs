//! The result of one validation and its files: `validation.json`, `comparison.csv` and
//! `validation.svg`.

use super::stats::{ErrorStats, Quantiles};
use crate::deployment::DeploymentSummary;
use crate::engine::EngineConfig;
use crate::error::{Error, Result};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A compared metric: a latency (seconds) or a throughput (tokens per second).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Time to first token (for step tables: the batch's prefill; for serving
    /// summaries: the run's mean).
    Ttft,
    /// Time per output token after the first (for step tables: the mean decode step;
    /// for serving summaries: the run's mean).
    Tpot,
    /// Inter-token latency (distribution only: the files pair no gaps).
    Itl,
    /// End-to-end latency (for static batches: the whole batch's).
    E2e,
    /// Output tokens per second of a whole run (offline throughput tables).
    OutputThroughput,
}

impl Metric {
    /// Short name (`ttft`).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Ttft => "ttft",
            Metric::Tpot => "tpot",
            Metric::Itl => "itl",
            Metric::E2e => "e2e",
            Metric::OutputThroughput => "output_throughput",
        }
    }

    /// Upper-case label (`TTFT`).
    pub fn label(self) -> &'static str {
        match self {
            Metric::Ttft => "TTFT",
            Metric::Tpot => "TPOT",
            Metric::Itl => "ITL",
            Metric::E2e => "E2E",
            Metric::OutputThroughput => "output throughput",
        }
    }

    /// The unit of the metric's values (`s`, `tok/s`).
    pub fn unit(self) -> &'static str {
        match self {
            Metric::OutputThroughput => "tok/s",
            _ => "s",
        }
    }

    /// The unit as a column-name suffix (`s`, `tok_per_s`).
    fn column_unit(self) -> &'static str {
        match self {
            Metric::OutputThroughput => "tok_per_s",
            _ => "s",
        }
    }

    /// Decimals written to `comparison.csv` (ns for times, 0.01 for rates).
    fn csv_decimals(self) -> usize {
        match self {
            Metric::OutputThroughput => 2,
            _ => 6,
        }
    }
}

/// One metric, simulated against measured, in the metric's [unit](Metric::unit).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricReport {
    /// Which metric.
    pub metric: Metric,
    /// Distribution of the simulated values.
    pub simulated: Quantiles,
    /// Distribution of the measured values.
    pub measured: Quantiles,
    /// Pair-by-pair errors (absent where values are not paired, as for ITL).
    pub errors: Option<ErrorStats>,
}

/// Output throughput, simulated against measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ThroughputReport {
    /// Simulated output tokens per second.
    pub simulated_output_tokens_per_s: f64,
    /// Measured output tokens per second.
    pub measured_output_tokens_per_s: f64,
    /// (simulated − measured) / measured, %.
    pub error_pct: f64,
}

impl ThroughputReport {
    /// Compare two rates.
    pub fn new(simulated: f64, measured: f64) -> Self {
        ThroughputReport {
            simulated_output_tokens_per_s: simulated,
            measured_output_tokens_per_s: measured,
            error_pct: 100.0 * (simulated - measured) / measured,
        }
    }
}

/// What kind of measurement was validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValidationKind {
    /// A serving run replayed request by request.
    ServingRun,
    /// Static batches replayed through the simulated engine.
    StaticBatch,
    /// Per-step times compared with the latency model on the same shapes.
    StepTimes,
    /// Offline throughput: every request queued at once, output tokens per second.
    OfflineThroughput,
    /// Serving summaries: each row a closed-loop run at its concurrency, compared on
    /// the run's mean TTFT and TPOT.
    ServingSummary,
}

/// How a replay sent its requests, as `validation.json` states it (`"replay": {"mode":
/// "closed-loop", "concurrency": 8}`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum ReplayMode {
    /// Every request at its recorded arrival time.
    Recorded,
    /// Every request at time zero, nothing capping the requests in flight.
    Burst,
    /// A closed loop: `concurrency` requests in flight, the next one sent when one
    /// finishes (`None`: each row of a table at its own concurrency).
    ClosedLoop {
        /// Requests in flight.
        concurrency: Option<u32>,
    },
    /// Open loop: arrivals regenerated from a request rate (Poisson unless the file
    /// says otherwise) with `seed`.
    Regenerated {
        /// Seed of the arrivals.
        seed: u64,
        /// The rate, requests per second, where the reader knows it.
        request_rate_rps: Option<f64>,
        /// The client's cap on requests in flight, where it had one (a request whose
        /// time has come waits for a slot).
        #[serde(skip_serializing_if = "Option::is_none")]
        max_concurrency: Option<u32>,
    },
    /// An open loop replayed after `runs` earlier runs of the same server, whose prompts
    /// it shares by index ([`crate::validate::sweep`]).
    AfterEarlierRuns {
        /// Earlier runs replayed first.
        runs: u32,
    },
}

/// Row-by-row values behind a validation: key columns plus, per metric, the simulated
/// and measured value of every row (NaN where missing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ComparisonRows {
    /// Names of the key columns.
    pub key_columns: Vec<&'static str>,
    /// Key values, one vector per row.
    pub keys: Vec<Vec<String>>,
    /// Per metric: (metric, simulated, measured), each as long as `keys`.
    pub metrics: Vec<(Metric, Vec<f64>, Vec<f64>)>,
}

impl ComparisonRows {
    /// The pairs of `m`, if present.
    pub fn pairs(&self, m: Metric) -> Option<(&[f64], &[f64])> {
        self.metrics
            .iter()
            .find(|x| x.0 == m)
            .map(|(_, s, me)| (s.as_slice(), me.as_slice()))
    }

    /// One [`MetricReport`] per paired metric.
    pub fn reports(&self) -> Vec<MetricReport> {
        self.metrics
            .iter()
            .map(|(m, s, me)| MetricReport {
                metric: *m,
                simulated: Quantiles::of(s),
                measured: Quantiles::of(me),
                errors: Some(ErrorStats::of(s, me)),
            })
            .collect()
    }

    /// `comparison.csv`'s header: the key columns, then per metric
    /// `measured_<metric>_<unit>`, `simulated_<metric>_<unit>` and `error_<metric>_pct`.
    pub fn header(&self) -> Vec<String> {
        let mut head: Vec<String> = self.key_columns.iter().map(|c| c.to_string()).collect();
        for (m, _, _) in &self.metrics {
            let (n, u) = (m.name(), m.column_unit());
            head.extend([
                format!("measured_{n}_{u}"),
                format!("simulated_{n}_{u}"),
                format!("error_{n}_pct"),
            ]);
        }
        head
    }
}

/// A row's error, % of the measured value: `100 (simulated - measured) / measured`
/// (NaN when the measured value is not positive).
pub fn error_pct(simulated: f64, measured: f64) -> f64 {
    if measured > 0.0 {
        100.0 * (simulated - measured) / measured
    } else {
        f64::NAN
    }
}

/// The outcome of validating one measured set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Validation {
    /// Name of the set (also the output folder's name).
    pub name: String,
    /// What was compared.
    pub kind: ValidationKind,
    /// The measurement file.
    pub source: PathBuf,
    /// The simulated deployment.
    pub deployment: DeploymentSummary,
    /// The simulated engine (absent for step-time comparisons).
    pub engine: Option<EngineConfig>,
    /// Replicas simulated.
    pub num_replicas: u32,
    /// Where the iteration times came from.
    pub latency_model: String,
    /// How the requests were sent (absent for static batches and step times).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayMode>,
    /// Per metric.
    pub metrics: Vec<MetricReport>,
    /// Output throughput (serving runs; offline throughput tables compare it per row
    /// under [`Metric::OutputThroughput`] instead).
    pub throughput: Option<ThroughputReport>,
    /// Assumptions, skipped data, features the engine lacks.
    pub notes: Vec<String>,
    /// Whether a parameter used was fitted on this measurement (in-sample).
    pub sample: Option<super::sample::SampleStatus>,
    /// The per-row values.
    #[serde(skip)]
    pub rows: ComparisonRows,
}

impl Validation {
    /// The median absolute % error of `m` (NaN when not compared).
    pub fn median_abs_pct(&self, m: Metric) -> f64 {
        self.metrics
            .iter()
            .find(|r| r.metric == m)
            .and_then(|r| r.errors)
            .map_or(f64::NAN, |e| e.median_abs_pct)
    }

    /// Write `validation.json`, `comparison.csv` and `validation.svg` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        crate::report::write_json(&dir.join("validation.json"), self)?;
        let csv = dir.join("comparison.csv");
        write_rows(&csv, &self.rows).map_err(|e| Error::io(&csv, e))?;
        super::chart::write_svg(&dir.join("validation.svg"), self)
    }
}

fn write_rows(path: &Path, rows: &ComparisonRows) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(w, "{}", rows.header().join(","))?;
    for (i, key) in rows.keys.iter().enumerate() {
        let mut cells = key.clone();
        for (metric, sim, meas) in &rows.metrics {
            let (s, m) = (sim[i], meas[i]);
            let digits = metric.csv_decimals();
            cells.extend([
                crate::report::fixed(m, digits),
                crate::report::fixed(s, digits),
                crate::report::fixed(error_pct(s, m), 2),
            ]);
        }
        writeln!(w, "{}", cells.join(","))?;
    }
    w.flush()
}
