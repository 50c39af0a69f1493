//! WriteEpochs: every batch answered in order once committed, with its
//! counts or its own error; pipelined batches; the idle timeout.

use mlmeta_proto::{Epoch, WriteEpochsRequest, WriteEpochsResponse};
use mlmeta_tests::calls::{self, epochs_of, expect_status};
use mlmeta_tests::records::epoch;
use mlmeta_tests::{TestServer, backend_tests};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming};

backend_tests! {
    batches_are_answered_in_order_with_their_counts,
    a_bad_batch_gets_its_error_and_later_batches_are_stored,
    stop_on_error_ends_the_stream_after_the_batches_before,
    pipelined_batches_commit_in_the_order_sent => 120,
}

pub(crate) fn batch(sequence: u64, epochs: Vec<Epoch>) -> WriteEpochsRequest {
    WriteEpochsRequest {
        sequence,
        epochs,
        ..Default::default()
    }
}

pub(crate) fn losses(model: &str, nums: std::ops::Range<i64>) -> Vec<Epoch> {
    nums.map(|n| epoch(model, n, &[("loss", 1.0 / (n + 1) as f64)]))
        .collect()
}

/// (sequence, inserted, skipped, error code) of an answer.
pub(crate) fn summary(answer: &WriteEpochsResponse) -> (u64, u64, u64, Option<i32>) {
    (
        answer.sequence,
        answer.inserted,
        answer.skipped,
        answer.error.as_ref().map(|e| e.code),
    )
}

/// Every answer of `answers` until the stream ends, and how it ended.
async fn drain(mut answers: Streaming<WriteEpochsResponse>) -> (Vec<WriteEpochsResponse>, Option<Status>) {
    let mut got = Vec::new();
    loop {
        match answers.message().await {
            Ok(Some(answer)) => got.push(answer),
            Ok(None) => return (got, None),
            Err(status) => return (got, Some(status)),
        }
    }
}

async fn stored_nums(client: &mut calls::Client, model: &str) -> Vec<i64> {
    epochs_of(client, &[model])
        .await
        .iter()
        .map(|e| e.epoch_num)
        .collect()
}

async fn batches_are_answered_in_order_with_their_counts(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    calls::seed_model(&mut client, "n").await;
    let (sender, receiver) = mpsc::channel(8);
    let mut answers = client
        .write_epochs(ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();

    // One at a time: each answer arrives while the stream stays open, and
    // what it acknowledges is stored by then.
    sender.send(batch(7, losses("m", 0..3))).await.unwrap();
    let first = answers.message().await.unwrap().unwrap();
    assert_eq!(summary(&first), (7, 3, 0, None));
    assert_eq!(stored_nums(&mut client, "m").await, [0, 1, 2]);

    // Duplicates (stored, and within the batch) are counted as skipped;
    // an empty batch is answered too; sequences are the client's.
    let mut mixed = losses("m", 2..5);
    mixed.extend(losses("n", 0..2));
    mixed.push(epoch("n", 1, &[("loss", 9.0)]));
    sender.send(batch(3, mixed)).await.unwrap();
    sender.send(batch(3, vec![])).await.unwrap();
    sender.send(batch(100, losses("n", 1..4))).await.unwrap();
    drop(sender);
    let (rest, end) = drain(answers).await;
    assert!(end.is_none(), "{end:?}");
    let got: Vec<_> = rest.iter().map(summary).collect();
    assert_eq!(got, [(3, 4, 2, None), (3, 0, 0, None), (100, 2, 1, None)]);
    assert_eq!(stored_nums(&mut client, "m").await, [0, 1, 2, 3, 4]);
    assert_eq!(stored_nums(&mut client, "n").await, [0, 1, 2, 3]);
    let n1 = epochs_of(&mut client, &["n"]).await;
    assert_eq!(n1[1].metrics["loss"], 0.5, "the first occurrence wins");
}

async fn a_bad_batch_gets_its_error_and_later_batches_are_stored(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let mut unknown = losses("m", 10..12);
    unknown.push(epoch("nope", 0, &[("loss", 1.0)]));
    let mut negative = losses("m", 20..22);
    negative.push(epoch("m", -1, &[("loss", 1.0)]));
    let batches = vec![
        batch(1, losses("m", 0..2)),
        batch(2, unknown),
        batch(3, negative),
        WriteEpochsRequest {
            project: "bad\u{0}name".into(),
            ..batch(4, losses("m", 30..31))
        },
        batch(5, losses("m", 2..4)),
    ];
    let answers = client
        .write_epochs(futures::stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    let (got, end) = drain(answers).await;
    assert!(end.is_none(), "{end:?}");
    let summaries: Vec<_> = got.iter().map(summary).collect();
    assert_eq!(
        summaries,
        [
            (1, 2, 0, None),
            (2, 0, 0, Some(Code::NotFound as i32)),
            (3, 0, 0, Some(Code::InvalidArgument as i32)),
            (4, 0, 0, Some(Code::InvalidArgument as i32)),
            (5, 2, 0, None),
        ]
    );
    let message = |i: usize| got[i].error.as_ref().unwrap().message.clone();
    assert!(
        message(1).contains("epochs[2].model_name") && message(1).contains("\"nope\""),
        "{}",
        message(1)
    );
    assert!(message(2).contains("epochs[2].epoch_num"), "{}", message(2));
    assert!(message(3).starts_with("project: "), "{}", message(3));
    // Nothing of a refused batch is stored.
    assert_eq!(stored_nums(&mut client, "m").await, [0, 1, 2, 3]);
}

async fn stop_on_error_ends_the_stream_after_the_batches_before(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let mut unknown = losses("m", 5..6);
    unknown.push(epoch("nope", 0, &[("loss", 1.0)]));
    let batches = vec![
        batch(1, losses("m", 0..2)),
        // Fails without stopping the stream.
        batch(2, unknown.clone()),
        batch(3, losses("m", 2..3)),
        WriteEpochsRequest {
            stop_on_error: true,
            ..batch(4, unknown)
        },
        batch(5, losses("m", 3..4)),
    ];
    let answers = client
        .write_epochs(futures::stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    let (got, end) = drain(answers).await;
    let summaries: Vec<_> = got.iter().map(summary).collect();
    assert_eq!(
        summaries,
        [
            (1, 2, 0, None),
            (2, 0, 0, Some(Code::NotFound as i32)),
            (3, 1, 0, None)
        ]
    );
    expect_status(
        end.map_or(Ok(()), Err),
        Code::NotFound,
        &["batch 4 (stop_on_error)", "\"nope\"", "nothing sent after it"],
    );
    assert_eq!(stored_nums(&mut client, "m").await, [0, 1, 2]);
}

/// Batches sent without waiting for answers: the server takes the next
/// ones while earlier ones commit, commits them in the order sent (each
/// epoch carried by two batches is stored from the first and skipped in
/// the second) and answers each, in order.
async fn pipelined_batches_commit_in_the_order_sent(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    calls::seed_model(&mut client, "other").await;
    // Another writer keeps the group commit busy meanwhile.
    let mut other = server.client();
    let noise = tokio::spawn(async move {
        for n in 0..50 {
            calls::insert_epochs(&mut other, losses("other", n * 10..n * 10 + 10)).await;
        }
    });
    const BATCHES: i64 = 300;
    let batches: Vec<WriteEpochsRequest> = (0..BATCHES)
        .map(|i| {
            // Batch i carries epochs 2i and 2i+1 with value i, and again
            // epoch 2i-1 of batch i-1 (with value i: it must be skipped).
            let mut epochs = vec![
                epoch("m", 2 * i, &[("loss", i as f64)]),
                epoch("m", 2 * i + 1, &[("loss", i as f64)]),
            ];
            if i > 0 {
                epochs.push(epoch("m", 2 * i - 1, &[("loss", i as f64)]));
            }
            batch(i as u64, epochs)
        })
        .collect();
    let answers = client
        .write_epochs(futures::stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    let (got, end) = drain(answers).await;
    assert!(end.is_none(), "{end:?}");
    noise.await.unwrap();
    let expected: Vec<_> = (0..BATCHES)
        .map(|i| (i as u64, 2, u64::from(i > 0), None))
        .collect();
    assert_eq!(got.iter().map(summary).collect::<Vec<_>>(), expected);
    let stored = epochs_of(&mut client, &["m"]).await;
    assert_eq!(stored.len(), 2 * BATCHES as usize);
    for e in stored {
        assert_eq!(
            e.metrics["loss"],
            (e.epoch_num / 2) as f64,
            "epoch {}",
            e.epoch_num
        );
    }
}
