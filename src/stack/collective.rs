//! Custom all-reduce: the tensor-parallel all-reduce kernel vLLM, SGLang and
//! TensorRT-LLM use instead of NCCL for small messages between GPUs that can load from
//! each other's memory (NVLink).
//!
//! With `n` GPUs, a message of `S` bytes, the link's per-GPU line rate per direction `B`
//! and the kernel's efficiency `e` (the fraction of `B` its peer loads reach):
//!
//! | algorithm | time | used for |
//! |---|---|---|
//! | one-shot | `α + (n−1)·S/(e·B)` | every GPU reads all peers' buffers and reduces: small messages |
//! | two-shot | `2α + 2·(n−1)/n·S/(e·B)` | reduce-scatter then all-gather through peer memory |
//!
//! `α` is the kernel's fixed cost (launch inside a graph, the cross-GPU barrier). The
//! kernel applies only to the GPU counts, links and message sizes the stack file
//! lists (on PCIe, only to the GPU counts it names for PCIe, peer-to-peer access
//! assumed); anything else falls back to NCCL.

use crate::hardware::LinkSpec;
use serde::Serialize;

/// A stack's custom all-reduce kernel.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CustomAllReduce {
    /// Largest message it takes, bytes; larger ones go to NCCL.
    pub max_bytes: f64,
    /// Tensor-parallel sizes it supports.
    pub world_sizes: Vec<u32>,
    /// `(up to n GPUs, largest one-shot message in bytes)`, ascending by GPUs: one-shot
    /// below the size, two-shot above.
    pub one_shot_max_bytes: Vec<(u32, f64)>,
    /// Link keys it runs on (prefixes of `interconnects.toml` keys, `nvlink`).
    pub links: Vec<String>,
    /// GPU counts it also serves between PCIe-only GPUs (vLLM: two, when the GPUs have
    /// peer-to-peer access; more PCIe GPUs go to NCCL).
    pub pcie_world_sizes: Vec<u32>,
    /// Fixed cost per stage α, µs.
    pub latency_us: f64,
    /// Fraction of the link's per-direction line rate its peer loads reach.
    pub bandwidth_efficiency: f64,
    /// Where the figures come from.
    pub source: String,
    /// Validation sets the figures were fitted on (empty when not fitted).
    pub fitted_on: Vec<String>,
    /// The `implementation` of this engine's all-reduce in
    /// `perf_model/measurements/tp-collectives/allreduce.csv`: where a GPU has it
    /// measured (inside CUDA graphs, dispatcher included), the measurement is used at
    /// every size instead of the formula.
    pub measured_implementation: Option<String>,
}

impl CustomAllReduce {
    /// Whether it serves an all-reduce over `n` GPUs of one node joined by `link`.
    pub fn applies(&self, link: &LinkSpec, n: u32, spans_nodes: bool) -> bool {
        let on_link = self.links.iter().any(|p| link.key.starts_with(p.as_str()))
            || (link.key.starts_with("pcie") && self.pcie_world_sizes.contains(&n));
        !spans_nodes
            && self.world_sizes.contains(&n)
            && link.max_gpus.is_none_or(|m| n <= m)
            && on_link
    }

    /// Time of one all-reduce of `bytes` over `n` GPUs on `link`, µs; `None` when the
    /// message is too large for it.
    pub fn time_us(&self, link: &LinkSpec, n: u32, bytes: f64) -> Option<f64> {
        if bytes > self.max_bytes {
            return None;
        }
        let rate_per_us = link.bandwidth_bytes_per_s * self.bandwidth_efficiency * 1e-6;
        let nf = f64::from(n);
        let one_shot = self
            .one_shot_max_bytes
            .iter()
            .find(|(g, _)| n <= *g)
            .is_some_and(|&(_, max)| bytes <= max);
        Some(if one_shot {
            self.latency_us + (nf - 1.0) * bytes / rate_per_us
        } else {
            2.0 * self.latency_us + 2.0 * (nf - 1.0) / nf * bytes / rate_per_us
        })
    }

    /// A short description for reports.
    pub fn describe(&self) -> String {
        format!(
            "custom all-reduce (α {:.1} µs, {:.0} % of the link, ≤ {:.0} MiB)",
            self.latency_us,
            self.bandwidth_efficiency * 100.0,
            self.max_bytes / (1024.0 * 1024.0)
        )
    }
}
