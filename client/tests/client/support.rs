//! Helpers the client tests share.

use std::collections::BTreeMap;
use std::time::Duration;

use mlmeta_client::{Client, DataBlob, Epoch, EpochFilter, Model, ModelTemplate};
use mlmeta_tests::TestServer;
use serde_json::json;

/// A client of `server`, connected.
pub async fn connect(server: &TestServer) -> Client {
    Client::connect(server.url())
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", server.url()))
}

/// Puts model `name` with its own datablob `<name>-data` (group `dg`) and
/// template `<name>-tmpl` (group `tg`).
pub async fn seed_model(client: &Client, name: &str) {
    let blob = format!("{name}-data");
    let tmpl = format!("{name}-tmpl");
    client
        .put_datablob(&DataBlob::new(&blob, "dg", json!({"rows": 10})), false)
        .await
        .unwrap();
    client
        .put_model_template(&ModelTemplate::new(&tmpl, "tg", json!({"layers": 2})), false)
        .await
        .unwrap();
    client
        .put_model(&Model::new(name, "Net", &blob, &tmpl), false)
        .await
        .unwrap();
}

/// The 8 metrics of epoch `i` in the tests: distinct per epoch, none zero.
pub fn metrics(i: i64) -> Vec<(String, f64)> {
    let x = i as f64;
    vec![
        ("loss".to_owned(), 1.0 / (x + 1.0)),
        ("val_loss".to_owned(), 1.5 / (x + 1.0) + 1e-3),
        ("accuracy".to_owned(), 1.0 - 1.0 / (x + 2.0)),
        ("val_accuracy".to_owned(), 0.9 - 1.0 / (x + 3.0)),
        ("lr".to_owned(), 0.1 * 0.99_f64.powf(x)),
        ("grad_norm".to_owned(), (x + 1.0).sqrt()),
        ("epoch_time".to_owned(), 10.0 + x * 1e-6),
        ("seed".to_owned(), x * std::f64::consts::PI),
    ]
}

/// Metric values as bits, so NaN compares equal to itself.
pub fn bits(metrics: &BTreeMap<String, f64>) -> BTreeMap<String, u64> {
    metrics.iter().map(|(k, v)| (k.clone(), v.to_bits())).collect()
}

/// Every stored epoch of `model`, in order.
pub async fn epochs_of(client: &Client, model: &str) -> Vec<Epoch> {
    client.list_epochs(&EpochFilter::models([model])).await.unwrap()
}

/// Asserts that `model` holds exactly epochs `0..total`, each once, with
/// [`metrics`] of its number.
pub async fn assert_exactly_logged(client: &Client, model: &str, total: i64) {
    let stored = epochs_of(client, model).await;
    let nums: Vec<i64> = stored.iter().map(|e| e.epoch_num).collect();
    if nums != (0..total).collect::<Vec<_>>() {
        let missing: Vec<i64> = (0..total).filter(|n| !nums.contains(n)).take(20).collect();
        panic!(
            "{model}: {} epochs stored, want exactly 0..{total}; first missing: {missing:?}",
            nums.len()
        );
    }
    for epoch in &stored {
        let want: BTreeMap<String, f64> = metrics(epoch.epoch_num).into_iter().collect();
        assert_eq!(
            bits(&epoch.metrics),
            bits(&want),
            "metrics of epoch {}",
            epoch.epoch_num
        );
    }
}

/// Polls `check` every 20 ms until it holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback port where nothing listens (a moment ago).
pub fn dead_port() -> u16 {
    mlmeta_tests::process::free_port()
}
