//! The run report's charts (SVG, plotters): CDFs of TTFT, TPOT, ITL and E2E, and
//! requests, KV-cache use and throughput over time; one line per run, so one chart
//! compares several runs.

use super::run_data::RunData;
use crate::error::{Error, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

const WIDTH_PX: u32 = 760;
const HEIGHT_PX: u32 = 420;
const LIGHT: RGBColor = RGBColor(235, 235, 235);
/// Most points a time series is drawn with (longer ones are averaged over buckets).
const MAX_POINTS: usize = 1500;

/// Line colours, one per series in order (repeating past eight).
const PALETTE: [RGBColor; 8] = [
    RGBColor(33, 102, 172),
    RGBColor(214, 96, 77),
    RGBColor(27, 120, 55),
    RGBColor(118, 42, 131),
    RGBColor(224, 130, 20),
    RGBColor(53, 151, 143),
    RGBColor(140, 81, 10),
    RGBColor(77, 77, 77),
];

/// Every chart file [`write_all`] may write.
pub const FILES: [&str; 7] = [
    "ttft_cdf.svg",
    "tpot_cdf.svg",
    "itl_cdf.svg",
    "e2e_cdf.svg",
    "requests_over_time.svg",
    "kv_cache_over_time.svg",
    "throughput_over_time.svg",
];

/// A chart written: its file and title.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// The SVG file.
    pub path: PathBuf,
    /// What it shows.
    pub title: String,
}

/// One line: a label and its points.
type Series = (String, Vec<(f64, f64)>);

/// Draw every chart the runs have data for into `dir`, in the report's order.
pub fn write_all(dir: &Path, runs: &[RunData]) -> Result<Vec<Chart>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut charts = Vec::new();
    for (metric, label) in [
        ("ttft_s", "TTFT"),
        ("tpot_s", "TPOT"),
        ("itl_s", "ITL"),
        ("e2e_s", "E2E latency"),
    ] {
        let series: Vec<Series> = runs
            .iter()
            .map(|r| {
                let pts = r
                    .cdf(metric)
                    .into_iter()
                    .map(|(q, v)| (v * 1e3, q))
                    .collect();
                (r.name.clone(), pts)
            })
            .filter(|(_, p): &Series| !p.is_empty())
            .collect();
        if series.is_empty() {
            continue;
        }
        let name = metric.trim_end_matches("_s");
        let c = Chart {
            path: dir.join(format!("{name}_cdf.svg")),
            title: format!("{label}: cumulative distribution"),
        };
        cdf(&c, &format!("{label} (ms)"), &series)?;
        charts.push(c);
    }
    let over_time = |pick: &dyn Fn(&RunData) -> Vec<Series>| -> Vec<Series> {
        runs.iter()
            .flat_map(|r| {
                pick(r).into_iter().map(move |(l, p)| {
                    let label = if runs.len() > 1 {
                        format!("{}: {l}", r.name)
                    } else {
                        l
                    };
                    (label, p)
                })
            })
            .filter(|(_, p)| !p.is_empty())
            .collect()
    };
    let requests = over_time(&|r| {
        let s = &r.timeseries;
        vec![
            (
                "running".into(),
                s.iter().map(|x| (x.time_s, x.running)).collect(),
            ),
            (
                "waiting".into(),
                s.iter().map(|x| (x.time_s, x.waiting)).collect(),
            ),
        ]
    });
    let kv = over_time(&|r| {
        vec![(
            "KV blocks in use".into(),
            r.timeseries
                .iter()
                .map(|x| (x.time_s, x.kv_blocks_used))
                .collect(),
        )]
    });
    let throughput = over_time(&|r| {
        vec![(
            "output tokens/s".into(),
            r.throughput
                .iter()
                .map(|x| (x.time_s, x.output_tokens))
                .collect(),
        )]
    });
    for (file, title, y, series) in [
        (
            "requests_over_time.svg",
            "Requests running and waiting",
            "requests",
            requests,
        ),
        (
            "kv_cache_over_time.svg",
            "KV-cache blocks in use",
            "blocks",
            kv,
        ),
        (
            "throughput_over_time.svg",
            "Output tokens per second",
            "tokens/s",
            throughput,
        ),
    ] {
        if series.is_empty() {
            continue;
        }
        let c = Chart {
            path: dir.join(file),
            title: title.into(),
        };
        over_time_chart(&c, y, &series)?;
        charts.push(c);
    }
    Ok(charts)
}

/// `f`'s plotters error as an I/O error on `path`.
fn fail(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |e| Error::io(path, std::io::Error::other(e))
}

/// The CDFs of `series` (x: value, y: quantile), up to the largest p99.9.
fn cdf(c: &Chart, x_desc: &str, series: &[Series]) -> Result<()> {
    let fail = fail(&c.path);
    let x_max = series
        .iter()
        .filter_map(|(_, p)| p.iter().find(|(_, q)| *q >= 0.999).map(|(v, _)| *v))
        .fold(0.0, f64::max);
    let x_max = if x_max > 0.0 { x_max * 1.05 } else { 1.0 };
    let root = SVGBackend::new(&c.path, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{} (to p99.9)", c.title), ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(38)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..x_max, 0.0..1.0)
        .map_err(|e| fail(e.to_string()))?;
    chart
        .configure_mesh()
        .light_line_style(LIGHT)
        .x_desc(x_desc)
        .y_desc("fraction of requests")
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    lines(&mut chart, series, &fail)?;
    root.present().map_err(|e| fail(e.to_string()))
}

/// `series` over time (x: seconds), each averaged down to at most [`MAX_POINTS`].
fn over_time_chart(c: &Chart, y_desc: &str, series: &[Series]) -> Result<()> {
    let fail = fail(&c.path);
    let series: Vec<Series> = series
        .iter()
        .map(|(l, p)| (l.clone(), downsample(p, MAX_POINTS)))
        .collect();
    let all = || series.iter().flat_map(|(_, p)| p.iter());
    let x_max = all().map(|p| p.0).fold(1.0, f64::max);
    let y_max = all().map(|p| p.1).fold(0.0, f64::max);
    let y_max = if y_max > 0.0 { y_max * 1.08 } else { 1.0 };
    let root = SVGBackend::new(&c.path, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&c.title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(38)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| fail(e.to_string()))?;
    chart
        .configure_mesh()
        .light_line_style(LIGHT)
        .x_desc("simulated time (s)")
        .y_desc(y_desc)
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    lines(&mut chart, &series, &fail)?;
    root.present().map_err(|e| fail(e.to_string()))
}

/// Draw `series` as lines with a legend.
fn lines<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    series: &[Series],
    fail: &dyn Fn(String) -> Error,
) -> Result<()> {
    for (i, (label, pts)) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| fail(e.to_string()))?
            .label(label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| fail(e.to_string()))
}

/// `points` (in x order) averaged over equal buckets of consecutive points so that at
/// most `max` remain; shorter series are returned as they are.
pub fn downsample(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let per = points.len().div_ceil(max);
    points
        .chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            (
                c.iter().map(|p| p.0).sum::<f64>() / n,
                c.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::downsample;

    #[test]
    fn downsampling_keeps_short_series_and_averages_long_ones() {
        let short: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 1.0)).collect();
        assert_eq!(downsample(&short, 10), short);
        let long: Vec<(f64, f64)> = (0..1000).map(|i| (i as f64, (i % 2) as f64)).collect();
        let d = downsample(&long, 100);
        assert_eq!(d.len(), 100);
        assert!(d.iter().all(|p| (p.1 - 0.5).abs() < 1e-12));
        assert_eq!(d[0].0, 4.5);
        // The mean of the series is kept.
        let mean = |v: &[(f64, f64)]| v.iter().map(|p| p.1).sum::<f64>() / v.len() as f64;
        assert!((mean(&d) - mean(&long)).abs() < 1e-12);
    }
}
