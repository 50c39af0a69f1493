//! The model-id cache of the ingest path, and the checks that keep a stale
//! id from ever being written.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::models;
use crate::error::Result;
use crate::store::MAX_BINDS_PER_LIST;

/// Names a [`ModelIds`] remembers at most; it starts over when full.
const MODEL_IDS_REMEMBERED: usize = 100_000;

/// Live model ids by (project id, name), remembered across epoch inserts
/// so that a trainer's request skips the lookup.
///
/// An id can go stale: the model may be deleted, or purged and its name
/// reused by a new model (new id: ids are never reused), possibly through
/// another replica. So an entry is only a guess: the ingest transaction
/// checks every model id it writes epochs for (the model touch counts the
/// live rows it updated, `insert::touch_models`), and on a mismatch the
/// transaction rolls back, [`ModelIds::forget`] drops the entries and the
/// batch is retried with fresh lookups.
#[derive(Default)]
pub(super) struct ModelIds {
    known: Mutex<HashMap<(i64, String), i64>>,
}

/// The models some names resolve to.
#[derive(Debug, Default)]
pub(super) struct Resolution {
    /// Live models: name -> id.
    pub live: HashMap<String, i64>,
    /// Deleted models (not purged): name -> id (only imported epochs are
    /// stored into them, see `insert::resolve`).
    pub deleted: HashMap<String, i64>,
}

impl ModelIds {
    /// Which of `names` name a live (or a deleted) model of project
    /// `project_id`.
    pub(super) fn get(&self, conn: &mut DbConnection, project_id: i64, names: &[&str]) -> Result<Resolution> {
        let mut found = Resolution::default();
        let mut unknown = Vec::new();
        {
            let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
            for &name in names {
                match known.get(&(project_id, name.to_owned())) {
                    Some(&id) => {
                        found.live.insert(name.to_owned(), id);
                    }
                    None => unknown.push(name),
                }
            }
        }
        if !unknown.is_empty() {
            let loaded = ids_by_name(conn, project_id, &unknown)?;
            let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
            if known.len() + loaded.len() > MODEL_IDS_REMEMBERED {
                known.clear();
            }
            for (name, id, deleted_at) in loaded {
                if deleted_at.is_some() {
                    found.deleted.insert(name, id);
                } else {
                    known.insert((project_id, name.clone()), id);
                    found.live.insert(name, id);
                }
            }
        }
        Ok(found)
    }

    /// Drops the entries of the models `ids` (stale: deleted or purged).
    pub(super) fn forget(&self, ids: &HashSet<i64>) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known.retain(|_, id| !ids.contains(id));
    }
}

fn ids_by_name(
    conn: &mut DbConnection,
    project_id: i64,
    names: &[&str],
) -> Result<Vec<(String, i64, Option<i64>)>> {
    if let [name] = names {
        // The trainer's case; `=` keeps the statement cacheable.
        let row = models::table
            .filter(models::project_id.eq(project_id))
            .filter(models::name.eq(name))
            .select((models::id, models::deleted_at))
            .first::<(i64, Option<i64>)>(conn)
            .optional()?;
        return Ok(row
            .map(|(id, deleted_at)| ((*name).to_owned(), id, deleted_at))
            .into_iter()
            .collect());
    }
    let mut found = Vec::with_capacity(names.len());
    for chunk in names.chunks(MAX_BINDS_PER_LIST) {
        let rows: Vec<(i64, String, Option<i64>)> = models::table
            .filter(models::project_id.eq(project_id))
            .filter(models::name.eq_any(chunk))
            .select((models::id, models::name, models::deleted_at))
            .load(conn)?;
        found.extend(
            rows.into_iter()
                .map(|(id, name, deleted_at)| (name, id, deleted_at)),
        );
    }
    Ok(found)
}

/// Which of the models `ids` are live (or, with `deleted_too`, not
/// purged).
pub(super) fn live_ids(conn: &mut DbConnection, ids: &[i64], deleted_too: bool) -> Result<HashSet<i64>> {
    let mut live = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_BINDS_PER_LIST) {
        let mut query = models::table.filter(models::id.eq_any(chunk)).into_boxed();
        if !deleted_too {
            query = query.filter(models::deleted_at.is_null());
        }
        live.extend(query.select(models::id).load::<i64>(conn)?);
    }
    Ok(live)
}
