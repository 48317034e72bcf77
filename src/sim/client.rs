//! Simulated clients: how long they wait, whether they retry, when they leave.
//!
//! A real client does not wait forever. Three behaviours, each optional:
//!
//! * **Timeout** (`--client-timeout-s`): a request not finished `timeout` after its
//!   client sent it is aborted (its KV freed, its work wasted).
//! * **Retries** (`--max-retries`): a request that timed out, or was lost with a failed
//!   replica ([`super::failures`]), is sent again after a backoff, as a new arrival that
//!   starts from scratch, up to `max_retries` times. The backoff before retry `k` (1, 2, …) is `min(cap, base × 2^(k−1))`
//!   scaled by a uniform draw in [0.5, 1) ("equal jitter": half fixed, half random, so
//!   that clients that timed out together do not return together).
//! * **Abandonment** (`--abandon-after-s`): a client that has seen no token
//!   `abandon_after` after sending leaves; the request is aborted and not retried.
//!
//! Every request ends exactly once, with one record: finished, rejected, timed out
//! (on its last attempt) or abandoned. A retried request's record counts its attempts
//! and its times run from the first send, as its user lived them. The engine only
//! ever sees attempts: each gets an id of its own (the trace's ids need not be unique),
//! mapped back to the trace's id in the record.

use super::{Event, Simulation};
use crate::engine::{RequestRecord, RequestSink, RequestStatus, TokenEvent};
use crate::error::{Error, Result};
use crate::trace::Request;
use crate::units::{SimDuration, SimTime};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// What simulated clients do when the server is slow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientPolicy {
    /// Give up on a request not finished this long after sending it.
    pub timeout: Option<SimDuration>,
    /// Leave when no token has come this long after sending.
    pub abandon_after: Option<SimDuration>,
    /// Send a timed-out request again at most this many times.
    pub max_retries: u32,
    /// Backoff before the first retry (doubling after each).
    pub backoff_base: SimDuration,
    /// Longest backoff.
    pub backoff_max: SimDuration,
    /// Seed of the backoff jitter.
    pub seed: u64,
}

/// Backoff before the first retry when none is given, s (the OpenAI Python client's
/// initial retry delay is 0.5 s; 1 s is the common choice of HTTP retry libraries).
pub const DEFAULT_BACKOFF_BASE_S: f64 = 1.0;
/// Longest backoff when none is given, s.
pub const DEFAULT_BACKOFF_MAX_S: f64 = 60.0;

impl ClientPolicy {
    /// Clients that give up after `timeout` and never retry.
    pub fn with_timeout(timeout: SimDuration) -> Self {
        ClientPolicy {
            timeout: Some(timeout),
            ..Self::default()
        }
    }

    /// The policy, checked: retries need a timeout, the backoff a positive base no
    /// longer than its cap.
    pub fn checked(self) -> Result<Self> {
        if self.backoff_base.is_zero() || self.backoff_max < self.backoff_base {
            return Err(Error::Config(format!(
                "the retry backoff needs 0 < base ≤ max, got base {} s and max {} s",
                self.backoff_base.as_secs_f64(),
                self.backoff_max.as_secs_f64()
            )));
        }
        for (name, d) in [
            ("--client-timeout-s", self.timeout),
            ("--abandon-after-s", self.abandon_after),
        ] {
            if d.is_some_and(SimDuration::is_zero) {
                return Err(Error::Config(format!("{name} must be more than 0 s")));
            }
        }
        Ok(self)
    }

    /// Whether clients do anything but wait (retries matter where requests time out
    /// or their replica fails).
    pub fn is_active(&self) -> bool {
        self.timeout.is_some() || self.abandon_after.is_some() || self.max_retries > 0
    }

    /// The backoff before retry `k` (1-based) with jitter draw `u` in [0, 1).
    pub fn backoff(&self, k: u32, u: f64) -> SimDuration {
        let doubled = self
            .backoff_base
            .as_nanos()
            .saturating_mul(1u64 << (k.saturating_sub(1)).min(62));
        let d = doubled.min(self.backoff_max.as_nanos()) as f64;
        SimDuration::from_nanos((d * (0.5 + 0.5 * u)).round() as u64)
    }
}

impl Default for ClientPolicy {
    fn default() -> Self {
        ClientPolicy {
            timeout: None,
            abandon_after: None,
            max_retries: 0,
            backoff_base: SimDuration::from_secs_f64(DEFAULT_BACKOFF_BASE_S),
            backoff_max: SimDuration::from_secs_f64(DEFAULT_BACKOFF_MAX_S),
            seed: 0,
        }
    }
}

/// Why a client gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GiveUp {
    /// Its timeout passed.
    Timeout,
    /// No token came in time.
    Abandon,
}

/// One send of a request.
#[derive(Clone, Debug)]
pub(crate) struct Attempt {
    /// The request as the trace gave it (its id is the trace's).
    pub request: Request,
    /// When the engine saw its first send.
    pub first_arrival: SimTime,
    /// When the engine saw this send.
    pub arrival: SimTime,
    /// Which send this is (1 = the first).
    pub number: u32,
}

/// The clients' state during a run.
#[derive(Debug)]
pub(crate) struct Clients {
    pub policy: ClientPolicy,
    rng: ChaCha8Rng,
    next_id: u64,
    /// Attempts in the engine (or in KV transit), by engine id.
    live: HashMap<u64, Attempt>,
    /// Retries waiting out their backoff.
    pub backing_off: u64,
    /// Requests that ended timed out.
    pub timed_out: u64,
}

impl Clients {
    pub fn new(policy: ClientPolicy) -> Self {
        Clients {
            policy,
            rng: ChaCha8Rng::seed_from_u64(policy.seed),
            next_id: 0,
            live: HashMap::new(),
            backing_off: 0,
            timed_out: 0,
        }
    }

    /// Record `attempt` as sent and return the engine id it goes by.
    pub fn register(&mut self, attempt: Attempt) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.live.insert(id, attempt);
        id
    }

    /// Whether no request is in the engine or backing off.
    pub fn is_idle(&self) -> bool {
        self.live.is_empty() && self.backing_off == 0
    }

    /// Whether engine id `id` is still live.
    pub fn is_live(&self, id: u64) -> bool {
        self.live.contains_key(&id)
    }

    /// The attempt behind engine id `id`, which has ended.
    pub fn end(&mut self, id: u64) -> Option<Attempt> {
        self.live.remove(&id)
    }

    /// The next attempt of `a` after a timeout, and how long after now it is sent; None
    /// when no retry is left.
    pub fn retry(&mut self, a: &Attempt) -> Option<(Attempt, SimDuration)> {
        if a.number > self.policy.max_retries {
            return None;
        }
        let u: f64 = self.rng.random();
        let delay = self.policy.backoff(a.number, u);
        self.backing_off += 1;
        Some((
            Attempt {
                number: a.number + 1,
                ..a.clone()
            },
            delay,
        ))
    }
}

/// Put the record of engine attempt `a` in the trace's terms: its id, and times from
/// the first send.
pub(crate) fn restate(rec: &mut RequestRecord, a: &Attempt) {
    rec.request_id = a.request.id;
    rec.attempts = a.number;
    let shift = a.arrival.saturating_duration_since(a.first_arrival);
    if !shift.is_zero() {
        let s = shift.as_secs_f64();
        rec.arrival_time_s = a.first_arrival.as_secs_f64();
        rec.ttft_s += s;
        rec.e2e_s += s;
        rec.queue_s += s;
    }
}

/// Passes the engine's events on in the trace's terms (see [`restate`]).
pub(crate) struct Restating<'a> {
    pub inner: &'a mut dyn RequestSink,
    pub clients: &'a mut Clients,
}

impl RequestSink for Restating<'_> {
    fn on_tokens(&mut self, event: &TokenEvent) {
        let mut e = *event;
        if let Some(a) = self.clients.live.get(&e.request_id) {
            e.request_id = a.request.id;
        }
        self.inner.on_tokens(&e);
    }
    fn on_request_end(&mut self, mut record: RequestRecord) {
        if let Some(a) = self.clients.end(record.request_id) {
            restate(&mut record, &a);
        }
        self.inner.on_request_end(record);
    }
    fn per_request_tokens(&self) -> bool {
        self.inner.per_request_tokens()
    }
    fn on_decode_tokens(&mut self, replica: u32, time: SimTime, gap: SimDuration, requests: u32) {
        self.inner.on_decode_tokens(replica, time, gap, requests);
    }
}

/// Call `f` with `sink`, restated through the clients when there are any.
pub(crate) fn through<R>(
    clients: &mut Option<Clients>,
    sink: &mut dyn RequestSink,
    f: impl FnOnce(&mut dyn RequestSink) -> R,
) -> R {
    match clients {
        Some(clients) => f(&mut Restating {
            inner: sink,
            clients,
        }),
        None => f(sink),
    }
}

impl Simulation {
    /// Clients give up on a request `timeout` after sending it (an HTTP client's
    /// timeout) and never retry: [`Simulation::with_clients`] with only a timeout.
    pub fn with_client_timeout(self, timeout: SimDuration) -> Self {
        self.with_clients(ClientPolicy::with_timeout(timeout))
    }

    /// Clients behave as `policy` says (see [`super::client`]): a request its client gives up
    /// on is aborted where it is (its KV freed) and, unless retried, ends with a
    /// `timed_out` or `abandoned` record; [`super::RunStats::timed_out`] counts the timed-out
    /// ones. Only [`Simulation::add_request`] and [`Simulation::run`] see clients; a
    /// request whose KV is in transit between a prefill and a decode replica when its
    /// client gives up is not caught and finishes.
    pub fn with_clients(mut self, policy: ClientPolicy) -> Self {
        self.clients = policy.is_active().then(|| Clients::new(policy));
        self
    }

    /// A client gives up on the attempt with engine id `id` (see [`client`]): abort it
    /// where it is, then retry it after a backoff or end it with a record.
    pub(super) fn give_up(&mut self, id: u64, why: GiveUp, sink: &mut dyn RequestSink) {
        let now = self.now;
        let Some(c) = self.clients.as_mut() else {
            return;
        };
        if !c.is_live(id) {
            return; // it ended before its deadline
        }
        if why == GiveUp::Abandon
            && self
                .replicas
                .iter()
                .any(|r| r.first_token_at(id).is_some_and(|t| t.is_some()))
        {
            return; // a token came in time
        }
        let status = match why {
            GiveUp::Timeout => RequestStatus::TimedOut,
            GiveUp::Abandon => RequestStatus::Abandoned,
        };
        let Some((i, record)) = self
            .replicas
            .iter_mut()
            .enumerate()
            .find_map(|(i, r)| r.abort_with_record(id, now, status).map(|rec| (i, rec)))
        else {
            return; // in KV transit between replicas: not caught (see with_clients)
        };
        self.touch(i);
        self.lost(record, status, sink);
    }

    /// An attempt ended without finishing (`status`: timed out, abandoned or failed;
    /// `record` under its engine id): its client sends it again after a backoff if
    /// it may (not after abandoning), else it ends with `record`.
    pub(super) fn lost(
        &mut self,
        mut record: RequestRecord,
        status: crate::engine::RequestStatus,
        sink: &mut dyn RequestSink,
    ) {
        record.status = status;
        if status == RequestStatus::Failed {
            record.e2e_s = f64::NAN;
            record.tpot_s = f64::NAN;
        }
        let Some(c) = self.clients.as_mut() else {
            sink.on_request_end(record);
            return;
        };
        let Some(attempt) = c.end(record.request_id) else {
            sink.on_request_end(record);
            return;
        };
        if status != RequestStatus::Abandoned {
            if let Some((next, backoff)) = c.retry(&attempt) {
                let ingress = self
                    .api
                    .map_or(SimDuration::ZERO, |d| d.ingress(next.request.input_tokens));
                self.queue
                    .push(self.now + backoff + ingress, Event::Retry(Box::new(next)));
                return;
            }
        }
        if status == RequestStatus::TimedOut {
            c.timed_out += 1;
        }
        restate(&mut record, &attempt);
        sink.on_request_end(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: f64) -> SimDuration {
        SimDuration::from_secs_f64(x)
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_equal_jitter() {
        let p = ClientPolicy {
            backoff_base: s(1.0),
            backoff_max: s(5.0),
            ..ClientPolicy::default()
        };
        // u = 0: half the doubled delay; u → 1: all of it.
        assert_eq!(p.backoff(1, 0.0), s(0.5));
        assert_eq!(p.backoff(2, 0.0), s(1.0));
        assert_eq!(p.backoff(3, 0.5), s(3.0)); // 4 s × 0.75
        assert_eq!(p.backoff(4, 0.0), s(2.5)); // 8 s capped at 5
        assert_eq!(p.backoff(200, 0.0), s(2.5)); // no overflow
    }

    #[test]
    fn a_policy_is_checked() {
        let bad_backoff = ClientPolicy {
            backoff_base: s(2.0),
            backoff_max: s(1.0),
            ..ClientPolicy::with_timeout(s(1.0))
        };
        assert!(bad_backoff.checked().is_err());
        assert!(ClientPolicy::with_timeout(SimDuration::ZERO)
            .checked()
            .is_err());
        assert!(ClientPolicy::with_timeout(s(1.0)).checked().is_ok());
    }
}
