//! The API server between clients and the engine: each request reaches the engine
//! `ingress` after the client sent it (request handling, tokenization) and each token
//! reaches the client `egress` after the engine produced it (detokenization,
//! streaming). Reported latencies are the client's.
//!
//! [`Simulation::run`](super::Simulation::run) applies it with two adapters: the
//! request stream is delayed by each request's ingress (re-sorted, since the delay grows
//! with the prompt), and every token event and record is moved back to the client's
//! clock. Inter-token gaps and TPOT are unchanged; TTFT and E2E grow by ingress plus
//! egress. With a closed-loop source the engine issues each request when the previous
//! one ends there, so only the records are shifted (the clients' own round trip is not
//! simulated).
//!
//! A server with request handlers ([`ApiServer::handlers`]) works each request on one
//! of them, one request at a time, in the order requests reach it: a burst of prompts
//! queues there, and each request's ingress is its wait for a handler plus its own
//! handling. [`Handlers`] keeps when each handler is next free; the waits reach the
//! client's clock through [`Waits`]. Open-loop streams pass through the handlers in
//! [`Ingress`]; a closed-loop source issues each request through them
//! ([`Simulation::run`](super::Simulation::run)).

use crate::engine::{RequestRecord, RequestSink, TokenEvent};
use crate::error::{Error, Result};
use crate::stack::ApiServer;
use crate::trace::Request;
use crate::units::{SimDuration, SimTime};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// The API server's delays, in simulator time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ApiDelays {
    request_ns: f64,
    per_prompt_token_ns: f64,
    egress: SimDuration,
    /// Request handlers in front of all replicas together (0: none, every request is
    /// handled at once).
    handlers: u32,
}

impl ApiDelays {
    /// The delays of a serving stack's API server, for `replicas` engines each with
    /// their own server.
    pub fn of(api: &ApiServer, replicas: u32) -> Self {
        ApiDelays {
            request_ns: api.request_us * 1e3,
            per_prompt_token_ns: api.per_prompt_token_us * 1e3,
            egress: SimDuration::from_nanos((api.per_token_out_us * 1e3).round() as u64),
            handlers: api.handlers.saturating_mul(replicas),
        }
    }

    /// A request's own handling, from the server taking it to the engine seeing it
    /// (its whole ingress where nothing queues).
    pub fn ingress(&self, prompt_tokens: u32) -> SimDuration {
        let ns = self.request_ns + self.per_prompt_token_ns * f64::from(prompt_tokens);
        SimDuration::from_nanos(ns.round() as u64)
    }

    /// The server's request handlers, where requests queue for one (none: no queue).
    pub fn handlers(&self) -> Option<Handlers> {
        (self.handlers > 0 && !self.handling_is_free()).then(|| Handlers::new(self.handlers))
    }

    /// Whether handling a request takes no time (a queue for handlers then never forms).
    fn handling_is_free(&self) -> bool {
        self.request_ns == 0.0 && self.per_prompt_token_ns == 0.0
    }

    /// From a token leaving the engine to the client seeing it.
    pub fn egress(&self) -> SimDuration {
        self.egress
    }

    /// Whether the server adds nothing.
    pub fn is_zero(&self) -> bool {
        self.request_ns == 0.0
            && self.per_prompt_token_ns == 0.0
            && self.egress == SimDuration::ZERO
    }
}

/// The API server's request handlers: each works one request at a time, and a request
/// takes the first one free, in the order requests reach the server.
#[derive(Clone, Debug)]
pub struct Handlers {
    /// When each handler is next free.
    free: BinaryHeap<Reverse<SimTime>>,
}

impl Handlers {
    fn new(n: u32) -> Self {
        Handlers {
            free: (0..n).map(|_| Reverse(SimTime::ZERO)).collect(),
        }
    }

    /// When a request that reaches the server at `at` and takes `work` to handle leaves
    /// it for the engine.
    pub fn serve(&mut self, at: SimTime, work: SimDuration) -> SimTime {
        let Reverse(free) = self.free.pop().expect("a server has at least one handler");
        let done = free.max(at) + work;
        self.free.push(Reverse(done));
        done
    }

    /// [`Handlers::serve`] request `id`, noting in `waits` how long it waited for a
    /// handler.
    pub fn serve_noting(
        &mut self,
        id: u64,
        at: SimTime,
        work: SimDuration,
        waits: &Waits,
    ) -> SimTime {
        let done = self.serve(at, work);
        waits.record(id, done.saturating_duration_since(at + work));
        done
    }
}

/// Each queued request's wait for a handler, by request id, until the client's clock
/// takes it ([`ClientView`]); ids a trace repeats are taken in the order they queued.
/// Requests that did not wait have no entry.
#[derive(Clone, Debug, Default)]
pub struct Waits(Arc<Mutex<HashMap<u64, VecDeque<SimDuration>>>>);

impl Waits {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, VecDeque<SimDuration>>> {
        // Only one thread ever runs a simulation: a poisoned lock is still consistent.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Note that request `id` waited `wait` for a handler.
    pub fn record(&self, id: u64, wait: SimDuration) {
        if wait > SimDuration::ZERO {
            self.lock().entry(id).or_default().push_back(wait);
        }
    }

    /// The wait of request `id`, without taking it.
    pub fn peek(&self, id: u64) -> SimDuration {
        let w = self.lock();
        w.get(&id)
            .and_then(|q| q.front().copied())
            .unwrap_or(SimDuration::ZERO)
    }

    /// The wait of request `id`, taken.
    pub fn take(&self, id: u64) -> SimDuration {
        let mut w = self.lock();
        let Some(q) = w.get_mut(&id) else {
            return SimDuration::ZERO;
        };
        let wait = q.pop_front().unwrap_or(SimDuration::ZERO);
        if q.is_empty() {
            w.remove(&id);
        }
        wait
    }
}

/// A request stream as the engine sees it: each request at its arrival plus its
/// ingress, in that order (ties in stream order).
pub struct Ingress<'a> {
    inner: Box<dyn Iterator<Item = Result<Request>> + 'a>,
    delays: ApiDelays,
    /// The server's handlers, with the waits they cause (none: no queue).
    handlers: Option<(Handlers, Waits)>,
    /// Read from `inner`, not yet delayed into `heap`.
    pending: Option<Request>,
    /// Delayed requests by engine arrival (ties in stream order).
    flight: InFlight,
    last_arrival: SimTime,
    done: bool,
}

/// A request in the heap, ordered only by the key beside it.
struct HeapRequest(Request);

impl PartialEq for HeapRequest {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for HeapRequest {}
impl PartialOrd for HeapRequest {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for HeapRequest {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl<'a> Ingress<'a> {
    /// Delay the requests of `inner` (sorted by arrival) by their ingress, noting in
    /// `waits` what each waited for a handler.
    pub fn new(
        inner: Box<dyn Iterator<Item = Result<Request>> + 'a>,
        delays: ApiDelays,
        waits: &Waits,
    ) -> Self {
        Ingress {
            inner,
            delays,
            handlers: delays.handlers().map(|h| (h, waits.clone())),
            pending: None,
            flight: InFlight::default(),
            last_arrival: SimTime::ZERO,
            done: false,
        }
    }

    fn pop(&mut self) -> Option<Result<Request>> {
        self.flight.pop_next().map(|(t, mut r)| {
            r.arrival = t;
            Ok(r)
        })
    }
}

impl Iterator for Ingress<'_> {
    type Item = Result<Request>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.delays.per_prompt_token_ns == 0.0 && self.handlers.is_none() {
            // Every request is delayed alike: the order stays, no re-sorting needed.
            return self.inner.next().map(|r| {
                let mut r = r?;
                if r.arrival < self.last_arrival {
                    return Err(unsorted(&r, self.last_arrival));
                }
                self.last_arrival = r.arrival;
                r.arrival += self.delays.ingress(r.input_tokens);
                Ok(r)
            });
        }
        loop {
            if self.pending.is_none() && !self.done {
                match self.inner.next() {
                    None => self.done = true,
                    Some(Err(e)) => return Some(Err(e)),
                    Some(Ok(r)) => {
                        if r.arrival < self.last_arrival {
                            return Some(Err(unsorted(&r, self.last_arrival)));
                        }
                        self.last_arrival = r.arrival;
                        self.pending = Some(r);
                    }
                }
            }
            // Every later request reaches the engine no earlier than `pending` leaves
            // its client, so what is due by then can go.
            let due = match (self.flight.next_time(), &self.pending) {
                (Some(t), Some(p)) => t <= p.arrival,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if due {
                return self.pop();
            }
            let r = self.pending.take()?;
            let work = self.delays.ingress(r.input_tokens);
            let t = match &mut self.handlers {
                Some((h, waits)) => h.serve_noting(r.id, r.arrival, work, waits),
                None => r.arrival + work,
            };
            self.flight.push(t, r);
        }
    }
}

/// Requests on their way through the API server's handlers to the engine, by when they
/// reach it (ties in the order they were sent).
#[derive(Default)]
pub struct InFlight {
    heap: BinaryHeap<Reverse<(SimTime, u64, HeapRequest)>>,
    seq: u64,
}

impl InFlight {
    /// `r` reaches the engine at `at`.
    pub fn push(&mut self, at: SimTime, r: Request) {
        self.heap.push(Reverse((at, self.seq, HeapRequest(r))));
        self.seq += 1;
    }

    /// When the next request reaches the engine.
    pub fn next_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// The next request that has reached the engine by `now`.
    pub fn pop_due(&mut self, now: SimTime) -> Option<Request> {
        if self.next_time()? > now {
            return None;
        }
        self.pop_next().map(|(_, r)| r)
    }

    /// The next request to reach the engine, and when.
    fn pop_next(&mut self) -> Option<(SimTime, Request)> {
        self.heap.pop().map(|Reverse((t, _, r))| (t, r.0))
    }
}

/// The error for a request that arrives before the one read before it.
fn unsorted(r: &Request, previous: SimTime) -> Error {
    Error::Config(format!(
        "request {} arrives at {} s, before the previous request ({} s): traces must be sorted by arrival time",
        r.id,
        r.arrival.as_secs_f64(),
        previous.as_secs_f64()
    ))
}

/// Passes events and records on as the client sees them (see the module docs).
pub struct ClientView<'s> {
    /// Where the client's view goes.
    pub inner: &'s mut dyn RequestSink,
    /// The API server.
    pub delays: ApiDelays,
    /// What requests waited for a handler.
    pub waits: Waits,
}

impl RequestSink for ClientView<'_> {
    fn on_tokens(&mut self, e: &TokenEvent) {
        // Gaps are unchanged (the first token's still counts from the engine's arrival).
        let mut e = *e;
        e.time += self.delays.egress;
        self.inner.on_tokens(&e);
    }

    fn per_request_tokens(&self) -> bool {
        self.inner.per_request_tokens()
    }

    fn on_decode_tokens(&mut self, replica: u32, time: SimTime, gap: SimDuration, requests: u32) {
        self.inner
            .on_decode_tokens(replica, time + self.delays.egress, gap, requests);
    }

    fn on_request_end(&mut self, mut r: RequestRecord) {
        let ingress =
            (self.delays.ingress(r.input_tokens) + self.waits.take(r.request_id)).as_secs_f64();
        let egress = self.delays.egress.as_secs_f64();
        r.arrival_time_s -= ingress;
        r.first_token_time_s += egress;
        r.finish_time_s += egress;
        r.ttft_s += ingress + egress;
        r.e2e_s += ingress + egress;
        r.queue_s += ingress;
        self.inner.on_request_end(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: u64, at_us: u64, tokens: u32) -> Result<Request> {
        Ok(Request::new(
            id,
            SimTime::from_nanos(at_us * 1000),
            tokens,
            4,
        ))
    }

    fn server() -> ApiServer {
        ApiServer {
            request_us: 100.0,
            per_prompt_token_us: 1.0,
            per_token_out_us: 50.0,
            handlers: 0,
            source: String::new(),
            fitted_on: Vec::new(),
            prior_request_us: 0.0,
        }
    }

    fn delays() -> ApiDelays {
        ApiDelays::of(&server(), 1)
    }

    #[test]
    fn ingress_delays_and_resorts_by_engine_arrival() {
        // 0 µs + 100 + 1000 = 1100; 50 + 100 + 10 = 160; 2000 + 100 + 10 = 2110.
        let src = vec![req(0, 0, 1000), req(1, 50, 10), req(2, 2000, 10)];
        let out: Vec<(u64, u64)> =
            Ingress::new(Box::new(src.into_iter()), delays(), &Waits::default())
                .map(|r| {
                    let r = r.unwrap();
                    (r.id, r.arrival.as_nanos() / 1000)
                })
                .collect();
        assert_eq!(out, vec![(1, 160), (0, 1100), (2, 2110)]);
    }

    #[test]
    fn a_constant_ingress_shifts_every_request_alike() {
        let constant = ApiDelays::of(
            &ApiServer {
                per_prompt_token_us: 0.0,
                ..server()
            },
            1,
        );
        let src = vec![req(0, 0, 1000), req(1, 50, 10), req(2, 50, 7)];
        let out: Vec<(u64, u64)> =
            Ingress::new(Box::new(src.into_iter()), constant, &Waits::default())
                .map(|r| {
                    let r = r.unwrap();
                    (r.id, r.arrival.as_nanos() / 1000)
                })
                .collect();
        assert_eq!(out, vec![(0, 100), (1, 150), (2, 150)]);
        let unsorted = vec![req(0, 10, 1), req(1, 5, 1)];
        let out: Vec<Result<Request>> =
            Ingress::new(Box::new(unsorted.into_iter()), constant, &Waits::default()).collect();
        assert!(out[1]
            .as_ref()
            .is_err_and(|e| e.to_string().contains("sorted by arrival")));
    }

    #[test]
    fn ingress_keeps_errors_and_refuses_unsorted_streams() {
        let src = vec![req(0, 10, 1), req(1, 5, 1)];
        let out: Vec<Result<Request>> =
            Ingress::new(Box::new(src.into_iter()), delays(), &Waits::default()).collect();
        assert!(out.iter().any(|r| r
            .as_ref()
            .is_err_and(|e| e.to_string().contains("sorted by arrival"))));
    }

    #[derive(Default)]
    struct Keep(Vec<RequestRecord>, Vec<TokenEvent>);
    impl RequestSink for Keep {
        fn on_tokens(&mut self, e: &TokenEvent) {
            self.1.push(*e);
        }
        fn on_request_end(&mut self, r: RequestRecord) {
            self.0.push(r);
        }
    }

    #[test]
    fn client_view_moves_records_to_the_client_clock() {
        let mut keep = Keep::default();
        let mut view = ClientView {
            inner: &mut keep,
            delays: delays(),
            waits: Waits::default(),
        };
        let mut r = RequestRecord::rejected(7, 0, SimTime::from_nanos(1_000_000), 900, 4);
        r.ttft_s = 0.010;
        r.e2e_s = 0.020;
        r.tpot_s = 0.004;
        view.on_request_end(r);
        let r = &keep.0[0];
        // Ingress 100 + 900 µs = 1 ms; egress 50 µs.
        assert!((r.arrival_time_s - 0.0).abs() < 1e-12);
        assert!((r.ttft_s - 0.01105).abs() < 1e-12);
        assert!((r.e2e_s - 0.02105).abs() < 1e-12);
        assert_eq!(r.tpot_s, 0.004);
    }

    fn one_handler() -> ApiDelays {
        ApiDelays::of(
            &ApiServer {
                handlers: 1,
                ..server()
            },
            1,
        )
    }

    #[test]
    fn a_burst_queues_for_the_handler_in_arrival_order() {
        // Each takes 100 + 10 µs; three at once leave at 110, 220 and 330 µs, and one
        // arriving after the queue drained is handled at once.
        let src = vec![
            req(0, 0, 10),
            req(1, 0, 10),
            req(2, 0, 10),
            req(3, 1000, 10),
        ];
        let waits = Waits::default();
        let out: Vec<(u64, u64)> = Ingress::new(Box::new(src.into_iter()), one_handler(), &waits)
            .map(|r| {
                let r = r.unwrap();
                (r.id, r.arrival.as_nanos() / 1000)
            })
            .collect();
        assert_eq!(out, vec![(0, 110), (1, 220), (2, 330), (3, 1110)]);
        let waited: Vec<u64> = (0..4).map(|id| waits.take(id).as_nanos() / 1000).collect();
        assert_eq!(waited, vec![0, 110, 220, 0]);
        assert_eq!(waits.take(1), SimDuration::ZERO, "a wait is taken once");
    }

    #[test]
    fn more_handlers_share_a_burst_and_free_handling_never_queues() {
        let two = ApiDelays::of(
            &ApiServer {
                handlers: 1,
                ..server()
            },
            2,
        );
        let mut h = two.handlers().expect("two handlers");
        let w = SimDuration::from_nanos(110_000);
        let ends: Vec<u64> = (0..4)
            .map(|_| h.serve(SimTime::ZERO, w).as_nanos() / 1000)
            .collect();
        assert_eq!(ends, vec![110, 110, 220, 220]);
        let free = ApiDelays::of(
            &ApiServer {
                request_us: 0.0,
                per_prompt_token_us: 0.0,
                handlers: 1,
                ..server()
            },
            1,
        );
        assert!(free.handlers().is_none());
    }

    #[test]
    fn the_client_clock_counts_the_wait_for_a_handler() {
        let mut keep = Keep::default();
        let waits = Waits::default();
        waits.record(7, SimDuration::from_nanos(2_000_000));
        let mut view = ClientView {
            inner: &mut keep,
            delays: one_handler(),
            waits: waits.clone(),
        };
        let mut r = RequestRecord::rejected(7, 0, SimTime::from_nanos(3_000_000), 900, 4);
        r.ttft_s = 0.010;
        view.on_request_end(r);
        // Handling 1 ms plus 2 ms waiting; egress 50 µs.
        let r = &keep.0[0];
        assert!(
            (r.arrival_time_s - 0.0).abs() < 1e-12,
            "{}",
            r.arrival_time_s
        );
        assert!((r.ttft_s - 0.01305).abs() < 1e-12);
        assert_eq!(waits.peek(7), SimDuration::ZERO);
    }
}
