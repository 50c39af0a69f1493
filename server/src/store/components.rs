//! Datablobs and model templates (the `components` table).

use std::collections::HashMap;

use diesel::prelude::*;

use super::page_token;
use super::records::{
    Component, ComponentKind, Deletion, GroupedFilter, NewComponent, Page, PageRequest, Put, RecordKind,
    Tags, now_micros,
};
use super::tags;
use super::{into_page, on_backend, page_limit};
use crate::db::DbConnection;
use crate::db::schema::components;
use crate::error::{Error, Result};

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = components)]
pub(super) struct ComponentRow {
    pub id: i64,
    name: String,
    group_name: String,
    hyperparams: String,
    created_at: i64,
    last_modified_at: i64,
    description: Option<String>,
    pub deleted_at: Option<i64>,
}

impl From<ComponentRow> for Component {
    fn from(row: ComponentRow) -> Self {
        Self {
            name: row.name,
            group_name: row.group_name,
            hyperparams: row.hyperparams,
            created_at: row.created_at,
            last_modified_at: row.last_modified_at,
            tags: Tags::new(),
            description: row.description.unwrap_or_default(),
            deleted_at: row.deleted_at,
        }
    }
}

/// The components of `rows` with their tags (loaded in one query).
fn with_tags(conn: &mut DbConnection, rows: Vec<ComponentRow>) -> Result<Vec<(i64, Component)>> {
    let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
    let kinds = [ComponentKind::DataBlob, ComponentKind::ModelTemplate].map(RecordKind::Component);
    let mut tags = tags::load(conn, &kinds, &ids)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let id = row.id;
            let mut component = Component::from(row);
            component.tags = tags.remove(&id).unwrap_or_default();
            (id, component)
        })
        .collect())
}

#[derive(Insertable)]
#[diesel(table_name = components)]
struct NewComponentRow<'a> {
    project_id: i64,
    kind: &'a str,
    name: &'a str,
    group_name: &'a str,
    hyperparams: &'a str,
    created_at: i64,
    last_modified_at: i64,
}

/// Inserts `new` into project `project_id` unless its name is taken there;
/// an identical stored record (or `ignore_existing`) is success, a
/// different one ALREADY_EXISTS.
pub fn put(
    conn: &mut DbConnection,
    project_id: i64,
    kind: ComponentKind,
    new: &NewComponent,
    ignore_existing: bool,
) -> Result<Put<Component>> {
    let now = now_micros();
    let row = NewComponentRow {
        project_id,
        kind: kind.as_column(),
        name: &new.name,
        group_name: &new.group_name,
        hyperparams: &new.hyperparams,
        created_at: now,
        last_modified_at: now,
    };
    let inserted = on_backend!(conn, |c| diesel::insert_into(components::table)
        .values(&row)
        .on_conflict((components::project_id, components::kind, components::name))
        .do_nothing()
        .execute(c))?;
    let stored = find(conn, project_id, kind, &new.name)?
        .ok_or_else(|| Error::Corrupt(format!("{} {:?} vanished after insert", kind.label(), new.name)))?;
    if inserted == 1 {
        super::filter::index::write(
            conn,
            super::filter::index::Owner::Component,
            stored.id,
            &new.hyperparams,
        )?;
    }
    if stored.deleted_at.is_some() {
        return Err(Error::AlreadyExists(format!(
            "{} {:?} is deleted, and its name stays taken until it is purged: restore it, or purge it first",
            kind.label(),
            new.name
        )));
    }
    let stored = with_tags(conn, vec![stored])?
        .pop()
        .map(|(_, component)| component)
        .ok_or_else(|| Error::Corrupt(format!("{} {:?} vanished after insert", kind.label(), new.name)))?;
    let already_existed = inserted == 0;
    let mut differences = Vec::new();
    if stored.group_name != new.group_name {
        differences.push(format!("group_name (stored {:?})", stored.group_name));
    }
    if stored.hyperparams != new.hyperparams {
        differences.push("hyperparams_json".to_owned());
    }
    if already_existed && !differences.is_empty() && !ignore_existing {
        return Err(Error::AlreadyExists(format!(
            "{} {:?} already exists with a different {}; records are immutable: use another name, or set ignore_existing to keep the stored one",
            kind.label(),
            new.name,
            differences.join(" and ")
        )));
    }
    Ok(Put {
        record: stored,
        already_existed,
    })
}

/// The stored component of `kind` named `name` in project `project_id`.
pub(super) fn find(
    conn: &mut DbConnection,
    project_id: i64,
    kind: ComponentKind,
    name: &str,
) -> Result<Option<ComponentRow>> {
    Ok(components::table
        .filter(components::project_id.eq(project_id))
        .filter(components::kind.eq(kind.as_column()))
        .filter(components::name.eq(name))
        .select(ComponentRow::as_select())
        .first(conn)
        .optional()?)
}

/// Component `name` of `kind` in project `project_id` (deleted ones
/// too) with its tags.
pub(super) fn find_with_tags(
    conn: &mut DbConnection,
    project_id: i64,
    kind: ComponentKind,
    name: &str,
) -> Result<Option<Component>> {
    let Some(row) = find(conn, project_id, kind, name)? else {
        return Ok(None);
    };
    Ok(with_tags(conn, vec![row])?.pop().map(|(_, component)| component))
}

/// Components by id (any kind), for attaching to models.
pub(super) fn by_ids(conn: &mut DbConnection, ids: &[i64]) -> Result<HashMap<i64, Component>> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(super::MAX_BINDS_PER_LIST) {
        let rows: Vec<ComponentRow> = components::table
            .filter(components::id.eq_any(chunk))
            .select(ComponentRow::as_select())
            .load(conn)?;
        found.extend(with_tags(conn, rows)?);
    }
    Ok(found)
}

/// One page of components of `kind` in project `project_id`, by name.
pub fn list(
    conn: &mut DbConnection,
    (project_id, project_name): (i64, &str),
    kind: ComponentKind,
    filter: &GroupedFilter,
    page: &PageRequest,
) -> Result<Page<Component>> {
    let query_id = page_token::fingerprint(&format!("components|{project_name:?}|{kind:?}|{filter:?}"));
    let after: Option<String> = page_token::decode(query_id, &page.token)?;
    let mut query = components::table
        .filter(components::project_id.eq(project_id))
        .filter(components::kind.eq(kind.as_column()))
        .select(ComponentRow::as_select())
        .order(components::name.asc())
        .limit(page_limit(page))
        .into_boxed();
    if !filter.names.is_empty() {
        query = query.filter(components::name.eq_any(&filter.names));
    }
    if !filter.group_names.is_empty() {
        query = query.filter(components::group_name.eq_any(&filter.group_names));
    }
    match filter.deletion {
        Deletion::LiveOnly => query = query.filter(components::deleted_at.is_null()),
        Deletion::DeletedOnly => query = query.filter(components::deleted_at.is_not_null()),
        Deletion::All => {}
    }
    if let Some(after) = &after {
        query = query.filter(components::name.gt(after));
    }
    let rows = query.load(conn)?;
    into_page(
        rows,
        page.size,
        |row| page_token::encode(query_id, &row.name),
        |rows| {
            Ok(with_tags(conn, rows)?
                .into_iter()
                .map(|(_, component)| component)
                .collect())
        },
    )
}
