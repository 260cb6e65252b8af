//! The latency-by-percentile plot of `report compare`, as SVG.
//!
//! One line per report × series, drawn from the series' `.hgrm` distribution the way
//! HdrHistogram's own plotter draws it: the x axis is the percentile on the "nines" scale,
//! `log10(1 / (1 - p))`, so 50 %, 90 %, 99 %, 99.9 % and 99.99 % are evenly spaced and the
//! tail gets as much room as the body; the y axis is latency in microseconds, log scaled, so
//! a 450 ns ring hand-off and a 2 ms fsync fit on one chart. Colour tells series apart and
//! the line's dash pattern tells reports apart (report A solid, B dashed, C dotted-dashed…).
//! Text is laid out with plotters' built-in size estimate and rendered by the SVG viewer's
//! own sans-serif font, so no font is embedded or needed at build time.

use crate::compare::LabelledReport;
use crate::error::{BenchError, Result};
use crate::hgrm::{self, Hgrm};
use plotters::coord::combinators::{IntoLogRange, LogCoord};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use std::ops::Range;
use std::path::Path;

/// Width and height of the plot, in pixels.
const PLOT_SIZE_PX: (u32, u32) = (1280, 800);
/// Percentile ticks of the x axis, as fractions.
const PERCENTILE_TICKS: [f64; 6] = [0.5, 0.9, 0.99, 0.999, 0.9999, 0.99999];
/// Dash and gap lengths per report, in pixels; (0, 0) draws a solid line.
const DASH_PATTERNS_PX: [(u32, u32); 4] = [(0, 0), (10, 6), (3, 4), (16, 4)];
/// Length of the line sample in front of each legend entry, in pixels.
const LEGEND_SAMPLE_PX: i32 = 30;
/// Caption of a plot drawn without a title of its own.
const PLOT_TITLE_DEFAULT: &str = "Latency by percentile";
/// Line width of every series, in pixels.
const STROKE_WIDTH_PX: u32 = 2;

/// One line of the plot.
struct Line {
    label: String,
    points_nines_us: Vec<(f64, f64)>,
    color: RGBColor,
    dash_px: (u32, u32),
}

/// Draws every series with a latency distribution of every report into an SVG at `out`.
///
/// # Errors
/// [`BenchError::Compare`] when no series has an `.hgrm` distribution,
/// [`BenchError::Hgrm`] for an unreadable distribution, [`BenchError::Plot`] when the file
/// cannot be drawn.
pub fn write_latency_plot(reports: &[LabelledReport], out: &Path) -> Result<()> {
    write_latency_plot_titled(reports, out, PLOT_TITLE_DEFAULT)
}

/// As [`write_latency_plot`], with `title` as the plot's caption.
///
/// # Errors
/// As [`write_latency_plot`].
pub fn write_latency_plot_titled(
    reports: &[LabelledReport],
    out: &Path,
    title: &str,
) -> Result<()> {
    let lines = collect_lines(reports)?;
    if lines.is_empty() {
        return Err(BenchError::Compare("no series has a latency distribution to plot".into()));
    }
    draw(&lines, out, title).map_err(|reason| BenchError::Plot { path: out.to_path_buf(), reason })
}

/// `-log10(1 - p)`: 0.5 → 0.30, 0.9 → 1, 0.99 → 2.
fn nines(percentile: f64) -> f64 {
    -(1.0 - percentile).log10()
}

/// `50%`, `99.9%`, `99.99%` for an x-axis position.
fn percentile_label(nines_value: f64) -> String {
    let percent = (1.0 - 10f64.powf(-nines_value)) * 100.0;
    let text = format!("{percent:.5}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// `0.1`, `1`, `1000` for a y-axis position (the log axis ticks at powers of ten).
fn latency_label(value_us: f64) -> String {
    if value_us >= 1.0 {
        format!("{value_us:.0}")
    } else {
        let text = format!("{value_us:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn collect_lines(reports: &[LabelledReport]) -> Result<Vec<Line>> {
    let mut names: Vec<&str> = Vec::new();
    let mut lines = Vec::new();
    for (report_index, labelled) in reports.iter().enumerate() {
        for series in &labelled.report.series {
            let Some(text) = series.hgrm_text() else { continue };
            let path = Path::new(series.hgrm.as_deref().unwrap_or("series.hgrm"));
            let points = plot_points(&hgrm::parse(text, path)?);
            if points.is_empty() {
                continue;
            }
            let color_index =
                names.iter().position(|name| *name == series.name).unwrap_or_else(|| {
                    names.push(&series.name);
                    names.len() - 1
                });
            lines.push(Line {
                label: format!("{}: {}", labelled.label, series.name),
                points_nines_us: points,
                color: series_color(color_index),
                dash_px: DASH_PATTERNS_PX[report_index % DASH_PATTERNS_PX.len()],
            });
        }
    }
    Ok(lines)
}

/// The distribution's points below the 100th percentile (which has no place on the nines
/// scale), with positive latencies only (the y axis is logarithmic).
fn plot_points(hgrm: &Hgrm) -> Vec<(f64, f64)> {
    hgrm.points
        .iter()
        .filter(|point| point.percentile < 1.0 && point.value_us > 0.0)
        .map(|point| (nines(point.percentile), point.value_us))
        .collect()
}

/// Distinct, readable colours on white; they repeat after ten series.
fn series_color(index: usize) -> RGBColor {
    const COLORS: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (red, green, blue) = COLORS[index % COLORS.len()];
    RGBColor(red, green, blue)
}

/// The axes' ranges: nines from 0 to the deepest tail (at least 99.9 %), latency from the
/// smallest to the largest value with some room.
fn ranges(lines: &[Line]) -> ((f64, f64), (f64, f64)) {
    let points = || lines.iter().flat_map(|line| line.points_nines_us.iter());
    let nines_max = points().map(|point| point.0).fold(3.0, f64::max).ceil();
    let us_min = points().map(|point| point.1).fold(f64::INFINITY, f64::min);
    let us_max = points().map(|point| point.1).fold(0.0, f64::max);
    ((0.0, nines_max), (us_min / 1.5, us_max * 1.5))
}

fn draw(lines: &[Line], out: &Path, title: &str) -> std::result::Result<(), String> {
    let root = SVGBackend::new(out, PLOT_SIZE_PX).into_drawing_area();
    root.fill(&WHITE).map_err(|error| error.to_string())?;
    let ((x_min, x_max), (y_min, y_max)) = ranges(lines);
    let ticks: Vec<f64> =
        PERCENTILE_TICKS.iter().map(|p| nines(*p)).filter(|x| *x <= x_max + 1e-9).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 28))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(NinesAxis { range: x_min..x_max, ticks }, (y_min..y_max).log_scale())
        .map_err(|error| error.to_string())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs)")
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| latency_label(*y))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(|error| error.to_string())?;
    for line in lines {
        draw_line(&mut chart, line).map_err(|error| error.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|error| error.to_string())?;
    root.present().map_err(|error| error.to_string())
}

/// The chart type of the plot: nines on x, log latency on y.
type Chart<'area, 'file> =
    ChartContext<'area, SVGBackend<'file>, Cartesian2d<NinesAxis, LogCoord<f64>>>;

/// A linear axis over nines whose ticks sit at round percentiles rather than round numbers.
#[derive(Clone)]
struct NinesAxis {
    range: Range<f64>,
    ticks: Vec<f64>,
}

impl Ranged for NinesAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, (pixel_min, pixel_max): (i32, i32)) -> i32 {
        let span = (self.range.end - self.range.start).max(f64::MIN_POSITIVE);
        let share = (value - self.range.start) / span;
        pixel_min + (share * f64::from(pixel_max - pixel_min)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

fn draw_line(chart: &mut Chart<'_, '_>, line: &Line) -> std::result::Result<(), String> {
    let style = line.color.stroke_width(STROKE_WIDTH_PX);
    let points = line.points_nines_us.iter().copied();
    let (dash_px, gap_px) = line.dash_px;
    let annotation = if dash_px == 0 {
        chart.draw_series(LineSeries::new(points, style))
    } else {
        chart.draw_series(DashedLineSeries::new(points, dash_px, gap_px, style))
    }
    .map_err(|error| error.to_string())?;
    let dash = line.dash_px;
    annotation.label(line.label.clone()).legend(move |(x, y)| legend_sample(x, y, style, dash));
    Ok(())
}

/// The short line in front of a legend entry, in the series' colour and dash pattern; a dash
/// longer than the sample draws it solid.
fn legend_sample(
    x: i32,
    y: i32,
    style: ShapeStyle,
    (dash_px, gap_px): (u32, u32),
) -> DashedPathElement<std::vec::IntoIter<(i32, i32)>, u32> {
    let ends = vec![(x, y), (x + LEGEND_SAMPLE_PX, y)];
    let dash_px = if dash_px == 0 { LEGEND_SAMPLE_PX as u32 } else { dash_px };
    DashedPathElement::new(ends, dash_px, gap_px, style)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{latency_histogram, Report, Series, Target, Unit};
    use serde_json::json;

    #[test]
    fn percentile_labels_read_as_percentiles() {
        assert_eq!(percentile_label(nines(0.0)), "0%");
        assert_eq!(latency_label(0.1), "0.1");
        assert_eq!(latency_label(1000.0), "1000");
        assert_eq!(percentile_label(nines(0.5)), "50%");
        assert_eq!(percentile_label(nines(0.99)), "99%");
        assert_eq!(percentile_label(nines(0.9999)), "99.99%");
    }

    #[test]
    fn writes_a_well_formed_svg() {
        let mut report = Report::new("ring", json!({}));
        for (index, name) in ["rtrb-chunked/16B", "crossbeam/16B"].iter().enumerate() {
            let mut histogram = latency_histogram();
            for value_ns in 1..20_000u64 {
                histogram.record(value_ns * (index as u64 + 1) * 37 % 2_000_000 + 100).unwrap();
            }
            let series = Series::new(*name, Target::Zabflow, Unit::Items, 1.0);
            report.push_series(series.with_histogram(&histogram));
        }
        let reports = ["A", "B"]
            .map(|label| LabelledReport { label: label.to_string(), report: report.clone() });
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plot.svg");
        write_latency_plot(&reports, &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("99.9%") && svg.contains("B: crossbeam/16B"));
        assert!(svg.matches("<polyline").count() >= 2);
    }
}
