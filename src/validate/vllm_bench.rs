//! vLLM `benchmark_serving` / `vllm bench serve` result JSON, saved with
//! `--save-result --save-detailed`: per-request `ttfts`, `itls`, `input_lens` and
//! `output_lens` (seconds and tokens).
//!
//! The file does not record when each request was sent. Arrivals come from the trace
//! reader of vLLM result files ([`open_trace_as`](crate::trace::open_trace_as)): a
//! per-request time list if the file has one, else regenerated from `request_rate`
//! (and `burstiness`) with the given seed, else (rate `inf`) all at time zero. Per request, E2E = `ttft + Σ itls` (or `e2els` where the
//! file has it). Failed requests (a non-empty `errors` entry) are skipped, as the
//! trace reader skips them.

use super::measured::{ArrivalMode, EngineHints, MeasuredRequest, MeasuredRun, RunFormat, Timing};
use crate::error::{Error, Result};
use crate::trace::TraceOptions;
use serde_json::{Map, Value};
use std::path::Path;

/// Where a result object sits: the whole file (vLLM) or one line of a JSON-lines file
/// of results (SGLang's `bench_serving`). Errors name the line when there is one.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    pub(crate) path: &'a Path,
    pub(crate) line: Option<u64>,
}

impl At<'_> {
    fn err(&self, field: &str, msg: impl Into<String>) -> Error {
        match self.line {
            Some(n) => Error::input_at(self.path, n, Some(field), msg),
            None => Error::input(self.path, Some(field), msg),
        }
    }

    fn list<'o>(&self, obj: &'o Map<String, Value>, key: &str) -> Result<Option<&'o [Value]>> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(v) => Err(self.err(key, format!("expected a list, got {v}"))),
        }
    }

    fn secs(&self, v: &Value, field: &str) -> Result<f64> {
        match v.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
            _ => Err(self.err(
                field,
                format!("expected a non-negative number of seconds, got {v}"),
            )),
        }
    }
}

/// Read a result file; `seed` regenerates arrivals when the file has none.
pub fn read(path: &Path, seed: u64) -> Result<MeasuredRun> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let doc: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| Error::input_at(path, e.line() as u64, None, format!("invalid JSON: {e}")))?;
    let obj = doc
        .as_object()
        .ok_or_else(|| Error::input(path, None, "expected a JSON object"))?;
    from_object(At { path, line: None }, obj, seed, RunFormat::VllmBench)
}

/// The measured run of one result object (vLLM's file, or a line of SGLang's).
pub(crate) fn from_object(
    at: At<'_>,
    obj: &Map<String, Value>,
    seed: u64,
    format: RunFormat,
) -> Result<MeasuredRun> {
    let path = at.path;
    let block = TraceOptions::default().native_hash_block_tokens;
    let trace = crate::trace::vllm::parse(path, at.line, obj, seed, block)?;
    let max_concurrency = trace.max_concurrency;
    let requests = trace.requests;
    let n = at.list(obj, "input_lens")?.map_or(0, <[Value]>::len);
    let need = |key: &str| -> Result<&[Value]> {
        let a = at.list(obj, key)?.ok_or_else(|| {
            at.err(
                key,
                "missing: save the result with per-request details (vLLM: `--save-result --save-detailed`; SGLang: `--output-details`)",
            )
        })?;
        if a.len() != n {
            return Err(at.err(
                key,
                format!("has {} entries but `input_lens` has {n}", a.len()),
            ));
        }
        Ok(a)
    };
    let ttfts = need("ttfts")?;
    let itls = need("itls")?;
    let e2els = if obj.contains_key("e2els") {
        Some(need("e2els")?)
    } else {
        None
    };

    let mut out = Vec::with_capacity(requests.len());
    let mut all_itls = Vec::new();
    for r in &requests {
        let i = r.id as usize;
        let ttft = at.secs(&ttfts[i], &format!("ttfts[{i}]"))?;
        let gaps = match &itls[i] {
            Value::Array(g) => g
                .iter()
                .enumerate()
                .map(|(j, v)| at.secs(v, &format!("itls[{i}][{j}]")))
                .collect::<Result<Vec<f64>>>()?,
            v => return Err(at.err(&format!("itls[{i}]"), format!("expected a list, got {v}"))),
        };
        let e2e = match e2els {
            Some(e) => at.secs(&e[i], &format!("e2els[{i}]"))?,
            None => ttft + gaps.iter().sum::<f64>(),
        };
        all_itls.extend_from_slice(&gaps);
        out.push(MeasuredRequest {
            id: r.id,
            arrival_s: r.arrival.as_secs_f64(),
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            ttft_s: ttft,
            e2e_s: e2e,
            prefix_hash_ids: Vec::new(),
        });
    }
    let rate_inf = match obj.get("request_rate") {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("inf"),
        Some(v) => v.as_f64().is_some_and(f64::is_infinite),
    };
    let has_times = ["start_times", "arrival_times", "timestamps"]
        .iter()
        .any(|k| obj.contains_key(*k));
    let arrivals = if has_times {
        ArrivalMode::Recorded
    } else if rate_inf {
        ArrivalMode::AllAtOnce
    } else {
        ArrivalMode::Regenerated {
            seed,
            request_rate_rps: obj.get("request_rate").and_then(Value::as_f64),
        }
    };
    let mut notes = Vec::new();
    if let Some(n) = at.line {
        notes.push(format!(
            "line {n} of {}: one benchmark run of the file",
            path.display()
        ));
    }
    if requests.len() < n {
        notes.push(format!(
            "{} of {n} requests failed in the measurement and are left out",
            n - requests.len()
        ));
    }
    if matches!(arrivals, ArrivalMode::Regenerated { .. }) {
        notes.push(format!(
            "the file has no send times: arrivals regenerated from request_rate with seed {seed}, not the times the benchmark used; per-request TTFT/E2E errors include that difference"
        ));
    }
    // SGLang's client talks to its own server through the `sglang` backends (its
    // native `/generate` and its OpenAI routes); other backends name a protocol only.
    let backend = obj.get("backend").and_then(Value::as_str).unwrap_or("");
    let serving_stack = (format == RunFormat::SglangBench && backend.starts_with("sglang"))
        .then(|| "sglang".to_owned());
    if serving_stack.is_some() {
        notes.push(format!(
            "serving stack sglang, from the file's backend `{backend}` (--serving-stack overrides)"
        ));
    }
    let hints = EngineHints {
        model: ["model_id", "model"]
            .iter()
            .find_map(|k| obj.get(*k).and_then(Value::as_str))
            .map(str::to_owned),
        serving_stack,
        ..EngineHints::default()
    };
    Ok(MeasuredRun {
        source: path.to_owned(),
        format,
        requests: out,
        itls_s: Some(all_itls),
        arrivals,
        timing: Timing::Client,
        load_only: Vec::new(),
        client_timeout_s: None,
        max_concurrency,
        hints,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_burst_result() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        std::fs::write(
            &p,
            r#"{"request_rate": "inf", "max_concurrency": 2, "model_id": "meta-llama/Llama-3.1-8B",
                "input_lens": [10, 20, 30], "output_lens": [3, 1, 2],
                "ttfts": [0.1, 0.2, 0.0], "itls": [[0.01, 0.03], [], []],
                "errors": ["", "", "boom"]}"#,
        )
        .unwrap();
        let r = read(&p, 0).unwrap();
        assert_eq!(r.requests.len(), 2);
        assert_eq!(r.arrivals, ArrivalMode::AllAtOnce);
        assert_eq!(r.max_concurrency, Some(2));
        let a = &r.requests[0];
        assert!((a.e2e_s - 0.14).abs() < 1e-12);
        assert!((a.tpot_s() - 0.02).abs() < 1e-12);
        assert_eq!(r.itls_s.as_deref(), Some(&[0.01, 0.03][..]));
        assert_eq!(r.hints.model.as_deref(), Some("meta-llama/Llama-3.1-8B"));
        assert!(r.notes[0].contains("1 of 3 requests failed"));
    }

    #[test]
    fn malformed_itls_name_the_entry() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        std::fs::write(
            &p,
            r#"{"request_rate": 2.0, "input_lens": [10], "output_lens": [3],
                "ttfts": [0.1], "itls": [[0.01, "x"]]}"#,
        )
        .unwrap();
        let e = read(&p, 0).unwrap_err().to_string();
        assert!(e.contains("field `itls[0][1]`"), "{e}");
        std::fs::write(
            &p,
            r#"{"request_rate": 2.0, "input_lens": [10], "output_lens": [3], "itls": [[]]}"#,
        )
        .unwrap();
        let e = read(&p, 0).unwrap_err().to_string();
        assert!(e.contains("field `ttfts`: missing"), "{e}");
    }
}
