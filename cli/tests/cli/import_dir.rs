//! `mlmeta import-dir`: a naklar-style results directory becomes models
//! with params (JSON types kept), merged epochs and `file://` artifact
//! references; a dry run stores nothing; a second run stores nothing new;
//! a directory that changed since is a conflict while the others import.

use std::path::Path;

use mlmeta_tests::{TestServer, backend_tests};
use serde_json::json;

use crate::support::mlmeta;

backend_tests! {
    a_results_directory_becomes_searchable_models,
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

async fn a_results_directory_becomes_searchable_models(server: TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("results");
    write(
        &root,
        "lr0.1/seed1/conf.json",
        r#"{"lr": 0.1, "seed": 1, "opt": "adam", "nesterov": true, "big": 12345678901234567890,
            "f1": 0.8, "accuracy": [0.5, 0.7, 0.75]}"#,
    );
    write(&root, "lr0.1/seed1/model.pkl", "pickled weights");
    write(&root, "lr0.1/seed1/with space.txt", "notes");
    write(
        &root,
        "lr0.01/conf.json",
        r#"{"lr": 0.01, "f1": "NaN", "epoch": 4, "history": [{"loss": 1.0}, {"loss": 0.4}]}"#,
    );
    write(&root, "lr0.01/history.csv", "epoch,val_loss\n1,0.9\n2,0.8\n");
    write(&root, "unrelated/readme.txt", "no dict file here");
    let dir_arg = root.to_str().unwrap();
    let import = || mlmeta(&server).args(["import-dir", dir_arg, "--metrics", "f1,accuracy"]);

    let planned = import().args(["--dry-run"]).format("json").run().await.json();
    assert_eq!(planned[0]["model"], "lr0.01");
    assert_eq!(planned[0]["status"], "would create");
    assert_eq!(planned[0]["epochs_inserted"], 4);
    assert_eq!(planned[1]["model"], "lr0.1/seed1");
    assert_eq!(planned[1]["artifacts_added"], 2);
    let none = mlmeta(&server)
        .args(["list", "models"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(none, json!([]), "a dry run stored something");

    let first = import().format("json").run().await.json();
    assert_eq!(first[0]["status"], "created");
    assert_eq!(first[0]["epochs_inserted"], 4);
    assert_eq!(first[1]["epochs_inserted"], 3);
    assert_eq!(first[1]["artifacts_added"], 2);

    let epochs = mlmeta(&server)
        .args(["list", "epochs"])
        .format("csv")
        .run()
        .await
        .ok();
    assert_eq!(
        epochs,
        concat!(
            "model,epoch,accuracy,f1,loss,val_loss\n",
            "lr0.01,0,,,1.0,\n",
            "lr0.01,1,,,0.4,0.9\n",
            "lr0.01,2,,,,0.8\n",
            "lr0.01,4,,NaN,,\n",
            "lr0.1/seed1,0,0.5,0.8,,\n",
            "lr0.1/seed1,1,0.7,,,\n",
            "lr0.1/seed1,2,0.75,,,\n",
        )
    );
    let models = mlmeta(&server)
        .args(["list", "models"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(models[0]["params"], json!({"lr": 0.01}));
    assert_eq!(
        models[1]["params"],
        json!({"lr": 0.1, "seed": 1, "opt": "adam", "nesterov": true, "big": 12345678901234567890_u64})
    );
    let artifacts = mlmeta(&server)
        .args(["artifact", "list", "lr0.1/seed1"])
        .format("json")
        .run()
        .await
        .json();
    let seed_dir = root.join("lr0.1/seed1").canonicalize().unwrap();
    assert_eq!(artifacts[0]["name"], "model.pkl");
    assert_eq!(
        artifacts[0]["uri"],
        format!("file://{}/model.pkl", seed_dir.display())
    );
    assert_eq!(artifacts[0]["size_bytes"], 15);
    use sha2::Digest as _;
    assert_eq!(
        artifacts[0]["sha256"],
        hex::encode(sha2::Sha256::digest(b"pickled weights"))
    );
    assert_eq!(
        artifacts[1]["uri"],
        format!("file://{}/with%20space.txt", seed_dir.display())
    );

    // Again: nothing new.
    let again = import().format("json").run().await.json();
    for outcome in again.as_array().unwrap() {
        assert_eq!(outcome["status"], "existed", "{outcome}");
        assert_eq!(outcome["epochs_inserted"], 0, "{outcome}");
        assert_eq!(outcome["artifacts_added"], 0, "{outcome}");
    }
    assert_eq!(again[1]["artifacts_existing"], 2);

    // A file changed since, and a new run directory: the new one is
    // imported, the changed one is a conflict (exit 1).
    write(&root, "lr0.1/seed1/model.pkl", "retrained weights");
    write(&root, "lr0.5/conf.json", r#"{"lr": 0.5, "f1": 0.1}"#);
    let error = import().run().await.fails(1);
    assert!(error.contains("1 of 3 directories conflict"), "{error}");
    assert!(error.contains("model.pkl"), "{error}");
    let names = mlmeta(&server)
        .args(["list", "models"])
        .format("json")
        .run()
        .await
        .json();
    let names: Vec<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lr0.01", "lr0.1/seed1", "lr0.5"]);

    // Names from a key; a directory without any dict file is an error.
    let keyed = dir.path().join("keyed");
    write(&keyed, "a/conf.json", r#"{"run_id": "run-a", "lr": 1}"#);
    let out = mlmeta(&server)
        .args([
            "import-dir",
            keyed.to_str().unwrap(),
            "--model-name-from",
            "run_id",
            "--datablob",
            "d2",
        ])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(out[0]["model"], "run-a");
    let error = mlmeta(&server)
        .args(["import-dir", root.join("unrelated").to_str().unwrap()])
        .run()
        .await
        .fails(1);
    assert!(error.contains("holds a \"conf.json\" file"), "{error}");
}
