//! A link between accelerators and the α-β cost of collectives over it.
//!
//! A [`LinkSpec`] is the link one GPU uses to talk to its peers: its line rate per
//! direction `bw`, the fraction of it NCCL-style collectives reach (`eff`, measured bus
//! bandwidth / line rate) and the latency of one step `α`. With `B = bw · eff`, a
//! message of `S` bytes and `n` GPUs (every formula is 0 for `n ≤ 1`):
//!
//! | collective | time | `S` is |
//! |---|---|---|
//! | ring all-reduce | `2(n−1)/n · S/B + 2(n−1)·α` | the buffer each GPU holds |
//! | tree all-reduce | `2(n−1)/n · S/B + 2⌈log2 n⌉·α` | the buffer each GPU holds |
//! | all-gather | `(n−1)/n · S/B + (n−1)·α` | the gathered result (each GPU contributes `S/n`) |
//! | reduce-scatter | `(n−1)/n · S/B + (n−1)·α` | each GPU's input (each keeps `S/n`) |
//! | all-to-all | `(n−1)/n · S/B + (n−1)·α` | what each GPU holds before (it keeps `S/n`) |
//! | send (point to point) | `S/(B_pair) + α` | the message |
//!
//! The ring formulas are the standard bandwidth-optimal ones (Thakur, Rabenseifner &
//! Gropp 2005; `busbw = algbw · 2(n−1)/n` in nccl-tests). The tree variant keeps the
//! ring's bandwidth term, as NCCL's pipelined double binary tree does for large
//! messages, and pays `⌈log2 n⌉` steps up (reduce) and down (broadcast) instead of
//! `n−1` steps twice. All-to-all is modelled as pairwise exchange; on a switch or a full
//! mesh every GPU sends to all peers at once, so its per-GPU rate `B` applies.
//! `B_pair = pair_bandwidth · eff` is what one GPU pair gets (one xGMI link on an
//! AMD mesh, the whole NVLink rate through NVSwitch).
//!
//! Every number comes from the data files (see `perf_model/interconnects.toml`, which
//! also shows how each `α` and `eff` was derived from a measurement).

use serde::Serialize;
use std::fmt;

/// One kind of link as a GPU sees it: per-direction rates, step latency, efficiency.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkSpec {
    /// Key of the entry in `interconnects.toml` this link came from (`"nvlink4-nvswitch"`).
    pub key: String,
    /// Human-readable name (`"NVLink4"`).
    pub name: String,
    /// Line rate per direction available to one GPU, bytes/s, aggregated over all its
    /// links of this kind (NVIDIA's "900 GB/s" NVLink4 is 450e9 here).
    pub bandwidth_bytes_per_s: f64,
    /// Line rate per direction between one pair of GPUs, bytes/s (≤ the aggregate).
    pub pair_bandwidth_bytes_per_s: f64,
    /// Latency α of one step of a collective (one hop), seconds.
    pub latency_s: f64,
    /// Measured peak all-reduce bus bandwidth divided by the line rate (may exceed 1
    /// with in-switch reduction such as NVLS). Applied to every collective here, save
    /// groups of more than two GPUs where the next field is set.
    pub allreduce_bus_efficiency: f64,
    /// The efficiency of groups of more than two GPUs where it differs from a pair's
    /// (PCIe: such groups cross switches and sockets, their traffic through host
    /// memory); `None`: the same.
    pub beyond_pair_bus_efficiency: Option<f64>,
    /// A measured copy rate over the line rate, for point-to-point sends where the
    /// link has one (PCIe: a copy streams at ~80 % of the line rate, more than a
    /// collective's bus bandwidth); `None`: sends take the all-reduce efficiency.
    pub copy_efficiency: Option<f64>,
    /// Largest group of GPUs the link joins all-to-all (2 for an NVLink bridge);
    /// `None` means every GPU of the node.
    pub max_gpus: Option<u32>,
}

/// Which all-reduce algorithm to cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AllReduceAlgorithm {
    /// Ring: `2(n−1)` latency steps.
    Ring,
    /// (Double binary) tree: `2⌈log2 n⌉` latency steps.
    Tree,
    /// Whichever of the two is faster for the message, as NCCL's tuner picks.
    Fastest,
}

impl AllReduceAlgorithm {
    /// Latency steps of one all-reduce over `n` GPUs (`Fastest` counts as tree, the
    /// one with fewer steps).
    pub fn steps(self, n: u32) -> u32 {
        if n <= 1 {
            return 0;
        }
        match self {
            AllReduceAlgorithm::Ring => 2 * (n - 1),
            AllReduceAlgorithm::Tree | AllReduceAlgorithm::Fastest => 2 * ceil_log2(n),
        }
    }
}

fn ceil_log2(n: u32) -> u32 {
    debug_assert!(n >= 1);
    u32::BITS - (n - 1).leading_zeros()
}

impl LinkSpec {
    /// The rate a collective over `n` GPUs reaches per direction per GPU, bytes/s: line
    /// rate × [`LinkSpec::bus_efficiency`].
    pub fn effective_bandwidth_bytes_per_s(&self, n: u32) -> f64 {
        self.bandwidth_bytes_per_s * self.bus_efficiency(n)
    }

    /// The bus efficiency of a collective over `n` GPUs.
    pub fn bus_efficiency(&self, n: u32) -> f64 {
        match self.beyond_pair_bus_efficiency {
            Some(e) if n > 2 => e,
            _ => self.allreduce_bus_efficiency,
        }
    }

    /// The rate one GPU pair's point-to-point copy reaches per direction, bytes/s: pair
    /// line rate × the copy efficiency (else the all-reduce efficiency).
    pub fn effective_pair_bandwidth_bytes_per_s(&self) -> f64 {
        self.pair_bandwidth_bytes_per_s
            * self
                .copy_efficiency
                .unwrap_or(self.allreduce_bus_efficiency)
    }

    /// Seconds to move the `(n−1)/n · factor` share of `bytes` at the effective rate.
    fn transfer_s(&self, bytes: f64, n: u32, factor: f64) -> f64 {
        debug_assert!(bytes >= 0.0, "negative message size {bytes}");
        let share = f64::from(n - 1) / f64::from(n);
        factor * share * bytes / self.effective_bandwidth_bytes_per_s(n)
    }

    /// Ring all-reduce of a `bytes` buffer over `n` GPUs, seconds:
    /// `2(n−1)/n · S/B + 2(n−1)·α`.
    pub fn all_reduce_ring_s(&self, bytes: f64, n: u32) -> f64 {
        if n <= 1 {
            return 0.0;
        }
        self.transfer_s(bytes, n, 2.0)
            + f64::from(AllReduceAlgorithm::Ring.steps(n)) * self.latency_s
    }

    /// Tree all-reduce of a `bytes` buffer over `n` GPUs, seconds:
    /// `2(n−1)/n · S/B + 2⌈log2 n⌉·α`.
    pub fn all_reduce_tree_s(&self, bytes: f64, n: u32) -> f64 {
        if n <= 1 {
            return 0.0;
        }
        self.transfer_s(bytes, n, 2.0)
            + f64::from(AllReduceAlgorithm::Tree.steps(n)) * self.latency_s
    }

    /// All-reduce of a `bytes` buffer over `n` GPUs with `algorithm`, seconds.
    pub fn all_reduce_s(&self, bytes: f64, n: u32, algorithm: AllReduceAlgorithm) -> f64 {
        match algorithm {
            AllReduceAlgorithm::Ring => self.all_reduce_ring_s(bytes, n),
            AllReduceAlgorithm::Tree => self.all_reduce_tree_s(bytes, n),
            AllReduceAlgorithm::Fastest => self
                .all_reduce_ring_s(bytes, n)
                .min(self.all_reduce_tree_s(bytes, n)),
        }
    }

    /// All-gather producing `bytes` on every GPU (each contributes `bytes/n`), seconds:
    /// `(n−1)/n · S/B + (n−1)·α`.
    pub fn all_gather_s(&self, bytes: f64, n: u32) -> f64 {
        if n <= 1 {
            return 0.0;
        }
        self.transfer_s(bytes, n, 1.0) + f64::from(n - 1) * self.latency_s
    }

    /// Reduce-scatter of a `bytes` input on every GPU (each keeps `bytes/n` reduced),
    /// seconds: `(n−1)/n · S/B + (n−1)·α`.
    pub fn reduce_scatter_s(&self, bytes: f64, n: u32) -> f64 {
        self.all_gather_s(bytes, n)
    }

    /// All-to-all where every GPU starts with `bytes` split evenly over the `n` GPUs
    /// (it keeps `bytes/n` and sends the rest), seconds: `(n−1)/n · S/B + (n−1)·α`.
    pub fn all_to_all_s(&self, bytes: f64, n: u32) -> f64 {
        self.all_gather_s(bytes, n)
    }

    /// Point-to-point send of `bytes` from one GPU to one other, seconds:
    /// `S/B_pair + α`.
    pub fn send_s(&self, bytes: f64) -> f64 {
        debug_assert!(bytes >= 0.0, "negative message size {bytes}");
        bytes / self.effective_pair_bandwidth_bytes_per_s() + self.latency_s
    }
}

impl fmt::Display for LinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({:.2} GB/s per direction, α {:.1} µs, efficiency {:.2}",
            self.name,
            self.bandwidth_bytes_per_s / 1e9,
            self.latency_s * 1e6,
            self.allreduce_bus_efficiency
        )?;
        match self.beyond_pair_bus_efficiency {
            Some(e) => write!(f, ", {e:.2} beyond 2 GPUs)"),
            None => write!(f, ")"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 100 GB/s per direction, 80 % efficient, α = 5 µs; pairs get 25 GB/s.
    fn link() -> LinkSpec {
        LinkSpec {
            key: "test".into(),
            name: "test link".into(),
            bandwidth_bytes_per_s: 100e9,
            pair_bandwidth_bytes_per_s: 25e9,
            latency_s: 5e-6,
            allreduce_bus_efficiency: 0.8,
            beyond_pair_bus_efficiency: None,
            copy_efficiency: None,
            max_gpus: None,
        }
    }

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() <= 1e-12 + 1e-9 * b.abs(), "{a} != {b}");
    }

    #[test]
    fn steps_and_log2() {
        assert_eq!(ceil_log2(1), 0);
        assert_eq!(ceil_log2(2), 1);
        assert_eq!(ceil_log2(5), 3);
        assert_eq!(ceil_log2(8), 3);
        assert_eq!(AllReduceAlgorithm::Ring.steps(8), 14);
        assert_eq!(AllReduceAlgorithm::Tree.steps(8), 6);
        assert_eq!(AllReduceAlgorithm::Tree.steps(1), 0);
    }

    #[test]
    fn single_gpu_costs_nothing() {
        let l = link();
        assert_eq!(l.all_reduce_ring_s(1e9, 1), 0.0);
        assert_eq!(l.all_reduce_tree_s(1e9, 0), 0.0);
        assert_eq!(l.all_gather_s(1e9, 1), 0.0);
        assert_eq!(l.all_to_all_s(1e9, 1), 0.0);
    }

    #[test]
    fn ring_all_reduce_small_message_is_latency() {
        // n = 8, S = 1 KB: 2·7/8 · 1000 / 80e9 = 21.875 ns; 14 · 5 µs = 70 µs.
        let t = link().all_reduce_ring_s(1000.0, 8);
        close(t, 70e-6 + 21.875e-9);
    }

    #[test]
    fn ring_all_reduce_large_message_is_bandwidth() {
        // n = 8, S = 1 GB: 1.75e9 / 80e9 = 21.875 ms, plus 70 µs.
        let t = link().all_reduce_ring_s(1e9, 8);
        close(t, 21.875e-3 + 70e-6);
    }

    #[test]
    fn tree_all_reduce() {
        // n = 8: 6 steps · 5 µs = 30 µs; same bandwidth term as the ring.
        let l = link();
        close(l.all_reduce_tree_s(1000.0, 8), 30e-6 + 21.875e-9);
        close(l.all_reduce_tree_s(1e9, 8), 21.875e-3 + 30e-6);
        // n = 2: ring and tree both take 2 steps.
        close(l.all_reduce_ring_s(0.0, 2), l.all_reduce_tree_s(0.0, 2));
        // Fastest picks the tree here.
        close(
            l.all_reduce_s(1000.0, 8, AllReduceAlgorithm::Fastest),
            l.all_reduce_tree_s(1000.0, 8),
        );
    }

    #[test]
    fn gather_scatter_all_to_all() {
        // n = 4, S = 4 MB: 3/4 · 4e6 / 80e9 = 37.5 µs; 3 · 5 µs = 15 µs.
        let l = link();
        close(l.all_gather_s(4e6, 4), 37.5e-6 + 15e-6);
        close(l.reduce_scatter_s(4e6, 4), 37.5e-6 + 15e-6);
        close(l.all_to_all_s(4e6, 4), 37.5e-6 + 15e-6);
        // n = 4, S = 64 B: latency only (3 · 5 µs) plus 0.6 ns.
        close(l.all_gather_s(64.0, 4), 15e-6 + 0.6e-9);
    }

    #[test]
    fn reduce_scatter_plus_all_gather_is_ring_all_reduce() {
        let l = link();
        for (s, n) in [(1e3, 2), (1e6, 4), (1e9, 8)] {
            close(
                l.reduce_scatter_s(s, n) + l.all_gather_s(s, n),
                l.all_reduce_ring_s(s, n),
            );
        }
    }

    #[test]
    fn send_uses_the_pair_rate() {
        // 1 MB over 25 GB/s · 0.8 = 20 GB/s: 50 µs, plus α 5 µs.
        let l = link();
        close(l.send_s(1e6), 50e-6 + 5e-6);
        close(l.send_s(0.0), 5e-6);
    }
}
