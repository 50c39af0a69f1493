//! The tail: the latest committed batches of epochs per model, read from
//! the database once per commit and shared by every watcher of the
//! process.
//!
//! Without it, each commit woke every watcher of the model into reads of
//! its own (a thousand watchers: a thousand reads per commit, and writers
//! lost three quarters of their throughput to them). Now the first
//! watcher to wake refreshes what the hub marked changed, the others wait
//! for that one read and serve themselves from memory. A watcher whose
//! position is older than what the tail holds reads the database as
//! before, so the tail changes where epochs come from, never which.
//!
//! Memory is bounded: [`BATCHES_PER_MODEL`] batches per model, a refresh
//! of more than [`EPOCHS_PER_REFRESH`] epochs for one model is not kept
//! (watchers read those from the database), and past [`EPOCHS_HELD`]
//! epochs in all the least recently refreshed models are dropped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use diesel::prelude::*;

use super::epochs::{load, parse_nums};
use crate::db::DbConnection;
use crate::db::schema::{epoch_batches as b, models as m};
use crate::error::Result;
use crate::store::records::Epoch;
use crate::store::{MAX_BINDS_PER_LIST, corrupt};

/// Batches kept per model, at most.
const BATCHES_PER_MODEL: usize = 64;

/// A model's new epochs beyond this many in one refresh are left to the
/// database (a bulk insert, a watcher far behind).
const EPOCHS_PER_REFRESH: usize = 5_000;

/// Epochs held over all models, at most.
const EPOCHS_HELD: usize = 200_000;

/// One committed transaction's epochs of one model.
#[derive(Debug, Clone)]
pub(super) struct Batch {
    /// The model's `epoch_seq` of the transaction.
    pub seq: i64,
    /// Its epochs in epoch_num order, every metric.
    pub epochs: Arc<[Epoch]>,
}

/// What the tail holds of one model: every batch after `from` up to
/// `seq`, as of its last refresh.
#[derive(Debug)]
struct ModelTail {
    from: i64,
    seq: i64,
    batches: VecDeque<Batch>,
    epochs: usize,
    refreshed: Instant,
}

#[derive(Debug, Default)]
struct State {
    models: HashMap<i64, ModelTail>,
    /// Models with commits since their last refresh.
    dirty: HashSet<i64>,
    /// Models not held yet that a refresh is reading now (a commit for
    /// one of them meanwhile marks it dirty too).
    arriving: HashSet<i64>,
    epochs: usize,
}

/// What the tail says about a model after a position.
#[derive(Debug)]
pub(super) enum After {
    /// The model is gone (purged): nothing more will come.
    Gone,
    /// These batches follow the position (possibly none).
    Batches(Vec<Batch>),
    /// The tail does not reach back that far: read the database.
    Unknown,
}

/// The shared tail of one process (see the module docs).
#[derive(Debug, Default)]
pub struct Tail {
    state: Mutex<State>,
    /// Held while refreshing, so that watchers woken by one commit share
    /// one read.
    refreshing: Mutex<()>,
    /// Purged models seen by refreshes (so that waiting watchers learn it
    /// without reading themselves); bounded by dropping the oldest.
    gone: Mutex<VecDeque<i64>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state stays consistent at every await-free step; a panic
    // elsewhere must not stop every watcher.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Tail {
    /// New epochs were committed for `ids`.
    pub(super) fn changed(&self, ids: &[i64]) {
        let mut state = lock(&self.state);
        for id in ids {
            if state.models.contains_key(id) || state.arriving.contains(id) {
                state.dirty.insert(*id);
            }
        }
    }

    /// Anything may have changed (a notification that named no models, a
    /// listener that reconnected).
    pub(super) fn changed_all(&self) {
        let mut state = lock(&self.state);
        let ids: Vec<i64> = state.models.keys().copied().collect();
        state.dirty.extend(ids);
    }

    /// Brings the tail of `ids` up to date: models changed since their
    /// last refresh, not held yet, or (with `max_age`) refreshed longer
    /// ago than that (the safety net against lost notifications).
    pub(super) fn refresh(
        &self,
        conn: &mut DbConnection,
        ids: &[i64],
        max_age: Option<Duration>,
    ) -> Result<()> {
        if !self.needs_refresh(ids, max_age) {
            return Ok(());
        }
        let _refreshing = lock(&self.refreshing);
        // Taken out of `dirty` before reading: a commit landing during the
        // read marks its model again, and the next refresh reads it.
        let stale: Vec<(i64, Option<i64>)> = {
            let mut state = lock(&self.state);
            let now = Instant::now();
            let mut stale = Vec::new();
            for id in ids {
                let held = state.models.get(id);
                let old = match (held, max_age) {
                    (None, _) => true,
                    (Some(tail), Some(age)) => now.duration_since(tail.refreshed) > age,
                    (Some(_), None) => false,
                };
                let held = held.map(|tail| tail.seq);
                if state.dirty.remove(id) || old {
                    stale.push((*id, held));
                    if held.is_none() {
                        state.arriving.insert(*id);
                    }
                }
            }
            stale
        };
        let result = self.read_stale(conn, &stale);
        let mut state = lock(&self.state);
        for (id, _) in &stale {
            state.arriving.remove(id);
        }
        result
    }

    fn read_stale(&self, conn: &mut DbConnection, stale: &[(i64, Option<i64>)]) -> Result<()> {
        if stale.is_empty() {
            return Ok(());
        }
        let mut current: HashMap<i64, i64> = HashMap::with_capacity(stale.len());
        let stale_ids: Vec<i64> = stale.iter().map(|(id, _)| *id).collect();
        for chunk in stale_ids.chunks(MAX_BINDS_PER_LIST) {
            let rows: Vec<(i64, i64)> = m::table
                .filter(m::id.eq_any(chunk))
                .select((m::id, m::epoch_seq))
                .load(conn)?;
            current.extend(rows);
        }
        for &(id, held) in stale {
            match current.get(&id) {
                None => self.forget(id),
                Some(&seq) => self.refresh_model(conn, id, held, seq)?,
            }
        }
        Ok(())
    }

    fn needs_refresh(&self, ids: &[i64], max_age: Option<Duration>) -> bool {
        let state = lock(&self.state);
        let now = Instant::now();
        ids.iter().any(|id| match state.models.get(id) {
            None => true,
            Some(tail) => {
                state.dirty.contains(id)
                    || max_age.is_some_and(|age| now.duration_since(tail.refreshed) > age)
            }
        })
    }

    /// Reads model `id`'s batches after `held` (what the tail has; none:
    /// the latest few) up to at least `seq`.
    fn refresh_model(&self, conn: &mut DbConnection, id: i64, held: Option<i64>, seq: i64) -> Result<()> {
        if held == Some(seq) {
            self.touch(id);
            return Ok(());
        }
        let after = held.unwrap_or_else(|| seq.saturating_sub(BATCHES_PER_MODEL as i64).max(0));
        let rows: Vec<(i64, String)> = b::table
            .filter(b::model_id.eq(id))
            .filter(b::seq.gt(after))
            .order(b::seq)
            .limit(BATCHES_PER_MODEL as i64 + 1)
            .select((b::seq, b::epoch_nums))
            .load(conn)?;
        let contiguous = rows.iter().zip(after + 1..).all(|((got, _), want)| *got == want);
        let mut lists = Vec::with_capacity(rows.len());
        let mut total = 0;
        for (batch_seq, list) in &rows {
            let mut nums = parse_nums(list)
                .map_err(|e| corrupt(&format!("epoch batch {batch_seq} of model {id}"), e))?;
            nums.sort_unstable();
            total += nums.len();
            lists.push((*batch_seq, nums));
        }
        let reached = rows.last().map_or(after, |(last, _)| *last);
        if !contiguous || reached < seq || rows.len() > BATCHES_PER_MODEL || total > EPOCHS_PER_REFRESH {
            // Too much (or, never expected, a hole): hold nothing up to
            // `seq`, so that watchers behind it read the database.
            self.reset(id, seq);
            return Ok(());
        }
        let mut all: Vec<i64> = lists.iter().flat_map(|(_, nums)| nums.iter().copied()).collect();
        all.sort_unstable();
        let mut loaded = Vec::with_capacity(all.len());
        load(conn, id, "", &all, &[], &mut loaded)?;
        let mut by_num: HashMap<i64, Epoch> = loaded.into_iter().map(|e| (e.epoch_num, e)).collect();
        let batches: Vec<Batch> = lists
            .into_iter()
            .map(|(batch_seq, nums)| Batch {
                seq: batch_seq,
                epochs: nums.iter().filter_map(|n| by_num.remove(n)).collect(),
            })
            .collect();
        self.append(id, held.unwrap_or(after), batches, reached);
        Ok(())
    }

    fn touch(&self, id: i64) {
        if let Some(tail) = lock(&self.state).models.get_mut(&id) {
            tail.refreshed = Instant::now();
        }
    }

    /// The model is gone.
    fn forget(&self, id: i64) {
        {
            let mut state = lock(&self.state);
            if let Some(tail) = state.models.remove(&id) {
                state.epochs -= tail.epochs;
            }
            state.dirty.remove(&id);
        }
        let mut gone = lock(&self.gone);
        gone.push_back(id);
        if gone.len() > 4096 {
            gone.pop_front();
        }
    }

    /// Holds nothing of model `id` up to `seq`.
    fn reset(&self, id: i64, seq: i64) {
        let mut state = lock(&self.state);
        let fresh = ModelTail {
            from: seq,
            seq,
            batches: VecDeque::new(),
            epochs: 0,
            refreshed: Instant::now(),
        };
        if let Some(old) = state.models.insert(id, fresh) {
            state.epochs -= old.epochs;
        }
    }

    /// Adds `batches` (following `from`, up to `seq`) to model `id`.
    fn append(&self, id: i64, from: i64, batches: Vec<Batch>, seq: i64) {
        let mut state = lock(&self.state);
        let added: usize = batches.iter().map(|batch| batch.epochs.len()).sum();
        let tail = state.models.entry(id).or_insert_with(|| ModelTail {
            from,
            seq: from,
            batches: VecDeque::new(),
            epochs: 0,
            refreshed: Instant::now(),
        });
        if tail.seq != from {
            // Another refresh moved it meanwhile (cannot happen under the
            // refresh lock, but stay exact): start over from `seq`.
            *tail = ModelTail {
                from: seq,
                seq,
                batches: VecDeque::new(),
                epochs: 0,
                refreshed: Instant::now(),
            };
            return;
        }
        tail.batches.extend(batches);
        tail.epochs += added;
        tail.seq = seq;
        tail.refreshed = Instant::now();
        let mut dropped = 0;
        while tail.batches.len() > BATCHES_PER_MODEL {
            if let Some(old) = tail.batches.pop_front() {
                tail.from = old.seq;
                tail.epochs -= old.epochs.len();
                dropped += old.epochs.len();
            }
        }
        state.epochs = state.epochs + added - dropped;
        if state.epochs > EPOCHS_HELD {
            evict(&mut state);
        }
    }

    /// What follows position `seq` of model `id` (call after
    /// [`Tail::refresh`] for it).
    pub(super) fn after(&self, id: i64, seq: i64) -> After {
        let state = lock(&self.state);
        match state.models.get(&id) {
            Some(tail) if seq >= tail.from => After::Batches(
                tail.batches
                    .iter()
                    .filter(|batch| batch.seq > seq)
                    .cloned()
                    .collect(),
            ),
            Some(_) => After::Unknown,
            None if lock(&self.gone).contains(&id) => After::Gone,
            None => After::Unknown,
        }
    }
}

/// Drops the least recently refreshed half of the models.
fn evict(state: &mut State) {
    let mut order: Vec<(Instant, i64)> = state.models.iter().map(|(id, t)| (t.refreshed, *id)).collect();
    order.sort_unstable();
    for (_, id) in order.iter().take(order.len().div_ceil(2)) {
        if let Some(tail) = state.models.remove(id) {
            state.epochs -= tail.epochs;
            state.dirty.remove(id);
        }
    }
}
