//! Artifact references (PutArtifact, ListArtifacts, DeleteArtifact, and the
//! artifacts of GetModel): idempotent puts, conflicts naming the field,
//! overwrite, order, delete, validation, projects and tokens.

use mlmeta_proto::{
    Artifact, DeleteArtifactRequest, GetModelRequest, ListArtifactsRequest, PutArtifactRequest,
    PutArtifactResponse,
};
use mlmeta_server::security::Scope;
use mlmeta_server::security::tokens::tokens_file_line;
use mlmeta_tests::calls::{Client, expect_status, seed_model};
use mlmeta_tests::records::{datablob, model, put_datablob, put_model, put_template, template};
use mlmeta_tests::{Backend, TestServer, backend_tests, backend_tests_with_setup};
use tonic::{Code, Status};

use crate::security::with_token;

backend_tests! {
    identical_puts_are_idempotent,
    a_different_record_is_already_exists_naming_the_field,
    overwrite_replaces_a_different_record,
    artifacts_list_by_name_and_come_with_get_model,
    deletes_are_idempotent,
    unknown_models_are_not_found,
    bad_artifacts_are_refused_naming_the_field,
    a_model_holds_at_most_256_artifacts,
    artifacts_stay_in_their_project,
}

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn artifact(name: &str, uri: &str) -> Artifact {
    Artifact {
        name: name.to_owned(),
        uri: uri.to_owned(),
        ..Artifact::default()
    }
}

fn full(name: &str) -> Artifact {
    Artifact {
        sha256: Some(SHA.to_owned()),
        size_bytes: Some(48_213_990),
        media_type: Some("application/octet-stream".to_owned()),
        ..artifact(name, "s3://models/run-7/epoch-49.pt")
    }
}

fn put_request(model: &str, artifact: Artifact, overwrite: bool) -> PutArtifactRequest {
    PutArtifactRequest {
        model_name: model.to_owned(),
        artifact: Some(artifact),
        overwrite,
        project: String::new(),
    }
}

async fn put(
    client: &mut Client,
    model: &str,
    artifact: Artifact,
    overwrite: bool,
) -> Result<PutArtifactResponse, Status> {
    client
        .put_artifact(put_request(model, artifact, overwrite))
        .await
        .map(tonic::Response::into_inner)
}

async fn list(client: &mut Client, project: &str, model: &str) -> Result<Vec<Artifact>, Status> {
    client
        .list_artifacts(ListArtifactsRequest {
            model_name: model.to_owned(),
            project: project.to_owned(),
        })
        .await
        .map(|r| r.into_inner().artifacts)
}

fn delete(model: &str, name: &str) -> DeleteArtifactRequest {
    DeleteArtifactRequest {
        model_name: model.to_owned(),
        name: name.to_owned(),
        project: String::new(),
    }
}

/// `artifact` without its server-set time.
fn untimed(mut artifact: Artifact) -> Artifact {
    assert!(artifact.created_at.is_some(), "{artifact:?} has no created_at");
    artifact.created_at = None;
    artifact
}

async fn identical_puts_are_idempotent(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    let first = put(&mut client, "m", full("ckpt"), false).await.unwrap();
    assert!(!first.already_existed && !first.replaced);
    let stored = first.artifact.unwrap();
    assert_eq!(untimed(stored.clone()), full("ckpt"));
    // Again, with or without overwrite: the same record, untouched (its
    // time included); an upper-case digest and media type are the same
    // record, since both are stored in lower case.
    let upper = Artifact {
        sha256: Some(SHA.to_ascii_uppercase()),
        media_type: Some("Application/Octet-Stream".to_owned()),
        ..full("ckpt")
    };
    for (again, overwrite) in [(full("ckpt"), false), (full("ckpt"), true), (upper, false)] {
        let second = put(&mut client, "m", again, overwrite).await.unwrap();
        assert!(second.already_existed && !second.replaced);
        assert_eq!(second.artifact.unwrap(), stored);
    }
    // Only the name and URI are required.
    let bare = put(
        &mut client,
        "m",
        artifact("log", "file:///runs/7/train.log"),
        false,
    )
    .await
    .unwrap();
    assert_eq!(
        untimed(bare.artifact.unwrap()),
        artifact("log", "file:///runs/7/train.log")
    );
    assert_eq!(list(&mut client, "", "m").await.unwrap().len(), 2);
}

async fn a_different_record_is_already_exists_naming_the_field(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    put(&mut client, "m", full("ckpt"), false).await.unwrap();
    let cases: [(Artifact, &[&str]); 5] = [
        (
            Artifact {
                uri: "gs://other/x.pt".into(),
                ..full("ckpt")
            },
            &["uri (stored \"s3://models/run-7/epoch-49.pt\")"],
        ),
        (
            Artifact {
                sha256: Some("0".repeat(64)),
                ..full("ckpt")
            },
            &["sha256 (stored \"9f86d081"],
        ),
        (
            Artifact {
                size_bytes: None,
                ..full("ckpt")
            },
            &["size_bytes (stored 48213990)"],
        ),
        (
            Artifact {
                media_type: Some("application/x-hdf5".into()),
                ..full("ckpt")
            },
            &["media_type (stored \"application/octet-stream\")"],
        ),
        (
            artifact("ckpt", "s3://x/y"),
            &["uri", "sha256", "size_bytes", "media_type"],
        ),
    ];
    for (different, fields) in cases {
        let result = put(&mut client, "m", different, false).await;
        let status = expect_status(
            result,
            Code::AlreadyExists,
            &["artifact \"ckpt\" of model \"m\" already exists", "overwrite"],
        );
        for field in fields {
            assert!(status.message().contains(field), "{field}: {}", status.message());
        }
    }
    // Nothing changed.
    let stored = list(&mut client, "", "m").await.unwrap();
    assert_eq!(
        stored.into_iter().map(untimed).collect::<Vec<_>>(),
        [full("ckpt")]
    );
}

async fn overwrite_replaces_a_different_record(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    let first = put(&mut client, "m", full("ckpt"), false)
        .await
        .unwrap()
        .artifact
        .unwrap();
    let replacement = artifact("ckpt", "https://example.com/run-7/final.pt");
    let put_again = put(&mut client, "m", replacement.clone(), true).await.unwrap();
    assert!(put_again.already_existed && put_again.replaced);
    let second = put_again.artifact.unwrap();
    // The optional fields absent from the replacement are gone, and the
    // record is a new one (the database clock moves on).
    assert_eq!(untimed(second.clone()), replacement);
    let micros = |a: &Artifact| {
        let t = a.created_at.unwrap();
        t.seconds * 1_000_000 + i64::from(t.nanos / 1_000)
    };
    assert!(micros(&second) >= micros(&first), "{first:?} then {second:?}");
    assert_eq!(list(&mut client, "", "m").await.unwrap(), [second]);
}

async fn artifacts_list_by_name_and_come_with_get_model(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    seed_model(&mut client, "other").await;
    // Byte order, the same on both backends: upper case before lower
    // case, multi-byte characters last.
    let names = ["z", "B", "a", "模型", "a-2", "a.1", "A"];
    for name in names {
        put(&mut client, "m", artifact(name, &format!("s3://b/{name}")), false)
            .await
            .unwrap();
    }
    put(&mut client, "other", artifact("x", "s3://b/x"), false)
        .await
        .unwrap();
    let listed: Vec<String> = list(&mut client, "", "m")
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    let mut expected: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(listed, ["A", "B", "a", "a-2", "a.1", "z", "模型"]);

    let detail = client
        .get_model(GetModelRequest {
            model_name: "m".into(),
            project: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(detail.artifacts, list(&mut client, "", "m").await.unwrap());
    // A model without artifacts lists none.
    seed_model(&mut client, "empty").await;
    assert!(list(&mut client, "", "empty").await.unwrap().is_empty());
}

async fn deletes_are_idempotent(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    put(&mut client, "m", full("ckpt"), false).await.unwrap();
    put(&mut client, "m", full("keep"), false).await.unwrap();
    let deleted = client
        .delete_artifact(delete("m", "ckpt"))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.deleted);
    // Deleting again, or a name never stored, succeeds and says so.
    for name in ["ckpt", "never"] {
        let again = client
            .delete_artifact(delete("m", name))
            .await
            .unwrap()
            .into_inner();
        assert!(!again.deleted, "{name}");
    }
    let left: Vec<String> = list(&mut client, "", "m")
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(left, ["keep"]);
    // The name can be used again, for another record.
    let put_again = put(&mut client, "m", artifact("ckpt", "s3://new/x"), false)
        .await
        .unwrap();
    assert!(!put_again.already_existed);
}

async fn unknown_models_are_not_found(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    for project in ["", "empty-project"] {
        let mut request = put_request("nope", full("ckpt"), false);
        request.project = project.to_owned();
        expect_status(
            client.put_artifact(request).await,
            Code::NotFound,
            &["model_name: model \"nope\" does not exist"],
        );
        expect_status(
            list(&mut client, project, "nope").await,
            Code::NotFound,
            &["model \"nope\""],
        );
        let mut request = delete("nope", "ckpt");
        request.project = project.to_owned();
        expect_status(
            client.delete_artifact(request).await,
            Code::NotFound,
            &["model \"nope\""],
        );
    }
    // Nothing above created the project.
    let projects = client
        .list_projects(mlmeta_proto::ListProjectsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .projects;
    assert!(projects.iter().all(|p| p.name != "empty-project"), "{projects:?}");
}

async fn bad_artifacts_are_refused_naming_the_field(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    let with = |change: fn(&mut Artifact)| {
        let mut artifact = full("ckpt");
        change(&mut artifact);
        artifact
    };
    let cases: Vec<(Artifact, &[&str])> = vec![
        (
            with(|a| a.name = String::new()),
            &["artifact.name: must not be empty"],
        ),
        (
            with(|a| a.name = "a\0b".into()),
            &["artifact.name: ", "control characters"],
        ),
        (
            with(|a| a.name = "n".repeat(256)),
            &["artifact.name: must be at most 255 bytes"],
        ),
        (
            with(|a| a.uri = String::new()),
            &["artifact.uri: must not be empty"],
        ),
        (
            with(|a| a.uri = "model.pt".into()),
            &["artifact.uri: must be a URI with a scheme"],
        ),
        (
            with(|a| a.uri = "/abs/model.pt".into()),
            &["artifact.uri: must be a URI with a scheme"],
        ),
        (
            with(|a| a.uri = "3s://b".into()),
            &["artifact.uri: must start with a scheme"],
        ),
        (
            with(|a| a.uri = "s3://b/a b".into()),
            &["artifact.uri: ", "whitespace", "U+0020"],
        ),
        (
            with(|a| a.uri = "s3://b/\0".into()),
            &["artifact.uri: ", "U+0000"],
        ),
        (
            with(|a| a.uri = "C:\\x.pt".into()),
            &["artifact.uri: ", "Windows drive"],
        ),
        (
            with(|a| a.uri = format!("s3://b/{}", "k".repeat(4_096))),
            &["artifact.uri: must be at most 4096 bytes, got 4103"],
        ),
        (
            with(|a| a.sha256 = Some("abc".into())),
            &["artifact.sha256: must be 64 hexadecimal digits", "got 3 bytes"],
        ),
        (
            with(|a| a.sha256 = Some("z".repeat(64))),
            &["artifact.sha256: ", "found 'z'"],
        ),
        (
            with(|a| a.sha256 = Some(String::new())),
            &["artifact.sha256: ", "got 0 bytes"],
        ),
        (
            with(|a| a.size_bytes = Some(u64::MAX)),
            &[
                "artifact.size_bytes: must be at most 9223372036854775807",
                "18446744073709551615",
            ],
        ),
        (
            with(|a| a.media_type = Some("octet-stream".into())),
            &["artifact.media_type: must be a media type type/subtype"],
        ),
        (
            with(|a| a.media_type = Some(String::new())),
            &["artifact.media_type: must be a media type"],
        ),
        (
            with(|a| a.media_type = Some("text/plain; charset=utf-8".into())),
            &["artifact.media_type: parameters"],
        ),
        (
            with(|a| a.media_type = Some("text/p lain".into())),
            &["artifact.media_type: must be a media type"],
        ),
    ];
    for (bad, needles) in cases {
        let result = put(&mut client, "m", bad.clone(), true).await;
        let status = expect_status(result, Code::InvalidArgument, needles);
        assert!(status.message().len() < 400, "{}", status.message());
    }
    expect_status(
        client
            .put_artifact(PutArtifactRequest {
                artifact: None,
                ..put_request("m", full("x"), false)
            })
            .await,
        Code::InvalidArgument,
        &["artifact: "],
    );
    expect_status(
        put(&mut client, "", full("x"), false).await,
        Code::InvalidArgument,
        &["model_name: must not be empty"],
    );
    expect_status(
        client.delete_artifact(delete("m", "")).await,
        Code::InvalidArgument,
        &["name: must not be empty"],
    );
    expect_status(
        list(&mut client, "", "a\nb").await,
        Code::InvalidArgument,
        &["model_name: "],
    );
    // The largest size fits, and nothing invalid was stored.
    let largest = with(|a| a.size_bytes = Some(i64::MAX as u64));
    let put_largest = put(&mut client, "m", largest, false).await.unwrap();
    assert_eq!(put_largest.artifact.unwrap().size_bytes, Some(i64::MAX as u64));
    assert_eq!(list(&mut client, "", "m").await.unwrap().len(), 1);
}

async fn a_model_holds_at_most_256_artifacts(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    for i in 0..256 {
        put(&mut client, "m", artifact(&format!("a{i:03}"), "s3://b/k"), false)
            .await
            .unwrap();
    }
    expect_status(
        put(&mut client, "m", artifact("one-more", "s3://b/k"), false).await,
        Code::InvalidArgument,
        &["artifact.name: ", "at most 256", "delete one first"],
    );
    // Re-putting or replacing one that is there is still fine.
    put(&mut client, "m", artifact("a000", "s3://b/k"), false)
        .await
        .unwrap();
    put(&mut client, "m", artifact("a001", "s3://b/other"), true)
        .await
        .unwrap();
    let listed = list(&mut client, "", "m").await.unwrap();
    assert_eq!(listed.len(), 256);
    assert!(listed.iter().all(|a| a.name != "one-more"));
}

/// Puts datablob `d`, template `t` and model `m` in `project`.
async fn seed_in(client: &mut Client, project: &str) {
    let mut blob = put_datablob(datablob("d", "g", "{}"), false);
    blob.project = project.to_owned();
    client.put_data_blob(blob).await.unwrap();
    let mut tmpl = put_template(template("t", "g", "{}"), false);
    tmpl.project = project.to_owned();
    client.put_model_template(tmpl).await.unwrap();
    let mut put = put_model(model("m", "d", "t"), false);
    put.project = project.to_owned();
    client.put_model(put).await.unwrap();
}

async fn artifacts_stay_in_their_project(server: TestServer) {
    let mut client = server.client();
    for project in ["vision", "nlp"] {
        seed_in(&mut client, project).await;
        let mut request = put_request("m", artifact("ckpt", &format!("s3://{project}/m.pt")), false);
        request.project = project.to_owned();
        let put = client.put_artifact(request).await.unwrap().into_inner();
        // The same name in the other project is a separate record.
        assert!(!put.already_existed, "{project}");
    }
    for project in ["vision", "nlp"] {
        let listed = list(&mut client, project, "m").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].uri, format!("s3://{project}/m.pt"));
    }
    // The default project has no model `m`.
    expect_status(list(&mut client, "", "m").await, Code::NotFound, &["model \"m\""]);
    let mut request = delete("m", "ckpt");
    request.project = "vision".into();
    assert!(
        client
            .delete_artifact(request)
            .await
            .unwrap()
            .into_inner()
            .deleted
    );
    assert!(list(&mut client, "vision", "m").await.unwrap().is_empty());
    assert_eq!(list(&mut client, "nlp", "m").await.unwrap().len(), 1);
}

/// Tests that set their server up themselves.
mod setup {
    use super::*;

    backend_tests_with_setup! {
        tokens_of_another_project_are_denied,
    }

    const VISION_TOKEN: &str = "vision-trainer-token-0123456789";
    const READER_TOKEN: &str = "reader-token-0123456789abcdef";

    /// A token restricted to `vision` cannot touch artifacts of `nlp`
    /// (PERMISSION_DENIED naming the project), and a read token cannot
    /// write them; nothing changes.
    async fn tokens_of_another_project_are_denied(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.txt");
        let text = format!(
            "{} projects=vision\n{}\n",
            tokens_file_line("vision-trainer", Scope::Write, VISION_TOKEN).unwrap(),
            tokens_file_line("reader", Scope::Read, READER_TOKEN).unwrap(),
        );
        mlmeta_tests::write_private(&tokens, text);
        let Some(server) = TestServer::with(backend, |config| config.auth_tokens = Some(tokens), None).await
        else {
            return;
        };
        let mut client = server.client();
        // Model `m` with an artifact in `vision`, through the vision token.
        let mut blob = put_datablob(datablob("d", "g", "{}"), false);
        blob.project = "vision".into();
        client
            .put_data_blob(with_token(blob, VISION_TOKEN))
            .await
            .unwrap();
        let mut tmpl = put_template(template("t", "g", "{}"), false);
        tmpl.project = "vision".into();
        client
            .put_model_template(with_token(tmpl, VISION_TOKEN))
            .await
            .unwrap();
        let mut m = put_model(model("m", "d", "t"), false);
        m.project = "vision".into();
        client.put_model(with_token(m, VISION_TOKEN)).await.unwrap();
        let mut request = put_request("m", full("ckpt"), false);
        request.project = "vision".into();
        client
            .put_artifact(with_token(request.clone(), VISION_TOKEN))
            .await
            .unwrap();

        for project in ["nlp", "default", ""] {
            let shown = if project.is_empty() { "default" } else { project };
            let needle = format!("project {shown:?}");
            let mut other = request.clone();
            other.project = project.to_owned();
            expect_status(
                client.put_artifact(with_token(other, VISION_TOKEN)).await,
                Code::PermissionDenied,
                &[&needle, "vision-trainer"],
            );
            let listing = ListArtifactsRequest {
                model_name: "m".into(),
                project: project.to_owned(),
            };
            expect_status(
                client.list_artifacts(with_token(listing, VISION_TOKEN)).await,
                Code::PermissionDenied,
                &[&needle],
            );
            let mut removal = delete("m", "ckpt");
            removal.project = project.to_owned();
            expect_status(
                client.delete_artifact(with_token(removal, VISION_TOKEN)).await,
                Code::PermissionDenied,
                &[&needle],
            );
        }
        // A read token reads but does not write.
        let listing = ListArtifactsRequest {
            model_name: "m".into(),
            project: "vision".into(),
        };
        let listed = client
            .list_artifacts(with_token(listing.clone(), READER_TOKEN))
            .await
            .unwrap()
            .into_inner()
            .artifacts;
        assert_eq!(listed.len(), 1);
        expect_status(
            client
                .put_artifact(with_token(request.clone(), READER_TOKEN))
                .await,
            Code::PermissionDenied,
            &["PutArtifact", "needs scope write"],
        );
        let mut removal = delete("m", "ckpt");
        removal.project = "vision".into();
        expect_status(
            client.delete_artifact(with_token(removal, READER_TOKEN)).await,
            Code::PermissionDenied,
            &["DeleteArtifact", "needs scope write"],
        );
        // Nothing changed.
        let after = client
            .list_artifacts(with_token(listing, VISION_TOKEN))
            .await
            .unwrap()
            .into_inner()
            .artifacts;
        assert_eq!(after, listed);
    }
}
