//! CLI integration tests: one binary, run against the shipped data.

mod commands;
mod determinism;
mod errors;
mod util;
