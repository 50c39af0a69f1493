//! Soft delete, restore and purge of models, datablobs and templates.
//!
//! - Delete sets `deleted_at` (database clock). A deleted record leaves
//!   every listing, best-model query and leaderboard unless a filter asks
//!   for deleted ones, takes no writes (epochs, runs, tags, descriptions:
//!   FAILED_PRECONDITION), and keeps its name until purged. Deleting a
//!   deleted record succeeds and changes nothing; so does restoring a live
//!   one. A datablob or template can be deleted only while no live model
//!   uses it.
//! - Restore clears `deleted_at`: the record comes back exactly (same id,
//!   epochs, summaries, tags, status). A model whose datablob or template
//!   is deleted cannot be restored until they are.
//! - Purge removes deleted models for good, in two steps. First, in one
//!   short transaction per [`MODELS_PER_TRANSACTION`] models, the model
//!   rows and their small per-model rows ([`delete_model_rows`]) go and
//!   their ids enter `purged_models`: from then on the name is free and
//!   nothing can restore them. Then their epochs go in transactions of at
//!   most [`EPOCHS_PER_TRANSACTION`] rows, so writers wait for one small
//!   batch at most. Ids are never reused (BIGSERIAL, SQLite AUTOINCREMENT),
//!   so epochs not yet removed belong to no model; an interrupted purge
//!   leaves them queued and the next purge of the project finishes them.
//!
//! Races between replicas: on PostgreSQL, a component delete locks the
//! component row (`FOR UPDATE`) before looking for live models using it,
//! and a model put or restore locks the components it uses (`FOR SHARE`)
//! and reads their deletion state through that lock; so a component is
//! never deleted under a live model. On SQLite `BEGIN IMMEDIATE`
//! serializes the writers anyway.

use diesel::prelude::*;

use super::MAX_BINDS_PER_LIST;
use super::records::{ComponentKind, RecordKind};
use super::runs::db_now;
use crate::db::DbConnection;
use crate::db::schema::{
    artifacts, components as c, epochs as e, metric_summaries as ms, models as m, purged_models as pm,
    status_changes as sc, tags as t,
};
use crate::error::{Error, Result};

/// Models purged per transaction of the first step.
const MODELS_PER_TRANSACTION: i64 = 100;
/// Epochs removed per transaction of the second step: a few milliseconds
/// of work, so a concurrent writer waits for that at most.
pub(super) const EPOCHS_PER_TRANSACTION: i64 = 5_000;

/// FAILED_PRECONDITION: `name` (a `label`, the request's `field`) is
/// deleted and takes no writes.
pub(super) fn is_deleted(field: &str, label: &str, name: &str) -> Error {
    Error::FailedPrecondition(format!("{field}: {label} {name:?} is deleted; restore it first"))
}

/// The id and `deleted_at` of the record of `kind` named `name`;
/// NOT_FOUND naming it when there is none.
fn find(
    conn: &mut DbConnection,
    project_id: i64,
    kind: RecordKind,
    name: &str,
) -> Result<(i64, Option<i64>)> {
    let found = match kind {
        RecordKind::Model => m::table
            .filter(m::project_id.eq(project_id))
            .filter(m::name.eq(name))
            .select((m::id, m::deleted_at))
            .first::<(i64, Option<i64>)>(conn)
            .optional()?,
        RecordKind::Component(kind) => c::table
            .filter(c::project_id.eq(project_id))
            .filter(c::kind.eq(kind.as_column()))
            .filter(c::name.eq(name))
            .select((c::id, c::deleted_at))
            .first::<(i64, Option<i64>)>(conn)
            .optional()?,
    };
    found.ok_or_else(|| Error::NotFound(format!("target.name: {} {name:?} does not exist", kind.label())))
}

/// Locks the components `ids` until the transaction ends (PostgreSQL;
/// `exclusive`: `FOR UPDATE`, else `FOR SHARE`) and returns their
/// `(id, name, deleted_at)` as of the lock. On SQLite the write lock is
/// already held.
pub(super) fn lock_components(
    conn: &mut DbConnection,
    ids: &[i64],
    exclusive: bool,
) -> Result<Vec<(i64, String, Option<i64>)>> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let query = c::table
        .filter(c::id.eq_any(ids))
        .order(c::id)
        .select((c::id, c::name, c::deleted_at));
    Ok(match conn {
        DbConnection::Postgres(pg) if exclusive => query.for_update().load(pg)?,
        DbConnection::Postgres(pg) => query.for_share().load(pg)?,
        DbConnection::Sqlite(sqlite) => query.load(sqlite)?,
    })
}

/// What a delete or restore found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    /// False when the record was already in the asked state.
    pub changed: bool,
    /// `deleted_at` afterwards.
    pub deleted_at: Option<i64>,
}

/// Soft-deletes the record of `kind` named `name`.
pub fn delete(conn: &mut DbConnection, project_id: i64, kind: RecordKind, name: &str) -> Result<Changed> {
    let (id, deleted_at) = find(conn, project_id, kind, name)?;
    if deleted_at.is_some() {
        return Ok(Changed {
            changed: false,
            deleted_at,
        });
    }
    let now = db_now(conn)?;
    let updated = match kind {
        RecordKind::Model => diesel::update(m::table)
            .filter(m::id.eq(id))
            .filter(m::deleted_at.is_null())
            .set(m::deleted_at.eq(now))
            .execute(conn)?,
        RecordKind::Component(component) => {
            lock_components(conn, &[id], true)?;
            let column = match component {
                ComponentKind::DataBlob => "datablob",
                ComponentKind::ModelTemplate => "model template",
            };
            let user: Option<String> = m::table
                .filter(m::datablob_id.eq(id).or(m::model_template_id.eq(id)))
                .filter(m::deleted_at.is_null())
                .order(m::name)
                .select(m::name)
                .first(conn)
                .optional()?;
            if let Some(user) = user {
                return Err(Error::FailedPrecondition(format!(
                    "target.name: {column} {name:?} is used by live model {user:?}; delete the models using it first"
                )));
            }
            diesel::update(c::table)
                .filter(c::id.eq(id))
                .filter(c::deleted_at.is_null())
                .set(c::deleted_at.eq(now))
                .execute(conn)?
        }
    };
    if updated == 0 {
        // Another replica deleted it between the read and the update.
        let (_, deleted_at) = find(conn, project_id, kind, name)?;
        return Ok(Changed {
            changed: false,
            deleted_at,
        });
    }
    Ok(Changed {
        changed: true,
        deleted_at: Some(now),
    })
}

/// Restores the deleted record of `kind` named `name`.
pub fn restore(conn: &mut DbConnection, project_id: i64, kind: RecordKind, name: &str) -> Result<Changed> {
    let (id, deleted_at) = find(conn, project_id, kind, name)?;
    if deleted_at.is_none() {
        return Ok(Changed {
            changed: false,
            deleted_at: None,
        });
    }
    let updated = match kind {
        RecordKind::Model => {
            let (datablob_id, template_id): (i64, i64) = m::table
                .filter(m::id.eq(id))
                .select((m::datablob_id, m::model_template_id))
                .first(conn)?;
            for (component_id, component_name, component_deleted) in
                lock_components(conn, &[datablob_id, template_id], false)?
            {
                if component_deleted.is_some() {
                    let label = if component_id == datablob_id {
                        "datablob"
                    } else {
                        "model template"
                    };
                    return Err(Error::FailedPrecondition(format!(
                        "target.name: model {name:?} uses {label} {component_name:?}, which is deleted; restore it first"
                    )));
                }
            }
            diesel::update(m::table)
                .filter(m::id.eq(id))
                .set(m::deleted_at.eq(None::<i64>))
                .execute(conn)?
        }
        RecordKind::Component(_) => diesel::update(c::table)
            .filter(c::id.eq(id))
            .set(c::deleted_at.eq(None::<i64>))
            .execute(conn)?,
    };
    Ok(Changed {
        changed: updated > 0,
        deleted_at: None,
    })
}

/// First step of a purge, in the caller's transaction: removes up to
/// [`MODELS_PER_TRANSACTION`] deleted models of the project (only
/// `model_name` when given) with their per-model rows, and queues their
/// ids for the epoch batches. Returns how many models went; NOT_FOUND or
/// FAILED_PRECONDITION when `model_name` is not a deleted model.
pub fn purge_models(conn: &mut DbConnection, project_id: i64, model_name: Option<&str>) -> Result<u64> {
    let ids: Vec<i64> = match model_name {
        Some(name) => {
            let (id, deleted_at) = find(conn, project_id, RecordKind::Model, name)?;
            if deleted_at.is_none() {
                return Err(Error::FailedPrecondition(format!(
                    "model_name: model {name:?} is not deleted; delete it before purging it"
                )));
            }
            vec![id]
        }
        None => m::table
            .filter(m::project_id.eq(project_id))
            .filter(m::deleted_at.is_not_null())
            .order(m::id)
            .limit(MODELS_PER_TRANSACTION)
            .select(m::id)
            .load(conn)?,
    };
    if ids.is_empty() {
        return Ok(0);
    }
    // Only rows still deleted: the lock makes a racing restore (another
    // replica) either finish first, and the row is left alone, or wait.
    let query = m::table
        .filter(m::id.eq_any(&ids))
        .filter(m::deleted_at.is_not_null())
        .order(m::id)
        .select(m::id);
    let ids: Vec<i64> = match conn {
        DbConnection::Postgres(pg) => query.for_update().load(pg)?,
        DbConnection::Sqlite(sqlite) => query.load(sqlite)?,
    };
    if ids.is_empty() {
        return Ok(0);
    }
    delete_model_rows(conn, &ids)?;
    diesel::delete(m::table.filter(m::id.eq_any(&ids))).execute(conn)?;
    let now = db_now(conn)?;
    let queued: Vec<_> = ids
        .iter()
        .map(|&id| {
            (
                pm::model_id.eq(id),
                pm::project_id.eq(project_id),
                pm::purged_at.eq(now),
            )
        })
        .collect();
    super::on_backend!(conn, |cn| diesel::insert_into(pm::table)
        .values(&queued)
        .on_conflict_do_nothing()
        .execute(cn))?;
    Ok(ids.len() as u64)
}

/// Second step of a purge, in the caller's transaction: removes at most
/// [`EPOCHS_PER_TRANSACTION`] epochs of one queued model of the project,
/// and the model's queue entry once it has none left. Returns the epochs
/// removed, or `None` when the project's queue is empty.
pub fn purge_epochs(conn: &mut DbConnection, project_id: i64) -> Result<Option<u64>> {
    let Some(model_id) = pm::table
        .filter(pm::project_id.eq(project_id))
        .order(pm::model_id)
        .select(pm::model_id)
        .first::<i64>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    // The batch's last epoch_num, read off the primary key; none: fewer
    // epochs are left than a batch holds.
    let last: Option<i64> = e::table
        .filter(e::model_id.eq(model_id))
        .order(e::epoch_num)
        .offset(EPOCHS_PER_TRANSACTION - 1)
        .limit(1)
        .select(e::epoch_num)
        .first(conn)
        .optional()?;
    let removed = match last {
        Some(last) => diesel::delete(
            e::table
                .filter(e::model_id.eq(model_id))
                .filter(e::epoch_num.le(last)),
        )
        .execute(conn)?,
        None => diesel::delete(e::table.filter(e::model_id.eq(model_id))).execute(conn)?,
    };
    if (removed as i64) < EPOCHS_PER_TRANSACTION {
        diesel::delete(pm::table.filter(pm::model_id.eq(model_id))).execute(conn)?;
    }
    Ok(Some(removed as u64))
}

/// Last step of purging a whole project, in the caller's transaction:
/// removes its deleted datablobs and templates that no model (live or
/// deleted) uses any more, with their tags. Returns (datablobs, templates).
pub fn purge_components(conn: &mut DbConnection, project_id: i64) -> Result<(u64, u64)> {
    let deleted: Vec<(i64, String)> = c::table
        .filter(c::project_id.eq(project_id))
        .filter(c::deleted_at.is_not_null())
        .select((c::id, c::kind))
        .load(conn)?;
    let mut counts = (0, 0);
    for chunk in deleted.chunks(MAX_BINDS_PER_LIST / 2) {
        let ids: Vec<i64> = chunk.iter().map(|(id, _)| *id).collect();
        let used: std::collections::HashSet<i64> = m::table
            .filter(m::datablob_id.eq_any(&ids).or(m::model_template_id.eq_any(&ids)))
            .select((m::datablob_id, m::model_template_id))
            .load::<(i64, i64)>(conn)?
            .into_iter()
            .flat_map(|(a, b)| [a, b])
            .collect();
        let unused: Vec<&(i64, String)> = chunk.iter().filter(|(id, _)| !used.contains(id)).collect();
        let ids: Vec<i64> = unused.iter().map(|(id, _)| *id).collect();
        if ids.is_empty() {
            continue;
        }
        for kind in [ComponentKind::DataBlob, ComponentKind::ModelTemplate] {
            diesel::delete(
                t::table
                    .filter(t::target_kind.eq(RecordKind::Component(kind).as_column()))
                    .filter(t::target_id.eq_any(&ids)),
            )
            .execute(conn)?;
        }
        super::filter::index::remove(conn, super::filter::index::Owner::Component, &ids)?;
        diesel::delete(
            c::table
                .filter(c::id.eq_any(&ids))
                .filter(c::deleted_at.is_not_null()),
        )
        .execute(conn)?;
        for (_, kind) in unused {
            if kind == ComponentKind::DataBlob.as_column() {
                counts.0 += 1;
            } else {
                counts.1 += 1;
            }
        }
    }
    Ok(counts)
}

/// The rows that belong to models `ids` other than the model rows and
/// their epochs, removed in the first step of a purge. Every per-model
/// table is listed here.
fn delete_model_rows(conn: &mut DbConnection, ids: &[i64]) -> Result<()> {
    diesel::delete(artifacts::table.filter(artifacts::model_id.eq_any(ids))).execute(conn)?;
    diesel::delete(
        t::table
            .filter(t::target_kind.eq(RecordKind::Model.as_column()))
            .filter(t::target_id.eq_any(ids)),
    )
    .execute(conn)?;
    diesel::delete(sc::table.filter(sc::model_id.eq_any(ids))).execute(conn)?;
    diesel::delete(
        crate::db::schema::epoch_batches::table
            .filter(crate::db::schema::epoch_batches::model_id.eq_any(ids)),
    )
    .execute(conn)?;
    diesel::delete(ms::table.filter(ms::model_id.eq_any(ids))).execute(conn)?;
    diesel::delete(
        crate::db::schema::metric_latest::table
            .filter(crate::db::schema::metric_latest::model_id.eq_any(ids)),
    )
    .execute(conn)?;
    diesel::delete(
        crate::db::schema::metric_latest_pending::table
            .filter(crate::db::schema::metric_latest_pending::model_id.eq_any(ids)),
    )
    .execute(conn)?;
    super::filter::index::remove(conn, super::filter::index::Owner::Model, ids)?;
    Ok(())
}
