//! The `csv` format: a header line, then one record per row, quoted where
//! needed.

use std::io::Write;

use super::Table;

/// Writes `table` as CSV.
pub fn write(out: &mut impl Write, table: &Table) -> Result<(), csv::Error> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(&table.columns)?;
    for row in &table.rows {
        writer.write_record(row.iter().map(|c| c.text()))?;
    }
    writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Cell;
    use super::*;

    #[test]
    fn quotes_where_needed() {
        let mut table = Table::new(["name", "loss"]);
        table
            .rows
            .push(vec![Cell::from("a,b"), Cell::Float(f64::NEG_INFINITY)]);
        table.rows.push(vec![Cell::from("c"), Cell::Empty]);
        let mut out = Vec::new();
        write(&mut out, &table).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "name,loss\n\"a,b\",-inf\nc,\n");
    }
}
