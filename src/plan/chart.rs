//! SVG charts (plotters): latency percentiles against load per configuration, and the
//! cost/latency frontier. Charts are drawn from the output rows (text), so a merged
//! sweep draws the same bytes as an unsharded one.

use super::table::Row;
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("drawing {}: {e}", path.display()))
}

/// A `(x, y)` series with its label and colour.
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Draw a line through the points (else markers only).
    pub line: bool,
}

fn extent(series: &[&Series], f: impl Fn(&(f64, f64)) -> f64) -> f64 {
    let m = series
        .iter()
        .flat_map(|s| s.points.iter().map(&f))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    if m > 0.0 {
        m * 1.05
    } else {
        1.0
    }
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[&Series],
) -> std::result::Result<(), String> {
    let (xmax, ymax) = (extent(series, |p| p.0), extent(series, |p| p.1));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        if s.line {
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        let anno = chart
            .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
        if !s.line {
            anno.label(s.label.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 3, color.filled()));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Draw one or two panels side by side into the SVG file `path`.
pub fn draw(path: &Path, title: &str, panels: &[(&str, &str, &str, Vec<&Series>)]) -> Result<()> {
    let mut svg = String::new();
    {
        let width = 520 * panels.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (width, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(path, e))?;
        let root = root
            .titled(title, ("sans-serif", 18))
            .map_err(|e| err(path, e))?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (area, (t, xd, yd, s)) in areas.iter().zip(panels) {
            panel(area, t, xd, yd, s).map_err(|e| err(path, e))?;
        }
        root.present().map_err(|e| err(path, e))?;
    }
    std::fs::write(path, svg).map_err(|e| Error::io(path, e))
}

/// Indices of the points on the lower-left Pareto frontier of `(x, y)` (both to be
/// minimised), sorted by `x`; ties keep the lower index.
pub fn pareto(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[a]
            .0
            .total_cmp(&points[b].0)
            .then(points[a].1.total_cmp(&points[b].1))
            .then(a.cmp(&b))
    });
    let mut best = f64::INFINITY;
    let mut out = Vec::new();
    for i in order {
        if points[i].1 < best {
            best = points[i].1;
            out.push(i);
        }
    }
    out
}

/// Charts of a sweep into `dir`: `charts/config-<i>.svg` (TTFT and TPOT p50/p90/p99
/// against offered load, per configuration) and `frontier.svg` ($ per million output
/// tokens against p99 TTFT over every priced point, frontier joined).
pub fn sweep_charts(dir: &Path, rows: &[Row]) -> Result<()> {
    let charts = dir.join("charts");
    std::fs::create_dir_all(&charts).map_err(|e| Error::io(&charts, e))?;
    let ok: Vec<&Row> = rows.iter().filter(|r| r.get("status") == "ok").collect();
    let mut start = 0;
    while start < ok.len() {
        let cfg = ok[start].get("config_index");
        let end = start
            + ok[start..]
                .iter()
                .take_while(|r| r.get("config_index") == cfg)
                .count();
        let group = &ok[start..end];
        let series = |metric: &str, scale: f64| -> Vec<Series> {
            ["p50", "p90", "p99"]
                .iter()
                .map(|p| Series {
                    label: format!("{metric} {p}"),
                    points: group
                        .iter()
                        .filter_map(|r| {
                            Some((
                                r.num("offered_rps")?,
                                r.num(&format!("{metric}_{p}_s"))? * scale,
                            ))
                        })
                        .collect(),
                    line: true,
                })
                .collect()
        };
        let (ttft, tpot) = (series("ttft", 1.0), series("tpot", 1e3));
        let r = group[0];
        let title = format!(
            "config {cfg}: {} TP{} PP{} x{} seqs={} mbt={} chunked={}",
            r.get("hardware"),
            r.get("tensor_parallel_size"),
            r.get("pipeline_parallel_size"),
            r.get("num_replicas"),
            or_default(r.get("max_num_seqs")),
            or_default(r.get("max_num_batched_tokens")),
            or_default(r.get("enable_chunked_prefill")),
        );
        draw(
            &charts.join(format!("config-{cfg}.svg")),
            &title,
            &[
                (
                    "TTFT",
                    "offered load (req/s)",
                    "TTFT (s)",
                    ttft.iter().collect(),
                ),
                (
                    "TPOT",
                    "offered load (req/s)",
                    "TPOT (ms)",
                    tpot.iter().collect(),
                ),
            ],
        )?;
        start = end;
    }
    let priced: Vec<(f64, f64)> = ok
        .iter()
        .filter_map(|r| {
            Some((
                r.num("ttft_p99_s")?,
                r.num("usd_per_million_output_tokens")?,
            ))
        })
        .collect();
    frontier_chart(
        &dir.join("frontier.svg"),
        "cost against latency (every priced point)",
        "p99 TTFT (s)",
        "$ per million output tokens",
        &priced,
    )
}

fn or_default(s: &str) -> &str {
    if s.is_empty() {
        "default"
    } else {
        s
    }
}

/// Scatter `points` (x latency, y cost) with the Pareto frontier joined.
pub fn frontier_chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    points: &[(f64, f64)],
) -> Result<()> {
    let front: Vec<(f64, f64)> = pareto(points).into_iter().map(|i| points[i]).collect();
    let all = Series {
        label: "configurations".into(),
        points: points.to_vec(),
        line: false,
    };
    let frontier = Series {
        label: "Pareto frontier".into(),
        points: front,
        line: true,
    };
    draw(path, title, &[("", x_desc, y_desc, vec![&all, &frontier])])
}
