//! Best-model and leaderboard queries over `metric_summaries`: per model
//! and metric, the best non-NaN value in each direction with the lowest
//! epoch reaching it, so that rankings read one indexed row per model
//! instead of scanning epochs. The ingest path maintains the table in the
//! epoch-insert transaction (`ingest/summaries.rs`).

use std::collections::HashMap;

use diesel::prelude::*;

use super::epochs;
use super::filter::Membership;
use super::records::{BestModel, Direction, Field, LeaderboardRow, ModelFilter, Page, PageRequest};
use super::{into_page, models, page_limit, page_token};
use crate::db::DbConnection;
use crate::db::schema::{metric_summaries as ms, models as models_table};
use crate::error::{Error, Result};

/// One model's best (value, epoch) of the metric, in ranking order.
#[derive(Debug, Clone, PartialEq)]
struct Ranked {
    model_id: i64,
    value: f64,
    epoch_num: i64,
    model_name: String,
}

/// What a best-model or leaderboard query ranks, and the summary columns
/// its rows carry.
pub struct Ranking<'a> {
    pub metric_name: &'a str,
    pub direction: Direction,
    pub filter: &'a ModelFilter,
    pub columns: &'a [Field],
}

/// Sort key of a ranked row in a page token; the value as bits, since JSON
/// has no NaN or infinities.
type RankKey = (u64, i64, String);

/// Ranking rows a probe looks at: the head of the ranking index that a
/// `where` is first tested on with correlated probes (see [`ranked`]).
const PROBE_ROWS: i64 = 256;
/// Only rankings asking for at most this many rows try the head first:
/// deeper pages would rarely fill from it.
const PROBE_MAX_LIMIT: i64 = 32;

/// Models matching `filter` that have a non-NaN value of `metric_name`,
/// best first: by value, then lower epoch_num, then model name. Starts
/// after `after` and returns at most `limit` rows.
///
/// With a `where` expression, its tests can be joined two ways
/// ([`Membership`]). Read as uncorrelated `IN` lists they cost a read of
/// every match of every test (5-8 ms for the question over 10,000
/// models), however few ranking rows are looked at; as correlated
/// `EXISTS` probes they cost a few index probes per ranking row, which
/// is cheap for the head of the ranking and ruinous when nothing matches
/// (the walk then probes every model). So a small ranking first looks
/// only at the head of the index: the rows whose value is at least as
/// good as that of the `PROBE_ROWS`-th row (ties included). If that
/// yields `limit` rows they are the answer, since every row outside the
/// head has a strictly worse value; otherwise the whole ranking is read
/// with `IN` lists.
fn ranked(
    conn: &mut DbConnection,
    project_id: i64,
    metric_name: &str,
    direction: Direction,
    filter: &ModelFilter,
    after: Option<&RankKey>,
    limit: i64,
) -> Result<Vec<Ranked>> {
    let query = RankQuery {
        project_id,
        metric_name,
        direction,
        filter,
        after,
        limit,
    };
    if filter.where_expr.is_none() || limit > PROBE_MAX_LIMIT {
        return query.run(conn, Membership::Uncorrelated, None);
    }
    let Some(head_bound) = query.head_bound(conn)? else {
        // Fewer than PROBE_ROWS rows left to rank: probing them all is cheap.
        return query.run(conn, Membership::Correlated, None);
    };
    let head = query.run(conn, Membership::Correlated, Some(head_bound))?;
    if i64::try_from(head.len()).unwrap_or(i64::MAX) >= limit {
        return Ok(head);
    }
    query.run(conn, Membership::Uncorrelated, None)
}

/// One ranking query's parameters.
struct RankQuery<'a> {
    project_id: i64,
    metric_name: &'a str,
    direction: Direction,
    filter: &'a ModelFilter,
    after: Option<&'a RankKey>,
    limit: i64,
}

impl RankQuery<'_> {
    /// The value of the `PROBE_ROWS`-th ranking row of the metric (of any
    /// project or filter) at or after the value of `after`; `None` when
    /// there are fewer.
    fn head_bound(&self, conn: &mut DbConnection) -> Result<Option<f64>> {
        let after_value = self.after.map(|(bits, _, _)| f64::from_bits(*bits));
        macro_rules! bound_by {
            ($value:expr, $epoch:expr, $order:ident, $worse_or_tied:ident) => {{
                let mut query = ms::table
                    .select($value)
                    .filter(ms::metric_name.eq(self.metric_name))
                    .order(($value.$order(), $epoch.asc()))
                    .offset(PROBE_ROWS - 1)
                    .limit(1)
                    .into_boxed();
                if let Some(value) = after_value {
                    query = query.filter($value.$worse_or_tied(value));
                }
                query.load::<f64>(conn)?
            }};
        }
        let bound = match self.direction {
            Direction::Max => bound_by!(ms::max_value, ms::max_epoch_num, desc, le),
            Direction::Min => bound_by!(ms::min_value, ms::min_epoch_num, asc, ge),
        };
        Ok(bound.into_iter().next())
    }

    /// The ranked rows, the filter's tests joined by `membership`, only
    /// among rows valued at least as well as `head_bound` if given.
    fn run(
        &self,
        conn: &mut DbConnection,
        membership: Membership,
        head_bound: Option<f64>,
    ) -> Result<Vec<Ranked>> {
        // The value and epoch columns depend on the direction, so the
        // query is spelled out once per direction; `$worse` compares a row
        // to the key of the previous page's last row, `$as_good` to the
        // head's bound.
        macro_rules! ranked_by {
            ($value:expr, $epoch:expr, $order:ident, $worse:ident, $as_good:ident) => {{
                let mut query = ms::table
                    .inner_join(models_table::table)
                    .filter(ms::metric_name.eq(self.metric_name))
                    .select((ms::model_id, $value, $epoch, models_table::name))
                    .order(($value.$order(), $epoch.asc(), models_table::name.asc()))
                    .limit(self.limit)
                    .into_boxed();
                query = models::filter_models!(query, self.project_id, self.filter, conn, membership);
                if let Some((bits, epoch_num, name)) = self.after {
                    let value = f64::from_bits(*bits);
                    query = query.filter(
                        $value.$worse(value).or($value.eq(value).and(
                            $epoch
                                .gt(epoch_num)
                                .or($epoch.eq(epoch_num).and(models_table::name.gt(name))),
                        )),
                    );
                }
                if let Some(bound) = head_bound {
                    query = query.filter($value.$as_good(bound));
                }
                query.load::<(i64, f64, i64, String)>(conn)?
            }};
        }
        let rows = match self.direction {
            Direction::Max => ranked_by!(ms::max_value, ms::max_epoch_num, desc, lt, ge),
            Direction::Min => ranked_by!(ms::min_value, ms::min_epoch_num, asc, gt, le),
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
}

/// The `top_k` best models by `metric_name`; NOT_FOUND when none has it.
pub fn best_models(
    conn: &mut DbConnection,
    project_id: i64,
    ranking: &Ranking<'_>,
    top_k: usize,
) -> Result<Vec<BestModel>> {
    let Ranking {
        metric_name,
        direction,
        filter,
        columns,
    } = *ranking;
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
    let hydrated = hydrate(conn, &ranked, columns)?;
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
    ranking: &Ranking<'_>,
    page: &PageRequest,
) -> Result<Page<LeaderboardRow>> {
    let Ranking {
        metric_name,
        direction,
        filter,
        columns,
    } = *ranking;
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
            let hydrated = hydrate(conn, &rows, columns)?;
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

/// The model (with its summary `columns`), datablob and template of each
/// ranked row, in the same order.
fn hydrate(
    conn: &mut DbConnection,
    ranked: &[Ranked],
    columns: &[Field],
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
    let values = super::columns::load(conn, &ordered, columns)?;
    Ok(models::with_components(conn, ordered)?
        .into_iter()
        .zip(values)
        .map(|((mut model, datablob, template), columns)| {
            model.columns = columns;
            (model, datablob, template)
        })
        .collect())
}
