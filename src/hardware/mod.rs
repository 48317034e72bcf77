//! Accelerator and cluster specifications loaded from `perf_model/`.
//!
//! `perf_model/interconnects.toml` holds the link kinds ([`LinkSpec`]: per-direction
//! rate, step latency α, all-reduce bus efficiency) with the measurements each figure is
//! derived from ([`Interconnects`]); [`LinkSpec`] costs collectives with the α-β model
//! (formulas in [`link`]).

mod interconnect;
pub mod link;
mod parse;

pub use interconnect::{
    Interconnects, LinkEntry, MeasuredBusBandwidth, MeasuredLatency, SystemEntry,
};
pub use link::{AllReduceAlgorithm, LinkSpec};
