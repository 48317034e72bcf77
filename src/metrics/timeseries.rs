//! Per-second samples of engine state: `timeseries.csv`.

use crate::engine::Replica;
use crate::sim::Observer;
use crate::units::{SimTime, NANOS_PER_SEC};
use serde::Serialize;

/// Engine state at one whole simulated second (summed over replicas).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct TimeSeriesRow {
    /// The second, s.
    pub time_s: u64,
    /// Requests running (holding KV).
    pub running: u64,
    /// Requests waiting.
    pub waiting: u64,
    /// KV blocks in use.
    pub kv_blocks_used: u64,
    /// Tokens in the iterations in flight.
    pub batch_tokens: u64,
}

/// Samples engine state at every whole second and integrates KV usage over time.
pub struct TimeSeries<'w> {
    next_second: u64,
    sink: Option<&'w mut dyn FnMut(&TimeSeriesRow)>,
    kv_usage_integral: f64,
    kv_usage_max: f64,
    busy_replicas_integral: f64,
    elapsed_ns: u64,
}

impl std::fmt::Debug for TimeSeries<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeSeries")
            .field("next_second", &self.next_second)
            .finish()
    }
}

impl<'w> TimeSeries<'w> {
    /// A sampler passing each row to `sink` (or only integrating, with None).
    pub fn new(sink: Option<&'w mut dyn FnMut(&TimeSeriesRow)>) -> Self {
        TimeSeries {
            next_second: 0,
            sink,
            kv_usage_integral: 0.0,
            kv_usage_max: 0.0,
            busy_replicas_integral: 0.0,
            elapsed_ns: 0,
        }
    }

    /// Time-weighted mean KV usage (mean over replicas).
    pub fn kv_usage_mean(&self) -> f64 {
        if self.elapsed_ns == 0 {
            0.0
        } else {
            self.kv_usage_integral / self.elapsed_ns as f64
        }
    }

    /// Largest KV usage seen on any replica.
    pub fn kv_usage_max(&self) -> f64 {
        self.kv_usage_max
    }

    /// Fraction of replica-time spent in iterations.
    pub fn busy_fraction(&self) -> f64 {
        if self.elapsed_ns == 0 {
            0.0
        } else {
            self.busy_replicas_integral / self.elapsed_ns as f64
        }
    }
}

impl Observer for TimeSeries<'_> {
    fn on_advance(&mut self, from: SimTime, to: SimTime, replicas: &[Replica]) {
        let dt = to.saturating_duration_since(from).as_nanos();
        let n = replicas.len() as f64;
        let usage: f64 = replicas.iter().map(Replica::kv_usage).sum::<f64>() / n;
        let busy = replicas.iter().filter(|r| r.is_busy()).count() as f64 / n;
        for r in replicas {
            self.kv_usage_max = self.kv_usage_max.max(r.kv_usage());
        }
        self.kv_usage_integral += usage * dt as f64;
        self.busy_replicas_integral += busy * dt as f64;
        self.elapsed_ns += dt;
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        // Seconds in (from, to] see the state held over the interval; second 0 is
        // sampled at the first advance.
        let last = to.as_nanos() / NANOS_PER_SEC;
        if self.next_second > last {
            return;
        }
        let row = TimeSeriesRow {
            time_s: 0,
            running: replicas.iter().map(|r| r.num_running() as u64).sum(),
            waiting: replicas.iter().map(|r| r.num_waiting() as u64).sum(),
            kv_blocks_used: replicas.iter().map(|r| u64::from(r.kv_used_blocks())).sum(),
            batch_tokens: replicas.iter().map(Replica::tokens_in_step).sum(),
        };
        for s in self.next_second..=last {
            sink(&TimeSeriesRow { time_s: s, ..row });
        }
        self.next_second = last + 1;
    }
}
