//! `mlmeta add epochs`: CSV and JSON Lines imports, their counts on
//! re-import, streaming in chunks, and malformed input.

use std::path::PathBuf;

use mlmeta_client::{Client, DataBlob, Model, ModelTemplate};
use mlmeta_tests::{TestServer, backend_tests};
use serde_json::json;
use tempfile::TempDir;

use crate::support::{Cmd, mlmeta};

backend_tests! {
    imports_csv_and_counts_skipped_on_reimport,
    imports_json_lines_from_a_file_and_stdin,
    imports_more_than_a_chunk,
    malformed_lines_are_reported_with_their_number,
    what_list_epochs_prints_imports_as_it_is,
}

/// Puts model `run` (datablob `d`, template `t`).
async fn seed_run(server: &TestServer) {
    let client = Client::connect(server.url()).await.unwrap();
    client
        .put_datablob(&DataBlob::new("d", "g", json!({})), false)
        .await
        .unwrap();
    client
        .put_model_template(&ModelTemplate::new("t", "g", json!({})), false)
        .await
        .unwrap();
    client
        .put_model(&Model::new("run", "C", "d", "t"), false)
        .await
        .unwrap();
}

/// Puts models `a` and `b` in `project` (datablob `d`, template `t`).
async fn seed_two(server: &TestServer, project: &str) {
    let client = Client::connect(server.url()).await.unwrap().in_project(project);
    client
        .put_datablob(&DataBlob::new("d", "g", json!({})), false)
        .await
        .unwrap();
    client
        .put_model_template(&ModelTemplate::new("t", "g", json!({})), false)
        .await
        .unwrap();
    for name in ["a", "b"] {
        client
            .put_model(&Model::new(name, "C", "d", "t"), false)
            .await
            .unwrap();
    }
}

/// `text` written to `name` in `dir`.
fn file(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn import(server: &TestServer, path: &std::path::Path) -> Cmd {
    mlmeta(server)
        .args(["add", "epochs", "run", "--file"])
        .args([path.to_str().unwrap()])
}

async fn imports_csv_and_counts_skipped_on_reimport(server: TestServer) {
    seed_run(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let csv = file(
        &dir,
        "epochs.csv",
        "epoch,loss,val_accuracy\n0,0.9,0.5\n1,0.5,\n2, 0.25 ,NaN\n3,-inf,0.30000000000000004\n",
    );
    assert_eq!(
        import(&server, &csv).run().await.ok(),
        "model \"run\": 4 epochs inserted, 0 epochs skipped (already stored)\n"
    );
    assert_eq!(
        import(&server, &csv).format("json").run().await.json(),
        json!({"model_name": "run", "inserted": 0, "skipped": 4})
    );
    let more = file(&dir, "more.csv", "epoch,loss\n3,7.0\n4,0.125\n");
    assert_eq!(
        import(&server, &more).format("csv").run().await.ok(),
        "model,inserted,skipped\nrun,1,1\n"
    );
    // Stored, never overwritten: epoch 3 keeps its first value.
    let listed = mlmeta(&server)
        .args(["list", "epochs", "--model", "run"])
        .format("csv")
        .run()
        .await
        .ok();
    assert_eq!(
        listed,
        "model,epoch,loss,val_accuracy\nrun,0,0.9,0.5\nrun,1,0.5,\nrun,2,0.25,NaN\nrun,3,-inf,0.30000000000000004\nrun,4,0.125,\n"
    );

    let error = mlmeta(&server)
        .args(["add", "epochs", "ghost", "--file", csv.to_str().unwrap()])
        .run()
        .await
        .fails(2);
    assert!(error.starts_with("no such model: \"ghost\""), "{error}");
    let missing = dir.path().join("missing.csv");
    let error = import(&server, &missing).run().await.fails(1);
    assert!(
        error.starts_with("cannot read ") && error.contains("missing.csv"),
        "{error}"
    );
}

async fn imports_json_lines_from_a_file_and_stdin(server: TestServer) {
    seed_run(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let lines = concat!(
        "{\"epoch\": 0, \"metrics\": {\"loss\": 0.5, \"acc\": 0.25}, \"steps_per_epoch\": 10}\n",
        "\n",
        "{\"epoch\": 1, \"metrics\": {\"loss\": \"NaN\", \"acc\": \"inf\"}}\n",
        "{\"epoch\": 2, \"metrics\": {\"loss\": NaN, \"acc\": -Infinity}, \"validation_steps_per_epoch\": 3}\n",
    );
    let path = file(&dir, "epochs.jsonl", lines);
    assert_eq!(
        import(&server, &path).format("json").run().await.json(),
        json!({"model_name": "run", "inserted": 3, "skipped": 0})
    );
    let doc = mlmeta(&server)
        .args(["list", "epochs", "--model", "run"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(doc[0]["metrics"], json!({"acc": 0.25, "loss": 0.5}));
    assert_eq!(doc[0]["steps_per_epoch"], 10);
    assert_eq!(doc[1]["metrics"], json!({"acc": "inf", "loss": "NaN"}));
    assert_eq!(doc[2]["metrics"], json!({"acc": "-inf", "loss": "NaN"}));
    assert_eq!(doc[2]["validation_steps_per_epoch"], 3);

    // `-` reads standard input; the format is sniffed from the content.
    let piped = mlmeta(&server)
        .args(["add", "epochs", "run", "--file", "-"])
        .stdin(format!(
            "{lines}{{\"epoch\": 9, \"metrics\": {{\"loss\": 1e-300}}}}\n"
        ))
        .run()
        .await
        .ok();
    assert_eq!(
        piped,
        "model \"run\": 1 epoch inserted, 3 epochs skipped (already stored)\n"
    );
    let piped = mlmeta(&server)
        .args(["add", "epochs", "run", "--file", "-"])
        .stdin("epoch,loss\n10,2.5\n")
        .format("csv")
        .run()
        .await
        .ok();
    assert_eq!(piped, "model,inserted,skipped\nrun,1,0\n");
    assert_eq!(
        mlmeta(&server).args(["current-epoch", "run"]).run().await.ok(),
        "10\n"
    );
}

async fn imports_more_than_a_chunk(server: TestServer) {
    seed_run(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let total = 25_000;
    let mut text = String::from("epoch,loss,acc\n");
    for i in 0..total {
        text.push_str(&format!(
            "{i},{},{}\n",
            1.0 / f64::from(i + 1),
            f64::from(i) / 1e5
        ));
    }
    let path = file(&dir, "big.csv", &text);
    assert_eq!(
        import(&server, &path).format("json").run().await.json(),
        json!({"model_name": "run", "inserted": total, "skipped": 0})
    );
    assert_eq!(
        mlmeta(&server).args(["current-epoch", "run"]).run().await.ok(),
        format!("{}\n", total - 1)
    );
    let best = mlmeta(&server)
        .args(["best", "--metric", "loss", "--min"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(best["models"][0]["best_epoch_num"], total - 1);
    assert_eq!(best["models"][0]["value"].as_f64(), Some(1.0 / f64::from(total)));
}

async fn malformed_lines_are_reported_with_their_number(server: TestServer) {
    seed_run(&server).await;
    let dir = tempfile::tempdir().unwrap();

    // An error in the second chunk: the first 10,000 epochs were stored.
    let mut text = String::from("epoch,loss\n");
    for i in 0..12_000 {
        text.push_str(&format!("{i},0.5\n"));
    }
    text.push_str("12000,oops\n12001,0.5\n");
    let path = file(&dir, "bad.csv", &text);
    let error = import(&server, &path).run().await.fails(1);
    assert!(
        error.starts_with(&format!(
            "{}, line 12002: loss: \"oops\" is not a number",
            path.display()
        )),
        "{error}"
    );
    assert!(
        error.contains("10000 epochs before it were sent: 10000 inserted, 0 skipped"),
        "{error}"
    );
    assert_eq!(
        mlmeta(&server).args(["current-epoch", "run"]).run().await.ok(),
        "9999\n"
    );

    let cases = [
        (
            "wrong-width.csv",
            "epoch,loss\n20000,1\n20001,1,2\n",
            "line 3: 3 fields, but the header has 2",
        ),
        (
            "header.csv",
            "step,loss\n20000,1\n",
            "line 1: the header must start with `epoch`",
        ),
        (
            "negative.csv",
            "epoch,loss\n-1,1\n",
            "line 2: epoch: \"-1\" is not an epoch number",
        ),
        (
            "syntax.jsonl",
            "{\"epoch\": 20000, \"metrics\": {}}\n\n{\"epoch\": 20001, \"metrics\": {\"loss\": }}\n",
            "line 3: expected value (column 38)",
        ),
        (
            "field.jsonl",
            "{\"epoch\": 20000, \"metric\": {\"loss\": 1}}\n",
            "line 1: unknown field `metric`",
        ),
        (
            "value.jsonl",
            "{\"epoch\": 20000, \"metrics\": {\"loss\": [1]}}\n",
            "line 1: metrics.loss: [1] is not a number",
        ),
    ];
    for (name, text, want) in cases {
        let path = file(&dir, name, text);
        let error = import(&server, &path).run().await.fails(1);
        assert!(
            error.starts_with(&format!("{}, {want}", path.display())),
            "{name}: {error}"
        );
    }
    // Nothing of those files was sent: they fail within their first chunk.
    assert_eq!(
        mlmeta(&server).args(["current-epoch", "run"]).run().await.ok(),
        "9999\n"
    );
}

/// `list epochs --format csv` and `--format json` are read back by
/// `add epochs` as they are, into another project, exactly: NaN, ±inf,
/// gaps, step counts, many models (MODEL left out), and nothing twice on a
/// second import. With MODEL given, an epoch of another model is refused.
async fn what_list_epochs_prints_imports_as_it_is(server: TestServer) {
    for project in ["source", "from-csv", "from-json"] {
        seed_two(&server, project).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let lines = concat!(
        "{\"epoch\": 0, \"metrics\": {\"loss\": 0.5, \"acc\": 0.25}, \"steps_per_epoch\": 10}\n",
        "{\"epoch\": 1, \"metrics\": {\"loss\": \"NaN\", \"acc\": \"inf\"}, \"validation_steps_per_epoch\": 3}\n",
        "{\"epoch\": 5, \"metrics\": {\"loss\": 1e-300}}\n",
        "{\"epoch\": 7, \"metrics\": {\"acc\": \"-inf\", \"loss\": 0.30000000000000004}}\n",
    );
    let source = file(&dir, "source.jsonl", lines);
    for model in ["a", "b"] {
        mlmeta(&server)
            .args(["--project", "source", "add", "epochs", model, "--file"])
            .args([source.to_str().unwrap()])
            .run()
            .await
            .ok();
    }
    mlmeta(&server)
        .args(["--project", "source", "add", "epochs", "b", "--file", "-"])
        .stdin("epoch,other\n9,2.5\n")
        .run()
        .await
        .ok();
    let list = |project: &'static str, format: &'static str| {
        mlmeta(&server)
            .args(["--project", project, "list", "epochs"])
            .format(format)
    };
    let csv = list("source", "csv").run().await.ok();
    let doc = list("source", "json").run().await.ok();
    let csv_path = file(&dir, "all.csv", &csv);
    let doc_path = file(&dir, "all.json", &doc);

    let import_all = |project: &'static str, path: &std::path::Path| {
        mlmeta(&server)
            .args(["--project", project, "add", "epochs", "--file"])
            .args([path.to_str().unwrap()])
    };
    assert_eq!(
        import_all("from-csv", &csv_path).run().await.ok(),
        concat!(
            "model \"a\": 4 epochs inserted, 0 epochs skipped (already stored)\n",
            "model \"b\": 5 epochs inserted, 0 epochs skipped (already stored)\n",
            "2 models: 9 epochs inserted, 0 epochs skipped (already stored)\n",
        )
    );
    assert_eq!(list("from-csv", "csv").run().await.ok(), csv);
    assert_eq!(
        import_all("from-json", &doc_path)
            .format("json")
            .run()
            .await
            .json(),
        json!({"inserted": 9, "skipped": 0, "models": [
            {"model_name": "a", "inserted": 4, "skipped": 0},
            {"model_name": "b", "inserted": 5, "skipped": 0},
        ]})
    );
    let without_times = |text: String| {
        let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        for epoch in doc.as_array_mut().unwrap() {
            epoch.as_object_mut().unwrap().remove("recorded_at");
        }
        doc
    };
    let copied = without_times(list("from-json", "json").run().await.ok());
    assert_eq!(copied, without_times(doc.clone()));
    assert_eq!(copied[1]["validation_steps_per_epoch"], 3);
    assert_eq!(copied[0]["steps_per_epoch"], 10);
    // Both copies agree, step counts included.
    assert_eq!(
        list("from-csv", "csv").run().await.ok(),
        list("from-json", "csv").run().await.ok()
    );

    // Again: every epoch is already there.
    assert_eq!(
        import_all("from-json", &csv_path).format("csv").run().await.ok(),
        "model,inserted,skipped\na,0,4\nb,0,5\n"
    );
    // MODEL given: the first epoch of another model stops the import.
    let error = mlmeta(&server)
        .args(["--project", "from-csv", "add", "epochs", "a", "--file"])
        .args([csv_path.to_str().unwrap()])
        .run()
        .await
        .fails(1);
    assert!(
        error.starts_with(&format!(
            "{}, line 6: an epoch of model \"b\", but the command is for model \"a\"",
            csv_path.display()
        )),
        "{error}"
    );
    let error = mlmeta(&server)
        .args(["--project", "from-csv", "add", "epochs", "--file", "-"])
        .stdin("epoch,loss\n1,2\n")
        .run()
        .await
        .fails(1);
    assert!(error.contains("line 1: the file names no model"), "{error}");
}
