//! `GET /metrics`: Prometheus text exposition (format 0.0.4) with vLLM's metric names,
//! help texts, label names (`engine`, `model_name`) and histogram buckets (vLLM V1,
//! `vllm/v1/metrics/loggers.py`), one `engine` per replica.
//!
//! Latencies are in **simulated** seconds (what the simulated server would measure);
//! with `--speedup N` a client sees them N times shorter on its wall clock.
//! `vllm:gpu_cache_usage_perc` (V0's name) and `vllm:kv_cache_usage_perc` (V1's) carry
//! the same value, a fraction from 0 to 1 despite the name. Prompt tokens are counted
//! when a request's first token is produced (its prefill is done); aborted requests keep
//! the tokens they were counted for.
//!
//! One metric is servesim's own: `servesim:token_release_lag_seconds`, how late (in
//! wall-clock seconds) the engine task released tokens relative to their simulated
//! time divided by the speedup. It stays near the timer resolution (about 1 ms) while
//! the server keeps up; if it grows, the machine cannot sustain this load at this
//! `--speedup`.

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
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

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
    bounds: &'static [f64],
    /// Non-cumulative counts per bucket; the last one is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl PromHistogram {
    /// An empty histogram over `bounds` (ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        PromHistogram {
            bounds,
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
    prompt_tokens: u64,
    generation_tokens: u64,
    finished: u64,
}

impl Default for EngineMetrics {
    fn default() -> Self {
        EngineMetrics {
            ttft: PromHistogram::new(TTFT_BUCKETS),
            itl: PromHistogram::new(ITL_BUCKETS),
            e2e: PromHistogram::new(REQUEST_LATENCY_BUCKETS),
            queue: PromHistogram::new(REQUEST_LATENCY_BUCKETS),
            prompt_tokens: 0,
            generation_tokens: 0,
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
    /// Empty metrics for `num_replicas` replicas.
    pub fn new(num_replicas: usize) -> Self {
        ServerMetrics {
            engines: vec![EngineMetrics::default(); num_replicas],
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

    /// A request finished.
    pub fn on_finished(&mut self, r: &RequestRecord) {
        let Some(m) = self.engine(r.replica) else {
            return;
        };
        m.finished += 1;
        m.e2e.observe(r.e2e_s);
        m.queue.observe(r.queue_s);
    }

    /// Requests finished so far over all replicas.
    pub fn finished(&self) -> u64 {
        self.engines.iter().map(|m| m.finished).sum()
    }

    /// Render the exposition text for `replicas` (gauges are read from them).
    pub fn render(&self, model_name: &str, replicas: &[Replica]) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let model = escape_label(model_name);
        let labels = |i: usize| format!("engine=\"{i}\",model_name=\"{model}\"");
        let n = replicas.len().min(self.engines.len());

        let gauges: [Family<GaugeFn>; 4] = [
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
                "vllm:gpu_cache_usage_perc",
                "GPU KV-cache usage. 1 means 100 percent usage. DEPRECATED: Use vllm:kv_cache_usage_perc instead.",
                &Replica::kv_usage,
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

        let counters: [Family<CounterFn<'_>>; 3] = [
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
        for i in 0..n {
            let _ = writeln!(
                out,
                "{name}{{{},finished_reason=\"length\"}} {}",
                labels(i),
                fmt_f64(self.engines[i].finished as f64)
            );
        }

        let hists: [HistFamily; 5] = [
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
                "vllm:time_per_output_token_seconds",
                "Histogram of time per output token in seconds. DEPRECATED: Use vllm:inter_token_latency_seconds instead.",
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
