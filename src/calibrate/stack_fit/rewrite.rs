//! Writing a fit back into its stack file: the fitted figures, the sets they were
//! fitted on and their sources, with the file's comments and other keys kept.

use super::StackFit;
use crate::error::Result;

/// The stack file at `path` with `fit`'s values, `fitted_on` and sources written in
/// (comments and every other key kept).
pub fn rewrite(path: &std::path::Path, fit: &StackFit, command: &str) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::error::Error::io(path, e))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| crate::error::Error::input(path, None, e.to_string()))?;
    let sets: toml_edit::Array = fit.sets.iter().map(String::as_str).collect();
    let date = crate::calibrate::utc_date();
    doc["host"]["step_us"] = toml_edit::value(fit.step_us);
    doc["host"]["fitted_on"] = toml_edit::value(sets.clone());
    doc["host"]["source"] = toml_edit::value(if fit.sets.is_empty() {
        format!("the prior (no measured set to fit on; `{command}` on {date})")
    } else {
        format!(
        "[fit] exposed host time per iteration{}, {} by `{command}` on {date} (mean |ln(simulated/measured)| of run TPOT and static-batch E2E {:.3} -> {:.3}; units per set: {})",
        if fit.per_sequence_serial_us.is_some() && !fit.step_held {
            " and per sequence between iterations"
        } else {
            ""
        },
        if fit.step_held { "held (the section's other figures fitted)" } else { "fitted" },
        fit.loss_before,
        fit.loss_after,
        fit.units
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
        )
    });
    if let Some(k) = fit.per_kernel_us {
        doc["host"]["per_kernel_us"] = toml_edit::value(k);
    }
    if let Some(v) = fit.per_sequence_serial_us {
        doc["host"]["per_sequence_serial_us"] = toml_edit::value(v);
    }
    let fitted = if fit.sets.is_empty() {
        format!("the prior (no measured set to fit on; `{command}` on {date})")
    } else {
        format!("[fit] with host.step_us, by `{command}` on {date}")
    };
    let unfitted =
        format!("no data to fit on (`{command}` on {date}): the GPU's memory efficiency");
    for (section, key, value) in [
        (
            "gemm",
            "bandwidth_efficiency",
            fit.gemm_bandwidth_efficiency,
        ),
        (
            "paged_attention",
            "decode_bandwidth_efficiency",
            fit.decode_bandwidth_efficiency,
        ),
    ] {
        let Some(t) = doc
            .get_mut(section)
            .and_then(toml_edit::Item::as_table_like_mut)
        else {
            continue;
        };
        // Replacing an item in place keeps the comments above its key.
        let mut set = |k: &str, item: toml_edit::Item| match t.get_mut(k) {
            Some(old) => *old = item,
            None => {
                t.insert(k, item);
            }
        };
        match value {
            Some(e) => {
                set(key, toml_edit::value(e));
                set("fitted_on", toml_edit::value(sets.clone()));
                set("source", toml_edit::value(fitted.as_str()));
            }
            None => {
                // No data and no prior: nothing says how fast the stack's own kernel is.
                set("fitted_on", toml_edit::value(toml_edit::Array::new()));
                set("source", toml_edit::value(unfitted.as_str()));
                t.remove(key);
            }
        }
    }
    if let Some(r) = fit.request_us {
        let on: toml_edit::Array = fit.request_sets.iter().map(String::as_str).collect();
        doc["api_server"]["request_us"] = toml_edit::value(r);
        doc["api_server"]["fitted_on"] = toml_edit::value(on);
        doc["api_server"]["source"] = toml_edit::value(if fit.request_sets.is_empty() {
            format!("the prior (no client-timed run to fit on; `{command}` on {date})")
        } else {
            format!(
                "[fit] median TTFT shortfall per request of the client-timed runs at the fitted host time, by `{command}` on {date}"
            )
        });
    }
    Ok(doc.to_string())
}
