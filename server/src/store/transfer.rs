//! Import of exported records (issue 18): the writes that put a record
//! back exactly as it was exported, server-set times included.
//!
//! Each record is stored through the same put as a new one (so names,
//! references and the filter index follow the usual rules), and then, when
//! the put inserted it, the exported times, tags and description are
//! written over the put's own, in the same transaction. A record that was
//! stored already is compared: identical is skipped, different immutable
//! content is a conflict (nothing written), different tags or description
//! only are a conflict unless `overwrite_mutable`, which replaces them.
//! Deleted records are imported deleted (with their `deleted_at`); a record
//! whose deletion state differs from the stored one is a conflict.
//! A model's run state and status history are written with the model
//! itself, before its epochs: its epochs go through the ingest path
//! (`Store::insert_epochs`) as imported epochs (`NewEpoch::recorded_at`),
//! which leave a model's run, heartbeat and last change time alone, so an
//! import cut off anywhere leaves every imported model with its exported
//! status.

use diesel::prelude::*;

use super::artifacts::{self, Access};
use super::components;
use super::models;
use super::records::{
    ComponentKind, NewArtifact, NewComponent, NewModel, RecordKind, RunState, StatusChange, TagUpdate, Tags,
};
use super::tags::{self, Origin};
use super::{MAX_BINDS_PER_LIST, on_backend};
use crate::db::DbConnection;
use crate::db::schema::{artifacts as a, components as c, models as m, status_changes as sc};
use crate::error::{Error, Result};
use crate::security::ProjectScope;
use crate::validate::SYSTEM_TAG_PREFIX;

/// What an import did with one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// Newly stored.
    Inserted,
    /// Stored already, identically.
    Skipped,
    /// Stored already with other tags or description, replaced
    /// (`overwrite_mutable`).
    Updated,
    /// Stored already with other content: left alone, for this reason.
    Conflict(String),
}

/// The mutable metadata and times of an exported record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedMeta {
    /// Microseconds since the Unix epoch.
    pub created_at: i64,
    /// Microseconds since the Unix epoch.
    pub last_modified_at: i64,
    pub tags: Tags,
    /// Empty: none.
    pub description: String,
    /// Soft-deleted then (microseconds since the Unix epoch).
    pub deleted_at: Option<i64>,
}

/// An exported datablob or template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportComponent {
    pub new: NewComponent,
    pub meta: ExportedMeta,
}

/// An exported model, without its epochs and artifacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportModel {
    pub new: NewModel,
    pub meta: ExportedMeta,
    pub run: RunState,
    /// Oldest first.
    pub status_changes: Vec<StatusChange>,
}

/// Writes `meta` over the put's own on a record it just inserted.
fn write_meta(
    conn: &mut DbConnection,
    project_id: i64,
    kind: RecordKind,
    id: i64,
    meta: &ExportedMeta,
) -> Result<()> {
    let description = (!meta.description.is_empty()).then_some(meta.description.as_str());
    match kind {
        RecordKind::Model => diesel::update(m::table.filter(m::id.eq(id)))
            .set((
                m::created_at.eq(meta.created_at),
                m::last_modified_at.eq(meta.last_modified_at),
                m::description.eq(description),
            ))
            .execute(conn)?,
        RecordKind::Component(_) => diesel::update(c::table.filter(c::id.eq(id)))
            .set((
                c::created_at.eq(meta.created_at),
                c::last_modified_at.eq(meta.last_modified_at),
                c::description.eq(description),
            ))
            .execute(conn)?,
    };
    replace_tags(conn, project_id, kind, id, &Tags::new(), &meta.tags)
}

/// Makes the tags of a record `wanted` (it holds `stored`): user keys and
/// the server's own (`mlmeta.`) keys in their two updates.
fn replace_tags(
    conn: &mut DbConnection,
    project_id: i64,
    kind: RecordKind,
    id: i64,
    stored: &Tags,
    wanted: &Tags,
) -> Result<()> {
    for origin in [Origin::User, Origin::System] {
        let ours = |key: &String| key.starts_with(SYSTEM_TAG_PREFIX) == (origin == Origin::System);
        let update = TagUpdate {
            set: wanted
                .iter()
                .filter(|(key, value)| ours(key) && stored.get(*key) != Some(*value))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
            unset: stored
                .keys()
                .filter(|key| ours(key) && !wanted.contains_key(*key))
                .cloned()
                .collect(),
        };
        if !update.set.is_empty() || !update.unset.is_empty() {
            tags::update(conn, project_id, kind, id, &update, origin)?;
        }
    }
    Ok(())
}

/// What to do with a record stored already whose immutable content is the
/// export's: compares its tags and description.
fn compare_mutable(
    conn: &mut DbConnection,
    project_id: i64,
    kind: RecordKind,
    id: i64,
    stored: (&Tags, &str),
    meta: &ExportedMeta,
    overwrite_mutable: bool,
) -> Result<Imported> {
    let (stored_tags, stored_description) = stored;
    let mut differences = Vec::new();
    if *stored_tags != meta.tags {
        differences.push("tags");
    }
    if stored_description != meta.description {
        differences.push("description");
    }
    if differences.is_empty() {
        return Ok(Imported::Skipped);
    }
    if !overwrite_mutable {
        return Ok(Imported::Conflict(format!(
            "stored with the same content but a different {} (import with overwrite_mutable to replace them)",
            differences.join(" and ")
        )));
    }
    replace_tags(conn, project_id, kind, id, stored_tags, &meta.tags)?;
    tags::set_description(
        conn,
        kind,
        id,
        (!meta.description.is_empty()).then_some(meta.description.as_str()),
    )?;
    Ok(Imported::Updated)
}

fn import_live_component(
    conn: &mut DbConnection,
    project_id: i64,
    kind: ComponentKind,
    record: &ImportComponent,
    overwrite_mutable: bool,
) -> Result<Imported> {
    let put = match components::put(conn, project_id, kind, &record.new, false) {
        Ok(put) => put,
        // Nothing was written: the insert found the name taken.
        Err(Error::AlreadyExists(message)) => return Ok(Imported::Conflict(message)),
        Err(error) => return Err(error),
    };
    let id = components::find(conn, project_id, kind, &record.new.name)?
        .map(|row| row.id)
        .ok_or_else(|| {
            Error::Corrupt(format!(
                "{} {:?} vanished after insert",
                kind.label(),
                record.new.name
            ))
        })?;
    let target = RecordKind::Component(kind);
    if !put.already_existed {
        write_meta(conn, project_id, target, id, &record.meta)?;
        return Ok(Imported::Inserted);
    }
    compare_mutable(
        conn,
        project_id,
        target,
        id,
        (&put.record.tags, &put.record.description),
        &record.meta,
        overwrite_mutable,
    )
}

fn import_live_model(
    conn: &mut DbConnection,
    project_id: i64,
    record: &ImportModel,
    overwrite_mutable: bool,
) -> Result<Imported> {
    let put = match models::put(conn, project_id, &record.new, false) {
        Ok(put) => put,
        Err(Error::AlreadyExists(message)) => return Ok(Imported::Conflict(message)),
        Err(error) => return Err(error),
    };
    let id = model_id(conn, project_id, &record.new.name)?;
    if !put.already_existed {
        write_meta(conn, project_id, RecordKind::Model, id, &record.meta)?;
        write_run(conn, id, record)?;
        return Ok(Imported::Inserted);
    }
    compare_mutable(
        conn,
        project_id,
        RecordKind::Model,
        id,
        (&put.record.tags, &put.record.description),
        &record.meta,
        overwrite_mutable,
    )
}

/// Sets `deleted_at` of the record `kind` with id `id` (`None`: live).
fn set_deleted(conn: &mut DbConnection, kind: RecordKind, id: i64, deleted_at: Option<i64>) -> Result<()> {
    match kind {
        RecordKind::Model => diesel::update(m::table.filter(m::id.eq(id)))
            .set(m::deleted_at.eq(deleted_at))
            .execute(conn)?,
        RecordKind::Component(_) => diesel::update(c::table.filter(c::id.eq(id)))
            .set(c::deleted_at.eq(deleted_at))
            .execute(conn)?,
    };
    Ok(())
}

/// Runs `f` with the deleted records `deleted` ((kind, id, deleted_at))
/// live, and deletes them again afterwards, in the caller's transaction:
/// so that the usual put compares an exported deleted record with a
/// stored deleted one, and puts a deleted model over deleted components.
/// Nothing outside the transaction ever sees them live.
fn with_undeleted<T>(
    conn: &mut DbConnection,
    deleted: &[(RecordKind, i64, i64)],
    f: impl FnOnce(&mut DbConnection) -> Result<T>,
) -> Result<T> {
    for &(kind, id, _) in deleted {
        set_deleted(conn, kind, id, None)?;
    }
    let outcome = f(conn)?;
    for &(kind, id, deleted_at) in deleted {
        set_deleted(conn, kind, id, Some(deleted_at))?;
    }
    Ok(outcome)
}

/// The outcome of importing a record exported with `exported` deletion
/// state over one stored with `stored` (`None`: not stored before), once
/// the put compared them as live records: a differing state is a
/// conflict, not overwritten; a record inserted deleted is deleted.
fn settle_deletion(
    conn: &mut DbConnection,
    kind: RecordKind,
    id: i64,
    stored: Option<Option<i64>>,
    exported: Option<i64>,
    outcome: Imported,
) -> Result<Imported> {
    if matches!(outcome, Imported::Conflict(_)) {
        return Ok(outcome);
    }
    match (stored, exported) {
        (None, Some(_)) => {
            set_deleted(conn, kind, id, exported)?;
            Ok(outcome)
        }
        (Some(None), Some(_)) => Ok(Imported::Conflict(format!(
            "stored live, but deleted in the export (delete it to import it): {} left alone",
            kind.label()
        ))),
        (Some(Some(_)), None) => Ok(Imported::Conflict(format!(
            "stored deleted, but live in the export (restore it to import it): {} left alone",
            kind.label()
        ))),
        _ => Ok(outcome),
    }
}

/// An exported datablob or template, deleted or not (see
/// [`settle_deletion`]).
fn import_component(
    conn: &mut DbConnection,
    project_id: i64,
    kind: ComponentKind,
    record: &ImportComponent,
    overwrite_mutable: bool,
) -> Result<Imported> {
    let target = RecordKind::Component(kind);
    let stored =
        components::find(conn, project_id, kind, &record.new.name)?.map(|row| (row.id, row.deleted_at));
    let undeleted: Vec<(RecordKind, i64, i64)> = stored
        .and_then(|(id, deleted_at)| deleted_at.map(|at| (target, id, at)))
        .into_iter()
        .collect();
    let outcome = with_undeleted(conn, &undeleted, |conn| {
        import_live_component(conn, project_id, kind, record, overwrite_mutable)
    })?;
    let Some(id) = components::find(conn, project_id, kind, &record.new.name)?.map(|row| row.id) else {
        return Ok(outcome);
    };
    settle_deletion(
        conn,
        target,
        id,
        stored.map(|(_, deleted_at)| deleted_at),
        record.meta.deleted_at,
        outcome,
    )
}

/// An exported model, deleted or not (see [`settle_deletion`]); a deleted
/// one is put over its components even if they are deleted too.
fn import_model(
    conn: &mut DbConnection,
    project_id: i64,
    record: &ImportModel,
    overwrite_mutable: bool,
) -> Result<Imported> {
    let stored: Option<(i64, Option<i64>)> = m::table
        .filter(m::project_id.eq(project_id))
        .filter(m::name.eq(&record.new.name))
        .select((m::id, m::deleted_at))
        .first(conn)
        .optional()?;
    let mut undeleted: Vec<(RecordKind, i64, i64)> = Vec::new();
    if record.meta.deleted_at.is_some() {
        for (kind, name) in [
            (ComponentKind::DataBlob, &record.new.datablob_name),
            (ComponentKind::ModelTemplate, &record.new.model_template_name),
        ] {
            if let Some(row) = components::find(conn, project_id, kind, name)?
                && let Some(at) = row.deleted_at
            {
                undeleted.push((RecordKind::Component(kind), row.id, at));
            }
        }
    }
    if let Some((id, Some(at))) = stored {
        undeleted.push((RecordKind::Model, id, at));
    }
    let outcome = match with_undeleted(conn, &undeleted, |conn| {
        import_live_model(conn, project_id, record, overwrite_mutable)
    }) {
        // Its datablob or template is deleted here (and the model is not).
        Err(Error::FailedPrecondition(message)) => return Ok(Imported::Conflict(message)),
        other => other?,
    };
    let Ok(id) = model_id(conn, project_id, &record.new.name) else {
        return Ok(outcome);
    };
    settle_deletion(
        conn,
        RecordKind::Model,
        id,
        stored.map(|(_, deleted_at)| deleted_at),
        record.meta.deleted_at,
        outcome,
    )
}

fn model_id(conn: &mut DbConnection, project_id: i64, name: &str) -> Result<i64> {
    m::table
        .filter(m::project_id.eq(project_id))
        .filter(m::name.eq(name))
        .select(m::id)
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("model {name:?} does not exist")))
}

#[derive(Insertable)]
#[diesel(table_name = sc)]
struct StatusChangeRow<'a> {
    model_id: i64,
    changed_at: i64,
    from_status: &'a str,
    to_status: &'a str,
    cause: &'a str,
}

/// Writes the exported run state, status history and last change time of
/// model `id`, which this import just inserted (in its transaction).
fn write_run(conn: &mut DbConnection, id: i64, record: &ImportModel) -> Result<()> {
    let run = &record.run;
    diesel::update(m::table.filter(m::id.eq(id)))
        .set((
            m::status.eq(run.status.as_column()),
            m::started_at.eq(run.started_at),
            m::ended_at.eq(run.ended_at),
            m::last_heartbeat_at.eq(run.last_heartbeat_at),
            m::heartbeat_timeout_secs.eq(run.heartbeat_timeout_secs),
            m::run_context.eq(run.run_context.as_deref()),
            m::last_modified_at.eq(record.meta.last_modified_at),
        ))
        .execute(conn)?;
    diesel::delete(sc::table.filter(sc::model_id.eq(id))).execute(conn)?;
    let rows: Vec<StatusChangeRow<'_>> = record
        .status_changes
        .iter()
        .map(|change| StatusChangeRow {
            model_id: id,
            changed_at: change.changed_at,
            from_status: change.from.as_column(),
            to_status: change.to.as_column(),
            cause: &change.cause,
        })
        .collect();
    for chunk in rows.chunks(MAX_BINDS_PER_LIST / 5) {
        on_backend!(conn, |c| diesel::insert_into(sc::table).values(chunk).execute(c))?;
    }
    Ok(())
}

/// The artifact of a model (put over the model's deletion, in the
/// caller's transaction, when the model is deleted: an import stores the
/// artifacts of deleted models).
fn import_artifact(
    conn: &mut DbConnection,
    project_id: i64,
    model_name: &str,
    new: &NewArtifact,
    created_at: i64,
) -> Result<Imported> {
    let (id, deleted_at): (i64, Option<i64>) = m::table
        .filter(m::project_id.eq(project_id))
        .filter(m::name.eq(model_name))
        .select((m::id, m::deleted_at))
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("model_name: model {model_name:?} does not exist")))?;
    let undeleted: Vec<(RecordKind, i64, i64)> = deleted_at
        .map(|at| (RecordKind::Model, id, at))
        .into_iter()
        .collect();
    with_undeleted(conn, &undeleted, |conn| {
        import_live_artifact(conn, project_id, model_name, new, created_at)
    })
}

fn import_live_artifact(
    conn: &mut DbConnection,
    project_id: i64,
    model_name: &str,
    new: &NewArtifact,
    created_at: i64,
) -> Result<Imported> {
    let put = match artifacts::put(conn, project_id, model_name, new, false) {
        Ok(put) => put,
        Err(Error::AlreadyExists(message)) => return Ok(Imported::Conflict(message)),
        Err(error) => return Err(error),
    };
    if put.already_existed {
        return Ok(Imported::Skipped);
    }
    set_artifact_created_at(conn, project_id, model_name, &new.name, created_at)?;
    Ok(Imported::Inserted)
}

fn set_artifact_created_at(
    conn: &mut DbConnection,
    project_id: i64,
    model_name: &str,
    name: &str,
    created_at: i64,
) -> Result<()> {
    let model_id = artifacts::model_id(conn, project_id, model_name, Access::Write)?;
    diesel::update(a::table.filter(a::model_id.eq(model_id)).filter(a::name.eq(name)))
        .set(a::created_at.eq(created_at))
        .execute(conn)?;
    Ok(())
}

impl super::Store {
    /// Imports an exported datablob or template into `project` (see the
    /// module documentation for the rules).
    pub fn import_component(
        &self,
        project: &ProjectScope,
        kind: ComponentKind,
        record: &ImportComponent,
        overwrite_mutable: bool,
    ) -> Result<Imported> {
        self.write(|conn| {
            let project_id = self.project_ids.find_or_create(conn, project)?;
            import_component(conn, project_id, kind, record, overwrite_mutable)
        })
    }

    /// Imports an exported model into `project` (its datablob and template
    /// must be there) with its run state and status history, in one
    /// transaction.
    pub fn import_model(
        &self,
        project: &ProjectScope,
        record: &ImportModel,
        overwrite_mutable: bool,
    ) -> Result<Imported> {
        self.write_models(|conn| {
            let project_id = self.project_ids.find_or_create(conn, project)?;
            import_model(conn, project_id, record, overwrite_mutable)
        })
    }

    /// Imports an exported artifact reference (without content) of model
    /// `model_name`, with its creation time.
    pub fn import_artifact(
        &self,
        project: &ProjectScope,
        model_name: &str,
        new: &NewArtifact,
        created_at: i64,
    ) -> Result<Imported> {
        self.write_in(project, model_name, |conn, project_id| {
            import_artifact(conn, project_id, model_name, new, created_at)
        })
    }

    /// Sets the creation time of an artifact an import just uploaded.
    pub fn set_artifact_created_at(
        &self,
        project: &ProjectScope,
        model_name: &str,
        name: &str,
        created_at: i64,
    ) -> Result<()> {
        self.write_in(project, model_name, |conn, project_id| {
            set_artifact_created_at(conn, project_id, model_name, name, created_at)
        })
    }
}
