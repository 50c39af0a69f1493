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
