//! `servesim simulate`: replay a trace through simulated replicas.

use super::args::{DeploymentArgs, EngineArgs, Format, Merge};
use crate::merge_fields;
use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;
use servesim::deployment::Deployment;
use servesim::metrics::Slo;
use servesim::paths::DataPaths;
use servesim::setup::ReplicaSetup;
use servesim::sim::{RequestSource, RoutePolicy, Router};
use servesim::simulate::{run as run_sim, RunOptions};
use servesim::trace::{open_trace, TraceOptions};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// The sample trace replayed when none is given.
pub const DEFAULT_TRACE: &str = "azure_conv_5min.csv";

/// Workload and run options (also the top-level keys of a `--config` file).
#[derive(Args, Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RunArgs {
    /// Request trace: native CSV (arrival_time_s,input_tokens,output_tokens[,...]), Azure
    /// 2023, Mooncake, vLLM benchmark JSON or LLMServingSim JSONL, detected from the
    /// header. Default: the shipped traces/azure_conv_5min.csv.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,

    /// Multiply arrival times by this (2 = half the request rate).
    #[arg(long, value_name = "X")]
    pub time_scale: Option<f64>,

    /// Divide arrival times by this (2 = twice the request rate).
    #[arg(long, value_name = "X")]
    pub rate_scale: Option<f64>,

    /// Replay at most this many requests.
    #[arg(long, value_name = "N")]
    pub max_requests: Option<u64>,

    /// Replay only arrivals in START:END seconds of the trace (END may be omitted).
    #[arg(long, value_name = "START:END")]
    pub time_window: Option<String>,

    /// Seed for anything random (arrivals regenerated for vLLM benchmark JSON).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Closed loop: keep N requests in flight, issuing the trace's next request as soon
    /// as one ends (its arrival time is ignored), like a benchmark client with
    /// --max-concurrency and an infinite request rate.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,

    /// Identical replicas behind the router.
    #[arg(long, value_name = "N")]
    pub num_replicas: Option<u32>,

    /// How the router picks a replica.
    #[arg(long, value_enum)]
    pub route: Option<RoutePolicy>,

    /// TTFT SLO in seconds, for goodput and SLO attainment.
    #[arg(long, value_name = "SECONDS")]
    pub slo_ttft_s: Option<f64>,

    /// TPOT SLO in seconds, for goodput and SLO attainment.
    #[arg(long, value_name = "SECONDS")]
    pub slo_tpot_s: Option<f64>,

    /// Folder for requests.csv, timeseries.csv, summary.json and config.json.
    /// Default: output/<run-name>/.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Name of the run (default: <model>_<hardware>_<trace>).
    #[arg(long, value_name = "NAME")]
    pub run_name: Option<String>,
}

merge_fields!(RunArgs {
    trace,
    time_scale,
    rate_scale,
    max_requests,
    time_window,
    seed,
    concurrency,
    num_replicas,
    route,
    slo_ttft_s,
    slo_tpot_s,
    output_dir,
    run_name
});

/// The top-level keys of a config file (the same fields as [`RunArgs`]).
type RunArgsFile = RunArgs;

/// A `--config` file: run options at the top level, `[deployment]` and `[engine]` tables
/// with the flag names as keys.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ConfigFile {
    #[serde(flatten)]
    run: RunArgsFile,
    #[serde(default)]
    deployment: DeploymentArgs,
    #[serde(default)]
    engine: EngineArgs,
}

/// Arguments of `servesim simulate`.
#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// TOML file with the run (top-level keys as the flags below, `[deployment]` and
    /// `[engine]` tables). Flags given on the command line override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(flatten)]
    run: RunArgs,

    #[command(flatten)]
    deployment: DeploymentArgs,

    #[command(flatten)]
    engine: EngineArgs,

    /// Printed summary format (files are always CSV and JSON).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Do not write output files.
    #[arg(long)]
    no_output: bool,
}

/// Parse `START:END` (END optional) seconds.
fn parse_window(s: &str) -> Result<(f64, f64)> {
    let (a, b) = s.split_once(':').unwrap_or((s, ""));
    let start: f64 = a
        .trim()
        .parse()
        .with_context(|| format!("--time-window: bad start `{a}` (expected START:END seconds)"))?;
    let end: f64 = if b.trim().is_empty() {
        f64::INFINITY
    } else {
        b.trim()
            .parse()
            .with_context(|| format!("--time-window: bad end `{b}` (expected START:END seconds)"))?
    };
    if !(start >= 0.0 && end > start) {
        anyhow::bail!("--time-window: need 0 <= START < END, got {start}:{end}");
    }
    Ok((start, end))
}

fn short(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase()
}

/// Run `servesim simulate`.
pub fn run(mut args: SimulateArgs, paths: &DataPaths) -> Result<()> {
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let file: ConfigFile =
            toml::from_str(&text).map_err(|e| servesim::error::toml_error(path, &text, &e))?;
        args.run.merge_from(file.run);
        args.deployment.merge_from(file.deployment);
        args.engine.merge_from(file.engine);
    }
    let run = &args.run;
    let deployment = Deployment::resolve(&args.deployment.request(), paths)?;
    let overrides = args.engine.overrides();
    let setup = ReplicaSetup::new(deployment, &overrides, paths)?;

    let trace_path = run
        .trace
        .clone()
        .unwrap_or_else(|| paths.traces.join(DEFAULT_TRACE));
    let opts = TraceOptions {
        time_scale: run.time_scale.unwrap_or(1.0),
        rate_scale: run.rate_scale.unwrap_or(1.0),
        max_requests: run.max_requests,
        time_window: run.time_window.as_deref().map(parse_window).transpose()?,
        seed: run.seed.unwrap_or(0),
        ..TraceOptions::default()
    };
    let reader = open_trace(&trace_path, &opts)?;
    let replicas = setup.replicas(run.num_replicas.unwrap_or(1))?;
    let router = Router::new(run.route.unwrap_or_default());
    let run_name = run.run_name.clone().unwrap_or_else(|| {
        let stem = trace_path
            .file_stem()
            .map_or("trace".into(), |s| s.to_string_lossy().to_ascii_lowercase());
        format!(
            "{}_{}_{}",
            short(&setup.deployment.model.name),
            short(&setup.deployment.gpu().name),
            stem
        )
    });
    let output_dir = (!args.no_output).then(|| {
        run.output_dir
            .clone()
            .unwrap_or_else(|| Path::new("output").join(&run_name))
    });
    let opts = RunOptions {
        slo: Slo {
            ttft_s: run.slo_ttft_s,
            tpot_s: run.slo_tpot_s,
        },
        output_dir: output_dir.clone(),
        progress: std::io::stderr().is_terminal(),
    };
    let source = match run.concurrency {
        Some(concurrency) => RequestSource::ClosedLoop {
            requests: Box::new(reader),
            concurrency,
        },
        None => RequestSource::Open(Box::new(reader)),
    };
    let result = run_sim(replicas, router, source, &opts)?;

    #[derive(serde::Serialize)]
    struct Resolved<'a> {
        run_name: &'a str,
        trace: String,
        deployment: servesim::deployment::DeploymentSummary,
        engine: &'a servesim::engine::EngineConfig,
        num_replicas: u32,
        route: RoutePolicy,
        latency_model: String,
        memory: &'a servesim::memory::MemoryPlan,
    }
    let resolved = Resolved {
        run_name: &run_name,
        trace: trace_path.display().to_string(),
        deployment: setup.deployment.summary(),
        engine: &setup.engine,
        num_replicas: run.num_replicas.unwrap_or(1),
        route: run.route.unwrap_or_default(),
        latency_model: setup.latency.describe(),
        memory: &setup.memory,
    };
    if let Some(dir) = &output_dir {
        servesim::report::write_json(&dir.join("config.json"), &resolved)?;
    }
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&result.summary)?),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            w.write_record(["metric", "mean", "p50", "p90", "p95", "p99", "p99.9", "max"])?;
            for (name, d) in servesim::report::latency_rows(&result.summary) {
                w.write_record([name.to_owned()].into_iter().chain(
                    [d.mean, d.p50, d.p90, d.p95, d.p99, d.p99_9, d.max].map(|x| format!("{x:.6}")),
                ))?;
            }
            w.flush()?;
        }
        Format::Table => {
            let d = &setup.deployment;
            println!(
                "{}: {} on {} × {} (TP{} PP{}) × {} replica(s), {} scheduler, {} KV blocks of {} tokens",
                run_name,
                d.model.name,
                d.num_gpus(),
                d.gpu().name,
                d.tp,
                d.pp,
                resolved.num_replicas,
                setup.engine.scheduler,
                setup.engine.num_gpu_blocks,
                setup.engine.block_size
            );
            println!("latency model: {}", resolved.latency_model);
            print!("{}", servesim::report::summary_table(&result.summary));
            if let Some(dir) = &output_dir {
                println!(
                    "wrote {}/{{requests.csv,timeseries.csv,summary.json,config.json}}",
                    dir.display()
                );
            }
        }
    }
    Ok(())
}
