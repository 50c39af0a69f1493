//! Artifact references (the `artifacts` table): named pointers from a
//! model to files stored elsewhere, or to content uploaded into the
//! server (`content_sha256`, the key of its blob in `artifact_content.rs`).

use diesel::prelude::*;

use super::on_backend;
use super::records::{Artifact, NewArtifact, PutArtifact};
use super::runs::db_now;
use crate::db::DbConnection;
use crate::db::schema::{artifacts as a, models as m};
use crate::error::{Error, Result};
use crate::security::ProjectScope;
use crate::validate::artifacts::MAX_ARTIFACTS_PER_MODEL;
use crate::validate::echo;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = a)]
struct ArtifactRow {
    name: String,
    uri: String,
    sha256: Option<String>,
    size_bytes: Option<i64>,
    media_type: Option<String>,
    created_at: i64,
    content_sha256: Option<String>,
}

impl From<ArtifactRow> for Artifact {
    fn from(row: ArtifactRow) -> Self {
        Self {
            name: row.name,
            uri: row.uri,
            sha256: row.sha256,
            size_bytes: row.size_bytes,
            media_type: row.media_type,
            created_at: row.created_at,
            content_stored: row.content_sha256.is_some(),
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = a)]
struct NewArtifactRow<'a> {
    model_id: i64,
    name: &'a str,
    uri: &'a str,
    sha256: Option<&'a str>,
    size_bytes: Option<i64>,
    media_type: Option<&'a str>,
    created_at: i64,
    content_sha256: Option<&'a str>,
}

/// The id of model `name` of project `project_id`; NOT_FOUND naming it.
pub(super) fn model_id(conn: &mut DbConnection, project_id: i64, name: &str, access: Access) -> Result<i64> {
    let (id, deleted_at) = m::table
        .filter(m::project_id.eq(project_id))
        .filter(m::name.eq(name))
        .select((m::id, m::deleted_at))
        .first::<(i64, Option<i64>)>(conn)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("model_name: model {name:?} does not exist")))?;
    if access == Access::Write && deleted_at.is_some() {
        return Err(super::deletion::is_deleted("model_name", "model", name));
    }
    Ok(id)
}

/// What a call does with a model's artifacts: a deleted model can be read
/// (like GetModel) but takes no writes until restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Read,
    Write,
}

/// The artifact `name` of model `model_id`, with the digest of its
/// stored content (if any).
pub(super) fn find_with_content(
    conn: &mut DbConnection,
    model_id: i64,
    name: &str,
) -> Result<Option<(Artifact, Option<String>)>> {
    Ok(find(conn, model_id, name)?.map(|row| {
        let content = row.content_sha256.clone();
        (Artifact::from(row), content)
    }))
}

fn find(conn: &mut DbConnection, model_id: i64, name: &str) -> Result<Option<ArtifactRow>> {
    Ok(a::table
        .filter(a::model_id.eq(model_id))
        .filter(a::name.eq(name))
        .select(ArtifactRow::as_select())
        .first(conn)
        .optional()?)
}

/// The fields in which `new` differs from `stored`, each with the stored
/// value (cut short), for the ALREADY_EXISTS message.
fn differences(stored: &ArtifactRow, new: &NewArtifact) -> Vec<String> {
    fn shown(value: Option<&str>) -> String {
        value.map_or_else(|| "none".to_owned(), echo)
    }
    let mut differences = Vec::new();
    if stored.uri != new.uri {
        differences.push(format!("uri (stored {})", echo(&stored.uri)));
    }
    if stored.sha256 != new.sha256 {
        differences.push(format!("sha256 (stored {})", shown(stored.sha256.as_deref())));
    }
    if stored.size_bytes != new.size_bytes {
        let size = stored
            .size_bytes
            .map_or_else(|| "none".to_owned(), |size| size.to_string());
        differences.push(format!("size_bytes (stored {size})"));
    }
    if stored.media_type != new.media_type {
        differences.push(format!(
            "media_type (stored {})",
            shown(stored.media_type.as_deref())
        ));
    }
    if stored.content_sha256.is_some() != new.content_sha256.is_some() {
        let held = if stored.content_sha256.is_some() {
            "uploaded content"
        } else {
            "a reference only"
        };
        differences.push(format!("content (stored: {held})"));
    }
    differences
}

/// Stores `new` as an artifact of model `model_name` (see
/// [`Store::put_artifact`](super::Store::put_artifact)).
pub(super) fn put(
    conn: &mut DbConnection,
    project_id: i64,
    model_name: &str,
    new: &NewArtifact,
    overwrite: bool,
) -> Result<PutArtifact> {
    let model_id = model_id(conn, project_id, model_name, Access::Write)?;
    let now = db_now(conn)?;
    let row = NewArtifactRow {
        model_id,
        name: &new.name,
        uri: &new.uri,
        sha256: new.sha256.as_deref(),
        size_bytes: new.size_bytes,
        media_type: new.media_type.as_deref(),
        created_at: now,
        content_sha256: new.content_sha256.as_deref(),
    };
    let inserted = on_backend!(conn, |c| diesel::insert_into(a::table)
        .values(&row)
        .on_conflict((a::model_id, a::name))
        .do_nothing()
        .execute(c))?;
    if inserted > 0 {
        let count: i64 = a::table
            .filter(a::model_id.eq(model_id))
            .count()
            .get_result(conn)?;
        if usize::try_from(count).unwrap_or(usize::MAX) > MAX_ARTIFACTS_PER_MODEL {
            // The caller's transaction rolls the insert back.
            return Err(Error::invalid(
                "artifact.name",
                format!(
                    "a model holds at most {MAX_ARTIFACTS_PER_MODEL} artifacts and model {model_name:?} has {}: delete one first",
                    count - 1
                ),
            ));
        }
        return Ok(PutArtifact {
            artifact: stored(conn, model_id, &new.name)?.into(),
            already_existed: false,
            replaced: false,
        });
    }
    let Some(existing) = find(conn, model_id, &new.name)? else {
        // Deleted by a concurrent transaction between the two statements
        // (PostgreSQL): running the transaction again sees the new state.
        return Err(Error::Conflict(format!(
            "artifact {:?} of model {model_name:?} changed concurrently",
            new.name
        )));
    };
    let differences = differences(&existing, new);
    if differences.is_empty() {
        return Ok(PutArtifact {
            artifact: existing.into(),
            already_existed: true,
            replaced: false,
        });
    }
    if !overwrite {
        return Err(Error::AlreadyExists(format!(
            "artifact {:?} of model {model_name:?} already exists with a different {}; set overwrite to replace it",
            new.name,
            differences.join(" and ")
        )));
    }
    diesel::update(a::table)
        .filter(a::model_id.eq(model_id))
        .filter(a::name.eq(&new.name))
        .set((
            a::uri.eq(&new.uri),
            a::sha256.eq(new.sha256.as_deref()),
            a::size_bytes.eq(new.size_bytes),
            a::media_type.eq(new.media_type.as_deref()),
            a::created_at.eq(now),
            a::content_sha256.eq(new.content_sha256.as_deref()),
        ))
        .execute(conn)?;
    Ok(PutArtifact {
        artifact: stored(conn, model_id, &new.name)?.into(),
        already_existed: true,
        replaced: true,
    })
}

/// The row just written in this transaction.
fn stored(conn: &mut DbConnection, model_id: i64, name: &str) -> Result<ArtifactRow> {
    find(conn, model_id, name)?.ok_or_else(|| {
        Error::Corrupt(format!(
            "artifact {name:?} of model {model_id} vanished after its write"
        ))
    })
}

/// The artifacts of model `model_name`, by name; NOT_FOUND when the model
/// does not exist.
pub(super) fn list(conn: &mut DbConnection, project_id: i64, model_name: &str) -> Result<Vec<Artifact>> {
    let model_id = model_id(conn, project_id, model_name, Access::Read)?;
    let rows: Vec<ArtifactRow> = a::table
        .filter(a::model_id.eq(model_id))
        .order(a::name.asc())
        .select(ArtifactRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(Artifact::from).collect())
}

fn delete(conn: &mut DbConnection, project_id: i64, model_name: &str, name: &str) -> Result<bool> {
    let model_id = model_id(conn, project_id, model_name, Access::Write)?;
    let deleted =
        diesel::delete(a::table.filter(a::model_id.eq(model_id)).filter(a::name.eq(name))).execute(conn)?;
    Ok(deleted > 0)
}

impl super::Store {
    /// Stores `new` as an artifact of model `model_name` of `project`.
    /// An identical record already there is `already_existed`; a different
    /// one is ALREADY_EXISTS naming the fields that differ, unless
    /// `overwrite`, which replaces it (with a new `created_at`). A model
    /// holds at most [`MAX_ARTIFACTS_PER_MODEL`] (under concurrent puts on
    /// PostgreSQL, a few more can slip in: the count is read committed).
    pub fn put_artifact(
        &self,
        project: &ProjectScope,
        model_name: &str,
        new: &NewArtifact,
        overwrite: bool,
    ) -> Result<PutArtifact> {
        self.write_in(project, model_name, |conn, project_id| {
            put(conn, project_id, model_name, new, overwrite)
        })
    }

    /// The artifacts of model `model_name` of `project`, by name.
    pub fn list_artifacts(&self, project: &ProjectScope, model_name: &str) -> Result<Vec<Artifact>> {
        self.read(|conn| {
            // An unknown project holds no model: the same NOT_FOUND.
            let project_id = self.project_ids.find(conn, project)?.unwrap_or(-1);
            list(conn, project_id, model_name)
        })
    }

    /// Deletes the artifact `name` of model `model_name` of `project`;
    /// whether it was there (deleting an absent one is not an error).
    pub fn delete_artifact(&self, project: &ProjectScope, model_name: &str, name: &str) -> Result<bool> {
        self.write_in(project, model_name, |conn, project_id| {
            delete(conn, project_id, model_name, name)
        })
    }
}
