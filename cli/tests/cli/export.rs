//! `mlmeta export` and `mlmeta import` (issue 18).

use mlmeta_client::{Client, DataBlob, Model, ModelTemplate, NewEpoch, RecordKind, RunStatus};
use mlmeta_tests::{TestServer, backend_tests};
use serde_json::json;

use crate::support::{mlmeta, seed};

backend_tests! {
    export_import_export_is_byte_identical => 300,
    conflicts_are_reported_and_overwrite_mutable_replaces_tags,
    model_and_where_select_what_is_exported,
    bad_files_fail_naming_the_line,
}

/// A fresh server on the same backend as `server`.
async fn another(server: &TestServer) -> TestServer {
    if server.is_postgres() {
        TestServer::postgres().await.expect("PostgreSQL is up")
    } else {
        TestServer::sqlite().await
    }
}

/// The shared seed plus what an exact copy must carry: unicode names, big
/// integers, tags, descriptions, a run with its history, artifacts with
/// and without content.
async fn rich_seed(server: &TestServer, dir: &std::path::Path) {
    seed(server).await;
    let client = Client::connect(server.url()).await.unwrap();
    client
        .put_datablob(
            &DataBlob::new(
                "données-ü",
                "grüppe",
                json!({"big": 123456789012345678901234567890_u128, "x": 1e-300}),
            ),
            false,
        )
        .await
        .unwrap();
    client
        .put_model_template(
            &ModelTemplate::new("モデル", "conv", json!({"n": 18446744073709551615_u64})),
            false,
        )
        .await
        .unwrap();
    client
        .put_model(
            &Model::new("run-ω", "Net", "données-ü", "モデル")
                .with_params(json!({"seed": -9007199254740993_i64, "lr": 0.1})),
            false,
        )
        .await
        .unwrap();
    client
        .insert_epochs(
            "run-ω",
            vec![
                NewEpoch::new(0, [("loss", f64::NAN), ("acc", f64::NEG_INFINITY)]),
                NewEpoch::new(1, [("loss", 0.1 + 0.2), ("acc", f64::INFINITY)]),
                NewEpoch::new(2, [("loss", 5e-324), ("acc", 1e300)]),
            ],
        )
        .await
        .unwrap();
    client.start_run("run-ω", Some(60)).await.unwrap();
    client.end_run("run-ω", RunStatus::Finished).await.unwrap();
    let tags = [("stage".to_owned(), "prod ✓".to_owned())].into();
    client
        .update_tags(RecordKind::Model, "run-ω", &tags, &[])
        .await
        .unwrap();
    client
        .update_tags(RecordKind::DataBlob, "données-ü", &tags, &[])
        .await
        .unwrap();
    client
        .set_description(RecordKind::Model, "run-ω", "# Run ω\nline two")
        .await
        .unwrap();
    client
        .set_description(RecordKind::ModelTemplate, "モデル", "template")
        .await
        .unwrap();
    mlmeta(server)
        .args([
            "artifact", "add", "run-ω", "ref", "--uri", "s3://b/k", "--size", "7",
        ])
        .run()
        .await
        .ok();
    let file = dir.join("weights.bin");
    let bytes: Vec<u8> = (0..3_000_000_u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    mlmeta(server)
        .args([
            "artifact",
            "upload",
            "run-ω",
            "weights",
            "--file",
            file.to_str().unwrap(),
        ])
        .run()
        .await
        .ok();
}

/// The lines of an export file without its header line.
fn body(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let (header, rest) = text.split_once('\n').unwrap();
    assert!(header.starts_with("{\"header\":{\"exported_at\":"), "{header}");
    assert!(header.contains("\"format_version\":1"), "{header}");
    rest.to_owned()
}

async fn export_import_export_is_byte_identical(server: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    rich_seed(&server, dir.path()).await;
    let first = dir.path().join("first.jsonl");
    mlmeta(&server)
        .args(["export", "--with-artifacts", "--to", first.to_str().unwrap()])
        .run()
        .await
        .ok();
    let text = body(&first);
    for exact in [
        "\"big\":123456789012345678901234567890",
        "\"n\":18446744073709551615",
        "\"seed\":-9007199254740993",
        "\"loss\":\"NaN\"",
        "\"acc\":\"-Infinity\"",
        "\"acc\":\"Infinity\"",
        "\"loss\":0.30000000000000004",
        "\"loss\":5e-324",
        "\"status\":\"FINISHED\"",
        "\"description\":\"# Run ω\\nline two\"",
        "{\"artifact_chunk\":",
        // Epochs carry the time they were stored (kept by the import: the
        // second export below compares it byte for byte).
        "\"recorded_at\":\"20",
    ] {
        assert!(
            text.contains(exact),
            "{exact} not in the export:\n{}",
            &text[..text.len().min(4000)]
        );
    }

    let target = another(&server).await;
    let summary = mlmeta(&target)
        .args(["import", "--from", first.to_str().unwrap()])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(summary["models"]["inserted"], 5, "{summary}");
    assert_eq!(summary["epochs"]["inserted"], 10, "{summary}");
    assert_eq!(summary["artifacts"]["inserted"], 2, "{summary}");
    assert_eq!(summary["artifact_bytes"], 3_000_000, "{summary}");

    let second = dir.path().join("second.jsonl");
    mlmeta(&target)
        .args(["export", "--with-artifacts", "--to", second.to_str().unwrap()])
        .run()
        .await
        .ok();
    assert!(body(&second) == text, "the second export differs from the first");

    // The content came back bit for bit.
    let restored = dir.path().join("restored.bin");
    mlmeta(&target)
        .args([
            "artifact",
            "download",
            "run-ω",
            "weights",
            "--to",
            restored.to_str().unwrap(),
        ])
        .run()
        .await
        .ok();
    assert_eq!(
        std::fs::read(&restored).unwrap(),
        std::fs::read(dir.path().join("weights.bin")).unwrap()
    );

    // Again: nothing new, everything counted as skipped (through stdin).
    let again = mlmeta(&target)
        .args(["import", "--from", "-"])
        .stdin(std::fs::read(&first).unwrap())
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(again["models"]["inserted"], 0, "{again}");
    assert_eq!(again["models"]["skipped"], 5, "{again}");
    assert_eq!(again["epochs"]["inserted"], 0, "{again}");
    assert_eq!(again["epochs"]["skipped"], 10, "{again}");
    assert_eq!(again["datablobs"]["skipped"], 3, "{again}");
    assert_eq!(again["artifacts"]["skipped"], 2, "{again}");

    // Export to standard output: only the lines there.
    let out = mlmeta(&target).args(["export", "--to", "-"]).run().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("{\"header\":"), "{}", out.stdout);
    assert!(out.stderr.starts_with("exported "), "{}", out.stderr);
}

async fn conflicts_are_reported_and_overwrite_mutable_replaces_tags(server: TestServer) {
    seed(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.jsonl");
    let file = file.to_str().unwrap();
    mlmeta(&server).args(["export", "--to", file]).run().await.ok();
    let target = another(&server).await;
    mlmeta(&target).args(["import", "--from", file]).run().await.ok();
    let client = Client::connect(target.url()).await.unwrap();
    let tags = [("k".to_owned(), "changed".to_owned())].into();
    client
        .update_tags(RecordKind::Model, "m-empty", &tags, &[])
        .await
        .unwrap();

    let error = mlmeta(&target)
        .args(["import", "--from", file])
        .run()
        .await
        .fails(1);
    assert!(error.contains("1 records conflict"), "{error}");
    assert!(error.contains("model \"m-empty\""), "{error}");
    assert!(error.contains("tags"), "{error}");
    let kept = client.list_models(&Default::default()).await.unwrap();
    assert!(
        kept.iter()
            .any(|m| m.name == "m-empty" && m.tags.get("k").map(String::as_str) == Some("changed"))
    );

    let summary = mlmeta(&target)
        .args(["import", "--from", file, "--overwrite-mutable"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(summary["models"]["updated"], 1, "{summary}");
    let models = client.list_models(&Default::default()).await.unwrap();
    assert!(models.iter().any(|m| m.name == "m-empty" && m.tags.is_empty()));

    // Different immutable content under the same name: a conflict even with
    // --overwrite-mutable, and its epochs are not imported.
    let other = another(&server).await;
    let other_client = Client::connect(other.url()).await.unwrap();
    other_client
        .put_datablob(&DataBlob::new("cifar", "cifar", json!({"batch_size": 1})), false)
        .await
        .unwrap();
    let error = mlmeta(&other)
        .args(["import", "--from", file, "--overwrite-mutable"])
        .run()
        .await
        .fails(1);
    assert!(error.contains("datablob \"cifar\""), "{error}");
    let blobs = other_client.list_datablobs(&Default::default()).await.unwrap();
    assert!(
        blobs
            .iter()
            .any(|b| b.name == "cifar" && b.hyperparams == json!({"batch_size": 1}))
    );
}

async fn model_and_where_select_what_is_exported(server: TestServer) {
    seed(&server).await;
    let one = mlmeta(&server)
        .args(["export", "--model", "m-cnn-cifar", "--to", "-"])
        .run()
        .await;
    assert_eq!(one.code, Some(0), "{one:?}");
    let kinds: Vec<String> = one
        .stdout
        .lines()
        .map(|line| line.split('"').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(kinds[..4], ["header", "datablob", "model_template", "model"]);
    assert!(one.stdout.contains("\"name\":\"cifar\""));
    assert!(!one.stdout.contains("\"name\":\"mnist-a\""));
    assert!(!one.stdout.contains("m-cnn-mnist"));

    let filtered = mlmeta(&server)
        .args(["export", "--where", "datablob.batch_size >= 128", "--to", "-"])
        .run()
        .await;
    assert_eq!(filtered.code, Some(0), "{filtered:?}");
    assert!(filtered.stdout.contains("\"name\":\"m-cnn-mnist\""));
    assert!(filtered.stdout.contains("\"name\":\"m-mlp-mnist\""));
    assert!(!filtered.stdout.contains("m-cnn-cifar"));
    assert!(!filtered.stdout.contains("\"name\":\"cifar\""));

    let error = mlmeta(&server)
        .args(["export", "--where", "nonsense ===", "--to", "-"])
        .run()
        .await
        .fails(1);
    assert!(error.contains("where"), "{error}");
}

async fn bad_files_fail_naming_the_line(server: TestServer) {
    seed(&server).await;
    let out = mlmeta(&server).args(["export", "--to", "-"]).run().await;
    let lines: Vec<&str> = out.stdout.lines().collect();
    let target = another(&server).await;
    let client = Client::connect(target.url()).await.unwrap();

    let not_json = format!("{}\n{}\n{{not json\n{}\n", lines[0], lines[1], lines[2]);
    let error = mlmeta(&target)
        .args(["import", "--from", "-"])
        .stdin(not_json)
        .run()
        .await
        .fails(1);
    assert!(error.contains("line 3: not a record"), "{error}");
    // The lines before it are stored, nothing after.
    assert_eq!(client.list_datablobs(&Default::default()).await.unwrap().len(), 1);

    let version = lines[0].replace("\"format_version\":1", "\"format_version\":99");
    let error = mlmeta(&target)
        .args(["import", "--from", "-"])
        .stdin(format!("{version}\n"))
        .run()
        .await
        .fails(1);
    assert!(
        error.contains("line 1: format version 99 is not supported"),
        "{error}"
    );

    let no_header = format!("{}\n{}\n", lines[1], lines[0]);
    let error = mlmeta(&target)
        .args(["import", "--from", "-"])
        .stdin(no_header)
        .run()
        .await
        .fails(1);
    assert!(
        error.contains("line 1: an export starts with its header line"),
        "{error}"
    );

    // A record the server refuses: the line is named from its position.
    let bad = lines[2].replacen("\"group_name\":\"", "\"group_name\":\"\\u0007", 1);
    let refused = format!("{}\n{}\n{bad}\n", lines[0], lines[1]);
    let error = mlmeta(&target)
        .args(["import", "--from", "-"])
        .stdin(refused)
        .run()
        .await
        .fails(1);
    assert!(error.contains("line 3"), "{error}");
    assert!(error.contains("group_name"), "{error}");
}

/// The move: a project exported from a SQLite server and imported
/// into a PostgreSQL one answers listings, best-model queries and
/// leaderboards identically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_reads_back_identically() {
    let Some(target) = TestServer::postgres().await else {
        return;
    };
    let source = TestServer::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    rich_seed(&source, dir.path()).await;
    let file = dir.path().join("move.jsonl");
    let file = file.to_str().unwrap();
    mlmeta(&source)
        .args(["export", "--with-artifacts", "--to", file])
        .run()
        .await
        .ok();
    mlmeta(&target).args(["import", "--from", file]).run().await.ok();
    for query in [
        vec!["list", "models"],
        vec!["list", "datablobs"],
        vec!["list", "templates"],
        // Epochs keep their recorded_at through the import.
        vec!["list", "epochs"],
        vec!["best", "--metric", "val_accuracy", "--max"],
        vec!["best", "--metric", "loss", "--min", "--top", "5"],
        vec!["leaderboard", "--metric", "loss", "--min"],
        vec!["leaderboard", "--metric", "val_accuracy", "--max"],
        vec!["show", "model", "run-ω"],
    ] {
        let from = mlmeta(&source).args(&query).format("json").run().await.ok();
        let to = mlmeta(&target).args(&query).format("json").run().await.ok();
        assert_eq!(from, to, "{query:?}");
    }
}
