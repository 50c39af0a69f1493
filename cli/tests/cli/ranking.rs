//! `mlmeta best` and `mlmeta leaderboard` in every format, with filters,
//! and their not-found exit.

use mlmeta_tests::{TestServer, backend_tests};
use serde_json::json;

use crate::support::{csv_rows, mlmeta, seed};

backend_tests! {
    best_in_every_format,
    best_with_top_and_filters,
    leaderboard_flattens_hyperparams_into_columns,
    no_model_with_the_metric_exits_2,
}

async fn best_in_every_format(server: TestServer) {
    seed(&server).await;
    let best = ["best", "--metric", "val_accuracy", "--max"];
    let table = mlmeta(&server).args(best).run().await.ok();
    assert_eq!(
        table,
        "\
rank  model        epoch  val_accuracy        datablob  template  datablob.aug.flip  datablob.batch_size
----  -----------  -----  ------------------  --------  --------  -----------------  -------------------
   1  m-mlp-mnist      1  0.9100000000000001  mnist-a   mlp       true                               128
"
    );

    let csv = mlmeta(&server).args(best).format("csv").run().await.ok();
    assert_eq!(
        csv,
        "rank,model,epoch,val_accuracy,datablob,template,datablob.aug.flip,datablob.batch_size\n\
         1,m-mlp-mnist,1,0.9100000000000001,mnist-a,mlp,true,128\n"
    );

    let doc = mlmeta(&server).args(best).format("json").run().await.json();
    assert_eq!(doc["metric"], "val_accuracy");
    assert_eq!(doc["direction"], "max");
    let models = doc["models"].as_array().unwrap();
    assert_eq!(models.len(), 1);
    let top = &models[0];
    assert_eq!(top["rank"], 1);
    assert_eq!(top["best_epoch_num"], 1);
    assert_eq!(top["value"].as_f64(), Some(0.9100000000000001));
    assert_eq!(top["model"]["name"], "m-mlp-mnist");
    assert_eq!(top["model"]["model_class_name"], "Net");
    assert_eq!(top["model"]["datablob_name"], "mnist-a");
    assert_eq!(top["model"]["model_template_name"], "mlp");
    assert_eq!(top["datablob"]["name"], "mnist-a");
    assert_eq!(top["datablob"]["group_name"], "mnist");
    assert_eq!(
        top["datablob"]["hyperparams"],
        json!({"batch_size": 128, "aug": {"flip": true}})
    );
    assert_eq!(top["model_template"]["hyperparams"], json!({}));
    assert_eq!(top["metrics"]["loss"].as_f64(), Some(0.5));

    // Minimizing: -inf is a number like any other, and prints as such.
    let doc = mlmeta(&server)
        .args(["best", "--metric", "loss", "--min"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(doc["models"][0]["model"]["name"], "m-cnn-cifar");
    assert_eq!(doc["models"][0]["value"], "-inf");
    assert_eq!(doc["models"][0]["metrics"]["grad"].as_f64(), Some(1e-7));
    let csv = mlmeta(&server)
        .args(["best", "--metric", "loss", "--min"])
        .format("csv")
        .run()
        .await
        .ok();
    assert_eq!(csv_rows(&csv)[1][..4], ["1", "m-cnn-cifar", "1", "-inf"]);
}

async fn best_with_top_and_filters(server: TestServer) {
    seed(&server).await;
    let top = |extra: &'static [&'static str]| {
        mlmeta(&server)
            .args(["best", "--metric", "val_accuracy", "--max"])
            .args(extra)
            .format("csv")
    };
    let models = |csv: String| -> Vec<(String, String, String)> {
        csv_rows(&csv)[1..]
            .iter()
            .map(|r| (r[1].clone(), r[2].clone(), r[3].clone()))
            .collect()
    };
    let owned = |rows: &[(&str, &str, &str)]| -> Vec<(String, String, String)> {
        rows.iter()
            .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
            .collect()
    };
    // NaN is never best; more digits than needed never, fewer never either.
    assert_eq!(
        models(top(&["--top", "10"]).run().await.ok()),
        owned(&[
            ("m-mlp-mnist", "1", "0.9100000000000001"),
            ("m-cnn-mnist", "1", "0.91"),
            ("m-cnn-cifar", "0", "0.3"),
        ])
    );
    assert_eq!(
        models(top(&["--datablob-group", "cifar"]).run().await.ok()),
        owned(&[("m-cnn-cifar", "0", "0.3")])
    );
    assert_eq!(
        models(
            top(&["--datablob", "mnist-a", "--template", "cnn"])
                .run()
                .await
                .ok()
        ),
        owned(&[("m-cnn-mnist", "1", "0.91")])
    );
    assert_eq!(
        models(
            top(&[
                "--top",
                "5",
                "--template-group",
                "conv",
                "--template-group",
                "dense",
                "--datablob-group",
                "mnist"
            ])
            .run()
            .await
            .ok()
        ),
        owned(&[
            ("m-mlp-mnist", "1", "0.9100000000000001"),
            ("m-cnn-mnist", "1", "0.91")
        ])
    );
    let run = top(&["--top", "0"]).run().await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stderr.contains("--top"), "{run:#?}");
}

async fn leaderboard_flattens_hyperparams_into_columns(server: TestServer) {
    seed(&server).await;
    let board = ["leaderboard", "--metric", "loss", "--min"];
    let table = mlmeta(&server).args(board).run().await.ok();
    assert_eq!(
        table,
        "\
rank  model        epoch  loss  datablob  template  datablob.aug.flip  datablob.batch_size  template.layers  template.opt.lr
----  -----------  -----  ----  --------  --------  -----------------  -------------------  ---------------  ---------------
   1  m-cnn-cifar      1  -inf  cifar     cnn                                           64                4            0.001
   2  m-cnn-mnist      2  0.25  mnist-a   cnn       true                               128                4            0.001
   3  m-mlp-mnist      1   0.5  mnist-a   mlp       true                               128
"
    );
    let csv = mlmeta(&server).args(board).format("csv").run().await.ok();
    assert_eq!(
        csv,
        "\
rank,model,epoch,loss,datablob,template,datablob.aug.flip,datablob.batch_size,template.layers,template.opt.lr
1,m-cnn-cifar,1,-inf,cifar,cnn,,64,4,0.001
2,m-cnn-mnist,2,0.25,mnist-a,cnn,true,128,4,0.001
3,m-mlp-mnist,1,0.5,mnist-a,mlp,true,128,,
"
    );
    let doc = mlmeta(&server).args(board).format("json").run().await.json();
    assert_eq!(doc["direction"], "min");
    let rows = doc["models"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["model"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["m-cnn-cifar", "m-cnn-mnist", "m-mlp-mnist"]);
    assert_eq!(rows[0]["value"], "-inf");
    assert_eq!(rows[1]["value"].as_f64(), Some(0.25));
    assert_eq!(rows[1]["best_epoch_num"], 2);
    assert_eq!(
        rows[1]["model_template"]["hyperparams"],
        json!({"layers": 4, "opt": {"lr": 0.001}})
    );
    assert!(
        rows[1].get("metrics").is_none(),
        "a leaderboard row has no epoch metrics"
    );

    let filtered = mlmeta(&server)
        .args([
            "leaderboard",
            "--metric",
            "val_accuracy",
            "--max",
            "--datablob",
            "mnist-a",
        ])
        .format("csv")
        .run()
        .await
        .ok();
    let names: Vec<String> = csv_rows(&filtered)[1..].iter().map(|r| r[1].clone()).collect();
    assert_eq!(names, ["m-mlp-mnist", "m-cnn-mnist"]);
}

async fn no_model_with_the_metric_exits_2(server: TestServer) {
    seed(&server).await;
    for command in ["best", "leaderboard"] {
        for format in ["table", "json", "csv"] {
            let error = mlmeta(&server)
                .args([command, "--metric", "bleu", "--max"])
                .format(format)
                .run()
                .await
                .fails(2);
            assert_eq!(
                error,
                "no model has a value for metric \"bleu\" (NaN values do not count)"
            );
        }
        let error = mlmeta(&server)
            .args([
                command,
                "--metric",
                "val_accuracy",
                "--min",
                "--datablob",
                "nothing",
            ])
            .run()
            .await
            .fails(2);
        assert!(
            error.starts_with("no model matching the filters has a value"),
            "{error}"
        );
    }
}
