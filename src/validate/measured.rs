//! Measured serving runs: per-request timings, how the run was driven, and the engine
//! settings the files record.

use crate::deployment::DeploymentRequest;
use crate::engine::config::EngineOverrides;
use serde::Serialize;
use std::path::PathBuf;

/// One measured request. Times are seconds; `arrival_s` counts from the run's first
/// arrival.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeasuredRequest {
    /// 0-based position of the request in the file (the id the trace readers give it).
    pub id: u64,
    /// Arrival time, s.
    pub arrival_s: f64,
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Output tokens (the first included).
    pub output_tokens: u32,
    /// Time to first token, s.
    pub ttft_s: f64,
    /// End-to-end latency, s.
    pub e2e_s: f64,
    /// Ids of the prompt's leading blocks of
    /// [`DEFAULT_HASH_BLOCK_TOKENS`](crate::trace::DEFAULT_HASH_BLOCK_TOKENS) tokens, as
    /// [`Request::prefix_hash_ids`](crate::trace::Request::prefix_hash_ids): requests
    /// whose lists start alike share that prefix. Empty when the run does not say.
    #[serde(skip)]
    pub prefix_hash_ids: Vec<u64>,
}

impl MeasuredRequest {
    /// Time per output token after the first, s (NaN for one-token outputs), as vLLM's
    /// benchmark defines it.
    pub fn tpot_s(&self) -> f64 {
        if self.output_tokens > 1 {
            (self.e2e_s - self.ttft_s) / f64::from(self.output_tokens - 1)
        } else {
            f64::NAN
        }
    }
}

/// The file formats of measured serving runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunFormat {
    /// vLLM `benchmark_serving` / `vllm bench serve` result JSON.
    VllmBench,
    /// LLMServingSim bench `requests.jsonl` (with `meta.json` beside it).
    LlmServingSim,
    /// A CSV with arrival, first-token and finish times per request.
    Csv,
    /// A BLIS replay run with its ground truth.
    Blis,
    /// A GenZ-style per-request table (lengths and latencies, no timestamps).
    Genz,
    /// One line of an SGLang `bench_serving` JSON-lines result file.
    SglangBench,
}

/// How the measured run's requests arrived.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ArrivalMode {
    /// Each request's arrival time is in the file.
    Recorded,
    /// The file has a rate but no times; arrivals were regenerated with this seed.
    Regenerated {
        /// The seed of the regenerated arrivals.
        seed: u64,
        /// The rate they were drawn at, requests per second, where the reader keeps it.
        request_rate_rps: Option<f64>,
    },
    /// Every request was sent at time zero.
    AllAtOnce,
}

/// A request that loaded the measured server but has no usable timing (its client gave
/// up): replayed for its load, not compared. Times are seconds from the run's first
/// arrival.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadRequest {
    /// Its id (distinct from every measured request's).
    pub id: u64,
    /// Arrival time, s.
    pub arrival_s: f64,
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Output tokens it would have generated.
    pub output_tokens: u32,
}

/// Whose clock a run's latencies were taken on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timing {
    /// The client's: the API server's request handling and streaming are included.
    Client,
    /// The engine's (timestamps inside the engine, no API server).
    Engine,
}

/// Engine settings a measurement file records. Each fills the matching setting only
/// where neither a flag nor a config file gave one.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EngineHints {
    /// Model id as the file names it.
    pub model: Option<String>,
    /// The file's own description of the model as a HuggingFace `config.json` text,
    /// used only where the catalog does not know [`Self::model`] and no flag names one.
    #[serde(skip)]
    pub model_config: Option<String>,
    /// Device as the file (or the run folder's name) names it.
    pub hardware: Option<String>,
    /// Tensor-parallel size.
    pub tensor_parallel_size: Option<u32>,
    /// Data-parallel engines (simulated as replicas; with expert parallelism, as the
    /// ranks of one lock-step DP group sharing the experts).
    pub data_parallel_size: Option<u32>,
    /// Whether MoE experts were split across the data-parallel engines.
    pub enable_expert_parallel: Option<bool>,
    /// `max_num_seqs`.
    pub max_num_seqs: Option<u32>,
    /// `max_num_batched_tokens`.
    pub max_num_batched_tokens: Option<u32>,
    /// `max_model_len`.
    pub max_model_len: Option<u32>,
    /// `gpu_memory_utilization`.
    pub gpu_memory_utilization: Option<f64>,
    /// KV block size.
    pub block_size: Option<u32>,
    /// KV blocks the engine allocated (→ `--num-gpu-blocks-override`).
    pub num_gpu_blocks: Option<u32>,
    /// Prefix caching on or off.
    pub enable_prefix_caching: Option<bool>,
    /// Activation dtype (`bfloat16`, `float16`).
    pub dtype: Option<String>,
    /// KV-cache dtype.
    pub kv_cache_dtype: Option<String>,
    /// The engine's version, where recorded.
    pub engine_version: Option<String>,
    /// Whether the engine ran without CUDA graphs (`enforce_eager`).
    pub enforce_eager: Option<bool>,
    /// Whether the engine sent every all-reduce to NCCL (`disable_custom_all_reduce`).
    pub disable_custom_all_reduce: Option<bool>,
    /// The serving stack the file names (an SGLang client's `sglang*` backend).
    pub serving_stack: Option<String>,
}

impl EngineHints {
    /// Fill the unset fields of `req` and `ov` from these hints.
    pub fn apply(&self, req: &mut DeploymentRequest, ov: &mut EngineOverrides) {
        fn fill<T: Clone>(slot: &mut Option<T>, hint: &Option<T>) {
            if slot.is_none() {
                slot.clone_from(hint);
            }
        }
        fill(&mut req.model, &self.model);
        fill(&mut req.hardware, &self.hardware);
        fill(&mut req.serving_stack, &self.serving_stack);
        fill(&mut req.tensor_parallel_size, &self.tensor_parallel_size);
        fill(&mut req.max_model_len, &self.max_model_len);
        fill(
            &mut req.gpu_memory_utilization,
            &self.gpu_memory_utilization,
        );
        fill(&mut req.dtype, &self.dtype);
        fill(&mut req.kv_cache_dtype, &self.kv_cache_dtype);
        fill(&mut req.enforce_eager, &self.enforce_eager);
        fill(
            &mut req.disable_custom_all_reduce,
            &self.disable_custom_all_reduce,
        );
        if req.engine_version.is_none() {
            // "vLLM 0.19.0" → "0.19.0", as the measurement tables name versions.
            req.engine_version = self
                .engine_version
                .as_deref()
                .and_then(|v| v.split_whitespace().last())
                .map(str::to_owned);
        }
        if req.data_parallel_size.is_none() && self.enable_expert_parallel == Some(true) {
            // Attention data parallelism matters to the deployment only through the
            // experts it shares; plain DP is replayed as independent replicas.
            req.data_parallel_size = self.data_parallel_size;
            req.enable_expert_parallel = true;
        }
        fill(&mut ov.max_num_seqs, &self.max_num_seqs);
        fill(&mut ov.max_num_batched_tokens, &self.max_num_batched_tokens);
        fill(&mut ov.block_size, &self.block_size);
        fill(&mut ov.num_gpu_blocks_override, &self.num_gpu_blocks);
        fill(&mut ov.enable_prefix_caching, &self.enable_prefix_caching);
    }
}

/// A measured serving run, ready to replay.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeasuredRun {
    /// The file read.
    pub source: PathBuf,
    /// Its format.
    pub format: RunFormat,
    /// Successful requests, by arrival (ties in file order).
    pub requests: Vec<MeasuredRequest>,
    /// Every measured inter-token gap, s, where the file has them.
    #[serde(skip)]
    pub itls_s: Option<Vec<f64>>,
    /// How requests arrived.
    pub arrivals: ArrivalMode,
    /// Whose clock the latencies were taken on.
    pub timing: Timing,
    /// Requests replayed for their load only (their clients gave up).
    pub load_only: Vec<LoadRequest>,
    /// How long a client waited before giving up, s, where the run shows it.
    pub client_timeout_s: Option<f64>,
    /// The client's cap on requests in flight, where the file says.
    pub max_concurrency: Option<u32>,
    /// Engine settings recorded in the files.
    pub hints: EngineHints,
    /// Remarks on the data (skipped rows, assumptions).
    pub notes: Vec<String>,
    /// The run's statistics as the benchmark printed them, for files without
    /// per-request values (then every request's measured TTFT and E2E are NaN, and the
    /// replay compares these instead).
    pub summary: Option<RunSummary>,
    /// Output tokens per second as the benchmark printed it (`output_throughput`), where
    /// the file has it: a closed loop's rate, which the latencies alone do not give.
    pub stated_output_tokens_per_s: Option<f64>,
}

/// What a benchmark's result file says about a run without listing its requests:
/// mean, median and tail of each latency (NaN where not printed; the output
/// throughput is the run's [`MeasuredRun::stated_output_tokens_per_s`]). Times in
/// seconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    /// Time to first token.
    pub ttft_s: crate::validate::stats::Quantiles,
    /// Time per output token after the first.
    pub tpot_s: crate::validate::stats::Quantiles,
    /// Gap between consecutive tokens.
    pub itl_s: crate::validate::stats::Quantiles,
    /// End-to-end latency.
    pub e2e_s: crate::validate::stats::Quantiles,
}

/// The longest span of arrivals a replay takes, s (about 31.7 years): the simulated
/// clock counts nanoseconds in 64 bits (584 years), and no serving benchmark runs for
/// decades, so a longer span is a unit or clock mix-up in the file.
pub const MAX_REPLAY_SPAN_S: f64 = 1e9;

impl MeasuredRun {
    /// A run timed by its benchmark client: every request measured (none replayed for
    /// its load only, no client timeout), no inter-token gaps, engine settings or
    /// summary yet.
    pub fn from_client(
        source: PathBuf,
        format: RunFormat,
        requests: Vec<MeasuredRequest>,
        arrivals: ArrivalMode,
        max_concurrency: Option<u32>,
        notes: Vec<String>,
    ) -> Self {
        MeasuredRun {
            source,
            format,
            requests,
            itls_s: None,
            arrivals,
            timing: Timing::Client,
            load_only: Vec::new(),
            client_timeout_s: None,
            max_concurrency,
            hints: EngineHints::default(),
            notes,
            summary: None,
            stated_output_tokens_per_s: None,
        }
    }

    /// Check every time the replay will use: arrivals (measured and load-only) finite,
    /// non-negative and within [`MAX_REPLAY_SPAN_S`] of the first, latencies finite and
    /// non-negative, the client timeout finite and positive. Errors name the file, the
    /// request (0-based position in the file) and the field.
    pub fn check_times(&self) -> crate::Result<()> {
        let bad = |id: u64, field: &str, msg: String| {
            Err(crate::Error::input(
                &self.source,
                Some(field),
                format!("request {id} (0-based position in the file): {msg}"),
            ))
        };
        let arrivals = self
            .requests
            .iter()
            .map(|r| (r.id, r.arrival_s))
            .chain(self.load_only.iter().map(|r| (r.id, r.arrival_s)));
        for (id, a) in arrivals {
            if !(a.is_finite() && a >= 0.0) {
                return bad(
                    id,
                    "arrival",
                    format!(
                        "arrival {a} s after the first request is not a finite, non-negative time"
                    ),
                );
            }
            if a > MAX_REPLAY_SPAN_S {
                return bad(id, "arrival", format!("arrives {a} s ({:.0} years) after the first request; a replay spans at most {MAX_REPLAY_SPAN_S:e} s: are the times in another unit, or on two clocks?", a / 3.15576e7));
            }
        }
        // A summary-only run has no per-request latencies to check.
        for r in self.requests.iter().filter(|_| self.summary.is_none()) {
            for (field, v) in [("ttft", r.ttft_s), ("e2e", r.e2e_s)] {
                if !(v.is_finite() && v >= 0.0) {
                    return bad(
                        r.id,
                        field,
                        format!("{v} s is not a finite, non-negative latency"),
                    );
                }
            }
        }
        if let Some(t) = self.client_timeout_s {
            if !(t.is_finite() && t > 0.0 && t <= MAX_REPLAY_SPAN_S) {
                return Err(crate::Error::input(
                    &self.source,
                    Some("client_timeout"),
                    format!("{t} s is not a finite, positive client timeout of at most {MAX_REPLAY_SPAN_S:e} s"),
                ));
            }
        }
        Ok(())
    }

    /// Output tokens per second: output tokens of all requests over the time from the
    /// first arrival to the last finish. A closed loop sent its requests when slots
    /// freed, at times the latencies do not record: there the benchmark's own figure,
    /// else the loop's rate by Little's law (clients × tokens / Σ E2E). A run known by
    /// its statistics only has the benchmark's figure alone (NaN without it).
    pub fn output_tokens_per_s(&self) -> f64 {
        if self.summary.is_some() {
            return self.stated_output_tokens_per_s.unwrap_or(f64::NAN);
        }
        let closed = matches!(self.arrivals, ArrivalMode::AllAtOnce)
            && self
                .max_concurrency
                .is_some_and(|c| (c as usize) < self.requests.len());
        if closed {
            let busy_s: f64 = self.requests.iter().map(|r| r.e2e_s).sum();
            let tokens: u64 = self
                .requests
                .iter()
                .map(|r| u64::from(r.output_tokens))
                .sum();
            let clients = f64::from(self.max_concurrency.unwrap_or(1));
            return self
                .stated_output_tokens_per_s
                .unwrap_or(clients * tokens as f64 / busy_s);
        }
        output_rate(
            self.requests
                .iter()
                .map(|r| (r.arrival_s, r.arrival_s + r.e2e_s, r.output_tokens)),
        )
    }
}

/// Output tokens per second of `(arrival, finish, output_tokens)` triples, from the first
/// arrival to the last finish (NaN when the span is empty).
pub fn output_rate(rows: impl Iterator<Item = (f64, f64, u32)>) -> f64 {
    let (mut first, mut last, mut tokens) = (f64::INFINITY, f64::NEG_INFINITY, 0u64);
    for (a, f, n) in rows {
        if a.is_nan() || f.is_nan() {
            continue;
        }
        first = first.min(a);
        last = last.max(f);
        tokens += u64::from(n);
    }
    if last > first {
        tokens as f64 / (last - first)
    } else {
        f64::NAN
    }
}
