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
            if result.summary.rejected > 0 {
                println!("{}", rejection_note(setups.iter().map(|(_, _, s)| s)));
            }
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

/// Why requests are turned away on these replicas: longer than `max_model_len`, more KV
/// than the cache holds, or (where chunked prefill is off and the stack keeps its token
/// budget, as TensorRT-LLM does) a prompt longer than the budget.
fn rejection_note<'a>(setups: impl Iterator<Item = &'a crate::setup::ReplicaSetup>) -> String {
    let mut why = Vec::new();
    for s in setups {
        let e = &s.engine;
        let mut w = format!(
            "longer than max_model_len {} or than the {} tokens of KV cache",
            e.max_model_len,
            e.kv_capacity_tokens()
        );
        if let Some(n) = e.longest_prompt() {
            w.push_str(&format!(
                ", or prompts over the {n}-token budget, which the {} stack keeps without chunked prefill (--enable-chunked-prefill or a larger --max-num-batched-tokens admits them)",
                s.deployment.stack.name
            ));
        }
        if !why.contains(&w) {
            why.push(w);
        }
    }
    format!("note: rejected requests are those {}", why.join("; "))
}
