//! `servesim validate` on tables whose groups are validated one by one: the static-batch
//! tables (Argonne, Splitwise) and the TensorRT-LLM offline throughput table.

use super::{pct, signed_pct, Selector, SetsOutcome};
use crate::paths::DataPaths;
use crate::report::table::Table;
use crate::validate::stats::ErrorStats;
use crate::validate::{self, Metric, Validation};
use anyhow::Result;
use std::path::Path;

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
pub(super) fn throughput(
    input: &Path,
    table: &validate::ThroughputTable,
    settings: &validate::Settings,
    select: &Selector,
    paths: &DataPaths,
) -> Result<SetsOutcome> {
    let mut samples: Vec<String> = Vec::new();
    let results = validate::validate_throughput(table, settings, paths, |g| {
        select.matches(&g.key.model, &g.key.gpu, g.key.tp, None)
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
    let mut sets = Vec::new();
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
                super::note_sample(&mut samples, &v);
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
                    slug.clone(),
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
                sets.push((slug, v));
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
    #[derive(serde::Serialize)]
    struct Summary<'a> {
        source: &'a Path,
        metric: &'static str,
        sets: &'a [ThroughputSetSummary],
        overall: ErrorStats,
        skipped: &'a [String],
    }
    let summary = serde_json::to_string_pretty(&Summary {
        source: &table.source,
        metric: "total output throughput, tok/s (bias > 0: the simulator is faster)",
        sets: &summaries,
        overall,
        skipped: &table.skipped,
    })?;
    Ok(SetsOutcome {
        summary,
        sets,
        before: vec![format!(
            "{}: total output throughput, simulated vs measured per row (bias > 0: the simulator is faster)",
            input.display()
        )],
        table: t.render(),
        samples,
        notes: notes.unwrap_or_default(),
        failed: Vec::new(),
        skipped: table.skipped.clone(),
    })
}

/// Validate a static-batch table: one folder per group, `summary.json`, and a table
/// of the median errors per group.
pub(super) fn static_sets(
    input: &Path,
    table: &validate::StaticTable,
    settings: &validate::Settings,
    select: &Selector,
    paths: &DataPaths,
) -> Result<SetsOutcome> {
    let mut samples: Vec<String> = Vec::new();
    let keep = |g: &validate::TableGroup| {
        select.matches(
            &g.key.model,
            &g.key.hardware,
            g.tensor_parallel_size(),
            None,
        )
    };
    let results = validate::validate_table(table, settings, paths, keep)?;
    if results.is_empty() {
        anyhow::bail!(
            "no group of {} matches --select (groups: {})",
            input.display(),
            table
                .groups
                .iter()
                .map(|g| g.slug())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut summaries = Vec::new();
    let mut sets = Vec::new();
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
                super::note_sample(&mut samples, &v);
                let s = summary_of(&v);
                t.row(vec![
                    slug.clone(),
                    s.model.clone(),
                    s.hardware.clone(),
                    s.tensor_parallel_size.to_string(),
                    s.rows.to_string(),
                    pct(s.e2e_median_abs_pct),
                    pct(s.tpot_median_abs_pct),
                    pct(s.ttft_median_abs_pct),
                ]);
                summaries.push(s);
                sets.push((slug, v));
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
    #[derive(serde::Serialize)]
    struct Summary<'a> {
        source: &'a Path,
        sets: &'a [SetSummary],
        skipped: &'a [String],
    }
    let summary = serde_json::to_string_pretty(&Summary {
        source: &table.source,
        sets: &summaries,
        skipped: &table.skipped,
    })?;
    Ok(SetsOutcome {
        summary,
        sets,
        before: Vec::new(),
        table: t.render(),
        samples,
        notes: table.notes.clone(),
        failed: Vec::new(),
        skipped: table.skipped.clone(),
    })
}
