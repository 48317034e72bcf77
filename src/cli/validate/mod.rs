//! `servesim validate`: replay a measured benchmark through the simulator and report
//! the error per metric.

use super::args::{DeploymentArgs, EngineArgs, Merge};
use crate::paths::DataPaths;
use crate::perf::roofline::RooflineParams;
use crate::report::table::Table;
use crate::validate::{self, InputFormat, Measurement, OpenOptions, Validation};
use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;
use std::path::{Path, PathBuf};

mod sets;
mod tables;

/// Options of a validation (also the top-level keys of a `--config` file).
#[derive(Args, Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ValidateOptions {
    /// Seed of regenerated arrivals (vLLM result files without send times, GenZ tables
    /// replayed at a request rate).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// GenZ tables (no timestamps): replay as a closed loop with N requests in flight,
    /// over the file's `concurrency` column. Default: the file's columns, else a burst.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,

    /// GenZ tables (no timestamps): replay as an open loop, Poisson arrivals at this
    /// many requests per second regenerated from --seed, over the file's
    /// `request_rate` column.
    #[arg(long, value_name = "REQ_PER_S")]
    pub request_rate: Option<f64>,

    /// Replicas to simulate. Default: the run's data-parallel size, else 1.
    #[arg(long, value_name = "N")]
    pub num_replicas: Option<u32>,

    /// Argonne tables: the framework whose rows are validated. Default: vLLM. Another
    /// engine's rows replay on its own stack (TensorRT-LLM: trtllm-0.11) unless
    /// --serving-stack names one; an engine no stack stands for needs --serving-stack.
    #[arg(long, value_name = "NAME")]
    pub framework: Option<String>,

    /// Tables: validate only groups whose table names contain these (case-insensitive)
    /// substrings, as `model=…`, `hardware=…` or (serving summaries) `engine=…` (matched
    /// against `engine-version`, e.g. `engine=vllm-0.12`), or whose tensor-parallel size
    /// is `tp=N`; repeatable.
    #[arg(long = "select", value_name = "KEY=VALUE")]
    #[serde(default)]
    pub select: Vec<String>,

    /// A serving run replayed after the runs its server served before it: each FILE is
    /// an earlier run's result (repeat the flag, in the order they ran), replayed first
    /// on the same simulated server, prompt i of every run sharing its first tokens with
    /// prompt i of the others (as vLLM `bench serve --dataset-name random` and SGLang
    /// `bench_serving` build prompts at a fixed seed), so the prefix cache is as the
    /// measured run found it; the same holds of a fixed prompt sample sent at several
    /// rates. Open loops only (no client cap below a run's requests); only the
    /// measurement is compared.
    #[arg(long = "after", value_name = "FILE")]
    #[serde(default)]
    pub after: Vec<PathBuf>,

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
        fill(&mut self.concurrency, file.concurrency);
        fill(&mut self.request_rate, file.request_rate);
        fill(&mut self.num_replicas, file.num_replicas);
        fill(&mut self.framework, file.framework);
        fill(&mut self.output_dir, file.output_dir);
        fill(&mut self.name, file.name);
        fill(&mut self.roofline_params, file.roofline_params);
        if self.select.is_empty() {
            self.select = file.select;
        }
        if self.after.is_empty() {
            self.after = file.after;
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
    /// finish columns, a GenZ-style per-request table without timestamps (CSV or JSON
    /// lines: input/output tokens, TTFT, TPOT and/or E2E; a `_ms` suffix means
    /// milliseconds, otherwise seconds), an Argonne or Splitwise static-batch table, a
    /// TensorRT-LLM offline throughput table (throughput_offline.csv), or the
    /// AIConfigurator serving summary (serving_summary.csv).
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

/// Add `v`'s in-sample status to `seen` unless it is there already.
pub(crate) fn note_sample(seen: &mut Vec<String>, v: &Validation) {
    if let Some(s) = &v.sample {
        let d = s.describe();
        if !seen.contains(&d) {
            seen.push(d);
        }
    }
}

/// Print the distinct in-sample statuses of a command's validations.
pub(crate) fn print_samples(seen: &[String]) {
    for d in seen {
        println!("  sample: {d}");
    }
}

/// The lines that end a multi-set table's report: the sets' sample status, then its
/// notes, failed and skipped sets, and where the files went.
pub(crate) fn print_table_footer(
    samples: &[String],
    notes: &[String],
    failed: &[String],
    skipped: &[String],
    out_dir: &std::path::Path,
) {
    print_samples(samples);
    for n in notes {
        println!("  note: {n}");
    }
    for f in failed {
        println!("  failed: {f}");
    }
    for s in skipped {
        println!("  skipped: {s}");
    }
    println!(
        "wrote {}/summary.json and one folder per set",
        out_dir.display()
    );
}

fn print_notes(v: &Validation) {
    for n in &v.notes {
        println!("  note: {n}");
    }
}

/// The `--select` filters: `(key, lowercase value)` pairs that must all match.
struct Selector(Vec<(String, String)>);

impl Selector {
    /// Whether a group with these table names passes every filter (an `engine=`
    /// filter fails where the table names no engine).
    fn matches(&self, model: &str, hardware: &str, tp: u32, engine: Option<&str>) -> bool {
        self.0.iter().all(|(k, v)| match k.as_str() {
            "model" => model.to_ascii_lowercase().contains(v.as_str()),
            "hardware" => hardware.to_ascii_lowercase().contains(v.as_str()),
            "engine" => engine.is_some_and(|e| e.to_ascii_lowercase().contains(v.as_str())),
            _ => tp.to_string() == *v,
        })
    }
}

/// Parse `--select KEY=VALUE` filters (model, hardware, engine, tp).
fn selector(select: &[String]) -> Result<Selector> {
    let mut filters = Vec::new();
    for s in select {
        let (k, v) = s
            .split_once('=')
            .with_context(|| format!("--select `{s}`: expected KEY=VALUE"))?;
        let k = k.trim().to_ascii_lowercase();
        if !matches!(k.as_str(), "model" | "hardware" | "engine" | "tp") {
            anyhow::bail!("--select `{s}`: KEY must be model, hardware, engine or tp");
        }
        filters.push((k, v.trim().to_ascii_lowercase()));
    }
    Ok(Selector(filters))
}

/// Print a validated run's table (its files are in `out_dir`).
fn print_run(v: &Validation, requests: usize, out_dir: &Path) {
    let d = &v.deployment;
    println!(
        "{}: {} requests of {} on {} × {} (TP{} PP{}) × {} replica(s)",
        v.name,
        requests,
        d.model,
        d.tensor_parallel_size * d.pipeline_parallel_size,
        d.hardware,
        d.tensor_parallel_size,
        d.pipeline_parallel_size,
        v.num_replicas
    );
    println!("latency model: {}", v.latency_model);
    let mut samples = Vec::new();
    note_sample(&mut samples, v);
    print_samples(&samples);
    print!("{}", metric_table(v));
    if let Some(t) = v.throughput {
        println!(
            "output throughput: measured {:.0} tok/s, simulated {:.0} tok/s ({:+.1} %)",
            t.measured_output_tokens_per_s, t.simulated_output_tokens_per_s, t.error_pct
        );
    }
    print_notes(v);
    println!(
        "wrote {}/{{validation.json,comparison.csv,validation.svg}}",
        out_dir.display()
    );
}

/// What a validation found, before it is printed and written.
pub enum ValidateOutcome {
    /// One measured run (also a GenZ-style table of one configuration):
    /// `validation.json`, `comparison.csv` and `validation.svg`.
    Run {
        /// The comparison.
        validation: Box<Validation>,
        /// Requests in the measurement.
        requests: usize,
    },
    /// A table of sets, each validated on its own: `summary.json` and a folder per set.
    Sets(SetsOutcome),
}

/// The sets of a table, validated.
pub struct SetsOutcome {
    /// `summary.json`'s text.
    pub summary: String,
    /// The sets that ran, by folder name (failed sets are in `summary`).
    pub sets: Vec<(String, Validation)>,
    /// Lines printed before the table.
    before: Vec<String>,
    /// The table, rendered.
    table: String,
    /// The distinct in-sample statuses, notes, failed and skipped sets under the table.
    samples: Vec<String>,
    notes: Vec<String>,
    failed: Vec<String>,
    skipped: Vec<String>,
}

/// A validation run from the command's flags: its name, the output folder the flags or
/// config file name, and the results.
pub struct Validated {
    /// The validation's name (`--name`, else from the input's file or folder name).
    pub name: String,
    /// `--output-dir` (or the config file's `output-dir`), if given.
    pub output_dir: Option<PathBuf>,
    /// The results.
    pub outcome: ValidateOutcome,
}

impl Validated {
    /// Where the command writes: `--output-dir`, else output/validate-NAME/.
    pub fn out_dir(&self) -> PathBuf {
        self.output_dir
            .clone()
            .unwrap_or_else(|| Path::new("output").join(format!("validate-{}", self.name)))
    }

    /// Write the command's files into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        match &self.outcome {
            ValidateOutcome::Run { validation, .. } => validation.write(dir)?,
            ValidateOutcome::Sets(s) => {
                for (slug, v) in &s.sets {
                    v.write(&dir.join(slug))?;
                }
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let path = dir.join("summary.json");
                std::fs::write(&path, format!("{}\n", s.summary))
                    .map_err(|e| crate::Error::io(&path, e))?;
            }
        }
        Ok(())
    }

    /// Print the command's report (its files are in `dir`).
    fn print(&self, dir: &Path) {
        match &self.outcome {
            ValidateOutcome::Run {
                validation,
                requests,
            } => print_run(validation, *requests, dir),
            ValidateOutcome::Sets(s) => {
                for line in &s.before {
                    println!("{line}");
                }
                print!("{}", s.table);
                print_table_footer(&s.samples, &s.notes, &s.failed, &s.skipped, dir);
            }
        }
    }
}

/// The serving runs of `--after`, in order.
fn earlier_runs(
    files: &[PathBuf],
    format: Option<InputFormat>,
    open: &OpenOptions,
) -> Result<Vec<validate::measured::MeasuredRun>> {
    files
        .iter()
        .map(|f| match validate::open(f, format, open)? {
            Measurement::Run(run) => Ok(*run),
            // An SGLang result file: one run per line.
            Measurement::Genz(t) if t.groups.len() == 1 => Ok(t
                .groups
                .into_iter()
                .next()
                .map(|g| g.run)
                .expect("one group")),
            Measurement::Genz(t) => anyhow::bail!(
                "--after {}: {} runs in one file; give each earlier run as its own file",
                f.display(),
                t.groups.len()
            ),
            _ => anyhow::bail!("--after {}: not a serving run", f.display()),
        })
        .collect()
}

/// Validate the measurement of `args` (nothing is printed or written).
pub fn validate(mut args: ValidateArgs, paths: &DataPaths) -> Result<Validated> {
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let file: ConfigFile =
            toml::from_str(&text).map_err(|e| crate::error::toml_error(path, &text, &e))?;
        args.options.merge_from(file.options);
        args.deployment.merge_from(file.deployment);
        args.engine.merge_from(file.engine);
    }
    let o = &args.options;
    let name = o
        .name
        .clone()
        .unwrap_or_else(|| validate::default_name(&args.input));
    let open = OpenOptions {
        seed: o.seed.unwrap_or(0),
        framework: o.framework.clone(),
        concurrency: o.concurrency,
        request_rate: o.request_rate,
    };
    if o.concurrency == Some(0) {
        anyhow::bail!("--concurrency must be at least 1");
    }
    if o.request_rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        anyhow::bail!("--request-rate must be a positive number of requests per second");
    }
    let settings = validate::Settings {
        deployment: args.deployment.request_for(&args.engine),
        engine: args.engine.overrides(),
        num_replicas: o.num_replicas,
        roofline: o
            .roofline_params
            .as_deref()
            .map(RooflineParams::from_file)
            .transpose()?,
        roofline_file: o.roofline_params.clone(),
        earlier: earlier_runs(&o.after, args.format, &open)?,
    };
    let measurement = validate::open(&args.input, args.format, &open)?;
    if !o.after.is_empty() && !matches!(measurement, Measurement::Run(_) | Measurement::Genz(_)) {
        anyhow::bail!(
            "--after applies to a serving run; {} is a table",
            args.input.display()
        );
    }
    if (o.concurrency.is_some() || o.request_rate.is_some())
        && !matches!(measurement, Measurement::Genz(_))
    {
        anyhow::bail!(
            "--concurrency and --request-rate apply to GenZ-style tables (no timestamps); {} records how its requests were sent",
            args.input.display()
        );
    }
    let select = selector(&o.select)?;
    let outcome = match measurement {
        Measurement::Run(run) => ValidateOutcome::Run {
            validation: Box::new(validate::validate_run(&name, &run, &settings, paths)?),
            requests: run.requests.len(),
        },
        Measurement::Throughput(table) => ValidateOutcome::Sets(tables::throughput(
            &args.input,
            &table,
            &settings,
            &select,
            paths,
        )?),
        Measurement::Table(table) => ValidateOutcome::Sets(tables::static_sets(
            &args.input,
            &table,
            &settings,
            &select,
            paths,
        )?),
        Measurement::Genz(table) => sets::genz(&name, &table, &settings, paths)?,
        Measurement::Summary(table) => ValidateOutcome::Sets(sets::summary(
            &args.input,
            &table,
            &settings,
            &select,
            paths,
        )?),
    };
    Ok(Validated {
        name,
        output_dir: args.options.output_dir,
        outcome,
    })
}

/// Run `servesim validate`.
pub fn run(args: ValidateArgs, paths: &DataPaths) -> Result<()> {
    let v = validate(args, paths)?;
    let dir = v.out_dir();
    v.write(&dir)?;
    v.print(&dir);
    Ok(())
}
