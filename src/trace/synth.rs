//! Seeded synthetic traces: an arrival process and a length model, streamed.
//!
//! [`SynthTrace`] is an iterator of [`Request`]s that stores nothing per request, so it
//! can produce millions of requests in constant memory. The same [`SynthConfig`] (seed
//! included) always gives the same sequence.
//!
//! # Randomness
//!
//! One seed feeds three independent [`ChaCha8Rng`] streams (same key, stream numbers
//! 0, 1, 2): arrivals, input lengths, output lengths. Changing the arrival process leaves
//! the lengths unchanged, and changing the input-length distribution leaves the arrivals
//! and output lengths unchanged. Resampling from a trace draws its row index from the
//! input-length stream. ChaCha8 is a named, portable algorithm; the distributions come
//! from `rand_distr`, pinned by `Cargo.lock` (a new `rand_distr` version may change the
//! values drawn).
//!
//! # Arrivals
//!
//! The first request arrives at time 0 for every process; each later one after an
//! inter-arrival gap drawn from the process, rounded to the nanosecond and summed as
//! integers (no floating-point drift). [`ArrivalProcess::ClosedLoop`] and
//! [`ArrivalProcess::Burst`] put every request at time 0: for a closed loop the engine
//! issues the first `concurrency` requests at once and each later one when an earlier one
//! finishes (the engine's `RequestSource::ClosedLoop`), ignoring the written arrival.
//!
//! ```
//! use servesim::trace::{ArrivalProcess, LengthDist, LengthModel, SynthConfig, SynthLimit, SynthTrace};
//!
//! let cfg = SynthConfig {
//!     arrival: ArrivalProcess::Poisson { rate_rps: 10.0 },
//!     lengths: LengthModel::Independent {
//!         input: "lognormal:1000:1.2".parse().unwrap(),
//!         output: LengthDist::Uniform { lo: 16, hi: 256 },
//!     },
//!     limit: SynthLimit::Requests(1000),
//!     seed: 7,
//! };
//! let a: Vec<_> = SynthTrace::new(cfg.clone()).unwrap().collect();
//! let b: Vec<_> = SynthTrace::new(cfg).unwrap().collect();
//! assert_eq!(a, b);
//! assert!(a.windows(2).all(|w| w[0].arrival <= w[1].arrival));
//! ```

use super::{open_trace, Request, TraceOptions};
use crate::error::{Error, Result};
use crate::units::{checked_secs_to_nanos, SimDuration, SimTime};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Gamma, LogNormal};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

/// RNG stream numbers derived from the one seed.
const ARRIVAL_STREAM: u64 = 0;
const INPUT_STREAM: u64 = 1;
const OUTPUT_STREAM: u64 = 2;

/// When requests arrive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ArrivalProcess {
    /// Poisson process: exponential gaps with mean `1 / rate_rps`.
    Poisson {
        /// Mean arrival rate, requests per second.
        rate_rps: f64,
    },
    /// Gamma-distributed gaps with mean `1 / rate_rps` and coefficient of variation `cv`
    /// (shape `1 / cv²`, scale `cv² / rate_rps`): `cv > 1` is burstier than Poisson,
    /// `cv < 1` more regular, `cv = 1` is Poisson. vLLM's `--burstiness b` is `cv = 1/√b`.
    Gamma {
        /// Mean arrival rate, requests per second.
        rate_rps: f64,
        /// Coefficient of variation of the gaps (standard deviation / mean).
        cv: f64,
    },
    /// Evenly spaced: request `i` arrives at `i / rate_rps` seconds.
    Constant {
        /// Arrival rate, requests per second.
        rate_rps: f64,
    },
    /// Every request at time 0 (vLLM's `--request-rate inf`).
    Burst,
    /// A fixed number of clients, each sending its next request when its previous one
    /// finishes. Generated arrivals are all 0; the engine issues the first `concurrency`
    /// requests at once and each later one as an earlier one ends.
    ClosedLoop {
        /// Requests in flight at any time.
        concurrency: u32,
    },
}

impl ArrivalProcess {
    /// Check the parameters: rates and `cv` positive and finite, concurrency at least 1.
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::Config(format!(
                    "arrival process: `{name}` must be positive and finite, got {v}"
                )))
            }
        };
        match *self {
            ArrivalProcess::Poisson { rate_rps } | ArrivalProcess::Constant { rate_rps } => {
                positive("rate_rps", rate_rps)
            }
            ArrivalProcess::Gamma { rate_rps, cv } => {
                positive("rate_rps", rate_rps)?;
                positive("cv", cv)?;
                // Shape 1/cv² must stay a usable Gamma shape.
                if !(1.0 / (cv * cv)).is_normal() {
                    return Err(Error::Config(format!(
                        "arrival process: `cv` = {cv} is out of range"
                    )));
                }
                Ok(())
            }
            ArrivalProcess::Burst => Ok(()),
            ArrivalProcess::ClosedLoop { concurrency } => {
                if concurrency == 0 {
                    Err(Error::Config(
                        "arrival process: closed-loop `concurrency` must be at least 1".into(),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The client count of a closed loop, `None` for open-loop processes.
    pub fn closed_loop_concurrency(&self) -> Option<u32> {
        match *self {
            ArrivalProcess::ClosedLoop { concurrency } => Some(concurrency),
            _ => None,
        }
    }

    /// Whether arrivals spread over time (false for burst and closed loop, where every
    /// generated arrival is 0).
    pub fn has_rate(&self) -> bool {
        matches!(
            self,
            ArrivalProcess::Poisson { .. }
                | ArrivalProcess::Gamma { .. }
                | ArrivalProcess::Constant { .. }
        )
    }
}

/// Arrival times in nanoseconds from one seeded stream. Also used to regenerate the
/// arrivals of vLLM result files.
pub(crate) struct ArrivalSampler {
    gaps: Gaps,
    rng: ChaCha8Rng,
    /// Index of the next arrival.
    index: u64,
    /// Time of the next arrival; `None` once it would pass `u64::MAX` ns.
    next: Option<u64>,
}

enum Gaps {
    Exp(Exp<f64>),
    Gamma(Gamma<f64>),
    Constant { rate_rps: f64 },
    Zero,
}

impl ArrivalSampler {
    /// A sampler for a validated `process`.
    pub(crate) fn new(process: &ArrivalProcess, seed: u64) -> Self {
        let gaps = match *process {
            ArrivalProcess::Poisson { rate_rps } => {
                Exp::new(rate_rps).map_or(Gaps::Zero, Gaps::Exp)
            }
            ArrivalProcess::Gamma { rate_rps, cv } => {
                let shape = 1.0 / (cv * cv);
                let scale = cv * cv / rate_rps;
                Gamma::new(shape, scale).map_or(Gaps::Zero, Gaps::Gamma)
            }
            ArrivalProcess::Constant { rate_rps } => Gaps::Constant { rate_rps },
            ArrivalProcess::Burst | ArrivalProcess::ClosedLoop { .. } => Gaps::Zero,
        };
        ArrivalSampler {
            gaps,
            rng: stream(seed, ARRIVAL_STREAM),
            index: 0,
            next: Some(0),
        }
    }

    /// The next arrival time, or `None` past the largest simulated time.
    pub(crate) fn next_nanos(&mut self) -> Option<u64> {
        let now = self.next?;
        self.index += 1;
        self.next = match &self.gaps {
            Gaps::Zero => Some(0),
            Gaps::Constant { rate_rps } => checked_secs_to_nanos(self.index as f64 / rate_rps),
            Gaps::Exp(d) => {
                checked_secs_to_nanos(d.sample(&mut self.rng)).and_then(|g| now.checked_add(g))
            }
            Gaps::Gamma(d) => {
                checked_secs_to_nanos(d.sample(&mut self.rng)).and_then(|g| now.checked_add(g))
            }
        };
        Some(now)
    }
}

/// ChaCha8 seeded from `seed`, on stream `n`.
fn stream(seed: u64, n: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(n);
    rng
}

/// A distribution of token counts. Written (and parsed) as `fixed:N` (or just `N`),
/// `uniform:LO:HI` or `lognormal:MEAN:CV[:MAX]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum LengthDist {
    /// Always `N` tokens (`fixed:N`).
    Fixed(u32),
    /// Uniform on the integers `lo..=hi` (`uniform:LO:HI`).
    Uniform {
        /// Smallest value (at least 1).
        lo: u32,
        /// Largest value (at least `lo`).
        hi: u32,
    },
    /// Log-normal with the given arithmetic `mean` and coefficient of variation `cv`
    /// (standard deviation / mean), rounded to the nearest integer and clamped to
    /// `[1, max]` (`lognormal:MEAN:CV[:MAX]`). Clamping lowers the mean a little when
    /// `max` cuts the tail. Mean and CV were chosen over (μ, σ) because they read
    /// directly off a trace's statistics (`servesim trace stats`).
    LogNormal {
        /// Arithmetic mean, tokens.
        mean: f64,
        /// Coefficient of variation.
        cv: f64,
        /// Largest value returned (none: `u32::MAX`).
        max: Option<u32>,
    },
}

impl LengthDist {
    /// Check the parameters.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("length distribution `{self}`: {m}")));
        match *self {
            LengthDist::Fixed(0) => bad("the length must be at least 1".into()),
            LengthDist::Fixed(_) => Ok(()),
            LengthDist::Uniform { lo, hi } => {
                if lo == 0 {
                    bad("the lower bound must be at least 1".into())
                } else if hi < lo {
                    bad(format!(
                        "the upper bound {hi} is below the lower bound {lo}"
                    ))
                } else {
                    Ok(())
                }
            }
            LengthDist::LogNormal { mean, cv, max } => {
                if !(mean.is_finite() && mean >= 1.0) {
                    bad(format!("the mean must be at least 1, got {mean}"))
                } else if !(cv.is_finite() && cv >= 0.0) {
                    bad(format!("the cv must be finite and non-negative, got {cv}"))
                } else if max == Some(0) {
                    bad("the maximum must be at least 1".into())
                } else {
                    Ok(())
                }
            }
        }
    }

    fn sampler(&self) -> LengthSampler {
        match *self {
            LengthDist::Fixed(n) => LengthSampler::Fixed(n),
            LengthDist::Uniform { lo, hi } => LengthSampler::Uniform { lo, hi },
            LengthDist::LogNormal { mean, cv, max } => match LogNormal::from_mean_cv(mean, cv) {
                Ok(d) => LengthSampler::LogNormal {
                    d,
                    max: max.unwrap_or(u32::MAX),
                },
                // Validated parameters always build; keep a safe fallback anyway.
                Err(_) => LengthSampler::Fixed(mean.round() as u32),
            },
        }
    }
}

impl fmt::Display for LengthDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LengthDist::Fixed(n) => write!(f, "fixed:{n}"),
            LengthDist::Uniform { lo, hi } => write!(f, "uniform:{lo}:{hi}"),
            LengthDist::LogNormal { mean, cv, max } => {
                write!(f, "lognormal:{mean}:{cv}")?;
                if let Some(m) = max {
                    write!(f, ":{m}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for LengthDist {
    type Err = Error;

    /// Parse `fixed:N`, `N`, `uniform:LO:HI` or `lognormal:MEAN:CV[:MAX]`, and validate.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |m: &str| {
            Error::Config(format!(
                "length distribution `{s}`: {m} (expected fixed:N, uniform:LO:HI or \
                 lognormal:MEAN:CV[:MAX])"
            ))
        };
        let int = |p: &str| {
            p.trim()
                .parse::<u32>()
                .map_err(|_| bad(&format!("`{p}` is not a token count")))
        };
        let num = |p: &str| {
            p.trim()
                .parse::<f64>()
                .map_err(|_| bad(&format!("`{p}` is not a number")))
        };
        let parts: Vec<&str> = s.trim().split(':').collect();
        let dist = match parts.as_slice() {
            [n] => LengthDist::Fixed(int(n)?),
            [k, n] if k.eq_ignore_ascii_case("fixed") => LengthDist::Fixed(int(n)?),
            [k, lo, hi] if k.eq_ignore_ascii_case("uniform") => LengthDist::Uniform {
                lo: int(lo)?,
                hi: int(hi)?,
            },
            [k, mean, cv] if k.eq_ignore_ascii_case("lognormal") => LengthDist::LogNormal {
                mean: num(mean)?,
                cv: num(cv)?,
                max: None,
            },
            [k, mean, cv, max] if k.eq_ignore_ascii_case("lognormal") => LengthDist::LogNormal {
                mean: num(mean)?,
                cv: num(cv)?,
                max: Some(int(max)?),
            },
            _ => return Err(bad("unknown form")),
        };
        dist.validate()?;
        Ok(dist)
    }
}

impl TryFrom<String> for LengthDist {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<LengthDist> for String {
    fn from(d: LengthDist) -> String {
        d.to_string()
    }
}

enum LengthSampler {
    Fixed(u32),
    Uniform { lo: u32, hi: u32 },
    LogNormal { d: LogNormal<f64>, max: u32 },
}

impl LengthSampler {
    fn sample(&self, rng: &mut ChaCha8Rng) -> u32 {
        match self {
            LengthSampler::Fixed(n) => *n,
            LengthSampler::Uniform { lo, hi } => rng.random_range(*lo..=*hi),
            LengthSampler::LogNormal { d, max } => {
                // `as` saturates (and maps NaN to 0); the clamp keeps it in [1, max].
                (d.sample(rng).round() as u32).clamp(1, *max)
            }
        }
    }
}

/// How input and output lengths are drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum LengthModel {
    /// Input and output lengths from independent distributions (and RNG streams).
    Independent {
        /// Prompt lengths.
        input: LengthDist,
        /// Output lengths.
        output: LengthDist,
    },
    /// `(input, output)` pairs drawn uniformly, with replacement, from a trace's rows,
    /// which keeps their correlation.
    Resample {
        /// The pairs (loaded once; 8 bytes per row).
        pairs: Arc<[(u32, u32)]>,
    },
}

impl LengthModel {
    /// Load the `(input, output)` pairs of the trace at `path` (any format [`open_trace`]
    /// reads, with `opts` applied) for [`LengthModel::Resample`].
    pub fn resample_from(path: &Path, opts: &TraceOptions) -> Result<Self> {
        let pairs = open_trace(path, opts)?
            .map(|r| r.map(|r| (r.input_tokens, r.output_tokens)))
            .collect::<Result<Vec<_>>>()?;
        if pairs.is_empty() {
            return Err(Error::input(
                path,
                None,
                "no requests to resample lengths from",
            ));
        }
        Ok(LengthModel::Resample {
            pairs: pairs.into(),
        })
    }

    /// Check the distributions (a resampling model needs at least one pair).
    pub fn validate(&self) -> Result<()> {
        match self {
            LengthModel::Independent { input, output } => {
                input.validate()?;
                output.validate()
            }
            LengthModel::Resample { pairs } => {
                if pairs.is_empty() {
                    Err(Error::Config(
                        "no (input, output) pairs to resample from".into(),
                    ))
                } else if pairs.iter().any(|&(i, o)| i == 0 || o == 0) {
                    Err(Error::Config(
                        "resampled lengths must be at least 1 token".into(),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// When a synthetic trace ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynthLimit {
    /// After this many requests.
    Requests(u64),
    /// With the last arrival before this time (arrivals in `[0, duration)`); needs an
    /// arrival process with a rate.
    Duration(SimDuration),
}

/// Everything that defines a synthetic trace.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    /// When requests arrive.
    pub arrival: ArrivalProcess,
    /// How long prompts and outputs are.
    pub lengths: LengthModel,
    /// When to stop.
    pub limit: SynthLimit,
    /// Seed of every random draw.
    pub seed: u64,
}

/// A seeded synthetic trace: an iterator of [`Request`]s, ids `0, 1, 2, …`, that
/// holds no per-request state.
pub struct SynthTrace {
    arrival: ArrivalProcess,
    arrivals: ArrivalSampler,
    lengths: Lengths,
    limit: SynthLimit,
    index: u64,
    done: bool,
}

/// Length sampling state: one RNG stream for inputs (and resampling), one for outputs.
struct Lengths {
    kind: LengthKind,
    input_rng: ChaCha8Rng,
    output_rng: ChaCha8Rng,
}

enum LengthKind {
    Independent {
        input: LengthSampler,
        output: LengthSampler,
    },
    Resample(Arc<[(u32, u32)]>),
}

impl fmt::Debug for SynthTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SynthTrace")
            .field("arrival", &self.arrival)
            .field("limit", &self.limit)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl SynthTrace {
    /// A generator for `cfg`, after checking it.
    pub fn new(cfg: SynthConfig) -> Result<Self> {
        cfg.arrival.validate()?;
        cfg.lengths.validate()?;
        if matches!(cfg.limit, SynthLimit::Duration(_)) && !cfg.arrival.has_rate() {
            return Err(Error::Config(
                "a duration limit needs an arrival process with a rate (poisson, gamma or \
                 constant); give a request count instead"
                    .into(),
            ));
        }
        let kind = match cfg.lengths {
            LengthModel::Independent { input, output } => LengthKind::Independent {
                input: input.sampler(),
                output: output.sampler(),
            },
            LengthModel::Resample { pairs } => LengthKind::Resample(pairs),
        };
        let lengths = Lengths {
            kind,
            input_rng: stream(cfg.seed, INPUT_STREAM),
            output_rng: stream(cfg.seed, OUTPUT_STREAM),
        };
        Ok(SynthTrace {
            arrivals: ArrivalSampler::new(&cfg.arrival, cfg.seed),
            arrival: cfg.arrival,
            lengths,
            limit: cfg.limit,
            index: 0,
            done: false,
        })
    }

    /// The arrival process (the engine needs to know about a closed loop).
    pub fn arrival_process(&self) -> &ArrivalProcess {
        &self.arrival
    }
}

impl Iterator for SynthTrace {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        if self.done {
            return None;
        }
        let t = match (self.limit, self.arrivals.next_nanos()) {
            (SynthLimit::Requests(n), _) if self.index >= n => None,
            (SynthLimit::Duration(d), Some(t)) if t >= d.as_nanos() => None,
            (_, t) => t,
        };
        let Some(t) = t else {
            self.done = true;
            return None;
        };
        let l = &mut self.lengths;
        let (input_tokens, output_tokens) = match &l.kind {
            LengthKind::Independent { input, output } => (
                input.sample(&mut l.input_rng),
                output.sample(&mut l.output_rng),
            ),
            LengthKind::Resample(pairs) => pairs[l.input_rng.random_range(0..pairs.len())],
        };
        let req = Request::new(
            self.index,
            SimTime::from_nanos(t),
            input_tokens,
            output_tokens,
        );
        self.index += 1;
        Some(req)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            return (0, Some(0));
        }
        match self.limit {
            SynthLimit::Requests(n) => {
                let left = usize::try_from(n - self.index).unwrap_or(usize::MAX);
                (0, Some(left))
            }
            SynthLimit::Duration(_) => (0, None),
        }
    }
}

#[cfg(test)]
mod tests;
