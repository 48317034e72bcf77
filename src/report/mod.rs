//! Writers for run outputs: `requests.csv`, `timeseries.csv`, `summary.json` and tables.
//!
//! Floats in CSV files are written with fixed precision (microseconds for times) so the
//! same run gives byte-identical files on every platform; a missing value (the TTFT of
//! a rejected request, the TPOT of a one-token output) is an empty cell.

use crate::engine::RequestRecord;
use crate::error::{Error, Result};
use crate::metrics::{DistStats, Summary, TimeSeriesRow};
use std::io::Write;
use std::path::Path;

pub mod charts;
mod fixed;
pub mod html;
pub mod run_data;
pub mod table;

pub use fixed::{push_fixed, push_fixed_bytes, push_u64};

/// Header of `requests.csv`.
pub const REQUESTS_HEADER: &str = "request_id,replica,arrival_time_s,input_tokens,output_tokens,scheduled_time_s,first_token_time_s,finish_time_s,ttft_s,tpot_s,e2e_s,queue_s,preemptions,prefix_hit_tokens,status,attempts";

/// Header of `timeseries.csv`.
pub const TIMESERIES_HEADER: &str = "time_s,running,waiting,kv_blocks_used,batch_tokens";

/// The column `--slo-window-s` adds to `timeseries.csv`: the SLO attainment of the
/// window of arrivals each row's time falls in (empty where no request arrived).
pub const SLO_WINDOW_COLUMN: &str = "slo_window_attainment";

/// Append a column `name` to the `timeseries.csv` at `path` (rewritten in place): each
/// row gets `value_at` of its time, s ([`SLO_WINDOW_COLUMN`], `replicas`).
pub fn add_timeseries_column(
    path: &std::path::Path,
    name: &str,
    value_at: impl Fn(f64) -> String,
) -> crate::Result<()> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::Error::io(path, e))?;
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for (i, line) in text.lines().enumerate() {
        out.push_str(line);
        out.push(',');
        if i == 0 {
            out.push_str(name);
        } else {
            let t: f64 = line
                .split(',')
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(f64::NAN);
            out.push_str(&value_at(t));
        }
        out.push('\n');
    }
    std::fs::write(path, out).map_err(|e| crate::Error::io(path, e))
}

/// A float with `decimals` digits, or an empty string for NaN.
pub fn fixed(x: f64, decimals: usize) -> String {
    let mut s = String::new();
    if !x.is_nan() {
        push_fixed(&mut s, x, decimals as u32);
    }
    s
}

/// Append a float cell: `decimals` digits, or nothing for NaN.
fn push_cell(out: &mut Vec<u8>, x: f64, decimals: u32) {
    if !x.is_nan() {
        push_fixed_bytes(out, x, decimals);
    }
}

/// Append an integer and a comma.
fn push_int(out: &mut Vec<u8>, x: impl Into<u64>) {
    push_u64(out, x.into());
    out.push(b',');
}

/// Write one `requests.csv` row (times in seconds with nanosecond precision).
pub fn write_request_row(w: &mut dyn Write, r: &RequestRecord) -> std::io::Result<()> {
    let mut line = Vec::with_capacity(192);
    push_request_row(&mut line, r);
    w.write_all(&line)
}

/// Append one `requests.csv` row, newline included, to `line`.
pub fn push_request_row(line: &mut Vec<u8>, r: &RequestRecord) {
    push_int(line, r.request_id);
    push_int(line, r.replica);
    push_cell(line, r.arrival_time_s, 9);
    line.push(b',');
    push_int(line, r.input_tokens);
    push_int(line, r.output_tokens);
    for x in r.times_s() {
        push_cell(line, x, 9);
        line.push(b',');
    }
    push_int(line, r.preemptions);
    push_int(line, r.prefix_hit_tokens);
    line.extend_from_slice(r.status.as_str().as_bytes());
    line.push(b',');
    push_u64(line, u64::from(r.attempts));
    line.push(b'\n');
}

/// Write one `timeseries.csv` row.
pub fn write_timeseries_row(w: &mut dyn Write, r: &TimeSeriesRow) -> std::io::Result<()> {
    writeln!(
        w,
        "{},{},{},{},{}",
        r.time_s, r.running, r.waiting, r.kv_blocks_used, r.batch_tokens
    )
}

/// Header of `distributions.csv`.
pub const DISTRIBUTIONS_HEADER: &str = "metric,quantile,value_s";

/// Header of `throughput.csv`.
pub const THROUGHPUT_HEADER: &str = "time_s,completed,output_tokens";

/// Write `distributions.csv`: each distribution's CDF points.
pub fn write_cdfs(path: &Path, c: &crate::metrics::Cdfs) -> Result<()> {
    let mut out = Vec::with_capacity(64 * c.points.len() + 64);
    out.extend_from_slice(DISTRIBUTIONS_HEADER.as_bytes());
    out.push(b'\n');
    for (name, q, v) in &c.points {
        out.extend_from_slice(name.as_bytes());
        out.push(b',');
        push_fixed_bytes(&mut out, *q, 5);
        out.push(b',');
        push_fixed_bytes(&mut out, *v, 9);
        out.push(b'\n');
    }
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
}

/// Write `throughput.csv`: requests finished and output tokens per second.
pub fn write_throughput(path: &Path, bins: &[crate::metrics::ThroughputBin]) -> Result<()> {
    let mut out = Vec::with_capacity(32 * bins.len() + 64);
    out.extend_from_slice(THROUGHPUT_HEADER.as_bytes());
    out.push(b'\n');
    for (t, b) in bins.iter().enumerate() {
        push_int(&mut out, t as u64);
        push_int(&mut out, b.completed);
        push_fixed_bytes(&mut out, b.output_tokens, 3);
        out.push(b'\n');
    }
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
}

/// Serialize `value` as pretty JSON into `path`.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Config(format!("cannot serialize {}: {e}", path.display())))?;
    std::fs::write(path, text + "\n").map_err(|e| Error::io(path, e))
}

/// Rows of the latency table for a summary: (metric, stats).
pub fn latency_rows(s: &Summary) -> [(&'static str, &DistStats); 5] {
    [
        ("TTFT", &s.ttft_s),
        ("TPOT", &s.tpot_s),
        ("ITL", &s.itl_s),
        ("E2E", &s.e2e_s),
        ("queue", &s.queue_s),
    ]
}

/// The stdout summary of a simulation as a text table.
pub fn summary_table(s: &Summary) -> String {
    let mut out = String::new();
    let mut t = table::Table::new(&["metric", "mean", "p50", "p90", "p99", "max"]);
    for (name, d) in latency_rows(s) {
        let ms = |x: f64| format!("{:.2}", x * 1e3);
        t.row(vec![
            format!("{name} (ms)"),
            ms(d.mean),
            ms(d.p50),
            ms(d.p90),
            ms(d.p99),
            ms(d.max),
        ]);
    }
    out.push_str(&format!(
        "requests: {} completed, {} rejected over {:.1} s | {:.2} req/s | {:.0} output tok/s | {:.0} total tok/s\n",
        s.completed, s.rejected, s.duration_s, s.request_throughput_per_s, s.output_tokens_per_s, s.total_tokens_per_s
    ));
    if let Some(a) = &s.autoscale {
        let usd = |x: Option<f64>| x.map_or(String::new(), |v| format!(", {v:.2} USD"));
        out.push_str(&format!(
            "autoscale: {}–{} replicas, peak {}, mean {:.2}; {} steps up, {} down; {:.2} GPU-hours{} (static fleet at the peak: {:.2} GPU-hours{})\n",
            a.min_replicas,
            a.max_replicas,
            a.peak_replicas,
            a.mean_replicas,
            a.scale_ups,
            a.scale_downs,
            a.gpu_hours,
            usd(a.usd),
            a.static_peak_gpu_hours,
            usd(a.static_peak_usd)
        ));
    }
    if let Some(f) = &s.failures {
        out.push_str(&format!(
            "failures: {} replica outages, {:.0} replica-seconds down (outage and restart), {} requests failed\n",
            f.outages,
            f.replica_down_s,
            f.failed_requests
        ));
    }
    if let Some(c) = &s.clients {
        out.push_str(&format!(
            "clients: {} timed out, {} abandoned, {} retries; {:.1}% of requests completed\n",
            c.timed_out,
            c.abandoned,
            c.retries,
            c.completed_fraction * 100.0
        ));
    }
    out.push_str(&format!(
        "engine: {} iterations, mean batch {:.1} seqs / {:.0} tokens, KV usage mean {:.1}% max {:.1}%, {} preemptions, {} prefix-hit tokens\n",
        s.engine.iterations,
        s.engine.batch_size_mean,
        s.engine.batch_tokens_mean,
        s.engine.kv_usage_mean * 100.0,
        s.engine.kv_usage_max * 100.0,
        s.preemptions,
        s.prefix_hit_tokens
    ));
    if s.slo.ttft_s.is_some() || s.slo.tpot_s.is_some() {
        out.push_str(&format!(
            "SLO: {:.1}% of requests met all SLOs (TTFT {:.1}%, TPOT {:.1}%), goodput {:.2} req/s\n",
            s.slo_attainment * 100.0,
            s.ttft_slo_attainment * 100.0,
            s.tpot_slo_attainment * 100.0,
            s.goodput_requests_per_s
        ));
    }
    if let Some(c) = &s.cost {
        let per_m = |x: Option<f64>| x.map_or("–".to_owned(), |v| format!("{v:.3}"));
        out.push_str(&format!(
            "cost: {} GPU(s) at {:.2} USD/h{}: {:.2} GPU-hours, {:.4} USD; {} USD per million output tokens, {} per million total tokens\n",
            c.gpus,
            c.rent_usd_per_hour + c.energy_usd_per_hour,
            match c.power_w {
                Some(w) => format!(
                    " ({:.2} rent + {:.2} electricity for {:.1} kW)",
                    c.rent_usd_per_hour,
                    c.energy_usd_per_hour,
                    w / 1000.0
                ),
                None => String::new(),
            },
            c.gpu_hours,
            c.usd,
            per_m(c.usd_per_million_output_tokens),
            per_m(c.usd_per_million_total_tokens)
        ));
    }
    if let Some(w) = &s.slo_windows {
        out.push_str(&format!(
            "SLO over time: {} of {} windows of {} s ({:.1}%) reach {:.1}% attainment",
            w.windows_meeting_target,
            w.windows,
            w.window_s,
            w.fraction_meeting_target * 100.0,
            w.target * 100.0
        ));
        if let Some(x) = &w.worst {
            out.push_str(&format!(
                "; worst window {}–{} s: {:.1}% of {} requests",
                x.start_s,
                x.end_s,
                x.attainment * 100.0,
                x.requests
            ));
        }
        out.push('\n');
    }
    out.push_str(&t.render());
    if s.replicas.len() > 1 {
        let mut t = table::Table::new(&[
            "replica",
            "completed",
            "out tok/s",
            "TTFT p50 ms",
            "TPOT p50 ms",
            "E2E p99 ms",
        ]);
        for r in &s.replicas {
            t.row(vec![
                r.replica.to_string(),
                r.completed.to_string(),
                format!("{:.0}", r.output_tokens_per_s),
                format!("{:.2}", r.ttft_s.p50 * 1e3),
                format!("{:.2}", r.tpot_s.p50 * 1e3),
                format!("{:.2}", r.e2e_s.p99 * 1e3),
            ]);
        }
        out.push_str(&t.render());
    }
    if let Some(iv) = &s.intervals {
        out.push_str(&intervals_table(iv));
    }
    out
}

/// The 95 % intervals of a replicated run, as a table.
fn intervals_table(iv: &crate::replicate::Intervals) -> String {
    let mut out = format!(
        "95% intervals over {} replications (block bootstrap of {} s of arrivals, run-to-run speed variation):\n",
        iv.replications, iv.block_s
    );
    let mut t = table::Table::new(&["metric", "value", "2.5%", "97.5%"]);
    let row = |t: &mut table::Table, name: String, i: &crate::replicate::Interval, scale: f64| {
        let f = |x: f64| fixed(x * scale, 2);
        t.row(vec![name, f(i.value), f(i.ci95[0]), f(i.ci95[1])]);
    };
    for (dist, label) in [("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "E2E")] {
        for stat in ["p50", "p99"] {
            if let Some(i) = iv.distributions.get(dist).and_then(|d| d.get(stat)) {
                row(&mut t, format!("{label} {stat} (ms)"), i, 1e3);
            }
        }
    }
    for (key, label, scale) in [
        ("output_tokens_per_s", "output tok/s", 1.0),
        ("goodput_requests_per_s", "goodput req/s", 1.0),
        ("slo_attainment", "SLO attainment (%)", 100.0),
    ] {
        if let Some(i) = iv.scalars.get(key) {
            row(&mut t, label.to_owned(), i, scale);
        }
    }
    out.push_str(&t.render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_precision_and_nan() {
        assert_eq!(fixed(0.1 + 0.2, 3), "0.300");
        assert_eq!(fixed(f64::NAN, 3), "");
    }
}
