//! What one model's record tells beyond its put fields, on both backends:
//! epoch counts and the current epoch kept by ingest (in listings and
//! GetModel), GetModel's per-metric summaries, and the run context a start
//! records as `mlmeta.*` system tags.

use mlmeta_proto::{
    EndRunRequest, GetModelRequest, GetModelResponse, HeartbeatRequest, MetricSummary, RunContext, RunStatus,
    StartRunRequest, UpdateTagsRequest,
};
use mlmeta_tests::calls::{self, Client, expect_status, insert_epochs, list_all_models};
use mlmeta_tests::records::epoch;
use mlmeta_tests::{Backend, TestServer, backend_tests_with_setup};
use tonic::Code;

backend_tests_with_setup! {
    epoch_counts_follow_inserts_not_skips,
    get_model_summarizes_every_metric,
    summaries_span_many_pages_of_epochs,
    start_records_its_context_as_system_tags,
}

/// A server whose sweeper runs every 100 ms (so a 1 s run timeout is
/// noticed quickly); `None` when the backend is not available here.
async fn server(backend: Backend) -> Option<TestServer> {
    TestServer::with(backend, |c| c.sweep_interval_ms = 100, None).await
}

async fn get(client: &mut Client, model: &str) -> GetModelResponse {
    client
        .get_model(GetModelRequest {
            model_name: model.to_owned(),
            project: String::new(),
        })
        .await
        .unwrap_or_else(|s| panic!("GetModel {model:?}: {s}"))
        .into_inner()
}

async fn counts(client: &mut Client, model: &str) -> (u64, Option<i64>) {
    let model = get(client, model).await.model.unwrap();
    (model.epoch_count, model.current_epoch)
}

async fn epoch_counts_follow_inserts_not_skips(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "a").await;
    calls::seed_model(&mut client, "b").await;
    assert_eq!(counts(&mut client, "a").await, (0, None), "no epochs yet");

    // Out of order, a repeat within the request, and two models at once.
    let batch = vec![
        epoch("a", 5, &[("loss", 0.5)]),
        epoch("a", 2, &[("loss", 0.7)]),
        epoch("a", 5, &[("loss", 0.1)]),
        epoch("b", 0, &[("loss", 0.9)]),
    ];
    assert_eq!(insert_epochs(&mut client, batch).await, (3, 1));
    assert_eq!(counts(&mut client, "a").await, (2, Some(5)));
    assert_eq!(counts(&mut client, "b").await, (1, Some(0)));

    // Already stored epochs are skipped and not counted again; a lower new
    // epoch adds to the count without lowering the current epoch.
    let again = vec![epoch("a", 5, &[("loss", 0.2)]), epoch("a", 3, &[("loss", 0.6)])];
    assert_eq!(insert_epochs(&mut client, again).await, (1, 1));
    assert_eq!(counts(&mut client, "a").await, (3, Some(5)));

    // The stream path keeps them too.
    let messages = vec![
        mlmeta_tests::records::insert(vec![epoch("b", 1, &[("loss", 0.8)])]),
        mlmeta_tests::records::insert(vec![epoch("b", 9, &[("loss", 0.3)]), epoch("b", 1, &[])]),
    ];
    client.stream_epochs(tokio_stream::iter(messages)).await.unwrap();
    assert_eq!(counts(&mut client, "b").await, (3, Some(9)));

    // Listings carry the same numbers.
    let listed = list_all_models(&mut client, None, 0).await;
    let by_name: Vec<(String, u64, Option<i64>)> = listed
        .into_iter()
        .map(|m| (m.name, m.epoch_count, m.current_epoch))
        .collect();
    assert_eq!(
        by_name,
        [("a".to_owned(), 3, Some(5)), ("b".to_owned(), 3, Some(9))]
    );
}

fn summary(response: &GetModelResponse, metric: &str) -> MetricSummary {
    response
        .metrics
        .iter()
        .find(|m| m.metric_name == metric)
        .unwrap_or_else(|| panic!("no summary of {metric:?}: {:?}", response.metrics))
        .clone()
}

async fn get_model_summarizes_every_metric(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    calls::seed_model(&mut client, "empty").await;
    let nan = f64::NAN;
    insert_epochs(
        &mut client,
        vec![
            epoch("m", 0, &[("acc", 0.5), ("loss", 2.0), ("broken", nan)]),
            epoch("m", 1, &[("acc", 0.9), ("loss", nan), ("broken", nan)]),
            epoch("m", 2, &[("acc", 0.9), ("loss", 1.0)]),
            epoch("m", 3, &[("acc", 0.7), ("loss", 1.5), ("sparse", -1.0)]),
            epoch("m", 4, &[("acc", nan)]),
        ],
    )
    .await;
    let detail = get(&mut client, "m").await;
    let names: Vec<&str> = detail.metrics.iter().map(|m| m.metric_name.as_str()).collect();
    assert_eq!(names, ["acc", "broken", "loss", "sparse"], "by name");

    let acc = summary(&detail, "acc");
    assert_eq!((acc.count, acc.nan_count), (5, 1));
    assert_eq!(
        (acc.max_value, acc.max_epoch_num),
        (Some(0.9), Some(1)),
        "ties: lowest epoch"
    );
    assert_eq!((acc.min_value, acc.min_epoch_num), (Some(0.5), Some(0)));
    assert!(
        acc.last_value.is_nan(),
        "last is the value at the last epoch, NaN included"
    );
    assert_eq!(acc.last_epoch_num, 4);

    let loss = summary(&detail, "loss");
    assert_eq!((loss.count, loss.nan_count), (4, 1));
    assert_eq!((loss.min_value, loss.min_epoch_num), (Some(1.0), Some(2)));
    assert_eq!((loss.max_value, loss.max_epoch_num), (Some(2.0), Some(0)));
    assert_eq!((loss.last_value, loss.last_epoch_num), (1.5, 3));

    let broken = summary(&detail, "broken");
    assert_eq!((broken.count, broken.nan_count), (2, 2));
    assert_eq!(
        (broken.min_value, broken.max_value, broken.min_epoch_num),
        (None, None, None),
        "all NaN: no lowest or highest"
    );
    assert_eq!(broken.last_epoch_num, 1);

    let sparse = summary(&detail, "sparse");
    assert_eq!(
        (sparse.count, sparse.last_value, sparse.last_epoch_num),
        (1, -1.0, 3)
    );

    // The summaries agree with the ranking calls.
    let best = client
        .get_best_model(mlmeta_tests::records::best(
            "acc",
            mlmeta_proto::MetricDirection::Max,
            1,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            best.models[0].best_epoch.as_ref().unwrap().epoch_num,
            best.models[0].metric_value
        ),
        (acc.max_epoch_num.unwrap(), acc.max_value.unwrap())
    );

    let empty = get(&mut client, "empty").await;
    assert!(empty.metrics.is_empty());
}

async fn summaries_span_many_pages_of_epochs(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    // More epochs than one page of the server's pass (10,000), with the
    // extremes and the last values on both sides of the page boundaries.
    let mut client = server.client();
    calls::seed_model(&mut client, "long").await;
    let total = 25_003_i64;
    let epochs: Vec<_> = (0..total)
        .map(|n| {
            let wave = ((n % 997) as f64) / 997.0;
            let mut metrics = vec![("loss", 1.0 + wave)];
            if n == 10_000 {
                metrics.push(("loss_min_marker", 0.0));
            }
            if n % 2 == 0 {
                metrics.push(("even", n as f64));
            }
            epoch("long", n * 2, &metrics)
        })
        .collect();
    for chunk in epochs.chunks(20_000) {
        insert_epochs(&mut client, chunk.to_vec()).await;
    }
    let detail = get(&mut client, "long").await;
    let model = detail.model.as_ref().unwrap();
    assert_eq!(
        (model.epoch_count, model.current_epoch),
        (total as u64, Some((total - 1) * 2))
    );
    let loss = summary(&detail, "loss");
    assert_eq!(loss.count, total as u64);
    assert_eq!((loss.min_value, loss.min_epoch_num), (Some(1.0), Some(0)));
    assert_eq!(loss.last_epoch_num, (total - 1) * 2);
    let even = summary(&detail, "even");
    assert_eq!(even.count, (total as u64).div_ceil(2));
    assert_eq!(even.last_epoch_num, (total - 1) * 2, "25,002 is even");
    assert_eq!(even.max_value, Some((total - 1) as f64));
    let marker = summary(&detail, "loss_min_marker");
    assert_eq!((marker.count, marker.last_epoch_num), (1, 20_000));
}

fn start(model: &str, host: &str, command_line: &[&str]) -> StartRunRequest {
    StartRunRequest {
        model_name: model.to_owned(),
        heartbeat_timeout_secs: Some(1),
        run_context: Some(RunContext {
            host: host.to_owned(),
            pid: 77,
            user: String::new(),
            command_line: command_line.iter().map(|s| (*s).to_owned()).collect(),
            git_commit: "feedbeef".into(),
        }),
        project: String::new(),
    }
}

async fn system_tags(client: &mut Client, model: &str) -> Vec<(String, String)> {
    let model = get(client, model).await.model.unwrap();
    model
        .tags
        .into_iter()
        .filter(|(k, _)| k.starts_with("mlmeta."))
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn start_records_its_context_as_system_tags(backend: Backend) {
    let Some(server) = server(backend).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    client
        .start_run(start("m", "gpu-1", &["train.py", "--name", "my run"]))
        .await
        .unwrap();
    let first = pairs(&[
        ("mlmeta.command_line", "train.py --name 'my run'"),
        ("mlmeta.git_commit", "feedbeef"),
        ("mlmeta.host", "gpu-1"),
        ("mlmeta.pid", "77"),
    ]);
    assert_eq!(
        system_tags(&mut client, "m").await,
        first,
        "an empty user sets no tag"
    );

    // A repeated start is a heartbeat: the context stays.
    client.start_run(start("m", "elsewhere", &[])).await.unwrap();
    assert_eq!(system_tags(&mut client, "m").await, first);

    // The system tags are the server's: a user cannot overwrite them.
    expect_status(
        client
            .update_tags(UpdateTagsRequest {
                target: Some(mlmeta_proto::RecordRef {
                    kind: mlmeta_proto::RecordKind::Model.into(),
                    name: "m".into(),
                }),
                set: [("mlmeta.host".to_owned(), "forged".to_owned())].into(),
                unset: vec![],
                project: String::new(),
            })
            .await,
        Code::InvalidArgument,
        &["mlmeta.host", "reserved"],
    );

    // Crashed, then restarted from another machine without a command line:
    // the new context replaces the old one whole.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let model = get(&mut client, "m").await.model.unwrap();
        if RunStatus::try_from(model.status) == Ok(RunStatus::Crashed) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never marked CRASHED");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    client.start_run(start("m", "gpu-2", &[])).await.unwrap();
    assert_eq!(
        system_tags(&mut client, "m").await,
        pairs(&[
            ("mlmeta.git_commit", "feedbeef"),
            ("mlmeta.host", "gpu-2"),
            ("mlmeta.pid", "77"),
        ])
    );
    // Heartbeats and ends leave them alone.
    client
        .heartbeat(HeartbeatRequest {
            model_name: "m".into(),
            project: String::new(),
        })
        .await
        .unwrap();
    client
        .end_run(EndRunRequest {
            model_name: "m".into(),
            status: RunStatus::Finished.into(),
            project: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(system_tags(&mut client, "m").await.len(), 3);
}
