//! OpenAI-style errors with the right status: 400, 404, 429.

use crate::util::*;
use serde_json::json;

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
        ("/v1/completions", "{\"prompt\": \"x\", \"n\": 0}"),
        (
            "/v1/completions",
            "{\"prompt\": \"x\", \"n\": 2, \"temperature\": 0}",
        ),
        ("/v1/completions", "{\"prompt\": \"x\", \"logprobs\": 21}"),
        (
            "/v1/completions",
            "{\"prompt\": \"x\", \"stream_options\": {\"include_usage\": true}}",
        ),
        (
            "/v1/chat/completions",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_logprobs\": 2}",
        ),
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
    // On its own client: the server closes a connection whose oversized body it did not
    // read, and a pooled client could otherwise reuse that dead connection below.
    let r = reqwest::Client::new()
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
            &json!({"prompt": ids, "max_tokens": 300}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(e["code"], "context_length_exceeded");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens=300 cannot be greater than max_model_len=256"),
        "{e}"
    );
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
