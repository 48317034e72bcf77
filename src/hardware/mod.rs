//! Accelerator and cluster specifications loaded from `perf_model/`.
//!
//! Every physical figure lives in data files, never in this code:
//!
//! - `perf_model/hardware/<slug>.toml`: one file per device ([`GpuSpec`]): memory,
//!   bandwidth, dense peak rates per [`DType`](crate::dtype::DType), links, node
//!   defaults, sources and what is uncertain. Field reference and how to add a device:
//!   `perf_model/hardware/README.md`.
//! - `perf_model/interconnects.toml`: link kinds ([`LinkSpec`]: per-direction rate,
//!   step latency α, all-reduce bus efficiency) with the measurements each figure is
//!   derived from ([`Interconnects`]).
//!
//! [`HardwareCatalog`] loads a folder and resolves user-typed names; [`ClusterSpec`]
//! groups GPUs into nodes and picks the link a collective uses; [`LinkSpec`] costs
//! collectives with the α-β model (formulas in [`link`]).
//!
//! ```
//! use servesim::hardware::{AllReduceAlgorithm, ClusterSpec, HardwareCatalog};
//! use servesim::{dtype::DType, paths::DataPaths};
//!
//! let catalog = HardwareCatalog::load(&DataPaths::builtin().hardware_dir())?;
//! let h100 = catalog.resolve("h100")?;
//! assert_eq!(h100.peak_flops(DType::Bf16), Some(989.4e12));
//! let cluster = ClusterSpec::new(h100);
//! let tp8 = cluster.link_for_group(8); // NVLink4 through NVSwitch
//! let t = tp8.all_reduce_s(16.0 * 1024.0 * 1024.0, 8, AllReduceAlgorithm::Fastest);
//! assert!(t > 50e-6 && t < 150e-6); // Vidur measured 115 µs
//! # Ok::<(), servesim::Error>(())
//! ```
//!
//! Not here: how a model's layers turn into FLOPs, bytes and collectives (that is
//! [`perf`](crate::perf)).

mod catalog;
mod cluster;
pub mod database;
mod interconnect;
pub mod link;
mod parse;
mod spec;

pub use catalog::{HardwareCatalog, HardwareFilter, INTERCONNECTS_FILE};
pub use cluster::ClusterSpec;
pub use interconnect::{
    Interconnects, LinkEntry, MeasuredBusBandwidth, MeasuredLatency, SystemEntry,
};
pub use link::{AllReduceAlgorithm, LinkSpec};
pub use spec::{DeviceType, GpuSpec};
