//! Scheduler defaults each stack gives its engine: batch limits by device and engine
//! version, chunked prefill for long contexts, token budgets, KV reservation and the
//! scope of the sequence limit under pipeline parallelism.

use super::*;

#[test]
fn vllm_raises_its_batch_defaults_on_large_gpus_but_not_a100() {
    let v1 = ServingStack::load(&paths(), None).unwrap();
    let hw = crate::hardware::HardwareCatalog::load(&paths().hardware_dir()).unwrap();
    let on = |name: &str| {
        let s = v1.scheduler.for_device(hw.get(name).unwrap());
        (s.max_num_batched_tokens, s.max_num_seqs)
    };
    assert_eq!(on("h100"), (8192, 1024));
    assert_eq!(on("h200"), (8192, 1024));
    assert_eq!(on("rtx-pro-6000"), (8192, 1024));
    assert_eq!(on("a100-80gb"), (2048, 256), "A100 is excluded by name");
    assert_eq!(on("l40s"), (2048, 256), "48 GB is below 70 GiB");
    // Stacks without the rule keep their defaults everywhere.
    let v0 = ServingStack::load(&paths(), Some("vllm-0.5")).unwrap();
    assert_eq!(
        v0.scheduler.for_device(hw.get("h100").unwrap()),
        v0.scheduler
    );
}

#[test]
fn trtllm_gives_its_kv_cache_a_share_of_the_free_memory() {
    let trt = ServingStack::load(&paths(), Some("trtllm")).unwrap();
    assert_eq!(trt.kv_cache_budget, KvCacheBudget::Free);
    for name in ["vllm-v1", "vllm-0.6-rocm", "sglang"] {
        let s = ServingStack::load(&paths(), Some(name)).unwrap();
        assert_eq!(s.kv_cache_budget, KvCacheBudget::Total, "{name}");
    }
    // 100 GB on a GPU of 180: 0.9 of the whole GPU leaves 62 GB, 0.9 of the free 72.
    let (c, rest) = (180e9, 100e9);
    assert!((KvCacheBudget::Total.kv_cache_bytes(c, rest, 0.9) - 62e9).abs() < 1.0);
    assert!((KvCacheBudget::Free.kv_cache_bytes(c, rest, 0.9) - 72e9).abs() < 1.0);
    assert_eq!(KvCacheBudget::Free.weight_share(0.9), 1.0);
    let e = load_error_with_line(&trt, "kv_cache_budget", "\"whole\"");
    assert!(e.contains("bad.toml") && e.contains("whole"), "{e}");
}

/// vLLM 0.5.3 – 0.6.x switch chunked prefill on, at 512 tokens, for a model served
/// with more than 32,768 tokens of context, unless the user says otherwise, the model
/// slides its attention window or multi-step scheduling is on.
#[test]
fn v0_stacks_chunk_the_prefill_of_long_context_models_as_vllm_does() {
    use crate::engine::config::EngineOverrides;
    let none = EngineOverrides::default();
    let chunk = |c: &crate::engine::config::EngineConfig| {
        (c.enable_chunked_prefill, c.max_num_batched_tokens)
    };
    for stack in ["vllm-0.5", "vllm-0.6"] {
        // Llama 3.1: 131,072 tokens.
        let c = engine_for(stack, "meta-llama/Llama-3.1-8B", None, none);
        assert_eq!(chunk(&c), (true, 512), "{stack}");
        // The same model served at 8K keeps whole-prompt prefills in one iteration.
        let c = engine_for(stack, "meta-llama/Llama-3.1-8B", Some(8192), none);
        assert_eq!(chunk(&c), (false, 8192), "{stack}");
        // At exactly 32,768 the rule does not fire (vLLM: `> 32768`).
        let c = engine_for(stack, "meta-llama/Llama-3.1-8B", Some(32768), none);
        assert_eq!(chunk(&c), (false, 32768), "{stack}");
        // A model with a sliding window (Phi-3.5-mini declares one of 262,144 tokens)
        // is left alone.
        let c = engine_for(stack, "microsoft/Phi-3.5-mini-instruct", None, none);
        assert_eq!(chunk(&c), (false, 131072), "{stack}");
        // The user's word wins, either way, and so does the budget given.
        let off = EngineOverrides {
            enable_chunked_prefill: Some(false),
            ..none
        };
        let c = engine_for(stack, "meta-llama/Llama-3.1-8B", Some(65536), off);
        assert_eq!(chunk(&c), (false, 65536), "{stack}");
        let budget = EngineOverrides {
            max_num_batched_tokens: Some(4096),
            ..none
        };
        let c = engine_for(stack, "meta-llama/Llama-3.1-8B", None, budget);
        assert_eq!(chunk(&c), (true, 4096), "{stack}");
        // Chunked prefill asked for takes the engine's chunked budget, whatever the
        // context.
        let on = EngineOverrides {
            enable_chunked_prefill: Some(true),
            ..none
        };
        let c = engine_for(stack, "meta-llama/Llama-3.1-8B", Some(8192), on);
        assert_eq!(chunk(&c), (true, 512), "{stack}");
        // Multi-step scheduling does not chunk prompts.
        let steps = EngineOverrides {
            num_scheduler_steps: Some(8),
            ..none
        };
        let c = engine_for(stack, "meta-llama/Llama-3.1-8B", Some(65536), steps);
        assert_eq!(chunk(&c), (false, 65536), "{stack}");
    }
    // vLLM 0.5 kept chunked prefill and prefix caching apart; 0.6.1 on did not.
    let prefix = EngineOverrides {
        enable_prefix_caching: Some(true),
        ..none
    };
    let c = engine_for("vllm-0.5", "meta-llama/Llama-3.1-8B", Some(65536), prefix);
    assert_eq!(chunk(&c), (false, 65536));
    let c = engine_for("vllm-0.6", "meta-llama/Llama-3.1-8B", Some(65536), prefix);
    assert_eq!(chunk(&c), (true, 512));
    // V1 always chunks, at its own budget.
    let c = engine_for("vllm-v1", "meta-llama/Llama-3.1-8B", None, none);
    assert_eq!(chunk(&c), (true, 8192));
}

/// The small profiling pass is what lets a long-context model fit: Llama 3.1 405B in
/// FP8 on eight H100s at its full 131,072 tokens, which vLLM 0.6 serves.
#[test]
fn a_long_context_model_fits_with_the_chunked_budget_it_profiles_with() {
    let req = crate::deployment::DeploymentRequest {
        tensor_parallel_size: Some(8),
        quantization: Some("fp8".into()),
        ..request("vllm-0.6", "meta-llama/Llama-3.1-405B", "h100")
    };
    let d = crate::deployment::Deployment::resolve(&req, &paths()).unwrap();
    let s = crate::setup::ReplicaSetup::new(d.clone(), &Default::default(), &paths()).unwrap();
    assert_eq!(s.engine.max_num_batched_tokens, 512);
    assert!(s.engine.kv_capacity_tokens() >= 131_072);
    // Forcing whole-prompt prefills back profiles a 131,072-token pass, which does not.
    let off = crate::engine::config::EngineOverrides {
        enable_chunked_prefill: Some(false),
        ..Default::default()
    };
    let e = crate::setup::ReplicaSetup::new(d, &off, &paths())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("does not fit"), "{e}");
}

#[test]
fn a_chunked_prefill_budget_of_zero_is_refused_with_its_key() {
    let s = ServingStack::load(&paths(), Some("vllm-0.6")).unwrap();
    let e = load_error_with_line(&s, "chunked_prefill_budget", "0");
    assert!(
        e.contains("scheduler.chunked_prefill_budget") && e.contains("at least 1"),
        "{e}"
    );
}

/// A token budget below the sequence limit: vLLM V1 lowers its default limit to a given
/// budget and refuses an explicit limit above it, vLLM V0 refuses either, SGLang runs.
#[test]
fn a_budget_below_the_sequence_limit_follows_each_engine() {
    use crate::engine::config::EngineOverrides;
    let budget = |seqs: Option<u32>| EngineOverrides {
        max_num_batched_tokens: Some(128),
        max_num_seqs: seqs,
        ..EngineOverrides::default()
    };
    let setup = |stack: &str, ov: EngineOverrides| {
        let req = crate::deployment::DeploymentRequest {
            max_model_len: Some(8192),
            ..request(stack, "meta-llama/Llama-3.1-8B", "h100")
        };
        engine_with(&req, &ov)
    };
    let v1 = setup("vllm-v1", budget(None)).unwrap();
    assert_eq!((v1.max_num_seqs, v1.max_num_batched_tokens), (128, 128));
    let e = setup("vllm-v1", budget(Some(256))).unwrap_err().to_string();
    assert!(
        e.contains("--max-num-batched-tokens (128) is below --max-num-seqs (256)"),
        "{e}"
    );
    let chunked = EngineOverrides {
        enable_chunked_prefill: Some(true),
        ..budget(None)
    };
    assert!(setup("vllm-0.6", chunked).is_err());
    let sg = setup("sglang", budget(None)).unwrap();
    assert_eq!(sg.max_num_batched_tokens, 128);
    assert!(sg.max_num_seqs > 128);
}

/// Run as a library (`--offline`), vLLM V1 takes its LLM class's batch defaults: 16,384
/// tokens and 1,024 sequences on large GPUs, 8,192 and 256 on an A100; stacks without
/// such defaults keep theirs.
#[test]
fn offline_runs_take_the_library_batch_defaults() {
    let batch = |stack: &str, hardware: &str, offline: bool| {
        let req = crate::deployment::DeploymentRequest {
            max_model_len: Some(8192),
            offline,
            ..request(stack, "meta-llama/Llama-3.1-8B", hardware)
        };
        let e = engine_with(&req, &Default::default()).unwrap();
        (e.max_num_seqs, e.max_num_batched_tokens)
    };
    assert_eq!(batch("vllm-v1", "h100", false), (1024, 8192));
    assert_eq!(batch("vllm-v1", "h100", true), (1024, 16384));
    assert_eq!(batch("vllm-v1", "a100-sxm4-80gb", false), (256, 2048));
    assert_eq!(batch("vllm-v1", "a100-sxm4-80gb", true), (256, 8192));
    assert_eq!(batch("vllm-v1-sync", "h100", true), (1024, 16384));
    for stack in ["vllm-0.6", "sglang"] {
        assert_eq!(
            batch(stack, "h100", true),
            batch(stack, "h100", false),
            "{stack}"
        );
    }
}

/// A stack's per-version defaults follow the engine version a deployment names: vLLM
/// 0.5.0 – 0.5.2 lack the long-context rule, V1 before 0.8.5 the large-GPU defaults; a
/// deployment that names no version takes every rule of its stack.
#[test]
fn per_version_defaults_follow_the_named_engine_version() {
    let none = crate::engine::config::EngineOverrides::default();
    let llama = "meta-llama/Llama-3.1-8B";
    let at = |stack: &str, v: Option<&str>| {
        let c = engine_of_version(stack, llama, None, none, v);
        (
            c.enable_chunked_prefill,
            c.max_num_batched_tokens,
            c.max_num_seqs,
        )
    };
    assert_eq!(at("vllm-0.5", Some("0.5.2")), (false, 131_072, 256));
    assert_eq!(at("vllm-0.5", Some("0.5.3")), (true, 512, 256));
    assert_eq!(at("vllm-0.5", None), (true, 512, 256));
    assert_eq!(at("vllm-0.6", Some("0.6.4")), (true, 512, 256));
    assert_eq!(at("vllm-0.6", Some("0.6.5")), (true, 2048, 256));
    assert_eq!(at("vllm-0.6", None), (true, 512, 256));
    // AMD's fork stops the long-context rule on ROCm from 0.6.6.
    let rocm = ServingStack::load(&paths(), Some("vllm-0.6-rocm")).unwrap();
    let of = |v: Option<&str>| rocm.scheduler.for_version(v);
    assert!(of(Some("0.6.1")).long_context.is_some());
    assert!(of(None).long_context.is_some());
    assert!(of(Some("0.6.6")).long_context.is_none());
    assert_eq!(of(Some("0.6.4")).chunked_prefill_budget, Some(512));
    assert_eq!(of(Some("0.6.6")).chunked_prefill_budget, None);
    assert_eq!(at("vllm-v1-sync", Some("0.8.4")), (true, 2048, 256));
    assert_eq!(at("vllm-v1-sync", Some("0.10.1")), (true, 8192, 1024));
    assert_eq!(at("vllm-v1-sync", None), (true, 8192, 1024));
    let s = ServingStack::load(&paths(), Some("vllm-0.5")).unwrap();
    let e = load_error_with_line(&s, "since_version", "\"soon\"");
    assert!(
        e.contains("scheduler.long_context.since_version") && e.contains("soon"),
        "{e}"
    );
}

#[test]
fn sglang_sets_kv_aside_for_running_outputs_and_its_figures_are_checked() {
    let s = ServingStack::load(&paths(), Some("sglang")).unwrap();
    assert_eq!(s.scheduler.kind, SchedulerKind::Sglang);
    let none = crate::engine::config::EngineOverrides::default();
    let c = engine_of_version("sglang", "meta-llama/Llama-3.1-8B", None, none, None);
    let r = c.kv_reservation.expect("the SGLang stack reserves KV");
    assert!(r.min_ratio < r.initial_ratio && r.initial_ratio <= 1.0);
    assert_eq!(c.scheduler, SchedulerKind::Sglang);
    assert!(
        c.max_num_seqs >= 2048,
        "SGLang sizes its request pool from memory"
    );
    // Another scheduler on the stack drops it (vLLM admits on the prompt alone).
    let v1 = crate::engine::config::EngineOverrides {
        scheduler: Some(SchedulerKind::VllmV1),
        ..none
    };
    let c = engine_of_version("sglang", "meta-llama/Llama-3.1-8B", None, v1, None);
    assert!(c.kv_reservation.is_none());
    let e = load_error_with_line(&s, "min_ratio", "0.9");
    assert!(
        e.contains("scheduler.kv_reservation") && e.contains("min_ratio"),
        "{e}"
    );
}

#[test]
fn sglang_sizes_its_prefill_chunk_by_gpu_memory() {
    let sg = ServingStack::load(&paths(), Some("sglang")).unwrap();
    let hw = crate::hardware::HardwareCatalog::load(&paths().hardware_dir()).unwrap();
    let on = |name: &str| {
        sg.scheduler
            .for_device(hw.get(name).unwrap())
            .max_num_batched_tokens
    };
    assert_eq!(on("rtx-4090"), 2048, "24 GB is below 35 GiB");
    assert_eq!(on("a100-40gb"), 4096);
    assert_eq!(on("l40s"), 4096);
    assert_eq!(on("a100-80gb"), 8192);
    assert_eq!(on("h100"), 8192);
    assert_eq!(on("h200"), 8192, "141 GB is below 160 GiB");
    assert_eq!(on("b200"), 16384);
    let e = load_error_with_line(&sg, "below_memory_gib", "40.0");
    assert!(
        e.contains("scheduler.small_device.below_memory_gib") && e.contains("increasing"),
        "{e}"
    );
}

#[test]
fn tensorrt_llm_keeps_its_token_budget_without_chunked_context() {
    // vLLM raises its budget to max_model_len without chunked prefill; TensorRT-LLM
    // keeps max_num_tokens and turns longer prompts away.
    let none = crate::engine::config::EngineOverrides::default();
    let c = engine_for("trtllm", "meta-llama/Llama-3.1-8B", None, none);
    assert!(!c.enable_chunked_prefill && c.max_model_len > 8192);
    assert_eq!(
        (c.max_num_batched_tokens, c.longest_prompt()),
        (8192, Some(8192))
    );
    let chunked = crate::engine::config::EngineOverrides {
        enable_chunked_prefill: Some(true),
        ..none
    };
    let c = engine_for("trtllm", "meta-llama/Llama-3.1-8B", None, chunked);
    assert_eq!((c.max_num_batched_tokens, c.longest_prompt()), (8192, None));
    let v0 = engine_for("vllm-0.5", "meta-llama/Llama-3.1-8B", Some(16384), none);
    assert_eq!(
        (v0.max_num_batched_tokens, v0.longest_prompt()),
        (16384, None)
    );
}

#[test]
fn tensorrt_llm_serves_without_eviction_unless_told_otherwise() {
    let none = crate::engine::config::EngineOverrides::default();
    let c = engine_for("trtllm", "meta-llama/Llama-3.1-8B", None, none);
    let r = c.kv_reservation.expect("GUARANTEED_NO_EVICT");
    assert_eq!(
        (r.initial_ratio, r.min_ratio, r.clip_output_tokens),
        (1.0, 1.0, None)
    );
    let off = crate::engine::config::EngineOverrides {
        kv_reservation: Some(false),
        ..none
    };
    assert!(engine_for("trtllm", "meta-llama/Llama-3.1-8B", None, off)
        .kv_reservation
        .is_none());
    assert!(engine_for("vllm-v1", "meta-llama/Llama-3.1-8B", None, none)
        .kv_reservation
        .is_none());
    // Asking for one where the stack has none is an error naming the flag.
    let on = crate::engine::config::EngineOverrides {
        kv_reservation: Some(true),
        ..none
    };
    let req = request("vllm-v1", "meta-llama/Llama-3.1-8B", "h100");
    let e = engine_with(&req, &on).unwrap_err().to_string();
    assert!(
        e.contains("--kv-reservation") && e.contains("vllm-v1"),
        "{e}"
    );
}

#[test]
fn tensorrt_llm_limits_each_micro_batch_and_vllm_the_replica() {
    use crate::engine::SeqLimitScope;
    let none = crate::engine::config::EngineOverrides::default();
    // The C++ runtime's in-flight batching (TensorRT engines); the PyTorch backend
    // (`trtllm`) keeps the replica-wide limit (its stack file says why).
    for stack in ["trtllm-engine", "trtllm-0.11"] {
        let mut c = engine_for(stack, "meta-llama/Llama-3.1-8B", None, none);
        assert_eq!(c.max_num_seqs_scope, SeqLimitScope::MicroBatch, "{stack}");
        c.pipeline_stages = 2;
        assert_eq!(c.max_running(), 2 * c.max_num_seqs, "{stack}");
    }
    for stack in ["vllm-v1", "trtllm"] {
        let mut c = engine_for(stack, "meta-llama/Llama-3.1-8B", None, none);
        c.pipeline_stages = 2;
        assert_eq!(
            (c.max_num_seqs_scope, c.max_running()),
            (SeqLimitScope::Replica, c.max_num_seqs),
            "{stack}"
        );
    }
}
