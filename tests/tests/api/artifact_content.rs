//! Artifact content (UploadArtifact, DownloadArtifact): bytes in and out
//! exactly, in any chunk sizes; content stored once per digest; a digest
//! or size that differs from the header's, a file over
//! `--max-artifact-bytes`, a broken upload: nothing visible, and nothing
//! left behind once the sweeper's grace has passed; the errors of a bad
//! header, an unknown or deleted model, a reference without content.

use std::time::Duration;

use futures::StreamExt as _;
use mlmeta_proto::download_artifact_response::Part as DownloadPart;
use mlmeta_proto::upload_artifact_request::Part as UploadPart;
use mlmeta_proto::{
    Artifact, DeleteArtifactRequest, DownloadArtifactRequest, ListArtifactsRequest, PutArtifactRequest,
    UploadArtifactHeader, UploadArtifactRequest, UploadArtifactResponse,
};
use mlmeta_tests::calls::{Client, expect_status, seed_model};
use mlmeta_tests::{Backend, TestServer, backend_tests_with_setup};
use rand::{Rng as _, SeedableRng as _};
use sha2::{Digest as _, Sha256};
use tonic::{Code, Status};

backend_tests_with_setup! {
    content_round_trips_in_any_chunk_sizes,
    the_same_content_is_stored_once,
    a_wrong_digest_or_size_stores_nothing,
    uploads_over_the_limit_are_resource_exhausted,
    a_broken_upload_leaves_nothing_after_the_grace,
    replaced_and_deleted_content_is_collected,
    bad_headers_and_missing_content_are_refused,
}

/// Server limit on one artifact in these tests.
const MAX_BYTES: u64 = 4 << 20;

async fn server(backend: Backend) -> Option<TestServer> {
    TestServer::with(
        backend,
        |config| {
            config.max_artifact_bytes = MAX_BYTES;
            config.artifact_grace_secs = 1;
            config.sweep_interval_ms = 100;
        },
        None,
    )
    .await
}

fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random::<u8>()).collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn header(model: &str, name: &str, bytes: &[u8]) -> UploadArtifactHeader {
    UploadArtifactHeader {
        model_name: model.to_owned(),
        name: name.to_owned(),
        sha256: Some(sha256(bytes)),
        size_bytes: Some(bytes.len() as u64),
        media_type: Some("application/octet-stream".to_owned()),
        ..UploadArtifactHeader::default()
    }
}

fn messages(header: UploadArtifactHeader, bytes: &[u8], chunk: usize) -> Vec<UploadArtifactRequest> {
    let mut messages = vec![UploadArtifactRequest {
        part: Some(UploadPart::Header(header)),
    }];
    messages.extend(bytes.chunks(chunk.max(1)).map(|piece| UploadArtifactRequest {
        part: Some(UploadPart::Chunk(piece.to_vec())),
    }));
    messages
}

async fn upload(
    client: &mut Client,
    messages: Vec<UploadArtifactRequest>,
) -> Result<UploadArtifactResponse, Status> {
    client
        .upload_artifact(futures::stream::iter(messages))
        .await
        .map(tonic::Response::into_inner)
}

/// The artifact and the bytes a download sends.
async fn download(client: &mut Client, model: &str, name: &str) -> Result<(Artifact, Vec<u8>), Status> {
    let request = DownloadArtifactRequest {
        model_name: model.to_owned(),
        name: name.to_owned(),
        project: String::new(),
    };
    let mut parts = client.download_artifact(request).await?.into_inner();
    let artifact = match parts.next().await.transpose()?.and_then(|m| m.part) {
        Some(DownloadPart::Artifact(artifact)) => artifact,
        other => panic!("a download starts with its artifact, got {other:?}"),
    };
    let mut bytes = Vec::new();
    while let Some(part) = parts.next().await.transpose()? {
        match part.part {
            Some(DownloadPart::Chunk(chunk)) => bytes.extend_from_slice(&chunk),
            other => panic!("expected a chunk, got {other:?}"),
        }
    }
    Ok((artifact, bytes))
}

async fn listed(client: &mut Client, model: &str) -> Vec<Artifact> {
    client
        .list_artifacts(ListArtifactsRequest {
            model_name: model.to_owned(),
            project: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .artifacts
}

/// Rows of `table` in the server's database, read with a connection of
/// our own.
fn rows(server: &TestServer, table: &str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let query = format!("SELECT count(*) AS n FROM {table}");
    let url = server.database_url();
    let counted = match url.sqlite_path() {
        Some(path) => {
            diesel::sql_query(query).get_result::<Count>(&mut SqliteConnection::establish(path).unwrap())
        }
        None => diesel::sql_query(query)
            .get_result::<Count>(&mut PgConnection::establish(url.expose_secret()).unwrap()),
    };
    counted.unwrap().n
}

/// Waits (at most 30 s) until the sweeper left `blobs` blobs.
async fn wait_for_blobs(server: &TestServer, blobs: i64) {
    for _ in 0..300 {
        if rows(server, "artifact_blobs") == blobs {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{} blobs and {} chunks left, expected {blobs} blobs",
        rows(server, "artifact_blobs"),
        rows(server, "artifact_chunks")
    );
}

async fn content_round_trips_in_any_chunk_sizes(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    // Empty, one byte, exactly a stored chunk, and odd sizes sent in
    // pieces that straddle the server's 1 MiB chunks.
    let cases = [
        (0, 7),
        (1, 1),
        (1 << 20, 1 << 20),
        (3 * (1 << 20) + 12_345, 300_001),
        (70_000, 999),
    ];
    for (i, (len, chunk)) in cases.into_iter().enumerate() {
        let bytes = content(len, i as u64);
        let name = format!("a{i}");
        let answer = upload(&mut client, messages(header("m", &name, &bytes), &bytes, chunk))
            .await
            .unwrap();
        let stored = answer.artifact.unwrap();
        assert!(stored.content_stored && !answer.already_existed && !answer.content_existed);
        assert_eq!(stored.sha256.as_deref(), Some(sha256(&bytes).as_str()));
        assert_eq!(stored.size_bytes, Some(len as u64));
        assert_eq!(stored.uri, format!("mlmeta:sha256:{}", sha256(&bytes)));
        let (artifact, back) = download(&mut client, "m", &name).await.unwrap();
        assert_eq!(back.len(), len, "{name}");
        assert!(back == bytes, "{name}: different bytes came back");
        assert_eq!(artifact.sha256, stored.sha256);
        assert_eq!(artifact.media_type.as_deref(), Some("application/octet-stream"));
    }
    // Without the optional digest and size in the header, too.
    let bytes = content(5000, 99);
    let bare = UploadArtifactHeader {
        sha256: None,
        size_bytes: None,
        ..header("m", "bare", &bytes)
    };
    let answer = upload(&mut client, messages(bare.clone(), &bytes, 4096))
        .await
        .unwrap();
    assert_eq!(answer.artifact.unwrap().sha256, Some(sha256(&bytes)));
    // The same upload again changes nothing.
    let again = upload(&mut client, messages(bare, &bytes, 4096)).await.unwrap();
    assert!(again.already_existed && !again.replaced && again.content_existed);
    let names: Vec<String> = listed(&mut client, "m")
        .await
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["a0", "a1", "a2", "a3", "a4", "bare"]);
}

async fn the_same_content_is_stored_once(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    seed_model(&mut client, "other").await;
    let bytes = content(2 << 20, 1);
    let first = upload(
        &mut client,
        messages(header("m", "ckpt", &bytes), &bytes, 1 << 20),
    )
    .await
    .unwrap();
    assert!(!first.content_existed);
    for (model, name) in [("m", "copy"), ("other", "ckpt")] {
        let answer = upload(&mut client, messages(header(model, name, &bytes), &bytes, 65_536))
            .await
            .unwrap();
        assert!(
            answer.content_existed && !answer.already_existed,
            "{model}/{name}"
        );
        assert_eq!(download(&mut client, model, name).await.unwrap().1, bytes);
    }
    assert_eq!(rows(&server, "artifact_blobs"), 1);
    assert_eq!(rows(&server, "artifact_chunks"), 2);
    // A header naming stored content while the bytes differ (the server
    // only hashes them then): refused, the stored content untouched.
    let other = content(2 << 20, 2);
    let lying = UploadArtifactHeader {
        sha256: Some(sha256(&bytes)),
        ..header("m", "lie", &other)
    };
    let status = upload(&mut client, messages(lying, &other, 1 << 20))
        .await
        .unwrap_err();
    expect_status::<()>(Err(status), Code::InvalidArgument, &["header.sha256"]);
    assert_eq!(download(&mut client, "m", "ckpt").await.unwrap().1, bytes);
    assert_eq!(
        (rows(&server, "artifact_blobs"), rows(&server, "artifact_chunks")),
        (1, 2)
    );
}

async fn a_wrong_digest_or_size_stores_nothing(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    let bytes = content(100_000, 2);
    let wrong_digest = UploadArtifactHeader {
        sha256: Some(sha256(b"something else")),
        ..header("m", "ckpt", &bytes)
    };
    let status = upload(&mut client, messages(wrong_digest, &bytes, 10_000))
        .await
        .unwrap_err();
    expect_status::<()>(
        Err(status),
        Code::InvalidArgument,
        &["header.sha256", "nothing was stored"],
    );
    let wrong_size = UploadArtifactHeader {
        size_bytes: Some(99_999),
        ..header("m", "ckpt", &bytes)
    };
    let status = upload(&mut client, messages(wrong_size, &bytes, 10_000))
        .await
        .unwrap_err();
    expect_status::<()>(
        Err(status),
        Code::InvalidArgument,
        &["header.size_bytes", "100000 bytes"],
    );
    assert!(listed(&mut client, "m").await.is_empty());
    // Dropped at once, not after the grace.
    assert_eq!(rows(&server, "artifact_blobs"), 0);
    assert_eq!(rows(&server, "artifact_chunks"), 0);
    upload(&mut client, messages(header("m", "ckpt", &bytes), &bytes, 10_000))
        .await
        .unwrap();
    assert_eq!(download(&mut client, "m", "ckpt").await.unwrap().1, bytes);
}

async fn uploads_over_the_limit_are_resource_exhausted(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    let bytes = content(usize::try_from(MAX_BYTES).unwrap() + 1, 3);
    // Said in the header: refused before any byte.
    let status = upload(
        &mut client,
        messages(header("m", "big", &bytes), &bytes[..10], 10),
    )
    .await
    .unwrap_err();
    expect_status::<()>(
        Err(status),
        Code::ResourceExhausted,
        &["header.size_bytes", "--max-artifact-bytes"],
    );
    // Not said: refused when the content passes the limit.
    let silent = UploadArtifactHeader {
        size_bytes: None,
        sha256: None,
        ..header("m", "big", &bytes)
    };
    let status = upload(&mut client, messages(silent, &bytes, 1 << 20))
        .await
        .unwrap_err();
    expect_status::<()>(Err(status), Code::ResourceExhausted, &["--max-artifact-bytes"]);
    assert!(listed(&mut client, "m").await.is_empty());
    assert_eq!(rows(&server, "artifact_chunks"), 0);
    // Exactly the limit is fine.
    let limit = &bytes[..usize::try_from(MAX_BYTES).unwrap()];
    upload(&mut client, messages(header("m", "limit", limit), limit, 1 << 20))
        .await
        .unwrap();
}

async fn a_broken_upload_leaves_nothing_after_the_grace(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    let bytes = content(3 << 20, 4);
    // The client sends the header and two chunks, then goes away without
    // ending the stream.
    let (sender, receiver) = futures::channel::mpsc::channel::<UploadArtifactRequest>(8);
    let mut sender = sender;
    let mut call_client = client.clone();
    let call = tokio::spawn(async move { call_client.upload_artifact(receiver).await });
    use futures::SinkExt as _;
    for message in messages(header("m", "ckpt", &bytes), &bytes, 1 << 20)
        .into_iter()
        .take(3)
    {
        sender.send(message).await.unwrap();
    }
    // Wait until the server stored some of it.
    for _ in 0..300 {
        if rows(&server, "artifact_chunks") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        rows(&server, "artifact_chunks") > 0,
        "nothing was stored while uploading"
    );
    call.abort();
    drop(sender);
    assert!(
        listed(&mut client, "m").await.is_empty(),
        "a broken upload became visible"
    );
    // The server drops it when it notices, or the sweeper after the grace.
    wait_for_blobs(&server, 0).await;
    assert_eq!(rows(&server, "artifact_chunks"), 0);
}

async fn replaced_and_deleted_content_is_collected(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    let (one, two) = (content(10_000, 5), content(20_000, 6));
    upload(&mut client, messages(header("m", "ckpt", &one), &one, 4096))
        .await
        .unwrap();
    upload(&mut client, messages(header("m", "keep", &one), &one, 4096))
        .await
        .unwrap();
    let different = upload(&mut client, messages(header("m", "ckpt", &two), &two, 4096))
        .await
        .unwrap_err();
    expect_status::<()>(Err(different), Code::AlreadyExists, &["ckpt"]);
    let replaced = upload(
        &mut client,
        messages(
            UploadArtifactHeader {
                overwrite: true,
                ..header("m", "ckpt", &two)
            },
            &two,
            4096,
        ),
    )
    .await
    .unwrap();
    assert!(replaced.replaced);
    assert_eq!(rows(&server, "artifact_blobs"), 2);
    // `one` is still used by "keep"; once that goes too, it is collected.
    client
        .delete_artifact(DeleteArtifactRequest {
            model_name: "m".into(),
            name: "keep".into(),
            project: String::new(),
        })
        .await
        .unwrap();
    wait_for_blobs(&server, 1).await;
    assert_eq!(download(&mut client, "m", "ckpt").await.unwrap().1, two);
    // A plain reference put over uploaded content lets it go as well.
    client
        .put_artifact(PutArtifactRequest {
            model_name: "m".into(),
            artifact: Some(Artifact {
                name: "ckpt".into(),
                uri: "s3://b/k".into(),
                ..Artifact::default()
            }),
            overwrite: true,
            project: String::new(),
        })
        .await
        .unwrap();
    wait_for_blobs(&server, 0).await;
    assert_eq!(rows(&server, "artifact_chunks"), 0);
}

async fn bad_headers_and_missing_content_are_refused(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    let bytes = content(10, 7);
    let chunk_first = vec![UploadArtifactRequest {
        part: Some(UploadPart::Chunk(bytes.clone())),
    }];
    let status = upload(&mut client, chunk_first).await.unwrap_err();
    expect_status::<()>(Err(status), Code::InvalidArgument, &["header", "first message"]);
    let mut two_headers = messages(header("m", "x", &bytes), &bytes, 5);
    two_headers.push(two_headers[0].clone());
    let status = upload(&mut client, two_headers).await.unwrap_err();
    expect_status::<()>(Err(status), Code::InvalidArgument, &["only the first message"]);
    for (bad, field) in [
        (
            UploadArtifactHeader {
                sha256: Some("xyz".into()),
                ..header("m", "x", &bytes)
            },
            "header.sha256",
        ),
        (
            UploadArtifactHeader {
                name: String::new(),
                ..header("m", "x", &bytes)
            },
            "header.name",
        ),
        (
            UploadArtifactHeader {
                media_type: Some("nope".into()),
                ..header("m", "x", &bytes)
            },
            "header.media_type",
        ),
    ] {
        let status = upload(&mut client, messages(bad, &bytes, 5)).await.unwrap_err();
        expect_status::<()>(Err(status), Code::InvalidArgument, &[field]);
    }
    let status = upload(&mut client, messages(header("ghost", "x", &bytes), &bytes, 5))
        .await
        .unwrap_err();
    expect_status::<()>(Err(status), Code::NotFound, &["ghost"]);
    let status = download(&mut client, "m", "absent").await.unwrap_err();
    expect_status::<()>(Err(status), Code::NotFound, &["absent"]);
    client
        .put_artifact(PutArtifactRequest {
            model_name: "m".into(),
            artifact: Some(Artifact {
                name: "ref".into(),
                uri: "s3://b/k".into(),
                ..Artifact::default()
            }),
            overwrite: false,
            project: String::new(),
        })
        .await
        .unwrap();
    let status = download(&mut client, "m", "ref").await.unwrap_err();
    expect_status::<()>(Err(status), Code::FailedPrecondition, &["s3://b/k", "no content"]);
    assert_eq!(rows(&server, "artifact_blobs"), 0);
}
