//! `servesim plan`: maximum sustainable rate per configuration under an SLO, fewest
//! replicas for a target rate, cost ranking and the cost/latency Pareto frontier.

use super::sweep::{context, progress_bar};
use crate::paths::DataPaths;
use crate::plan::chart::{frontier_chart, pareto};
use crate::plan::exec;
use crate::plan::planner::{self, PlanOptions};
use crate::plan::search::{PlanSlo, SloTarget};
use crate::plan::table::fmt_f;
use crate::plan::PointMetrics;
use anyhow::Result;
use clap::Args;
use std::path::{Path, PathBuf};

/// Latency axis of the frontier.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FrontierLatency {
    /// p99 TTFT.
    #[default]
    Ttft,
    /// p99 TPOT.
    Tpot,
}

/// Arguments of `servesim plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// TOML grid and workload, as for `servesim sweep` (the workload's load list only
    /// gives the starting rate: scale 1 for a trace, the first rate of a generator).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// TTFT limit, s (default: the config's slo-ttft-s).
    #[arg(long, value_name = "SECONDS")]
    pub slo_ttft_s: Option<f64>,

    /// TPOT limit, s (default: the config's slo-tpot-s).
    #[arg(long, value_name = "SECONDS")]
    pub slo_tpot_s: Option<f64>,

    /// Judge the SLO at this percentile of TTFT and TPOT: 50, 90, 95, 99 or 99.9.
    #[arg(
        long,
        value_name = "P",
        default_value_t = 99.0,
        conflicts_with = "slo_attainment"
    )]
    pub slo_percentile: f64,

    /// Judge the SLO by the fraction of requests meeting both limits (e.g. 0.99)
    /// instead of a percentile.
    #[arg(long, value_name = "FRACTION")]
    pub slo_attainment: Option<f64>,

    /// Stop bisecting when the bracket is this wide relative to its lower end.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.02)]
    pub tolerance: f64,

    /// Target rate, requests per second: find the fewest replicas of each configuration.
    #[arg(long, value_name = "RPS")]
    pub target_rps: Option<f64>,

    /// Most replicas tried for the target.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub max_replicas: u32,

    /// Also run N replications of every maximum-rate search (block bootstrap of the
    /// trace or a reseeded generator, run-to-run speed variation) and report each
    /// maximum with its 95 % interval.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub replications: u32,

    /// Bootstrap block length, s, with --replications.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub bootstrap_block_s: f64,

    /// Size the fleet for the target so that the SLO still holds with this many
    /// replicas down (failed or restarting); their GPUs count in the cost.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub headroom: u32,

    /// Latency axis of the frontier.
    #[arg(long, value_enum, default_value_t = FrontierLatency::Ttft)]
    pub frontier_latency: FrontierLatency,

    /// Threads. Default: the available cores.
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,

    /// Output folder. Default: output/plan-<name>/.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    #[command(flatten)]
    pub cost: super::sweep::CostArgs,
}

fn money(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.2}"))
}

fn config_label(c: &crate::plan::grid::ConfigPoint) -> String {
    let o = |v: Option<String>| v.unwrap_or_else(|| "default".into());
    format!(
        "{} TP{} PP{} x{} seqs={} mbt={} chunked={}",
        c.hardware,
        c.tp,
        c.pp,
        c.replicas,
        o(c.max_num_seqs.map(|v| v.to_string())),
        o(c.max_num_batched_tokens.map(|v| v.to_string())),
        o(c.enable_chunked_prefill.map(|v| v.to_string()))
    )
}

fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(header)?;
    for r in rows {
        w.write_record(r)?;
    }
    w.flush()?;
    Ok(())
}

/// Run `servesim plan`.
pub fn run(args: PlanArgs, paths: &DataPaths) -> Result<()> {
    let ctx = context(&args.config, &args.cost, paths)?;
    crate::metrics::Slo {
        ttft_s: args.slo_ttft_s.or(ctx.config.slo_ttft_s),
        tpot_s: args.slo_tpot_s.or(ctx.config.slo_tpot_s),
    }
    .checked()?;
    let slo = PlanSlo {
        ttft_s: args.slo_ttft_s.or(ctx.config.slo_ttft_s),
        tpot_s: args.slo_tpot_s.or(ctx.config.slo_tpot_s),
        target: match args.slo_attainment {
            Some(a) => SloTarget::Attainment(a),
            None => SloTarget::Percentile(args.slo_percentile),
        },
    };
    if !(args.tolerance > 0.0 && args.tolerance < 1.0) {
        anyhow::bail!("--tolerance must be in (0, 1), got {}", args.tolerance);
    }
    if let Some(t) = args.target_rps {
        if !(t.is_finite() && t > 0.0) {
            anyhow::bail!("--target-rps must be positive, got {t}");
        }
    }
    let opts = PlanOptions {
        slo,
        tolerance: args.tolerance,
        target_rps: args.target_rps,
        jobs: args.jobs.unwrap_or_else(exec::default_jobs),
        max_replicas: args.max_replicas.max(1),
        headroom: args.headroom,
        replications: args.replications,
        bootstrap_block_s: args.bootstrap_block_s,
    };
    if args.headroom > 0 && args.target_rps.is_none() {
        anyhow::bail!("--headroom sizes the fleet for --target-rps: give a target");
    }
    if args.headroom >= opts.max_replicas {
        anyhow::bail!(
            "--headroom {} leaves no replica to serve within --max-replicas {}",
            args.headroom,
            opts.max_replicas
        );
    }
    let name = ctx.config.name.clone().unwrap_or_else(|| "plan".into());
    let dir = args
        .output_dir
        .unwrap_or_else(|| Path::new("output").join(format!("plan-{name}")));
    std::fs::create_dir_all(&dir)?;
    let work = ctx.grid.num_configs() * if args.target_rps.is_some() { 2 } else { 1 };
    let pb = progress_bar(work, "searches");
    let tick = || pb.inc(1);
    let report = planner::plan(&ctx, &opts, &tick)?;
    pb.finish_and_clear();

    let limit = |x: Option<f64>| x.map_or_else(|| "any".to_owned(), |v| format!("{v}"));
    let slo_text = match slo.target {
        SloTarget::Percentile(p) => format!(
            "p{p} TTFT <= {} s, p{p} TPOT <= {} s",
            limit(slo.ttft_s),
            limit(slo.tpot_s)
        ),
        SloTarget::Attainment(a) => format!(
            ">= {:.1}% of requests within TTFT {} s and TPOT {} s",
            a * 100.0,
            limit(slo.ttft_s),
            limit(slo.tpot_s)
        ),
    };
    println!(
        "{name}: {slo_text}; bisection tolerance {:.1}%",
        args.tolerance * 100.0
    );
    let latency = |m: &PointMetrics| match args.frontier_latency {
        FrontierLatency::Ttft => m.ttft.p99,
        FrontierLatency::Tpot => m.tpot.p99,
    };
    let lat_name = match args.frontier_latency {
        FrontierLatency::Ttft => "p99 TTFT",
        FrontierLatency::Tpot => "p99 TPOT",
    };

    // Maximum rate per configuration, ranked by $ per million output tokens.
    println!(
        "\nmaximum sustainable rate per configuration (ranked by $/M output tokens at that rate):"
    );
    println!(
        "{:>4}  {:<48} {:>10} {:>10} {:>10} {:>9} {:>9}",
        "rank", "configuration", "max req/s", "p99 TTFT", "p99 TPOT", "$/hour", "$/Mtok"
    );
    let mut rows = Vec::new();
    for (rank, &i) in planner::rank_configs(&report.configs).iter().enumerate() {
        let c = &report.configs[i];
        let m = c.max.at_max.as_ref();
        let status = if let Some(r) = &c.max.infeasible {
            format!("infeasible: {r}")
        } else if c.max.capped {
            "at least (search cap reached)".into()
        } else if c.max.load == 0.0 {
            "no rate meets the SLO".into()
        } else {
            String::new()
        };
        println!(
            "{:>4}  {:<48} {:>10} {:>10} {:>10} {:>9} {:>9} {}",
            rank + 1,
            config_label(&c.config),
            format!("{:.2}", c.max_rps),
            m.map_or("-".into(), |m| format!("{:.3}", m.ttft.p99)),
            m.map_or("-".into(), |m| format!("{:.4}", m.tpot.p99)),
            money(m.and_then(PointMetrics::cost_usd_per_hour)),
            money(m.and_then(PointMetrics::usd_per_million_output_tokens)),
            match (&c.max_rps_ci95, status.is_empty()) {
                (Some([lo, hi]), true) => format!("95% interval {lo:.2}–{hi:.2} req/s"),
                _ if status.is_empty() && m.is_some_and(|m| m.price_usd_per_gpu_hour.is_none()) => {
                    "(no price: not ranked by cost)".to_string()
                }
                _ => status.chars().take(90).collect(),
            }
        );
        let [seqs, mbt, chunked] = knob_cells(&c.config);
        rows.push(vec![
            c.config.index.to_string(),
            c.config.hardware.clone(),
            c.config.tp.to_string(),
            c.config.pp.to_string(),
            c.config.replicas.to_string(),
            seqs,
            mbt,
            chunked,
            fmt_f(c.max.load),
            fmt_f(c.max_rps),
            c.max.capped.to_string(),
            c.max.evaluations.to_string(),
            m.map(|m| fmt_f(m.ttft.p99)).unwrap_or_default(),
            m.map(|m| fmt_f(m.tpot.p99)).unwrap_or_default(),
            m.map(|m| m.gpus.to_string()).unwrap_or_default(),
            m.and_then(PointMetrics::cost_usd_per_hour)
                .map(fmt_f)
                .unwrap_or_default(),
            m.and_then(PointMetrics::usd_per_million_output_tokens)
                .map(fmt_f)
                .unwrap_or_default(),
            m.and_then(PointMetrics::usd_per_million_total_tokens)
                .map(fmt_f)
                .unwrap_or_default(),
            status,
            c.max_rps_ci95.map(|v| fmt_f(v[0])).unwrap_or_default(),
            c.max_rps_ci95.map(|v| fmt_f(v[1])).unwrap_or_default(),
        ]);
    }
    rows.sort_by_key(|r| r[0].parse::<usize>().unwrap_or(usize::MAX));
    write_csv(
        &dir.join("max_rate.csv"),
        &[
            "config_index",
            "hardware",
            "tensor_parallel_size",
            "pipeline_parallel_size",
            "num_replicas",
            "max_num_seqs",
            "max_num_batched_tokens",
            "enable_chunked_prefill",
            "max_load",
            "max_rps",
            "capped",
            "evaluations",
            "ttft_p99_s",
            "tpot_p99_s",
            "gpus",
            "cost_usd_per_hour",
            "usd_per_million_output_tokens",
            "usd_per_million_total_tokens",
            "status",
            "max_rps_ci95_lo",
            "max_rps_ci95_hi",
        ],
        &rows,
    )?;

    let mut frontier_pts = Vec::new();
    if let Some(target) = args.target_rps {
        println!(
            "\nfewest replicas for {target} req/s{} (ranked by $/hour):",
            if args.headroom > 0 {
                format!(
                    " with the SLO met while {} of them {} down",
                    args.headroom,
                    if args.headroom == 1 { "is" } else { "are" }
                )
            } else {
                String::new()
            }
        );
        println!(
            "{:>4}  {:<48} {:>5} {:>10} {:>10} {:>9} {:>9} {:>8}",
            "rank", "configuration", "GPUs", "p99 TTFT", "p99 TPOT", "$/hour", "$/Mtok", "frontier"
        );
        let priced: Vec<(usize, (f64, f64))> = report
            .targets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let m = &t.answer.as_ref()?.1;
                Some((i, (latency(m), m.cost_usd_per_hour()?)))
            })
            .collect();
        let pts: Vec<(f64, f64)> = priced.iter().map(|p| p.1).collect();
        let on_front: Vec<usize> = pareto(&pts).into_iter().map(|k| priced[k].0).collect();
        frontier_pts = pts;
        let mut rows = Vec::new();
        for (rank, &i) in planner::rank_targets(&report.targets).iter().enumerate() {
            let t = &report.targets[i];
            let m = t.answer.as_ref().map(|a| &a.1);
            let front = on_front.contains(&i);
            let label = if t.answer.is_some() {
                config_label(&t.config)
            } else {
                format!(
                    "{} (not reached with <= {} replicas)",
                    config_label(&t.config),
                    opts.max_replicas
                )
            };
            println!(
                "{:>4}  {:<48} {:>5} {:>10} {:>10} {:>9} {:>9} {:>8}{}",
                rank + 1,
                label,
                m.map_or("-".into(), |m| m.gpus.to_string()),
                m.map_or("-".into(), |m| format!("{:.3}", m.ttft.p99)),
                m.map_or("-".into(), |m| format!("{:.4}", m.tpot.p99)),
                money(m.and_then(PointMetrics::cost_usd_per_hour)),
                money(m.and_then(PointMetrics::usd_per_million_output_tokens)),
                if front { "*" } else { "" },
                if m.is_some_and(|m| m.price_usd_per_gpu_hour.is_none()) {
                    "  (no price: not ranked by cost)"
                } else {
                    ""
                }
            );
            let [seqs, mbt, chunked] = knob_cells(&t.config);
            rows.push(vec![
                (rank + 1).to_string(),
                t.config.hardware.clone(),
                t.config.tp.to_string(),
                t.config.pp.to_string(),
                t.answer
                    .as_ref()
                    .map(|a| a.0.to_string())
                    .unwrap_or_default(),
                seqs,
                mbt,
                chunked,
                m.map(|m| m.gpus.to_string()).unwrap_or_default(),
                m.map(|m| fmt_f(m.ttft.p99)).unwrap_or_default(),
                m.map(|m| fmt_f(m.tpot.p99)).unwrap_or_default(),
                m.and_then(PointMetrics::cost_usd_per_hour)
                    .map(fmt_f)
                    .unwrap_or_default(),
                m.and_then(PointMetrics::usd_per_million_output_tokens)
                    .map(fmt_f)
                    .unwrap_or_default(),
                m.and_then(PointMetrics::usd_per_million_total_tokens)
                    .map(fmt_f)
                    .unwrap_or_default(),
                front.to_string(),
            ]);
        }
        write_csv(
            &dir.join("target.csv"),
            &[
                "rank",
                "hardware",
                "tensor_parallel_size",
                "pipeline_parallel_size",
                "num_replicas",
                "max_num_seqs",
                "max_num_batched_tokens",
                "enable_chunked_prefill",
                "gpus",
                "ttft_p99_s",
                "tpot_p99_s",
                "cost_usd_per_hour",
                "usd_per_million_output_tokens",
                "usd_per_million_total_tokens",
                "on_frontier",
            ],
            &rows,
        )?;
        frontier_chart(
            &dir.join("frontier.svg"),
            &format!("cost against {lat_name} at {target} req/s"),
            &format!("{lat_name} (s)"),
            "$ per hour",
            &frontier_pts,
        )?;
        println!("(* = on the Pareto frontier of $/hour against {lat_name})");
        println!(
            "\nwrote {}/{{max_rate.csv,target.csv,frontier.svg}}",
            dir.display()
        );
    } else {
        for c in &report.configs {
            if let Some(m) = &c.max.at_max {
                if let Some(cost) = m.usd_per_million_output_tokens() {
                    frontier_pts.push((latency(m), cost));
                }
            }
        }
        frontier_chart(
            &dir.join("frontier.svg"),
            &format!("cost against {lat_name} at each maximum rate"),
            &format!("{lat_name} (s)"),
            "$ per million output tokens",
            &frontier_pts,
        )?;
        println!("\nwrote {}/{{max_rate.csv,frontier.svg}}", dir.display());
    }
    Ok(())
}

/// The optional engine knobs of a configuration as table cells (empty when unset).
fn knob_cells(c: &crate::plan::grid::ConfigPoint) -> [String; 3] {
    let cell = |v: Option<String>| v.unwrap_or_default();
    [
        cell(c.max_num_seqs.map(|v| v.to_string())),
        cell(c.max_num_batched_tokens.map(|v| v.to_string())),
        cell(c.enable_chunked_prefill.map(|v| v.to_string())),
    ]
}
