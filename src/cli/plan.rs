//! `servesim plan`.

use anyhow::Result;
use clap::Args;
use servesim::paths::DataPaths;

/// Arguments of `servesim plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {}

/// Run `servesim plan`.
pub fn run(_args: PlanArgs, _paths: &DataPaths) -> Result<()> {
    Ok(())
}
