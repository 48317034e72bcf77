//! vLLM `benchmark_serving` / `vllm bench serve` result JSON, saved with
//! `--save-result --save-detailed`: per-request `ttfts`, `itls`, `input_lens` and
//! `output_lens` (seconds and tokens). Saved without `--save-detailed` the file has the
//! run's statistics only (`completed`, token totals, `mean_ttft_ms`, `median_…`,
//! `p99_…`, `output_throughput`): the run is replayed as `completed` requests of the
//! mean lengths and its [`RunSummary`] compared instead of requests.
//!
//! Older files do not record when each request was sent. Arrivals come from the trace
//! reader of vLLM result files ([`open_trace_as`](crate::trace::open_trace_as)): a
//! per-request time list if the file has one, else regenerated from `request_rate`
//! (and `burstiness`) with the given seed, else (rate `inf`) all at time zero. With rate
//! `inf` and a cap (`max_concurrency`) the client was a closed loop: the run is replayed
//! as one, in the recorded order, whatever send times it recorded (they are when the
//! measured server freed a slot). Per request, E2E = `ttft + Σ itls` (or `e2els` where
//! the file has it; a copy trimmed to `e2els` may leave `itls` out). Failed requests (a
//! non-empty `errors` entry) are skipped, as the trace reader skips them.

use super::measured::{ArrivalMode, MeasuredRequest, MeasuredRun, RunFormat, RunSummary};
use super::stats::Quantiles;
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
    if !obj.contains_key("input_lens") && !obj.contains_key("ttfts") {
        if let Some(run) = summary_run(at, obj, seed, format)? {
            return Ok(run);
        }
    }
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
    let e2els = if obj.contains_key("e2els") {
        Some(need("e2els")?)
    } else {
        None
    };
    // A copy trimmed to per-request E2E (`e2els`) may leave the token gaps out.
    let itls = if e2els.is_some() && !obj.contains_key("itls") {
        None
    } else {
        Some(need("itls")?)
    };

    let mut out = Vec::with_capacity(requests.len());
    let mut all_itls = Vec::new();
    for r in &requests {
        let i = r.id as usize;
        let ttft = at.secs(&ttfts[i], &format!("ttfts[{i}]"))?;
        let gaps = match itls.map(|l| &l[i]) {
            None => Vec::new(),
            Some(Value::Array(g)) => g
                .iter()
                .enumerate()
                .map(|(j, v)| at.secs(v, &format!("itls[{i}][{j}]")))
                .collect::<Result<Vec<f64>>>()?,
            Some(v) => {
                return Err(at.err(&format!("itls[{i}]"), format!("expected a list, got {v}")))
            }
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
    let rate_inf = crate::trace::vllm::rate_is_inf(obj);
    let has_times = crate::trace::vllm::TIME_KEYS
        .iter()
        .any(|k| obj.contains_key(*k));
    // With no rate limit and a cap the client is a closed loop: each send time it
    // recorded is when the measured server freed a slot, an outcome of that server's
    // speed. The replay keeps the order and lets the simulated server free the slots.
    let closed_loop = trace.closed_loop;
    let arrivals = if closed_loop {
        if has_times {
            for r in &mut out {
                r.arrival_s = 0.0;
            }
        }
        ArrivalMode::AllAtOnce
    } else if has_times {
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
    if closed_loop && has_times {
        notes.push(format!(
            "request rate inf with max_concurrency {}: a closed loop; the recorded send times (when the measured server freed a slot) give the order only",
            max_concurrency.unwrap_or_default()
        ));
    }
    if matches!(arrivals, ArrivalMode::Regenerated { .. }) {
        notes.push(format!(
            "the file has no send times: arrivals regenerated from request_rate with seed {seed}, not the times the benchmark used; per-request TTFT/E2E errors include that difference"
        ));
    }
    let mut run = MeasuredRun::from_client(
        path.to_owned(),
        format,
        out,
        arrivals,
        max_concurrency,
        notes,
    );
    run.itls_s = itls.map(|_| all_itls);
    fill_hints(&mut run, obj, format);
    Ok(run)
}

/// What the object says beside its requests: the output rate it printed, its model,
/// and for SGLang's client talking to its own server through the `sglang` backends (its
/// native `/generate` and its OpenAI routes) the `sglang` stack (other backends name a
/// protocol only) and the settings the server reported.
fn fill_hints(run: &mut MeasuredRun, obj: &Map<String, Value>, format: RunFormat) {
    run.stated_output_tokens_per_s = obj
        .get("output_throughput")
        .and_then(Value::as_f64)
        .filter(|r| r.is_finite() && *r > 0.0);
    run.hints.model = ["model_id", "model"]
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .map(str::to_owned);
    let backend = obj.get("backend").and_then(Value::as_str).unwrap_or("");
    if format == RunFormat::SglangBench && backend.starts_with("sglang") {
        run.hints.serving_stack = Some("sglang".into());
        run.notes.push(format!(
            "serving stack sglang, from the file's backend `{backend}` (--serving-stack overrides)"
        ));
    }
    if let Some(Value::Object(info)) = obj.get("server_info") {
        sglang_server_hints(run, info);
    }
}

/// The settings an SGLang server reports of itself (`server_info`, which
/// `sglang.bench_serving` writes into each result line): parallelism, memory fraction,
/// context, version, radix cache, request and chunk limits, CUDA graphs, custom
/// all-reduce. The command line's flags win over them.
fn sglang_server_hints(run: &mut MeasuredRun, info: &Map<String, Value>) {
    let int = |k: &str| {
        info.get(k)
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0)
    };
    let flag = |k: &str| info.get(k).and_then(Value::as_bool);
    let h = &mut run.hints;
    // Only SGLang's server reports itself so.
    h.serving_stack.get_or_insert_with(|| "sglang".into());
    h.tensor_parallel_size = int("tp_size").or(h.tensor_parallel_size);
    h.data_parallel_size = int("dp_size").or(h.data_parallel_size);
    h.max_model_len = int("context_length").or(h.max_model_len);
    h.max_num_seqs = int("max_running_requests").or(h.max_num_seqs);
    h.max_num_batched_tokens = int("chunked_prefill_size").or(h.max_num_batched_tokens);
    if let Some(f) = info
        .get("mem_fraction_static")
        .and_then(Value::as_f64)
        .filter(|f| *f > 0.0 && *f <= 1.0)
    {
        h.gpu_memory_utilization = Some(f);
    }
    if let Some(v) = info.get("version").and_then(Value::as_str) {
        h.engine_version = Some(v.to_owned());
    }
    if let Some(d) = flag("disable_radix_cache") {
        h.enable_prefix_caching = Some(!d);
    }
    if let Some(d) = flag("disable_cuda_graph") {
        h.enforce_eager = Some(d);
    }
    if let Some(d) = flag("disable_custom_all_reduce") {
        h.disable_custom_all_reduce = Some(d);
    }
    run.notes.push(format!(
        "engine settings from the file's server_info (SGLang {}): TP {}, DP {}, memory fraction {}, context {}, chunked prefill {}, radix cache {}; the command line's flags win",
        h.engine_version.as_deref().unwrap_or("?"),
        h.tensor_parallel_size.map_or("?".into(), |v| v.to_string()),
        h.data_parallel_size.map_or("?".into(), |v| v.to_string()),
        h.gpu_memory_utilization.map_or("?".into(), |v| v.to_string()),
        h.max_model_len.map_or("?".into(), |v| v.to_string()),
        h.max_num_batched_tokens.map_or("?".into(), |v| v.to_string()),
        match h.enable_prefix_caching {
            Some(true) => "on",
            Some(false) => "off",
            None => "?",
        },
    ));
}

/// A number under `key`, if the object has one (`null` and absent alike: none).
fn number(at: At<'_>, obj: &Map<String, Value>, key: &str) -> Result<Option<f64>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
            _ => Err(at.err(key, format!("expected a non-negative number, got {v}"))),
        },
    }
}

/// The run of a result saved without per-request lists, from its printed statistics:
/// `completed` requests of the mean lengths (`total_input_tokens` and
/// `total_output_tokens` over `completed`), sent as the file's rate and concurrency
/// cap say; `None` when the object has no `mean_ttft_ms` either (not a summary).
fn summary_run(
    at: At<'_>,
    obj: &Map<String, Value>,
    seed: u64,
    format: RunFormat,
) -> Result<Option<MeasuredRun>> {
    if number(at, obj, "mean_ttft_ms")?.is_none() {
        return Ok(None);
    }
    let need = |key: &str| -> Result<f64> {
        number(at, obj, key)?.ok_or_else(|| {
            at.err(
                key,
                "missing: a result without per-request lists needs `completed`, `total_input_tokens` and `total_output_tokens` to replay its requests",
            )
        })
    };
    let completed = need("completed")?;
    if completed < 1.0 {
        return Err(at.err("completed", "no request completed: nothing to replay"));
    }
    let n = completed.round() as u64;
    let mean_len = |key: &str| -> Result<u32> {
        Ok((need(key)? / completed)
            .round()
            .clamp(1.0, f64::from(u32::MAX)) as u32)
    };
    let (input, output) = (
        mean_len("total_input_tokens")?,
        mean_len("total_output_tokens")?,
    );
    // The latencies as printed, ms → s; `e2el` is vLLM's name, `e2e_latency` SGLang's.
    let quantiles = |names: &[&str]| -> Result<Quantiles> {
        let stat = |s: &str| -> Result<f64> {
            for b in names {
                if let Some(x) = number(at, obj, &format!("{s}_{b}_ms"))? {
                    return Ok(x / 1e3);
                }
            }
            Ok(f64::NAN)
        };
        Ok(Quantiles {
            count: n as usize,
            mean: stat("mean")?,
            p50: stat("median")?,
            p90: stat("p90")?,
            p99: stat("p99")?,
        })
    };
    let summary = RunSummary {
        ttft_s: quantiles(&["ttft"])?,
        tpot_s: quantiles(&["tpot"])?,
        itl_s: quantiles(&["itl"])?,
        e2e_s: quantiles(&["e2el", "e2e_latency"])?,
    };
    let burst = crate::trace::vllm::rate_is_inf(obj);
    let sent = crate::trace::vllm::regenerated_arrivals(obj, n as usize, seed)
        .map_err(|(k, m)| at.err(k, m))?;
    let requests = (0..n)
        .zip(sent)
        .map(|(id, t)| MeasuredRequest {
            id,
            arrival_s: t as f64 * 1e-9,
            input_tokens: input,
            output_tokens: output,
            ttft_s: f64::NAN,
            e2e_s: f64::NAN,
            prefix_hash_ids: Vec::new(),
        })
        .collect();
    let arrivals = if burst {
        ArrivalMode::AllAtOnce
    } else {
        ArrivalMode::Regenerated {
            seed,
            request_rate_rps: obj.get("request_rate").and_then(Value::as_f64),
        }
    };
    let max_concurrency =
        crate::trace::vllm::max_concurrency(obj).map_err(|m| at.err("max_concurrency", m))?;
    let mut notes = Vec::new();
    if let Some(line) = at.line {
        notes.push(format!(
            "line {line} of {}: one benchmark run of the file",
            at.path.display()
        ));
    }
    notes.push(format!(
        "the file has the run's statistics only (saved without per-request lists): {n} requests of its mean lengths ({input} tokens in, {output} out) replayed{}; the errors compare the run's means (its median, p90 and p99 are shown where printed), not requests",
        if burst {
            String::new()
        } else {
            format!(", arrivals regenerated from request_rate with seed {seed}")
        }
    ));
    let mut run = MeasuredRun::from_client(
        at.path.to_owned(),
        format,
        requests,
        arrivals,
        max_concurrency,
        notes,
    );
    run.summary = Some(summary);
    fill_hints(&mut run, obj, format);
    Ok(Some(run))
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
    fn a_capped_burst_is_a_closed_loop_whatever_times_it_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        // Sent by 2 clients: the third request went when the first one's slot freed.
        std::fs::write(
            &p,
            r#"{"request_rate": "inf", "max_concurrency": 2, "output_throughput": 12.5,
                "input_lens": [10, 20, 30], "output_lens": [3, 1, 2],
                "start_times": [100.0, 100.5, 100.2], "ttfts": [0.1, 0.2, 0.3],
                "e2els": [0.2, 0.3, 0.5]}"#,
        )
        .unwrap();
        let r = read(&p, 0).unwrap();
        assert_eq!(r.arrivals, ArrivalMode::AllAtOnce);
        assert_eq!(r.max_concurrency, Some(2));
        // Sent in the recorded order, each when the simulated server frees a slot.
        let ids: Vec<u64> = r.requests.iter().map(|q| q.id).collect();
        assert_eq!(ids, [0, 2, 1]);
        assert!(r.requests.iter().all(|q| q.arrival_s == 0.0));
        assert!(
            r.notes.iter().any(|n| n.contains("a closed loop")),
            "{:?}",
            r.notes
        );
        // Per-request E2E without the token gaps: no ITL list to compare.
        assert!((r.requests[1].e2e_s - 0.5).abs() < 1e-12);
        assert_eq!(r.itls_s, None);
        // The loop's rate is the benchmark's own figure, not tokens over the longest E2E.
        assert_eq!(r.output_tokens_per_s(), 12.5);
        let mut unstated = r.clone();
        unstated.stated_output_tokens_per_s = None;
        // Little's law: 2 clients × 6 tokens / 1.0 s of summed E2E.
        assert!((unstated.output_tokens_per_s() - 12.0).abs() < 1e-9);
    }

    #[test]
    fn timed_arrivals_with_a_rate_stay_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        std::fs::write(
            &p,
            r#"{"request_rate": 4.0, "max_concurrency": 2,
                "input_lens": [10, 20], "output_lens": [3, 1],
                "start_times": [100.0, 100.5], "ttfts": [0.1, 0.2], "itls": [[0.01, 0.01], []]}"#,
        )
        .unwrap();
        let r = read(&p, 0).unwrap();
        assert_eq!(r.arrivals, ArrivalMode::Recorded);
        assert!((r.requests[1].arrival_s - 0.5).abs() < 1e-12);
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
