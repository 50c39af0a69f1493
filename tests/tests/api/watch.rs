//! WatchEpochs and WatchModels: live delivery in commit order, history
//! replay without a gap or repeat at the seam, resuming from a cursor,
//! racing writers on one model, watchers that never read, filters that
//! pick up new models, model events, input errors and the guard.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use mlmeta_proto::{
    EndRunRequest, ModelChange, ModelFilter, RecordKind, RecordRef, RestoreRecordRequest, RunStatus,
    StartRunRequest, UpdateTagsRequest, WatchEpochsRequest, WatchEpochsResponse, WatchModelsRequest,
    WatchModelsResponse,
};
use mlmeta_server::security::Scope;
use mlmeta_server::security::tokens::tokens_file_line;
use mlmeta_tests::calls::{self, expect_status};
use mlmeta_tests::records::epoch;
use mlmeta_tests::{Backend, TestServer, backend_tests};
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Streaming};

backend_tests! {
    epochs_arrive_live_in_commit_order,
    history_then_live_has_no_gap_or_repeat_at_the_seam => 120,
    a_cursor_resumes_with_exactly_the_missed_epochs,
    racing_writers_on_one_model_are_delivered_once_across_a_resume => 120,
    watchers_that_never_read_do_not_stall_writers => 180,
    many_watchers_at_different_positions_each_get_every_epoch_once => 180,
    a_filter_watch_picks_up_models_created_later,
    filter_watches_started_among_racing_creations_miss_nothing_written_after => 180,
    a_where_watch_follows_only_matching_models,
    metric_names_narrow_the_epochs,
    model_events_report_each_kind_of_change => 60,
    an_epoch_after_a_crash_reports_the_run_running_again => 60,
    bad_watch_requests_name_the_field,
}

mod guard {
    use super::watches_need_a_read_token_stay_in_their_project_and_have_their_own_budget;
    mlmeta_tests::backend_tests_with_setup! {
        watches_need_a_read_token_stay_in_their_project_and_have_their_own_budget,
    }
}

pub(crate) async fn open(
    client: &mut calls::Client,
    request: WatchEpochsRequest,
) -> (Streaming<WatchEpochsResponse>, String) {
    let mut stream = client.watch_epochs(request).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().expect("a first message");
    assert!(
        first.epochs.is_empty(),
        "the first message carries only the cursor: {first:?}"
    );
    assert!(!first.cursor.is_empty());
    (stream, first.cursor)
}

pub(crate) fn watch(models: &[&str]) -> WatchEpochsRequest {
    WatchEpochsRequest {
        model_names: models.iter().map(|m| (*m).to_owned()).collect(),
        ..Default::default()
    }
}

/// Reads until `count` epochs arrived; returns them as (model, epoch_num)
/// in arrival order, and the cursor after the last message read.
pub(crate) async fn take(
    stream: &mut Streaming<WatchEpochsResponse>,
    count: usize,
) -> (Vec<(String, i64)>, String) {
    let mut got = Vec::new();
    let mut cursor = String::new();
    while got.len() < count {
        let message = stream.message().await.unwrap().expect("the watch ended");
        got.extend(message.epochs.into_iter().map(|e| (e.model_name, e.epoch_num)));
        cursor = message.cursor;
    }
    assert_eq!(got.len(), count, "more epochs than expected: {got:?}");
    (got, cursor)
}

fn nums(got: &[(String, i64)]) -> Vec<i64> {
    got.iter().map(|(_, n)| *n).collect()
}

async fn insert_nums(client: &mut calls::Client, model: &str, nums: impl IntoIterator<Item = i64>) {
    let epochs = nums
        .into_iter()
        .map(|n| epoch(model, n, &[("loss", n as f64)]))
        .collect();
    calls::insert_epochs(client, epochs).await;
}

/// After everything expected: one more epoch, which must be the very next
/// one delivered (nothing repeated or left over in between).
async fn next_is_only(
    client: &mut calls::Client,
    stream: &mut Streaming<WatchEpochsResponse>,
    model: &str,
    sentinel: i64,
) {
    insert_nums(client, model, [sentinel]).await;
    let (got, _) = take(stream, 1).await;
    assert_eq!(got, [(model.to_owned(), sentinel)]);
}

async fn epochs_arrive_live_in_commit_order(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    insert_nums(&mut client, "m", 0..3).await;
    let (mut stream, _) = open(&mut client, watch(&["m"])).await;
    // Stored before the watch: not replayed without `history`.
    insert_nums(&mut client, "m", [10, 11]).await;
    assert_eq!(nums(&take(&mut stream, 2).await.0), [10, 11]);
    // A late epoch with a lower number is still new.
    insert_nums(&mut client, "m", [4]).await;
    assert_eq!(nums(&take(&mut stream, 1).await.0), [4]);
    // Repeats are not new.
    insert_nums(&mut client, "m", [4, 10, 12]).await;
    assert_eq!(nums(&take(&mut stream, 1).await.0), [12]);
    next_is_only(&mut client, &mut stream, "m", 99).await;
}

async fn history_then_live_has_no_gap_or_repeat_at_the_seam(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    insert_nums(&mut client, "m", 0..500).await;
    let mut writer = server.client();
    let writing = tokio::spawn(async move {
        for start in (500..1500).step_by(10) {
            insert_nums(&mut writer, "m", start..start + 10).await;
        }
    });
    let (mut stream, _) = open(
        &mut client,
        WatchEpochsRequest {
            history: true,
            ..watch(&["m"])
        },
    )
    .await;
    let (got, _) = take(&mut stream, 1500).await;
    writing.await.unwrap();
    let distinct: BTreeSet<i64> = nums(&got).into_iter().collect();
    assert_eq!(distinct.len(), 1500, "no epoch twice");
    assert_eq!(distinct, (0..1500).collect());
    next_is_only(&mut client, &mut stream, "m", 5000).await;
}

async fn a_cursor_resumes_with_exactly_the_missed_epochs(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    calls::seed_model(&mut client, "n").await;
    let (mut stream, _) = open(&mut client, watch(&["m", "n"])).await;
    insert_nums(&mut client, "m", 0..10).await;
    let (_, cursor) = take(&mut stream, 10).await;
    drop(stream);
    // Missed while away: new numbers, a late low one, another model.
    insert_nums(&mut client, "m", 10..20).await;
    insert_nums(&mut client, "n", [3]).await;
    insert_nums(&mut client, "m", [-0, 5, 30]).await;
    let (mut resumed, first) = open(
        &mut client,
        WatchEpochsRequest {
            cursor: cursor.clone(),
            ..watch(&["m", "n"])
        },
    )
    .await;
    assert_eq!(first, cursor, "nothing read yet: the cursor given");
    let (got, _) = take(&mut resumed, 12).await;
    let mut got_m: Vec<i64> = got.iter().filter(|(m, _)| m == "m").map(|(_, n)| *n).collect();
    got_m.sort_unstable();
    assert_eq!(got_m, (10..20).chain([30]).collect::<Vec<_>>());
    assert!(got.contains(&("n".to_owned(), 3)));
    next_is_only(&mut client, &mut resumed, "n", 4).await;
    // A cursor of a message with history still positions exactly.
    let (mut again, _) = open(
        &mut client,
        WatchEpochsRequest {
            cursor,
            history: true,
            ..watch(&["m", "n"])
        },
    )
    .await;
    assert_eq!(take(&mut again, 13).await.0.len(), 13);
    next_is_only(&mut client, &mut again, "m", 77).await;
}

const RACERS: i64 = 8;
const RACED: i64 = 400;

async fn racing_writers_on_one_model_are_delivered_once_across_a_resume(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let (mut stream, _) = open(&mut client, watch(&["m"])).await;
    // Writers interleave their epoch numbers on the same model, so that a
    // transaction holding low numbers may commit after one holding high.
    let writers = (0..RACERS).map(|w| {
        let mut client = server.client();
        async move {
            for chunk in (0..RACED / RACERS).collect::<Vec<_>>().chunks(5) {
                insert_nums(&mut client, "m", chunk.iter().map(|i| i * RACERS + w)).await;
            }
        }
    });
    let writing = tokio::spawn(join_all(writers));
    let (first_half, cursor) = take_at_least(&mut stream, (RACED / 2) as usize).await;
    drop(stream);
    let (mut resumed, _) = open(
        &mut client,
        WatchEpochsRequest {
            cursor,
            ..watch(&["m"])
        },
    )
    .await;
    let rest = RACED as usize - first_half.len();
    let (second_half, _) = take(&mut resumed, rest).await;
    writing.await.unwrap();
    let all: Vec<i64> = nums(&first_half).into_iter().chain(nums(&second_half)).collect();
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(distinct.len(), all.len(), "an epoch twice");
    assert_eq!(distinct, (0..RACED).collect());
    next_is_only(&mut client, &mut resumed, "m", 10_000).await;
}

/// A client on a connection of its own.
async fn own_client(server: &TestServer) -> calls::Client {
    let channel = tonic::transport::Channel::from_shared(server.url().to_owned())
        .unwrap()
        .connect()
        .await
        .unwrap();
    mlmeta_proto::metadata_service_client::MetadataServiceClient::new(channel)
        .max_decoding_message_size(mlmeta_server::MAX_MESSAGE_BYTES)
}

/// Whole messages until at least `count` epochs arrived.
async fn take_at_least(
    stream: &mut Streaming<WatchEpochsResponse>,
    count: usize,
) -> (Vec<(String, i64)>, String) {
    let mut got = Vec::new();
    let mut cursor = String::new();
    while got.len() < count {
        let message = stream.message().await.unwrap().expect("the watch ended");
        got.extend(message.epochs.into_iter().map(|e| (e.model_name, e.epoch_num)));
        cursor = message.cursor;
    }
    (got, cursor)
}

/// The watchers of a process share what they read of the latest commits
/// (the tail): watchers that start together, one that starts with history
/// (behind everything held in memory), one resumed from an old cursor and
/// one that sees a bulk insert too large to hold all get the same epochs,
/// each exactly once and in each model's commit order.
async fn many_watchers_at_different_positions_each_get_every_epoch_once(server: TestServer) {
    const WATCHERS: usize = 12;
    const PER_MODEL: i64 = 300;
    const BULK: i64 = 6_000;
    let mut client = server.client();
    let models = ["a", "b", "c"];
    for model in models {
        calls::seed_model(&mut client, model).await;
    }
    insert_nums(&mut client, "a", [100_000, 100_001]).await;
    let (_, old_cursor) = open(&mut client, watch(&models)).await;
    insert_nums(&mut client, "a", [100_002]).await;
    let mut streams = Vec::new();
    for _ in 0..WATCHERS {
        let mut own = own_client(&server).await;
        streams.push(open(&mut own, watch(&models)).await.0);
    }
    let writers = models.into_iter().map(|model| {
        let mut client = server.client();
        async move {
            for start in (0..PER_MODEL).step_by(3) {
                insert_nums(&mut client, model, start..start + 3).await;
            }
        }
    });
    join_all(writers).await;
    insert_nums(&mut client, "c", PER_MODEL..PER_MODEL + BULK).await;
    let live = (PER_MODEL as usize) * 3 + BULK as usize;
    let expected = |got: &[(String, i64)], extra: &[(&str, i64)]| {
        for model in models {
            let mine: Vec<i64> = got.iter().filter(|(m, _)| m == model).map(|(_, n)| *n).collect();
            let mut want: Vec<i64> = extra
                .iter()
                .filter(|(m, _)| *m == model)
                .map(|(_, n)| *n)
                .collect();
            let end = if model == "c" { PER_MODEL + BULK } else { PER_MODEL };
            want.extend(0..end);
            assert_eq!(mine, want, "model {model}");
        }
    };
    let takes = streams.iter_mut().map(|stream| take(stream, live));
    for (got, _) in join_all(takes).await {
        expected(&got, &[]);
    }
    let mut history_stream = open(
        &mut client,
        WatchEpochsRequest {
            history: true,
            ..watch(&models)
        },
    )
    .await
    .0;
    let (history, _) = take(&mut history_stream, live + 3).await;
    expected(&history, &[("a", 100_000), ("a", 100_001), ("a", 100_002)]);
    let (mut resumed, _) = open(
        &mut client,
        WatchEpochsRequest {
            cursor: old_cursor,
            ..watch(&models)
        },
    )
    .await;
    let (missed, _) = take(&mut resumed, live + 1).await;
    expected(&missed, &[("a", 100_002)]);
    next_is_only(&mut client, &mut resumed, "b", 99_999).await;
}

async fn watchers_that_never_read_do_not_stall_writers(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    // Opened and never read again: their buffers fill, then they wait.
    // Each on its own connection, as separate clients would be (unread
    // streams hold their connection's HTTP/2 flow-control window).
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut own = own_client(&server).await;
        idle.push(open(&mut own, watch(&["m"])).await.0);
    }
    for start in (0..60_000).step_by(2_000) {
        let epochs = (start..start + 2_000)
            .map(|n| epoch("m", n, &[("loss", 1.0), ("acc", 0.5), ("lr", 0.1)]))
            .collect();
        calls::insert_epochs(&mut client, epochs).await;
    }
    // The server goes on serving watchers that do read.
    let (mut reader, _) = open(
        &mut client,
        WatchEpochsRequest {
            history: true,
            ..watch(&["m"])
        },
    )
    .await;
    assert_eq!(take(&mut reader, 60_000).await.0.len(), 60_000);
    // And the idle ones, read at last, catch up without a gap.
    let (got, _) = take_at_least(&mut idle[0], 60_000).await;
    assert_eq!(nums(&got), (0..60_000).collect::<Vec<_>>());
}

async fn a_filter_watch_picks_up_models_created_later(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "old").await;
    let filter = ModelFilter {
        datablob_group_names: vec!["dg".into()],
        ..Default::default()
    };
    let (mut stream, _) = open(
        &mut client,
        WatchEpochsRequest {
            filter: Some(filter.clone()),
            ..Default::default()
        },
    )
    .await;
    insert_nums(&mut client, "old", [1]).await;
    assert_eq!(take(&mut stream, 1).await.0, [("old".to_owned(), 1)]);
    calls::seed_model(&mut client, "new").await;
    insert_nums(&mut client, "new", [0, 1]).await;
    let (got, cursor) = take(&mut stream, 2).await;
    assert_eq!(got, [("new".to_owned(), 0), ("new".to_owned(), 1)]);
    drop(stream);
    // Created while the watcher was away: all its epochs are missed ones.
    calls::seed_model(&mut client, "newer").await;
    insert_nums(&mut client, "newer", [7]).await;
    let (mut resumed, _) = open(
        &mut client,
        WatchEpochsRequest {
            filter: Some(filter),
            cursor,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(take(&mut resumed, 1).await.0, [("newer".to_owned(), 7)]);
    next_is_only(&mut client, &mut resumed, "old", 2).await;
}

/// Filter watches started while several connections create models and
/// write their first epochs at once: each watcher gets every epoch whose
/// write began after its first message, exactly once. (On PostgreSQL a
/// model's id is taken before its creation commits, so ids cannot tell a
/// watcher which models are new to it: `created_seq` does.)
async fn filter_watches_started_among_racing_creations_miss_nothing_written_after(server: TestServer) {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use tokio::time::Instant;

    const CREATORS: usize = 4;
    const MODELS_EACH: usize = 12;
    const WATCHERS: usize = 6;
    let mut client = server.client();
    calls::put_datablob(&mut client, "d", "dg", "{}").await;
    calls::put_template(&mut client, "t", "tg", "{}").await;
    let filter = ModelFilter {
        datablob_group_names: vec!["dg".into()],
        ..Default::default()
    };
    // (model, epoch_num) -> when its write was sent.
    let sent: Arc<Mutex<HashMap<(String, i64), Instant>>> = Arc::default();
    let mut creators = Vec::new();
    for c in 0..CREATORS {
        let mut client = own_client(&server).await;
        let sent = Arc::clone(&sent);
        creators.push(tokio::spawn(async move {
            for k in 0..MODELS_EACH {
                let name = format!("c{c}-{k}");
                calls::put_model(&mut client, &name, "d", "t").await;
                for n in 0..2 {
                    sent.lock().unwrap().insert((name.clone(), n), Instant::now());
                    insert_nums(&mut client, &name, [n]).await;
                }
            }
        }));
    }
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let mut client = own_client(&server).await;
        let request = WatchEpochsRequest {
            filter: Some(filter.clone()),
            ..Default::default()
        };
        let (stream, _) = open(&mut client, request).await;
        watchers.push((Instant::now(), stream));
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    for creator in creators {
        creator.await.unwrap();
    }
    let sent = sent.lock().unwrap().clone();
    for (index, (started, mut stream)) in watchers.into_iter().enumerate() {
        let owed: BTreeSet<(String, i64)> = sent
            .iter()
            .filter(|(_, at)| **at > started)
            .map(|(key, _)| key.clone())
            .collect();
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !owed.iter().all(|key| got.contains(key)) {
            let message = tokio::time::timeout_at(deadline, stream.message())
                .await
                .unwrap_or_else(|_| {
                    let missing: Vec<_> = owed.iter().filter(|key| !got.contains(*key)).collect();
                    panic!("watcher {index}: never got {missing:?} (of {} owed)", owed.len())
                })
                .unwrap()
                .expect("the watch ended");
            got.extend(message.epochs.into_iter().map(|e| (e.model_name, e.epoch_num)));
        }
        let distinct: BTreeSet<_> = got.iter().cloned().collect();
        assert_eq!(
            distinct.len(),
            got.len(),
            "watcher {index}: an epoch twice: {got:?}"
        );
    }
}

/// `where` in the filter of a watch chooses the watched models with the
/// filter language, models created later included; a bad expression is
/// INVALID_ARGUMENT naming the column.
async fn a_where_watch_follows_only_matching_models(server: TestServer) {
    let mut client = server.client();
    calls::put_datablob(&mut client, "d", "g", "{}").await;
    calls::put_template(&mut client, "t", "g", "{}").await;
    let writer = client.clone();
    let put = |name: &'static str, lr: f64| {
        let mut client = writer.clone();
        async move {
            let mut model = mlmeta_tests::records::model(name, "d", "t");
            model.params_json = format!(r#"{{"lr": {lr}}}"#);
            client
                .put_model(mlmeta_tests::records::put_model(model, false))
                .await
                .unwrap();
        }
    };
    put("slow", 0.001).await;
    put("fast", 0.1).await;
    let request = WatchEpochsRequest {
        filter: Some(ModelFilter {
            r#where: "params.lr < 0.01 and name != 'excluded'".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let (mut stream, _) = open(&mut client, request).await;
    insert_nums(&mut client, "fast", [1]).await;
    insert_nums(&mut client, "slow", [1]).await;
    assert_eq!(take(&mut stream, 1).await.0, [("slow".to_owned(), 1)]);
    put("later", 0.005).await;
    put("excluded", 0.005).await;
    insert_nums(&mut client, "excluded", [0]).await;
    insert_nums(&mut client, "later", [3]).await;
    assert_eq!(take(&mut stream, 1).await.0, [("later".to_owned(), 3)]);
    next_is_only(&mut client, &mut stream, "slow", 2).await;
    let refused = client
        .watch_epochs(WatchEpochsRequest {
            filter: Some(ModelFilter {
                r#where: "params.lr <".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    calls::expect_status(refused, Code::InvalidArgument, &["filter.where: column"]);
}

async fn metric_names_narrow_the_epochs(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let (mut stream, _) = open(
        &mut client,
        WatchEpochsRequest {
            metric_names: vec!["acc".into()],
            ..watch(&["m"])
        },
    )
    .await;
    calls::insert_epochs(&mut client, vec![epoch("m", 0, &[("loss", 1.0)])]).await;
    calls::insert_epochs(&mut client, vec![epoch("m", 1, &[("loss", 1.0), ("acc", 0.5)])]).await;
    let message = loop {
        let message = stream.message().await.unwrap().unwrap();
        if !message.epochs.is_empty() {
            break message;
        }
    };
    assert_eq!(message.epochs.len(), 1, "{message:?}");
    assert_eq!(message.epochs[0].epoch_num, 1);
    assert_eq!(message.epochs[0].metrics.keys().collect::<Vec<_>>(), ["acc"]);
}

/// Reads model events until one for `model` has `change`; returns it.
async fn event(
    stream: &mut Streaming<WatchModelsResponse>,
    model: &str,
    change: ModelChange,
) -> mlmeta_proto::ModelEvent {
    loop {
        let message = stream.message().await.unwrap().expect("the watch ended");
        if let Some(event) = message
            .events
            .into_iter()
            .find(|e| e.model_name == model && e.changes.contains(&(change as i32)))
        {
            return event;
        }
    }
}

fn target(name: &str) -> Option<RecordRef> {
    Some(RecordRef {
        kind: RecordKind::Model as i32,
        name: name.into(),
    })
}

async fn model_events_report_each_kind_of_change(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "before").await;
    let mut stream = client
        .watch_models(WatchModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(
        first.events.is_empty(),
        "existing models are the baseline: {first:?}"
    );

    calls::seed_model(&mut client, "m").await;
    let created = event(&mut stream, "m", ModelChange::Created).await;
    assert_eq!(created.model.unwrap().name, "m");

    client
        .start_run(StartRunRequest {
            model_name: "m".into(),
            heartbeat_timeout_secs: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    let started = event(&mut stream, "m", ModelChange::Status).await;
    assert_eq!(started.model.unwrap().status, RunStatus::Running as i32);

    client
        .update_tags(UpdateTagsRequest {
            target: target("m"),
            set: [("team".to_owned(), "vision".to_owned())].into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let tagged = event(&mut stream, "m", ModelChange::Tags).await;
    assert_eq!(tagged.model.unwrap().tags["team"], "vision");

    // Silent past its 1 s heartbeat timeout: the sweeper marks it.
    let crashed = event(&mut stream, "m", ModelChange::Status).await;
    assert_eq!(crashed.model.unwrap().status, RunStatus::Crashed as i32);

    client
        .delete_record(mlmeta_proto::DeleteRecordRequest {
            target: target("m"),
            ..Default::default()
        })
        .await
        .unwrap();
    let deleted = event(&mut stream, "m", ModelChange::Deleted).await;
    assert!(deleted.model.unwrap().deleted_at.is_some());
    client
        .restore_record(RestoreRecordRequest {
            target: target("m"),
            ..Default::default()
        })
        .await
        .unwrap();
    event(&mut stream, "m", ModelChange::Restored).await;
    client
        .end_run(EndRunRequest {
            model_name: "m".into(),
            status: RunStatus::Finished as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    let ended = event(&mut stream, "m", ModelChange::Status).await;
    assert_eq!(ended.model.unwrap().status, RunStatus::Finished as i32);
}

/// An epoch for a CRASHED run makes it RUNNING again inside the epoch
/// insert (no model write): the model watchers still hear of it.
async fn an_epoch_after_a_crash_reports_the_run_running_again(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let mut stream = client
        .watch_models(WatchModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    client
        .start_run(StartRunRequest {
            model_name: "m".into(),
            heartbeat_timeout_secs: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    // RUNNING, then (silent past its timeout) CRASHED; a slow watcher may
    // see both at once.
    while event(&mut stream, "m", ModelChange::Status)
        .await
        .model
        .unwrap()
        .status
        != RunStatus::Crashed as i32
    {}
    insert_nums(&mut client, "m", [0]).await;
    let revived = event(&mut stream, "m", ModelChange::Status).await;
    assert_eq!(revived.model.unwrap().status, RunStatus::Running as i32);
}

async fn bad_watch_requests_name_the_field(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    expect_status(
        client.watch_epochs(watch(&["m", "nope"])).await,
        Code::NotFound,
        &["model_names[1]", "nope"],
    );
    expect_status(
        client
            .watch_epochs(WatchEpochsRequest {
                cursor: "not a cursor".into(),
                ..watch(&["m"])
            })
            .await,
        Code::InvalidArgument,
        &["cursor"],
    );
    let models_cursor = client
        .watch_models(WatchModelsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap()
        .cursor;
    expect_status(
        client
            .watch_epochs(WatchEpochsRequest {
                cursor: models_cursor,
                ..watch(&["m"])
            })
            .await,
        Code::InvalidArgument,
        &["cursor", "WatchEpochs"],
    );
    expect_status(
        client
            .watch_epochs(WatchEpochsRequest {
                filter: Some(ModelFilter::default()),
                ..watch(&["m"])
            })
            .await,
        Code::InvalidArgument,
        &["filter", "not both"],
    );
    expect_status(
        client
            .watch_epochs(WatchEpochsRequest {
                metric_names: vec![String::new()],
                ..watch(&["m"])
            })
            .await,
        Code::InvalidArgument,
        &["metric_names[0]"],
    );
    expect_status(
        client
            .watch_epochs(WatchEpochsRequest {
                filter: Some(ModelFilter {
                    r#where: "x > 1".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        &["filter.where"],
    );
}

const WRITE_TOKEN: &str = "watch-write-token-Zm9vYmFy";
const READ_TOKEN: &str = "watch-read-token-cXV4YmF6";
const VISION_TOKEN: &str = "watch-vision-token-YmF6cXV4";

fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

pub(crate) async fn watches_need_a_read_token_stay_in_their_project_and_have_their_own_budget(
    backend: Backend,
) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.txt");
    let text = format!(
        "{}\n{}\n{} projects=vision\n",
        tokens_file_line("trainer", Scope::Write, WRITE_TOKEN).unwrap(),
        tokens_file_line("dashboard", Scope::Read, READ_TOKEN).unwrap(),
        tokens_file_line("vision-reader", Scope::Read, VISION_TOKEN).unwrap(),
    );
    mlmeta_tests::write_private(&tokens, text);
    let Some(server) = TestServer::with(
        backend,
        |config| {
            config.auth_tokens = Some(tokens);
            config.max_watchers = 2;
            config.max_concurrent_calls = 1;
        },
        None,
    )
    .await
    else {
        return;
    };
    let mut client = server.client();
    expect_status(
        client.watch_models(WatchModelsRequest::default()).await,
        Code::Unauthenticated,
        &["token"],
    );
    let vision = WatchModelsRequest {
        project: "vision".into(),
        ..Default::default()
    };
    expect_status(
        client
            .watch_models(with_token(WatchModelsRequest::default(), VISION_TOKEN))
            .await,
        Code::PermissionDenied,
        &["project \"default\"", "vision-reader"],
    );
    // Two watches fill the budget (read tokens suffice), and they do not
    // take the one unary slot.
    let mut first = client
        .watch_models(with_token(vision.clone(), VISION_TOKEN))
        .await
        .unwrap()
        .into_inner();
    first.message().await.unwrap().unwrap();
    let mut second = client
        .watch_models(with_token(WatchModelsRequest::default(), READ_TOKEN))
        .await
        .unwrap()
        .into_inner();
    second.message().await.unwrap().unwrap();
    expect_status(
        client
            .watch_models(with_token(WatchModelsRequest::default(), READ_TOKEN))
            .await,
        Code::ResourceExhausted,
        &["--max-watchers"],
    );
    client
        .list_models(with_token(mlmeta_proto::ListModelsRequest::default(), READ_TOKEN))
        .await
        .unwrap();
    // A watch that ended frees its slot.
    drop(second);
    let mut third = None;
    for _ in 0..100 {
        match client
            .watch_models(with_token(WatchModelsRequest::default(), READ_TOKEN))
            .await
        {
            Ok(stream) => {
                third = Some(stream);
                break;
            }
            Err(status) if status.code() == Code::ResourceExhausted => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => panic!("{status}"),
        }
    }
    assert!(third.is_some(), "the slot of a dropped watch is freed");
}

/// Two `mlmeta-server` processes on one PostgreSQL database: a watcher on
/// the first sees epochs written through the second (its LISTEN
/// connection), and after the first is SIGKILLed, the watcher resumes on
/// the second with its last cursor and gets every epoch exactly once.
mod replicas {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use mlmeta_tests::calls;
    use mlmeta_tests::process::{ServerProcess, server_binary};
    use mlmeta_tests::{TestDatabase, run_bounded};

    use super::{insert_nums, nums, open, take, take_at_least, watch};

    const EPOCHS: i64 = 600;

    async fn resume_on_another_replica_after_a_kill(url: &str) {
        let mut a = ServerProcess::start(url);
        let mut b = ServerProcess::start(url);
        a.wait_healthy(Duration::from_secs(60)).await.unwrap();
        b.wait_healthy(Duration::from_secs(60)).await.unwrap();
        let mut through_b = b.client();
        calls::seed_model(&mut through_b, "m").await;
        let mut on_a = a.client();
        let (mut stream, _) = open(&mut on_a, watch(&["m"])).await;
        let mut writer = b.client();
        let writing = tokio::spawn(async move {
            for start in (0..EPOCHS).step_by(3) {
                insert_nums(&mut writer, "m", start..start + 3).await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        let (first, cursor) = take_at_least(&mut stream, (EPOCHS / 3) as usize).await;
        a.signal("KILL");
        drop(stream);
        let mut on_b = b.client();
        let (mut resumed, _) = open(
            &mut on_b,
            mlmeta_proto::WatchEpochsRequest {
                cursor,
                ..watch(&["m"])
            },
        )
        .await;
        let (rest, _) = take(&mut resumed, EPOCHS as usize - first.len()).await;
        writing.await.unwrap();
        let all: Vec<i64> = nums(&first).into_iter().chain(nums(&rest)).collect();
        let distinct: BTreeSet<i64> = all.iter().copied().collect();
        assert_eq!(distinct.len(), all.len(), "an epoch twice");
        assert_eq!(distinct, (0..EPOCHS).collect());
        super::next_is_only(&mut through_b, &mut resumed, "m", 9_999).await;
        assert!(a.wait_exit(Duration::from_secs(15)).await.is_some());
        b.terminate();
        b.wait_exit(Duration::from_secs(15)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_watcher_resumes_on_another_replica_after_a_kill_on_postgres() {
        server_binary();
        let Some(database) = TestDatabase::create().await else {
            return;
        };
        run_bounded(
            "watch::replicas::postgres",
            Duration::from_secs(180),
            resume_on_another_replica_after_a_kill(database.url()),
        )
        .await;
    }
}
