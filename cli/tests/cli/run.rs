//! `mlmeta run start|heartbeat|end MODEL` and `mlmeta list models --status`.

use mlmeta_tests::{TestServer, backend_tests};

use crate::support::{csv_rows, mlmeta};

backend_tests! {
    run_commands_move_a_model_through_its_life,
    list_models_filters_by_status,
}

async fn add_model(server: &TestServer, name: &str) {
    for args in [
        vec!["add", "datablob", "d", "--group", "g", "--ignore-existing"],
        vec!["add", "template", "t", "--group", "g", "--ignore-existing"],
        vec![
            "add",
            "model",
            name,
            "--class",
            "C",
            "--datablob",
            "d",
            "--template",
            "t",
        ],
    ] {
        mlmeta(server).args(args).run().await.ok();
    }
}

async fn run_commands_move_a_model_through_its_life(server: TestServer) {
    add_model(&server, "m").await;
    let doc = mlmeta(&server)
        .args(["run", "start", "m", "--heartbeat-timeout-secs", "120"])
        .format("json")
        .run()
        .await
        .json();
    assert_eq!(doc["name"], "m");
    assert_eq!(doc["status"], "running");
    assert!(doc["started_at"].as_str().unwrap().ends_with('Z'), "{doc}");
    assert_eq!(doc["ended_at"], "");

    let table = mlmeta(&server).args(["run", "heartbeat", "m"]).run().await.ok();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("model  status   started_at"), "{table}");
    assert!(lines[2].starts_with("m      running  20"), "{table}");

    let csv = mlmeta(&server)
        .args(["run", "end", "m", "--status", "failed"])
        .format("csv")
        .run()
        .await
        .ok();
    let rows = csv_rows(&csv);
    assert_eq!(rows[1][..2], ["m".to_owned(), "failed".to_owned()], "{csv}");
    assert!(!rows[1][3].is_empty(), "ended_at: {csv}");
    // Same end again: fine; another end: refused, naming both.
    mlmeta(&server)
        .args(["run", "end", "m", "--status", "failed"])
        .run()
        .await
        .ok();
    let error = mlmeta(&server)
        .args(["run", "end", "m", "--status", "finished"])
        .run()
        .await
        .fails(2);
    assert!(
        error.contains("already ended FAILED") && error.contains("FINISHED"),
        "{error}"
    );
    let error = mlmeta(&server)
        .args(["run", "start", "nope"])
        .run()
        .await
        .fails(2);
    assert!(error.contains("\"nope\""), "{error}");
    // Usage errors (exit 1) never reach the server.
    let usage = mlmeta(&server)
        .args(["run", "end", "m", "--status", "crashed"])
        .run()
        .await;
    assert_eq!(usage.code, Some(1), "{usage:?}");
    let usage = mlmeta(&server)
        .args(["run", "start", "m", "--heartbeat-timeout-secs", "0"])
        .run()
        .await;
    assert_eq!(usage.code, Some(1), "{usage:?}");
}

async fn list_models_filters_by_status(server: TestServer) {
    for name in ["a-created", "b-running", "c-killed"] {
        add_model(&server, name).await;
    }
    mlmeta(&server)
        .args(["run", "start", "b-running"])
        .run()
        .await
        .ok();
    mlmeta(&server)
        .args(["run", "end", "c-killed", "--status", "killed"])
        .run()
        .await
        .ok();
    let csv = mlmeta(&server)
        .args(["list", "models"])
        .format("csv")
        .run()
        .await
        .ok();
    let rows = csv_rows(&csv);
    assert_eq!(rows[0][4], "status");
    let statuses: Vec<(&str, &str)> = rows[1..].iter().map(|r| (r[0].as_str(), r[4].as_str())).collect();
    assert_eq!(
        statuses,
        [
            ("a-created", "created"),
            ("b-running", "running"),
            ("c-killed", "killed")
        ]
    );
    let doc = mlmeta(&server)
        .args(["list", "models", "--status", "running", "--status", "killed"])
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
    assert_eq!(names, ["b-running", "c-killed"]);
    assert_eq!(doc[1]["status"], "killed");
}
