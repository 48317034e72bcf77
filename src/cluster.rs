//! A cluster as a library value: groups of identical replicas (each with its role in
//! disaggregated serving and its data-parallel lock-step ranks), the router's policy
//! and the link KV crosses from prefill to decode replicas. `simulate` maps its flags
//! and `[[replica-group]]` tables onto a [`ClusterSpec`]; `plan`/`sweep` evaluate a
//! one-group spec per point; replications rebuild the same spec with scaled latency
//! models.

use crate::engine::{Replica, ReplicaRole};
use crate::error::{Error, Result};
use crate::hardware::LinkSpec;
use crate::perf::LatencyModel;
use crate::setup::ReplicaSetup;
use crate::sim::{RoutePolicy, Router};
use serde::Deserialize;
use std::sync::Arc;

/// The link KV crosses between prefill and decode replicas.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KvLink {
    /// The scale-out network between nodes (InfiniBand/RoCE per GPU).
    #[default]
    InterNode,
    /// The GPUs' intra-node link (NVLink, PCIe).
    IntraNode,
}

/// A cluster: its replica groups in order, how requests are routed, and where KV
/// travels in disaggregated serving.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// The groups, numbered in order (replica ids run through them).
    pub groups: Vec<ReplicaGroup>,
    /// How the router picks a replica.
    pub route: RoutePolicy,
    /// The link KV crosses from prefill to decode replicas.
    pub kv_link: KvLink,
}

impl ClusterSpec {
    /// `count` identical unified replicas of `setup` behind a `route` router.
    pub fn uniform(setup: ReplicaSetup, count: u32, route: RoutePolicy) -> Self {
        ClusterSpec {
            groups: vec![ReplicaGroup {
                count,
                role: ReplicaRole::Unified,
                setup,
            }],
            route,
            kv_link: KvLink::default(),
        }
    }

    /// Its replicas, every latency model passed through `latency` (see
    /// [`build_replicas`]).
    pub fn replicas(&self, latency: LatencyWrap<'_>) -> Result<Vec<Replica>> {
        build_replicas(&self.groups, latency)
    }

    /// Its replicas with their own latency models.
    pub fn nominal_replicas(&self) -> Result<Vec<Replica>> {
        self.replicas(&|l| l.clone())
    }

    /// A fresh router.
    pub fn router(&self) -> Router {
        Router::new(self.route)
    }

    /// The link KV crosses from the first prefill group's GPUs to decode replicas
    /// (none without disaggregation).
    pub fn kv_transfer_link(&self) -> Option<LinkSpec> {
        self.groups
            .iter()
            .find(|g| g.role == ReplicaRole::Prefill)
            .map(|g| {
                let gpu = g.setup.deployment.gpu();
                match self.kv_link {
                    KvLink::InterNode => gpu.inter_node_link().clone(),
                    KvLink::IntraNode => gpu.intra_node_link().clone(),
                }
            })
    }

    /// The weight bytes of each replica, in replica order (restarts and start-ups load
    /// them).
    pub fn weight_bytes_per_replica(&self) -> Vec<f64> {
        self.groups
            .iter()
            .flat_map(|g| {
                std::iter::repeat_n(
                    g.setup.memory.weight_bytes_total,
                    (g.count * g.setup.deployment.dp) as usize,
                )
            })
            .collect()
    }
}

/// What a cluster's replicas run their latency models through (see [`build_replicas`]).
pub type LatencyWrap<'a> = &'a dyn Fn(&Arc<dyn LatencyModel>) -> Arc<dyn LatencyModel>;

/// A group of identical replicas of a cluster: how many (each data-parallel rank
/// counts as `dp` replicas), their role, and their setup.
#[derive(Clone, Debug)]
pub struct ReplicaGroup {
    /// Replicas in the group, before data parallelism.
    pub count: u32,
    /// Their role (unified, prefill or decode).
    pub role: crate::engine::ReplicaRole,
    /// Their setup.
    pub setup: ReplicaSetup,
}

/// The replicas of a cluster of `groups`, numbered in group order, each group's
/// lock-step ranks kept together; every latency model passed through `latency` (the
/// identity for a nominal run, a scaled model for a replication).
pub fn build_replicas(groups: &[ReplicaGroup], latency: LatencyWrap<'_>) -> Result<Vec<Replica>> {
    let mut replicas = Vec::new();
    for g in groups {
        let n = g.count * g.setup.deployment.dp;
        if n == 0 {
            return Err(Error::Config(
                "a replica group needs a count of at least 1".into(),
            ));
        }
        let base = replicas.len() as u32;
        let lat = latency(&g.setup.latency);
        for i in 0..n {
            let id = replicas.len() as u32;
            replicas.push(
                Replica::new(id, g.setup.engine.clone(), lat.clone())?
                    .with_role(g.role)
                    .with_lockstep(g.setup.lockstep_group(i).map(|k| k + base)),
            );
        }
    }
    Ok(replicas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployment::{Deployment, DeploymentRequest};
    use crate::engine::config::EngineOverrides;
    use crate::paths::DataPaths;

    fn setup() -> ReplicaSetup {
        let paths = DataPaths::builtin();
        let req = DeploymentRequest {
            model: Some("meta-llama/Llama-3.1-8B".into()),
            hardware: Some("h100".into()),
            max_model_len: Some(4096),
            ..DeploymentRequest::default()
        };
        let d = Deployment::resolve(&req, &paths).unwrap();
        ReplicaSetup::new(d, &EngineOverrides::default(), &paths).unwrap()
    }

    /// Two prefill replicas then three decode ones: ids run through the groups, roles
    /// follow them, KV crosses the prefill GPUs' scale-out link, and every replica
    /// loads the model's weights.
    #[test]
    fn a_disaggregated_cluster_from_code() {
        let s = setup();
        let group = |count, role| ReplicaGroup {
            count,
            role,
            setup: s.clone(),
        };
        let spec = ClusterSpec {
            groups: vec![
                group(2, ReplicaRole::Prefill),
                group(3, ReplicaRole::Decode),
            ],
            route: RoutePolicy::LeastOutstanding,
            kv_link: KvLink::InterNode,
        };
        let reps = spec.nominal_replicas().unwrap();
        let roles: Vec<(u32, ReplicaRole)> = reps.iter().map(|r| (r.id(), r.role())).collect();
        assert_eq!(
            roles,
            [
                (0, ReplicaRole::Prefill),
                (1, ReplicaRole::Prefill),
                (2, ReplicaRole::Decode),
                (3, ReplicaRole::Decode),
                (4, ReplicaRole::Decode)
            ]
        );
        assert_eq!(
            spec.kv_transfer_link(),
            Some(s.deployment.gpu().inter_node_link().clone())
        );
        let w = spec.weight_bytes_per_replica();
        assert_eq!(w.len(), 5);
        assert!(w
            .iter()
            .all(|&b| b == s.memory.weight_bytes_total && b > 15e9));
        // A uniform cluster has no KV link; a group of none is an error.
        assert_eq!(
            ClusterSpec::uniform(s.clone(), 2, RoutePolicy::RoundRobin).kv_transfer_link(),
            None
        );
        assert!(ClusterSpec::uniform(s, 0, RoutePolicy::RoundRobin)
            .nominal_replicas()
            .is_err());
    }
}
