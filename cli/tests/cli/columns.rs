//! `mlmeta list models --sort`, and `--columns` on `list models`, `best`
//! and `leaderboard` in every format.

use mlmeta_tests::{TestServer, backend_tests};
use serde_json::json;

use crate::support::{csv_rows, mlmeta, seed};

backend_tests! {
    list_models_sorted_with_columns_as_csv,
    list_models_columns_as_json,
    rankings_with_columns,
    bad_sort_and_columns_name_the_flag,
}

/// The seed's models: `m-mlp-mnist` has the highest `max(val_accuracy)`,
/// `m-cnn-mnist` a NaN last one, `m-empty` no epochs.
async fn list_models_sorted_with_columns_as_csv(server: TestServer) {
    seed(&server).await;
    let csv = mlmeta(&server)
        .args([
            "list",
            "models",
            "--sort",
            "max(val_accuracy) desc",
            "--columns",
            "max(val_accuracy), last(val_accuracy),last(loss),epochs",
        ])
        .format("csv")
        .run()
        .await
        .ok();
    let rows = csv_rows(&csv);
    assert_eq!(
        rows[0][8..],
        ["max(val_accuracy)", "last(val_accuracy)", "last(loss)", "epochs"]
    );
    let tail = |row: &Vec<String>| [vec![row[0].clone()], row[8..12].to_vec()].concat();
    let got: Vec<Vec<String>> = rows[1..].iter().map(tail).collect();
    let want = [
        [
            "m-mlp-mnist",
            "0.9100000000000001",
            "0.9100000000000001",
            "0.5",
            "2",
        ],
        ["m-cnn-mnist", "0.91", "NaN", "0.25", "3"],
        ["m-cnn-cifar", "0.3", "0.3", "-inf", "2"],
        ["m-empty", "", "", "", "0"],
    ];
    assert_eq!(got, want.map(|row| row.map(str::to_owned).to_vec()));
    // The table has the columns too, and by name without --sort.
    let table = mlmeta(&server)
        .args(["list", "models", "--columns", "count(val_accuracy)"])
        .run()
        .await
        .ok();
    let header = table.lines().next().unwrap();
    assert!(header.contains("count(val_accuracy)"), "{table}");
    let names: Vec<&str> = table
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, ["m-cnn-cifar", "m-cnn-mnist", "m-empty", "m-mlp-mnist"]);
}

async fn list_models_columns_as_json(server: TestServer) {
    seed(&server).await;
    let doc = mlmeta(&server)
        .args([
            "list",
            "models",
            "--sort",
            "last(loss)",
            "--columns",
            "last(loss),count(nope),current_epoch",
        ])
        .format("json")
        .run()
        .await
        .json();
    let models = doc.as_array().unwrap();
    let got: Vec<(&str, &serde_json::Value)> = models
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), &m["columns"]))
        .collect();
    assert_eq!(
        got,
        [
            (
                "m-cnn-cifar",
                &json!({"last(loss)": "-inf", "count(nope)": null, "current_epoch": 1})
            ),
            (
                "m-cnn-mnist",
                &json!({"last(loss)": 0.25, "count(nope)": null, "current_epoch": 2})
            ),
            (
                "m-mlp-mnist",
                &json!({"last(loss)": 0.5, "count(nope)": null, "current_epoch": 1})
            ),
            (
                "m-empty",
                &json!({"last(loss)": null, "count(nope)": null, "current_epoch": null})
            ),
        ]
    );
    // Without --columns, no "columns" field.
    let plain = mlmeta(&server)
        .args(["list", "models"])
        .format("json")
        .run()
        .await
        .json();
    assert!(plain[0].get("columns").is_none(), "{plain}");
}

async fn rankings_with_columns(server: TestServer) {
    seed(&server).await;
    let csv = mlmeta(&server)
        .args([
            "leaderboard",
            "--metric",
            "val_accuracy",
            "--max",
            "--columns",
            "last(loss),epochs",
        ])
        .format("csv")
        .run()
        .await
        .ok();
    let rows = csv_rows(&csv);
    assert_eq!(
        rows[0][..8],
        [
            "rank",
            "model",
            "epoch",
            "val_accuracy",
            "datablob",
            "template",
            "last(loss)",
            "epochs"
        ]
    );
    let got: Vec<[&str; 3]> = rows[1..]
        .iter()
        .map(|r| [r[1].as_str(), r[6].as_str(), r[7].as_str()])
        .collect();
    assert_eq!(
        got,
        [
            ["m-mlp-mnist", "0.5", "2"],
            ["m-cnn-mnist", "0.25", "3"],
            ["m-cnn-cifar", "-inf", "2"]
        ]
    );
    let doc = mlmeta(&server)
        .args([
            "best",
            "--metric",
            "loss",
            "--min",
            "--columns",
            "max(val_accuracy),min(loss)",
        ])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(doc["models"][0]["model"]["name"], "m-cnn-cifar");
    assert_eq!(
        doc["models"][0]["model"]["columns"],
        json!({"max(val_accuracy)": 0.3, "min(loss)": "-inf"})
    );
}

async fn bad_sort_and_columns_name_the_flag(server: TestServer) {
    seed(&server).await;
    let error = mlmeta(&server)
        .args(["list", "models", "--sort", "params.lr"])
        .run()
        .await
        .fails(1);
    assert!(
        error.contains("order_by: column 1: cannot sort by this field"),
        "{error}"
    );
    let error = mlmeta(&server)
        .args(["best", "--metric", "loss", "--min", "--columns", "epochs,name"])
        .run()
        .await
        .fails(1);
    assert!(error.contains("columns[1]: column 1: not a summary"), "{error}");
}
