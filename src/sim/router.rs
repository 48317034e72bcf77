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
    /// Cache-aware: a request goes to the replica whose prefix cache already holds the
    /// longest part of its prompt, unless that replica has more than
    /// [`Router::AFFINITY_SLACK`] requests more than the least-loaded one; requests with
    /// nothing cached anywhere go to the least-outstanding replica.
    PrefixAffinity,
}

/// A deterministic router over a set of candidate replicas.
#[derive(Clone, Debug, Default)]
pub struct Router {
    policy: RoutePolicy,
    next: usize,
}

impl Router {
    /// How many more outstanding requests than the least-loaded replica a replica may
    /// have and still win a request by its prefix cache (a load-balance guard, as in
    /// cache-aware routers; a policy knob, not a physical quantity).
    pub const AFFINITY_SLACK: usize = 8;

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
                let least = least_outstanding();
                if req.prefix_hash_ids.is_empty() && req.session_id.is_none() {
                    return least;
                }
                let (best, cached) = candidates
                    .iter()
                    .map(|&i| (i, replicas[i].cached_prefix_tokens(req)))
                    .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
                    .expect("at least one candidate replica");
                let load = |i: usize| replicas[i].num_outstanding();
                if cached > 0 && load(best) <= load(least) + Self::AFFINITY_SLACK {
                    best
                } else {
                    least
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
