//! The `table` format: columns aligned for a terminal, numbers on the
//! right, a rule under the header.

use std::io::{self, Write};

use super::Table;

/// Gap between columns.
const GAP: &str = "  ";

/// Writes `table` aligned, one line per row.
pub fn write(out: &mut impl Write, table: &Table) -> io::Result<()> {
    let header: Vec<String> = table.columns.iter().map(|c| printable(c)).collect();
    let rows: Vec<Vec<(String, bool)>> = table
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|c| (printable(&c.text()), c.right_aligned()))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in &rows {
        for (i, (text, _)) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width(text));
            }
        }
    }
    let header: Vec<(String, bool)> = header.into_iter().map(|h| (h, false)).collect();
    line(out, &header, &widths)?;
    let rule: Vec<(String, bool)> = widths.iter().map(|w| ("-".repeat(*w), false)).collect();
    line(out, &rule, &widths)?;
    for row in &rows {
        line(out, row, &widths)?;
    }
    Ok(())
}

fn line(out: &mut impl Write, cells: &[(String, bool)], widths: &[usize]) -> io::Result<()> {
    let mut text = String::new();
    for (i, ((cell, right), w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            text.push_str(GAP);
        }
        let pad = " ".repeat(w.saturating_sub(width(cell)));
        if *right {
            text.push_str(&pad);
            text.push_str(cell);
        } else {
            text.push_str(cell);
            text.push_str(&pad);
        }
    }
    writeln!(out, "{}", text.trim_end())
}

/// Characters on screen (close enough: names and values are rarely wide
/// East Asian text).
fn width(text: &str) -> usize {
    text.chars().count()
}

/// `text` on one line: control characters escaped so a value with a
/// newline cannot break the alignment.
fn printable(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Cell;
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut table = Table::new(["model", "loss"]);
        table.rows.push(vec![Cell::from("a"), Cell::Float(0.5)]);
        table
            .rows
            .push(vec![Cell::from("long-name"), Cell::Float(f64::NAN)]);
        table.rows.push(vec![Cell::from("x\ny"), Cell::Empty]);
        let mut out = Vec::new();
        write(&mut out, &table).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "model      loss\n---------  ----\na           0.5\nlong-name   NaN\nx\\ny\n"
        );
    }
}
