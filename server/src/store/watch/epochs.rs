//! `WatchEpochs` reads: which models a watcher follows, and the epochs
//! committed after its cursor, in each model's commit order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use diesel::prelude::*;

use super::cursor::{EpochCursor, Position};
use super::tail::Tail;
use crate::db::DbConnection;
use crate::db::schema::{epoch_batches as b, epochs as e, models as m};
use crate::error::{Error, Result};
use crate::security::ProjectScope;
use crate::store::MAX_BINDS_PER_LIST;
use crate::store::projects::ProjectIds;
use crate::store::records::{Epoch, ModelFilter};
use crate::store::{corrupt, metrics_codec};

/// Which models a watch follows.
#[derive(Debug, Clone)]
pub enum Selection {
    /// These models (they must exist when the watch starts).
    Names(Vec<String>),
    /// Every model matching the filter, including those that match later
    /// (created, tagged, …); a model once matched stays watched.
    Filter(ModelFilter),
}

/// What a watch asks for.
#[derive(Debug, Clone)]
pub struct EpochWatchSpec {
    /// The models.
    pub selection: Selection,
    /// Only these metrics (empty: all); epochs with none of them are left
    /// out.
    pub metric_names: Vec<String>,
    /// Where a previous watch stopped.
    pub cursor: Option<EpochCursor>,
    /// Replay the stored epochs before the new ones (models not in the
    /// cursor).
    pub history: bool,
}

/// One watcher's state: its spec and where it is.
#[derive(Debug)]
pub struct EpochWatch {
    project: ProjectScope,
    spec: EpochWatchSpec,
    cursor: EpochCursor,
    names: HashMap<i64, String>,
    /// Watched models this process committed epochs of since the last read.
    hinted: BTreeSet<i64>,
    /// [`Tail::remote`] when the last database read started.
    remote_seen: u64,
}

impl EpochWatch {
    /// The cursor after everything returned so far.
    pub fn cursor(&self) -> String {
        self.cursor.encode()
    }

    /// Whether new epochs of `ids` may concern this watch.
    pub fn concerns(&self, ids: &[i64]) -> bool {
        ids.iter().any(|id| self.cursor.positions.contains_key(id))
    }

    /// Notes that this process committed epochs of `ids` (those watched
    /// are read from the tail next, if it can tell).
    pub fn hint(&mut self, ids: &[i64]) {
        let watched = ids.iter().filter(|id| self.cursor.positions.contains_key(id));
        self.hinted.extend(watched);
    }

    /// A database read that started at `remote` ([`Tail::remote`]) saw
    /// everything committed before it.
    pub(crate) fn read_database_at(&mut self, remote: u64) {
        self.remote_seen = remote;
        self.hinted.clear();
    }

    /// Whether model changes may add models to this watch.
    pub fn follows_filter(&self) -> bool {
        matches!(self.spec.selection, Selection::Filter(_))
    }
}

#[derive(Queryable)]
struct Found {
    id: i64,
    name: String,
    epoch_seq: i64,
    created_seq: i64,
}

/// Starts a watch: finds its models and positions.
pub(crate) fn start(
    conn: &mut DbConnection,
    project_ids: &ProjectIds,
    project: &ProjectScope,
    spec: EpochWatchSpec,
) -> Result<EpochWatch> {
    let given = spec.cursor.clone();
    let mut watch = EpochWatch {
        project: project.clone(),
        cursor: EpochCursor {
            models_created: given.as_ref().map_or(i64::MAX, |c| c.models_created),
            positions: BTreeMap::new(),
        },
        spec,
        names: HashMap::new(),
        hinted: BTreeSet::new(),
        remote_seen: 0,
    };
    if let Selection::Names(names) = &watch.spec.selection {
        let project_id = project_ids.find(conn, project)?.unwrap_or(-1);
        let max = project_models_created(conn, project_id)?;
        let found: Vec<Found> = m::table
            .filter(m::project_id.eq(project_id))
            .filter(m::deleted_at.is_null())
            .filter(m::name.eq_any(names))
            .select((m::id, m::name, m::epoch_seq, m::created_seq))
            .load(conn)?;
        if let Some((index, missing)) = names
            .iter()
            .enumerate()
            .find(|(_, name)| !found.iter().any(|f| &f.name == *name))
        {
            return Err(Error::NotFound(format!(
                "model_names[{index}]: model {missing:?} does not exist in project {:?} (or is deleted)",
                project.name()
            )));
        }
        add(&mut watch, found, given.as_ref());
        if given.is_none() {
            watch.cursor.models_created = max;
        }
        return Ok(watch);
    }
    discover(conn, project_ids, &mut watch, given.as_ref())?;
    Ok(watch)
}

/// Adds the models of `found` not watched yet: at their cursor position,
/// else at the start (history, or a model newer than the cursor), else
/// after their stored epochs.
fn add(watch: &mut EpochWatch, found: Vec<Found>, given: Option<&EpochCursor>) {
    for model in found {
        if watch.cursor.positions.contains_key(&model.id) {
            continue;
        }
        let position = given
            .and_then(|cursor| cursor.positions.get(&model.id).copied())
            .unwrap_or(
                if watch.spec.history || model.created_seq > watch.cursor.models_created {
                    Position::START
                } else {
                    Position {
                        seq: model.epoch_seq,
                        after: None,
                    }
                },
            );
        watch.cursor.positions.insert(model.id, position);
        watch.names.insert(model.id, model.name);
    }
}

/// Filter watches: adds the models that match now.
fn discover(
    conn: &mut DbConnection,
    project_ids: &ProjectIds,
    watch: &mut EpochWatch,
    given: Option<&EpochCursor>,
) -> Result<()> {
    let Selection::Filter(filter) = &watch.spec.selection else {
        return Ok(());
    };
    let Some(project_id) = project_ids.find(conn, &watch.project)? else {
        if watch.cursor.models_created == i64::MAX {
            watch.cursor.models_created = 0;
        }
        return Ok(());
    };
    // The counter first: every model it counts is visible to the read
    // after it (read the other way round, a model committed in between
    // would count as old without having been found).
    let max = project_models_created(conn, project_id)?;
    let found = matching(conn, project_id, filter)?;
    if watch.cursor.models_created == i64::MAX {
        // A fresh watch: every model matching now is "before" it.
        watch.cursor.models_created = max;
    }
    add(watch, found, given);
    watch.cursor.models_created = watch.cursor.models_created.max(max);
    Ok(())
}

fn matching(conn: &mut DbConnection, project_id: i64, filter: &ModelFilter) -> Result<Vec<Found>> {
    let query = m::table
        .select((m::id, m::name, m::epoch_seq, m::created_seq))
        .into_boxed();
    let query = crate::store::models::filter_models!(query, project_id, filter, conn);
    Ok(query.load(conn)?)
}

/// The project's count of models created (`projects.model_seq`): every
/// model with a `created_seq` up to it is committed, any later one is new.
fn project_models_created(conn: &mut DbConnection, project_id: i64) -> Result<i64> {
    use crate::db::schema::projects;
    let seq: Option<i64> = projects::table
        .filter(projects::id.eq(project_id))
        .select(projects::model_seq)
        .first(conn)
        .optional()?;
    Ok(seq.unwrap_or(0))
}

/// The epochs of the hinted models that the tail holds, at most `limit`,
/// moving the positions past them; `None` (nothing moved) when the tail
/// cannot answer for every hinted model, or another replica committed
/// epochs since the watcher last read the database: then it reads that.
pub(crate) fn read_from_tail(watch: &mut EpochWatch, tail: &Tail, limit: usize) -> Option<Vec<Epoch>> {
    if watch.hinted.is_empty() || tail.remote() != watch.remote_seen {
        return None;
    }
    let mut out = Vec::new();
    let mut moved = Vec::with_capacity(watch.hinted.len());
    for &id in &watch.hinted {
        let position = *watch.cursor.positions.get(&id)?;
        if position.after.is_some() {
            return None;
        }
        let batches = tail.after(id, position.seq)?;
        let Some(last) = batches.last() else {
            continue;
        };
        for epoch in batches.iter().flat_map(|batch| batch.epochs.iter()) {
            let metric_names = &watch.spec.metric_names;
            if metric_names.is_empty() {
                out.push(epoch.clone());
                continue;
            }
            let mut epoch = epoch.clone();
            epoch.metrics.retain(|metric, _| metric_names.contains(metric));
            if !epoch.metrics.is_empty() {
                out.push(epoch);
            }
        }
        if out.len() > limit {
            return None;
        }
        moved.push((
            id,
            Position {
                seq: last.seq,
                after: None,
            },
        ));
    }
    watch.cursor.positions.extend(moved);
    watch.hinted.clear();
    Some(out)
}

/// Batches read per model and query.
const BATCHES_PER_READ: i64 = 64;

/// The epochs committed after the watch's positions, at most `limit`,
/// per model in commit order (then epoch_num); moves the positions past
/// them. `rediscover`: filter watches first look for newly matching
/// models.
pub(crate) fn read(
    conn: &mut DbConnection,
    project_ids: &ProjectIds,
    watch: &mut EpochWatch,
    rediscover: bool,
    limit: usize,
) -> Result<Vec<Epoch>> {
    if rediscover {
        discover(conn, project_ids, watch, None)?;
    }
    let ids: Vec<i64> = watch.cursor.positions.keys().copied().collect();
    let mut current: HashMap<i64, i64> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_BINDS_PER_LIST) {
        let rows: Vec<(i64, i64)> = m::table
            .filter(m::id.eq_any(chunk))
            .select((m::id, m::epoch_seq))
            .load(conn)?;
        current.extend(rows);
    }
    let mut out = Vec::new();
    for id in ids {
        let Some(&seq) = current.get(&id) else {
            // Purged: nothing more will come.
            watch.cursor.positions.remove(&id);
            continue;
        };
        let Some(position) = watch.cursor.positions.get(&id).copied() else {
            continue;
        };
        if seq <= position.seq || out.len() >= limit {
            continue;
        }
        let name = watch.names.get(&id).cloned().unwrap_or_default();
        let moved = read_model(
            conn,
            id,
            &name,
            position,
            &watch.spec.metric_names,
            limit - out.len(),
            &mut out,
        )?;
        watch.cursor.positions.insert(id, moved);
    }
    Ok(out)
}

/// Reads one model's epochs after `position` into `out`, at most `budget`
/// of them; returns the new position. The epochs of all its batches read
/// are loaded at once (one range read when they lie close together, as a
/// trainer's do), not batch by batch: watchers catching up read many.
fn read_model(
    conn: &mut DbConnection,
    model_id: i64,
    name: &str,
    mut position: Position,
    metric_names: &[String],
    budget: usize,
    out: &mut Vec<Epoch>,
) -> Result<Position> {
    let batches: Vec<(i64, String)> = b::table
        .filter(b::model_id.eq(model_id))
        .filter(b::seq.gt(position.seq))
        .order(b::seq)
        .limit(BATCHES_PER_READ)
        .select((b::seq, b::epoch_nums))
        .load(conn)?;
    // The epochs that go out, per batch in commit order.
    let mut taken: Vec<Vec<i64>> = Vec::with_capacity(batches.len());
    let mut left = budget;
    for (seq, list) in batches {
        if left == 0 {
            break;
        }
        let mut nums =
            parse_nums(&list).map_err(|e| corrupt(&format!("epoch batch {seq} of model {model_id}"), e))?;
        nums.sort_unstable();
        if let Some(after) = position.after {
            nums.retain(|&n| n > after);
        }
        let whole = nums.len() <= left;
        nums.truncate(left);
        left -= nums.len();
        position = match (whole, nums.last()) {
            (false, Some(&last)) => Position {
                seq: seq - 1,
                after: Some(last),
            },
            _ => Position { seq, after: None },
        };
        taken.push(nums);
    }
    let mut loaded = load(conn, model_id, name, &taken, metric_names)?;
    for nums in &taken {
        // An epoch_num stored again after a delete is listed by two
        // batches: what is stored now goes out once, with the first.
        out.extend(nums.iter().filter_map(|num| loaded.remove(num)));
    }
    Ok(position)
}

fn parse_nums(list: &str) -> std::result::Result<Vec<i64>, std::num::ParseIntError> {
    if list.is_empty() {
        return Ok(Vec::new());
    }
    list.split(',').map(str::parse).collect()
}

type Row = (i64, Vec<u8>, Option<i64>, Option<i64>, i64);

/// Span of epoch_nums, beyond this many per wanted epoch (plus a margin),
/// past which the epochs are read by key rather than by range.
const RANGE_SPREAD: usize = 4;

/// The epochs `batches` list of a model, by epoch_num; those without any
/// of `metric_names` (when given) left out. One range read (a statement
/// the connection keeps prepared) when the epochs lie close together,
/// else reads by key.
fn load(
    conn: &mut DbConnection,
    model_id: i64,
    name: &str,
    batches: &[Vec<i64>],
    metric_names: &[String],
) -> Result<HashMap<i64, Epoch>> {
    let wanted: BTreeSet<i64> = batches.iter().flatten().copied().collect();
    let (Some(&low), Some(&high)) = (wanted.first(), wanted.last()) else {
        return Ok(HashMap::new());
    };
    let span = usize::try_from(high.abs_diff(low)).unwrap_or(usize::MAX);
    let columns = (
        e::epoch_num,
        e::metrics,
        e::steps_per_epoch,
        e::validation_steps_per_epoch,
        e::recorded_at,
    );
    let mut rows: Vec<Row> = Vec::with_capacity(wanted.len());
    if span <= wanted.len().saturating_mul(RANGE_SPREAD) + 64 {
        rows = e::table
            .filter(e::model_id.eq(model_id))
            .filter(e::epoch_num.between(low, high))
            .select(columns)
            .load(conn)?;
        rows.retain(|row| wanted.contains(&row.0));
    } else {
        let nums: Vec<i64> = wanted.iter().copied().collect();
        for chunk in nums.chunks(MAX_BINDS_PER_LIST) {
            rows.extend(
                e::table
                    .filter(e::model_id.eq(model_id))
                    .filter(e::epoch_num.eq_any(chunk))
                    .select(columns)
                    .load::<Row>(conn)?,
            );
        }
    }
    let mut epochs = HashMap::with_capacity(rows.len());
    for (epoch_num, metrics, steps_per_epoch, validation_steps_per_epoch, recorded_at) in rows {
        let mut metrics = metrics_codec::decode(&metrics)
            .map_err(|e| corrupt(&format!("metrics of {name:?} epoch {epoch_num}"), e))?;
        if !metric_names.is_empty() {
            metrics.retain(|metric, _| metric_names.contains(metric));
            if metrics.is_empty() {
                continue;
            }
        }
        epochs.insert(
            epoch_num,
            Epoch {
                model_name: name.to_owned(),
                epoch_num,
                metrics,
                steps_per_epoch,
                validation_steps_per_epoch,
                recorded_at,
            },
        );
    }
    Ok(epochs)
}
