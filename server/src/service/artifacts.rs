//! Artifact reference handlers (PutArtifact, ListArtifacts,
//! DeleteArtifact) and their conversions; `MetadataApi`'s trait impl
//! delegates to these. Same shape as the others: validate and convert, one
//! store call on a blocking thread, convert the result.

use mlmeta_proto as pb;
use tonic::{Request, Response};

use super::{MetadataApi, Reply, convert, project_of};
use crate::error::Result;
use crate::store::records::{Artifact, NewArtifact};
use crate::validate::{self, artifacts as rules};

pub(super) async fn put_artifact(
    api: &MetadataApi,
    request: Request<pb::PutArtifactRequest>,
) -> Reply<pb::PutArtifactResponse> {
    let project = project_of(&request, &request.get_ref().project)?;
    let request = request.into_inner();
    validate::name("model_name", &request.model_name)?;
    let new = new_artifact(convert::required("artifact", request.artifact)?)?;
    let (model_name, overwrite) = (request.model_name, request.overwrite);
    let put = api
        .run(move |store| store.put_artifact(&project, &model_name, &new, overwrite))
        .await?;
    Ok(Response::new(pb::PutArtifactResponse {
        artifact: Some(artifact(put.artifact)),
        already_existed: put.already_existed,
        replaced: put.replaced,
    }))
}

pub(super) async fn list_artifacts(
    api: &MetadataApi,
    request: Request<pb::ListArtifactsRequest>,
) -> Reply<pb::ListArtifactsResponse> {
    let project = project_of(&request, &request.get_ref().project)?;
    let model_name = request.into_inner().model_name;
    validate::name("model_name", &model_name)?;
    let artifacts = api
        .run(move |store| store.list_artifacts(&project, &model_name))
        .await?;
    Ok(Response::new(pb::ListArtifactsResponse {
        artifacts: artifacts.into_iter().map(artifact).collect(),
    }))
}

pub(super) async fn delete_artifact(
    api: &MetadataApi,
    request: Request<pb::DeleteArtifactRequest>,
) -> Reply<pb::DeleteArtifactResponse> {
    let project = project_of(&request, &request.get_ref().project)?;
    let request = request.into_inner();
    validate::name("model_name", &request.model_name)?;
    validate::name("name", &request.name)?;
    let (model_name, name) = (request.model_name, request.name);
    let deleted = api
        .run(move |store| store.delete_artifact(&project, &model_name, &name))
        .await?;
    Ok(Response::new(pb::DeleteArtifactResponse { deleted }))
}

/// A validated artifact of a PutArtifact request: digest and media type
/// in lower case.
pub(super) fn new_artifact(artifact: pb::Artifact) -> Result<NewArtifact> {
    validate::name("artifact.name", &artifact.name)?;
    rules::uri("artifact.uri", &artifact.uri)?;
    let sha256 = artifact
        .sha256
        .as_deref()
        .map(|digest| rules::sha256("artifact.sha256", digest))
        .transpose()?;
    let size_bytes = artifact
        .size_bytes
        .map(|size| rules::size_bytes("artifact.size_bytes", size))
        .transpose()?;
    let media_type = artifact
        .media_type
        .as_deref()
        .map(|media_type| rules::media_type("artifact.media_type", media_type))
        .transpose()?;
    Ok(NewArtifact {
        name: artifact.name,
        uri: artifact.uri,
        sha256,
        size_bytes,
        media_type,
        content_sha256: None,
    })
}

/// The protobuf message of a stored artifact.
pub(super) fn artifact(artifact: Artifact) -> pb::Artifact {
    pb::Artifact {
        name: artifact.name,
        uri: artifact.uri,
        sha256: artifact.sha256,
        // Stored values went through `rules::size_bytes`: never negative.
        size_bytes: artifact.size_bytes.and_then(|size| u64::try_from(size).ok()),
        media_type: artifact.media_type,
        created_at: convert::timestamp(artifact.created_at),
        content_stored: artifact.content_stored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, uri: &str) -> pb::Artifact {
        pb::Artifact {
            name: name.into(),
            uri: uri.into(),
            ..pb::Artifact::default()
        }
    }

    #[test]
    fn new_artifacts_are_validated_and_normalized() {
        let new = new_artifact(pb::Artifact {
            sha256: Some("AB".repeat(32)),
            size_bytes: Some(7),
            media_type: Some("Application/Octet-Stream".into()),
            ..request("ckpt", "s3://b/k")
        })
        .unwrap();
        assert_eq!(new.sha256.as_deref(), Some("ab".repeat(32).as_str()));
        assert_eq!(new.size_bytes, Some(7));
        assert_eq!(new.media_type.as_deref(), Some("application/octet-stream"));
        for (bad, field) in [
            (request("", "s3://b/k"), "artifact.name: "),
            (request("a\nb", "s3://b/k"), "artifact.name: "),
            (request("ckpt", "model.pt"), "artifact.uri: "),
            (
                pb::Artifact {
                    sha256: Some("x".into()),
                    ..request("ckpt", "s3://b/k")
                },
                "artifact.sha256: ",
            ),
            (
                pb::Artifact {
                    size_bytes: Some(u64::MAX),
                    ..request("ckpt", "s3://b/k")
                },
                "artifact.size_bytes: ",
            ),
            (
                pb::Artifact {
                    media_type: Some(String::new()),
                    ..request("ckpt", "s3://b/k")
                },
                "artifact.media_type: ",
            ),
        ] {
            let message = new_artifact(bad).unwrap_err().to_string();
            assert!(message.starts_with(field), "{message}");
        }
    }
}
