//! The discrete-event kernel: one clock, one event queue, replicas and a request source.
//!
//! Time is integer nanoseconds. Events are request arrivals (read lazily from a sorted
//! stream, never stored in bulk) and iteration ends. At one instant the order is fixed:
//! iteration ends first (in the order they were scheduled), then arrivals (in trace
//! order), then idle replicas start their next iteration. Nothing steps per token or per
//! tick: the clock jumps from event to event.

use crate::engine::{LiveRequest, Replica, ReplicaRole, RequestRecord, RequestSink};
use crate::error::{Error, Result};
use crate::hardware::LinkSpec;
use crate::trace::Request;
use crate::units::{SimDuration, SimTime};

pub mod api;
pub mod autoscale;
pub mod client;
#[cfg(test)]
mod equivalence;
pub mod failures;
pub mod queue;
pub mod router;
mod run;
#[cfg(test)]
mod tests;

pub use client::ClientPolicy;
pub use queue::EventQueue;
pub use router::{RoutePolicy, Router};
pub use run::RequestSource;

/// Watches the simulation as time advances (time series, invariant checks in tests).
pub trait Observer {
    /// Called just before the clock moves from `from` to `to` (`to > from`); the
    /// replicas are in the state they held throughout that interval.
    fn on_advance(&mut self, _from: SimTime, _to: SimTime, _replicas: &[Replica]) {}
    /// [`Observer::on_advance`], naming the replicas whose state may have changed since
    /// the previous call (every replica on the first call), so that an observer of many
    /// replicas can do work per change instead of per replica. The default ignores the
    /// list.
    fn on_advance_changed(
        &mut self,
        from: SimTime,
        to: SimTime,
        replicas: &[Replica],
        changed: &[usize],
    ) {
        let _ = changed;
        self.on_advance(from, to, replicas);
    }
    /// Called after an iteration starts on `replica` at `now` and lasts `duration`.
    fn on_step_start(&mut self, _now: SimTime, _duration: SimDuration, _replica: &Replica) {}
}

/// An observer that watches nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;
impl Observer for NoObserver {}

/// What the kernel knows at the end of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunStats {
    /// Time of the last event.
    pub end_time: SimTime,
    /// Requests that entered the simulation.
    pub requests_in: u64,
    /// Requests that ended (finished or rejected).
    pub requests_out: u64,
    /// Events processed (arrivals and iteration ends).
    pub events: u64,
    /// Requests whose client's timeout passed on their last attempt (see
    /// [`Simulation::with_clients`]); they end with a `timed_out` record.
    pub timed_out: u64,
    /// Replica failures (see [`Simulation::with_failures`]).
    pub outages: u64,
    /// Replica-seconds spent down (outage and restart) up to the end of the run.
    pub replica_down_s: f64,
}

/// A scheduled event.
enum Event {
    /// The iteration in flight on a replica ends.
    StepDone(u32),
    /// A request's KV, sent by a prefill replica, lands on a decode replica.
    Handoff(u32, Box<LiveRequest>),
    /// A pipeline stage of a replica frees up: it tries to start a batch.
    Wake(u32),
    /// A client gives up on the attempt with this engine id if it has not finished
    /// (timeout) or produced a token (abandonment).
    Deadline(u64, client::GiveUp),
    /// A client sends a request again after its backoff (the API server's ingress
    /// included).
    Retry(Box<client::Attempt>),
    /// A replica fails, for this long (none: a random outage).
    Fail(u32, Option<SimDuration>),
    /// A failed replica has restarted and takes requests again.
    Restarted(u32),
    /// The autoscaler evaluates its metric.
    AutoscaleTick,
    /// A replica the autoscaler started is up.
    ScaledUp(u32),
}

/// A simulation of a set of replicas behind a router.
pub struct Simulation {
    replicas: Vec<Replica>,
    router: Router,
    queue: EventQueue<Event>,
    now: SimTime,
    /// Replicas that take new requests (all but decode-only ones).
    entry: Vec<usize>,
    /// Decode-only replicas (disaggregated serving).
    decode: Vec<usize>,
    /// The link KV travels over from prefill to decode replicas.
    kv_link: Option<LinkSpec>,
    /// Handoffs on their way to each replica.
    in_transit: Vec<usize>,
    /// Lock-step groups (members' indices, ascending) and when each can next start an
    /// iteration (every rank's first pipeline stage free).
    lockstep: Vec<(Vec<usize>, SimTime)>,
    /// The API server in front of the replicas (none: clients talk to the engine).
    api: Option<api::ApiDelays>,
    /// What requests waited for one of the API server's handlers.
    api_waits: api::Waits,
    /// Simulated clients that time out, retry or leave (none: clients wait).
    clients: Option<client::Clients>,
    /// Replica failures (none: replicas never fail).
    failures: Option<failures::Failures>,
    /// The autoscaler (none: a fixed fleet).
    autoscaler: Option<autoscale::Autoscaler>,
    /// [`Simulation::run`] fails once the replicas have run more iterations than this.
    max_iterations: Option<u64>,
    /// Replicas touched since they last tried to start an iteration (only they can:
    /// an idle replica that did not start has nothing runnable until an event reaches
    /// it), and the flags that keep the list free of repeats.
    to_start: Vec<usize>,
    to_start_flag: Vec<bool>,
    /// Replicas whose state may have changed since the observer last saw time move.
    changed: Vec<usize>,
    changed_flag: Vec<bool>,
    /// The first replica fault (an iteration time the latency model could not give);
    /// [`Simulation::run`] ends with it.
    fault: Option<Error>,
    /// Ask every replica to start at every instant (the straightforward loop, kept as
    /// the oracle of the touched-replicas list in tests).
    #[cfg(test)]
    every_replica_tries: bool,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("replicas", &self.replicas)
            .field("now", &self.now)
            .finish()
    }
}

impl Simulation {
    /// A simulation over `replicas` (at least one) routed by `router`.
    pub fn new(replicas: Vec<Replica>, router: Router) -> Result<Self> {
        if replicas.is_empty() {
            return Err(Error::Config(
                "a simulation needs at least one replica".into(),
            ));
        }
        let n = replicas.len();
        let entry: Vec<usize> = (0..replicas.len())
            .filter(|&i| replicas[i].role() != ReplicaRole::Decode)
            .collect();
        let decode: Vec<usize> = (0..replicas.len())
            .filter(|&i| replicas[i].role() == ReplicaRole::Decode)
            .collect();
        let prefill = replicas.iter().any(|r| r.role() == ReplicaRole::Prefill);
        if entry.is_empty() {
            return Err(Error::Config(
                "a cluster needs at least one replica that takes new requests (unified or prefill)"
                    .into(),
            ));
        }
        if prefill && decode.is_empty() {
            return Err(Error::Config(
                "prefill replicas need at least one decode replica to hand requests to".into(),
            ));
        }
        if !prefill && !decode.is_empty() {
            return Err(Error::Config(
                "decode replicas need at least one prefill replica".into(),
            ));
        }
        let lockstep = lockstep_groups(&replicas);
        Ok(Simulation {
            replicas,
            router,
            queue: EventQueue::new(),
            now: SimTime::ZERO,
            entry,
            decode,
            kv_link: None,
            in_transit: vec![0; n],
            lockstep,
            max_iterations: None,
            api: None,
            api_waits: api::Waits::default(),
            clients: None,
            failures: None,
            autoscaler: None,
            to_start: (0..n).collect(),
            to_start_flag: vec![true; n],
            changed: (0..n).collect(),
            changed_flag: vec![true; n],
            fault: None,
            #[cfg(test)]
            every_replica_tries: false,
        })
    }

    /// Put an API server in front of the replicas: [`Simulation::run`] delays every
    /// request and reports every latency as its client sees them (see [`api`]).
    pub fn with_api_server(mut self, server: &crate::stack::ApiServer) -> Self {
        let engines = u32::try_from(self.replicas.len()).unwrap_or(u32::MAX);
        let d = api::ApiDelays::of(server, engines);
        self.api = (!d.is_zero()).then_some(d);
        self
    }

    /// Make [`Simulation::run`] end with [`Error::IterationLimit`] as soon as the
    /// replicas together have started more than `max` iterations: a bound on the work
    /// of a run whose length is not known in advance (say, a batch preempted over and
    /// over). Without it (the default) a run goes on until every request has ended.
    pub fn with_max_iterations(mut self, max: u64) -> Self {
        self.max_iterations = Some(max);
        self
    }

    /// Prefill replicas send KV to decode replicas over `link` (its point-to-point cost
    /// `send_s`); without one, the transfer is instantaneous.
    pub fn with_kv_transfer_link(mut self, link: LinkSpec) -> Self {
        self.kv_link = Some(link);
        self
    }

    /// Ask every replica to start at every instant instead of those an event reached.
    #[cfg(test)]
    pub(crate) fn with_every_replica_trying(mut self) -> Self {
        self.every_replica_tries = true;
        self
    }

    /// Note that an event reached replica `i`: it may start an iteration, and the
    /// observer hears that it changed.
    fn touch(&mut self, i: usize) {
        if !std::mem::replace(&mut self.to_start_flag[i], true) {
            self.to_start.push(i);
        }
        self.mark_changed(i);
    }

    fn mark_changed(&mut self, i: usize) {
        if !std::mem::replace(&mut self.changed_flag[i], true) {
            self.changed.push(i);
        }
    }

    /// Tell the observer that the clock moves from the current time to `to`.
    fn advance(&mut self, to: SimTime, observer: &mut dyn Observer) {
        observer.on_advance_changed(self.now, to, &self.replicas, &self.changed);
        for &i in &self.changed {
            self.changed_flag[i] = false;
        }
        self.changed.clear();
        self.now = to;
    }

    /// The replicas.
    pub fn replicas(&self) -> &[Replica] {
        &self.replicas
    }

    /// The simulated clock.
    pub fn now(&self) -> SimTime {
        self.now
    }

    /// When the next iteration ends, if any is in flight.
    pub fn next_event_time(&self) -> Option<SimTime> {
        self.queue.peek_time()
    }

    /// Requests in the replicas (waiting or running).
    pub fn num_outstanding(&self) -> usize {
        self.replicas.iter().map(Replica::num_outstanding).sum()
    }

    /// End every iteration due before `t` (starting idle replicas after each instant, as
    /// a run does), then those due exactly at `t`, and set the clock to `t`. Replicas
    /// idle at `t` are not started: add the arrivals at `t` first, then call
    /// [`Simulation::start_idle`]. `t` before the clock is a caller bug.
    pub fn process_until(
        &mut self,
        t: SimTime,
        sink: &mut dyn RequestSink,
        observer: &mut dyn Observer,
    ) -> u64 {
        assert!(t >= self.now, "time went backwards: {t} < {}", self.now);
        let mut events = 0;
        while let Some(te) = self.queue.peek_time().filter(|&te| te <= t) {
            if te > self.now {
                self.advance(te, observer);
            }
            while self.queue.peek_time() == Some(te) {
                let (_, event) = self.queue.pop().expect("peeked");
                events += 1;
                match event {
                    Event::StepDone(replica) => {
                        self.touch(replica as usize);
                        let r = &mut self.replicas[replica as usize];
                        client::through(&mut self.clients, sink, |s| r.finish_step(te, s));
                        if r.role() == ReplicaRole::Prefill {
                            self.send_handoffs(replica as usize, te);
                        }
                    }
                    Event::Handoff(to, req) => {
                        self.touch(to as usize);
                        self.in_transit[to as usize] -= 1;
                        let r = &mut self.replicas[to as usize];
                        client::through(&mut self.clients, sink, |s| r.accept_handoff(*req, te, s));
                    }
                    Event::Wake(replica) => self.touch(replica as usize),
                    Event::Deadline(id, why) => self.give_up(id, why, sink),
                    Event::Fail(replica, down_for) => self.fail(replica, down_for, sink),
                    Event::Restarted(replica) => self.restarted(replica),
                    Event::AutoscaleTick => self.autoscale(),
                    Event::ScaledUp(replica) => self.scaled_up(replica),
                    Event::Retry(attempt) => {
                        if let Some(c) = self.clients.as_mut() {
                            c.backing_off -= 1;
                        }
                        self.send(*attempt, sink);
                    }
                }
            }
            if te < t {
                self.start_idle(observer);
            }
        }
        if t > self.now {
            self.advance(t, observer);
        }
        events
    }

    /// Send the requests that finished prefill on `from` to decode replicas: each lands
    /// after its KV (prompt and first token, at the prefill replica's bytes per token
    /// per GPU, every TP rank sending its shard in parallel) crosses the KV link. The
    /// target is the decode replica with the fewest outstanding requests.
    fn send_handoffs(&mut self, from: usize, now: SimTime) {
        let handoffs = self.replicas[from].take_handoffs();
        let kv_bytes_per_token = self.replicas[from].config().kv_bytes_per_token;
        for req in handoffs {
            let to = *self
                .decode
                .iter()
                .min_by_key(|&&i| (self.replicas[i].num_outstanding() + self.in_transit[i], i))
                .expect("checked at construction");
            self.in_transit[to] += 1;
            let bytes = f64::from(req.computed) * kv_bytes_per_token;
            let delay = self.kv_link.as_ref().map_or(SimDuration::ZERO, |l| {
                SimDuration::from_secs_f64(l.send_s(bytes))
            });
            self.queue
                .push(now + delay, Event::Handoff(to as u32, Box::new(req)));
        }
    }

    /// Route `req` to a replica at the current time (its trace arrival is replaced by
    /// the clock) and return the replica's index. It may be rejected at once, through
    /// `sink`.
    pub fn add_request(&mut self, req: Request, sink: &mut dyn RequestSink) -> usize {
        let now = self.now;
        self.send(
            client::Attempt {
                request: req,
                first_arrival: now,
                arrival: now,
                number: 1,
            },
            sink,
        )
    }

    /// Send one attempt of a request to a replica now (see
    /// [`Simulation::add_request`]); with clients, under an engine id of its own and
    /// with its client's deadlines.
    fn send(&mut self, mut attempt: client::Attempt, sink: &mut dyn RequestSink) -> usize {
        let now = self.now;
        attempt.arrival = now;
        let mut req = attempt.request.clone();
        if let Some(c) = self.clients.as_mut() {
            // The client's clock started before the API server handed the request over.
            // A first attempt may have queued for the server's handlers (a retry is
            // handled at once).
            let waited = if attempt.number == 1 {
                self.api_waits.peek(req.id)
            } else {
                SimDuration::ZERO
            };
            let ingress = self
                .api
                .map_or(SimDuration::ZERO, |d| d.ingress(req.input_tokens))
                + waited;
            let sent = SimTime::from_nanos(now.as_nanos().saturating_sub(ingress.as_nanos()));
            let policy = c.policy;
            req.id = c.register(attempt);
            for (after, why) in [
                (policy.timeout, client::GiveUp::Timeout),
                (policy.abandon_after, client::GiveUp::Abandon),
            ] {
                if let Some(d) = after {
                    self.queue.push(sent + d, Event::Deadline(req.id, why));
                }
            }
        }
        req.arrival = now;
        if self.entry.is_empty() {
            // Every replica is down: the load balancer turns the request away.
            let rec = RequestRecord::rejected(req.id, 0, now, req.input_tokens, req.output_tokens);
            self.lost(rec, crate::engine::RequestStatus::Failed, sink);
            return 0;
        }
        let r = self.router.route_among(&req, &self.replicas, &self.entry);
        self.touch(r);
        let replica = &mut self.replicas[r];
        client::through(&mut self.clients, sink, |s| {
            replica.add_request(req, now, s)
        });
        r
    }

    /// Replica `i` takes new requests again (the router's entry list stays sorted).
    fn admit(&mut self, i: usize) {
        if let Err(pos) = self.entry.binary_search(&i) {
            self.entry.insert(pos, i);
        }
        self.touch(i);
    }

    /// An error unless every replica is unified and none steps in lock-step: what
    /// failures and autoscaling support (`what` names the feature).
    fn unified_only(&self, what: &str) -> Result<()> {
        if self
            .replicas
            .iter()
            .any(|r| r.role() != ReplicaRole::Unified || r.lockstep().is_some())
        {
            return Err(Error::Config(format!(
                "{what} simulated for clusters of unified replicas only (no prefill/decode roles, no data-parallel lock-step ranks)"
            )));
        }
        Ok(())
    }

    /// Cancel a live request wherever it is (see [`Replica::abort`]); it ends without a
    /// record. Returns false if no replica holds it. Not for runs with simulated
    /// clients ([`Simulation::with_clients`]), whose requests go by engine ids of their
    /// own.
    pub fn abort(&mut self, request_id: u64) -> bool {
        match self.replicas.iter_mut().position(|r| r.abort(request_id)) {
            Some(i) => {
                self.touch(i);
                true
            }
            None => false,
        }
    }

    /// The error that stopped a replica since this was last asked: an iteration whose
    /// time the latency model could not give ([`Error::InvalidStepTime`]). A caller
    /// driving [`Simulation::start_idle`] itself checks this after each call.
    pub fn take_fault(&mut self) -> Option<Error> {
        self.fault.take()
    }

    /// Start the next iteration on every idle replica that has runnable work. The ranks
    /// of a lock-step group start an iteration together, each taking as long as the
    /// slowest of those with work (they meet in every MoE layer), and start the next
    /// once every rank's first pipeline stage has taken this one: without pipeline
    /// parallelism when it is over, with it as soon as the next micro-batch can enter
    /// (the ranks of each stage meet there, the stages pipeline as a lone replica's do).
    pub fn start_idle(&mut self, observer: &mut dyn Observer) {
        let now = self.now;
        for g in 0..self.lockstep.len() {
            let (members, free) = &mut self.lockstep[g];
            if *free > now {
                continue;
            }
            let mut slowest = SimDuration::ZERO;
            let mut started = Vec::new();
            for &i in members.iter() {
                if let Some(d) = self.replicas[i].plan_step(now) {
                    slowest = slowest.max(d);
                    started.push(i);
                }
                if let Some(e) = self.replicas[i].take_fault() {
                    self.fault.get_or_insert(e);
                }
            }
            let mut pipelined = false;
            for i in started {
                let replica = &mut self.replicas[i];
                let s = replica.launch_step(now, slowest);
                observer.on_step_start(now, slowest, replica);
                self.queue.push(s.done, Event::StepDone(replica.id()));
                *free = (*free).max(s.first_stage_free);
                pipelined |= s.first_stage_free < s.done;
                if !std::mem::replace(&mut self.changed_flag[i], true) {
                    self.changed.push(i);
                }
            }
            if pipelined {
                // Nothing else may happen when the first stages free up: come back then.
                self.queue.push(*free, Event::Wake(members[0] as u32));
            }
        }
        // In index order, as if every replica were asked (those not touched since they
        // last tried have nothing to start).
        let mut candidates = std::mem::take(&mut self.to_start);
        #[cfg(test)]
        if self.every_replica_tries {
            candidates = (0..self.replicas.len()).collect();
        }
        candidates.sort_unstable();
        let mut retry = Vec::new();
        for &i in &candidates {
            self.to_start_flag[i] = false;
            let replica = &mut self.replicas[i];
            if replica.lockstep().is_some() {
                continue;
            }
            let preemptions = replica.counters().preemptions;
            let started = replica.try_start_step(now);
            if let Some(e) = replica.take_fault() {
                self.fault.get_or_insert(e);
            }
            if started.is_none() && replica.counters().preemptions != preemptions {
                // It preempted and ran nothing: it admits no new request in the step
                // that preempted, but may at the next instant anything happens.
                retry.push(i);
            }
            if let Some(s) = started {
                observer.on_step_start(now, s.done.saturating_duration_since(now), replica);
                self.queue.push(s.done, Event::StepDone(replica.id()));
                if s.first_stage_free < s.done {
                    // The first stage can take another batch before this one is out.
                    self.queue.push(s.first_stage_free, Event::Wake(i as u32));
                }
            }
            // Scheduling may change a replica that does not start (a preemption).
            self.mark_changed(i);
        }
        candidates.clear();
        self.to_start = candidates;
        for i in retry {
            if !std::mem::replace(&mut self.to_start_flag[i], true) {
                self.to_start.push(i);
            }
        }
    }
}

/// The lock-step groups of `replicas`, in order of first member.
fn lockstep_groups(replicas: &[Replica]) -> Vec<(Vec<usize>, SimTime)> {
    let mut groups: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
    for (i, r) in replicas.iter().enumerate() {
        if let Some(k) = r.lockstep() {
            groups.entry(k).or_default().push(i);
        }
    }
    let mut v: Vec<_> = groups.into_values().map(|m| (m, SimTime::ZERO)).collect();
    v.sort_by_key(|(m, _)| m[0]);
    v
}
