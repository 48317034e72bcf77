//! The memory chart: per device, one horizontal bar of a GPU's memory stacked as
//! weights, KV cache, activations and overhead, against the engine's budget and the
//! GPU's capacity.

use super::load::LoadFit;
use crate::error::{Error, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

/// The stacked parts, bottom first, with their colours.
const PARTS: [(&str, RGBColor); 4] = [
    ("weights", RGBColor(33, 102, 172)),
    ("KV cache", RGBColor(214, 96, 77)),
    ("activations", RGBColor(244, 165, 130)),
    ("overhead", RGBColor(150, 150, 150)),
];
const LIGHT: RGBColor = RGBColor(235, 235, 235);

/// Pixels per bar, around the plot, and at least in all.
const ROW_PX: u32 = 26;
const FRAME_PX: u32 = 120;
const MIN_HEIGHT_PX: u32 = 300;
const WIDTH_PX: u32 = 1000;
/// The axis reaches this far past the largest capacity: room for the legend.
const LEGEND_ROOM: f64 = 1.55;

/// Draw one bar per fit into an SVG at `path`, titled `title`.
pub fn write_svg(path: &Path, title: &str, fits: &[LoadFit]) -> Result<()> {
    let fail = |e: String| Error::io(path, std::io::Error::other(e));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let n = fits.len().max(1);
    let height = (FRAME_PX + ROW_PX * n as u32).max(MIN_HEIGHT_PX);
    let root = SVGBackend::new(path, (WIDTH_PX, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
    let top = fits
        .iter()
        .map(|f| f.per_gpu.capacity_gib.max(f.per_gpu.used_gib))
        .fold(1.0, f64::max)
        * LEGEND_ROOM;
    let names: Vec<String> = fits
        .iter()
        .map(|f| {
            format!(
                "{}: {} GPU{} ({}×TP{}×PP{})",
                f.hardware,
                f.gpus,
                if f.gpus == 1 { "" } else { "s" },
                f.replicas,
                f.tensor_parallel_size,
                f.pipeline_parallel_size
            )
        })
        .collect();
    let label_px = names.iter().map(|s| s.chars().count()).max().unwrap_or(8) as u32 * 7 + 10;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(label_px)
        .build_cartesian_2d(0.0..top, 0.0..n as f64)
        .map_err(|e| fail(e.to_string()))?;
    chart
        .configure_mesh()
        .light_line_style(LIGHT)
        .disable_y_mesh()
        .y_labels(0)
        .x_labels(12)
        .x_desc("GiB per GPU")
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    // Device names left of their bars, at the bars' pixel rows.
    let style =
        TextStyle::from(("sans-serif", 12).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    for (i, name) in names.iter().enumerate() {
        let y = (fits.len() - 1 - i) as f64 + 0.5;
        let (px, py) = chart.backend_coord(&(0.0, y));
        root.draw(&Text::new(name.clone(), (px - 6, py), style.clone()))
            .map_err(|e| fail(e.to_string()))?;
    }
    let parts = |f: &LoadFit| {
        let g = &f.per_gpu;
        [g.weights_gib, g.kv_gib, g.activations_gib, g.overhead_gib]
    };
    for (k, (legend, color)) in PARTS.into_iter().enumerate() {
        let bars = fits.iter().enumerate().map(|(i, f)| {
            let y = (fits.len() - 1 - i) as f64;
            let p = parts(f);
            let x0: f64 = p[..k].iter().sum();
            Rectangle::new([(x0, y + 0.15), (x0 + p[k], y + 0.85)], color.filled())
        });
        chart
            .draw_series(bars)
            .map_err(|e| fail(e.to_string()))?
            .label(legend)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    // The engine's budget (dashed would need more features: a thin line) and the
    // GPU's capacity (a thick one) on each bar.
    let marks = |value: fn(&LoadFit) -> f64, style: ShapeStyle| {
        fits.iter()
            .enumerate()
            .map(move |(i, f)| {
                let y = (fits.len() - 1 - i) as f64;
                PathElement::new(vec![(value(f), y + 0.05), (value(f), y + 0.95)], style)
            })
            .collect::<Vec<_>>()
    };
    chart
        .draw_series(marks(|f| f.per_gpu.budget_gib, BLACK.stroke_width(1)))
        .map_err(|e| fail(e.to_string()))?
        .label("engine budget (gpu_memory_utilization)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], BLACK.stroke_width(1)));
    chart
        .draw_series(marks(|f| f.per_gpu.capacity_gib, BLACK.stroke_width(3)))
        .map_err(|e| fail(e.to_string()))?
        .label("GPU memory")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], BLACK.stroke_width(3)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| fail(e.to_string()))?;
    root.present().map_err(|e| fail(e.to_string()))?;
    Ok(())
}
