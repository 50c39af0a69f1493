//! `mlmeta add datablob|template|model` and `mlmeta current-epoch`.

use mlmeta_tests::{TestServer, backend_tests};
use serde_json::json;

use crate::support::{Cmd, mlmeta};

backend_tests! {
    add_stores_records_and_reports_existing_ones,
    add_refuses_conflicts_and_missing_references,
    current_epoch_prints_the_number,
}

async fn add_stores_records_and_reports_existing_ones(server: TestServer) {
    let hyperparams = r#"{"batch_size": 128, "big": 123456789012345678901234567890, "aug": {"flip": true}}"#;
    let datablob = [
        "add",
        "datablob",
        "mnist-v1",
        "--group",
        "mnist",
        "--hyperparams",
        hyperparams,
    ];
    assert_eq!(
        mlmeta(&server).args(datablob).run().await.ok(),
        "stored datablob \"mnist-v1\"\n"
    );
    assert_eq!(
        mlmeta(&server).args(datablob).run().await.ok(),
        "datablob \"mnist-v1\" already existed; left unchanged\n"
    );
    let doc = mlmeta(&server).args(datablob).format("json").run().await.json();
    assert_eq!(doc["already_existed"], true);
    assert_eq!(doc["datablob"]["name"], "mnist-v1");
    assert_eq!(doc["datablob"]["group_name"], "mnist");
    // Hyperparameters come back exactly, integers beyond 64 bits too.
    assert_eq!(
        doc["datablob"]["hyperparams"].to_string(),
        r#"{"aug":{"flip":true},"batch_size":128,"big":123456789012345678901234567890}"#
    );
    assert!(doc["datablob"]["created_at"].as_str().unwrap().ends_with('Z'));

    // The server is named by MLMETA_SERVER as well as by --server.
    let csv = Cmd::new()
        .env("MLMETA_SERVER", server.url())
        .args(["add", "template", "cnn", "--group", "conv", "--format", "csv"])
        .run()
        .await
        .ok();
    assert_eq!(csv, "name,group,hyperparams,already_existed\ncnn,conv,{},false\n");

    let model = [
        "add",
        "model",
        "run-1",
        "--class",
        "Keras",
        "--datablob",
        "mnist-v1",
        "--template",
        "cnn",
    ];
    let doc = mlmeta(&server).args(model).format("json").run().await.json();
    assert_eq!(doc["already_existed"], false);
    assert_eq!(doc["model"]["name"], "run-1");
    assert_eq!(doc["model"]["model_class_name"], "Keras");
    assert_eq!(doc["model"]["datablob_name"], "mnist-v1");
    assert_eq!(doc["model"]["model_template_name"], "cnn");
    let csv = mlmeta(&server).args(model).format("csv").run().await.ok();
    assert_eq!(
        csv,
        "name,class,datablob,template,already_existed\nrun-1,Keras,mnist-v1,cnn,true\n"
    );
    assert_eq!(
        mlmeta(&server).args(model).run().await.ok(),
        "model \"run-1\" already existed; left unchanged\n"
    );
    let listed = mlmeta(&server)
        .args(["list", "models"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

async fn add_refuses_conflicts_and_missing_references(server: TestServer) {
    let add = |name: &str, group: &str, hyperparams: &str| {
        mlmeta(&server).args([
            "add",
            "template",
            name,
            "--group",
            group,
            "--hyperparams",
            hyperparams,
        ])
    };
    add("cnn", "conv", r#"{"layers": 4}"#).run().await.ok();
    let error = add("cnn", "conv", r#"{"layers": 5}"#).run().await.fails(1);
    assert!(
        error.contains("\"cnn\"") && error.contains("--ignore-existing"),
        "{error}"
    );
    let kept = add("cnn", "conv", r#"{"layers": 5}"#)
        .args(["--ignore-existing"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(kept["already_existed"], true);
    assert_eq!(kept["model_template"]["hyperparams"], json!({"layers": 4}));

    // Hyperparameters must be a JSON object: refused before any call.
    for bad in ["[1, 2]", "{\"a\":"] {
        let run = add("other", "g", bad).run().await;
        assert_eq!(run.code, Some(1), "{run:#?}");
        assert!(run.stderr.contains("--hyperparams"), "{run:#?}");
    }

    // A model whose datablob is missing is a not-found condition.
    let error = mlmeta(&server)
        .args([
            "add",
            "model",
            "m",
            "--class",
            "C",
            "--datablob",
            "nope",
            "--template",
            "cnn",
        ])
        .run()
        .await
        .fails(2);
    assert!(error.contains("\"nope\""), "{error}");

    // The server's own limits come back as its message, exit 1.
    let long = "x".repeat(256);
    let error = mlmeta(&server)
        .args(["add", "datablob", &long, "--group", "g"])
        .run()
        .await
        .fails(1);
    assert!(error.contains("255"), "{error}");
}

async fn current_epoch_prints_the_number(server: TestServer) {
    crate::support::seed(&server).await;
    let current = |model: &str| mlmeta(&server).args(["current-epoch", model]);
    assert_eq!(current("m-cnn-mnist").run().await.ok(), "2\n");
    assert_eq!(current("m-empty").run().await.ok(), "0\n");
    assert_eq!(
        current("m-cnn-mnist").format("json").run().await.json(),
        json!({"model_name": "m-cnn-mnist", "current_epoch": 2})
    );
    assert_eq!(
        current("m-mlp-mnist").format("csv").run().await.ok(),
        "model,current_epoch\nm-mlp-mnist,1\n"
    );
    for format in ["table", "json", "csv"] {
        let error = current("ghost").format(format).run().await.fails(2);
        assert_eq!(error, "no such model: \"ghost\"");
    }
}
