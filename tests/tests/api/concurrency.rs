//! Concurrent writes: idempotency holds under races (one record per name,
//! each epoch inserted once, counts adding up).

use futures::future::join_all;
use mlmeta_proto::{MetricDirection, Model};
use mlmeta_tests::calls::{self, Snapshot, epochs_of, list_all_datablobs, list_all_models};
use mlmeta_tests::records::{best, datablob, epoch, insert, model, put_datablob, put_model};
use mlmeta_tests::{TestServer, backend_tests};
use tonic::Code;

backend_tests! {
    concurrent_identical_puts_store_one_record,
    concurrent_conflicting_puts_have_one_winner,
    concurrent_overlapping_epoch_inserts_count_each_epoch_once,
    requests_committed_together_keep_their_own_outcomes,
}

/// Concurrent writers per test (issue 5 asks for at least 16 in CI).
const TASKS: usize = 16;

async fn concurrent_identical_puts_store_one_record(server: TestServer) {
    let calls = (0..TASKS).map(|_| {
        let mut client = server.client();
        async move {
            client
                .put_data_blob(put_datablob(datablob("d", "g", r#"{"a": [1, 2.5]}"#), false))
                .await
                .map(|r| r.into_inner())
        }
    });
    let results = join_all(calls).await;
    let mut fresh = 0;
    let mut stored = Vec::new();
    for result in results {
        let response = result.unwrap_or_else(|s| panic!("concurrent identical PutDataBlob failed: {s}"));
        fresh += usize::from(!response.already_existed);
        stored.push(response.datablob);
    }
    assert_eq!(
        fresh, 1,
        "exactly one of {TASKS} identical puts stores the record"
    );
    assert!(
        stored.windows(2).all(|w| w[0] == w[1]),
        "every response carries the same record"
    );

    let mut client = server.client();
    calls::put_template(&mut client, "t", "g", "{}").await;
    let calls = (0..TASKS).map(|_| {
        let mut client = server.client();
        async move {
            client
                .put_model(put_model(model("m", "d", "t"), false))
                .await
                .map(|r| r.into_inner())
        }
    });
    let fresh: usize = join_all(calls)
        .await
        .into_iter()
        .map(|r| {
            usize::from(
                !r.unwrap_or_else(|s| panic!("concurrent PutModel: {s}"))
                    .already_existed,
            )
        })
        .sum();
    assert_eq!(fresh, 1, "exactly one of {TASKS} identical model puts stores it");
    assert_eq!(list_all_datablobs(&mut client, None, 0).await.len(), 1);
    assert_eq!(list_all_models(&mut client, None, 0).await.len(), 1);
}

async fn concurrent_conflicting_puts_have_one_winner(server: TestServer) {
    let calls = (0..TASKS).map(|i| {
        let mut client = server.client();
        async move {
            let blob = datablob("d", &format!("group-{i}"), "{}");
            (i, client.put_data_blob(put_datablob(blob, false)).await)
        }
    });
    let mut winners = Vec::new();
    for (i, result) in join_all(calls).await {
        match result {
            Ok(response) => {
                assert!(
                    !response.get_ref().already_existed,
                    "task {i}: a differing record cannot be already_existed"
                );
                winners.push(format!("group-{i}"));
            }
            Err(status) => assert_eq!(status.code(), Code::AlreadyExists, "task {i}: {status}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one conflicting put wins: {winners:?}");
    let mut client = server.client();
    let stored = list_all_datablobs(&mut client, None, 0).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].group_name, winners[0],
        "the stored record is the winner's"
    );

    // Models whose classes differ, on the same name.
    calls::put_template(&mut client, "t", "g", "{}").await;
    let calls = (0..TASKS).map(|i| {
        let mut client = server.client();
        async move {
            let m = Model {
                model_class_name: format!("class-{i}"),
                ..model("m", "d", "t")
            };
            client.put_model(put_model(m, false)).await
        }
    });
    let ok = join_all(calls)
        .await
        .into_iter()
        .filter(|r| match r {
            Ok(_) => true,
            Err(status) => {
                assert_eq!(status.code(), Code::AlreadyExists, "{status}");
                false
            }
        })
        .count();
    assert_eq!(ok, 1, "exactly one conflicting model put wins");
    let before = Snapshot::take(&mut client).await;
    assert_eq!(before.models.len(), 1);
}

async fn concurrent_overlapping_epoch_inserts_count_each_epoch_once(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    calls::seed_model(&mut client, "n").await;
    // Task i sends epochs i*25 .. i*25+200 of both models: overlapping.
    let calls = (0..TASKS).map(|i| {
        let mut client = server.client();
        async move {
            let start = (i * 25) as i64;
            let epochs: Vec<_> = (start..start + 200)
                .flat_map(|n| {
                    [
                        epoch("m", n, &[("loss", n as f64)]),
                        epoch("n", n, &[("loss", -(n as f64))]),
                    ]
                })
                .collect();
            if i % 2 == 0 {
                client.insert_epochs(insert(epochs)).await.map(|r| r.into_inner())
            } else {
                let messages: Vec<_> = epochs.chunks(50).map(|c| insert(c.to_vec())).collect();
                client
                    .stream_epochs(futures::stream::iter(messages))
                    .await
                    .map(|r| r.into_inner())
            }
        }
    });
    let mut inserted = 0;
    let mut skipped = 0;
    for result in join_all(calls).await {
        let response = result.unwrap_or_else(|s| panic!("concurrent epoch insert failed: {s}"));
        inserted += response.inserted;
        skipped += response.skipped;
    }
    let distinct = 2 * (25 * (TASKS as u64 - 1) + 200);
    assert_eq!(inserted, distinct, "each distinct epoch counted inserted once");
    assert_eq!(inserted + skipped, 2 * 200 * TASKS as u64);
    let stored = epochs_of(&mut client, &[]).await;
    assert_eq!(stored.len() as u64, distinct);
    for e in &stored {
        let sign = if e.model_name == "m" { 1.0 } else { -1.0 };
        assert_eq!(e.metrics["loss"], sign * e.epoch_num as f64);
    }
    // Best values merged from the concurrent writers.
    let last = (25 * (TASKS - 1) + 199) as i64;
    for (direction, want) in [
        (
            MetricDirection::Max,
            vec![("m", last, last as f64), ("n", 0, 0.0)],
        ),
        (
            MetricDirection::Min,
            vec![("n", last, -(last as f64)), ("m", 0, 0.0)],
        ),
    ] {
        let found = client
            .get_best_model(best("loss", direction, 10))
            .await
            .unwrap()
            .into_inner()
            .models;
        let got: Vec<(&str, i64, f64)> = found
            .iter()
            .map(|b| {
                (
                    b.model.as_ref().unwrap().name.as_str(),
                    b.best_epoch.as_ref().unwrap().epoch_num,
                    b.metric_value,
                )
            })
            .collect();
        assert_eq!(got, want, "{direction:?} after concurrent inserts");
    }
}

/// Many small requests at once end up in shared (group-commit)
/// transactions: a request naming an unknown model must fail alone, and
/// each request's counts must be its own.
async fn requests_committed_together_keep_their_own_outcomes(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    const CALLS: i64 = 96;
    // Call i stores epoch i / 2 of "m" (so pairs of calls race for one
    // epoch); every fifth call also names a model that does not exist.
    let calls = (0..CALLS).map(|i| {
        let mut client = server.client();
        async move {
            let mut epochs = vec![epoch("m", i / 2, &[("loss", (i / 2) as f64)])];
            if i % 5 == 0 {
                epochs.push(epoch("ghost", i, &[("loss", 0.0)]));
            }
            (
                i,
                client.insert_epochs(insert(epochs)).await.map(|r| r.into_inner()),
            )
        }
    });
    let mut inserted_epochs = std::collections::BTreeSet::new();
    for (i, result) in join_all(calls).await {
        if i % 5 == 0 {
            let status = result.expect_err("a request naming an unknown model fails");
            assert_eq!(status.code(), Code::NotFound, "call {i}: {status:?}");
            assert!(status.message().contains("ghost"), "call {i}: {status:?}");
            continue;
        }
        let response = result.unwrap_or_else(|s| panic!("call {i} failed: {s}"));
        assert_eq!(response.inserted + response.skipped, 1, "call {i}: {response:?}");
        if response.inserted == 1 {
            assert!(inserted_epochs.insert(i / 2), "epoch {} inserted twice", i / 2);
        }
    }
    let stored: Vec<i64> = epochs_of(&mut client, &[])
        .await
        .iter()
        .map(|e| e.epoch_num)
        .collect();
    assert_eq!(
        stored,
        inserted_epochs.iter().copied().collect::<Vec<_>>(),
        "stored epochs are exactly those reported inserted"
    );
    // An epoch is missing only if both of its calls named the ghost model.
    let expected: Vec<i64> = (0..CALLS / 2)
        .filter(|n| (2 * n) % 5 != 0 || (2 * n + 1) % 5 != 0)
        .collect();
    assert_eq!(stored, expected);
}
