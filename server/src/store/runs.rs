//! Run lifecycle: a model's status (`models.status` and its times), its
//! transitions (the `status_changes` table) and the sweep that marks silent
//! runs CRASHED.
//!
//! Every time here is the database's clock, read in the transaction that
//! uses it, so that replicas with skewed clocks agree. Transitions are
//! compare-and-set updates (`WHERE status = <the status read>`): two
//! replicas racing on one model apply each transition once, and the loser
//! re-reads and decides again (an idempotent repeat, or an error).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use super::models::{self, ModelRow};
use super::records::{
    ModelDetail, RUN_CONTEXT_TAGS, RecordKind, RunStatus, StartRun, StatusChange, TagUpdate,
};
use super::tags::{self, Origin};
use super::{metric_report, on_backend};
use crate::db::DbConnection;
use crate::db::schema::{models as m, status_changes as sc};
use crate::error::{Error, Result};

/// SQL for the database's current time in microseconds since the Unix
/// epoch, per backend.
const SQLITE_NOW: &str = "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)";
const POSTGRES_NOW: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT";

/// How often a transition re-reads a model whose status another writer
/// changed under it before giving up (each retry sees a newer status, and
/// there are only a few transitions a status can take).
const TRANSITION_ATTEMPTS: usize = 8;

/// Models a sweep marks CRASHED per transaction: bounds the time one sweep
/// holds the write lock.
pub(super) const SWEEP_BATCH: i64 = 1_000;

/// The database's current time, microseconds since the Unix epoch.
pub(super) fn db_now(conn: &mut DbConnection) -> Result<i64> {
    Ok(match conn {
        DbConnection::Sqlite(c) => diesel::select(diesel::dsl::sql::<BigInt>(SQLITE_NOW)).get_result(c)?,
        DbConnection::Postgres(c) => {
            diesel::select(diesel::dsl::sql::<BigInt>(POSTGRES_NOW)).get_result(c)?
        }
    })
}

/// The columns a transition sets; `None` leaves a column alone.
#[derive(AsChangeset, Default)]
#[diesel(table_name = m)]
struct RunUpdate {
    status: Option<&'static str>,
    started_at: Option<Option<i64>>,
    ended_at: Option<Option<i64>>,
    last_heartbeat_at: Option<Option<i64>>,
    heartbeat_timeout_secs: Option<Option<i64>>,
    run_context: Option<Option<String>>,
}

#[derive(Insertable)]
#[diesel(table_name = sc)]
struct NewStatusChange<'a> {
    model_id: i64,
    changed_at: i64,
    from_status: &'a str,
    to_status: &'a str,
    cause: &'a str,
}

/// What an operation does to a run in a given status.
struct Step {
    update: RunUpdate,
    /// The new status and the cause, when the status changes.
    change: Option<(RunStatus, &'static str)>,
    /// System tags to set and unset with the change.
    system_tags: Option<TagUpdate>,
}

/// Starts the run of model `name`: CREATED → RUNNING (records `started_at`,
/// the timeout and the context), CRASHED → RUNNING (a restarted trainer;
/// `started_at` stays, timeout and context are the new ones), RUNNING: a
/// repeat, which only counts as a heartbeat. An ended run cannot start again.
pub fn start(conn: &mut DbConnection, project_id: i64, start: &StartRun) -> Result<ModelDetail> {
    transition(conn, project_id, &start.model_name, |status, now| match status {
        RunStatus::Created | RunStatus::Crashed => Ok(Step {
            update: RunUpdate {
                status: Some(RunStatus::Running.as_column()),
                started_at: (status == RunStatus::Created).then_some(Some(now)),
                last_heartbeat_at: Some(Some(now)),
                heartbeat_timeout_secs: Some(start.heartbeat_timeout_secs),
                run_context: Some(Some(start.run_context.clone())),
                ..RunUpdate::default()
            },
            change: Some((
                RunStatus::Running,
                if status == RunStatus::Created {
                    "start"
                } else {
                    "start after crash"
                },
            )),
            // A restart may come from another host: no tag of the old
            // context may survive beside the new one.
            system_tags: Some(TagUpdate {
                set: start.context_tags.clone(),
                unset: RUN_CONTEXT_TAGS
                    .iter()
                    .filter(|key| !start.context_tags.contains_key(**key))
                    .map(|key| (*key).to_owned())
                    .collect(),
            }),
        }),
        RunStatus::Running => Ok(heartbeat_only(now)),
        ended => Err(Error::FailedPrecondition(format!(
            "model_name: the run of model {:?} ended {}; an ended run cannot be started again (put a new model for a new run)",
            start.model_name,
            ended.as_column()
        ))),
    })
}

/// A heartbeat of model `name`'s run: RUNNING refreshes
/// `last_heartbeat_at`, CRASHED becomes RUNNING again. A run that was
/// never started or has ended has no heartbeat.
pub fn heartbeat(conn: &mut DbConnection, project_id: i64, name: &str) -> Result<ModelDetail> {
    transition(conn, project_id, name, |status, now| match status {
        RunStatus::Running => Ok(heartbeat_only(now)),
        RunStatus::Crashed => Ok(Step {
            update: RunUpdate {
                status: Some(RunStatus::Running.as_column()),
                last_heartbeat_at: Some(Some(now)),
                ..RunUpdate::default()
            },
            change: Some((RunStatus::Running, "heartbeat after crash")),
            system_tags: None,
        }),
        RunStatus::Created => Err(Error::FailedPrecondition(format!(
            "model_name: the run of model {name:?} was never started (status CREATED): call StartRun first"
        ))),
        ended => Err(Error::FailedPrecondition(format!(
            "model_name: the run of model {name:?} ended {}; an ended run takes no heartbeats",
            ended.as_column()
        ))),
    })
}

/// Ends model `name`'s run with `end` (FINISHED, FAILED or KILLED),
/// recording `ended_at`; from any status that has not ended. Ending it
/// again with the same status is a repeat; with another one it is
/// FAILED_PRECONDITION naming both.
pub fn end(conn: &mut DbConnection, project_id: i64, name: &str, end: RunStatus) -> Result<ModelDetail> {
    transition(conn, project_id, name, |status, now| match status {
        same if same == end => Ok(Step {
            update: RunUpdate::default(),
            change: None,
            system_tags: None,
        }),
        ended if ended.is_ended() => Err(Error::FailedPrecondition(format!(
            "status: the run of model {name:?} already ended {}, it cannot end {} as well",
            ended.as_column(),
            end.as_column()
        ))),
        _ => Ok(Step {
            update: RunUpdate {
                status: Some(end.as_column()),
                ended_at: Some(Some(now)),
                ..RunUpdate::default()
            },
            change: Some((end, "end")),
            system_tags: None,
        }),
    })
}

/// The model `name` with its status history; NOT_FOUND when it does not
/// exist.
pub fn get(conn: &mut DbConnection, project_id: i64, name: &str) -> Result<ModelDetail> {
    let row = find(conn, project_id, name)?;
    let model_id = row.id;
    let mut detail = detail(conn, row)?;
    detail.metrics = metric_report::of_model(conn, model_id)?;
    Ok(detail)
}

fn heartbeat_only(now: i64) -> Step {
    Step {
        update: RunUpdate {
            last_heartbeat_at: Some(Some(now)),
            ..RunUpdate::default()
        },
        change: None,
        system_tags: None,
    }
}

fn find(conn: &mut DbConnection, project_id: i64, name: &str) -> Result<ModelRow> {
    m::table
        .filter(m::project_id.eq(project_id))
        .filter(m::name.eq(name))
        .select(ModelRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("model_name: model {name:?} does not exist")))
}

fn status_of(row: &ModelRow) -> Result<RunStatus> {
    RunStatus::from_column(&row.status).ok_or_else(|| {
        Error::Corrupt(format!(
            "model {:?} has unknown status {:?}",
            row.name, row.status
        ))
    })
}

/// Applies `decide`'s step to the model's current status as a
/// compare-and-set, re-reading when another writer changed it meanwhile.
fn transition(
    conn: &mut DbConnection,
    project_id: i64,
    name: &str,
    decide: impl Fn(RunStatus, i64) -> Result<Step>,
) -> Result<ModelDetail> {
    for _ in 0..TRANSITION_ATTEMPTS {
        let row = find(conn, project_id, name)?;
        if row.deleted_at.is_some() {
            return Err(super::deletion::is_deleted("model_name", "model", name));
        }
        let status = status_of(&row)?;
        let now = db_now(conn)?;
        let step = decide(status, now)?;
        if step.change.is_none() && step.update.is_empty() {
            return detail(conn, row);
        }
        let updated = diesel::update(m::table)
            .filter(m::id.eq(row.id))
            .filter(m::status.eq(status.as_column()))
            .filter(m::deleted_at.is_null())
            .set(&step.update)
            .execute(conn)?;
        if updated == 0 {
            continue;
        }
        if let Some((to, cause)) = step.change {
            record_changes(conn, &[row.id], now, status, to, cause)?;
        }
        if let Some(change) = &step.system_tags {
            tags::update(
                conn,
                project_id,
                RecordKind::Model,
                row.id,
                change,
                Origin::System,
            )?;
        }
        let row = find(conn, project_id, name)?;
        return detail(conn, row);
    }
    Err(Error::Unavailable(format!(
        "the status of model {name:?} kept changing under concurrent updates; retry"
    )))
}

impl RunUpdate {
    fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.started_at.is_none()
            && self.ended_at.is_none()
            && self.last_heartbeat_at.is_none()
            && self.heartbeat_timeout_secs.is_none()
            && self.run_context.is_none()
    }
}

/// Appends one status change per model of `model_ids`.
pub(super) fn record_changes(
    conn: &mut DbConnection,
    model_ids: &[i64],
    changed_at: i64,
    from: RunStatus,
    to: RunStatus,
    cause: &str,
) -> Result<()> {
    let rows: Vec<NewStatusChange<'_>> = model_ids
        .iter()
        .map(|&model_id| NewStatusChange {
            model_id,
            changed_at,
            from_status: from.as_column(),
            to_status: to.as_column(),
            cause,
        })
        .collect();
    for chunk in rows.chunks(super::MAX_BINDS_PER_LIST / 5) {
        on_backend!(conn, |c| diesel::insert_into(sc::table).values(chunk).execute(c))?;
    }
    Ok(())
}

fn detail(conn: &mut DbConnection, row: ModelRow) -> Result<ModelDetail> {
    let model_id = row.id;
    let model = models::with_components(conn, vec![row])?
        .pop()
        .map(|(model, _, _)| model)
        .ok_or_else(|| Error::Corrupt(format!("model {model_id} vanished")))?;
    let rows: Vec<(i64, String, String, String)> = sc::table
        .filter(sc::model_id.eq(model_id))
        .order(sc::id.asc())
        .select((sc::changed_at, sc::from_status, sc::to_status, sc::cause))
        .load(conn)?;
    let status_changes = rows
        .into_iter()
        .map(|(changed_at, from, to, cause)| {
            let status = |s: &str| {
                RunStatus::from_column(s)
                    .ok_or_else(|| Error::Corrupt(format!("status change of model {model_id} names {s:?}")))
            };
            Ok(StatusChange {
                changed_at,
                from: status(&from)?,
                to: status(&to)?,
                cause,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(ModelDetail {
        model,
        status_changes,
        artifacts: Vec::new(),
        metrics: Vec::new(),
    })
}

/// One sweep batch: marks CRASHED at most [`SWEEP_BATCH`] RUNNING models
/// whose last heartbeat is older than their timeout (their own, else
/// `default_timeout_secs`), returning how many it marked.
///
/// The candidates come from the `(status, last_heartbeat_at)` index,
/// bounded by the shortest timeout a run can have (1 s); the update checks
/// the condition again on each row it changes, so that a sweep racing with
/// another replica's sweep, or with a heartbeat, marks each crash once and
/// never a model that just heard from its trainer.
pub fn sweep_batch(conn: &mut DbConnection, default_timeout_secs: i64) -> Result<usize> {
    let now = db_now(conn)?;
    let default_micros = default_timeout_secs.saturating_mul(1_000_000);
    let stale = || {
        diesel::dsl::sql::<Bool>("models.last_heartbeat_at < ")
            .bind::<BigInt, _>(now)
            .sql(" - COALESCE(models.heartbeat_timeout_secs * 1000000, ")
            .bind::<BigInt, _>(default_micros)
            .sql(")")
    };
    let running = RunStatus::Running.as_column();
    // Deleted models are frozen: a restore brings them back as they were,
    // and a silent RUNNING one is marked CRASHED after that.
    let candidates: Vec<i64> = m::table
        .filter(m::status.eq(running))
        .filter(m::deleted_at.is_null())
        .filter(m::last_heartbeat_at.lt(now - MIN_TIMEOUT_MICROS))
        .filter(stale())
        .order(m::last_heartbeat_at.asc())
        .limit(SWEEP_BATCH)
        .select(m::id)
        .load(conn)?;
    if candidates.is_empty() {
        return Ok(0);
    }
    let crashed = RunStatus::Crashed.as_column();
    let mut marked: Vec<i64> = on_backend!(conn, |c| diesel::update(m::table)
        .filter(m::id.eq_any(&candidates))
        .filter(m::status.eq(running))
        .filter(m::deleted_at.is_null())
        .filter(stale())
        .set(m::status.eq(crashed))
        .returning(m::id)
        .get_results(c))?;
    marked.sort_unstable();
    record_changes(
        conn,
        &marked,
        now,
        RunStatus::Running,
        RunStatus::Crashed,
        "heartbeat timeout",
    )?;
    Ok(marked.len())
}

/// The shortest heartbeat timeout a run can have, in microseconds: every
/// stale run's last heartbeat is at least this old, which bounds the index
/// range a sweep reads.
const MIN_TIMEOUT_MICROS: i64 = 1_000_000;
