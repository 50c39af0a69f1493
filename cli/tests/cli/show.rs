//! `mlmeta show model NAME`, and the epoch counts of `mlmeta list models`.

use mlmeta_client::{Client, NewEpoch, RunStatus};
use mlmeta_tests::{TestServer, backend_tests};

use crate::support::{csv_rows, mlmeta};

backend_tests! {
    show_model_tells_everything_about_one_model,
    show_model_of_an_unknown_model_exits_2,
    list_models_counts_epochs,
}

async fn add(server: &TestServer) {
    for args in [
        vec![
            "add",
            "datablob",
            "mnist-v1",
            "--group",
            "mnist",
            "--hyperparams",
            r#"{"batch_size": 128}"#,
        ],
        vec![
            "add",
            "template",
            "cnn",
            "--group",
            "cnn",
            "--hyperparams",
            r#"{"layers": 4}"#,
        ],
        vec![
            "add",
            "model",
            "run-1",
            "--class",
            "Keras",
            "--datablob",
            "mnist-v1",
            "--template",
            "cnn",
            "--params",
            r#"{"lr": 0.01, "seed": 7}"#,
            "--tag",
            "sweep=lr",
            "--description",
            "First try.\nWith a second line.",
        ],
    ] {
        mlmeta(server).args(args).run().await.ok();
    }
}

async fn log_epochs(server: &TestServer) {
    let client = Client::connect(server.url()).await.unwrap();
    client.start_run("run-1", None).await.unwrap();
    let epochs = [
        (0, 0.50, 1.2),
        (1, 0.80, 0.9),
        (2, 0.80, f64::NAN),
        (3, 0.70, 0.7),
    ]
    .map(|(n, acc, loss)| NewEpoch::new(n, [("val_accuracy", acc), ("loss", loss)]));
    client.insert_epochs("run-1", epochs.to_vec()).await.unwrap();
    client.end_run("run-1", RunStatus::Finished).await.unwrap();
    let checkpoint = mlmeta_client::Artifact::new("checkpoint", "s3://bucket/run-1/ckpt.h5").with_size(1024);
    client.put_artifact("run-1", &checkpoint, false).await.unwrap();
}

async fn show_model_tells_everything_about_one_model(server: TestServer) {
    add(&server).await;
    log_epochs(&server).await;

    let text = mlmeta(&server).args(["show", "model", "run-1"]).run().await.ok();
    let line = |key: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key:?} line in:\n{text}"))
            .to_owned()
    };
    assert!(line("model").ends_with("  run-1"), "{text}");
    assert!(line("project").ends_with("  default"), "{text}");
    assert!(line("status").ends_with("  finished"), "{text}");
    assert!(line("epochs").ends_with("  4 (current epoch 3)"), "{text}");
    assert!(line("params").ends_with(r#"  {"lr":0.01,"seed":7}"#), "{text}");
    assert!(
        line("datablob").ends_with(r#"  mnist-v1 (group mnist) {"batch_size":128}"#),
        "{text}"
    );
    assert!(
        line("template").ends_with(r#"  cnn (group cnn) {"layers":4}"#),
        "{text}"
    );
    assert!(text.contains("sweep=lr"), "{text}");
    assert!(
        text.contains("mlmeta.pid="),
        "the run context is shown as system tags: {text}"
    );
    assert!(
        text.contains("description:\n  First try.\n  With a second line."),
        "{text}"
    );
    // Metrics: best by goal (loss is minimized, accuracy maximized), ties
    // to the lower epoch, NaN counted but never an extreme.
    let metric = |name: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row in:\n{text}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        metric("val_accuracy"),
        [
            "val_accuracy",
            "0.8",
            "1",
            "max",
            "0.7",
            "3",
            "0.5",
            "0",
            "0.8",
            "1",
            "4",
            "0"
        ]
    );
    assert_eq!(
        metric("loss"),
        [
            "loss", "0.7", "3", "min", "0.7", "3", "0.7", "3", "1.2", "0", "4", "1"
        ]
    );
    assert!(text.contains("status history:"), "{text}");
    assert!(text.contains("artifacts:\nname"), "{text}");
    assert!(text.contains("checkpoint  s3://bucket/run-1/ckpt.h5"), "{text}");
    assert!(text.contains("created  running   start"), "{text}");

    let doc = mlmeta(&server)
        .args(["show", "model", "run-1", "--maximize", "loss"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(doc["name"], "run-1");
    assert_eq!(doc["project"], "default");
    assert_eq!(doc["status"], "finished");
    assert_eq!(doc["params"]["seed"], 7);
    assert_eq!(doc["tags"]["sweep"], "lr");
    assert_eq!(doc["description"], "First try.\nWith a second line.");
    assert_eq!(
        (doc["epoch_count"].as_u64(), doc["current_epoch"].as_i64()),
        (Some(4), Some(3))
    );
    assert_eq!(doc["datablob"]["hyperparams"]["batch_size"], 128);
    assert_eq!(doc["model_template"]["group_name"], "cnn");
    let loss = &doc["metrics"][0];
    assert_eq!(loss["metric_name"], "loss");
    assert_eq!(
        (loss["goal"].as_str(), loss["best"].as_f64()),
        (Some("max"), Some(1.2)),
        "--maximize overrides"
    );
    assert_eq!(
        (loss["count"].as_u64(), loss["nan_count"].as_u64()),
        (Some(4), Some(1))
    );
    assert_eq!(doc["status_changes"][1]["to"], "finished");
    assert_eq!(doc["artifacts"][0]["uri"], "s3://bucket/run-1/ckpt.h5");
    assert_eq!(doc["artifacts"][0]["size_bytes"], 1024);

    let csv = mlmeta(&server)
        .args(["show", "model", "run-1"])
        .format("csv")
        .run()
        .await
        .ok();
    let rows = csv_rows(&csv);
    assert_eq!(
        rows[0][..4],
        ["metric", "best", "best_epoch", "goal"].map(String::from)
    );
    assert_eq!(rows.len(), 3, "{csv}");
}

async fn show_model_of_an_unknown_model_exits_2(server: TestServer) {
    let error = mlmeta(&server)
        .args(["show", "model", "nope"])
        .run()
        .await
        .fails(2);
    assert!(error.contains("\"nope\""), "{error}");
}

async fn list_models_counts_epochs(server: TestServer) {
    add(&server).await;
    log_epochs(&server).await;
    let csv = mlmeta(&server)
        .args(["list", "models"])
        .format("csv")
        .run()
        .await
        .ok();
    let rows = csv_rows(&csv);
    let column = rows[0]
        .iter()
        .position(|c| c == "epochs")
        .expect("an epochs column");
    assert_eq!(rows[1][column], "4", "{csv}");
    let tags = rows[0].iter().position(|c| c == "tags").expect("a tags column");
    assert!(
        rows[1][tags].contains("sweep") && !rows[1][tags].contains("mlmeta."),
        "the table leaves the run context out: {csv}"
    );
    let doc = mlmeta(&server)
        .args(["list", "models"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(doc[0]["epoch_count"], 4);
    assert_eq!(doc[0]["current_epoch"], 3);
    assert!(
        doc[0]["tags"]["mlmeta.pid"].is_string(),
        "JSON has every tag: {doc}"
    );
}
