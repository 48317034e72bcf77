//! Summary statistics of a trace, computed in one streaming pass.
//!
//! Counts, sums, means and maxima are exact. Percentiles come from an HDR histogram with
//! 3 significant digits: exact for lengths up to 2,048 tokens and within 0.1 % above
//! (reported as the upper end of the value's bucket), in memory that does not grow with
//! the number of requests.

use super::Request;
use crate::error::Result;
use crate::units::SimTime;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Distribution of a token count over the requests of a trace.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LengthStats {
    /// Arithmetic mean (exact).
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest value (exact).
    pub max: u64,
}

/// Summary of a trace.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TraceStats {
    /// Requests.
    pub count: u64,
    /// First arrival, seconds.
    pub first_arrival_s: f64,
    /// Last arrival minus first arrival, seconds.
    pub span_s: f64,
    /// Mean arrival rate, requests per second: `(count − 1) / span_s`, the number of
    /// inter-arrival gaps per second (`None` when the span is 0).
    pub mean_rate_rps: Option<f64>,
    /// Prompt lengths, tokens.
    pub input_tokens: LengthStats,
    /// Output lengths, tokens.
    pub output_tokens: LengthStats,
    /// Sum of prompt lengths.
    pub total_input_tokens: u64,
    /// Sum of output lengths.
    pub total_output_tokens: u64,
    /// Sum of both.
    pub total_tokens: u64,
}

impl TraceStats {
    /// Statistics of a request stream; the first error ends the pass and is returned.
    pub fn from_requests<I>(requests: I) -> Result<TraceStats>
    where
        I: IntoIterator<Item = Result<Request>>,
    {
        let mut b = StatsBuilder::new();
        for r in requests {
            b.push(&r?);
        }
        Ok(b.finish())
    }
}

/// Accumulates [`TraceStats`] one request at a time.
#[derive(Debug)]
pub struct StatsBuilder {
    count: u64,
    first: Option<SimTime>,
    last: SimTime,
    input: Lengths,
    output: Lengths,
}

#[derive(Debug)]
struct Lengths {
    sum: u64,
    max: u64,
    hist: Histogram<u64>,
}

impl Lengths {
    fn new() -> Self {
        Lengths {
            sum: 0,
            max: 0,
            // Auto-resizing histogram, 3 significant digits: any u32 fits.
            hist: Histogram::new(3).expect("3 significant digits is a valid precision"),
        }
    }

    fn push(&mut self, v: u32) {
        let v = u64::from(v);
        self.sum += v;
        self.max = self.max.max(v);
        self.hist
            .record(v)
            .expect("an auto-resizing histogram records any u32");
    }

    fn finish(&self, count: u64) -> LengthStats {
        if count == 0 {
            return LengthStats::default();
        }
        let q = |p: f64| self.hist.value_at_quantile(p).min(self.max);
        LengthStats {
            mean: self.sum as f64 / count as f64,
            p50: q(0.50),
            p90: q(0.90),
            p99: q(0.99),
            max: self.max,
        }
    }
}

impl Default for StatsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StatsBuilder {
    /// An empty accumulator.
    pub fn new() -> Self {
        StatsBuilder {
            count: 0,
            first: None,
            last: SimTime::ZERO,
            input: Lengths::new(),
            output: Lengths::new(),
        }
    }

    /// Add one request.
    pub fn push(&mut self, r: &Request) {
        self.count += 1;
        self.first.get_or_insert(r.arrival);
        self.last = self.last.max(r.arrival);
        self.input.push(r.input_tokens);
        self.output.push(r.output_tokens);
    }

    /// The statistics so far.
    pub fn finish(&self) -> TraceStats {
        let first = self.first.unwrap_or(SimTime::ZERO);
        let span_s = self.last.saturating_duration_since(first).as_secs_f64();
        TraceStats {
            count: self.count,
            first_arrival_s: first.as_secs_f64(),
            span_s,
            mean_rate_rps: (span_s > 0.0).then(|| (self.count - 1) as f64 / span_s),
            input_tokens: self.input.finish(self.count),
            output_tokens: self.output.finish(self.count),
            total_input_tokens: self.input.sum,
            total_output_tokens: self.output.sum,
            total_tokens: self.input.sum + self.output.sum,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(t_s: f64, i: u32, o: u32) -> Request {
        Request::new(0, SimTime::from_secs_f64(t_s), i, o)
    }

    #[test]
    fn small_trace_exact() {
        let reqs = (1..=100).map(|k| Ok(req(k as f64 * 0.5, k, 101 - k)));
        let s = TraceStats::from_requests(reqs).unwrap();
        assert_eq!(s.count, 100);
        assert_eq!(s.first_arrival_s, 0.5);
        assert_eq!(s.span_s, 49.5);
        assert_eq!(s.mean_rate_rps, Some(2.0));
        assert_eq!(s.input_tokens.mean, 50.5);
        assert_eq!(s.input_tokens.p50, 50);
        assert_eq!(s.input_tokens.p90, 90);
        assert_eq!(s.input_tokens.p99, 99);
        assert_eq!(s.input_tokens.max, 100);
        assert_eq!(s.output_tokens.max, 100);
        assert_eq!(s.total_input_tokens, 5050);
        assert_eq!(s.total_tokens, 10_100);
    }

    #[test]
    fn empty_and_single() {
        let s = TraceStats::from_requests(std::iter::empty()).unwrap();
        assert_eq!(s.count, 0);
        assert_eq!(s.mean_rate_rps, None);
        assert_eq!(s.input_tokens, LengthStats::default());
        let s = TraceStats::from_requests([Ok(req(3.0, 7, 9))]).unwrap();
        assert_eq!(s.count, 1);
        assert_eq!(s.span_s, 0.0);
        assert_eq!(s.mean_rate_rps, None);
        assert_eq!(s.input_tokens.p99, 7);
    }

    #[test]
    fn large_values_within_a_tenth_of_a_percent() {
        let reqs = (1..=1000u32).map(|k| Ok(req(0.0, k * 1000, 1)));
        let s = TraceStats::from_requests(reqs).unwrap();
        let rel = |got: u64, want: f64| (got as f64 - want).abs() / want;
        assert!(
            rel(s.input_tokens.p50, 500_000.0) <= 1e-3,
            "{}",
            s.input_tokens.p50
        );
        assert!(
            rel(s.input_tokens.p99, 990_000.0) <= 1e-3,
            "{}",
            s.input_tokens.p99
        );
        assert_eq!(s.input_tokens.max, 1_000_000);
    }

    #[test]
    fn errors_stop_the_pass() {
        let reqs = vec![Ok(req(0.0, 1, 1)), Err(crate::Error::Config("boom".into()))];
        assert!(TraceStats::from_requests(reqs).is_err());
    }
}
