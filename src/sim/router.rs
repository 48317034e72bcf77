//! Dispatch of arriving requests to replicas.

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
    /// The replica with the fewest requests waiting or running (lowest index on ties).
    LeastOutstanding,
}

/// A deterministic router.
#[derive(Clone, Debug, Default)]
pub struct Router {
    policy: RoutePolicy,
    next: usize,
}

impl Router {
    /// A router with `policy`.
    pub fn new(policy: RoutePolicy) -> Self {
        Router { policy, next: 0 }
    }

    /// The index of the replica that serves `req`.
    pub fn route(&mut self, _req: &Request, replicas: &[Replica]) -> usize {
        match self.policy {
            RoutePolicy::RoundRobin => {
                let r = self.next % replicas.len();
                self.next = r + 1;
                r
            }
            RoutePolicy::LeastOutstanding => replicas
                .iter()
                .enumerate()
                .min_by_key(|(i, r)| (r.num_outstanding(), *i))
                .map_or(0, |(i, _)| i),
        }
    }
}
