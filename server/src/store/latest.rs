//! `metric_latest` rows of models whose epochs were stored before the
//! table existed: computed from their epochs at startup (the migration
//! lists them in `metric_latest_pending`). Ingest keeps the rows of new
//! epochs itself (`ingest/summaries.rs`).

use std::collections::BTreeMap;

use diesel::prelude::*;

use super::metrics_codec;
use crate::db::DbConnection;
use crate::db::schema::{epochs, metric_latest as ml, metric_latest_pending as pending, models};
use crate::error::{Error, Result};

/// One `metric_latest` row.
#[derive(Insertable)]
#[diesel(table_name = ml)]
#[diesel(treat_none_as_default_value = false)]
struct NewLatest {
    model_id: i64,
    metric_name: String,
    value_count: i64,
    last_epoch_num: i64,
    last_value: Option<f64>,
}

/// Computes the rows of up to `limit` pending models, one transaction per
/// call; returns how many models it took off the list.
///
/// Each model's pending row is deleted first and its model row locked
/// (PostgreSQL) before its epochs are read: another replica doing the same
/// finds nothing left to do, and a writer storing epochs of the model
/// meanwhile (it locks the model row too) either committed before the
/// epochs are read, so they are counted from the epochs, or waits and adds
/// its own after the rows are written.
pub(super) fn backfill(conn: &mut DbConnection, limit: i64) -> Result<usize> {
    let batch: Vec<i64> = pending::table
        .select(pending::model_id)
        .order(pending::model_id)
        .limit(limit)
        .load(conn)?;
    for &model_id in &batch {
        let taken = diesel::delete(pending::table.filter(pending::model_id.eq(model_id))).execute(conn)?;
        if taken == 0 {
            continue;
        }
        let live: Option<i64> = match conn {
            DbConnection::Postgres(c) => models::table
                .filter(models::id.eq(model_id))
                .select(models::id)
                .for_update()
                .first(c)
                .optional()?,
            DbConnection::Sqlite(c) => models::table
                .filter(models::id.eq(model_id))
                .select(models::id)
                .first(c)
                .optional()?,
        };
        if live.is_none() {
            continue;
        }
        let rows = summarise(conn, model_id)?;
        diesel::delete(ml::table.filter(ml::model_id.eq(model_id))).execute(conn)?;
        for chunk in rows.chunks(1_000) {
            super::on_backend!(conn, |c| diesel::insert_into(ml::table).values(chunk).execute(c))?;
        }
    }
    Ok(batch.len())
}

/// The `metric_latest` rows of model `model_id`, from all its epochs.
fn summarise(conn: &mut DbConnection, model_id: i64) -> Result<Vec<NewLatest>> {
    /// Epochs decoded per query.
    const PAGE: i64 = 10_000;
    let mut latest: BTreeMap<String, (i64, i64, Option<f64>)> = BTreeMap::new();
    let mut after: Option<i64> = None;
    loop {
        let mut query = epochs::table
            .filter(epochs::model_id.eq(model_id))
            .order(epochs::epoch_num.asc())
            .select((epochs::epoch_num, epochs::metrics))
            .limit(PAGE)
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(epochs::epoch_num.gt(after));
        }
        let page: Vec<(i64, Vec<u8>)> = query.load(conn)?;
        let full = page.len() as i64 == PAGE;
        for (epoch_num, blob) in &page {
            let metrics = metrics_codec::decode(blob).map_err(|e| {
                Error::Corrupt(format!("metrics of epoch {epoch_num} of model {model_id}: {e}"))
            })?;
            for (name, value) in metrics {
                // Ascending epoch order: the latest value wins.
                let entry = latest.entry(name).or_insert((0, *epoch_num, None));
                entry.0 += 1;
                entry.1 = *epoch_num;
                entry.2 = (!value.is_nan()).then_some(value);
            }
        }
        match page.last() {
            Some(&(last, _)) if full => after = Some(last),
            _ => break,
        }
    }
    Ok(latest
        .into_iter()
        .map(
            |(metric_name, (value_count, last_epoch_num, last_value))| NewLatest {
                model_id,
                metric_name,
                value_count,
                last_epoch_num,
                last_value,
            },
        )
        .collect())
}
