//! A generic per-request CSV of a measured run: arrival, first-token and finish times
//! (seconds on any one clock) and the token counts. Column names are matched
//! case-insensitively against the usual spellings, so servesim's own `requests.csv` and
//! LLMServingSim-style columns both read:
//!
//! | what | accepted names |
//! |---|---|
//! | arrival | `arrival_time_s`, `arrival_s`, `arrival_time`, `queued_ts`, `arrival`, `start_time_s` |
//! | first token | `first_token_time_s`, `first_token_ts`, `first_token_s`, `first_token_time` |
//! | finish | `finish_time_s`, `last_token_ts`, `finish_s`, `finish_time`, `end_time_s` |
//! | prompt tokens | `input_tokens`, `input_toks`, `prompt_tokens`, `input_len` |
//! | output tokens | `output_tokens`, `output_toks`, `completion_tokens`, `output_len` |
//!
//! An optional `status` column skips rows whose status is not `finished`. An optional
//! `timing` column says whose clock took the times: `client` (the default: the API
//! server's request handling is on every request's path) or `engine` (timestamps inside
//! the engine, as vLLM's request stats); every row must say the same. Rows may be in
//! any order; they are sorted by arrival (ties in file order).

use super::csv_table::CsvTable;
use super::measured::{ArrivalMode, EngineHints, MeasuredRequest, MeasuredRun, RunFormat, Timing};
use crate::error::{Error, Result};
use std::path::Path;

const ARRIVAL: &[&str] = &[
    "arrival_time_s",
    "arrival_s",
    "arrival_time",
    "queued_ts",
    "arrival",
    "start_time_s",
];
const FIRST: &[&str] = &[
    "first_token_time_s",
    "first_token_ts",
    "first_token_s",
    "first_token_time",
];
const FINISH: &[&str] = &[
    "finish_time_s",
    "last_token_ts",
    "finish_s",
    "finish_time",
    "end_time_s",
];
const INPUT: &[&str] = &["input_tokens", "input_toks", "prompt_tokens", "input_len"];
const OUTPUT: &[&str] = &[
    "output_tokens",
    "output_toks",
    "completion_tokens",
    "output_len",
];

/// Whether the table's header has the columns of a measured run.
pub(crate) fn looks_like_run(t: &CsvTable) -> bool {
    [ARRIVAL, FIRST, FINISH, INPUT, OUTPUT]
        .iter()
        .all(|names| t.col(names).is_some())
}

/// Read a per-request CSV.
pub fn read(path: &Path) -> Result<MeasuredRun> {
    let t = CsvTable::read(path)?;
    read_table(&t)
}

/// The clock of the optional `timing` column (client when absent).
fn read_timing(t: &CsvTable) -> Result<Timing> {
    let Some(c) = t.col(&["timing"]) else {
        return Ok(Timing::Client);
    };
    let mut timing = None;
    for row in &t.rows {
        let v = match t.text(row, c)?.to_ascii_lowercase().as_str() {
            "client" => Timing::Client,
            "engine" => Timing::Engine,
            other => {
                return Err(t.bad(row, c, format!("`{other}`: expected `client` or `engine`")))
            }
        };
        if timing.is_some_and(|x| x != v) {
            return Err(t.bad(row, c, "every row must name the same clock".into()));
        }
        timing = Some(v);
    }
    Ok(timing.unwrap_or(Timing::Client))
}

pub(crate) fn read_table(t: &CsvTable) -> Result<MeasuredRun> {
    let (ca, cf, cl, ci, co) = (
        t.required(ARRIVAL)?,
        t.required(FIRST)?,
        t.required(FINISH)?,
        t.required(INPUT)?,
        t.required(OUTPUT)?,
    );
    let status = t.col(&["status"]);
    let timing = read_timing(t)?;
    let mut rows = Vec::new();
    let mut skipped = 0usize;
    for (pos, row) in t.rows.iter().enumerate() {
        if let Some(s) = status {
            if !t.text(row, s)?.eq_ignore_ascii_case("finished") {
                skipped += 1;
                continue;
            }
        }
        let (a, f, l) = (t.num(row, ca)?, t.num(row, cf)?, t.num(row, cl)?);
        if f < a {
            return Err(t.bad(row, cf, format!("{f} is before the arrival {a}")));
        }
        if l < f {
            return Err(t.bad(row, cl, format!("{l} is before the first token {f}")));
        }
        rows.push((
            a,
            MeasuredRequest {
                id: pos as u64,
                arrival_s: 0.0,
                input_tokens: t.count(row, ci)?,
                output_tokens: t.count(row, co)?,
                ttft_s: f - a,
                e2e_s: l - a,
                prefix_hash_ids: Vec::new(),
            },
        ));
    }
    if rows.is_empty() {
        return Err(Error::input(
            &t.path,
            None,
            "no finished requests in the file",
        ));
    }
    let t0 = rows.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut notes = Vec::new();
    if skipped > 0 {
        notes.push(format!(
            "{skipped} rows whose status is not `finished` are left out"
        ));
    }
    Ok(MeasuredRun {
        source: t.path.clone(),
        format: RunFormat::Csv,
        requests: rows
            .into_iter()
            .map(|(a, mut r)| {
                r.arrival_s = a - t0;
                r
            })
            .collect(),
        itls_s: None,
        timing,
        load_only: Vec::new(),
        client_timeout_s: None,
        arrivals: ArrivalMode::Recorded,
        max_concurrency: None,
        hints: EngineHints::default(),
        notes,
        summary: None,
        stated_output_tokens_per_s: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_servesim_requests_csv() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("requests.csv");
        std::fs::write(
            &p,
            "request_id,arrival_time_s,input_tokens,output_tokens,first_token_time_s,finish_time_s,status\n\
             0,5.0,10,3,5.5,6.5,finished\n\
             1,4.0,10,3,,,rejected\n\
             2,4.5,12,1,4.6,4.6,finished\n",
        )
        .unwrap();
        let r = read(&p).unwrap();
        assert_eq!(r.requests.len(), 2);
        assert_eq!(r.requests[0].id, 2);
        assert_eq!(r.requests[1].arrival_s, 0.5);
        assert!((r.requests[1].tpot_s() - 0.5).abs() < 1e-12);
        assert_eq!(r.notes.len(), 1);
    }

    #[test]
    fn errors_name_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        std::fs::write(
            &p,
            "arrival_s,first_token_s,finish_s,input_tokens,output_tokens\n1,2,3,4,5\n1,0.5,3,4,5\n",
        )
        .unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.ends_with("m.csv:3: field `first_token_s`: 0.5 is before the arrival 1"),
            "{e}"
        );
        std::fs::write(&p, "arrival_s,finish_s\n1,2\n").unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.contains("m.csv:1: field `first_token_time_s`: missing column"),
            "{e}"
        );
    }
}
