//! BLIS-style replay runs (`blis-vllm015-h100`): `<run>.json` holds the engine settings
//! and every request as the client sent it, `<run>_ground_truth.json` beside it the
//! client-side latencies.
//!
//! `<run>.json`: `model_id` (where the catalog does not know it and no flag names a
//! model, the run's `model_config` — layers, hidden size, heads, KV heads, FFN width,
//! experts, vocabulary — describes it, as a Llama or, with experts, Mixtral decoder);
//! `config` with `tensor_parallelism`, `max_num_seqs`,
//! `max_num_batched_tokens`, `kv_blocks_total_gpu` (KV blocks the engine allocated per
//! GPU worker) and `block_size`; `requests[]` with `index`, `arrival_time_us` (from the
//! first request), `input_tokens`, `output_tokens` and `has_error`. The ground truth
//! gives per `index` `e2e_s`, `ttft_s` and `has_error`.
//!
//! A successful request whose token counts the client did not record (0) is left out
//! the same way. A request that failed on the client (a timeout, `has_error`) carries no token counts:
//! it is left out of the replay and of the comparison, with a note (it loaded the real
//! server until the client gave up; the simulator has no client timeouts yet). Where the
//! run's configuration folder is beside the file (`default_args/<run>/exp-config.yaml`),
//! its `max_model_len` is read. The file records neither the GPU nor the engine
//! version: pass `--hardware` (the set's README says H100 SXM, vLLM 0.15.1).

use super::measured::{
    ArrivalMode, EngineHints, LoadRequest, MeasuredRequest, MeasuredRun, RunFormat, Timing,
};
use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct RunFile {
    model_id: String,
    config: RunConfig,
    /// The model's shapes as the run records them.
    model_config: Option<ModelShapes>,
    requests: Vec<RunRequest>,
}

/// `model_config` of a run: a decoder's shapes (experts 0 for a dense model).
#[derive(Deserialize)]
struct ModelShapes {
    num_layers: u64,
    hidden_dim: u64,
    num_heads: u64,
    num_kv_heads: u64,
    intermediate_dim: u64,
    #[serde(default)]
    num_local_experts: u64,
    #[serde(default)]
    num_experts_per_tok: u64,
    vocab_size: u64,
}

impl ModelShapes {
    /// A HuggingFace `config.json` with these shapes: a Llama decoder, or Mixtral's
    /// where the run records routed experts (the layouts the set's models have).
    fn hf_config(&self, max_model_len: Option<u32>) -> String {
        let mut c = serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": self.hidden_dim,
            "intermediate_size": self.intermediate_dim,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "vocab_size": self.vocab_size,
            "max_position_embeddings": max_model_len.unwrap_or(4096),
            "torch_dtype": "bfloat16",
            "tie_word_embeddings": false,
        });
        if self.num_local_experts > 0 {
            c["architectures"] = serde_json::json!(["MixtralForCausalLM"]);
            c["model_type"] = serde_json::json!("mixtral");
            c["num_local_experts"] = serde_json::json!(self.num_local_experts);
            c["num_experts_per_tok"] = serde_json::json!(self.num_experts_per_tok);
        }
        c.to_string()
    }
}

#[derive(Deserialize)]
struct RunConfig {
    tensor_parallelism: u32,
    max_num_seqs: Option<u32>,
    max_num_batched_tokens: Option<u32>,
    kv_blocks_total_gpu: Option<u32>,
    block_size: Option<u32>,
}

#[derive(Deserialize)]
struct RunRequest {
    index: u64,
    arrival_time_us: f64,
    input_tokens: u32,
    output_tokens: u32,
    #[serde(default)]
    has_error: bool,
}

#[derive(Deserialize)]
struct Truth {
    index: u64,
    #[serde(default)]
    has_error: bool,
    e2e_s: Option<f64>,
    ttft_s: Option<f64>,
}

const TRUTH_SUFFIX: &str = "_ground_truth.json";

/// The run file and ground-truth file of `path` (either of the two may be given).
pub fn paths_of(path: &Path) -> (PathBuf, PathBuf) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.strip_suffix(TRUTH_SUFFIX) {
        Some(stem) => (path.with_file_name(format!("{stem}.json")), path.to_owned()),
        None => {
            let stem = name.strip_suffix(".json").unwrap_or(&name);
            (
                path.to_owned(),
                path.with_file_name(format!("{stem}{TRUTH_SUFFIX}")),
            )
        }
    }
}

/// Whether `path` is one file of a BLIS run: a ground-truth file, or a `.json` whose
/// ground-truth file exists beside it.
pub fn looks_like_run(path: &Path) -> bool {
    let (run, truth) = paths_of(path);
    run.is_file() && truth.is_file()
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| {
        Error::input_at(
            path,
            e.line() as u64,
            None,
            format!("not a BLIS run file: {e}"),
        )
    })
}

/// The run's configuration folder, `default_args/<run>/`, beside the run file.
fn config_dir(run: &Path) -> Option<PathBuf> {
    let stem = run.file_stem()?.to_string_lossy().into_owned();
    Some(run.parent()?.join("default_args").join(stem))
}

/// Read a YAML file of the configuration folder, `None` when it is not there.
fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    serde_yaml_ng::from_str(&text).map(Some).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line() as u64);
        Error::input_at(path, line, None, format!("invalid YAML: {e}"))
    })
}

/// `exp-config.yaml`: the server's settings.
#[derive(Deserialize)]
struct ExpConfig {
    max_model_len: Option<u32>,
}

/// `results/config.yaml`: the client's settings (inference-perf), the parts used here.
#[derive(Deserialize)]
struct ClientConfig {
    data: Option<ClientData>,
    server: Option<ClientServer>,
}

#[derive(Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    kind: Option<String>,
    shared_prefix: Option<SharedPrefix>,
}

#[derive(Deserialize)]
struct SharedPrefix {
    num_groups: u64,
    num_prompts_per_group: u64,
    system_prompt_len: u32,
    output_len: u32,
}

#[derive(Deserialize)]
struct ClientServer {
    ignore_eos: Option<bool>,
}

/// The workload generator's shared-prefix settings, when the run used them with
/// `ignore_eos` (every request then generates exactly `output_len` tokens).
fn shared_prefix(dir: &Path) -> Result<Option<SharedPrefix>> {
    let Some(c) = read_yaml::<ClientConfig>(&dir.join("results").join("config.yaml"))? else {
        return Ok(None);
    };
    let ignore_eos = c.server.and_then(|s| s.ignore_eos) == Some(true);
    Ok(c.data
        .filter(|d| d.kind.as_deref() == Some("shared_prefix") && ignore_eos)
        .and_then(|d| d.shared_prefix)
        .filter(|p| p.num_groups > 0 && p.num_prompts_per_group > 0 && p.output_len > 0))
}

/// Prefix ids of request `index` of a shared-prefix workload: the generator cycles
/// through its `num_groups × num_prompts_per_group` prompts in order (prompt =
/// `index` mod that; group = prompt / `num_prompts_per_group`), so the blocks inside
/// the group's system prompt carry the group's id and the rest the prompt's.
fn prefix_ids(p: &SharedPrefix, index: u64, input_tokens: u32) -> Vec<u64> {
    let prompts = p.num_groups * p.num_prompts_per_group;
    let prompt = index % prompts;
    let group = prompt / p.num_prompts_per_group;
    let bs = u64::from(crate::trace::DEFAULT_HASH_BLOCK_TOKENS);
    let system_blocks = u64::from(p.system_prompt_len) / bs;
    (0..u64::from(input_tokens).div_ceil(bs))
        .map(|k| {
            if k < system_blocks {
                group
            } else {
                prompts + prompt
            }
        })
        .collect()
}

/// Share of requests whose prompt length equals that of the request `cycle` places
/// earlier (1 when the generator cycles through `cycle` prompts in order).
fn cycle_agreement(requests: &[RunRequest], cycle: u64) -> f64 {
    let by_index: HashMap<u64, u32> = requests
        .iter()
        .filter(|r| !r.has_error && r.input_tokens > 0)
        .map(|r| (r.index, r.input_tokens))
        .collect();
    let (mut same, mut pairs) = (0usize, 0usize);
    for (&i, &n) in &by_index {
        if let Some(&m) = by_index.get(&(i + cycle)) {
            pairs += 1;
            same += usize::from(n == m);
        }
    }
    if pairs == 0 {
        0.0
    } else {
        same as f64 / pairs as f64
    }
}

fn positive_secs(path: &Path, v: Option<f64>, field: String) -> Result<f64> {
    match v {
        Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
        other => Err(Error::input(
            path,
            Some(&field),
            format!("expected a non-negative number of seconds, got {other:?}"),
        )),
    }
}

/// Read a BLIS run (`path` is the run file or its ground-truth file).
pub fn read(path: &Path) -> Result<MeasuredRun> {
    let (run_path, truth_path) = paths_of(path);
    let run: RunFile = parse(&run_path)?;
    let truth: Vec<Truth> = parse(&truth_path)?;
    let by_index: HashMap<u64, &Truth> = truth.iter().map(|t| (t.index, t)).collect();
    let dir = config_dir(&run_path);
    let max_model_len = match &dir {
        Some(d) => {
            read_yaml::<ExpConfig>(&d.join("exp-config.yaml"))?.and_then(|c| c.max_model_len)
        }
        None => None,
    };
    let workload = match &dir {
        Some(d) => shared_prefix(d)?,
        None => None,
    };
    let cycle = workload
        .as_ref()
        .map(|p| p.num_groups * p.num_prompts_per_group);
    let agreement = cycle.map(|c| cycle_agreement(&run.requests, c));
    // Only replay the prompts' sharing when the file shows the generator's cycle.
    let sharing = workload
        .as_ref()
        .filter(|_| agreement.is_some_and(|a| a >= 0.9));
    let mut recounted = 0usize;
    let mut requests = Vec::with_capacity(run.requests.len());
    let (mut failed, mut uncounted) = (0usize, 0usize);
    let mut timed_out: Vec<(u64, f64, Option<f64>)> = Vec::new();
    for (pos, r) in run.requests.iter().enumerate() {
        let t = by_index.get(&r.index).ok_or_else(|| {
            Error::input(
                &truth_path,
                None,
                format!("no ground truth for request index {}", r.index),
            )
        })?;
        if r.has_error || t.has_error {
            failed += 1;
            timed_out.push((r.index, r.arrival_time_us * 1e-6, t.e2e_s));
            continue;
        }
        let field = |f: &str| format!("requests[{pos}].{f}");
        if !(r.arrival_time_us.is_finite() && r.arrival_time_us >= 0.0) {
            return Err(Error::input(
                &run_path,
                Some(&field("arrival_time_us")),
                format!("expected a non-negative time, got {}", r.arrival_time_us),
            ));
        }
        if r.input_tokens == 0 || (r.output_tokens == 0 && workload.is_none()) {
            uncounted += 1;
            continue;
        }
        let ttft = positive_secs(&truth_path, t.ttft_s, format!("[index {}].ttft_s", r.index))?;
        let e2e = positive_secs(&truth_path, t.e2e_s, format!("[index {}].e2e_s", r.index))?;
        if e2e < ttft {
            return Err(Error::input(
                &truth_path,
                Some(&format!("[index {}].e2e_s", r.index)),
                format!("{e2e} is below its ttft_s {ttft}"),
            ));
        }
        let output_tokens = match &workload {
            Some(p) => {
                recounted +=
                    usize::from(r.output_tokens.abs_diff(p.output_len) * 20 > p.output_len);
                p.output_len
            }
            None => r.output_tokens,
        };
        requests.push(MeasuredRequest {
            id: r.index,
            arrival_s: r.arrival_time_us * 1e-6,
            input_tokens: r.input_tokens,
            output_tokens,
            ttft_s: ttft,
            e2e_s: e2e,
            prefix_hash_ids: sharing
                .map_or_else(Vec::new, |p| prefix_ids(p, r.index, r.input_tokens)),
        });
    }
    if requests.is_empty() {
        return Err(Error::input(&run_path, None, "no successful requests"));
    }
    requests.sort_by(|a, b| a.arrival_s.total_cmp(&b.arrival_s));
    let t0 = requests[0].arrival_s;
    for r in &mut requests {
        r.arrival_s -= t0;
    }
    // Requests whose client gave up: with the workload's lengths known (every prompt
    // about the successful ones' mean, `output_len` generated), they are replayed for
    // the load they put on the server, and the clients' timeout (the shortest time a
    // failed request waited) applies to every request.
    let (load_only, client_timeout_s) = match &workload {
        Some(p) if !timed_out.is_empty() => {
            let mean_in = requests
                .iter()
                .map(|r| f64::from(r.input_tokens))
                .sum::<f64>()
                / requests.len() as f64;
            let load = timed_out
                .iter()
                .map(|&(id, at, _)| LoadRequest {
                    id,
                    arrival_s: (at - t0).max(0.0),
                    input_tokens: mean_in.round() as u32,
                    output_tokens: p.output_len,
                })
                .collect::<Vec<_>>();
            let timeout = timed_out
                .iter()
                .filter_map(|t| t.2)
                .filter(|x| x.is_finite() && *x > 0.0)
                .fold(f64::INFINITY, f64::min);
            (load, timeout.is_finite().then_some(timeout))
        }
        _ => (Vec::new(), None),
    };
    let mut notes = vec![
        "the file records neither the GPU nor the engine version (the set's README: H100 SXM 80GB, vLLM 0.15.1 V1); the simulated deployment is as given by the flags".to_owned(),
    ];
    match (&workload, sharing, agreement) {
        (Some(p), Some(_), Some(a)) => notes.push(format!(
            "shared-prefix workload of {} groups × {} prompts: prompt lengths repeat every {} requests in {:.1} % of pairs, so request i is replayed as prompt i mod {} (its group's {}-token system prompt shared, the whole prompt reused; prefix-cache hits follow)",
            p.num_groups, p.num_prompts_per_group, p.num_groups * p.num_prompts_per_group, a * 100.0,
            p.num_groups * p.num_prompts_per_group, p.system_prompt_len
        )),
        _ => notes.push("prompts shared prefixes that the files do not identify: prefix-cache hits are not replayed".to_owned()),
    }
    if let Some(p) = &workload {
        notes.push(format!(
            "ignore_eos with output_len {}: every request generated exactly {} tokens (replayed and used for TPOT); the client's own count differs by more than 5 % on {recounted} requests (it re-tokenizes the streamed text)",
            p.output_len, p.output_len
        ));
    }
    if failed > 0 && load_only.is_empty() {
        notes.push(format!(
            "{failed} of {} requests failed on the client (timeouts, no token counts recorded): they loaded the real server until the client gave up but are left out of the replay and of the errors",
            run.requests.len()
        ));
    } else if failed > 0 {
        notes.push(format!(
            "{failed} of {} requests failed on the client (timeouts, no token counts recorded): replayed for their load with the workload's lengths, left out of the errors",
            run.requests.len()
        ));
    }
    if uncounted > 0 {
        notes.push(format!(
            "{uncounted} successful requests have no token count recorded (0 output tokens counted by the client): left out of the replay and of the errors"
        ));
    }
    let c = &run.config;
    Ok(MeasuredRun {
        source: run_path.clone(),
        format: RunFormat::Blis,
        requests,
        itls_s: None,
        timing: Timing::Client,
        load_only,
        client_timeout_s,
        arrivals: ArrivalMode::Recorded,
        max_concurrency: None,
        hints: EngineHints {
            model_config: run
                .model_config
                .as_ref()
                .map(|m| m.hf_config(max_model_len)),
            model: Some(run.model_id),
            tensor_parallel_size: Some(c.tensor_parallelism),
            max_num_seqs: c.max_num_seqs,
            max_num_batched_tokens: c.max_num_batched_tokens,
            max_model_len,
            block_size: c.block_size,
            num_gpu_blocks: c.kv_blocks_total_gpu,
            ..EngineHints::default()
        },
        notes,
        summary: None,
        stated_output_tokens_per_s: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_run(dir: &Path, truth: &str) -> PathBuf {
        let p = dir.join("r1.json");
        std::fs::write(
            &p,
            r#"{"model_id": "meta-llama/Llama-2-7b-hf",
                "config": {"tensor_parallelism": 2, "max_num_seqs": 128,
                           "max_num_batched_tokens": 2048, "kv_blocks_total_gpu": 7462,
                           "block_size": 16},
                "requests": [
                  {"index": 0, "arrival_time_us": 1000, "input_tokens": 10, "output_tokens": 5, "has_error": false},
                  {"index": 1, "arrival_time_us": 500, "input_tokens": 20, "output_tokens": 3, "has_error": false},
                  {"index": 2, "arrival_time_us": 2000, "input_tokens": 0, "output_tokens": 0, "has_error": true}]}"#,
        )
        .unwrap();
        std::fs::write(dir.join("r1_ground_truth.json"), truth).unwrap();
        std::fs::create_dir_all(dir.join("default_args/r1")).unwrap();
        std::fs::write(
            dir.join("default_args/r1/exp-config.yaml"),
            "model: x\nmax_model_len: 4096\n",
        )
        .unwrap();
        p
    }

    #[test]
    fn reads_a_run_with_its_ground_truth() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_run(
            dir.path(),
            r#"[{"index": 0, "has_error": false, "e2e_s": 1.0, "ttft_s": 0.2},
                {"index": 1, "has_error": false, "e2e_s": 0.5, "ttft_s": 0.1},
                {"index": 2, "has_error": true, "e2e_s": 300.0}]"#,
        );
        assert!(looks_like_run(&p));
        let r = read(&dir.path().join("r1_ground_truth.json")).unwrap();
        assert_eq!(r.source, p);
        assert_eq!(r.requests.len(), 2);
        assert_eq!(r.requests[0].id, 1, "sorted by arrival");
        assert_eq!(r.requests[0].arrival_s, 0.0);
        assert!((r.requests[1].arrival_s - 0.0005).abs() < 1e-12);
        assert!((r.requests[1].tpot_s() - 0.2).abs() < 1e-12);
        assert_eq!(r.hints.tensor_parallel_size, Some(2));
        assert_eq!(r.hints.num_gpu_blocks, Some(7462));
        assert_eq!(r.hints.max_model_len, Some(4096));
        assert!(r.notes.iter().any(|n| n.contains("1 of 3 requests failed")));
    }

    /// A run whose model id the catalog does not know replays on the model its own
    /// `model_config` describes (Mixtral's layout where it records experts).
    #[test]
    fn a_run_describes_a_model_the_catalog_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("moe.json");
        std::fs::write(
            &p,
            r#"{"model_id": "acme/Unreleased-MoE",
                "config": {"tensor_parallelism": 1, "max_num_seqs": 16},
                "model_config": {"num_layers": 4, "hidden_dim": 1024, "num_heads": 16,
                                 "num_kv_heads": 4, "intermediate_dim": 2048,
                                 "num_local_experts": 8, "num_experts_per_tok": 2,
                                 "vocab_size": 32000},
                "requests": [
                  {"index": 0, "arrival_time_us": 0, "input_tokens": 100, "output_tokens": 20},
                  {"index": 1, "arrival_time_us": 50000, "input_tokens": 80, "output_tokens": 30}]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("moe_ground_truth.json"),
            r#"[{"index": 0, "e2e_s": 0.5, "ttft_s": 0.05}, {"index": 1, "e2e_s": 0.6, "ttft_s": 0.05}]"#,
        )
        .unwrap();
        let run = read(&p).unwrap();
        let config = run.hints.model_config.clone().unwrap();
        let m = crate::model::ModelSpec::from_json("acme/Unreleased-MoE", &p, &config).unwrap();
        assert_eq!((m.num_layers, m.hidden_size), (4, 1024));
        let s = m.summary();
        assert!(s.contains("16q/4kv"), "{s}");
        assert!(m.params().active < m.params().total, "{s}");
        let settings = crate::validate::Settings {
            deployment: crate::deployment::DeploymentRequest {
                hardware: Some("h100".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let paths = crate::paths::DataPaths::builtin();
        let v = crate::validate::validate_run("moe", &run, &settings, &paths).unwrap();
        assert_eq!(v.deployment.model, "acme/Unreleased-MoE");
        assert!(
            v.notes.iter().any(|n| n.contains("not in the catalog")),
            "{:?}",
            v.notes
        );
        // A flag naming a model wins over the file's description.
        let named = crate::validate::Settings {
            deployment: crate::deployment::DeploymentRequest {
                model: Some("acme/Unreleased-MoE".into()),
                ..settings.deployment.clone()
            },
            ..Default::default()
        };
        let e = crate::validate::validate_run("moe", &run, &named, &paths).unwrap_err();
        assert!(e.to_string().contains("unknown model"), "{e}");
    }

    #[test]
    fn bad_ground_truth_names_the_request() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_run(
            dir.path(),
            r#"[{"index": 0, "e2e_s": 0.1, "ttft_s": 0.2}, {"index": 1, "e2e_s": 0.5, "ttft_s": 0.1},
                {"index": 2, "has_error": true}]"#,
        );
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("[index 0].e2e_s"), "{e}");
        let p = write_run(dir.path(), r#"[{"index": 0, "e2e_s": 1.0, "ttft_s": 0.2}]"#);
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("no ground truth for request index 1"), "{e}");
    }
}
