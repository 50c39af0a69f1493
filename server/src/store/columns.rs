//! The summary columns of listed and ranked models (`columns`): read for a
//! whole page at once, one query per summary table, never one per row.

use std::collections::HashMap;

use diesel::prelude::*;
use mlmeta_proto::where_lang::MetricFn;

use super::MAX_BINDS_PER_LIST;
use super::models::ModelRow;
use super::records::{ColumnValue, Field};
use crate::db::DbConnection;
use crate::db::schema::{metric_latest as ml, metric_summaries as ms};
use crate::error::Result;

/// Per model id and metric: (max, min) of `metric_summaries`.
type Best = HashMap<(i64, String), (f64, f64)>;
/// Per model id and metric: (count, last) of `metric_latest`.
type Latest = HashMap<(i64, String), (i64, Option<f64>)>;

/// The values of `columns` for each of `rows`, in the same order.
pub(super) fn load(
    conn: &mut DbConnection,
    rows: &[ModelRow],
    columns: &[Field],
) -> Result<Vec<Vec<ColumnValue>>> {
    if columns.is_empty() {
        return Ok(vec![Vec::new(); rows.len()]);
    }
    let metrics = |best: bool| -> Vec<&str> {
        let mut names: Vec<&str> = columns
            .iter()
            .filter_map(|field| match field {
                Field::Metric { function, metric }
                    if matches!(function, MetricFn::Max | MetricFn::Min) == best =>
                {
                    Some(metric.as_str())
                }
                _ => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    };
    let (best_names, latest_names) = (metrics(true), metrics(false));
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    // Room for the metric names beside the ids in one statement.
    let chunk = MAX_BINDS_PER_LIST / 2;
    let mut best = Best::new();
    let mut latest = Latest::new();
    for ids in ids.chunks(chunk) {
        if !best_names.is_empty() {
            let found: Vec<(i64, String, f64, f64)> = ms::table
                .filter(ms::model_id.eq_any(ids))
                .filter(ms::metric_name.eq_any(&best_names))
                .select((ms::model_id, ms::metric_name, ms::max_value, ms::min_value))
                .load(conn)?;
            best.extend(
                found
                    .into_iter()
                    .map(|(id, name, max, min)| ((id, name), (max, min))),
            );
        }
        if !latest_names.is_empty() {
            let found: Vec<(i64, String, i64, Option<f64>)> = ml::table
                .filter(ml::model_id.eq_any(ids))
                .filter(ml::metric_name.eq_any(&latest_names))
                .select((ml::model_id, ml::metric_name, ml::value_count, ml::last_value))
                .load(conn)?;
            latest.extend(
                found
                    .into_iter()
                    .map(|(id, name, count, last)| ((id, name), (count, last))),
            );
        }
    }
    Ok(rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|field| value(row, field, &best, &latest))
                .collect()
        })
        .collect())
}

fn value(row: &ModelRow, field: &Field, best: &Best, latest: &Latest) -> ColumnValue {
    match field {
        Field::Epochs => ColumnValue::Integer(row.epoch_count),
        Field::CurrentEpoch => row
            .current_epoch
            .map_or(ColumnValue::Missing, ColumnValue::Integer),
        Field::Metric { function, metric } => {
            let key = (row.id, metric.clone());
            match function {
                MetricFn::Max => best
                    .get(&key)
                    .map_or(ColumnValue::Missing, |(max, _)| ColumnValue::Number(*max)),
                MetricFn::Min => best
                    .get(&key)
                    .map_or(ColumnValue::Missing, |(_, min)| ColumnValue::Number(*min)),
                // A NULL last value is a NaN one (SQLite cannot store NaN).
                MetricFn::Last => latest.get(&key).map_or(ColumnValue::Missing, |(_, last)| {
                    ColumnValue::Number(last.unwrap_or(f64::NAN))
                }),
                MetricFn::Count => latest
                    .get(&key)
                    .map_or(ColumnValue::Missing, |(count, _)| ColumnValue::Integer(*count)),
            }
        }
        // The service accepts summaries only (`Field::is_summary`).
        _ => ColumnValue::Missing,
    }
}
