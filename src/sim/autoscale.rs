//! Autoscaling: the number of replicas follows the load during a run.
//!
//! The cluster is built with `max_replicas` replicas; `min_replicas` of them start up,
//! the others parked (no GPUs held). Every `interval` the autoscaler reads a metric
//! over the replicas that are up (requests waiting, KV cache in use, or requests in
//! flight per replica) and, as Kubernetes' horizontal pod autoscaler does, wants
//! `ceil(sum of the metric / target)` replicas, clamped to [min, max]:
//!
//! * **Up:** parked replicas start at once and take requests after their start-up
//!   ([`crate::startup::Startup::restart`]: engine start and weight loading); a replica
//!   still draining is taken back first, without a restart.
//! * **Down:** only once `cooldown` has passed since the last scaling step, the
//!   highest-numbered replicas that are up stop taking requests (drain) and are parked
//!   once their last request has ended (seen at the next evaluation).
//!
//! A replica holds its GPUs from the moment it starts until it is parked: GPU-hours
//! count starting, up and draining replicas.

use super::{Event, Simulation};
use crate::error::{Error, Result};
use crate::units::{SimDuration, SimTime};
use serde::{Deserialize, Serialize};

/// What the autoscaler reads, per replica that is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ScaleMetric {
    /// Requests waiting to be scheduled.
    Queue,
    /// Fraction of the KV cache in use (target in [0, 1]).
    KvUsage,
    /// Requests in flight (waiting or running).
    Concurrency,
}

/// An autoscaling policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AutoscalePolicy {
    /// What to read.
    pub metric: ScaleMetric,
    /// The metric's target value per replica.
    pub target: f64,
    /// Fewest replicas (they start up).
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
    /// Time between evaluations.
    pub interval: SimDuration,
    /// Time after a scaling step before scaling down.
    pub cooldown: SimDuration,
    /// Time from starting a replica to its first request (engine start, weights).
    pub startup: SimDuration,
}

impl AutoscalePolicy {
    /// The policy, checked.
    pub fn checked(self) -> Result<Self> {
        let bad = |m: String| Err(Error::Config(format!("[autoscale] {m}")));
        if !(self.target.is_finite() && self.target > 0.0) {
            return bad(format!(
                "target must be a positive number, got {}",
                self.target
            ));
        }
        if self.metric == ScaleMetric::KvUsage && self.target > 1.0 {
            return bad(format!(
                "target for kv-usage is a fraction of the cache in (0, 1], got {}",
                self.target
            ));
        }
        if self.min_replicas == 0 || self.max_replicas < self.min_replicas {
            return bad(format!(
                "needs 1 ≤ min-replicas ≤ max-replicas, got {} and {}",
                self.min_replicas, self.max_replicas
            ));
        }
        if self.interval.is_zero() {
            return bad("interval-s must be more than 0 s".into());
        }
        Ok(self)
    }

    /// Replicas wanted for a metric summing to `total` over the replicas that are up.
    pub fn desired(&self, total: f64) -> u32 {
        let want = (total / self.target - 1e-9).ceil().max(0.0);
        (want.min(f64::from(self.max_replicas)) as u32).clamp(self.min_replicas, self.max_replicas)
    }
}

/// Where a replica is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Holds no GPUs.
    Parked,
    /// Starting; takes requests from the given time.
    Starting,
    /// Takes requests.
    Up,
    /// Takes no new requests; parked once empty.
    Draining,
}

/// What the autoscaler did in a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct AutoscaleSummary {
    /// Fewest and most replicas allowed.
    pub min_replicas: u32,
    /// Most replicas allowed.
    pub max_replicas: u32,
    /// Most replicas holding GPUs at once.
    pub peak_replicas: u32,
    /// Mean replicas holding GPUs over the run.
    pub mean_replicas: f64,
    /// Scaling steps up and down.
    pub scale_ups: u64,
    /// Scaling steps down.
    pub scale_downs: u64,
    /// GPU-hours of the autoscaled fleet.
    pub gpu_hours: f64,
    /// GPU-hours of a static fleet of `peak_replicas` over the same run.
    pub static_peak_gpu_hours: f64,
    /// What the autoscaled fleet cost, USD, when the GPUs have a price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usd: Option<f64>,
    /// What the static peak fleet would have cost, USD.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub static_peak_usd: Option<f64>,
}

/// The autoscaler's state during a run.
#[derive(Debug)]
pub(crate) struct Autoscaler {
    pub policy: AutoscalePolicy,
    pub state: Vec<State>,
    /// When the last scaling step happened.
    last_step: SimTime,
    /// Replica-nanoseconds holding GPUs, and since when the count below held.
    held_ns: u128,
    since: SimTime,
    holding: u32,
    pub peak: u32,
    pub scale_ups: u64,
    pub scale_downs: u64,
    /// (time, replicas holding GPUs) at every change, for the time series.
    pub timeline: Vec<(SimTime, u32)>,
}

impl Autoscaler {
    /// The autoscaler of `n` replicas (`n` = the policy's maximum).
    pub fn new(policy: AutoscalePolicy, n: usize) -> Self {
        let up = policy.min_replicas as usize;
        let state = (0..n)
            .map(|i| if i < up { State::Up } else { State::Parked })
            .collect();
        Autoscaler {
            policy,
            state,
            last_step: SimTime::ZERO,
            held_ns: 0,
            since: SimTime::ZERO,
            holding: policy.min_replicas,
            peak: policy.min_replicas,
            scale_ups: 0,
            scale_downs: 0,
            timeline: vec![(SimTime::ZERO, policy.min_replicas)],
        }
    }

    /// Account for the time up to `now` and record the replicas holding GPUs.
    pub fn account(&mut self, now: SimTime) {
        let dt = now.saturating_duration_since(self.since).as_nanos();
        self.held_ns += u128::from(dt) * u128::from(self.holding);
        self.since = now;
        let holding = self.state.iter().filter(|s| **s != State::Parked).count() as u32;
        if holding != self.holding {
            self.holding = holding;
            self.peak = self.peak.max(holding);
            self.timeline.push((now, holding));
        }
    }

    /// The step to take at `now` for a metric summing to `total` over the replicas
    /// that are up: replicas to start (parked ones) or to take back (draining ones),
    /// and replicas to drain. Updates the states; the caller routes accordingly.
    pub fn decide(&mut self, now: SimTime, total: f64) -> Step {
        let want = self.policy.desired(total);
        let count = |s: State| self.state.iter().filter(|x| **x == s).count() as u32;
        let active = count(State::Up) + count(State::Starting);
        let mut step = Step::default();
        if want > active {
            let mut need = want - active;
            // Draining replicas first: they come back at once.
            for (i, s) in self.state.iter_mut().enumerate() {
                if need > 0 && *s == State::Draining {
                    *s = State::Up;
                    step.take_back.push(i);
                    need -= 1;
                }
            }
            for (i, s) in self.state.iter_mut().enumerate() {
                if need > 0 && *s == State::Parked {
                    *s = State::Starting;
                    step.start.push(i);
                    need -= 1;
                }
            }
            self.scale_ups += 1;
            self.last_step = now;
        } else if want < count(State::Up)
            && count(State::Starting) == 0
            && now.saturating_duration_since(self.last_step) >= self.policy.cooldown
        {
            let mut extra = count(State::Up) - want;
            for (i, s) in self.state.iter_mut().enumerate().rev() {
                if extra > 0 && *s == State::Up {
                    *s = State::Draining;
                    step.drain.push(i);
                    extra -= 1;
                }
            }
            self.scale_downs += 1;
            self.last_step = now;
        }
        step
    }

    /// The summary over a run that ended at `end`, for replicas of `gpus_per_replica`
    /// GPUs at `usd_per_gpu_hour` (none: no price).
    pub fn summary(
        &self,
        end: SimTime,
        gpus_per_replica: u32,
        usd_per_gpu_hour: Option<f64>,
    ) -> AutoscaleSummary {
        let held_ns = self.held_ns
            + u128::from(end.saturating_duration_since(self.since).as_nanos())
                * u128::from(self.holding);
        let hours = |replica_ns: f64| replica_ns * 1e-9 / 3600.0 * f64::from(gpus_per_replica);
        let gpu_hours = hours(held_ns as f64);
        let static_peak = hours(end.as_nanos() as f64 * f64::from(self.peak));
        AutoscaleSummary {
            min_replicas: self.policy.min_replicas,
            max_replicas: self.policy.max_replicas,
            peak_replicas: self.peak,
            mean_replicas: if end.as_nanos() > 0 {
                held_ns as f64 / end.as_nanos() as f64
            } else {
                f64::from(self.holding)
            },
            scale_ups: self.scale_ups,
            scale_downs: self.scale_downs,
            gpu_hours,
            static_peak_gpu_hours: static_peak,
            usd: usd_per_gpu_hour.map(|p| p * gpu_hours),
            static_peak_usd: usd_per_gpu_hour.map(|p| p * static_peak),
        }
    }
}

/// Replicas holding GPUs at `t` on `timeline` ((time, count) at every change, from
/// time zero).
pub fn holding_at(timeline: &[(SimTime, u32)], t: SimTime) -> u32 {
    let i = timeline.partition_point(|&(at, _)| at <= t);
    timeline[i.saturating_sub(1)].1
}

/// One scaling step.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Step {
    /// Parked replicas to start.
    pub start: Vec<usize>,
    /// Draining replicas back to taking requests.
    pub take_back: Vec<usize>,
    /// Replicas to drain.
    pub drain: Vec<usize>,
}

impl Simulation {
    /// Scale the number of replicas with the load (see [`crate::sim::autoscale`]): the simulation's
    /// replicas are the policy's maximum, identical and unified; the first
    /// `min_replicas` start up, the others parked. Not with failures.
    pub fn with_autoscaler(mut self, policy: AutoscalePolicy) -> Result<Self> {
        let policy = policy.checked()?;
        let n = self.replicas.len();
        if n != policy.max_replicas as usize {
            return Err(Error::Config(format!(
                "an autoscaled cluster is built with max-replicas ({}) replicas, got {n}",
                policy.max_replicas
            )));
        }
        self.unified_only("autoscaling is")?;
        if self.failures.is_some() {
            return Err(Error::Config(
                "replica failures and autoscaling cannot be simulated together".into(),
            ));
        }
        self.entry = (0..policy.min_replicas as usize).collect();
        self.queue
            .push(SimTime::ZERO + policy.interval, Event::AutoscaleTick);
        self.autoscaler = Some(Autoscaler::new(policy, n));
        Ok(self)
    }

    /// What the autoscaler did, for replicas of `gpus_per_replica` GPUs at
    /// `usd_per_gpu_hour` (none without an autoscaler).
    pub fn autoscale_summary(
        &self,
        gpus_per_replica: u32,
        usd_per_gpu_hour: Option<f64>,
    ) -> Option<AutoscaleSummary> {
        self.autoscaler
            .as_ref()
            .map(|a| a.summary(self.now, gpus_per_replica, usd_per_gpu_hour))
    }

    /// Replicas holding GPUs over time under the autoscaler: (time, count) at every
    /// change.
    pub fn autoscale_timeline(&self) -> Option<&[(SimTime, u32)]> {
        self.autoscaler.as_ref().map(|a| a.timeline.as_slice())
    }

    /// The autoscaler's evaluation now: park drained replicas that are empty, read the
    /// metric, take the step, and schedule the next evaluation.
    pub(super) fn autoscale(&mut self) {
        use {ScaleMetric, State};
        let now = self.now;
        let Some(a) = self.autoscaler.as_mut() else {
            return;
        };
        a.account(now);
        for (i, s) in a.state.iter_mut().enumerate() {
            if *s == State::Draining && self.replicas[i].num_outstanding() == 0 {
                *s = State::Parked;
            }
        }
        let total: f64 = (0..self.replicas.len())
            .filter(|&i| a.state[i] == State::Up)
            .map(|i| {
                let r = &self.replicas[i];
                match a.policy.metric {
                    ScaleMetric::Queue => r.num_waiting() as f64,
                    ScaleMetric::KvUsage => r.kv_usage(),
                    ScaleMetric::Concurrency => r.num_outstanding() as f64,
                }
            })
            .sum();
        let step = a.decide(now, total);
        a.account(now);
        let (startup, interval) = (a.policy.startup, a.policy.interval);
        for &i in &step.start {
            self.queue.push(now + startup, Event::ScaledUp(i as u32));
        }
        for &i in &step.take_back {
            self.admit(i);
        }
        self.entry.retain(|e| !step.drain.contains(e));
        self.queue.push(now + interval, Event::AutoscaleTick);
    }

    /// A replica the autoscaler started is up: it takes requests.
    pub(super) fn scaled_up(&mut self, i: u32) {
        let idx = i as usize;
        if let Some(a) = self.autoscaler.as_mut() {
            if a.state[idx] == State::Starting {
                a.state[idx] = State::Up;
                self.admit(idx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AutoscalePolicy {
        AutoscalePolicy {
            metric: ScaleMetric::Concurrency,
            target: 10.0,
            min_replicas: 1,
            max_replicas: 4,
            interval: SimDuration::from_millis(1000),
            cooldown: SimDuration::from_millis(5000),
            startup: SimDuration::from_millis(2000),
        }
    }

    #[test]
    fn the_desired_count_is_the_metric_over_its_target_clamped() {
        let p = policy();
        assert_eq!(p.desired(0.0), 1);
        assert_eq!(p.desired(10.0), 1);
        assert_eq!(p.desired(10.5), 2);
        assert_eq!(p.desired(35.0), 4);
        assert_eq!(p.desired(1e9), 4);
        assert!(AutoscalePolicy { target: 0.0, ..p }.checked().is_err());
        assert!(AutoscalePolicy {
            min_replicas: 5,
            ..p
        }
        .checked()
        .is_err());
        assert!(AutoscalePolicy {
            metric: ScaleMetric::KvUsage,
            target: 2.0,
            ..p
        }
        .checked()
        .is_err());
    }

    /// 25 requests in flight on the one replica up: start two; scaling down waits for
    /// the cooldown; a drained replica is taken back before a parked one starts.
    #[test]
    fn an_autoscaler_step_by_hand() {
        let s = |ms: u64| SimTime::from_nanos(ms * 1_000_000);
        let mut a = Autoscaler::new(policy(), 4);
        let step = a.decide(s(1000), 25.0);
        assert_eq!(step.start, vec![1, 2]);
        assert_eq!(a.state[..3], [State::Up, State::Starting, State::Starting]);
        a.account(s(1000));
        // Both start-ups done at 3 s (the simulation marks them up).
        a.state[1] = State::Up;
        a.state[2] = State::Up;
        // Load falls to 5 in flight: one replica is enough, but not before 6 s.
        assert_eq!(a.decide(s(4000), 5.0), Step::default());
        let step = a.decide(s(6000), 5.0);
        assert_eq!(step.drain, vec![2, 1]);
        // Load comes back before they are parked: they are taken back, no restart.
        let step = a.decide(s(7000), 25.0);
        assert_eq!((step.take_back, step.start), (vec![1, 2], vec![]));
        a.account(s(8000));
        // GPU-hours: 1 replica for 1 s, 3 for 7 s, at 2 GPUs each, 1 USD per GPU-hour.
        let sum = a.summary(s(8000), 2, Some(1.0));
        assert!(
            (sum.gpu_hours - 2.0 * 22.0 / 3600.0).abs() < 1e-12,
            "{sum:?}"
        );
        assert_eq!(sum.peak_replicas, 3);
        assert!((sum.static_peak_gpu_hours - 2.0 * 24.0 / 3600.0).abs() < 1e-12);
        assert_eq!(sum.usd, Some(sum.gpu_hours));
        assert_eq!((sum.scale_ups, sum.scale_downs), (2, 1));
    }
}
