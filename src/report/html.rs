//! `report.html`: one self-contained page per run folder (or comparing several): the
//! summary table, every chart inline as SVG, and each run's resolved configuration.
//! Nothing on the page is fetched: no scripts, fonts, styles or images from elsewhere.

use super::charts::{self, Chart};
use super::run_data::RunData;
use crate::error::{Error, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Rows of the summary table: label, JSON path in `summary.json`, unit scale, decimals.
const ROWS: &[(&str, &str, f64, usize)] = &[
    ("completed requests", "completed", 1.0, 0),
    ("rejected requests", "rejected", 1.0, 0),
    ("duration (s)", "duration_s", 1.0, 1),
    ("requests/s", "request_throughput_per_s", 1.0, 2),
    ("output tokens/s", "output_tokens_per_s", 1.0, 0),
    ("total tokens/s", "total_tokens_per_s", 1.0, 0),
    ("TTFT mean (ms)", "ttft_s.mean", 1e3, 2),
    ("TTFT p50 (ms)", "ttft_s.p50", 1e3, 2),
    ("TTFT p90 (ms)", "ttft_s.p90", 1e3, 2),
    ("TTFT p99 (ms)", "ttft_s.p99", 1e3, 2),
    ("TPOT mean (ms)", "tpot_s.mean", 1e3, 2),
    ("TPOT p50 (ms)", "tpot_s.p50", 1e3, 2),
    ("TPOT p99 (ms)", "tpot_s.p99", 1e3, 2),
    ("ITL p50 (ms)", "itl_s.p50", 1e3, 2),
    ("ITL p99 (ms)", "itl_s.p99", 1e3, 2),
    ("E2E mean (s)", "e2e_s.mean", 1.0, 3),
    ("E2E p99 (s)", "e2e_s.p99", 1.0, 3),
    ("queue p99 (s)", "queue_s.p99", 1.0, 3),
    ("SLO attainment", "slo_attainment", 100.0, 1),
    ("goodput (requests/s)", "goodput_requests_per_s", 1.0, 2),
    ("preemptions", "preemptions", 1.0, 0),
];

/// Escape `s` for HTML text.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The number at `path` (dot-separated keys) of `v`.
fn lookup(v: &serde_json::Value, path: &str) -> Option<f64> {
    path.split('.').try_fold(v, |v, k| v.get(k))?.as_f64()
}

/// Draw the charts of `runs` into `out/charts/` and write `out/report.html`; returns
/// the page's path.
pub fn write_report(runs: &[RunData], out: &Path) -> Result<PathBuf> {
    if runs.is_empty() {
        return Err(Error::Config(
            "a report needs at least one run folder".into(),
        ));
    }
    let charts = charts::write_all(&out.join("charts"), runs)?;
    let page = page(runs, &charts)?;
    let path = out.join("report.html");
    std::fs::write(&path, page).map_err(|e| Error::io(&path, e))?;
    Ok(path)
}

/// The page's HTML.
fn page(runs: &[RunData], charts: &[Chart]) -> Result<String> {
    let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
    let title = match names.as_slice() {
        [one] => format!("servesim run report: {one}"),
        many => format!("servesim comparison: {}", many.join(" vs ")),
    };
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(h, "<title>{}</title>", escape(&title));
    h.push_str(
        "<style>\n\
         body{font-family:sans-serif;margin:2em auto;max-width:1600px;color:#222}\n\
         table{border-collapse:collapse;margin:1em 0}\n\
         th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}\n\
         th:first-child,td:first-child{text-align:left}\n\
         .charts{display:flex;flex-wrap:wrap;gap:16px}\n\
         figure{margin:0}\n\
         pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}\n\
         </style>\n</head>\n<body>\n",
    );
    let _ = writeln!(h, "<h1>{}</h1>", escape(&title));
    h.push_str("<h2>Summary</h2>\n<table>\n<tr><th>metric</th>");
    for n in &names {
        let _ = write!(h, "<th>{}</th>", escape(n));
    }
    h.push_str("</tr>\n");
    for (label, path, scale, decimals) in ROWS {
        let cells: Vec<Option<f64>> = runs.iter().map(|r| lookup(&r.summary, path)).collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        let _ = write!(h, "<tr><td>{}</td>", escape(label));
        for c in cells {
            match c {
                Some(v) => {
                    let _ = write!(h, "<td>{:.*}</td>", *decimals, v * scale);
                }
                None => h.push_str("<td>-</td>"),
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n<h2>Charts</h2>\n<div class=\"charts\">\n");
    for c in charts {
        let svg = std::fs::read_to_string(&c.path).map_err(|e| Error::io(&c.path, e))?;
        // The SVG element itself, without any XML prolog.
        let svg = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
        let _ = writeln!(
            h,
            "<figure class=\"chart\" aria-label=\"{}\">\n{}\n</figure>",
            escape(&c.title),
            svg.trim_end()
        );
    }
    h.push_str("</div>\n<h2>Configuration</h2>\n");
    for r in runs {
        let _ = writeln!(
            h,
            "<details><summary>{} ({})</summary>\n<pre>{}</pre>\n</details>",
            escape(&r.name),
            escape(&r.dir.display().to_string()),
            escape(r.config.as_deref().unwrap_or("(no config.json)"))
        );
    }
    h.push_str("</body>\n</html>\n");
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_lookup() {
        assert_eq!(escape("a<b>&\"c\""), "a&lt;b&gt;&amp;&quot;c&quot;");
        let v = serde_json::json!({"ttft_s": {"p50": 0.5}, "completed": 3});
        assert_eq!(lookup(&v, "ttft_s.p50"), Some(0.5));
        assert_eq!(lookup(&v, "completed"), Some(3.0));
        assert_eq!(lookup(&v, "tpot_s.p50"), None);
    }
}
