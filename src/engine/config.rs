//! Engine settings, named as vLLM names them so users can paste real flags.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The most KV blocks a replica is simulated with (2^24: 268 M tokens at 16 per block,
/// far beyond any GPU's cache; each block costs the engine bookkeeping memory).
pub const MAX_GPU_BLOCKS: u32 = 1 << 24;

/// Which scheduling policy a replica runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulerKind {
    /// vLLM V1: a token budget per step; running requests first (decodes and unfinished
    /// prefill chunks), then prefill chunks of waiting requests, FCFS.
    #[default]
    #[value(name = "vllm-v1")]
    VllmV1,
    /// vLLM V0: whole-prompt prefills first and alone unless chunked prefill is on (then
    /// decodes first and prefill chunks in the leftover budget); multi-step decoding.
    #[value(name = "vllm-v0")]
    VllmV0,
    /// SGLang: prefill batches run alone and first (decodes wait while any prompt or
    /// chunk is admitted, up to the chunked-prefill size), decode batches otherwise.
    Sglang,
    /// Orca: iteration-level scheduling, whole prompts mixed with decodes.
    Orca,
    /// Static batching: a batch is formed when the replica is idle and runs until its
    /// last request finishes; nothing joins a running batch.
    Static,
}

impl SchedulerKind {
    /// Which released KV block an allocation takes: vLLM V1's one queue of released
    /// blocks in release order (`FreeKVCacheBlockQueue`), or V0's and SGLang's blocks
    /// holding nothing cached first (`PrefixCachingBlockAllocator`'s hashless pool; the
    /// radix cache evicts only when the free pool is short). The TensorRT-LLM stacks run
    /// on the V1 scheduler and so take V1's order; their block manager's own (an LRU
    /// queue that can take blocks at its front) is not modelled separately.
    pub fn kv_eviction_order(self) -> crate::engine::kv::EvictionOrder {
        use crate::engine::kv::EvictionOrder;
        match self {
            SchedulerKind::VllmV1 => EvictionOrder::FreeQueue,
            SchedulerKind::VllmV0
            | SchedulerKind::Sglang
            | SchedulerKind::Orca
            | SchedulerKind::Static => EvictionOrder::FreeFirst,
        }
    }
}

impl std::fmt::Display for SchedulerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SchedulerKind::VllmV1 => "vllm-v1",
            SchedulerKind::VllmV0 => "vllm-v0",
            SchedulerKind::Sglang => "sglang",
            SchedulerKind::Orca => "orca",
            SchedulerKind::Static => "static",
        })
    }
}

/// What happens to a request evicted from the KV cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PreemptionMode {
    /// Drop its KV cache; its prefill (prompt plus tokens generated so far) is redone.
    Recompute,
    /// Copy its KV cache to host memory over PCIe and back when it resumes.
    Swap,
}

/// What the engine does with a prompt longer than its token budget when chunked prefill
/// is off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LongPrompts {
    /// The default budget is raised to `max_model_len` so that any admissible prompt
    /// fits one iteration (vLLM's `SchedulerConfig`).
    #[default]
    RaiseBudget,
    /// The budget stays; a prompt longer than it is turned away on arrival (TensorRT-LLM:
    /// "the sum of prompt length … should not exceed max_num_tokens").
    Reject,
}

/// What `max_num_seqs` bounds in a replica of several pipeline stages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeqLimitScope {
    /// The requests running in the replica, however many batches are in flight (vLLM
    /// V1: one scheduler feeds every stage).
    #[default]
    Replica,
    /// Each batch in flight: up to `max_num_seqs` × stages requests run, and each
    /// micro-batch takes up to `max_num_seqs` of those not already in flight
    /// (TensorRT-LLM: a capacity scheduler of `max_batch_size` × micro-batches, one
    /// micro-batch per pipeline stage, and a micro-batch scheduler of `max_batch_size`).
    MicroBatch,
}

/// What the engine does when its sequence limit is above its token budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeqsOverBudget {
    /// Nothing: the budget alone limits each iteration (SGLang, TensorRT-LLM).
    #[default]
    Allow,
    /// A default sequence limit falls to a budget given on the command line; a limit
    /// set above it is an error (vLLM V1: `EngineArgs` takes `min(default,
    /// max_num_batched_tokens)`, `SchedulerConfig` refuses the rest).
    LowerDefault,
    /// An error, default or not (vLLM V0's `SchedulerConfig`).
    Reject,
}

/// The settings of one replica's engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    /// Scheduling policy.
    pub scheduler: SchedulerKind,
    /// Most sequences in one iteration (`--max-num-seqs`).
    pub max_num_seqs: u32,
    /// Most tokens in one iteration (`--max-num-batched-tokens`).
    pub max_num_batched_tokens: u32,
    /// Split long prompts into chunks that share iterations with decodes.
    pub enable_chunked_prefill: bool,
    /// Decode iterations run per scheduling decision (vLLM V0 multi-step); tokens are
    /// streamed once per group.
    pub num_scheduler_steps: u32,
    /// Tokens per KV block (`--block-size`).
    pub block_size: u32,
    /// KV blocks available on the replica (from the memory plan).
    pub num_gpu_blocks: u32,
    /// Longest sequence (prompt + output) accepted (`--max-model-len`).
    pub max_model_len: u32,
    /// Reuse KV blocks of identical prompt prefixes (`--enable-prefix-caching`).
    pub enable_prefix_caching: bool,
    /// What preemption does (`--preemption-mode`).
    pub preemption_mode: PreemptionMode,
    /// KV bytes per token on one GPU of the replica (for swap transfer times).
    pub kv_bytes_per_token: f64,
    /// Host-device bandwidth for swapping, bytes per second per direction.
    pub swap_bandwidth_bytes_per_s: f64,
    /// Pipeline stages of the replica: up to this many batches are in flight at once,
    /// one per stage, as vLLM's batch queue does with pipeline parallelism.
    #[serde(default = "one")]
    pub pipeline_stages: u32,
    /// What `max_num_seqs` bounds when there are several pipeline stages.
    #[serde(default, skip_serializing_if = "is_replica_scope")]
    pub max_num_seqs_scope: SeqLimitScope,
    /// Asynchronous scheduling (`--async-scheduling`, vLLM ≥ 0.14 default): iteration
    /// k+1 is scheduled when iteration k starts, so a request that arrives while an
    /// iteration runs waits for the next one to finish before it is first scheduled.
    #[serde(default)]
    pub async_scheduling: bool,
    /// KV the scheduler keeps for the running requests' future tokens before it admits
    /// another (SGLang); none: a request is admitted whenever its prompt fits (vLLM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_reservation: Option<KvReservation>,
    /// Prompts longer than the token budget without chunked prefill.
    #[serde(default, skip_serializing_if = "is_raise_budget")]
    pub long_prompts: LongPrompts,
    /// SGLang's `--enable-mixed-chunk`: running decodes join the prefill batch instead
    /// of waiting for it (SGLang scheduler only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enable_mixed_chunk: bool,
    /// SGLang's `--max-prefill-tokens`: no further prompt joins a prefill batch once the
    /// batch's tokens (decodes included when mixed) reach this; the last one admitted
    /// may overshoot it (SGLang scheduler only; none: the chunk budget alone, as with
    /// SGLang's default of 16,384, never below its chunk size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prefill_tokens: Option<u32>,
    /// SGLang's `--scheduler-recv-interval`: the scheduler takes new requests only every
    /// this many decode iterations (at once after prompt work or when idle;
    /// [`crate::engine::recv_skipper`]); 1 polls every iteration (SGLang scheduler
    /// only).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub scheduler_recv_interval: u32,
    /// A sequence limit above the token budget.
    #[serde(default, skip_serializing_if = "is_allow")]
    pub seqs_over_budget: SeqsOverBudget,
}

fn is_allow(x: &SeqsOverBudget) -> bool {
    *x == SeqsOverBudget::Allow
}

fn is_replica_scope(x: &SeqLimitScope) -> bool {
    *x == SeqLimitScope::Replica
}

fn is_raise_budget(x: &LongPrompts) -> bool {
    *x == LongPrompts::RaiseBudget
}

/// Admission control that keeps KV for the running requests' future tokens (SGLang's
/// `PrefillAdder` and `new_token_ratio`; TensorRT-LLM's `GUARANTEED_NO_EVICT` capacity
/// scheduler is the case of a ratio of 1, uncapped): a waiting request is admitted only
/// if the free KV covers its prompt and its output (capped at `clip_output_tokens`,
/// when given) after every running request has set aside `ratio` of its remaining
/// output (capped likewise). The ratio starts at `initial_ratio` and falls by
/// `(initial_ratio − min_ratio) / decay_steps` with every decode batch down to
/// `min_ratio`; a decode batch that runs out of KV retracts (preempts) requests and
/// sets it to `(Σ decoded + retract_decode_steps × n) / Σ output` of the `n` survivors,
/// at most 1.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct KvReservation {
    /// Share of the remaining output set aside at start.
    pub initial_ratio: f64,
    /// The least share set aside.
    pub min_ratio: f64,
    /// Decode batches over which the share falls from the initial to the least.
    pub decay_steps: u32,
    /// Output tokens counted at most per request, tokens (none: all of them).
    pub clip_output_tokens: Option<u32>,
    /// Decode steps of headroom per surviving request after a retraction.
    pub retract_decode_steps: u32,
}

impl KvReservation {
    /// How much the share falls per decode batch.
    pub fn decay_per_step(&self) -> f64 {
        (self.initial_ratio - self.min_ratio) / f64::from(self.decay_steps)
    }

    /// Check the figures; the message says what is wrong.
    pub fn check(&self) -> std::result::Result<(), String> {
        let ok = self.min_ratio > 0.0
            && self.min_ratio <= self.initial_ratio
            && self.initial_ratio <= 1.0
            && self.decay_steps >= 1;
        if ok {
            Ok(())
        } else {
            Err(format!(
                "need 0 < min_ratio <= initial_ratio <= 1 and decay_steps >= 1 (got {}, {}, {})",
                self.min_ratio, self.initial_ratio, self.decay_steps
            ))
        }
    }
}

fn one() -> u32 {
    1
}

fn is_one(x: &u32) -> bool {
    *x == 1
}

impl EngineConfig {
    /// vLLM's defaults for `scheduler`, with the capacity figures (`num_gpu_blocks`,
    /// `max_model_len`) that come from the memory plan.
    ///
    /// * V1 (vLLM ≥ 0.8 online serving): 256 seqs, 2048 batched tokens, chunked prefill
    ///   and prefix caching on, block 16.
    /// * V0: 256 seqs; without chunked prefill the token budget is
    ///   `max(max_model_len, 2048)` so any admissible prompt fits one iteration; prefix
    ///   caching off; one scheduler step.
    /// * Orca and static: as V0 without chunking.
    pub fn defaults_for(scheduler: SchedulerKind, num_gpu_blocks: u32, max_model_len: u32) -> Self {
        let (chunked, prefix) = match scheduler {
            SchedulerKind::VllmV1 | SchedulerKind::Sglang => (true, true),
            _ => (false, false),
        };
        let mut c = EngineConfig {
            scheduler,
            max_num_seqs: 256,
            max_num_batched_tokens: 2048,
            enable_chunked_prefill: chunked,
            num_scheduler_steps: 1,
            block_size: 16,
            num_gpu_blocks,
            max_model_len,
            enable_prefix_caching: prefix,
            preemption_mode: PreemptionMode::Recompute,
            kv_bytes_per_token: 0.0,
            swap_bandwidth_bytes_per_s: 0.0,
            pipeline_stages: 1,
            max_num_seqs_scope: SeqLimitScope::Replica,
            async_scheduling: false,
            kv_reservation: None,
            long_prompts: LongPrompts::RaiseBudget,
            enable_mixed_chunk: false,
            max_prefill_tokens: None,
            scheduler_recv_interval: 1,
            seqs_over_budget: SeqsOverBudget::Allow,
        };
        c.max_num_batched_tokens = c.default_max_num_batched_tokens(2048);
        c
    }

    /// The defaults of a serving stack, with the capacity figures of the memory plan.
    pub fn from_stack(
        stack: &crate::stack::SchedulerDefaults,
        num_gpu_blocks: u32,
        max_model_len: u32,
    ) -> Self {
        let mut c = Self::defaults_for(stack.kind, num_gpu_blocks, max_model_len);
        c.max_num_seqs = stack.max_num_seqs;
        c.enable_chunked_prefill = stack.enable_chunked_prefill;
        c.enable_prefix_caching = stack.enable_prefix_caching;
        c.num_scheduler_steps = stack.num_scheduler_steps;
        c.block_size = stack.block_size;
        c.async_scheduling = stack.async_scheduling;
        c.kv_reservation = stack.kv_reservation;
        c.long_prompts = stack.long_prompts;
        c.seqs_over_budget = stack.seqs_over_budget;
        c.max_num_seqs_scope = stack.max_num_seqs_scope;
        c.max_num_batched_tokens =
            c.default_max_num_batched_tokens(stack.budget(c.enable_chunked_prefill));
        c
    }

    /// The default token budget given the other settings: `chunked_budget` with chunked
    /// prefill or where long prompts are turned away, else `max(max_model_len,
    /// chunked_budget)` so that any admissible prompt fits one iteration (vLLM).
    pub fn default_max_num_batched_tokens(&self, chunked_budget: u32) -> u32 {
        if self.enable_chunked_prefill || self.long_prompts == LongPrompts::Reject {
            chunked_budget
        } else {
            self.max_model_len.max(chunked_budget)
        }
    }

    /// The most requests that may run at once: `max_num_seqs`, or that many per
    /// pipeline stage where the limit is a micro-batch's ([`SeqLimitScope`]).
    pub fn max_running(&self) -> u32 {
        match self.max_num_seqs_scope {
            SeqLimitScope::Replica => self.max_num_seqs,
            SeqLimitScope::MicroBatch => self.max_num_seqs.saturating_mul(self.pipeline_stages),
        }
    }

    /// Check that the settings can work together.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.max_num_seqs == 0 {
            return bad("--max-num-seqs must be at least 1".into());
        }
        if let Some(r) = &self.kv_reservation {
            r.check().or_else(|m| bad(format!("KV reservation: {m}")))?;
        }
        if self.scheduler_recv_interval == 0 {
            return bad("--scheduler-recv-interval must be at least 1".into());
        }
        if self.scheduler != SchedulerKind::Sglang {
            if self.scheduler_recv_interval > 1 {
                return bad(format!(
                    "--scheduler-recv-interval is SGLang's: the {} scheduler takes new requests at every iteration",
                    self.scheduler
                ));
            }
            if self.enable_mixed_chunk {
                return bad(format!(
                    "--enable-mixed-chunk is SGLang's: the {} scheduler has no separate prefill batches to mix decodes into",
                    self.scheduler
                ));
            }
            if self.max_prefill_tokens.is_some() {
                return bad(format!(
                    "--max-prefill-tokens is SGLang's: the {} scheduler limits prefill tokens by --max-num-batched-tokens alone",
                    self.scheduler
                ));
            }
        }
        if self.max_prefill_tokens == Some(0) {
            return bad("--max-prefill-tokens must be at least 1".into());
        }
        if self.max_num_batched_tokens == 0 {
            return bad("--max-num-batched-tokens must be at least 1".into());
        }
        if self.seqs_over_budget != SeqsOverBudget::Allow
            && self.max_num_batched_tokens < self.max_num_seqs
        {
            return bad(format!(
                "--max-num-batched-tokens ({}) is below --max-num-seqs ({}), which vLLM refuses (max_num_batched_tokens must be greater than or equal to max_num_seqs); lower --max-num-seqs or raise the budget",
                self.max_num_batched_tokens, self.max_num_seqs
            ));
        }
        if self.block_size == 0 {
            return bad("--block-size must be at least 1".into());
        }
        if self.num_scheduler_steps == 0 {
            return bad("--num-scheduler-steps must be at least 1".into());
        }
        if self.max_model_len == 0 {
            return bad("--max-model-len must be at least 1".into());
        }
        if self.pipeline_stages == 0 {
            return bad("a replica needs at least one pipeline stage".into());
        }
        if self.num_gpu_blocks > MAX_GPU_BLOCKS {
            return bad(format!(
                "--num-gpu-blocks-override {} is more KV blocks than a replica can be simulated with ({MAX_GPU_BLOCKS}; {} tokens at --block-size {})",
                self.num_gpu_blocks,
                u64::from(MAX_GPU_BLOCKS) * u64::from(self.block_size),
                self.block_size
            ));
        }
        if self.num_gpu_blocks == 0 {
            return bad("the KV cache has no blocks: the model leaves no memory for KV cache on this hardware (raise --gpu-memory-utilization, use more GPUs or a smaller dtype)".into());
        }
        if !self.enable_chunked_prefill
            && self.scheduler != SchedulerKind::Static
            && self.long_prompts == LongPrompts::RaiseBudget
            && self.max_num_batched_tokens < self.max_model_len
        {
            return bad(format!(
                "--max-num-batched-tokens ({}) is smaller than --max-model-len ({}) without chunked prefill: long prompts could never be scheduled; raise it or pass --enable-chunked-prefill",
                self.max_num_batched_tokens, self.max_model_len
            ));
        }
        if self.preemption_mode == PreemptionMode::Swap
            && (self.kv_bytes_per_token <= 0.0 || self.swap_bandwidth_bytes_per_s <= 0.0)
        {
            return bad(
                "swap preemption needs the KV bytes per token and a host link bandwidth".into(),
            );
        }
        Ok(())
    }

    /// The iteration limits in words: `256 seqs / 2048 tokens per iteration, chunked
    /// prefill`.
    pub fn describe_batching(&self) -> String {
        let reserve = match &self.kv_reservation {
            None => String::new(),
            Some(r) if r.min_ratio >= 1.0 && r.clip_output_tokens.is_none() => {
                ", admits only what the KV holds to completion".into()
            }
            Some(r) => format!(
                ", keeps KV for {:.0}–{:.0} % of running outputs",
                r.min_ratio * 100.0,
                r.initial_ratio * 100.0
            ),
        };
        let prefill = self.max_prefill_tokens.map_or(String::new(), |m| {
            format!(", prefill batches closed at {m} tokens")
        });
        format!(
            "{} seqs / {} tokens per iteration{}{prefill}{reserve}",
            self.max_num_seqs,
            self.max_num_batched_tokens,
            if self.enable_mixed_chunk {
                ", chunked prefill mixed with decodes"
            } else if self.enable_chunked_prefill {
                ", chunked prefill"
            } else if self.longest_prompt().is_some() {
                ", longer prompts turned away"
            } else {
                ""
            }
        )
    }

    /// The longest prompt the engine accepts beyond `max_model_len`'s limit, tokens:
    /// the token budget where chunked prefill is off and long prompts are turned away.
    pub fn longest_prompt(&self) -> Option<u32> {
        (!self.enable_chunked_prefill
            && self.scheduler != SchedulerKind::Static
            && self.long_prompts == LongPrompts::Reject)
            .then_some(self.max_num_batched_tokens)
    }

    /// Tokens the KV cache holds in all.
    pub fn kv_capacity_tokens(&self) -> u64 {
        u64::from(self.num_gpu_blocks) * u64::from(self.block_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batching_description_names_the_kv_reservation() {
        let mut c = EngineConfig::defaults_for(SchedulerKind::Sglang, 1000, 8192);
        assert!(!c.describe_batching().contains("KV"));
        c.kv_reservation = Some(KvReservation {
            initial_ratio: 0.7,
            min_ratio: 0.098,
            decay_steps: 600,
            clip_output_tokens: Some(4096),
            retract_decode_steps: 20,
        });
        assert!(c
            .describe_batching()
            .ends_with("keeps KV for 10–70 % of running outputs"));
        // TensorRT-LLM's GUARANTEED_NO_EVICT: all of every output, uncapped.
        c.kv_reservation = c.kv_reservation.map(|r| KvReservation {
            initial_ratio: 1.0,
            min_ratio: 1.0,
            clip_output_tokens: None,
            ..r
        });
        assert!(c
            .describe_batching()
            .ends_with("admits only what the KV holds to completion"));
    }

    #[test]
    fn v0_budget_covers_max_model_len_without_chunking() {
        let c = EngineConfig::defaults_for(SchedulerKind::VllmV0, 1000, 8192);
        assert_eq!(c.max_num_batched_tokens, 8192);
        c.validate().unwrap();
        let c = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 8192);
        assert_eq!(c.max_num_batched_tokens, 2048);
        assert!(c.enable_chunked_prefill && c.enable_prefix_caching);
    }

    #[test]
    fn a_budget_that_rejects_long_prompts_stays_put() {
        // TensorRT-LLM without chunked context: 8192 tokens at any max_model_len, and
        // longer prompts turned away instead of an error.
        let mut c = EngineConfig::defaults_for(SchedulerKind::VllmV1, 1000, 131_072);
        c.enable_chunked_prefill = false;
        c.long_prompts = LongPrompts::Reject;
        c.max_num_batched_tokens = c.default_max_num_batched_tokens(8192);
        assert_eq!(c.max_num_batched_tokens, 8192);
        c.validate().unwrap();
        assert_eq!(c.longest_prompt(), Some(8192));
        assert!(c.describe_batching().contains("longer prompts turned away"));
        c.enable_chunked_prefill = true;
        assert_eq!(c.longest_prompt(), None);
        c.long_prompts = LongPrompts::RaiseBudget;
        c.enable_chunked_prefill = false;
        assert_eq!(c.default_max_num_batched_tokens(8192), 131_072);
    }

    #[test]
    fn mixed_chunks_are_sglangs() {
        let mut c = EngineConfig::defaults_for(SchedulerKind::Sglang, 1000, 8192);
        c.enable_mixed_chunk = true;
        c.validate().unwrap();
        assert!(c.describe_batching().contains("mixed with decodes"));
        c.scheduler = SchedulerKind::VllmV1;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("--enable-mixed-chunk"), "{e}");
        c.enable_mixed_chunk = false;
        c.max_prefill_tokens = Some(4096);
        assert!(c
            .describe_batching()
            .contains("prefill batches closed at 4096 tokens"));
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("--max-prefill-tokens"), "{e}");
        c.scheduler = SchedulerKind::Sglang;
        c.validate().unwrap();
        c.max_prefill_tokens = Some(0);
        assert!(c.validate().is_err());
    }

    #[test]
    fn rejects_impossible_settings() {
        let mut c = EngineConfig::defaults_for(SchedulerKind::VllmV0, 1000, 8192);
        c.max_num_batched_tokens = 512;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--max-num-batched-tokens"));
        let c = EngineConfig::defaults_for(SchedulerKind::VllmV1, 0, 8192);
        assert!(c.validate().is_err());
    }
}

/// Settings the user gave explicitly; everything else takes vLLM's defaults for the
/// scheduler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineOverrides {
    /// Scheduling policy (default vLLM V1).
    pub scheduler: Option<SchedulerKind>,
    /// `--max-num-seqs`.
    pub max_num_seqs: Option<u32>,
    /// `--max-num-batched-tokens`.
    pub max_num_batched_tokens: Option<u32>,
    /// `--enable-chunked-prefill`.
    pub enable_chunked_prefill: Option<bool>,
    /// `--num-scheduler-steps`.
    pub num_scheduler_steps: Option<u32>,
    /// `--block-size`.
    pub block_size: Option<u32>,
    /// `--enable-prefix-caching`.
    pub enable_prefix_caching: Option<bool>,
    /// `--preemption-mode`.
    pub preemption_mode: Option<PreemptionMode>,
    /// `--num-gpu-blocks-override`.
    pub num_gpu_blocks_override: Option<u32>,
    /// `--async-scheduling`.
    pub async_scheduling: Option<bool>,
    /// Whether the scheduler keeps KV for running requests' output before admitting
    /// more, where the stack says so (`[scheduler.kv_reservation]`); false: admit on
    /// the prompt alone.
    pub kv_reservation: Option<bool>,
    /// `--enable-mixed-chunk` (SGLang).
    pub enable_mixed_chunk: Option<bool>,
    /// `--max-prefill-tokens` (SGLang).
    pub max_prefill_tokens: Option<u32>,
    /// `--scheduler-recv-interval` (SGLang).
    pub scheduler_recv_interval: Option<u32>,
}

impl EngineOverrides {
    /// The scheduler these settings select on `stack`: the given one, else the stack's.
    pub fn scheduler_kind(&self, stack: &crate::stack::SchedulerDefaults) -> SchedulerKind {
        self.scheduler.unwrap_or(stack.kind)
    }

    /// The engine settings before the KV cache is sized (`num_gpu_blocks` is 0): the
    /// serving stack's defaults (vLLM's generic defaults for a scheduler other than the
    /// stack's), then every given override. The token budget default follows the final
    /// chunked-prefill setting, which for a long-context model (`max_model_len` above
    /// the stack's `[scheduler.long_context]` limit, `sliding`: whether the model has
    /// sliding-window layers) may be the engine's own choice.
    pub fn resolve_unsized(
        &self,
        stack: &crate::stack::SchedulerDefaults,
        max_model_len: u32,
        sliding: bool,
    ) -> EngineConfig {
        let own_stack = self.scheduler.is_none_or(|k| k == stack.kind);
        let mut c = if own_stack {
            EngineConfig::from_stack(stack, 0, max_model_len)
        } else {
            let k = self.scheduler.unwrap_or(stack.kind);
            EngineConfig::defaults_for(k, 0, max_model_len)
        };
        if let Some(x) = self.num_scheduler_steps {
            c.num_scheduler_steps = x;
        }
        if let Some(x) = self.enable_prefix_caching {
            c.enable_prefix_caching = x;
        }
        match (self.enable_chunked_prefill, &stack.long_context) {
            (Some(x), _) => c.enable_chunked_prefill = x,
            (None, Some(l))
                if own_stack
                    && l.applies(
                        max_model_len,
                        sliding,
                        c.num_scheduler_steps,
                        c.enable_prefix_caching,
                    ) =>
            {
                c.enable_chunked_prefill = true;
            }
            _ => {}
        }
        let budget = if own_stack {
            stack.budget(c.enable_chunked_prefill)
        } else {
            2048
        };
        c.max_num_batched_tokens = self
            .max_num_batched_tokens
            .unwrap_or_else(|| c.default_max_num_batched_tokens(budget));
        if let Some(x) = self.max_num_seqs {
            c.max_num_seqs = x;
        } else if self.max_num_batched_tokens.is_some()
            && c.seqs_over_budget == SeqsOverBudget::LowerDefault
        {
            c.max_num_seqs = c.max_num_seqs.min(c.max_num_batched_tokens);
        }
        if let Some(x) = self.block_size {
            c.block_size = x;
        }
        if let Some(x) = self.preemption_mode {
            c.preemption_mode = x;
        }
        if self.kv_reservation == Some(false) {
            c.kv_reservation = None;
        }
        if let Some(x) = self.async_scheduling {
            c.async_scheduling = x;
        }
        if let Some(x) = self.enable_mixed_chunk {
            c.enable_mixed_chunk = x;
        }
        if self.max_prefill_tokens.is_some() {
            c.max_prefill_tokens = self.max_prefill_tokens;
        }
        if let Some(x) = self.scheduler_recv_interval {
            c.scheduler_recv_interval = x;
        }
        c
    }
}
