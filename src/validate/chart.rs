//! `validation.svg`: for each paired metric, simulated against measured per row (with
//! the y = x line), the two empirical CDFs, and each row's signed error against its
//! measured value (with the ±10 % band).

use super::report::Validation;
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

const PANEL_W: u32 = 520;
const PANEL_H: u32 = 340;
const SIM: RGBColor = RGBColor(214, 96, 77);
const MEAS: RGBColor = RGBColor(33, 102, 172);
const LIGHT: RGBColor = RGBColor(245, 245, 245);

/// The sorted finite values of `v`.
fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    s.sort_by(f64::total_cmp);
    s
}

/// A padded axis range over `values` (never empty).
fn range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let lo = lo.min(0.0);
    let pad = ((hi - lo) * 0.05).max(1e-9);
    lo..hi + pad
}

/// Draw `v`'s chart into `path`.
pub fn write_svg(path: &Path, v: &Validation) -> Result<()> {
    let panels: Vec<_> = v
        .rows
        .metrics
        .iter()
        .filter(|(_, s, m)| s.iter().zip(m).any(|(a, b)| a.is_finite() && b.is_finite()))
        .collect();
    let n = panels.len().max(1) as u32;
    let fail = |e: String| Error::io(path, std::io::Error::other(e));
    let root = SVGBackend::new(path, (3 * PANEL_W, n * PANEL_H)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let areas = root.split_evenly((n as usize, 3));
    for (i, (metric, sim, meas)) in panels.iter().enumerate() {
        let (label, unit) = (metric.label(), metric.unit());
        // Scatter: measured on x, simulated on y.
        let pairs: Vec<(f64, f64)> = meas
            .iter()
            .zip(sim.iter())
            .map(|(&m, &s)| (m, s))
            .filter(|(m, s)| m.is_finite() && s.is_finite())
            .collect();
        let r = range(pairs.iter().flat_map(|&(m, s)| [m, s]));
        let mut chart = ChartBuilder::on(&areas[3 * i])
            .caption(
                format!("{label}: simulated vs measured ({unit})"),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(r.clone(), r.clone())
            .map_err(|e| fail(e.to_string()))?;
        chart
            .configure_mesh()
            .light_line_style(LIGHT)
            .x_desc("measured")
            .y_desc("simulated")
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        chart
            .draw_series(LineSeries::new(
                [(r.start, r.start), (r.end, r.end)],
                &BLACK,
            ))
            .map_err(|e| fail(e.to_string()))?;
        chart
            .draw_series(
                pairs
                    .iter()
                    .map(|&(m, s)| Circle::new((m, s), 2, SIM.mix(0.6).filled())),
            )
            .map_err(|e| fail(e.to_string()))?;

        // CDFs.
        let (ss, ms) = (sorted(sim), sorted(meas));
        let xr = range(ss.iter().chain(ms.iter()).copied());
        let mut chart = ChartBuilder::on(&areas[3 * i + 1])
            .caption(format!("{label}: CDF ({unit})"), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(xr, 0.0..1.0)
            .map_err(|e| fail(e.to_string()))?;
        chart
            .configure_mesh()
            .light_line_style(LIGHT)
            .x_desc(label)
            .y_desc("fraction")
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        for (vals, color, name) in [(&ms, MEAS, "measured"), (&ss, SIM, "simulated")] {
            let k = vals.len() as f64;
            chart
                .draw_series(LineSeries::new(
                    vals.iter()
                        .enumerate()
                        .map(|(j, &x)| (x, (j + 1) as f64 / k)),
                    color.stroke_width(2),
                ))
                .map_err(|e| fail(e.to_string()))?
                .label(name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(e.to_string()))?;

        // Signed error per row against the measured value.
        let errors: Vec<(f64, f64)> = pairs
            .iter()
            .filter(|(m, _)| *m != 0.0)
            .map(|&(m, s)| (m, (s - m) / m * 100.0))
            .collect();
        let xr = range(errors.iter().map(|p| p.0));
        let bound = errors
            .iter()
            .map(|p| p.1.abs())
            .fold(15.0, f64::max)
            .min(300.0)
            * 1.05;
        let mut chart = ChartBuilder::on(&areas[3 * i + 2])
            .caption(
                format!("{label}: error per row (%, ±10 % band)"),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(45)
            .build_cartesian_2d(xr.clone(), -bound..bound)
            .map_err(|e| fail(e.to_string()))?;
        chart
            .configure_mesh()
            .light_line_style(LIGHT)
            .x_desc(format!("measured ({unit})"))
            .y_desc("(simulated − measured) / measured, %")
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        for (y, style) in [
            (0.0, BLACK.stroke_width(1)),
            (10.0, MEAS.stroke_width(1)),
            (-10.0, MEAS.stroke_width(1)),
        ] {
            chart
                .draw_series(LineSeries::new([(xr.start, y), (xr.end, y)], style))
                .map_err(|e| fail(e.to_string()))?;
        }
        chart
            .draw_series(
                errors.iter().map(|&(m, e)| {
                    Circle::new((m, e.clamp(-bound, bound)), 2, SIM.mix(0.6).filled())
                }),
            )
            .map_err(|e| fail(e.to_string()))?;
    }
    root.present().map_err(|e| fail(e.to_string()))?;
    Ok(())
}
