//! Completions and chat, whole and streamed, and batching/queueing between clients.

use crate::util::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

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
