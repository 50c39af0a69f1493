//! Issue 13's "done means", end to end on both backends: a sweep of 20 runs
//! of one template with different params, in two projects with clashing
//! names; some tagged, one ended FAILED, one left silent until CRASHED and
//! then revived by an epoch, one deleted and restored. Trainers write
//! through the Rust client; everything is read back through the `mlmeta`
//! binary (`show model`, `list models`, `best`).

use std::time::{Duration, Instant};

use mlmeta_client::{Client, DataBlob, Model, ModelTemplate, NewEpoch, RunStatus, WriterOptions};
use mlmeta_tests::{Backend, TestServer, backend_tests_with_setup};
use serde_json::{Value, json};

use crate::support::mlmeta;

backend_tests_with_setup! {
    a_sweep_in_two_projects_reads_back_exactly => 180,
}

const RUNS: usize = 20;
const EPOCHS: i64 = 5;
const FAILED: usize = 7;
const SILENT: usize = 11;
const DELETED: usize = 13;
const PROJECTS: [&str; 2] = ["vision", "nlp"];

fn run_name(i: usize) -> String {
    format!("sweep-{i:02}")
}

/// The learning rate of run `i` in `project`: the projects' sweeps differ.
fn lr(project: &str, i: usize) -> f64 {
    let base = if project == "vision" { 0.001 } else { 0.003 };
    base * (i + 1) as f64
}

/// val_accuracy of run `i` at `epoch` in `project`: rises with the epoch;
/// run DELETED is the best of vision, run 2 the best of nlp.
fn accuracy(project: &str, i: usize, epoch: i64) -> f64 {
    let peak = match (project, i) {
        ("vision", DELETED) | ("nlp", 2) => 0.99,
        _ => 0.5 + 0.02 * i as f64,
    };
    peak - 0.01 * (EPOCHS - 1 - epoch) as f64
}

fn tags(i: usize) -> Vec<(String, String)> {
    let mut tags = vec![];
    if i.is_multiple_of(2) {
        tags.push(("parity".to_owned(), "even".to_owned()));
    }
    if i == 3 {
        tags.push(("baseline".to_owned(), "yes".to_owned()));
    }
    tags
}

/// What a run's status ends as.
fn expected_status(i: usize) -> &'static str {
    if i == FAILED { "failed" } else { "finished" }
}

async fn wait_for_status(client: &Client, model: &str, status: RunStatus) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let detail = client.get_model(model).await.unwrap();
        if detail.model.run.as_ref().map(|r| r.status) == Some(status) {
            return;
        }
        assert!(Instant::now() < deadline, "{model} never {status:?}: {detail:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Trains the sweep of `project` through the Rust client.
async fn train(server: &TestServer, project: &str) {
    let client = Client::connect(server.url()).await.unwrap().in_project(project);
    let hyper = json!({"source": project});
    client
        .put_datablob(&DataBlob::new("data-v1", "data", hyper.clone()), false)
        .await
        .unwrap();
    client
        .put_model_template(&ModelTemplate::new("tmpl", "cnn", hyper), false)
        .await
        .unwrap();
    for i in 0..RUNS {
        let name = run_name(i);
        let model =
            Model::new(&name, "Net", "data-v1", "tmpl").with_params(json!({"seed": i, "lr": lr(project, i)}));
        client.put_model(&model, false).await.unwrap();
        if !tags(i).is_empty() {
            let set: mlmeta_client::Tags = tags(i).into_iter().collect();
            client
                .update_tags(mlmeta_client::RecordKind::Model, &name, &set, &[])
                .await
                .unwrap();
        }
        let epochs = |range: std::ops::Range<i64>| {
            range
                .map(|e| {
                    NewEpoch::new(
                        e,
                        [
                            ("val_accuracy", accuracy(project, i, e)),
                            ("loss", 1.0 / (e + 1) as f64),
                        ],
                    )
                })
                .collect::<Vec<_>>()
        };
        if i == SILENT {
            // Two epochs, then silence past its 1 s timeout: CRASHED; the
            // rest of its epochs revive it, then it finishes.
            client.start_run(&name, Some(1)).await.unwrap();
            client.insert_epochs(&name, epochs(0..2)).await.unwrap();
            wait_for_status(&client, &name, RunStatus::Crashed).await;
            client.insert_epochs(&name, epochs(2..EPOCHS)).await.unwrap();
            client.end_run(&name, RunStatus::Finished).await.unwrap();
            continue;
        }
        let writer = client
            .start_run_writer(&name, None, WriterOptions::default())
            .await
            .unwrap();
        for epoch in epochs(0..EPOCHS) {
            writer.log_epoch(epoch).await.unwrap();
        }
        let status = if i == FAILED {
            RunStatus::Failed
        } else {
            RunStatus::Finished
        };
        writer.finish(status).await.unwrap();
    }
}

fn in_project<'a>(project: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--project", project];
    all.extend_from_slice(args);
    all
}

async fn cli_json(server: &TestServer, project: &str, args: &[&str]) -> Value {
    mlmeta(server)
        .args(in_project(project, args))
        .format("json")
        .run()
        .await
        .json()
}

async fn best(server: &TestServer, project: &str) -> (String, f64) {
    let doc = cli_json(server, project, &["best", "--metric", "val_accuracy", "--max"]).await;
    let row = &doc["models"][0];
    let name = row["model"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("no model in {doc}"));
    (name.to_owned(), row["value"].as_f64().unwrap())
}

/// Checks one run as `show model` prints it.
fn check_shown(project: &str, i: usize, shown: &Value) {
    let name = run_name(i);
    assert_eq!(shown["name"], name.as_str());
    assert_eq!(shown["project"], project);
    assert_eq!(shown["status"], expected_status(i), "{name} in {project}");
    assert_eq!(
        shown["params"],
        json!({"seed": i, "lr": lr(project, i)}),
        "{name} in {project}"
    );
    assert_eq!(shown["datablob"]["hyperparams"], json!({"source": project}));
    assert_eq!(shown["model_template"]["name"], "tmpl");
    for (key, value) in tags(i) {
        assert_eq!(shown["tags"][&key], value.as_str(), "{name}: {shown}");
    }
    assert!(
        shown["tags"]["mlmeta.pid"].is_string(),
        "run context as system tags: {shown}"
    );
    assert_eq!(
        (shown["epoch_count"].as_i64(), shown["current_epoch"].as_i64()),
        (Some(EPOCHS), Some(EPOCHS - 1))
    );
    let metric = shown["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric_name"] == "val_accuracy")
        .unwrap();
    let top = accuracy(project, i, EPOCHS - 1);
    assert_eq!(
        (metric["best"].as_f64(), metric["best_epoch_num"].as_i64()),
        (Some(top), Some(EPOCHS - 1))
    );
    assert_eq!(
        (metric["last"].as_f64(), metric["min"].as_f64()),
        (Some(top), Some(accuracy(project, i, 0)))
    );
    assert_eq!(metric["count"], EPOCHS);
    let causes: Vec<&str> = shown["status_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cause"].as_str().unwrap())
        .collect();
    if i == SILENT {
        // Crashed once for sure, revived by an epoch, ended. On a loaded
        // machine more than its 1 s timeout may pass between the revival
        // and the end: another crash then shows too, which is right.
        assert_eq!(
            causes[..3],
            ["start", "heartbeat timeout", "epoch after crash"],
            "{shown}"
        );
        assert_eq!(causes.last(), Some(&"end"), "{shown}");
        assert!(
            causes[3..causes.len() - 1]
                .iter()
                .all(|c| *c == "heartbeat timeout"),
            "{shown}"
        );
    } else {
        assert_eq!(causes, ["start", "end"], "{name}: {shown}");
    }
}

async fn a_sweep_in_two_projects_reads_back_exactly(backend: Backend) {
    let Some(server) = TestServer::with(backend, |c| c.sweep_interval_ms = 100, None).await else {
        return;
    };
    for project in PROJECTS {
        train(&server, project).await;
    }
    for project in PROJECTS {
        // Every run, as `show model` prints it.
        for i in 0..RUNS {
            let shown = cli_json(&server, project, &["show", "model", &run_name(i)]).await;
            check_shown(project, i, &shown);
        }
        // `list models`: all 20, by name, with status, params and epochs.
        let listed = cli_json(&server, project, &["list", "models"]).await;
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), RUNS);
        for (i, row) in listed.iter().enumerate() {
            assert_eq!(row["name"], run_name(i).as_str());
            assert_eq!(row["status"], expected_status(i));
            assert_eq!(row["params"]["seed"], i);
            assert_eq!(row["epoch_count"], EPOCHS);
        }
        let failed = cli_json(&server, project, &["list", "models", "--status", "failed"]).await;
        assert_eq!(failed.as_array().unwrap().len(), 1);
        assert_eq!(failed[0]["name"], run_name(FAILED).as_str());
        let even = cli_json(&server, project, &["list", "models", "--tag", "parity=even"]).await;
        assert_eq!(even.as_array().unwrap().len(), RUNS / 2);
        let baseline = cli_json(
            &server,
            project,
            &[
                "best",
                "--metric",
                "val_accuracy",
                "--max",
                "--tag",
                "baseline=yes",
            ],
        )
        .await;
        assert_eq!(baseline["models"].as_array().unwrap().len(), 1, "{baseline}");
        assert_eq!(baseline["models"][0]["model"]["name"], run_name(3).as_str());
    }
    let expected_best = |project: &str| {
        let i = if project == "vision" { DELETED } else { 2 };
        (run_name(i), accuracy(project, i, EPOCHS - 1))
    };
    for project in PROJECTS {
        assert_eq!(best(&server, project).await, expected_best(project), "{project}");
    }

    // Delete vision's best run: it leaves list and best (nlp untouched),
    // then comes back exactly.
    let before = cli_json(&server, "vision", &["show", "model", &run_name(DELETED)]).await;
    mlmeta(&server)
        .args(in_project("vision", &["delete", "model", &run_name(DELETED)]))
        .run()
        .await
        .ok();
    let listed = cli_json(&server, "vision", &["list", "models"]).await;
    assert_eq!(listed.as_array().unwrap().len(), RUNS - 1);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["name"] != run_name(DELETED).as_str())
    );
    let runner_up = (run_name(RUNS - 1), accuracy("vision", RUNS - 1, EPOCHS - 1));
    assert_eq!(
        best(&server, "vision").await,
        runner_up,
        "best skips the deleted run"
    );
    assert_eq!(best(&server, "nlp").await, expected_best("nlp"));
    let deleted = cli_json(&server, "vision", &["list", "models", "--deleted"]).await;
    assert_eq!(deleted[0]["name"], run_name(DELETED).as_str());
    mlmeta(&server)
        .args(in_project("vision", &["restore", "model", &run_name(DELETED)]))
        .run()
        .await
        .ok();
    let after = cli_json(&server, "vision", &["show", "model", &run_name(DELETED)]).await;
    assert_eq!(after, before, "restored exactly");
    assert_eq!(best(&server, "vision").await, expected_best("vision"));
    assert_eq!(
        cli_json(&server, "vision", &["list", "models"])
            .await
            .as_array()
            .unwrap()
            .len(),
        RUNS
    );
}
