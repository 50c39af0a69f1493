//! `mlmeta history` and `last()`/`count()` in `--where`.

use mlmeta_tests::{TestServer, backend_tests};

use crate::support::{csv_rows, mlmeta, seed};

backend_tests! {
    history_prints_the_curves_of_the_metrics,
    where_reads_last_and_count,
}

async fn history_prints_the_curves_of_the_metrics(server: TestServer) {
    seed(&server).await;
    let csv = mlmeta(&server)
        .args(["history", "m-cnn-cifar", "m-cnn-mnist"])
        .args(["--metric", "val_accuracy", "--metric", "grad"])
        .format("csv")
        .run()
        .await
        .ok();
    let rows = csv_rows(&csv);
    assert_eq!(rows[0], ["model", "epoch", "val_accuracy", "grad"]);
    let keys: Vec<(&str, &str)> = rows[1..].iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
    assert_eq!(
        keys,
        [
            ("m-cnn-cifar", "0"),
            ("m-cnn-cifar", "1"),
            ("m-cnn-mnist", "0"),
            ("m-cnn-mnist", "1"),
            ("m-cnn-mnist", "2"),
        ]
    );
    assert_eq!(rows[1][2], "0.3");
    assert_eq!(rows[1][3], "");
    assert_eq!(rows[2][2], "");
    let json = mlmeta(&server)
        .args([
            "history",
            "m-cnn-mnist",
            "--metric",
            "val_accuracy",
            "--from",
            "1",
            "--to",
            "2",
        ])
        .format("json")
        .run()
        .await
        .json();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["epoch_num"], 1);
    assert_eq!(rows[0]["metrics"]["val_accuracy"], 0.91);
    assert!(rows[1]["metrics"]["val_accuracy"].is_string(), "{json}");
    // Epochs without the metrics are left out.
    let csv = mlmeta(&server)
        .args(["history", "m-cnn-cifar", "--metric", "grad"])
        .format("csv")
        .run()
        .await
        .ok();
    assert_eq!(csv_rows(&csv).len(), 2);
    let error = mlmeta(&server)
        .args(["history", "nobody", "--metric", "loss"])
        .run()
        .await
        .fails(2);
    assert!(error.contains("nobody"), "{error}");
}

async fn where_reads_last_and_count(server: TestServer) {
    seed(&server).await;
    let csv = mlmeta(&server)
        .args([
            "list",
            "models",
            "--where",
            "count(val_accuracy) = 3 and not (last(val_accuracy) >= 0)",
        ])
        .format("csv")
        .run()
        .await
        .ok();
    let names: Vec<String> = csv_rows(&csv)[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(names, ["m-cnn-mnist"]);
    let csv = mlmeta(&server)
        .args([
            "list",
            "models",
            "--where",
            "last(loss) = -inf and count(grad) = 1",
        ])
        .format("csv")
        .run()
        .await
        .ok();
    let names: Vec<String> = csv_rows(&csv)[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(names, ["m-cnn-cifar"]);
}
