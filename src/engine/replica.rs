//! One model instance (on its TP×PP GPUs) with its own scheduler and KV cache.
//!
//! The replica owns its state; the event loop calls [`Replica::try_start_step`] when it
//! is idle and [`Replica::finish_step`] when the iteration's time has passed.

use super::cohort::Leaver;
use super::config::EngineConfig;
use super::kv::BlockHash;
use super::recv_skipper::RecvSkipper;
use super::request::{LiveRequest, RequestRecord, RequestStatus};
use super::scheduler::{self, seq, ReplicaState, Scheduled, StepPlan};
use crate::perf::{LatencyModel, StepShape};
use crate::trace::Request;
use crate::units::{SimDuration, SimTime};
use std::collections::VecDeque;
use std::sync::Arc;

mod invariants;

/// Output tokens produced by one request at the end of an iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenEvent {
    /// The replica.
    pub replica: u32,
    /// The trace's request id.
    pub request_id: u64,
    /// When the tokens are released.
    pub time: SimTime,
    /// Time since the request's previous token (since arrival for its first token).
    pub gap: SimDuration,
    /// Tokens released together (more than one for multi-step groups).
    pub count: u32,
    /// Whether the first of them is the request's first output token.
    pub first: bool,
    /// Output tokens generated so far, including these.
    pub generated: u32,
}

/// Receives what happens to requests as the simulation runs.
pub trait RequestSink {
    /// A request produced output tokens.
    fn on_tokens(&mut self, event: &TokenEvent);
    /// A request ended (finished or rejected).
    fn on_request_end(&mut self, record: RequestRecord);
    /// Whether every token must come through [`RequestSink::on_tokens`], naming its
    /// request (the default). A sink that answers false also takes
    /// [`RequestSink::on_decode_tokens`], which lets replicas advance their steady
    /// decoders as one aggregate: the per-request records are the same either way.
    fn per_request_tokens(&self) -> bool {
        true
    }
    /// `requests` requests of `replica` each produced one token at `time`, `gap` after
    /// its previous one (never a first token; one call stands for as many
    /// [`RequestSink::on_tokens`] events with `count` 1). Called only when
    /// [`RequestSink::per_request_tokens`] is false.
    fn on_decode_tokens(&mut self, replica: u32, time: SimTime, gap: SimDuration, requests: u32) {
        let _ = (replica, time, gap, requests);
        debug_assert!(false, "on_decode_tokens on a sink that wants every token");
    }
}

/// Counters of a replica over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReplicaCounters {
    /// Iterations run (a multi-step group counts each of its iterations).
    pub iterations: u64,
    /// Sum of sequences over iterations (for the mean batch size).
    pub batch_seqs_sum: u64,
    /// Largest batch in sequences.
    pub batch_seqs_max: u32,
    /// Sum of tokens over iterations.
    pub batch_tokens_sum: u64,
    /// Preemptions.
    pub preemptions: u64,
    /// Time spent in iterations (busy time).
    pub busy: SimDuration,
}

/// What a replica does in the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicaRole {
    /// Prefill and decode (the usual, colocated serving).
    #[default]
    Unified,
    /// Disaggregated serving: prefill only; after its first token a request's KV is
    /// sent to a decode replica.
    Prefill,
    /// Disaggregated serving: decode only, for requests whose KV arrives from a
    /// prefill replica.
    Decode,
}

/// A serving replica.
pub struct Replica {
    id: u32,
    role: ReplicaRole,
    /// Requests that finished prefill on a prefill replica, to be sent on.
    handoffs: Vec<LiveRequest>,
    cfg: EngineConfig,
    state: ReplicaState,
    latency: Arc<dyn LatencyModel>,
    /// Batches in flight, oldest first (at most one per pipeline stage), with the
    /// tokens of their first iteration.
    in_flight: VecDeque<(StepPlan, u64)>,
    /// Plans of finished batches, kept to reuse their allocations.
    spare: Vec<StepPlan>,
    /// When each pipeline stage is next free.
    stage_free: Vec<SimTime>,
    shape: StepShape,
    counters: ReplicaCounters,
    /// The lock-step group (data-parallel ranks whose MoE layers share experts) this
    /// replica belongs to, named by its first member's index; None = steps alone.
    lockstep: Option<u32>,
    /// Start and end of the last iteration launched (asynchronous scheduling decides
    /// the next batch when an iteration starts).
    last_step: Option<(SimTime, SimTime)>,
    /// When the scheduler takes new requests, where it skips polls (SGLang's
    /// `--scheduler-recv-interval` above 1).
    recv: Option<RecvSkipper>,
    /// Cohort members that finished with the iteration being applied (reused buffer).
    leavers: Vec<Leaver>,
    /// Running requests being retired, with whether each is handed off (reused buffer).
    retiring: Vec<(usize, bool)>,
    /// The first iteration the latency model gave no usable time for; the replica
    /// starts nothing after it and the run ends with this error.
    fault: Option<Box<crate::Error>>,
}

/// Timing of a batch that has just started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepStart {
    /// When the batch leaves the first pipeline stage, which can then take the next
    /// batch (equal to `done` without pipeline parallelism).
    pub first_stage_free: SimTime,
    /// When the batch leaves the last stage and its tokens are out.
    pub done: SimTime,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("id", &self.id)
            .field("waiting", &self.state.waiting.len())
            .field("running", &self.state.running.len())
            .field("in_flight", &self.in_flight.len())
            .finish()
    }
}

impl Replica {
    /// A replica with validated settings.
    pub fn new(id: u32, cfg: EngineConfig, latency: Arc<dyn LatencyModel>) -> crate::Result<Self> {
        cfg.validate()?;
        let stages = cfg.pipeline_stages as usize;
        let recv = (cfg.scheduler_recv_interval > 1)
            .then(|| RecvSkipper::new(cfg.scheduler_recv_interval));
        Ok(Replica {
            id,
            role: ReplicaRole::Unified,
            handoffs: Vec::new(),
            state: ReplicaState::new(&cfg),
            cfg,
            latency,
            in_flight: VecDeque::new(),
            spare: Vec::new(),
            stage_free: vec![SimTime::ZERO; stages],
            shape: StepShape::new(),
            counters: ReplicaCounters::default(),
            lockstep: None,
            last_step: None,
            recv,
            fault: None,
            leavers: Vec::new(),
            retiring: Vec::new(),
        })
    }

    /// Run every request through the reference engine: each decoder is scheduled and
    /// advanced on its own every iteration (O(batch) per iteration), never as part of
    /// the aggregate decode cohort. Results are identical; this is the oracle the
    /// engine's equivalence tests compare against.
    pub fn with_reference_engine(mut self, reference: bool) -> Self {
        if reference {
            self.state.cohort_enabled = false;
        }
        self
    }

    /// Make this replica a rank of lock-step group `group`: the
    /// [`Simulation`](crate::sim::Simulation) starts the group's ranks together and
    /// ends them together, when the slowest is done (vLLM's data-parallel ranks with
    /// expert parallelism synchronise in every MoE layer); with pipeline parallelism
    /// the group's micro-batches pipeline through the stages.
    pub fn with_lockstep(mut self, group: Option<u32>) -> Self {
        self.lockstep = group;
        self
    }

    /// The lock-step group, if any (see [`Replica::with_lockstep`]).
    pub fn lockstep(&self) -> Option<u32> {
        self.lockstep
    }

    /// The replica's index.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The same replica with a role in a disaggregated cluster.
    pub fn with_role(mut self, role: ReplicaRole) -> Self {
        self.role = role;
        // A prefill replica hands requests on after their first token; they never
        // decode there.
        if role == ReplicaRole::Prefill {
            self.state.cohort_enabled = false;
        }
        self
    }

    /// Its role.
    pub fn role(&self) -> ReplicaRole {
        self.role
    }

    /// Requests whose prefill finished here and whose KV must move to a decode replica
    /// (prefill replicas only); drained by the event loop.
    pub fn take_handoffs(&mut self) -> Vec<LiveRequest> {
        std::mem::take(&mut self.handoffs)
    }

    /// Admit a request whose prompt KV (and first token) was computed on a prefill
    /// replica and has just arrived at `now`. It waits like any request until its KV
    /// fits, then decodes. A request that can never fit here is rejected.
    pub fn accept_handoff(&mut self, mut r: LiveRequest, now: SimTime, sink: &mut dyn RequestSink) {
        let blocks = u64::from(r.max_kv_tokens()).div_ceil(u64::from(self.cfg.block_size));
        if blocks > u64::from(self.cfg.num_gpu_blocks) {
            let mut rec = RequestRecord::finished(&r, self.id, now);
            rec.status = crate::engine::RequestStatus::Rejected;
            sink.on_request_end(rec);
            return;
        }
        r.kv_transferred = true;
        if !self.cfg.enable_prefix_caching {
            r.block_hashes.clear();
        }
        let slot = self.state.reqs.insert(r);
        self.state.waiting.push_back(slot);
    }

    /// Its settings.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Whether an iteration is in flight.
    pub fn is_busy(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Prompt tokens of `req` whose KV this replica's prefix cache holds now (0 with
    /// prefix caching off).
    pub fn cached_prefix_tokens(&self, req: &Request) -> u32 {
        if !self.cfg.enable_prefix_caching {
            return 0;
        }
        self.state
            .kv
            .num_cached_prefix_tokens(&block_hashes(req, self.cfg.block_size))
    }

    /// Requests waiting for admission.
    pub fn num_waiting(&self) -> usize {
        self.state.waiting.len()
    }

    /// Requests admitted and holding KV.
    pub fn num_running(&self) -> usize {
        self.state.num_running()
    }

    /// Running requests that decode as one aggregate (the decode cohort; see
    /// [`Replica::with_reference_engine`]).
    pub fn cohort_size(&self) -> usize {
        self.state.cohort.len() as usize
    }

    /// Requests in the replica (waiting or running).
    pub fn num_outstanding(&self) -> usize {
        self.state.reqs.len()
    }

    /// KV blocks in use.
    pub fn kv_used_blocks(&self) -> u32 {
        self.state.kv.num_used_blocks()
    }

    /// Fraction of KV blocks in use.
    pub fn kv_usage(&self) -> f64 {
        self.state.kv.usage()
    }

    /// Tokens of the batches in flight (0 when idle).
    pub fn tokens_in_step(&self) -> u64 {
        self.in_flight.iter().map(|(_, t)| t).sum()
    }

    /// Tokens in the first iteration of the most recently started batch (the quantity
    /// `max_num_batched_tokens` bounds).
    pub fn tokens_in_newest_batch(&self) -> u64 {
        self.in_flight.back().map_or(0, |(_, t)| *t)
    }

    /// Requests in the first iteration of the most recently started batch (the
    /// quantity `max_num_seqs` bounds in every batch).
    pub fn seqs_in_newest_batch(&self) -> u32 {
        self.in_flight.back().map_or(0, |(p, _)| p.num_seqs())
    }

    /// Counters so far.
    pub fn counters(&self) -> &ReplicaCounters {
        &self.counters
    }

    /// Accept a request arriving at `now`, or reject it at once if it can never run.
    pub fn add_request(&mut self, req: Request, now: SimTime, sink: &mut dyn RequestSink) {
        let total = u64::from(req.input_tokens) + u64::from(req.output_tokens);
        let max_kv = total.saturating_sub(1);
        let blocks = max_kv.div_ceil(u64::from(self.cfg.block_size));
        let too_long = self
            .cfg
            .longest_prompt()
            .is_some_and(|n| req.input_tokens > n);
        if total > u64::from(self.cfg.max_model_len)
            || blocks > u64::from(self.cfg.num_gpu_blocks)
            || too_long
        {
            sink.on_request_end(RequestRecord::rejected(
                req.id,
                self.id,
                now,
                req.input_tokens,
                req.output_tokens,
            ));
            return;
        }
        let block_hashes = if self.cfg.enable_prefix_caching {
            block_hashes(&req, self.cfg.block_size)
        } else {
            Vec::new()
        };
        let slot = self.state.reqs.insert(LiveRequest {
            id: req.id,
            arrival: now,
            prompt_tokens: req.input_tokens,
            output_tokens: req.output_tokens,
            generated: 0,
            computed: 0,
            block_hashes,
            scheduled_at: None,
            first_token_at: None,
            last_token_at: now,
            preemptions: 0,
            prefix_hit_tokens: 0,
            swapped: false,
            kv_transferred: false,
            in_flight: false,
            admit_seq: 0,
            cohort_join: None,
        });
        self.state.waiting.push_back(slot);
    }

    /// If idle and there is runnable work, schedule an iteration and return how long it
    /// takes. None when busy or when nothing can run.
    pub fn try_start_step(&mut self, now: SimTime) -> Option<StepStart> {
        let duration = self.plan_step(now)?;
        Some(self.launch_step(now, duration))
    }

    /// The first half of [`Replica::try_start_step`]: if idle and there is runnable
    /// work, schedule an iteration and return how long this replica alone would take.
    /// [`Replica::launch_step`] must follow before anything else touches the replica.
    pub fn plan_step(&mut self, now: SimTime) -> Option<SimDuration> {
        if self.in_flight.len() >= self.stage_free.len()
            || now < self.stage_free[0]
            || self.state.reqs.is_empty()
        {
            return None;
        }
        let mut plan = self.spare.pop().unwrap_or_default();
        // With asynchronous scheduling an iteration that follows another back to back
        // was decided when that one started: later arrivals wait a step.
        let back_to_back = self.last_step.filter(|&(_, end)| end == now);
        self.state.admit_until = match back_to_back {
            Some((start, _)) if self.cfg.async_scheduling => start,
            _ => now,
        };
        // Requests the scheduler has not taken in yet are not seen either.
        if let Some(recv) = &mut self.recv {
            let received = recv.at_turn(now, back_to_back.is_some());
            self.state.admit_until = self.state.admit_until.min(received);
        }
        scheduler::schedule(&mut self.state, &self.cfg, now, &mut plan);
        if plan.is_empty() && self.state.admit_until < now {
            // Nothing was left to run back to back: the engine goes idle and sees the
            // new arrivals at once (a closed loop's next request arrives exactly when
            // the last one in flight ends).
            self.state.admit_until = now;
            if let Some(recv) = &mut self.recv {
                recv.poll(now);
            }
            scheduler::schedule(&mut self.state, &self.cfg, now, &mut plan);
        }
        self.counters.preemptions += u64::from(plan.preempted);
        if plan.is_empty() {
            self.spare.push(plan);
            return None;
        }
        if let Some(recv) = &mut self.recv {
            let reqs = &self.state.reqs;
            recv.planned(plan.entries.iter().all(|e| reqs[e.slot].is_decoding()));
        }
        let mut duration = SimDuration::ZERO;
        let mut tokens = 0;
        for step in 0..plan.decode_steps {
            self.shape.clear();
            if step == 0 && plan.cohort_decodes > 0 {
                let (n, sum, max) = self.state.cohort.decode_shape();
                self.shape.push_decodes(n, sum, max);
            }
            for e in &plan.entries {
                let r = &mut self.state.reqs[e.slot];
                if step == 0 {
                    // In the pipeline until this batch completes.
                    r.in_flight = true;
                    if r.is_decoding() {
                        self.shape.push_decode(r.computed + 1);
                    } else {
                        self.shape.push_prefill(e.num_new, r.computed);
                    }
                } else if step < r.output_tokens - r.generated {
                    self.shape.push_decode(r.computed + 1 + step);
                }
            }
            if self.shape.is_empty() {
                break;
            }
            self.shape.follow_on = step > 0;
            if step == 0 {
                tokens = self.shape.total_tokens();
            }
            let seqs = self.shape.num_seqs();
            self.counters.iterations += 1;
            self.counters.batch_seqs_sum += u64::from(seqs);
            self.counters.batch_seqs_max = self.counters.batch_seqs_max.max(seqs);
            self.counters.batch_tokens_sum += self.shape.total_tokens();
            match crate::perf::checked_step_time(&*self.latency, &self.shape) {
                Ok(d) => duration += d,
                Err(e) => {
                    self.fault = Some(Box::new(e));
                    return None;
                }
            }
        }
        if plan.swap_bytes > 0.0 {
            duration +=
                SimDuration::from_secs_f64(plan.swap_bytes / self.cfg.swap_bandwidth_bytes_per_s);
        }
        // Time always advances: a zero-length iteration could loop forever.
        self.in_flight.push_back((plan, tokens));
        Some(duration.max(SimDuration::from_nanos(1)))
    }

    /// The error that stopped this replica: an iteration whose time the latency model
    /// could not give ([`crate::Error::InvalidStepTime`]). Taken once.
    pub fn take_fault(&mut self) -> Option<crate::Error> {
        self.fault.take().map(|e| *e)
    }

    /// Start the iteration [`Replica::plan_step`] scheduled, taking `duration` (its own
    /// time, or longer when a lock-step group waits for its slowest rank).
    pub fn launch_step(&mut self, now: SimTime, duration: SimDuration) -> StepStart {
        self.counters.busy += duration;
        let start = self.pipeline(now, duration);
        self.last_step = Some((now, start.done));
        start
    }

    /// Push a batch whose whole-model time is `duration` through the pipeline: each of
    /// the `p` stages (equal layer shares) takes `duration / p`, and a stage starts the
    /// batch when the batch has left the previous stage and the stage has finished the
    /// previous batch. Uneven batches leave bubbles; with one stage this is `now +
    /// duration`.
    fn pipeline(&mut self, now: SimTime, duration: SimDuration) -> StepStart {
        let p = self.stage_free.len() as u64;
        let per_stage = SimDuration::from_nanos(duration.as_nanos() / p);
        // The remainder of the division goes to the last stage so the stages sum up.
        let last = duration - per_stage.saturating_mul(p - 1);
        let mut t = now;
        for (j, free) in self.stage_free.iter_mut().enumerate() {
            let d = if j as u64 + 1 == p { last } else { per_stage };
            t = t.max(*free) + d;
            *free = t;
        }
        StepStart {
            first_stage_free: self.stage_free[0],
            done: t,
        }
    }

    /// Apply the iteration in flight, which ends at `now`: advance tokens, emit them, and
    /// retire finished requests.
    pub fn finish_step(&mut self, now: SimTime, sink: &mut dyn RequestSink) {
        let (plan, _) = self
            .in_flight
            .pop_front()
            .expect("finish_step without a batch in flight");
        if plan.cohort_decodes > 0 {
            let id = self.id;
            let st = &mut self.state;
            st.cohort.advance(now, &st.reqs, |gap, n| {
                sink.on_decode_tokens(id, now, gap, n)
            });
            st.cohort.pop_finished(&mut st.reqs, &mut self.leavers);
        }
        let steps = plan.decode_steps;
        let mut any_done = !self.leavers.is_empty();
        let mut handoff = false;
        for e in &plan.entries {
            let r = &mut self.state.reqs[e.slot];
            r.in_flight = false;
            let produced = if steps > 1 {
                let n = steps.min(r.output_tokens - r.generated);
                r.computed += n;
                n
            } else {
                r.computed += e.num_new;
                u32::from(r.computed == r.known_tokens())
            };
            if produced == 0 {
                continue;
            }
            r.generated += produced;
            let first = r.first_token_at.is_none();
            if first {
                r.first_token_at = Some(now);
            }
            let gap = now.saturating_duration_since(r.last_token_at);
            r.last_token_at = now;
            sink.on_tokens(&TokenEvent {
                replica: self.id,
                request_id: r.id,
                time: now,
                gap,
                count: produced,
                first,
                generated: r.generated,
            });
            any_done |= r.is_done();
            handoff |= self.role == ReplicaRole::Prefill && first && !r.is_done();
        }
        if any_done || handoff {
            self.retire_finished(now, sink);
        }
        if self.state.cohort_enabled && !sink.per_request_tokens() {
            self.join_cohort(&plan);
        }
        self.spare.push(plan);
    }

    /// Move the steady decoders among `plan`'s requests into the decode cohort: those
    /// that decode next, are not done, and have no block hash left to register (their
    /// KV blocks never need to be told apart).
    fn join_cohort(&mut self, plan: &StepPlan) {
        let st = &mut self.state;
        let bs = u64::from(self.cfg.block_size);
        let mut joined = false;
        for e in &plan.entries {
            let Some(r) = st.reqs.get_mut(e.slot) else {
                continue;
            };
            let hashes_done = r.block_hashes.len() as u64 <= u64::from(r.computed) / bs;
            if r.cohort_join.is_none()
                && r.is_decoding()
                && !r.is_done()
                && !r.in_flight
                && !r.swapped
                && hashes_done
            {
                st.cohort.join(e.slot, r);
                joined = true;
            }
        }
        if joined {
            let reqs = &st.reqs;
            st.running.retain(|&s| reqs[s].cohort_join.is_none());
        }
    }
    /// Cancel request `request_id` (a client went away): drop it from the waiting or
    /// running queue, free its KV blocks and forget it without a record. If it is in
    /// the iteration in flight, it leaves that iteration's plan (the iteration keeps
    /// its already-computed duration, as a real engine finishes the step it started).
    /// Returns false if no such request is live here.
    pub fn abort(&mut self, request_id: u64) -> bool {
        self.take(request_id).is_some()
    }

    /// [`Replica::abort`], returning the request's record as of `now` with `status`
    /// (a client that gave up: [`RequestRecord::given_up`]).
    pub fn abort_with_record(
        &mut self,
        request_id: u64,
        now: SimTime,
        status: RequestStatus,
    ) -> Option<RequestRecord> {
        let r = self.take(request_id)?;
        Some(RequestRecord::given_up(&r, self.id, now, status))
    }

    /// The ids of the requests live here (waiting, running or in flight), in slot
    /// order.
    pub fn live_ids(&self) -> Vec<u64> {
        self.state.reqs.iter().map(|(_, r)| r.id).collect()
    }

    /// When request `request_id` produced its first token: `None` if it is not live
    /// here, `Some(None)` if it has produced none yet.
    pub fn first_token_at(&self, request_id: u64) -> Option<Option<SimTime>> {
        self.state
            .reqs
            .iter()
            .find_map(|(_, r)| (r.id == request_id).then_some(r.first_token_at))
    }

    /// Remove request `request_id` from wherever it is here (see [`Replica::abort`]).
    fn take(&mut self, request_id: u64) -> Option<LiveRequest> {
        self.materialize_cohort();
        let st = &mut self.state;
        let slot = st
            .reqs
            .iter()
            .find_map(|(slot, r)| (r.id == request_id).then_some(slot))?;
        if let Some(pos) = st.running.iter().position(|&s| s == slot) {
            st.running.remove(pos);
            st.kv.free(seq(slot));
        } else {
            // Waiting requests (new, recompute- or swap-preempted) hold no blocks.
            st.waiting.retain(|&s| s != slot);
        }
        for (plan, _) in &mut self.in_flight {
            plan.entries.retain(|e| e.slot != slot);
        }
        Some(st.reqs.remove(slot))
    }

    /// Return the cohort's members to the running queue (see
    /// [`ReplicaState::materialize_cohort`]); an iteration in flight that includes them
    /// then lists them one by one.
    fn materialize_cohort(&mut self) {
        let pending = self
            .in_flight
            .iter_mut()
            .find(|(p, _)| p.cohort_decodes > 0);
        let slots = self.state.materialize_cohort(pending.is_some());
        if let Some((plan, _)) = pending {
            for slot in slots {
                self.state.reqs[slot].in_flight = true;
                plan.entries.push(Scheduled { slot, num_new: 1 });
            }
            plan.cohort_decodes = 0;
        }
    }

    /// Remove finished requests (and, on a prefill replica, requests that just produced
    /// their first token, which move to `handoffs`), freeing their KV: those of the
    /// running queue and the cohort's finished members (`leavers`), merged in admission
    /// order, the order in which the reference engine frees and reports them.
    fn retire_finished(&mut self, now: SimTime, sink: &mut dyn RequestSink) {
        let st = &mut self.state;
        let reqs = &st.reqs;
        let prefill_role = self.role == ReplicaRole::Prefill;
        let retiring = &mut self.retiring;
        retiring.clear();
        st.running.retain(|&slot| {
            let r = &reqs[slot];
            let hand_off =
                prefill_role && !r.is_done() && r.generated == 1 && r.pending_tokens() == 1;
            if r.is_done() || hand_off {
                retiring.push((slot, hand_off));
                false
            } else {
                true
            }
        });
        let leavers = std::mem::take(&mut self.leavers);
        let (mut a, mut b) = (0, 0);
        while a < retiring.len() || b < leavers.len() {
            let from_queue = match (retiring.get(a), leavers.get(b)) {
                (Some(&(qs, _)), Some(l)) => reqs_seq(&st.reqs, qs) < reqs_seq(&st.reqs, l.slot),
                (Some(_), None) => true,
                _ => false,
            };
            let (slot, hand_off) = if from_queue {
                a += 1;
                let (slot, hand_off) = retiring[a - 1];
                st.kv.free(seq(slot));
                (slot, hand_off)
            } else {
                b += 1;
                let l = leavers[b - 1];
                st.kv.free_with_bulk(seq(l.slot), l.bulk_blocks);
                (l.slot, false)
            };
            let r = st.reqs.remove(slot);
            if hand_off {
                self.handoffs.push(r);
            } else {
                sink.on_request_end(RequestRecord::finished(&r, self.id, now));
            }
        }
        self.leavers = leavers;
        self.leavers.clear();
    }
}

fn reqs_seq(reqs: &slab::Slab<LiveRequest>, slot: usize) -> u64 {
    reqs[slot].admit_seq
}

/// Chained hashes of a request's shareable full KV blocks of `block_size` tokens.
///
/// * With trace prefix hashes (`prefix_hash_ids`, each covering `hash_block_tokens`),
///   engine block `k` is hashable when the trace block holding its last token is known;
///   its hash chains every trace id up to that block, so two requests share engine
///   blocks exactly as far as their trace ids agree.
/// * With only a `session_id`, each turn's prompt is taken to start with the session's
///   earlier conversation, so every full block of prompt and output is hashed by
///   (session, block index).
/// * Otherwise the request shares nothing and gets no hashes.
pub fn block_hashes(req: &Request, block_size: u32) -> Vec<BlockHash> {
    let bs = u64::from(block_size);
    if !req.prefix_hash_ids.is_empty() && req.hash_block_tokens > 0 {
        let hb = u64::from(req.hash_block_tokens);
        let prompt_blocks = u64::from(req.input_tokens) / bs;
        let mut chain = Vec::with_capacity(req.prefix_hash_ids.len());
        let mut h = None;
        for &id in &req.prefix_hash_ids {
            let next = BlockHash::chained(h, id);
            chain.push(next);
            h = Some(next);
        }
        (0..prompt_blocks)
            .map_while(|k| {
                let last_token = (k + 1) * bs - 1;
                let t = (last_token / hb) as usize;
                chain.get(t).map(|&c| BlockHash::chained(Some(c), k))
            })
            .collect()
    } else if let Some(session) = req.session_id {
        let root = BlockHash::chained(None, session);
        let blocks = (u64::from(req.input_tokens) + u64::from(req.output_tokens)) / bs;
        (0..blocks)
            .map(|k| BlockHash::chained(Some(root), k))
            .collect()
    } else {
        Vec::new()
    }
}
