//! Continuous (iteration-level) batching: vLLM V1, vLLM V0, SGLang and Orca differ only
//! in the knobs of [`Policy`], so one loop implements all four.

use super::{reservation, seq, Grow, ReplicaState, Scheduled, StepPlan};
use crate::engine::config::EngineConfig;
use crate::units::SimTime;

/// How a continuous-batching scheduler orders and mixes work.
#[derive(Debug)]
pub(super) struct Policy {
    /// Schedule all running decodes before any running prefill chunk (V0 chunked,
    /// Orca); otherwise running requests are served in admission order (V1).
    decodes_first: bool,
    /// Prompts run alone: if any prefill work is admitted (the unfinished chunks of
    /// running requests first, then waiting requests), the iteration holds only
    /// prefills (V0 without chunked prefill; SGLang, whose prompts may be chunked).
    prefill_alone: bool,
    /// Decode groups run `num_scheduler_steps` iterations per decision (V0).
    multi_step: bool,
    /// Keep this fraction of blocks free when admitting new requests (V0 watermark).
    admit_watermark: f64,
    /// A prompt that may be chunked is admitted only if the free KV holds all of it
    /// (SGLang charges the whole prompt before computing its first chunk).
    whole_prompt_fits: bool,
}

/// vLLM V1 (`vllm/v1/core/sched/scheduler.py` behaviour).
pub(super) const V1: Policy = Policy {
    decodes_first: false,
    prefill_alone: false,
    multi_step: false,
    admit_watermark: 0.0,
    whole_prompt_fits: false,
};
/// vLLM V0 with chunked prefill: decodes, then running chunks, then new chunks.
pub(super) const V0_CHUNKED: Policy = Policy {
    decodes_first: true,
    prefill_alone: false,
    multi_step: true,
    admit_watermark: 0.01,
    whole_prompt_fits: false,
};
/// vLLM V0 default: prefill-prioritised whole prompts, decodes when none are admitted.
pub(super) const V0: Policy = Policy {
    decodes_first: true,
    prefill_alone: true,
    multi_step: true,
    admit_watermark: 0.01,
    whole_prompt_fits: false,
};
/// SGLang (`Scheduler.get_next_batch_to_run` without `--enable-mixed-chunk`): a
/// prefill batch of the unfinished chunk and waiting prompts, cut at the chunked-prefill
/// size, runs whenever one can be formed; the decode batch runs otherwise.
pub(super) const SGLANG: Policy = Policy {
    decodes_first: true,
    prefill_alone: true,
    multi_step: false,
    admit_watermark: 0.0,
    whole_prompt_fits: true,
};
/// SGLang with `--enable-mixed-chunk`: the running decodes join the prefill batch,
/// whose chunk budget shrinks by one token per decode (`PrefillAdder` with
/// `running_bs`); the decode batch runs alone when no prefill can be formed.
pub(super) const SGLANG_MIXED: Policy = Policy {
    decodes_first: true,
    prefill_alone: false,
    multi_step: false,
    admit_watermark: 0.0,
    whole_prompt_fits: true,
};
/// Orca: whole prompts mixed with decodes in one iteration.
pub(super) const ORCA: Policy = Policy {
    decodes_first: true,
    prefill_alone: false,
    multi_step: false,
    admit_watermark: 0.0,
    whole_prompt_fits: false,
};

pub(super) fn schedule(
    st: &mut ReplicaState,
    cfg: &EngineConfig,
    now: SimTime,
    plan: &mut StepPlan,
    policy: &Policy,
) {
    let chunked = cfg.enable_chunked_prefill;
    let mut budget = cfg.max_num_batched_tokens;

    if policy.prefill_alone {
        if chunked {
            continue_chunks(st, cfg, plan, &mut budget, true, false);
        }
        if !st.waiting.is_empty() {
            admit_waiting(st, cfg, now, plan, policy, &mut budget, chunked);
        }
        if !plan.entries.is_empty() {
            return;
        }
    }

    schedule_cohort(st, plan, policy, &mut budget, chunked);

    // Running requests: decodes (and, for V1, unfinished chunks in admission order).
    let mut i = 0;
    while i < st.running.len() && budget > 0 && has_seat(cfg, plan) {
        let slot = st.running[i];
        let r = &st.reqs[slot];
        if r.in_flight || (policy.decodes_first && !r.is_decoding()) {
            i += 1;
            continue;
        }
        // If `slot` itself was preempted, the next request has moved into place `i`
        // (and every later one not in flight was preempted before it).
        if schedule_running(st, cfg, plan, slot, &mut budget, chunked, true) != Grow::SelfPreempted
        {
            i += 1;
        }
    }
    if policy.decodes_first {
        // Then unfinished prefill chunks of running requests.
        continue_chunks(st, cfg, plan, &mut budget, chunked, true);
    }

    // New requests, unless this iteration had to preempt (as vLLM does).
    if plan.preempted == 0 && !policy.prefill_alone {
        admit_waiting(st, cfg, now, plan, policy, &mut budget, chunked);
    }

    if policy.multi_step && cfg.num_scheduler_steps > 1 {
        extend_to_multi_step(st, cfg, plan, &mut budget);
    }
    if let Some(res) = &cfg.kv_reservation {
        if !plan.is_empty() {
            reservation::after_decode(st, res, plan.preempted > 0);
        }
    }
    debug_assert!(
        plan.cohort_decodes == 0 || plan.preempted == 0,
        "a cohort iteration preempted"
    );
}

/// Whether the iteration `plan` can take one more request: `max_num_seqs` bounds every
/// batch (the running requests too, unless the limit is a micro-batch's, where it
/// bounds each batch in flight alone).
fn has_seat(cfg: &EngineConfig, plan: &StepPlan) -> bool {
    plan.num_seqs() < cfg.max_num_seqs
}

/// Schedule the unfinished prefill chunks of running requests not yet in `plan`, in
/// admission order. With `preempt` a chunk whose KV cannot grow preempts from the tail
/// of the running queue; without, it waits (a prefill batch that runs alone must not
/// evict the decoders it keeps waiting, or neither would ever progress).
fn continue_chunks(
    st: &mut ReplicaState,
    cfg: &EngineConfig,
    plan: &mut StepPlan,
    budget: &mut u32,
    chunked: bool,
    preempt: bool,
) {
    let mut i = 0;
    while i < st.running.len() && *budget > 0 && has_seat(cfg, plan) {
        let slot = st.running[i];
        let r = &st.reqs[slot];
        if r.in_flight || r.is_decoding() || plan.entries.iter().any(|e| e.slot == slot) {
            i += 1;
            continue;
        }
        if schedule_running(st, cfg, plan, slot, budget, chunked, preempt) != Grow::SelfPreempted {
            i += 1;
        }
    }
}

/// Let the decode cohort decode first, one token per member, when the reference
/// engine would give every member its token and serve the rest of the running queue
/// the same way (see [`cohort_goes_first`]); otherwise return the members to the
/// running queue, and the reference loops schedule them one by one.
fn schedule_cohort(
    st: &mut ReplicaState,
    plan: &mut StepPlan,
    policy: &Policy,
    budget: &mut u32,
    chunked: bool,
) {
    if st.cohort.is_empty() {
        return;
    }
    if cohort_goes_first(st, policy, *budget, chunked)
        && st.kv.alloc_bulk(st.cohort.blocks_needed())
    {
        plan.cohort_decodes = st.cohort.len();
        *budget -= plan.cohort_decodes;
    } else {
        st.materialize_cohort(false);
    }
}

/// Whether scheduling the cohort before the running queue gives what the reference
/// order gives: the budget covers every member; no request of the running queue comes
/// before a member in the reference order (V1 serves running requests in admission
/// order; V0 and Orca serve decodes first); and the blocks the running queue takes, in
/// that order, fit beside the cohort's, so nobody is preempted.
fn cohort_goes_first(st: &ReplicaState, policy: &Policy, budget: u32, chunked: bool) -> bool {
    let n = st.cohort.len();
    if n > budget {
        return false;
    }
    let first = if policy.decodes_first {
        !st.running.iter().any(|&s| {
            let r = &st.reqs[s];
            !r.in_flight && r.is_decoding()
        })
    } else {
        let after = st.cohort.max_admit_seq();
        st.running.iter().all(|&s| st.reqs[s].admit_seq > after)
    };
    if !first {
        return false;
    }
    let mut left = budget - n;
    let mut need = u64::from(st.cohort.blocks_needed());
    for &s in &st.running {
        if left == 0 {
            break;
        }
        let r = &st.reqs[s];
        let pending = r.pending_tokens();
        if r.in_flight || (!chunked && pending > left) {
            continue;
        }
        let num_new = pending.min(left);
        need += u64::from(st.kv.blocks_needed_to_grow(seq(s), r.computed + num_new));
        left -= num_new;
    }
    need <= u64::from(st.kv.num_free_blocks())
}

/// Schedule a running request's pending tokens (it may wait, or, with `preempt`,
/// preempt others or itself to grow).
fn schedule_running(
    st: &mut ReplicaState,
    cfg: &EngineConfig,
    plan: &mut StepPlan,
    slot: usize,
    budget: &mut u32,
    chunked: bool,
    preempt: bool,
) -> Grow {
    let r = &st.reqs[slot];
    let pending = r.pending_tokens();
    if !chunked && pending > *budget {
        // A whole-prompt re-prefill that does not fit this iteration waits.
        return Grow::NoRoom;
    }
    let num_new = pending.min(*budget);
    let target = r.computed + num_new;
    let outcome = if preempt {
        st.grow_or_preempt(slot, target, cfg, plan, budget)
    } else if st.kv.grow(seq(slot), target, &r.block_hashes) {
        Grow::Grown
    } else {
        Grow::NoRoom
    };
    if outcome == Grow::Grown {
        plan.entries.push(Scheduled { slot, num_new });
        *budget -= num_new;
    }
    outcome
}

fn admit_waiting(
    st: &mut ReplicaState,
    cfg: &EngineConfig,
    now: SimTime,
    plan: &mut StepPlan,
    policy: &Policy,
    budget: &mut u32,
    chunked: bool,
) {
    let watermark = (policy.admit_watermark * f64::from(st.kv.num_blocks())) as u32;
    let reserve = cfg.kv_reservation;
    // Blocks left for newcomers under the reservation, summed over the running
    // requests once a waiting request is up for admission (not on every iteration).
    let mut room: Option<i64> = None;
    while *budget > 0 && (st.num_running() as u32) < cfg.max_running() && has_seat(cfg, plan) {
        let Some(&slot) = st.waiting.front() else {
            break;
        };
        // SGLang's max_prefill_tokens: nothing more joins once the batch reached it.
        let in_batch = cfg.max_num_batched_tokens - *budget;
        if cfg.max_prefill_tokens.is_some_and(|m| in_batch >= m) {
            break;
        }
        if st.reqs[slot].arrival > st.admit_until {
            break;
        }
        // A prompt that may be chunked is admitted only if the KV could hold all of it
        // (SGLang charges the whole prompt, and with a reservation its output, before
        // it computes the first chunk); never blocked with nothing running, where it
        // could wait forever.
        let need = reserve.map_or(0, |res| reservation::need(st, &st.reqs[slot], &res));
        if st.num_running() > 0 {
            let blocked = match &reserve {
                Some(res) => need > *room.get_or_insert_with(|| reservation::room(st, res)),
                None => {
                    let pending = st.reqs[slot].pending_tokens().div_ceil(cfg.block_size);
                    policy.whole_prompt_fits && chunked && pending > st.kv.num_free_blocks()
                }
            };
            if blocked {
                break;
            }
        }
        if watermark > 0 {
            let r = &st.reqs[slot];
            let need = r.known_tokens().div_ceil(cfg.block_size);
            if st.kv.num_free_blocks() < need + watermark {
                break;
            }
        }
        match st.try_admit(slot, *budget, chunked, cfg, plan, now) {
            Some(n) => {
                if let Some(room) = room.as_mut() {
                    *room -= reservation::charge(st, &st.reqs[slot], n, need);
                }
                st.waiting.pop_front();
                st.push_running(slot);
                plan.entries.push(super::Scheduled { slot, num_new: n });
                *budget -= n;
            }
            None => break,
        }
    }
}

/// Turn a decode-only plan into a group of `num_scheduler_steps` decode iterations,
/// reserving KV for the look-ahead tokens (vLLM V0 multi-step scheduling).
fn extend_to_multi_step(
    st: &mut ReplicaState,
    cfg: &EngineConfig,
    plan: &mut StepPlan,
    budget: &mut u32,
) {
    if plan.entries.is_empty() || !plan.entries.iter().all(|e| st.reqs[e.slot].is_decoding()) {
        return;
    }
    let steps = cfg.num_scheduler_steps;
    let mut k = 0;
    while k < plan.entries.len() {
        let slot = plan.entries[k].slot;
        let r = &st.reqs[slot];
        let remaining = r.output_tokens - r.generated;
        let target = r.computed + steps.min(remaining);
        // Preempted requests leave the plan; `k` then points at the next entry.
        if st.grow_or_preempt(slot, target, cfg, plan, budget) != Grow::SelfPreempted {
            k += 1;
        }
    }
    plan.decode_steps = steps;
}
