//! `servesim validate` on the formats added for tables without timestamps: GenZ-style
//! per-request tables (one run per configuration) and the AIConfigurator serving
//! summary (each row a closed loop).

use super::{pct, signed_pct, Selector, SetsOutcome, ValidateOutcome};
use crate::paths::DataPaths;
use crate::report::table::Table;
use crate::validate::serving_summary::RowStatistic;
use crate::validate::stats::ErrorStats;
use crate::validate::{self, GenzTable, Metric, ReplayMode, SummaryTable, Validation};
use anyhow::Result;
use std::path::Path;

/// A short label of a replay mode (`closed c=8`).
fn replay_label(r: Option<ReplayMode>) -> String {
    match r {
        None => "-".into(),
        Some(ReplayMode::Recorded) => "recorded".into(),
        Some(ReplayMode::Burst) => "burst".into(),
        Some(ReplayMode::ClosedLoop { concurrency }) => match concurrency {
            Some(c) => format!("closed c={c}"),
            None => "closed (per row)".into(),
        },
        Some(ReplayMode::Regenerated {
            request_rate_rps,
            max_concurrency,
            ..
        }) => {
            let open =
                request_rate_rps.map_or_else(|| "open".into(), |r| format!("open {r} req/s"));
            match max_concurrency {
                Some(c) => format!("{open} cap {c}"),
                None => open,
            }
        }
        Some(ReplayMode::AfterEarlierRuns { runs }) => format!("after {runs} runs"),
    }
}

/// The errors of `m` in `v`, if compared.
fn errors(v: &Validation, m: Metric) -> Option<ErrorStats> {
    v.metrics
        .iter()
        .find(|r| r.metric == m)
        .and_then(|r| r.errors)
}

/// One line per GenZ group in `summary.json`.
#[derive(serde::Serialize)]
struct GenzSetSummary {
    name: String,
    model: String,
    hardware: String,
    tensor_parallel_size: u32,
    replay: Option<ReplayMode>,
    requests: usize,
    ttft_median_abs_pct: f64,
    tpot_median_abs_pct: f64,
    e2e_median_abs_pct: f64,
    error: Option<String>,
}

/// Validate a GenZ-style table: one configuration is one run (as any measured run);
/// several are validated one by one into a folder each, with `summary.json`.
pub(super) fn genz(
    name: &str,
    table: &GenzTable,
    settings: &validate::Settings,
    paths: &DataPaths,
) -> Result<ValidateOutcome> {
    let mut samples: Vec<String> = Vec::new();
    if let [g] = table.groups.as_slice() {
        let v = validate::validate_run(name, &g.run, settings, paths)?;
        return Ok(ValidateOutcome::Run {
            validation: Box::new(v),
            requests: g.run.requests.len(),
        });
    }
    let mut t = Table::new(&[
        "set",
        "model",
        "hardware",
        "TP",
        "replay",
        "requests",
        "TTFT med|err| %",
        "TPOT med|err| %",
        "E2E med|err| %",
    ]);
    let mut sets: Vec<GenzSetSummary> = Vec::new();
    let mut ran = Vec::new();
    let mut before = Vec::new();
    let mut failed = Vec::new();
    for (i, g) in table.groups.iter().enumerate() {
        // Distinct keys can clean to one slug (`a/b` and `a-b`): the later one gets its
        // position.
        let slug = match g.key.slug() {
            s if s.is_empty() => format!("group{i}"),
            s if sets.iter().any(|x| x.name == s) => format!("{s}_{i}"),
            s => s,
        };
        let mut s = GenzSetSummary {
            name: slug.clone(),
            model: String::new(),
            hardware: String::new(),
            tensor_parallel_size: 0,
            replay: None,
            requests: g.run.requests.len(),
            ttft_median_abs_pct: f64::NAN,
            tpot_median_abs_pct: f64::NAN,
            e2e_median_abs_pct: f64::NAN,
            error: None,
        };
        match validate::validate_run(&slug, &g.run, settings, paths) {
            Ok(v) => {
                super::note_sample(&mut samples, &v);
                s.model.clone_from(&v.deployment.model);
                s.hardware.clone_from(&v.deployment.hardware);
                s.tensor_parallel_size = v.deployment.tensor_parallel_size;
                s.replay = v.replay;
                s.ttft_median_abs_pct = v.median_abs_pct(Metric::Ttft);
                s.tpot_median_abs_pct = v.median_abs_pct(Metric::Tpot);
                s.e2e_median_abs_pct = v.median_abs_pct(Metric::E2e);
                t.row(vec![
                    slug.clone(),
                    s.model.clone(),
                    s.hardware.clone(),
                    s.tensor_parallel_size.to_string(),
                    replay_label(s.replay),
                    s.requests.to_string(),
                    pct(s.ttft_median_abs_pct),
                    pct(s.tpot_median_abs_pct),
                    pct(s.e2e_median_abs_pct),
                ]);
                before.push(format!("{slug}:"));
                before.extend(v.notes.iter().map(|n| format!("  note: {n}")));
                ran.push((slug.clone(), v));
            }
            Err(e) => {
                let mut row = vec![slug.clone(), "failed".into()];
                row.extend(["", "", ""].map(String::from));
                row.push(s.requests.to_string());
                row.extend(["-", "-", "-"].map(String::from));
                t.row(row);
                failed.push(format!("{slug}: {e}"));
                s.error = Some(e.to_string());
            }
        }
        sets.push(s);
    }
    #[derive(serde::Serialize)]
    struct Summary<'a> {
        source: &'a Path,
        sets: &'a [GenzSetSummary],
    }
    let summary = serde_json::to_string_pretty(&Summary {
        source: &table.source,
        sets: &sets,
    })?;
    Ok(ValidateOutcome::Sets(SetsOutcome {
        summary,
        sets: ran,
        before,
        table: t.render(),
        samples,
        notes: Vec::new(),
        failed,
        skipped: Vec::new(),
    }))
}

/// One line per serving-summary group in `summary.json`.
#[derive(serde::Serialize)]
struct SummarySet {
    name: String,
    engine: String,
    engine_version: String,
    table_model: String,
    table_gpu: String,
    precision: String,
    serving_stack: String,
    model: String,
    hardware: String,
    tensor_parallel_size: u32,
    num_replicas: u32,
    expert_parallel: bool,
    rows: usize,
    ttft_errors: Option<ErrorStats>,
    tpot_errors: Option<ErrorStats>,
    error: Option<String>,
}

/// Validate the AIConfigurator serving summary: one folder per group, `summary.json`,
/// and a table of the median absolute error and bias of mean TTFT and TPOT per group
/// and over all rows. Each group's wall time goes to stderr as it finishes.
pub(super) fn summary(
    input: &Path,
    table: &SummaryTable,
    settings: &validate::Settings,
    select: &Selector,
    paths: &DataPaths,
) -> Result<SetsOutcome> {
    let mut samples: Vec<String> = Vec::new();
    let engine = |g: &validate::SummaryGroup| format!("{}-{}", g.key.engine, g.key.version);
    let keep = |g: &validate::SummaryGroup| {
        select.matches(&g.key.model, &g.key.gpu, g.key.tp, Some(&engine(g)))
    };
    let done = |g: &validate::SummaryGroup, d: std::time::Duration| {
        eprintln!(
            "  {}: {} rows in {:.1} s",
            g.slug,
            g.rows.len(),
            d.as_secs_f64()
        );
    };
    let results = validate::validate_summary(table, settings, paths, keep, &done)?;
    if results.is_empty() {
        anyhow::bail!(
            "no group of {} matches --select ({} groups)",
            input.display(),
            table.groups.len()
        );
    }
    let mut t = Table::new(&[
        "set",
        "stack",
        "TP",
        "DP",
        "EP",
        "rows",
        "TTFT med|err| %",
        "TTFT bias %",
        "TPOT med|err| %",
        "TPOT bias %",
    ]);
    let mut sets = Vec::new();
    let mut ran = Vec::new();
    let mut all: [(Vec<f64>, Vec<f64>); 2] = Default::default();
    let mut shared: Option<Vec<String>> = None;
    let mut failed = Vec::new();
    for (g, res) in results {
        let k = &g.key;
        let slug = g.slug.clone();
        let mut s = SummarySet {
            name: slug.clone(),
            engine: k.engine.clone(),
            engine_version: k.version.clone(),
            table_model: k.model.clone(),
            table_gpu: k.gpu.clone(),
            precision: k.precision.clone(),
            serving_stack: String::new(),
            model: String::new(),
            hardware: String::new(),
            tensor_parallel_size: 0,
            num_replicas: 0,
            expert_parallel: false,
            rows: g.rows.len(),
            ttft_errors: None,
            tpot_errors: None,
            error: None,
        };
        let cell =
            |e: Option<ErrorStats>, f: fn(&ErrorStats) -> String| e.map_or("-".into(), |e| f(&e));
        match res {
            Ok(v) => {
                super::note_sample(&mut samples, &v);
                let d = &v.deployment;
                s.serving_stack = settings
                    .deployment
                    .serving_stack
                    .clone()
                    .unwrap_or_else(|| g.stack.clone());
                s.model.clone_from(&d.model);
                s.hardware.clone_from(&d.hardware);
                s.tensor_parallel_size = d.tensor_parallel_size;
                s.num_replicas = v.num_replicas;
                s.expert_parallel = g.layout.expert_parallel;
                s.ttft_errors = errors(&v, Metric::Ttft);
                s.tpot_errors = errors(&v, Metric::Tpot);
                for (slot, m) in all.iter_mut().zip([Metric::Ttft, Metric::Tpot]) {
                    if let Some((sim, meas)) = v.rows.pairs(m) {
                        slot.0.extend_from_slice(sim);
                        slot.1.extend_from_slice(meas);
                    }
                }
                shared = Some(match shared {
                    None => v.notes.clone(),
                    Some(n) => n.into_iter().filter(|x| v.notes.contains(x)).collect(),
                });
                t.row(vec![
                    slug.clone(),
                    s.serving_stack.clone(),
                    s.tensor_parallel_size.to_string(),
                    s.num_replicas.to_string(),
                    if s.expert_parallel { "yes" } else { "no" }.into(),
                    s.rows.to_string(),
                    cell(s.ttft_errors, |e| pct(e.median_abs_pct)),
                    cell(s.ttft_errors, |e| signed_pct(e.bias_pct)),
                    cell(s.tpot_errors, |e| pct(e.median_abs_pct)),
                    cell(s.tpot_errors, |e| signed_pct(e.bias_pct)),
                ]);
                ran.push((slug, v));
            }
            Err(e) => {
                let mut row = vec![slug.clone(), "failed".into()];
                row.extend(["", "", ""].map(String::from));
                row.push(s.rows.to_string());
                row.extend(["-", "-", "-", "-"].map(String::from));
                t.row(row);
                failed.push(format!("{slug}: {e}"));
                s.error = Some(e.to_string());
            }
        }
        sets.push(s);
    }
    let overall = [
        ErrorStats::of(&all[0].0, &all[0].1),
        ErrorStats::of(&all[1].0, &all[1].1),
    ];
    let mut row = vec!["all".to_owned()];
    row.extend(["", "", "", ""].map(String::from));
    row.push(overall[0].count.to_string());
    for e in &overall {
        row.extend([pct(e.median_abs_pct), signed_pct(e.bias_pct)]);
    }
    t.row(row);
    #[derive(serde::Serialize)]
    struct Overall {
        ttft: ErrorStats,
        tpot: ErrorStats,
    }
    #[derive(serde::Serialize)]
    struct Summary<'a> {
        source: &'a Path,
        metrics: &'a str,
        sets: &'a [SummarySet],
        overall: Overall,
        skipped: &'a [String],
    }
    // Which statistic the rows give (the table's `statistic` column).
    let rows = || table.groups.iter().flat_map(|g| &g.rows);
    let medians = rows()
        .filter(|r| r.statistic == RowStatistic::Median)
        .count();
    let statistic = match medians {
        0 => "mean",
        m if m == rows().count() => "median",
        _ => "mean or median (as each row gives)",
    };
    let metrics =
        format!("{statistic} TTFT and TPOT per row, simulated vs measured (bias > 0: the simulator is slower)");
    let summary = serde_json::to_string_pretty(&Summary {
        source: &table.source,
        metrics: &metrics,
        sets: &sets,
        overall: Overall {
            ttft: overall[0],
            tpot: overall[1],
        },
        skipped: &table.skipped,
    })?;
    Ok(SetsOutcome {
        summary,
        sets: ran,
        before: vec![format!(
            "{}: {statistic} TTFT and TPOT per closed-loop row, simulated vs measured (bias > 0: the simulator is slower)",
            input.display()
        )],
        table: t.render(),
        samples,
        notes: shared.unwrap_or_default(),
        failed,
        skipped: table.skipped.clone(),
    })
}
