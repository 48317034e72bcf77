//! The `servesim` command line: clap definitions and dispatch. It lives in the library
//! so that every command, with its flags' exact names and defaults, is reachable from
//! Rust (and from the Python package, which parses the same flags: [`Cli`] with
//! `try_parse_from`, then [`data_paths`] and the command's own function).

// The doc comments of this module tree are clap's help texts, written for a terminal
// (`<model>`, `[:MAX]`, bare URLs), not for rustdoc.
#![allow(
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls
)]

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

pub mod args;
mod calibrate;
pub mod estimate;
mod fit_stack;
mod interactive;
pub mod list;
pub mod memory;
mod merge;
pub mod plan;
mod report;
#[cfg(feature = "serve")]
mod serve;
pub mod simulate;
pub mod sweep;
pub mod trace;
pub mod validate;

/// servesim: a discrete-event simulator of LLM serving.
#[derive(Debug, Parser)]
#[command(name = "servesim", version, about, long_about = None)]
pub struct Cli {
    /// Root folder holding `model_configs/` and `perf_model/` (default: $SERVESIM_DATA_DIR,
    /// else the source tree servesim was built from, else the current directory).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Let `--model org/name` fetch the model's config.json (never weights) from the
    /// HuggingFace Hub when it is neither shipped nor in the local HuggingFace cache; it
    /// is cached there for later runs. Also SERVESIM_ALLOW_DOWNLOAD=1. HF_ENDPOINT and
    /// HF_TOKEN are honoured.
    #[arg(long, global = true)]
    pub allow_download: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a request trace through simulated serving replicas (no arguments: a
    /// built-in default run of a shipped trace on Llama-3.1-8B on one H100).
    Simulate(Box<simulate::SimulateArgs>),
    /// Serving memory plan per GPU: weights, activations, KV cache, what fits.
    Memory(Box<memory::MemoryArgs>),
    /// Latency of one static batch run through the simulated engine (the replica and
    /// latency model `simulate` uses), with the operator breakdown and the bottleneck.
    Estimate(Box<estimate::EstimateArgs>),
    /// List the model or hardware catalog.
    List(list::ListArgs),
    /// Generate, summarise and convert request traces.
    Trace(trace::TraceCommand),
    /// Serve the OpenAI API (completions, chat, models, metrics) with simulated timing.
    #[cfg(feature = "serve")]
    Serve(Box<serve::ServeArgs>),
    /// Replay a measured benchmark (vLLM result JSON, LLMServingSim run, per-request
    /// CSV, Argonne or Splitwise table) and report the error per metric.
    Validate(Box<validate::ValidateArgs>),
    /// Fit the roofline's efficiencies and overheads for a GPU to measured tables and
    /// runs (writes perf_model/calibrated/<hardware>.toml, used only when given with
    /// --roofline-params), or with --kernels derive them from kernel measurements
    /// (writes perf_model/kernel_efficiency/<hardware>.toml, the default).
    Calibrate(Box<calibrate::CalibrateArgs>),
    /// Fit a serving stack's host time per iteration (and API server time per request)
    /// to measured sets; writes a stack file with what it was fitted on.
    FitStack(Box<fit_stack::FitStackArgs>),
    /// Simulate every point of a grid (hardware × TP × PP × replicas × scheduler knobs ×
    /// load) in parallel; CSV, JSON and SVG out.
    Sweep(sweep::SweepArgs),
    /// Maximum sustainable rate per configuration under an SLO, fewest replicas for a
    /// target rate, cost ranking and the cost/latency frontier.
    Plan(Box<plan::PlanArgs>),
    /// Join the folders of a sharded sweep into files identical to an unsharded run's.
    Merge(merge::MergeArgs),
    /// Ask for the model, hardware, parallelism and batch (fuzzy selection), then print
    /// the estimate and the memory plan; needs a terminal.
    Interactive,
    /// Draw the charts and the self-contained report.html of run folders again; several
    /// folders make one report comparing them.
    Report(report::ReportArgs),
    /// Print the version and data folders.
    Info,
}

/// The Hub access `--allow-download` or `SERVESIM_ALLOW_DOWNLOAD` grants, from
/// `HF_ENDPOINT` and `HF_TOKEN` (or the older `HUGGING_FACE_HUB_TOKEN`).
fn hub_download(flag: bool) -> Option<crate::model::HubDownload> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let from_env = env("SERVESIM_ALLOW_DOWNLOAD")
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
    (flag || from_env).then(|| {
        crate::model::HubDownload::new(
            env("HF_ENDPOINT"),
            env("HF_TOKEN").or_else(|| env("HUGGING_FACE_HUB_TOKEN")),
        )
    })
}

/// Where a command line's data lives: `--data-dir`, else `$SERVESIM_DATA_DIR`, else the
/// source tree servesim was built from, else the current directory; with the Hub
/// access `--allow-download` grants.
pub fn data_paths(cli: &Cli) -> Result<crate::paths::DataPaths> {
    let cwd = std::env::current_dir()?;
    let env_dir = std::env::var_os("SERVESIM_DATA_DIR").map(PathBuf::from);
    Ok(
        crate::paths::DataPaths::resolve(cli.data_dir.as_deref(), env_dir.as_deref(), &cwd)
            .with_hub_download(hub_download(cli.allow_download)),
    )
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let paths = data_paths(&cli)?;
    match cli.command {
        Command::Simulate(a) => simulate::run(*a, &paths),
        Command::Memory(a) => memory::run(*a, &paths),
        Command::Estimate(a) => estimate::run(*a, &paths),
        Command::List(a) => list::run(a, &paths),
        Command::Trace(cmd) => trace::run(cmd),
        #[cfg(feature = "serve")]
        Command::Serve(a) => serve::run(*a, &paths),
        Command::Validate(a) => validate::run(*a, &paths),
        Command::Calibrate(a) => calibrate::run(*a, &paths),
        Command::FitStack(a) => fit_stack::run(*a, &paths),
        Command::Sweep(a) => sweep::run(a, &paths),
        Command::Plan(a) => plan::run(*a, &paths),
        Command::Merge(a) => merge::run(a),
        Command::Report(a) => report::run(a),
        Command::Interactive => interactive::run(&paths),
        Command::Info => {
            println!("servesim {}", env!("CARGO_PKG_VERSION"));
            println!("model configs: {}", paths.model_configs.display());
            println!("perf model:    {}", paths.perf_model.display());
            Ok(())
        }
    }
}
