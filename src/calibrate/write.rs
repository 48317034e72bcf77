//! The calibrated parameter file: the five keys of `roofline.toml` under a comment
//! header that says which data, which command and when, and that the fit is in-sample
//! for that data (such files are read only when given explicitly).

use super::{Fit, GroupFit, PARAM_NAMES};
use std::fmt::Write;

/// Today's date (UTC) as `YYYY-MM-DD`, from the system clock.
pub fn utc_date() -> String {
    let (y, m, d) = crate::units::civil_from_days(crate::units::unix_days_now());
    format!("{y:04}-{m:02}-{d:02}")
}

fn pct(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else {
        format!("{x:.1}")
    }
}

/// The text of `perf_model/calibrated/<slug>.toml` for the GPUs of `group`, written by
/// `command` on `date` from `data` (one line per input).
pub fn calibrated_toml(
    fit: &Fit,
    group: &GroupFit,
    command: &str,
    date: &str,
    data: &[String],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Calibrated roofline parameters for {}.",
        group.members.join(" and ")
    );
    let _ = writeln!(
        s,
        "# IN-SAMPLE: fitted on the measurements below, so scoring a model on them with this"
    );
    let _ = writeln!(
        s,
        "# file measures the fit, not the model. Never picked by default (the default is"
    );
    let _ = writeln!(
        s,
        "# kernel_efficiency/<gpu>.toml, else roofline.toml); pass it with --roofline-params."
    );
    let _ = writeln!(s, "# Written by `servesim calibrate` on {date}:");
    let _ = writeln!(s, "#   {command}");
    let _ = writeln!(s, "# Data:");
    for d in data {
        let _ = writeln!(s, "#   {d}");
    }
    let _ = writeln!(
        s,
        "# Fit: robust (Huber, 10 %) least squares on log time, bounded Nelder-Mead, {} evaluations; loss {:.5} -> {:.5}.",
        fit.evals, fit.loss_before, fit.loss_after
    );
    let _ = writeln!(
        s,
        "# GEMM and memory efficiencies are this GPU's; attention efficiency and overheads are the simulated (vLLM) stack's{}.",
        if fit.stack_fitted {
            ", fitted to every vLLM measurement in the data"
        } else {
            ": no such measurement in the data, so roofline.toml's values"
        }
    );
    let _ = writeln!(
        s,
        "# Error per set and metric, median |err| % / MAPE %: before -> after (-> with the written parameters, for sets on a stack of their own)."
    );
    for set in &fit.sets {
        for m in &set.metrics {
            let written = m.as_written.map_or(String::new(), |w| {
                format!(" -> {} / {}", pct(w.median_abs_pct), pct(w.mape_pct))
            });
            let _ = writeln!(
                s,
                "#   {} {}: {} / {} -> {} / {}{written} (n = {})",
                set.name,
                m.metric.label(),
                pct(m.before.median_abs_pct),
                pct(m.before.mape_pct),
                pct(m.after.median_abs_pct),
                pct(m.after.mape_pct),
                m.after.count
            );
        }
        if set.left_out > 0 {
            let _ = writeln!(
                s,
                "#   {}: {} batches left out (the simulated engine preempts them)",
                set.name, set.left_out
            );
        }
    }
    let mut stacks: Vec<&(String, super::StackParams)> = Vec::new();
    for st in fit.sets.iter().filter_map(|x| x.own_stack.as_ref()) {
        if !stacks.iter().any(|x| x.0 == st.0) {
            stacks.push(st);
        }
    }
    for (name, o) in stacks {
        let _ = writeln!(
            s,
            "# Stack `{name}` (not written): attention {:.3}, {:.2} ms per iteration + {:.1} us per layer.",
            o.attention_compute_efficiency,
            o.step_overhead_s * 1e3,
            o.per_layer_overhead_s * 1e6
        );
    }
    let p = &group.params;
    let values = [
        p.gemm_compute_efficiency,
        p.memory_efficiency,
        p.attention_compute_efficiency,
        p.step_overhead_s,
        p.per_layer_overhead_s,
    ];
    s.push('\n');
    for (i, (k, v)) in PARAM_NAMES.iter().zip(values).enumerate() {
        if i < 3 {
            let _ = writeln!(s, "{k} = {v:.4}");
        } else {
            let _ = writeln!(s, "{k} = {v:.7}");
        }
    }
    s
}
