//! Offline throughput validation: replay the rows of a TensorRT-LLM offline throughput
//! table ([`throughput_table`](super::throughput_table)) through the simulated engine.
//!
//! Each row is `num_requests` requests of exactly ISL prompt and OSL output tokens,
//! all arriving at time zero, on the group's deployment; the simulated output
//! throughput is all output tokens over the time from zero to the last finish, as
//! `trtllm-bench` reports "Total Output Throughput".
//!
//! TensorRT-LLM's max-throughput engine is stood for by continuous batching (the vLLM
//! V1 scheduler), with settings read from the dataset's README and `trtllm-bench`'s
//! source:
//!
//! * per row, the batch and token limits `trtllm-bench` derives for the row's lengths
//!   when neither flag nor options file gives them ([`bench_limits`]; the shared
//!   table's `llm_options.yml` sets only the CUDA-graph sizes), with chunked prefill as
//!   the row's stack has it (off on the PyTorch backend);
//! * per row, at most as many running requests as the KV cache holds at their full
//!   ISL + OSL, because TRT-LLM's default capacity scheduler (`GUARANTEED_NO_EVICT`)
//!   admits a request only when its whole sequence fits, while the simulated engine
//!   allocates on demand and would otherwise preempt;
//! * [`KV_CACHE_FREE_GPU_MEM_FRACTION`] of the memory left after weights, activations
//!   and runtime for the KV cache (the deployment's `kv_cache_budget` set to `free`,
//!   TensorRT-LLM's meaning, whatever stack times the steps).
//!
//! A row of a release before 0.19 ran a TensorRT engine: it replays on the
//! `trtllm-engine` stack, with experts split by TP, and with the batch and token limits
//! `trtllm-bench build` compiled for its lengths ([`engine_build_limits`]), or those the
//! table gives for the row (an engine built by hand, as for `gptManagerBenchmark`
//! before 0.12). A table's own KV fraction and capacity
//! policy replace the defaults above; under `max_utilization` there is no per-row KV
//! cap (the engine admits while blocks last and pauses requests when they run out).

use super::groups::GroupRun;
use super::measured::output_rate;
use super::report::{ComparisonRows, Metric, ReplayMode, Validation, ValidationKind};
use super::throughput_table::{EngineFlow, Precision, ThroughputGroup};
use crate::deployment::DeploymentRequest;
use crate::engine::config::EngineOverrides;
use crate::engine::{RequestStatus, SchedulerKind};
use crate::error::Result;
use crate::estimate::BatchSpec;
use crate::setup::ReplicaSetup;
use crate::simulate::simulate_requests;

/// The largest CUDA-graph batch size of the runs (`cuda_graph_config` batch sizes up
/// to 8192, per the dataset's README): the simulated sequences and tokens per
/// iteration.
pub const CUDA_GRAPH_MAX_BATCH: u32 = 8192;

/// `kv_cache_free_gpu_mem_fraction` of the runs: "often 0.95 (0.90 fallback)" per the
/// README, which does not say which rows used the fallback.
pub const KV_CACHE_FREE_GPU_MEM_FRACTION: f64 = 0.95;

/// The deployment request of `group`: `base` (flags) wins; the mapping fills the model,
/// GPU, parallelism, formats and `max_model_len` (the longest ISL + OSL of the group,
/// as `trtllm-bench` sizes its engine from the dataset).
///
/// FP8 and FP4 rows take the checkpoint's precision (FP8 or NVFP4 weights and
/// activations) and an FP8 KV cache, as the ModelOpt checkpoints declare (and as
/// `trtllm-bench build --quantization FP8` sets it); FP16 rows are unquantized, with a
/// 16-bit KV cache. The serving stack is the row's release's
/// ([`ThroughputKey::stack`](super::throughput_table::ThroughputKey::stack)). On the
/// PyTorch backend a mixture-of-experts model (`moe`) ran with `--ep` and attention
/// data parallelism: its listed TP becomes that many attention-DP ranks of TP1 with the
/// experts spread over all of them; a TensorRT engine splits the experts by TP.
pub fn group_request(
    group: &ThroughputGroup,
    base: &DeploymentRequest,
    moe: bool,
) -> DeploymentRequest {
    let k = &group.key;
    let mut r = base.clone();
    r.model.get_or_insert_with(|| group.model.model.clone());
    r.hardware
        .get_or_insert_with(|| group.hardware.hardware.clone());
    if moe && k.flow() == EngineFlow::PyTorch {
        r.tensor_parallel_size.get_or_insert(1);
        r.data_parallel_size.get_or_insert(k.tp);
        r.enable_expert_parallel = true;
    } else {
        r.tensor_parallel_size.get_or_insert(k.tp);
    }
    r.pipeline_parallel_size.get_or_insert(k.pp);
    match k.precision {
        Precision::Fp16 => {
            r.dtype.get_or_insert_with(|| "float16".into());
            r.quantization.get_or_insert_with(|| "none".into());
            r.kv_cache_dtype.get_or_insert_with(|| "auto".into());
        }
        p => {
            r.quantization
                .get_or_insert_with(|| p.weight_dtype().name().to_owned());
            r.kv_cache_dtype.get_or_insert_with(|| "fp8".into());
        }
    }
    // trtllm-bench runs the engine as a library.
    r.offline = true;
    // The rows were measured on TensorRT-LLM: its stack's graph modes, collectives and
    // host costs, unless `--serving-stack` says otherwise.
    r.serving_stack.get_or_insert_with(|| k.stack().into());
    if r.max_model_len.is_none() {
        r.max_model_len = group.rows.iter().map(|x| x.isl.saturating_add(x.osl)).max();
    }
    r
}

/// The engine settings standing for TRT-LLM's max-throughput configuration: `base`
/// (flags) wins; vLLM V1 scheduling, chunked prefill as the row's stack has it (the
/// PyTorch backend's `enable_chunked_prefill` is off unless `trtllm-bench` is given
/// `--enable_chunked_context`; the TensorRT engines of the older releases chunk),
/// [`CUDA_GRAPH_MAX_BATCH`] sequences and tokens per iteration until a row's own limits
/// replace them ([`bench_limits`]), no prefix caching (the prompts are random), and
/// no KV reservation in the scheduler: the capacity policy is applied per row instead,
/// as a cap on the running requests (`GUARANTEED_NO_EVICT`, the default: only those
/// whose whole ISL + OSL fits; none under a table's `max_utilization`; module docs).
pub fn engine_overrides(base: &EngineOverrides) -> EngineOverrides {
    let mut ov = *base;
    ov.kv_reservation.get_or_insert(false);
    ov.scheduler.get_or_insert(SchedulerKind::VllmV1);
    ov.max_num_seqs.get_or_insert(CUDA_GRAPH_MAX_BATCH);
    ov.max_num_batched_tokens
        .get_or_insert(CUDA_GRAPH_MAX_BATCH);
    ov.enable_prefix_caching.get_or_insert(false);
    ov
}

/// The engine limits `trtllm-bench build` compiles for a dataset of `isl` / `osl`
/// tokens when it is not given them (`tensorrt_llm/bench/build/tuning.py`,
/// `finetune_setting`): from the requests the KV cache holds at the full length
/// (`kv_requests`, at most 4,096, over the PP stages), a batch rounded up (to 32 below
/// 256 and at least 64, to 128 below 1,024, else to 256) and a token budget of that
/// batch × (1 + ISL / OSL), at most 32,768, rounded up (to 256 below 4,096 and at
/// least 2,048, to 512 below 8,192, else to 1,024). Returns `(max_batch_size,
/// max_num_tokens)`.
pub fn engine_build_limits(kv_requests: f64, isl: u32, osl: u32, pp: u32) -> (u32, u32) {
    let raw_bs = kv_requests.min(4096.0) / f64::from(pp.max(1));
    let raw_tokens = (raw_bs * (1.0 + f64::from(isl) / f64::from(osl.max(1)))).min(32768.0);
    let bs = round_up_by_tier(raw_bs, &[(256.0, 32.0), (1024.0, 128.0)], 256.0).max(64.0);
    let tokens =
        round_up_by_tier(raw_tokens, &[(4096.0, 256.0), (8192.0, 512.0)], 1024.0).max(2048.0);
    (bs as u32, tokens as u32)
}

/// The batch and token limits `trtllm-bench` runs a row of `isl` / `osl` tokens with
/// when it is not given them: [`engine_build_limits`] on the requests the KV cache of
/// the group's GPUs holds at that length. A TensorRT engine compiles them. The PyTorch
/// backend (`get_settings` in `tensorrt_llm/bench/benchmark/utils/general.py`, 1.0)
/// computes the same heuristic over all `tp × pp` GPUs (with attention data
/// parallelism, every rank's KV cache), holds up to `max_batch_size × pp` requests (its
/// scheduler keeps that many in flight over the stages), and without chunked context
/// raises the token budget to at least the longest prompt plus `max_batch_size`.
/// Returns the replica's `(max_num_seqs, max_num_batched_tokens)`.
pub fn bench_limits(
    setup: &ReplicaSetup,
    group: &ThroughputGroup,
    isl: u32,
    osl: u32,
) -> (u32, u32) {
    let pp = group.key.pp.max(1);
    match group.key.flow() {
        EngineFlow::TensorRtEngine => {
            engine_build_limits(kv_requests(setup, isl, osl), isl, osl, pp)
        }
        EngineFlow::PyTorch => {
            let ranks = f64::from(setup.deployment.dp.max(1));
            let (bs, tokens) =
                engine_build_limits(kv_requests(setup, isl, osl) * ranks, isl, osl, pp);
            let tokens = if setup.engine.enable_chunked_prefill {
                tokens
            } else {
                tokens.max(isl.saturating_add(bs))
            };
            (bs.saturating_mul(pp), tokens)
        }
    }
}

/// `x` rounded up to a multiple of the step of the first `(below, step)` tier it lies
/// below, else of `last_step`.
fn round_up_by_tier(x: f64, tiers: &[(f64, f64)], last_step: f64) -> f64 {
    let step = tiers
        .iter()
        .find(|&&(below, _)| x < below)
        .map_or(last_step, |&(_, step)| step);
    step * (x / step).ceil()
}

/// The requests of `isl + osl` tokens the KV cache of `setup` holds at once, as a
/// fraction (`trtllm-bench build`'s estimate, from the simulated memory plan).
fn kv_requests(setup: &ReplicaSetup, isl: u32, osl: u32) -> f64 {
    let e = &setup.engine;
    let tokens = f64::from(isl.saturating_add(osl).max(1));
    f64::from(e.num_gpu_blocks) * f64::from(e.block_size.max(1)) / tokens
}

/// The running-request cap of a row: the requests whose whole `isl + osl` fits the KV
/// cache of `setup` at once (at least one), and at most `setup`'s `max_num_seqs`.
pub fn no_evict_max_num_seqs(setup: &ReplicaSetup, isl: u32, osl: u32) -> u32 {
    let e = &setup.engine;
    let blocks_per_request = isl.saturating_add(osl).div_ceil(e.block_size.max(1)).max(1);
    (e.num_gpu_blocks / blocks_per_request).clamp(1, e.max_num_seqs)
}

/// Which per-row limits a replay sets (each off where a flag gave the setting).
#[derive(Clone, Copy, Debug, Default)]
pub struct RowLimits {
    /// Cap the running requests at what the row's full length lets the KV cache hold
    /// ([`no_evict_max_num_seqs`]).
    pub cap_to_kv: bool,
    /// Take the batch and token limits the row ran with: its own where the table gives
    /// them, else those `trtllm-bench` derives for the row's lengths
    /// ([`bench_limits`]).
    pub run_limits: bool,
}

/// Replay every row of `group` and compare the output throughput, each row under
/// `limits`.
pub fn validate_group(
    run: GroupRun<'_>,
    limits: RowLimits,
    group: &ThroughputGroup,
) -> Result<Validation> {
    let cap_to_kv = limits.cap_to_kv;
    let setup = run.setup;
    let mut notes = run.notes.clone();
    notes.extend(
        [&group.model.note, &group.hardware.note]
            .into_iter()
            .flatten()
            .cloned(),
    );
    notes.push(match group.key.precision {
        Precision::Fp16 => "FP16 engine: fp16 weights, activations and KV cache".into(),
        Precision::Fp8 if group.key.flow() == EngineFlow::TensorRtEngine => "FP8 engine (trtllm-bench build --quantization FP8): fp8 weights and activations (W8A8) in the transformer blocks, 16-bit embeddings and LM head, fp8 KV cache (set by the FP8 quantization); --quantization / --kv-cache-dtype override".into(),
        Precision::Fp8 => "FP8 checkpoint: fp8 weights and activations (W8A8) in the transformer blocks, 16-bit embeddings and LM head, fp8 KV cache (the ModelOpt checkpoints declare kv_cache_quant_algo FP8); --quantization / --kv-cache-dtype override".into(),
        Precision::Fp4 => "FP4 checkpoint: NVFP4 weights and activations (W4A4, 4.5 bits per weight with the e4m3 scales) at the FP4 tensor rate, 16-bit embeddings and LM head, fp8 KV cache (the ModelOpt checkpoints declare kv_cache_quant_algo FP8); --quantization / --kv-cache-dtype override".into(),
    });
    notes.push(format!(
        "TRT-LLM's engine stood for by the simulated {} scheduler {} chunked prefill, {} tokens and up to {} sequences per iteration; {}",
        setup.engine.scheduler,
        if setup.engine.enable_chunked_prefill { "with" } else { "without" },
        setup.engine.max_num_batched_tokens,
        setup.engine.max_num_seqs,
        if cap_to_kv {
            "per row, running requests are capped at those whose whole ISL+OSL fits the KV cache (TRT-LLM's GUARANTEED_NO_EVICT admission; the column max_num_seqs)"
        } else {
            "no per-row KV cap (max_num_seqs as given, or the engine's batch limit)"
        }
    ));
    let given = group
        .rows
        .iter()
        .filter(|r| r.engine_limits.is_some())
        .count();
    if limits.run_limits && given > 0 {
        notes.push(format!("per row, the engine's max_batch_size and max_num_tokens as the table gives them ({given} of {} rows; the others as trtllm-bench build would compile them); the running requests are the smaller of that batch and the KV cap, where there is one (columns max_num_seqs, max_num_tokens)", group.rows.len()));
    } else if limits.run_limits && group.key.flow() == EngineFlow::PyTorch {
        notes.push("per row, max_batch_size and max_num_tokens as trtllm-bench derives them when neither is given (the options file sets only CUDA-graph sizes): tuning.py's heuristic over all the group's GPUs (the requests their KV caches hold at full length, rounded up; a token budget of that × (1 + ISL/OSL), 2,048 to 32,768), then without chunked context at least ISL + max_batch_size tokens; up to max_batch_size × PP requests in flight; the running requests are the smaller of that and the KV cap (columns max_num_seqs, max_num_tokens)".into());
    } else if limits.run_limits {
        notes.push("per row, the engine's max_batch_size and max_num_tokens as trtllm-bench build compiles them for the row's ISL/OSL (tuning.py: the requests the KV cache holds at full length, rounded up; a token budget of that × (1 + ISL/OSL), 2,048 to 32,768); the running requests are the smaller of that batch and the KV cap (columns max_num_seqs, max_num_tokens)".into());
    }
    notes.push("TensorRT-LLM is not vLLM: its kernels, CUDA graphs and per-iteration host overheads differ from the simulated ones (see the latency model)".into());
    notes.push("simulated throughput = all output tokens / time from t=0 to the last finish, as trtllm-bench's total output throughput".into());

    let mut rows = ComparisonRows {
        key_columns: vec![
            "line",
            "isl",
            "osl",
            "num_requests",
            "max_num_seqs",
            "max_num_tokens",
            "simulated_preemptions",
        ],
        ..ComparisonRows::default()
    };
    let (mut sim, mut meas) = (Vec::new(), Vec::new());
    let mut rejected = 0usize;
    for r in &group.rows {
        let mut row_setup = setup.clone();
        if cap_to_kv {
            row_setup.engine.max_num_seqs = no_evict_max_num_seqs(setup, r.isl, r.osl);
        }
        if limits.run_limits {
            let (bs, tokens) = match r.engine_limits {
                Some(l) => (l.max_batch_size, l.max_num_tokens),
                None => bench_limits(setup, group, r.isl, r.osl),
            };
            let e = &mut row_setup.engine;
            e.max_num_seqs = e.max_num_seqs.min(bs);
            e.max_num_batched_tokens = tokens;
        }
        let reqs = BatchSpec {
            batch_size: r.num_requests,
            input_len: r.isl,
            output_len: r.osl,
        }
        .requests();
        let out = simulate_requests(&row_setup, run.replicas, reqs, Default::default())?;
        let all_done = out.records.len() == r.num_requests as usize
            && out
                .records
                .iter()
                .all(|x| x.status == RequestStatus::Finished);
        let rate = if all_done {
            output_rate(
                out.records
                    .iter()
                    .map(|x| (x.arrival_time_s, x.finish_time_s, x.output_tokens)),
            )
        } else {
            rejected += 1;
            f64::NAN
        };
        let preemptions: u32 = out.records.iter().map(|x| x.preemptions).sum();
        sim.push(rate);
        meas.push(r.output_tokens_per_s);
        rows.keys.push(vec![
            r.line.to_string(),
            r.isl.to_string(),
            r.osl.to_string(),
            r.num_requests.to_string(),
            row_setup.engine.max_num_seqs.to_string(),
            row_setup.engine.max_num_batched_tokens.to_string(),
            preemptions.to_string(),
        ]);
    }
    if rejected > 0 {
        notes.push(format!(
            "{rejected} rows had requests the simulated engine rejects (longer than max_model_len or the whole KV cache) and are left out of the errors"
        ));
    }
    rows.metrics.push((Metric::OutputThroughput, sim, meas));
    Ok(run.finish(
        ValidationKind::OfflineThroughput,
        Some(ReplayMode::Burst),
        notes,
        rows,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::Deployment;
    use crate::paths::DataPaths;
    use crate::perf::fixed::FixedLatency;
    use crate::validate::mapping::{trtllm_hardware, trtllm_model};
    use crate::validate::throughput_table::{EngineLimits, ThroughputKey, ThroughputRow};
    use std::sync::Arc;

    /// Oracle of the `free` memory budget: the `gpu_memory_utilization` (a share of the
    /// whole GPU, vLLM's meaning) that leaves the KV cache `fraction` of the memory free
    /// after the weights, activations and runtime of `plan` (TRT-LLM's
    /// `kv_cache_free_gpu_mem_fraction`):
    /// `u · C − R = f · (C − R)` with `R` the rest, so `u = f + (1 − f) · R / C`. At most 1.
    fn utilization_for_free_fraction(plan: &crate::memory::MemoryPlan, fraction: f64) -> f64 {
        let rest =
            plan.weight_bytes_per_gpu + plan.activation_bytes_per_gpu + plan.overhead_bytes_per_gpu;
        let capacity = plan.gpu_memory_bytes;
        if capacity <= 0.0 {
            return fraction;
        }
        (fraction + (1.0 - fraction) * rest / capacity).min(1.0)
    }

    fn group(model: &str, gpu: &str, tp: u32, precision: Precision) -> ThroughputGroup {
        ThroughputGroup {
            key: ThroughputKey {
                model: model.into(),
                gpu: gpu.into(),
                num_gpus: tp,
                tp,
                pp: 1,
                precision,
                engine_version: None,
            },
            model: trtllm_model(model).unwrap(),
            hardware: trtllm_hardware(gpu).unwrap(),
            rows: vec![
                ThroughputRow {
                    line: 2,
                    isl: 100,
                    osl: 20,
                    num_requests: 40,
                    output_tokens_per_s: 1000.0,
                    engine_limits: None,
                },
                ThroughputRow {
                    line: 3,
                    isl: 1000,
                    osl: 60,
                    num_requests: 10,
                    output_tokens_per_s: 500.0,
                    engine_limits: None,
                },
            ],
            run: Default::default(),
        }
    }

    #[test]
    fn requests_map_formats_parallelism_and_length() {
        let g = group("nvidia/Qwen3-235B-A22B-FP8|FP4", "B200", 8, Precision::Fp4);
        let r = group_request(&g, &DeploymentRequest::default(), true);
        assert_eq!(r.model.as_deref(), Some("Qwen/Qwen3-235B-A22B"));
        assert_eq!(r.hardware.as_deref(), Some("B200"));
        assert_eq!(
            (
                r.tensor_parallel_size,
                r.data_parallel_size,
                r.enable_expert_parallel
            ),
            (Some(1), Some(8), true)
        );
        assert_eq!(r.quantization.as_deref(), Some("nvfp4"));
        assert_eq!(r.kv_cache_dtype.as_deref(), Some("fp8"));
        assert_eq!(r.max_model_len, Some(1060));
        let d = Deployment::resolve(&r, &DataPaths::builtin()).unwrap();
        assert_eq!((d.tp, d.dp, d.ep), (1, 8, 8));

        // Dense: the listed TP; flags win.
        let g = group(
            "nvidia/Llama-3.3-70B-Instruct-FP8|FP4",
            "H100",
            2,
            Precision::Fp8,
        );
        let base = DeploymentRequest {
            kv_cache_dtype: Some("bf16".into()),
            ..DeploymentRequest::default()
        };
        let r = group_request(&g, &base, false);
        assert_eq!(r.tensor_parallel_size, Some(2));
        assert_eq!(r.data_parallel_size, None);
        assert!(!r.enable_expert_parallel);
        assert_eq!(r.quantization.as_deref(), Some("fp8"));
        assert_eq!(r.kv_cache_dtype.as_deref(), Some("bf16"));
    }

    #[test]
    fn free_fraction_converts_to_whole_gpu_utilization() {
        let paths = DataPaths::builtin();
        let req = DeploymentRequest {
            model: Some("meta-llama/Llama-3.1-8B-Instruct".into()),
            hardware: Some("h100".into()),
            max_model_len: Some(4096),
            gpu_memory_utilization: Some(0.95),
            ..DeploymentRequest::default()
        };
        let d = Deployment::resolve(&req, &paths).unwrap();
        let mm = crate::memory::MemoryModel::load(&paths.perf_model).unwrap();
        let opts = crate::memory::MemoryOptions::default();
        let plan = crate::memory::plan(&d, &mm, &opts);
        let u = utilization_for_free_fraction(&plan, 0.95);
        assert!(u > 0.95 && u < 1.0, "{u}");
        // The KV cache is then 95 % of what the rest leaves.
        let d2 = Deployment::resolve(
            &DeploymentRequest {
                gpu_memory_utilization: Some(u),
                ..req
            },
            &paths,
        )
        .unwrap();
        let p2 = crate::memory::plan(&d2, &mm, &opts);
        let rest =
            p2.weight_bytes_per_gpu + p2.activation_bytes_per_gpu + p2.overhead_bytes_per_gpu;
        let want = 0.95 * (p2.gpu_memory_bytes - rest);
        assert!(
            (p2.kv_cache_bytes_per_gpu - want).abs() < 1.0,
            "{} vs {want}",
            p2.kv_cache_bytes_per_gpu
        );
    }

    #[test]
    fn the_trtllm_stacks_free_budget_is_the_converted_whole_gpu_share() {
        // Oracle: the whole-GPU share of `utilization_for_free_fraction` on a vLLM stack
        // leaves the KV cache the bytes the `trtllm` stack gives it at the free
        // fraction itself (its `[memory] kv_cache_budget = "free"`), so TRT-LLM rows
        // replay the same either way.
        let paths = DataPaths::builtin();
        let mm = crate::memory::MemoryModel::load(&paths.perf_model).unwrap();
        let opts = crate::memory::MemoryOptions::default();
        for (model, gpu, tp, q) in [
            ("meta-llama/Llama-3.1-8B-Instruct", "h100", 1, "fp8"),
            ("deepseek-ai/DeepSeek-V3", "b200", 4, "fp8"),
        ] {
            let req = |stack: &str, u: f64| DeploymentRequest {
                model: Some(model.into()),
                hardware: Some(gpu.into()),
                tensor_parallel_size: Some(tp),
                quantization: Some(q.into()),
                kv_cache_dtype: Some("fp8".into()),
                max_model_len: Some(9216),
                gpu_memory_utilization: Some(u),
                serving_stack: Some(stack.into()),
                ..DeploymentRequest::default()
            };
            let plan = |r: &DeploymentRequest| {
                crate::memory::plan(&Deployment::resolve(r, &paths).unwrap(), &mm, &opts)
            };
            let free = plan(&req("trtllm", 0.9));
            let u = utilization_for_free_fraction(&plan(&req("vllm-v1", 0.9)), 0.9);
            let total = plan(&req("vllm-v1", u));
            assert!(
                (free.kv_cache_bytes_per_gpu - total.kv_cache_bytes_per_gpu).abs() < 1.0,
                "{model}: {} vs {}",
                free.kv_cache_bytes_per_gpu,
                total.kv_cache_bytes_per_gpu
            );
            assert_eq!(free.num_gpu_blocks, total.num_gpu_blocks, "{model}");
            // A request's own budget wins over its stack's (the replay of TRT-LLM rows
            // on another stack).
            let replay = plan(&DeploymentRequest {
                kv_cache_budget: Some(crate::stack::KvCacheBudget::Free),
                ..req("vllm-v1", 0.9)
            });
            assert_eq!(replay.num_gpu_blocks, free.num_gpu_blocks, "{model}");
        }
    }

    fn fixed_setup(blocks: u32) -> ReplicaSetup {
        fixed_setup_chunked(blocks, None)
    }

    /// [`fixed_setup`] with chunked prefill as `chunked` says (none: the stack's).
    fn fixed_setup_chunked(blocks: u32, chunked: Option<bool>) -> ReplicaSetup {
        let paths = DataPaths::builtin();
        let d = Deployment::resolve(
            &DeploymentRequest {
                max_model_len: Some(4096),
                ..DeploymentRequest::default()
            },
            &paths,
        )
        .unwrap();
        let mm = crate::memory::MemoryModel::load(&paths.perf_model).unwrap();
        let ov = EngineOverrides {
            num_gpu_blocks_override: Some(blocks),
            enable_chunked_prefill: chunked,
            ..engine_overrides(&EngineOverrides::default())
        };
        // 1 ms per iteration plus 10 µs per prefill token and 100 µs per decode.
        let lat = Arc::new(FixedLatency::from_micros(1000, 10, 100));
        ReplicaSetup::with_latency(d, &ov, &mm, lat).unwrap()
    }

    #[test]
    fn kv_cap_follows_the_full_sequence() {
        let s = fixed_setup(100);
        // 120 tokens = 8 blocks of 16 → 12 requests; 1060 tokens = 67 blocks → 1.
        assert_eq!(no_evict_max_num_seqs(&s, 100, 20), 12);
        assert_eq!(no_evict_max_num_seqs(&s, 1000, 60), 1);
        assert_eq!(no_evict_max_num_seqs(&s, 5000, 60), 1);
        let big = fixed_setup(10_000_000);
        assert_eq!(no_evict_max_num_seqs(&big, 100, 20), CUDA_GRAPH_MAX_BATCH);
    }

    #[test]
    fn a_group_replays_every_row_without_preemption() {
        let s = fixed_setup(100);
        let g = group(
            "nvidia/Llama-3.1-8B-Instruct-FP8",
            "H100",
            1,
            Precision::Fp8,
        );
        let run = || GroupRun {
            name: "g",
            source: std::path::Path::new("t.csv"),
            setup: &s,
            replicas: 1,
            notes: vec!["from setup".into()],
        };
        let capped = RowLimits {
            cap_to_kv: true,
            run_limits: false,
        };
        let v = validate_group(run(), capped, &g).unwrap();
        assert_eq!(v.kind, ValidationKind::OfflineThroughput);
        assert_eq!(v.notes[0], "from setup");
        assert_eq!(
            v.rows.keys[0],
            vec!["2", "100", "20", "40", "12", "8192", "0"]
        );
        assert_eq!(v.rows.keys[1][4], "1");
        let (sim, meas) = v.rows.pairs(Metric::OutputThroughput).unwrap();
        assert_eq!(meas, [1000.0, 500.0]);
        // Row 2 runs its 10 requests one at a time: prefill 1 ms + 1000 × 10 µs, then
        // 59 decodes of 1.1 ms each → 600 tokens in 10 × 75.9 ms.
        let want = 600.0 / (10.0 * (0.011 + 59.0 * 0.0011));
        assert!((sim[1] - want).abs() / want < 1e-9, "{} vs {want}", sim[1]);
        assert!(sim[0].is_finite() && sim[0] > 0.0);
        let e = v.metrics[0].errors.unwrap();
        assert_eq!(e.count, 2);
        // Without the cap the engine admits more than fit and preempts.
        let u = validate_group(run(), RowLimits::default(), &g).unwrap();
        assert_ne!(u.rows.keys[0][6], "0");
        // A TensorRT engine's build limits: 12 requests fit at 120 tokens → a batch of
        // 64 (the heuristic's least) capped by the KV to 12, and a budget of 2048.
        let built = validate_group(
            run(),
            RowLimits {
                cap_to_kv: true,
                run_limits: true,
            },
            &g,
        )
        .unwrap();
        assert_eq!(built.rows.keys[0][4..6], ["12", "2048"]);
        assert!(built
            .notes
            .iter()
            .any(|n| n.contains("trtllm-bench derives")));
        // Limits the table gives replace the heuristic's on their row (a batch of 5 and
        // 512 tokens on the first row; the second keeps the heuristic's).
        let mut given = g.clone();
        given.rows[0].engine_limits = Some(EngineLimits {
            max_batch_size: 5,
            max_num_tokens: 512,
        });
        let v = validate_group(
            run(),
            RowLimits {
                cap_to_kv: true,
                run_limits: true,
            },
            &given,
        )
        .unwrap();
        assert_eq!(v.rows.keys[0][4..6], ["5", "512"]);
        assert_eq!(v.rows.keys[1][4..6], built.rows.keys[1][4..6]);
        assert!(v
            .notes
            .iter()
            .any(|n| n.contains("as the table gives them (1 of 2 rows")));
    }

    /// The limits of a row `trtllm-bench` was given none for, worked by hand: 100,000
    /// blocks of 16 hold 290.9 requests of 5,000 + 500 tokens, a batch of 128 × 3 = 384
    /// and a budget of 290.9 × 11 = 3,200 → 256 × 13 = 3,328 tokens. A TensorRT engine
    /// keeps them; the PyTorch backend without chunked context raises the budget to
    /// the prompt plus the batch, 5,384; over two pipeline stages it sizes each
    /// stage's batch (145.5 → 160; 1,600 → 2,048 tokens, 5,160 with the prompt) and
    /// keeps two stages' worth in flight.
    #[test]
    fn bench_limits_follow_the_engine_flow_and_chunking() {
        let pytorch = |pp: u32| {
            let mut g = group(
                "nvidia/Llama-3.1-8B-Instruct-FP8",
                "H100",
                1,
                Precision::Fp8,
            );
            g.key.pp = pp;
            g
        };
        let mut engine = pytorch(1);
        engine.key.engine_version = Some("0.17.0".into());
        let unchunked = fixed_setup_chunked(100_000, Some(false));
        let chunked = fixed_setup_chunked(100_000, Some(true));
        assert_eq!(bench_limits(&unchunked, &engine, 5000, 500), (384, 3328));
        assert_eq!(bench_limits(&chunked, &pytorch(1), 5000, 500), (384, 3328));
        assert_eq!(
            bench_limits(&unchunked, &pytorch(1), 5000, 500),
            (384, 5384)
        );
        assert_eq!(
            bench_limits(&unchunked, &pytorch(2), 5000, 500),
            (320, 5160)
        );
    }

    /// `trtllm-bench build`'s rounding (`tuning.py` `finetune_setting`), worked by hand.
    #[test]
    fn engine_build_limits_round_as_trtllm_bench_does() {
        // 3,959 requests at 128 / 128: 256 × ⌈3959 / 256⌉ = 4096; 7,918 tokens →
        // 512 × ⌈7918 / 512⌉ = 8192.
        assert_eq!(engine_build_limits(3959.0, 128, 128, 1), (4096, 8192));
        // 465 at 128 / 2048: 128 × ⌈465 / 128⌉ = 512; 494 tokens → at least 2048.
        assert_eq!(engine_build_limits(465.0, 128, 2048, 1), (512, 2048));
        // 40 at 2048 / 128: at least 64; 680 tokens → 2048.
        assert_eq!(engine_build_limits(40.0, 2048, 128, 1), (64, 2048));
        // 300 at 5000 / 500 over PP 2: 150 → 32 × ⌈150 / 32⌉ = 160; 1,650 → 2048.
        assert_eq!(engine_build_limits(300.0, 5000, 500, 2), (160, 2048));
        // 10,000 requests cap at 4,096; 2048 / 128 → 69,632 tokens cap at 32,768.
        assert_eq!(engine_build_limits(10_000.0, 2048, 128, 1), (4096, 32768));
        // 1,000 at 1000 / 1000: 128 × 8 = 1024; 2,000 → 2048; 2,000 at 2048 / 2048 →
        // 256 × 8 = 2048 and 4,000 → 256 × 16 = 4096; 5,000 tokens → 512 × 10 = 5120.
        assert_eq!(engine_build_limits(1000.0, 1000, 1000, 1), (1024, 2048));
        assert_eq!(engine_build_limits(2000.0, 2048, 2048, 1), (2048, 4096));
        assert_eq!(engine_build_limits(2500.0, 128, 128, 1), (2560, 5120));
    }

    /// A release before 0.19 ran a TensorRT engine: its stack, experts split by TP,
    /// FP16 rows unquantized with a 16-bit KV cache.
    #[test]
    fn a_tensorrt_engine_release_takes_its_stack_and_layout() {
        let mut g = group("Mixtral 8x7B", "H100 80GB HBM3", 4, Precision::Fp16);
        g.key.engine_version = Some("0.17.0".into());
        assert_eq!(g.key.flow(), EngineFlow::TensorRtEngine);
        let r = group_request(&g, &DeploymentRequest::default(), true);
        assert_eq!(r.serving_stack.as_deref(), Some("trtllm-engine"));
        assert_eq!(
            (
                r.tensor_parallel_size,
                r.data_parallel_size,
                r.enable_expert_parallel
            ),
            (Some(4), None, false)
        );
        assert_eq!(r.quantization.as_deref(), Some("none"));
        assert_eq!(r.dtype.as_deref(), Some("float16"));
        assert_eq!(r.kv_cache_dtype.as_deref(), Some("auto"));
        g.key.engine_version = Some("0.12.0".into());
        assert_eq!(g.key.stack(), "trtllm-engine");
        g.key.engine_version = Some("1.0.0rc3".into());
        assert_eq!(g.key.flow(), EngineFlow::PyTorch);
        let r = group_request(&g, &DeploymentRequest::default(), true);
        assert_eq!(r.serving_stack.as_deref(), Some("trtllm"));
        assert!(r.enable_expert_parallel);
    }
}
