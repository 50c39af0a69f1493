//! `mlmeta delete`, `mlmeta restore`, `mlmeta purge` and
//! `list models --deleted` / `--include-deleted`.

use mlmeta_tests::{TestServer, backend_tests};

use crate::support::{mlmeta, seed};

backend_tests! {
    delete_restore_and_purge_a_model,
    purge_needs_yes_and_components_in_use_stay,
}

async fn names(server: &TestServer, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["list", "models"];
    args.extend_from_slice(extra);
    let doc = mlmeta(server).args(args).format("json").run().await.json();
    doc.as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn delete_restore_and_purge_a_model(server: TestServer) {
    seed(&server).await;
    let out = mlmeta(&server)
        .args(["delete", "model", "m-cnn-mnist"])
        .run()
        .await
        .ok();
    assert!(out.contains("m-cnn-mnist"), "{out}");
    assert!(!names(&server, &[]).await.contains(&"m-cnn-mnist".to_owned()));
    let deleted = mlmeta(&server)
        .args(["list", "models", "--deleted"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(deleted[0]["name"], "m-cnn-mnist");
    assert!(deleted[0]["deleted_at"].is_string(), "{deleted}");
    assert_eq!(names(&server, &["--include-deleted"]).await.len(), 4);
    let best = mlmeta(&server)
        .args(["best", "--metric", "val_accuracy", "--max"])
        .format("json")
        .run()
        .await
        .json();
    assert_ne!(best[0]["model"]["name"], "m-cnn-mnist", "{best}");

    mlmeta(&server)
        .args(["restore", "model", "m-cnn-mnist"])
        .run()
        .await
        .ok();
    let live = names(&server, &[]).await;
    assert!(live.contains(&"m-cnn-mnist".to_owned()), "{live:?}");
    let listed = mlmeta(&server)
        .args(["list", "models"])
        .format("json")
        .run()
        .await
        .json();
    assert!(listed[0]["deleted_at"].is_null(), "{listed}");

    mlmeta(&server)
        .args(["delete", "model", "m-cnn-mnist"])
        .run()
        .await
        .ok();
    let purged = mlmeta(&server)
        .args(["purge", "--model", "m-cnn-mnist", "--yes"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(purged["models"], 1);
    assert_eq!(purged["epochs"], 3);
    assert!(names(&server, &["--include-deleted"]).await.len() == 3);
}

async fn purge_needs_yes_and_components_in_use_stay(server: TestServer) {
    seed(&server).await;
    // A usage error (exit status 1, like every invalid argument), nothing
    // purged.
    let run = mlmeta(&server).args(["purge"]).run().await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("--yes"), "{run:?}");
    let error = mlmeta(&server)
        .args(["delete", "datablob", "cifar"])
        .run()
        .await
        .fails(2);
    assert!(error.contains("live model"), "{error}");
    let error = mlmeta(&server)
        .args(["restore", "template", "nope"])
        .run()
        .await
        .fails(2);
    assert!(error.contains("\"nope\""), "{error}");
}
