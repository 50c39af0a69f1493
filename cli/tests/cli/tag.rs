//! `mlmeta add model --params --tag --description`, `mlmeta tag`,
//! `mlmeta untag`, `mlmeta describe`, `--tag` filters, and params as
//! `params.<key>` columns.

use mlmeta_tests::{TestServer, backend_tests};
use serde_json::json;

use crate::support::{csv_rows, mlmeta, seed};

backend_tests! {
    add_model_with_params_tags_and_description,
    tag_untag_and_describe_every_kind,
    tag_filters_and_params_columns,
    bad_tags_and_descriptions_are_refused,
}

async fn add_model_with_params_tags_and_description(server: TestServer) {
    seed(&server).await;
    let add = [
        "add",
        "model",
        "run-7",
        "--class",
        "Net",
        "--datablob",
        "cifar",
        "--template",
        "cnn",
        "--params",
        r#"{"seed": 7, "opt": {"lr": 0.01}}"#,
        "--tag",
        "sweep=lr",
        "--tag",
        "note=a=b",
        "--description",
        "# first try",
    ];
    let doc = mlmeta(&server).args(add).format("json").run().await.json();
    assert_eq!(doc["already_existed"], false);
    assert_eq!(doc["model"]["params"], json!({"seed": 7, "opt": {"lr": 0.01}}));
    assert_eq!(doc["model"]["tags"], json!({"sweep": "lr", "note": "a=b"}));
    assert_eq!(doc["model"]["description"], "# first try");
    // Again: the same record, so it already existed.
    assert_eq!(
        mlmeta(&server).args(add).run().await.ok(),
        "model \"run-7\" already existed; left unchanged\n"
    );
    // Other params are another record.
    let mut other = add;
    other[10] = r#"{"seed": 8}"#;
    let error = mlmeta(&server).args(other).run().await.fails(1);
    assert!(error.contains("params_json"), "{error}");

    let listed = mlmeta(&server)
        .args(["list", "models", "--model", "run-7"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(listed[0]["params"], json!({"opt": {"lr": 0.01}, "seed": 7}));
    assert_eq!(listed[0]["tags"], json!({"note": "a=b", "sweep": "lr"}));
    assert_eq!(listed[0]["description"], "# first try");
    // Models without any have `{}` and "".
    let all = mlmeta(&server)
        .args(["list", "models"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(all[0]["name"], "m-cnn-cifar");
    assert_eq!(
        (&all[0]["params"], &all[0]["tags"], &all[0]["description"]),
        (&json!({}), &json!({}), &json!(""))
    );
}

async fn tag_untag_and_describe_every_kind(server: TestServer) {
    seed(&server).await;
    assert_eq!(
        mlmeta(&server)
            .args(["tag", "m-cnn-mnist", "stage=dev", "owner=ada"])
            .format("csv")
            .run()
            .await
            .ok(),
        "key,value\nowner,ada\nstage,dev\n"
    );
    let doc = mlmeta(&server)
        .args(["untag", "m-cnn-mnist", "owner", "absent"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(doc, json!({"model": "m-cnn-mnist", "tags": {"stage": "dev"}}));
    let doc = mlmeta(&server)
        .args(["tag", "--datablob", "cifar", "source=kaggle"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(doc, json!({"datablob": "cifar", "tags": {"source": "kaggle"}}));
    mlmeta(&server)
        .args(["tag", "--template", "cnn", "k=v"])
        .run()
        .await
        .ok();
    let blobs = mlmeta(&server)
        .args(["list", "datablobs", "--datablob", "cifar"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(blobs[0]["tags"], json!({"source": "kaggle"}));
    let templates = mlmeta(&server)
        .args(["list", "templates", "--template", "cnn"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(templates[0]["tags"], json!({"k": "v"}));

    assert_eq!(
        mlmeta(&server)
            .args(["describe", "m-cnn-mnist", "lr too high"])
            .run()
            .await
            .ok(),
        "described model \"m-cnn-mnist\" (11 bytes)\n"
    );
    let notes = "# Notes\n\n* from a file\n";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("NOTES.md");
    std::fs::write(&file, notes).unwrap();
    mlmeta(&server)
        .args(["describe", "--template", "cnn", "--file", file.to_str().unwrap()])
        .run()
        .await
        .ok();
    mlmeta(&server)
        .args(["describe", "--datablob", "cifar", "--file", "-"])
        .stdin("from stdin")
        .run()
        .await
        .ok();
    let models = mlmeta(&server)
        .args(["list", "models", "--model", "m-cnn-mnist"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(models[0]["description"], "lr too high");
    let templates = mlmeta(&server)
        .args(["list", "templates", "--template", "cnn"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(templates[0]["description"], notes);
    let blobs = mlmeta(&server)
        .args(["list", "datablobs", "--datablob", "cifar"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(blobs[0]["description"], "from stdin");
    assert_eq!(
        mlmeta(&server)
            .args(["describe", "m-cnn-mnist", ""])
            .run()
            .await
            .ok(),
        "cleared the description of model \"m-cnn-mnist\"\n"
    );
}

async fn tag_filters_and_params_columns(server: TestServer) {
    seed(&server).await;
    mlmeta(&server)
        .args(["tag", "m-cnn-mnist", "sweep=lr", "seed=1"])
        .run()
        .await
        .ok();
    mlmeta(&server)
        .args(["tag", "m-mlp-mnist", "sweep=lr", "seed=2"])
        .run()
        .await
        .ok();
    mlmeta(&server)
        .args(["tag", "m-cnn-cifar", "sweep=wd"])
        .run()
        .await
        .ok();
    let names = |csv: &str, column: usize| -> Vec<String> {
        csv_rows(csv)[1..].iter().map(|r| r[column].clone()).collect()
    };
    let listed = mlmeta(&server)
        .args(["list", "models", "--tag", "sweep=lr"])
        .format("csv")
        .run()
        .await
        .ok();
    assert_eq!(names(&listed, 0), ["m-cnn-mnist", "m-mlp-mnist"]);
    let listed = mlmeta(&server)
        .args(["list", "models", "--tag", "sweep=lr", "--tag", "seed=2"])
        .format("csv")
        .run()
        .await
        .ok();
    assert_eq!(names(&listed, 0), ["m-mlp-mnist"]);
    let board = mlmeta(&server)
        .args([
            "leaderboard",
            "--metric",
            "val_accuracy",
            "--max",
            "--tag",
            "sweep=lr",
        ])
        .format("csv")
        .run()
        .await
        .ok();
    assert_eq!(names(&board, 1), ["m-mlp-mnist", "m-cnn-mnist"]);
    let best = mlmeta(&server)
        .args(["best", "--metric", "loss", "--min", "--tag", "sweep=wd"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(best["models"][0]["model"]["name"], "m-cnn-cifar");
    assert_eq!(best["models"][0]["model"]["tags"], json!({"sweep": "wd"}));
    let error = mlmeta(&server)
        .args(["best", "--metric", "loss", "--min", "--tag", "sweep=none"])
        .run()
        .await
        .fails(2);
    assert!(error.starts_with("no model matching the filters"), "{error}");

    // Params as columns beside the hyperparameters.
    for (name, params) in [
        ("p-1", r#"{"seed": 1, "opt": {"lr": 0.1}}"#),
        ("p-2", r#"{"seed": 2}"#),
    ] {
        mlmeta(&server)
            .args([
                "add",
                "model",
                name,
                "--class",
                "Net",
                "--datablob",
                "cifar",
                "--template",
                "mlp",
                "--params",
                params,
                "--tag",
                "sweep=p",
            ])
            .run()
            .await
            .ok();
    }
    let listed = mlmeta(&server)
        .args(["list", "models", "--tag", "sweep=p"])
        .format("csv")
        .run()
        .await
        .ok();
    let rows = csv_rows(&listed);
    assert_eq!(
        rows[0],
        [
            "name",
            "class",
            "datablob",
            "template",
            "status",
            "epochs",
            "created_at",
            "last_modified_at",
            "tags",
            "params.opt.lr",
            "params.seed"
        ]
    );
    assert_eq!(rows[1][9..], ["0.1", "1"]);
    assert_eq!(rows[2][9..], ["", "2"]);
    // One CSV field holding the tags' JSON: commas get it quoted, so
    // check the line itself.
    assert!(
        listed.lines().nth(1).unwrap().contains(r#""{""sweep"":""p""}""#),
        "{listed}"
    );
}

async fn bad_tags_and_descriptions_are_refused(server: TestServer) {
    seed(&server).await;
    let error = mlmeta(&server)
        .args(["tag", "m-cnn-mnist", "mlmeta.host=x"])
        .run()
        .await
        .fails(1);
    assert!(
        error.contains("reserved") && error.contains("mlmeta.host"),
        "{error}"
    );
    let error = mlmeta(&server).args(["tag", "nope", "k=v"]).run().await.fails(2);
    assert!(error.contains("model \"nope\" does not exist"), "{error}");
    let error = mlmeta(&server)
        .args(["untag", "--template", "nope", "k"])
        .run()
        .await
        .fails(2);
    assert!(error.contains("model template \"nope\""), "{error}");
    let long = "x".repeat(65_537);
    let error = mlmeta(&server)
        .args(["describe", "m-cnn-mnist", long.as_str()])
        .run()
        .await
        .fails(1);
    assert!(
        error.contains("description") && error.contains("65536"),
        "{error}"
    );
    let error = mlmeta(&server)
        .args(["describe", "m-cnn-mnist", "--file", "/nonexistent/notes.md"])
        .run()
        .await
        .fails(1);
    assert!(error.starts_with("cannot read /nonexistent/notes.md"), "{error}");
    // Bad KEY=VALUE is refused by the command line itself.
    let run = mlmeta(&server)
        .args(["tag", "m-cnn-mnist", "novalue"])
        .run()
        .await;
    assert_eq!(run.code, Some(1), "{run:#?}");
    assert!(run.stderr.contains("KEY=VALUE"), "{run:#?}");
}
