//! Delete, restore, purge (DeleteRecord, RestoreRecord, Purge): deleted
//! records leave listings, best and leaderboard, are frozen, keep their
//! names until purged, come back exactly; purge removes them for good; a
//! replica's cached id of a purged model never receives epochs.

use std::time::Duration;

use mlmeta_proto::{
    DeleteRecordRequest, Deletion, GetModelRequest, ListEpochsRequest, MetricDirection, ModelFilter,
    PurgeRequest, RecordKind, RecordRef, RestoreRecordRequest, StartRunRequest, UpdateTagsRequest,
};
use mlmeta_tests::calls::{
    Client, epochs_of, expect_status, full_leaderboard, insert_epochs, list_all_datablobs, list_all_models,
    seed_model,
};
use mlmeta_tests::process::ServerProcess;
use mlmeta_tests::records::{best, epoch, insert, leaderboard, model, put_model};
use mlmeta_tests::{TestServer, backend_tests};
use tonic::Code;

backend_tests! {
    deleted_models_leave_listings_best_and_leaderboard_until_restored,
    deleted_models_are_frozen,
    deleted_names_are_taken_until_purged,
    components_in_use_cannot_be_deleted,
    purge_of_one_model_and_of_all,
    delete_and_restore_are_idempotent_and_name_their_errors,
    stale_cached_ids_never_receive_epochs => 120,
    artifacts_are_frozen_with_their_model_and_purged_with_it,
}

fn target(kind: RecordKind, name: &str) -> Option<RecordRef> {
    Some(RecordRef {
        kind: kind as i32,
        name: name.to_owned(),
    })
}

async fn delete(client: &mut Client, kind: RecordKind, name: &str) -> bool {
    client
        .delete_record(DeleteRecordRequest {
            target: target(kind, name),
            project: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .already_deleted
}

async fn restore(client: &mut Client, kind: RecordKind, name: &str) -> bool {
    client
        .restore_record(RestoreRecordRequest {
            target: target(kind, name),
            project: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .was_live
}

async fn purge(client: &mut Client, model_name: &str) -> mlmeta_proto::PurgeResponse {
    client
        .purge(PurgeRequest {
            model_name: model_name.to_owned(),
            project: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn names(models: &[mlmeta_proto::Model]) -> Vec<&str> {
    models.iter().map(|m| m.name.as_str()).collect()
}

fn deletion(deletion: Deletion) -> Option<ModelFilter> {
    Some(ModelFilter {
        deletion: deletion as i32,
        ..Default::default()
    })
}

async fn leaders(client: &mut Client, filter: Option<ModelFilter>) -> Vec<(String, f64)> {
    let mut request = leaderboard("acc", MetricDirection::Max, 10);
    request.filter = filter;
    full_leaderboard(client, request)
        .await
        .into_iter()
        .map(|row| (row.model.unwrap().name, row.best_value))
        .collect()
}

async fn two_models(client: &mut Client) {
    seed_model(client, "a").await;
    seed_model(client, "b").await;
    insert_epochs(
        client,
        vec![
            epoch("a", 0, &[("acc", 0.9)]),
            epoch("a", 1, &[("acc", 0.5)]),
            epoch("b", 0, &[("acc", 0.7)]),
        ],
    )
    .await;
}

async fn deleted_models_leave_listings_best_and_leaderboard_until_restored(server: TestServer) {
    let mut client = server.client();
    two_models(&mut client).await;
    client
        .update_tags(UpdateTagsRequest {
            target: target(RecordKind::Model, "a"),
            set: [("k".to_owned(), "v".to_owned())].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let before = client
        .get_model(GetModelRequest {
            model_name: "a".into(),
            project: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!delete(&mut client, RecordKind::Model, "a").await);

    assert_eq!(names(&list_all_models(&mut client, None, 0).await), ["b"]);
    let deleted = list_all_models(&mut client, deletion(Deletion::DeletedOnly), 0).await;
    assert_eq!(names(&deleted), ["a"]);
    assert!(deleted[0].deleted_at.is_some());
    assert_eq!(
        names(&list_all_models(&mut client, deletion(Deletion::All), 0).await),
        ["a", "b"]
    );
    let top = client
        .get_best_model(best("acc", MetricDirection::Max, 5))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(top.models.len(), 1);
    assert_eq!(top.models[0].model.as_ref().unwrap().name, "b");
    assert_eq!(leaders(&mut client, None).await, [("b".to_owned(), 0.7)]);
    assert_eq!(
        leaders(&mut client, deletion(Deletion::All)).await,
        [("a".to_owned(), 0.9), ("b".to_owned(), 0.7)]
    );
    // Epochs stay, but leave the epoch listing with their model.
    let listed = client
        .list_epochs(ListEpochsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .epochs;
    assert!(listed.iter().all(|e| e.model_name == "b"), "{listed:?}");

    assert!(!restore(&mut client, RecordKind::Model, "a").await);
    let after = client
        .get_model(GetModelRequest {
            model_name: "a".into(),
            project: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after, before, "restore brings the model back exactly");
    assert_eq!(epochs_of(&mut client, &["a"]).await.len(), 2);
    assert_eq!(
        leaders(&mut client, None).await,
        [("a".to_owned(), 0.9), ("b".to_owned(), 0.7)]
    );
    let top = client
        .get_best_model(best("acc", MetricDirection::Max, 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(top.models[0].best_epoch.as_ref().unwrap().epoch_num, 0);
}

async fn deleted_models_are_frozen(server: TestServer) {
    let mut client = server.client();
    two_models(&mut client).await;
    delete(&mut client, RecordKind::Model, "a").await;
    let rejected = client
        .insert_epochs(insert(vec![epoch("a", 5, &[("acc", 1.0)])]))
        .await;
    expect_status(
        rejected,
        Code::FailedPrecondition,
        &["epochs[0].model_name", "\"a\" is deleted"],
    );
    // Already stored epochs too (all would be skipped).
    let rejected = client
        .insert_epochs(insert(vec![epoch("a", 0, &[("acc", 1.0)])]))
        .await;
    expect_status(rejected, Code::FailedPrecondition, &["is deleted"]);
    let rejected = client
        .start_run(StartRunRequest {
            model_name: "a".into(),
            ..Default::default()
        })
        .await;
    expect_status(
        rejected,
        Code::FailedPrecondition,
        &["model_name", "is deleted; restore it first"],
    );
    let rejected = client
        .update_tags(UpdateTagsRequest {
            target: target(RecordKind::Model, "a"),
            set: [("k".to_owned(), "v".to_owned())].into(),
            ..Default::default()
        })
        .await;
    expect_status(rejected, Code::FailedPrecondition, &["target.name", "is deleted"]);
    restore(&mut client, RecordKind::Model, "a").await;
    assert_eq!(
        insert_epochs(&mut client, vec![epoch("a", 5, &[("acc", 1.0)])]).await,
        (1, 0)
    );
}

async fn deleted_names_are_taken_until_purged(server: TestServer) {
    let mut client = server.client();
    two_models(&mut client).await;
    delete(&mut client, RecordKind::Model, "a").await;
    let again = client
        .put_model(put_model(model("a", "a-data", "a-tmpl"), true))
        .await;
    expect_status(again, Code::AlreadyExists, &["\"a\" is deleted", "purged"]);
    let counts = purge(&mut client, "a").await;
    assert_eq!((counts.models, counts.epochs), (1, 2));
    client
        .put_model(put_model(model("a", "a-data", "a-tmpl"), false))
        .await
        .unwrap();
    assert!(
        epochs_of(&mut client, &["a"]).await.is_empty(),
        "a new model, no old epochs"
    );
    assert_eq!(
        leaders(&mut client, deletion(Deletion::All)).await,
        [("b".to_owned(), 0.7)]
    );
    assert_eq!(
        insert_epochs(&mut client, vec![epoch("a", 0, &[("acc", 0.1)])]).await,
        (1, 0)
    );
}

async fn components_in_use_cannot_be_deleted(server: TestServer) {
    let mut client = server.client();
    two_models(&mut client).await;
    let refused = client
        .delete_record(DeleteRecordRequest {
            target: target(RecordKind::Datablob, "a-data"),
            project: String::new(),
        })
        .await;
    expect_status(
        refused,
        Code::FailedPrecondition,
        &["\"a-data\"", "live model \"a\""],
    );
    delete(&mut client, RecordKind::Model, "a").await;
    delete(&mut client, RecordKind::Datablob, "a-data").await;
    assert!(
        list_all_datablobs(&mut client, None, 0)
            .await
            .iter()
            .all(|d| d.name != "a-data"),
        "a deleted datablob leaves the listing"
    );
    let refused = client
        .restore_record(RestoreRecordRequest {
            target: target(RecordKind::Model, "a"),
            project: String::new(),
        })
        .await;
    expect_status(
        refused,
        Code::FailedPrecondition,
        &["datablob \"a-data\"", "is deleted"],
    );
    let refused = client
        .put_model(put_model(model("c", "a-data", "a-tmpl"), false))
        .await;
    expect_status(
        refused,
        Code::FailedPrecondition,
        &["model.datablob_name", "is deleted"],
    );
    restore(&mut client, RecordKind::Datablob, "a-data").await;
    restore(&mut client, RecordKind::Model, "a").await;
    assert_eq!(names(&list_all_models(&mut client, None, 0).await), ["a", "b"]);
}

async fn purge_of_one_model_and_of_all(server: TestServer) {
    let mut client = server.client();
    two_models(&mut client).await;
    seed_model(&mut client, "c").await;
    let refused = client
        .purge(PurgeRequest {
            model_name: "b".into(),
            project: String::new(),
        })
        .await;
    expect_status(refused, Code::FailedPrecondition, &["\"b\" is not deleted"]);
    delete(&mut client, RecordKind::Model, "a").await;
    delete(&mut client, RecordKind::Model, "b").await;
    delete(&mut client, RecordKind::Datablob, "a-data").await;
    let one = purge(&mut client, "a").await;
    assert_eq!((one.models, one.epochs, one.datablobs), (1, 2, 0));
    assert_eq!(
        names(&list_all_models(&mut client, deletion(Deletion::All), 0).await),
        ["b", "c"]
    );
    let all = purge(&mut client, "").await;
    assert_eq!(
        (all.models, all.epochs, all.datablobs, all.model_templates),
        (1, 1, 1, 0)
    );
    assert_eq!(
        names(&list_all_models(&mut client, deletion(Deletion::All), 0).await),
        ["c"]
    );
    let nothing = purge(&mut client, "").await;
    assert_eq!((nothing.models, nothing.epochs), (0, 0));
}

async fn delete_and_restore_are_idempotent_and_name_their_errors(server: TestServer) {
    let mut client = server.client();
    two_models(&mut client).await;
    assert!(
        restore(&mut client, RecordKind::Model, "a").await,
        "restoring a live model succeeds"
    );
    assert!(!delete(&mut client, RecordKind::Model, "a").await);
    assert!(
        delete(&mut client, RecordKind::Model, "a").await,
        "deleting a deleted model succeeds"
    );
    let missing = client
        .delete_record(DeleteRecordRequest {
            target: target(RecordKind::Model, "nope"),
            project: String::new(),
        })
        .await;
    expect_status(missing, Code::NotFound, &["target.name", "\"nope\""]);
    let unspecified = client
        .delete_record(DeleteRecordRequest {
            target: target(RecordKind::Unspecified, "a"),
            project: String::new(),
        })
        .await;
    expect_status(unspecified, Code::InvalidArgument, &["target.kind"]);
    let bad = client
        .list_models(mlmeta_proto::ListModelsRequest {
            filter: Some(ModelFilter {
                deletion: 7,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    expect_status(bad, Code::InvalidArgument, &["filter.deletion"]);
    let bad = client
        .list_models(mlmeta_proto::ListModelsRequest {
            filter: Some(ModelFilter {
                r#where: "x > 1".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    expect_status(bad, Code::InvalidArgument, &["filter.where"]);
}

/// Two servers on one database: server B caches model "m"'s id, server A
/// deletes and purges it and puts a new "m"; B's next insert must land in
/// the new model, never under the purged id.
async fn stale_cached_ids_never_receive_epochs(server: TestServer) {
    let mut a = server.client();
    seed_model(&mut a, "m").await;
    let mut other = ServerProcess::start(server.database_url().expose_secret());
    other.wait_healthy(Duration::from_secs(60)).await.unwrap();
    let mut b = other.client();
    assert_eq!(
        insert_epochs(&mut b, vec![epoch("m", 0, &[("acc", 0.5)])]).await,
        (1, 0)
    );

    // Deleted (not purged): B's cached id must not take epochs.
    delete(&mut a, RecordKind::Model, "m").await;
    let rejected = b
        .insert_epochs(insert(vec![epoch("m", 1, &[("acc", 0.6)])]))
        .await;
    expect_status(rejected, Code::FailedPrecondition, &["is deleted"]);
    restore(&mut a, RecordKind::Model, "m").await;
    assert_eq!(
        insert_epochs(&mut b, vec![epoch("m", 1, &[("acc", 0.6)])]).await,
        (1, 0)
    );

    // Purged and the name reused: B's epochs go to the new model.
    delete(&mut a, RecordKind::Model, "m").await;
    purge(&mut a, "m").await;
    a.put_model(put_model(model("m", "m-data", "m-tmpl"), false))
        .await
        .unwrap();
    assert_eq!(
        insert_epochs(&mut b, vec![epoch("m", 7, &[("acc", 0.9)])]).await,
        (1, 0)
    );
    let stored: Vec<i64> = epochs_of(&mut a, &["m"])
        .await
        .iter()
        .map(|e| e.epoch_num)
        .collect();
    assert_eq!(stored, [7]);
    // A retry of an epoch number the purged model had is not "skipped".
    assert_eq!(
        insert_epochs(&mut b, vec![epoch("m", 0, &[("acc", 0.1)])]).await,
        (1, 0)
    );
}

/// Measurement (run by hand: `cargo nextest run -p mlmeta-tests
/// --run-ignored only -E 'test(/purge_of_a_million/)' --no-capture`):
/// purges a model of 1,000,000 epochs while another trainer writes one
/// epoch per call, and prints the purge time and the writer's slowest call.
async fn purge_of_a_million_epochs_does_not_stall_writers(server: TestServer) {
    const EPOCHS: i64 = 1_000_000;
    let mut client = server.client();
    seed_model(&mut client, "big").await;
    seed_model(&mut client, "live").await;
    for start in (0..EPOCHS).step_by(100_000) {
        let batch = (start..start + 100_000)
            .map(|n| epoch("big", n, &[("loss", 1.0)]))
            .collect();
        insert_epochs(&mut client, batch).await;
    }
    delete(&mut client, RecordKind::Model, "big").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let mut client = server.client();
        let stop = std::sync::Arc::clone(&stop);
        tokio::spawn(async move {
            let (mut slowest, mut calls, mut n) = (Duration::ZERO, 0_u64, 0_i64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = std::time::Instant::now();
                insert_epochs(&mut client, vec![epoch("live", n, &[("loss", 0.5)])]).await;
                slowest = slowest.max(started.elapsed());
                calls += 1;
                n += 1;
            }
            (slowest, calls)
        })
    };
    let started = std::time::Instant::now();
    let counts = purge(&mut client, "big").await;
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (slowest, calls) = writer.await.unwrap();
    assert_eq!(counts.epochs, EPOCHS as u64);
    println!(
        "{}: purged {} epochs in {took:?}; a concurrent writer made {calls} calls, the slowest took {slowest:?}",
        if server.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        },
        counts.epochs
    );
}

mod measurement {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement: run by hand"]
    async fn purge_of_a_million_epochs_sqlite() {
        super::purge_of_a_million_epochs_does_not_stall_writers(mlmeta_tests::TestServer::sqlite().await)
            .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "a measurement: run by hand"]
    async fn purge_of_a_million_epochs_postgres() {
        if let Some(server) = mlmeta_tests::TestServer::postgres().await {
            super::purge_of_a_million_epochs_does_not_stall_writers(server).await;
        }
    }
}

async fn artifacts_are_frozen_with_their_model_and_purged_with_it(server: TestServer) {
    use mlmeta_proto::{Artifact, DeleteArtifactRequest, ListArtifactsRequest, PutArtifactRequest};
    let mut client = server.client();
    two_models(&mut client).await;
    let put = |uri: &str| PutArtifactRequest {
        model_name: "a".into(),
        artifact: Some(Artifact {
            name: "ckpt".into(),
            uri: uri.into(),
            ..Default::default()
        }),
        overwrite: true,
        project: String::new(),
    };
    let list = || ListArtifactsRequest {
        model_name: "a".into(),
        project: String::new(),
    };
    client.put_artifact(put("s3://b/a-1")).await.unwrap();
    delete(&mut client, RecordKind::Model, "a").await;
    expect_status(
        client.put_artifact(put("s3://b/a-2")).await,
        Code::FailedPrecondition,
        &["model_name", "\"a\" is deleted", "restore it first"],
    );
    expect_status(
        client
            .delete_artifact(DeleteArtifactRequest {
                model_name: "a".into(),
                name: "ckpt".into(),
                project: String::new(),
            })
            .await,
        Code::FailedPrecondition,
        &["is deleted"],
    );
    let kept = client
        .list_artifacts(list())
        .await
        .unwrap()
        .into_inner()
        .artifacts;
    assert_eq!(kept.len(), 1, "a deleted model's artifacts can still be read");
    assert_eq!(kept[0].uri, "s3://b/a-1");
    restore(&mut client, RecordKind::Model, "a").await;
    let back = client
        .list_artifacts(list())
        .await
        .unwrap()
        .into_inner()
        .artifacts;
    assert_eq!(back, kept, "restored exactly");

    delete(&mut client, RecordKind::Model, "a").await;
    purge(&mut client, "a").await;
    client
        .put_model(put_model(model("a", "a-data", "a-tmpl"), false))
        .await
        .unwrap();
    let fresh = client
        .list_artifacts(list())
        .await
        .unwrap()
        .into_inner()
        .artifacts;
    assert!(
        fresh.is_empty(),
        "a new model under the purged name has no artifacts: {fresh:?}"
    );
}

/// Models the replica race works on.
const RACED: usize = 6;

/// Two server processes on one database: deletes, restores and purges of
/// the same models sent through both at once, with epochs arriving
/// meanwhile, end in the state one server would have produced: each model
/// restored with all its epochs, then purged exactly once, and its name
/// free for a new model.
async fn two_replicas_race_on_delete_restore_and_purge(url: &str) {
    let mut servers: Vec<ServerProcess> = (0..2).map(|_| ServerProcess::start(url)).collect();
    for server in &mut servers {
        server.wait_healthy(Duration::from_secs(60)).await.unwrap();
    }
    let clients: Vec<Client> = servers.iter().map(ServerProcess::client).collect();
    let mut client = clients[0].clone();
    let name = |i: usize| format!("raced-{i}");
    for i in 0..RACED {
        seed_model(&mut client, &name(i)).await;
        insert_epochs(&mut client, vec![epoch(&name(i), 0, &[("acc", i as f64)])]).await;
    }
    // Three deletes and three restores of every model through each server,
    // all at once; an epoch insert in between either lands (model live) or
    // is refused as deleted, never anything else.
    let mut calls: Vec<futures::future::BoxFuture<'static, ()>> = Vec::new();
    for round in 0..3 {
        for i in 0..RACED {
            for c in &clients {
                let (mut c, model) = (c.clone(), name(i));
                calls.push(Box::pin(async move {
                    delete(&mut c, RecordKind::Model, &model).await;
                    let sent = c
                        .insert_epochs(insert(vec![epoch(&model, 1 + round, &[("acc", 0.5)])]))
                        .await;
                    if let Err(status) = sent {
                        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                        assert!(status.message().contains("is deleted"), "{status:?}");
                    }
                }));
            }
        }
    }
    futures::future::join_all(calls).await;
    let mut calls: Vec<futures::future::BoxFuture<'static, ()>> = Vec::new();
    for i in 0..RACED {
        for c in &clients {
            let (mut c, model) = (c.clone(), name(i));
            calls.push(Box::pin(async move {
                restore(&mut c, RecordKind::Model, &model).await;
            }));
        }
    }
    futures::future::join_all(calls).await;
    let live = list_all_models(&mut client, None, 0).await;
    assert_eq!(live.len(), RACED, "every model restored once and live");
    for i in 0..RACED {
        let stored = epochs_of(&mut client, &[&name(i)]).await;
        assert!(
            stored.iter().any(|e| e.epoch_num == 0),
            "epoch 0 of {} kept",
            name(i)
        );
        let model = live.iter().find(|m| m.name == name(i)).unwrap();
        assert_eq!(
            model.epoch_count,
            stored.len() as u64,
            "counts agree with the epochs"
        );
    }

    // Both servers purge everything at once: each model is purged once.
    for i in 0..RACED {
        delete(&mut client, RecordKind::Model, &name(i)).await;
    }
    let purges = clients.iter().map(|c| {
        let mut c = c.clone();
        async move { purge(&mut c, "").await.models }
    });
    let purged: u64 = futures::future::join_all(purges).await.into_iter().sum();
    assert_eq!(purged, RACED as u64, "each model purged exactly once");
    assert!(
        list_all_models(&mut client, deletion(Deletion::All), 0)
            .await
            .is_empty()
    );
    // The names are free, through either server (whose caches held the
    // purged ids).
    for (i, c) in (0..RACED).zip(clients.iter().cycle()) {
        let mut c = c.clone();
        c.put_model(put_model(
            model(
                &name(i),
                &format!("{}-data", name(i)),
                &format!("{}-tmpl", name(i)),
            ),
            false,
        ))
        .await
        .unwrap();
        assert_eq!(
            insert_epochs(&mut c, vec![epoch(&name(i), 0, &[("acc", 1.0)])]).await,
            (1, 0)
        );
        assert_eq!(
            epochs_of(&mut c, &[&name(i)]).await.len(),
            1,
            "a new model, no old epochs"
        );
    }
    for mut server in servers {
        server.terminate();
        server.wait_exit(Duration::from_secs(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_race_on_delete_restore_and_purge_on_postgres() {
    mlmeta_tests::process::server_binary();
    let Some(database) = mlmeta_tests::TestDatabase::create().await else {
        return;
    };
    mlmeta_tests::run_bounded(
        "delete::replicas::postgres",
        Duration::from_secs(120),
        two_replicas_race_on_delete_restore_and_purge(database.url()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_race_on_delete_restore_and_purge_on_one_sqlite_file() {
    mlmeta_tests::process::server_binary();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    mlmeta_tests::run_bounded(
        "delete::replicas::sqlite",
        Duration::from_secs(120),
        two_replicas_race_on_delete_restore_and_purge(&url),
    )
    .await;
}
