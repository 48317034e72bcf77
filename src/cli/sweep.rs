//! `servesim sweep`: simulate every point of a grid, in parallel, into CSV/JSON/SVG.

use crate::paths::DataPaths;
use crate::plan::{self, exec, table, Shard, SweepConfig, SweepContext};
use anyhow::Result;
use clap::Args;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Arguments of `servesim sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// TOML grid: hardware × TP × PP × replicas × scheduler knobs × load (see
    /// examples/sweep_*.toml and docs/planning.md).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// Threads (points run in parallel; the output does not depend on this). Default:
    /// the available cores.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Output folder. Default: output/sweep-<name>/.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Run only the points with index % N == I (0-based); join folders with `servesim merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,

    /// What a point costs (device prices, electricity).
    #[command(flatten)]
    pub cost: CostArgs,

    /// Do not draw SVG charts.
    #[arg(long)]
    pub no_charts: bool,
}

/// A progress bar with ETA on stderr, hidden when stderr is not a terminal.
pub fn progress_bar(len: usize, what: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{{bar:40}} {{pos}}/{{len}} {what} [{{elapsed_precise}} < {{eta_precise}}]"
    )) {
        pb.set_style(style);
    }
    pb
}

/// What a point costs: device prices and electricity (shared by `sweep` and `plan`).
#[derive(clap::Args, Debug, Default)]
pub struct CostArgs {
    /// Price of a device, USD per GPU-hour, overriding the catalog (repeatable or
    /// comma-separated: h100=2.5,a100=1.8).
    #[arg(long, value_name = "NAME=USD", value_delimiter = ',')]
    pub price_per_gpu_hour: Vec<String>,

    /// Also count electricity at this price per kWh, USD, in every point's cost.
    #[arg(long, value_name = "USD", allow_hyphen_values = true)]
    pub price_per_kwh: Option<f64>,

    /// Power each GPU draws, W, for --price-per-kwh (default: each device's TDP).
    #[arg(
        long,
        value_name = "W",
        allow_hyphen_values = true,
        requires = "price_per_kwh"
    )]
    pub power_w: Option<f64>,
}

/// Load the config and build the context.
pub fn context(config: &Path, cost: &CostArgs, paths: &DataPaths) -> Result<SweepContext> {
    let cfg = SweepConfig::load(config)?;
    let prices = exec::parse_price_overrides(&cost.price_per_gpu_hour)?;
    let mut ctx = SweepContext::new(cfg, config, paths, &prices)?;
    ctx.energy = cost
        .price_per_kwh
        .map(|k| crate::cost::EnergyPrice::new(k, cost.power_w))
        .transpose()?;
    Ok(ctx)
}

/// A sweep's points, run but not written.
#[derive(Debug)]
pub struct SweepOutcome {
    /// The grid's description (`sweep.json`).
    pub meta: plan::SweepMeta,
    /// The shard run, if any.
    pub shard: Option<Shard>,
    /// One row per point run, by index (`points.csv`).
    pub rows: Vec<table::Row>,
    /// Threads used.
    pub jobs: usize,
}

/// Run the points of `args`' grid (its shard, if any) in parallel, without writing.
pub fn points(args: &SweepArgs, paths: &DataPaths) -> Result<SweepOutcome> {
    let ctx = context(&args.config, &args.cost, paths)?;
    let meta = plan::meta(&ctx);
    let shard: Option<Shard> = args.shard.as_deref().map(str::parse).transpose()?;
    let indices = match shard {
        Some(s) => s.indices(meta.total_points),
        None => (0..meta.total_points).collect(),
    };
    let jobs = args.jobs.unwrap_or_else(exec::default_jobs);
    let pb = progress_bar(indices.len(), "points");
    let tick = || pb.inc(1);
    let rows = plan::run_points(&ctx, &indices, jobs, &tick)?;
    pb.finish_and_clear();
    Ok(SweepOutcome {
        meta,
        shard,
        rows,
        jobs,
    })
}

/// Write a sweep's files (`points.csv`, `points.json`, `sweep.json`, the charts) into
/// `--output-dir` (default output/sweep-<name>/); the folder.
pub fn write(args: &SweepArgs, out: &SweepOutcome) -> Result<PathBuf> {
    let dir = args
        .output_dir
        .clone()
        .unwrap_or_else(|| Path::new("output").join(format!("sweep-{}", out.meta.name)));
    table::write_points(&dir, &out.meta, out.shard, &out.rows)?;
    if !args.no_charts && out.shard.is_none() {
        plan::chart::sweep_charts(&dir, &out.rows)?;
    }
    Ok(dir)
}

/// Run `servesim sweep`.
pub fn run(args: SweepArgs, paths: &DataPaths) -> Result<()> {
    let out = points(&args, paths)?;
    let dir = write(&args, &out)?;
    let SweepOutcome {
        meta,
        shard,
        rows,
        jobs,
    } = out;
    let ok = rows.iter().filter(|r| r.get("status") == "ok").count();
    println!(
        "{}: {} of {} points{} ({} ok, {} infeasible) on {} threads",
        meta.name,
        rows.len(),
        meta.total_points,
        shard.map_or(String::new(), |s| format!(
            " (shard {}/{})",
            s.index, s.count
        )),
        ok,
        rows.len() - ok,
        jobs
    );
    println!(
        "wrote {}/{{points.csv,points.json,sweep.json}}",
        dir.display()
    );
    Ok(())
}
