//! Tensor- and pipeline-parallel communication: measured NCCL tables where the
//! accelerator has them (`network/all_reduce.csv`, `network/send_recv.csv`,
//! interpolated over message bytes), else the α-β cost of the cluster's link.
//!
//! The tensor-parallel all-reduce is the serving stack's: its own all-reduce measured
//! inside CUDA graphs on this GPU where that exists, else its custom all-reduce kernel
//! ([`CustomAllReduce`]) where it applies (NCCL above its size limit), else NCCL.

use super::collectives::{CollectiveRows, GpuCollectives};
use super::profile::{CollectiveTable, GpuProfiles};
use super::table::MonotoneTable;
use crate::deployment::Deployment;
use crate::hardware::{AllReduceAlgorithm, ClusterSpec, LinkSpec};
use crate::stack::CustomAllReduce;

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
    /// Reduce-scatter over `n` GPUs on `link` (the size is the whole input).
    ReduceScatterLink { link: LinkSpec, n: u32 },
    /// Point-to-point send on `link`.
    SendLink { link: LinkSpec },
    /// `inner`, with a note on why no measured table was used.
    Noted {
        inner: Box<Collective>,
        note: String,
    },
    /// The stack's custom all-reduce over `n` GPUs on `link`, `fallback` above its size
    /// limit.
    Custom {
        custom: CustomAllReduce,
        link: LinkSpec,
        n: u32,
        fallback: Box<Collective>,
    },
}

/// The link a `tp`-GPU group inside a node uses: the accelerator's calibrated link
/// (`network/link_calibration.toml`) where the deployment asked for it
/// (`--intra-node-link calibrated`), else the cluster's. A calibration describes the one
/// system it was fitted on (its PCIe topology, whether NCCL has peer-to-peer access),
/// not every system with that GPU, so it is never applied unasked.
fn group_link(gpu: &GpuProfiles, cluster: &ClusterSpec, tp: u32) -> LinkSpec {
    match &gpu.calibrated_link {
        Some(l) if cluster.calibrated_intra_node && !cluster.group_spans_nodes(tp) => l.clone(),
        _ => cluster.link_for_group(tp).clone(),
    }
}

/// Whether an `n`-GPU group runs on the link the library's tests used: the GPU's own
/// link inside one node.
fn library_table_applies(cluster: &ClusterSpec, n: u32) -> bool {
    !cluster.calibrated_intra_node
        && !cluster.group_spans_nodes(n)
        && cluster.link_for_group(n) == &cluster.gpu.intra_node
}

/// How a library-test table of `collective` is named in descriptions.
fn library_label(collective: &str, n: u32, slug: &str) -> String {
    format!(
        "measured NCCL {collective} (nccl-tests, {n} GPUs in one node, outside graphs; perf_model/measurements/tp-collectives, {slug})"
    )
}

/// NCCL's (RCCL's) own tests on one GPU (`measurements/tp-collectives`, nccl-tests and
/// rccl-tests inside one node), per collective: what the library takes where the engine
/// hands it the work.
#[derive(Debug, Default)]
pub(crate) struct LibraryTests {
    pub all_reduce: Vec<CollectiveTable>,
    pub all_gather: Vec<CollectiveTable>,
    pub reduce_scatter: Vec<CollectiveTable>,
}

impl LibraryTests {
    /// The tests in `measured` (one GPU's collectives) that a deployment of `tp`-GPU
    /// tensor-parallel and `ep`-GPU expert-parallel groups can use (none for a single
    /// GPU), checked against the GPU's own link of `line_rate` bytes/s per direction.
    pub(crate) fn of(measured: &GpuCollectives, tp: u32, ep: u32, line_rate: f64) -> Self {
        let tables = |used: bool, c: &str| {
            if used {
                measured.tables(CollectiveRows::LibraryTest(c), None, line_rate)
            } else {
                Vec::new()
            }
        };
        LibraryTests {
            all_reduce: tables(tp > 1, "all_reduce"),
            all_gather: tables(tp > 1 || ep > 1, "all_gather"),
            reduce_scatter: tables(ep > 1, "reduce_scatter"),
        }
    }
}

/// The table of `workers` GPUs, `per_node` in each node, that describes the GPU's link
/// (a table marked [`CollectiveTable::unlike_link`] is passed over).
fn find(tables: &[CollectiveTable], workers: u32, per_node: u32) -> Option<&CollectiveTable> {
    tables.iter().find(|t| {
        t.num_workers == workers && t.devices_per_node == per_node && t.unlike_link.is_none()
    })
}

/// Why the table of `workers` GPUs in one node was passed over, if it was.
fn passed_over(tables: &[CollectiveTable], workers: u32) -> Option<&str> {
    tables
        .iter()
        .find(|t| t.num_workers == workers && t.devices_per_node == workers)
        .and_then(|t| t.unlike_link.as_deref())
}

impl Collective {
    /// The tensor-parallel all-reduce of `d` as its serving stack runs it (see the
    /// module docs); `engine` holds the stack's all-reduce measured on this GPU.
    /// `library` holds NCCL's (RCCL's) own tests on this GPU, for where the engine
    /// hands the all-reduce to the library.
    pub(crate) fn all_reduce(
        gpu: &GpuProfiles,
        d: &Deployment,
        engine: &[CollectiveTable],
        library: &[CollectiveTable],
    ) -> Self {
        let (cluster, tp) = (&d.cluster, d.tp);
        if tp <= 1 {
            return Collective::None;
        }
        let nccl = Self::nccl_all_reduce(gpu, cluster, tp, library);
        let Some(custom) = &d.stack.custom_all_reduce else {
            return nccl;
        };
        let link = group_link(gpu, cluster, tp);
        if !custom.applies(&link, tp, cluster.group_spans_nodes(tp)) {
            return nccl;
        }
        if let Some(t) = find(engine, tp, tp) {
            return Collective::Table {
                table: t.table.clone(),
                label: format!(
                    "measured {}{} in CUDA graphs ({tp} GPUs; perf_model/measurements/tp-collectives, {})",
                    custom.measured_implementation.as_deref().unwrap_or("all-reduce"),
                    t.version.as_deref().map_or_else(String::new, |v| format!(" {v}")),
                    gpu.slug
                ),
            };
        }
        Collective::Custom {
            custom: custom.clone(),
            link,
            n: tp,
            fallback: Box::new(nccl),
        }
    }

    /// NCCL's all-reduce over a `tp`-GPU group: the profiles' measured table, else the
    /// library's own test on this GPU where the group uses the GPU's own link inside a
    /// node, else α-β.
    fn nccl_all_reduce(
        gpu: &GpuProfiles,
        cluster: &ClusterSpec,
        tp: u32,
        library: &[CollectiveTable],
    ) -> Self {
        let per_node = tp.min(cluster.gpus_per_node);
        if let Some(t) = find(&gpu.all_reduce, tp, per_node) {
            return Collective::Table {
                table: t.table.clone(),
                label: format!(
                    "measured NCCL all-reduce ({} GPUs, {} per node; vidur, {})",
                    tp, per_node, gpu.slug
                ),
            };
        }
        Self::library_or_link(gpu, cluster, tp, library, "all-reduce", |link, n| {
            Collective::AllReduceLink { link, n }
        })
    }

    /// An all-gather over an `n`-GPU group (the size is the gathered result): the
    /// logits' all-gather over the TP group, and the dispatch of an expert-parallel
    /// group (vLLM's all-gather / reduce-scatter exchange). See
    /// [`Collective::library_or_link`].
    pub(crate) fn all_gather(
        gpu: &GpuProfiles,
        cluster: &ClusterSpec,
        n: u32,
        library: &[CollectiveTable],
    ) -> Self {
        Self::library_or_link(gpu, cluster, n, library, "all-gather", |link, n| {
            Collective::AllGatherLink { link, n }
        })
    }

    /// A reduce-scatter over an `n`-GPU group (the size is the whole input): the
    /// combine of an expert-parallel group. See [`Collective::library_or_link`].
    pub(crate) fn reduce_scatter(
        gpu: &GpuProfiles,
        cluster: &ClusterSpec,
        n: u32,
        library: &[CollectiveTable],
    ) -> Self {
        Self::library_or_link(gpu, cluster, n, library, "reduce-scatter", |link, n| {
            Collective::ReduceScatterLink { link, n }
        })
    }

    /// A collective NCCL runs over an `n`-GPU group: NCCL's own test of it on this GPU
    /// (`library`, named `name`) where the group runs on the link the test used, else
    /// `alpha_beta` on the group's link; none for one GPU.
    fn library_or_link(
        gpu: &GpuProfiles,
        cluster: &ClusterSpec,
        n: u32,
        library: &[CollectiveTable],
        name: &str,
        alpha_beta: fn(LinkSpec, u32) -> Self,
    ) -> Self {
        if n <= 1 {
            return Collective::None;
        }
        // The library's own test where the group runs on the link the tests used (the
        // GPU's own inside one node, not a calibrated system's nor one the deployment
        // chose instead) and the test describes that link.
        let own_link = library_table_applies(cluster, n);
        if let Some(t) = own_link.then(|| find(library, n, n)).flatten() {
            return Collective::Table {
                table: t.table.clone(),
                label: library_label(name, n, &gpu.slug),
            };
        }
        let link = alpha_beta(group_link(gpu, cluster, n), n);
        match passed_over(library, n).filter(|_| own_link) {
            Some(why) => Collective::Noted {
                inner: Box::new(link),
                note: why.to_owned(),
            },
            None => link,
        }
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
            Collective::ReduceScatterLink { link, n } => link.reduce_scatter_s(bytes, *n) * 1e6,
            Collective::SendLink { link } => link.send_s(bytes) * 1e6,
            Collective::Noted { inner, .. } => inner.time_us(bytes),
            Collective::Custom {
                custom,
                link,
                n,
                fallback,
            } => custom
                .time_us(link, *n, bytes)
                .unwrap_or_else(|| fallback.time_us(bytes)),
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
            Collective::ReduceScatterLink { link, n } => {
                format!("α-β reduce-scatter over {n} GPUs on {link}")
            }
            Collective::SendLink { link } => format!("α-β send on {link}"),
            Collective::Noted { inner, note } => format!("{} ({note})", inner.describe()),
            Collective::Custom {
                custom,
                link,
                n,
                fallback,
            } => format!(
                "{} over {n} GPUs on {link}, else {}",
                custom.describe(),
                fallback.describe()
            ),
        }
    }
}
