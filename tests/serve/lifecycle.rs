//! Disconnects, metrics, discovery endpoints, shutdown and the CLI process.

use crate::util::*;
use serde_json::{json, Value};
use servesim::engine::Replica;
use servesim::serve::serve;
use servesim::sim::{Router, Simulation};
use std::time::{Duration, Instant};

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
        "vllm:kv_cache_usage_perc",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:request_success_total",
        "vllm:time_to_first_token_seconds",
        "vllm:inter_token_latency_seconds",
        "vllm:request_time_per_output_token_seconds",
        "vllm:request_prefill_time_seconds",
        "vllm:request_decode_time_seconds",
        "vllm:request_inference_time_seconds",
        "vllm:request_prompt_tokens",
        "vllm:request_generation_tokens",
        "vllm:iteration_tokens_total",
        "vllm:request_params_n",
        "vllm:request_params_max_tokens",
        "vllm:request_max_num_generation_tokens",
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
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
    // Every finished_reason is exposed; the simulated requests all end by length.
    assert_eq!(
        sample(&text, "vllm:request_success_total"),
        0.0,
        "stop comes first"
    );
    assert!(text.contains(
        "vllm:request_success_total{engine=\"0\",finished_reason=\"length\",model_name=\"test-model\"} 3.0"
    ));
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
        .env("VLLM_API_KEY", "cli-key")
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
    let request = json!({"model": "cli-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3});
    // The key comes from VLLM_API_KEY.
    let r = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth("cli-key")
        .json(&request)
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

#[cfg(unix)]
#[test]
fn cli_warns_when_reachable_from_other_machines_without_a_key() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_servesim"))
        .args(["serve", "--host", "0.0.0.0", "--port", "0"])
        .env_remove("VLLM_API_KEY")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        let serving = line.starts_with("serving");
        lines.push(line);
        if serving {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("warning: listening on 0.0.0.0:") && l.contains("--api-key")),
        "{lines:?}"
    );
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
    type Edit = fn(&mut servesim::serve::ServeOptions);
    let edits: [(Edit, &str); 4] = [
        (|o| o.max_connections = 0, "--max-connections"),
        (
            |o| o.header_read_timeout = Duration::ZERO,
            "--header-read-timeout-s",
        ),
        (
            |o| o.keep_alive_timeout = Duration::ZERO,
            "--keep-alive-timeout-s",
        ),
        (|o| o.api_key = Some(String::new()), "--api-key"),
    ];
    for (edit, flag) in edits {
        let mut opts = options(1.0);
        edit(&mut opts);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = serve(listener, sim(), opts, async {}).await.unwrap_err();
        assert!(err.to_string().contains(flag), "{err}");
    }
    // An unrepresentably long grace period and a tiny speedup are fine.
    let mut opts = options(1e-300);
    opts.shutdown_timeout = Duration::MAX;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(listener, sim(), opts, async {}).await.unwrap();
}
