//! The engine task: the only owner of the [`Simulation`], paced by the wall clock.
//!
//! Simulated time is `(wall − start) × speedup`. The task sleeps until the earlier of the
//! next simulated event (an iteration end, mapped back to the wall clock) and the next
//! command from a handler; then it advances the simulation to the current simulated
//! time, adds the requests that arrived (their arrival is that instant), applies aborts,
//! starts idle replicas and sends each request's tokens to its own channel. A token is
//! therefore released once the wall clock has reached its simulated time (plus the
//! timer's latency, about a millisecond). Requests from all clients share one
//! simulation, so they batch, queue and compete for KV blocks exactly as in
//! `servesim simulate`.
//!
//! Handlers never touch the simulation: they send [`Command`]s over one unbounded
//! channel (so a submission and its abort stay in order) and read [`StreamEvent`]s from
//! a per-request unbounded channel. The task never blocks on a client.

use super::errors::ApiError;
use super::metrics::ServerMetrics;
use crate::engine::{RequestRecord, RequestSink, RequestStatus, TokenEvent};
use crate::sim::{NoObserver, Simulation};
use crate::trace::Request;
use crate::units::SimTime;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

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

/// A request handed to the engine.
#[derive(Debug)]
pub(crate) struct Submission {
    /// Unique id (also the simulated request id).
    pub(crate) id: u64,
    /// Prompt length.
    pub(crate) prompt_tokens: u32,
    /// Output length.
    pub(crate) output_tokens: u32,
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
    /// Its last token was released.
    Finished,
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
}

impl WallClock {
    /// Simulated time zero is now; `speedup` is finite and positive (checked by the
    /// caller).
    pub(crate) fn start(speedup: f64) -> Self {
        WallClock {
            start: Instant::now(),
            speedup,
        }
    }

    /// The simulated time at wall time `at`.
    fn sim_time(&self, at: Instant) -> SimTime {
        let ns = at.saturating_duration_since(self.start).as_nanos() as f64 * self.speedup;
        // `as` saturates: a (centuries-long) overflow pins the clock at its maximum.
        SimTime::from_nanos(ns as u64)
    }

    /// The wall time at which simulated time `t` is reached.
    fn wall_time(&self, t: SimTime) -> Instant {
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
}

/// A live request's client.
struct Client {
    events: mpsc::UnboundedSender<StreamEvent>,
    prompt_tokens: u32,
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
}

impl RequestSink for Dispatch<'_> {
    fn on_tokens(&mut self, e: &TokenEvent) {
        let Some(c) = self.clients.get(&e.request_id) else {
            return;
        };
        self.metrics.on_tokens(e, c.prompt_tokens);
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
                self.metrics.on_finished(&r);
                StreamEvent::Finished
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

impl EngineTask {
    /// A task over `sim`, which must be fresh (clock at zero, nothing in flight).
    pub(crate) fn new(sim: Simulation, settings: EngineSettings) -> Self {
        let n = sim.replicas().len();
        EngineTask {
            sim,
            clients: HashMap::new(),
            broken: None,
            metrics: ServerMetrics::new(n),
            settings,
            draining: false,
            drain_deadline: None,
        }
    }

    /// Run until every command sender is dropped (the server stopped and every
    /// in-flight response ended).
    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let mut cmds = Vec::with_capacity(64);
        loop {
            let next_event = self.sim.next_event_time();
            let wake = next_event.map(|t| self.settings.clock.wall_time(t));
            let deadline = self.drain_deadline;
            let mut due = None;
            tokio::select! {
                n = rx.recv_many(&mut cmds, 1024) => {
                    if n == 0 {
                        break;
                    }
                }
                () = sleep_until_opt(wake) => due = next_event,
                () = sleep_until_opt(deadline) => self.cancel_all(),
            }
            // Commands that arrived while the timer fired are taken now too.
            while let Ok(c) = rx.try_recv() {
                cmds.push(c);
            }
            self.step(due, &mut cmds);
        }
        self.cancel_all();
    }

    /// Advance to the present, then apply `cmds` at that instant.
    fn step(&mut self, due: Option<SimTime>, cmds: &mut Vec<Command>) {
        let mut now = self.settings.clock.sim_time(Instant::now());
        // The timer fired for `due`; float rounding must not leave that event behind.
        if let Some(t) = due {
            now = now.max(t);
        }
        let now = now.max(self.sim.now());
        let mut gone = Vec::new();
        let mut dispatch = Dispatch {
            clients: &mut self.clients,
            metrics: &mut self.metrics,
            gone: &mut gone,
            now,
            speedup: self.settings.clock.speedup,
        };
        self.sim.process_until(now, &mut dispatch, &mut NoObserver);
        for id in gone.drain(..) {
            self.abort(id);
        }
        let mut metric_replies = Vec::new();
        for cmd in cmds.drain(..) {
            match cmd {
                Command::Submit(s) => self.submit(s),
                Command::Abort(id) => self.abort(id),
                Command::Metrics(reply) => metric_replies.push(reply),
                Command::Drain { grace } => {
                    self.draining = true;
                    if !self.clients.is_empty() {
                        let now = Instant::now();
                        // A grace too long to represent means "never cancel".
                        let at = now.checked_add(grace).unwrap_or(now + FOREVER);
                        self.drain_deadline = Some(self.drain_deadline.map_or(at, |d| d.min(at)));
                    }
                }
            }
        }
        self.sim.start_idle(&mut NoObserver);
        if let Some(e) = self.sim.take_fault() {
            self.stop_broken(e);
        }
        for reply in metric_replies {
            let _ = reply.send(
                self.metrics
                    .render(&self.settings.model_name, self.sim.replicas()),
            );
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
        if self.clients.contains_key(&s.id) {
            return refuse(ApiError::bad_request("duplicate request id"));
        }
        let req = Request::new(s.id, self.sim.now(), s.prompt_tokens, s.output_tokens);
        self.clients.insert(
            s.id,
            Client {
                events: s.events.clone(),
                prompt_tokens: s.prompt_tokens,
            },
        );
        let mut gone = Vec::new();
        let mut dispatch = Dispatch {
            clients: &mut self.clients,
            metrics: &mut self.metrics,
            gone: &mut gone,
            now: self.sim.now(),
            speedup: self.settings.clock.speedup,
        };
        self.sim.add_request(req, &mut dispatch);
        // A request the engine can never run was rejected (and told) already.
        if self.clients.contains_key(&s.id) && s.events.send(StreamEvent::Accepted).is_err() {
            self.abort(s.id);
        }
    }

    fn abort(&mut self, id: u64) {
        if self.clients.remove(&id).is_some() {
            self.sim.abort(id);
        }
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
    commands: mpsc::UnboundedSender<Command>,
    ended: bool,
}

impl RequestHandle {
    /// Submit a request and wait until the engine accepts or refuses it.
    pub(crate) async fn submit(
        commands: &mpsc::UnboundedSender<Command>,
        id: u64,
        prompt_tokens: u32,
        output_tokens: u32,
    ) -> Result<Self, ApiError> {
        let (tx, rx) = mpsc::unbounded_channel();
        // Built before sending, so that a disconnect at any point aborts.
        let mut handle = RequestHandle {
            id,
            events: rx,
            commands: commands.clone(),
            ended: false,
        };
        let sub = Submission {
            id,
            prompt_tokens,
            output_tokens,
            events: tx,
        };
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
            None | Some(StreamEvent::Finished | StreamEvent::Failed(_))
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

/// Sleep until `at`, or forever when there is nothing to wait for.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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
