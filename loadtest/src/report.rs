//! The latency and time-to-first-byte distributions as an SVG plot: the
//! value at each percentile, both on one chart.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;

/// Percentiles plotted: 0 to 99 in steps of 1, then the tail more finely.
fn percentiles() -> Vec<f64> {
    let mut ps: Vec<f64> = (0..99).map(f64::from).collect();
    ps.extend((990..=1000).map(|p| f64::from(p) / 10.0));
    ps
}

/// (percentile, milliseconds) points of a histogram of microseconds.
fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    percentiles()
        .into_iter()
        .map(|p| (p, h.value_at_quantile(p / 100.0) as f64 / 1000.0))
        .collect()
}

/// Writes the plot to `path`, which must end in `.svg`.
pub fn write_svg(
    path: &Path,
    title: &str,
    latency: &Histogram<u64>,
    ttfb: &Histogram<u64>,
) -> Result<(), String> {
    if path.extension().and_then(|e| e.to_str()) != Some("svg") {
        return Err(format!(
            "{}: the report is an SVG file (.svg)",
            path.display()
        ));
    }
    let latency = curve(latency);
    let ttfb = curve(ttfb);
    let top = latency
        .iter()
        .chain(&ttfb)
        .map(|&(_, ms)| ms)
        .fold(0.0f64, f64::max)
        .max(0.001)
        * 1.05;
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..100f64, 0f64..top)?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("milliseconds")
            .draw()?;
        for (name, points, color) in [
            ("latency (whole response)", &latency, BLUE),
            ("time to first byte", &ttfb, RED),
        ] {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_both_curves_to_an_svg() {
        let mut latency = Histogram::<u64>::new(3).unwrap();
        let mut ttfb = Histogram::<u64>::new(3).unwrap();
        for us in 1..=1000u64 {
            latency.record(us * 10).unwrap();
            ttfb.record(us).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.svg");
        write_svg(&path, "a test", &latency, &ttfb).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
        for text in ["a test", "percentile", "milliseconds", "time to first byte"] {
            assert!(svg.contains(text), "{text}");
        }
        // One long line per curve, in its color.
        for color in ["#0000FF", "#FF0000"] {
            let long = svg
                .split("<polyline")
                .filter(|p| p.contains(color) && p.matches(',').count() > 50)
                .count();
            assert_eq!(long, 1, "{color}");
        }
        assert!(write_svg(&dir.path().join("report.png"), "x", &latency, &ttfb).is_err());
    }
}
