//! `servesim serve` end to end: a server on a loopback ephemeral port, driven by a real
//! HTTP client. Most tests run the library server with a hand-computable latency model
//! (`FixedLatency`); one starts the `servesim` binary and stops it with SIGTERM.
#![cfg(feature = "serve")]

use serde_json::{json, Value};
use servesim::engine::{EngineConfig, Replica, SchedulerKind};
use servesim::perf::fixed::FixedLatency;
use servesim::serve::{serve, ServeOptions};
use servesim::sim::{Router, Simulation};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const MODEL: &str = "test-model";

struct TestServer {
    base: String,
    http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<servesim::Result<()>>,
}

/// Engine settings: vLLM V1 defaults with `blocks` KV blocks of 16 tokens.
fn engine(blocks: u32, max_model_len: u32) -> EngineConfig {
    EngineConfig::defaults_for(SchedulerKind::VllmV1, blocks, max_model_len)
}

/// Every iteration takes 10 ms of simulated time, plus 10 µs per prefill token.
fn latency() -> Arc<FixedLatency> {
    Arc::new(FixedLatency::from_micros(10_000, 10, 0))
}

fn options(speedup: f64) -> ServeOptions {
    let mut o = ServeOptions::new(MODEL);
    o.speedup = speedup;
    o.shutdown_timeout = Duration::from_millis(300);
    o
}

async fn start(cfg: EngineConfig, opts: ServeOptions) -> TestServer {
    let replica = Replica::new(0, cfg, latency()).unwrap();
    let sim = Simulation::new(vec![replica], Router::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, sim, opts, async {
        let _ = stopped.await;
    }));
    TestServer {
        base,
        http: reqwest::Client::new(),
        stop: Some(stop),
        task,
    }
}

impl TestServer {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn post_raw(&self, path: &str, body: &'static str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn metrics(&self) -> String {
        let r = self.http.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    /// The value of the first sample of `name` in /metrics.
    async fn metric(&self, name: &str) -> f64 {
        sample(&self.metrics().await, name)
    }

    /// Poll /metrics until `name` equals `value` (2 s at most).
    async fn wait_metric(&self, name: &str, value: f64) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let v = self.metric(name).await;
            if v == value {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} stayed at {v}, expected {value}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name}"))
}

/// The `data:` payloads of a whole SSE body.
fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// Read a streamed response, noting when the first token chunk arrived.
async fn read_stream(
    mut resp: reqwest::Response,
    sent: Instant,
) -> (Vec<Value>, Duration, Duration) {
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut buf = String::new();
    let mut ttft = None;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        if ttft.is_none() && buf.contains("tok") {
            ttft = Some(sent.elapsed());
        }
    }
    let data = sse_data(&buf);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{buf}");
    let chunks = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    (chunks, ttft.expect("a token arrived"), sent.elapsed())
}

fn text_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| {
            let ch = c["choices"].get(0)?;
            ch["text"].as_str().or(ch["delta"]["content"].as_str())
        })
        .collect()
}

async fn error_of(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    let body: Value = resp.json().await.unwrap();
    let e = body["error"].clone();
    assert!(e["message"].is_string(), "{body}");
    assert!(e["type"].is_string(), "{body}");
    assert!(
        e.get("param").is_some() && e.get("code").is_some(),
        "{body}"
    );
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_non_streaming() {
    let s = start(engine(1000, 4096), options(100.0)).await;
    let r = s
        .post(
            "/v1/completions",
            &json!({"model": MODEL, "prompt": "abcdefgh", "max_tokens": 5, "temperature": 0.7}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["model"], MODEL);
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["choices"][0]["text"], " tok tok tok tok tok");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7})
    );
    // Token ids count exactly; no model means the served one; 16 tokens by default.
    let v: Value = s
        .post("/v1/completions", &json!({"prompt": [1, 2, 3]}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 16, "total_tokens": 19})
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_non_streaming() {
    let mut opts = options(100.0);
    opts.default_max_tokens = Some(4);
    let s = start(engine(1000, 4096), opts).await;
    let msgs = json!([
        {"role": "system", "content": "abcdefgh"},
        {"role": "user", "content": "abcd"}
    ]);
    let v: Value = s
        .post(
            "/v1/chat/completions",
            &json!({"model": MODEL, "messages": msgs, "max_completion_tokens": 3, "max_tokens": 9}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "tok tok tok");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    // 3 priming + (3 + 1 + 2) + (3 + 1 + 1) prompt tokens.
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 14, "completion_tokens": 3, "total_tokens": 17})
    );
    // Without a limit, the server's --default-max-tokens applies.
    let v: Value = s
        .post("/v1/chat/completions", &json!({"messages": msgs}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["usage"]["completion_tokens"], 4);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_chunks_end_with_done_and_usage_when_asked() {
    let s = start(engine(1000, 4096), options(100.0)).await;
    for include_usage in [false, true] {
        let body = json!({
            "model": MODEL, "prompt": "hello there", "max_tokens": 4, "stream": true,
            "stream_options": {"include_usage": include_usage}
        });
        let (chunks, _, _) =
            read_stream(s.post("/v1/completions", &body).await, Instant::now()).await;
        assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
        assert_eq!(text_of(&chunks), " tok tok tok tok");
        let last_choice = chunks
            .iter()
            .rev()
            .find(|c| !c["choices"].as_array().unwrap().is_empty());
        assert_eq!(
            last_choice.unwrap()["choices"][0]["finish_reason"],
            "length"
        );
        let usage: Vec<_> = chunks.iter().filter(|c| c.get("usage").is_some()).collect();
        if include_usage {
            assert_eq!(usage.len(), 1);
            assert_eq!(chunks.last().unwrap()["choices"], json!([]));
            assert_eq!(
                usage[0]["usage"],
                json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
            );
        } else {
            assert!(usage.is_empty());
        }
    }
    let body = json!({
        "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "stream": true,
        "stream_options": {"include_usage": true}
    });
    let (chunks, _, _) =
        read_stream(s.post("/v1/chat/completions", &body).await, Instant::now()).await;
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(text_of(&chunks), "tok tok tok");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 3);
    s.shutdown().await;
}

/// With `--max-num-seqs 1` the second of two simultaneous requests waits for the first
/// to finish: its TTFT is at least the first one's end-to-end latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_queue_behind_each_other() {
    for max_num_seqs in [1, 256] {
        let mut cfg = engine(1000, 4096);
        cfg.max_num_seqs = max_num_seqs;
        // 20 tokens × 10 ms of simulated time = 0.2 s per request, in real time.
        let s = start(cfg, options(1.0)).await;
        let body = json!({"prompt": "hi", "max_tokens": 20, "stream": true});
        let one = || async {
            let sent = Instant::now();
            read_stream(s.post("/v1/completions", &body).await, sent).await
        };
        let (a, b) = tokio::join!(one(), one());
        let (first, second) = if a.1 <= b.1 { (a, b) } else { (b, a) };
        assert_eq!(text_of(&first.0), " tok".repeat(20));
        assert_eq!(text_of(&second.0), " tok".repeat(20));
        let queue = s.metric("vllm:request_queue_time_seconds_sum").await;
        if max_num_seqs == 1 {
            assert!(
                second.1 + Duration::from_millis(20) >= first.2,
                "second TTFT {:?} < first E2E {:?}",
                second.1,
                first.2
            );
            // Simulated: one request waited for the other's 20 iterations.
            assert!((0.19..0.3).contains(&queue), "queue time {queue}");
        } else {
            assert!(
                second.1 < first.2 / 2,
                "batched requests start together: {:?} vs {:?}",
                second.1,
                first.2
            );
            assert!(queue < 0.02, "queue time {queue}");
        }
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_400() {
    let s = start(engine(1000, 4096), options(100.0)).await;
    let raw = [
        ("/v1/completions", "{\"prompt\": "),
        ("/v1/completions", "not json"),
        ("/v1/completions", ""),
        ("/v1/completions", "[]"),
        ("/v1/completions", "{\"max_tokens\": 3}"),
        (
            "/v1/completions",
            "{\"prompt\": \"x\", \"max_tokens\": \"three\"}",
        ),
        ("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": -1}"),
        ("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": 0}"),
        (
            "/v1/completions",
            "{\"prompt\": \"x\", \"max_tokens\": 1.5}",
        ),
        (
            "/v1/completions",
            "{\"prompt\": \"x\", \"max_tokens\": 99999999999}",
        ),
        ("/v1/completions", "{\"prompt\": [], \"max_tokens\": 1}"),
        (
            "/v1/completions",
            "{\"prompt\": [1, -2], \"max_tokens\": 1}",
        ),
        (
            "/v1/completions",
            "{\"prompt\": [\"a\", \"b\"], \"max_tokens\": 1}",
        ),
        ("/v1/completions", "{\"prompt\": {\"a\": 1}}"),
        ("/v1/completions", "{\"prompt\": \"x\", \"n\": 2}"),
        (
            "/v1/completions",
            "{\"prompt\": \"x\", \"stream\": \"yes\"}",
        ),
        ("/v1/completions", "{\"prompt\": \"x\", \"echo\": true}"),
        ("/v1/chat/completions", "{\"model\": \"test-model\"}"),
        ("/v1/chat/completions", "{\"messages\": []}"),
        (
            "/v1/chat/completions",
            "{\"messages\": [{\"content\": \"hi\"}]}",
        ),
        (
            "/v1/chat/completions",
            "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}",
        ),
        ("/v1/chat/completions", "{\"messages\": \"hi\"}"),
    ];
    for (path, body) in raw {
        let e = error_of(s.post_raw(path, body).await, 400).await;
        assert_eq!(e["type"], "invalid_request_error", "{body}");
    }
    let e = error_of(
        s.post_raw("/v1/completions", "{\"max_tokens\": 3}").await,
        400,
    )
    .await;
    assert!(e["message"]
        .as_str()
        .unwrap()
        .contains("missing field `prompt`"));
    // A body over the limit, an unknown route and a wrong method are JSON errors too.
    let big = "x".repeat(17 * 1024 * 1024);
    let r = s
        .http
        .post(s.url("/v1/completions"))
        .body(big)
        .send()
        .await
        .unwrap();
    error_of(r, 413).await;
    error_of(s.http.get(s.url("/v1/nothing")).send().await.unwrap(), 404).await;
    error_of(
        s.http.get(s.url("/v1/completions")).send().await.unwrap(),
        405,
    )
    .await;
    // The server is still fine.
    assert_eq!(
        s.http.get(s.url("/health")).send().await.unwrap().status(),
        200
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_model_is_404() {
    let s = start(engine(1000, 4096), options(100.0)).await;
    for (path, body) in [
        ("/v1/completions", json!({"model": "gpt-4", "prompt": "x"})),
        (
            "/v1/chat/completions",
            json!({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}),
        ),
    ] {
        let e = error_of(s.post(path, &body).await, 404).await;
        assert_eq!(e["code"], "model_not_found");
        assert_eq!(e["param"], "model");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_long_requests_are_400() {
    // 256-token context; 8 KV blocks of 16 tokens hold 128 tokens.
    let s = start(engine(8, 256), options(100.0)).await;
    let long = "x".repeat(2000); // 500 tokens
    let e = error_of(
        s.post("/v1/completions", &json!({"prompt": long})).await,
        400,
    )
    .await;
    assert_eq!(e["code"], "context_length_exceeded");
    assert_eq!(e["param"], "prompt");
    let ids: Vec<u32> = (0..200).collect();
    let e = error_of(
        s.post(
            "/v1/completions",
            &json!({"prompt": ids, "max_tokens": 100}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(e["code"], "context_length_exceeded");
    assert!(e["message"].as_str().unwrap().contains("300 tokens"));
    let e = error_of(
        s.post(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": long}], "max_tokens": 1}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(e["param"], "messages");
    // Fits the context window but not the KV cache: the engine rejects it.
    let ids: Vec<u32> = (0..100).collect();
    let e = error_of(
        s.post(
            "/v1/completions",
            &json!({"prompt": ids, "max_tokens": 100}),
        )
        .await,
        400,
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("KV cache"), "{e}");
    // Chat without a limit gets the rest of the window, which never exceeds it.
    let r = s
        .post(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "x".repeat(900)}]}),
        )
        .await;
    assert_eq!(
        r.status(),
        400,
        "a 232-token prompt + the 24 tokens left exceed the 128-token KV cache"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_full_is_429() {
    let mut cfg = engine(1000, 4096);
    cfg.max_num_seqs = 1;
    let mut opts = options(1.0);
    opts.max_queue = Some(1);
    let s = start(cfg, opts).await;
    let long = json!({"prompt": "hi", "max_tokens": 500, "stream": true});
    // A runs (headers come back once the engine accepted it) …
    let mut a = s.post("/v1/completions", &long).await;
    assert_eq!(a.status(), 200);
    assert!(a.chunk().await.unwrap().is_some());
    // … B waits …
    let b = s.post("/v1/completions", &long).await;
    assert_eq!(b.status(), 200);
    assert_eq!(s.metric("vllm:num_requests_waiting").await, 1.0);
    // … and C finds the queue full, streaming or not.
    let e = error_of(s.post("/v1/completions", &long).await, 429).await;
    assert_eq!(e["code"], "queue_full");
    let e = error_of(
        s.post(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "x"}]}),
        )
        .await,
        429,
    )
    .await;
    assert_eq!(e["type"], "rate_limit_error");
    drop((a, b));
    s.wait_metric("vllm:num_requests_waiting", 0.0).await;
    s.wait_metric("vllm:num_requests_running", 0.0).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnected_clients_free_their_kv() {
    let mut cfg = engine(1000, 4096);
    cfg.max_num_seqs = 1;
    let s = start(cfg, options(1.0)).await;
    let long = json!({"prompt": "x".repeat(400), "max_tokens": 1000, "stream": true});
    let mut a = s.post("/v1/completions", &long).await;
    assert!(a.chunk().await.unwrap().is_some());
    assert_eq!(s.metric("vllm:num_requests_running").await, 1.0);
    assert!(s.metric("vllm:kv_cache_usage_perc").await > 0.0);
    // A non-streaming client that gives up while queued.
    let http = s.http.clone();
    let url = s.url("/v1/completions");
    let queued = tokio::spawn(async move {
        http.post(url)
            .json(&json!({"prompt": "hi", "max_tokens": 10}))
            .send()
            .await
    });
    s.wait_metric("vllm:num_requests_waiting", 1.0).await;
    queued.abort();
    s.wait_metric("vllm:num_requests_waiting", 0.0).await;
    // The streaming client goes away mid-stream.
    drop(a);
    s.wait_metric("vllm:num_requests_running", 0.0).await;
    s.wait_metric("vllm:kv_cache_usage_perc", 0.0).await;
    assert_eq!(s.metric("vllm:request_success_total").await, 0.0);
    // The engine serves the next request normally.
    let r = s
        .post("/v1/completions", &json!({"prompt": "hi", "max_tokens": 2}))
        .await;
    assert_eq!(r.status(), 200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_use_vllm_names_and_prometheus_format() {
    let s = start(engine(1000, 4096), options(100.0)).await;
    for _ in 0..3 {
        let r = s
            .post(
                "/v1/completions",
                &json!({"prompt": "abcdefgh", "max_tokens": 5}),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let r = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();
    for name in [
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:gpu_cache_usage_perc",
        "vllm:kv_cache_usage_perc",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:request_success_total",
        "vllm:time_to_first_token_seconds",
        "vllm:inter_token_latency_seconds",
        "vllm:time_per_output_token_seconds",
        "vllm:e2e_request_latency_seconds",
        "vllm:request_queue_time_seconds",
    ] {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no help"
        );
    }
    // Every sample line is `name{labels} value` with a number.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(
            (series.starts_with("vllm:") || series.starts_with("servesim:"))
                && series.ends_with('}'),
            "{line}"
        );
        assert!(series.contains("model_name=\"test-model\""), "{line}");
    }
    assert_eq!(sample(&text, "vllm:prompt_tokens_total"), 6.0);
    assert_eq!(sample(&text, "vllm:generation_tokens_total"), 15.0);
    assert_eq!(sample(&text, "vllm:request_success_total"), 3.0);
    assert_eq!(sample(&text, "vllm:time_to_first_token_seconds_count"), 3.0);
    assert_eq!(
        sample(&text, "vllm:inter_token_latency_seconds_count"),
        12.0
    );
    assert_eq!(sample(&text, "vllm:e2e_request_latency_seconds_count"), 3.0);
    // Buckets are cumulative and end with +Inf = count. Each request decodes 4 tokens
    // at 10 ms: every inter-token latency is exactly 0.01 s of simulated time.
    let buckets: Vec<(String, f64)> = text
        .lines()
        .filter(|l| l.starts_with("vllm:inter_token_latency_seconds_bucket"))
        .map(|l| {
            let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
            (
                le.to_owned(),
                l.rsplit(' ').next().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1));
    assert_eq!(buckets[0], ("0.01".to_owned(), 12.0));
    assert_eq!(buckets.last().unwrap(), &("+Inf".to_owned(), 12.0));
    assert!((sample(&text, "vllm:inter_token_latency_seconds_sum") - 0.12).abs() < 1e-9);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_health_and_version() {
    let mut opts = options(100.0);
    opts.served_model_names = vec![MODEL.into(), "alias".into()];
    opts.root_model = "org/checkpoint".into();
    let s = start(engine(1000, 4096), opts).await;
    let v: Value = s
        .http
        .get(s.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<_> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(MODEL), json!("alias")]);
    assert_eq!(v["data"][0]["object"], "model");
    assert_eq!(v["data"][0]["root"], "org/checkpoint");
    assert_eq!(v["data"][0]["max_model_len"], 4096);
    // Any served name works.
    let r = s
        .post(
            "/v1/completions",
            &json!({"model": "alias", "prompt": "x", "max_tokens": 1}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = s.http.get(s.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = s
        .http
        .get(s.url("/version"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["version"].is_string());
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_short_streams_and_cancels_long_ones() {
    let s = start(engine(1000, 4096), options(1.0)).await;
    // 10 tokens (0.1 s) finish within the 0.3 s grace; 1000 tokens (10 s) do not.
    let mut short = s
        .post(
            "/v1/completions",
            &json!({"prompt": "a", "max_tokens": 10, "stream": true}),
        )
        .await;
    let mut long = s
        .post(
            "/v1/completions",
            &json!({"prompt": "a", "max_tokens": 1000, "stream": true}),
        )
        .await;
    assert!(short.chunk().await.unwrap().is_some());
    assert!(long.chunk().await.unwrap().is_some());
    let started = Instant::now();
    let TestServer {
        http, stop, task, ..
    } = s;
    stop.unwrap().send(()).unwrap();
    let mut body = String::new();
    while let Some(c) = short.chunk().await.unwrap() {
        body.push_str(std::str::from_utf8(&c).unwrap());
    }
    assert!(!body.contains("error"), "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"));
    let mut body = String::new();
    while let Some(c) = long.chunk().await.unwrap() {
        body.push_str(std::str::from_utf8(&c).unwrap());
    }
    let data = sse_data(&body);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let err: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(err["error"]["code"], "service_unavailable");
    tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(http);
}

/// The binary: `servesim serve --port 0` prints its address, serves, and exits cleanly
/// on SIGTERM.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_serves_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_servesim"))
        .args([
            "serve",
            "--port",
            "0",
            "--speedup",
            "100",
            "--max-model-len",
            "4096",
            "--served-model-name",
            "cli-model",
            "--max-num-seqs",
            "8",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let base = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server starts");
        if let Some(rest) = line.split("on http://").nth(1) {
            break format!("http://{}", rest.split_whitespace().next().unwrap());
        }
    };
    let http = reqwest::Client::new();
    let v: Value = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&json!({"model": "cli-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "tok tok tok");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let lines: Vec<String> = rx.try_iter().collect();
    assert!(lines.iter().any(|l| l.contains("stopped")), "{lines:?}");
}

#[tokio::test]
async fn invalid_options_are_errors_not_panics() {
    let sim = || {
        let replica = Replica::new(0, engine(1000, 4096), latency()).unwrap();
        Simulation::new(vec![replica], Router::default()).unwrap()
    };
    for speedup in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = serve(listener, sim(), options(speedup), async {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("--speedup"), "{err}");
    }
    let mut opts = options(1.0);
    opts.served_model_names.clear();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    assert!(serve(listener, sim(), opts, async {}).await.is_err());
    // An unrepresentably long grace period and a tiny speedup are fine.
    let mut opts = options(1e-300);
    opts.shutdown_timeout = Duration::MAX;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(listener, sim(), opts, async {}).await.unwrap();
}
