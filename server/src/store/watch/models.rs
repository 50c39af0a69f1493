//! `WatchModels` reads: the models a watcher follows, compared with what
//! it last delivered (its cursor holds each model's state), so that every
//! committed change is reported once: created, status, tags, deleted,
//! restored, purged.
//!
//! The position is the delivered state itself rather than an event
//! sequence: reading the current state is commit-order safe on any
//! backend (each read is one consistent snapshot), and a reconnect with
//! the cursor reports exactly the models that changed since. The cost is
//! that changes committed between two reads (a few milliseconds apart,
//! or the 2 s poll for a revived run) are reported together, as one event
//! listing every kind of change, with the state after the last of them.

use std::collections::{BTreeMap, HashMap};

use super::cursor::{ModelState, ModelsCursor, stable_hash};
use super::epochs::Selection;
use crate::db::DbConnection;
use crate::error::Result;
use crate::security::ProjectScope;
use crate::store::projects::ProjectIds;
use crate::store::records::{Deletion, Model, ModelFilter, PageRequest, Tags};

/// Kinds of change of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelChange {
    /// Created (or first seen by a watcher resuming from a cursor).
    Created,
    /// Its run status changed.
    Status,
    /// Its tags changed.
    Tags,
    /// Soft-deleted.
    Deleted,
    /// Restored.
    Restored,
    /// Purged: gone for good.
    Purged,
}

/// One event: a model and what changed about it since the last event.
#[derive(Debug, Clone)]
pub struct ModelEvent {
    /// The model's name.
    pub name: String,
    /// Its state now; `None` once purged.
    pub model: Option<Model>,
    /// What changed.
    pub changes: Vec<ModelChange>,
}

/// One watcher's state.
#[derive(Debug)]
pub struct ModelWatch {
    project: ProjectScope,
    filter: ModelFilter,
    cursor: ModelsCursor,
    /// Names of the models in the cursor, where known (to name purged ones).
    names: HashMap<u64, String>,
}

impl ModelWatch {
    /// The cursor after everything returned so far.
    pub fn cursor(&self) -> String {
        self.cursor.encode()
    }
}

/// Starts a watch: without a cursor, the models as they are now are its
/// baseline (no events for them).
pub(crate) fn start(
    conn: &mut DbConnection,
    project_ids: &ProjectIds,
    project: &ProjectScope,
    selection: Selection,
    cursor: Option<ModelsCursor>,
) -> Result<ModelWatch> {
    let mut filter = match selection {
        Selection::Names(names) => ModelFilter::default().names(names),
        Selection::Filter(filter) => filter,
    };
    // Deleted models stay in view, so that deletes and restores are seen.
    filter.deletion = Deletion::All;
    let fresh = cursor.is_none();
    let mut watch = ModelWatch {
        project: project.clone(),
        filter,
        cursor: cursor.unwrap_or_default(),
        names: HashMap::new(),
    };
    if fresh {
        read(conn, project_ids, &mut watch)?;
    }
    Ok(watch)
}

/// The changes since the watch's cursor; moves the cursor past them.
pub(crate) fn read(
    conn: &mut DbConnection,
    project_ids: &ProjectIds,
    watch: &mut ModelWatch,
) -> Result<Vec<ModelEvent>> {
    let models = match project_ids.find(conn, &watch.project)? {
        Some(project_id) => all_matching(conn, (project_id, watch.project.name()), &watch.filter)?,
        None => Vec::new(),
    };
    let mut events = Vec::new();
    let mut seen: BTreeMap<u64, ModelState> = BTreeMap::new();
    for model in models {
        let key = stable_hash(&[model.name.as_bytes()]);
        let state = state_of(&model);
        seen.insert(key, state);
        let changes = match watch.cursor.states.get(&key) {
            None => vec![ModelChange::Created],
            Some(old) if old.created_at != state.created_at => vec![ModelChange::Created],
            Some(old) => changes(old, &state),
        };
        watch.names.insert(key, model.name.clone());
        if !changes.is_empty() {
            events.push(ModelEvent {
                name: model.name.clone(),
                model: Some(model),
                changes,
            });
        }
    }
    for key in watch.cursor.states.keys() {
        if !seen.contains_key(key)
            && let Some(name) = watch.names.remove(key)
        {
            events.push(ModelEvent {
                name,
                model: None,
                changes: vec![ModelChange::Purged],
            });
        }
    }
    watch.cursor.states = seen;
    Ok(events)
}

fn changes(old: &ModelState, new: &ModelState) -> Vec<ModelChange> {
    let mut changes = Vec::new();
    if old.status != new.status {
        changes.push(ModelChange::Status);
    }
    if old.tags != new.tags {
        changes.push(ModelChange::Tags);
    }
    match (old.deleted, new.deleted) {
        (false, true) => changes.push(ModelChange::Deleted),
        (true, false) => changes.push(ModelChange::Restored),
        _ => {}
    }
    changes
}

fn state_of(model: &Model) -> ModelState {
    ModelState {
        created_at: model.created_at,
        status: model.run.status.to_pb() as i32,
        deleted: model.deleted_at.is_some(),
        tags: tags_hash(&model.tags),
    }
}

fn tags_hash(tags: &Tags) -> u64 {
    let parts: Vec<&[u8]> = tags
        .iter()
        .flat_map(|(key, value)| [key.as_bytes(), value.as_bytes()])
        .collect();
    stable_hash(&parts)
}

/// Models per page of the scan.
const SCAN_PAGE: usize = 10_000;

fn all_matching(conn: &mut DbConnection, project: (i64, &str), filter: &ModelFilter) -> Result<Vec<Model>> {
    let mut models = Vec::new();
    let mut page = PageRequest {
        size: SCAN_PAGE,
        token: String::new(),
    };
    loop {
        let found = crate::store::models::list(conn, project, filter, &Default::default(), &page)?;
        models.extend(found.items);
        if found.next_token.is_empty() {
            return Ok(models);
        }
        page.token = found.next_token;
    }
}
