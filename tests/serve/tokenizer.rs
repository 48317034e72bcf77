//! Serving with the model's tokenizer: prompt counts and chat templates as vLLM's,
//! output text that re-encodes to the simulated count, `/tokenize` and `/detokenize`,
//! `n` choices, log-probabilities, usage details and vLLM's per-request metrics.

use crate::util::*;
use serde_json::{json, Value};
use servesim::serve::tokenizer::ModelTokenizer;
use servesim::serve::Tokenization;
use std::sync::Arc;
use std::time::Instant;

fn tokenizer() -> Arc<ModelTokenizer> {
    Arc::new(ModelTokenizer::from_dir(std::path::Path::new(TOKENIZER_DIR)).unwrap())
}

fn with_tokenizer(speedup: f64) -> servesim::serve::ServeOptions {
    let mut o = options(speedup);
    o.tokenization = Tokenization::Model(tokenizer());
    o.prompt_tokens_details = true;
    o
}

const PROMPT: &str = "The simulator replays a request trace through a model of a serving engine.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_count_as_the_tokenizer_does_and_outputs_re_encode_exactly() {
    let tok = tokenizer();
    let s = start(engine(1000, 4096), with_tokenizer(100.0)).await;
    // Completions: encoded with the special tokens (the BOS), as vLLM does.
    let expect = tok.encode(PROMPT, true).unwrap().len() as u64;
    assert_eq!(expect, tok.encode(PROMPT, false).unwrap().len() as u64 + 1);
    for max_tokens in [1u32, 7, 100] {
        let r: Value = s
            .post(
                "/v1/completions",
                &json!({"prompt": PROMPT, "max_tokens": max_tokens}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(r["usage"]["prompt_tokens"], expect, "{r}");
        assert_eq!(r["usage"]["completion_tokens"], max_tokens);
        let text = r["choices"][0]["text"].as_str().unwrap();
        assert_eq!(
            tok.encode(text, false).unwrap().len() as u32,
            max_tokens,
            "{text:?}"
        );
    }
    // Streamed: the chunks concatenate to text of exactly the simulated length.
    let resp = s
        .post(
            "/v1/completions",
            &json!({"prompt": PROMPT, "max_tokens": 33, "stream": true}),
        )
        .await;
    let (chunks, _, _) = read_stream(resp, Instant::now()).await;
    assert_eq!(tok.encode(&text_of(&chunks), false).unwrap().len(), 33);
    // Chat: the template's text, encoded without special tokens (it writes its own).
    let messages =
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]);
    let rendered = tok.render_chat(&messages, true).unwrap();
    assert!(
        rendered.starts_with("<|begin_of_text|><|start_header_id|>system"),
        "{rendered}"
    );
    assert!(rendered.ends_with("<|start_header_id|>assistant<|end_header_id|>\n\n"));
    let chat_expect = tok.encode(&rendered, false).unwrap().len() as u64;
    let r: Value = s
        .post(
            "/v1/chat/completions",
            &json!({"messages": messages, "max_tokens": 9}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["usage"]["prompt_tokens"], chat_expect, "{r}");
    let reply = r["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(tok.encode(reply, false).unwrap().len(), 9);
    // Token ids outside the vocabulary are refused, as vLLM does.
    let e = error_of(
        s.post(
            "/v1/completions",
            &json!({"prompt": [1, 2, 5000], "max_tokens": 1}),
        )
        .await,
        400,
    )
    .await;
    assert!(
        e["message"].as_str().unwrap().contains("out of vocabulary"),
        "{e}"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokenize_and_detokenize_round_trip() {
    let tok = tokenizer();
    let s = start(engine(1000, 4096), with_tokenizer(100.0)).await;
    let r: Value = s
        .post(
            "/tokenize",
            &json!({"prompt": PROMPT, "return_token_strs": true}),
        )
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<u32> = serde_json::from_value(r["tokens"].clone()).unwrap();
    assert_eq!(ids, tok.encode(PROMPT, true).unwrap());
    assert_eq!(r["count"], ids.len());
    assert_eq!(r["max_model_len"], 4096);
    assert_eq!(r["token_strs"][0], "<|begin_of_text|>");
    let r: Value = s
        .post("/detokenize", &json!({"tokens": ids}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["prompt"], format!("<|begin_of_text|>{PROMPT}"));
    // Chat messages: the same count the chat endpoint charges.
    let messages = json!([{"role": "user", "content": "hi"}]);
    let r: Value = s
        .post("/tokenize", &json!({"messages": messages}))
        .await
        .json()
        .await
        .unwrap();
    let c: Value = s
        .post(
            "/v1/chat/completions",
            &json!({"messages": messages, "max_tokens": 1}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["count"], c["usage"]["prompt_tokens"]);
    s.shutdown().await;
    // Without a tokenizer the endpoints say so.
    let s = start(engine(1000, 4096), options(100.0)).await;
    let e = error_of(s.post("/tokenize", &json!({"prompt": "x"})).await, 501).await;
    assert!(e["message"].as_str().unwrap().contains("--tokenizer"));
    let models: Value = s
        .http
        .get(s.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(models["data"][0]["servesim_tokenizer"]
        .as_str()
        .unwrap()
        .starts_with("no tokenizer"));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n_choices_logprobs_and_usage_details() {
    let s = start(engine(1000, 4096), with_tokenizer(100.0)).await;
    // n choices: n simulated requests, prompt counted once, completions summed.
    let r: Value = s
        .post(
            "/v1/completions",
            &json!({"prompt": PROMPT, "max_tokens": 4, "n": 3, "logprobs": 2}),
        )
        .await
        .json()
        .await
        .unwrap();
    let choices = r["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i);
        let lp = &c["logprobs"];
        assert_eq!(lp["tokens"].as_array().unwrap().len(), 4);
        assert_eq!(lp["token_logprobs"][0].as_f64().unwrap() as f32, -0.1);
        assert_eq!(lp["top_logprobs"][0].as_object().unwrap().len(), 2);
        let offsets: Vec<u64> = serde_json::from_value(lp["text_offset"].clone()).unwrap();
        let text = c["text"].as_str().unwrap();
        assert_eq!(offsets[0], 0);
        assert!(offsets.windows(2).all(|w| w[0] < w[1]) && (offsets[3] as usize) < text.len());
    }
    let prompt = r["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(r["usage"]["completion_tokens"], 12);
    assert_eq!(r["usage"]["total_tokens"], prompt + 12);
    // The same prompt again: its full blocks come from the prefix cache.
    let r: Value = s
        .post(
            "/v1/completions",
            &json!({"prompt": PROMPT, "max_tokens": 1}),
        )
        .await
        .json()
        .await
        .unwrap();
    let cached = r["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert_eq!(cached, prompt / 16 * 16, "{r}");
    // Chat logprobs: the generated token first among the top ones.
    let r: Value = s
        .post(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2,
                    "logprobs": true, "top_logprobs": 3}),
        )
        .await
        .json()
        .await
        .unwrap();
    let content = r["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(content.len(), 2);
    assert_eq!(content[0]["top_logprobs"].as_array().unwrap().len(), 3);
    assert_eq!(content[0]["top_logprobs"][0]["token"], content[0]["token"]);
    let bytes: Vec<u8> = serde_json::from_value(content[0]["bytes"].clone()).unwrap();
    assert_eq!(bytes, content[0]["token"].as_str().unwrap().as_bytes());
    // Streamed chat with n = 2 and continuous usage: every role chunk first, then the
    // tokens with each choice's running count, then the usage of both.
    let resp = s
        .post(
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "n": 2,
                    "stream": true,
                    "stream_options": {"include_usage": true, "continuous_usage_stats": true}}),
        )
        .await;
    let (chunks, _, _) = read_stream(resp, Instant::now()).await;
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[1]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[1]["choices"][0]["index"], 1);
    let mut per_choice = [0u64; 2];
    for c in &chunks[2..chunks.len() - 1] {
        let i = c["choices"][0]["index"].as_u64().unwrap() as usize;
        per_choice[i] += 1;
        assert_eq!(c["usage"]["completion_tokens"], per_choice[i], "{c}");
    }
    assert_eq!(per_choice, [3, 3]);
    let last = chunks.last().unwrap();
    assert!(last["choices"].as_array().unwrap().is_empty());
    assert_eq!(last["usage"]["completion_tokens"], 6);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_request_metrics_are_vllms() {
    let s = start(engine(1000, 4096), with_tokenizer(100.0)).await;
    for _ in 0..2 {
        let r = s
            .post(
                "/v1/completions",
                &json!({"prompt": PROMPT, "max_tokens": 5, "n": 2}),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    let text = s.metrics().await;
    // Four simulated requests (two of n = 2), each counted by the per-request ones.
    for (name, count) in [
        ("vllm:request_prompt_tokens_count", 4.0),
        ("vllm:request_generation_tokens_count", 4.0),
        ("vllm:request_prefill_time_seconds_count", 4.0),
        ("vllm:request_decode_time_seconds_count", 4.0),
        ("vllm:request_inference_time_seconds_count", 4.0),
        ("vllm:request_time_per_output_token_seconds_count", 4.0),
        ("vllm:request_params_max_tokens_count", 4.0),
        ("vllm:request_params_n_count", 2.0),
        ("vllm:request_max_num_generation_tokens_count", 2.0),
    ] {
        assert_eq!(sample(&text, name), count, "{name}");
    }
    assert_eq!(sample(&text, "vllm:request_params_n_sum"), 4.0);
    assert_eq!(sample(&text, "vllm:request_generation_tokens_sum"), 20.0);
    // Decode runs 4 iterations of 10 ms after the first token (an iteration that also
    // prefills a request takes 10 µs per prompt token more).
    let decode = sample(&text, "vllm:request_decode_time_seconds_sum");
    assert!((decode - 4.0 * 0.040).abs() < 1e-3, "{decode}");
    let tpot = sample(&text, "vllm:request_time_per_output_token_seconds_sum");
    assert!((tpot - 4.0 * 0.010).abs() < 1e-3, "{tpot}");
    assert!(sample(&text, "vllm:iteration_tokens_total_count") > 0.0);
    let queries = sample(&text, "vllm:prefix_cache_queries_total");
    let hits = sample(&text, "vllm:prefix_cache_hits_total");
    assert!(
        queries > 0.0 && hits > 0.0 && hits < queries,
        "{queries} {hits}"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_without_a_limit_takes_the_models_generation_config() {
    let mut o = with_tokenizer(100.0);
    o.chat_max_new_tokens = Some(5);
    let s = start(engine(1000, 4096), o).await;
    let chat = |limit: Option<u32>| {
        let mut body = json!({"messages": [{"role": "user", "content": "hi"}]});
        if let Some(l) = limit {
            body["max_tokens"] = json!(l);
        }
        body
    };
    let r: Value = s
        .post("/v1/chat/completions", &chat(None))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["usage"]["completion_tokens"], 5, "{r}");
    let r: Value = s
        .post("/v1/chat/completions", &chat(Some(7)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["usage"]["completion_tokens"], 7, "an explicit limit wins");
    // Completions keep their own default of 16.
    let r: Value = s
        .post("/v1/completions", &json!({"prompt": "hi"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["usage"]["completion_tokens"], 16);
    s.shutdown().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("generation_config.json"),
        r#"{"max_new_tokens": 512}"#,
    )
    .unwrap();
    assert_eq!(
        servesim::serve::tokenizer::generation_max_new_tokens(dir),
        Some(512)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_servers_ingress_delays_the_engine_as_in_simulate() {
    let mut o = options(100.0);
    o.api_server = Some(servesim::stack::ApiServer {
        request_us: 50_000.0,
        per_prompt_token_us: 0.0,
        per_token_out_us: 0.0,
        handlers: 0,
        source: "test".into(),
        fitted_on: Vec::new(),
        prior_request_us: 0.0,
    });
    let s = start(engine(1000, 4096), o).await;
    let r = s
        .post(
            "/v1/completions",
            &json!({"prompt": [1, 2, 3, 4], "max_tokens": 2}),
        )
        .await;
    assert_eq!(r.status(), 200);
    // TTFT runs from the HTTP request's receipt: 50 ms in the API server, then one
    // 10 ms iteration (+ 10 µs per prompt token); the engine's queue time excludes it.
    let text = s.metrics().await;
    let ttft = sample(&text, "vllm:time_to_first_token_seconds_sum");
    assert!((ttft - 0.06004).abs() < 1e-6, "{ttft}");
    let e2e = sample(&text, "vllm:e2e_request_latency_seconds_sum");
    assert!((e2e - 0.07004).abs() < 1e-6, "{e2e}");
    assert!(sample(&text, "vllm:request_queue_time_seconds_sum") < 1e-3);
    s.shutdown().await;
}
