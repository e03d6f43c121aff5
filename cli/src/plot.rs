//! The recall / speed plot of `spinney eval`, as SVG and PNG (fonts
//! embedded: no system library is needed).

use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::failure::{Failure, Outcome};

/// One line of the plot: a label and its `(recall, queries per second)` points.
pub struct Line {
    /// What the line's setting is.
    pub label: String,
    /// Its points, in sweep order.
    pub points: Vec<(f64, f64)>,
}

/// Writes `stem.svg` and `stem.png` (the extensions added to the whole
/// stem, dots and all) and returns their paths: recall on x, queries per
/// second on a log y axis, one line per setting.
pub fn write(stem: &Path, title: &str, recall_label: &str, lines: &[Line]) -> Outcome<[PathBuf; 2]> {
    // Registering twice is harmless; the font is DejaVu Sans, compiled in.
    plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| Failure::new("the embedded font does not load"))?;
    let with = |extension: &str| {
        let mut path = stem.as_os_str().to_owned();
        path.push(".");
        path.push(extension);
        PathBuf::from(path)
    };
    let (svg, png) = (with("svg"), with("png"));
    draw(SVGBackend::new(&svg, (900, 600)).into_drawing_area(), title, recall_label, lines)
        .map_err(|e| Failure::file(&svg, e))?;
    draw(BitMapBackend::new(&png, (900, 600)).into_drawing_area(), title, recall_label, lines)
        .map_err(|e| Failure::file(&png, e))?;
    Ok([svg, png])
}

fn draw<B: DrawingBackend>(
    area: DrawingArea<B, plotters::coord::Shift>,
    title: &str,
    recall_label: &str,
    lines: &[Line],
) -> Result<(), Box<dyn std::error::Error>>
where
    B::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let points = lines.iter().flat_map(|line| line.points.iter());
    let lowest_recall = points.clone().map(|p| p.0).fold(1.0f64, f64::min);
    let (low_qps, high_qps) = points.fold((f64::MAX, 0.0f64), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let x_from = ((lowest_recall - 0.02).max(0.0) * 50.0).floor() / 50.0;
    let y_range = (low_qps / 1.5).max(1e-3)..(high_qps * 1.5).max(1.0);
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x_from..1.0f64, y_range.log_scale())?;
    chart
        .configure_mesh()
        .x_desc(recall_label)
        .y_desc("queries per second (one thread, log scale)")
        .y_label_formatter(&|qps| format!("{qps:.0}"))
        .label_style(("sans-serif", 15))
        .draw()?;
    for (n, line) in lines.iter().enumerate() {
        let color = Palette99::pick(n).to_rgba();
        chart
            .draw_series(LineSeries::new(line.points.iter().copied(), color.stroke_width(2)))?
            .label(&line.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(line.points.iter().map(|&point| Circle::new(point, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()?;
    area.present()?;
    Ok(())
}
