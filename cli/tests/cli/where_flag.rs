//! `--where EXPR` on `mlmeta list models`, `mlmeta best` and `mlmeta
//! leaderboard`, and how a bad expression is reported.

use mlmeta_tests::{TestServer, backend_tests};

use crate::support::{csv_rows, mlmeta, seed};

backend_tests! {
    where_narrows_list_best_and_leaderboard,
    bad_where_names_the_column,
}

fn first_column(csv: &str) -> Vec<String> {
    csv_rows(csv)[1..].iter().map(|row| row[0].clone()).collect()
}

async fn where_narrows_list_best_and_leaderboard(server: TestServer) {
    seed(&server).await;
    let listed = mlmeta(&server)
        .args([
            "list",
            "models",
            "--where",
            "datablob.batch_size >= 128 or template.opt.lr < 0.01",
        ])
        .format("csv")
        .run()
        .await
        .ok();
    assert_eq!(
        first_column(&listed),
        ["m-cnn-cifar", "m-cnn-mnist", "m-mlp-mnist"]
    );
    // ANDed with the flags.
    let listed = mlmeta(&server)
        .args([
            "list",
            "models",
            "--datablob-group",
            "cifar",
            "--where",
            "not exists max(val_accuracy)",
        ])
        .format("csv")
        .run()
        .await
        .ok();
    assert_eq!(first_column(&listed), ["m-empty"]);
    let best = mlmeta(&server)
        .args(["best", "--metric", "val_accuracy", "--max", "--top", "10"])
        .args(["--where", "datablob.aug.flip = true and template = 'cnn'"])
        .format("csv")
        .run()
        .await
        .ok();
    assert_eq!(csv_rows(&best)[1][1], "m-cnn-mnist");
    assert_eq!(csv_rows(&best).len(), 2);
    let board = mlmeta(&server)
        .args([
            "leaderboard",
            "--metric",
            "loss",
            "--min",
            "--where",
            "name like 'm-cnn-%'",
        ])
        .format("json")
        .run()
        .await
        .json();
    let names: Vec<&str> = board["rows"]
        .as_array()
        .or_else(|| board["models"].as_array())
        .unwrap()
        .iter()
        .map(|row| row["model"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["m-cnn-cifar", "m-cnn-mnist"]);
}

async fn bad_where_names_the_column(server: TestServer) {
    seed(&server).await;
    let error = mlmeta(&server)
        .args(["list", "models", "--where", "epochs >"])
        .run()
        .await
        .fails(1);
    assert!(
        error.contains("filter.where: column 9: expected a value after '>'"),
        "{error}"
    );
}
