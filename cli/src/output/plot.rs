//! `history --plot`: metric curves as a line chart in Unicode braille
//! (`textplots`), one series per (model, metric), NaN and infinite values
//! left out as gaps in the line, with a legend under the chart.

use std::fmt::Write as _;
use std::io::IsTerminal as _;

use textplots::{Chart, ColorPlot, LabelBuilder, LabelFormat, Plot, Shape};

/// One curve: its legend label and its (epoch, value) points, by epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// `model metric`.
    pub label: String,
    /// The points; NaN and infinite values are gaps.
    pub points: Vec<(i64, f64)>,
}

/// The size of the chart in characters, and whether to color it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlotSize {
    /// Characters per line (the chart, its y labels and the legend).
    pub columns: u16,
    /// Lines of the chart itself (without the x labels and the legend).
    pub rows: u16,
    /// ANSI colors, one per series.
    pub color: bool,
}

impl PlotSize {
    /// The terminal's size (`COLUMNS`/`LINES` when standard output is not
    /// a terminal, else 100 x 30), colored on a terminal unless
    /// `NO_COLOR` is set.
    pub fn of_terminal() -> Self {
        let from_env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u16>().ok());
        let (columns, lines) = match terminal_size::terminal_size() {
            Some((terminal_size::Width(w), terminal_size::Height(h))) => (w, h),
            None => (
                from_env("COLUMNS").unwrap_or(100),
                from_env("LINES").unwrap_or(30),
            ),
        };
        Self {
            columns,
            // Room for the x labels, the legend and the prompt.
            rows: lines.saturating_sub(8).clamp(6, 40),
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

/// Colors of the series, in order (then again).
const PALETTE: [(u8, u8, u8); 6] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (23, 190, 207),
];

/// Characters left of the right edge for the y labels.
const LABEL_WIDTH: u16 = 12;

/// The chart of `series` at `size`, ending with a newline.
pub fn render(series: &[Series], size: PlotSize) -> String {
    // The x axis spans every epoch (a NaN at the end is a visible gap),
    // the y axis the finite values.
    let all = || series.iter().flat_map(|s| s.points.iter());
    let Some((xmin, xmax, ymin, ymax)) = ranges(all().map(|(x, _)| *x), all().map(|(_, y)| *y)) else {
        return "no finite values to plot\n".to_owned();
    };
    // Braille: 2 dots per character across, 4 down, and the canvas has
    // one more character each way than the dots fill; textplots needs at
    // least 32 dots across and 3 down.
    let width = (u32::from(size.columns.saturating_sub(LABEL_WIDTH + 1)) * 2).max(32);
    let height = (u32::from(size.rows.saturating_sub(1)) * 4).max(8);
    // One shape per run of finite values: a NaN breaks the line.
    let runs: Vec<(usize, Vec<(f32, f32)>)> = series
        .iter()
        .enumerate()
        .flat_map(|(i, s)| runs(&s.points).into_iter().map(move |run| (i, run)))
        .collect();
    let shapes: Vec<(usize, Shape<'_>)> = runs
        .iter()
        .map(|(i, run)| {
            let shape = if run.len() == 1 {
                Shape::Points(run)
            } else {
                Shape::Lines(run)
            };
            (*i, shape)
        })
        .collect();
    let mut chart = Chart::new_with_y_range(width, height, xmin, xmax, ymin, ymax);
    let mut chart = chart
        .x_label_format(LabelFormat::Custom(Box::new(|x| format!("{}", x.round()))))
        .y_label_format(LabelFormat::Custom(Box::new(short)));
    for (i, shape) in &shapes {
        chart = if size.color {
            let (r, g, b) = PALETTE[i % PALETTE.len()];
            chart.linecolorplot(shape, rgb::RGB8 { r, g, b })
        } else {
            chart.lineplot(shape)
        };
    }
    chart.figures();
    let mut out = chart.to_string();
    for (i, s) in series.iter().enumerate() {
        let marker = if size.color {
            let (r, g, b) = PALETTE[i % PALETTE.len()];
            format!("\x1b[38;2;{r};{g};{b}m━━\x1b[0m")
        } else {
            "━━".to_owned()
        };
        let gaps = s.points.iter().filter(|(_, v)| !v.is_finite()).count();
        let _ = write!(out, "{marker} {}", s.label);
        if gaps > 0 {
            let _ = write!(out, " ({gaps} NaN/inf not drawn)");
        }
        out.push('\n');
    }
    out
}

/// The x range of `xs` and the y range of the finite `ys`, widened where
/// they are a single value (a flat line, one epoch); `None` without a
/// finite value.
fn ranges(xs: impl Iterator<Item = i64>, ys: impl Iterator<Item = f64>) -> Option<(f32, f32, f32, f32)> {
    let (xmin, xmax) = xs.fold((i64::MAX, i64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let (ymin, ymax) = ys
        .filter(|y| y.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
    if ymin > ymax {
        return None;
    }
    // The chart is drawn in f32 (textplots' type); epochs and metric
    // values lose only what a terminal's resolution cannot show.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (xmin as f32, xmax as f32, ymin as f32, ymax as f32);
    if xmin == xmax {
        xmin -= 1.0;
        xmax += 1.0;
    }
    if ymin == ymax {
        let pad = (ymin.abs() * 0.1).max(0.5);
        ymin -= pad;
        ymax += pad;
    }
    Some((xmin, xmax, ymin, ymax))
}

/// The runs of consecutive finite points.
fn runs(points: &[(i64, f64)]) -> Vec<Vec<(f32, f32)>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for (x, y) in points {
        if y.is_finite() {
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
            current.push((*x as f32, *y as f32));
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// A y label: up to 4 decimals, without trailing zeros.
fn short(value: f32) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: PlotSize = PlotSize {
        columns: 40,
        rows: 6,
        color: false,
    };

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    /// Dots of a braille character (U+2800 + bits), 0 for other text.
    fn dots(c: char) -> u32 {
        let code = u32::from(c);
        if (0x2800..=0x28ff).contains(&code) {
            (code - 0x2800).count_ones()
        } else {
            0
        }
    }

    fn chart_dots(line: &str) -> u32 {
        line.chars().map(dots).sum()
    }

    #[test]
    fn a_rising_line_fills_the_chart_at_the_asked_size() {
        let series = [Series {
            label: "m loss".to_owned(),
            points: (0..=10)
                .map(|e| (e, f64::from(u8::try_from(e).unwrap())))
                .collect(),
        }];
        let text = render(&series, SIZE);
        let rows = lines(&text);
        // 6 chart lines, the x labels, one legend line.
        assert_eq!(rows.len(), 8, "{text}");
        assert!(rows[0].ends_with(" 10"), "ymax label: {text}");
        assert!(rows[5].ends_with(" 0"), "ymin label: {text}");
        assert!(
            rows[6].starts_with('0') && rows[6].ends_with("10"),
            "x labels: {text}"
        );
        assert_eq!(rows[7], "━━ m loss");
        // 28 braille characters across (2 dots each): (40 - 12) columns.
        assert_eq!(
            rows[0]
                .chars()
                .filter(|c| dots(*c) > 0 || *c == '\u{2800}')
                .count(),
            28
        );
        // A diagonal from bottom left to top right: dots in every line,
        // the lowest line's on the left, the highest line's on the right.
        for row in &rows[..6] {
            assert!(chart_dots(row) > 0, "{text}");
        }
        let first_dot = |row: &str| row.chars().position(|c| dots(c) > 0).unwrap();
        assert!(first_dot(rows[5]) < 3 && first_dot(rows[0]) > 20, "{text}");
    }

    #[test]
    fn nan_is_a_gap_and_is_counted_in_the_legend() {
        let mut points: Vec<(i64, f64)> = (0..=20).map(|e| (e, 1.0)).collect();
        let solid = render(
            &[Series {
                label: "a".to_owned(),
                points: points.clone(),
            }],
            SIZE,
        );
        for point in &mut points[8..13] {
            point.1 = f64::NAN;
        }
        let gapped = render(
            &[Series {
                label: "a".to_owned(),
                points,
            }],
            SIZE,
        );
        // The flat line sits in one chart line; with the gap it has fewer
        // dots there, and blank cells in the middle.
        let line = |text: &str| {
            lines(text)[..6]
                .iter()
                .map(|l| (*l).to_owned())
                .max_by_key(|l| chart_dots(l))
                .unwrap()
        };
        let (solid_line, gapped_line) = (line(&solid), line(&gapped));
        assert!(
            chart_dots(&gapped_line) < chart_dots(&solid_line),
            "{solid}\n{gapped}"
        );
        let middle: Vec<char> = gapped_line.chars().skip(12).take(4).collect();
        assert!(middle.iter().all(|c| dots(*c) == 0), "{gapped}");
        assert!(gapped.ends_with("━━ a (5 NaN/inf not drawn)\n"), "{gapped}");
    }

    #[test]
    fn series_share_the_axes_and_each_has_a_legend_line() {
        let series = [
            Series {
                label: "m1 loss".to_owned(),
                points: vec![(1, 2.0), (2, 1.0), (3, 0.5)],
            },
            Series {
                label: "m2 val_loss".to_owned(),
                points: vec![(1, 4.0), (2, f64::INFINITY), (3, 3.0)],
            },
        ];
        let text = render(&series, SIZE);
        let rows = lines(&text);
        assert!(rows[0].ends_with(" 4"), "{text}");
        assert!(rows[5].ends_with(" 0.5"), "{text}");
        assert_eq!(
            rows[rows.len() - 2..],
            ["━━ m1 loss", "━━ m2 val_loss (1 NaN/inf not drawn)"]
        );
        let colored = render(&series, PlotSize { color: true, ..SIZE });
        assert!(
            colored.contains("\x1b[38;2;31;119;180m━━\x1b[0m m1 loss"),
            "{colored}"
        );
        assert_eq!(render(&[], SIZE), "no finite values to plot\n");
        let only_nan = [Series {
            label: "x".to_owned(),
            points: vec![(1, f64::NAN)],
        }];
        assert_eq!(render(&only_nan, SIZE), "no finite values to plot\n");
        // One point: a dot, no panic on the empty ranges.
        let one = render(
            &[Series {
                label: "x".to_owned(),
                points: vec![(3, 0.25)],
            }],
            SIZE,
        );
        assert!(
            lines(&one)[..6].iter().map(|l| chart_dots(l)).sum::<u32>() >= 1,
            "{one}"
        );
    }

    #[test]
    fn labels_are_short() {
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(10.0), "10");
        assert_eq!(short(-0.00001), "0");
        assert_eq!(short(0.123_456), "0.1235");
    }
}
