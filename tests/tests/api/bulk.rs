//! The request size limit: 100,000 epochs in one request work, 100,001
//! are INVALID_ARGUMENT naming the limit.

use mlmeta_proto::{Epoch, GetCurrentEpochRequest, ListEpochsRequest};
use mlmeta_tests::calls::{self, Snapshot, expect_status, list_all_epochs};
use mlmeta_tests::records::{epoch, insert};
use mlmeta_tests::{TestServer, backend_tests};
use tonic::Code;

backend_tests! {
    one_request_carries_100000_epochs => 900,
    more_than_100000_epochs_are_rejected => 300,
}

/// `count` epochs split over models `a` and `b`, three metrics each.
fn many_epochs(count: usize) -> Vec<Epoch> {
    (0..count)
        .map(|i| {
            let model = if i % 2 == 0 { "a" } else { "b" };
            let num = (i / 2) as i64;
            let x = i as f64;
            epoch(
                model,
                num,
                &[
                    ("loss", 1.0 / (x + 1.0)),
                    ("acc", x / count as f64),
                    ("lr", 0.001),
                ],
            )
        })
        .collect()
}

async fn one_request_carries_100000_epochs(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "a").await;
    calls::seed_model(&mut client, "b").await;
    let sent = many_epochs(100_000);
    let response = client
        .insert_epochs(insert(sent.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((response.inserted, response.skipped), (100_000, 0));

    for model in ["a", "b"] {
        let current = client
            .get_current_epoch(GetCurrentEpochRequest {
                project: String::new(),
                model_name: model.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(current.current_epoch, 49_999);
    }
    let listed = list_all_epochs(
        &mut client,
        ListEpochsRequest {
            page_size: 10_000,
            ..ListEpochsRequest::default()
        },
    )
    .await;
    assert_eq!(listed.len(), 100_000);
    let mut expected = sent.clone();
    expected.sort_by(|x, y| (&x.model_name, x.epoch_num).cmp(&(&y.model_name, y.epoch_num)));
    for (got, want) in listed.iter().zip(&expected) {
        assert_eq!(
            (&got.model_name, got.epoch_num),
            (&want.model_name, want.epoch_num)
        );
        let got_bits: Vec<_> = got.metrics.iter().map(|(k, v)| (k, v.to_bits())).collect();
        let want_bits: Vec<_> = want.metrics.iter().map(|(k, v)| (k, v.to_bits())).collect();
        assert_eq!(
            got_bits, want_bits,
            "metrics of {}/{}",
            got.model_name, got.epoch_num
        );
    }

    // The same 100,000 again: all skipped.
    let response = client.insert_epochs(insert(sent)).await.unwrap().into_inner();
    assert_eq!((response.inserted, response.skipped), (0, 100_000));
}

async fn more_than_100000_epochs_are_rejected(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "a").await;
    calls::seed_model(&mut client, "b").await;
    let before = Snapshot::take(&mut client).await;
    let status = expect_status(
        client.insert_epochs(insert(many_epochs(100_001))).await,
        Code::InvalidArgument,
        &[],
    );
    let message = status.message();
    assert!(
        message.contains("100000") || message.contains("100,000") || message.contains("100_000"),
        "message does not name the limit: {message:?}"
    );
    before
        .assert_unchanged(&mut client, "InsertEpochs of 100,001 epochs")
        .await;

    let status = expect_status(
        client
            .stream_epochs(futures::stream::iter(vec![insert(many_epochs(100_001))]))
            .await,
        Code::InvalidArgument,
        &[],
    );
    let message = status.message();
    assert!(
        message.contains("100000") || message.contains("100,000") || message.contains("100_000"),
        "StreamEpochs message does not name the limit: {message:?}"
    );
    before
        .assert_unchanged(&mut client, "StreamEpochs of 100,001 epochs")
        .await;
}
