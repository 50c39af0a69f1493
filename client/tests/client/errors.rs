//! Errors callers can match on: the server's statuses with its messages,
//! deadlines, and an unreachable server.

use std::time::Duration;

use mlmeta_client::{Client, Code, DataBlob, Direction, Error, ModelFilter, NewEpoch, RetryPolicy};
use mlmeta_tests::{TestServer, backend_tests};
use serde_json::json;

use crate::support::{connect, dead_port, seed_model};

backend_tests! {
    invalid_arguments_carry_the_server_message,
    a_call_over_its_time_limit_is_deadline_exceeded,
}

async fn invalid_arguments_carry_the_server_message(server: TestServer) {
    let client = connect(&server).await;
    let error = client
        .best_models("loss", Direction::Min, &ModelFilter::default(), 1_001)
        .await
        .unwrap_err();
    match &error {
        Error::InvalidArgument { message } => assert!(message.contains("top_k"), "{message}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    assert_eq!(error.code(), Some(Code::InvalidArgument));
    assert!(!error.is_transient());

    let long = "x".repeat(256);
    let error = client
        .put_datablob(&DataBlob::new(&long, "g", json!({})), false)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidArgument { message } if message.contains("255")),
        "{error}"
    );

    let error = client
        .put_datablob(&DataBlob::new("d", "g", json!([1, 2])), false)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidArgument { message } if message.contains("object")),
        "{error}"
    );

    seed_model(&client, "m").await;
    let error = client
        .insert_epochs("m", [NewEpoch::new(-1, [("loss", 1.0)])])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidArgument { message } if message.contains("epoch_num")),
        "{error}"
    );
}

async fn a_call_over_its_time_limit_is_deadline_exceeded(server: TestServer) {
    let setup = connect(&server).await;
    seed_model(&setup, "m").await;
    let hasty = Client::builder(server.url())
        .timeout(Duration::from_millis(1))
        .connect()
        .await
        .unwrap();
    let epochs = (0..50_000).map(|i| NewEpoch::new(i, [("loss", 1.0), ("accuracy", 0.5)]));
    let error = hasty.insert_epochs("m", epochs).await.unwrap_err();
    assert!(matches!(error, Error::DeadlineExceeded { .. }), "{error:?}");
    assert!(error.is_transient());
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let url = format!("http://127.0.0.1:{}", dead_port());
    let error = Client::connect(&url).await.unwrap_err();
    assert!(matches!(error, Error::Unavailable { .. }), "{error:?}");

    let lazy = Client::builder(&url).connect_lazy().unwrap();
    let error = lazy.current_epoch("m").await.unwrap_err();
    assert!(matches!(error, Error::Unavailable { .. }), "{error:?}");
    assert!(error.is_transient());

    // With a retry policy, calls retry for its duration, then give up.
    let patient = Client::builder(&url)
        .retry(RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            multiplier: 2.0,
            max_elapsed: Duration::from_millis(300),
        })
        .connect_lazy()
        .unwrap();
    let start = std::time::Instant::now();
    let error = patient.current_epoch("m").await.unwrap_err();
    assert!(matches!(error, Error::Unavailable { .. }), "{error:?}");
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(10),
        "{elapsed:?}"
    );
}
