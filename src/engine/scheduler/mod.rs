//! Schedulers: each iteration, decide which requests run and how many tokens each
//! computes. A scheduler is a pure decision over the replica's owned state; it returns a
//! [`StepPlan`] that the replica executes and times.
//!
//! Preemption follows vLLM: when the KV cache cannot grow, the most recently admitted
//! running request (the tail of `running`) is evicted; with recompute it goes back to
//! the head of the waiting queue and its prefill (prompt plus generated tokens) is
//! redone, with swap its KV is copied to host memory and back.

use super::cohort::Cohort;
use super::config::{EngineConfig, PreemptionMode, SchedulerKind};
use super::kv::{KvCache, SeqId};
use super::request::LiveRequest;
use crate::units::SimTime;
use slab::Slab;
use std::collections::VecDeque;

mod continuous;
mod reservation;
mod static_batch;

/// Outcome of growing a running request's KV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grow {
    /// It holds the KV it needs.
    Grown,
    /// It had to be preempted itself (it was the most recent candidate).
    SelfPreempted,
    /// Nothing could be preempted (every other candidate is in flight); it waits.
    NoRoom,
}

/// One request's share of an iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scheduled {
    /// The request's slot in the replica.
    pub slot: usize,
    /// Tokens it computes in this iteration (per decode step for multi-step groups).
    pub num_new: u32,
}

/// What one iteration (or one multi-step group) does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepPlan {
    /// Requests in the batch with their token counts, in batch order.
    pub entries: Vec<Scheduled>,
    /// Decode iterations in this group (1 except for vLLM V0 multi-step decode groups).
    pub decode_steps: u32,
    /// KV bytes copied between host and device for swap preemption in this iteration.
    pub swap_bytes: f64,
    /// Requests preempted while forming this plan.
    pub preempted: u32,
    /// Decodes of the replica's decode cohort in this iteration (one token each),
    /// besides `entries`: all its members, or none.
    pub cohort_decodes: u32,
}

impl StepPlan {
    /// Forget the previous plan, keeping allocations.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.decode_steps = 1;
        self.swap_bytes = 0.0;
        self.preempted = 0;
        self.cohort_decodes = 0;
    }

    /// Tokens computed in the first iteration of the plan.
    pub fn num_tokens(&self) -> u64 {
        self.entries
            .iter()
            .map(|e| u64::from(e.num_new))
            .sum::<u64>()
            + u64::from(self.cohort_decodes)
    }

    /// Requests in the plan's first iteration.
    pub fn num_seqs(&self) -> u32 {
        (self.entries.len() as u32).saturating_add(self.cohort_decodes)
    }

    /// Whether the plan runs nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.cohort_decodes == 0
    }
}

/// The queues and cache a scheduler works on.
pub struct ReplicaState {
    /// Live requests by slot; slots are reused after a request ends.
    pub reqs: Slab<LiveRequest>,
    /// Requests waiting to be admitted (FCFS; preempted ones go to the front).
    pub waiting: VecDeque<usize>,
    /// Admitted requests holding KV, in admission order, except the members of
    /// `cohort`.
    pub running: Vec<usize>,
    /// Steady decoders advanced as one aggregate (see [`Cohort`]).
    pub(crate) cohort: Cohort,
    /// Whether decoders may join `cohort` (see [`ReplicaState::new`]).
    pub(crate) cohort_enabled: bool,
    /// The admission order the next admitted request gets.
    next_admit_seq: u64,
    /// The replica's paged KV cache.
    pub kv: KvCache,
    /// Waiting requests that reached the engine after this time are not seen by the
    /// next scheduling decision: with asynchronous scheduling the batch of iteration
    /// k+1 is decided when iteration k starts.
    pub admit_until: SimTime,
    /// Share of running requests' remaining output kept free before admitting more
    /// (`EngineConfig::kv_reservation`; unused without it).
    pub(crate) new_token_ratio: f64,
}

/// The KV sequence id of a slot.
pub fn seq(slot: usize) -> SeqId {
    SeqId(u32::try_from(slot).expect("more than u32::MAX live requests"))
}

impl std::fmt::Debug for ReplicaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaState")
            .field("live", &self.reqs.len())
            .field("waiting", &self.waiting.len())
            .field("running", &self.running.len())
            .field("cohort", &self.cohort.len())
            .finish()
    }
}

impl ReplicaState {
    /// Empty queues over a cache of the configured size. Decoders may join a cohort
    /// under the continuous-batching schedulers when each decision is one iteration
    /// and the replica is one pipeline stage (the replica turns it off for other roles
    /// and for its reference mode).
    pub fn new(cfg: &EngineConfig) -> Self {
        let one_step = cfg.num_scheduler_steps <= 1
            || matches!(cfg.scheduler, SchedulerKind::VllmV1 | SchedulerKind::Orca);
        ReplicaState {
            reqs: Slab::new(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            cohort: Cohort::new(cfg.block_size),
            // The reservation sums over every running request each admission pass.
            cohort_enabled: one_step
                && cfg.pipeline_stages == 1
                && cfg.scheduler != SchedulerKind::Static
                && cfg.kv_reservation.is_none(),
            next_admit_seq: 0,
            kv: KvCache::new(
                cfg.num_gpu_blocks,
                cfg.block_size,
                cfg.enable_prefix_caching,
            )
            .with_eviction_order(cfg.scheduler.kv_eviction_order()),
            admit_until: SimTime::ZERO,
            new_token_ratio: cfg.kv_reservation.map_or(0.0, |r| r.initial_ratio),
        }
    }

    /// Requests admitted and holding KV (the running queue and the cohort).
    pub fn num_running(&self) -> usize {
        self.running.len() + self.cohort.len() as usize
    }

    /// Append `slot` to the running queue as the latest admission.
    pub(crate) fn push_running(&mut self, slot: usize) {
        self.reqs[slot].admit_seq = self.next_admit_seq;
        self.next_admit_seq += 1;
        self.running.push(slot);
    }

    /// Return every cohort member to the running queue (in admission order), with its
    /// state and its KV blocks written back. `pending`: an iteration in flight includes
    /// every member; the caller must then add them to its plan.
    pub(crate) fn materialize_cohort(&mut self, pending: bool) -> Vec<usize> {
        if self.cohort.is_empty() {
            return Vec::new();
        }
        let leavers = self.cohort.drain(&mut self.reqs, pending);
        let mut slots = Vec::with_capacity(leavers.len());
        for l in &leavers {
            self.kv.adopt_bulk(seq(l.slot), l.kv_tokens);
            slots.push(l.slot);
        }
        self.running.extend_from_slice(&slots);
        let reqs = &self.reqs;
        self.running.sort_by_key(|&s| reqs[s].admit_seq);
        slots
    }

    /// Evict `slot` from the KV cache (see the module docs). If it was already in
    /// `plan`, it leaves the plan and its tokens return to `budget`.
    pub(crate) fn preempt(
        &mut self,
        slot: usize,
        cfg: &EngineConfig,
        plan: &mut StepPlan,
        budget: &mut u32,
    ) {
        if let Some(pos) = plan.entries.iter().position(|e| e.slot == slot) {
            *budget += plan.entries.remove(pos).num_new;
        }
        self.kv.free(seq(slot));
        let r = &mut self.reqs[slot];
        r.preemptions += 1;
        match cfg.preemption_mode {
            PreemptionMode::Recompute => r.computed = 0,
            PreemptionMode::Swap => {
                plan.swap_bytes += f64::from(r.computed) * cfg.kv_bytes_per_token;
                r.swapped = true;
            }
        }
        plan.preempted += 1;
        self.waiting.push_front(slot);
    }

    /// Grow a running request's KV to hold `tokens`, preempting from the tail of
    /// `running` until it fits. Returns false if `slot` itself had to be preempted.
    pub(crate) fn grow_or_preempt(
        &mut self,
        slot: usize,
        tokens: u32,
        cfg: &EngineConfig,
        plan: &mut StepPlan,
        budget: &mut u32,
    ) -> Grow {
        loop {
            if self
                .kv
                .grow(seq(slot), tokens, &self.reqs[slot].block_hashes)
            {
                return Grow::Grown;
            }
            // The most recently admitted request that is not in a batch in flight.
            let Some(j) = self.running.iter().rposition(|&s| !self.reqs[s].in_flight) else {
                return Grow::NoRoom;
            };
            let victim = self.running.remove(j);
            self.preempt(victim, cfg, plan, budget);
            if victim == slot {
                return Grow::SelfPreempted;
            }
        }
    }

    /// Try to admit the head-of-queue request `slot` with at most `budget` new tokens.
    /// Returns the tokens it computes this iteration, or None if it cannot start now.
    /// On success the request holds KV for its computed plus new tokens.
    pub(crate) fn try_admit(
        &mut self,
        slot: usize,
        budget: u32,
        chunked: bool,
        cfg: &EngineConfig,
        plan: &mut StepPlan,
        now: SimTime,
    ) -> Option<u32> {
        let r = &self.reqs[slot];
        let known = r.known_tokens();
        // Swapped-out or transferred KV comes back whole, without prefix lookups.
        let kv_elsewhere = r.swapped || r.kv_transferred;
        let use_hashes = !kv_elsewhere && cfg.enable_prefix_caching && !r.block_hashes.is_empty();
        let start = if kv_elsewhere {
            r.computed
        } else if use_hashes {
            // Capped so at least one token is computed to sample from.
            self.kv.prefix_hit_tokens(known, &r.block_hashes)
        } else {
            0
        };
        let pending = known - start;
        if !chunked && pending > budget {
            return None;
        }
        let num_new = pending.min(budget);
        if num_new == 0 {
            return None;
        }
        let hashes: &[_] = if use_hashes {
            &self.reqs[slot].block_hashes
        } else {
            &[]
        };
        let hit = self.kv.allocate(seq(slot), start + num_new, hashes)?;
        let r = &mut self.reqs[slot];
        if r.swapped {
            plan.swap_bytes += f64::from(r.computed) * cfg.kv_bytes_per_token;
            r.swapped = false;
        } else if r.kv_transferred {
            r.kv_transferred = false;
        } else {
            debug_assert!(
                !use_hashes || hit == start,
                "prefix lookup and allocation disagree"
            );
            r.computed = if use_hashes { hit } else { 0 };
            if r.scheduled_at.is_none() {
                r.prefix_hit_tokens = r.computed;
            }
        }
        // The cache may report fewer hit tokens than looked up; compute the rest now.
        let num_new = known - r.computed;
        let num_new = if chunked {
            num_new.min(budget)
        } else {
            num_new
        };
        if r.scheduled_at.is_none() {
            r.scheduled_at = Some(now);
        }
        Some(num_new)
    }
}

/// Form the next iteration's plan for `cfg.scheduler`. An empty plan means nothing can
/// run now.
pub fn schedule(st: &mut ReplicaState, cfg: &EngineConfig, now: SimTime, plan: &mut StepPlan) {
    plan.clear();
    match cfg.scheduler {
        SchedulerKind::VllmV1 => continuous::schedule(st, cfg, now, plan, &continuous::V1),
        SchedulerKind::VllmV0 if cfg.enable_chunked_prefill => {
            continuous::schedule(st, cfg, now, plan, &continuous::V0_CHUNKED)
        }
        SchedulerKind::VllmV0 => continuous::schedule(st, cfg, now, plan, &continuous::V0),
        SchedulerKind::Sglang if cfg.enable_mixed_chunk => {
            continuous::schedule(st, cfg, now, plan, &continuous::SGLANG_MIXED)
        }
        SchedulerKind::Sglang => continuous::schedule(st, cfg, now, plan, &continuous::SGLANG),
        SchedulerKind::Orca => continuous::schedule(st, cfg, now, plan, &continuous::ORCA),
        SchedulerKind::Static => static_batch::schedule(st, cfg, now, plan),
    }
}
