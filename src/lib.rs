//! # servesim
//!
//! A discrete-event simulator of LLM serving. It answers three questions:
//!
//! 1. **Simulate**: replay a request trace through a model of a serving engine
//!    (continuous batching, chunked prefill, paged KV cache, preemption) running a model
//!    on GPUs, and report per-request TTFT, TPOT and end-to-end latency.
//! 2. **Validate**: compare the simulator with measurements from real GPU runs.
//! 3. **Plan**: sweep hardware, parallelism and scheduler settings to find the cheapest
//!    cluster that meets a latency SLO.
//!
//! Around that core it answers static questions: how much memory a model needs to serve
//! ([`memory`]) or to fine-tune ([`finetune`]), and the latency of one static batch
//! through the simulated engine with its operator breakdown ([`estimate`]).
//!
//! The crate is one library with a thin CLI on top; every command is usable from Rust.
//! Data (model configs, hardware specs, measured latencies) lives in files under
//! `model_configs/` and `perf_model/`, located through [`paths::DataPaths`].

#![warn(missing_docs)]

pub mod calibrate;
pub mod cli;
pub mod cluster;
pub mod cost;
pub mod deployment;
pub mod dtype;
pub mod engine;
pub mod error;
pub mod estimate;
pub mod finetune;
pub mod hardware;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod paths;
pub mod perf;
pub mod plan;
pub mod replicate;
pub mod report;
#[cfg(feature = "serve")]
pub mod serve;
pub mod setup;
pub mod sim;
pub mod simulate;
pub mod stack;
pub mod startup;
pub mod trace;
pub mod units;
pub mod validate;

pub use error::{Error, Result};
