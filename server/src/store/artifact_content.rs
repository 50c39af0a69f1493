//! Uploaded artifact content (`artifact_blobs`, `artifact_chunks`).
//!
//! An upload writes a blob row with `sha256` NULL, then its chunks, each
//! in a short transaction of its own (a 1 GiB upload never holds the
//! writer for long), and finishes in one transaction that either names
//! the blob by its digest or, when that content is already stored, drops
//! the new copy and uses the stored one; the same transaction stores the
//! artifact row pointing at it. Until then nothing refers to the blob, so
//! a broken upload is invisible, and the sweeper's [`collect_garbage`]
//! removes it once idle, as it removes content no artifact refers to.

use diesel::prelude::*;

use super::artifacts::{self, Access};
use super::records::{Artifact, NewArtifact, PutArtifact};
use super::runs::db_now;
use crate::db::DbConnection;
use crate::db::schema::{artifact_blobs as b, artifact_chunks as c, artifacts as a};
use crate::error::{Error, Result};
use crate::security::ProjectScope;

/// The `uri` of an artifact whose content the server holds.
pub const CONTENT_URI_PREFIX: &str = "mlmeta:sha256:";

/// Blobs removed per sweeper transaction.
const GARBAGE_BATCH: i64 = 8;

/// Where a finished upload's content ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// The artifact row as the put left it.
    pub put: PutArtifact,
    /// The same content was already stored: the upload's copy was dropped.
    pub content_existed: bool,
}

/// A stored artifact's content to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    /// The artifact.
    pub artifact: Artifact,
    /// Its blob.
    pub blob_id: i64,
    /// Its chunks are numbered `0..chunks`.
    pub chunks: i64,
}

/// Starts an upload for an artifact of model `model_name`: checks that the
/// model exists and takes writes, and returns the new blob's id.
fn begin(conn: &mut DbConnection, project_id: i64, model_name: &str) -> Result<i64> {
    artifacts::model_id(conn, project_id, model_name, Access::Write)?;
    let now = db_now(conn)?;
    let id = super::on_backend!(conn, |c| diesel::insert_into(b::table)
        .values((
            b::sha256.eq(None::<String>),
            b::size_bytes.eq(0_i64),
            b::created_at.eq(now),
            b::referenced_at.eq(now),
        ))
        .returning(b::id)
        .get_result::<i64>(c))?;
    Ok(id)
}

/// Stores chunk `seq` of blob `blob_id` (still uploading).
fn append(conn: &mut DbConnection, blob_id: i64, seq: i64, data: &[u8]) -> Result<()> {
    let now = db_now(conn)?;
    // Keeps the sweeper off an upload that is still streaming in, and
    // finds out whether the sweeper took it meanwhile.
    let pending = diesel::update(b::table.filter(b::id.eq(blob_id)).filter(b::sha256.is_null()))
        .set(b::referenced_at.eq(now))
        .execute(conn)?;
    if pending == 0 {
        return Err(Error::Conflict(
            "the upload was idle too long and its content was removed; upload again".into(),
        ));
    }
    diesel::insert_into(c::table)
        .values((c::blob_id.eq(blob_id), c::seq.eq(seq), c::data.eq(data)))
        .execute(conn)?;
    Ok(())
}

/// Removes blob `blob_id` and its chunks.
fn remove_blob(conn: &mut DbConnection, blob_id: i64) -> Result<()> {
    diesel::delete(c::table.filter(c::blob_id.eq(blob_id))).execute(conn)?;
    diesel::delete(b::table.filter(b::id.eq(blob_id))).execute(conn)?;
    Ok(())
}

/// Whether content with digest `sha256` is stored (an upload of it then
/// only hashes what arrives, and writes nothing).
fn content_exists(conn: &mut DbConnection, sha256: &str) -> Result<bool> {
    Ok(b::table
        .filter(b::sha256.eq(sha256))
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

/// Names blob `blob_id` by its `sha256` (or drops it for the stored copy
/// of the same content) and stores `new` pointing at it. `discarded`: the
/// upload wrote no chunks because the content was stored already.
fn finish(
    conn: &mut DbConnection,
    project_id: i64,
    model_name: &str,
    blob_id: i64,
    new: &NewArtifact,
    overwrite: bool,
    discarded: bool,
) -> Result<Uploaded> {
    let sha256 = new
        .content_sha256
        .as_deref()
        .ok_or_else(|| Error::Corrupt("an upload finished without its digest".into()))?;
    let now = db_now(conn)?;
    // Touching the stored copy both claims it (the sweeper skips content
    // referenced within its grace) and tells whether it is still there.
    let existing = diesel::update(b::table.filter(b::sha256.eq(sha256)))
        .set(b::referenced_at.eq(now))
        .execute(conn)?;
    let content_existed = existing > 0;
    if content_existed {
        remove_blob(conn, blob_id)?;
    } else if discarded {
        // The stored copy was removed while this upload streamed in (its
        // last artifact went and the grace passed): nothing holds the bytes.
        return Err(Error::Conflict(
            "the stored copy of this content was removed during the upload; upload again".into(),
        ));
    } else {
        let named = diesel::update(b::table.filter(b::id.eq(blob_id)).filter(b::sha256.is_null()))
            .set((
                b::sha256.eq(sha256),
                b::size_bytes.eq(new.size_bytes.unwrap_or_default()),
                b::referenced_at.eq(now),
            ))
            .execute(conn)
            .map_err(|error| match error {
                // The same content finished uploading in a concurrent
                // transaction (PostgreSQL): running this one again finds
                // it and uses it.
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                ) => Error::Conflict("the same content was stored concurrently".into()),
                other => other.into(),
            })?;
        if named == 0 {
            return Err(Error::Conflict(
                "the upload was idle too long and its content was removed; upload again".into(),
            ));
        }
    }
    let put = artifacts::put(conn, project_id, model_name, new, overwrite)?;
    Ok(Uploaded { put, content_existed })
}

/// The artifact `name` of model `model_name` and where its content is.
fn open_download(conn: &mut DbConnection, project_id: i64, model_name: &str, name: &str) -> Result<Download> {
    let model_id = artifacts::model_id(conn, project_id, model_name, Access::Read)?;
    let (artifact, content) = artifacts::find_with_content(conn, model_id, name)?
        .ok_or_else(|| Error::NotFound(format!("name: model {model_name:?} has no artifact {name:?}")))?;
    let Some(sha256) = content else {
        return Err(Error::FailedPrecondition(format!(
            "name: artifact {name:?} of model {model_name:?} is a reference to {}; the server holds no content for it",
            artifact.uri
        )));
    };
    let blob_id = b::table
        .filter(b::sha256.eq(&sha256))
        .select(b::id)
        .first::<i64>(conn)
        .optional()?
        .ok_or_else(|| Error::Corrupt(format!("the content {sha256} of artifact {name:?} is missing")))?;
    let chunks = c::table
        .filter(c::blob_id.eq(blob_id))
        .count()
        .get_result::<i64>(conn)?;
    Ok(Download {
        artifact,
        blob_id,
        chunks,
    })
}

fn read_chunk(conn: &mut DbConnection, blob_id: i64, seq: i64) -> Result<Vec<u8>> {
    c::table
        .filter(c::blob_id.eq(blob_id))
        .filter(c::seq.eq(seq))
        .select(c::data)
        .first::<Vec<u8>>(conn)
        .optional()?
        .ok_or_else(|| {
            Error::Conflict(
                "the artifact was replaced or deleted during the download; download it again".into(),
            )
        })
}

/// Removes up to [`GARBAGE_BATCH`] blobs that nothing has touched for
/// `grace_micros`: broken uploads, and content no artifact refers to.
/// Returns how many it removed.
pub(super) fn collect_garbage(conn: &mut DbConnection, grace_micros: i64) -> Result<usize> {
    let now = db_now(conn)?;
    let idle_since = now.saturating_sub(grace_micros);
    let referenced = a::table
        .filter(a::content_sha256.nullable().eq(b::sha256.nullable()))
        .select(a::model_id);
    let garbage: Vec<i64> = b::table
        .filter(b::referenced_at.lt(idle_since))
        .filter(
            b::sha256
                .is_null()
                .or(diesel::dsl::not(diesel::dsl::exists(referenced))),
        )
        .select(b::id)
        .order(b::id)
        .limit(GARBAGE_BATCH)
        .load(conn)?;
    for &blob_id in &garbage {
        remove_blob(conn, blob_id)?;
    }
    Ok(garbage.len())
}

impl super::Store {
    /// Starts an upload for an artifact of model `model_name` of `project`
    /// (NOT_FOUND, or FAILED_PRECONDITION for a deleted model, before any
    /// byte is sent); the blob id to append to.
    pub fn begin_upload(&self, project: &ProjectScope, model_name: &str) -> Result<i64> {
        self.write_in(project, model_name, |conn, project_id| {
            begin(conn, project_id, model_name)
        })
    }

    /// Stores chunk `seq` (0, 1, ...) of upload `blob_id`.
    pub fn append_upload(&self, blob_id: i64, seq: i64, data: &[u8]) -> Result<()> {
        self.write(|conn| append(conn, blob_id, seq, data))
    }

    /// Whether content with digest `sha256` is stored already.
    pub fn content_exists(&self, sha256: &str) -> Result<bool> {
        self.read(|conn| content_exists(conn, sha256))
    }

    /// Finishes upload `blob_id` as artifact `new` (its `content_sha256`
    /// and `size_bytes` set) of model `model_name`; `discarded`: its chunks
    /// were not stored because the content was.
    pub fn finish_upload(
        &self,
        project: &ProjectScope,
        model_name: &str,
        blob_id: i64,
        new: &NewArtifact,
        overwrite: bool,
        discarded: bool,
    ) -> Result<Uploaded> {
        self.write_in(project, model_name, |conn, project_id| {
            finish(conn, project_id, model_name, blob_id, new, overwrite, discarded)
        })
    }

    /// Drops upload `blob_id` (it failed): its chunks go at once rather
    /// than after the sweeper's grace.
    pub fn abandon_upload(&self, blob_id: i64) -> Result<()> {
        self.write(|conn| {
            let pending = b::table
                .filter(b::id.eq(blob_id))
                .filter(b::sha256.is_null())
                .count()
                .get_result::<i64>(conn)?;
            if pending > 0 {
                remove_blob(conn, blob_id)?;
            }
            Ok(())
        })
    }

    /// The artifact `name` of model `model_name` of `project` and where its
    /// content is.
    pub fn open_download(&self, project: &ProjectScope, model_name: &str, name: &str) -> Result<Download> {
        self.read(|conn| {
            let project_id = self.project_ids.find(conn, project)?.unwrap_or(-1);
            open_download(conn, project_id, model_name, name)
        })
    }

    /// Chunk `seq` of blob `blob_id`; ABORTED when the blob is gone.
    pub fn read_content_chunk(&self, blob_id: i64, seq: i64) -> Result<Vec<u8>> {
        self.read(|conn| read_chunk(conn, blob_id, seq))
    }
}
