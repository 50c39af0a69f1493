//! InsertEpochs and GetCurrentEpoch: several models per call, duplicates
//! skipped and counted, unknown models, all-or-nothing.

use std::time::{SystemTime, UNIX_EPOCH};

use mlmeta_proto::{Epoch, GetCurrentEpochRequest, ListEpochsRequest};
use mlmeta_tests::calls::{self, Client, EpochKey, Snapshot, epochs_of, expect_status, insert_epochs};
use mlmeta_tests::records::{epoch, insert, strings};
use mlmeta_tests::{TestServer, backend_tests};
use tonic::Code;

backend_tests! {
    inserts_epochs_of_several_models_in_one_call,
    duplicate_epochs_are_skipped_never_overwritten,
    repeats_within_one_request_keep_the_first,
    epoch_of_unknown_model_is_not_found_and_writes_nothing,
    listing_epochs_of_an_unknown_model_is_not_found,
    current_epoch_is_the_highest_stored,
    step_counts_round_trip,
    extreme_epoch_numbers_are_valid,
    epoch_without_metrics_is_stored,
    empty_request_inserts_nothing,
}

/// (model, epoch_num, metrics as bits) of each epoch.
fn keys(epochs: &[Epoch]) -> Vec<EpochKey> {
    epochs
        .iter()
        .map(|e| {
            let metrics = e.metrics.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect();
            (e.model_name.clone(), e.epoch_num, metrics)
        })
        .collect()
}

async fn current(client: &mut Client, model: &str) -> (i64, bool) {
    let response = client
        .get_current_epoch(GetCurrentEpochRequest {
            project: String::new(),
            model_name: model.to_owned(),
        })
        .await
        .unwrap_or_else(|s| panic!("GetCurrentEpoch {model:?}: {s}"))
        .into_inner();
    (response.current_epoch, response.model_exists)
}

async fn inserts_epochs_of_several_models_in_one_call(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "b").await;
    calls::seed_model(&mut client, "a").await;
    let sent = vec![
        epoch("b", 2, &[("loss", 0.2), ("acc", 0.8)]),
        epoch("a", 1, &[("loss", 1.5)]),
        epoch("b", 0, &[("loss", 0.9), ("acc", 0.1)]),
        epoch("a", 0, &[("loss", 2.5)]),
        epoch("b", 1, &[("loss", 0.4), ("acc", 0.5)]),
    ];
    assert_eq!(insert_epochs(&mut client, sent.clone()).await, (5, 0));
    let listed = epochs_of(&mut client, &[]).await;
    let mut expected = sent;
    expected.sort_by(|x, y| (&x.model_name, x.epoch_num).cmp(&(&y.model_name, y.epoch_num)));
    assert_eq!(keys(&listed), keys(&expected));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    for e in &listed {
        let recorded = e.recorded_at.as_ref().expect("recorded_at set by the server");
        assert!(
            (recorded.seconds - now).abs() < 3600,
            "recorded_at {recorded:?} not near now"
        );
    }
    assert_eq!(current(&mut client, "a").await, (1, true));
    assert_eq!(current(&mut client, "b").await, (2, true));
}

async fn duplicate_epochs_are_skipped_never_overwritten(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let first = vec![epoch("m", 0, &[("loss", 1.0)]), epoch("m", 1, &[("loss", 0.5)])];
    assert_eq!(insert_epochs(&mut client, first.clone()).await, (2, 0));
    let stored = epochs_of(&mut client, &["m"]).await;

    // Same epochs again, one with other metrics, plus a new one.
    let second = vec![
        epoch("m", 0, &[("loss", 7.0), ("acc", 0.1)]),
        epoch("m", 1, &[("loss", 0.5)]),
        epoch("m", 2, &[("loss", 0.25)]),
    ];
    assert_eq!(insert_epochs(&mut client, second).await, (1, 2));
    let listed = epochs_of(&mut client, &["m"]).await;
    assert_eq!(listed.len(), 3);
    assert_eq!(
        &listed[..2],
        &stored[..],
        "existing epochs must not be overwritten"
    );
    assert_eq!(listed[2].metrics.get("loss"), Some(&0.25));

    // A retry of the whole call changes nothing.
    assert_eq!(insert_epochs(&mut client, first).await, (0, 2));
    assert_eq!(epochs_of(&mut client, &["m"]).await, listed);
}

async fn repeats_within_one_request_keep_the_first(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    calls::seed_model(&mut client, "n").await;
    let sent = vec![
        epoch("m", 1, &[("loss", 1.0)]),
        epoch("n", 1, &[("loss", 10.0)]),
        epoch("m", 1, &[("loss", 2.0)]),
        epoch("m", 2, &[("loss", 0.5)]),
        epoch("m", 1, &[("loss", 3.0), ("acc", 1.0)]),
        epoch("n", 1, &[("loss", 20.0)]),
    ];
    assert_eq!(insert_epochs(&mut client, sent).await, (3, 3));
    let listed = epochs_of(&mut client, &[]).await;
    assert_eq!(
        keys(&listed),
        keys(&[
            epoch("m", 1, &[("loss", 1.0)]),
            epoch("m", 2, &[("loss", 0.5)]),
            epoch("n", 1, &[("loss", 10.0)]),
        ]),
        "the first occurrence of a repeated epoch wins"
    );
}

async fn epoch_of_unknown_model_is_not_found_and_writes_nothing(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    insert_epochs(&mut client, vec![epoch("m", 0, &[("loss", 1.0)])]).await;
    let before = Snapshot::take(&mut client).await;
    let result = client
        .insert_epochs(insert(vec![
            epoch("m", 1, &[("loss", 0.5)]),
            epoch("ghost-model", 0, &[("loss", 1.0)]),
            epoch("m", 2, &[("loss", 0.4)]),
        ]))
        .await;
    expect_status(result, Code::NotFound, &["ghost-model"]);
    before
        .assert_unchanged(&mut client, "InsertEpochs with an unknown model")
        .await;
    assert_eq!(current(&mut client, "m").await, (0, true));
    assert_eq!(current(&mut client, "ghost-model").await, (0, false));
}

/// A typo in a listing is NOT_FOUND naming the model, like everywhere
/// else, not an empty page; a model without epochs is an empty page.
async fn listing_epochs_of_an_unknown_model_is_not_found(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    calls::seed_model(&mut client, "empty").await;
    insert_epochs(&mut client, vec![epoch("m", 0, &[("loss", 1.0)])]).await;
    let request = |names: &[&str]| ListEpochsRequest {
        model_names: strings(names),
        ..ListEpochsRequest::default()
    };
    let result = client.list_epochs(request(&["m", "nope"])).await;
    expect_status(
        result,
        Code::NotFound,
        &["model_names[1]", "\"nope\"", "does not exist"],
    );
    let empty = client
        .list_epochs(request(&["empty"]))
        .await
        .unwrap()
        .into_inner();
    assert!(empty.epochs.is_empty() && empty.next_page_token.is_empty());
    assert_eq!(epochs_of(&mut client, &["m", "empty"]).await.len(), 1);
}

async fn current_epoch_is_the_highest_stored(server: TestServer) {
    let mut client = server.client();
    assert_eq!(current(&mut client, "nobody").await, (0, false));
    calls::seed_model(&mut client, "m").await;
    calls::seed_model(&mut client, "zero").await;
    assert_eq!(current(&mut client, "m").await, (0, true));
    insert_epochs(
        &mut client,
        vec![
            epoch("m", 0, &[("loss", 1.0)]),
            epoch("m", 5, &[("loss", 1.0)]),
            epoch("m", 3, &[("loss", 1.0)]),
        ],
    )
    .await;
    assert_eq!(current(&mut client, "m").await, (5, true));
    insert_epochs(&mut client, vec![epoch("m", 2, &[("loss", 1.0)])]).await;
    assert_eq!(current(&mut client, "m").await, (5, true));
    insert_epochs(&mut client, vec![epoch("zero", 0, &[("loss", 1.0)])]).await;
    assert_eq!(current(&mut client, "zero").await, (0, true));
    insert_epochs(&mut client, vec![epoch("m", 1_000_000, &[("loss", 1.0)])]).await;
    assert_eq!(current(&mut client, "m").await, (1_000_000, true));
}

async fn step_counts_round_trip(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let mut sent = Vec::new();
    for (num, steps, validation) in [
        (0, None, None),
        (1, Some(100), None),
        (2, None, Some(20)),
        (3, Some(0), Some(0)),
        (4, Some(i64::MAX), Some(7)),
    ] {
        let mut e = epoch("m", num, &[("loss", 1.0)]);
        e.steps_per_epoch = steps;
        e.validation_steps_per_epoch = validation;
        sent.push(e);
    }
    insert_epochs(&mut client, sent.clone()).await;
    let listed = epochs_of(&mut client, &["m"]).await;
    let got: Vec<_> = listed
        .iter()
        .map(|e| (e.epoch_num, e.steps_per_epoch, e.validation_steps_per_epoch))
        .collect();
    let want: Vec<_> = sent
        .iter()
        .map(|e| (e.epoch_num, e.steps_per_epoch, e.validation_steps_per_epoch))
        .collect();
    assert_eq!(got, want);
}

async fn extreme_epoch_numbers_are_valid(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let sent = vec![
        epoch("m", i64::MAX, &[("loss", 1.0)]),
        epoch("m", 0, &[("loss", 2.0)]),
    ];
    assert_eq!(insert_epochs(&mut client, sent).await, (2, 0));
    let nums: Vec<i64> = epochs_of(&mut client, &["m"])
        .await
        .iter()
        .map(|e| e.epoch_num)
        .collect();
    assert_eq!(nums, vec![0, i64::MAX]);
    assert_eq!(current(&mut client, "m").await, (i64::MAX, true));
}

async fn epoch_without_metrics_is_stored(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    assert_eq!(insert_epochs(&mut client, vec![epoch("m", 0, &[])]).await, (1, 0));
    let listed = epochs_of(&mut client, &["m"]).await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].metrics.is_empty());
    assert_eq!(current(&mut client, "m").await, (0, true));
}

async fn empty_request_inserts_nothing(server: TestServer) {
    let mut client = server.client();
    assert_eq!(insert_epochs(&mut client, vec![]).await, (0, 0));
    assert!(epochs_of(&mut client, &[]).await.is_empty());
}
