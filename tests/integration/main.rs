//! CLI integration tests: one binary, run against the shipped data.

mod cluster;
mod commands;
mod determinism;
mod errors;
mod estimate;
mod memory;
mod models;
mod pipes;
mod readme;
mod report;
mod util;
mod validate;
