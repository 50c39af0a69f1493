//! A trainer's run through the typed client: `start_run_writer` records
//! this process's context, epochs count as heartbeats, `finish` ends the
//! run; `get_model` reads it all back with the metric summaries.

use mlmeta_client::{Error, RunStatus, WriterOptions};
use mlmeta_tests::{TestServer, backend_tests};

use crate::support::{connect, seed_model};

backend_tests! {
    a_writer_starts_and_finishes_its_run,
    bad_writer_options_start_no_run,
}

async fn a_writer_starts_and_finishes_its_run(server: TestServer) {
    let client = connect(&server).await;
    seed_model(&client, "run-1").await;
    let writer = client
        .start_run_writer("run-1", Some(120), WriterOptions::default())
        .await
        .unwrap();
    for epoch in 0..50 {
        let loss = 1.0 / f64::from(epoch + 1);
        writer.log(i64::from(epoch), [("loss", loss)]).await.unwrap();
    }
    let counts = writer.finish(RunStatus::Finished).await.unwrap();
    assert_eq!(counts.inserted, 50);

    let detail = client.get_model("run-1").await.unwrap();
    let run = detail.model.run.as_ref().unwrap();
    assert_eq!(run.status, RunStatus::Finished);
    assert_eq!(run.heartbeat_timeout_secs, Some(120));
    let context = run.run_context.as_ref().unwrap();
    assert_eq!(context.pid, std::process::id());
    assert_eq!(
        detail.model.tags.get("mlmeta.pid").map(String::as_str),
        Some(std::process::id().to_string().as_str()),
        "the context is a system tag too"
    );
    assert_eq!(
        (detail.model.epoch_count, detail.model.current_epoch),
        (50, Some(49))
    );
    let causes: Vec<&str> = detail.status_changes.iter().map(|c| c.cause.as_str()).collect();
    assert_eq!(causes, ["start", "end"]);
    let loss = &detail.metrics[0];
    assert_eq!(loss.metric_name, "loss");
    assert_eq!((loss.count, loss.nan_count), (50, 0));
    assert_eq!(loss.max, Some((0, 1.0)));
    assert_eq!(loss.last, (49, 1.0 / 50.0));
    assert_eq!(loss.min, Some((49, 1.0 / 50.0)));
}

async fn bad_writer_options_start_no_run(server: TestServer) {
    let client = connect(&server).await;
    seed_model(&client, "run-2").await;
    let error = client
        .start_run_writer("run-2", None, WriterOptions::default().batch_size(0))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Config(_) | Error::InvalidArgument { .. }),
        "{error:?}"
    );
    let detail = client.get_model("run-2").await.unwrap();
    assert_eq!(detail.model.run.unwrap().status, RunStatus::Created);
}
