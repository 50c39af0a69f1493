//! Projects (the `projects` table): the namespaces of datablobs, templates
//! and models. A project comes into being with the first record stored in
//! it; `default` always exists (the migration makes it). Projects are never
//! renamed or removed, so an id once read stays right.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use diesel::prelude::*;

use super::records::{Page, PageRequest, Project, now_micros};
use super::{into_page, on_backend, page_limit, page_token};
use crate::db::DbConnection;
use crate::db::schema::projects;
use crate::error::{Error, Result};
use crate::security::{ProjectScope, Projects};

/// Project ids by name, remembered for the life of the store.
#[derive(Default)]
pub(super) struct ProjectIds {
    known: Mutex<HashMap<String, i64>>,
}

impl ProjectIds {
    /// The id of `project`, if anything was ever stored in it.
    pub(super) fn find(&self, conn: &mut DbConnection, project: &ProjectScope) -> Result<Option<i64>> {
        if let Some(&id) = self.lock().get(project.name()) {
            return Ok(Some(id));
        }
        let id = projects::table
            .filter(projects::name.eq(project.name()))
            .select(projects::id)
            .first::<i64>(conn)
            .optional()?;
        if let Some(id) = id {
            self.lock().insert(project.name().to_owned(), id);
        }
        Ok(id)
    }

    /// The id of `project`, creating the project if needed (in the
    /// caller's write transaction: it rolls back with the write).
    pub(super) fn find_or_create(&self, conn: &mut DbConnection, project: &ProjectScope) -> Result<i64> {
        if let Some(id) = self.find(conn, project)? {
            return Ok(id);
        }
        let row = (
            projects::name.eq(project.name()),
            projects::created_at.eq(now_micros()),
        );
        on_backend!(conn, |c| diesel::insert_into(projects::table)
            .values(row)
            .on_conflict(projects::name)
            .do_nothing()
            .execute(c))?;
        // Not cached yet: the transaction may still roll back.
        projects::table
            .filter(projects::name.eq(project.name()))
            .select(projects::id)
            .first::<i64>(conn)
            .optional()?
            .ok_or_else(|| Error::Corrupt(format!("project {:?} vanished after insert", project.name())))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One page of the projects `allowed` names, by name.
pub fn list(conn: &mut DbConnection, allowed: &Projects, page: &PageRequest) -> Result<Page<Project>> {
    let query_id = page_token::fingerprint(&format!("projects|{allowed:?}"));
    let after: Option<String> = page_token::decode(query_id, &page.token)?;
    let mut query = projects::table
        .select((projects::name, projects::created_at))
        .order(projects::name.asc())
        .limit(page_limit(page))
        .into_boxed();
    if let Projects::Only(names) = allowed {
        query = query.filter(projects::name.eq_any(names.iter().collect::<Vec<_>>()));
    }
    if let Some(after) = &after {
        query = query.filter(projects::name.gt(after));
    }
    let rows: Vec<(String, i64)> = query.load(conn)?;
    into_page(
        rows,
        page.size,
        |(name, _)| page_token::encode(query_id, name),
        |rows| {
            Ok(rows
                .into_iter()
                .map(|(name, created_at)| Project { name, created_at })
                .collect())
        },
    )
}
