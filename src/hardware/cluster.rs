//! A cluster of identical GPUs: how many share a node, and which link a group uses.
//!
//! [`ClusterSpec::new`] takes every default from the device file (which names its links
//! in `perf_model/interconnects.toml`): GPUs per node, the scale-up link (NVLink or
//! NVSwitch where the device has one, PCIe otherwise) and one scale-out NIC link per GPU.
//! The `with_*` methods override them.
//!
//! A collective over a group that spans nodes is costed entirely at the scale-out link,
//! the bottleneck. That ignores hierarchical algorithms (NVLS-Tree, intra-node reduce
//! first), so it is pessimistic for large cross-node groups.

use super::link::LinkSpec;
use super::spec::GpuSpec;
use crate::error::{Error, Result};
use serde::Serialize;

/// GPUs of one kind, grouped into nodes, with the links between them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterSpec {
    /// The accelerator.
    pub gpu: GpuSpec,
    /// GPUs per node (the scale-up domain).
    pub gpus_per_node: u32,
    /// Link between GPUs of one node.
    pub intra_node: LinkSpec,
    /// Link between nodes, per GPU.
    pub inter_node: LinkSpec,
    /// Link for groups inside a node that are larger than `intra_node.max_gpus` (PCIe
    /// beyond an NVLink bridge's pair); `None` = use `intra_node`.
    pub intra_node_fallback: Option<LinkSpec>,
    /// Whether groups inside a node use the link calibrated on one system's end-to-end
    /// runs (`--intra-node-link calibrated`: the measured model's
    /// `profiles/<gpu>/network/link_calibration.toml`) instead of `intra_node`.
    pub calibrated_intra_node: bool,
}

impl ClusterSpec {
    /// A cluster of `gpu` with the device file's defaults.
    pub fn new(gpu: GpuSpec) -> Self {
        let intra_node_fallback = gpu.intra_node.max_gpus.and_then(|_| gpu.host.clone());
        ClusterSpec {
            gpus_per_node: gpu.gpus_per_node,
            intra_node: gpu.intra_node.clone(),
            inter_node: gpu.inter_node.clone(),
            intra_node_fallback,
            calibrated_intra_node: false,
            gpu,
        }
    }

    /// The same cluster with `n` GPUs per node (an error if `n` is 0).
    pub fn with_gpus_per_node(mut self, n: u32) -> Result<Self> {
        if n == 0 {
            return Err(Error::Config("gpus per node must be at least 1".into()));
        }
        self.gpus_per_node = n;
        Ok(self)
    }

    /// The same cluster with another scale-up link (for example
    /// `nvlink4-nvswitch-nvls`, or PCIe for cards without their bridge).
    pub fn with_intra_node(mut self, link: LinkSpec) -> Self {
        self.intra_node = link;
        self.calibrated_intra_node = false;
        self
    }

    /// The same cluster with the intra-node link calibrated on one system's runs (see
    /// [`ClusterSpec::calibrated_intra_node`]).
    pub fn with_calibrated_intra_node(mut self) -> Self {
        self.calibrated_intra_node = true;
        self
    }

    /// The same cluster with another scale-out link (per GPU).
    pub fn with_inter_node(mut self, link: LinkSpec) -> Self {
        self.inter_node = link;
        self
    }

    /// Whether a group of `n_gpus` (placed on as few nodes as possible) spans nodes.
    pub fn group_spans_nodes(&self, n_gpus: u32) -> bool {
        n_gpus > self.gpus_per_node
    }

    /// The link a collective uses: inside a node, or across nodes.
    pub fn link_between(&self, spans_nodes: bool) -> &LinkSpec {
        if spans_nodes {
            &self.inter_node
        } else {
            &self.intra_node
        }
    }

    /// The link a collective over a group of `n_gpus` uses: the scale-up link while the
    /// group fits what it joins, PCIe for larger groups inside a node whose scale-up
    /// link joins only pairs, and the scale-out link once the group spans nodes.
    pub fn link_for_group(&self, n_gpus: u32) -> &LinkSpec {
        if self.group_spans_nodes(n_gpus) {
            return &self.inter_node;
        }
        match (&self.intra_node_fallback, self.intra_node.max_gpus) {
            (Some(fallback), Some(max)) if n_gpus > max => fallback,
            _ => &self.intra_node,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::HardwareCatalog;
    use crate::paths::DataPaths;

    fn cluster(name: &str) -> ClusterSpec {
        let cat = HardwareCatalog::load(&DataPaths::builtin().hardware_dir()).unwrap();
        ClusterSpec::new(cat.resolve(name).unwrap())
    }

    #[test]
    fn h100_defaults_come_from_the_data() {
        let c = cluster("h100");
        assert_eq!(c.gpus_per_node, 8);
        assert_eq!(c.intra_node.key, "nvlink4-nvswitch");
        assert_eq!(c.intra_node.bandwidth_bytes_per_s, 450e9);
        assert_eq!(c.inter_node.key, "ib-ndr");
        assert_eq!(c.inter_node.bandwidth_bytes_per_s, 50e9);
        assert_eq!(c.link_between(false).key, "nvlink4-nvswitch");
        assert_eq!(c.link_between(true).key, "ib-ndr");
        assert_eq!(c.link_for_group(8).key, "nvlink4-nvswitch");
        assert_eq!(c.link_for_group(16).key, "ib-ndr");
        assert!(c.intra_node_fallback.is_none());
    }

    #[test]
    fn ampere_uses_hdr_across_nodes() {
        let c = cluster("a100");
        assert_eq!(c.inter_node.key, "ib-hdr");
        assert_eq!(c.intra_node.key, "nvlink3-nvswitch");
    }

    #[test]
    fn bridged_pairs_fall_back_to_pcie() {
        let c = cluster("a6000");
        assert_eq!(c.link_for_group(2).key, "nvlink3-bridge");
        assert_eq!(c.link_for_group(2).bandwidth_bytes_per_s, 56.25e9);
        assert_eq!(c.link_for_group(4).key, "pcie4");
        assert_eq!(c.link_for_group(4).bandwidth_bytes_per_s, 31.5e9);
        assert_eq!(c.link_for_group(9).key, c.inter_node.key);
    }

    #[test]
    fn pcie_cards_use_pcie_inside_the_node() {
        let c = cluster("rtx4090");
        assert_eq!(c.link_for_group(8).key, "pcie4");
        let c = cluster("rtx-pro-6000");
        assert_eq!(c.link_for_group(2).key, "pcie5");
        assert_eq!(c.link_for_group(2).bandwidth_bytes_per_s, 63e9);
    }

    #[test]
    fn overrides() {
        let c = cluster("h100").with_gpus_per_node(4).unwrap();
        assert!(c.group_spans_nodes(8));
        assert_eq!(c.link_for_group(8).key, "ib-ndr");
        assert!(cluster("h100").with_gpus_per_node(0).is_err());
        let nvls = cluster("h100");
        let link = HardwareCatalog::load(&DataPaths::builtin().hardware_dir())
            .unwrap()
            .interconnects()
            .link_spec("nvlink4-nvswitch-nvls")
            .unwrap();
        let c = nvls.with_intra_node(link);
        assert_eq!(c.link_for_group(8).allreduce_bus_efficiency, 1.07);
    }
}
