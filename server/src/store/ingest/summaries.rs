//! The summaries update of the ingest path: folds newly inserted epochs
//! into `metric_summaries` (per model and metric, the best non-NaN value in
//! each direction with the lowest epoch reaching it) and `metric_latest`
//! (per model and metric, how many epochs carry it, NaN included, and its
//! value at the highest of them), in the insert's transaction. The
//! ranking queries that read them are `store/summaries.rs`.
//!
//! Only epochs this transaction stored reach here (stored and repeated
//! epochs were skipped before), so counts add up exactly; the writer
//! holds the row lock of each model of the batch, so no other transaction
//! changes these rows meanwhile.

use std::collections::HashMap;

use diesel::prelude::*;

use super::insert::Resolved;
use super::prepared::{LatestRow, PgMergeSummaries, SqliteMergeLatest, SqliteMergeSummary, SummaryRow};
use crate::db::DbConnection;
use crate::db::schema::metric_summaries as ms;
use crate::error::Result;
use crate::store::MAX_BINDS_PER_LIST;

impl SummaryRow<'_> {
    /// Whether merging `self` into `stored` would change either side.
    fn improves_on(&self, stored: &SummaryRow<'_>) -> bool {
        self.max_value > stored.max_value
            || (self.max_value == stored.max_value && self.max_epoch_num < stored.max_epoch_num)
            || self.min_value < stored.min_value
            || (self.min_value == stored.min_value && self.min_epoch_num < stored.min_epoch_num)
    }

    /// Folds in one more (value, epoch) of the same model and metric with
    /// the same rules as the SQL merge (`prepared::merge_summary!`).
    fn merge(&mut self, value: f64, epoch_num: i64) {
        if value > self.max_value || (value == self.max_value && epoch_num < self.max_epoch_num) {
            self.max_value = value;
            self.max_epoch_num = epoch_num;
        }
        if value < self.min_value || (value == self.min_value && epoch_num < self.min_epoch_num) {
            self.min_value = value;
            self.min_epoch_num = epoch_num;
        }
    }
}

impl LatestRow<'_> {
    /// Folds in one more epoch of the same model and metric.
    fn merge(&mut self, value: f64, epoch_num: i64) {
        self.value_count += 1;
        if epoch_num > self.last_epoch_num {
            self.last_epoch_num = epoch_num;
            self.last_value = (!value.is_nan()).then_some(value);
        }
    }
}

/// Folds newly inserted epochs into the summaries. NaN is never best, so it
/// is left out of `metric_summaries`; it counts in `metric_latest` and can
/// be the last value there. Rows are merged in SQL (not read-modify-write)
/// so that concurrent PostgreSQL transactions on the same model cannot lose
/// each other's values; they are written in key order, avoiding deadlocks.
pub(super) fn record(conn: &mut DbConnection, inserted: &[Resolved<'_>]) -> Result<()> {
    let mut best: HashMap<(i64, &str), SummaryRow<'_>> = HashMap::new();
    let mut latest: HashMap<(i64, &str), LatestRow<'_>> = HashMap::new();
    for candidate in inserted {
        let epoch_num = candidate.epoch.epoch_num;
        for (name, &value) in &candidate.epoch.metrics {
            latest
                .entry((candidate.model_id, name.as_str()))
                .and_modify(|row| row.merge(value, epoch_num))
                .or_insert(LatestRow {
                    model_id: candidate.model_id,
                    metric_name: name,
                    value_count: 1,
                    last_epoch_num: epoch_num,
                    last_value: (!value.is_nan()).then_some(value),
                });
            if value.is_nan() {
                continue;
            }
            best.entry((candidate.model_id, name.as_str()))
                .and_modify(|row| row.merge(value, epoch_num))
                .or_insert(SummaryRow {
                    model_id: candidate.model_id,
                    metric_name: name,
                    max_value: value,
                    max_epoch_num: epoch_num,
                    min_value: value,
                    min_epoch_num: epoch_num,
                });
        }
    }
    if latest.is_empty() {
        return Ok(());
    }
    let mut latest: Vec<LatestRow<'_>> = latest.into_values().collect();
    latest.sort_unstable_by(|a, b| (a.model_id, a.metric_name).cmp(&(b.model_id, b.metric_name)));
    let mut rows: Vec<SummaryRow<'_>> = best.into_values().collect();
    rows.sort_unstable_by(|a, b| (a.model_id, a.metric_name).cmp(&(b.model_id, b.metric_name)));
    let rows = if rows.is_empty() {
        rows
    } else {
        improving(conn, rows)?
    };

    match conn {
        DbConnection::Sqlite(c) => {
            for row in &latest {
                SqliteMergeLatest(row).execute(c)?;
            }
            for row in &rows {
                SqliteMergeSummary(row).execute(c)?;
            }
        }
        DbConnection::Postgres(c) => {
            PgMergeSummaries {
                model_ids: &rows.iter().map(|r| r.model_id).collect::<Vec<_>>(),
                metric_names: &rows.iter().map(|r| r.metric_name).collect::<Vec<_>>(),
                max_values: &rows.iter().map(|r| r.max_value).collect::<Vec<_>>(),
                max_epoch_nums: &rows.iter().map(|r| r.max_epoch_num).collect::<Vec<_>>(),
                min_values: &rows.iter().map(|r| r.min_value).collect::<Vec<_>>(),
                min_epoch_nums: &rows.iter().map(|r| r.min_epoch_num).collect::<Vec<_>>(),
                latest_model_ids: &latest.iter().map(|r| r.model_id).collect::<Vec<_>>(),
                latest_metric_names: &latest.iter().map(|r| r.metric_name).collect::<Vec<_>>(),
                latest_counts: &latest.iter().map(|r| r.value_count).collect::<Vec<_>>(),
                latest_epoch_nums: &latest.iter().map(|r| r.last_epoch_num).collect::<Vec<_>>(),
                latest_values: &latest.iter().map(|r| r.last_value).collect::<Vec<_>>(),
            }
            .execute(c)?;
        }
    }
    Ok(())
}

type StoredSummary = (i64, String, f64, i64, f64, i64);

/// Keeps the rows that improve on the stored summary in some direction:
/// reading the stored rows costs far less than a merge that changes
/// nothing. Summaries only ever improve, so a row that does not beat a
/// committed value cannot beat a later one either; rows that pass still go
/// through the merge in SQL, which settles races between writers.
fn improving<'a>(conn: &mut DbConnection, mut rows: Vec<SummaryRow<'a>>) -> Result<Vec<SummaryRow<'a>>> {
    let mut model_ids: Vec<i64> = rows.iter().map(|row| row.model_id).collect();
    model_ids.dedup();
    let columns = (
        ms::model_id,
        ms::metric_name,
        ms::max_value,
        ms::max_epoch_num,
        ms::min_value,
        ms::min_epoch_num,
    );
    let mut stored: Vec<StoredSummary> = Vec::with_capacity(rows.len());
    if let [model_id] = model_ids[..] {
        // One trainer's request; `=` keeps the statement cacheable.
        stored = ms::table
            .filter(ms::model_id.eq(model_id))
            .select(columns)
            .load(conn)?;
    } else {
        for chunk in model_ids.chunks(MAX_BINDS_PER_LIST) {
            stored.extend(
                ms::table
                    .filter(ms::model_id.eq_any(chunk))
                    .select(columns)
                    .load::<StoredSummary>(conn)?,
            );
        }
    }
    let stored: HashMap<(i64, &str), SummaryRow<'_>> = stored
        .iter()
        .map(
            |(model_id, name, max_value, max_epoch_num, min_value, min_epoch_num)| {
                let row = SummaryRow {
                    model_id: *model_id,
                    metric_name: name,
                    max_value: *max_value,
                    max_epoch_num: *max_epoch_num,
                    min_value: *min_value,
                    min_epoch_num: *min_epoch_num,
                };
                ((*model_id, name.as_str()), row)
            },
        )
        .collect();
    rows.retain(|row| {
        stored
            .get(&(row.model_id, row.metric_name))
            .is_none_or(|old| row.improves_on(old))
    });
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keeps_best_value_and_lowest_epoch() {
        let mut row = SummaryRow {
            model_id: 1,
            metric_name: "m",
            max_value: 0.5,
            max_epoch_num: 3,
            min_value: 0.5,
            min_epoch_num: 3,
        };
        row.merge(0.5, 1);
        assert_eq!((row.max_epoch_num, row.min_epoch_num), (1, 1));
        row.merge(0.9, 7);
        row.merge(0.1, 9);
        row.merge(0.9, 8);
        assert_eq!((row.max_value, row.max_epoch_num), (0.9, 7));
        assert_eq!((row.min_value, row.min_epoch_num), (0.1, 9));
        row.merge(f64::INFINITY, 10);
        assert_eq!(row.max_value, f64::INFINITY);
    }

    #[test]
    fn latest_counts_every_value_and_keeps_the_highest_epoch() {
        let mut row = LatestRow {
            model_id: 1,
            metric_name: "m",
            value_count: 1,
            last_epoch_num: 5,
            last_value: Some(0.5),
        };
        row.merge(0.7, 3);
        assert_eq!(
            (row.value_count, row.last_epoch_num, row.last_value),
            (2, 5, Some(0.5))
        );
        row.merge(f64::NAN, 9);
        assert_eq!(
            (row.value_count, row.last_epoch_num, row.last_value),
            (3, 9, None)
        );
        row.merge(f64::NEG_INFINITY, 10);
        assert_eq!(row.last_value, Some(f64::NEG_INFINITY));
    }
}
