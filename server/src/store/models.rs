//! Models (the `models` table): each names one datablob and one template.

use std::collections::HashMap;

use diesel::prelude::*;

use super::components;
use super::filter::order::{SortValue, sort_sql};
use super::page_token;
use super::records::{
    Component, ComponentKind, Field, Model, ModelFilter, ModelView, NewModel, OrderBy, Page, PageRequest,
    Put, RecordKind, RunState, RunStatus, now_micros,
};
use super::tags;
use super::{MAX_BINDS_PER_LIST, into_page, on_backend, page_limit};
use crate::db::DbConnection;
use crate::db::schema::models;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = models)]
pub(super) struct ModelRow {
    pub id: i64,
    pub name: String,
    model_class_name: String,
    pub datablob_id: i64,
    pub model_template_id: i64,
    created_at: i64,
    last_modified_at: i64,
    params: String,
    description: Option<String>,
    pub status: String,
    started_at: Option<i64>,
    ended_at: Option<i64>,
    last_heartbeat_at: Option<i64>,
    heartbeat_timeout_secs: Option<i64>,
    run_context: Option<String>,
    pub epoch_count: i64,
    pub current_epoch: Option<i64>,
    pub deleted_at: Option<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = models)]
struct NewModelRow<'a> {
    project_id: i64,
    name: &'a str,
    model_class_name: &'a str,
    datablob_id: i64,
    model_template_id: i64,
    created_at: i64,
    last_modified_at: i64,
    params: &'a str,
    created_seq: i64,
}

/// Bumps the project's model counter and returns it. The project row
/// stays locked until this transaction commits, so the models of a project
/// get their `created_seq` in commit order (see the migration
/// `model_seq`): what filter watches compare to tell new models from old.
fn next_created_seq(conn: &mut DbConnection, project_id: i64) -> Result<i64> {
    use crate::db::schema::projects;
    Ok(on_backend!(conn, |c| diesel::update(projects::table)
        .filter(projects::id.eq(project_id))
        .set(projects::model_seq.eq(projects::model_seq + 1))
        .returning(projects::model_seq)
        .get_result(c))?)
}

/// Inserts `new` into project `project_id` unless its name is taken there
/// (same rules as components); its datablob and template must exist in
/// the same project.
pub fn put(
    conn: &mut DbConnection,
    project_id: i64,
    new: &NewModel,
    ignore_existing: bool,
) -> Result<Put<Model>> {
    let datablob = components::find(conn, project_id, ComponentKind::DataBlob, &new.datablob_name)?;
    let template = components::find(
        conn,
        project_id,
        ComponentKind::ModelTemplate,
        &new.model_template_name,
    )?;
    let (datablob, template) = match (datablob, template) {
        (Some(datablob), Some(template)) => (datablob, template),
        (datablob, template) => {
            let mut missing = Vec::new();
            if datablob.is_none() {
                missing.push(format!("datablob {:?} (model.datablob_name)", new.datablob_name));
            }
            if template.is_none() {
                missing.push(format!(
                    "model template {:?} (model.model_template_name)",
                    new.model_template_name
                ));
            }
            return Err(Error::FailedPrecondition(format!(
                "model {:?} needs {} to be stored first",
                new.name,
                missing.join(" and ")
            )));
        }
    };
    // Read through a lock: a racing delete of either (another replica)
    // waits for this transaction, or is seen here (see `deletion.rs`).
    for (id, name, deleted_at) in super::deletion::lock_components(conn, &[datablob.id, template.id], false)?
    {
        if deleted_at.is_some() {
            let (label, field) = if id == datablob.id {
                ("datablob", "model.datablob_name")
            } else {
                ("model template", "model.model_template_name")
            };
            return Err(Error::FailedPrecondition(format!(
                "{field}: {label} {name:?} is deleted; restore it before putting models that use it"
            )));
        }
    }
    let taken: Option<i64> = models::table
        .filter(models::project_id.eq(project_id))
        .filter(models::name.eq(&new.name))
        .select(models::id)
        .first(conn)
        .optional()?;
    let inserted = match taken {
        Some(_) => 0,
        None => {
            let now = now_micros();
            let row = NewModelRow {
                project_id,
                name: &new.name,
                model_class_name: &new.model_class_name,
                datablob_id: datablob.id,
                model_template_id: template.id,
                created_at: now,
                last_modified_at: now,
                params: &new.params,
                created_seq: next_created_seq(conn, project_id)?,
            };
            // A racing put of the same name took it meanwhile: its seq is
            // left unused, which is harmless (seqs only order).
            on_backend!(conn, |c| diesel::insert_into(models::table)
                .values(&row)
                .on_conflict((models::project_id, models::name))
                .do_nothing()
                .execute(c))?
        }
    };
    let stored: ModelRow = models::table
        .filter(models::project_id.eq(project_id))
        .filter(models::name.eq(&new.name))
        .select(ModelRow::as_select())
        .first(conn)?;
    let already_existed = inserted == 0;
    if !already_existed {
        super::filter::index::write(conn, super::filter::index::Owner::Model, stored.id, &new.params)?;
    }
    if stored.deleted_at.is_some() {
        return Err(Error::AlreadyExists(format!(
            "model.name: model {:?} is deleted, and its name stays taken until it is purged: restore it, or purge it first",
            new.name
        )));
    }
    let mut differences = Vec::new();
    if stored.model_class_name != new.model_class_name {
        differences.push(format!("model_class_name (stored {:?})", stored.model_class_name));
    }
    if stored.datablob_id != datablob.id {
        differences.push("datablob_name".to_owned());
    }
    if stored.model_template_id != template.id {
        differences.push("model_template_name".to_owned());
    }
    if stored.params != new.params {
        differences.push("params_json".to_owned());
    }
    let record = with_components(conn, vec![stored])?
        .pop()
        .map(|(model, _, _)| model)
        .ok_or_else(|| Error::Corrupt(format!("model {:?} vanished after insert", new.name)))?;
    if already_existed && !differences.is_empty() && !ignore_existing {
        return Err(Error::AlreadyExists(format!(
            "model {:?} already exists with a different {} (stored: datablob {:?}, model template {:?}); records are immutable: use another name, or set ignore_existing to keep the stored one",
            new.name,
            differences.join(" and "),
            record.datablob_name,
            record.model_template_name
        )));
    }
    Ok(Put {
        record,
        already_existed,
    })
}

/// Models by id.
pub(super) fn by_ids(conn: &mut DbConnection, ids: &[i64]) -> Result<HashMap<i64, ModelRow>> {
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_BINDS_PER_LIST) {
        let rows: Vec<ModelRow> = models::table
            .filter(models::id.eq_any(chunk))
            .select(ModelRow::as_select())
            .load(conn)?;
        found.extend(rows.into_iter().map(|row| (row.id, row)));
    }
    Ok(found)
}

/// Narrows a boxed query that has the `models` columns in scope to the
/// models matching a [`ModelFilter`]: the one place the shared filter type
/// becomes SQL (every value a bound parameter). A macro because the query
/// types are unnameable, and because a boxed subquery cannot be nested in
/// a boxed query over the multi-backend connection (the component
/// subqueries here stay unboxed: their "no filter" case is a bound
/// `true`). A `where` expression is compiled for the backend of `$conn`
/// (see `store/filter/`); one that does not parse returns from the
/// enclosing function with INVALID_ARGUMENT.
macro_rules! filter_models {
    ($query:expr, $project_id:expr, $filter:expr, $conn:expr) => {
        $crate::store::models::filter_models!(
            $query,
            $project_id,
            $filter,
            $conn,
            $crate::store::filter::Membership::Uncorrelated
        )
    };
    ($query:expr, $project_id:expr, $filter:expr, $conn:expr, $membership:expr) => {{
        use diesel::IntoSql as _;
        use diesel::sql_types::Bool;
        use $crate::db::schema::{components as c, models as m};
        use $crate::store::records::{ComponentKind, Deletion};
        let filter: &$crate::store::records::ModelFilter = $filter;
        let project_id: i64 = $project_id;
        let mut query = $query.filter(m::project_id.eq(project_id));
        if let Some(text) = &filter.where_expr {
            query = query.filter($crate::store::filter::compile_where(text, $conn, $membership)?);
        }
        match filter.deletion {
            Deletion::LiveOnly => query = query.filter(m::deleted_at.is_null()),
            Deletion::DeletedOnly => query = query.filter(m::deleted_at.is_not_null()),
            Deletion::All => {}
        }
        if !filter.names.is_empty() {
            query = query.filter(m::name.eq_any(&filter.names));
        }
        if !filter.statuses.is_empty() {
            let statuses: Vec<&'static str> = filter.statuses.iter().map(|s| s.as_column()).collect();
            query = query.filter(m::status.eq_any(statuses));
        }
        for (kind, names, group_names) in [
            (
                ComponentKind::DataBlob,
                &filter.datablob_names,
                &filter.datablob_group_names,
            ),
            (
                ComponentKind::ModelTemplate,
                &filter.model_template_names,
                &filter.model_template_group_names,
            ),
        ] {
            if names.is_empty() && group_names.is_empty() {
                continue;
            }
            let ids = c::table
                .select(c::id)
                .filter(c::project_id.eq(project_id))
                .filter(c::kind.eq(kind.as_column()))
                .filter(c::name.eq_any(names).or(names.is_empty().into_sql::<Bool>()))
                .filter(
                    c::group_name
                        .eq_any(group_names)
                        .or(group_names.is_empty().into_sql::<Bool>()),
                );
            query = match kind {
                ComponentKind::DataBlob => query.filter(m::datablob_id.eq_any(ids)),
                ComponentKind::ModelTemplate => query.filter(m::model_template_id.eq_any(ids)),
            };
        }
        for (key, value) in &filter.tags {
            use $crate::db::schema::tags as t;
            let tagged = t::table
                .select(t::target_id)
                .filter(t::project_id.eq(project_id))
                .filter(t::target_kind.eq($crate::store::records::RecordKind::Model.as_column()))
                .filter(t::key.eq(key))
                .filter(t::value.eq(value));
            query = query.filter(m::id.eq_any(tagged));
        }
        query
    }};
}
pub(super) use filter_models;

/// One page of the models of project `project_id` matching `filter`, in
/// the order of `view` (by name by default), with its summary columns.
pub fn list(
    conn: &mut DbConnection,
    (project_id, project_name): (i64, &str),
    filter: &ModelFilter,
    view: &ModelView,
    page: &PageRequest,
) -> Result<Page<Model>> {
    if let Some(order) = &view.order_by {
        return list_sorted(
            conn,
            (project_id, project_name),
            filter,
            order,
            &view.columns,
            page,
        );
    }
    let query_id = page_token::fingerprint(&format!("models|{project_name:?}|{filter:?}"));
    let after: Option<String> = page_token::decode(query_id, &page.token)?;
    let query = models::table
        .select(ModelRow::as_select())
        .order(models::name.asc())
        .limit(page_limit(page))
        .into_boxed();
    let mut query = filter_models!(query, project_id, filter, conn);
    if let Some(after) = &after {
        query = query.filter(models::name.gt(after));
    }
    let rows = query.load(conn)?;
    into_page(
        rows,
        page.size,
        |row| page_token::encode(query_id, &row.name),
        |rows| with_columns(conn, rows, &view.columns),
    )
}

/// A row of a sorted listing: the model and its sort key, selected in the
/// column of the key's type (the others NULL).
type SortedRow = (ModelRow, Option<String>, Option<i64>, Option<f64>);

/// [`list`] under an `order_by`: keyset pagination on (key, name), the key
/// read in the same statement as the rows, so a page token continues
/// exactly where its page ended.
fn list_sorted(
    conn: &mut DbConnection,
    (project_id, project_name): (i64, &str),
    filter: &ModelFilter,
    order: &OrderBy,
    columns: &[Field],
    page: &PageRequest,
) -> Result<Page<Model>> {
    let sort = sort_sql(order, super::filter::dialect(conn))
        .ok_or_else(|| Error::invalid("order_by", "cannot sort by this field"))?;
    let query_id = page_token::fingerprint(&format!("models|{project_name:?}|{filter:?}|order_by {order:?}"));
    let after: Option<(Option<SortValue>, String)> = page_token::decode(query_id, &page.token)?;
    if let Some((Some(value), _)) = &after
        && !value.fits(sort.kind)
    {
        return Err(Error::invalid(
            "page_token",
            "is not a token returned by this listing",
        ));
    }
    let query = models::table
        .select((
            ModelRow::as_select(),
            sort.text_key(),
            sort.int_key(),
            sort.float_key(),
        ))
        .order(sort.order())
        .limit(page_limit(page))
        .into_boxed();
    let mut query = filter_models!(query, project_id, filter, conn);
    if let Some((value, name)) = &after {
        query = query.filter(sort.after(value.as_ref(), name));
    }
    let rows: Vec<SortedRow> = query.load(conn)?;
    into_page(
        rows,
        page.size,
        |(row, text, int, float)| {
            let key = match (text, int, float) {
                (Some(text), _, _) => Some(SortValue::T(text.clone())),
                (_, Some(int), _) => Some(SortValue::I(*int)),
                (_, _, Some(float)) => Some(SortValue::F(float.to_bits())),
                _ => None,
            };
            page_token::encode(query_id, &(key, &row.name))
        },
        |rows| with_columns(conn, rows.into_iter().map(|row| row.0).collect(), columns),
    )
}

/// The models of `rows` with their summary `columns` (read for all rows
/// at once).
pub(super) fn with_columns(
    conn: &mut DbConnection,
    rows: Vec<ModelRow>,
    columns: &[Field],
) -> Result<Vec<Model>> {
    let values = super::columns::load(conn, &rows, columns)?;
    Ok(with_components(conn, rows)?
        .into_iter()
        .zip(values)
        .map(|((mut model, _, _), columns)| {
            model.columns = columns;
            model
        })
        .collect())
}

/// Attaches each model's datablob and template (loaded in one query).
pub(super) fn with_components(
    conn: &mut DbConnection,
    rows: Vec<ModelRow>,
) -> Result<Vec<(Model, Component, Component)>> {
    let ids: Vec<i64> = rows
        .iter()
        .flat_map(|row| [row.datablob_id, row.model_template_id])
        .collect();
    let found = components::by_ids(conn, &ids)?;
    let model_ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let mut tags = tags::load(conn, &[RecordKind::Model], &model_ids)?;
    rows.into_iter()
        .map(|row| {
            let component = |id: i64| {
                found.get(&id).cloned().ok_or_else(|| {
                    Error::Corrupt(format!("model {:?} refers to missing component {id}", row.name))
                })
            };
            let datablob = component(row.datablob_id)?;
            let template = component(row.model_template_id)?;
            let status = RunStatus::from_column(&row.status).ok_or_else(|| {
                Error::Corrupt(format!(
                    "model {:?} has unknown status {:?}",
                    row.name, row.status
                ))
            })?;
            let model = Model {
                name: row.name,
                model_class_name: row.model_class_name,
                datablob_name: datablob.name.clone(),
                model_template_name: template.name.clone(),
                created_at: row.created_at,
                last_modified_at: row.last_modified_at,
                params: row.params,
                tags: tags.remove(&row.id).unwrap_or_default(),
                description: row.description.unwrap_or_default(),
                run: RunState {
                    status,
                    started_at: row.started_at,
                    ended_at: row.ended_at,
                    last_heartbeat_at: row.last_heartbeat_at,
                    heartbeat_timeout_secs: row.heartbeat_timeout_secs,
                    run_context: row.run_context,
                },
                epoch_count: row.epoch_count,
                current_epoch: row.current_epoch,
                deleted_at: row.deleted_at,
                columns: Vec::new(),
            };
            Ok((model, datablob, template))
        })
        .collect()
}
