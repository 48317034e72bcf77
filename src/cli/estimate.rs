//! `servesim estimate`: roofline latency of one static batch with its operator breakdown.

use super::args::{DeploymentArgs, Format};
use anyhow::Result;
use clap::Args;
use servesim::deployment::Deployment;
use servesim::paths::DataPaths;
use servesim::perf::estimate::{estimate, BatchSpec};
use servesim::perf::roofline::{OpCost, Roofline, RooflineParams};
use servesim::report::table::Table;

/// Arguments of `servesim estimate`.
#[derive(Args, Debug)]
pub struct EstimateArgs {
    #[command(flatten)]
    deployment: DeploymentArgs,

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
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn ops_table(title: &str, ops: &[OpCost], total: f64, n: usize) -> String {
    let mut t = Table::new(&[title, "layers", "GFLOP", "MB", "time ms", "share", "bound"]);
    for o in ops.iter().take(n) {
        t.row(vec![
            o.name.clone(),
            o.count.unwrap_or_default().to_string(),
            format!("{:.2}", o.flops.unwrap_or_default() / 1e9),
            format!("{:.2}", o.bytes.unwrap_or_default() / 1e6),
            format!("{:.3}", o.time_s * 1e3),
            format!(
                "{:.1}%",
                if total > 0.0 {
                    o.time_s / total * 100.0
                } else {
                    0.0
                }
            ),
            servesim::perf::Bound::label(o.bound).to_owned(),
        ]);
    }
    t.render()
}

/// Run `servesim estimate`.
pub fn run(args: EstimateArgs, paths: &DataPaths) -> Result<()> {
    if args.batch_size == 0 || args.input_len == 0 || args.output_len == 0 {
        anyhow::bail!("--batch-size, --input-len and --output-len must be at least 1");
    }
    let d = Deployment::resolve(&args.deployment.request(), paths)?;
    let model = Roofline::new(&d, RooflineParams::load(&paths.perf_model)?);
    let batch = BatchSpec {
        batch_size: args.batch_size,
        input_len: args.input_len,
        output_len: args.output_len,
    };
    let e = estimate(&model, batch);
    match args.format {
        Format::Json => {
            #[derive(serde::Serialize)]
            struct Out<'a> {
                deployment: servesim::deployment::DeploymentSummary,
                latency_model: String,
                #[serde(flatten)]
                estimate: &'a servesim::perf::estimate::Estimate,
            }
            let out = Out {
                deployment: d.summary(),
                latency_model: servesim::perf::LatencyModel::describe(&model),
                estimate: &e,
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            w.write_record(["phase", "op", "layers", "flops", "bytes", "time_s", "bound"])?;
            for (phase, ops) in [("prefill", &e.prefill_ops), ("decode", &e.decode_ops)] {
                for o in ops.iter() {
                    w.write_record([
                        phase.to_owned(),
                        o.name.clone(),
                        o.count.unwrap_or_default().to_string(),
                        format!("{:.6e}", o.flops.unwrap_or_default()),
                        format!("{:.6e}", o.bytes.unwrap_or_default()),
                        format!("{:.9}", o.time_s),
                        servesim::perf::Bound::label(o.bound).to_owned(),
                    ])?;
                }
            }
            w.flush()?;
        }
        Format::Table => {
            println!(
                "{} on {} × {} (TP{} PP{}), {} weights, {} KV; batch {} × {} in / {} out",
                d.model.name,
                d.num_gpus(),
                d.gpu().name,
                d.tp,
                d.pp,
                d.matrix_dtype(),
                d.kv_dtype,
                batch.batch_size,
                batch.input_len,
                batch.output_len
            );
            println!(
                "TTFT {:.2} ms | TPOT {:.2} ms | E2E {:.3} s | {:.0} output tok/s | {:.0} total tok/s",
                e.ttft_s * 1e3,
                e.tpot_s * 1e3,
                e.e2e_s,
                e.output_tokens_per_s,
                e.total_tokens_per_s
            );
            let shares: Vec<String> = e
                .bottleneck
                .time_share_by_bound
                .iter()
                .filter(|(_, s)| *s > 0.0)
                .map(|(b, s)| format!("{:?} {:.0}%", b, s * 100.0).to_lowercase())
                .collect();
            println!(
                "bottleneck: {} phase, {} ({}-bound); {} time by bound: {}",
                e.bottleneck.phase,
                e.bottleneck.op,
                format!("{:?}", e.bottleneck.bound).to_lowercase(),
                e.bottleneck.phase,
                shares.join(", ")
            );
            println!();
            print!(
                "{}",
                ops_table("prefill op", &e.prefill_ops, e.ttft_s, args.top_ops)
            );
            if !e.decode_ops.is_empty() {
                println!();
                let step: f64 = e.decode_ops.iter().map(|o| o.time_s).sum();
                print!(
                    "{}",
                    ops_table(
                        "decode op (mid-output step)",
                        &e.decode_ops,
                        step,
                        args.top_ops
                    )
                );
            }
        }
    }
    Ok(())
}
