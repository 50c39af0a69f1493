//! Everything one model's epochs say about each of its metrics: how often
//! it was recorded, its lowest and highest value and its last one (for
//! `GetModel` and `mlmeta show model`).
//!
//! Lowest and highest come from `metric_summaries`, the rows best-model
//! queries rank by, so the report and `best` can never disagree. Counts
//! (with the NaN count, which `metric_latest` does not keep) and last
//! values come from one pass over the model's epochs, read in bounded
//! pages by primary key.

use std::collections::BTreeMap;

use diesel::prelude::*;

use super::metrics_codec;
use super::records::MetricSummary;
use crate::db::DbConnection;
use crate::db::schema::{epochs, metric_summaries as ms};
use crate::error::{Error, Result};

/// Epochs decoded per query of the pass.
const PAGE: i64 = 10_000;

/// The summaries of every metric of model `model_id`, by metric name.
pub(super) fn of_model(conn: &mut DbConnection, model_id: i64) -> Result<Vec<MetricSummary>> {
    let mut report: BTreeMap<String, MetricSummary> = BTreeMap::new();
    let mut after = i64::MIN;
    let mut first = true;
    loop {
        let mut query = epochs::table
            .filter(epochs::model_id.eq(model_id))
            .order(epochs::epoch_num.asc())
            .select((epochs::epoch_num, epochs::metrics))
            .limit(PAGE)
            .into_boxed();
        if !first {
            query = query.filter(epochs::epoch_num.gt(after));
        }
        let page: Vec<(i64, Vec<u8>)> = query.load(conn)?;
        first = false;
        let Some(&(last_epoch_num, _)) = page.last() else {
            break;
        };
        let full = page.len() as i64 == PAGE;
        for (epoch_num, blob) in page {
            let metrics = metrics_codec::decode(&blob).map_err(|e| {
                Error::Corrupt(format!("metrics of epoch {epoch_num} of model {model_id}: {e}"))
            })?;
            for (name, value) in metrics {
                let summary = report
                    .entry(name)
                    .or_insert_with_key(|name| MetricSummary::empty(name));
                summary.count += 1;
                if value.is_nan() {
                    summary.nan_count += 1;
                }
                // Ascending epoch order: the latest value wins.
                summary.last = (epoch_num, value);
            }
        }
        if !full {
            break;
        }
        after = last_epoch_num;
    }
    let extremes: Vec<(String, f64, i64, f64, i64)> = ms::table
        .filter(ms::model_id.eq(model_id))
        .select((
            ms::metric_name,
            ms::min_value,
            ms::min_epoch_num,
            ms::max_value,
            ms::max_epoch_num,
        ))
        .load(conn)?;
    for (name, min_value, min_epoch_num, max_value, max_epoch_num) in extremes {
        let summary = report.get_mut(&name).ok_or_else(|| {
            Error::Corrupt(format!(
                "model {model_id} has a summary of metric {name:?} but no epoch carries it"
            ))
        })?;
        summary.min = Some((min_epoch_num, min_value));
        summary.max = Some((max_epoch_num, max_value));
    }
    Ok(report.into_values().collect())
}
