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

use crate::engine::{RequestRecord, RequestSink, TokenEvent};
use crate::error::{Error, Result};
use crate::stack::ApiServer;
use crate::trace::Request;
use crate::units::{SimDuration, SimTime};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The API server's delays, in simulator time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ApiDelays {
    request_ns: f64,
    per_prompt_token_ns: f64,
    egress: SimDuration,
}

impl ApiDelays {
    /// The delays of a serving stack's API server.
    pub fn of(api: &ApiServer) -> Self {
        ApiDelays {
            request_ns: api.request_us * 1e3,
            per_prompt_token_ns: api.per_prompt_token_us * 1e3,
            egress: SimDuration::from_nanos((api.per_token_out_us * 1e3).round() as u64),
        }
    }

    /// From a request leaving its client to the engine seeing it.
    pub fn ingress(&self, prompt_tokens: u32) -> SimDuration {
        let ns = self.request_ns + self.per_prompt_token_ns * f64::from(prompt_tokens);
        SimDuration::from_nanos(ns.round() as u64)
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

/// A request stream as the engine sees it: each request at its arrival plus its
/// ingress, in that order (ties in stream order).
pub struct Ingress<'a> {
    inner: Box<dyn Iterator<Item = Result<Request>> + 'a>,
    delays: ApiDelays,
    /// Read from `inner`, not yet delayed into `heap`.
    pending: Option<Request>,
    /// Delayed requests by (engine arrival, stream position).
    heap: BinaryHeap<Reverse<(SimTime, u64, HeapRequest)>>,
    seq: u64,
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
    /// Delay the requests of `inner` (sorted by arrival) by their ingress.
    pub fn new(inner: Box<dyn Iterator<Item = Result<Request>> + 'a>, delays: ApiDelays) -> Self {
        Ingress {
            inner,
            delays,
            pending: None,
            heap: BinaryHeap::new(),
            seq: 0,
            last_arrival: SimTime::ZERO,
            done: false,
        }
    }

    fn pop(&mut self) -> Option<Result<Request>> {
        self.heap.pop().map(|Reverse((t, _, r))| {
            let mut r = r.0;
            r.arrival = t;
            Ok(r)
        })
    }
}

impl Iterator for Ingress<'_> {
    type Item = Result<Request>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.delays.per_prompt_token_ns == 0.0 {
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
            let due = match (&self.heap.peek(), &self.pending) {
                (Some(Reverse((t, _, _))), Some(p)) => *t <= p.arrival,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if due {
                return self.pop();
            }
            let r = self.pending.take()?;
            let t = r.arrival + self.delays.ingress(r.input_tokens);
            self.heap.push(Reverse((t, self.seq, HeapRequest(r))));
            self.seq += 1;
        }
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
        let ingress = self.delays.ingress(r.input_tokens).as_secs_f64();
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
            source: String::new(),
            fitted_on: Vec::new(),
            prior_request_us: 0.0,
        }
    }

    fn delays() -> ApiDelays {
        ApiDelays::of(&server())
    }

    #[test]
    fn ingress_delays_and_resorts_by_engine_arrival() {
        // 0 µs + 100 + 1000 = 1100; 50 + 100 + 10 = 160; 2000 + 100 + 10 = 2110.
        let src = vec![req(0, 0, 1000), req(1, 50, 10), req(2, 2000, 10)];
        let out: Vec<(u64, u64)> = Ingress::new(Box::new(src.into_iter()), delays())
            .map(|r| {
                let r = r.unwrap();
                (r.id, r.arrival.as_nanos() / 1000)
            })
            .collect();
        assert_eq!(out, vec![(1, 160), (0, 1100), (2, 2110)]);
    }

    #[test]
    fn a_constant_ingress_shifts_every_request_alike() {
        let constant = ApiDelays::of(&ApiServer {
            per_prompt_token_us: 0.0,
            ..server()
        });
        let src = vec![req(0, 0, 1000), req(1, 50, 10), req(2, 50, 7)];
        let out: Vec<(u64, u64)> = Ingress::new(Box::new(src.into_iter()), constant)
            .map(|r| {
                let r = r.unwrap();
                (r.id, r.arrival.as_nanos() / 1000)
            })
            .collect();
        assert_eq!(out, vec![(0, 100), (1, 150), (2, 150)]);
        let unsorted = vec![req(0, 10, 1), req(1, 5, 1)];
        let out: Vec<Result<Request>> =
            Ingress::new(Box::new(unsorted.into_iter()), constant).collect();
        assert!(out[1]
            .as_ref()
            .is_err_and(|e| e.to_string().contains("sorted by arrival")));
    }

    #[test]
    fn ingress_keeps_errors_and_refuses_unsorted_streams() {
        let src = vec![req(0, 10, 1), req(1, 5, 1)];
        let out: Vec<Result<Request>> = Ingress::new(Box::new(src.into_iter()), delays()).collect();
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
}
