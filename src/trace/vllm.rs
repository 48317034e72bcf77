//! Reader of vLLM `benchmark_serving` / `vllm bench serve` result JSON (saved with
//! `--save-result --save-detailed`). Loaded whole: the file holds per-request arrays.
//!
//! Arrival times are not in the file unless it has a per-request time list; otherwise
//! they are regenerated from `request_rate` and `burstiness` (see the
//! [module docs](super)).

use super::synth::ArrivalSampler;
use super::{jsonl::json_tokens, ArrivalProcess, Request, RowAt, RowChecker};
use crate::error::{Error, Result};
use crate::units::{checked_secs_to_nanos, SimTime};
use serde_json::{Map, Value};
use std::path::Path;

/// The requests of a vLLM result file and what else it says about the run.
pub(crate) struct VllmTrace {
    pub(crate) requests: Vec<Request>,
    pub(crate) max_concurrency: Option<u32>,
    /// No rate limit and a cap: the client was a closed loop of `max_concurrency`
    /// clients, and any send times it recorded are when the server freed a slot.
    pub(crate) closed_loop: bool,
}

/// The client's cap on requests in flight (`max_concurrency`), where it had one.
pub(crate) fn max_concurrency(obj: &Map<String, Value>) -> Result<Option<u32>, String> {
    match obj.get("max_concurrency") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => json_tokens(v).map(Some),
    }
}

/// `n` send times, ns, drawn as the client drew them ([`arrival_process`]) with `seed`:
/// all zero for a burst.
pub(crate) fn regenerated_arrivals(
    obj: &Map<String, Value>,
    n: usize,
    seed: u64,
) -> Result<Vec<u64>, (&'static str, String)> {
    let process = arrival_process(obj)?;
    let mut sampler = ArrivalSampler::new(&process, seed);
    Ok((0..n)
        .map(|_| sampler.next_nanos().unwrap_or(u64::MAX))
        .collect())
}

/// Whether the result's `request_rate` is unlimited (`"inf"` or missing): a burst, as
/// [`arrival_process`] reads it.
pub(crate) fn rate_is_inf(obj: &Map<String, Value>) -> bool {
    matches!(arrival_process(obj), Ok(ArrivalProcess::Burst))
}

/// Keys of per-request send times (seconds) that some result files carry.
pub(crate) const TIME_KEYS: [&str; 3] = ["start_times", "arrival_times", "timestamps"];

/// Read the vLLM result file at `path`.
pub(crate) fn read(path: &Path, seed: u64, default_block: u32) -> Result<VllmTrace> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let doc: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| Error::input_at(path, e.line() as u64, None, format!("invalid JSON: {e}")))?;
    let Value::Object(obj) = doc else {
        return Err(Error::input(
            path,
            None,
            "expected a JSON object (a vLLM benchmark result)",
        ));
    };
    parse(path, None, &obj, seed, default_block)
}

/// The requests of one result object: the whole file of a vLLM result, or `line` of a
/// JSON-lines file holding one result per line (SGLang's `bench_serving`); errors name
/// the line when there is one.
pub(crate) fn parse(
    path: &Path,
    line: Option<u64>,
    obj: &Map<String, Value>,
    seed: u64,
    default_block: u32,
) -> Result<VllmTrace> {
    let err = |field: &str, msg: String| match line {
        Some(n) => Error::input_at(path, n, Some(field), msg),
        None => Error::input(path, Some(field), msg),
    };
    let array = |key: &str| -> Result<&Vec<Value>> {
        match obj.get(key) {
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(err(key, format!("expected a list, got {}", kind(v)))),
            None => Err(err(
                key,
                "missing: save the result with per-request details (vLLM: `--save-result --save-detailed`; SGLang: `--output-details`)".into(),
            )),
        }
    };
    let inputs = array("input_lens")?;
    let outputs = array("output_lens")?;
    if inputs.len() != outputs.len() {
        return Err(err(
            "output_lens",
            format!(
                "has {} entries but `input_lens` has {}",
                outputs.len(),
                inputs.len()
            ),
        ));
    }
    let n = inputs.len();
    let errors: Option<&Vec<Value>> = match obj.get("errors") {
        Some(Value::Array(a)) if a.len() == n => Some(a),
        Some(Value::Array(a)) => {
            return Err(err(
                "errors",
                format!("has {} entries but `input_lens` has {n}", a.len()),
            ))
        }
        _ => None,
    };
    let failed = |i: usize| {
        errors.is_some_and(|e| match &e[i] {
            Value::String(s) => !s.is_empty(),
            Value::Null => false,
            _ => true,
        })
    };

    let max_concurrency = max_concurrency(obj).map_err(|m| err("max_concurrency", m))?;

    // Arrival times: a per-request list if the file has one, else regenerated.
    let arrivals: Vec<u64> = if let Some(key) = TIME_KEYS.iter().find(|k| obj.contains_key(**k)) {
        let times = array(key)?;
        if times.len() != n {
            return Err(err(
                key,
                format!("has {} entries but `input_lens` has {n}", times.len()),
            ));
        }
        let mut secs = Vec::with_capacity(n);
        for (i, v) in times.iter().enumerate() {
            match v.as_f64() {
                Some(t) if t.is_finite() => secs.push(t),
                _ => {
                    return Err(err(
                        &format!("{key}[{i}]"),
                        format!("not a finite number: {v}"),
                    ))
                }
            }
        }
        let t0 = secs.iter().copied().fold(f64::INFINITY, f64::min);
        secs.iter()
            .enumerate()
            .map(|(i, t)| {
                checked_secs_to_nanos(t - t0)
                    .ok_or_else(|| err(&format!("{key}[{i}]"), format!("{t} is out of range")))
            })
            .collect::<Result<_>>()?
    } else {
        regenerated_arrivals(obj, n, seed).map_err(|(k, m)| err(k, m))?
    };

    // Requests in arrival order (a stable sort keeps the list order on ties); ids are
    // positions in the file's lists.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| arrivals[i]);
    let mut checker = RowChecker::new(path);
    let mut requests = Vec::with_capacity(n);
    for i in order {
        if failed(i) {
            continue;
        }
        let mut r = Request::new(
            i as u64,
            SimTime::from_nanos(arrivals[i]),
            json_tokens(&inputs[i]).map_err(|m| err(&format!("input_lens[{i}]"), m))?,
            json_tokens(&outputs[i]).map_err(|m| err(&format!("output_lens[{i}]"), m))?,
        );
        r.hash_block_tokens = default_block;
        let at = match line {
            Some(line) => RowAt::LineIndex {
                line,
                index: i as u64,
            },
            None => RowAt::Index(i as u64),
        };
        checker.check(&r, at, ["arrival", "input_lens", "output_lens", ""])?;
        requests.push(r);
    }
    Ok(VllmTrace {
        requests,
        closed_loop: max_concurrency.is_some() && rate_is_inf(obj),
        max_concurrency,
    })
}

/// The arrival process vLLM used: Poisson at `request_rate` (Gamma with shape
/// `burstiness` when that is not 1); `"inf"` or a missing rate is every request at once.
pub(crate) fn arrival_process(
    obj: &Map<String, Value>,
) -> Result<ArrivalProcess, (&'static str, String)> {
    let rate = match obj.get("request_rate") {
        None | Some(Value::Null) => f64::INFINITY,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("inf") => f64::INFINITY,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(v) => {
            return Err((
                "request_rate",
                format!("expected a number or \"inf\", got {v}"),
            ))
        }
    };
    if rate.is_infinite() && rate > 0.0 {
        return Ok(ArrivalProcess::Burst);
    }
    if !(rate.is_finite() && rate > 0.0) {
        return Err(("request_rate", format!("must be positive, got {rate}")));
    }
    let burstiness = match obj.get("burstiness") {
        None | Some(Value::Null) => 1.0,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(v) => return Err(("burstiness", format!("expected a number, got {v}"))),
    };
    if !(burstiness.is_finite() && burstiness > 0.0) {
        return Err(("burstiness", format!("must be positive, got {burstiness}")));
    }
    Ok(if burstiness == 1.0 {
        ArrivalProcess::Poisson { rate_rps: rate }
    } else {
        ArrivalProcess::Gamma {
            rate_rps: rate,
            cv: 1.0 / burstiness.sqrt(),
        }
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
