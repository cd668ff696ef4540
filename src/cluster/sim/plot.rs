//! `--plot FILE`: utilisation and pod counts over time, one panel each, every policy
//! drawn in the same panels (solid elastic, dashed static). SVG or PNG by extension.

use super::report::{PolicyResult, Sample, policy_name};
use super::world::PolicyKind;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use thiserror::Error;

/// DejaVu Sans (Bitstream Vera licence, `assets/fonts/`): text is drawn in pure Rust,
/// with no system font lookup.
static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

#[derive(Debug, Error)]
pub enum PlotError {
    #[error("{0}: the plot file must end in .svg or .png")]
    Extension(String),
    #[error("drawing {path}: {message}")]
    Draw { path: String, message: String },
}

pub fn plot(results: &[PolicyResult], path: &Path) -> Result<(), PlotError> {
    let shown = path.display().to_string();
    let draw_err = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: shown.clone(),
        message: e.to_string(),
    };
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| draw_err(&"the embedded font is not a font"))?;
    let size = (1200, 900);
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            draw(results, &root).map_err(|e| draw_err(&e))?;
            root.present().map_err(|e| draw_err(&e))
        }
        Some("png") => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            draw(results, &root).map_err(|e| draw_err(&e))?;
            root.present().map_err(|e| draw_err(&e))
        }
        _ => Err(PlotError::Extension(shown)),
    }
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(
    results: &[PolicyResult],
    root: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(450);
    let end_h = results
        .iter()
        .flat_map(|r| r.series.last().map(|s| s.t))
        .fold(1.0, f64::max)
        / 3600.0;

    // ---- utilisation --------------------------------------------------------------
    let mut chart = ChartBuilder::on(&top)
        .caption(
            "Cluster utilisation (requests / allocatable)",
            ("sans-serif", 22),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end_h, 0.0..105.0)?;
    chart
        .configure_mesh()
        .x_desc("time (hours)")
        .y_desc("utilisation (%)")
        .draw()?;
    let any_gpu = results
        .iter()
        .any(|r| r.series.iter().any(|s| s.gpu_util > 0.0));
    for (i, r) in results.iter().enumerate() {
        let name = policy_name(r.policy);
        let cpu = steps(&r.series, end_h, |s| s.cpu_util * 100.0);
        draw_line(
            &mut chart,
            cpu,
            Palette99::pick(i),
            r.policy,
            format!("CPU, {name}"),
        )?;
        if any_gpu {
            let gpu = steps(&r.series, end_h, |s| s.gpu_util * 100.0);
            draw_line(
                &mut chart,
                gpu,
                Palette99::pick(i + 4),
                r.policy,
                format!("GPU, {name}"),
            )?;
        }
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 15))
        .draw()?;

    // ---- pods -----------------------------------------------------------------------
    let max_pods = results
        .iter()
        .flat_map(|r| r.series.iter())
        .flat_map(|s| s.trainers.values().chain(s.services.values()).copied())
        .max()
        .unwrap_or(1)
        .max(1);
    let mut chart = ChartBuilder::on(&bottom)
        .caption("Pods over time", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end_h, 0.0..f64::from(max_pods) * 1.08)?;
    chart
        .configure_mesh()
        .x_desc("time (hours)")
        .y_desc("pods")
        .draw()?;
    let mut names: Vec<(bool, String)> = Vec::new();
    for r in results {
        for s in &r.series {
            for n in s.trainers.keys() {
                if !names.contains(&(false, n.clone())) {
                    names.push((false, n.clone()));
                }
            }
            for n in s.services.keys() {
                if !names.contains(&(true, n.clone())) {
                    names.push((true, n.clone()));
                }
            }
        }
    }
    for r in results {
        let policy = policy_name(r.policy);
        for (k, (service, n)) in names.iter().enumerate() {
            let pts = steps(&r.series, end_h, |s| {
                let map = if *service { &s.services } else { &s.trainers };
                f64::from(map.get(n).copied().unwrap_or(0))
            });
            let what = if *service { "pods" } else { "trainers" };
            draw_line(
                &mut chart,
                pts,
                Palette99::pick(k),
                r.policy,
                format!("{n} {what}, {policy}"),
            )?;
        }
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 15))
        .draw()?;
    Ok(())
}

fn draw_line<DB: DrawingBackend>(
    chart: &mut ChartContext<
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    points: Vec<(f64, f64)>,
    color: PaletteColor<Palette99>,
    policy: PolicyKind,
    label: String,
) -> DrawResult<DB> {
    let style = color.stroke_width(2);
    let legend = move |(x, y): (i32, i32)| PathElement::new(vec![(x, y), (x + 20, y)], style);
    match policy {
        PolicyKind::Elastic => {
            chart
                .draw_series(LineSeries::new(points, style))?
                .label(label)
                .legend(legend);
        }
        PolicyKind::Static => {
            chart
                .draw_series(DashedLineSeries::new(points, 8, 5, style))?
                .label(format!("{label} (dashed)"))
                .legend(legend);
        }
    }
    Ok(())
}

/// A step function as a polyline, in hours, running on to `end_h`.
fn steps(series: &[Sample], end_h: f64, f: impl Fn(&Sample) -> f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(series.len() * 2 + 1);
    for (i, s) in series.iter().enumerate() {
        let t = s.t / 3600.0;
        let v = f(s);
        if let Some(&(_, prev)) = out.last()
            && i > 0
        {
            out.push((t, prev));
        }
        out.push((t, v));
    }
    if let Some(&(t, v)) = out.last()
        && t < end_h
    {
        out.push((end_h, v));
    }
    out
}
