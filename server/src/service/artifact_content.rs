//! `UploadArtifact` and `DownloadArtifact`: artifact bytes in and out, in
//! chunks, never the whole file in memory.
//!
//! An upload is hashed as it arrives and stored in [`STORED_CHUNK_BYTES`]
//! pieces whatever the client's chunk size, one short write each, so
//! memory per upload stays about one stored chunk plus one message. Only
//! its last transaction makes the artifact visible; any failure drops what
//! was stored of it.

use futures::StreamExt as _;
use mlmeta_proto as pb;
use mlmeta_proto::download_artifact_response::Part as DownloadPart;
use mlmeta_proto::upload_artifact_request::Part as UploadPart;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::{MetadataApi, Reply, artifacts::artifact, caller_of, watch_slot};
use crate::error::{Error, Result};
use crate::security::ProjectScope;
use crate::store::records::NewArtifact;
use crate::store::{CONTENT_URI_PREFIX, Store};
use crate::validate::{self, artifacts as rules};

/// Size of the pieces content is stored (and downloaded) in.
pub(super) const STORED_CHUNK_BYTES: usize = 1 << 20;

/// Chunks a download reads ahead of the client.
const DOWNLOAD_AHEAD: usize = 4;

/// The answer stream of DownloadArtifact.
pub(super) type Chunks = ReceiverStream<std::result::Result<pb::DownloadArtifactResponse, Status>>;

/// What the header of an upload asks for, validated.
struct Header {
    project: ProjectScope,
    model_name: String,
    name: String,
    sha256: Option<String>,
    size_bytes: Option<i64>,
    media_type: Option<String>,
    overwrite: bool,
}

pub(super) async fn upload_artifact(
    api: &MetadataApi,
    request: Request<Streaming<pb::UploadArtifactRequest>>,
) -> Reply<pb::UploadArtifactResponse> {
    let caller = caller_of(&request)?.clone();
    let mut parts = request.into_inner();
    let header = match parts.message().await? {
        Some(pb::UploadArtifactRequest {
            part: Some(UploadPart::Header(header)),
        }) => header,
        _ => {
            return Err(Error::invalid("header", "the first message of an upload must be its header").into());
        }
    };
    let header = Header {
        project: caller.project("header.project", &header.project)?,
        sha256: header
            .sha256
            .as_deref()
            .map(|digest| rules::sha256("header.sha256", digest))
            .transpose()?,
        size_bytes: header
            .size_bytes
            .map(|size| rules::size_bytes("header.size_bytes", size))
            .transpose()?,
        media_type: header
            .media_type
            .as_deref()
            .map(|media_type| rules::media_type("header.media_type", media_type))
            .transpose()?,
        overwrite: header.overwrite,
        model_name: valid_name("header.model_name", header.model_name)?,
        name: valid_name("header.name", header.name)?,
    };
    let max = api.store.max_artifact_bytes();
    if let Some(size) = header.size_bytes
        && size.unsigned_abs() > max
    {
        return Err(too_large("header.size_bytes", size.unsigned_abs(), max).into());
    }
    let model = header.model_name.clone();
    let blob_id = api
        .run_in(&header.project, move |store, project| {
            store.begin_upload(project, &model)
        })
        .await?;
    // Content the server holds already (the header names its digest) is
    // only hashed as it arrives, not written again.
    let discard = match header.sha256.clone() {
        Some(sha256) => api.run(move |store| store.content_exists(&sha256)).await?,
        None => false,
    };
    let stored = match receive(api, &mut parts, blob_id, max, discard).await {
        Ok((sha256, size)) => finish(api, &header, blob_id, sha256, size, discard).await,
        Err(error) => Err(error),
    };
    match stored {
        Ok(uploaded) => Ok(Response::new(pb::UploadArtifactResponse {
            artifact: Some(artifact(uploaded.put.artifact)),
            already_existed: uploaded.put.already_existed,
            replaced: uploaded.put.replaced,
            content_existed: uploaded.content_existed,
        })),
        Err(error) => {
            if let Err(cleanup) = api.run(move |store| store.abandon_upload(blob_id)).await {
                // The sweeper removes it after --artifact-grace-secs.
                tracing::warn!(%cleanup, blob_id, "could not drop a failed upload's content");
            }
            Err(error.into())
        }
    }
}

fn valid_name(field: &'static str, name: String) -> Result<String> {
    validate::name(field, &name)?;
    Ok(name)
}

fn too_large(field: &str, size: u64, max: u64) -> Error {
    Error::ResourceExhausted(format!(
        "{field}: the content is {size} bytes or more, larger than this server's --max-artifact-bytes ({max})"
    ))
}

/// Reads the content of an upload into blob `blob_id` (or, `discard`,
/// only hashes it); its digest (lower case hex) and size.
async fn receive(
    api: &MetadataApi,
    parts: &mut Streaming<pb::UploadArtifactRequest>,
    blob_id: i64,
    max: u64,
    discard: bool,
) -> Result<(String, i64)> {
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut pending: Vec<u8> = Vec::with_capacity(STORED_CHUNK_BYTES);
    let mut seq: i64 = 0;
    while let Some(message) = parts.next().await {
        let message = message
            .map_err(|status| Error::Unavailable(format!("the upload broke off: {}", status.message())))?;
        let chunk = match message.part {
            Some(UploadPart::Chunk(chunk)) => chunk,
            Some(UploadPart::Header(_)) => {
                return Err(Error::invalid(
                    "header",
                    "only the first message of an upload is its header",
                ));
            }
            None => return Err(Error::invalid("part", "a message of an upload must hold a chunk")),
        };
        size += chunk.len() as u64;
        if size > max {
            return Err(too_large("chunk", size, max));
        }
        hasher.update(&chunk);
        if discard {
            continue;
        }
        let mut rest: &[u8] = &chunk;
        while !rest.is_empty() {
            let room = STORED_CHUNK_BYTES - pending.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            pending.extend_from_slice(now);
            rest = later;
            if pending.len() == STORED_CHUNK_BYTES {
                store_chunk(api, blob_id, seq, std::mem::take(&mut pending)).await?;
                pending.reserve(STORED_CHUNK_BYTES);
                seq += 1;
            }
        }
    }
    if !pending.is_empty() {
        store_chunk(api, blob_id, seq, pending).await?;
    }
    let size = i64::try_from(size).map_err(|_| too_large("chunk", size, max))?;
    Ok((hex::encode(hasher.finalize()), size))
}

async fn store_chunk(api: &MetadataApi, blob_id: i64, seq: i64, data: Vec<u8>) -> Result<()> {
    api.run(move |store| store.append_upload(blob_id, seq, &data))
        .await
}

/// Checks the content against the header and makes the artifact visible.
async fn finish(
    api: &MetadataApi,
    header: &Header,
    blob_id: i64,
    sha256: String,
    size: i64,
    discarded: bool,
) -> Result<crate::store::Uploaded> {
    if let Some(expected) = &header.sha256
        && *expected != sha256
    {
        return Err(Error::invalid(
            "header.sha256",
            format!("the content received has SHA-256 {sha256}, not {expected}: nothing was stored"),
        ));
    }
    if let Some(expected) = header.size_bytes
        && expected != size
    {
        return Err(Error::invalid(
            "header.size_bytes",
            format!("the content received is {size} bytes, not {expected}: nothing was stored"),
        ));
    }
    let new = NewArtifact {
        name: header.name.clone(),
        uri: format!("{CONTENT_URI_PREFIX}{sha256}"),
        sha256: Some(sha256.clone()),
        size_bytes: Some(size),
        media_type: header.media_type.clone(),
        content_sha256: Some(sha256),
    };
    let (model, overwrite) = (header.model_name.clone(), header.overwrite);
    api.run_in(&header.project, move |store, project| {
        store.finish_upload(project, &model, blob_id, &new, overwrite, discarded)
    })
    .await
}

pub(super) async fn download_artifact(
    api: &MetadataApi,
    request: Request<pb::DownloadArtifactRequest>,
) -> Reply<Chunks> {
    let project = caller_of(&request)?.project("project", &request.get_ref().project)?;
    // Held by the task that sends the chunks: a download counts against
    // --max-watchers for as long as it streams.
    let slot = watch_slot(&request);
    let request = request.into_inner();
    let model_name = valid_name("model_name", request.model_name)?;
    let name = valid_name("name", request.name)?;
    let download = api
        .run_in(&project, move |store, project| {
            store.open_download(project, &model_name, &name)
        })
        .await?;
    let (sender, receiver) = mpsc::channel(DOWNLOAD_AHEAD);
    let first = pb::DownloadArtifactResponse {
        part: Some(DownloadPart::Artifact(artifact(download.artifact))),
    };
    let store = api.store.clone();
    tokio::spawn(async move {
        let _slot = slot;
        if sender.send(Ok(first)).await.is_err() {
            return;
        }
        for seq in 0..download.chunks {
            let store = store.clone();
            let chunk = tokio::task::spawn_blocking(move || read_chunk(&store, download.blob_id, seq))
                .await
                .map_err(|e| Status::from(Error::Task(e.to_string())))
                .and_then(|chunk| chunk.map_err(Status::from));
            let failed = chunk.is_err();
            let message = chunk.map(|data| pb::DownloadArtifactResponse {
                part: Some(DownloadPart::Chunk(data)),
            });
            // A client gone (send fails) or a chunk gone ends the stream.
            if sender.send(message).await.is_err() || failed {
                return;
            }
        }
    });
    Ok(Response::new(ReceiverStream::new(receiver)))
}

fn read_chunk(store: &Store, blob_id: i64, seq: i64) -> Result<Vec<u8>> {
    store.read_content_chunk(blob_id, seq)
}
