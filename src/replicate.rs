//! Prediction intervals: the same run replicated N times with what varies between real
//! runs resampled, and every statistic reported with the 2.5–97.5 % range of its
//! replications (`simulate --replications N`).
//!
//! Two sources of variation:
//!
//! * **The workload.** A recorded trace is one sample of its traffic. Each replication
//!   replays a moving-block bootstrap of it: the trace is cut into blocks of `block_s`
//!   seconds of arrivals, and as many blocks as it has are drawn with replacement and
//!   laid end to end (each keeps its own arrival pattern, so bursts within a block
//!   survive; blocks of several minutes keep the queueing they cause).
//! * **The hardware.** Each replication draws one speed factor for iterations with
//!   prefill work and one for decode-only iterations, lognormal with the run-to-run
//!   coefficients of variation measured on repeated runs (`perf_model/noise.toml`).
//!
//! Replications run in parallel, each with its own seed (the run's seed plus the
//! replication's number), so the result does not depend on the thread count.

use crate::error::{Error, Result};
use crate::metrics::{DistStats, Summary};
use crate::paths::DataPaths;
use crate::perf::{LatencyModel, StepShape};
use crate::trace::Request;
use crate::units::{SimDuration, SimTime};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Run-to-run variation of iteration times (`perf_model/noise.toml`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RunNoise {
    /// Coefficient of variation of iterations with prefill work, across runs.
    pub prefill_cv: f64,
    /// Coefficient of variation of decode-only iterations, across runs.
    pub decode_cv: f64,
    /// Where the figures come from.
    pub source: String,
}

impl RunNoise {
    /// Read `perf_model/noise.toml`.
    pub fn load(paths: &DataPaths) -> Result<Self> {
        let path = paths.perf_model.join("noise.toml");
        let n: RunNoise = crate::error::read_toml(&path)?;
        for (k, v) in [("prefill_cv", n.prefill_cv), ("decode_cv", n.decode_cv)] {
            if !(v.is_finite() && (0.0..1.0).contains(&v)) {
                return Err(Error::Config(format!(
                    "{}: {k} must be in [0, 1), got {v}",
                    path.display()
                )));
            }
        }
        Ok(n)
    }

    /// The two speed factors of one replication (prefill, decode-only), mean 1.
    pub fn draw(&self, rng: &mut ChaCha8Rng) -> (f64, f64) {
        let mut factor = |cv: f64| {
            if cv == 0.0 {
                return 1.0;
            }
            // Lognormal with mean 1 and the given coefficient of variation.
            let s2 = (1.0 + cv * cv).ln();
            LogNormal::new(-s2 / 2.0, s2.sqrt()).map_or(1.0, |d| d.sample(rng))
        };
        (factor(self.prefill_cv), factor(self.decode_cv))
    }
}

/// A latency model whose iterations all run a factor slower or faster: one for
/// iterations with prefill work, one for decode-only ones.
#[derive(Clone)]
pub struct Scaled {
    /// The model scaled.
    pub inner: Arc<dyn LatencyModel>,
    /// Factor of iterations with prefill work.
    pub prefill: f64,
    /// Factor of decode-only iterations.
    pub decode: f64,
}

impl LatencyModel for Scaled {
    fn step_time(&self, shape: &StepShape) -> SimDuration {
        let t = self.inner.step_time(shape);
        let f = if shape.prefill_tokens() > 0 {
            self.prefill
        } else {
            self.decode
        };
        if t == SimDuration::MAX {
            return t; // an invalid time stays invalid
        }
        SimDuration::from_secs_f64(t.as_secs_f64() * f)
    }
    fn describe(&self) -> String {
        format!(
            "{} × {:.4} (prefill) / {:.4} (decode) run-to-run factor",
            self.inner.describe(),
            self.prefill,
            self.decode
        )
    }
}

/// A moving-block bootstrap of `reqs` (sorted by arrival): as many blocks of `block_s`
/// seconds as the trace spans, drawn with replacement and laid end to end; ids
/// renumbered from 0.
pub fn block_bootstrap(reqs: &[Request], block_s: f64, rng: &mut ChaCha8Rng) -> Vec<Request> {
    let Some(last) = reqs.last() else {
        return Vec::new();
    };
    let block = SimDuration::from_secs_f64(block_s).as_nanos().max(1);
    let blocks = last.arrival.as_nanos() / block + 1;
    // Requests of each block, by index range.
    let mut starts = Vec::with_capacity(blocks as usize + 1);
    let mut i = 0;
    for b in 0..=blocks {
        while i < reqs.len() && reqs[i].arrival.as_nanos() < b * block {
            i += 1;
        }
        starts.push(i);
    }
    let mut out = Vec::with_capacity(reqs.len());
    for k in 0..blocks {
        let b = rng.random_range(0..blocks);
        let (from, to) = (starts[b as usize], starts[b as usize + 1]);
        for r in &reqs[from..to] {
            let mut q = r.clone();
            let offset = r.arrival.as_nanos() - b * block;
            q.arrival = SimTime::from_nanos(k * block + offset);
            q.id = out.len() as u64;
            out.push(q);
        }
    }
    out
}

/// A statistic with its 95 % interval over the replications.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Interval {
    /// The value of the run itself (the trace as recorded, nominal speed).
    pub value: f64,
    /// The 2.5th and 97.5th percentiles over the replications.
    pub ci95: [f64; 2],
}

/// The 2.5th and 97.5th percentiles of `xs` (NaNs left out; linear interpolation).
pub fn percentile_interval(xs: &[f64]) -> [f64; 2] {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return [f64::NAN, f64::NAN];
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let pos = p * (v.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
    };
    [q(0.025), q(0.975)]
}

/// The intervals of a run: its replications' count and block length, and every
/// statistic (`"ttft_s": {"p99": {"value": …, "ci95": [lo, hi]}}`, throughputs and
/// attainment directly).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Intervals {
    /// Replications run.
    pub replications: u32,
    /// Bootstrap block length, s.
    pub block_s: f64,
    /// Where the run-to-run speed variation comes from.
    pub noise_source: String,
    /// Distributions: name → statistic → interval.
    #[serde(flatten)]
    pub distributions: BTreeMap<&'static str, BTreeMap<&'static str, Interval>>,
    /// Rates and fractions: name → interval.
    #[serde(flatten)]
    pub scalars: BTreeMap<&'static str, Interval>,
}

type DistOf = fn(&Summary) -> &DistStats;
type StatOf = fn(&DistStats) -> f64;
type ScalarOf = fn(&Summary) -> f64;

/// The distributions reported with intervals.
const DISTRIBUTIONS: [(&str, DistOf); 5] = [
    ("ttft_s", |s| &s.ttft_s),
    ("tpot_s", |s| &s.tpot_s),
    ("itl_s", |s| &s.itl_s),
    ("e2e_s", |s| &s.e2e_s),
    ("queue_s", |s| &s.queue_s),
];

/// The statistics of a distribution reported with intervals.
const STATS: [(&str, StatOf); 5] = [
    ("mean", |d| d.mean),
    ("p50", |d| d.p50),
    ("p90", |d| d.p90),
    ("p99", |d| d.p99),
    ("max", |d| d.max),
];

/// The rates and fractions reported with intervals.
const SCALARS: [(&str, ScalarOf); 5] = [
    ("request_throughput_per_s", |s| s.request_throughput_per_s),
    ("output_tokens_per_s", |s| s.output_tokens_per_s),
    ("goodput_requests_per_s", |s| s.goodput_requests_per_s),
    ("slo_attainment", |s| s.slo_attainment),
    ("duration_s", |s| s.duration_s),
];

/// The intervals of `point` (the run itself) from its replications `reps`.
pub fn intervals(point: &Summary, reps: &[Summary], block_s: f64, noise: &RunNoise) -> Intervals {
    let interval = |value: f64, f: &dyn Fn(&Summary) -> f64| Interval {
        value,
        ci95: percentile_interval(&reps.iter().map(f).collect::<Vec<_>>()),
    };
    let distributions = DISTRIBUTIONS
        .iter()
        .map(|&(name, dist)| {
            let stats = STATS
                .iter()
                .map(|&(stat, get)| (stat, interval(get(dist(point)), &|s| get(dist(s)))))
                .collect();
            (name, stats)
        })
        .collect();
    let scalars = SCALARS
        .iter()
        .map(|&(name, get)| (name, interval(get(point), &get)))
        .collect();
    Intervals {
        replications: reps.len() as u32,
        block_s,
        noise_source: noise.source.clone(),
        distributions,
        scalars,
    }
}

/// Run `replications` replications of `requests` in parallel on up to `jobs` threads:
/// replication `r` replays a block bootstrap of the requests drawn from `seed + r` and
/// gets the speed factors drawn from the same stream; `run` simulates one replication
/// (its requests and its two factors) and returns its summary. Summaries in
/// replication order.
pub fn replicate(
    requests: &[Request],
    replications: u32,
    block_s: f64,
    noise: &RunNoise,
    seed: u64,
    jobs: usize,
    run: &(dyn Fn(Vec<Request>, (f64, f64)) -> Result<Summary> + Sync),
) -> Result<Vec<Summary>> {
    if replications == 0 {
        return Err(Error::Config("--replications must be at least 1".into()));
    }
    if !(block_s.is_finite() && block_s > 0.0) {
        return Err(Error::Config(format!(
            "--bootstrap-block-s must be a positive number of seconds, got {block_s}"
        )));
    }
    let one = |r: u32| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(u64::from(r)));
        let reqs = block_bootstrap(requests, block_s, &mut rng);
        let factors = noise.draw(&mut rng);
        run(reqs, factors)
    };
    let indices: Vec<usize> = (0..replications as usize).collect();
    crate::plan::exec::par_map(&indices, jobs, |r| one(r as u32), &|| {})
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests;
