//! `servesim estimate`: one static batch through the simulated engine, with its
//! operator breakdown, memory, utilisation and the change that helps it most; or,
//! given lists of sizes, one headline row per combination.

use super::args::{DeploymentArgs, EngineArgs, Format};
use crate::deployment::Deployment;
use crate::estimate::sweep::{self, Row};
use crate::estimate::{advise, estimate_with_work, Advice, Estimate};
use crate::paths::DataPaths;
use crate::perf::roofline::{Roofline, RooflineParams};
use crate::perf::{Bound, OpCost};
use crate::report::table::Table;
use crate::setup::ReplicaSetup;
use anyhow::Result;
use clap::Args;
use std::sync::Arc;

/// Arguments of `servesim estimate`: the replica is built as `simulate` builds it
/// (memory plan, engine settings, latency model), and the batch's requests all arrive
/// at time zero and run through its engine.
#[derive(Args, Debug)]
pub struct EstimateArgs {
    #[command(flatten)]
    deployment: DeploymentArgs,

    #[command(flatten)]
    engine: EngineArgs,

    /// Requests in the batch; a comma-separated list sweeps (one row per combination
    /// of the three lists).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1",
        value_name = "N[,N...]"
    )]
    batch_size: Vec<u32>,

    /// Prompt tokens per request (a list sweeps).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1024",
        value_name = "TOKENS[,...]"
    )]
    input_len: Vec<u32>,

    /// Output tokens per request (a list sweeps).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "128",
        value_name = "TOKENS[,...]"
    )]
    output_len: Vec<u32>,

    /// Operators to list per phase, slowest first.
    #[arg(long, default_value_t = 8, value_name = "N")]
    top_ops: usize,

    /// Output format.
    ///
    /// csv, one point: one row per operator, each starting with the headline
    /// (batch_size, input_len, output_len, ttft_s, tpot_s, e2e_s, output_tokens_per_s,
    /// total_tokens_per_s, memory_per_gpu_gib, fits, preemptions, bottleneck,
    /// compute_utilization, memory_bandwidth_utilization, error); then phase
    /// (prefill: the iterations with prefill work, summed; decode: the decode-only
    /// iteration in the middle of decoding), op, layers, flops, bytes, time_s, bound
    /// (layers, flops and bytes empty where the latency model does not know them;
    /// bound `measured` for measured times). csv, a sweep: the headline alone, one
    /// row per combination (batch size slowest, output length fastest); a point that
    /// cannot run has empty numbers and its reason in `error`.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn opt(x: Option<f64>, scale: f64, decimals: usize) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{:.decimals$}", v * scale))
}

fn ops_table(title: &str, ops: &[OpCost], total: f64, n: usize) -> String {
    // Measured models know only times: leave out the columns nothing fills.
    let known = ops
        .iter()
        .any(|o| o.count.is_some() || o.flops.is_some() || o.bytes.is_some());
    let mut header = vec![title];
    if known {
        header.extend(["layers", "GFLOP", "MB"]);
    }
    header.extend(["time ms", "share", "bound"]);
    let mut t = Table::new(&header);
    for o in ops.iter().take(n) {
        let mut row = vec![o.name.clone()];
        if known {
            row.extend([
                o.count.map_or_else(|| "-".into(), |c| c.to_string()),
                opt(o.flops, 1e-9, 2),
                opt(o.bytes, 1e-6, 2),
            ]);
        }
        row.extend([
            format!("{:.3}", o.time_s * 1e3),
            format!(
                "{:.1}%",
                if total > 0.0 {
                    o.time_s / total * 100.0
                } else {
                    0.0
                }
            ),
            Bound::label(o.bound).to_owned(),
        ]);
        t.row(row);
    }
    t.render()
}

fn plural(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn print_table(setup: &ReplicaSetup, e: &Estimate, advice: &Advice, top_ops: usize) {
    let d = &setup.deployment;
    let eng = &setup.engine;
    let b = &e.batch;
    println!(
        "{} on {} × {} (TP{} PP{}{}), {} weights, {} KV; batch {} × {} in / {} out",
        d.model.name,
        d.num_gpus(),
        d.gpu().name,
        d.tp,
        d.pp,
        if d.dp > 1 {
            format!(" DP{}, batch on one rank", d.dp)
        } else {
            String::new()
        },
        d.matrix_dtype_label(),
        d.kv_dtype,
        b.batch_size,
        b.input_len,
        b.output_len
    );
    println!(
        "  {} scheduler, {}, {} KV blocks of {} tokens",
        eng.scheduler,
        eng.describe_batching(),
        eng.num_gpu_blocks,
        eng.block_size
    );
    println!("  latency model: {}", e.latency_model);
    println!(
        "TTFT {:.2} ms | TPOT {:.2} ms | E2E {:.3} s | {:.0} output tok/s | {:.0} total tok/s",
        e.ttft_s * 1e3,
        e.tpot_s * 1e3,
        e.e2e_s,
        e.output_tokens_per_s,
        e.total_tokens_per_s
    );
    println!(
        "engine: {} ({} with prefill work), {}",
        plural(e.iterations, "iteration"),
        e.prefill_iterations,
        plural(e.preemptions, "preemption")
    );
    let bn = &e.bottleneck;
    let shares: Vec<String> = bn
        .time_share_by_bound
        .iter()
        .map(|(b, s)| format!("{b} {:.0}%", s * 100.0))
        .collect();
    println!(
        "bottleneck: {} phase, {} ({}); {} time by bound: {}",
        bn.phase,
        bn.op,
        match bn.bound {
            Some(b) => format!("{}-bound", Bound::label(Some(b))),
            None => "measured component".into(),
        },
        bn.phase,
        shares.join(", ")
    );
    print_extras(e, advice);
    println!();
    print!(
        "{}",
        ops_table(
            &format!("prefill op ({})", plural(e.prefill_iterations, "iteration")),
            &e.prefill_ops,
            e.prefill_time_s,
            top_ops
        )
    );
    if !e.decode_ops.is_empty() {
        println!();
        let step: f64 = e.decode_ops.iter().map(|o| o.time_s).sum();
        print!(
            "{}",
            ops_table("decode op (mid-output step)", &e.decode_ops, step, top_ops)
        );
    }
}

/// The headline columns of the CSV, one point or a sweep.
const HEADLINE: [&str; 15] = [
    "batch_size",
    "input_len",
    "output_len",
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "output_tokens_per_s",
    "total_tokens_per_s",
    "memory_per_gpu_gib",
    "fits",
    "preemptions",
    "bottleneck",
    "compute_utilization",
    "memory_bandwidth_utilization",
    "error",
];

/// The headline cells of `r`, in [`HEADLINE`]'s order.
fn headline_cells(r: &Row) -> Vec<String> {
    let f = |x: Option<f64>, d: usize| x.map_or_else(String::new, |v| format!("{v:.d$}"));
    vec![
        r.batch_size.to_string(),
        r.input_len.to_string(),
        r.output_len.to_string(),
        f(r.ttft_s, 9),
        f(r.tpot_s, 9),
        f(r.e2e_s, 9),
        f(r.output_tokens_per_s, 3),
        f(r.total_tokens_per_s, 3),
        f(r.memory_per_gpu_gib, 3),
        r.fits.to_string(),
        r.preemptions.map_or_else(String::new, |p| p.to_string()),
        r.bottleneck.clone().unwrap_or_default(),
        f(r.compute_utilization, 4),
        f(r.memory_bandwidth_utilization, 4),
        r.error.clone().unwrap_or_default(),
    ]
}

fn print_csv(e: &Estimate) -> Result<()> {
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    w.write_record(
        HEADLINE
            .iter()
            .chain(&["phase", "op", "layers", "flops", "bytes", "time_s", "bound"]),
    )?;
    let head = headline_cells(&Row::of(e));
    let sci = |x: Option<f64>| x.map_or_else(String::new, |v| format!("{v:.6e}"));
    for (phase, ops) in [("prefill", &e.prefill_ops), ("decode", &e.decode_ops)] {
        for o in ops {
            w.write_record(head.iter().cloned().chain([
                phase.to_owned(),
                o.name.clone(),
                o.count.map_or_else(String::new, |c| c.to_string()),
                sci(o.flops),
                sci(o.bytes),
                format!("{:.9}", o.time_s),
                Bound::label(o.bound).to_owned(),
            ]))?;
        }
    }
    w.flush()?;
    Ok(())
}

/// Memory, utilisation, the limit and the advice, below the headline.
fn print_extras(e: &Estimate, advice: &Advice) {
    let m = &e.memory;
    println!(
        "memory per GPU: {:.1} of {:.1} GiB (weights {:.1}, KV {:.2}, activations {:.2}, overhead {:.2}); the batch's KV {} ({} of {} blocks)",
        m.total_gib,
        m.capacity_gib,
        m.weights_gib,
        m.kv_gib,
        m.activations_gib,
        m.overhead_gib,
        if m.fits { "fits" } else { "does not fit at once" },
        m.kv_blocks_needed,
        m.kv_blocks_available
    );
    if let Some(u) = &e.utilization {
        println!(
            "utilisation: compute {:.1}%, memory bandwidth {:.1}% of peak ({:.1} TFLOP and {:.1} GB per GPU over {:.3} s of iterations, counted by the roofline)",
            u.compute * 100.0,
            u.memory_bandwidth * 100.0,
            u.flops_per_gpu / 1e12,
            u.bytes_per_gpu / 1e9,
            u.busy_s
        );
    }
    println!("limited by: {}", advice.limit);
    let own = advice.output_tokens_per_s_per_gpu;
    let describe = |o: &crate::estimate::Tried| {
        format!(
            "{}: {:.0} output tok/s per GPU ({:+.0}%), TTFT {:.1} ms, TPOT {:.2} ms, E2E {:.3} s{}",
            o.flags,
            o.output_tokens_per_s_per_gpu,
            (o.output_tokens_per_s_per_gpu / own - 1.0) * 100.0,
            o.ttft_s * 1e3,
            o.tpot_s * 1e3,
            o.e2e_s,
            if o.preemptions > 0 {
                format!(", {} preemptions", o.preemptions)
            } else {
                String::new()
            }
        )
    };
    match advice.best {
        Some(b) => {
            println!(
                "helps most: {} (now {own:.0} output tok/s per GPU)",
                describe(&advice.options[b])
            );
            for (i, o) in advice.options.iter().enumerate() {
                if i != b {
                    println!("  also tried: {}", describe(o));
                }
            }
        }
        None => {
            println!("helps most: no change could be run (larger batch, FP8 KV cache, more TP)")
        }
    }
}

fn print_sweep(rows: &[Row], format: Format) -> Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(rows)?),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            w.write_record(HEADLINE)?;
            for r in rows {
                w.write_record(headline_cells(r))?;
            }
            w.flush()?;
        }
        Format::Table => {
            let mut t = Table::new(&[
                "batch",
                "in",
                "out",
                "TTFT ms",
                "TPOT ms",
                "E2E s",
                "out tok/s",
                "tok/s",
                "GiB/GPU",
                "fits",
                "bottleneck",
                "compute",
                "mem BW",
            ]);
            let f = |x: Option<f64>, scale: f64, d: usize| {
                x.map_or_else(|| "-".into(), |v| format!("{:.d$}", v * scale))
            };
            let pct =
                |x: Option<f64>| x.map_or_else(|| "-".into(), |v| format!("{:.1}%", v * 100.0));
            let mut notes = Vec::new();
            for r in rows {
                t.row(vec![
                    r.batch_size.to_string(),
                    r.input_len.to_string(),
                    r.output_len.to_string(),
                    f(r.ttft_s, 1e3, 2),
                    f(r.tpot_s, 1e3, 2),
                    f(r.e2e_s, 1.0, 3),
                    f(r.output_tokens_per_s, 1.0, 0),
                    f(r.total_tokens_per_s, 1.0, 0),
                    f(r.memory_per_gpu_gib, 1.0, 1),
                    if r.fits { "yes" } else { "no" }.into(),
                    r.bottleneck.clone().unwrap_or_else(|| "-".into()),
                    pct(r.compute_utilization),
                    pct(r.memory_bandwidth_utilization),
                ]);
                if let Some(e) = &r.error {
                    notes.push(format!(
                        "batch {} × {} in / {} out: {e}",
                        r.batch_size, r.input_len, r.output_len
                    ));
                }
            }
            print!("{}", t.render());
            for n in notes {
                println!("{n}");
            }
        }
    }
    Ok(())
}

/// Run `servesim estimate`.
/// What `servesim estimate` computes for `args`: one batch's estimate, or the rows of a
/// sweep of batches.
enum Computed {
    One(Box<OneBatch>),
    Sweep(Vec<Row>),
}

/// One batch's estimate with what its advice needs.
struct OneBatch {
    req: crate::deployment::DeploymentRequest,
    overrides: crate::engine::config::EngineOverrides,
    setup: ReplicaSetup,
    estimate: Estimate,
}

fn compute(args: &EstimateArgs, paths: &DataPaths) -> Result<Computed> {
    let req = args.deployment.request();
    let overrides = args.engine.overrides();
    let d = Deployment::resolve(&req, paths)?.for_engine(&overrides);
    let params = RooflineParams::load_for(&paths.perf_model, d.gpu())?;
    let work = Arc::new(Roofline::new(&d, params));
    let setup = ReplicaSetup::new(d, &overrides, paths)?;
    for (flag, list) in [
        ("--batch-size", &args.batch_size),
        ("--input-len", &args.input_len),
        ("--output-len", &args.output_len),
    ] {
        if list.contains(&0) {
            return Err(
                crate::Error::input("<command line>", Some(flag), "must be at least 1").into(),
            );
        }
    }
    let points = args.batch_size.len() * args.input_len.len() * args.output_len.len();
    if points > sweep::MAX_POINTS {
        return Err(crate::Error::input(
            "<command line>",
            Some("--batch-size"),
            format!(
                "{} batch sizes × {} input lengths × {} output lengths = {points} points, more than the {} a sweep runs",
                args.batch_size.len(),
                args.input_len.len(),
                args.output_len.len(),
                sweep::MAX_POINTS
            ),
        )
        .into());
    }
    let batches = sweep::grid(&args.batch_size, &args.input_len, &args.output_len);
    if batches.len() > 1 {
        let threads = crate::plan::exec::default_jobs();
        return Ok(Computed::Sweep(sweep::sweep(
            &setup,
            &batches,
            Some(work),
            threads,
        )));
    }
    let estimate = estimate_with_work(&setup, batches[0], Some(work))?;
    Ok(Computed::One(Box::new(OneBatch {
        req,
        overrides,
        setup,
        estimate,
    })))
}

impl OneBatch {
    /// The estimate as `--format json` prints it.
    fn json(&self, paths: &DataPaths) -> Result<String> {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            deployment: crate::deployment::DeploymentSummary,
            engine: &'a crate::engine::EngineConfig,
            #[serde(flatten)]
            estimate: &'a Estimate,
            advice: Advice,
        }
        let out = Out {
            deployment: self.setup.deployment.summary(),
            engine: &self.setup.engine,
            estimate: &self.estimate,
            advice: self.advice(paths)?,
        };
        Ok(serde_json::to_string_pretty(&out)?)
    }

    /// What to try next.
    fn advice(&self, paths: &DataPaths) -> Result<Advice> {
        Ok(advise(
            &self.req,
            &self.overrides,
            paths,
            &self.setup,
            &self.estimate,
        )?)
    }
}

/// What `servesim estimate --format json` prints for `args`: one batch's estimate (an
/// object), or the rows of a sweep of batches (an array).
pub fn json(args: &EstimateArgs, paths: &DataPaths) -> Result<String> {
    Ok(match compute(args, paths)? {
        Computed::Sweep(rows) => serde_json::to_string_pretty(&rows)?,
        Computed::One(b) => b.json(paths)?,
    })
}

/// Run `servesim estimate`.
pub fn run(args: EstimateArgs, paths: &DataPaths) -> Result<()> {
    match compute(&args, paths)? {
        Computed::Sweep(rows) => print_sweep(&rows, args.format),
        Computed::One(b) => {
            match args.format {
                Format::Json => println!("{}", b.json(paths)?),
                Format::Csv => print_csv(&b.estimate)?,
                Format::Table => {
                    print_table(&b.setup, &b.estimate, &b.advice(paths)?, args.top_ops)
                }
            }
            Ok(())
        }
    }
}
