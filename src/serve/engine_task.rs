//! The engine thread: the only owner of the [`Simulation`], paced by the wall clock.
//!
//! Simulated time is `(wall − start) × speedup`. The thread waits until the earlier of
//! the next simulated event (an iteration end, mapped back to the wall clock) and the
//! next command from a handler; then it adds the requests that arrived, each at the
//! simulated instant its HTTP request was received (so a client's clock and the
//! simulation's start together), applies aborts, advances the simulation to the present,
//! starts idle replicas and sends each request's tokens to its own channel.
//!
//! Tokens are released once the wall clock reaches their simulated time. An async
//! timer would add up to a millisecond (tokio's resolution); the thread instead blocks
//! on its command channel until [`SPIN_BEFORE`] ahead of the event, then spins on the
//! channel until the event is due, so releases land within microseconds of their time
//! (measured by `servesim:token_release_lag_seconds`). Requests from all clients share
//! one simulation, so they batch, queue and compete for KV blocks exactly as in
//! `servesim simulate`.
//!
//! Handlers never touch the simulation: they send [`Command`]s over one channel (so a
//! submission and its abort stay in order) and read [`StreamEvent`]s from a
//! per-request unbounded channel. The thread never blocks on a client.

use super::errors::ApiError;
use super::metrics::{RequestParams, ServerMetrics};
use crate::engine::{Replica, RequestRecord, RequestSink, RequestStatus, TokenEvent};
use crate::sim::api::ApiDelays;
use crate::sim::{Observer, Simulation};
use crate::trace::Request;
use crate::units::{SimDuration, SimTime};
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long before an event the engine stops blocking and polls instead (a blocked
/// thread wakes some tens of microseconds late).
pub(crate) const SPIN_BEFORE: Duration = Duration::from_micros(300);

/// The sending end handlers hold.
pub(crate) type CommandSender = std_mpsc::Sender<Command>;

/// What a handler asks of the engine.
#[derive(Debug)]
pub(crate) enum Command {
    /// A new request.
    Submit(Submission),
    /// The client of this request went away: cancel it and free its KV blocks.
    Abort(u64),
    /// Render `/metrics`.
    Metrics(oneshot::Sender<String>),
    /// Stop admitting requests; cancel the ones still running after `grace`.
    Drain {
        /// Wall time left to in-flight requests.
        grace: Duration,
    },
}

/// A request handed to the engine: what the handler submitted, and where its events go.
#[derive(Debug)]
pub(crate) struct Submission {
    /// The request.
    pub(crate) req: NewRequest,
    /// Where its events go.
    pub(crate) events: mpsc::UnboundedSender<StreamEvent>,
}

/// What happens to one request, in order: `Accepted` or `Failed`; then `Tokens`… and
/// `Finished`, or `Failed` if it is cancelled by a shutdown.
#[derive(Debug, PartialEq)]
pub(crate) enum StreamEvent {
    /// It entered the simulation.
    Accepted,
    /// `count` output tokens were released.
    Tokens {
        /// Tokens released together (more than 1 with multi-step scheduling).
        count: u32,
    },
    /// Its last token was released; `cached_tokens` of its prompt came from the prefix
    /// cache.
    Finished {
        /// Prompt tokens served from the prefix cache.
        cached_tokens: u32,
    },
    /// It was refused or cancelled.
    Failed(ApiError),
}

/// A wall-clock span that stands for "never" (a century).
const FOREVER: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Maps the simulated clock to the wall clock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WallClock {
    start: Instant,
    speedup: f64,
    /// How far the engine's clock runs behind the clients' (the API server's egress
    /// per token): a token the engine produces at `t` reaches its client at `t + lag`.
    lag: SimDuration,
}

impl WallClock {
    /// Simulated time zero is now; `speedup` is finite and positive (checked by the
    /// caller).
    pub(crate) fn start(speedup: f64) -> Self {
        WallClock {
            start: Instant::now(),
            speedup,
            lag: SimDuration::ZERO,
        }
    }

    /// The engine's clock runs `lag` behind the clients'.
    pub(crate) fn with_lag(mut self, lag: SimDuration) -> Self {
        self.lag = lag;
        self
    }

    /// The engine's time at wall time `at`.
    fn engine_time(&self, at: Instant) -> SimTime {
        self.engine_time_of(self.sim_time(at))
    }

    /// The engine's time when the clients' simulated clock reads `t`.
    fn engine_time_of(&self, t: SimTime) -> SimTime {
        SimTime::from_nanos(t.as_nanos().saturating_sub(self.lag.as_nanos()))
    }

    /// The wall time at which the engine's clock reaches `t`.
    fn engine_wall_time(&self, t: SimTime) -> Instant {
        self.wall_time(SimTime::from_nanos(
            t.as_nanos().saturating_add(self.lag.as_nanos()),
        ))
    }

    /// The simulated time at wall time `at`.
    fn sim_time(&self, at: Instant) -> SimTime {
        let ns = at.saturating_duration_since(self.start).as_nanos() as f64 * self.speedup;
        // `as` saturates: a (centuries-long) overflow pins the clock at its maximum.
        SimTime::from_nanos(ns as u64)
    }

    /// The wall time at which simulated time `t` is reached.
    pub(crate) fn wall_time(&self, t: SimTime) -> Instant {
        let ns = (t.as_nanos() as f64 / self.speedup).ceil();
        let far = FOREVER;
        let d = if ns < far.as_nanos() as f64 {
            Duration::from_nanos(ns as u64)
        } else {
            far
        };
        self.start.checked_add(d).unwrap_or(self.start + far / 100)
    }
}

/// Settings of the engine task.
#[derive(Clone, Debug)]
pub(crate) struct EngineSettings {
    /// Wall-clock pacing.
    pub(crate) clock: WallClock,
    /// Refuse requests when this many are waiting.
    pub(crate) max_queue: Option<usize>,
    /// Model name for `/metrics`.
    pub(crate) model_name: String,
    /// The context window (token-count histogram buckets reach it).
    pub(crate) max_model_len: u32,
    /// The serving stack's API server: a request reaches the engine its ingress after
    /// the HTTP request was received, as in `simulate`.
    pub(crate) api: ApiDelays,
}

/// A live request's client.
struct Client {
    events: mpsc::UnboundedSender<StreamEvent>,
    prompt_tokens: u32,
    params: RequestParams,
}

/// The task's state.
pub(crate) struct EngineTask {
    sim: Simulation,
    clients: HashMap<u64, Client>,
    metrics: ServerMetrics,
    settings: EngineSettings,
    /// Set once shutdown begins: new requests are refused from then on.
    draining: bool,
    /// When requests still in flight get cancelled.
    drain_deadline: Option<Instant>,
    /// Why the engine stopped (its latency model gave an invalid iteration time):
    /// every request from then on is refused with this message.
    broken: Option<String>,
    /// Requests received but still in the API server, by when they reach the engine
    /// (engine time) and id.
    pending: BTreeMap<(SimTime, u64), Submission>,
}

/// Forwards simulation output to clients and metrics.
struct Dispatch<'a> {
    clients: &'a mut HashMap<u64, Client>,
    metrics: &'a mut ServerMetrics,
    /// Requests whose client is gone (their channel is closed).
    gone: &'a mut Vec<u64>,
    /// The simulated present and the speedup, to measure release lag.
    now: SimTime,
    speedup: f64,
    /// The API server's delays: latencies in `/metrics` run from the HTTP request's
    /// receipt, as vLLM's run from its frontend's arrival time.
    api: ApiDelays,
}

impl RequestSink for Dispatch<'_> {
    fn on_tokens(&mut self, e: &TokenEvent) {
        let Some(c) = self.clients.get(&e.request_id) else {
            return;
        };
        let mut seen = *e;
        if e.first {
            seen.gap += self.api.ingress(c.prompt_tokens);
        }
        self.metrics.on_tokens(&seen, c.prompt_tokens);
        let lag = self.now.saturating_duration_since(e.time).as_secs_f64() / self.speedup;
        self.metrics.on_release_lag(lag);
        if c.events
            .send(StreamEvent::Tokens { count: e.count })
            .is_err()
        {
            self.gone.push(e.request_id);
        }
    }

    fn on_request_end(&mut self, r: RequestRecord) {
        let Some(c) = self.clients.remove(&r.request_id) else {
            return;
        };
        let event = match r.status {
            RequestStatus::Finished => {
                let mut seen = r.clone();
                let ingress = self.api.ingress(r.input_tokens).as_secs_f64();
                seen.ttft_s += ingress;
                seen.e2e_s += ingress;
                self.metrics.on_finished(&seen, &c.params);
                StreamEvent::Finished {
                    cached_tokens: r.prefix_hit_tokens,
                }
            }
            RequestStatus::Rejected => StreamEvent::Failed(ApiError::bad_request(format!(
                "the request needs {} tokens of KV cache, more than a replica holds: reduce the prompt or max_tokens",
                u64::from(r.input_tokens) + u64::from(r.output_tokens) - 1
            ))),
            // The server's simulation has no simulated clients; their own HTTP
            // clients time out instead.
            RequestStatus::TimedOut | RequestStatus::Abandoned | RequestStatus::Failed => StreamEvent::Failed(
                ApiError::unavailable("the request was given up by its simulated client"),
            ),
        };
        let _ = c.events.send(event);
    }
}

/// The tokens of each iteration started (`vllm:iteration_tokens_total`), by replica.
#[derive(Default)]
struct Iterations(Vec<(u32, u64)>);

impl Observer for Iterations {
    fn on_step_start(&mut self, _now: SimTime, _duration: SimDuration, replica: &Replica) {
        self.0
            .push((replica.id(), replica.tokens_in_newest_batch()));
    }
}

impl Iterations {
    fn record(self, metrics: &mut ServerMetrics) {
        for (replica, tokens) in self.0 {
            metrics.on_iteration(replica, tokens);
        }
    }
}

impl EngineTask {
    /// A task over `sim`, which must be fresh (clock at zero, nothing in flight).
    pub(crate) fn new(sim: Simulation, settings: EngineSettings) -> Self {
        let n = sim.replicas().len();
        EngineTask {
            sim,
            clients: HashMap::new(),
            broken: None,
            metrics: ServerMetrics::new(n, settings.max_model_len),
            settings,
            draining: false,
            drain_deadline: None,
            pending: BTreeMap::new(),
        }
    }

    /// Run until every command sender is dropped (the server stopped and every
    /// in-flight response ended). Blocks: call it on a thread of its own.
    pub(crate) fn run(mut self, rx: std_mpsc::Receiver<Command>) {
        let mut cmds = Vec::with_capacity(64);
        loop {
            let next_event = match (self.sim.next_event_time(), self.next_entry()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let wake = next_event.map(|t| self.settings.clock.engine_wall_time(t));
            let until = match (wake, self.drain_deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let mut due = None;
            match wait(&rx, until) {
                Wait::Command(c) => cmds.push(c),
                Wait::Closed => break,
                Wait::Due => {
                    if self.drain_deadline.is_some_and(|d| Instant::now() >= d) {
                        self.cancel_all();
                    }
                    due = next_event;
                }
            }
            // Commands that arrived meanwhile are taken now too.
            while let Ok(c) = rx.try_recv() {
                cmds.push(c);
            }
            self.step(due, &mut cmds);
        }
        self.cancel_all();
    }

    /// When the next request leaves the API server for the engine.
    fn next_entry(&self) -> Option<SimTime> {
        self.pending.keys().next().map(|&(t, _)| t)
    }

    /// Apply `cmds`, hand the engine the requests whose API-server time has passed
    /// (each at its own instant), then advance to the present.
    fn step(&mut self, due: Option<SimTime>, cmds: &mut Vec<Command>) {
        let mut metric_replies = Vec::new();
        for cmd in cmds.drain(..) {
            match cmd {
                Command::Submit(s) => {
                    // Received at `s.req.received` on the clients' clock; in the engine
                    // after the API server's ingress (and the engine's lag).
                    let clock = &self.settings.clock;
                    let sent = clock.sim_time(s.req.received);
                    let entry =
                        clock.engine_time_of(sent + self.settings.api.ingress(s.req.prompt_tokens));
                    self.pending.insert((entry, s.req.id), s);
                }
                Command::Abort(id) => self.abort(id),
                Command::Metrics(reply) => metric_replies.push(reply),
                Command::Drain { grace } => {
                    self.draining = true;
                    if !self.clients.is_empty() || !self.pending.is_empty() {
                        let now = Instant::now();
                        // A grace too long to represent means "never cancel".
                        let at = now.checked_add(grace).unwrap_or(now + FOREVER);
                        self.drain_deadline = Some(self.drain_deadline.map_or(at, |d| d.min(at)));
                    }
                }
            }
        }
        let mut now = self.settings.clock.engine_time(Instant::now());
        // The wait ended for `due`; float rounding must not leave that event behind.
        if let Some(t) = due {
            now = now.max(t);
        }
        while let Some(entry) = self.next_entry().filter(|&t| t <= now) {
            let Some((_, s)) = self.pending.pop_first() else {
                break;
            };
            self.advance_to(entry);
            self.submit(s);
            self.start_idle();
        }
        self.advance_to(now);
        self.start_idle();
        for reply in metric_replies {
            let _ = reply.send(
                self.metrics
                    .render(&self.settings.model_name, self.sim.replicas()),
            );
        }
    }

    /// Start the idle replicas that have work, now.
    fn start_idle(&mut self) {
        let mut steps = Iterations::default();
        self.sim.start_idle(&mut steps);
        steps.record(&mut self.metrics);
        if let Some(e) = self.sim.take_fault() {
            self.stop_broken(e);
        }
    }

    /// Process every event up to simulated time `t` (or the present of the simulation,
    /// if later), releasing tokens to their clients.
    fn advance_to(&mut self, t: SimTime) {
        let t = t.max(self.sim.now());
        let mut gone = Vec::new();
        let mut dispatch = Dispatch {
            clients: &mut self.clients,
            metrics: &mut self.metrics,
            gone: &mut gone,
            now: self.settings.clock.engine_time(Instant::now()).max(t),
            speedup: self.settings.clock.speedup,
            api: self.settings.api,
        };
        let mut steps = Iterations::default();
        self.sim.process_until(t, &mut dispatch, &mut steps);
        steps.record(&mut self.metrics);
        for id in gone.drain(..) {
            self.abort(id);
        }
    }

    fn submit(&mut self, s: Submission) {
        let refuse = |e: ApiError| {
            let _ = s.events.send(StreamEvent::Failed(e));
        };
        if let Some(why) = &self.broken {
            return refuse(ApiError::unavailable(why.clone()));
        }
        if self.draining {
            return refuse(ApiError::unavailable("the server is shutting down"));
        }
        if let Some(max) = self.settings.max_queue {
            let waiting: usize = self.sim.replicas().iter().map(|r| r.num_waiting()).sum();
            if waiting >= max {
                return refuse(ApiError::queue_full(waiting));
            }
        }
        if self.clients.contains_key(&s.req.id) {
            return refuse(ApiError::bad_request("duplicate request id"));
        }
        let mut req = Request::new(
            s.req.id,
            self.sim.now(),
            s.req.prompt_tokens,
            s.req.output_tokens,
        );
        req.prefix_hash_ids = s.req.prefix_hash_ids;
        self.clients.insert(
            s.req.id,
            Client {
                events: s.events.clone(),
                prompt_tokens: s.req.prompt_tokens,
                params: s.req.params,
            },
        );
        let mut gone = Vec::new();
        let mut dispatch = Dispatch {
            clients: &mut self.clients,
            metrics: &mut self.metrics,
            gone: &mut gone,
            now: self.sim.now(),
            speedup: self.settings.clock.speedup,
            api: self.settings.api,
        };
        self.sim.add_request(req, &mut dispatch);
        // A request the engine can never run was rejected (and told) already.
        if self.clients.contains_key(&s.req.id) && s.events.send(StreamEvent::Accepted).is_err() {
            self.abort(s.req.id);
        }
    }

    fn abort(&mut self, id: u64) {
        if self.clients.remove(&id).is_some() {
            self.sim.abort(id);
        }
        self.pending.retain(|&(_, p), _| p != id);
    }

    /// The engine cannot go on (its latency model gave an invalid time): say so once
    /// on stderr, fail every live request and refuse new ones with the reason.
    fn stop_broken(&mut self, e: crate::Error) {
        let why = format!("the simulated engine stopped: {e}");
        eprintln!("error: {why}");
        self.broken = Some(why.clone());
        self.cancel_all_with(&why);
    }

    /// Cancel every live request (shutdown).
    fn cancel_all(&mut self) {
        self.cancel_all_with("the server shut down before the request finished");
    }

    /// Cancel every live request, telling each client `why`.
    fn cancel_all_with(&mut self, why: &str) {
        self.drain_deadline = None;
        for (_, s) in std::mem::take(&mut self.pending) {
            let _ = s
                .events
                .send(StreamEvent::Failed(ApiError::unavailable(why)));
        }
        let mut ids: Vec<u64> = self.clients.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(c) = self.clients.remove(&id) {
                let _ = c
                    .events
                    .send(StreamEvent::Failed(ApiError::unavailable(why)));
            }
            self.sim.abort(id);
        }
    }
}

/// A handler's end of one request: its events, and an abort sent on drop unless the
/// request ended (so a client that disconnects frees its KV blocks).
#[derive(Debug)]
pub(crate) struct RequestHandle {
    id: u64,
    events: mpsc::UnboundedReceiver<StreamEvent>,
    commands: CommandSender,
    ended: bool,
}

/// What a handler submits.
#[derive(Debug)]
pub(crate) struct NewRequest {
    /// Unique id (also the simulated request id).
    pub(crate) id: u64,
    /// Prompt length.
    pub(crate) prompt_tokens: u32,
    /// Output length.
    pub(crate) output_tokens: u32,
    /// Chained hashes of the prompt's 16-token blocks (empty when its ids are unknown):
    /// requests sharing a prefix share cached KV blocks.
    pub(crate) prefix_hash_ids: Vec<u64>,
    /// When its HTTP request was received: its simulated arrival.
    pub(crate) received: Instant,
    /// What the client asked for (for `/metrics`).
    pub(crate) params: RequestParams,
}

impl RequestHandle {
    /// Submit a request and wait until the engine accepts or refuses it.
    pub(crate) async fn submit(
        commands: &CommandSender,
        req: NewRequest,
    ) -> Result<Self, ApiError> {
        let (tx, rx) = mpsc::unbounded_channel();
        // Built before sending, so that a disconnect at any point aborts.
        let mut handle = RequestHandle {
            id: req.id,
            events: rx,
            commands: commands.clone(),
            ended: false,
        };
        let sub = Submission { req, events: tx };
        if commands.send(Command::Submit(sub)).is_err() {
            handle.ended = true;
            return Err(ApiError::unavailable("the engine has stopped"));
        }
        match handle.next().await {
            Some(StreamEvent::Accepted) => Ok(handle),
            Some(StreamEvent::Failed(e)) => Err(e),
            _ => Err(ApiError::unavailable("the engine has stopped")),
        }
    }

    /// The next event; None once the engine is gone.
    pub(crate) async fn next(&mut self) -> Option<StreamEvent> {
        let e = self.events.recv().await;
        if matches!(
            e,
            None | Some(StreamEvent::Finished { .. } | StreamEvent::Failed(_))
        ) {
            self.ended = true;
        }
        e
    }
}

impl Drop for RequestHandle {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.commands.send(Command::Abort(self.id));
        }
    }
}

/// Why [`wait`] returned.
enum Wait {
    /// A command arrived.
    Command(Command),
    /// `until` was reached.
    Due,
    /// Every sender is gone.
    Closed,
}

/// The next command, or [`Wait::Due`] once `until` is reached (never when `None`):
/// block until [`SPIN_BEFORE`] ahead of `until`, then spin, so that the return is
/// within microseconds of `until`.
fn wait(rx: &std_mpsc::Receiver<Command>, until: Option<Instant>) -> Wait {
    let Some(until) = until else {
        return rx.recv().map_or(Wait::Closed, Wait::Command);
    };
    if let Some(block) = until
        .checked_sub(SPIN_BEFORE)
        .and_then(|t| t.checked_duration_since(Instant::now()))
    {
        match rx.recv_timeout(block) {
            Ok(c) => return Wait::Command(c),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return Wait::Closed,
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
    loop {
        match rx.try_recv() {
            Ok(c) => return Wait::Command(c),
            Err(std_mpsc::TryRecvError::Disconnected) => return Wait::Closed,
            Err(std_mpsc::TryRecvError::Empty) => {}
        }
        if Instant::now() >= until {
            return Wait::Due;
        }
        // Not yield_now: on a busy machine a yielded thread can lose the core for a
        // whole scheduler slice, far longer than the wait.
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_maps_both_ways() {
        let c = WallClock::start(10.0);
        let t = SimTime::from_nanos(1_000_000_000);
        let w = c.wall_time(t);
        assert_eq!(w - c.start, Duration::from_millis(100));
        assert_eq!(c.sim_time(w), t);
        // Far-future events do not overflow the wall clock.
        let _ = c.wall_time(SimTime::MAX);
        assert_eq!(c.sim_time(c.start), SimTime::ZERO);
    }
}
