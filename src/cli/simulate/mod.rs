//! `servesim simulate`: replay a trace through simulated replicas.

use super::args::{DeploymentArgs, EngineArgs, Format, Merge};
use crate::cluster::{ClusterSpec, KvLink};
use crate::deployment::Deployment;
use crate::engine::ReplicaRole;
use crate::merge_fields;
use crate::metrics::Slo;
use crate::paths::DataPaths;
use crate::setup::ReplicaSetup;
use crate::sim::{RequestSource, RoutePolicy};
use crate::simulate::{run as run_sim, RunOptions};
use crate::trace::{open_trace, TraceOptions};
use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

mod options;
mod print;
use options::{client_policy, failure_plan, fleet_price, parse_window, DEFAULT_SLO_WINDOW_TARGET};
pub use print::print_outcome;

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
    #[arg(long, value_name = "X", allow_hyphen_values = true)]
    pub time_scale: Option<f64>,

    /// Divide arrival times by this (2 = twice the request rate).
    #[arg(long, value_name = "X", allow_hyphen_values = true)]
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

    /// Capped open loop: requests still arrive at their trace times, but at most N are
    /// in flight; one whose time has come while N are busy is sent when a slot frees
    /// (its latencies count from then), like a benchmark client with --request-rate and
    /// --max-concurrency. Not with --concurrency.
    #[arg(long, value_name = "N", conflicts_with = "concurrency")]
    pub max_concurrency: Option<u32>,

    /// Disaggregated serving: replicas that only prefill (use with
    /// --num-decode-replicas; each replica is the deployment given by the other flags).
    #[arg(long, value_name = "N")]
    pub num_prefill_replicas: Option<u32>,

    /// Disaggregated serving: replicas that only decode, fed by the prefill replicas.
    #[arg(long, value_name = "N")]
    pub num_decode_replicas: Option<u32>,

    /// Where KV travels from prefill to decode replicas: over the GPUs' scale-out
    /// network (separate nodes) or their intra-node link (same node).
    #[arg(long, value_enum)]
    pub kv_transfer_link: Option<KvLink>,

    /// Identical replicas behind the router (each data-parallel rank counts as one).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub num_replicas: Option<u32>,

    /// How the router picks a replica.
    #[arg(long, value_enum)]
    pub route: Option<RoutePolicy>,

    /// TTFT SLO in seconds, for goodput and SLO attainment.
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub slo_ttft_s: Option<f64>,

    /// TPOT SLO in seconds, for goodput and SLO attainment.
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub slo_tpot_s: Option<f64>,

    /// Also report SLO attainment per window of this many seconds of arrivals: how
    /// many windows reach --slo-window-target, and the worst one (summary.json,
    /// timeseries.csv). Needs an SLO.
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub slo_window_s: Option<f64>,

    /// Attainment a window must reach to meet the SLO (with --slo-window-s).
    /// Default: 0.9.
    #[arg(long, value_name = "FRACTION", allow_hyphen_values = true)]
    pub slo_window_target: Option<f64>,

    /// Rent per GPU-hour, USD, for the run's cost (default: the device file's price).
    #[arg(long, value_name = "USD", allow_hyphen_values = true)]
    pub price_per_gpu_hour: Option<f64>,

    /// Also count electricity at this price per kWh, USD.
    #[arg(long, value_name = "USD", allow_hyphen_values = true)]
    pub price_per_kwh: Option<f64>,

    /// Power each GPU draws, W, for --price-per-kwh (default: the device's TDP).
    #[arg(long, value_name = "W", allow_hyphen_values = true)]
    pub power_w: Option<f64>,

    /// Clients give up on a request not finished this many seconds after sending it
    /// (it ends `timed_out` unless retried; its KV is freed, its work wasted).
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub client_timeout_s: Option<f64>,

    /// Clients send a request that timed out or was lost to a replica failure again,
    /// at most this many times, after an exponential backoff with jitter.
    #[arg(long, value_name = "N")]
    pub max_retries: Option<u32>,

    /// Backoff before the first retry, s, doubling after each up to
    /// --retry-backoff-max-s; each drawn uniformly in [half, all] of that. Default: 1.
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub retry_backoff_s: Option<f64>,

    /// Longest retry backoff, s. Default: 60.
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub retry_backoff_max_s: Option<f64>,

    /// Clients leave (the request ends `abandoned`, never retried) when no token has
    /// come this many seconds after sending.
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub abandon_after_s: Option<f64>,

    /// Also run N replications, each with a block bootstrap of the trace and the
    /// run-to-run speed variation of perf_model/noise.toml, and report every statistic
    /// with its 95 % interval (summary.json `intervals`, and a table).
    #[arg(long, value_name = "N")]
    pub replications: Option<u32>,

    /// Length of the bootstrap's blocks of arrivals, s (with --replications). Default:
    /// 60.
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true)]
    pub bootstrap_block_s: Option<f64>,

    /// Replica failures from a schedule: CSV `time_s,replica,duration_s` (replicas
    /// numbered from 0 as config.json lists them). A failed replica loses its requests
    /// and KV (they end `failed`, or are retried with --max-retries) and restarts after
    /// the outage (engine start and weight loading, perf_model/startup.toml).
    #[arg(long, value_name = "FILE")]
    pub failures: Option<PathBuf>,

    /// Random replica failures: mean time between failures of one replica, hours
    /// (with --mttr-min).
    #[arg(long, value_name = "HOURS", allow_hyphen_values = true)]
    pub mtbf_h: Option<f64>,

    /// Mean time to repair a failed replica, minutes, before its restart (with
    /// --mtbf-h).
    #[arg(long, value_name = "MINUTES", allow_hyphen_values = true)]
    pub mttr_min: Option<f64>,

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
    max_concurrency,
    num_prefill_replicas,
    num_decode_replicas,
    kv_transfer_link,
    num_replicas,
    route,
    slo_ttft_s,
    slo_tpot_s,
    slo_window_s,
    slo_window_target,
    price_per_gpu_hour,
    price_per_kwh,
    power_w,
    client_timeout_s,
    max_retries,
    retry_backoff_s,
    retry_backoff_max_s,
    abandon_after_s,
    replications,
    bootstrap_block_s,
    failures,
    mtbf_h,
    mttr_min,
    output_dir,
    run_name
});

/// The top-level keys of a config file (the same fields as [`RunArgs`]).
type RunArgsFile = RunArgs;

/// A `--config` file: run options at the top level, `[deployment]` and `[engine]` tables
/// with the flag names as keys, and optionally `[[replica-group]]` entries for
/// heterogeneous or disaggregated clusters.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ConfigFile {
    #[serde(flatten)]
    run: RunArgsFile,
    #[serde(default)]
    deployment: DeploymentArgs,
    #[serde(default)]
    engine: EngineArgs,
    #[serde(default, rename = "replica-group")]
    replica_groups: Vec<ReplicaGroup>,
    autoscale: Option<AutoscaleFile>,
}

/// The `[autoscale]` table of a run config (see `crate::sim::autoscale`).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct AutoscaleFile {
    /// queue | kv-usage | concurrency, per replica that is up.
    metric: crate::sim::autoscale::ScaleMetric,
    /// The metric's target per replica.
    target: f64,
    min_replicas: u32,
    max_replicas: u32,
    /// Seconds between evaluations (default 15, Kubernetes' HPA sync period).
    interval_s: Option<f64>,
    /// Seconds after a scaling step before scaling down (default 300, the HPA's
    /// scale-down stabilization window).
    cooldown_s: Option<f64>,
    /// Start-up of a new replica, s (default: perf_model/startup.toml for the model's
    /// weights).
    startup_s: Option<f64>,
}

impl AutoscaleFile {
    /// The policy, for replicas whose weights weigh `weight_bytes`.
    fn policy(
        &self,
        weight_bytes: f64,
        paths: &DataPaths,
    ) -> Result<crate::sim::autoscale::AutoscalePolicy> {
        use crate::units::SimDuration;
        let secs = |key: &str, v: Option<f64>, default: f64| -> Result<SimDuration> {
            let s = v.unwrap_or(default);
            if !(s.is_finite() && (0.0..=1e9).contains(&s)) {
                anyhow::bail!("[autoscale] {key} must be a number of seconds in [0, 1e9], got {s}");
            }
            Ok(SimDuration::from_secs_f64(s))
        };
        let startup = match self.startup_s {
            Some(_) => secs("startup-s", self.startup_s, 0.0)?,
            None => crate::startup::Startup::load(paths)?.restart(weight_bytes),
        };
        Ok(crate::sim::autoscale::AutoscalePolicy {
            metric: self.metric,
            target: self.target,
            min_replicas: self.min_replicas,
            max_replicas: self.max_replicas,
            interval: secs("interval-s", self.interval_s, 15.0)?,
            cooldown: secs("cooldown-s", self.cooldown_s, 300.0)?,
            startup,
        }
        .checked()?)
    }
}

/// A group of identical replicas: `count` of them with `role`, their `[deployment]` and
/// `[engine]` keys overriding the file's top-level tables.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ReplicaGroup {
    count: Option<u32>,
    role: Option<ReplicaRole>,
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

fn short(name: &str) -> String {
    name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase()
}

/// Run `servesim simulate`.
/// What `simulate` computed: the run's result and what the printout names.
#[derive(Debug)]
pub struct SimulateOutcome {
    /// The run (with every request's record and time-series row when asked for).
    pub result: crate::simulate::RunResult,
    /// The run's name (the output folder's default name).
    pub run_name: String,
    /// Where the files went (None with `--no-output`).
    pub output_dir: Option<PathBuf>,
    /// Each replica group: count, role, setup.
    pub setups: Vec<(u32, ReplicaRole, ReplicaSetup)>,
}

/// Run `servesim simulate` and print its summary in `--format`.
pub fn run(args: SimulateArgs, paths: &DataPaths) -> Result<()> {
    let format = args.format;
    let out = simulate(args, paths, false)?;
    print_outcome(&out, format)
}

/// `servesim simulate` without printing: writes the run's files unless `--no-output`,
/// and keeps every request's record and time-series row in the result when
/// `keep_records` (the Python package's route).
pub fn simulate(
    mut args: SimulateArgs,
    paths: &DataPaths,
    keep_records: bool,
) -> Result<SimulateOutcome> {
    let mut groups = Vec::new();
    let mut autoscale = None;
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut file: ConfigFile =
            toml::from_str(&text).map_err(|e| crate::error::toml_error(path, &text, &e))?;
        // Paths in the file are relative to its folder.
        for p in [
            &mut file.run.trace,
            &mut file.run.output_dir,
            &mut file.run.failures,
        ]
        .into_iter()
        .flatten()
        {
            *p = crate::paths::relative_to_config(path, p);
        }
        args.run.merge_from(file.run);
        args.deployment.merge_from(file.deployment);
        args.engine.merge_from(file.engine);
        groups = file.replica_groups;
        autoscale = file.autoscale;
    }
    if let Some(a) = &autoscale {
        if !groups.is_empty()
            || args.run.num_replicas.is_some()
            || args.run.num_prefill_replicas.is_some()
        {
            anyhow::bail!(
                "[autoscale] sets the number of replicas (min-replicas to max-replicas of one deployment): drop num-replicas, replica groups and disaggregation"
            );
        }
        args.run.num_replicas = Some(a.max_replicas.max(1));
    }
    let run = &args.run;
    if groups.is_empty() {
        groups = match (run.num_prefill_replicas, run.num_decode_replicas) {
            (None, None) => vec![ReplicaGroup {
                count: run.num_replicas,
                ..ReplicaGroup::default()
            }],
            (Some(p), Some(d)) => vec![
                ReplicaGroup {
                    count: Some(p),
                    role: Some(ReplicaRole::Prefill),
                    ..ReplicaGroup::default()
                },
                ReplicaGroup {
                    count: Some(d),
                    role: Some(ReplicaRole::Decode),
                    ..ReplicaGroup::default()
                },
            ],
            _ => anyhow::bail!(
                "disaggregated serving needs both --num-prefill-replicas and --num-decode-replicas"
            ),
        };
    }
    // Each group: its own keys first, then the run's (flags over file).
    let mut setups = Vec::new();
    for g in &groups {
        let mut dep = g.deployment.clone();
        dep.merge_from(args.deployment.clone());
        let mut eng = g.engine.clone();
        eng.merge_from(args.engine.clone());
        let deployment = Deployment::resolve(&dep.request_for(&eng), paths)?;
        let setup = ReplicaSetup::new(deployment, &eng.overrides(), paths)?;
        setups.push((g.count.unwrap_or(1), g.role.unwrap_or_default(), setup));
    }
    // The cluster as a library value; everything below runs from it.
    let cluster = ClusterSpec {
        groups: setups
            .iter()
            .map(|(count, role, setup)| crate::cluster::ReplicaGroup {
                count: *count,
                role: *role,
                setup: setup.clone(),
            })
            .collect(),
        route: run.route.unwrap_or_default(),
        kv_link: run.kv_transfer_link.unwrap_or_default(),
    };
    let weight_bytes = cluster.weight_bytes_per_replica();
    let replicas = cluster.nominal_replicas()?;
    let setup = setups[0].2.clone();
    let fleet_price = fleet_price(&args.run, &setups)?;

    let trace_path = run
        .trace
        .clone()
        .unwrap_or_else(|| paths.traces.join(DEFAULT_TRACE));
    let trace_opts = TraceOptions {
        time_scale: run.time_scale.unwrap_or(1.0),
        rate_scale: run.rate_scale.unwrap_or(1.0),
        max_requests: run.max_requests,
        time_window: run.time_window.as_deref().map(parse_window).transpose()?,
        seed: run.seed.unwrap_or(0),
        ..TraceOptions::default()
    };
    let reader = open_trace(&trace_path, &trace_opts)?;
    let router = cluster.router();
    let kv_link = cluster.kv_transfer_link();
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
    let slo = Slo {
        ttft_s: run.slo_ttft_s,
        tpot_s: run.slo_tpot_s,
    }
    .checked()?;
    if run.slo_window_s.is_some() && slo.ttft_s.is_none() && slo.tpot_s.is_none() {
        anyhow::bail!("--slo-window-s needs an SLO: give --slo-ttft-s and/or --slo-tpot-s");
    }
    if run.slo_window_target.is_some() && run.slo_window_s.is_none() {
        anyhow::bail!("--slo-window-target needs --slo-window-s");
    }
    let opts = RunOptions {
        slo,
        fleet_price,
        slo_window: run.slo_window_s.map(|w| {
            (
                w,
                run.slo_window_target.unwrap_or(DEFAULT_SLO_WINDOW_TARGET),
            )
        }),
        output_dir: output_dir.clone(),
        progress: std::io::stderr().is_terminal(),
        kv_transfer_link: kv_link,
        api_server: setups
            .first()
            .map(|s| s.2.deployment.stack.api_server.clone()),
        clients: client_policy(run)?,
        failures: failure_plan(run, &weight_bytes, paths)?,
        autoscale: autoscale
            .as_ref()
            .map(|a| a.policy(weight_bytes[0], paths))
            .transpose()?,
        keep_records,
    };
    // A closed-loop recording (vLLM's client with no rate limit and a cap) replays as
    // one unless the command line says how requests enter.
    let recorded_clients = match (run.concurrency, run.max_concurrency) {
        (None, None) => reader.closed_loop_clients(),
        _ => None,
    };
    if let Some(c) = recorded_clients {
        eprintln!(
            "note: {} was recorded by a closed loop of {c} clients (request rate inf, max_concurrency {c}): simulated as one; --concurrency or --max-concurrency overrides",
            trace_path.display()
        );
    }
    let source = request_source(run, recorded_clients, Box::new(reader))?;
    let mut result = run_sim(replicas, router, source, &opts)?;
    if let Some(n) = run.replications {
        let block_s = run.bootstrap_block_s.unwrap_or(60.0);
        let noise = crate::replicate::RunNoise::load(paths)?;
        let requests: Vec<crate::trace::Request> =
            open_trace(&trace_path, &trace_opts)?.collect::<crate::error::Result<_>>()?;
        let quiet = RunOptions {
            output_dir: None,
            progress: false,
            ..opts.clone()
        };
        let one = |reqs: Vec<crate::trace::Request>, (p, d): (f64, f64)| {
            let replicas = cluster.replicas(&|l| {
                std::sync::Arc::new(crate::replicate::Scaled {
                    inner: l.clone(),
                    prefill: p,
                    decode: d,
                })
            })?;
            let source = request_source(run, recorded_clients, Box::new(reqs.into_iter().map(Ok)))?;
            Ok(run_sim(replicas, cluster.router(), source, &quiet)?.summary)
        };
        let jobs = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let reps = crate::replicate::replicate(
            &requests,
            n,
            block_s,
            &noise,
            run.seed.unwrap_or(0),
            jobs,
            &one,
        )?;
        result.summary.intervals = Some(crate::replicate::intervals(
            &result.summary,
            &reps,
            block_s,
            &noise,
        ));
        if let Some(dir) = &output_dir {
            crate::report::write_json(&dir.join("summary.json"), &result.summary)?;
        }
    } else if run.bootstrap_block_s.is_some() {
        anyhow::bail!("--bootstrap-block-s needs --replications");
    }

    #[derive(serde::Serialize)]
    struct Group<'a> {
        count: u32,
        role: ReplicaRole,
        deployment: crate::deployment::DeploymentSummary,
        engine: &'a crate::engine::EngineConfig,
        latency_model: String,
        memory: &'a crate::memory::MemoryPlan,
    }
    #[derive(serde::Serialize)]
    struct Resolved<'a> {
        run_name: &'a str,
        trace: String,
        route: RoutePolicy,
        replica_groups: Vec<Group<'a>>,
    }
    let resolved = Resolved {
        run_name: &run_name,
        trace: trace_path.display().to_string(),
        route: run.route.unwrap_or_default(),
        replica_groups: setups
            .iter()
            .map(|(count, role, s)| Group {
                count: *count,
                role: *role,
                deployment: s.deployment.summary(),
                engine: &s.engine,
                latency_model: s.latency.describe(),
                memory: &s.memory,
            })
            .collect(),
    };
    if let Some(dir) = &output_dir {
        crate::report::write_json(&dir.join("config.json"), &resolved)?;
        let run = crate::report::run_data::RunData::load(dir)?;
        crate::report::html::write_report(std::slice::from_ref(&run), dir)?;
    }
    Ok(SimulateOutcome {
        result,
        run_name,
        output_dir,
        setups,
    })
}

/// How the trace's requests enter the simulation: closed loop (`--concurrency`, or the
/// `recorded_clients` of a closed-loop recording when no flag says), capped open loop
/// (`--max-concurrency`) or open loop.
fn request_source<'a>(
    run: &RunArgs,
    recorded_clients: Option<u32>,
    requests: Box<dyn Iterator<Item = crate::error::Result<crate::trace::Request>> + 'a>,
) -> crate::error::Result<RequestSource<'a>> {
    let refuse = |msg: &str| Err(crate::error::Error::Config(msg.into()));
    Ok(match (run.concurrency, run.max_concurrency) {
        (Some(_), Some(_)) => {
            return refuse("--concurrency (closed loop) and --max-concurrency (capped open loop) exclude each other: give one")
        }
        (_, Some(0)) => return refuse("--max-concurrency must be at least 1"),
        (Some(concurrency), None) => RequestSource::ClosedLoop {
            requests,
            concurrency,
        },
        (None, Some(concurrency)) => RequestSource::CappedOpen {
            requests,
            concurrency,
        },
        (None, None) => match recorded_clients {
            Some(concurrency) => RequestSource::ClosedLoop {
                requests,
                concurrency,
            },
            None => RequestSource::Open(requests),
        },
    })
}
