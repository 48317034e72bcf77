//! Tensor- and pipeline-parallel communication: measured NCCL tables where the
//! accelerator has them (`network/all_reduce.csv`, `network/send_recv.csv`,
//! interpolated over message bytes), else the α-β cost of the cluster's link.

use super::profile::{CollectiveTable, GpuProfiles};
use super::table::MonotoneTable;
use crate::hardware::{AllReduceAlgorithm, ClusterSpec, LinkSpec};

/// How one collective is costed.
#[derive(Clone, Debug)]
pub(crate) enum Collective {
    /// No communication (one GPU).
    None,
    /// A measured table: bytes → µs.
    Table { table: MonotoneTable, label: String },
    /// All-reduce over `n` GPUs on `link`.
    AllReduceLink { link: LinkSpec, n: u32 },
    /// All-gather over `n` GPUs on `link` (the size is the gathered result).
    AllGatherLink { link: LinkSpec, n: u32 },
    /// Point-to-point send on `link`.
    SendLink { link: LinkSpec },
}

/// The link a `tp`-GPU group inside a node uses: the accelerator's calibrated link
/// where `network/link_calibration.toml` gives one, else the cluster's.
fn group_link(gpu: &GpuProfiles, cluster: &ClusterSpec, tp: u32) -> LinkSpec {
    match &gpu.calibrated_link {
        Some(l) if !cluster.group_spans_nodes(tp) => l.clone(),
        _ => cluster.link_for_group(tp).clone(),
    }
}

fn find(tables: &[CollectiveTable], workers: u32, per_node: u32) -> Option<&CollectiveTable> {
    tables
        .iter()
        .find(|t| t.num_workers == workers && t.devices_per_node == per_node)
}

impl Collective {
    /// The all-reduce of a `tp`-GPU tensor-parallel group.
    pub(crate) fn all_reduce(gpu: &GpuProfiles, cluster: &ClusterSpec, tp: u32) -> Self {
        if tp <= 1 {
            return Collective::None;
        }
        let per_node = tp.min(cluster.gpus_per_node);
        match find(&gpu.all_reduce, tp, per_node) {
            Some(t) => Collective::Table {
                table: t.table.clone(),
                label: format!(
                    "measured NCCL all-reduce ({} GPUs, {} per node; vidur, {})",
                    tp, per_node, gpu.slug
                ),
            },
            None => Collective::AllReduceLink {
                link: group_link(gpu, cluster, tp),
                n: tp,
            },
        }
    }

    /// The all-gather of the logits over a `tp`-GPU group (α-β on the group's link).
    pub(crate) fn all_gather(gpu: &GpuProfiles, cluster: &ClusterSpec, tp: u32) -> Self {
        if tp <= 1 {
            return Collective::None;
        }
        Collective::AllGatherLink {
            link: group_link(gpu, cluster, tp),
            n: tp,
        }
    }

    /// One all-gather-sized exchange among the `ep` GPUs of an expert-parallel group
    /// (vLLM's all-gather / reduce-scatter dispatch; α-β on the group's link).
    pub(crate) fn expert_exchange(gpu: &GpuProfiles, cluster: &ClusterSpec, ep: u32) -> Self {
        Self::all_gather(gpu, cluster, ep)
    }

    /// The activation send between consecutive pipeline stages.
    pub(crate) fn pipeline_send(
        gpu: &GpuProfiles,
        cluster: &ClusterSpec,
        tp: u32,
        pp: u32,
    ) -> Self {
        if pp <= 1 {
            return Collective::None;
        }
        let spans = tp * pp > cluster.gpus_per_node;
        let per_node = if spans { 1 } else { 2 };
        match find(&gpu.send_recv, 2, per_node) {
            Some(t) => Collective::Table {
                table: t.table.clone(),
                label: format!("measured NCCL send/recv (vidur, {})", gpu.slug),
            },
            None => Collective::SendLink {
                link: cluster.link_between(spans).clone(),
            },
        }
    }

    /// Time for a message of `bytes`, µs.
    pub(crate) fn time_us(&self, bytes: f64) -> f64 {
        match self {
            Collective::None => 0.0,
            Collective::Table { table, .. } => table.eval(bytes),
            Collective::AllReduceLink { link, n } => {
                link.all_reduce_s(bytes, *n, AllReduceAlgorithm::Fastest) * 1e6
            }
            Collective::AllGatherLink { link, n } => link.all_gather_s(bytes, *n) * 1e6,
            Collective::SendLink { link } => link.send_s(bytes) * 1e6,
        }
    }

    /// Where the cost comes from.
    pub(crate) fn describe(&self) -> String {
        match self {
            Collective::None => "none".to_owned(),
            Collective::Table { label, .. } => label.clone(),
            Collective::AllReduceLink { link, n } => {
                format!("α-β ring/tree over {n} GPUs on {link}")
            }
            Collective::AllGatherLink { link, n } => {
                format!("α-β all-gather over {n} GPUs on {link}")
            }
            Collective::SendLink { link } => format!("α-β send on {link}"),
        }
    }
}
