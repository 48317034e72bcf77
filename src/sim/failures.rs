//! Replica failures: when replicas go down, for how long, and the restart after.
//!
//! A failure takes a replica down at once: every request on it (waiting, running or in
//! the iteration in flight) is lost with its KV and ends `failed`, or is sent again by
//! its client after a backoff when clients retry ([`super::client`]). The router sends
//! nothing to a replica while it is down; requests that find every replica down fail
//! the same way (the load balancer's 503). After the outage the replica restarts, which
//! takes [`crate::startup::Startup::restart`] (engine start and weight loading), and
//! then takes requests again with an empty KV cache.
//!
//! Outages come from a schedule (`--failures FILE`: CSV `time_s,replica,duration_s`)
//! or from rates (`--mtbf-h`, `--mttr-min`): each replica's time to its next failure is
//! exponential with the mean time between failures, counted from when it is up again,
//! and each outage lasts an exponential time with the mean time to repair.

use super::{Event, Simulation};
use crate::engine::{RequestSink, RequestStatus};
use crate::error::{Error, Result};
use crate::units::{SimDuration, SimTime};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};
use std::path::Path;

/// One outage of one replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// When it fails.
    pub at: SimTime,
    /// Which replica (0-based, in the order `config.json` lists them).
    pub replica: u32,
    /// How long it stays down before its restart begins.
    pub down_for: SimDuration,
}

/// Where outages come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Outages {
    /// A fixed list.
    Schedule(Vec<Outage>),
    /// Random failures of every replica.
    Rates {
        /// Mean time between failures of one replica, counted while it is up.
        mtbf: SimDuration,
        /// Mean time to repair (the outage before the restart).
        mttr: SimDuration,
        /// Seed of the draws (each replica has its own stream).
        seed: u64,
    },
}

/// Failures and restarts of a run's replicas.
#[derive(Clone, Debug, PartialEq)]
pub struct FailurePlan {
    /// The outages.
    pub outages: Outages,
    /// Restart time of each replica after an outage (engine start and weight loading).
    pub restart: Vec<SimDuration>,
}

/// Read a failure schedule: CSV with a header naming `time_s`, `replica` and
/// `duration_s` (in any order; other columns ignored), one outage per row.
pub fn read_schedule(path: &Path) -> Result<Vec<Outage>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let bad = |line: usize, what: String| {
        Error::Config(format!("{}, line {line}: {what}", path.display()))
    };
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = rdr.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let col = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| {
            bad(
                1,
                format!("no `{name}` column (need time_s,replica,duration_s)"),
            )
        })
    };
    let (ct, cr, cd) = (col("time_s")?, col("replica")?, col("duration_s")?);
    let mut out = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| bad(line, e.to_string()))?;
        let field = |c: usize, name: &str| -> Result<f64> {
            let v = rec.get(c).unwrap_or("");
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0 && *x <= 1e9)
                .ok_or_else(|| {
                    bad(
                        line,
                        format!("`{name}` must be a number of seconds in [0, 1e9], got `{v}`"),
                    )
                })
        };
        let replica_text = rec.get(cr).unwrap_or("");
        let replica = replica_text.parse::<u32>().map_err(|_| {
            bad(
                line,
                format!("`replica` must be a replica index, got `{replica_text}`"),
            )
        })?;
        out.push(Outage {
            at: SimTime::from_secs_f64(field(ct, "time_s")?),
            replica,
            down_for: SimDuration::from_secs_f64(field(cd, "duration_s")?),
        });
    }
    out.sort_by_key(|o| (o.at, o.replica));
    Ok(out)
}

/// Random draws of one replica's failures.
#[derive(Debug)]
pub(crate) struct ReplicaDraws {
    rng: ChaCha8Rng,
    up: Exp<f64>,
    down: Exp<f64>,
}

impl ReplicaDraws {
    /// Replica `replica`'s stream of `seed`, with means `mtbf` and `mttr`.
    pub fn new(mtbf: SimDuration, mttr: SimDuration, seed: u64, replica: u32) -> Result<Self> {
        let rate = |d: SimDuration, what: &str| {
            Exp::new(1.0 / d.as_secs_f64())
                .map_err(|_| Error::Config(format!("{what} must be a positive time")))
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(u64::from(replica) + 1);
        Ok(ReplicaDraws {
            rng,
            up: rate(mtbf, "--mtbf-h")?,
            down: rate(mttr, "--mttr-min")?,
        })
    }

    /// Time until the next failure, counted from now.
    pub fn time_to_failure(&mut self) -> SimDuration {
        SimDuration::from_secs_f64(self.up.sample(&mut self.rng))
    }

    /// Length of an outage.
    pub fn outage(&mut self) -> SimDuration {
        SimDuration::from_secs_f64(self.down.sample(&mut self.rng))
    }
}

/// The state of replica failures during a run.
#[derive(Debug)]
pub(super) struct Failures {
    /// Restart time of each replica.
    pub(super) restart: Vec<SimDuration>,
    /// Each replica's random draws (random outages only).
    pub(super) draws: Option<Vec<ReplicaDraws>>,
    /// Since when each replica is down.
    pub(super) down_since: Vec<Option<SimTime>>,
    pub(super) outages: u64,
    pub(super) down_ns: u64,
}

impl Simulation {
    /// Replicas fail as `plan` says (see [`crate::sim::failures`]). Clusters of unified replicas
    /// only (no prefill/decode roles, no lock-step ranks).
    pub fn with_failures(mut self, plan: FailurePlan) -> Result<Self> {
        let n = self.replicas.len();
        self.unified_only("replica failures are")?;
        if self.autoscaler.is_some() {
            return Err(Error::Config(
                "replica failures and autoscaling cannot be simulated together".into(),
            ));
        }
        if plan.restart.len() != n {
            return Err(Error::Config(format!(
                "{} restart times for {n} replicas",
                plan.restart.len()
            )));
        }
        let mut draws = None;
        match plan.outages {
            Outages::Schedule(list) => {
                for o in list {
                    if o.replica as usize >= n {
                        return Err(Error::Config(format!(
                            "a failure of replica {} at {} s, but the cluster has {n} replicas (0–{})",
                            o.replica,
                            o.at.as_secs_f64(),
                            n - 1
                        )));
                    }
                    self.queue
                        .push(o.at, Event::Fail(o.replica, Some(o.down_for)));
                }
            }
            Outages::Rates { mtbf, mttr, seed } => {
                let mut d = Vec::with_capacity(n);
                for i in 0..n as u32 {
                    let mut r = ReplicaDraws::new(mtbf, mttr, seed, i)?;
                    self.queue
                        .push(SimTime::ZERO + r.time_to_failure(), Event::Fail(i, None));
                    d.push(r);
                }
                draws = Some(d);
            }
        }
        self.failures = Some(Failures {
            restart: plan.restart,
            draws,
            down_since: vec![None; n],
            outages: 0,
            down_ns: 0,
        });
        Ok(self)
    }

    /// Replica `i` fails now for `down_for` (none: a random outage): everything on it
    /// is lost, the router stops sending to it, and it restarts after the outage.
    pub(super) fn fail(
        &mut self,
        i: u32,
        down_for: Option<SimDuration>,
        sink: &mut dyn RequestSink,
    ) {
        let now = self.now;
        let f = self
            .failures
            .as_mut()
            .expect("failure events need failures");
        let idx = i as usize;
        if f.down_since[idx].is_some() {
            return; // already down: the outages overlap
        }
        let down_for = match (down_for, f.draws.as_mut()) {
            (Some(d), _) => d,
            (None, Some(draws)) => draws[idx].outage(),
            (None, None) => SimDuration::ZERO,
        };
        f.down_since[idx] = Some(now);
        f.outages += 1;
        let back = now + down_for + f.restart[idx];
        self.queue.push(back, Event::Restarted(i));
        self.entry.retain(|&e| e != idx);
        for id in self.replicas[idx].live_ids() {
            let status = RequestStatus::Failed;
            if let Some(rec) = self.replicas[idx].abort_with_record(id, now, status) {
                self.lost(rec, status, sink);
            }
        }
        self.touch(idx);
    }

    /// Replica `i` is back: it takes requests again (and, with random outages, its
    /// next failure is drawn).
    pub(super) fn restarted(&mut self, i: u32) {
        let now = self.now;
        let f = self
            .failures
            .as_mut()
            .expect("failure events need failures");
        let idx = i as usize;
        if let Some(since) = f.down_since[idx].take() {
            f.down_ns += now.saturating_duration_since(since).as_nanos();
        }
        if let Some(draws) = f.draws.as_mut() {
            let next = now + draws[idx].time_to_failure();
            self.queue.push(next, Event::Fail(i, None));
        }
        self.admit(idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("failures.csv");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn a_schedule_is_read_sorted_and_bad_rows_are_named() {
        let (_d, p) = write("replica,time_s,duration_s\n1,30,5\n0,10.5,60\n");
        let o = read_schedule(&p).unwrap();
        assert_eq!(o[0].replica, 0);
        assert_eq!(o[0].at, SimTime::from_secs_f64(10.5));
        assert_eq!(o[1].down_for, SimDuration::from_secs_f64(5.0));
        let (_d, p) = write("time_s,replica,duration_s\n10,0,60\n20,x,5\n");
        let e = read_schedule(&p).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("replica"), "{e}");
        let (_d, p) = write("time_s,replica,duration_s\n10,0,-1\n");
        let e = read_schedule(&p).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("duration_s"), "{e}");
        let (_d, p) = write("time,replica,duration_s\n");
        assert!(read_schedule(&p)
            .unwrap_err()
            .to_string()
            .contains("time_s"));
    }

    #[test]
    fn random_failures_have_their_means_and_are_seeded() {
        let mtbf = SimDuration::from_secs_f64(3600.0);
        let mttr = SimDuration::from_secs_f64(60.0);
        let mut a = ReplicaDraws::new(mtbf, mttr, 1, 0).unwrap();
        let n = 20_000;
        let up: f64 = (0..n)
            .map(|_| a.time_to_failure().as_secs_f64())
            .sum::<f64>()
            / n as f64;
        let down: f64 = (0..n).map(|_| a.outage().as_secs_f64()).sum::<f64>() / n as f64;
        assert!((up / 3600.0 - 1.0).abs() < 0.03, "{up}");
        assert!((down / 60.0 - 1.0).abs() < 0.03, "{down}");
        let mut b = ReplicaDraws::new(mtbf, mttr, 1, 0).unwrap();
        let mut c = ReplicaDraws::new(mtbf, mttr, 1, 1).unwrap();
        let first = ReplicaDraws::new(mtbf, mttr, 1, 0)
            .unwrap()
            .time_to_failure();
        assert_eq!(b.time_to_failure(), first);
        assert_ne!(c.time_to_failure(), first);
    }
}
