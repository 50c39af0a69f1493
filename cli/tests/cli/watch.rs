//! `mlmeta watch`: epochs as JSON Lines, and `--until-status` exiting 0
//! when the watched runs finished, 2 when one failed.

use mlmeta_tests::{TestServer, backend_tests, calls};
use serde_json::Value;

use crate::support::mlmeta;

backend_tests! {
    watch_prints_epochs_and_exits_when_the_run_finishes => 120,
    watch_exits_2_when_a_run_fails => 120,
}

async fn running_model_with_epochs(server: &TestServer, name: &str, epochs: i64) {
    let mut client = server.client();
    calls::seed_model(&mut client, name).await;
    mlmeta(server).args(["run", "start", name]).run().await.ok();
    let rows: Vec<_> = (0..epochs)
        .map(|n| mlmeta_tests::records::epoch(name, n, &[("loss", 1.0 / (n + 1) as f64)]))
        .collect();
    calls::insert_epochs(&mut client, rows).await;
}

fn end(server: &TestServer, name: &str, status: &str) -> impl Future<Output = ()> {
    let run = mlmeta(server).args(["run", "end", name, "--status", status]);
    async move {
        // Give the watch time to start: correct either way, but this way
        // it also exercises the live path.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        run.run().await.ok();
    }
}

async fn watch_prints_epochs_and_exits_when_the_run_finishes(server: TestServer) {
    running_model_with_epochs(&server, "m", 5).await;
    let watch = mlmeta(&server)
        .args(["watch", "m", "--history", "--until-status", "finished"])
        .format("json")
        .run();
    let (run, ()) = tokio::join!(watch, end(&server, "m", "finished"));
    let out = run.ok();
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let nums: Vec<i64> = lines.iter().map(|l| l["epoch_num"].as_i64().unwrap()).collect();
    assert_eq!(nums, [0, 1, 2, 3, 4], "{out}");
    assert_eq!(lines[0]["model_name"], "m");
    assert_eq!(lines[0]["metrics"]["loss"], 1.0);

    // Already finished: exits at once, after the history.
    let csv = mlmeta(&server)
        .args([
            "watch",
            "m",
            "--history",
            "--until-status",
            "any-end",
            "--metric",
            "loss",
        ])
        .format("csv")
        .run()
        .await
        .ok();
    assert_eq!(csv.lines().next(), Some("model,epoch,metric,value"));
    assert_eq!(csv.lines().count(), 6, "{csv}");
}

async fn watch_exits_2_when_a_run_fails(server: TestServer) {
    running_model_with_epochs(&server, "f", 2).await;
    running_model_with_epochs(&server, "g", 2).await;
    let watch = mlmeta(&server)
        .args(["watch", "f", "g", "--until-status", "finished"])
        .run();
    let (run, ()) = tokio::join!(watch, end(&server, "f", "failed"));
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("f FAILED"), "{run:#?}");
    // An unknown model: not found, 2 as well.
    let message = mlmeta(&server)
        .args(["watch", "nope", "--until-status", "any-end"])
        .run()
        .await
        .fails(2);
    assert!(message.contains("nope"), "{message}");
}
