//! StreamEpochs: each message committed on its own, counts summed, a
//! failing message ends the call and keeps the earlier ones.

use std::time::Duration;

use mlmeta_proto::InsertEpochsRequest;
use mlmeta_tests::calls::{self, epochs_of, expect_status};
use mlmeta_tests::records::{epoch, insert};
use mlmeta_tests::{TestServer, backend_tests};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

backend_tests! {
    stream_sums_counts_over_messages,
    stream_commits_each_message_while_open,
    stream_keeps_messages_before_an_invalid_one,
    stream_keeps_messages_before_an_unknown_model,
    empty_stream_inserts_nothing,
}

async fn stream_sums_counts_over_messages(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    calls::seed_model(&mut client, "n").await;
    let messages = vec![
        insert(vec![
            epoch("m", 0, &[("loss", 1.0)]),
            epoch("n", 0, &[("loss", 2.0)]),
        ]),
        // m/0 again (skipped), a repeat within the message (skipped).
        insert(vec![
            epoch("m", 0, &[("loss", 9.0)]),
            epoch("m", 1, &[("loss", 0.5)]),
            epoch("m", 1, &[("loss", 9.0)]),
        ]),
        insert(vec![]),
        insert(vec![epoch("n", 1, &[("loss", 1.5)])]),
    ];
    let response = client
        .stream_epochs(futures::stream::iter(messages.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((response.inserted, response.skipped), (4, 2));
    let listed = epochs_of(&mut client, &[]).await;
    let got: Vec<_> = listed
        .iter()
        .map(|e| (e.model_name.as_str(), e.epoch_num, e.metrics["loss"]))
        .collect();
    assert_eq!(
        got,
        vec![("m", 0, 1.0), ("m", 1, 0.5), ("n", 0, 2.0), ("n", 1, 1.5)]
    );

    // Re-sending everything is harmless.
    let response = client
        .stream_epochs(futures::stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((response.inserted, response.skipped), (0, 6));
    assert_eq!(epochs_of(&mut client, &[]).await, listed);
}

async fn stream_commits_each_message_while_open(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let (tx, rx) = tokio::sync::mpsc::channel::<InsertEpochsRequest>(4);
    let mut streaming = server.client();
    let call = tokio::spawn(async move { streaming.stream_epochs(ReceiverStream::new(rx)).await });

    tx.send(insert(vec![epoch("m", 0, &[("loss", 1.0)])]))
        .await
        .unwrap();
    // The first message becomes visible while the stream is still open.
    let mut seen = false;
    for _ in 0..200 {
        if epochs_of(&mut client, &["m"]).await.len() == 1 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seen,
        "a streamed message was not committed within 10 s while the stream was open"
    );
    tx.send(insert(vec![epoch("m", 1, &[("loss", 0.5)])]))
        .await
        .unwrap();
    drop(tx);
    let response = call.await.unwrap().unwrap().into_inner();
    assert_eq!((response.inserted, response.skipped), (2, 0));
    assert_eq!(epochs_of(&mut client, &["m"]).await.len(), 2);
}

async fn stream_keeps_messages_before_an_invalid_one(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let messages = vec![
        insert(vec![epoch("m", 0, &[("loss", 1.0)])]),
        insert(vec![
            epoch("m", 1, &[("loss", 0.5)]),
            epoch("m", -1, &[("loss", 0.1)]),
        ]),
        insert(vec![epoch("m", 2, &[("loss", 0.2)])]),
    ];
    let result = client.stream_epochs(futures::stream::iter(messages)).await;
    expect_status(result, Code::InvalidArgument, &["epoch_num"]);
    let nums: Vec<i64> = epochs_of(&mut client, &["m"])
        .await
        .iter()
        .map(|e| e.epoch_num)
        .collect();
    assert_eq!(
        nums,
        vec![0],
        "only the message before the invalid one is committed"
    );
}

async fn stream_keeps_messages_before_an_unknown_model(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let messages = vec![
        insert(vec![epoch("m", 0, &[("loss", 1.0)])]),
        insert(vec![
            epoch("m", 1, &[("loss", 0.5)]),
            epoch("ghost", 0, &[("loss", 0.1)]),
        ]),
    ];
    let result = client.stream_epochs(futures::stream::iter(messages)).await;
    expect_status(result, Code::NotFound, &["ghost"]);
    let nums: Vec<i64> = epochs_of(&mut client, &[])
        .await
        .iter()
        .map(|e| e.epoch_num)
        .collect();
    assert_eq!(nums, vec![0]);
}

async fn empty_stream_inserts_nothing(server: TestServer) {
    let mut client = server.client();
    let response = client
        .stream_epochs(futures::stream::iter(Vec::<InsertEpochsRequest>::new()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((response.inserted, response.skipped), (0, 0));
}
