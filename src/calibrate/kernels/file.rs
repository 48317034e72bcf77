//! The text of `perf_model/kernel_efficiency/<hardware>.toml` and its reader.
//!
//! The file is a roofline parameter file (the five keys
//! [`RooflineParams::from_file`] reads) followed by a `[derivation]` table that records
//! how the efficiencies were obtained. The text depends only on the derivation (no
//! date, no absolute path), so re-running the derivation reproduces it byte for byte.

use super::{Derivation, KernelEfficiency, KernelKind, MemoryTransfer, SetFit};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::perf::roofline::RooflineParams;
use serde::Deserialize;
use std::fmt::Write;
use std::path::Path;

/// A float as TOML: the shortest decimal that reads back as the same value, with a
/// decimal point.
fn num(x: f64) -> String {
    let s = format!("{x}");
    if s.contains('.') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", ")
    )
}

/// The file text for `k`.
pub fn to_toml(k: &KernelEfficiency) -> String {
    let d = &k.derivation;
    let p = &k.params;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Roofline efficiencies of {} (perf_model/hardware/{}.toml), derived from",
        d.name, d.hardware
    );
    match &d.transfer_from {
        Some(from) => {
            let _ = writeln!(
                s,
                "# public kernel measurements of the same silicon: taken from {from}.toml (why: `note`)."
            );
        }
        None => {
            let _ = writeln!(s, "# public kernel measurements of this GPU.");
        }
    }
    let _ = writeln!(
        s,
        "# Written by `{}`; deterministic (a test recomputes this file from the CSVs).",
        d.command
    );
    let _ = writeln!(
        s,
        "# No serving benchmark or validation set was read. Procedure: README.md here;"
    );
    let _ = writeln!(s, "# what was read and how well it fits: [derivation].");
    if !d.kept_default.is_empty() {
        let _ = writeln!(
            s,
            "# Kept at roofline.toml's values (no kernel data binds them): {}.",
            d.kept_default.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "# step_overhead_s and per_layer_overhead_s are roofline.toml's, so the file has every"
    );
    let _ = writeln!(
        s,
        "# key of a parameter file; the model takes host costs from the serving stack."
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "gemm_compute_efficiency = {}",
        num(p.gemm_compute_efficiency)
    );
    let _ = writeln!(s, "memory_efficiency = {}", num(p.memory_efficiency));
    let _ = writeln!(
        s,
        "attention_compute_efficiency = {}",
        num(p.attention_compute_efficiency)
    );
    let _ = writeln!(s, "kernel_latency_s = {}", num(p.kernel_latency_s));
    let _ = writeln!(s, "step_overhead_s = {}", num(p.step_overhead_s));
    let _ = writeln!(s, "per_layer_overhead_s = {}", num(p.per_layer_overhead_s));
    let _ = writeln!(s);
    let _ = writeln!(s, "[derivation]");
    let _ = writeln!(s, "hardware = {}", quote(&d.hardware));
    let _ = writeln!(s, "name = {}", quote(&d.name));
    let _ = writeln!(s, "command = {}", quote(&d.command));
    let _ = writeln!(s, "peak_bf16_tflops = {}", num(d.peak_bf16_tflops));
    let _ = writeln!(s, "bandwidth_gb_per_s = {}", num(d.bandwidth_gb_per_s));
    let _ = writeln!(s, "derived = {}", list(&d.derived));
    let _ = writeln!(s, "kept_default = {}", list(&d.kept_default));
    if let Some(f) = &d.transfer_from {
        let _ = writeln!(s, "transfer_from = {}", quote(f));
    }
    if let Some(m) = d.memory_transfer {
        let _ = writeln!(s, "memory_transfer = {}", quote(m.name()));
    }
    if let Some(n) = &d.note {
        let _ = writeln!(s, "note = {}", quote(n));
    }
    for set in &d.sets {
        let _ = writeln!(s);
        let _ = writeln!(s, "[[derivation.set]]");
        let _ = writeln!(s, "kind = {}", quote(set.kind.name()));
        let _ = writeln!(s, "file = {}", quote(&set.file));
        let _ = writeln!(s, "dtype = {}", quote(set.dtype.name()));
        let _ = writeln!(s, "used = {}", set.used);
        let _ = writeln!(s, "rows = {}", set.rows);
        let _ = writeln!(s, "rows_in_range = {}", set.rows_in_range);
        let opt_f = |s: &mut String, k: &str, v: Option<f64>| {
            if let Some(v) = v {
                let _ = writeln!(s, "{k} = {}", num(v));
            }
        };
        let opt_u = |s: &mut String, k: &str, v: Option<usize>| {
            if let Some(v) = v {
                let _ = writeln!(s, "{k} = {v}");
            }
        };
        opt_f(&mut s, "floor_us", set.floor_us);
        let _ = writeln!(s, "rows_fitted = {}", set.rows_fitted);
        opt_u(&mut s, "compute_bound_rows", set.compute_bound_rows);
        opt_u(&mut s, "memory_bound_rows", set.memory_bound_rows);
        opt_f(
            &mut s,
            "alone_compute_efficiency",
            set.alone_compute_efficiency,
        );
        opt_f(
            &mut s,
            "alone_memory_efficiency",
            set.alone_memory_efficiency,
        );
        opt_f(&mut s, "median_abs_err_pct", set.median_abs_err_pct);
        opt_f(&mut s, "p90_abs_err_pct", set.p90_abs_err_pct);
        opt_f(
            &mut s,
            "median_abs_err_in_range_pct",
            set.median_abs_err_in_range_pct,
        );
        if let Some(x) = &set.detail {
            let _ = writeln!(s, "detail = {}", quote(x));
        }
        if let Some(x) = &set.note {
            let _ = writeln!(s, "note = {}", quote(x));
        }
    }
    s
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    gemm_compute_efficiency: f64,
    memory_efficiency: f64,
    attention_compute_efficiency: f64,
    step_overhead_s: f64,
    per_layer_overhead_s: f64,
    kernel_latency_s: f64,
    derivation: DerivationToml,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DerivationToml {
    hardware: String,
    name: String,
    command: String,
    peak_bf16_tflops: f64,
    bandwidth_gb_per_s: f64,
    derived: Vec<String>,
    kept_default: Vec<String>,
    transfer_from: Option<String>,
    memory_transfer: Option<MemoryTransfer>,
    note: Option<String>,
    #[serde(default)]
    set: Vec<SetToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetToml {
    kind: String,
    file: String,
    dtype: DType,
    used: bool,
    rows: usize,
    rows_in_range: usize,
    floor_us: Option<f64>,
    rows_fitted: usize,
    compute_bound_rows: Option<usize>,
    memory_bound_rows: Option<usize>,
    alone_compute_efficiency: Option<f64>,
    alone_memory_efficiency: Option<f64>,
    median_abs_err_pct: Option<f64>,
    p90_abs_err_pct: Option<f64>,
    median_abs_err_in_range_pct: Option<f64>,
    detail: Option<String>,
    note: Option<String>,
}

/// Read a kernel-efficiency file with its derivation (the parameters are checked as
/// [`RooflineParams::from_file`] checks them).
pub fn read(path: &Path) -> Result<KernelEfficiency> {
    // The parameters' own checks.
    RooflineParams::from_file(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let f: FileToml =
        toml::from_str(&text).map_err(|e| crate::error::toml_error(path, &text, &e))?;
    let params = RooflineParams {
        gemm_compute_efficiency: f.gemm_compute_efficiency,
        memory_efficiency: f.memory_efficiency,
        attention_compute_efficiency: f.attention_compute_efficiency,
        step_overhead_s: f.step_overhead_s,
        per_layer_overhead_s: f.per_layer_overhead_s,
        kernel_latency_s: f.kernel_latency_s,
    };
    let d = f.derivation;
    let sets = d
        .set
        .into_iter()
        .map(|x| {
            let kind = KernelKind::parse(&x.kind).ok_or_else(|| {
                Error::input(path, Some("kind"), format!("unknown kind `{}`", x.kind))
            })?;
            Ok(SetFit {
                kind,
                file: x.file,
                dtype: x.dtype,
                used: x.used,
                rows: x.rows,
                rows_in_range: x.rows_in_range,
                floor_us: x.floor_us,
                rows_fitted: x.rows_fitted,
                compute_bound_rows: x.compute_bound_rows,
                memory_bound_rows: x.memory_bound_rows,
                alone_compute_efficiency: x.alone_compute_efficiency,
                alone_memory_efficiency: x.alone_memory_efficiency,
                median_abs_err_pct: x.median_abs_err_pct,
                p90_abs_err_pct: x.p90_abs_err_pct,
                median_abs_err_in_range_pct: x.median_abs_err_in_range_pct,
                detail: x.detail,
                note: x.note,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(KernelEfficiency {
        params,
        derivation: Derivation {
            hardware: d.hardware,
            name: d.name,
            command: d.command,
            peak_bf16_tflops: d.peak_bf16_tflops,
            bandwidth_gb_per_s: d.bandwidth_gb_per_s,
            derived: d.derived,
            kept_default: d.kept_default,
            transfer_from: d.transfer_from,
            memory_transfer: d.memory_transfer,
            note: d.note,
            sets,
        },
    })
}
