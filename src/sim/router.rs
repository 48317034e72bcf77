//! Dispatch of arriving requests to replicas. Every policy is deterministic: ties go to
//! the lowest replica index.

use crate::engine::Replica;
use crate::trace::Request;
use serde::{Deserialize, Serialize};

/// How the router picks a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RoutePolicy {
    /// Replicas in turn.
    #[default]
    RoundRobin,
    /// The replica with the fewest requests waiting or running.
    LeastOutstanding,
    /// The replica with the lowest KV-cache usage (then fewest outstanding).
    LeastKvLoad,
    /// Requests of one session (or, without a session, with the same first prefix
    /// block) go to the same replica, so their shared prefix stays in its cache;
    /// requests with neither go to the least-outstanding replica.
    PrefixAffinity,
}

/// A deterministic router over a set of candidate replicas.
#[derive(Clone, Debug, Default)]
pub struct Router {
    policy: RoutePolicy,
    next: usize,
}

/// A stable 64-bit mix (SplitMix64 finaliser), so affinity does not depend on the
/// process's hash seed.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Router {
    /// A router with `policy`.
    pub fn new(policy: RoutePolicy) -> Self {
        Router { policy, next: 0 }
    }

    /// The policy.
    pub fn policy(&self) -> RoutePolicy {
        self.policy
    }

    /// The index (into `replicas`) of the replica among `candidates` that serves `req`.
    /// `candidates` must not be empty.
    pub fn route_among(
        &mut self,
        req: &Request,
        replicas: &[Replica],
        candidates: &[usize],
    ) -> usize {
        let least_outstanding = || {
            *candidates
                .iter()
                .min_by_key(|&&i| (replicas[i].num_outstanding(), i))
                .expect("at least one candidate replica")
        };
        match self.policy {
            RoutePolicy::RoundRobin => {
                let r = candidates[self.next % candidates.len()];
                self.next = (self.next + 1) % candidates.len();
                r
            }
            RoutePolicy::LeastOutstanding => least_outstanding(),
            RoutePolicy::LeastKvLoad => *candidates
                .iter()
                .min_by(|&&a, &&b| {
                    replicas[a]
                        .kv_usage()
                        .total_cmp(&replicas[b].kv_usage())
                        .then(
                            replicas[a]
                                .num_outstanding()
                                .cmp(&replicas[b].num_outstanding()),
                        )
                        .then(a.cmp(&b))
                })
                .expect("at least one candidate replica"),
            RoutePolicy::PrefixAffinity => {
                let key = req
                    .session_id
                    .map(|s| mix(s ^ 0x5E55_1011))
                    .or_else(|| req.prefix_hash_ids.first().map(|&h| mix(h)));
                match key {
                    Some(k) => candidates[(k % candidates.len() as u64) as usize],
                    None => least_outstanding(),
                }
            }
        }
    }

    /// The index of the replica that serves `req`, among all of them.
    pub fn route(&mut self, req: &Request, replicas: &[Replica]) -> usize {
        let all: Vec<usize> = (0..replicas.len()).collect();
        self.route_among(req, replicas, &all)
    }
}
