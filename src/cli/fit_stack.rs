//! `servesim fit-stack`: fit a serving stack's host time per iteration (and its API
//! server's time per request) to measured runs and tables, and write the stack file.

use crate::calibrate::stack_fit::{fit, rewrite, FitSet};
use crate::paths::DataPaths;
use crate::stack::ServingStack;
use crate::validate::{self, OpenOptions};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `servesim fit-stack`.
#[derive(Args, Debug)]
pub struct FitStackArgs {
    /// The stack to fit: a name under perf_model/stacks/ or a stack file.
    #[arg(long, value_name = "NAME|PATH")]
    serving_stack: String,

    /// A measured set: its name (written to `fitted_on`) and its measurements (run
    /// files or folders, static-batch tables), comma-separated; repeatable. Without any,
    /// the stack takes its priors (public measurements, no validation set).
    #[arg(long = "set", value_name = "NAME=PATH[,PATH…]")]
    sets: Vec<String>,

    /// Also fit the API server's time per request (from the client-timed runs).
    #[arg(long)]
    api_server: bool,

    /// Hold `host.step_us` at this value (µs), and `host.per_sequence_serial_us` at
    /// its prior, and fit only the stack's GPU-side figures: for measurements that
    /// cannot tell host time from them, such as one model whose iterations are long.
    #[arg(long, value_name = "US")]
    hold_step_us: Option<f64>,

    /// Where to write the fitted stack file. Default: print the fit only.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Run `servesim fit-stack`.
pub fn run(args: FitStackArgs, paths: &DataPaths) -> Result<()> {
    if let Some(v) = args.hold_step_us.filter(|v| !v.is_finite() || *v < 0.0) {
        anyhow::bail!("--hold-step-us {v}: expected a time in µs, 0 or more");
    }
    let stack = ServingStack::load(paths, Some(&args.serving_stack))?;
    let mut sets = Vec::new();
    for s in &args.sets {
        let (name, list) = s
            .split_once('=')
            .with_context(|| format!("--set {s}: expected NAME=PATH[,PATH…]"))?;
        let mut measurements = Vec::new();
        for p in list.split(',').filter(|p| !p.is_empty()) {
            // Tables of several engines (Argonne's) give the rows of the stack's own.
            let opts = OpenOptions {
                framework: Some(stack.framework.clone()),
                ..OpenOptions::default()
            };
            let m = validate::open(std::path::Path::new(p), None, &opts)
                .with_context(|| format!("--set {name}"))?;
            measurements.push(m);
        }
        sets.push(FitSet {
            name: name.to_owned(),
            measurements,
        });
    }
    let f = fit(&stack, &sets, paths, args.api_server, args.hold_step_us)?;
    if f.units.iter().all(|(_, n)| *n == 0) {
        // Nothing to score: the loss is undefined and every figure is its prior.
        println!(
            "{}: no measurement to fit on; host.step_us {} {:.1} µs (was {:.1})",
            stack.name,
            if args.hold_step_us.is_some() {
                "held at"
            } else {
                "at its prior"
            },
            f.step_us,
            stack.execution.host.step_us
        );
    } else {
        println!(
            "{}: host.step_us {:.1} µs{} (was {:.1}); loss {:.4} -> {:.4}{}",
            stack.name,
            f.step_us,
            if args.hold_step_us.is_some() {
                ", held"
            } else {
                ""
            },
            stack.execution.host.step_us,
            f.loss_before,
            f.loss_after,
            match f.rounds {
                0 => String::new(),
                1 => " after 1 round".to_owned(),
                r => format!(" after {r} rounds"),
            }
        );
    }
    let fraction = |key: &str, new: Option<f64>, was: Option<Option<f64>>| {
        if let (Some(e), Some(was)) = (new, was) {
            let was = was.map_or_else(|| "unset".to_owned(), |v| format!("{v:.4}"));
            println!("{}: {key} {e:.4} (was {was})", stack.name);
        }
    };
    fraction(
        "paged_attention.decode_bandwidth_efficiency",
        f.decode_bandwidth_efficiency,
        stack
            .paged_attention
            .as_ref()
            .map(|p| p.decode_bandwidth_efficiency),
    );
    fraction(
        "gemm.bandwidth_efficiency",
        f.gemm_bandwidth_efficiency,
        stack.gemm.as_ref().map(|g| g.bandwidth_efficiency),
    );
    if let Some(k) = f.per_kernel_us {
        println!(
            "{}: host.per_kernel_us {k:.2} µs (was {:.2})",
            stack.name, stack.execution.host.per_kernel_us
        );
    }
    if let Some(v) = f.per_sequence_serial_us {
        println!(
            "{}: host.per_sequence_serial_us {v:.1} µs{} (was {:.1})",
            stack.name,
            if args.hold_step_us.is_some() {
                ", held at its prior"
            } else {
                ""
            },
            stack.execution.host.per_sequence_serial_us
        );
    }
    if let Some(r) = f.request_us {
        println!(
            "{}: api_server.request_us {r:.0} µs (was {:.0})",
            stack.name, stack.api_server.request_us
        );
    }
    for (s, n) in &f.units {
        println!("  set {s}: {n} units");
    }
    if let Some(out) = &args.output {
        let command = format!(
            "servesim fit-stack --serving-stack {} {}{}{}",
            stack.name,
            args.sets
                .iter()
                .map(|s| format!("--set {}", s.split_once('=').map_or(s.as_str(), |x| x.0)))
                .collect::<Vec<_>>()
                .join(" "),
            if args.api_server { " --api-server" } else { "" },
            args.hold_step_us
                .map_or_else(String::new, |v| format!(" --hold-step-us {v}"))
        );
        let text = rewrite(&stack.path, &f, &command)?;
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        }
        std::fs::write(out, text).with_context(|| out.display().to_string())?;
        println!("wrote {}", out.display());
    }
    Ok(())
}
