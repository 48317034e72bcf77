//! `GET /metrics`: Prometheus text exposition (format 0.0.4) with the metric set of
//! vLLM 0.34's V1 engine (`vllm/v1/metrics/loggers.py`): names, help texts, label names
//! (`engine`, `model_name`, and `finished_reason` on `vllm:request_success_total`) and
//! histogram buckets, one `engine` per replica.
//!
//! Latencies are in **simulated** seconds (what the simulated server would measure);
//! with `--speedup N` a client sees them N times shorter on its wall clock.
//! `vllm:kv_cache_usage_perc` is a fraction from 0 to 1 despite the name. As in vLLM,
//! prompt tokens are counted when a request's first token is produced (its prefill is
//! done); the per-request histograms (queue, prefill, decode, inference, token counts,
//! parameters) and the prefix-cache counters are recorded when a request finishes, and
//! requests a client abandons are not recorded. The phases are vLLM's: queue from
//! arrival at the engine to first scheduling, prefill from first scheduling to the
//! first token, decode from the first token to the last, inference both.
//!
//! One metric is servesim's own: `servesim:token_release_lag_seconds`, how late (in
//! wall-clock seconds) the engine released tokens relative to their simulated time
//! divided by the speedup. It stays within tens of microseconds while the server keeps
//! up; if it grows, the machine cannot sustain this load at this `--speedup`.

use crate::engine::{Replica, RequestRecord, TokenEvent};
use std::fmt::Write;

/// vLLM's TTFT buckets, s.
pub const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
/// vLLM's inter-token latency buckets, s.
pub const ITL_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
/// vLLM's request latency buckets (end-to-end, queueing), s.
pub const REQUEST_LATENCY_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// Buckets of the token release lag, wall-clock s.
pub const LAG_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
    0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

/// vLLM's `request_params_n` buckets.
pub const N_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0];

/// vLLM's `build_1_2_5_buckets`: 1, 2, 5, 10, 20, 50, … up to `max` (inclusive).
pub fn buckets_1_2_5(max: u64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut exp = 1u64;
    'outer: loop {
        for m in [1u64, 2, 5] {
            let v = m.saturating_mul(exp);
            if v > max {
                break 'outer;
            }
            out.push(v as f64);
        }
        match exp.checked_mul(10) {
            Some(e) => exp = e,
            None => break,
        }
    }
    out
}

/// vLLM's `vllm:iteration_tokens_total` buckets.
pub const ITERATION_TOKEN_BUCKETS: &[f64] = &[
    1.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
];
/// vLLM's `vllm:request_num_preemptions` buckets.
pub const PREEMPTION_BUCKETS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0];
/// vLLM's `finished_reason` values (every one is exposed from start-up).
pub const FINISHED_REASONS: &[&str] = &["stop", "length", "abort", "error", "repetition"];

/// What a client asked for, recorded when its request finishes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestParams {
    /// `n`, counted once per HTTP request (with its first choice).
    pub n: Option<u32>,
    /// `max_tokens` as sent (absent when the client gave none).
    pub max_tokens: Option<u32>,
    /// The output length the request was allowed.
    pub max_generation_tokens: u32,
}

/// A metric family: name, help text and how to read one replica's value.
type Family<'a, F> = (&'static str, &'static str, &'a F);
/// Reads a gauge from a replica.
type GaugeFn = dyn Fn(&Replica) -> f64;
/// Reads a counter of replica `i`.
type CounterFn<'b> = dyn Fn(usize) -> u64 + 'b;
/// A histogram family: name, help text and which histogram of a replica it shows.
type HistFamily = (
    &'static str,
    &'static str,
    fn(&EngineMetrics) -> &PromHistogram,
);

/// A Prometheus histogram with fixed upper bounds.
#[derive(Clone, Debug)]
pub struct PromHistogram {
    bounds: std::sync::Arc<[f64]>,
    /// Non-cumulative counts per bucket; the last one is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl PromHistogram {
    /// An empty histogram over `bounds` (ascending).
    pub fn new(bounds: &[f64]) -> Self {
        PromHistogram {
            bounds: bounds.into(),
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// Record `v` seconds (NaN is ignored).
    pub fn observe(&mut self, v: f64) {
        if v.is_nan() {
            return;
        }
        let i = self.bounds.partition_point(|&b| b < v);
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }
}

/// Counters and histograms of one replica (`engine` label).
#[derive(Clone, Debug)]
pub struct EngineMetrics {
    ttft: PromHistogram,
    itl: PromHistogram,
    e2e: PromHistogram,
    queue: PromHistogram,
    inference: PromHistogram,
    prefill: PromHistogram,
    decode: PromHistogram,
    request_tpot: PromHistogram,
    request_preemptions: PromHistogram,
    request_prefill_computed: PromHistogram,
    request_prompt_tokens: PromHistogram,
    request_generation_tokens: PromHistogram,
    request_max_generation_tokens: PromHistogram,
    params_n: PromHistogram,
    params_max_tokens: PromHistogram,
    iteration_tokens: PromHistogram,
    prompt_tokens: u64,
    generation_tokens: u64,
    prefix_queries: u64,
    prefix_hits: u64,
    finished: u64,
}

impl EngineMetrics {
    /// Empty metrics; token-count buckets reach `max_model_len`.
    pub fn new(max_model_len: u32) -> Self {
        let lens = buckets_1_2_5(u64::from(max_model_len));
        let latency = PromHistogram::new(REQUEST_LATENCY_BUCKETS);
        EngineMetrics {
            ttft: PromHistogram::new(TTFT_BUCKETS),
            itl: PromHistogram::new(ITL_BUCKETS),
            e2e: latency.clone(),
            queue: latency.clone(),
            inference: latency.clone(),
            prefill: latency.clone(),
            decode: latency,
            request_tpot: PromHistogram::new(ITL_BUCKETS),
            request_preemptions: PromHistogram::new(PREEMPTION_BUCKETS),
            request_prefill_computed: PromHistogram::new(&lens),
            request_prompt_tokens: PromHistogram::new(&lens),
            request_generation_tokens: PromHistogram::new(&lens),
            request_max_generation_tokens: PromHistogram::new(&lens),
            params_n: PromHistogram::new(N_BUCKETS),
            params_max_tokens: PromHistogram::new(&lens),
            iteration_tokens: PromHistogram::new(ITERATION_TOKEN_BUCKETS),
            prompt_tokens: 0,
            generation_tokens: 0,
            prefix_queries: 0,
            prefix_hits: 0,
            finished: 0,
        }
    }
}

/// What the server has measured, per replica.
#[derive(Clone, Debug)]
pub struct ServerMetrics {
    engines: Vec<EngineMetrics>,
    release_lag: PromHistogram,
}

impl ServerMetrics {
    /// Empty metrics for `num_replicas` replicas (see [`EngineMetrics::new`]).
    pub fn new(num_replicas: usize, max_model_len: u32) -> Self {
        ServerMetrics {
            engines: vec![EngineMetrics::new(max_model_len); num_replicas],
            release_lag: PromHistogram::new(LAG_BUCKETS),
        }
    }

    fn engine(&mut self, replica: u32) -> Option<&mut EngineMetrics> {
        self.engines.get_mut(replica as usize)
    }

    /// A request produced tokens; `prompt_tokens` is its prompt length.
    pub fn on_tokens(&mut self, e: &TokenEvent, prompt_tokens: u32) {
        let Some(m) = self.engine(e.replica) else {
            return;
        };
        m.generation_tokens += u64::from(e.count);
        if e.first {
            m.prompt_tokens += u64::from(prompt_tokens);
            m.ttft.observe(e.gap.as_secs_f64());
        } else {
            m.itl.observe(e.gap.as_secs_f64());
        }
    }

    /// A token release left the engine `lag_s` wall-clock seconds after its due time.
    pub fn on_release_lag(&mut self, lag_s: f64) {
        self.release_lag.observe(lag_s);
    }

    /// A replica started an iteration of `tokens` tokens.
    pub fn on_iteration(&mut self, replica: u32, tokens: u64) {
        if let Some(m) = self.engine(replica) {
            m.iteration_tokens.observe(tokens as f64);
        }
    }

    /// A request finished; `params` are what its client asked for.
    pub fn on_finished(&mut self, r: &RequestRecord, params: &RequestParams) {
        let Some(m) = self.engine(r.replica) else {
            return;
        };
        m.finished += 1;
        m.e2e.observe(r.e2e_s);
        m.queue.observe(r.queue_s);
        // vLLM's phases: prefill from first scheduling to the first token, decode from
        // the first token to the last, inference both.
        let prefill = r.first_token_time_s - r.scheduled_time_s;
        let decode = r.finish_time_s - r.first_token_time_s;
        m.prefill.observe(prefill);
        m.decode.observe(decode);
        m.inference.observe(r.finish_time_s - r.scheduled_time_s);
        m.request_tpot.observe(if r.output_tokens > 1 {
            decode / f64::from(r.output_tokens - 1)
        } else {
            0.0
        });
        m.request_preemptions.observe(f64::from(r.preemptions));
        m.request_prefill_computed.observe(f64::from(
            r.input_tokens - r.prefix_hit_tokens.min(r.input_tokens),
        ));
        m.request_prompt_tokens.observe(f64::from(r.input_tokens));
        m.request_generation_tokens
            .observe(f64::from(r.output_tokens));
        m.prefix_queries += u64::from(r.input_tokens);
        m.prefix_hits += u64::from(r.prefix_hit_tokens);
        // Per HTTP request (recorded with its first choice; choices all generate the
        // same length here).
        if let Some(n) = params.n {
            m.params_n.observe(f64::from(n));
            m.request_max_generation_tokens
                .observe(f64::from(r.output_tokens));
        }
        // The effective limit, per choice, as vLLM records `SamplingParams.max_tokens`.
        m.params_max_tokens
            .observe(f64::from(params.max_generation_tokens));
    }

    /// Requests finished so far over all replicas.
    pub fn finished(&self) -> u64 {
        self.engines.iter().map(|m| m.finished).sum()
    }

    /// Render the exposition text for `replicas` (gauges are read from them).
    pub fn render(&self, model_name: &str, replicas: &[Replica]) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let model = escape_label(model_name);
        // Labels in prometheus_client's (alphabetical) order.
        let labels = |i: usize| format!("engine=\"{i}\",model_name=\"{model}\"");
        let n = replicas.len().min(self.engines.len());

        let gauges: [Family<GaugeFn>; 3] = [
            (
                "vllm:num_requests_running",
                "Number of requests in model execution batches.",
                &|r| r.num_running() as f64,
            ),
            (
                "vllm:num_requests_waiting",
                "Number of requests waiting to be processed.",
                &|r| r.num_waiting() as f64,
            ),
            (
                "vllm:kv_cache_usage_perc",
                "KV-cache usage. 1 means 100 percent usage.",
                &Replica::kv_usage,
            ),
        ];
        for (name, help, value) in gauges {
            header(&mut out, name, help, "gauge");
            for (i, r) in replicas.iter().enumerate().take(n) {
                let _ = writeln!(out, "{name}{{{}}} {}", labels(i), fmt_f64(value(r)));
            }
        }

        let counters: [Family<CounterFn<'_>>; 10] = [
            (
                "vllm:num_preemptions_total",
                "Cumulative number of preemption from the engine.",
                &|i| replicas[i].counters().preemptions,
            ),
            (
                "vllm:prompt_tokens_total",
                "Number of prefill tokens processed.",
                &|i| self.engines[i].prompt_tokens,
            ),
            (
                "vllm:generation_tokens_total",
                "Number of generation tokens processed.",
                &|i| self.engines[i].generation_tokens,
            ),
            (
                "vllm:prefix_cache_queries_total",
                "Prefix cache queries, in terms of number of queried tokens.",
                &|i| self.engines[i].prefix_queries,
            ),
            (
                "vllm:prefix_cache_hits_total",
                "Prefix cache hits, in terms of number of cached tokens.",
                &|i| self.engines[i].prefix_hits,
            ),
            (
                "vllm:prompt_tokens_cached_total",
                "Number of cached prompt tokens (local + external).",
                &|i| self.engines[i].prefix_hits,
            ),
            // Registered by vLLM whatever its configuration; 0 here, as on a vLLM
            // without a KV connector or multi-modal inputs.
            (
                "vllm:external_prefix_cache_queries_total",
                "External prefix cache queries from KV connector cross-instance cache sharing, in terms of number of queried tokens.",
                &|_| 0,
            ),
            (
                "vllm:external_prefix_cache_hits_total",
                "External prefix cache hits from KV connector cross-instance cache sharing, in terms of number of cached tokens.",
                &|_| 0,
            ),
            (
                "vllm:mm_cache_queries_total",
                "Multi-modal cache queries, in terms of number of queried items.",
                &|_| 0,
            ),
            (
                "vllm:mm_cache_hits_total",
                "Multi-modal cache hits, in terms of number of cached items.",
                &|_| 0,
            ),
        ];
        for (name, help, value) in counters {
            header(&mut out, name, help, "counter");
            for i in 0..n {
                let _ = writeln!(out, "{name}{{{}}} {}", labels(i), fmt_f64(value(i) as f64));
            }
        }
        let name = "vllm:request_success_total";
        header(
            &mut out,
            name,
            "Count of successfully processed requests.",
            "counter",
        );
        // Labels in prometheus_client's (alphabetical) order.
        for i in 0..n {
            for reason in FINISHED_REASONS {
                let count = if *reason == "length" {
                    self.engines[i].finished
                } else {
                    0
                };
                let _ = writeln!(
                    out,
                    "{name}{{engine=\"{i}\",finished_reason=\"{reason}\",model_name=\"{model}\"}} {}",
                    fmt_f64(count as f64)
                );
            }
        }

        let hists: [HistFamily; 16] = [
            (
                "vllm:time_to_first_token_seconds",
                "Histogram of time to first token in seconds.",
                |m| &m.ttft,
            ),
            (
                "vllm:inter_token_latency_seconds",
                "Histogram of inter-token latency in seconds.",
                |m| &m.itl,
            ),
            (
                "vllm:e2e_request_latency_seconds",
                "Histogram of e2e request latency in seconds.",
                |m| &m.e2e,
            ),
            (
                "vllm:request_queue_time_seconds",
                "Histogram of time spent in WAITING phase for request.",
                |m| &m.queue,
            ),
            (
                "vllm:request_inference_time_seconds",
                "Histogram of time spent in RUNNING phase for request.",
                |m| &m.inference,
            ),
            (
                "vllm:request_prefill_time_seconds",
                "Histogram of time spent in PREFILL phase for request.",
                |m| &m.prefill,
            ),
            (
                "vllm:request_decode_time_seconds",
                "Histogram of time spent in DECODE phase for request.",
                |m| &m.decode,
            ),
            (
                "vllm:request_time_per_output_token_seconds",
                "Histogram of time_per_output_token_seconds per request.",
                |m| &m.request_tpot,
            ),
            (
                "vllm:request_prompt_tokens",
                "Number of prefill tokens processed.",
                |m| &m.request_prompt_tokens,
            ),
            (
                "vllm:request_generation_tokens",
                "Number of generation tokens processed.",
                |m| &m.request_generation_tokens,
            ),
            (
                "vllm:iteration_tokens_total",
                "Histogram of number of tokens per engine_step.",
                |m| &m.iteration_tokens,
            ),
            (
                "vllm:request_max_num_generation_tokens",
                "Histogram of maximum number of requested generation tokens.",
                |m| &m.request_max_generation_tokens,
            ),
            (
                "vllm:request_params_n",
                "Histogram of the n request parameter.",
                |m| &m.params_n,
            ),
            (
                "vllm:request_params_max_tokens",
                "Histogram of the max_tokens request parameter.",
                |m| &m.params_max_tokens,
            ),
            (
                "vllm:request_num_preemptions",
                "Histogram of the number of times a request was preempted.",
                |m| &m.request_preemptions,
            ),
            (
                "vllm:request_prefill_kv_computed_tokens",
                "Histogram of new KV tokens computed during prefill (excluding cached tokens).",
                |m| &m.request_prefill_computed,
            ),
        ];
        for (name, help, get) in hists {
            header(&mut out, name, help, "histogram");
            for i in 0..n {
                write_histogram(&mut out, name, &labels(i), get(&self.engines[i]));
            }
        }
        let name = "servesim:token_release_lag_seconds";
        header(
            &mut out,
            name,
            "Wall-clock delay of token releases behind their simulated time (divided by the speedup).",
            "histogram",
        );
        write_histogram(
            &mut out,
            name,
            &format!("model_name=\"{model}\""),
            &self.release_lag,
        );
        out
    }
}

fn write_histogram(out: &mut String, name: &str, labels: &str, h: &PromHistogram) {
    let mut cum = 0;
    for (b, c) in h.bounds.iter().zip(&h.counts) {
        cum += c;
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"{}\"}} {}",
            fmt_f64(*b),
            fmt_f64(cum as f64)
        );
    }
    let count = fmt_f64(h.count as f64);
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", fmt_f64(h.sum));
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Python's float repr style used by prometheus_client (`1.0`, `0.25`, `NaN`).
fn fmt_f64(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// Escape a label value (`\`, `"` and newlines).
fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_upper_inclusive() {
        let mut h = PromHistogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 1.0, 3.0, f64::NAN] {
            h.observe(v);
        }
        assert_eq!(h.counts, vec![2, 2, 1]);
        assert_eq!(h.count(), 5);
        assert!((h.sum - 4.65).abs() < 1e-12);
    }

    #[test]
    fn floats_print_like_prometheus_client() {
        assert_eq!(fmt_f64(1.0), "1.0");
        assert_eq!(fmt_f64(0.025), "0.025");
        assert_eq!(fmt_f64(7680.0), "7680.0");
        assert_eq!(escape_label("a\"b\\"), "a\\\"b\\\\");
    }
}
