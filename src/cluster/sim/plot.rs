//! `--plot FILE`: utilisation and pod counts over time, one panel each, every policy
//! drawn in the same panels. A series keeps one colour in both panels and across
//! policies (CPU, GPU, each job, each service); the policy is the line style: solid
//! elastic, dashed static, in the legend too. SVG or PNG by extension.

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

/// The format `path` asks for, refused before any work is done for it.
pub fn check_path(path: &Path) -> Result<(), PlotError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg" | "png") => Ok(()),
        _ => Err(PlotError::Extension(path.display().to_string())),
    }
}

/// Draws `results` of the scenario `title` to `path`.
pub fn plot(results: &[PolicyResult], title: &str, path: &Path) -> Result<(), PlotError> {
    check_path(path)?;
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
            draw(results, title, &root).map_err(|e| draw_err(&e))?;
            root.present().map_err(|e| draw_err(&e))
        }
        Some("png") => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            draw(results, title, &root).map_err(|e| draw_err(&e))?;
            root.present().map_err(|e| draw_err(&e))
        }
        _ => Err(PlotError::Extension(shown)),
    }
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Each series' colour, by name: the same in both panels and for every policy.
struct Colours(Vec<String>);

impl Colours {
    fn of(&mut self, series: &str) -> PaletteColor<Palette99> {
        let i = match self.0.iter().position(|s| s == series) {
            Some(i) => i,
            None => {
                self.0.push(series.to_string());
                self.0.len() - 1
            }
        };
        Palette99::pick(i)
    }
}

/// A tick label on the pods axis: whole numbers only ("160", never "160.0"); ticks that
/// fall between two whole numbers stay unlabelled.
fn pod_label(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        String::new()
    }
}

/// Hours as written: "0.5", "2", "1.25", never "2.0".
fn hours_label(v: &f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn draw<DB: DrawingBackend>(
    results: &[PolicyResult],
    title: &str,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let policies: Vec<&str> = results.iter().map(|r| policy_name(r.policy)).collect();
    let root = root.titled(
        &format!(
            "{title} ({})",
            policies.join(" solid, ").replace("static", "static dashed")
        ),
        ("sans-serif", 26),
    )?;
    let mut colours = Colours(Vec::new());
    let (top, bottom) = root.split_vertically(420);
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
        .x_label_formatter(&hours_label)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    let any_gpu = results
        .iter()
        .any(|r| r.series.iter().any(|s| s.gpu_util > 0.0));
    for r in results {
        let name = policy_name(r.policy);
        let cpu = steps(&r.series, end_h, |s| s.cpu_util * 100.0);
        draw_line(
            &mut chart,
            cpu,
            colours.of("CPU"),
            r.policy,
            format!("CPU, {name}"),
        )?;
        if any_gpu {
            let gpu = steps(&r.series, end_h, |s| s.gpu_util * 100.0);
            draw_line(
                &mut chart,
                gpu,
                colours.of("GPU"),
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
        .x_label_formatter(&hours_label)
        .y_label_formatter(&pod_label)
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
        for (service, n) in &names {
            let pts = steps(&r.series, end_h, |s| {
                let map = if *service { &s.services } else { &s.trainers };
                f64::from(map.get(n).copied().unwrap_or(0))
            });
            let what = if *service { "pods" } else { "trainers" };
            draw_line(
                &mut chart,
                pts,
                colours.of(n),
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

fn draw_line<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    points: Vec<(f64, f64)>,
    color: PaletteColor<Palette99>,
    policy: PolicyKind,
    label: String,
) -> DrawResult<DB> {
    let style = color.stroke_width(2);
    match policy {
        PolicyKind::Elastic | PolicyKind::NaiveElastic => {
            let legend =
                move |(x, y): (i32, i32)| PathElement::new(vec![(x, y), (x + 24, y)], style);
            chart
                .draw_series(LineSeries::new(points, style))?
                .label(label)
                .legend(legend);
        }
        PolicyKind::Static => {
            // The legend's sample is dashed like the series: two dashes and a gap.
            let legend = move |(x, y): (i32, i32)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (9, 0)], style)
                    + PathElement::new(vec![(15, 0), (24, 0)], style)
            };
            chart
                .draw_series(DashedLineSeries::new(points, 8, 5, style))?
                .label(label)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_ticks_are_whole_numbers() {
        assert_eq!(pod_label(&160.0), "160");
        assert_eq!(pod_label(&0.0), "0");
        assert_eq!(pod_label(&2.5), "");
        assert_eq!(hours_label(&2.0), "2");
        assert_eq!(hours_label(&0.5), "0.5");
    }

    #[test]
    fn a_series_keeps_its_colour() {
        let mut c = Colours(Vec::new());
        let cpu = c.of("CPU").rgb();
        let job = c.of("job-a").rgb();
        assert_eq!(c.of("CPU").rgb(), cpu);
        assert_eq!(c.of("job-a").rgb(), job);
        assert_ne!(cpu, job);
    }

    #[test]
    fn the_format_is_checked_first() {
        assert!(check_path(Path::new("x.svg")).is_ok());
        assert!(check_path(Path::new("x.png")).is_ok());
        let e = check_path(Path::new("x.jpg")).unwrap_err();
        assert!(e.to_string().contains(".svg or .png"), "{e}");
    }
}
