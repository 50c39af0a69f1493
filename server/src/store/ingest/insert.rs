//! The insert orchestration: resolves model names to ids, stores the new
//! epochs (skipping stored (model, epoch_num) pairs), touches the models
//! (their heartbeat) and folds the epochs into the summaries, all in the
//! group commit's transaction. Reports what it stored, for the commit hook.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;

use super::hook::{Committed, CommittedModel};
use super::model_ids::{ModelIds, Resolution, live_ids};
use super::prepared::{
    EpochArrays, EpochRow, PgInsertEpochs, PgLockModels, PgStoreEpochs, PgTouchImported, PgTouchModels,
    SqliteInsertBatch, SqliteInsertEpoch, SqliteReviveModel, SqliteTouchImported, SqliteTouchModel,
};
use super::summaries;
use crate::db::DbConnection;
use crate::db::schema::epochs;
use crate::error::{Error, Result};
use crate::security::ProjectScope;
use crate::store::metrics_codec;
use crate::store::projects::ProjectIds;
use crate::store::records::{Epoch, InsertCounts, NewEpoch, now_micros};

/// Rows per INSERT on PostgreSQL (arrays, so no parameter limit; this only
/// bounds the size of one statement).
const POSTGRES_ROWS_PER_INSERT: usize = 20_000;

/// What one transaction's insert did: each request's outcome, and what
/// it stored (for the commit hook, once the transaction committed).
pub(super) struct Inserted {
    pub outcomes: Vec<Result<InsertCounts>>,
    pub committed: Committed,
}

/// An epoch of one of the requests, with its model resolved.
#[derive(Clone, Copy)]
pub(super) struct Resolved<'a> {
    pub model_id: i64,
    pub epoch: &'a NewEpoch,
    /// Index of the request it came from.
    pub request: usize,
}

/// Inserts the epochs of several requests in the caller's transaction
/// (group commit). Each request gets its own outcome: one naming an unknown
/// model is rejected whole and leaves the others alone. Stored
/// (model, epoch_num) pairs, repeats within a request and epochs an earlier
/// request of the batch already carries are skipped and counted.
///
/// With [`Plan::OneStatement`] (PostgreSQL only) `conn` is not in a
/// transaction and every write is one self-committing statement;
/// otherwise the caller's transaction holds them all.
///
/// An `Err` means the transaction must roll back (and that the one
/// statement wrote nothing).
pub(super) fn insert(
    conn: &mut DbConnection,
    project_ids: &ProjectIds,
    model_ids: &ModelIds,
    requests: &[(&ProjectScope, &[NewEpoch])],
    plan: Plan,
    capture: Capture,
) -> Result<Inserted> {
    // Usually one project (or a few) per batch: one lookup of model ids each.
    let mut projects: Vec<&ProjectScope> = requests.iter().map(|(project, _)| *project).collect();
    projects.sort_unstable();
    projects.dedup();
    let mut ids: HashMap<&ProjectScope, Resolution> = HashMap::with_capacity(projects.len());
    for project in projects {
        let Some(project_id) = project_ids.find(conn, project)? else {
            ids.insert(project, Resolution::default());
            continue;
        };
        let mut names: Vec<&str> = requests
            .iter()
            .filter(|(p, _)| *p == project)
            .flat_map(|(_, epochs)| epochs.iter().map(|epoch| epoch.model_name.as_str()))
            .collect();
        names.sort_unstable();
        names.dedup();
        ids.insert(project, model_ids.get(conn, project_id, &names)?);
    }

    let mut outcomes = Vec::with_capacity(requests.len());
    let mut candidates = Vec::with_capacity(requests.iter().map(|(_, epochs)| epochs.len()).sum());
    let no_models = Resolution::default();
    for (request, (project, epochs)) in requests.iter().enumerate() {
        let known = ids.get(project).unwrap_or(&no_models);
        outcomes.push(
            resolve(known, project, request, epochs, &mut candidates).map(|()| InsertCounts {
                inserted: 0,
                skipped: epochs.len() as u64,
            }),
        );
    }
    // Sorted by key, so concurrent PostgreSQL writers take row locks in one
    // order (no deadlocks); the stable sort keeps the first of repeats,
    // which is the earliest request's.
    candidates.sort_by_key(|c| (c.model_id, c.epoch.epoch_num));
    candidates.dedup_by_key(|c| (c.model_id, c.epoch.epoch_num));

    let now = now_micros();
    if let (Plan::OneStatement, DbConnection::Postgres(c)) = (plan, &mut *conn) {
        let (inserted, touched) = store_postgres_one_statement(c, model_ids, &candidates, now)?;
        return Ok(finish(requests, outcomes, &inserted, &touched, capture, now));
    }
    let inserted = match conn {
        DbConnection::Sqlite(c) => insert_new_sqlite(c, &candidates, now)?,
        DbConnection::Postgres(c) => insert_new_postgres(c, &candidates, now)?,
    };
    // The touch checks the model ids before the summaries refer to them
    // (a stale id would otherwise fail their foreign key).
    let touched_models = touch_models(conn, model_ids, &inserted, now)?;
    summaries::record(conn, &inserted)?;
    // Models that got no new epoch (all skipped) were not touched: check
    // them here (rare: retries), so that a stale id never passes.
    let touched: HashSet<i64> = inserted.iter().map(|c| c.model_id).collect();
    // (Imported epochs may go to deleted models: those only need to exist.)
    for imported in [false, true] {
        let mut untouched: Vec<i64> = candidates
            .iter()
            .filter(|c| c.epoch.recorded_at.is_some() == imported)
            .map(|c| c.model_id)
            .filter(|id| !touched.contains(id))
            .collect();
        untouched.dedup();
        if !untouched.is_empty() {
            let live = live_ids(conn, &untouched, imported)?;
            let stale: HashSet<i64> = untouched.into_iter().filter(|id| !live.contains(id)).collect();
            if !stale.is_empty() {
                return Err(stale_ids(model_ids, stale));
            }
        }
    }
    Ok(finish(
        requests,
        outcomes,
        &inserted,
        &touched_models,
        capture,
        now,
    ))
}

/// A model the insert touched: its new `epoch_seq`, and whether its
/// CRASHED run is RUNNING again.
#[derive(Debug, Clone, Copy)]
pub(super) struct TouchedModel {
    pub seq: i64,
    pub revived: bool,
}

/// The models an insert touched, by id.
type TouchedModels = HashMap<i64, TouchedModel>;

/// Whether the commit hook gets a copy of the stored epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Capture {
    /// Only which epochs were stored.
    Keys,
    /// The epochs too ([`CommittedModel::epochs`]).
    Epochs,
}

/// How the writes of one [`insert`] reach PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Several statements in the caller's transaction (SQLite always;
    /// PostgreSQL for large batches, which COPY stores fastest).
    Transaction,
    /// PostgreSQL: one self-committing statement ([`PgStoreEpochs`]).
    OneStatement,
}

/// Batches of at most this many epochs in all take [`Plan::OneStatement`]
/// on PostgreSQL; larger ones the transaction. The one statement saves
/// five round trips, which is most of a small write, but it holds the
/// model locks from its start (the transaction takes them after its
/// inserts) and aggregates in SQL: in an alternating A/B with 64 writers,
/// whose batches hold dozens of epochs, it cost 10-15% of throughput.
pub(super) const ONE_STATEMENT_MAX_EPOCHS: usize = 8;

/// The outcome of each request (whose counts start as "all skipped") once
/// `inserted` are stored, and what the commit hook is told.
fn finish(
    requests: &[(&ProjectScope, &[NewEpoch])],
    mut outcomes: Vec<Result<InsertCounts>>,
    inserted: &[Resolved<'_>],
    touched: &TouchedModels,
    capture: Capture,
    recorded_at: i64,
) -> Inserted {
    for candidate in inserted {
        if let Some(Ok(counts)) = outcomes.get_mut(candidate.request) {
            counts.inserted += 1;
            counts.skipped -= 1;
        }
    }
    Inserted {
        outcomes,
        committed: committed(requests, inserted, touched, capture, recorded_at),
    }
}

/// What [`PgStoreEpochs`] answers.
#[derive(Queryable)]
struct StoredEpochs {
    all_live: bool,
    locked_ids: Vec<i64>,
    model_ids: Vec<i64>,
    epoch_nums: Vec<i64>,
    touched_ids: Vec<i64>,
    touched_seqs: Vec<i64>,
    touched_revived: Vec<bool>,
}

/// PostgreSQL: stores the new candidates, folds them into the summaries
/// and touches their models in one statement (see [`PgStoreEpochs`]);
/// returns the candidates stored and the models touched. A model that is
/// no longer live fails it whole, writing nothing, with the conflict that
/// makes the writer retry after fresh lookups.
fn store_postgres_one_statement<'a>(
    conn: &mut PgConnection,
    model_ids: &ModelIds,
    candidates: &[Resolved<'a>],
    now: i64,
) -> Result<(Vec<Resolved<'a>>, TouchedModels)> {
    if candidates.is_empty() {
        return Ok((Vec::new(), TouchedModels::new()));
    }
    let mut ids: Vec<i64> = candidates.iter().map(|c| c.model_id).collect();
    ids.dedup();
    let rows: Vec<EpochRow> = candidates.iter().map(|c| row(c, now)).collect();
    let columns = EpochColumns::of(&rows);
    let values = candidates.iter().map(|c| c.epoch.metrics.len()).sum();
    let (mut value_model_ids, mut value_epoch_nums) =
        (Vec::with_capacity(values), Vec::with_capacity(values));
    let (mut value_names, mut value_values) = (Vec::with_capacity(values), Vec::with_capacity(values));
    for candidate in candidates {
        for (name, &value) in &candidate.epoch.metrics {
            value_model_ids.push(candidate.model_id);
            value_epoch_nums.push(candidate.epoch.epoch_num);
            value_names.push(name.as_str());
            value_values.push(value);
        }
    }
    let stored: StoredEpochs = PgStoreEpochs {
        model_ids: &ids,
        epochs: columns.arrays(),
        value_model_ids: &value_model_ids,
        value_epoch_nums: &value_epoch_nums,
        value_names: &value_names,
        values: &value_values,
        now,
    }
    .get_result(conn)?;
    if !stored.all_live {
        let locked: HashSet<i64> = stored.locked_ids.into_iter().collect();
        let stale = ids.into_iter().filter(|id| !locked.contains(id)).collect();
        return Err(stale_ids(model_ids, stale));
    }
    let keys: HashSet<(i64, i64)> = stored.model_ids.into_iter().zip(stored.epoch_nums).collect();
    let inserted = candidates
        .iter()
        .filter(|c| keys.contains(&(c.model_id, c.epoch.epoch_num)))
        .copied()
        .collect();
    let touched = stored
        .touched_ids
        .into_iter()
        .zip(stored.touched_seqs)
        .zip(stored.touched_revived)
        .map(|((id, seq), revived)| (id, TouchedModel { seq, revived }))
        .collect();
    Ok((inserted, touched))
}

/// What `inserted` (in key order) stores, per model, with what `touched`
/// says of each model (stored with `recorded_at`).
fn committed(
    requests: &[(&ProjectScope, &[NewEpoch])],
    inserted: &[Resolved<'_>],
    touched: &TouchedModels,
    capture: Capture,
    recorded_at: i64,
) -> Committed {
    let mut models: Vec<CommittedModel> = Vec::new();
    for group in inserted.chunk_by(|a, b| a.model_id == b.model_id) {
        let first = &group[0];
        let (Some((project, _)), Some(model)) = (requests.get(first.request), touched.get(&first.model_id))
        else {
            continue;
        };
        let epoch_nums: Vec<i64> = group.iter().map(|c| c.epoch.epoch_num).collect();
        let epochs = (capture == Capture::Epochs).then(|| {
            group
                .iter()
                .map(|c| Epoch {
                    model_name: c.epoch.model_name.clone(),
                    epoch_num: c.epoch.epoch_num,
                    metrics: c.epoch.metrics.clone(),
                    steps_per_epoch: c.epoch.steps_per_epoch,
                    validation_steps_per_epoch: c.epoch.validation_steps_per_epoch,
                    recorded_at: c.epoch.recorded_at.unwrap_or(recorded_at),
                })
                .collect()
        });
        models.push(CommittedModel {
            project: (*project).clone(),
            model_id: first.model_id,
            model_name: first.epoch.model_name.clone(),
            max_epoch_num: epoch_nums.iter().copied().max().unwrap_or_default(),
            epoch_nums,
            revived: model.revived,
            seq: model.seq,
            epochs,
        });
    }
    Committed { models }
}

/// Appends the epochs of one request to `candidates`, or none of them if
/// one names a model that does not exist.
fn resolve<'a>(
    ids: &Resolution,
    project: &ProjectScope,
    request: usize,
    epochs: &'a [NewEpoch],
    candidates: &mut Vec<Resolved<'a>>,
) -> Result<()> {
    let first = candidates.len();
    for (index, epoch) in epochs.iter().enumerate() {
        // An import stores the epochs of deleted models (exported deleted).
        let found = ids
            .live
            .get(&epoch.model_name)
            .or_else(|| epoch.recorded_at.and_then(|_| ids.deleted.get(&epoch.model_name)));
        let Some(&model_id) = found else {
            candidates.truncate(first);
            if ids.deleted.contains_key(&epoch.model_name) {
                return Err(Error::FailedPrecondition(format!(
                    "epochs[{index}].model_name: model {:?} is deleted; restore it first (nothing from this request was stored)",
                    epoch.model_name
                )));
            }
            return Err(Error::NotFound(format!(
                "epochs[{index}].model_name: model {:?} does not exist in project {:?}; put the model first (nothing from this request was stored)",
                epoch.model_name,
                project.name()
            )));
        };
        candidates.push(Resolved {
            model_id,
            epoch,
            request,
        });
    }
    Ok(())
}

fn row(candidate: &Resolved<'_>, now: i64) -> EpochRow {
    EpochRow {
        model_id: candidate.model_id,
        epoch_num: candidate.epoch.epoch_num,
        metrics: metrics_codec::encode(&candidate.epoch.metrics),
        steps_per_epoch: candidate.epoch.steps_per_epoch,
        validation_steps_per_epoch: candidate.epoch.validation_steps_per_epoch,
        recorded_at: candidate.epoch.recorded_at.unwrap_or(now),
    }
}

/// SQLite: the transaction holds the write lock, so the epochs already
/// stored cannot change between looking them up and inserting the rest.
fn insert_new_sqlite<'a>(
    conn: &mut SqliteConnection,
    candidates: &[Resolved<'a>],
    now: i64,
) -> Result<Vec<Resolved<'a>>> {
    let mut fresh = Vec::with_capacity(candidates.len());
    for group in candidates.chunk_by(|a, b| a.model_id == b.model_id) {
        let (first, last) = (group[0].epoch.epoch_num, group[group.len() - 1].epoch.epoch_num);
        let stored: HashSet<i64> = epochs::table
            .filter(epochs::model_id.eq(group[0].model_id))
            .filter(epochs::epoch_num.between(first, last))
            .select(epochs::epoch_num)
            .load::<i64>(conn)?
            .into_iter()
            .collect();
        for candidate in group.iter().filter(|c| !stored.contains(&c.epoch.epoch_num)) {
            SqliteInsertEpoch(&row(candidate, now)).execute(conn)?;
            fresh.push(*candidate);
        }
    }
    Ok(fresh)
}

#[derive(Queryable)]
struct InsertedKey {
    model_id: i64,
    epoch_num: i64,
}

/// PostgreSQL: one `INSERT … SELECT FROM unnest(arrays)` per chunk (far
/// faster than a VALUES list), `ON CONFLICT DO NOTHING` so that writers
/// racing on the same epochs skip instead of failing, and `RETURNING` to
/// learn exactly which rows this transaction stored.
/// Fewest new epochs for which COPY (three round trips with its savepoint)
/// beats one `INSERT … ON CONFLICT`: with COPY for every batch, a trainer
/// sending one epoch per call waited 965 µs at p50 instead of 751 µs.
const POSTGRES_MIN_COPY_ROWS: usize = 256;

/// PostgreSQL: stores the candidates that are new, returning them.
///
/// Most large batches hold only new epochs, and a binary COPY stores those
/// for far less than `INSERT … ON CONFLICT DO NOTHING`, whose speculative
/// insertion costs about 1 ms per 1,000 rows. So for large batches COPY is
/// tried first, in a savepoint: a stored (model, epoch_num) pair, or one a concurrent writer
/// commits meanwhile, fails it with a unique violation, and then the
/// savepoint is rolled back and the conflict-aware insert sorts the rows
/// out. The models are locked first, in id order, as by every epoch
/// writer, and the rows go in key order, so concurrent writers lock in one
/// order.
fn insert_new_postgres<'a>(
    conn: &mut PgConnection,
    candidates: &[Resolved<'a>],
    now: i64,
) -> Result<Vec<Resolved<'a>>> {
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<i64> = candidates.iter().map(|c| c.model_id).collect();
    ids.dedup();
    PgLockModels { ids: &ids }.execute(conn)?;
    let rows: Vec<EpochRow> = candidates.iter().map(|c| row(c, now)).collect();
    if rows.len() < POSTGRES_MIN_COPY_ROWS {
        return insert_new_postgres_skipping_stored(conn, candidates, &rows);
    }
    let copied = conn.transaction(|c| diesel::copy_from(epochs::table).from_insertable(&rows).execute(c));
    match copied {
        Ok(_) => Ok(candidates.to_vec()),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            insert_new_postgres_skipping_stored(conn, candidates, &rows)
        }
        Err(error) => Err(error.into()),
    }
}

/// The columns of epoch rows, for statements that bind each as an array.
struct EpochColumns<'r> {
    model_ids: Vec<i64>,
    epoch_nums: Vec<i64>,
    metrics: Vec<&'r [u8]>,
    steps_per_epoch: Vec<Option<i64>>,
    validation_steps_per_epoch: Vec<Option<i64>>,
}

impl<'r> EpochColumns<'r> {
    fn of(rows: &'r [EpochRow]) -> Self {
        Self {
            model_ids: rows.iter().map(|r| r.model_id).collect(),
            epoch_nums: rows.iter().map(|r| r.epoch_num).collect(),
            metrics: rows.iter().map(|r| r.metrics.as_slice()).collect(),
            steps_per_epoch: rows.iter().map(|r| r.steps_per_epoch).collect(),
            validation_steps_per_epoch: rows.iter().map(|r| r.validation_steps_per_epoch).collect(),
        }
    }

    fn arrays(&self) -> EpochArrays<'_> {
        EpochArrays {
            model_ids: &self.model_ids,
            epoch_nums: &self.epoch_nums,
            metrics: &self.metrics,
            steps_per_epoch: &self.steps_per_epoch,
            validation_steps_per_epoch: &self.validation_steps_per_epoch,
        }
    }
}

/// `INSERT … ON CONFLICT DO NOTHING` of `rows` (the encoded `candidates`),
/// returning the candidates that were new.
fn insert_new_postgres_skipping_stored<'a>(
    conn: &mut PgConnection,
    candidates: &[Resolved<'a>],
    rows: &[EpochRow],
) -> Result<Vec<Resolved<'a>>> {
    let mut fresh = Vec::with_capacity(candidates.len());
    for (chunk, chunk_rows) in candidates
        .chunks(POSTGRES_ROWS_PER_INSERT)
        .zip(rows.chunks(POSTGRES_ROWS_PER_INSERT))
    {
        let columns = EpochColumns::of(chunk_rows);
        let recorded_at: Vec<i64> = chunk_rows.iter().map(|row| row.recorded_at).collect();
        let keys: Vec<InsertedKey> = PgInsertEpochs {
            epochs: columns.arrays(),
            recorded_at: &recorded_at,
        }
        .load(conn)?;
        let stored: HashSet<(i64, i64)> = keys.into_iter().map(|k| (k.model_id, k.epoch_num)).collect();
        fresh.extend(
            chunk
                .iter()
                .filter(|c| stored.contains(&(c.model_id, c.epoch.epoch_num)))
                .copied(),
        );
    }
    Ok(fresh)
}

/// Moves `last_modified_at` of the models that received epochs, in id
/// order (a fixed lock order for PostgreSQL), and counts the epochs as
/// their runs' heartbeat (a CRASHED run becomes RUNNING again, recorded in
/// `status_changes`). On SQLite two cached statements per model (a few
/// microseconds in-process), on PostgreSQL one statement for all (each
/// statement is a round trip to the server).
///
/// Only live models are touched, and the count of rows touched checks the
/// ids (from the cache, see `ModelIds`): a model deleted or purged
/// meanwhile fails the transaction with a conflict, after its cache entry
/// is dropped, and the writer retries it with fresh lookups.
///
/// Models that got only imported epochs (`NewEpoch::recorded_at`) are
/// counted apart (`PgTouchImported`, `SqliteTouchImported`): their epoch
/// counts move, their runs are left alone. That statement runs only when a
/// batch holds imported epochs.
///
/// Returns the models touched, with their new `epoch_seq` and whether
/// their run was CRASHED and is RUNNING again.
fn touch_models(
    conn: &mut DbConnection,
    model_ids: &ModelIds,
    inserted: &[Resolved<'_>],
    now: i64,
) -> Result<TouchedModels> {
    let (batch, imported) = per_model(inserted);
    let mut touched = TouchedModels::with_capacity(batch.ids.len() + imported.ids.len());
    if !batch.ids.is_empty() {
        touch(conn, &batch, Some(now), &mut touched)?;
    }
    if !imported.ids.is_empty() {
        touch(conn, &imported, None, &mut touched)?;
    }
    if touched.len() != batch.ids.len() + imported.ids.len() {
        let stale = batch
            .ids
            .into_iter()
            .chain(imported.ids)
            .filter(|id| !touched.contains_key(id))
            .collect();
        return Err(stale_ids(model_ids, stale));
    }
    Ok(touched)
}

/// Touches the models of `batch`: with `live` (the time now) as live
/// epochs' models, otherwise as imported epochs' models (see
/// [`touch_models`]).
fn touch(
    conn: &mut DbConnection,
    batch: &Touched,
    live: Option<i64>,
    touched: &mut TouchedModels,
) -> Result<()> {
    match conn {
        DbConnection::Postgres(c) => {
            let rows: Vec<(i64, bool, i64)> = match live {
                Some(now) => PgTouchModels {
                    ids: &batch.ids,
                    counts: &batch.counts,
                    max_epoch_nums: &batch.max_epoch_nums,
                    epoch_lists: &batch.epoch_lists,
                    now,
                }
                .load(c)?,
                None => PgTouchImported {
                    ids: &batch.ids,
                    counts: &batch.counts,
                    max_epoch_nums: &batch.max_epoch_nums,
                    epoch_lists: &batch.epoch_lists,
                }
                .load(c)?,
            };
            for (id, revived, seq) in rows {
                touched.insert(id, TouchedModel { seq, revived });
            }
        }
        DbConnection::Sqlite(c) => {
            for (((id, count), max_epoch_num), epoch_nums) in batch
                .ids
                .iter()
                .zip(&batch.counts)
                .zip(&batch.max_epoch_nums)
                .zip(&batch.epoch_lists)
            {
                let (revived, seq): (bool, Option<i64>) = match &live {
                    Some(now) => (
                        (SqliteReviveModel { id }).execute(c)? == 1,
                        SqliteTouchModel {
                            id,
                            now,
                            count,
                            max_epoch_num,
                        }
                        .get_result(c)
                        .optional()?,
                    ),
                    None => (
                        false,
                        SqliteTouchImported {
                            id,
                            count,
                            max_epoch_num,
                        }
                        .get_result(c)
                        .optional()?,
                    ),
                };
                if let Some(seq) = seq {
                    SqliteInsertBatch { id, epoch_nums }.execute(c)?;
                    touched.insert(*id, TouchedModel { seq, revived });
                }
            }
        }
    }
    Ok(())
}

/// The models that received epochs, in id order, with how many each got
/// and its highest new epoch_num (parallel columns, as the PostgreSQL
/// statement binds them).
#[derive(Default)]
struct Touched {
    ids: Vec<i64>,
    counts: Vec<i64>,
    max_epoch_nums: Vec<i64>,
    /// Per model: the epoch_nums inserted, ascending, comma-separated.
    epoch_lists: Vec<String>,
}

/// The models of `inserted` (in key order): those that got a live epoch,
/// and those that got imported epochs only.
fn per_model(inserted: &[Resolved<'_>]) -> (Touched, Touched) {
    let (mut live, mut imported) = (Touched::default(), Touched::default());
    for group in inserted.chunk_by(|a, b| a.model_id == b.model_id) {
        if group.iter().all(|c| c.epoch.recorded_at.is_some()) {
            imported.add(group);
        } else {
            live.add(group);
        }
    }
    (live, imported)
}

impl Touched {
    /// Adds a model's inserted epochs (in epoch order).
    fn add(&mut self, group: &[Resolved<'_>]) {
        let touched = self;
        for candidate in group {
            let epoch_num = candidate.epoch.epoch_num;
            if touched.ids.last() == Some(&candidate.model_id) {
                if let (Some(count), Some(max), Some(list)) = (
                    touched.counts.last_mut(),
                    touched.max_epoch_nums.last_mut(),
                    touched.epoch_lists.last_mut(),
                ) {
                    *count += 1;
                    *max = (*max).max(epoch_num);
                    // Writing into a String cannot fail.
                    let _ = write!(list, ",{epoch_num}");
                }
            } else {
                touched.ids.push(candidate.model_id);
                touched.counts.push(1);
                touched.max_epoch_nums.push(epoch_num);
                touched.epoch_lists.push(epoch_num.to_string());
            }
        }
    }
}

/// The error that rolls back an insert that met stale model ids, after
/// dropping them from the cache; the group-commit writer retries it.
fn stale_ids(model_ids: &ModelIds, stale: HashSet<i64>) -> Error {
    model_ids.forget(&stale);
    Error::Conflict(format!(
        "{} model id(s) resolved for this insert were deleted or purged meanwhile",
        stale.len()
    ))
}
