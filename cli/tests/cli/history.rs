//! `mlmeta history` and `last()`/`count()` in `--where`.

use mlmeta_tests::{TestServer, backend_tests};

use crate::support::{csv_rows, mlmeta, seed};

backend_tests! {
    history_prints_the_curves_of_the_metrics,
    history_plot_draws_a_chart_sized_by_columns,
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

/// Not on a terminal: the chart takes its size from `COLUMNS` and `LINES`
/// and has no colors; `--format csv` still prints the data.
async fn history_plot_draws_a_chart_sized_by_columns(server: TestServer) {
    seed(&server).await;
    let args = [
        "history",
        "m-cnn-mnist",
        "m-mlp-mnist",
        "--metric",
        "val_accuracy",
        "--plot",
    ];
    let chart = mlmeta(&server)
        .args(args)
        .env("COLUMNS", "60")
        .env("LINES", "18")
        .env("NO_COLOR", "1")
        .run()
        .await
        .ok();
    let lines: Vec<&str> = chart.lines().collect();
    // LINES - 8 = 10 chart lines, the x labels, two legend lines.
    assert_eq!(lines.len(), 13, "{chart}");
    assert!(!chart.contains('\x1b'), "{chart}");
    let braille = |line: &str| {
        line.chars()
            .filter(|c| ('\u{2800}'..='\u{28ff}').contains(c))
            .count()
    };
    assert_eq!(braille(lines[0]), 60 - 12, "{chart}");
    assert!(lines[0].ends_with(" 0.91"), "{chart}");
    assert!(lines[9].ends_with(" 0.3"), "{chart}");
    assert_eq!(
        lines[10].split_whitespace().collect::<Vec<_>>(),
        ["0", "2"],
        "{chart}"
    );
    assert_eq!(
        lines[11..],
        [
            "━━ m-cnn-mnist val_accuracy (1 NaN/inf not drawn)",
            "━━ m-mlp-mnist val_accuracy"
        ]
    );
    let csv = mlmeta(&server).args(args).format("csv").run().await.ok();
    assert_eq!(csv_rows(&csv)[0], ["model", "epoch", "val_accuracy"]);
}
