//! LLMServingSim bench runs: `requests.jsonl` (one measured vLLM request per line) and
//! the `meta.json` beside it.
//!
//! Every time is on vLLM's monotonic clock: arrival = `queued_ts` (shifted so the
//! earliest is 0), TTFT = `first_token_ts − queued_ts`, E2E = `last_token_ts −
//! queued_ts`. Requests are ordered by `queued_ts`, ties in file order; ids are line
//! positions, as [`open_trace`](crate::trace::open_trace) numbers them.
//!
//! `meta.json` gives the engine settings (`engine_kwargs`, `kv_cache`) and the device
//! name; where it names no device, the run folder's name up to its first `_`
//! (`RTXPRO6000_Llama-3.1-8B` → `RTXPRO6000`) is used.

use super::measured::{ArrivalMode, EngineHints, MeasuredRequest, MeasuredRun, RunFormat, Timing};
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The `requests.jsonl` of `path` (the file itself, or a run folder holding it).
pub fn requests_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("requests.jsonl")
    } else {
        path.to_owned()
    }
}

/// Read a run: `path` is `requests.jsonl` or its folder.
pub fn read(path: &Path) -> Result<MeasuredRun> {
    let file = requests_path(path);
    let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let err = |field: Option<&str>, msg: String| Error::input_at(&file, n, field, msg);
        let obj = match serde_json::from_str::<Value>(line.trim()) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return Err(err(None, "expected a JSON object".into())),
            Err(e) => return Err(err(None, format!("invalid JSON: {e}"))),
        };
        let num = |key: &str| -> Result<f64> {
            match obj.get(key).and_then(Value::as_f64) {
                Some(x) if x.is_finite() => Ok(x),
                Some(x) => Err(err(Some(key), format!("not finite: {x}"))),
                None => Err(err(
                    Some(key),
                    match obj.get(key) {
                        None => "missing".into(),
                        Some(v) => format!("not a number: {v}"),
                    },
                )),
            }
        };
        let tokens = |key: &str| -> Result<u32> {
            let x = num(key)?;
            if x >= 1.0 && x.fract() == 0.0 && x <= f64::from(u32::MAX) {
                Ok(x as u32)
            } else {
                Err(err(
                    Some(key),
                    format!("must be a whole number ≥ 1, got {x}"),
                ))
            }
        };
        let (queued, first, last) = (
            num("queued_ts")?,
            num("first_token_ts")?,
            num("last_token_ts")?,
        );
        if first < queued {
            return Err(err(
                Some("first_token_ts"),
                format!("{first} is before queued_ts {queued}"),
            ));
        }
        if last < first {
            return Err(err(
                Some("last_token_ts"),
                format!("{last} is before first_token_ts {first}"),
            ));
        }
        rows.push((
            queued,
            MeasuredRequest {
                id: rows.len() as u64,
                arrival_s: 0.0,
                input_tokens: tokens("input_toks")?,
                output_tokens: tokens("output_toks")?,
                ttft_s: first - queued,
                e2e_s: last - queued,
                prefix_hash_ids: Vec::new(),
            },
        ));
    }
    if rows.is_empty() {
        return Err(Error::input(&file, None, "no requests in the file"));
    }
    let t0 = rows.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let requests = rows
        .into_iter()
        .map(|(q, mut r)| {
            r.arrival_s = q - t0;
            r
        })
        .collect();

    let dir = file.parent().unwrap_or(Path::new("."));
    let meta = dir.join("meta.json");
    let mut notes = Vec::new();
    let mut hints = if meta.is_file() {
        read_meta(&meta)?
    } else {
        notes.push(format!(
            "no meta.json next to {}: engine settings come from flags only",
            file.display()
        ));
        EngineHints::default()
    };
    if hints.hardware.is_none() {
        hints.hardware = dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split_once('_'))
            .map(|(hw, _)| hw.to_owned());
    }
    Ok(MeasuredRun {
        source: file,
        format: RunFormat::LlmServingSim,
        requests,
        itls_s: None,
        timing: Timing::Engine,
        load_only: Vec::new(),
        client_timeout_s: None,
        arrivals: ArrivalMode::Recorded,
        max_concurrency: None,
        hints,
        notes,
        summary: None,
        stated_output_tokens_per_s: None,
    })
}

/// The engine settings in a `meta.json`.
pub fn read_meta(path: &Path) -> Result<EngineHints> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| Error::input_at(path, e.line() as u64, None, format!("invalid JSON: {e}")))?;
    let empty = Map::new();
    let obj = doc.as_object().unwrap_or(&empty);
    let section = |k: &str| obj.get(k).and_then(Value::as_object).unwrap_or(&empty);
    let (kw, kv, hw) = (
        section("engine_kwargs"),
        section("kv_cache"),
        section("hardware"),
    );
    let field = |m: &Map<String, Value>, sect: &str, key: &str| -> Result<Option<u32>> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .map(Some)
                .ok_or_else(|| {
                    Error::input(
                        path,
                        Some(&format!("{sect}.{key}")),
                        format!("expected a whole number, got {v}"),
                    )
                }),
        }
    };
    let string = |m: &Map<String, Value>, key: &str| {
        m.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && *s != "auto")
            .map(str::to_owned)
    };
    let util = match kv.get("gpu_memory_utilization") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_f64().ok_or_else(|| {
            Error::input(
                path,
                Some("kv_cache.gpu_memory_utilization"),
                format!("expected a number, got {v}"),
            )
        })?),
    };
    // "NVIDIA GeForce RTX 4090" → "RTX 4090", which the catalog resolves.
    let device = string(hw, "device_name").map(|d| {
        d.trim_start_matches("NVIDIA ")
            .trim_start_matches("GeForce ")
            .to_owned()
    });
    // An engine flag as the run passed it, else as vLLM resolved it (`resolved_config`).
    let passed_or_resolved = |section: &str, key: &str| {
        kw.get(key).and_then(Value::as_bool).or_else(|| {
            doc.pointer(&format!("/resolved_config/{section}/{key}"))
                .and_then(Value::as_bool)
        })
    };
    Ok(EngineHints {
        model: string(kw, "model").or_else(|| string(obj, "model")),
        hardware: device,
        tensor_parallel_size: field(kw, "engine_kwargs", "tensor_parallel_size")?,
        data_parallel_size: field(kw, "engine_kwargs", "data_parallel_size")?,
        enable_expert_parallel: kw.get("enable_expert_parallel").and_then(Value::as_bool),
        max_num_seqs: field(kw, "engine_kwargs", "max_num_seqs")?,
        max_num_batched_tokens: field(kw, "engine_kwargs", "max_num_batched_tokens")?,
        max_model_len: field(kw, "engine_kwargs", "max_model_len")?,
        gpu_memory_utilization: util,
        block_size: field(kv, "kv_cache", "block_size")?,
        num_gpu_blocks: field(kv, "kv_cache", "num_gpu_blocks")?,
        enable_prefix_caching: kv.get("enable_prefix_caching").and_then(Value::as_bool),
        dtype: string(kw, "dtype"),
        kv_cache_dtype: string(kw, "kv_cache_dtype"),
        engine_version: string(obj, "vllm_version").map(|v| format!("vLLM {v}")),
        enforce_eager: passed_or_resolved("model_config", "enforce_eager"),
        disable_custom_all_reduce: passed_or_resolved(
            "parallel_config",
            "disable_custom_all_reduce",
        ),
        serving_stack: None,
        model_config: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_run_folder_with_meta() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("RTX4090_Tiny");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(
            run.join("requests.jsonl"),
            concat!(
                r#"{"input_toks": 10, "output_toks": 5, "queued_ts": 100.5, "first_token_ts": 100.7, "last_token_ts": 101.5}"#,
                "\n",
                r#"{"input_toks": 20, "output_toks": 1, "queued_ts": 100.0, "first_token_ts": 100.1, "last_token_ts": 100.1}"#,
                "\n"
            ),
        )
        .unwrap();
        std::fs::write(
            run.join("meta.json"),
            r#"{"engine_kwargs": {"model": "m", "tensor_parallel_size": 2, "max_model_len": null},
                "kv_cache": {"num_gpu_blocks": 100, "block_size": 16, "gpu_memory_utilization": 0.8},
                "resolved_config": {"model_config": {"enforce_eager": true},
                                    "parallel_config": {"disable_custom_all_reduce": true}}}"#,
        )
        .unwrap();
        let r = read(&run).unwrap();
        assert_eq!(r.requests.len(), 2);
        // Sorted by queued_ts: the second line first; ids stay line positions.
        assert_eq!(r.requests[0].id, 1);
        assert_eq!(r.requests[0].arrival_s, 0.0);
        assert!((r.requests[1].arrival_s - 0.5).abs() < 1e-12);
        assert!((r.requests[1].ttft_s - 0.2).abs() < 1e-9);
        assert!((r.requests[1].tpot_s() - 0.2).abs() < 1e-9);
        assert!(r.requests[0].tpot_s().is_nan());
        assert_eq!(r.hints.tensor_parallel_size, Some(2));
        assert_eq!(r.hints.num_gpu_blocks, Some(100));
        assert_eq!(r.hints.max_model_len, None);
        assert_eq!(r.hints.hardware.as_deref(), Some("RTX4090"));
        assert_eq!(r.hints.enforce_eager, Some(true));
        assert_eq!(r.hints.disable_custom_all_reduce, Some(true));
    }

    #[test]
    fn malformed_rows_name_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("requests.jsonl");
        std::fs::write(
            &p,
            concat!(
                r#"{"input_toks": 10, "output_toks": 5, "queued_ts": 1, "first_token_ts": 2, "last_token_ts": 3}"#,
                "\n",
                r#"{"input_toks": 10, "output_toks": 5, "queued_ts": 1, "first_token_ts": 2}"#,
                "\n"
            ),
        )
        .unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.ends_with("requests.jsonl:2: field `last_token_ts`: missing"),
            "{e}"
        );
        std::fs::write(
            &p,
            r#"{"input_toks": 0, "output_toks": 5, "queued_ts": 1, "first_token_ts": 2, "last_token_ts": 3}"#,
        )
        .unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(
            e.contains(":1: field `input_toks`: must be a whole number"),
            "{e}"
        );
    }
}
