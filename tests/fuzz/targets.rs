//! The parsers under test, each with its seed inputs and a function that writes one
//! mutated input where the parser expects it and runs the parser to the end.

use servesim::hardware::{GpuSpec, Interconnects, INTERCONNECTS_FILE};
use servesim::model::ModelSpec;
use servesim::paths::DataPaths;
use servesim::plan::SweepConfig;
#[cfg(feature = "serve")]
use servesim::serve::openai::{
    chat_prompt_tokens, completion_prompt_tokens, ChatCompletionRequest, CompletionRequest,
};
use servesim::trace::{open_trace, TraceOptions};
use servesim::validate::{open, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One parser: its name, seed inputs, and a run that answers whether the input was
/// accepted (an error is an answer too; only a panic or a hang fails).
pub(crate) struct Target {
    pub(crate) name: &'static str,
    pub(crate) seeds: Vec<Vec<u8>>,
    pub(crate) run: fn(&Path, &[u8]) -> bool,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shared() -> PathBuf {
    root().join("../shared")
}

/// The first `lines` lines of a file (all of a shorter one), or nothing when absent.
fn head(path: &Path, lines: usize) -> Option<Vec<u8>> {
    let text = std::fs::read(path).ok()?;
    let mut out = Vec::new();
    for line in text.split_inclusive(|&b| b == b'\n').take(lines) {
        out.extend_from_slice(line);
    }
    Some(out)
}

fn whole(path: &Path, max_bytes: usize) -> Option<Vec<u8>> {
    let v = std::fs::read(path).ok()?;
    (v.len() <= max_bytes).then_some(v)
}

/// Write `bytes` as `dir/name` (the folder made fresh) and return the path.
fn put(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn read_trace(path: &Path) -> bool {
    match open_trace(path, &TraceOptions::default()) {
        Ok(reader) => {
            let mut ok = true;
            for r in reader {
                if r.is_err() {
                    ok = false;
                    break;
                }
            }
            ok
        }
        Err(_) => false,
    }
}

fn validate_open(path: &Path) -> bool {
    open(path, None, &OpenOptions::default()).is_ok()
}

fn interconnects() -> &'static Interconnects {
    static LINKS: OnceLock<Interconnects> = OnceLock::new();
    LINKS.get_or_init(|| {
        Interconnects::load(&DataPaths::builtin().perf_model.join(INTERCONNECTS_FILE)).unwrap()
    })
}

const VLLM_BENCH: &str = r#"{"date": "20250101-000000", "backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B", "request_rate": 4.0, "burstiness": 1.0, "max_concurrency": null, "completed": 3, "input_lens": [100, 200, 300], "output_lens": [10, 20, 3], "ttfts": [0.05, 0.06, 0.07], "itls": [[0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01], [0.02, 0.02], [0.01, 0.01]], "generated_texts": ["", "", ""], "errors": ["", "", ""]}"#;
/// Two SGLang `bench_serving` lines (a burst, as Python writes its rate, and a rate).
const SGLANG_BENCH: &str = concat!(
    r#"{"backend": "sglang", "request_rate": Infinity, "max_concurrency": 2, "std_ttft_ms": NaN, "input_lens": [100, 200], "output_lens": [3, 2], "ttfts": [0.05, 0.06], "itls": [[0.01, 0.01], [0.02]], "generated_texts": ["", ""], "errors": ["", ""]}"#,
    "\n",
    r#"{"backend": "sglang-oai", "request_rate": 4.0, "max_concurrency": null, "input_lens": [50], "output_lens": [4], "ttfts": [0.04], "itls": [[0.01, 0.01, 0.01]], "generated_texts": [""], "errors": [""]}"#,
    "\n"
);
const LSS_META: &str = r#"{"schema_version": 1, "model": "meta-llama/Llama-3.1-8B", "vllm_version": "0.19.0", "engine_kwargs": {"model": "meta-llama/Llama-3.1-8B", "tensor_parallel_size": 1, "max_num_seqs": 128, "max_num_batched_tokens": 2048, "max_model_len": null, "dtype": "bfloat16"}, "num_requests": 3}"#;
const GENZ: &str =
    "input_tokens,output_tokens,ttft,tpot,e2e\n100,10,0.05,0.01,0.14\n200,20,0.06,0.012,0.29\n";
const COMPLETION: &[&str] = &[
    r#"{"model": "m", "prompt": "Hello there, how are you?", "max_tokens": 16, "stream": true, "stream_options": {"include_usage": true}}"#,
    r#"{"prompt": [1, 2, 3, 4], "max_tokens": 4, "n": 1, "echo": false}"#,
    r#"{"model": "m", "prompt": ["a b c"], "max_tokens": 1}"#,
];
const CHAT: &[&str] = &[
    r#"{"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "max_tokens": 8}"#,
    r#"{"messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}], "name": "x"}], "max_completion_tokens": 3, "stream": true}"#,
];

/// Every target, with seeds from the repository (and from `../shared` when present).
pub(crate) fn all() -> Vec<Target> {
    let r = root();
    let traces = r.join("traces");
    let v = shared().join("validation");
    let mut out = Vec::new();

    let csv_traces: Vec<Vec<u8>> = [
        "azure_conv_5min.csv",
        "azure_code_first500.csv",
        "mooncake_conv_first1000.csv",
    ]
    .iter()
    .filter_map(|f| head(&traces.join(f), 30))
    .collect();
    out.push(Target {
        name: "trace-csv",
        seeds: csv_traces,
        run: |dir, b| read_trace(&put(dir, "trace.csv", b)),
    });
    let mut jsonl = vec![
        br#"{"timestamp": 0, "input_length": 100, "output_length": 10, "hash_ids": [0, 1]}
{"timestamp": 250, "input_length": 300, "output_length": 5, "hash_ids": [0, 2, 3]}
"#
        .to_vec(),
    ];
    jsonl.extend(head(
        &traces.join("llmservingsim_rtx4090_llama31_8b_requests.jsonl"),
        20,
    ));
    out.push(Target {
        name: "trace-jsonl",
        seeds: jsonl,
        run: |dir, b| read_trace(&put(dir, "trace.jsonl", b)),
    });
    out.push(Target {
        name: "trace-vllm-json",
        seeds: vec![VLLM_BENCH.as_bytes().to_vec()],
        run: |dir, b| read_trace(&put(dir, "bench.json", b)),
    });

    let configs: Vec<Vec<u8>> = [
        "meta-llama/Llama-3.1-8B",
        "Qwen/Qwen3-30B-A3B-Instruct-2507",
        "deepseek-ai/DeepSeek-V3",
        "mistralai/Mixtral-8x7B-v0.1",
        "openai/gpt-oss-20b",
    ]
    .iter()
    .filter_map(|m| whole(&r.join("model_configs").join(format!("{m}.json")), 1 << 16))
    .collect();
    out.push(Target {
        name: "model-config-json",
        seeds: configs,
        run: |dir, b| {
            let p = put(dir, "config.json", b);
            match std::str::from_utf8(b) {
                Ok(text) => ModelSpec::from_json("fuzz/model", &p, text).is_ok(),
                Err(_) => false,
            }
        },
    });

    let hw = DataPaths::builtin().hardware_dir();
    let devices: Vec<Vec<u8>> = [
        "h100-sxm5-80gb.toml",
        "a100-sxm4-40gb.toml",
        "mi300x.toml",
        "b200.toml",
    ]
    .iter()
    .filter_map(|f| whole(&hw.join(f), 1 << 16))
    .collect();
    out.push(Target {
        name: "hardware-toml",
        seeds: devices,
        run: |dir, b| GpuSpec::load(&put(dir, "device.toml", b), interconnects()).is_ok(),
    });

    // Sweep and plan configs, their trace made absolute so that it resolves from the
    // case folder.
    let trace = traces.join("azure_conv_10min_every2nd.csv");
    let sweeps: Vec<Vec<u8>> = ["sweep_llama8b_small.toml", "plan_llama8b.toml"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(r.join("examples").join(f)).ok())
        .map(|t| {
            t.replace(
                "../traces/azure_conv_10min_every2nd.csv",
                &trace.display().to_string(),
            )
            .into_bytes()
        })
        .collect();
    out.push(Target {
        name: "sweep-plan-toml",
        seeds: sweeps,
        run: |dir, b| {
            let p = put(dir, "sweep.toml", b);
            let traces = DataPaths::builtin().traces;
            SweepConfig::load(&p)
                .and_then(|c| c.grid(&p, &traces))
                .is_ok()
        },
    });

    let mut tables: Vec<Vec<u8>> = vec![GENZ.as_bytes().to_vec()];
    tables.extend(head(
        &r.join("examples/measured/llmservingsim-vllm-bench/rtxpro6000_llama8b_vllm019.csv"),
        30,
    ));
    for f in [
        "aic_serving_summary_small.csv",
        "trtllm_throughput_small.csv",
    ] {
        tables.extend(head(&r.join("tests/fixtures").join(f), 30));
    }
    for f in [
        "argonne-llm-inference-bench/All_results.csv",
        "argonne-llm-inference-bench/Fig_21__all_results_TTFT.csv",
        "splitwise-perf-model/perf_model.csv",
        "trtllm-perf-overview/throughput_offline.csv",
    ] {
        tables.extend(head(&v.join(f), 40));
    }
    out.push(Target {
        name: "validate-csv",
        seeds: tables,
        run: |dir, b| validate_open(&put(dir, "measured.csv", b)),
    });
    out.push(Target {
        name: "validate-vllm-json",
        seeds: vec![VLLM_BENCH.as_bytes().to_vec()],
        run: |dir, b| validate_open(&put(dir, "result.json", b)),
    });
    out.push(Target {
        name: "validate-sglang-jsonl",
        seeds: vec![SGLANG_BENCH.as_bytes().to_vec()],
        run: |dir, b| validate_open(&put(dir, "sglang.jsonl", b)),
    });
    let mut lss = Vec::new();
    lss.extend(head(
        &traces.join("llmservingsim_rtx4090_llama31_8b_requests.jsonl"),
        20,
    ));
    lss.push(LSS_META.as_bytes().to_vec());
    out.push(Target {
        name: "validate-llmservingsim",
        seeds: lss,
        run: |dir, b| {
            // Mutate the requests or the meta file, the other one intact.
            let meta = b.starts_with(b"{\"schema") || b.windows(13).any(|w| w == b"engine_kwargs");
            let requests = std::fs::read(
                root().join("traces/llmservingsim_rtx4090_llama31_8b_requests.jsonl"),
            )
            .unwrap_or_default();
            let run = dir.join("run");
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(&run).unwrap();
            if meta {
                std::fs::write(run.join("meta.json"), b).unwrap();
                std::fs::write(
                    run.join("requests.jsonl"),
                    &requests[..requests.len().min(4000)],
                )
                .unwrap();
            } else {
                std::fs::write(run.join("meta.json"), LSS_META).unwrap();
                std::fs::write(run.join("requests.jsonl"), b).unwrap();
            }
            validate_open(&run)
        },
    });

    out.push(Target {
        name: "failure-schedule-csv",
        seeds: whole(&r.join("examples/failures/outages.csv"), 1 << 12)
            .into_iter()
            .chain([b"replica,duration_s,time_s,note\n0,5,1.5,x\n".to_vec()])
            .collect(),
        run: |dir, b| servesim::sim::failures::read_schedule(&put(dir, "failures.csv", b)).is_ok(),
    });

    #[cfg(feature = "serve")]
    out.push(Target {
        name: "openai-completion",
        seeds: COMPLETION.iter().map(|s| s.as_bytes().to_vec()).collect(),
        run: |_, b| match serde_json::from_slice::<CompletionRequest>(b) {
            Ok(r) => completion_prompt_tokens(&r.prompt).is_ok(),
            Err(_) => false,
        },
    });
    #[cfg(feature = "serve")]
    out.push(Target {
        name: "openai-chat",
        seeds: CHAT.iter().map(|s| s.as_bytes().to_vec()).collect(),
        run: |_, b| match serde_json::from_slice::<ChatCompletionRequest>(b) {
            Ok(r) => chat_prompt_tokens(&r.messages).is_ok(),
            Err(_) => false,
        },
    });
    out.retain(|t| !t.seeds.is_empty());
    out
}
