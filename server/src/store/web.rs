//! The reads of the web page (`/api/v1/`): a project's models as a sorted
//! table with offset paging, one model with its datablob and template,
//! and the metric curves of several models.
//!
//! The table is sorted by the database, never in the browser, so a
//! project of 100,000 models costs one page of rows. Offsets (not the
//! listings' page tokens) because the page jumps to a page number and
//! puts it in its URL; ties are broken by name, so pages neither repeat
//! nor skip rows while nothing changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use diesel::prelude::*;

use super::curve_cache::{CurveCache, MetricPoints, ModelPoints};
use super::records::{Component, ComponentKind, Model, ModelDetail, ModelFilter};
use super::{MAX_BINDS_PER_LIST, components, corrupt, metrics_codec, models, runs};
use crate::db::DbConnection;
use crate::db::schema::{epochs, metric_latest as ml, metric_summaries as ms, models as m};
use crate::error::{Error, Result};

/// What the table is sorted by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    /// Model name.
    Name,
    /// Creation time.
    Created,
    /// Run status (by its name: CRASHED, CREATED, FAILED, ...).
    Status,
    /// Number of stored epochs.
    Epochs,
    /// A value of one metric; models without one sort last either way.
    Metric(MetricAgg, String),
}

/// Which value of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricAgg {
    /// Highest non-NaN value.
    Max,
    /// Lowest non-NaN value.
    Min,
    /// Value at the highest epoch carrying the metric (NaN sorts last).
    Last,
}

/// One page of the table to read.
#[derive(Debug, Clone)]
pub struct TableRequest {
    /// Which models (the `where` expression of the filter box).
    pub filter: ModelFilter,
    pub sort: SortKey,
    pub descending: bool,
    /// Rows to skip.
    pub offset: i64,
    /// Rows to return, at least 1.
    pub limit: i64,
    /// Metrics to report per row (columns of the table).
    pub metrics: Vec<String>,
}

/// A metric's values in one row of the table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricCells {
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// `Some(NaN)` when the last value is NaN.
    pub last: Option<f64>,
    /// The epoch of `last`.
    pub last_epoch: Option<i64>,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    pub model: Model,
    /// Per requested metric (missing: the model never recorded it).
    pub metrics: BTreeMap<String, MetricCells>,
}

/// One page of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// Models matching the filter, on every page.
    pub total: i64,
    pub rows: Vec<TableRow>,
    /// Offset of the next page; `None` on the last one.
    pub next_offset: Option<i64>,
}

/// One model for its page.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelView {
    /// The model, status history, artifacts and metric summaries.
    pub detail: ModelDetail,
    pub datablob: Component,
    pub template: Component,
}

/// One metric of one model: epochs and values, by epoch (shared with the
/// server's cache of decoded curves).
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub model: String,
    pub metric: String,
    pub epochs: Arc<Vec<i64>>,
    pub values: Arc<Vec<f64>>,
}

/// The models of project `project_id` matching the request's filter,
/// one page of them in the requested order.
pub fn table(conn: &mut DbConnection, project_id: i64, request: &TableRequest) -> Result<Table> {
    let filter = &request.filter;
    let total: i64 = {
        let query = m::table.select(diesel::dsl::count_star()).into_boxed();
        models::filter_models!(query, project_id, filter, conn).get_result(conn)?
    };
    let rows = sorted_page(conn, project_id, request)?;
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let mut cells = metric_cells(conn, &ids, &request.metrics)?;
    let rows = models::with_components(conn, rows)?;
    let returned = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let next_offset = request.offset.saturating_add(returned);
    let rows = rows
        .into_iter()
        .zip(ids)
        .map(|((model, _, _), id)| TableRow {
            model,
            metrics: cells.remove(&id).unwrap_or_default(),
        })
        .collect();
    Ok(Table {
        total,
        rows,
        next_offset: (next_offset < total).then_some(next_offset),
    })
}

/// The rows of one page, sorted: the sort key (missing values last), then
/// the name.
fn sorted_page(
    conn: &mut DbConnection,
    project_id: i64,
    request: &TableRequest,
) -> Result<Vec<models::ModelRow>> {
    let filter = &request.filter;
    let desc = request.descending;
    // `$key` once per direction: diesel's ordering types differ.
    macro_rules! by {
        ($query:expr, $($key:expr),+) => {{
            let mut query = $query;
            $(
                query = if desc { query.then_order_by($key.desc()) } else { query.then_order_by($key.asc()) };
            )+
            query = query.then_order_by(m::name.asc());
            query.offset(request.offset).limit(request.limit).load(conn)?
        }};
    }
    let plain = || m::table.select(models::ModelRow::as_select()).into_boxed();
    let rows = match &request.sort {
        SortKey::Name => {
            let query = models::filter_models!(plain(), project_id, filter, conn);
            let mut query = if desc {
                query.order(m::name.desc())
            } else {
                query.order(m::name.asc())
            };
            query = query.offset(request.offset).limit(request.limit);
            query.load(conn)?
        }
        SortKey::Created => by!(
            models::filter_models!(plain(), project_id, filter, conn),
            m::created_at
        ),
        SortKey::Status => by!(
            models::filter_models!(plain(), project_id, filter, conn),
            m::status
        ),
        SortKey::Epochs => by!(
            models::filter_models!(plain(), project_id, filter, conn),
            m::epoch_count
        ),
        SortKey::Metric(agg @ (MetricAgg::Max | MetricAgg::Min), metric) => {
            let query = m::table
                .left_join(ms::table.on(ms::model_id.eq(m::id).and(ms::metric_name.eq(metric.as_str()))))
                .select(models::ModelRow::as_select())
                .into_boxed();
            // Missing values last in both directions: `is null` first.
            let query = models::filter_models!(query, project_id, filter, conn);
            match agg {
                MetricAgg::Max => by!(
                    query.order(ms::max_value.nullable().is_null().asc()),
                    ms::max_value.nullable()
                ),
                _ => by!(
                    query.order(ms::min_value.nullable().is_null().asc()),
                    ms::min_value.nullable()
                ),
            }
        }
        SortKey::Metric(MetricAgg::Last, metric) => {
            let query = m::table
                .left_join(ml::table.on(ml::model_id.eq(m::id).and(ml::metric_name.eq(metric.as_str()))))
                .select(models::ModelRow::as_select())
                .into_boxed();
            let query = models::filter_models!(query, project_id, filter, conn);
            // NaN is stored as NULL: it sorts with the missing values.
            by!(query.order(ml::last_value.is_null().asc()), ml::last_value)
        }
    };
    Ok(rows)
}

/// Min, max and last of `metrics` for the models `ids`, by model id.
fn metric_cells(
    conn: &mut DbConnection,
    ids: &[i64],
    metrics: &[String],
) -> Result<HashMap<i64, BTreeMap<String, MetricCells>>> {
    let mut cells: HashMap<i64, BTreeMap<String, MetricCells>> = HashMap::new();
    if ids.is_empty() || metrics.is_empty() {
        return Ok(cells);
    }
    let extremes: Vec<(i64, String, f64, f64)> = ms::table
        .filter(ms::model_id.eq_any(ids))
        .filter(ms::metric_name.eq_any(metrics))
        .select((ms::model_id, ms::metric_name, ms::min_value, ms::max_value))
        .load(conn)?;
    for (id, metric, min, max) in extremes {
        let cell = cells.entry(id).or_default().entry(metric).or_default();
        cell.min = Some(min);
        cell.max = Some(max);
    }
    let lasts: Vec<(i64, String, i64, Option<f64>)> = ml::table
        .filter(ml::model_id.eq_any(ids))
        .filter(ml::metric_name.eq_any(metrics))
        .select((ml::model_id, ml::metric_name, ml::last_epoch_num, ml::last_value))
        .load(conn)?;
    for (id, metric, epoch, value) in lasts {
        let cell = cells.entry(id).or_default().entry(metric).or_default();
        cell.last = Some(value.unwrap_or(f64::NAN));
        cell.last_epoch = Some(epoch);
    }
    Ok(cells)
}

/// Model `name` of project `project_id` (deleted ones too: the page shows
/// what the id names) with its datablob and template.
pub fn model(conn: &mut DbConnection, project_id: i64, name: &str) -> Result<ModelView> {
    let detail = runs::get(conn, project_id, name)?;
    let artifacts = super::artifacts::list(conn, project_id, name)?;
    let component = |conn: &mut DbConnection, kind: ComponentKind, name: &str| {
        components::find_with_tags(conn, project_id, kind, name)?
            .ok_or_else(|| Error::Corrupt(format!("model refers to a missing {} {name:?}", kind.label())))
    };
    let datablob = component(conn, ComponentKind::DataBlob, &detail.model.datablob_name)?;
    let template = component(
        conn,
        ComponentKind::ModelTemplate,
        &detail.model.model_template_name,
    )?;
    Ok(ModelView {
        detail: ModelDetail { artifacts, ..detail },
        datablob,
        template,
    })
}

/// The curves of `metrics` (all of each model's metrics when empty) of
/// the live models `names` of project `project_id`, by model in the
/// order given, then metric name. An epoch without the metric adds no
/// point; a NaN value is a point (a gap on the chart). An unknown name is
/// NOT_FOUND naming it. Read through `cache` (`curve_cache.rs`), which
/// spares reading the epochs of a model again while it has not changed.
pub(crate) fn curves(
    conn: &mut DbConnection,
    project_id: i64,
    names: &[String],
    metrics: &[String],
    cache: &CurveCache,
) -> Result<Vec<Curve>> {
    let mut ids: HashMap<String, (i64, Version)> = HashMap::with_capacity(names.len());
    for chunk in names.chunks(MAX_BINDS_PER_LIST) {
        let found: Vec<(String, i64, i64, i64)> = m::table
            .filter(m::project_id.eq(project_id))
            .filter(m::deleted_at.is_null())
            .filter(m::name.eq_any(chunk))
            .select((m::name, m::id, m::epoch_seq, m::epoch_count))
            .load(conn)?;
        ids.extend(
            found
                .into_iter()
                .map(|(name, id, seq, count)| (name, (id, Version { seq, count }))),
        );
    }
    let mut curves = Vec::new();
    for name in names {
        let (id, version) = *ids
            .get(name)
            .ok_or_else(|| Error::NotFound(format!("models: model {name:?} does not exist")))?;
        let points = model_points(conn, id, version, cache)?;
        for metric in &points.metrics {
            if metrics.is_empty() || metrics.contains(&metric.metric) {
                curves.push(Curve {
                    model: name.clone(),
                    metric: metric.metric.clone(),
                    epochs: metric.epochs.clone(),
                    values: metric.values.clone(),
                });
            }
        }
    }
    Ok(curves)
}

/// What identifies the state of a model's epochs: its `epoch_seq` (moved
/// by every commit that stores some) and how many it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    seq: i64,
    count: i64,
}

fn version_of(conn: &mut DbConnection, id: i64) -> Result<Option<Version>> {
    Ok(m::table
        .filter(m::id.eq(id))
        .select((m::epoch_seq, m::epoch_count))
        .first::<(i64, i64)>(conn)
        .optional()?
        .map(|(seq, count)| Version { seq, count }))
}

/// Every metric of model `id` at `version` or later: cached, the cached
/// points with the epochs after them, or all epochs read.
fn model_points(
    conn: &mut DbConnection,
    id: i64,
    version: Version,
    cache: &CurveCache,
) -> Result<Arc<ModelPoints>> {
    let cached = cache.get(id);
    if let Some(cached) = &cached
        && cached.seq == version.seq
        && cached.epoch_count == version.count
    {
        return Ok(cached.clone());
    }
    let extended = match cached {
        // A run that kept training: only the epochs after the cached
        // ones are new, if they account for every new epoch and no commit
        // came while they were read (else one may have stored an epoch
        // before them that the count included).
        Some(cached) if cached.epoch_count < version.count && cached.max_epoch.is_some() => {
            let newer = model_epochs(conn, id, cached.max_epoch)?;
            let complete = cached.epoch_count + newer.len() as i64 == version.count
                && version_of(conn, id)? == Some(version);
            if complete {
                let mut points = (*cached).clone();
                points.seq = version.seq;
                add_epochs(&mut points, &newer)?;
                Some(points)
            } else {
                None
            }
        }
        _ => None,
    };
    let points = match extended {
        Some(points) => points,
        None => {
            let mut points = ModelPoints {
                seq: version.seq,
                ..ModelPoints::default()
            };
            add_epochs(&mut points, &model_epochs(conn, id, None)?)?;
            points
        }
    };
    let points = Arc::new(points);
    cache.put(id, points.clone());
    Ok(points)
}

/// Appends `epochs` (by epoch, all after those of `points`) to `points`.
fn add_epochs(points: &mut ModelPoints, epochs: &[(i64, Vec<u8>)]) -> Result<()> {
    let metrics = &mut points.metrics;
    for (epoch, blob) in epochs {
        metrics_codec::for_each(blob, |metric, value| {
            // A model has a handful of metrics: a linear search beats a
            // map lookup, and no name is copied per epoch.
            let at = match metrics.iter().position(|m| m.metric == metric) {
                Some(at) => at,
                None => {
                    metrics.push(MetricPoints {
                        metric: metric.to_owned(),
                        ..MetricPoints::default()
                    });
                    metrics.len() - 1
                }
            };
            // Copied once if an answer still holds the cached vectors.
            Arc::make_mut(&mut metrics[at].epochs).push(*epoch);
            Arc::make_mut(&mut metrics[at].values).push(value);
        })
        .map_err(|e| corrupt("epoch metrics", e))?;
    }
    metrics.sort_by(|a, b| a.metric.cmp(&b.metric));
    points.epoch_count += epochs.len() as i64;
    if let Some((last, _)) = epochs.last() {
        points.max_epoch = Some(points.max_epoch.map_or(*last, |max| max.max(*last)));
    }
    Ok(())
}

/// The epochs of model `id` (only those after epoch `after`, when given)
/// as (epoch_num, metrics blob), by epoch.
fn model_epochs(conn: &mut DbConnection, id: i64, after: Option<i64>) -> Result<Vec<(i64, Vec<u8>)>> {
    let mut query = epochs::table
        .filter(epochs::model_id.eq(id))
        .order(epochs::epoch_num.asc())
        .select((epochs::epoch_num, epochs::metrics))
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(epochs::epoch_num.gt(after));
    }
    Ok(query.load(conn)?)
}
