//! The report: one row per figure, printed as a table or one JSON document.

use serde_json::{Value, json};

/// One measured or checked figure.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Workload that produced it.
    pub workload: &'static str,
    /// What it is, e.g. `2 in flight: metric values/s`.
    pub figure: String,
    /// Its value.
    pub value: f64,
    /// Its unit, e.g. `values/s`, `µs`, `MiB`.
    pub unit: &'static str,
}

/// Everything the run measured, about the machine and the figures.
#[derive(Debug, Clone)]
pub struct Report {
    /// `key: value` facts printed in the summary line (cores, backend, ...).
    pub summary: Vec<(&'static str, Value)>,
    /// Backend name printed on every row.
    pub backend: &'static str,
    /// Figures in the order measured.
    pub figures: Vec<Figure>,
    /// Failed workloads, failed checks and errors worth a look; a report
    /// with problems makes the harness exit with failure.
    pub problems: Vec<String>,
}

impl Report {
    /// An empty report about `backend`.
    pub fn new(backend: &'static str) -> Self {
        Self {
            summary: Vec::new(),
            backend,
            figures: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Adds a summary fact.
    pub fn fact(&mut self, key: &'static str, value: impl Into<Value>) {
        self.summary.push((key, value.into()));
    }

    /// Adds a figure.
    pub fn add(&mut self, workload: &'static str, figure: impl Into<String>, value: f64, unit: &'static str) {
        self.figures.push(Figure {
            workload,
            figure: figure.into(),
            value,
            unit,
        });
    }

    /// Records a problem (also shown on stderr right away).
    pub fn problem(&mut self, message: impl Into<String>) {
        let message = message.into();
        eprintln!("problem: {message}");
        self.problems.push(message);
    }

    /// Prints the report on stdout: the table, or JSON when `json`.
    pub fn print(&self, json: bool) {
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&self.to_json()).unwrap_or_default()
            );
        } else {
            print!("{}", self.to_table());
        }
    }

    /// The report as one JSON document.
    pub fn to_json(&self) -> Value {
        let summary: serde_json::Map<String, Value> = self
            .summary
            .iter()
            .map(|(key, value)| ((*key).to_owned(), value.clone()))
            .collect();
        let results: Vec<Value> = self
            .figures
            .iter()
            .map(|f| {
                json!({
                    "workload": f.workload,
                    "backend": self.backend,
                    "figure": f.figure,
                    "value": f.value,
                    "unit": f.unit,
                })
            })
            .collect();
        json!({ "summary": summary, "results": results, "problems": self.problems })
    }

    /// The report as a summary line and an aligned table.
    pub fn to_table(&self) -> String {
        let summary: Vec<String> = self
            .summary
            .iter()
            .map(|(key, value)| match value {
                Value::String(s) => format!("{key}={s}"),
                other => format!("{key}={other}"),
            })
            .collect();
        let mut out = format!("mlmeta-bench: {}\n\n", summary.join(", "));
        let header = ["workload", "backend", "figure", "value", "unit"];
        let rows: Vec<[String; 5]> = self
            .figures
            .iter()
            .map(|f| {
                [
                    f.workload.to_owned(),
                    self.backend.to_owned(),
                    f.figure.clone(),
                    format_value(f.value),
                    f.unit.to_owned(),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: [&str; 5]| {
            let mut s = String::new();
            for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
                let pad = " ".repeat(width - cell.chars().count());
                if i == 3 {
                    s.push_str(&format!("{pad}{cell}  "));
                } else {
                    s.push_str(&format!("{cell}{pad}  "));
                }
            }
            format!("{}\n", s.trim_end())
        };
        out.push_str(&line(header));
        out.push_str(&line(
            widths.map(|w| "-".repeat(w)).each_ref().map(String::as_str),
        ));
        for row in &rows {
            out.push_str(&line(row.each_ref().map(String::as_str)));
        }
        if self.problems.is_empty() {
            out.push_str("\nproblems: none\n");
        } else {
            out.push_str(&format!("\nproblems ({}):\n", self.problems.len()));
            for problem in &self.problems {
                out.push_str(&format!("- {problem}\n"));
            }
        }
        out
    }
}

/// A value with a precision that suits its size, thousands separated.
fn format_value(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let abs = value.abs();
    if abs >= 1_000.0 || value.fract() == 0.0 {
        let rounded = value.round() as i64;
        let digits: Vec<char> = rounded.unsigned_abs().to_string().chars().rev().collect();
        let groups: Vec<String> = digits.chunks(3).map(|g| g.iter().rev().collect()).collect();
        let grouped = groups.into_iter().rev().collect::<Vec<_>>().join(",");
        if rounded < 0 {
            format!("-{grouped}")
        } else {
            grouped
        }
    } else if abs >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_formatted_by_size() {
        assert_eq!(format_value(1_234_567.8), "1,234,568");
        assert_eq!(format_value(200.0), "200");
        assert_eq!(format_value(45.67), "45.7");
        assert_eq!(format_value(1.234), "1.23");
        assert_eq!(format_value(-1500.0), "-1,500");
    }

    #[test]
    fn table_and_json_hold_every_figure() {
        let mut report = Report::new("sqlite");
        report.fact("cores", 2);
        report.add("bulk", "epochs/s", 12_345.0, "epochs/s");
        report.problem("something odd");
        let table = report.to_table();
        assert!(table.starts_with("mlmeta-bench: cores=2"));
        assert!(table.contains("12,345"));
        assert!(table.contains("- something odd"));
        let json = report.to_json();
        assert_eq!(json["results"][0]["value"], 12_345.0);
        assert_eq!(json["results"][0]["backend"], "sqlite");
        assert_eq!(json["problems"][0], "something odd");
    }
}
