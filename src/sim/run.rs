//! A whole run: how requests enter the simulation ([`RequestSource`]) and the loop that
//! moves the clock from event to event until every request has ended
//! ([`Simulation::run`]).

use super::api::{self, ApiDelays, Handlers, InFlight, Waits};
use super::{client, Observer, RunStats, Simulation};
use crate::engine::{Replica, RequestRecord, RequestSink, TokenEvent};
use crate::error::{Error, Result};
use crate::trace::Request;
use crate::units::{SimDuration, SimTime};

/// A stream of requests, read lazily.
type Requests<'a> = Box<dyn Iterator<Item = Result<Request>> + 'a>;

/// How requests enter the simulation.
pub enum RequestSource<'a> {
    /// Requests arrive at their trace times (must be non-decreasing).
    Open(Requests<'a>),
    /// A fixed number of clients: `concurrency` requests start at time zero, and each
    /// time one ends the next request from the stream starts at once (its trace arrival
    /// time is ignored).
    ClosedLoop {
        /// The requests, in issue order.
        requests: Requests<'a>,
        /// Requests in flight at any time.
        concurrency: u32,
    },
    /// Requests come at their trace times (non-decreasing) but at most `concurrency`
    /// are in flight: one whose time has come while all are busy is sent when a slot
    /// frees, in order, as a benchmark client's semaphore holds it (vLLM's and
    /// SGLang's `--request-rate` with `--max-concurrency`). Its latencies count from
    /// when it is sent.
    CappedOpen {
        /// The requests, in arrival order.
        requests: Requests<'a>,
        /// Most requests in flight.
        concurrency: u32,
    },
}

/// Counts ends so a closed-loop source can issue replacements, then forwards.
struct CountingSink<'s> {
    inner: &'s mut dyn RequestSink,
    ended: u64,
}

impl RequestSink for CountingSink<'_> {
    fn on_tokens(&mut self, event: &TokenEvent) {
        self.inner.on_tokens(event);
    }
    fn on_request_end(&mut self, record: RequestRecord) {
        self.ended += 1;
        self.inner.on_request_end(record);
    }
    fn per_request_tokens(&self) -> bool {
        self.inner.per_request_tokens()
    }
    fn on_decode_tokens(&mut self, replica: u32, time: SimTime, gap: SimDuration, requests: u32) {
        self.inner.on_decode_tokens(replica, time, gap, requests);
    }
}

/// The open loop's stream, read one request ahead.
struct OpenFeed<'a> {
    requests: Requests<'a>,
    next: Option<Request>,
}

/// A closed or capped loop's stream: slots free to issue into, the next request read
/// ahead while its time has not come (capped loop), and the requests inside the API
/// server's handlers.
struct LoopFeed<'a> {
    requests: Requests<'a>,
    to_issue: u64,
    held: Option<Request>,
    /// Whether a request also waits for its own arrival time (capped open loop).
    hold: bool,
    /// The API server's handlers, where the stack has a number of them.
    handlers: Option<(ApiDelays, Handlers)>,
    through_server: InFlight,
}

/// Where the next requests come from.
enum Feed<'a> {
    Open(OpenFeed<'a>),
    Loop(LoopFeed<'a>),
}

impl<'a> Feed<'a> {
    /// The feed of `source`; open streams pass through the API server's ingress.
    fn new(source: RequestSource<'a>, api: Option<ApiDelays>, waits: &Waits) -> Result<Self> {
        let (requests, concurrency, hold) = match source {
            RequestSource::Open(it) => {
                let mut requests = match api {
                    Some(d) => Box::new(api::Ingress::new(it, d, waits)) as Requests<'a>,
                    None => it,
                };
                let next = requests.next().transpose()?;
                return Ok(Feed::Open(OpenFeed { requests, next }));
            }
            RequestSource::ClosedLoop {
                requests,
                concurrency,
            } => (requests, concurrency, false),
            RequestSource::CappedOpen {
                requests,
                concurrency,
            } => (requests, concurrency, true),
        };
        if concurrency == 0 {
            return Err(Error::Config(
                "closed-loop concurrency must be at least 1".into(),
            ));
        }
        Ok(Feed::Loop(LoopFeed {
            requests,
            to_issue: u64::from(concurrency),
            held: None,
            hold,
            // A closed loop sends through the API server's handlers, if it has any.
            handlers: api.and_then(|d| d.handlers().map(|h| (d, h))),
            through_server: InFlight::default(),
        }))
    }

    /// When the next request enters (or is issued), if any is left.
    fn next_time(&self, now: SimTime) -> Option<SimTime> {
        match self {
            Feed::Open(f) => f.next.as_ref().map(|r| r.arrival),
            Feed::Loop(f) => {
                let issue =
                    (f.to_issue > 0).then(|| f.held.as_ref().map_or(now, |r| r.arrival.max(now)));
                match (issue, f.through_server.next_time()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
        }
    }
}

impl LoopFeed<'_> {
    /// The next request to issue now: `None` when the stream is done or (capped loop)
    /// the next request's time has not come.
    fn take_due(&mut self, now: SimTime) -> Result<Option<Request>> {
        let Some(req) = self
            .held
            .take()
            .map_or_else(|| self.requests.next().transpose(), |r| Ok(Some(r)))?
        else {
            self.to_issue = 0;
            return Ok(None);
        };
        if self.hold && req.arrival > now {
            self.held = Some(req);
            return Ok(None);
        }
        Ok(Some(req))
    }
}

impl Simulation {
    /// Run until every request has ended. Errors from the request stream (malformed
    /// rows, unsorted arrivals) end the run.
    pub fn run(
        &mut self,
        source: RequestSource<'_>,
        sink: &mut dyn RequestSink,
        observer: &mut dyn Observer,
    ) -> Result<RunStats> {
        let waits = self.api_waits.clone();
        let mut feed = Feed::new(source, self.api, &waits)?;
        let mut client;
        let sink: &mut dyn RequestSink = match self.api {
            Some(delays) => {
                client = api::ClientView {
                    inner: sink,
                    delays,
                    waits: waits.clone(),
                };
                &mut client
            }
            None => sink,
        };
        let mut sink = CountingSink {
            inner: sink,
            ended: 0,
        };
        let mut stats = RunStats::default();
        loop {
            let t_arrival = feed.next_time(self.now);
            // Once every request has ended, pending client deadlines and failures have
            // nothing to do.
            if t_arrival.is_none() && self.only_timers_left() {
                break;
            }
            let t = match (self.queue.peek_time(), t_arrival) {
                (None, None) => break,
                (Some(a), None) | (None, Some(a)) => a,
                (Some(a), Some(b)) => a.min(b),
            };
            // 1. Iteration ends at `t`.
            stats.events += self.process_until(t, &mut sink, observer);
            // 2. Arrivals at `t`.
            match &mut feed {
                Feed::Open(f) => self.arrive_open(f, t, &mut sink, &mut stats)?,
                Feed::Loop(f) => self.issue_loop(f, &waits, &mut sink, &mut stats)?,
            }
            // 3. Idle replicas start their next iteration.
            self.start_idle(observer);
            self.check_limits()?;
        }
        self.end_stats(stats)
    }

    /// Whether only client deadlines, failures or autoscaler ticks are left: no request
    /// outstanding, in transit or with a client still waiting.
    fn only_timers_left(&self) -> bool {
        (self.clients.is_some() || self.failures.is_some() || self.autoscaler.is_some())
            && self.clients.as_ref().is_none_or(client::Clients::is_idle)
            && self.num_outstanding() == 0
            && self.in_transit.iter().all(|&n| n == 0)
    }

    /// Add the open loop's requests that arrive at `t`.
    fn arrive_open(
        &mut self,
        f: &mut OpenFeed<'_>,
        t: SimTime,
        sink: &mut CountingSink<'_>,
        stats: &mut RunStats,
    ) -> Result<()> {
        while f.next.as_ref().is_some_and(|r| r.arrival == t) {
            let req = f.next.take().expect("checked");
            stats.events += 1;
            stats.requests_in += 1;
            self.add_request(req, sink);
            f.next = f.requests.next().transpose()?;
            if let Some(n) = &f.next {
                if n.arrival < t {
                    return Err(Error::Config(format!(
                        "request {} arrives at {} s, before the previous request ({} s): traces must be sorted by arrival time",
                        n.id,
                        n.arrival.as_secs_f64(),
                        t.as_secs_f64()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Issue a closed or capped loop's requests into the slots that are free now (one
    /// per request ended), through the API server's handlers where it has them, and
    /// admit those the handlers have finished with; until nothing more happens at this
    /// instant.
    fn issue_loop(
        &mut self,
        f: &mut LoopFeed<'_>,
        waits: &Waits,
        sink: &mut CountingSink<'_>,
        stats: &mut RunStats,
    ) -> Result<()> {
        loop {
            f.to_issue += std::mem::take(&mut sink.ended);
            while f.to_issue > 0 {
                let Some(req) = f.take_due(self.now)? else {
                    break;
                };
                f.to_issue -= 1;
                if let Some((d, h)) = f.handlers.as_mut() {
                    let at = h.serve_noting(req.id, self.now, d.ingress(req.input_tokens), waits);
                    f.through_server.push(at, req);
                    continue;
                }
                stats.events += 1;
                stats.requests_in += 1;
                self.add_request(req, sink);
                f.to_issue += std::mem::take(&mut sink.ended);
            }
            let mut admitted = false;
            while let Some(req) = f.through_server.pop_due(self.now) {
                stats.events += 1;
                stats.requests_in += 1;
                self.add_request(req, sink);
                admitted = true;
            }
            if !admitted && sink.ended == 0 {
                return Ok(());
            }
        }
    }

    /// A replica's fault, or the iteration limit passed, ends the run.
    fn check_limits(&mut self) -> Result<()> {
        if let Some(e) = self.take_fault() {
            return Err(e);
        }
        if let Some(max) = self.max_iterations {
            let iterations: u64 = self.replicas.iter().map(|r| r.counters().iterations).sum();
            if iterations > max {
                return Err(Error::IterationLimit {
                    iterations,
                    simulated_s: self.now.as_secs_f64(),
                    outstanding: self.num_outstanding() as u64,
                });
            }
        }
        Ok(())
    }

    /// The run's totals at its end, or an error if requests are left that can never be
    /// scheduled.
    fn end_stats(&mut self, mut stats: RunStats) -> Result<RunStats> {
        stats.end_time = self.now;
        stats.timed_out = self.clients.as_ref().map_or(0, |c| c.timed_out);
        if let Some(a) = self.autoscaler.as_mut() {
            a.account(self.now);
        }
        if let Some(f) = &self.failures {
            stats.outages = f.outages;
            let open: u64 = f
                .down_since
                .iter()
                .flatten()
                .map(|&s| self.now.saturating_duration_since(s).as_nanos())
                .sum();
            stats.replica_down_s = (f.down_ns + open) as f64 * 1e-9;
        }
        let outstanding: usize = self.replicas.iter().map(Replica::num_outstanding).sum();
        stats.requests_out = stats.requests_in - outstanding as u64;
        if outstanding > 0 {
            return Err(Error::Config(format!(
                "the simulation stalled at {} with {outstanding} requests that can never be scheduled (check --max-num-batched-tokens against prompt lengths)",
                self.now
            )));
        }
        Ok(stats)
    }
}
