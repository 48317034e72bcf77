//! `servesim plan`: maximum sustainable rate per configuration under an SLO, fewest
//! replicas for a target rate, cost ranking and the cost/latency Pareto frontier.

use super::sweep::{context, progress_bar};
use crate::paths::DataPaths;
use crate::plan::chart::{frontier_chart, pareto};
use crate::plan::exec;
use crate::plan::planner::{self, PlanOptions};
use crate::plan::search::{PlanSlo, SloTarget};
use crate::plan::table::{fmt_f, table_json, Kind};
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

    /// What a configuration costs (device prices, electricity).
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

/// The columns of `max_rate.csv`, with how [`PlanOutcome::json`] types them.
pub const MAX_RATE_COLUMNS: &[(&str, Kind)] = &[
    ("config_index", Kind::Num),
    ("hardware", Kind::Str),
    ("tensor_parallel_size", Kind::Num),
    ("pipeline_parallel_size", Kind::Num),
    ("num_replicas", Kind::Num),
    ("max_num_seqs", Kind::Num),
    ("max_num_batched_tokens", Kind::Num),
    ("enable_chunked_prefill", Kind::Bool),
    ("max_load", Kind::Num),
    ("max_rps", Kind::Num),
    ("capped", Kind::Bool),
    ("evaluations", Kind::Num),
    ("ttft_p99_s", Kind::Num),
    ("tpot_p99_s", Kind::Num),
    ("gpus", Kind::Num),
    ("cost_usd_per_hour", Kind::Num),
    ("usd_per_million_output_tokens", Kind::Num),
    ("usd_per_million_total_tokens", Kind::Num),
    ("status", Kind::Str),
    ("max_rps_ci95_lo", Kind::Num),
    ("max_rps_ci95_hi", Kind::Num),
];

/// The columns of `target.csv`, with how [`PlanOutcome::json`] types them.
pub const TARGET_COLUMNS: &[(&str, Kind)] = &[
    ("rank", Kind::Num),
    ("hardware", Kind::Str),
    ("tensor_parallel_size", Kind::Num),
    ("pipeline_parallel_size", Kind::Num),
    ("num_replicas", Kind::Num),
    ("max_num_seqs", Kind::Num),
    ("max_num_batched_tokens", Kind::Num),
    ("enable_chunked_prefill", Kind::Bool),
    ("gpus", Kind::Num),
    ("ttft_p99_s", Kind::Num),
    ("tpot_p99_s", Kind::Num),
    ("cost_usd_per_hour", Kind::Num),
    ("usd_per_million_output_tokens", Kind::Num),
    ("usd_per_million_total_tokens", Kind::Num),
    ("on_frontier", Kind::Bool),
];

/// A plan ready to run: the grid, the searches' options, the name.
pub struct PlanSetup {
    ctx: crate::plan::SweepContext,
    opts: PlanOptions,
    name: String,
    frontier_latency: FrontierLatency,
}

/// Read the grid and check the flags of `servesim plan` (nothing is run).
pub fn setup(args: &PlanArgs, paths: &DataPaths) -> Result<PlanSetup> {
    let ctx = context(&args.config, &args.cost, paths)?;
    let limits = crate::metrics::Slo {
        ttft_s: args.slo_ttft_s.or(ctx.config.slo_ttft_s),
        tpot_s: args.slo_tpot_s.or(ctx.config.slo_tpot_s),
    }
    .checked()?;
    let slo = PlanSlo {
        ttft_s: limits.ttft_s,
        tpot_s: limits.tpot_s,
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
    Ok(PlanSetup {
        ctx,
        opts,
        name,
        frontier_latency: args.frontier_latency,
    })
}

impl PlanSetup {
    /// The plan's name (the grid's, else `plan`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Run the searches, in parallel (a progress bar on a terminal's stderr).
    pub fn run(self) -> Result<PlanOutcome> {
        let work = self.ctx.grid.num_configs() * if self.opts.target_rps.is_some() { 2 } else { 1 };
        let pb = progress_bar(work, "searches");
        let tick = || pb.inc(1);
        let report = planner::plan(&self.ctx, &self.opts, &tick)?;
        pb.finish_and_clear();
        Ok(PlanOutcome {
            name: self.name,
            opts: self.opts,
            frontier_latency: self.frontier_latency,
            report,
        })
    }
}

/// A plan's searches, run: what `servesim plan` prints and writes.
pub struct PlanOutcome {
    name: String,
    opts: PlanOptions,
    frontier_latency: FrontierLatency,
    report: planner::PlanReport,
}

/// Why a configuration's maximum is not a plain number (empty when it is).
fn status(c: &planner::ConfigResult) -> String {
    if let Some(r) = &c.max.infeasible {
        format!("infeasible: {r}")
    } else if c.max.capped {
        "at least (search cap reached)".into()
    } else if c.max.load == 0.0 {
        "no rate meets the SLO".into()
    } else {
        String::new()
    }
}

impl PlanOutcome {
    /// The frontier's latency of a run.
    fn latency(&self, m: &PointMetrics) -> f64 {
        match self.frontier_latency {
            FrontierLatency::Ttft => m.ttft.p99,
            FrontierLatency::Tpot => m.tpot.p99,
        }
    }

    fn latency_name(&self) -> &'static str {
        match self.frontier_latency {
            FrontierLatency::Ttft => "p99 TTFT",
            FrontierLatency::Tpot => "p99 TPOT",
        }
    }

    /// The SLO in words.
    fn slo_text(&self) -> String {
        let slo = &self.opts.slo;
        let limit = |x: Option<f64>| x.map_or_else(|| "any".to_owned(), |v| format!("{v}"));
        match slo.target {
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
        }
    }

    /// The target searches' (latency, $/hour) points that have a price, and the
    /// indices of [`planner::PlanReport::targets`] on their Pareto frontier.
    fn target_frontier(&self) -> (Vec<(f64, f64)>, Vec<usize>) {
        let priced: Vec<(usize, (f64, f64))> = self
            .report
            .targets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let m = &t.answer.as_ref()?.1;
                Some((i, (self.latency(m), m.cost_usd_per_hour()?)))
            })
            .collect();
        let pts: Vec<(f64, f64)> = priced.iter().map(|p| p.1).collect();
        let on_front = pareto(&pts).into_iter().map(|k| priced[k].0).collect();
        (pts, on_front)
    }

    /// `max_rate.csv`'s rows, by configuration index.
    pub fn max_rate_rows(&self) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        for &i in &planner::rank_configs(&self.report.configs) {
            let c = &self.report.configs[i];
            let m = c.max.at_max.as_ref();
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
                status(c),
                c.max_rps_ci95.map(|v| fmt_f(v[0])).unwrap_or_default(),
                c.max_rps_ci95.map(|v| fmt_f(v[1])).unwrap_or_default(),
            ]);
        }
        rows.sort_by_key(|r| r[0].parse::<usize>().unwrap_or(usize::MAX));
        rows
    }

    /// `target.csv`'s rows, by rank (None without `--target-rps`).
    pub fn target_rows(&self) -> Option<Vec<Vec<String>>> {
        self.opts.target_rps?;
        let (_, on_front) = self.target_frontier();
        let mut rows = Vec::new();
        for (rank, &i) in planner::rank_targets(&self.report.targets)
            .iter()
            .enumerate()
        {
            let t = &self.report.targets[i];
            let m = t.answer.as_ref().map(|a| &a.1);
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
                on_front.contains(&i).to_string(),
            ]);
        }
        Some(rows)
    }

    /// The plan as JSON: `name`, `slo` (its words), `tolerance`, `target_rps`,
    /// `headroom`, and the rows of `max_rate.csv` and `target.csv` (null without a
    /// target) as arrays of objects with numbers and booleans typed.
    pub fn json(&self) -> Result<String> {
        let cells =
            |rows: &[Vec<String>], columns| table_json(columns, rows.iter().map(Vec::as_slice));
        let max_rate = cells(&self.max_rate_rows(), MAX_RATE_COLUMNS);
        let target = match self.target_rows() {
            Some(rows) => cells(&rows, TARGET_COLUMNS),
            None => "null".into(),
        };
        Ok(format!(
            "{{\"name\": {}, \"slo\": {}, \"tolerance\": {}, \"target_rps\": {}, \"headroom\": {}, \"max_rate\": {max_rate}, \"target\": {target}}}",
            serde_json::to_string(&self.name)?,
            serde_json::to_string(&self.slo_text())?,
            serde_json::to_string(&self.opts.tolerance)?,
            serde_json::to_string(&self.opts.target_rps)?,
            self.opts.headroom,
        ))
    }

    /// Write `max_rate.csv`, `target.csv` (with a target) and `frontier.svg` into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        write_csv(
            &dir.join("max_rate.csv"),
            &column_names(MAX_RATE_COLUMNS),
            &self.max_rate_rows(),
        )?;
        let lat_name = self.latency_name();
        if let (Some(target), Some(rows)) = (self.opts.target_rps, self.target_rows()) {
            write_csv(
                &dir.join("target.csv"),
                &column_names(TARGET_COLUMNS),
                &rows,
            )?;
            frontier_chart(
                &dir.join("frontier.svg"),
                &format!("cost against {lat_name} at {target} req/s"),
                &format!("{lat_name} (s)"),
                "$ per hour",
                &self.target_frontier().0,
            )?;
        } else {
            let mut pts = Vec::new();
            for c in &self.report.configs {
                if let Some(m) = &c.max.at_max {
                    if let Some(cost) = m.usd_per_million_output_tokens() {
                        pts.push((self.latency(m), cost));
                    }
                }
            }
            frontier_chart(
                &dir.join("frontier.svg"),
                &format!("cost against {lat_name} at each maximum rate"),
                &format!("{lat_name} (s)"),
                "$ per million output tokens",
                &pts,
            )?;
        }
        Ok(())
    }

    /// Print the ranked tables.
    fn print(&self) {
        println!(
            "{}: {}; bisection tolerance {:.1}%",
            self.name,
            self.slo_text(),
            self.opts.tolerance * 100.0
        );
        // Maximum rate per configuration, ranked by $ per million output tokens.
        println!(
            "\nmaximum sustainable rate per configuration (ranked by $/M output tokens at that rate):"
        );
        println!(
            "{:>4}  {:<48} {:>10} {:>10} {:>10} {:>9} {:>9}",
            "rank", "configuration", "max req/s", "p99 TTFT", "p99 TPOT", "$/hour", "$/Mtok"
        );
        for (rank, &i) in planner::rank_configs(&self.report.configs)
            .iter()
            .enumerate()
        {
            let c = &self.report.configs[i];
            let m = c.max.at_max.as_ref();
            let status = status(c);
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
                    _ if status.is_empty()
                        && m.is_some_and(|m| m.price_usd_per_gpu_hour.is_none()) =>
                    {
                        "(no price: not ranked by cost)".to_string()
                    }
                    _ => status.chars().take(90).collect(),
                }
            );
        }
        let Some(target) = self.opts.target_rps else {
            return;
        };
        let headroom = self.opts.headroom;
        println!(
            "\nfewest replicas for {target} req/s{} (ranked by $/hour):",
            if headroom > 0 {
                format!(
                    " with the SLO met while {} of them {} down",
                    headroom,
                    if headroom == 1 { "is" } else { "are" }
                )
            } else {
                String::new()
            }
        );
        println!(
            "{:>4}  {:<48} {:>5} {:>10} {:>10} {:>9} {:>9} {:>8}",
            "rank", "configuration", "GPUs", "p99 TTFT", "p99 TPOT", "$/hour", "$/Mtok", "frontier"
        );
        let (_, on_front) = self.target_frontier();
        for (rank, &i) in planner::rank_targets(&self.report.targets)
            .iter()
            .enumerate()
        {
            let t = &self.report.targets[i];
            let m = t.answer.as_ref().map(|a| &a.1);
            let label = if t.answer.is_some() {
                config_label(&t.config)
            } else {
                format!(
                    "{} (not reached with <= {} replicas)",
                    config_label(&t.config),
                    self.opts.max_replicas
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
                if on_front.contains(&i) { "*" } else { "" },
                if m.is_some_and(|m| m.price_usd_per_gpu_hour.is_none()) {
                    "  (no price: not ranked by cost)"
                } else {
                    ""
                }
            );
        }
    }

    /// Print the lines under the tables, once the files are in `dir`.
    fn print_footer(&self, dir: &Path) {
        for line in self.stack_notes() {
            println!("{line}");
        }
        if self.opts.target_rps.is_some() {
            println!(
                "(* = on the Pareto frontier of $/hour against {})",
                self.latency_name()
            );
            println!(
                "\nwrote {}/{{max_rate.csv,target.csv,frontier.svg}}",
                dir.display()
            );
        } else {
            println!("\nwrote {}/{{max_rate.csv,frontier.svg}}", dir.display());
        }
    }

    /// One line per hardware whose configurations ran a serving stack built for
    /// another vendor's GPUs (the `note` column of the CSV files says it per row).
    fn stack_notes(&self) -> Vec<String> {
        let mut seen = std::collections::BTreeMap::new();
        for c in &self.report.configs {
            if let Some(n) = c.max.at_max.as_ref().and_then(|m| m.stack_note.clone()) {
                seen.entry(c.config.hardware.clone()).or_insert(n);
            }
        }
        seen.into_iter()
            .map(|(hw, n)| format!("note: {hw}: {n}"))
            .collect()
    }
}

fn column_names(columns: &[(&'static str, Kind)]) -> Vec<&'static str> {
    columns.iter().map(|c| c.0).collect()
}

/// Run `servesim plan`.
pub fn run(args: PlanArgs, paths: &DataPaths) -> Result<()> {
    let setup = setup(&args, paths)?;
    let dir = args
        .output_dir
        .unwrap_or_else(|| Path::new("output").join(format!("plan-{}", setup.name())));
    std::fs::create_dir_all(&dir)?;
    let outcome = setup.run()?;
    outcome.print();
    outcome.write(&dir)?;
    outcome.print_footer(&dir);
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
