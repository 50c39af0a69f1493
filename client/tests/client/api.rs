//! Puts, bulk epoch inserts, current epoch, best models and leaderboards
//! through the typed client.

use std::time::{Duration, SystemTime};

use mlmeta_client::{
    Client, DataBlob, Direction, EpochFilter, Error, Model, ModelFilter, ModelTemplate, NewEpoch,
};
use mlmeta_tests::{TestServer, backend_tests};
use serde_json::json;

use crate::support::{bits, connect, epochs_of, seed_model};

backend_tests! {
    puts_return_the_stored_record_and_whether_it_existed,
    insert_epochs_splits_any_number_and_sums_counts => 90,
    current_epoch_tells_no_model_from_no_epochs,
    best_models_and_leaderboard,
    metric_values_round_trip_bit_for_bit,
    one_client_serves_many_tasks_at_once,
}

fn recent(t: Option<SystemTime>) -> bool {
    t.and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < Duration::from_secs(3600))
}

async fn puts_return_the_stored_record_and_whether_it_existed(server: TestServer) {
    let client = connect(&server).await;
    let blob = DataBlob::new(
        "mnist",
        "images",
        json!({"rows": 60000, "scale": 0.5, "n": {"a": [1, 2.5]}}),
    );
    let put = client.put_datablob(&blob, false).await.unwrap();
    assert!(!put.already_existed);
    assert_eq!(put.record.name, "mnist");
    assert_eq!(put.record.hyperparams, blob.hyperparams);
    assert!(put.record.hyperparams["rows"].is_i64() && put.record.hyperparams["scale"].is_f64());
    assert!(recent(put.record.created_at) && recent(put.record.last_modified_at));

    let again = client.put_datablob(&blob, false).await.unwrap();
    assert!(again.already_existed);
    assert_eq!(again.record, put.record);

    let different = DataBlob::new("mnist", "images", json!({"rows": 1}));
    let error = client.put_datablob(&different, false).await.unwrap_err();
    assert!(
        matches!(&error, Error::AlreadyExists { message } if message.contains("mnist")),
        "{error}"
    );
    let kept = client.put_datablob(&different, true).await.unwrap();
    assert!(kept.already_existed);
    assert_eq!(
        kept.record, put.record,
        "ignore_existing leaves the stored record"
    );

    let template = ModelTemplate::new("cnn", "conv", serde_json::Value::Null);
    let put = client.put_model_template(&template, false).await.unwrap();
    assert!(!put.already_existed);
    assert_eq!(put.record.hyperparams, json!({}));
    assert!(
        client
            .put_model_template(&template, false)
            .await
            .unwrap()
            .already_existed
    );

    let orphan = Model::new("m", "Net", "no-such-blob", "cnn");
    let error = client.put_model(&orphan, false).await.unwrap_err();
    assert!(matches!(error, Error::FailedPrecondition { .. }), "{error}");
    let model = Model::new("m", "Net", "mnist", "cnn");
    let put = client.put_model(&model, false).await.unwrap();
    assert!(!put.already_existed);
    assert_eq!(put.record.datablob_name, "mnist");
    assert!(recent(put.record.created_at));
    let again = client.put_model(&model, true).await.unwrap();
    assert!(again.already_existed);
    assert_eq!(again.record.name, "m");
}

async fn insert_epochs_splits_any_number_and_sums_counts(server: TestServer) {
    let client = connect(&server).await;
    seed_model(&client, "m").await;
    // Over the server's 100,000 epochs per request: two requests.
    let total = 100_050_i64;
    let epochs = (0..total).map(|i| NewEpoch::new(i, [("loss", i as f64 + 0.5)]));
    let counts = client.insert_epochs("m", epochs).await.unwrap();
    assert_eq!((counts.inserted, counts.skipped), (total as u64, 0));

    // Re-sending is harmless: stored epochs are skipped, new ones stored.
    let overlap = (total - 10..total + 5).map(|i| NewEpoch::new(i, [("loss", -1.0)]).with_steps(7));
    let counts = client.insert_epochs("m", overlap).await.unwrap();
    assert_eq!((counts.inserted, counts.skipped), (5, 10));
    let tail = client
        .list_epochs(&EpochFilter::models(["m"]).min_epoch_num(total - 11))
        .await
        .unwrap();
    let nums: Vec<i64> = tail.iter().map(|e| e.epoch_num).collect();
    assert_eq!(nums, (total - 11..total + 5).collect::<Vec<_>>());
    assert_eq!(
        tail[1].metrics["loss"],
        (total - 10) as f64 + 0.5,
        "never overwritten"
    );
    assert_eq!(tail[11].steps_per_epoch, Some(7));
    assert!(
        tail.iter()
            .all(|e| e.model_name == "m" && e.recorded_at.is_some())
    );

    let none = client.insert_epochs("m", Vec::new()).await.unwrap();
    assert_eq!(none.total(), 0);
    let error = client
        .insert_epochs("no-such-model", [NewEpoch::new(0, [("loss", 1.0)])])
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error}");
}

async fn current_epoch_tells_no_model_from_no_epochs(server: TestServer) {
    let client = connect(&server).await;
    let missing = client.current_epoch("nope").await.unwrap();
    assert!(!missing.model_exists);
    seed_model(&client, "m").await;
    let empty = client.current_epoch("m").await.unwrap();
    assert!(empty.model_exists);
    assert_eq!(empty.epoch_num, 0);
    client
        .insert_epochs("m", [3, 9, 4].map(|i| NewEpoch::new(i, [("loss", 1.0)])))
        .await
        .unwrap();
    assert_eq!(client.current_epoch("m").await.unwrap().epoch_num, 9);
}

async fn best_models_and_leaderboard(server: TestServer) {
    let client = connect(&server).await;
    // Model k has accuracy peaking at 0.5 + k/10 in epoch k.
    for k in 0..5_i64 {
        let name = format!("model-{k}");
        seed_model(&client, &name).await;
        let epochs = (0..5).map(|e| {
            let accuracy = if e == k { 0.5 + k as f64 / 10.0 } else { 0.1 };
            NewEpoch::new(e, [("accuracy", accuracy), ("loss", 1.0 - accuracy)])
        });
        client.insert_epochs(&name, epochs).await.unwrap();
    }
    let all = ModelFilter::default();
    let best = client.best_model("accuracy", Direction::Max, &all).await.unwrap();
    assert_eq!(best.model.name, "model-4");
    assert_eq!(best.best_epoch.epoch_num, 4);
    assert_eq!(best.metric_value, 0.9);
    assert_eq!(best.datablob.name, "model-4-data");
    assert_eq!(best.model_template.hyperparams, json!({"layers": 2}));
    assert_eq!(best.best_epoch.metrics.len(), 2);

    let top = client.best_models("loss", Direction::Min, &all, 3).await.unwrap();
    let names: Vec<&str> = top.iter().map(|b| b.model.name.as_str()).collect();
    assert_eq!(names, ["model-4", "model-3", "model-2"]);

    let filtered = ModelFilter::default().names(["model-1", "model-2"]);
    let best = client
        .best_model("accuracy", Direction::Max, &filtered)
        .await
        .unwrap();
    assert_eq!(best.model.name, "model-2");

    let small_pages = Client::builder(server.url())
        .page_size(2)
        .connect()
        .await
        .unwrap();
    let board = small_pages
        .leaderboard("accuracy", Direction::Max, &all)
        .await
        .unwrap();
    let rows: Vec<(String, i64)> = board
        .iter()
        .map(|r| (r.model.name.clone(), r.best_epoch_num))
        .collect();
    let want: Vec<(String, i64)> = (0..5).rev().map(|k| (format!("model-{k}"), k)).collect();
    assert_eq!(rows, want);
    assert_eq!(board[0].best_value, 0.9);
    assert_eq!(board[0].datablob.group_name, "dg");

    let error = client.best_model("f1", Direction::Max, &all).await.unwrap_err();
    assert!(matches!(error, Error::NotFound { .. }), "{error}");
    assert!(
        client
            .leaderboard("f1", Direction::Max, &all)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn metric_values_round_trip_bit_for_bit(server: TestServer) {
    let client = connect(&server).await;
    seed_model(&client, "m").await;
    let specials = [
        ("nan", f64::NAN),
        ("pos_inf", f64::INFINITY),
        ("neg_inf", f64::NEG_INFINITY),
        ("zero", 0.0),
        ("min_subnormal", f64::from_bits(1)),
        ("max", f64::MAX),
        ("min", f64::MIN),
        ("min_positive", f64::MIN_POSITIVE),
        ("epsilon", f64::EPSILON),
        ("third", 1.0 / 3.0),
    ];
    let sent = NewEpoch::new(0, specials);
    client.insert_epochs("m", [sent.clone()]).await.unwrap();
    let stored = epochs_of(&client, "m").await;
    assert_eq!(bits(&stored[0].metrics), bits(&sent.metrics));
    let best = client
        .best_model("third", Direction::Max, &ModelFilter::default())
        .await
        .unwrap();
    assert_eq!(bits(&best.best_epoch.metrics), bits(&sent.metrics));
}

async fn one_client_serves_many_tasks_at_once(server: TestServer) {
    let client = Client::builder(server.url())
        .token("not-checked-by-the-server")
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let client = client.clone();
            tokio::spawn(async move {
                let name = format!("task-{t}");
                seed_model(&client, &name).await;
                let epochs = (0..500).map(|i| NewEpoch::new(i, [("loss", (t * 1000 + i) as f64)]));
                let counts = client.insert_epochs(&name, epochs).await.unwrap();
                assert_eq!(counts.inserted, 500);
                client.current_epoch(&name).await.unwrap().epoch_num
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 499);
    }
    let models = client.list_models(&ModelFilter::default()).await.unwrap();
    assert_eq!(models.len(), 8);
    let epochs = client.list_epochs(&EpochFilter::default()).await.unwrap();
    assert_eq!(epochs.len(), 8 * 500);
}
