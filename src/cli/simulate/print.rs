//! `simulate`'s printout: the summary as a table, CSV or JSON.

use super::*;

/// Print a run's summary in `format` (the CLI's output).
pub fn print_outcome(out: &SimulateOutcome, format: Format) -> Result<()> {
    let (result, run_name, setups, output_dir) =
        (&out.result, &out.run_name, &out.setups, &out.output_dir);
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&result.summary)?),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(std::io::stdout().lock());
            w.write_record(["metric", "mean", "p50", "p90", "p95", "p99", "p99.9", "max"])?;
            for (name, d) in crate::report::latency_rows(&result.summary) {
                w.write_record([name.to_owned()].into_iter().chain(
                    [d.mean, d.p50, d.p90, d.p95, d.p99, d.p99_9, d.max].map(|x| format!("{x:.6}")),
                ))?;
            }
            w.flush()?;
        }
        Format::Table => {
            println!("{run_name}:");
            for (count, role, s) in setups {
                let d = &s.deployment;
                let role = match role {
                    ReplicaRole::Unified => String::new(),
                    r => format!(" {r:?}").to_lowercase(),
                };
                let dp = if d.dp > 1 {
                    format!(" DP{}", d.dp)
                } else {
                    String::new()
                };
                let ep = if d.ep > 1 {
                    format!(" EP{}", d.ep)
                } else {
                    String::new()
                };
                println!(
                    "  {count} ×{role} {} on {} × {} (TP{} PP{}{dp}{ep}), {} scheduler ({}), {} KV blocks of {} tokens",
                    d.model.name,
                    d.num_gpus(),
                    d.gpu().name,
                    d.tp,
                    d.pp,
                    s.engine.scheduler,
                    s.engine.describe_batching(),
                    s.engine.num_gpu_blocks,
                    s.engine.block_size
                );
                println!("  latency model: {}", s.latency.describe());
            }
            print!("{}", crate::report::summary_table(&result.summary));
            if let Some(dir) = &output_dir {
                println!(
                    "wrote {}/{{requests.csv,timeseries.csv,summary.json,config.json,report.html}}",
                    dir.display()
                );
            }
        }
    }
    Ok(())
}
