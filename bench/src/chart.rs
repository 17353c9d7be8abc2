//! The ramp's chart, an SVG written by hand: N on a log₂ axis (the steps double, so they are
//! evenly spaced), success rate in percent on the left axis, connect latency p99 and HTTP
//! latency p99 in milliseconds on the right axis. (Hand-written rather than plotters: text in
//! plotters needs a font backend, this needs none and stays dependency-free.)

use std::fmt::Write as _;

use crate::ramp::Step;

const W: f64 = 820.0;
const H: f64 = 460.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 80.0;
const TOP: f64 = 64.0;
const BOTTOM: f64 = 60.0;

struct Series {
    name: &'static str,
    color: &'static str,
    right_axis: bool,
    values: Vec<f64>,
}

/// The SVG of the ramp's steps.
pub fn render(steps: &[Step]) -> String {
    let series = [
        Series {
            name: "success % (all phases)",
            color: "#2a9d4b",
            right_axis: false,
            values: steps.iter().map(|s| s.success_percent).collect(),
        },
        Series {
            name: "connect p99 ms (clients alone)",
            color: "#1f5fbf",
            right_axis: true,
            values: steps.iter().map(|s| s.clients.connect.p99_ms).collect(),
        },
        Series {
            name: "HTTP p99 ms (http alone)",
            color: "#d2691e",
            right_axis: true,
            values: steps.iter().map(|s| s.http.latency.p99_ms).collect(),
        },
    ];
    let ns: Vec<u64> = steps.iter().map(|s| s.n).collect();
    let max_ms = series
        .iter()
        .filter(|s| s.right_axis)
        .flat_map(|s| s.values.iter().copied())
        .fold(0.0_f64, f64::max);
    let ms_top = nice_ceiling(max_ms.max(1.0));
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let x = |i: usize| {
        if ns.len() <= 1 {
            LEFT + plot_w / 2.0
        } else {
            LEFT + plot_w * i as f64 / (ns.len() - 1) as f64
        }
    };
    let y_pct = |v: f64| TOP + plot_h * (1.0 - v.clamp(0.0, 100.0) / 100.0);
    let y_ms = |v: f64| TOP + plot_h * (1.0 - (v / ms_top).clamp(0.0, 1.0));

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">matchstream ramp: N against success and p99 latency</text>"#,
        W / 2.0
    );
    // Grid and axes.
    for tick in 0..=5 {
        let f = tick as f64 / 5.0;
        let y = TOP + plot_h * (1.0 - f);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/>"##,
            W - RIGHT
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{:.0}%</text>"#,
            LEFT - 8.0,
            y + 4.0,
            f * 100.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{} ms</text>"#,
            W - RIGHT + 8.0,
            y + 4.0,
            trim(f * ms_top)
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#555"/>"##
    );
    for (i, n) in ns.iter().enumerate() {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{n}</text>"#,
            x(i),
            TOP + plot_h + 18.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">N (users; C = min(N, max-c))</text>"#,
        LEFT + plot_w / 2.0,
        H - 16.0
    );
    // Series.
    for s in &series {
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let y = if s.right_axis { y_ms(*v) } else { y_pct(*v) };
                format!("{:.1},{:.1}", x(i), y)
            })
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            points.join(" "),
            s.color
        );
        for p in &points {
            let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(
                svg,
                r#"<circle cx="{px}" cy="{py}" r="3.5" fill="{}"/>"#,
                s.color
            );
        }
    }
    // Legend.
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
    svg.push_str("</svg>\n");
    svg
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
    fn an_empty_ramp_still_draws_axes() {
        let svg = render(&[]);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
}
