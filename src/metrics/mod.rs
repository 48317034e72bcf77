//! Latency metrics: per-request records in, distributions and a run summary out.
//!
//! Definitions follow vLLM's `benchmark_serving`: TTFT = first token − arrival;
//! TPOT = (E2E − TTFT)/(output tokens − 1), over requests with more than one output
//! token; ITL = every gap between consecutive tokens of a request; E2E = finish −
//! arrival; queueing = first scheduling − arrival. Distributions are HDR histograms of
//! nanoseconds (3 significant digits); means are exact.

use crate::engine::{RequestRecord, RequestSink, RequestStatus, TokenEvent};
use hdrhistogram::Histogram;
use serde::Serialize;

pub mod slo_windows;
mod timeseries;
pub use timeseries::{TimeSeries, TimeSeriesRow};

/// Latency SLOs for goodput.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Slo {
    /// Largest acceptable TTFT, s.
    pub ttft_s: Option<f64>,
    /// Largest acceptable TPOT, s.
    pub tpot_s: Option<f64>,
}

impl Slo {
    /// The SLOs, refused (naming the flag) unless each set one is a finite number of
    /// seconds above zero.
    pub fn checked(self) -> crate::error::Result<Self> {
        for (flag, v) in [("--slo-ttft-s", self.ttft_s), ("--slo-tpot-s", self.tpot_s)] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return Err(crate::error::Error::input(
                        "<command line>",
                        Some(flag),
                        format!("must be a finite number of seconds above 0, got {v}"),
                    ));
                }
            }
        }
        Ok(self)
    }

    /// Whether a finished request meets every set SLO (a NaN TPOT, from a one-token
    /// output, meets any TPOT SLO).
    pub fn is_met(&self, r: &RequestRecord) -> bool {
        r.status == RequestStatus::Finished
            && self.ttft_s.is_none_or(|s| r.ttft_s <= s)
            && self
                .tpot_s
                .is_none_or(|s| r.tpot_s.is_nan() || r.tpot_s <= s)
    }
}

/// One latency distribution.
#[derive(Clone, Debug)]
pub struct Distribution {
    hist: Histogram<u64>,
    sum_ns: u128,
}

impl Default for Distribution {
    fn default() -> Self {
        Distribution {
            hist: Histogram::new(3).expect("3 significant digits is valid"),
            sum_ns: 0,
        }
    }
}

impl Distribution {
    /// Record `count` samples of `ns` nanoseconds.
    pub fn record_n(&mut self, ns: u64, count: u64) {
        if count == 0 {
            return;
        }
        // `record_n` grows the auto-resizing histogram; the saturating variant would clamp
        // to its current (initially tiny) range.
        if self.hist.record_n(ns, count).is_err() {
            self.hist.saturating_record_n(ns, count);
        }
        self.sum_ns += u128::from(ns) * u128::from(count);
    }

    /// Record one sample in seconds (ignored if NaN).
    pub fn record_secs(&mut self, s: f64) {
        if let Some(ns) = crate::units::checked_secs_to_nanos(s) {
            self.record_n(ns, 1);
        }
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.hist.len()
    }

    /// The distribution as points `(quantile, seconds)` at [`CDF_QUANTILES`] (empty
    /// when nothing was recorded): what the run report's CDFs draw.
    pub fn cdf(&self) -> Vec<(f64, f64)> {
        if self.hist.is_empty() {
            return Vec::new();
        }
        CDF_QUANTILES
            .iter()
            .map(|&q| (q, self.hist.value_at_quantile(q) as f64 / 1e9))
            .collect()
    }

    /// Summary statistics in seconds (all zero when empty).
    pub fn stats(&self) -> DistStats {
        let n = self.hist.len();
        if n == 0 {
            return DistStats::default();
        }
        let q = |p: f64| self.hist.value_at_quantile(p) as f64 / 1e9;
        DistStats {
            count: n,
            mean: (self.sum_ns as f64 / n as f64) / 1e9,
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p99_9: q(0.999),
            max: self.hist.max() as f64 / 1e9,
        }
    }
}

/// Quantiles a distribution's CDF is drawn at: every percent, then the tail.
pub const CDF_QUANTILES: [f64; 106] = {
    let mut q = [0.0; 106];
    let mut i = 0;
    while i < 100 {
        q[i] = i as f64 / 100.0;
        i += 1;
    }
    q[100] = 0.995;
    q[101] = 0.999;
    q[102] = 0.9995;
    q[103] = 0.9999;
    q[104] = 0.99999;
    q[105] = 1.0;
    q
};

/// The distributions of a run as CDF points (`distributions.csv`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Cdfs {
    /// `(metric, quantile, seconds)`, metrics `ttft_s`, `tpot_s`, `itl_s`, `e2e_s`,
    /// `queue_s` in that order.
    pub points: Vec<(&'static str, f64, f64)>,
}

/// Requests finished and output tokens produced in one second of simulated time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ThroughputBin {
    /// Requests that finished in the second.
    pub completed: u64,
    /// Output tokens produced in the second (each request's tokens spread evenly from
    /// its first token to its last).
    pub output_tokens: f64,
}

/// Statistics of one distribution, in seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct DistStats {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
    /// Largest sample.
    pub max: f64,
}

/// Collects records into distributions and counters; forwards each record to an
/// optional per-request writer.
pub struct Recorder<'w> {
    slo: Slo,
    ttft: Distribution,
    tpot: Distribution,
    itl: Distribution,
    e2e: Distribution,
    queue: Distribution,
    completed: u64,
    rejected: u64,
    /// Client outcomes (timed out, abandoned, retries), when clients are simulated.
    clients: Option<ClientSummary>,
    /// Requests lost to replica failures.
    failed: u64,
    slo_met: u64,
    ttft_met: u64,
    tpot_met: u64,
    input_tokens: u64,
    output_tokens: u64,
    preemptions: u64,
    prefix_hit_tokens: u64,
    first_arrival: Option<f64>,
    last_finish: f64,
    /// ITL samples of one value not yet in the histogram: the decodes of one iteration
    /// mostly share their gap, so they are recorded with one call.
    pending_itl: (u64, u64),
    per_replica: Vec<ReplicaTally>,
    /// Per second of simulated time from zero: what finished and was produced.
    throughput: Vec<ThroughputBin>,
    /// While every record has come from replica 0, its distributions are the run's
    /// (`ttft`, `tpot`, `e2e` record the same finished requests) and are not kept
    /// twice; they are copied out when another replica first reports.
    only_replica_zero: bool,
    writer: Option<&'w mut dyn FnMut(&RequestRecord)>,
    /// SLO attainment per window of arrivals, when asked for.
    slo_windows: Option<slo_windows::SloWindows>,
}

/// What one replica served.
#[derive(Clone, Debug, Default)]
struct ReplicaTally {
    completed: u64,
    rejected: u64,
    output_tokens: u64,
    ttft: Distribution,
    tpot: Distribution,
    e2e: Distribution,
}

/// Per-replica figures in the summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplicaSummary {
    /// Replica index.
    pub replica: u32,
    /// Requests it finished.
    pub completed: u64,
    /// Requests it rejected.
    pub rejected: u64,
    /// Output tokens per second of the run.
    pub output_tokens_per_s: f64,
    /// Its TTFT distribution.
    pub ttft_s: DistStats,
    /// Its TPOT distribution.
    pub tpot_s: DistStats,
    /// Its E2E distribution.
    pub e2e_s: DistStats,
}

impl std::fmt::Debug for Recorder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("completed", &self.completed)
            .field("rejected", &self.rejected)
            .finish()
    }
}

impl<'w> Recorder<'w> {
    /// A recorder judging goodput by `slo`.
    pub fn new(slo: Slo) -> Self {
        Recorder {
            slo,
            ttft: Distribution::default(),
            tpot: Distribution::default(),
            itl: Distribution::default(),
            e2e: Distribution::default(),
            queue: Distribution::default(),
            completed: 0,
            rejected: 0,
            clients: None,
            failed: 0,
            slo_met: 0,
            ttft_met: 0,
            tpot_met: 0,
            input_tokens: 0,
            output_tokens: 0,
            preemptions: 0,
            prefix_hit_tokens: 0,
            first_arrival: None,
            last_finish: 0.0,
            pending_itl: (0, 0),
            per_replica: Vec::new(),
            throughput: Vec::new(),
            only_replica_zero: true,
            writer: None,
            slo_windows: None,
        }
    }

    /// Also tally SLO attainment per window of arrivals ([`slo_windows`]).
    pub fn with_slo_windows(mut self, windows: slo_windows::SloWindows) -> Self {
        self.slo_windows = Some(windows);
        self
    }

    /// Also report what simulated clients did (timeouts, abandonment, retries: see
    /// [`crate::sim::client`]) in [`Summary::clients`].
    pub fn with_clients(mut self) -> Self {
        self.clients = Some(ClientSummary::default());
        self
    }

    /// The per-window tallies, when asked for.
    pub fn slo_windows(&self) -> Option<&slo_windows::SloWindows> {
        self.slo_windows.as_ref()
    }

    /// Also pass every record to `writer` (e.g. a CSV row writer).
    pub fn with_writer(mut self, writer: &'w mut dyn FnMut(&RequestRecord)) -> Self {
        self.writer = Some(writer);
        self
    }

    fn record_itl(&mut self, ns: u64, count: u64) {
        let (value, n) = &mut self.pending_itl;
        if *value == ns {
            *n += count;
        } else {
            self.itl.record_n(*value, *n);
            self.pending_itl = (ns, count);
        }
    }

    /// The summary of everything recorded, with engine-level figures added by the caller.
    /// The run's distributions as CDF points.
    pub fn cdfs(&self) -> Cdfs {
        let mut itl = self.itl.clone();
        itl.record_n(self.pending_itl.0, self.pending_itl.1);
        let mut points = Vec::new();
        for (name, d) in [
            ("ttft_s", &self.ttft),
            ("tpot_s", &self.tpot),
            ("itl_s", &itl),
            ("e2e_s", &self.e2e),
            ("queue_s", &self.queue),
        ] {
            points.extend(d.cdf().into_iter().map(|(q, v)| (name, q, v)));
        }
        Cdfs { points }
    }

    /// Requests finished and output tokens produced per second of simulated time, from
    /// second zero to the last finish.
    pub fn throughput(&self) -> &[ThroughputBin] {
        &self.throughput
    }

    /// Add a finished request to the per-second throughput: its completion in the
    /// second it finished, its output tokens spread evenly over `[first token, finish]`.
    #[inline(never)]
    fn bin_throughput(&mut self, r: &RequestRecord) {
        if !(r.finish_time_s.is_finite() && r.finish_time_s >= 0.0) {
            return;
        }
        let end = r.finish_time_s;
        let sec = |t: f64| t.max(0.0) as usize;
        if self.throughput.len() <= sec(end) {
            self.throughput
                .resize(sec(end) + 1, ThroughputBin::default());
        }
        self.throughput[sec(end)].completed += 1;
        let start = if r.first_token_time_s.is_finite() {
            r.first_token_time_s.min(end)
        } else {
            end
        };
        let tokens = f64::from(r.output_tokens);
        if end - start <= 0.0 {
            self.throughput[sec(end)].output_tokens += tokens;
            return;
        }
        let rate = tokens / (end - start);
        for s in sec(start)..=sec(end) {
            let lo = start.max(s as f64);
            let hi = end.min(s as f64 + 1.0);
            if hi > lo {
                self.throughput[s].output_tokens += rate * (hi - lo);
            }
        }
    }

    /// The run's summary.
    pub fn summary(&self) -> Summary {
        let mut itl = self.itl.clone();
        itl.record_n(self.pending_itl.0, self.pending_itl.1);
        let duration = match self.first_arrival {
            Some(a) => (self.last_finish - a).max(0.0),
            None => 0.0,
        };
        let per_s = |x: f64| if duration > 0.0 { x / duration } else { 0.0 };
        // Requests whose clients gave up missed the SLO; rejected ones are counted
        // apart.
        let judged =
            self.completed + self.failed + self.clients.map_or(0, |c| c.timed_out + c.abandoned);
        let frac = |x: u64| {
            if judged > 0 {
                x as f64 / judged as f64
            } else {
                0.0
            }
        };
        Summary {
            completed: self.completed,
            rejected: self.rejected,
            duration_s: duration,
            request_throughput_per_s: per_s(self.completed as f64),
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            output_tokens_per_s: per_s(self.output_tokens as f64),
            total_tokens_per_s: per_s((self.input_tokens + self.output_tokens) as f64),
            ttft_s: self.ttft.stats(),
            tpot_s: self.tpot.stats(),
            itl_s: itl.stats(),
            e2e_s: self.e2e.stats(),
            queue_s: self.queue.stats(),
            slo: self.slo,
            slo_attainment: frac(self.slo_met),
            ttft_slo_attainment: frac(self.ttft_met),
            tpot_slo_attainment: frac(self.tpot_met),
            goodput_requests_per_s: per_s(self.slo_met as f64),
            slo_windows: self
                .slo_windows
                .as_ref()
                .map(slo_windows::SloWindows::summary),
            cost: None,
            autoscale: None,
            intervals: None,
            failures: (self.failed > 0).then(|| FailureSummary {
                failed_requests: self.failed,
                ..FailureSummary::default()
            }),
            clients: self.clients.map(|mut c| {
                let all = judged + self.rejected;
                c.completed_fraction = if all > 0 {
                    self.completed as f64 / all as f64
                } else {
                    0.0
                };
                c
            }),
            preemptions: self.preemptions,
            prefix_hit_tokens: self.prefix_hit_tokens,
            engine: EngineSummary::default(),
            replicas: self
                .per_replica
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    // Replica 0 alone: its distributions are the run's.
                    let (ttft, tpot, e2e) = if self.only_replica_zero {
                        (&self.ttft, &self.tpot, &self.e2e)
                    } else {
                        (&t.ttft, &t.tpot, &t.e2e)
                    };
                    ReplicaSummary {
                        replica: i as u32,
                        completed: t.completed,
                        rejected: t.rejected,
                        output_tokens_per_s: per_s(t.output_tokens as f64),
                        ttft_s: ttft.stats(),
                        tpot_s: tpot.stats(),
                        e2e_s: e2e.stats(),
                    }
                })
                .collect(),
        }
    }
}

impl RequestSink for Recorder<'_> {
    fn on_tokens(&mut self, e: &TokenEvent) {
        // The first token's gap is TTFT, not an inter-token latency; tokens streamed
        // together (multi-step groups) arrive with zero gap after the first.
        let zero_gaps = u64::from(e.count.saturating_sub(1));
        if !e.first {
            self.record_itl(e.gap.as_nanos(), 1);
        }
        if zero_gaps > 0 {
            self.record_itl(0, zero_gaps);
        }
    }

    fn per_request_tokens(&self) -> bool {
        false
    }

    fn on_decode_tokens(
        &mut self,
        _replica: u32,
        _time: crate::units::SimTime,
        gap: crate::units::SimDuration,
        requests: u32,
    ) {
        self.record_itl(gap.as_nanos(), u64::from(requests));
    }

    fn on_request_end(&mut self, r: RequestRecord) {
        let i = r.replica as usize;
        if i >= self.per_replica.len() {
            self.per_replica.resize(i + 1, ReplicaTally::default());
        }
        if i != 0 && self.only_replica_zero {
            self.only_replica_zero = false;
            let zero = &mut self.per_replica[0];
            zero.ttft = self.ttft.clone();
            zero.tpot = self.tpot.clone();
            zero.e2e = self.e2e.clone();
        }
        let t = &mut self.per_replica[i];
        if r.status == RequestStatus::Finished {
            t.completed += 1;
            t.output_tokens += u64::from(r.output_tokens);
            if !self.only_replica_zero {
                t.ttft.record_secs(r.ttft_s);
                t.tpot.record_secs(r.tpot_s);
                t.e2e.record_secs(r.e2e_s);
            }
        } else if r.status == RequestStatus::Rejected {
            t.rejected += 1;
        }
        if let Some(c) = self.clients.as_mut() {
            c.retries += u64::from(r.attempts.saturating_sub(1));
        }
        if self.first_arrival.is_none_or(|a| r.arrival_time_s < a) {
            self.first_arrival = Some(r.arrival_time_s);
        }
        self.last_finish = self.last_finish.max(r.finish_time_s);
        if let Some(w) = self.slo_windows.as_mut() {
            w.record(&self.slo, &r);
        }
        match r.status {
            RequestStatus::Rejected => self.rejected += 1,
            RequestStatus::TimedOut => {
                self.clients.get_or_insert_with(Default::default).timed_out += 1;
            }
            RequestStatus::Abandoned => {
                self.clients.get_or_insert_with(Default::default).abandoned += 1;
            }
            RequestStatus::Failed => self.failed += 1,
            RequestStatus::Finished => {
                self.completed += 1;
                self.input_tokens += u64::from(r.input_tokens);
                self.output_tokens += u64::from(r.output_tokens);
                self.preemptions += u64::from(r.preemptions);
                self.prefix_hit_tokens += u64::from(r.prefix_hit_tokens);
                self.ttft.record_secs(r.ttft_s);
                self.tpot.record_secs(r.tpot_s);
                self.e2e.record_secs(r.e2e_s);
                self.queue.record_secs(r.queue_s);
                if self.slo.is_met(&r) {
                    self.slo_met += 1;
                }
                if self.slo.ttft_s.is_none_or(|s| r.ttft_s <= s) {
                    self.ttft_met += 1;
                }
                if self
                    .slo
                    .tpot_s
                    .is_none_or(|s| r.tpot_s.is_nan() || r.tpot_s <= s)
                {
                    self.tpot_met += 1;
                }
            }
        }
        if r.status == RequestStatus::Finished {
            self.bin_throughput(&r);
        }
        if let Some(w) = self.writer.as_mut() {
            w(&r);
        }
    }
}

/// What simulated clients did in a run (see [`crate::sim::client`]). Every request
/// ends once: completed, rejected, timed out or abandoned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ClientSummary {
    /// Requests whose client's timeout passed on their last attempt.
    pub timed_out: u64,
    /// Requests whose client left before the first token.
    pub abandoned: u64,
    /// Sends beyond each request's first (their server-side work was wasted).
    pub retries: u64,
    /// Completed requests over all requests (any outcome).
    pub completed_fraction: f64,
}

/// Replica failures in a run (see [`crate::sim::failures`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FailureSummary {
    /// Replica failures.
    pub outages: u64,
    /// Replica-seconds down (outage and restart), within the run.
    pub replica_down_s: f64,
    /// Requests that ended `failed` (lost with their replica on their last attempt,
    /// or sent while every replica was down).
    pub failed_requests: u64,
}

/// Engine-level figures of a run (filled from replica counters and the time series).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct EngineSummary {
    /// Iterations run.
    pub iterations: u64,
    /// Mean sequences per iteration.
    pub batch_size_mean: f64,
    /// Largest batch in sequences.
    pub batch_size_max: u32,
    /// Mean tokens per iteration.
    pub batch_tokens_mean: f64,
    /// Time-weighted mean fraction of KV blocks in use.
    pub kv_usage_mean: f64,
    /// Largest fraction of KV blocks in use.
    pub kv_usage_max: f64,
    /// Fraction of the run the replicas were busy.
    pub busy_fraction: f64,
}

/// The run summary written to `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Requests finished.
    pub completed: u64,
    /// Requests rejected (could never fit).
    pub rejected: u64,
    /// From the first arrival to the last finish, s.
    pub duration_s: f64,
    /// Finished requests per second.
    pub request_throughput_per_s: f64,
    /// Prompt tokens of finished requests.
    pub input_tokens: u64,
    /// Output tokens of finished requests.
    pub output_tokens: u64,
    /// Output tokens per second.
    pub output_tokens_per_s: f64,
    /// Prompt plus output tokens per second.
    pub total_tokens_per_s: f64,
    /// Time to first token.
    pub ttft_s: DistStats,
    /// Time per output token.
    pub tpot_s: DistStats,
    /// Inter-token latency.
    pub itl_s: DistStats,
    /// End-to-end latency.
    pub e2e_s: DistStats,
    /// Queueing delay.
    pub queue_s: DistStats,
    /// SLOs applied.
    pub slo: Slo,
    /// Fraction of finished requests meeting every SLO.
    pub slo_attainment: f64,
    /// Fraction meeting the TTFT SLO.
    pub ttft_slo_attainment: f64,
    /// Fraction meeting the TPOT SLO.
    pub tpot_slo_attainment: f64,
    /// Requests per second meeting every SLO.
    pub goodput_requests_per_s: f64,
    /// What the run cost, when the fleet's price is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::RunCost>,
    /// What simulated clients did, when they time out, retry or abandon
    /// (`--client-timeout-s`, `--max-retries`, `--abandon-after-s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<ClientSummary>,
    /// What the autoscaler did (`[autoscale]` in the run config), with the GPU-hours
    /// and cost of the autoscaled fleet and of a static fleet at its peak.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<crate::sim::autoscale::AutoscaleSummary>,
    /// Every statistic with its 95 % interval over `--replications` runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intervals: Option<crate::replicate::Intervals>,
    /// Replica failures and what they cost (`--failures`, `--mtbf-h`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<FailureSummary>,
    /// SLO attainment per window of arrivals (`--slo-window-s`), when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo_windows: Option<slo_windows::SloWindowSummary>,
    /// Preemptions over all requests.
    pub preemptions: u64,
    /// Prompt tokens served from the prefix cache.
    pub prefix_hit_tokens: u64,
    /// Engine-level figures.
    pub engine: EngineSummary,
    /// The same per replica (by the replica that finished each request).
    pub replicas: Vec<ReplicaSummary>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut d = Distribution::default();
        for ms in 1..=1000u64 {
            d.record_n(ms * 1_000_000, 1);
        }
        let s = d.stats();
        assert_eq!(s.count, 1000);
        assert!((s.mean - 0.5005).abs() < 1e-9);
        assert!((s.p50 - 0.500).abs() < 0.001, "p50 {}", s.p50);
        assert!((s.p99 - 0.990).abs() < 0.001, "p99 {}", s.p99);
        assert!((s.max - 1.0).abs() < 0.001);
    }

    /// Per-replica distributions are those of each replica's own requests, whether
    /// replica 0 reported alone for a while (its distributions then shared with the
    /// run's) or not.
    #[test]
    fn per_replica_distributions_are_each_replicas_own() {
        let rec = |id: u64, replica: u32, ttft_ms: u64| {
            let mut r = RequestRecord::rejected(id, replica, crate::units::SimTime::ZERO, 10, 3);
            r.status = RequestStatus::Finished;
            r.ttft_s = ttft_ms as f64 / 1e3;
            r.tpot_s = ttft_ms as f64 / 1e4;
            r.e2e_s = 2.0 * r.ttft_s;
            r.queue_s = 0.0;
            r.finish_time_s = r.e2e_s;
            r
        };
        for first_other in [0usize, 5, 40, 100] {
            let mut recorder = Recorder::new(Slo::default());
            let mut direct: Vec<[Distribution; 3]> = vec![Default::default(), Default::default()];
            for i in 0..100u64 {
                let replica = if (i as usize) < first_other {
                    0
                } else {
                    (i % 2) as u32
                };
                let r = rec(i, replica, 5 + (i * 37) % 91);
                let d = &mut direct[replica as usize];
                d[0].record_secs(r.ttft_s);
                d[1].record_secs(r.tpot_s);
                d[2].record_secs(r.e2e_s);
                recorder.on_request_end(r);
            }
            let s = recorder.summary();
            for (i, rs) in s.replicas.iter().enumerate() {
                let d = &direct[i];
                assert_eq!(
                    rs.ttft_s,
                    d[0].stats(),
                    "replica {i}, first other {first_other}"
                );
                assert_eq!(rs.tpot_s, d[1].stats());
                assert_eq!(rs.e2e_s, d[2].stats());
            }
        }
    }
}
