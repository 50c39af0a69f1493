//! Artifact references through the typed client: put (idempotent, with
//! conflicts and overwrite), list, delete, and the artifacts of get_model.

use std::time::{Duration, SystemTime};

use mlmeta_client::{Artifact, Error};
use mlmeta_tests::{TestServer, backend_tests};

use crate::support::{connect, seed_model};

backend_tests! {
    artifacts_round_trip_through_the_client,
}

const SHA: &str = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";

async fn artifacts_round_trip_through_the_client(server: TestServer) {
    let client = connect(&server).await;
    seed_model(&client, "run-7").await;
    let checkpoint = Artifact::new("checkpoint", "s3://models/run-7/epoch-49.pt")
        .with_sha256(SHA)
        .with_size(48_213_990)
        .with_media_type("Application/Octet-Stream");
    let put = client.put_artifact("run-7", &checkpoint, false).await.unwrap();
    assert!(!put.already_existed && !put.replaced);
    let stored = put.artifact;
    assert_eq!(stored.sha256.as_deref(), Some(SHA.to_ascii_lowercase().as_str()));
    assert_eq!(stored.media_type.as_deref(), Some("application/octet-stream"));
    assert_eq!(stored.size_bytes, Some(48_213_990));
    let age = SystemTime::now()
        .duration_since(stored.created_at.unwrap())
        .unwrap();
    assert!(age < Duration::from_secs(3600), "{age:?}");

    let again = client.put_artifact("run-7", &checkpoint, false).await.unwrap();
    assert!(again.already_existed && !again.replaced);
    assert_eq!(again.artifact, stored);

    let moved = Artifact::new("checkpoint", "gs://elsewhere/epoch-49.pt");
    let error = client.put_artifact("run-7", &moved, false).await.unwrap_err();
    assert!(
        matches!(&error, Error::AlreadyExists { message } if message.contains("different uri")),
        "{error}"
    );
    let replaced = client.put_artifact("run-7", &moved, true).await.unwrap();
    assert!(replaced.already_existed && replaced.replaced);
    assert_eq!(replaced.artifact.sha256, None);

    client
        .put_artifact(
            "run-7",
            &Artifact::new("a-log", "file:///runs/7/train.log"),
            false,
        )
        .await
        .unwrap();
    let listed = client.list_artifacts("run-7").await.unwrap();
    let names: Vec<&str> = listed.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["a-log", "checkpoint"]);
    assert_eq!(client.get_model("run-7").await.unwrap().artifacts, listed);

    assert!(client.delete_artifact("run-7", "a-log").await.unwrap());
    assert!(!client.delete_artifact("run-7", "a-log").await.unwrap());
    assert_eq!(client.list_artifacts("run-7").await.unwrap().len(), 1);

    let error = client.list_artifacts("nope").await.unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error}");
    let bad = Artifact::new("x", "no-scheme").with_size(u64::MAX);
    let error = client.put_artifact("run-7", &bad, false).await.unwrap_err();
    assert!(
        matches!(&error, Error::InvalidArgument { message } if message.starts_with("artifact.uri: ")),
        "{error}"
    );
}
