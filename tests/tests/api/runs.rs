//! Run lifecycle over gRPC on both backends: StartRun, Heartbeat, EndRun,
//! GetModel with its status history, epochs as heartbeats, the sweeper
//! marking silent runs CRASHED and epochs or heartbeats reviving them,
//! status filters of listings, best and leaderboard, and two server
//! processes racing on one database.

use std::time::{Duration, Instant};

use futures::future::join_all;
use mlmeta_proto::{
    EndRunRequest, GetModelRequest, GetModelResponse, HeartbeatRequest, ListModelsRequest, MetricDirection,
    Model, ModelFilter, RunContext, RunStatus, StartRunRequest,
};
use mlmeta_tests::calls::{self, Client, expect_status, insert_epochs, list_all_models};
use mlmeta_tests::process::{ServerProcess, server_binary};
use mlmeta_tests::records::{best, epoch, leaderboard};
use mlmeta_tests::{Backend, TestDatabase, TestServer, backend_tests, run_bounded};
use tonic::Code;

backend_tests! {
    start_heartbeat_end_and_history,
    ending_a_run_that_never_started,
    unknown_models_and_invalid_requests,
    epochs_are_heartbeats,
    listings_best_and_leaderboard_filter_by_status,
}

fn start(model: &str, timeout: Option<u32>) -> StartRunRequest {
    StartRunRequest {
        model_name: model.to_owned(),
        heartbeat_timeout_secs: timeout,
        run_context: Some(RunContext {
            host: "gpu-7".into(),
            pid: 4242,
            user: "ada".into(),
            command_line: vec!["train.py".into(), "--lr=0.1".into()],
            git_commit: "0123abcd".into(),
        }),
        project: String::new(),
    }
}

fn heartbeat(model: &str) -> HeartbeatRequest {
    HeartbeatRequest {
        model_name: model.to_owned(),
        project: String::new(),
    }
}

fn end(model: &str, status: RunStatus) -> EndRunRequest {
    EndRunRequest {
        model_name: model.to_owned(),
        status: status.into(),
        project: String::new(),
    }
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

fn status_of(model: &Model) -> RunStatus {
    RunStatus::try_from(model.status).unwrap()
}

fn micros(t: &Option<prost_types::Timestamp>) -> Option<i64> {
    t.as_ref()
        .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000)
}

/// The history as (from, to, cause).
fn history(response: &GetModelResponse) -> Vec<(RunStatus, RunStatus, String)> {
    response
        .status_changes
        .iter()
        .map(|c| {
            (
                RunStatus::try_from(c.from).unwrap(),
                RunStatus::try_from(c.to).unwrap(),
                c.cause.clone(),
            )
        })
        .collect()
}

fn change(from: RunStatus, to: RunStatus, cause: &str) -> (RunStatus, RunStatus, String) {
    (from, to, cause.to_owned())
}

async fn start_heartbeat_end_and_history(server: TestServer) {
    use RunStatus::{Created, Failed, Finished, Running};
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;

    let created = get(&mut client, "m").await;
    let model = created.model.unwrap();
    assert_eq!(status_of(&model), Created, "put models are CREATED");
    assert_eq!(
        (model.started_at, model.ended_at, model.last_heartbeat_at),
        (None, None, None)
    );
    assert!(created.status_changes.is_empty());
    expect_status(
        client.heartbeat(heartbeat("m")).await,
        Code::FailedPrecondition,
        &["never started", "StartRun"],
    );

    let started = client.start_run(start("m", Some(30))).await.unwrap().into_inner();
    let model = started.model.unwrap();
    assert_eq!(status_of(&model), Running);
    assert_eq!(model.heartbeat_timeout_secs, Some(30));
    let context = model.run_context.clone().unwrap();
    assert_eq!(
        (context.host.as_str(), context.pid, context.git_commit.as_str()),
        ("gpu-7", 4242, "0123abcd")
    );
    assert_eq!(context.command_line, ["train.py", "--lr=0.1"]);
    let started_at = micros(&model.started_at).expect("started_at");
    assert_eq!(micros(&model.last_heartbeat_at), Some(started_at));
    // The database clock is the wall clock here: within a minute of ours.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    assert!(
        (now - started_at).abs() < 60_000_000,
        "started_at {started_at} vs now {now}"
    );

    // Starting again is a repeat: same started_at, no new change, but a heartbeat.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = client.start_run(start("m", Some(99))).await.unwrap().into_inner();
    let model = again.model.unwrap();
    assert_eq!(status_of(&model), Running);
    assert_eq!(micros(&model.started_at), Some(started_at));
    assert_eq!(model.heartbeat_timeout_secs, Some(30), "a repeat changes nothing");
    let beat = client
        .heartbeat(heartbeat("m"))
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    assert!(micros(&beat.last_heartbeat_at).unwrap() > started_at);
    assert_eq!(status_of(&beat), Running);

    let ended = client.end_run(end("m", Finished)).await.unwrap().into_inner();
    let model = ended.model.unwrap();
    assert_eq!(status_of(&model), Finished);
    let ended_at = micros(&model.ended_at).expect("ended_at");
    assert!(ended_at >= started_at);
    let repeat = client.end_run(end("m", Finished)).await.unwrap().into_inner();
    assert_eq!(
        micros(&repeat.model.unwrap().ended_at),
        Some(ended_at),
        "same end: a repeat"
    );
    expect_status(
        client.end_run(end("m", Failed)).await,
        Code::FailedPrecondition,
        &["already ended FINISHED", "cannot end FAILED"],
    );
    expect_status(
        client.start_run(start("m", None)).await,
        Code::FailedPrecondition,
        &["ended FINISHED", "cannot be started again"],
    );
    expect_status(
        client.heartbeat(heartbeat("m")).await,
        Code::FailedPrecondition,
        &["ended FINISHED"],
    );

    let detail = get(&mut client, "m").await;
    assert_eq!(
        history(&detail),
        [
            change(Created, Running, "start"),
            change(Running, Finished, "end")
        ]
    );
    assert_eq!(micros(&detail.status_changes[0].changed_at), Some(started_at));
    assert_eq!(micros(&detail.status_changes[1].changed_at), Some(ended_at));
    // Listings carry the status and times too.
    let listed = list_all_models(&mut client, None, 0).await;
    assert_eq!(status_of(&listed[0]), Finished);
    assert_eq!(micros(&listed[0].ended_at), Some(ended_at));
}

async fn ending_a_run_that_never_started(server: TestServer) {
    use RunStatus::{Created, Killed};
    let mut client = server.client();
    calls::seed_model(&mut client, "queued").await;
    let model = client
        .end_run(end("queued", Killed))
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    assert_eq!(status_of(&model), Killed);
    assert_eq!(model.started_at, None);
    assert!(model.ended_at.is_some());
    assert_eq!(
        history(&get(&mut client, "queued").await),
        [change(Created, Killed, "end")]
    );
}

async fn unknown_models_and_invalid_requests(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    expect_status(
        client.start_run(start("nope", None)).await,
        Code::NotFound,
        &["\"nope\""],
    );
    expect_status(
        client.heartbeat(heartbeat("nope")).await,
        Code::NotFound,
        &["\"nope\""],
    );
    expect_status(
        client.end_run(end("nope", RunStatus::Failed)).await,
        Code::NotFound,
        &["\"nope\""],
    );
    let unknown = client
        .get_model(GetModelRequest {
            model_name: "nope".into(),
            project: String::new(),
        })
        .await;
    expect_status(unknown, Code::NotFound, &["model_name", "\"nope\""]);
    // A project where nothing was ever stored: the same NOT_FOUND.
    let elsewhere = StartRunRequest {
        project: "empty-project".into(),
        ..start("m", None)
    };
    expect_status(client.start_run(elsewhere).await, Code::NotFound, &["\"m\""]);

    for status in [
        RunStatus::Unspecified,
        RunStatus::Running,
        RunStatus::Crashed,
        RunStatus::Created,
    ] {
        expect_status(
            client.end_run(end("m", status)).await,
            Code::InvalidArgument,
            &["status: a run ends"],
        );
    }
    let mut bad = end("m", RunStatus::Finished);
    bad.status = 77;
    expect_status(
        client.end_run(bad).await,
        Code::InvalidArgument,
        &["status", "unknown value 77"],
    );
    for secs in [0, 2_592_001] {
        expect_status(
            client.start_run(start("m", Some(secs))).await,
            Code::InvalidArgument,
            &["heartbeat_timeout_secs: must be between 1 and 2592000"],
        );
    }
    expect_status(
        client.start_run(start("", None)).await,
        Code::InvalidArgument,
        &["model_name"],
    );
    let mut long = start("m", None);
    long.run_context.as_mut().unwrap().command_line = vec!["x".into(); 257];
    expect_status(
        client.start_run(long).await,
        Code::InvalidArgument,
        &["run_context.command_line: must hold at most 256"],
    );
    let filter = ModelFilter {
        statuses: vec![RunStatus::Running.into(), 0],
        ..ModelFilter::default()
    };
    let listed = client
        .list_models(ListModelsRequest {
            filter: Some(filter),
            ..ListModelsRequest::default()
        })
        .await;
    expect_status(
        listed,
        Code::InvalidArgument,
        &["filter.statuses[1]: must be a RunStatus"],
    );
    // Nothing above changed the model.
    let detail = get(&mut client, "m").await;
    assert_eq!(status_of(&detail.model.unwrap()), RunStatus::Created);
    assert!(detail.status_changes.is_empty());
}

async fn epochs_are_heartbeats(server: TestServer) {
    let mut client = server.client();
    for name in ["a", "b"] {
        calls::seed_model(&mut client, name).await;
        client.start_run(start(name, None)).await.unwrap();
    }
    let before_a = micros(&get(&mut client, "a").await.model.unwrap().last_heartbeat_at).unwrap();
    let before_b = micros(&get(&mut client, "b").await.model.unwrap().last_heartbeat_at).unwrap();
    // Heartbeats are refreshed at most every 0.1 s (see `heartbeat_refresh`).
    tokio::time::sleep(Duration::from_millis(120)).await;
    // One model per request (the trainer's case), then two in one.
    insert_epochs(&mut client, vec![epoch("a", 0, &[("loss", 1.0)])]).await;
    let after_a = micros(&get(&mut client, "a").await.model.unwrap().last_heartbeat_at).unwrap();
    assert!(
        after_a > before_a,
        "an epoch is a heartbeat: {before_a} -> {after_a}"
    );
    // Heartbeats are refreshed at most every 0.1 s (see `heartbeat_refresh`).
    tokio::time::sleep(Duration::from_millis(120)).await;
    insert_epochs(
        &mut client,
        vec![epoch("a", 1, &[("loss", 0.5)]), epoch("b", 0, &[("loss", 0.7)])],
    )
    .await;
    let a = get(&mut client, "a").await;
    let b = get(&mut client, "b").await;
    assert!(micros(&a.model.as_ref().unwrap().last_heartbeat_at).unwrap() > after_a);
    assert!(micros(&b.model.as_ref().unwrap().last_heartbeat_at).unwrap() > before_b);
    // Skipped epochs store nothing, so they are no heartbeat.
    let beat = micros(&a.model.as_ref().unwrap().last_heartbeat_at);
    // Heartbeats are refreshed at most every 0.1 s (see `heartbeat_refresh`).
    tokio::time::sleep(Duration::from_millis(120)).await;
    insert_epochs(&mut client, vec![epoch("a", 1, &[("loss", 0.5)])]).await;
    assert_eq!(
        micros(&get(&mut client, "a").await.model.unwrap().last_heartbeat_at),
        beat
    );
    for detail in [&a, &b] {
        assert_eq!(status_of(detail.model.as_ref().unwrap()), RunStatus::Running);
        assert_eq!(
            detail.status_changes.len(),
            1,
            "epochs of a RUNNING run change no status"
        );
    }
}

async fn listings_best_and_leaderboard_filter_by_status(server: TestServer) {
    use RunStatus::{Created, Failed, Finished, Running};
    let mut client = server.client();
    for name in ["created", "running", "finished", "failed"] {
        calls::seed_model(&mut client, name).await;
    }
    client.start_run(start("running", None)).await.unwrap();
    client.start_run(start("finished", None)).await.unwrap();
    client.end_run(end("finished", Finished)).await.unwrap();
    client.end_run(end("failed", Failed)).await.unwrap();
    let epochs = ["created", "running", "finished", "failed"]
        .iter()
        .enumerate()
        .map(|(i, name)| epoch(name, 0, &[("acc", i as f64)]))
        .collect();
    insert_epochs(&mut client, epochs).await;

    let names = |models: Vec<Model>| models.into_iter().map(|m| m.name).collect::<Vec<_>>();
    let by = |statuses: &[RunStatus]| ModelFilter {
        statuses: statuses.iter().map(|&s| s.into()).collect(),
        ..ModelFilter::default()
    };
    assert_eq!(
        names(list_all_models(&mut client, Some(by(&[Running])), 0).await),
        ["running"]
    );
    assert_eq!(
        names(list_all_models(&mut client, Some(by(&[Finished, Failed])), 1).await),
        ["failed", "finished"]
    );
    assert_eq!(
        names(list_all_models(&mut client, Some(by(&[Created])), 0).await),
        ["created"]
    );
    assert_eq!(list_all_models(&mut client, Some(by(&[])), 0).await.len(), 4);

    let mut request = best("acc", MetricDirection::Max, 5);
    request.filter = Some(by(&[Running, Failed]));
    let found: Vec<String> = client
        .get_best_model(request)
        .await
        .unwrap()
        .into_inner()
        .models
        .into_iter()
        .map(|b| b.model.unwrap().name)
        .collect();
    assert_eq!(found, ["failed", "running"]);
    let mut request = leaderboard("acc", MetricDirection::Min, 10);
    request.filter = Some(by(&[Finished, Created]));
    let rows: Vec<String> = calls::full_leaderboard(&mut client, request)
        .await
        .into_iter()
        .map(|r| r.model.unwrap().name)
        .collect();
    assert_eq!(rows, ["created", "finished"]);
    let mut request = best("acc", MetricDirection::Max, 1);
    request.filter = Some(by(&[RunStatus::Crashed]));
    expect_status(client.get_best_model(request).await, Code::NotFound, &[]);
}

/// Polls `model` until its status is `wanted`, for at most `limit`.
async fn wait_for_status(
    client: &mut Client,
    model: &str,
    wanted: RunStatus,
    limit: Duration,
) -> GetModelResponse {
    let deadline = Instant::now() + limit;
    loop {
        let detail = get(client, model).await;
        if status_of(detail.model.as_ref().unwrap()) == wanted {
            return detail;
        }
        assert!(
            Instant::now() < deadline,
            "{model} not {wanted:?} after {limit:?}: {detail:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A run silent past its own 1 s timeout is marked CRASHED by the sweeper
/// and revived by an epoch (another by a heartbeat, a third by a start);
/// one on the default timeout (600 s) stays RUNNING; the history shows
/// every change.
async fn silent_runs_crash_and_come_back(backend: Backend) {
    use RunStatus::{Crashed, Created, Running};
    let Some(server) = TestServer::with(backend, |c| c.sweep_interval_ms = 100, None).await else {
        return;
    };
    let mut client = server.client();
    for name in ["by-epoch", "by-heartbeat", "by-start", "patient"] {
        calls::seed_model(&mut client, name).await;
        let timeout = (name != "patient").then_some(1);
        client.start_run(start(name, timeout)).await.unwrap();
    }
    for name in ["by-epoch", "by-heartbeat", "by-start"] {
        wait_for_status(&mut client, name, Crashed, Duration::from_secs(15)).await;
    }
    assert_eq!(
        status_of(&get(&mut client, "patient").await.model.unwrap()),
        Running
    );

    insert_epochs(&mut client, vec![epoch("by-epoch", 0, &[("loss", 1.0)])]).await;
    client.heartbeat(heartbeat("by-heartbeat")).await.unwrap();
    let mut restart = start("by-start", Some(600));
    restart.run_context.as_mut().unwrap().pid = 7;
    let restarted = client
        .start_run(restart)
        .await
        .unwrap()
        .into_inner()
        .model
        .unwrap();
    assert_eq!(
        restarted.run_context.unwrap().pid,
        7,
        "a restart records its own context"
    );
    assert_eq!(restarted.heartbeat_timeout_secs, Some(600));

    for (name, cause) in [
        ("by-epoch", "epoch after crash"),
        ("by-heartbeat", "heartbeat after crash"),
        ("by-start", "start after crash"),
    ] {
        let detail = get(&mut client, name).await;
        let model = detail.model.as_ref().unwrap();
        assert_eq!(status_of(model), Running, "{name}");
        let changes = history(&detail);
        assert_eq!(
            changes[..3],
            [
                change(Created, Running, "start"),
                change(Running, Crashed, "heartbeat timeout"),
                change(Crashed, Running, cause),
            ],
            "{name}: {changes:?}"
        );
        let times: Vec<i64> = detail
            .status_changes
            .iter()
            .map(|c| micros(&c.changed_at).unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{name}: {times:?}");
        // The crash was at least the timeout after the start.
        assert!(times[1] - times[0] >= 1_000_000, "{name}: {times:?}");
    }
    // The ones still on a 1 s timeout crash again: revived is not immune.
    let again = wait_for_status(&mut client, "by-epoch", Crashed, Duration::from_secs(15)).await;
    assert_eq!(history(&again).len(), 4);
    let by_start = get(&mut client, "by-start").await;
    assert_eq!(
        status_of(by_start.model.as_ref().unwrap()),
        Running,
        "its new timeout is 600 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_runs_crash_and_come_back_on_sqlite() {
    run_bounded(
        "runs::sqlite::crash",
        Duration::from_secs(60),
        silent_runs_crash_and_come_back(Backend::Sqlite),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_runs_crash_and_come_back_on_postgres() {
    run_bounded(
        "runs::postgres::crash",
        Duration::from_secs(60),
        silent_runs_crash_and_come_back(Backend::Postgres),
    )
    .await;
}

const RACED: usize = 6;

/// Two server processes on one database, both sweeping every 50 ms:
/// starts, heartbeats and ends of the same runs sent through both at once,
/// and silent runs both sweepers see, end in the state and history one
/// server would have produced (each transition recorded once).
async fn two_replicas_race_on_runs(url: &str) {
    use RunStatus::{Crashed, Created, Finished, Running};
    let mut servers: Vec<ServerProcess> = (0..2)
        .map(|_| ServerProcess::start_with(url, &["--sweep-interval-ms", "50"]))
        .collect();
    for server in &mut servers {
        server.wait_healthy(Duration::from_secs(60)).await.unwrap();
    }
    let clients: Vec<Client> = servers.iter().map(ServerProcess::client).collect();
    let mut client = clients[0].clone();
    for i in 0..RACED {
        calls::seed_model(&mut client, &format!("run-{i}")).await;
        calls::seed_model(&mut client, &format!("silent-{i}")).await;
    }
    let each = |make: &(dyn Fn(Client, String) -> futures::future::BoxFuture<'static, ()> + Sync)| {
        let mut calls = Vec::new();
        // Three times each, through both servers.
        for _ in 0..3 {
            for i in 0..RACED {
                for client in &clients {
                    calls.push(make(client.clone(), format!("run-{i}")));
                }
            }
        }
        join_all(calls)
    };
    each(&|mut c, name| {
        Box::pin(async move {
            c.start_run(start(&name, None)).await.unwrap();
        })
    })
    .await;
    each(&|mut c, name| {
        Box::pin(async move {
            c.heartbeat(heartbeat(&name)).await.unwrap();
        })
    })
    .await;
    each(&|mut c, name| {
        Box::pin(async move {
            c.end_run(end(&name, Finished)).await.unwrap();
        })
    })
    .await;
    for i in 0..RACED {
        let detail = get(&mut client, &format!("run-{i}")).await;
        assert_eq!(
            history(&detail),
            [
                change(Created, Running, "start"),
                change(Running, Finished, "end")
            ],
            "run-{i}"
        );
    }

    // Silent runs: both sweepers race to mark them; then heartbeats through
    // both servers race to revive them.
    for i in 0..RACED {
        client
            .start_run(start(&format!("silent-{i}"), Some(1)))
            .await
            .unwrap();
    }
    for i in 0..RACED {
        wait_for_status(
            &mut client,
            &format!("silent-{i}"),
            Crashed,
            Duration::from_secs(20),
        )
        .await;
    }
    // Several more sweeps of both replicas.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let revivals = (0..RACED).flat_map(|i| {
        clients.iter().map(move |c| {
            let mut c = c.clone();
            async move {
                c.heartbeat(heartbeat(&format!("silent-{i}"))).await.unwrap();
            }
        })
    });
    join_all(revivals).await;
    for i in 0..RACED {
        let name = format!("silent-{i}");
        let changes = history(&get(&mut client, &name).await);
        // After the revival the sweepers may crash it again (1 s timeout):
        // compare the first three changes, each made exactly once.
        assert_eq!(
            changes[..3],
            [
                change(Created, Running, "start"),
                change(Running, Crashed, "heartbeat timeout"),
                change(Crashed, Running, "heartbeat after crash"),
            ],
            "{name}: {changes:?}"
        );
        for pair in changes.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "{name}: changes chain: {changes:?}");
        }
    }
    for server in &servers {
        server.terminate();
    }
    for server in &mut servers {
        assert!(
            server
                .wait_exit(Duration::from_secs(15))
                .await
                .is_some_and(|s| s.success())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_race_on_runs_on_postgres() {
    server_binary();
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    run_bounded(
        "runs::replicas::postgres",
        Duration::from_secs(120),
        two_replicas_race_on_runs(database.url()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_race_on_runs_on_one_sqlite_file() {
    server_binary();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    run_bounded(
        "runs::replicas::sqlite",
        Duration::from_secs(120),
        two_replicas_race_on_runs(&url),
    )
    .await;
}
