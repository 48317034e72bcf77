//! `servesim calibrate`: fit the roofline's efficiencies and overheads to measured
//! tables and runs, and write `perf_model/calibrated/<hardware>.toml` for the named GPUs
//! (in-sample fits, read only when given with `--roofline-params`); or, with
//! `--kernels`, derive the efficiencies from kernel measurements and write
//! `perf_model/kernel_efficiency/<hardware>.toml` (the default parameters).

use crate::calibrate::{
    calibrated_toml, kernels, optimize::NelderMead, utc_date, Calibration, Fit,
};
use crate::deployment::{Deployment, DeploymentRequest};
use crate::engine::config::EngineOverrides;
use crate::engine::SchedulerKind;
use crate::hardware::HardwareCatalog;
use crate::paths::DataPaths;
use crate::perf::roofline::RooflineParams;
use crate::report::table::Table;
use crate::setup::ReplicaSetup;
use crate::validate::{self, InputFormat, Measurement, OpenOptions, TableKind};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

/// Kinds of input, for `--simulated-stack`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// Splitwise step-time tables.
    Splitwise,
    /// Argonne static-batch tables.
    Argonne,
    /// Serving runs (vLLM result JSON, LLMServingSim runs, per-request CSVs).
    Runs,
}

/// Arguments of `servesim calibrate`.
#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// Measurements: Splitwise or Argonne tables, vLLM result JSON, LLMServingSim runs,
    /// per-request CSVs. Only the measurements taken on --hardware GPUs are used.
    #[arg(
        value_name = "MEASUREMENT",
        required_unless_present = "kernels",
        conflicts_with = "kernels"
    )]
    inputs: Vec<PathBuf>,

    /// GPUs to calibrate and write (catalog names or aliases). Comma-separated names
    /// are one chip fitted together (`a100-80gb,a100-40gb`); repeat for more. All
    /// share the serving stack's attention efficiency and overheads. With --kernels:
    /// the GPUs to derive (default: every GPU in kernel_efficiency/sources.toml).
    #[arg(long, value_name = "NAME[,NAME…]", required_unless_present = "kernels")]
    hardware: Vec<String>,

    /// Derive the roofline efficiencies from the kernel measurements under
    /// perf_model/measurements/ that perf_model/kernel_efficiency/sources.toml lists
    /// (GEMM and attention tables, vendor micro-benchmarks), not from serving
    /// measurements, and write perf_model/kernel_efficiency/<hardware>.toml, the
    /// default parameters of those GPUs. Deterministic: no date, no randomness.
    #[arg(long)]
    kernels: bool,

    /// With --kernels: compare the derived files with those on disk, write nothing, and
    /// fail if any differs.
    #[arg(long, requires = "kernels")]
    check: bool,

    /// Inputs measured on vLLM, the simulated serving stack: their attention efficiency
    /// and overheads are written. The others get their own, fitted alongside.
    /// Splitwise's engine is not named, so by default only Argonne (vLLM 0.5–0.6) and
    /// serving runs count.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "argonne,runs"
    )]
    simulated_stack: Vec<InputKind>,

    /// Format of every input. Default: detected per input.
    #[arg(long, value_enum)]
    format: Option<InputFormat>,

    /// Argonne tables: the framework whose rows are used. Default: vLLM.
    #[arg(long, value_name = "NAME")]
    framework: Option<String>,

    /// Seed of regenerated arrivals (vLLM result files without send times).
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,

    /// Most objective evaluations.
    #[arg(long, value_name = "N", default_value_t = 4000)]
    max_evals: usize,

    /// Folder for the written files. Default: <data dir>/perf_model/calibrated
    /// (with --kernels: <data dir>/perf_model/kernel_efficiency).
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,

    /// Fit and report, but write nothing.
    #[arg(long)]
    dry_run: bool,
}

fn pct(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else {
        format!("{x:.1}")
    }
}

fn print_fit(fit: &Fit) {
    let mut t = Table::new(&[
        "set",
        "metric",
        "n",
        "before med|err| %",
        "before MAPE %",
        "after med|err| %",
        "after MAPE %",
        "as written med|err| %",
    ]);
    for s in &fit.sets {
        for m in &s.metrics {
            t.row(vec![
                s.name.clone(),
                m.metric.label().into(),
                m.after.count.to_string(),
                pct(m.before.median_abs_pct),
                pct(m.before.mape_pct),
                pct(m.after.median_abs_pct),
                pct(m.after.mape_pct),
                m.as_written
                    .map_or("same".into(), |w| pct(w.median_abs_pct)),
            ]);
        }
    }
    print!("{}", t.render());
    for s in &fit.sets {
        if s.left_out > 0 {
            println!(
                "  {}: {} batches left out (the simulated engine preempts them)",
                s.name, s.left_out
            );
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for (name, o) in fit.sets.iter().filter_map(|s| s.own_stack.as_ref()) {
        if !seen.contains(&name.as_str()) {
            seen.push(name);
            println!(
                "  stack `{name}` (not written): attention {:.3}, {:.2} ms per iteration + {:.1} µs per layer",
                o.attention_compute_efficiency,
                o.step_overhead_s * 1e3,
                o.per_layer_overhead_s * 1e6
            );
        }
    }
    for g in &fit.groups {
        let p = &g.params;
        println!(
            "{}: GEMM {:.3}, memory {:.3}, attention {:.3}, {:.2} ms per iteration + {:.1} µs per layer",
            g.members.join(" + "),
            p.gemm_compute_efficiency,
            p.memory_efficiency,
            p.attention_compute_efficiency,
            p.step_overhead_s * 1e3,
            p.per_layer_overhead_s * 1e6,
        );
    }
    println!(
        "{} evaluations, loss {:.5} → {:.5}{}",
        fit.evals,
        fit.loss_before,
        fit.loss_after,
        if fit.stack_fitted {
            ""
        } else {
            "; no run on the simulated stack: attention and overheads kept"
        }
    );
}

/// The stack name of an input kind, `None` when it is the simulated stack.
fn stack_of(kind: InputKind, simulated: &[InputKind]) -> Option<&'static str> {
    if simulated.contains(&kind) {
        return None;
    }
    Some(match kind {
        InputKind::Splitwise => "splitwise",
        InputKind::Argonne => "argonne",
        InputKind::Runs => "runs",
    })
}

/// `servesim calibrate --kernels`.
fn run_kernels(args: &CalibrateArgs, paths: &DataPaths) -> Result<()> {
    let catalog = HardwareCatalog::load(&paths.hardware_dir())?;
    let sources = kernels::load_sources(&paths.perf_model)?;
    let defaults = RooflineParams::load(&paths.perf_model)?;
    let mut slugs = Vec::new();
    for name in args.hardware.iter().flat_map(|l| l.split(',')) {
        if name.trim().is_empty() {
            continue;
        }
        let slug = RooflineParams::slug(&catalog.resolve(name)?);
        if !sources.gpu.iter().any(|g| g.hardware == slug) {
            anyhow::bail!(
                "{name} ({slug}) has no entry in kernel_efficiency/sources.toml: no kernel measurements of it"
            );
        }
        slugs.push(slug);
    }
    if slugs.is_empty() {
        slugs = sources.gpu.iter().map(|g| g.hardware.clone()).collect();
    }
    let dir = args
        .output_dir
        .clone()
        .unwrap_or_else(|| kernels::folder(&paths.perf_model));
    let mut t = Table::new(&[
        "hardware",
        "GEMM",
        "memory",
        "attention",
        "from",
        "kernel sets (median / p90 |err| %)",
    ]);
    let mut differs = Vec::new();
    for slug in &slugs {
        let k = kernels::derive(&paths.perf_model, &catalog, &sources, &defaults, slug)?;
        let d = &k.derivation;
        let mark = |name: &str, v: f64| {
            if d.derived.iter().any(|x| x == name) {
                format!("{v:.4}")
            } else {
                format!("{v:.4}*")
            }
        };
        let sets = match &d.transfer_from {
            Some(f) => format!("as {f}"),
            None => d
                .sets
                .iter()
                .map(|s| {
                    let err = match (s.median_abs_err_pct, s.p90_abs_err_pct) {
                        (Some(m), Some(p)) => format!("{m:.1} / {p:.1}"),
                        _ => "ratio".into(),
                    };
                    format!(
                        "{} {}{}: {err}",
                        s.kind.name(),
                        s.dtype,
                        if s.used { "" } else { " (not used)" }
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        };
        t.row(vec![
            slug.clone(),
            mark("gemm_compute_efficiency", k.params.gemm_compute_efficiency),
            mark("memory_efficiency", k.params.memory_efficiency),
            mark(
                "attention_compute_efficiency",
                k.params.attention_compute_efficiency,
            ),
            if d.transfer_from.is_some() {
                "transfer".into()
            } else {
                "kernels".into()
            },
            sets,
        ]);
        let text = kernels::to_toml(&k);
        let path = dir.join(format!("{slug}.toml"));
        if args.check {
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            if on_disk != text {
                differs.push(path.display().to_string());
            }
        } else if !args.dry_run {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    print!("{}", t.render());
    println!("* kept at roofline.toml's value: no kernel data binds it");
    if !differs.is_empty() {
        anyhow::bail!(
            "derived files differ from those on disk (rerun `servesim calibrate --kernels`): {}",
            differs.join(", ")
        );
    }
    Ok(())
}

/// Run `servesim calibrate`.
pub fn run(args: CalibrateArgs, paths: &DataPaths) -> Result<()> {
    if args.kernels {
        return run_kernels(&args, paths);
    }
    let catalog = HardwareCatalog::load(&paths.hardware_dir())?;
    let mut groups: Vec<Vec<crate::hardware::GpuSpec>> = Vec::new();
    for list in &args.hardware {
        let g = list
            .split(',')
            .filter(|n| !n.trim().is_empty())
            .map(|n| catalog.resolve(n))
            .collect::<crate::Result<Vec<_>>>()?;
        groups.push(g);
    }
    let names: Vec<Vec<String>> = groups
        .iter()
        .map(|g| g.iter().map(|x| x.name.clone()).collect())
        .collect();
    let named = |gpu: &str| names.iter().flatten().any(|n| n == gpu);
    let open = OpenOptions {
        seed: args.seed,
        framework: args.framework.clone(),
        ..OpenOptions::default()
    };
    let v0 = EngineOverrides {
        scheduler: Some(SchedulerKind::VllmV0),
        ..EngineOverrides::default()
    };
    let mut cal = Calibration::new(&names);
    let mut data = Vec::new();
    for input in &args.inputs {
        let stem = validate::default_name(input);
        match validate::open(input, args.format, &open)? {
            Measurement::Table(table) => {
                let kind = match table.kind {
                    TableKind::Splitwise => InputKind::Splitwise,
                    TableKind::Argonne | TableKind::ArgonneTtft => InputKind::Argonne,
                };
                let stack = stack_of(kind, &args.simulated_stack);
                let mut used = Vec::new();
                for g in &table.groups {
                    let Ok(gpu) = catalog.resolve(&g.hardware.hardware) else {
                        continue;
                    };
                    if !named(&gpu.name) {
                        continue;
                    }
                    let req = validate::group_request(g, &DeploymentRequest::default());
                    let ov = validate::table_overrides(table.kind, &v0);
                    let setup = Deployment::resolve(&req, paths)
                        .and_then(|d| ReplicaSetup::new(d, &ov, paths));
                    let setup = match setup {
                        Ok(s) => s,
                        Err(e) => {
                            eprintln!("skipping {}: {e}", g.slug());
                            continue;
                        }
                    };
                    let name = format!("{stem}:{}", g.slug());
                    cal.add_table_group(&name, table.kind, g, &setup, stack)?;
                    used.push(g.slug());
                }
                if !used.is_empty() {
                    data.push(format!(
                        "{} ({:?}, stack {}): {}",
                        input.display(),
                        table.kind,
                        stack.unwrap_or("simulated"),
                        used.join(", ")
                    ));
                }
            }
            Measurement::Run(run) if run.summary.is_some() => {
                eprintln!(
                    "skipping {}: a result without per-request lists is validated, not fitted (use `servesim validate`)",
                    input.display()
                );
            }
            Measurement::Run(run) => {
                let stack = stack_of(InputKind::Runs, &args.simulated_stack);
                let mut req = DeploymentRequest::default();
                let mut ov = EngineOverrides::default();
                run.hints.apply(&mut req, &mut ov);
                let d = Deployment::resolve(&req, paths)
                    .with_context(|| format!("deployment of {}", input.display()))?;
                if !named(&d.gpu().name) {
                    eprintln!("skipping {}: measured on {}", input.display(), d.gpu().name);
                    continue;
                }
                let setup = ReplicaSetup::new(d, &ov, paths)?;
                let replicas = run.hints.data_parallel_size.unwrap_or(1).max(1);
                cal.add_run(&stem, &run, &setup, replicas, stack);
                data.push(format!(
                    "{} (serving run on {}, {} requests, stack {})",
                    input.display(),
                    setup.deployment.gpu().name,
                    run.requests.len(),
                    stack.unwrap_or("simulated")
                ));
            }
            Measurement::Throughput(_) => {
                // Whole-run throughputs of another engine (TRT-LLM) with FP8/FP4 kernels:
                // no step times to fit the roofline's efficiencies to.
                eprintln!(
                    "skipping {}: offline throughput tables are validated, not fitted (use `servesim validate`)",
                    input.display()
                );
            }
            Measurement::Genz(_) | Measurement::Summary(_) => {
                // Latencies without send times (GenZ) or means only (serving summaries):
                // kept out of the fit so they stay out-of-sample checks.
                eprintln!(
                    "skipping {}: tables without timestamps and serving summaries are validated, not fitted (use `servesim validate`)",
                    input.display()
                );
            }
        }
    }
    if cal.num_sets() == 0 {
        anyhow::bail!(
            "no measurement in the inputs was taken on the named GPUs or on the simulated stack"
        );
    }
    eprintln!(
        "fitting {} sets, {} measurements…",
        cal.num_sets(),
        cal.num_items()
    );
    let start = RooflineParams::load(&paths.perf_model)?;
    let fit = cal.fit(
        &start,
        &NelderMead {
            max_evals: args.max_evals,
            ..NelderMead::default()
        },
    )?;
    print_fit(&fit);
    if args.dry_run {
        return Ok(());
    }
    let command = std::iter::once("servesim".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let date = utc_date();
    for gpus in &groups {
        let Some(fitted) = fit
            .groups
            .iter()
            .find(|f| gpus.iter().any(|g| f.members.contains(&g.name)))
        else {
            eprintln!(
                "nothing written for {}: no measurement on it",
                gpus.iter()
                    .map(|g| g.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            continue;
        };
        let text = calibrated_toml(&fit, fitted, &command, &date, &data);
        for g in gpus {
            let default_path = RooflineParams::calibrated_path(&paths.perf_model, g);
            let path = match &args.output_dir {
                Some(dir) => dir.join(default_path.file_name().unwrap_or_default()),
                None => default_path,
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    Ok(())
}
