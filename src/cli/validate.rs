//! `servesim validate`: replay a measured benchmark through the simulator and report
//! the error per metric.

use super::args::{DeploymentArgs, EngineArgs, Merge};
use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;
use servesim::paths::DataPaths;
use servesim::perf::roofline::RooflineParams;
use servesim::report::table::Table;
use servesim::validate::stats::ErrorStats;
use servesim::validate::{self, InputFormat, Measurement, Metric, OpenOptions, Validation};
use std::path::{Path, PathBuf};

/// Options of a validation (also the top-level keys of a `--config` file).
#[derive(Args, Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ValidateOptions {
    /// Seed of regenerated arrivals (vLLM result files without send times).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Replicas to simulate. Default: the run's data-parallel size, else 1.
    #[arg(long, value_name = "N")]
    pub num_replicas: Option<u32>,

    /// Argonne tables: the framework whose rows are validated. Default: vLLM.
    #[arg(long, value_name = "NAME")]
    pub framework: Option<String>,

    /// Tables: validate only groups whose table names contain these (case-insensitive)
    /// substrings, as `model=…` or `hardware=…`, or whose simulated tensor-parallel size
    /// is `tp=N`; repeatable.
    #[arg(long = "select", value_name = "KEY=VALUE")]
    #[serde(default)]
    pub select: Vec<String>,

    /// Output folder. Default: output/validate-<name>/.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,

    /// Name of the validation. Default: from the input's file or folder name.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Roofline parameter file to use instead of the per-GPU selection
    /// (perf_model/kernel_efficiency/<gpu>.toml, derived from kernel measurements, else
    /// perf_model/roofline.toml); for example perf_model/roofline.toml for the generic
    /// efficiencies, or perf_model/calibrated/<gpu>.toml for the in-sample fit on
    /// validation data.
    #[arg(long, value_name = "FILE")]
    pub roofline_params: Option<PathBuf>,
}

impl Merge for ValidateOptions {
    fn merge_from(&mut self, file: Self) {
        fn fill<T>(slot: &mut Option<T>, v: Option<T>) {
            if slot.is_none() {
                *slot = v;
            }
        }
        fill(&mut self.seed, file.seed);
        fill(&mut self.num_replicas, file.num_replicas);
        fill(&mut self.framework, file.framework);
        fill(&mut self.output_dir, file.output_dir);
        fill(&mut self.name, file.name);
        fill(&mut self.roofline_params, file.roofline_params);
        if self.select.is_empty() {
            self.select = file.select;
        }
    }
}

/// A `--config` file: options at the top level, `[deployment]` and `[engine]` tables.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ConfigFile {
    #[serde(flatten)]
    options: ValidateOptions,
    #[serde(default)]
    deployment: DeploymentArgs,
    #[serde(default)]
    engine: EngineArgs,
}

/// Arguments of `servesim validate`.
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// The measurement: a vLLM benchmark result .json, an LLMServingSim requests.jsonl
    /// (or its run folder, with meta.json), a per-request CSV with arrival/first-token/
    /// finish columns, an Argonne or Splitwise static-batch table, or a TensorRT-LLM
    /// offline throughput table (throughput_offline.csv).
    #[arg(value_name = "MEASUREMENT")]
    input: PathBuf,

    /// The input's format. Default: detected from the extension and header.
    #[arg(long, value_enum)]
    format: Option<InputFormat>,

    /// TOML file with the options below (top level), `[deployment]` and `[engine]`
    /// tables. Flags override it; settings recorded in the measurement fill the rest.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(flatten)]
    options: ValidateOptions,

    #[command(flatten)]
    deployment: DeploymentArgs,

    #[command(flatten)]
    engine: EngineArgs,
}

fn pct(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else {
        format!("{x:.1}")
    }
}

fn signed_pct(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else {
        format!("{x:+.1}")
    }
}

fn ms(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else {
        format!("{:.1}", x * 1e3)
    }
}

/// The per-metric table of one validation.
fn metric_table(v: &Validation) -> String {
    let mut t = Table::new(&[
        "metric (ms)",
        "meas mean",
        "sim mean",
        "meas p50",
        "sim p50",
        "meas p90",
        "sim p90",
        "meas p99",
        "sim p99",
        "median |err| %",
        "MAPE %",
        "bias %",
        "r",
    ]);
    for m in &v.metrics {
        let e = m.errors;
        t.row(vec![
            m.metric.label().into(),
            ms(m.measured.mean),
            ms(m.simulated.mean),
            ms(m.measured.p50),
            ms(m.simulated.p50),
            ms(m.measured.p90),
            ms(m.simulated.p90),
            ms(m.measured.p99),
            ms(m.simulated.p99),
            e.map_or("-".into(), |e| pct(e.median_abs_pct)),
            e.map_or("-".into(), |e| pct(e.mape_pct)),
            e.map_or("-".into(), |e| pct(e.bias_pct)),
            e.map_or("-".into(), |e| {
                if e.pearson_r.is_nan() {
                    "-".into()
                } else {
                    format!("{:.3}", e.pearson_r)
                }
            }),
        ]);
    }
    t.render()
}

/// One line per set: the figures the docs table shows.
#[derive(serde::Serialize)]
struct SetSummary {
    name: String,
    model: String,
    hardware: String,
    tensor_parallel_size: u32,
    rows: usize,
    e2e_median_abs_pct: f64,
    tpot_median_abs_pct: f64,
    ttft_median_abs_pct: f64,
    error: Option<String>,
}

fn summary_of(v: &Validation) -> SetSummary {
    SetSummary {
        name: v.name.clone(),
        model: v.deployment.model.clone(),
        hardware: v.deployment.hardware.clone(),
        tensor_parallel_size: v.deployment.tensor_parallel_size,
        rows: v.rows.keys.len(),
        e2e_median_abs_pct: v.median_abs_pct(Metric::E2e),
        tpot_median_abs_pct: v.median_abs_pct(Metric::Tpot),
        ttft_median_abs_pct: v.median_abs_pct(Metric::Ttft),
        error: None,
    }
}

fn print_notes(v: &Validation) {
    for n in &v.notes {
        println!("  note: {n}");
    }
}

/// The `--select` filters: `(key, lowercase value)` pairs that must all match.
struct Selector(Vec<(String, String)>);

impl Selector {
    /// Whether a group with these table names passes every filter.
    fn matches(&self, model: &str, hardware: &str, tp: u32) -> bool {
        self.0.iter().all(|(k, v)| match k.as_str() {
            "model" => model.to_ascii_lowercase().contains(v.as_str()),
            "hardware" => hardware.to_ascii_lowercase().contains(v.as_str()),
            _ => tp.to_string() == *v,
        })
    }
}

/// Parse `--select KEY=VALUE` filters (model, hardware, tp).
fn selector(select: &[String]) -> Result<Selector> {
    let mut filters = Vec::new();
    for s in select {
        let (k, v) = s
            .split_once('=')
            .with_context(|| format!("--select `{s}`: expected KEY=VALUE"))?;
        let k = k.trim().to_ascii_lowercase();
        if !matches!(k.as_str(), "model" | "hardware" | "tp") {
            anyhow::bail!("--select `{s}`: KEY must be model, hardware or tp");
        }
        filters.push((k, v.trim().to_ascii_lowercase()));
    }
    Ok(Selector(filters))
}

/// One line per offline-throughput set.
#[derive(serde::Serialize)]
struct ThroughputSetSummary {
    name: String,
    table_model: String,
    table_gpu: String,
    precision: String,
    model: String,
    hardware: String,
    tensor_parallel_size: u32,
    pipeline_parallel_size: u32,
    num_replicas: u32,
    rows: usize,
    output_throughput_errors: Option<ErrorStats>,
    error: Option<String>,
}

/// Validate an offline throughput table: one folder per group, `summary.json`, and a
/// table with per-group and overall errors.
fn run_throughput(
    input: &Path,
    table: &validate::ThroughputTable,
    settings: &validate::Settings,
    select: &Selector,
    out_dir: &Path,
    paths: &DataPaths,
) -> Result<()> {
    let results = validate::validate_throughput(table, settings, paths, |g| {
        select.matches(&g.key.model, &g.key.gpu, g.key.tp)
    });
    if results.is_empty() {
        anyhow::bail!(
            "no group of {} matches --select (groups: {})",
            input.display(),
            table
                .groups
                .iter()
                .map(|g| g.key.slug())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut t = Table::new(&[
        "set",
        "model",
        "hardware",
        "prec",
        "TP",
        "PP",
        "DP",
        "rows",
        "med|err| %",
        "MAPE %",
        "bias %",
    ]);
    let mut summaries = Vec::new();
    let (mut all_sim, mut all_meas) = (Vec::new(), Vec::new());
    let mut notes: Option<Vec<String>> = None;
    for (g, res) in results {
        let k = &g.key;
        let slug = k.slug();
        let mut s = ThroughputSetSummary {
            name: slug.clone(),
            table_model: k.model.clone(),
            table_gpu: k.gpu.clone(),
            precision: k.precision.label().into(),
            model: String::new(),
            hardware: String::new(),
            tensor_parallel_size: 0,
            pipeline_parallel_size: 0,
            num_replicas: 0,
            rows: g.rows.len(),
            output_throughput_errors: None,
            error: None,
        };
        match res {
            Ok(v) => {
                v.write(&out_dir.join(&slug))?;
                let d = &v.deployment;
                s.model = d.model.clone();
                s.hardware = d.hardware.clone();
                s.tensor_parallel_size = d.tensor_parallel_size;
                s.pipeline_parallel_size = d.pipeline_parallel_size;
                s.num_replicas = v.num_replicas;
                s.output_throughput_errors = v.metrics.first().and_then(|m| m.errors);
                if let Some((sim, meas)) = v.rows.pairs(Metric::OutputThroughput) {
                    all_sim.extend_from_slice(sim);
                    all_meas.extend_from_slice(meas);
                }
                // The notes every set shares are printed once below.
                notes = Some(match notes {
                    None => v.notes.clone(),
                    Some(n) => n.into_iter().filter(|x| v.notes.contains(x)).collect(),
                });
                let e = s.output_throughput_errors;
                t.row(vec![
                    slug,
                    s.model.clone(),
                    s.hardware.clone(),
                    s.precision.clone(),
                    s.tensor_parallel_size.to_string(),
                    s.pipeline_parallel_size.to_string(),
                    s.num_replicas.to_string(),
                    s.rows.to_string(),
                    e.map_or("-".into(), |e| pct(e.median_abs_pct)),
                    e.map_or("-".into(), |e| pct(e.mape_pct)),
                    e.map_or("-".into(), |e| signed_pct(e.bias_pct)),
                ]);
            }
            Err(e) => {
                t.row(vec![
                    slug,
                    format!("failed: {e}"),
                    String::new(),
                    s.precision.clone(),
                    k.tp.to_string(),
                    k.pp.to_string(),
                    String::new(),
                    s.rows.to_string(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]);
                s.error = Some(e.to_string());
            }
        }
        summaries.push(s);
    }
    let overall = ErrorStats::of(&all_sim, &all_meas);
    t.row(vec![
        "all".into(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        overall.count.to_string(),
        pct(overall.median_abs_pct),
        pct(overall.mape_pct),
        signed_pct(overall.bias_pct),
    ]);
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    #[derive(serde::Serialize)]
    struct Summary<'a> {
        source: &'a Path,
        metric: &'static str,
        sets: &'a [ThroughputSetSummary],
        overall: ErrorStats,
        skipped: &'a [String],
    }
    servesim::report::write_json(
        &out_dir.join("summary.json"),
        &Summary {
            source: &table.source,
            metric: "total output throughput, tok/s (bias > 0: the simulator is faster)",
            sets: &summaries,
            overall,
            skipped: &table.skipped,
        },
    )?;
    println!(
        "{}: total output throughput, simulated vs measured per row (bias > 0: the simulator is faster)",
        input.display()
    );
    print!("{}", t.render());
    for n in notes.unwrap_or_default() {
        println!("  note: {n}");
    }
    for s in &table.skipped {
        println!("  skipped: {s}");
    }
    println!(
        "wrote {}/summary.json and one folder per set",
        out_dir.display()
    );
    Ok(())
}

/// Run `servesim validate`.
pub fn run(mut args: ValidateArgs, paths: &DataPaths) -> Result<()> {
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let file: ConfigFile =
            toml::from_str(&text).map_err(|e| servesim::error::toml_error(path, &text, &e))?;
        args.options.merge_from(file.options);
        args.deployment.merge_from(file.deployment);
        args.engine.merge_from(file.engine);
    }
    let o = &args.options;
    let name = o
        .name
        .clone()
        .unwrap_or_else(|| validate::default_name(&args.input));
    let out_dir = o
        .output_dir
        .clone()
        .unwrap_or_else(|| Path::new("output").join(format!("validate-{name}")));
    let open = OpenOptions {
        seed: o.seed.unwrap_or(0),
        framework: o.framework.clone(),
    };
    let settings = validate::Settings {
        deployment: args.deployment.request_for(&args.engine),
        engine: args.engine.overrides(),
        num_replicas: o.num_replicas,
        roofline: o
            .roofline_params
            .as_deref()
            .map(RooflineParams::from_file)
            .transpose()?,
    };
    match validate::open(&args.input, args.format, &open)? {
        Measurement::Run(run) => {
            let v = validate::validate_run(&name, &run, &settings, paths)?;
            v.write(&out_dir)?;
            let d = &v.deployment;
            println!(
                "{}: {} requests of {} on {} × {} (TP{} PP{}) × {} replica(s)",
                v.name,
                run.requests.len(),
                d.model,
                d.tensor_parallel_size * d.pipeline_parallel_size,
                d.hardware,
                d.tensor_parallel_size,
                d.pipeline_parallel_size,
                v.num_replicas
            );
            println!("latency model: {}", v.latency_model);
            print!("{}", metric_table(&v));
            if let Some(t) = v.throughput {
                println!(
                    "output throughput: measured {:.0} tok/s, simulated {:.0} tok/s ({:+.1} %)",
                    t.measured_output_tokens_per_s, t.simulated_output_tokens_per_s, t.error_pct
                );
            }
            print_notes(&v);
            println!(
                "wrote {}/{{validation.json,comparison.csv,validation.svg}}",
                out_dir.display()
            );
        }
        Measurement::Throughput(table) => {
            let select = selector(&o.select)?;
            run_throughput(&args.input, &table, &settings, &select, &out_dir, paths)?;
        }
        Measurement::Table(table) => {
            let select = selector(&o.select)?;
            let keep = |g: &validate::TableGroup| {
                select.matches(&g.key.model, &g.key.hardware, g.tensor_parallel_size())
            };
            let results = validate::validate_table(&table, &settings, paths, keep);
            if results.is_empty() {
                anyhow::bail!(
                    "no group of {} matches --select (groups: {})",
                    args.input.display(),
                    table
                        .groups
                        .iter()
                        .map(|g| g.slug())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let mut summaries = Vec::new();
            let mut t = Table::new(&[
                "set",
                "model",
                "hardware",
                "TP",
                "rows",
                "E2E med|err| %",
                "TPOT med|err| %",
                "TTFT med|err| %",
            ]);
            for (slug, res) in results {
                match res {
                    Ok(v) => {
                        v.write(&out_dir.join(&slug))?;
                        let s = summary_of(&v);
                        t.row(vec![
                            slug,
                            s.model.clone(),
                            s.hardware.clone(),
                            s.tensor_parallel_size.to_string(),
                            s.rows.to_string(),
                            pct(s.e2e_median_abs_pct),
                            pct(s.tpot_median_abs_pct),
                            pct(s.ttft_median_abs_pct),
                        ]);
                        summaries.push(s);
                    }
                    Err(e) => {
                        t.row(vec![
                            slug.clone(),
                            format!("failed: {e}"),
                            String::new(),
                            String::new(),
                            String::new(),
                            "-".into(),
                            "-".into(),
                            "-".into(),
                        ]);
                        summaries.push(SetSummary {
                            name: slug,
                            model: String::new(),
                            hardware: String::new(),
                            tensor_parallel_size: 0,
                            rows: 0,
                            e2e_median_abs_pct: f64::NAN,
                            tpot_median_abs_pct: f64::NAN,
                            ttft_median_abs_pct: f64::NAN,
                            error: Some(e.to_string()),
                        });
                    }
                }
            }
            std::fs::create_dir_all(&out_dir)
                .with_context(|| format!("creating {}", out_dir.display()))?;
            #[derive(serde::Serialize)]
            struct Summary<'a> {
                source: &'a Path,
                sets: &'a [SetSummary],
                skipped: &'a [String],
            }
            servesim::report::write_json(
                &out_dir.join("summary.json"),
                &Summary {
                    source: &table.source,
                    sets: &summaries,
                    skipped: &table.skipped,
                },
            )?;
            print!("{}", t.render());
            for n in &table.notes {
                println!("  note: {n}");
            }
            for s in &table.skipped {
                println!("  skipped: {s}");
            }
            println!(
                "wrote {}/summary.json and one folder per set",
                out_dir.display()
            );
        }
    }
    Ok(())
}
