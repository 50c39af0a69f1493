//! Limits that keep one kind of caller from starving the others: idle
//! streams take no unary slot and end after the idle timeout with what
//! they stored, small methods take small messages (refused before they are
//! read), and large inserts wait for room among the request bytes in
//! flight instead of all being held in memory at once.

use std::time::{Duration, Instant};

use mlmeta_proto::{Epoch, InsertEpochsRequest, ListModelsRequest, ModelFilter};
use mlmeta_tests::calls::{self, epochs_of, expect_status};
use mlmeta_tests::database::WriteLock;
use mlmeta_tests::records::{epoch, insert, model, put_model};
use mlmeta_tests::{Backend, TestServer, backend_tests_with_setup, wire};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::Endpoint;

backend_tests_with_setup! {
    idle_streams_do_not_lock_out_other_calls => 60,
    idle_streams_end_with_what_they_stored => 60,
    a_stream_busy_in_the_server_is_not_idle => 60,
    an_idle_write_stream_ends_after_answering_its_batches => 60,
    small_methods_refuse_large_messages_before_reading_them => 60,
    large_inserts_wait_for_room_in_flight => 120,
}

/// Epoch numbers stored for `model`.
async fn stored_nums(client: &mut calls::Client, model: &str) -> Vec<i64> {
    epochs_of(client, &[model])
        .await
        .iter()
        .map(|e| e.epoch_num)
        .collect()
}

/// Waits (at most 20 s) until `model` holds `count` epochs.
async fn wait_stored(client: &mut calls::Client, model: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while epochs_of(client, &[model]).await.len() < count {
        assert!(Instant::now() < deadline, "{model} never held {count} epochs");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens a StreamEpochs call that sends `first` and then waits for more.
fn open_stream(
    server: &TestServer,
    first: InsertEpochsRequest,
) -> (
    mpsc::Sender<InsertEpochsRequest>,
    tokio::task::JoinHandle<Result<tonic::Response<mlmeta_proto::InsertEpochsResponse>, tonic::Status>>,
) {
    let (sender, receiver) = mpsc::channel::<InsertEpochsRequest>(4);
    let mut client = server.client();
    let call = tokio::spawn(async move { client.stream_epochs(ReceiverStream::new(receiver)).await });
    sender.try_send(first).unwrap();
    (sender, call)
}

async fn idle_streams_do_not_lock_out_other_calls(backend: Backend) {
    const CALL_LIMIT: usize = 8;
    const STREAMS: i64 = 3 * CALL_LIMIT as i64;
    let Some(server) = TestServer::with(backend, |c| c.max_concurrent_calls = CALL_LIMIT, None).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;

    // Three times the call limit of trainers, each between two epochs.
    let streams: Vec<_> = (0..STREAMS)
        .map(|num| open_stream(&server, insert(vec![epoch("m", num, &[("loss", 1.0)])])))
        .collect();
    // Each is open on the server once its first epoch is stored; counting
    // them is itself a unary read.
    wait_stored(&mut client, "m", STREAMS as usize).await;

    // Reads and writes get through, as many at once as the call limit.
    let reads = (0..CALL_LIMIT).map(|_| {
        let mut client = server.client();
        async move { client.list_models(ListModelsRequest::default()).await }
    });
    for read in futures::future::join_all(reads).await {
        read.unwrap();
    }
    let current = client
        .get_current_epoch(mlmeta_proto::GetCurrentEpochRequest {
            project: String::new(),
            model_name: "m".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(current.current_epoch, STREAMS - 1);
    assert_eq!(
        calls::insert_epochs(&mut client, vec![epoch("m", 100, &[("loss", 0.5)])]).await,
        (1, 0)
    );
    calls::put_model(&mut client, "m2", "m-data", "m-tmpl").await;
    // And so does a new stream.
    let fresh = client
        .stream_epochs(futures::stream::iter(vec![insert(vec![epoch(
            "m2",
            0,
            &[("loss", 1.0)],
        )])]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((fresh.inserted, fresh.skipped), (1, 0));

    // The idle streams were never ended, and each reports its epoch.
    assert!(streams.iter().all(|(_, call)| !call.is_finished()));
    for (sender, call) in streams {
        drop(sender);
        let counts = call.await.unwrap().unwrap().into_inner();
        assert_eq!((counts.inserted, counts.skipped), (1, 0));
    }
}

async fn idle_streams_end_with_what_they_stored(backend: Backend) {
    let Some(server) = TestServer::with(backend, |c| c.stream_idle_timeout_secs = 1, None).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let epochs = |nums: std::ops::Range<i64>| insert(nums.map(|n| epoch("m", n, &[("loss", 1.0)])).collect());

    let (sender, call) = open_stream(&server, epochs(0..3));
    sender.send(epochs(3..5)).await.unwrap();
    let sent = Instant::now();
    // The trainer keeps its stream open and sends nothing more.
    let ended = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the idle stream was never ended")
        .unwrap();
    let status = expect_status(
        ended,
        Code::Unavailable,
        &[
            "idle",
            "--stream-idle-timeout-secs",
            "everything it sent before was committed",
            "the 2 stream messages before stayed committed: 5 epochs inserted, 0 skipped",
        ],
    );
    assert!(
        sent.elapsed() >= Duration::from_secs(1),
        "ended before the idle timeout: {status:?}"
    );
    assert_eq!(stored_nums(&mut client, "m").await, [0, 1, 2, 3, 4]);
    drop(sender);

    // The trainer opens a new stream and goes on; re-sending is harmless.
    let resumed = client
        .stream_epochs(futures::stream::iter(vec![epochs(3..7)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((resumed.inserted, resumed.skipped), (2, 2));
    assert_eq!(stored_nums(&mut client, "m").await, [0, 1, 2, 3, 4, 5, 6]);
}

async fn a_stream_busy_in_the_server_is_not_idle(backend: Backend) {
    let Some(server) = TestServer::with(backend, |c| c.stream_idle_timeout_secs = 2, None).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;

    // The stream opens and waits for its first message a while (the
    // trainer's time: the idle clock runs), then that message waits twice
    // the idle timeout for the database: the server's time, which is not
    // idle time.
    let lock = WriteLock::take(&server);
    let (sender, receiver) = mpsc::channel::<InsertEpochsRequest>(4);
    let mut streaming = server.client();
    let call = tokio::spawn(async move { streaming.stream_epochs(ReceiverStream::new(receiver)).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    sender
        .send(insert(vec![epoch("m", 0, &[("loss", 1.0)])]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !call.is_finished(),
        "the stream ended while its message was being stored"
    );
    lock.release();
    wait_stored(&mut client, "m", 1).await;
    // Should the stream have been ended meanwhile, its status says so below.
    let _ = sender.send(insert(vec![epoch("m", 1, &[("loss", 0.5)])])).await;
    drop(sender);
    let counts = call.await.unwrap().unwrap().into_inner();
    assert_eq!((counts.inserted, counts.skipped), (2, 0));
}

/// Epochs of `model` whose InsertEpochs request takes at least `bytes`.
fn epochs_of_size(model: &str, bytes: usize) -> Vec<Epoch> {
    let names: Vec<String> = (0..16)
        .map(|i| format!("a_metric_with_a_longish_name_{i:02}"))
        .collect();
    let metrics: Vec<(&str, f64)> = names.iter().map(|n| (n.as_str(), 0.25)).collect();
    let one = prost::Message::encoded_len(&insert(vec![epoch(model, 1_000, &metrics)]));
    (0..(bytes / one + 1) as i64)
        .map(|n| epoch(model, n, &metrics))
        .collect()
}

async fn small_methods_refuse_large_messages_before_reading_them(backend: Backend) {
    let Some(server) = TestServer::with(backend, |_| {}, None).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    const TWO_MIB: usize = 2 << 20;

    let names: Vec<String> = (0..TWO_MIB / 250).map(|i| format!("{i:0>250}")).collect();
    let list = ListModelsRequest {
        filter: Some(ModelFilter {
            names,
            ..ModelFilter::default()
        }),
        ..ListModelsRequest::default()
    };
    assert!(prost::Message::encoded_len(&list) >= TWO_MIB);
    expect_status(
        client.list_models(list).await,
        Code::ResourceExhausted,
        &[
            "too large",
            "ListModels",
            "1048576 bytes",
            "--max-small-request-bytes",
        ],
    );
    let mut big = model("big", "m-data", "m-tmpl");
    big.model_class_name = "x".repeat(TWO_MIB);
    expect_status(
        client.put_model(put_model(big, false)).await,
        Code::ResourceExhausted,
        &[
            "too large",
            "PutModel",
            "1048576 bytes",
            "--max-small-request-bytes",
        ],
    );
    // The refusal comes from the length prefix alone: a client that sends
    // nothing more gets it all the same.
    let stalled = tokio::time::timeout(
        Duration::from_secs(20),
        wire::stalled(server.channel(), "ListModels", TWO_MIB as u32),
    )
    .await
    .expect("no answer before the body was sent");
    assert_eq!(stalled.code(), Code::ResourceExhausted, "{stalled:?}");
    assert!(
        stalled.message().contains("--max-small-request-bytes"),
        "{stalled:?}"
    );

    // The epoch inserts keep the large limit.
    let epochs = epochs_of_size("m", 10 << 20);
    let count = epochs.len() as u64;
    let request = insert(epochs);
    assert!(prost::Message::encoded_len(&request) >= 10 << 20);
    let inserted = client.insert_epochs(request).await.unwrap().into_inner();
    assert_eq!((inserted.inserted, inserted.skipped), (count, 0));
    let models = calls::list_all_models(&mut client, None, 100).await;
    assert_eq!(models.len(), 1, "the refused PutModel stored nothing");
}

async fn large_inserts_wait_for_room_in_flight(backend: Backend) {
    const BUDGET: usize = 1 << 20;
    // Each insert is charged more than the whole budget: one at a time.
    const REQUEST: usize = 300 << 10;
    const WRITERS: usize = 6;
    let Some(server) = TestServer::with(backend, |c| c.max_inflight_request_bytes = BUDGET, None).await
    else {
        return;
    };
    let mut client = server.client();
    let names: Vec<String> = (0..WRITERS).map(|i| format!("w{i}")).collect();
    for name in &names {
        calls::seed_model(&mut client, name).await;
    }
    // Several at once, each on its own connection: they wait for each
    // other (or, past the wait limit, are refused), and reads go on.
    let inserts = names.iter().map(|name| {
        let epochs = epochs_of_size(name, REQUEST);
        let count = epochs.len();
        let channel = Endpoint::from_shared(server.url().to_owned())
            .unwrap()
            .connect_lazy();
        let mut client = mlmeta_proto::metadata_service_client::MetadataServiceClient::new(channel)
            .max_encoding_message_size(64 << 20);
        async move { (count, client.insert_epochs(insert(epochs)).await) }
    });
    let mut reader = server.client();
    let (outcomes, read) = tokio::join!(
        futures::future::join_all(inserts),
        reader.list_models(ListModelsRequest::default())
    );
    read.unwrap();
    let mut succeeded = 0;
    for (name, (count, outcome)) in names.iter().zip(outcomes) {
        let stored = epochs_of(&mut client, &[name]).await.len();
        match outcome {
            Ok(response) => {
                succeeded += 1;
                assert_eq!(response.into_inner().inserted, count as u64);
                assert_eq!(stored, count, "{name}: all of its epochs");
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{name}: {status:?}");
                assert!(
                    status.message().contains("--max-inflight-request-bytes"),
                    "{status:?}"
                );
                assert_eq!(stored, 0, "{name}: refused, so nothing stored");
            }
        }
    }
    assert!(succeeded > 0, "every insert was refused");
    drop(server);

    // Waiting is bounded: half the call timeout, then RESOURCE_EXHAUSTED.
    let Some(server) = TestServer::with(
        backend,
        |c| {
            c.max_inflight_request_bytes = BUDGET;
            c.call_timeout_secs = 2;
        },
        None,
    )
    .await
    else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let probe = || insert(epochs_of_size("m", REQUEST));
    let mut refused = None;
    // A client announces an insert that takes the whole budget and then
    // sends nothing; an insert behind it waits 1 s and is refused. (Should
    // the probe get ahead of the stalled request, it is stored: retry.)
    for _ in 0..5 {
        let channel = Endpoint::from_shared(server.url().to_owned())
            .unwrap()
            .connect_lazy();
        let stalled = tokio::spawn(wire::stalled(channel, "InsertEpochs", REQUEST as u32));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let outcome = client.insert_epochs(probe()).await;
        stalled.abort();
        match outcome {
            Ok(_) => continue,
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    let stored_before_retry = epochs_of(&mut client, &["m"]).await.len();
    let refused = refused.expect("an insert behind a stalled one that holds the budget was never refused");
    expect_status(
        Err::<(), _>(refused),
        Code::ResourceExhausted,
        &[
            "InsertEpochs message",
            "waited 1s",
            "--max-inflight-request-bytes = 1048576",
            "nothing of it was stored",
            "retry",
        ],
    );
    // Once the stalled request is gone, a retry goes in.
    let count = probe().epochs.len();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match client.insert_epochs(probe()).await {
            Ok(response) => {
                let response = response.into_inner();
                assert_eq!(response.inserted + response.skipped, count as u64);
                assert_eq!(response.inserted as usize, count - stored_before_retry);
                break;
            }
            Err(status) if status.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("the retry failed: {status:?}"),
        }
    }
    assert_eq!(epochs_of(&mut client, &["m"]).await.len(), count);
}

/// WriteEpochs under the idle timeout: its batches answered, then the
/// stream ended with UNAVAILABLE.
async fn an_idle_write_stream_ends_after_answering_its_batches(backend: Backend) {
    let Some(server) = TestServer::with(backend, |c| c.stream_idle_timeout_secs = 1, None).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let (sender, receiver) = mpsc::channel(8);
    let mut answers = client
        .write_epochs(ReceiverStream::new(receiver))
        .await
        .unwrap()
        .into_inner();
    sender
        .send(crate::write_epochs::batch(
            1,
            crate::write_epochs::losses("m", 0..2),
        ))
        .await
        .unwrap();
    assert_eq!(
        crate::write_epochs::summary(&answers.message().await.unwrap().unwrap()),
        (1, 2, 0, None)
    );
    // The trainer keeps the stream open and sends nothing more.
    let ended = tokio::time::timeout(Duration::from_secs(30), answers.message())
        .await
        .expect("the idle stream was never ended");
    expect_status(
        ended,
        Code::Unavailable,
        &["WriteEpochs", "idle", "--stream-idle-timeout-secs"],
    );
    assert_eq!(stored_nums(&mut client, "m").await, [0, 1]);
    drop(sender);
}
