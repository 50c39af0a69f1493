//! Artifact references: named pointers from a model to its files stored
//! elsewhere (a checkpoint on `s3://`, an export on `https://`). The
//! server keeps the reference; `artifact_content.rs` uploads the bytes
//! themselves.
//!
//! ```no_run
//! use mlmeta_client::{Artifact, Client};
//!
//! # async fn example(client: Client) -> mlmeta_client::Result<()> {
//! let checkpoint = Artifact::new("checkpoint", "s3://models/run-7/epoch-49.pt")
//!     .with_sha256("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
//!     .with_size(48_213_990)
//!     .with_media_type("application/octet-stream");
//! let put = client.put_artifact("run-7", &checkpoint, false).await?;
//! assert!(!put.already_existed);
//! let artifacts = client.list_artifacts("run-7").await?;
//! assert_eq!(artifacts[0].uri, "s3://models/run-7/epoch-49.pt");
//! assert!(client.delete_artifact("run-7", "checkpoint").await?);
//! # Ok(())
//! # }
//! ```

use std::time::SystemTime;

use mlmeta_proto as pb;

use crate::client::Client;
use crate::convert;
use crate::error::{Error, Result};

/// A named reference from a model to a file stored elsewhere.
///
/// ```
/// use mlmeta_client::Artifact;
///
/// let artifact = Artifact::new("onnx", "gs://exports/run-7.onnx").with_size(1_024);
/// assert_eq!(artifact.size_bytes, Some(1_024));
/// assert!(artifact.sha256.is_none() && artifact.created_at.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// Unique within its model; 1 to 255 bytes, no control characters.
    pub name: String,
    /// Where the file is: a URI with a scheme (`s3://`, `gs://`,
    /// `file://`, `https://`, ...), at most 4,096 bytes, without spaces or
    /// control characters.
    pub uri: String,
    /// SHA-256 of the file, 64 hex digits (either case is accepted; the
    /// server stores and returns lower case).
    pub sha256: Option<String>,
    /// Size of the file in bytes (at most `i64::MAX`).
    pub size_bytes: Option<u64>,
    /// Media type `type/subtype` without parameters (the server stores and
    /// returns it in lower case).
    pub media_type: Option<String>,
    /// When the server stored this record (its database clock); `None` on
    /// records built locally.
    pub created_at: Option<SystemTime>,
    /// The server holds the bytes (uploaded with
    /// [`Client::upload_artifact_file`]; `uri` is then
    /// `mlmeta:sha256:<sha256>`). Set by the server; ignored on input.
    pub content_stored: bool,
}

impl Artifact {
    /// An artifact named `name` at `uri`, without digest, size or media type.
    pub fn new(name: impl Into<String>, uri: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            uri: uri.into(),
            sha256: None,
            size_bytes: None,
            media_type: None,
            created_at: None,
            content_stored: false,
        }
    }

    /// This artifact with the SHA-256 digest `hex` of its file.
    #[must_use]
    pub fn with_sha256(mut self, hex: impl Into<String>) -> Self {
        self.sha256 = Some(hex.into());
        self
    }

    /// This artifact with its file's size in bytes.
    #[must_use]
    pub fn with_size(mut self, bytes: u64) -> Self {
        self.size_bytes = Some(bytes);
        self
    }

    /// This artifact with its file's media type (`type/subtype`).
    #[must_use]
    pub fn with_media_type(mut self, media_type: impl Into<String>) -> Self {
        self.media_type = Some(media_type.into());
        self
    }

    fn to_pb(&self) -> pb::Artifact {
        pb::Artifact {
            name: self.name.clone(),
            uri: self.uri.clone(),
            sha256: self.sha256.clone(),
            size_bytes: self.size_bytes,
            media_type: self.media_type.clone(),
            created_at: None,
            content_stored: false,
        }
    }
}

/// The answer to [`Client::put_artifact`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactPut {
    /// The artifact as stored now.
    pub artifact: Artifact,
    /// Whether an artifact of that name was stored before the call.
    pub already_existed: bool,
    /// Whether `overwrite` replaced a different record.
    pub replaced: bool,
}

/// An artifact of an answer.
pub(crate) fn from_pb(field: &str, artifact: pb::Artifact) -> Result<Artifact> {
    Ok(Artifact {
        created_at: convert::time(&format!("{field}.created_at"), artifact.created_at)?,
        name: artifact.name,
        uri: artifact.uri,
        sha256: artifact.sha256,
        size_bytes: artifact.size_bytes,
        media_type: artifact.media_type,
        content_stored: artifact.content_stored,
    })
}

/// The artifacts of an answer (`field` names the list).
pub(crate) fn all_from_pb(field: &str, artifacts: Vec<pb::Artifact>) -> Result<Vec<Artifact>> {
    artifacts
        .into_iter()
        .enumerate()
        .map(|(i, artifact)| from_pb(&format!("{field}[{i}]"), artifact))
        .collect()
}

impl Client {
    /// Stores `artifact` as an artifact of model `model_name`. Putting an
    /// identical record again succeeds with `already_existed`; a different
    /// record under the same name is [`Error::AlreadyExists`] naming the
    /// fields that differ, unless `overwrite`, which replaces it
    /// (`replaced`). An unknown model is [`Error::NotFound`]; an invalid
    /// URI, digest, size or media type is [`Error::InvalidArgument`].
    pub async fn put_artifact(
        &self,
        model_name: &str,
        artifact: &Artifact,
        overwrite: bool,
    ) -> Result<ArtifactPut> {
        let request = pb::PutArtifactRequest {
            model_name: model_name.to_owned(),
            artifact: Some(artifact.to_pb()),
            overwrite,
            project: self.project().to_owned(),
        };
        let response = self
            .unary(request, |mut grpc, r| async move { grpc.put_artifact(r).await })
            .await?;
        let artifact = response
            .artifact
            .ok_or_else(|| Error::InvalidResponse("the answer lacks `artifact`".into()))?;
        Ok(ArtifactPut {
            artifact: from_pb("artifact", artifact)?,
            already_existed: response.already_existed,
            replaced: response.replaced,
        })
    }

    /// The artifacts of model `model_name`, by name (all of them: a model
    /// holds at most 256). An unknown model is [`Error::NotFound`].
    pub async fn list_artifacts(&self, model_name: &str) -> Result<Vec<Artifact>> {
        let request = pb::ListArtifactsRequest {
            model_name: model_name.to_owned(),
            project: self.project().to_owned(),
        };
        let response = self
            .unary(request, |mut grpc, r| async move { grpc.list_artifacts(r).await })
            .await?;
        all_from_pb("artifacts", response.artifacts)
    }

    /// Deletes the artifact `name` of model `model_name`; whether it was
    /// there. Deleting an absent artifact is not an error (so a retried
    /// call that the server had already applied answers `false`). An
    /// unknown model is [`Error::NotFound`].
    pub async fn delete_artifact(&self, model_name: &str, name: &str) -> Result<bool> {
        let request = pb::DeleteArtifactRequest {
            model_name: model_name.to_owned(),
            name: name.to_owned(),
            project: self.project().to_owned(),
        };
        let response = self
            .unary(
                request,
                |mut grpc, r| async move { grpc.delete_artifact(r).await },
            )
            .await?;
        Ok(response.deleted)
    }
}
