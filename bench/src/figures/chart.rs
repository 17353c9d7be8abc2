//! A line chart as an SVG written by hand, for the ramp and the soak: x values evenly spaced
//! (the ramp's N doubles step by step, so that is a log₂ axis; the soak's samples are evenly
//! spaced in time), series on a left and a right axis, each with its unit and either a fixed
//! top (percent: 100) or one rounded up from its largest value. It takes plain series; what
//! they mean is the caller's. (Hand-written rather than plotters: text in plotters needs a
//! font backend, this needs none and stays dependency-free.)

use std::fmt::Write as _;

const W: f64 = 820.0;
const H: f64 = 460.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 80.0;
const TOP: f64 = 64.0;
const BOTTOM: f64 = 60.0;
const PLOT_W: f64 = W - LEFT - RIGHT;
const PLOT_H: f64 = H - TOP - BOTTOM;
/// Most x values labelled (more would overlap: every k-th is labelled).
const MAX_X_LABELS: usize = 12;
/// Most values per series drawn with a dot (beyond, the line alone).
const MAX_DOTS: usize = 60;

/// One line of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its name in the legend.
    pub name: &'static str,
    /// Its stroke colour (`#rrggbb`).
    pub color: &'static str,
    /// On the right axis (else on the left one).
    pub right_axis: bool,
    /// One value per x.
    pub values: Vec<f64>,
}

/// A y axis: its unit and its top.
#[derive(Debug, Clone, Copy)]
pub struct Axis<'a> {
    /// Written after each tick's value (`%`, ` ms`, ` MiB`).
    pub unit: &'a str,
    /// A fixed top (100 for percent); `None`: the largest value of its series, rounded up to
    /// 1, 2 or 5 × 10^k.
    pub top: Option<f64>,
}

impl Axis<'_> {
    /// Percent, 0 to 100.
    pub const PERCENT: Axis<'static> = Axis {
        unit: "%",
        top: Some(100.0),
    };
    /// Milliseconds, from 0 to the largest value rounded up.
    pub const MS: Axis<'static> = Axis::auto(" ms");
}

impl<'a> Axis<'a> {
    /// From 0 to the largest value rounded up, ticks written with `unit`.
    pub const fn auto(unit: &'a str) -> Axis<'a> {
        Axis { unit, top: None }
    }
}

/// What to draw: x values evenly spaced (a log₂ axis when they double), and the series.
#[derive(Debug, Clone, Copy)]
pub struct Chart<'a> {
    /// The title above the plot.
    pub title: &'a str,
    /// The x axis's label.
    pub x_label: &'a str,
    /// The x values, in order.
    pub xs: &'a [u64],
    /// The left axis.
    pub left: Axis<'a>,
    /// The right axis.
    pub right: Axis<'a>,
    /// The lines.
    pub series: &'a [Series],
}

/// Where a chart's values go on the canvas.
struct Scale {
    /// How many x values.
    count: usize,
    /// The left axis's top.
    left_top: f64,
    /// The right axis's top.
    right_top: f64,
}

impl Scale {
    fn x(&self, i: usize) -> f64 {
        if self.count <= 1 {
            LEFT + PLOT_W / 2.0
        } else {
            LEFT + PLOT_W * i as f64 / (self.count - 1) as f64
        }
    }

    fn y(&self, v: f64, right_axis: bool) -> f64 {
        let top = if right_axis {
            self.right_top
        } else {
            self.left_top
        };
        TOP + PLOT_H * (1.0 - (v / top).clamp(0.0, 1.0))
    }
}

/// The top of `axis`: fixed, or the largest value of its series rounded up.
fn top(axis: &Axis<'_>, series: &[Series], right_axis: bool) -> f64 {
    axis.top.unwrap_or_else(|| {
        let max = series
            .iter()
            .filter(|s| s.right_axis == right_axis)
            .flat_map(|s| s.values.iter().copied())
            .fold(0.0_f64, f64::max);
        nice_ceiling(max.max(1.0))
    })
}

/// The SVG of `chart`.
pub fn render(chart: &Chart<'_>) -> String {
    let scale = Scale {
        count: chart.xs.len(),
        left_top: top(&chart.left, chart.series, false),
        right_top: top(&chart.right, chart.series, true),
    };
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        chart.title
    );
    axes(&mut svg, chart, &scale);
    for s in chart.series {
        line(&mut svg, s, &scale);
    }
    legend(&mut svg, chart.series);
    svg.push_str("</svg>\n");
    svg
}

/// The grid, both y axes' ticks, the frame and the x axis's values and label.
fn axes(svg: &mut String, chart: &Chart<'_>, scale: &Scale) {
    for tick in 0..=5 {
        let f = tick as f64 / 5.0;
        let y = TOP + PLOT_H * (1.0 - f);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/>"##,
            W - RIGHT
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}{}</text>"#,
            LEFT - 8.0,
            y + 4.0,
            trim(f * scale.left_top),
            chart.left.unit
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{}{}</text>"#,
            W - RIGHT + 8.0,
            y + 4.0,
            trim(f * scale.right_top),
            chart.right.unit
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{PLOT_H}" fill="none" stroke="#555"/>"##
    );
    let every = chart.xs.len().div_ceil(MAX_X_LABELS).max(1);
    for (i, n) in chart.xs.iter().enumerate().step_by(every) {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{n}</text>"#,
            scale.x(i),
            TOP + PLOT_H + 18.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + PLOT_W / 2.0,
        H - 16.0,
        chart.x_label
    );
}

/// One series: its polyline and a dot per value.
fn line(svg: &mut String, s: &Series, scale: &Scale) {
    let points: Vec<String> = s
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", scale.x(i), scale.y(*v, s.right_axis)))
        .collect();
    let _ = writeln!(
        svg,
        r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
        points.join(" "),
        s.color
    );
    if points.len() > MAX_DOTS {
        return;
    }
    for p in &points {
        let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
        let _ = writeln!(
            svg,
            r#"<circle cx="{px}" cy="{py}" r="3.5" fill="{}"/>"#,
            s.color
        );
    }
}

/// The legend above the plot, one entry per series.
fn legend(svg: &mut String, series: &[Series]) {
    for (i, s) in series.iter().enumerate() {
        let lx = LEFT + 10.0 + 240.0 * i as f64;
        let ly = TOP - 12.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx:.1}" y="{:.1}" width="14" height="4" fill="{}"/>"#,
            ly - 4.0,
            s.color
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{ly:.1}">{}</text>"#,
            lx + 20.0,
            s.name
        );
    }
}

/// The smallest of 1, 2, 5 × 10^k at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * mag)
}

fn trim(v: f64) -> String {
    if v >= 10.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_are_round() {
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(10.0), 10.0);
        assert_eq!(nice_ceiling(101.0), 200.0);
        assert_eq!(nice_ceiling(0.7), 1.0);
    }

    #[test]
    fn an_empty_chart_still_draws_axes() {
        let svg = render(&Chart {
            title: "t",
            x_label: "x",
            xs: &[],
            left: Axis::PERCENT,
            right: Axis::MS,
            series: &[],
        });
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(">0%</text>") && svg.contains(">1 ms</text>"));
    }

    #[test]
    fn values_land_on_their_axis() {
        let series = [
            Series {
                name: "ok %",
                color: "#000000",
                right_axis: false,
                values: vec![100.0, 50.0],
            },
            Series {
                name: "p99 ms",
                color: "#ffffff",
                right_axis: true,
                values: vec![0.0, 20.0],
            },
        ];
        let svg = render(&Chart {
            title: "t",
            x_label: "N",
            xs: &[16, 32],
            left: Axis::PERCENT,
            right: Axis::MS,
            series: &series,
        });
        // 100 % and 20 ms (the right axis's top) are at the top, 0 ms at the bottom.
        assert!(svg.contains(r#"points="70.0,64.0 740.0,232.0""#), "{svg}");
        assert!(svg.contains(r#"points="70.0,400.0 740.0,64.0""#), "{svg}");
        assert!(svg.contains(">20 ms</text>") && svg.contains(">ok %</text>"));
    }

    #[test]
    fn long_series_keep_their_labels_apart() {
        // A soak's 180 samples: both axes rounded up from their values, a dozen x labels at
        // most, lines without dots.
        let xs: Vec<u64> = (0..180).map(|i| i * 10).collect();
        let series = [
            Series {
                name: "RSS MiB",
                color: "#000000",
                right_axis: false,
                values: vec![310.0; 180],
            },
            Series {
                name: "open files",
                color: "#ffffff",
                right_axis: true,
                values: vec![19_050.0; 180],
            },
        ];
        let svg = render(&Chart {
            title: "t",
            x_label: "s",
            xs: &xs,
            left: Axis::auto(" MiB"),
            right: Axis::auto(""),
            series: &series,
        });
        assert!(svg.contains(">500 MiB</text>"), "{svg}");
        assert!(svg.contains(">20000</text>"), "{svg}");
        let x_labels = svg.matches(r#"text-anchor="middle">"#).count() - 2; // title, x label
        assert!((10..=MAX_X_LABELS).contains(&x_labels), "{x_labels}");
        assert!(!svg.contains("<circle"));
    }
}
