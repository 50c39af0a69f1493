//! All output goes through [`print()`]: a command returns something that
//! can [`Render`] itself as rows (the `table` and `csv` formats) and as one
//! JSON document, and the chosen format decides which is printed.
//!
//! Numbers: metric values print as the shortest text that reads back as
//! the same `f64` (so two models never look tied when they are not), with
//! an exponent when very large or small (`1e-7`), and `NaN`, `inf`,
//! `-inf` for non-finite values. JSON has no such numbers, so there they
//! are the strings `"NaN"`, `"inf"` and `"-inf"`; finite values are JSON
//! numbers.

mod csv;
pub mod flatten;
pub mod json;
pub mod plot;
mod table;

use std::io::{self, Write};
use std::time::SystemTime;

use serde_json::Value;

use crate::args::Format;
use crate::error::CliError;

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Nothing (a metric the epoch lacks, a hyperparameter the model's
    /// datablob lacks).
    Empty,
    /// Text, left-aligned.
    Text(String),
    /// An integer, right-aligned.
    Int(i64),
    /// A metric value, right-aligned (see [`format_f64`]).
    Float(f64),
    /// A number already in its final text (a JSON number), right-aligned.
    Number(String),
}

impl Cell {
    /// The cell of a summary column's value (empty when the model lacks
    /// it).
    pub fn column(value: &mlmeta_client::ColumnValue) -> Self {
        match value {
            mlmeta_client::ColumnValue::Missing => Self::Empty,
            mlmeta_client::ColumnValue::Integer(int) => Self::Int(*int),
            mlmeta_client::ColumnValue::Number(number) => Self::Float(*number),
        }
    }

    /// The cell as text.
    pub fn text(&self) -> String {
        match self {
            Self::Empty => String::new(),
            Self::Text(text) | Self::Number(text) => text.clone(),
            Self::Int(n) => n.to_string(),
            Self::Float(x) => format_f64(*x),
        }
    }

    /// Whether the cell lines up on the right, like numbers do.
    fn right_aligned(&self) -> bool {
        matches!(self, Self::Int(_) | Self::Float(_) | Self::Number(_))
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

/// Named columns and rows of cells.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column names: the header.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Self {
        Self {
            columns: columns.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }
}

/// What a command produces.
pub trait Render {
    /// The rows and columns: what the `csv` format prints, and the
    /// `table` format unless [`Render::summary`] says otherwise.
    fn table(&self) -> Table;

    /// The one JSON document of the `json` format.
    fn json(&self) -> Result<Value, serde_json::Error>;

    /// A sentence the `table` format prints instead of the table (for
    /// commands whose result is one fact, like "stored datablob x").
    fn summary(&self) -> Option<String> {
        None
    }

    /// Whether the command printed its output itself already.
    fn printed(&self) -> bool {
        false
    }
}

/// The result of a command that printed as it went (`watch`): nothing
/// more to print.
pub struct Nothing;

impl Render for Nothing {
    fn table(&self) -> Table {
        Table::new(Vec::<String>::new())
    }

    fn json(&self) -> Result<Value, serde_json::Error> {
        Ok(Value::Null)
    }

    fn printed(&self) -> bool {
        true
    }
}

/// Prints `result` to standard output in `format`.
pub fn print(result: &dyn Render, format: Format) -> Result<(), CliError> {
    if result.printed() {
        return Ok(());
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match format {
        Format::Table => match result.summary() {
            Some(line) => writeln!(out, "{line}")?,
            None => table::write(&mut out, &result.table())?,
        },
        Format::Csv => csv::write(&mut out, &result.table())?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &result.json()?)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `table` as the `table` format prints it.
pub fn table_text(table: &Table) -> String {
    let mut out = Vec::new();
    // Writing into memory cannot fail.
    let _ = table::write(&mut out, table);
    String::from_utf8_lossy(&out).into_owned()
}

/// `x` as the shortest text that parses back to the same `f64`: `0.91`,
/// `1.0`, `1e-7`, `1e16`, `NaN`, `inf`, `-inf`.
pub fn format_f64(x: f64) -> String {
    // Debug, unlike Display, switches to an exponent for very large and
    // very small magnitudes instead of printing hundreds of zeros; both
    // print the shortest round-tripping digits.
    format!("{x:?}")
}

/// A timestamp as RFC 3339 in UTC, to the second; empty when unknown.
pub fn format_time(time: Option<SystemTime>) -> String {
    time.map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_round_trip_and_non_finite_values_are_words() {
        for x in [
            0.91,
            1.0,
            0.1 + 0.2,
            1e-7,
            1e300,
            -2.5e-300,
            f64::MIN_POSITIVE,
            123_456.789,
        ] {
            assert_eq!(format_f64(x).parse::<f64>().unwrap(), x);
            assert!(format_f64(x).len() < 25, "{}", format_f64(x));
        }
        assert_eq!(format_f64(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_f64(f64::NAN), "NaN");
        assert_eq!(format_f64(f64::INFINITY), "inf");
        assert_eq!(format_f64(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn times_are_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(86_400);
        assert_eq!(format_time(Some(t)), "1970-01-02T00:00:00Z");
        assert_eq!(format_time(None), "");
    }
}
