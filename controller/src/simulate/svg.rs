//! A hand-written SVG chart of simulation results: four stacked panels
//! (arrival rate, queue depth, capacity in service, oldest-message age)
//! sharing a time axis in minutes that ends where the trace ends, one
//! coloured line per policy (plus the clairvoyant bound's capacity, dashed),
//! and a legend.

use std::fmt::Write as _;

use super::engine::SeriesPoint;

const WIDTH: f64 = 960.0;
const PANEL_HEIGHT: f64 = 200.0;
const PANEL_GAP: f64 = 56.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 180.0;
const TOP: f64 = 48.0;
const BOTTOM: f64 = 56.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// The line colour of the `i`-th policy; the palette repeats.
fn colour(i: usize) -> &'static str {
    COLOURS.get(i % COLOURS.len()).copied().unwrap_or("black")
}

struct Panel {
    title: &'static str,
    unit: &'static str,
    value: fn(&SeriesPoint) -> f64,
}

const PANELS: [Panel; 4] = [
    Panel {
        title: "Arrivals",
        unit: "messages/s",
        // Replaced by the rate between samples (see `arrival_rates`).
        value: |_| 0.0,
    },
    Panel {
        title: "Queue depth (visible + in flight)",
        unit: "messages",
        value: |p| (p.visible + p.in_flight) as f64,
    },
    Panel {
        title: "Capacity in service",
        unit: "instances",
        value: |p| f64::from(p.in_service),
    },
    Panel {
        title: "Age of oldest message",
        unit: "seconds",
        value: |p| p.oldest_age_secs as f64,
    },
];

/// Arrival rate between consecutive samples, at each sample's time.
fn arrival_rates(series: &[SeriesPoint]) -> Vec<(u64, f64)> {
    series
        .windows(2)
        .filter_map(|pair| match pair {
            [a, b] if b.t > a.t => Some((
                b.t,
                b.arrived.saturating_sub(a.arrived) as f64 / (b.t - a.t) as f64,
            )),
            _ => None,
        })
        .collect()
}

/// A line on one panel: its legend name, colour, dash and points (seconds, value).
struct Line {
    name: String,
    colour: &'static str,
    dashed: bool,
    points: Vec<(u64, f64)>,
}

/// Renders one SVG document. `results` are (name, samples), in legend
/// order; the arrivals panel draws the first entry's arrivals (all policies
/// see the same ones); `bound` is an optional extra capacity line (name,
/// (seconds, instances)). The x axis runs from 0 to `trace_end_secs`:
/// samples after the end of the trace (the drain) are not drawn.
pub fn render_svg(
    results: &[(&str, &[SeriesPoint])],
    trace_end_secs: u64,
    bound: Option<(&str, &[(u64, f64)])>,
) -> String {
    let panels = PANELS.len() as f64;
    let height = TOP + panels * PANEL_HEIGHT + (panels - 1.0) * PANEL_GAP + BOTTOM;
    let plot_width = WIDTH - LEFT - RIGHT;
    let end = trace_end_secs.max(60);
    let x_max = end as f64 / 60.0;
    let bound_colour = colour(results.len());

    let mut panel_lines: Vec<Vec<Line>> = Vec::new();
    for (index, panel) in PANELS.iter().enumerate() {
        let mut lines = Vec::new();
        if index == 0 {
            if let Some((_, series)) = results.first() {
                lines.push(Line {
                    name: "arrivals".into(),
                    colour: "#000000",
                    dashed: false,
                    points: arrival_rates(series),
                });
            }
        } else {
            for (i, (name, series)) in results.iter().enumerate() {
                lines.push(Line {
                    name: (*name).to_string(),
                    colour: colour(i),
                    dashed: false,
                    points: series.iter().map(|p| (p.t, (panel.value)(p))).collect(),
                });
            }
            if index == 2
                && let Some((name, points)) = bound
            {
                lines.push(Line {
                    name: name.to_string(),
                    colour: bound_colour,
                    dashed: true,
                    points: points.to_vec(),
                });
            }
        }
        for line in &mut lines {
            line.points.retain(|(t, _)| *t <= end);
        }
        panel_lines.push(lines);
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="24" font-size="16" font-weight="bold">Ballast autoscaling simulation</text>"#
    );

    for (index, (panel, lines)) in PANELS.iter().zip(&panel_lines).enumerate() {
        let top = TOP + index as f64 * (PANEL_HEIGHT + PANEL_GAP);
        let bottom = top + PANEL_HEIGHT;
        let y_data = lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .fold(0.0_f64, f64::max);
        let y_max = nice_ceiling(y_data.max(1.0));
        let x = |minutes: f64| LEFT + minutes / x_max * plot_width;
        let y = |v: f64| bottom - v / y_max * PANEL_HEIGHT;

        let _ = writeln!(out, r#"<g class="panel" id="panel-{index}">"#);
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{:.1}" font-weight="bold">{}</text>"#,
            top - 8.0,
            escape(panel.title)
        );
        // Grid and y ticks.
        for step in 0..=4 {
            let v = y_max * f64::from(step) / 4.0;
            let yy = y(v);
            let _ = writeln!(
                out,
                r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e0e0e0"/>"##,
                LEFT + plot_width
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                yy + 4.0,
                fmt_tick(v)
            );
        }
        // X ticks.
        for step in 0..=6 {
            let m = x_max * f64::from(step) / 6.0;
            let xx = x(m);
            let _ = writeln!(
                out,
                r##"<line x1="{xx:.1}" y1="{bottom:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#000"/>"##,
                bottom + 4.0
            );
            let _ = writeln!(
                out,
                r#"<text x="{xx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                bottom + 16.0,
                fmt_tick(m)
            );
        }
        // Axes.
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{top:.1}" x2="{LEFT}" y2="{bottom:.1}" stroke="#000"/>"##
        );
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{bottom:.1}" x2="{:.1}" y2="{bottom:.1}" stroke="#000"/>"##,
            LEFT + plot_width
        );
        let mid = top + PANEL_HEIGHT / 2.0;
        let _ = writeln!(
            out,
            r#"<text x="18" y="{mid:.1}" text-anchor="middle" transform="rotate(-90 18 {mid:.1})">{}</text>"#,
            escape(panel.unit)
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time (minutes)</text>"#,
            LEFT + plot_width / 2.0,
            bottom + 32.0
        );
        for line in lines {
            let mut points = String::new();
            for &(t, v) in &line.points {
                let _ = write!(points, "{:.1},{:.1} ", x(t as f64 / 60.0), y(v));
            }
            let dash = if line.dashed {
                r#" stroke-dasharray="6 3""#
            } else {
                ""
            };
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.5"{dash} data-policy="{}" points="{}"/>"#,
                line.colour,
                escape(&line.name),
                points.trim_end()
            );
        }
        let _ = writeln!(out, "</g>");
    }

    // Legend.
    let legend_x = LEFT + plot_width + 24.0;
    let _ = writeln!(out, r#"<g class="legend">"#);
    let mut legend: Vec<(&str, &str)> = results
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (*name, colour(i)))
        .collect();
    if let Some((name, _)) = bound {
        legend.push((name, bound_colour));
    }
    for (i, (name, line_colour)) in legend.into_iter().enumerate() {
        let yy = TOP + 10.0 + i as f64 * 20.0;
        let _ = writeln!(
            out,
            r#"<line x1="{legend_x:.1}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="{}" stroke-width="3"/>"#,
            legend_x + 24.0,
            line_colour
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            legend_x + 30.0,
            yy + 4.0,
            escape(name)
        );
    }
    let _ = writeln!(out, "</g>");
    out.push_str("</svg>\n");
    out
}

/// The smallest of 1, 2, 2.5, 5 × 10^k at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * magnitude >= v {
            return m * magnitude;
        }
    }
    10.0 * magnitude
}

fn fmt_tick(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that tags are balanced; returns the element names opened.
    fn check_balanced(svg: &str) -> Vec<String> {
        let mut stack: Vec<String> = Vec::new();
        let mut opened = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("unterminated tag") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "nested '<' in tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.trim()),
                    "mismatched </{name}>"
                );
            } else {
                let name = tag
                    .split(|c: char| c.is_whitespace() || c == '/')
                    .next()
                    .unwrap()
                    .to_string();
                opened.push(name.clone());
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        opened
    }

    fn series(scale: u64) -> Vec<SeriesPoint> {
        (0..50)
            .map(|i| SeriesPoint {
                t: i * 10,
                visible: i * scale,
                in_flight: 3,
                in_service: 2 + (i % 3) as u32,
                running: 3,
                desired: 3,
                oldest_age_secs: i,
                arrived: i * 50,
            })
            .collect()
    }

    #[test]
    fn svg_is_well_formed_with_one_polyline_per_policy_per_panel() {
        let a = series(1);
        let b = series(7);
        let bound = [(0, 2.0), (600, 3.5), (900, 9.0)];
        let svg = render_svg(
            &[("ballast", &a), ("a<b & \"c\"", &b)],
            480,
            Some(("bound", &bound)),
        );
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        let opened = check_balanced(&svg);
        // Arrivals once, then two policies on three panels, plus the bound.
        assert_eq!(opened.iter().filter(|n| *n == "polyline").count(), 8);
        assert_eq!(opened.iter().filter(|n| *n == "svg").count(), 1);
        for (panel, lines) in [(0, 1), (1, 2), (2, 3), (3, 2)] {
            let start = svg.find(&format!("id=\"panel-{panel}\"")).unwrap();
            let end = start + svg[start..].find("</g>").unwrap();
            assert_eq!(svg[start..end].matches("<polyline").count(), lines);
        }
        assert!(svg.contains("Arrivals") && svg.contains("messages/s"));
        assert!(svg.contains("stroke-dasharray"));
        // The axis ends at the trace's end (8 minutes): its last tick is 8.
        assert!(svg.contains(">8</text>"), "{svg}");
        // Samples past the end are not drawn: the last arrival point is t = 480.
        let start = svg.find("id=\"panel-0\"").unwrap();
        let panel = &svg[start..start + svg[start..].find("</g>").unwrap()];
        let points = panel.split("points=\"").nth(1).unwrap();
        assert_eq!(points.split(' ').count(), 48, "{points}");
        assert!(svg.contains("a&lt;b &amp; &quot;c&quot;"));
        assert!(svg.contains("time (minutes)"));
        assert!(svg.contains("Capacity in service"));
    }

    #[test]
    fn empty_input_still_renders() {
        let svg = render_svg(&[], 0, None);
        check_balanced(&svg);
        assert!(!svg.contains("<polyline"));
    }

    #[test]
    fn nice_ceiling_rounds_up() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(10.0), 10.0);
        assert_eq!(nice_ceiling(11.0), 20.0);
        assert_eq!(nice_ceiling(240.0), 250.0);
        assert_eq!(nice_ceiling(3100.0), 5000.0);
    }
}
