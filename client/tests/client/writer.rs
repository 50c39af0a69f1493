//! The epoch writer against a live server: every logged epoch stored once,
//! flushing by size, by time and on demand, counts, permanent errors.

use std::time::Duration;

use mlmeta_client::{Error, NewEpoch, WriterOptions};
use mlmeta_tests::{TestServer, backend_tests};

use crate::support::{assert_exactly_logged, connect, epochs_of, eventually, metrics, seed_model};

backend_tests! {
    writer_stores_every_logged_epoch_once_and_counts_them => 90,
    flush_waits_for_storage_and_the_interval_sends_partial_batches,
    an_unknown_model_stops_the_writer_with_not_found,
    epochs_the_server_would_refuse_are_refused_by_log,
    a_dropped_writer_still_sends_what_it_buffered,
}

async fn writer_stores_every_logged_epoch_once_and_counts_them(server: TestServer) {
    let client = connect(&server).await;
    seed_model(&client, "m").await;
    let writer = client.epoch_writer("m").unwrap();
    assert_eq!(writer.model_name(), "m");
    for i in 0..5_000 {
        writer.log(i, metrics(i)).await.unwrap();
    }
    let counts = writer.close().await.unwrap();
    assert_eq!((counts.inserted, counts.skipped), (5_000, 0));
    assert_exactly_logged(&client, "m", 5_000).await;

    // A second run re-logging the last 100 epochs and 100 new ones.
    let writer = client
        .epoch_writer_with("m", WriterOptions::default().batch_size(30))
        .unwrap();
    for i in 4_900..5_100 {
        writer.log(i, metrics(i)).await.unwrap();
    }
    writer.log(5_000, [("loss", 123.0)]).await.unwrap(); // logged twice: skipped
    let stats = writer.stats();
    assert_eq!(stats.logged, 201);
    let counts = writer.close().await.unwrap();
    assert_eq!((counts.inserted, counts.skipped), (100, 101));
    assert_exactly_logged(&client, "m", 5_100).await;
}

async fn flush_waits_for_storage_and_the_interval_sends_partial_batches(server: TestServer) {
    let client = connect(&server).await;
    seed_model(&client, "m").await;
    let options = WriterOptions::default()
        .batch_size(1_000)
        .flush_interval(Duration::from_millis(100));
    let writer = client.epoch_writer_with("m", options).unwrap();
    for i in 0..10 {
        writer.log(i, metrics(i)).await.unwrap();
    }
    writer.flush().await.unwrap();
    assert_eq!(
        epochs_of(&client, "m").await.len(),
        10,
        "flush returned before storing"
    );
    let stats = writer.stats();
    assert_eq!((stats.logged, stats.stored, stats.counts.inserted), (10, 10, 10));

    // Far fewer than a batch, never flushed: the interval sends them.
    for i in 10..15 {
        writer
            .log_epoch(NewEpoch::new(i, metrics(i)).with_steps(100))
            .await
            .unwrap();
    }
    eventually(Duration::from_secs(5), "the interval flush", || async {
        epochs_of(&client, "m").await.len() == 15
    })
    .await;
    assert_eq!(epochs_of(&client, "m").await[14].steps_per_epoch, Some(100));
    writer.flush().await.unwrap(); // nothing left: returns at once
    let counts = writer.close().await.unwrap();
    assert_eq!(counts.inserted, 15);
}

async fn an_unknown_model_stops_the_writer_with_not_found(server: TestServer) {
    let client = connect(&server).await;
    let writer = client.epoch_writer("no-such-model").unwrap();
    writer.log(0, [("loss", 1.0)]).await.unwrap();
    let error = writer.flush().await.unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
    assert_eq!(writer.stats().retries, 0, "NOT_FOUND must not be retried");
    let again = writer.log(1, [("loss", 1.0)]).await.unwrap_err();
    assert_eq!(again, error);
    assert_eq!(
        writer
            .try_log_epoch(NewEpoch::new(2, [("loss", 1.0)]))
            .unwrap_err(),
        error
    );
    assert_eq!(writer.close().await.unwrap_err(), error);
}

async fn epochs_the_server_would_refuse_are_refused_by_log(server: TestServer) {
    let client = connect(&server).await;
    seed_model(&client, "m").await;
    let writer = client.epoch_writer("m").unwrap();
    let refused = [
        writer.log(-1, [("loss", 1.0)]).await,
        writer.log(1, [("", 1.0)]).await,
        writer.log(1, [("bad\nname", 1.0)]).await,
        writer
            .log_epoch(NewEpoch::new(1, [("loss", 1.0)]).with_steps(-5))
            .await,
    ];
    for result in refused {
        assert!(matches!(result, Err(Error::InvalidArgument { .. })), "{result:?}");
    }
    writer.log(0, [("loss", 1.0)]).await.unwrap();
    let counts = writer.close().await.unwrap();
    assert_eq!((counts.inserted, counts.skipped), (1, 0));
}

async fn a_dropped_writer_still_sends_what_it_buffered(server: TestServer) {
    let client = connect(&server).await;
    seed_model(&client, "m").await;
    let writer = client.epoch_writer("m").unwrap();
    for i in 0..250 {
        writer.log(i, metrics(i)).await.unwrap();
    }
    drop(writer);
    eventually(Duration::from_secs(10), "epochs of a dropped writer", || async {
        epochs_of(&client, "m").await.len() == 250
    })
    .await;
    assert_exactly_logged(&client, "m", 250).await;
}
