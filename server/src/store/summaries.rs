//! Per model and metric, the best non-NaN value in each direction with the
//! lowest epoch reaching it (the `metric_summaries` table). Maintained in
//! the epoch-insert transaction, so best-model and leaderboard queries read
//! one indexed row per model instead of scanning epochs.

use std::collections::HashMap;

use diesel::prelude::*;

use super::epochs::{self, Resolved};
use super::prepared::{PgMergeSummaries, SqliteMergeSummary, SummaryRow};
use super::records::{BestModel, Direction, LeaderboardRow, ModelFilter, Page, PageRequest};
use super::{MAX_BINDS_PER_LIST, into_page, models, page_limit, page_token};
use crate::db::DbConnection;
use crate::db::schema::{metric_summaries as ms, models as models_table};
use crate::error::{Error, Result};

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

/// Folds newly inserted epochs into the summaries. NaN is never best, so it
/// is left out. Rows are merged in SQL (not read-modify-write) so that
/// concurrent PostgreSQL transactions on the same model cannot lose each
/// other's best values; they are written in key order, avoiding deadlocks.
pub(super) fn record(conn: &mut DbConnection, inserted: &[Resolved<'_>]) -> Result<()> {
    let mut best: HashMap<(i64, &str), SummaryRow<'_>> = HashMap::new();
    for candidate in inserted {
        let epoch_num = candidate.epoch.epoch_num;
        for (name, &value) in &candidate.epoch.metrics {
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
    let mut rows: Vec<SummaryRow<'_>> = best.into_values().collect();
    rows.sort_unstable_by(|a, b| (a.model_id, a.metric_name).cmp(&(b.model_id, b.metric_name)));
    let rows = improving(conn, rows)?;
    if rows.is_empty() {
        return Ok(());
    }

    match conn {
        DbConnection::Sqlite(c) => {
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

/// One model's best (value, epoch) of the metric, in ranking order.
#[derive(Debug, Clone, PartialEq)]
struct Ranked {
    model_id: i64,
    value: f64,
    epoch_num: i64,
    model_name: String,
}

/// Sort key of a ranked row in a page token; the value as bits, since JSON
/// has no NaN or infinities.
type RankKey = (u64, i64, String);

/// Models matching `filter` that have a non-NaN value of `metric_name`,
/// best first: by value, then lower epoch_num, then model name. Starts
/// after `after` and returns at most `limit` rows.
fn ranked(
    conn: &mut DbConnection,
    project_id: i64,
    metric_name: &str,
    direction: Direction,
    filter: &ModelFilter,
    after: Option<&RankKey>,
    limit: i64,
) -> Result<Vec<Ranked>> {
    // The value and epoch columns depend on the direction, so the query is
    // spelled out once per direction; `$better` compares a row to the key
    // of the previous page's last row.
    macro_rules! ranked_by {
        ($value:expr, $epoch:expr, $order:ident, $better:ident) => {{
            let mut query = ms::table
                .inner_join(models_table::table)
                .filter(ms::metric_name.eq(metric_name))
                .select((ms::model_id, $value, $epoch, models_table::name))
                .order(($value.$order(), $epoch.asc(), models_table::name.asc()))
                .limit(limit)
                .into_boxed();
            query = models::filter_models!(query, project_id, filter);
            if let Some((bits, epoch_num, name)) = after {
                let value = f64::from_bits(*bits);
                query = query.filter(
                    $value.$better(value).or($value.eq(value).and(
                        $epoch
                            .gt(epoch_num)
                            .or($epoch.eq(epoch_num).and(models_table::name.gt(name))),
                    )),
                );
            }
            query.load::<(i64, f64, i64, String)>(conn)?
        }};
    }
    let rows = match direction {
        Direction::Max => ranked_by!(ms::max_value, ms::max_epoch_num, desc, lt),
        Direction::Min => ranked_by!(ms::min_value, ms::min_epoch_num, asc, gt),
    };
    Ok(rows
        .into_iter()
        .map(|(model_id, value, epoch_num, model_name)| Ranked {
            model_id,
            value,
            epoch_num,
            model_name,
        })
        .collect())
}

/// The `top_k` best models by `metric_name`; NOT_FOUND when none has it.
pub fn best_models(
    conn: &mut DbConnection,
    project_id: i64,
    metric_name: &str,
    direction: Direction,
    filter: &ModelFilter,
    top_k: usize,
) -> Result<Vec<BestModel>> {
    let limit = i64::try_from(top_k).unwrap_or(i64::MAX);
    let ranked = ranked(conn, project_id, metric_name, direction, filter, None, limit)?;
    if ranked.is_empty() {
        let scope = if *filter == ModelFilter::default() {
            "no model"
        } else {
            "no model matching the filter"
        };
        return Err(Error::NotFound(format!(
            "{scope} has a value for metric {metric_name:?} (NaN values do not count)"
        )));
    }
    let keys: Vec<(i64, i64)> = ranked.iter().map(|r| (r.model_id, r.epoch_num)).collect();
    let mut best_epochs: HashMap<(i64, i64), _> = epochs::by_keys(conn, &keys)?.into_iter().collect();
    let hydrated = hydrate(conn, &ranked)?;
    ranked
        .iter()
        .zip(hydrated)
        .map(|(r, (model, datablob, model_template))| {
            let best_epoch = best_epochs.remove(&(r.model_id, r.epoch_num)).ok_or_else(|| {
                Error::Corrupt(format!(
                    "best epoch {} of model {:?} is missing",
                    r.epoch_num, r.model_name
                ))
            })?;
            Ok(BestModel {
                model,
                datablob,
                model_template,
                best_epoch,
                metric_value: r.value,
            })
        })
        .collect()
}

/// One page of every matching model's best value of `metric_name`.
pub fn leaderboard(
    conn: &mut DbConnection,
    (project_id, project_name): (i64, &str),
    metric_name: &str,
    direction: Direction,
    filter: &ModelFilter,
    page: &PageRequest,
) -> Result<Page<LeaderboardRow>> {
    let query_id = page_token::fingerprint(&format!(
        "leaderboard|{project_name:?}|{metric_name:?}|{direction:?}|{filter:?}"
    ));
    let after: Option<RankKey> = page_token::decode(query_id, &page.token)?;
    let rows = ranked(
        conn,
        project_id,
        metric_name,
        direction,
        filter,
        after.as_ref(),
        page_limit(page),
    )?;
    into_page(
        rows,
        page.size,
        |r| page_token::encode(query_id, &(r.value.to_bits(), r.epoch_num, &r.model_name)),
        |rows| {
            let hydrated = hydrate(conn, &rows)?;
            Ok(rows
                .into_iter()
                .zip(hydrated)
                .map(|(r, (model, datablob, model_template))| LeaderboardRow {
                    model,
                    datablob,
                    model_template,
                    best_epoch_num: r.epoch_num,
                    best_value: r.value,
                })
                .collect())
        },
    )
}

/// The model, datablob and template of each ranked row, in the same order.
fn hydrate(
    conn: &mut DbConnection,
    ranked: &[Ranked],
) -> Result<
    Vec<(
        super::records::Model,
        super::records::Component,
        super::records::Component,
    )>,
> {
    let ids: Vec<i64> = ranked.iter().map(|r| r.model_id).collect();
    let mut rows = models::by_ids(conn, &ids)?;
    let ordered = ranked
        .iter()
        .map(|r| {
            rows.remove(&r.model_id)
                .ok_or_else(|| Error::Corrupt(format!("summary of missing model {}", r.model_id)))
        })
        .collect::<Result<Vec<_>>>()?;
    models::with_components(conn, ordered)
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
}
