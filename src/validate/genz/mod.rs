//! GenZ-style per-request tables: one row per request with its lengths and measured
//! latencies, and no timestamps. CSV, or the same columns as JSON lines (`.jsonl`,
//! one object per request).
//!
//! Column names are matched case-insensitively:
//!
//! | what | accepted names |
//! |---|---|
//! | prompt tokens | `input_tokens`, `prompt_tokens`, `input_len`, `input_length`, `num_input_tokens`, `prompt_len`, `input_toks`, `isl` |
//! | output tokens | `output_tokens`, `completion_tokens`, `output_len`, `output_length`, `num_output_tokens`, `generated_tokens`, `output_toks`, `osl` |
//! | TTFT | `ttft`, `time_to_first_token`, `first_token_latency` |
//! | TPOT | `tpot`, `time_per_output_token`, `itl`, `inter_token_latency` |
//! | E2E | `e2e`, `e2e_latency`, `e2el`, `end_to_end_latency`, `request_latency`, `latency` |
//!
//! **Units are explicit in the name:** each time column may carry a `_s` or `_ms`
//! suffix (`ttft_ms`, `e2e_latency_s`); `_ms` means milliseconds, anything else
//! seconds. TTFT is required, and TPOT or E2E (both are best): a missing E2E is
//! `ttft + tpot · (output_tokens − 1)`; where both are given, E2E is kept and TPOT is
//! compared as `(e2e − ttft) / (output_tokens − 1)` (vLLM's definition), and rows where
//! the file's TPOT disagrees with that by more than 2 % are counted in the notes.
//!
//! Optional configuration columns: `model` (`model_name`, `model_id`), `hardware`
//! (`gpu`, `device`), `tensor_parallel_size` (`tp`, `tp_size`), `concurrency`
//! (`max_concurrency`), `request_rate` (`request_rate_rps`, `qps`; `inf` = no rate) and
//! `batch_size`. Model, hardware and TP fill the run's [`EngineHints`] (flags win).
//! Other columns (`request_id`, `num_prompts`, ...) are not read.
//!
//! **Several configurations in one file.** Rows are grouped by the configuration
//! columns present (model, hardware, TP, concurrency, request rate, batch size), in
//! order of first appearance; each group is its own run, validated on its own (a file
//! with one configuration is one run).
//!
//! **Replay.** Without timestamps the run is replayed one of three ways, chosen per
//! group and stated in its notes and in `validation.json` (`replay`):
//!
//! 1. **open loop** at a request rate: Poisson arrivals regenerated from the seed, in
//!    row order, as for vLLM result files without send times;
//! 2. **closed loop** at a concurrency: that many requests in flight, the next row sent
//!    when one finishes;
//! 3. **burst**: every request at t = 0 (when nothing says otherwise).
//!
//! The `--request-rate` and `--concurrency` flags decide when either is given (both:
//! open loop capped at the concurrency, see [`RequestSource::CappedOpen`](crate::sim::RequestSource::CappedOpen)); otherwise the group's
//! `request_rate` (finite) and `concurrency` columns, in the same way.
//!
//! Requests are compared by row order: a request's id is its 0-based position among
//! its group's rows.

use super::csv_table::CsvTable;
use super::measured::{ArrivalMode, EngineHints, MeasuredRequest, MeasuredRun, RunFormat};
use crate::error::{Error, Result};
use crate::trace::synth::ArrivalSampler;
use crate::trace::ArrivalProcess;
use serde::Serialize;
use std::path::{Path, PathBuf};

const INPUT: &[&str] = &[
    "input_tokens",
    "prompt_tokens",
    "input_len",
    "input_length",
    "num_input_tokens",
    "prompt_len",
    "input_toks",
    "isl",
];
const OUTPUT: &[&str] = &[
    "output_tokens",
    "completion_tokens",
    "output_len",
    "output_length",
    "num_output_tokens",
    "generated_tokens",
    "output_toks",
    "osl",
];
const TTFT: &[&str] = &["ttft", "time_to_first_token", "first_token_latency"];
const TPOT: &[&str] = &[
    "tpot",
    "time_per_output_token",
    "itl",
    "inter_token_latency",
];
const E2E: &[&str] = &[
    "e2e",
    "e2e_latency",
    "e2el",
    "end_to_end_latency",
    "request_latency",
    "latency",
];
const MODEL: &[&str] = &["model", "model_name", "model_id"];
const HARDWARE: &[&str] = &["hardware", "gpu", "device"];
const TP: &[&str] = &["tensor_parallel_size", "tp", "tp_size"];
const CONCURRENCY: &[&str] = &["concurrency", "max_concurrency"];
const RATE: &[&str] = &["request_rate", "request_rate_rps", "qps"];
const BATCH: &[&str] = &["batch_size"];

/// Every spelling of a time column: each base bare, in seconds (`_s`) and in
/// milliseconds (`_ms`).
fn time_names(bases: &[&str]) -> Vec<String> {
    bases
        .iter()
        .flat_map(|b| [b.to_string(), format!("{b}_s"), format!("{b}_ms")])
        .collect()
}

/// The column of a time metric and its scale to seconds.
fn time_col(t: &CsvTable, bases: &[&str]) -> Option<(usize, f64)> {
    let names = time_names(bases);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let c = t.col(&refs)?;
    let ms = t.header[c].to_ascii_lowercase().ends_with("_ms");
    Some((c, if ms { 1e-3 } else { 1.0 }))
}

/// Whether the header has the columns of a GenZ-style per-request table.
pub(crate) fn looks_like_genz(t: &CsvTable) -> bool {
    t.col(INPUT).is_some()
        && t.col(OUTPUT).is_some()
        && time_col(t, TTFT).is_some()
        && (time_col(t, TPOT).is_some() || time_col(t, E2E).is_some())
}

/// Whether the first object of the JSON-lines file at `path` has the keys of a
/// GenZ-style table (and none of LLMServingSim's clock stamps).
pub(crate) fn looks_like_genz_json_lines(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    let Some(Ok(serde_json::Value::Object(obj))) = first.map(serde_json::from_str) else {
        return false;
    };
    let t = CsvTable {
        path: path.to_owned(),
        header: obj.keys().cloned().collect(),
        rows: Vec::new(),
    };
    t.col(&["queued_ts"]).is_none() && looks_like_genz(&t)
}

/// How the replay should send requests, from the command line (each overrides the
/// file's columns).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReplayOptions {
    /// Seed of regenerated arrivals.
    pub seed: u64,
    /// `--concurrency`: replay as a closed loop.
    pub concurrency: Option<u32>,
    /// `--request-rate`: replay as an open loop, Poisson arrivals at this rate (req/s).
    pub request_rate: Option<f64>,
}

/// The configuration columns of one group, as the file writes them (absent columns
/// are `None`).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GenzKey {
    /// Model.
    pub model: Option<String>,
    /// Hardware.
    pub hardware: Option<String>,
    /// Tensor-parallel size.
    pub tensor_parallel_size: Option<u32>,
    /// Client concurrency.
    pub concurrency: Option<u32>,
    /// Request rate as written (`inf` or a number).
    pub request_rate: Option<String>,
    /// Batch size (grouping only).
    pub batch_size: Option<u32>,
}

impl GenzKey {
    /// A file-name-safe label of the columns present (`llama-3.1-8b_h100_tp1_c8`);
    /// empty when the file has none.
    pub fn slug(&self) -> String {
        let clean = crate::validate::tables::slug_part;
        let mut parts = Vec::new();
        parts.extend(self.model.as_deref().map(clean));
        parts.extend(self.hardware.as_deref().map(clean));
        parts.extend(self.tensor_parallel_size.map(|n| format!("tp{n}")));
        parts.extend(self.concurrency.map(|n| format!("c{n}")));
        parts.extend(
            self.request_rate
                .as_deref()
                .map(|r| format!("rate{}", clean(r))),
        );
        parts.extend(self.batch_size.map(|n| format!("bs{n}")));
        parts.join("_")
    }

    /// The finite request rate of the column, if any.
    fn rate(&self) -> Option<f64> {
        self.request_rate
            .as_deref()
            .and_then(|r| r.parse::<f64>().ok())
            .filter(|r| r.is_finite())
    }
}

/// One configuration's rows, ready to replay.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GenzGroup {
    /// Its configuration columns.
    pub key: GenzKey,
    /// The measured run (requests in row order).
    pub run: MeasuredRun,
}

/// A GenZ-style table, grouped by configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GenzTable {
    /// The file.
    pub source: PathBuf,
    /// Groups in order of first appearance.
    pub groups: Vec<GenzGroup>,
}

/// Read a GenZ-style table (CSV, or JSON lines for `.jsonl`, `.ndjson` and `.json`).
pub fn read(path: &Path, opts: &ReplayOptions) -> Result<GenzTable> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let t = if matches!(ext.as_str(), "jsonl" | "ndjson" | "json") {
        CsvTable::read_json_lines(path)?
    } else {
        CsvTable::read(path)?
    };
    read_table(&t, opts)
}

/// One parsed row: its key, and the request with `id` still to be set.
fn parse_row(t: &CsvTable, row: &(u64, Vec<String>), cols: &Cols) -> Result<(GenzKey, Parsed)> {
    let opt_text = |c: Option<usize>| -> Result<Option<String>> {
        Ok(match c {
            Some(c) => Some(t.text(row, c)?.to_owned()).filter(|s| !s.is_empty()),
            None => None,
        })
    };
    let opt_count = |c: Option<usize>| -> Result<Option<u32>> {
        match c {
            Some(c) if !t.text(row, c)?.is_empty() => t.count(row, c).map(Some),
            _ => Ok(None),
        }
    };
    let rate = opt_text(cols.rate)?;
    if let (Some(r), Some(c)) = (&rate, cols.rate) {
        let ok = r.eq_ignore_ascii_case("inf")
            || r.parse::<f64>().is_ok_and(|x| x > 0.0 && x.is_finite());
        if !ok {
            return Err(t.bad(
                row,
                c,
                format!("expected `inf` or a positive rate, got `{r}`"),
            ));
        }
    }
    let key = GenzKey {
        model: opt_text(cols.model)?,
        hardware: opt_text(cols.hardware)?,
        tensor_parallel_size: opt_count(cols.tp)?,
        concurrency: opt_count(cols.concurrency)?,
        request_rate: rate,
        batch_size: opt_count(cols.batch)?,
    };
    let secs = |(c, scale): (usize, f64)| -> Result<f64> {
        let x = t.num(row, c)?;
        if x < 0.0 {
            return Err(t.bad(row, c, format!("must not be negative, got {x}")));
        }
        Ok(x * scale)
    };
    let (input, output) = (t.count(row, cols.input)?, t.count(row, cols.output)?);
    let ttft = secs(cols.ttft)?;
    let tpot = cols.tpot.map(secs).transpose()?;
    let e2e = cols.e2e.map(secs).transpose()?;
    let steps = f64::from(output - 1);
    let (e2e, disagrees) = match (e2e, tpot) {
        (Some(e), tpot) => {
            if e < ttft {
                let c = cols.e2e.map_or(0, |c| c.0);
                return Err(t.bad(row, c, format!("{e} s is less than the TTFT {ttft} s")));
            }
            let off = tpot.is_some_and(|p| (ttft + p * steps - e).abs() > 0.02 * e + 1e-9);
            (e, off && output > 1)
        }
        // read_table checked that TPOT or E2E is there.
        (None, p) => (ttft + p.unwrap_or(f64::NAN) * steps, false),
    };
    Ok((
        key,
        Parsed {
            request: MeasuredRequest {
                id: 0,
                arrival_s: 0.0,
                input_tokens: input,
                output_tokens: output,
                ttft_s: ttft,
                e2e_s: e2e,
                prefix_hash_ids: Vec::new(),
            },
            disagrees,
        },
    ))
}

struct Parsed {
    request: MeasuredRequest,
    disagrees: bool,
}

/// The columns a table has.
struct Cols {
    input: usize,
    output: usize,
    ttft: (usize, f64),
    tpot: Option<(usize, f64)>,
    e2e: Option<(usize, f64)>,
    model: Option<usize>,
    hardware: Option<usize>,
    tp: Option<usize>,
    concurrency: Option<usize>,
    rate: Option<usize>,
    batch: Option<usize>,
}

pub(crate) fn read_table(t: &CsvTable, opts: &ReplayOptions) -> Result<GenzTable> {
    let ttft = time_col(t, TTFT).ok_or_else(|| {
        Error::input_at(
            &t.path,
            1,
            Some("ttft"),
            "missing column: expected a TTFT column (`ttft`, `ttft_s`, `ttft_ms`, `time_to_first_token`, ...)",
        )
    })?;
    let (tpot, e2e) = (time_col(t, TPOT), time_col(t, E2E));
    if tpot.is_none() && e2e.is_none() {
        return Err(Error::input_at(
            &t.path,
            1,
            Some("tpot"),
            "missing column: expected a TPOT (`tpot`, `tpot_ms`, `itl`, ...) or an E2E column (`e2e`, `e2e_latency`, `latency`, ...)",
        ));
    }
    let cols = Cols {
        input: t.required(INPUT)?,
        output: t.required(OUTPUT)?,
        ttft,
        tpot,
        e2e,
        model: t.col(MODEL),
        hardware: t.col(HARDWARE),
        tp: t.col(TP),
        concurrency: t.col(CONCURRENCY),
        rate: t.col(RATE),
        batch: t.col(BATCH),
    };
    let mut keys: Vec<GenzKey> = Vec::new();
    let mut rows: Vec<Vec<Parsed>> = Vec::new();
    for row in &t.rows {
        let (key, p) = parse_row(t, row, &cols)?;
        match keys.iter().position(|k| *k == key) {
            Some(i) => rows[i].push(p),
            None => {
                keys.push(key);
                rows.push(vec![p]);
            }
        }
    }
    if rows.is_empty() {
        return Err(Error::input(&t.path, None, "no requests in the file"));
    }
    let mut groups = Vec::with_capacity(keys.len());
    for (key, parsed) in keys.into_iter().zip(rows) {
        groups.push(group_run(&t.path, key, parsed, &cols, opts)?);
    }
    Ok(GenzTable {
        source: t.path.clone(),
        groups,
    })
}

/// The run of one group: its requests, replay mode and hints.
fn group_run(
    path: &Path,
    key: GenzKey,
    parsed: Vec<Parsed>,
    cols: &Cols,
    opts: &ReplayOptions,
) -> Result<GenzGroup> {
    let mut notes = Vec::new();
    let n = parsed.len();
    let disagree = parsed.iter().filter(|p| p.disagrees).count();
    let mut requests: Vec<MeasuredRequest> = parsed.into_iter().map(|p| p.request).collect();
    for (i, r) in requests.iter_mut().enumerate() {
        r.id = i as u64;
    }
    if disagree > 0 {
        notes.push(format!(
            "{disagree} of {n} rows have a TPOT more than 2 % off (e2e − ttft)/(output_tokens − 1); TPOT is compared in that definition (vLLM's)"
        ));
    }
    let unit = |c: Option<(usize, f64)>, what: &str| {
        c.map(|(_, s)| format!("{what} in {}", if s < 1.0 { "ms" } else { "s" }))
    };
    notes.push(format!(
        "GenZ-style table: {}; requests compared by row order (ids = row positions in the group)",
        [
            unit(Some(cols.ttft), "TTFT"),
            unit(cols.tpot, "TPOT"),
            unit(cols.e2e, "E2E")
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
    ));
    let flags = opts.concurrency.is_some() || opts.request_rate.is_some();
    let (concurrency, rate, from) = if flags {
        (
            opts.concurrency,
            opts.request_rate,
            "given on the command line",
        )
    } else {
        (key.concurrency, key.rate(), "from the file's columns")
    };
    let (arrivals, max_concurrency) = match (rate, concurrency) {
        (Some(r), c) => {
            let process = ArrivalProcess::Poisson { rate_rps: r };
            process.validate()?;
            let mut sampler = ArrivalSampler::new(&process, opts.seed);
            for q in &mut requests {
                q.arrival_s = sampler
                    .next_nanos()
                    .map_or(f64::INFINITY, |t| t as f64 * 1e-9);
            }
            notes.push(format!(
                "replay mode: open loop, Poisson arrivals at {r} req/s ({from}) regenerated in row order with seed {}: the file has no timestamps, so per-request TTFT/E2E errors include the difference from the real send times",
                opts.seed
            ));
            (
                ArrivalMode::Regenerated {
                    seed: opts.seed,
                    request_rate_rps: Some(r),
                },
                c,
            )
        }
        (None, Some(c)) => {
            notes.push(format!(
                "replay mode: closed loop at concurrency {c} ({from}): {c} requests in flight, the next row sent when one finishes"
            ));
            (ArrivalMode::AllAtOnce, Some(c))
        }
        (None, None) => {
            notes.push("replay mode: burst, every request at t = 0: the file has no timestamps and neither a concurrency nor a finite request rate (pass --concurrency N or --request-rate R if the run was driven otherwise)".into());
            (ArrivalMode::AllAtOnce, None)
        }
    };
    if key.batch_size.is_some() {
        notes.push("the batch_size column only groups rows; it sets no engine setting".into());
    }
    let hints = EngineHints {
        model: key.model.clone(),
        hardware: key.hardware.clone(),
        tensor_parallel_size: key.tensor_parallel_size,
        ..EngineHints::default()
    };
    Ok(GenzGroup {
        key,
        run: MeasuredRun {
            hints,
            ..MeasuredRun::from_client(
                path.to_owned(),
                RunFormat::Genz,
                requests,
                arrivals,
                max_concurrency,
                notes,
            )
        },
    })
}

#[cfg(test)]
mod tests;
