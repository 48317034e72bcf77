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
///
/// The integrals need the replicas' mean KV usage and busy count at every advance of
/// the clock; they are kept per replica and updated only for the replicas that changed
/// ([`Observer::on_advance_changed`]), so an advance costs O(changes · log replicas),
/// not O(replicas). The mean usage is summed pairwise over a fixed tree of the
/// replicas, which gives the same bits whatever the order of updates.
pub struct TimeSeries<'w> {
    next_second: u64,
    sink: Option<&'w mut dyn FnMut(&TimeSeriesRow)>,
    kv_usage_integral: f64,
    kv_usage_max: f64,
    busy_replicas_integral: f64,
    elapsed_ns: u64,
    usage: PairwiseSum,
    busy: Vec<bool>,
    busy_count: u64,
}

/// A sum of `n` numbers kept as a complete binary tree of pairwise sums: setting one
/// costs O(log n), and the total depends only on the values, not on the order in which
/// they were set.
#[derive(Clone, Debug, Default)]
struct PairwiseSum {
    /// Leaves from index `len / 2`; node `i` sums nodes `2i` and `2i + 1`.
    tree: Vec<f64>,
}

impl PairwiseSum {
    fn with_len(n: usize) -> Self {
        PairwiseSum {
            tree: vec![0.0; 2 * n.next_power_of_two()],
        }
    }

    fn set(&mut self, i: usize, v: f64) {
        let mut k = self.tree.len() / 2 + i;
        self.tree[k] = v;
        while k > 1 {
            k /= 2;
            self.tree[k] = self.tree[2 * k] + self.tree[2 * k + 1];
        }
    }

    fn total(&self) -> f64 {
        self.tree.get(1).copied().unwrap_or(0.0)
    }
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
            usage: PairwiseSum::default(),
            busy: Vec::new(),
            busy_count: 0,
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
        let all: Vec<usize> = (0..replicas.len()).collect();
        self.on_advance_changed(from, to, replicas, &all);
    }

    fn on_advance_changed(
        &mut self,
        from: SimTime,
        to: SimTime,
        replicas: &[Replica],
        changed: &[usize],
    ) {
        if self.busy.len() != replicas.len() {
            self.usage = PairwiseSum::with_len(replicas.len());
            self.busy = vec![false; replicas.len()];
            self.busy_count = 0;
        }
        for &i in changed {
            let r = &replicas[i];
            let u = r.kv_usage();
            self.usage.set(i, u);
            self.kv_usage_max = self.kv_usage_max.max(u);
            let busy = r.is_busy();
            if busy != std::mem::replace(&mut self.busy[i], busy) {
                if busy {
                    self.busy_count += 1;
                } else {
                    self.busy_count -= 1;
                }
            }
        }
        let dt = to.saturating_duration_since(from).as_nanos();
        let n = replicas.len() as f64;
        let usage = self.usage.total() / n;
        let busy = self.busy_count as f64 / n;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sums_do_not_depend_on_update_order() {
        let values = [0.1, 0.7, 1e-17, 0.3, 0.2, 5.0, 0.05];
        let mut a = PairwiseSum::with_len(values.len());
        let mut b = PairwiseSum::with_len(values.len());
        for (i, &v) in values.iter().enumerate() {
            a.set(i, v);
        }
        for (i, &v) in values.iter().enumerate().rev() {
            b.set(i, 99.0);
            b.set(i, v);
        }
        assert_eq!(a.total().to_bits(), b.total().to_bits());
        assert!((a.total() - values.iter().sum::<f64>()).abs() < 1e-12);
        // One or two replicas: the plain sum, bit for bit.
        let mut one = PairwiseSum::with_len(1);
        one.set(0, 0.3);
        assert_eq!(one.total(), 0.3);
        let mut two = PairwiseSum::with_len(2);
        two.set(0, 0.1);
        two.set(1, 0.2);
        assert_eq!(two.total().to_bits(), (0.1f64 + 0.2).to_bits());
    }
}
