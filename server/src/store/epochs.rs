//! Epochs (the `epochs` table): listing, current epoch, lookups by key.
//! Inserting them is the ingest path's (`ingest/`).

use std::collections::HashMap;

use diesel::dsl::max;
use diesel::prelude::*;

use super::records::{Epoch, EpochFilter, Page, PageRequest};
use super::{corrupt, into_page, metrics_codec, page_limit, page_token};
use crate::db::DbConnection;
use crate::db::schema::{epochs, models as models_table};
use crate::error::{Error, Result};

type EpochTuple = (String, i64, Vec<u8>, Option<i64>, Option<i64>, i64);

/// One page of epochs, by model name then epoch_num.
pub fn list(
    conn: &mut DbConnection,
    (project_id, project_name): (i64, &str),
    filter: &EpochFilter,
    page: &PageRequest,
) -> Result<Page<Epoch>> {
    if !filter.include_deleted {
        require_models(conn, project_id, &filter.model_names)?;
    }
    let query_id = page_token::fingerprint(&format!("epochs|{project_name:?}|{filter:?}"));
    let after: Option<(String, i64)> = page_token::decode(query_id, &page.token)?;
    let mut query = epochs::table
        .inner_join(models_table::table)
        .select((
            models_table::name,
            epochs::epoch_num,
            epochs::metrics,
            epochs::steps_per_epoch,
            epochs::validation_steps_per_epoch,
            epochs::recorded_at,
        ))
        .filter(models_table::project_id.eq(project_id))
        .order((models_table::name.asc(), epochs::epoch_num.asc()))
        .limit(page_limit(page))
        .into_boxed();
    if !filter.include_deleted {
        query = query.filter(models_table::deleted_at.is_null());
    }
    if !filter.model_names.is_empty() {
        query = query.filter(models_table::name.eq_any(&filter.model_names));
    }
    if let Some(min) = filter.min_epoch_num {
        query = query.filter(epochs::epoch_num.ge(min));
    }
    if let Some(max) = filter.max_epoch_num {
        query = query.filter(epochs::epoch_num.le(max));
    }
    if let Some((name, epoch_num)) = &after {
        // `name >= x` first so that the model-name index bounds the scan.
        query = query.filter(
            models_table::name
                .ge(name)
                .and(models_table::name.gt(name).or(epochs::epoch_num.gt(epoch_num))),
        );
    }
    let rows: Vec<EpochTuple> = query.load(conn)?;
    into_page(
        rows,
        page.size,
        |row| page_token::encode(query_id, &(&row.0, row.1)),
        |rows| rows.into_iter().map(epoch_from_tuple).collect(),
    )
}

pub(super) fn epoch_from_tuple(row: EpochTuple) -> Result<Epoch> {
    let (model_name, epoch_num, metrics, steps_per_epoch, validation_steps_per_epoch, recorded_at) = row;
    let metrics = metrics_codec::decode(&metrics)
        .map_err(|e| corrupt(&format!("metrics of {model_name:?} epoch {epoch_num}"), e))?;
    Ok(Epoch {
        model_name,
        epoch_num,
        metrics,
        steps_per_epoch,
        validation_steps_per_epoch,
        recorded_at,
    })
}

/// Stored epochs by (model id, epoch_num), with their model's name.
pub(super) fn by_keys(conn: &mut DbConnection, keys: &[(i64, i64)]) -> Result<Vec<((i64, i64), Epoch)>> {
    let mut found = Vec::with_capacity(keys.len());
    // Each key adds OR-ed terms; 200 keeps SQLite within its expression
    // depth limit of 1,000.
    for chunk in keys.chunks(200) {
        let mut query = epochs::table
            .inner_join(models_table::table)
            .select((
                epochs::model_id,
                (
                    models_table::name,
                    epochs::epoch_num,
                    epochs::metrics,
                    epochs::steps_per_epoch,
                    epochs::validation_steps_per_epoch,
                    epochs::recorded_at,
                ),
            ))
            .into_boxed();
        for &(model_id, epoch_num) in chunk {
            query = query.or_filter(epochs::model_id.eq(model_id).and(epochs::epoch_num.eq(epoch_num)));
        }
        let rows: Vec<(i64, EpochTuple)> = query.load(conn)?;
        for (model_id, tuple) in rows {
            let key = (model_id, tuple.1);
            found.push((key, epoch_from_tuple(tuple)?));
        }
    }
    Ok(found)
}

/// Highest epoch_num of the model: `None` when the model does not exist,
/// `Some(0)` when it has no epochs.
/// NOT_FOUND naming the first of `names` that is not a model: a typo in a
/// listing deserves the same answer as everywhere else, not an empty page.
pub(super) fn require_models(conn: &mut DbConnection, project_id: i64, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let found: HashMap<String, Option<i64>> = models_table::table
        .filter(models_table::project_id.eq(project_id))
        .filter(models_table::name.eq_any(names))
        .select((models_table::name, models_table::deleted_at))
        .load::<(String, Option<i64>)>(conn)?
        .into_iter()
        .collect();
    for (index, name) in names.iter().enumerate() {
        match found.get(name) {
            None => {
                return Err(Error::NotFound(format!(
                    "model_names[{index}]: model {name:?} does not exist"
                )));
            }
            Some(Some(_)) => {
                return Err(super::deletion::is_deleted(
                    &format!("model_names[{index}]"),
                    "model",
                    name,
                ));
            }
            Some(None) => {}
        }
    }
    Ok(())
}

pub fn current(conn: &mut DbConnection, project_id: i64, model_name: &str) -> Result<Option<i64>> {
    let Some(model_id) = models_table::table
        .filter(models_table::project_id.eq(project_id))
        .filter(models_table::name.eq(model_name))
        .select(models_table::id)
        .first::<i64>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let highest: Option<i64> = epochs::table
        .filter(epochs::model_id.eq(model_id))
        .select(max(epochs::epoch_num))
        .first(conn)?;
    Ok(Some(highest.unwrap_or(0)))
}
