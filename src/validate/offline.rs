//! Offline throughput validation: replay the rows of a TensorRT-LLM offline throughput
//! table ([`throughput_table`](super::throughput_table)) through the simulated engine.
//!
//! Each row is `num_requests` requests of exactly ISL prompt and OSL output tokens,
//! all arriving at time zero, on the group's deployment; the simulated output
//! throughput is all output tokens over the time from zero to the last finish, as
//! `trtllm-bench` reports "Total Output Throughput".
//!
//! TensorRT-LLM's max-throughput engine is stood for by continuous batching with
//! chunked prefill (the vLLM V1 scheduler), with settings read from the dataset's
//! README:
//!
//! * batches up to [`CUDA_GRAPH_MAX_BATCH`] sequences and tokens (the largest CUDA-graph
//!   batch size it lists);
//! * per row, at most as many running requests as the KV cache holds at their full
//!   ISL + OSL, because TRT-LLM's default capacity scheduler (`GUARANTEED_NO_EVICT`)
//!   admits a request only when its whole sequence fits, while the simulated engine
//!   allocates on demand and would otherwise preempt;
//! * [`KV_CACHE_FREE_GPU_MEM_FRACTION`] of the memory left after weights, activations
//!   and runtime for the KV cache (the deployment's `kv_cache_budget` set to `free`,
//!   TensorRT-LLM's meaning, whatever stack times the steps).

use super::groups::GroupRun;
use super::measured::output_rate;
use super::report::{ComparisonRows, Metric, ReplayMode, Validation, ValidationKind};
use super::throughput_table::{Precision, ThroughputGroup};
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
/// Weights and activations take the checkpoint's precision (FP8 or NVFP4) and the KV
/// cache is FP8, as the ModelOpt checkpoints declare; the serving stack is `trtllm`. A mixture-of-experts model (`moe`)
/// ran with `--ep` and attention data parallelism: its listed TP becomes that many
/// attention-DP ranks of TP1 with the experts spread over all of them.
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
    if moe {
        r.tensor_parallel_size.get_or_insert(1);
        r.data_parallel_size.get_or_insert(k.tp);
        r.enable_expert_parallel = true;
    } else {
        r.tensor_parallel_size.get_or_insert(k.tp);
    }
    r.pipeline_parallel_size.get_or_insert(k.pp);
    r.quantization
        .get_or_insert_with(|| k.precision.weight_dtype().name().to_owned());
    r.kv_cache_dtype.get_or_insert_with(|| "fp8".into());
    // trtllm-bench runs the engine as a library.
    r.offline = true;
    // The rows were measured on TensorRT-LLM: its stack's graph modes, collectives and
    // host costs, unless `--serving-stack` says otherwise.
    r.serving_stack.get_or_insert_with(|| "trtllm".into());
    if r.max_model_len.is_none() {
        r.max_model_len = group.rows.iter().map(|x| x.isl.saturating_add(x.osl)).max();
    }
    r
}

/// The engine settings standing for TRT-LLM's max-throughput configuration: `base`
/// (flags) wins; vLLM V1 scheduling with chunked prefill, [`CUDA_GRAPH_MAX_BATCH`]
/// sequences and tokens per iteration, no prefix caching (the prompts are random), and
/// no KV reservation: `trtllm-bench` runs the `MAX_UTILIZATION` capacity policy
/// (`ExecutorSettingsConfig.scheduler_policy`), not the server's
/// `GUARANTEED_NO_EVICT`.
pub fn engine_overrides(base: &EngineOverrides) -> EngineOverrides {
    let mut ov = *base;
    ov.kv_reservation.get_or_insert(false);
    ov.scheduler.get_or_insert(SchedulerKind::VllmV1);
    ov.enable_chunked_prefill.get_or_insert(true);
    ov.max_num_seqs.get_or_insert(CUDA_GRAPH_MAX_BATCH);
    ov.max_num_batched_tokens
        .get_or_insert(CUDA_GRAPH_MAX_BATCH);
    ov.enable_prefix_caching.get_or_insert(false);
    ov
}

/// The running-request cap of a row: the requests whose whole `isl + osl` fits the KV
/// cache of `setup` at once (at least one), and at most `setup`'s `max_num_seqs`.
pub fn no_evict_max_num_seqs(setup: &ReplicaSetup, isl: u32, osl: u32) -> u32 {
    let e = &setup.engine;
    let blocks_per_request = isl.saturating_add(osl).div_ceil(e.block_size.max(1)).max(1);
    (e.num_gpu_blocks / blocks_per_request).clamp(1, e.max_num_seqs)
}

/// Replay every row of `group` and compare the output throughput. With `cap_to_kv`,
/// each row's running requests are capped at what its full length lets the KV cache
/// hold ([`no_evict_max_num_seqs`]; off when `--max-num-seqs` was given).
pub fn validate_group(
    run: GroupRun<'_>,
    cap_to_kv: bool,
    group: &ThroughputGroup,
) -> Result<Validation> {
    let setup = run.setup;
    let mut notes = run.notes.clone();
    notes.extend(
        [&group.model.note, &group.hardware.note]
            .into_iter()
            .flatten()
            .cloned(),
    );
    notes.push(match group.key.precision {
        Precision::Fp8 => "FP8 checkpoint: fp8 weights and activations (W8A8) in the transformer blocks, 16-bit embeddings and LM head, fp8 KV cache (the ModelOpt checkpoints declare kv_cache_quant_algo FP8); --quantization / --kv-cache-dtype override".into(),
        Precision::Fp4 => "FP4 checkpoint: NVFP4 weights and activations (W4A4, 4.5 bits per weight with the e4m3 scales) at the FP4 tensor rate, 16-bit embeddings and LM head, fp8 KV cache (the ModelOpt checkpoints declare kv_cache_quant_algo FP8); --quantization / --kv-cache-dtype override".into(),
    });
    notes.push(format!(
        "TRT-LLM's engine stood for by the simulated {} scheduler with chunked prefill, {} tokens and up to {} sequences per iteration; {}",
        setup.engine.scheduler,
        setup.engine.max_num_batched_tokens,
        setup.engine.max_num_seqs,
        if cap_to_kv {
            "per row, running requests are capped at those whose whole ISL+OSL fits the KV cache (TRT-LLM's GUARANTEED_NO_EVICT admission; the column max_num_seqs)"
        } else {
            "max_num_seqs as given"
        }
    ));
    notes.push("TensorRT-LLM is not vLLM: its kernels, CUDA graphs and per-iteration host overheads differ from the simulated ones (see the latency model)".into());
    notes.push("simulated throughput = all output tokens / time from t=0 to the last finish, as trtllm-bench's total output throughput".into());

    let mut rows = ComparisonRows {
        key_columns: vec![
            "line",
            "isl",
            "osl",
            "num_requests",
            "max_num_seqs",
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
    use crate::validate::throughput_table::{ThroughputKey, ThroughputRow};
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
                },
                ThroughputRow {
                    line: 3,
                    isl: 1000,
                    osl: 60,
                    num_requests: 10,
                    output_tokens_per_s: 500.0,
                },
            ],
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
        let v = validate_group(run(), true, &g).unwrap();
        assert_eq!(v.kind, ValidationKind::OfflineThroughput);
        assert_eq!(v.notes[0], "from setup");
        assert_eq!(v.rows.keys[0], vec!["2", "100", "20", "40", "12", "0"]);
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
        let u = validate_group(run(), false, &g).unwrap();
        assert_ne!(u.rows.keys[0][5], "0");
    }
}
