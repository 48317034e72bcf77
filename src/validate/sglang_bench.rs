//! SGLang `bench_serving` results: a JSON-lines file to which every benchmark run
//! appends one object (`--output-file x.jsonl`). Saved with `--output-details`, each
//! object carries the per-request lists vLLM's result file has (`input_lens`,
//! `output_lens`, `ttfts`, `itls`, `errors`; seconds and tokens) beside the run's
//! settings (`backend`, `request_rate`, `max_concurrency`, ...), and is read as a vLLM
//! result ([`vllm_bench`](super::vllm_bench)); saved without, it has the run's
//! statistics only, replayed as a vLLM summary is.
//!
//! **Several runs in one file.** Each line is its own run, validated on its own (a file
//! of one line is one run), grouped as GenZ tables are ([`GenzTable`]): the group's key
//! is the line's request rate and concurrency cap, its notes name the line.
//!
//! **Non-finite numbers.** Python's `json.dumps` writes a burst's rate as `Infinity`
//! and an undefined statistic as `NaN`, which are not JSON; outside strings they are
//! read as `"inf"` and `null`.

use super::genz::{GenzGroup, GenzKey, GenzTable};
use super::measured::RunFormat;
use super::vllm_bench::{from_object, At};
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// Keys every detailed result line has.
const DETAIL_KEYS: [&str; 4] = ["input_lens", "output_lens", "ttfts", "itls"];

/// `line` with Python's non-finite tokens (`Infinity`, `-Infinity`, `NaN`) outside
/// strings replaced by JSON (`"inf"`, `"-inf"`, `null`).
pub(crate) fn python_json(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let swap = [
            ("-Infinity", "\"-inf\""),
            ("Infinity", "\"inf\""),
            ("NaN", "null"),
        ]
        .into_iter()
        .find(|(token, _)| rest.starts_with(token));
        if let Some((token, json)) = swap {
            out.push_str(json);
            rest = &rest[token.len()..];
            continue;
        }
        in_string = c == '"';
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The object on one line, or an error naming the line.
fn object(path: &Path, n: u64, line: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(&python_json(line.trim())) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(Error::input_at(
            path,
            n,
            None,
            "expected a JSON object (one bench_serving result)",
        )),
        Err(e) => Err(Error::input_at(path, n, None, format!("invalid JSON: {e}"))),
    }
}

/// Whether the first object of the JSON-lines file at `path` is a benchmark result:
/// per-request lists of lengths, TTFTs and ITLs, or the run's statistics (`completed`,
/// `mean_ttft_ms`).
pub(crate) fn looks_like_result_lines(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let first = text
        .trim_start_matches('\u{feff}')
        .lines()
        .find(|l| !l.trim().is_empty());
    first
        .and_then(|l| object(path, 1, l).ok())
        .is_some_and(|o| {
            DETAIL_KEYS.iter().all(|k| o.contains_key(*k))
                || ["completed", "mean_ttft_ms"]
                    .iter()
                    .all(|k| o.contains_key(*k))
        })
}

/// A key's value as text (`16`, `inf`), if present.
fn value_text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Read every result line of the file at `path`; `seed` regenerates the arrivals of
/// runs at a finite rate (the file has no send times).
pub fn read(path: &Path, seed: u64) -> Result<GenzTable> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut groups = Vec::new();
    for (i, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let obj = object(path, n, line)?;
        let run = from_object(
            At {
                path,
                line: Some(n),
            },
            &obj,
            seed,
            RunFormat::SglangBench,
        )?;
        let key = GenzKey {
            model: run.hints.model.clone(),
            concurrency: obj
                .get("max_concurrency")
                .and_then(Value::as_u64)
                .and_then(|c| u32::try_from(c).ok()),
            request_rate: value_text(&obj, "request_rate"),
            ..GenzKey::default()
        };
        groups.push(GenzGroup { key, run });
    }
    if groups.is_empty() {
        return Err(Error::input(
            path,
            None,
            "empty file: expected one bench_serving result per line",
        ));
    }
    Ok(GenzTable {
        source: path.to_owned(),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::ArrivalMode;

    const BURST: &str = r#"{"backend": "sglang", "request_rate": Infinity, "max_concurrency": null, "std_itl_ms": NaN, "generated_texts": ["a \"NaN\" b", "Infinity"], "input_lens": [10, 20], "output_lens": [3, 1], "ttfts": [0.1, 0.2], "itls": [[0.01, 0.03], []], "errors": ["", ""]}"#;
    const RATE: &str = r#"{"backend": "sglang-oai", "request_rate": 4.0, "max_concurrency": 8, "input_lens": [5, 6, 7], "output_lens": [2, 2, 2], "ttfts": [0.05, 0.06, 0.07], "itls": [[0.02], [0.02], [0.02]], "errors": ["", "", ""]}"#;

    fn write(lines: &[&str]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sglang.jsonl");
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        (dir, p)
    }

    #[test]
    fn the_servers_own_settings_become_hints() {
        let line = r#"{"backend": "sglang", "request_rate": Infinity, "max_concurrency": 100, "input_lens": [10], "output_lens": [3], "ttfts": [0.1], "itls": [[0.01, 0.02]], "errors": [""], "server_info": {"version": "0.5.9", "tp_size": 4, "dp_size": 2, "mem_fraction_static": 0.9, "context_length": 12000, "max_running_requests": null, "chunked_prefill_size": 8192, "disable_radix_cache": false, "disable_cuda_graph": false, "disable_custom_all_reduce": false}}"#;
        let (_d, p) = write(&[line]);
        let t = read(&p, 0).unwrap();
        let h = &t.groups[0].run.hints;
        assert_eq!(h.engine_version.as_deref(), Some("0.5.9"));
        assert_eq!(
            (h.tensor_parallel_size, h.data_parallel_size),
            (Some(4), Some(2))
        );
        assert_eq!(h.gpu_memory_utilization, Some(0.9));
        assert_eq!(h.max_model_len, Some(12000));
        assert_eq!(h.max_num_seqs, None);
        assert_eq!(h.max_num_batched_tokens, Some(8192));
        assert_eq!(h.enable_prefix_caching, Some(true));
        assert_eq!(h.enforce_eager, Some(false));
        assert!(t.groups[0]
            .run
            .notes
            .iter()
            .any(|n| n.contains("server_info")));
    }

    #[test]
    fn python_tokens_become_json_outside_strings_only() {
        let fixed = python_json(BURST);
        let v: Value = serde_json::from_str(&fixed).unwrap();
        assert_eq!(v["request_rate"], "inf");
        assert!(v["std_itl_ms"].is_null());
        assert_eq!(v["generated_texts"][0], "a \"NaN\" b");
        assert_eq!(v["generated_texts"][1], "Infinity");
        assert_eq!(python_json(r#"{"x": -Infinity}"#), r#"{"x": "-inf"}"#);
    }

    #[test]
    fn each_line_is_a_run_with_its_rate_and_cap() {
        let (_d, p) = write(&[BURST, "", RATE]);
        assert!(looks_like_result_lines(&p));
        let t = read(&p, 7).unwrap();
        assert_eq!(t.groups.len(), 2);
        let (burst, rate) = (&t.groups[0], &t.groups[1]);
        assert_eq!(burst.run.format, RunFormat::SglangBench);
        assert_eq!(burst.run.arrivals, ArrivalMode::AllAtOnce);
        assert_eq!(burst.key.request_rate.as_deref(), Some("inf"));
        assert!((burst.run.requests[0].e2e_s - 0.14).abs() < 1e-12);
        assert!(burst.run.notes[0].contains("line 1"));
        assert_eq!(burst.run.hints.serving_stack.as_deref(), Some("sglang"));
        assert!(burst
            .run
            .notes
            .iter()
            .any(|n| n.contains("backend `sglang`")));
        assert_eq!(rate.key.slug(), "c8_rate4.0");
        assert_eq!(rate.run.max_concurrency, Some(8));
        assert!(rate.run.notes[0].contains("line 3"));
        assert!(matches!(
            rate.run.arrivals,
            ArrivalMode::Regenerated {
                seed: 7,
                request_rate_rps: Some(r)
            } if r == 4.0
        ));
    }

    #[test]
    fn errors_name_the_line_and_the_entry() {
        let bad = RATE.replace("[0.05, 0.06, 0.07]", "[0.05, -1, 0.07]");
        let (_d, p) = write(&[BURST, &bad]);
        let e = read(&p, 0).unwrap_err().to_string();
        assert!(e.contains(":2") && e.contains("ttfts[1]"), "{e}");
        let short = RATE.replace("\"output_lens\": [2, 2, 2]", "\"output_lens\": [2, 0, 2]");
        let (_d, p) = write(&[&short]);
        let e = read(&p, 0).unwrap_err().to_string();
        assert!(e.contains(":1") && e.contains("output_lens[1]"), "{e}");
        let (_d, p) = write(&[BURST, "{not json"]);
        assert!(read(&p, 0).unwrap_err().to_string().contains(":2"));
    }

    #[test]
    fn a_line_without_lists_or_statistics_says_how_to_save_them() {
        let plain = r#"{"backend": "sglang", "request_rate": 4.0, "duration": 12.0}"#;
        let (_d, p) = write(&[plain]);
        assert!(!looks_like_result_lines(&p));
        let e = read(&p, 0).unwrap_err().to_string();
        assert!(e.contains("--output-details"), "{e}");
        // Statistics without the counts to rebuild the requests: the missing key named.
        let means =
            r#"{"backend": "sglang", "request_rate": 4.0, "mean_ttft_ms": 12.0, "completed": 10}"#;
        let (_d, p) = write(&[means]);
        assert!(looks_like_result_lines(&p));
        let e = read(&p, 0).unwrap_err().to_string();
        assert!(e.contains(":1") && e.contains("total_input_tokens"), "{e}");
    }

    #[test]
    fn a_summary_line_is_its_mean_requests_with_the_printed_statistics() {
        let line = r#"{"backend": "sglang", "request_rate": 2.0, "max_concurrency": 8, "completed": 10, "total_input_tokens": 10245, "total_output_tokens": 2560, "output_throughput": 410.5, "mean_ttft_ms": 50.0, "median_ttft_ms": 45.0, "p99_ttft_ms": 120.0, "mean_tpot_ms": 9.0, "mean_itl_ms": 9.1, "mean_e2e_latency_ms": 2400.0, "p90_ttft_ms": NaN}"#;
        let (_d, p) = write(&[line]);
        let t = read(&p, 3).unwrap();
        let run = &t.groups[0].run;
        assert_eq!(run.requests.len(), 10);
        assert!(run
            .requests
            .iter()
            .all(|r| r.input_tokens == 1025 && r.output_tokens == 256 && r.ttft_s.is_nan()));
        assert!(run
            .requests
            .windows(2)
            .all(|w| w[0].arrival_s <= w[1].arrival_s));
        assert_eq!(run.max_concurrency, Some(8));
        let s = run.summary.as_ref().unwrap();
        assert!((s.ttft_s.mean - 0.05).abs() < 1e-12 && (s.ttft_s.p99 - 0.12).abs() < 1e-12);
        assert!(s.ttft_s.p90.is_nan() && (s.e2e_s.mean - 2.4).abs() < 1e-12);
        assert!((run.output_tokens_per_s() - 410.5).abs() < 1e-12);
        run.check_times().unwrap();
    }
}
