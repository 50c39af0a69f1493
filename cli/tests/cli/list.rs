//! `mlmeta list datablobs|templates|models|epochs` in every format, with
//! filters.

use mlmeta_tests::{TestServer, backend_tests};
use serde_json::{Value, json};

use crate::support::{csv_rows, mlmeta, seed};

backend_tests! {
    list_records_in_every_format,
    list_epochs_with_one_column_per_metric,
    list_epochs_of_an_unknown_model_exits_2,
    projects_keep_the_same_names_apart,
}

/// `--project` (or `MLMETA_PROJECT`) says where a command works; the same
/// names live apart in two projects; `list projects` shows them.
async fn projects_keep_the_same_names_apart(server: TestServer) {
    for (project, hyperparams) in [("vision", r#"{"px": 28}"#), ("nlp", r#"{"vocab": 100}"#)] {
        mlmeta(&server)
            .args([
                "--project",
                project,
                "add",
                "datablob",
                "d",
                "--group",
                "g",
                "--hyperparams",
                hyperparams,
            ])
            .run()
            .await
            .ok();
    }
    let listed = mlmeta(&server)
        .env("MLMETA_PROJECT", "nlp")
        .args(["list", "datablobs"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["hyperparams"], serde_json::json!({"vocab": 100}));
    let projects = mlmeta(&server)
        .args(["list", "projects"])
        .format("csv")
        .run()
        .await
        .ok();
    let names: Vec<String> = csv_rows(&projects)
        .into_iter()
        .skip(1)
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(names, ["default", "nlp", "vision"]);
    let empty = mlmeta(&server)
        .args(["list", "datablobs"])
        .format("csv")
        .run()
        .await
        .ok();
    assert_eq!(
        csv_rows(&empty).len(),
        1,
        "the default project holds nothing: {empty}"
    );
}

/// A typo in `--model` is "not found" (exit 2), as for every other
/// command, not an empty table with exit 0.
async fn list_epochs_of_an_unknown_model_exits_2(server: TestServer) {
    seed(&server).await;
    let list = |model: &str| mlmeta(&server).args(["list", "epochs", "--model", model]);
    let error = list("m-cnn-mnsit").run().await.fails(2);
    assert!(error.contains("\"m-cnn-mnsit\" does not exist"), "{error}");
    let empty = list("m-empty").format("csv").run().await.ok();
    assert_eq!(csv_rows(&empty).len(), 1, "{empty}");
}

/// The first `n` columns of each CSV row (timestamps come after).
fn leading(csv: &str, n: usize) -> Vec<Vec<String>> {
    csv_rows(csv).into_iter().map(|r| r[..n].to_vec()).collect()
}

async fn list_records_in_every_format(server: TestServer) {
    seed(&server).await;
    let list = |what: &str| mlmeta(&server).args(["list", what]);

    let table = list("datablobs").run().await.ok();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(lines[0].starts_with("name     group  hyperparams"), "{table}");
    assert!(
        lines[0].ends_with("created_at            last_modified_at"),
        "{table}"
    );
    assert!(lines[1].starts_with("-------  -----  ---"), "{table}");
    assert!(
        lines[2].starts_with("cifar    cifar  {\"batch_size\":64}"),
        "{table}"
    );
    assert!(
        lines[3].starts_with("mnist-a  mnist  {\"aug\":{\"flip\":true},\"batch_size\":128}"),
        "{table}"
    );

    let csv = list("datablobs")
        .args(["--datablob-group", "mnist"])
        .format("csv")
        .run()
        .await
        .ok();
    let rows = csv_rows(&csv);
    assert_eq!(
        rows[0],
        ["name", "group", "hyperparams", "created_at", "last_modified_at"]
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][..2], ["mnist-a", "mnist"]);
    // The hyperparameters' JSON has commas: the field is quoted.
    assert!(
        csv.contains(r#","{""aug"":{""flip"":true},""batch_size"":128}","#),
        "{csv}"
    );

    let doc = list("datablobs")
        .args(["--datablob", "cifar"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(doc.as_array().unwrap().len(), 1);
    assert_eq!(doc[0]["name"], "cifar");
    assert_eq!(doc[0]["hyperparams"], json!({"batch_size": 64}));

    let csv = list("templates").format("csv").run().await.ok();
    assert_eq!(
        leading(&csv, 2),
        [["name", "group"], ["cnn", "conv"], ["mlp", "dense"]]
    );
    let doc = list("templates")
        .args(["--template-group", "conv"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(doc[0]["hyperparams"], json!({"layers": 4, "opt": {"lr": 0.001}}));
    assert_eq!(doc.as_array().unwrap().len(), 1);

    let table = list("models")
        .args(["--datablob-group", "mnist"])
        .run()
        .await
        .ok();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert!(
        lines[0].starts_with("name         class  datablob  template  status   epochs  created_at"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("m-cnn-mnist  Net    mnist-a   cnn       created       3  20"),
        "{table}"
    );
    assert!(
        lines[3].starts_with("m-mlp-mnist  Net    mnist-a   mlp       created       2  20"),
        "{table}"
    );
    let csv = list("models")
        .args(["--template", "mlp"])
        .format("csv")
        .run()
        .await
        .ok();
    assert_eq!(
        leading(&csv, 4),
        [
            ["name", "class", "datablob", "template"],
            ["m-empty", "Net", "cifar", "mlp"],
            ["m-mlp-mnist", "Net", "mnist-a", "mlp"],
        ]
    );
    let doc = list("models")
        .args(["--model", "m-empty", "--model", "m-cnn-cifar"])
        .format("json")
        .run()
        .await
        .json();
    let names: Vec<&str> = doc
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["m-cnn-cifar", "m-empty"]);
    assert_eq!(doc[0]["model_template_name"], "cnn");

    // Nothing matching is an empty listing, not an error.
    assert_eq!(
        list("models")
            .args(["--model", "none"])
            .format("json")
            .run()
            .await
            .json(),
        json!([])
    );
    assert_eq!(
        list("models")
            .args(["--model", "none"])
            .format("csv")
            .run()
            .await
            .ok(),
        "name,class,datablob,template,status,epochs,created_at,last_modified_at\n"
    );
}

async fn list_epochs_with_one_column_per_metric(server: TestServer) {
    seed(&server).await;
    let epochs = || mlmeta(&server).args(["list", "epochs"]);
    let table = epochs()
        .args(["--model", "m-cnn-mnist", "--model", "m-mlp-mnist"])
        .run()
        .await
        .ok();
    assert_eq!(
        table,
        "\
model        epoch  loss  val_accuracy         steps_per_epoch
-----------  -----  ----  -------------------  ---------------
m-cnn-mnist      0   1.0                  0.5
m-cnn-mnist      1   0.3                 0.91              100
m-cnn-mnist      2  0.25                  NaN
m-mlp-mnist      0   inf  0.30000000000000004
m-mlp-mnist      1   0.5   0.9100000000000001
"
    );

    let csv = epochs().format("csv").run().await.ok();
    assert_eq!(
        csv,
        "\
model,epoch,grad,loss,val_accuracy,steps_per_epoch
m-cnn-cifar,0,,2.0,0.3,
m-cnn-cifar,1,1e-7,-inf,,
m-cnn-mnist,0,,1.0,0.5,
m-cnn-mnist,1,,0.3,0.91,100
m-cnn-mnist,2,,0.25,NaN,
m-mlp-mnist,0,,inf,0.30000000000000004,
m-mlp-mnist,1,,0.5,0.9100000000000001,
"
    );

    let doc = epochs()
        .args(["--model", "m-cnn-mnist", "--from", "1", "--to", "2"])
        .format("json")
        .run()
        .await
        .json();
    let rows = doc.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["model_name"], "m-cnn-mnist");
    assert_eq!(rows[0]["epoch_num"], 1);
    assert_eq!(rows[0]["steps_per_epoch"], 100);
    assert_eq!(rows[0]["validation_steps_per_epoch"], Value::Null);
    assert_eq!(rows[0]["metrics"]["val_accuracy"].as_f64(), Some(0.91));
    // Non-finite values are strings, so the document stays valid JSON.
    assert_eq!(rows[1]["metrics"]["val_accuracy"], "NaN");
    let doc = epochs()
        .args(["--model", "m-mlp-mnist", "--to", "0"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(doc[0]["metrics"]["loss"], "inf");
    assert_eq!(doc[0]["metrics"]["val_accuracy"].as_f64(), Some(0.1 + 0.2));
    let doc = epochs()
        .args(["--model", "m-cnn-cifar", "--from", "1"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(doc[0]["metrics"]["loss"], "-inf");

    assert_eq!(
        epochs().args(["--model", "m-empty"]).run().await.ok(),
        "model  epoch\n-----  -----\n"
    );
}
