//! Artifact content: uploading a file's bytes into the server and
//! downloading them back, in chunks, verified by SHA-256 at both ends.
//!
//! ```no_run
//! use mlmeta_client::{Client, UploadOptions};
//!
//! # async fn example(client: Client) -> mlmeta_client::Result<()> {
//! let uploaded = client
//!     .upload_artifact_file("run-7", "checkpoint", "epoch-49.pt".as_ref(), UploadOptions::default(), |_| {})
//!     .await?;
//! assert!(uploaded.artifact.content_stored);
//! let artifact = client
//!     .download_artifact_file("run-7", "checkpoint", "restored.pt".as_ref(), |_| {})
//!     .await?;
//! assert_eq!(artifact.sha256, uploaded.artifact.sha256);
//! # Ok(())
//! # }
//! ```

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use futures::{SinkExt as _, StreamExt as _};
use mlmeta_proto as pb;
use mlmeta_proto::download_artifact_response::Part as DownloadPart;
use mlmeta_proto::upload_artifact_request::Part as UploadPart;
use sha2::{Digest as _, Sha256};

use crate::artifacts::{Artifact, from_pb};
use crate::client::Client;
use crate::error::{Error, Result};

/// Bytes per upload message.
pub const UPLOAD_CHUNK_BYTES: usize = 1 << 20;

/// Upload messages read ahead of the network.
const UPLOAD_AHEAD: usize = 4;

/// What an upload asks for beyond the content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadOptions {
    /// Media type `type/subtype`.
    pub media_type: Option<String>,
    /// Replace a different artifact stored under the name.
    pub overwrite: bool,
}

/// The answer to an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactUpload {
    /// The artifact as stored (`content_stored`).
    pub artifact: Artifact,
    /// An identical artifact was already stored under the name.
    pub already_existed: bool,
    /// A different artifact under the name was replaced.
    pub replaced: bool,
    /// The same content was already stored on the server (under any name),
    /// so it took no more room.
    pub content_existed: bool,
}

fn local(context: &str, path: &Path, error: &std::io::Error) -> Error {
    Error::LocalIo(format!("{context} {}: {error}", path.display()))
}

/// The SHA-256 (lower-case hex) and size of the file at `path`, read in
/// 1 MiB pieces (what an upload's header carries; `mlmeta import-dir`
/// records the same for its `file://` references). A file that cannot be
/// read is [`Error::LocalIo`].
pub fn digest_file(path: &Path) -> Result<(String, u64)> {
    let mut file = File::open(path).map_err(|e| local("cannot open", path, &e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; UPLOAD_CHUNK_BYTES];
    let mut size = 0_u64;
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|e| local("cannot read", path, &e))?;
        if read == 0 {
            return Ok((hex::encode(hasher.finalize()), size));
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
}

/// Reads `path` in chunks on a blocking thread into `messages`, after
/// `header`; stops at the end, at an error (sent as `Err` on `errors`), or
/// when the receiver goes away.
fn read_into(
    path: PathBuf,
    header: pb::UploadArtifactHeader,
    mut messages: futures::channel::mpsc::Sender<pb::UploadArtifactRequest>,
    errors: std::sync::mpsc::Sender<Error>,
) {
    let send = |messages: &mut futures::channel::mpsc::Sender<_>, part| {
        futures::executor::block_on(messages.send(pb::UploadArtifactRequest { part: Some(part) })).is_ok()
    };
    if !send(&mut messages, UploadPart::Header(header)) {
        return;
    }
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) => {
            let _ = errors.send(local("cannot open", &path, &e));
            return;
        }
    };
    loop {
        let mut chunk = vec![0_u8; UPLOAD_CHUNK_BYTES];
        let mut filled = 0;
        while filled < chunk.len() {
            match file.read(&mut chunk[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = errors.send(local("cannot read", &path, &e));
                    // Dropping `messages` without its end would look like a
                    // complete upload: the error ends the call instead.
                    messages.disconnect();
                    return;
                }
            }
        }
        if filled == 0 {
            return;
        }
        chunk.truncate(filled);
        if !send(&mut messages, UploadPart::Chunk(chunk)) {
            return;
        }
    }
}

impl Client {
    /// Uploads the file at `path` as artifact `name` of model `model_name`.
    ///
    /// The file is read twice: first for its SHA-256 and size, which go in
    /// the upload's header so that the server refuses content that arrived
    /// different (and a file too large before any byte), then in chunks of
    /// [`UPLOAD_CHUNK_BYTES`]. `progress` is told the bytes sent so far.
    /// Not retried: an upload that fails stored nothing visible; call again.
    pub async fn upload_artifact_file(
        &self,
        model_name: &str,
        name: &str,
        path: &Path,
        options: UploadOptions,
        mut progress: impl FnMut(u64) + Send + 'static,
    ) -> Result<ArtifactUpload> {
        let digest_path = path.to_owned();
        let (sha256, size) = tokio::task::spawn_blocking(move || digest_file(&digest_path))
            .await
            .map_err(|e| Error::LocalIo(format!("the file reader failed: {e}")))??;
        let header = pb::UploadArtifactHeader {
            model_name: model_name.to_owned(),
            name: name.to_owned(),
            project: self.project().to_owned(),
            sha256: Some(sha256),
            size_bytes: Some(size),
            media_type: options.media_type,
            overwrite: options.overwrite,
        };
        let (messages, receiver) = futures::channel::mpsc::channel(UPLOAD_AHEAD);
        let (errors, read_error) = std::sync::mpsc::channel();
        let reader_path = path.to_owned();
        let reader = tokio::task::spawn_blocking(move || read_into(reader_path, header, messages, errors));
        let mut sent = 0_u64;
        let counted = receiver.inspect(move |message: &pb::UploadArtifactRequest| {
            if let Some(UploadPart::Chunk(chunk)) = &message.part {
                sent += chunk.len() as u64;
                progress(sent);
            }
        });
        let answer = self.open_upload(counted).await;
        let _ = reader.await;
        if let Ok(error) = read_error.try_recv() {
            return Err(error);
        }
        let answer = answer?;
        let artifact = answer
            .artifact
            .ok_or_else(|| Error::InvalidResponse("the answer lacks `artifact`".into()))?;
        Ok(ArtifactUpload {
            artifact: from_pb("artifact", artifact)?,
            already_existed: answer.already_existed,
            replaced: answer.replaced,
            content_existed: answer.content_existed,
        })
    }

    /// Downloads the content of artifact `name` of model `model_name` into
    /// a new file at `path` (an existing file is replaced only once the
    /// whole content arrived and matched its SHA-256 and size: it is
    /// written under a temporary name beside `path` first). `progress` is
    /// told the bytes received so far. Returns the artifact.
    pub async fn download_artifact_file(
        &self,
        model_name: &str,
        name: &str,
        path: &Path,
        mut progress: impl FnMut(u64),
    ) -> Result<Artifact> {
        let request = pb::DownloadArtifactRequest {
            model_name: model_name.to_owned(),
            name: name.to_owned(),
            project: self.project().to_owned(),
        };
        let mut parts = self.open_download(request).await?;
        let artifact = match parts.next().await {
            Some(Ok(pb::DownloadArtifactResponse {
                part: Some(DownloadPart::Artifact(artifact)),
            })) => from_pb("artifact", artifact)?,
            Some(Err(status)) => return Err(Error::from(status)),
            _ => {
                return Err(Error::InvalidResponse(
                    "a download must start with its artifact".into(),
                ));
            }
        };
        let partial = partial_path(path);
        let (chunks, written) = std::sync::mpsc::sync_channel::<Vec<u8>>(UPLOAD_AHEAD);
        let writer_path = partial.clone();
        let writer = tokio::task::spawn_blocking(move || write_from(&writer_path, &written));
        let mut hasher = Sha256::new();
        let mut size = 0_u64;
        let mut failure = None;
        while let Some(part) = parts.next().await {
            match part {
                Ok(pb::DownloadArtifactResponse {
                    part: Some(DownloadPart::Chunk(chunk)),
                }) => {
                    hasher.update(&chunk);
                    size += chunk.len() as u64;
                    progress(size);
                    if chunks.send(chunk).is_err() {
                        break; // the writer failed: it says why
                    }
                }
                Ok(_) => {
                    failure = Some(Error::InvalidResponse("a download sent a second artifact".into()));
                    break;
                }
                Err(status) => {
                    failure = Some(Error::from(status));
                    break;
                }
            }
        }
        drop(chunks);
        let wrote = writer
            .await
            .map_err(|e| Error::LocalIo(format!("the file writer failed: {e}")))?;
        let checked = match (failure, wrote) {
            (Some(error), _) | (None, Err(error)) => Err(error),
            (None, Ok(())) => verify(&artifact, &hex::encode(hasher.finalize()), size),
        };
        if let Err(error) = checked {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
        std::fs::rename(&partial, path).map_err(|e| local("cannot rename the download to", path, &e))?;
        Ok(artifact)
    }

    async fn open_upload(
        &self,
        messages: impl futures::Stream<Item = pb::UploadArtifactRequest> + Send + 'static,
    ) -> Result<pb::UploadArtifactResponse> {
        let mut request = tonic::Request::new(messages);
        self.authorize(&mut request);
        let mut grpc = self.grpc();
        Ok(grpc.upload_artifact(request).await?.into_inner())
    }

    async fn open_download(
        &self,
        message: pb::DownloadArtifactRequest,
    ) -> Result<tonic::Streaming<pb::DownloadArtifactResponse>> {
        let mut request = tonic::Request::new(message);
        self.authorize(&mut request);
        let mut grpc = self.grpc();
        Ok(grpc.download_artifact(request).await?.into_inner())
    }
}

/// Checks what arrived against what the server said it sends.
fn verify(artifact: &Artifact, sha256: &str, size: u64) -> Result<()> {
    if artifact.sha256.as_deref() != Some(sha256) || artifact.size_bytes != Some(size) {
        return Err(Error::InvalidResponse(format!(
            "the content received ({size} bytes, SHA-256 {sha256}) is not the artifact's ({} bytes, SHA-256 {}): nothing was written",
            artifact
                .size_bytes
                .map_or_else(|| "?".to_owned(), |s| s.to_string()),
            artifact.sha256.as_deref().unwrap_or("?")
        )));
    }
    Ok(())
}

/// `.<name>.download-<pid>` beside `path`.
fn partial_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "artifact".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.download-{}", std::process::id()))
}

/// Writes the chunks of `written` to a new file at `path`, synced.
fn write_from(path: &Path, written: &std::sync::mpsc::Receiver<Vec<u8>>) -> Result<()> {
    let mut file = File::create(path).map_err(|e| local("cannot create", path, &e))?;
    for chunk in written {
        file.write_all(&chunk)
            .map_err(|e| local("cannot write", path, &e))?;
    }
    file.sync_all().map_err(|e| local("cannot sync", path, &e))
}
