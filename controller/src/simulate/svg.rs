//! A hand-written SVG chart of simulation results: three stacked panels
//! (queue depth, capacity in service, oldest-message age) sharing a time
//! axis in minutes, one coloured line per policy, and a legend.

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

const PANELS: [Panel; 3] = [
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

/// Renders one SVG document: for every panel, one `<polyline>` per entry of
/// `results` (name, samples), in the order given.
pub fn render_svg(results: &[(&str, &[SeriesPoint])]) -> String {
    let height = TOP + 3.0 * PANEL_HEIGHT + 2.0 * PANEL_GAP + BOTTOM;
    let plot_width = WIDTH - LEFT - RIGHT;
    let t_max = results
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.t))
        .max()
        .unwrap_or(0)
        .max(60) as f64;
    let x_max = nice_ceiling(t_max / 60.0);

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

    for (index, panel) in PANELS.iter().enumerate() {
        let top = TOP + index as f64 * (PANEL_HEIGHT + PANEL_GAP);
        let bottom = top + PANEL_HEIGHT;
        let y_data = results
            .iter()
            .flat_map(|(_, s)| s.iter().map(panel.value))
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
        // One line per policy.
        for (i, (name, series)) in results.iter().enumerate() {
            let mut points = String::new();
            for p in series.iter() {
                let _ = write!(
                    points,
                    "{:.1},{:.1} ",
                    x(p.t as f64 / 60.0),
                    y((panel.value)(p))
                );
            }
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{}" stroke-width="1.5" data-policy="{}" points="{}"/>"#,
                colour(i),
                escape(name),
                points.trim_end()
            );
        }
        let _ = writeln!(out, "</g>");
    }

    // Legend.
    let legend_x = LEFT + plot_width + 24.0;
    let _ = writeln!(out, r#"<g class="legend">"#);
    for (i, (name, _)) in results.iter().enumerate() {
        let yy = TOP + 10.0 + i as f64 * 20.0;
        let _ = writeln!(
            out,
            r#"<line x1="{legend_x:.1}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="{}" stroke-width="3"/>"#,
            legend_x + 24.0,
            colour(i)
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
            })
            .collect()
    }

    #[test]
    fn svg_is_well_formed_with_one_polyline_per_policy_per_panel() {
        let a = series(1);
        let b = series(7);
        let svg = render_svg(&[("ballast", &a), ("a<b & \"c\"", &b)]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        let opened = check_balanced(&svg);
        assert_eq!(opened.iter().filter(|n| *n == "polyline").count(), 6);
        assert_eq!(opened.iter().filter(|n| *n == "svg").count(), 1);
        for panel in 0..3 {
            let start = svg.find(&format!("id=\"panel-{panel}\"")).unwrap();
            let end = start + svg[start..].find("</g>").unwrap();
            assert_eq!(svg[start..end].matches("<polyline").count(), 2);
        }
        assert!(svg.contains("a&lt;b &amp; &quot;c&quot;"));
        assert!(svg.contains("time (minutes)"));
        assert!(svg.contains("Capacity in service"));
    }

    #[test]
    fn empty_input_still_renders() {
        let svg = render_svg(&[]);
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
