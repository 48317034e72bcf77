//! `servesim estimate`: one static batch through the simulated engine, with its
//! operator breakdown.

use super::args::{DeploymentArgs, EngineArgs, Format};
use anyhow::Result;
use clap::Args;
use servesim::deployment::Deployment;
use servesim::estimate::{estimate, BatchSpec, Estimate};
use servesim::paths::DataPaths;
use servesim::perf::{Bound, OpCost};
use servesim::report::table::Table;
use servesim::setup::ReplicaSetup;

/// Arguments of `servesim estimate`: the replica is built as `simulate` builds it
/// (memory plan, engine settings, latency model), and the batch's requests all arrive
/// at time zero and run through its engine.
#[derive(Args, Debug)]
pub struct EstimateArgs {
    #[command(flatten)]
    deployment: DeploymentArgs,

    #[command(flatten)]
    engine: EngineArgs,

    /// Requests in the batch.
    #[arg(long, default_value_t = 1)]
    batch_size: u32,

    /// Prompt tokens per request.
    #[arg(long, default_value_t = 1024)]
    input_len: u32,

    /// Output tokens per request.
    #[arg(long, default_value_t = 128)]
    output_len: u32,

    /// Operators to list per phase, slowest first.
    #[arg(long, default_value_t = 8, value_name = "N")]
    top_ops: usize,

    /// Output format.
    ///
    /// csv: one table, one row per operator, each row starting with the headline:
    /// batch_size, input_len, output_len, ttft_s, tpot_s, e2e_s, output_tokens_per_s,
    /// total_tokens_per_s; then phase (prefill: the iterations with prefill work,
    /// summed; decode: the decode-only iteration in the middle of decoding), op,
    /// layers, flops, bytes, time_s, bound (layers, flops and bytes empty where the
    /// latency model does not know them; bound `measured` for measured times).
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

fn print_table(setup: &ReplicaSetup, e: &Estimate, top_ops: usize) {
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
        "  {} scheduler, {} seqs / {} tokens per iteration{}, {} KV blocks of {} tokens",
        eng.scheduler,
        eng.max_num_seqs,
        eng.max_num_batched_tokens,
        if eng.enable_chunked_prefill {
            ", chunked prefill"
        } else {
            ""
        },
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

fn print_csv(e: &Estimate) -> Result<()> {
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    w.write_record([
        "batch_size",
        "input_len",
        "output_len",
        "ttft_s",
        "tpot_s",
        "e2e_s",
        "output_tokens_per_s",
        "total_tokens_per_s",
        "phase",
        "op",
        "layers",
        "flops",
        "bytes",
        "time_s",
        "bound",
    ])?;
    let b = &e.batch;
    let head = [
        b.batch_size.to_string(),
        b.input_len.to_string(),
        b.output_len.to_string(),
        format!("{:.9}", e.ttft_s),
        format!("{:.9}", e.tpot_s),
        format!("{:.9}", e.e2e_s),
        format!("{:.3}", e.output_tokens_per_s),
        format!("{:.3}", e.total_tokens_per_s),
    ];
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

/// Run `servesim estimate`.
pub fn run(args: EstimateArgs, paths: &DataPaths) -> Result<()> {
    let d = Deployment::resolve(&args.deployment.request(), paths)?;
    let setup = ReplicaSetup::new(d, &args.engine.overrides(), paths)?;
    let batch = BatchSpec {
        batch_size: args.batch_size,
        input_len: args.input_len,
        output_len: args.output_len,
    };
    let e = estimate(&setup, batch)?;
    match args.format {
        Format::Json => {
            #[derive(serde::Serialize)]
            struct Out<'a> {
                deployment: servesim::deployment::DeploymentSummary,
                engine: &'a servesim::engine::EngineConfig,
                #[serde(flatten)]
                estimate: &'a Estimate,
            }
            let out = Out {
                deployment: setup.deployment.summary(),
                engine: &setup.engine,
                estimate: &e,
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Csv => print_csv(&e)?,
        Format::Table => print_table(&setup, &e, args.top_ops),
    }
    Ok(())
}
