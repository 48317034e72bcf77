//! Helpers: a test server on a loopback port with a fixed-latency engine, and readers
//! of JSON, SSE and Prometheus bodies.

use serde_json::Value;
use servesim::engine::{EngineConfig, Replica, SchedulerKind};
use servesim::perf::fixed::FixedLatency;
use servesim::serve::{serve, ServeOptions};
use servesim::sim::{Router, Simulation};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub(crate) const MODEL: &str = "test-model";

pub(crate) struct TestServer {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    pub(crate) stop: Option<oneshot::Sender<()>>,
    pub(crate) task: JoinHandle<servesim::Result<()>>,
}

/// Engine settings: vLLM V1 defaults with `blocks` KV blocks of 16 tokens.
pub(crate) fn engine(blocks: u32, max_model_len: u32) -> EngineConfig {
    EngineConfig::defaults_for(SchedulerKind::VllmV1, blocks, max_model_len)
}

/// Every iteration takes 10 ms of simulated time, plus 10 µs per prefill token.
pub(crate) fn latency() -> Arc<FixedLatency> {
    Arc::new(FixedLatency::from_micros(10_000, 10, 0))
}

pub(crate) fn options(speedup: f64) -> ServeOptions {
    let mut o = ServeOptions::new(MODEL);
    o.speedup = speedup;
    o.shutdown_timeout = Duration::from_millis(300);
    o
}

/// The small byte-level BPE tokenizer the repository ships for tests.
pub(crate) const TOKENIZER_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tokenizer/llama3-style-bpe2k"
);

pub(crate) async fn start(cfg: EngineConfig, opts: ServeOptions) -> TestServer {
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
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn post_raw(&self, path: &str, body: &'static str) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn metrics(&self) -> String {
        let r = self.http.get(self.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }

    /// The value of the first sample of `name` in /metrics.
    pub(crate) async fn metric(&self, name: &str) -> f64 {
        sample(&self.metrics().await, name)
    }

    /// Poll /metrics until `name` equals `value` (2 s at most).
    pub(crate) async fn wait_metric(&self, name: &str, value: f64) {
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

    pub(crate) async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

pub(crate) fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name}"))
}

/// The `data:` payloads of a whole SSE body.
pub(crate) fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// Read a streamed response, noting when the first token chunk arrived.
pub(crate) async fn read_stream(
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
        if ttft.is_none() && has_token(&buf) {
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

/// Whether an SSE body so far holds a chunk with generated text (not the empty role
/// delta of a chat stream).
fn has_token(buf: &str) -> bool {
    ["\"text\":\"", "\"content\":\""].iter().any(|key| {
        buf.match_indices(key)
            .any(|(i, _)| !buf[i + key.len()..].starts_with('"'))
    })
}

pub(crate) fn text_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| {
            let ch = c["choices"].get(0)?;
            ch["text"].as_str().or(ch["delta"]["content"].as_str())
        })
        .collect()
}

pub(crate) async fn error_of(resp: reqwest::Response, status: u16) -> Value {
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
