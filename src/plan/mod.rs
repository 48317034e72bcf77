//! Capacity planning: sweeps over hardware, parallelism, replicas, scheduler knobs and
//! load; the maximum sustainable rate under an SLO; the cheapest configuration; the
//! cost/latency frontier.
//!
//! * [`grid`]: the TOML description and its expansion into indexed points.
//! * [`exec`]: one simulation per point, and a deterministic parallel map (threads share
//!   an atomic work index; results are collected by index, so output does not depend on
//!   the thread count).
//! * [`table`]: per-point rows, their CSV/JSON files, and the merge of shards.
//! * [`search`]: bisection on the rate, fewest replicas for a target rate, ranking and
//!   the Pareto frontier.
//! * [`chart`]: SVG charts.

pub mod chart;
pub mod exec;
pub mod grid;
pub mod planner;
pub mod search;
pub mod table;

pub use exec::{Outcome, PointMetrics, SweepContext};
pub use grid::{Grid, Point, SweepConfig};
pub use table::{Row, Shard, SweepMeta};

use crate::error::Result;

/// Simulate the points `indices` of `ctx`'s grid on `jobs` threads, returning their rows
/// in the order of `indices`. `tick` is called after each point.
pub fn run_points(
    ctx: &SweepContext,
    indices: &[usize],
    jobs: usize,
    tick: &(dyn Fn() + Sync),
) -> Result<Vec<Row>> {
    let loads = ctx.grid.workload.loads().len();
    let workload = ctx.grid.workload.name();
    let rows = exec::par_map(
        indices,
        jobs,
        |i| {
            let p = ctx.grid.point(i);
            let outcome = ctx.evaluate(&p.config, p.config.replicas, p.load)?;
            Ok(table::point_row(
                &p,
                loads,
                &workload,
                &outcome,
                ctx.offered_rps(p.load),
            ))
        },
        tick,
    );
    rows.into_iter().collect()
}

/// The metadata of `ctx`'s sweep.
pub fn meta(ctx: &SweepContext) -> SweepMeta {
    SweepMeta {
        name: ctx.config.name.clone().unwrap_or_else(|| "sweep".into()),
        total_points: ctx.grid.num_points(),
        loads_per_config: ctx.grid.workload.loads().len(),
    }
}
