//! The stack file format (`perf_model/stacks/<name>.toml`; see `perf_model/stacks/README.md`)
//! and its checks.

use super::{
    ApiServer, AttentionFallback, CustomAllReduce, Execution, GraphMode, HostCost, HostOverlap,
    KernelGeneration, KvCacheBudget, MixedBatchAttention, PagedAttention, SchedulerDefaults,
    ServingStack, StackGemm, StackMoe,
};
use crate::engine::config::KvReservation;
use crate::engine::SchedulerKind;
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StackFile {
    description: String,
    scheduler: SchedulerSection,
    cuda_graphs: GraphSection,
    host: HostSection,
    api_server: ApiSection,
    custom_all_reduce: Option<AllReduceSection>,
    #[serde(default)]
    platforms: Vec<String>,
    framework: Option<String>,
    paged_attention: Option<PagedAttentionSection>,
    attention_fallback: Option<AttentionFallbackSection>,
    kernel_generation: Option<KernelGeneration>,
    mixed_batch_attention: Option<MixedBatchAttention>,
    gemm: Option<GemmSection>,
    memory: Option<MemorySection>,
    moe: Option<MoeSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoeSection {
    #[serde(default)]
    quantize_before_dispatch: bool,
    #[serde(default)]
    dispatch_router_logits: bool,
    #[serde(default)]
    dispatch_bytes_per_selected_expert: f64,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemorySection {
    kv_cache_budget: KvCacheBudget,
    #[allow(dead_code)]
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GemmSection {
    bandwidth_efficiency: Option<f64>,
    prior_bandwidth_efficiency: Option<f64>,
    source: String,
    #[serde(default)]
    fitted_on: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttentionFallbackSection {
    sliding_window_until: Option<String>,
    #[serde(default)]
    fp8_kv_cache: bool,
    block_size_multiple_of: Option<u32>,
    x86_64_only_until: Option<String>,
    repeat_read_fraction: f64,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PagedAttentionSection {
    decode_bandwidth_efficiency: Option<f64>,
    #[serde(default)]
    reads_kv_per_query_head: bool,
    prior_decode_bandwidth_efficiency: Option<f64>,
    source: String,
    #[serde(default)]
    fitted_on: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchedulerSection {
    kind: SchedulerKind,
    max_num_seqs: u32,
    max_num_batched_tokens: u32,
    chunked_prefill_budget: Option<u32>,
    chunked_prefill_budget_until: Option<String>,
    enable_chunked_prefill: bool,
    enable_prefix_caching: bool,
    num_scheduler_steps: u32,
    block_size: u32,
    async_scheduling: bool,
    #[allow(dead_code)]
    source: String,
    large_device: Option<LargeDeviceSection>,
    #[serde(default)]
    small_device: Vec<SmallDeviceSection>,
    long_context: Option<LongContextSection>,
    kv_reservation: Option<KvReservationSection>,
    #[serde(default)]
    long_prompts: crate::engine::LongPrompts,
    #[serde(default)]
    seqs_over_budget: crate::engine::SeqsOverBudget,
    #[serde(default)]
    max_num_seqs_scope: crate::engine::SeqLimitScope,
    offline: Option<OfflineSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfflineSection {
    max_num_seqs: u32,
    max_num_batched_tokens: u32,
    large_device_max_num_seqs: Option<u32>,
    large_device_max_num_batched_tokens: Option<u32>,
    #[allow(dead_code)]
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SmallDeviceSection {
    below_memory_gib: f64,
    max_num_batched_tokens: u32,
    #[allow(dead_code)]
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KvReservationSection {
    initial_ratio: f64,
    min_ratio: f64,
    decay_steps: u32,
    clip_output_tokens: Option<u32>,
    retract_decode_steps: u32,
    #[allow(dead_code)]
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongContextSection {
    since_version: Option<String>,
    until_version: Option<String>,
    above_max_model_len: u32,
    #[serde(default)]
    unless_prefix_caching: bool,
    #[allow(dead_code)]
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LargeDeviceSection {
    since_version: Option<String>,
    min_memory_gib: f64,
    #[serde(default)]
    exclude_names: Vec<String>,
    max_num_seqs: u32,
    max_num_batched_tokens: u32,
    #[allow(dead_code)]
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphSection {
    mode: GraphMode,
    #[serde(default)]
    capture_sizes: Vec<u32>,
    /// `[from, to, step]`, `to` included.
    #[serde(default)]
    capture_ranges: Vec<[u32; 3]>,
    max_capture_context: Option<u32>,
    /// The largest captured size where no `[[cuda_graphs.by_device]]` rule applies.
    max_capture_size: Option<u32>,
    #[serde(default)]
    by_device: Vec<GraphLimitSection>,
    by_device_since: Option<String>,
    kernel_launch_us: f64,
    graph_launch_us: f64,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphLimitSection {
    below_memory_gib: Option<f64>,
    #[serde(default = "one")]
    min_tp: u32,
    max_capture_size: u32,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostSection {
    step_us: f64,
    per_sequence_us: f64,
    per_prefill_us: f64,
    overlap: HostOverlap,
    prior_step_us: f64,
    prior_source: String,
    source: String,
    #[serde(default)]
    fitted_on: Vec<String>,
    #[serde(default)]
    chosen_on: Vec<String>,
    #[serde(default)]
    per_kernel_us: f64,
    prior_per_kernel_us: Option<f64>,
    #[serde(default)]
    per_sequence_serial_us: f64,
    prior_per_sequence_serial_us: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiSection {
    request_us: f64,
    per_prompt_token_us: f64,
    per_token_out_us: f64,
    #[serde(default)]
    handlers: u32,
    prior_request_us: f64,
    source: String,
    #[serde(default)]
    fitted_on: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllReduceSection {
    max_bytes: f64,
    world_sizes: Vec<u32>,
    one_shot_max_bytes: Vec<(u32, f64)>,
    links: Vec<String>,
    #[serde(default)]
    pcie_world_sizes: Vec<u32>,
    latency_us: f64,
    bandwidth_efficiency: f64,
    source: String,
    #[serde(default)]
    fitted_on: Vec<String>,
    measured_implementation: Option<String>,
}

/// Read and check the stack file at `path`.
pub(super) fn read(path: &Path) -> Result<ServingStack> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let f: StackFile =
        toml::from_str(&text).map_err(|e| crate::error::toml_error(path, &text, &e))?;
    let bad = |key: &str, msg: String| Error::input(path, Some(key), msg);
    let non_negative = |key: &str, v: f64| -> Result<f64> {
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(bad(key, format!("must be a finite number ≥ 0, got {v}")))
        }
    };
    let at_least_one = |key: &str, v: u32| -> Result<u32> {
        if v >= 1 {
            Ok(v)
        } else {
            Err(bad(key, "must be at least 1".into()))
        }
    };
    let s = &f.scheduler;
    for (key, v) in [
        ("scheduler.max_num_seqs", s.max_num_seqs),
        ("scheduler.max_num_batched_tokens", s.max_num_batched_tokens),
        ("scheduler.num_scheduler_steps", s.num_scheduler_steps),
        ("scheduler.block_size", s.block_size),
        (
            "scheduler.chunked_prefill_budget",
            s.chunked_prefill_budget.unwrap_or(1),
        ),
    ] {
        at_least_one(key, v)?;
    }
    if let Some(l) = &s.large_device {
        non_negative("scheduler.large_device.min_memory_gib", l.min_memory_gib)?;
        for (key, v) in [
            ("scheduler.large_device.max_num_seqs", l.max_num_seqs),
            (
                "scheduler.large_device.max_num_batched_tokens",
                l.max_num_batched_tokens,
            ),
        ] {
            at_least_one(key, v)?;
        }
    }
    if let Some(o) = &s.offline {
        for (key, v) in [
            ("scheduler.offline.max_num_seqs", Some(o.max_num_seqs)),
            (
                "scheduler.offline.max_num_batched_tokens",
                Some(o.max_num_batched_tokens),
            ),
            (
                "scheduler.offline.large_device_max_num_seqs",
                o.large_device_max_num_seqs,
            ),
            (
                "scheduler.offline.large_device_max_num_batched_tokens",
                o.large_device_max_num_batched_tokens,
            ),
        ] {
            at_least_one(key, v.unwrap_or(1))?;
        }
    }
    for (key, v) in [
        (
            "scheduler.large_device.since_version",
            s.large_device
                .as_ref()
                .and_then(|l| l.since_version.as_deref()),
        ),
        (
            "scheduler.long_context.until_version",
            s.long_context
                .as_ref()
                .and_then(|l| l.until_version.as_deref()),
        ),
        (
            "scheduler.chunked_prefill_budget_until",
            s.chunked_prefill_budget_until.as_deref(),
        ),
        (
            "scheduler.long_context.since_version",
            s.long_context
                .as_ref()
                .and_then(|l| l.since_version.as_deref()),
        ),
    ] {
        if v.is_some_and(|v| super::version::numeric_parts(v).is_none()) {
            return Err(bad(
                key,
                format!(
                    "`{}` is not a version (dotted numbers, as 0.5.3)",
                    v.unwrap_or("")
                ),
            ));
        }
    }
    let mut small_device = Vec::with_capacity(s.small_device.len());
    for t in &s.small_device {
        non_negative(
            "scheduler.small_device.below_memory_gib",
            t.below_memory_gib,
        )?;
        small_device.push(super::SmallDeviceBudget {
            below_memory_gib: t.below_memory_gib,
            max_num_batched_tokens: at_least_one(
                "scheduler.small_device.max_num_batched_tokens",
                t.max_num_batched_tokens,
            )?,
        });
    }
    if small_device
        .windows(2)
        .any(|w| w[0].below_memory_gib >= w[1].below_memory_gib)
    {
        return Err(bad(
            "scheduler.small_device.below_memory_gib",
            "the tiers must be listed by increasing memory".into(),
        ));
    }
    let kv_reservation = s.kv_reservation.as_ref().map(|r| KvReservation {
        initial_ratio: r.initial_ratio,
        min_ratio: r.min_ratio,
        decay_steps: r.decay_steps,
        clip_output_tokens: r.clip_output_tokens,
        retract_decode_steps: r.retract_decode_steps,
    });
    if let Some(r) = &kv_reservation {
        r.check().map_err(|e| bad("scheduler.kv_reservation", e))?;
    }
    let g = &f.cuda_graphs;
    let mut sizes = g.capture_sizes.clone();
    for [from, to, step] in &g.capture_ranges {
        if *step == 0 || from > to {
            return Err(bad(
                "cuda_graphs.capture_ranges",
                format!(
                    "[{from}, {to}, {step}] is not [from, to, step] with from ≤ to and step ≥ 1"
                ),
            ));
        }
        sizes.extend((*from..=*to).step_by(*step as usize));
    }
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.first() == Some(&0) {
        return Err(bad("cuda_graphs.capture_sizes", "sizes must be ≥ 1".into()));
    }
    if g.mode != GraphMode::None && sizes.is_empty() {
        return Err(bad(
            "cuda_graphs.capture_sizes",
            format!("mode {:?} needs at least one captured size", g.mode),
        ));
    }
    let mut by_device = Vec::new();
    for l in &g.by_device {
        if let Some(m) = l.below_memory_gib {
            non_negative("cuda_graphs.by_device.below_memory_gib", m)?;
        }
        by_device.push(super::CaptureLimit {
            below_memory_gib: l.below_memory_gib,
            min_tp: at_least_one("cuda_graphs.by_device.min_tp", l.min_tp)?,
            max_size: at_least_one("cuda_graphs.by_device.max_capture_size", l.max_capture_size)?,
        });
    }
    if let Some(m) = g.max_capture_size {
        at_least_one("cuda_graphs.max_capture_size", m)?;
    }
    let h = &f.host;
    let a = &f.api_server;
    let execution = Execution {
        graph_mode: g.mode,
        capture_sizes: if g.mode == GraphMode::None {
            Vec::new()
        } else {
            sizes
        },
        max_capture_context: g.max_capture_context,
        capture_limits: super::CaptureLimits {
            default_max: g.max_capture_size,
            by_device,
            since_version: g.by_device_since.clone(),
        },
        captured_cache: Default::default(),
        kernel_launch_us: non_negative("cuda_graphs.kernel_launch_us", g.kernel_launch_us)?,
        graph_launch_us: non_negative("cuda_graphs.graph_launch_us", g.graph_launch_us)?,
        host: HostCost {
            step_us: non_negative("host.step_us", h.step_us)?,
            per_sequence_us: non_negative("host.per_sequence_us", h.per_sequence_us)?,
            per_prefill_us: non_negative("host.per_prefill_us", h.per_prefill_us)?,
            overlap: h.overlap,
            source: h.source.clone(),
            fitted_on: h.fitted_on.clone(),
            chosen_on: h.chosen_on.clone(),
            prior_step_us: non_negative("host.prior_step_us", h.prior_step_us)?,
            prior_source: h.prior_source.clone(),
            per_kernel_us: non_negative("host.per_kernel_us", h.per_kernel_us)?,
            prior_per_kernel_us: h
                .prior_per_kernel_us
                .map(|v| non_negative("host.prior_per_kernel_us", v))
                .transpose()?,
            per_sequence_serial_us: non_negative(
                "host.per_sequence_serial_us",
                h.per_sequence_serial_us,
            )?,
            prior_per_sequence_serial_us: h
                .prior_per_sequence_serial_us
                .map(|v| non_negative("host.prior_per_sequence_serial_us", v))
                .transpose()?,
        },
        source: g.source.clone(),
    };
    let api_server = ApiServer {
        request_us: non_negative("api_server.request_us", a.request_us)?,
        per_prompt_token_us: non_negative("api_server.per_prompt_token_us", a.per_prompt_token_us)?,
        per_token_out_us: non_negative("api_server.per_token_out_us", a.per_token_out_us)?,
        handlers: a.handlers,
        source: a.source.clone(),
        fitted_on: a.fitted_on.clone(),
        prior_request_us: non_negative("api_server.prior_request_us", a.prior_request_us)?,
    };
    let custom_all_reduce = match &f.custom_all_reduce {
        None => None,
        Some(c) => {
            let eff = c.bandwidth_efficiency;
            if !(eff > 0.0 && eff <= 1.0) {
                return Err(bad(
                    "custom_all_reduce.bandwidth_efficiency",
                    format!("must be in (0, 1], got {eff}"),
                ));
            }
            if c.world_sizes.iter().any(|&n| n < 2) {
                return Err(bad(
                    "custom_all_reduce.world_sizes",
                    "sizes must be ≥ 2".into(),
                ));
            }
            if let Some(n) = c
                .pcie_world_sizes
                .iter()
                .find(|n| !c.world_sizes.contains(n))
            {
                return Err(bad(
                    "custom_all_reduce.pcie_world_sizes",
                    format!("{n} is not one of world_sizes {:?}", c.world_sizes),
                ));
            }
            let mut one_shot = c.one_shot_max_bytes.clone();
            for (_, b) in &one_shot {
                non_negative("custom_all_reduce.one_shot_max_bytes", *b)?;
            }
            one_shot.sort_by_key(|(g, _)| *g);
            Some(CustomAllReduce {
                max_bytes: non_negative("custom_all_reduce.max_bytes", c.max_bytes)?,
                world_sizes: c.world_sizes.clone(),
                one_shot_max_bytes: one_shot,
                links: c.links.clone(),
                pcie_world_sizes: c.pcie_world_sizes.clone(),
                latency_us: non_negative("custom_all_reduce.latency_us", c.latency_us)?,
                bandwidth_efficiency: eff,
                source: c.source.clone(),
                fitted_on: c.fitted_on.clone(),
                measured_implementation: c.measured_implementation.clone(),
            })
        }
    };
    let fraction = |key: &str, v: f64| -> Result<f64> {
        if v > 0.0 && v <= 1.0 {
            Ok(v)
        } else {
            Err(bad(key, format!("must be in (0, 1], got {v}")))
        }
    };
    let opt_fraction = |key: &str, v: Option<f64>| v.map(|v| fraction(key, v)).transpose();
    let paged_attention = match &f.paged_attention {
        None => None,
        Some(p) => Some(PagedAttention {
            decode_bandwidth_efficiency: opt_fraction(
                "paged_attention.decode_bandwidth_efficiency",
                p.decode_bandwidth_efficiency,
            )?,
            reads_kv_per_query_head: p.reads_kv_per_query_head,
            prior_decode_bandwidth_efficiency: opt_fraction(
                "paged_attention.prior_decode_bandwidth_efficiency",
                p.prior_decode_bandwidth_efficiency,
            )?,
            source: p.source.clone(),
            fitted_on: p.fitted_on.clone(),
        }),
    };
    let attention_fallback = match &f.attention_fallback {
        None => None,
        Some(a) => Some(AttentionFallback {
            sliding_window_until: a.sliding_window_until.clone(),
            fp8_kv_cache: a.fp8_kv_cache,
            block_size_multiple_of: match a.block_size_multiple_of {
                Some(0) => {
                    return Err(Error::Config(format!(
                        "{}: attention_fallback.block_size_multiple_of must be at least 1",
                        path.display()
                    )))
                }
                m => m,
            },
            x86_64_only_until: a.x86_64_only_until.clone(),
            repeat_read_fraction: non_negative(
                "attention_fallback.repeat_read_fraction",
                a.repeat_read_fraction,
            )?,
            source: a.source.clone(),
        }),
    };
    let gemm = match &f.gemm {
        None => None,
        Some(g) => Some(StackGemm {
            bandwidth_efficiency: opt_fraction(
                "gemm.bandwidth_efficiency",
                g.bandwidth_efficiency,
            )?,
            prior_bandwidth_efficiency: opt_fraction(
                "gemm.prior_bandwidth_efficiency",
                g.prior_bandwidth_efficiency,
            )?,
            source: g.source.clone(),
            fitted_on: g.fitted_on.clone(),
        }),
    };
    Ok(ServingStack {
        name: path
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
        description: f.description,
        path: path.to_owned(),
        scheduler: SchedulerDefaults {
            kind: s.kind,
            max_num_seqs: s.max_num_seqs,
            max_num_batched_tokens: s.max_num_batched_tokens,
            chunked_prefill_budget: s.chunked_prefill_budget,
            chunked_prefill_budget_until: s.chunked_prefill_budget_until.clone(),
            enable_chunked_prefill: s.enable_chunked_prefill,
            enable_prefix_caching: s.enable_prefix_caching,
            num_scheduler_steps: s.num_scheduler_steps,
            block_size: s.block_size,
            async_scheduling: s.async_scheduling,
            large_device: s.large_device.as_ref().map(|l| super::LargeDeviceDefaults {
                since_version: l.since_version.clone(),
                min_memory_gib: l.min_memory_gib,
                exclude_names: l.exclude_names.clone(),
                max_num_seqs: l.max_num_seqs,
                max_num_batched_tokens: l.max_num_batched_tokens,
            }),
            small_device,
            long_context: s.long_context.as_ref().map(|l| super::LongContextDefaults {
                since_version: l.since_version.clone(),
                until_version: l.until_version.clone(),
                above_max_model_len: l.above_max_model_len,
                unless_prefix_caching: l.unless_prefix_caching,
            }),
            kv_reservation,
            long_prompts: s.long_prompts,
            seqs_over_budget: s.seqs_over_budget,
            max_num_seqs_scope: s.max_num_seqs_scope,
            offline: s.offline.as_ref().map(|o| super::OfflineDefaults {
                max_num_seqs: o.max_num_seqs,
                max_num_batched_tokens: o.max_num_batched_tokens,
                large_device_max_num_seqs: o.large_device_max_num_seqs,
                large_device_max_num_batched_tokens: o.large_device_max_num_batched_tokens,
            }),
        },
        execution,
        api_server,
        custom_all_reduce,
        platforms: f.platforms,
        framework: f
            .framework
            .unwrap_or_else(|| super::DEFAULT_FRAMEWORK.into()),
        paged_attention,
        attention_fallback,
        kernel_generation: f.kernel_generation,
        mixed_batch_attention: f.mixed_batch_attention,
        gemm,
        kv_cache_budget: f
            .memory
            .map_or_else(KvCacheBudget::default, |m| m.kv_cache_budget),
        moe: match &f.moe {
            None => StackMoe::default(),
            Some(m) => StackMoe {
                quantize_before_dispatch: m.quantize_before_dispatch,
                dispatch_router_logits: m.dispatch_router_logits,
                dispatch_bytes_per_selected_expert: non_negative(
                    "moe.dispatch_bytes_per_selected_expert",
                    m.dispatch_bytes_per_selected_expert,
                )?,
                source: m.source.clone(),
            },
        },
    })
}
