//! GetBestModel: what a result carries, top_k, NaN and infinities, ties,
//! filters, NOT_FOUND and invalid requests.

use mlmeta_proto::{BestModel, GetBestModelRequest, MetricDirection, ModelFilter};
use mlmeta_tests::calls::{self, Client, Snapshot, expect_status, insert_epochs, json};
use mlmeta_tests::records::{best, epoch, strings};
use mlmeta_tests::{TestServer, backend_tests};
use tonic::Code;

use MetricDirection::{Max, Min};

backend_tests! {
    best_model_carries_records_epoch_and_value,
    top_k_defaults_to_one_and_lists_best_first,
    models_without_the_metric_are_never_results,
    nan_is_stored_but_never_best,
    infinities_can_be_best,
    ties_go_to_lower_epoch_then_model_name,
    best_model_honours_filters,
    no_model_with_the_metric_is_not_found,
    invalid_best_model_requests_are_rejected,
    top_k_1000_over_more_than_1000_models => 600,
}

async fn get_best(client: &mut Client, request: GetBestModelRequest) -> Vec<BestModel> {
    client
        .get_best_model(request.clone())
        .await
        .unwrap_or_else(|s| panic!("GetBestModel {request:?}: {s}"))
        .into_inner()
        .models
}

/// (model name, best epoch_num, metric_value bits) of each result.
fn summary(models: &[BestModel]) -> Vec<(String, i64, u64)> {
    models
        .iter()
        .map(|m| {
            let name = m.model.as_ref().expect("model").name.clone();
            let num = m.best_epoch.as_ref().expect("best_epoch").epoch_num;
            (name, num, m.metric_value.to_bits())
        })
        .collect()
}

fn row(name: &str, epoch_num: i64, value: f64) -> (String, i64, u64) {
    (name.to_owned(), epoch_num, value.to_bits())
}

async fn best_model_carries_records_epoch_and_value(server: TestServer) {
    let mut client = server.client();
    calls::put_datablob(&mut client, "cifar", "images", r#"{"rows": 50000, "scale": 1.0}"#).await;
    calls::put_template(&mut client, "cnn", "conv", r#"{"layers": 3, "lr": 0.01}"#).await;
    calls::put_template(&mut client, "mlp", "dense", "{}").await;
    calls::put_model(&mut client, "m-cnn", "cifar", "cnn").await;
    calls::put_model(&mut client, "m-mlp", "cifar", "mlp").await;
    let mut best_epoch = epoch("m-cnn", 2, &[("acc", 0.9), ("loss", 0.3), ("f1", 0.85)]);
    best_epoch.steps_per_epoch = Some(100);
    insert_epochs(
        &mut client,
        vec![
            epoch("m-cnn", 1, &[("acc", 0.5), ("loss", 0.9), ("f1", 0.4)]),
            best_epoch.clone(),
            epoch("m-cnn", 3, &[("acc", 0.7), ("loss", 0.2)]),
            epoch("m-mlp", 1, &[("acc", 0.6), ("loss", 0.5)]),
        ],
    )
    .await;

    let results = get_best(&mut client, best("acc", Max, 1)).await;
    assert_eq!(results.len(), 1);
    let first = &results[0];
    let model = first.model.as_ref().expect("model");
    assert_eq!(
        (
            model.name.as_str(),
            model.datablob_name.as_str(),
            model.model_template_name.as_str()
        ),
        ("m-cnn", "cifar", "cnn")
    );
    assert_eq!(model.model_class_name, "Net");
    let blob = first.datablob.as_ref().expect("datablob");
    assert_eq!(
        (blob.name.as_str(), blob.group_name.as_str()),
        ("cifar", "images")
    );
    assert_eq!(
        json(&blob.hyperparams_json),
        serde_json::json!({"rows": 50000, "scale": 1.0})
    );
    let tmpl = first.model_template.as_ref().expect("model_template");
    assert_eq!((tmpl.name.as_str(), tmpl.group_name.as_str()), ("cnn", "conv"));
    assert_eq!(
        json(&tmpl.hyperparams_json),
        serde_json::json!({"layers": 3, "lr": 0.01})
    );
    let got_epoch = first.best_epoch.as_ref().expect("best_epoch");
    assert_eq!(got_epoch.epoch_num, 2);
    assert_eq!(got_epoch.model_name, "m-cnn");
    assert_eq!(
        got_epoch.metrics, best_epoch.metrics,
        "all metrics of the best epoch"
    );
    assert_eq!(got_epoch.steps_per_epoch, Some(100));
    assert!(got_epoch.recorded_at.is_some(), "best_epoch.recorded_at");
    assert_eq!(first.metric_value, 0.9);
    assert!(model.created_at.is_some(), "model.created_at");
    assert!(blob.created_at.is_some(), "datablob.created_at");
    assert!(tmpl.created_at.is_some(), "model_template.created_at");

    let results = get_best(&mut client, best("loss", Min, 1)).await;
    assert_eq!(summary(&results), vec![row("m-cnn", 3, 0.2)]);
    let metrics = &results[0].best_epoch.as_ref().unwrap().metrics;
    assert_eq!(metrics.len(), 2, "epoch 3 has two metrics: {metrics:?}");
}

/// Models a..e, each with one epoch of `acc` (a best).
async fn seed_five(client: &mut Client) {
    let values = [("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", 0.6), ("e", 0.5)];
    for (name, _) in values {
        calls::seed_model(client, name).await;
    }
    insert_epochs(
        client,
        values.iter().map(|(n, v)| epoch(n, 0, &[("acc", *v)])).collect(),
    )
    .await;
}

async fn top_k_defaults_to_one_and_lists_best_first(server: TestServer) {
    let mut client = server.client();
    seed_five(&mut client).await;
    assert_eq!(
        summary(&get_best(&mut client, best("acc", Max, 0)).await),
        vec![row("a", 0, 0.9)]
    );
    assert_eq!(
        summary(&get_best(&mut client, best("acc", Max, 3)).await),
        vec![row("a", 0, 0.9), row("b", 0, 0.8), row("c", 0, 0.7)]
    );
    assert_eq!(
        summary(&get_best(&mut client, best("acc", Min, 2)).await),
        vec![row("e", 0, 0.5), row("d", 0, 0.6)]
    );
    let all = get_best(&mut client, best("acc", Max, 1_000)).await;
    assert_eq!(
        all.len(),
        5,
        "top_k beyond the count returns every model with the metric"
    );
}

async fn models_without_the_metric_are_never_results(server: TestServer) {
    let mut client = server.client();
    seed_five(&mut client).await;
    calls::seed_model(&mut client, "no-acc").await;
    calls::seed_model(&mut client, "no-epochs").await;
    insert_epochs(
        &mut client,
        vec![epoch("no-acc", 0, &[("loss", 1e9), ("acc2", 1e9)])],
    )
    .await;
    let all = get_best(&mut client, best("acc", Max, 100)).await;
    let names: Vec<String> = summary(&all).into_iter().map(|r| r.0).collect();
    assert_eq!(names, strings(&["a", "b", "c", "d", "e"]));
    let all = get_best(&mut client, best("acc", Min, 100)).await;
    assert_eq!(all.len(), 5);
    let loss = get_best(&mut client, best("loss", Min, 100)).await;
    assert_eq!(summary(&loss), vec![row("no-acc", 0, 1e9)]);
}

async fn nan_is_stored_but_never_best(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "a").await;
    calls::seed_model(&mut client, "b").await;
    insert_epochs(
        &mut client,
        vec![
            epoch("a", 0, &[("acc", f64::NAN)]),
            epoch("a", 1, &[("acc", 0.5)]),
            epoch("a", 2, &[("acc", f64::NAN)]),
            epoch("b", 0, &[("acc", 0.7)]),
            epoch("b", 1, &[("acc", f64::NAN)]),
        ],
    )
    .await;
    assert_eq!(
        summary(&get_best(&mut client, best("acc", Max, 10)).await),
        vec![row("b", 0, 0.7), row("a", 1, 0.5)]
    );
    assert_eq!(
        summary(&get_best(&mut client, best("acc", Min, 10)).await),
        vec![row("a", 1, 0.5), row("b", 0, 0.7)]
    );
    let stored = calls::epochs_of(&mut client, &["a"]).await;
    assert!(
        stored[0].metrics["acc"].is_nan() && stored[2].metrics["acc"].is_nan(),
        "NaN is stored"
    );
    let board = calls::full_leaderboard(&mut client, mlmeta_tests::records::leaderboard("acc", Max, 0)).await;
    let rows: Vec<(String, i64, u64)> = board
        .iter()
        .map(|r| {
            (
                r.model.as_ref().unwrap().name.clone(),
                r.best_epoch_num,
                r.best_value.to_bits(),
            )
        })
        .collect();
    assert_eq!(rows, vec![row("b", 0, 0.7), row("a", 1, 0.5)]);
}

async fn infinities_can_be_best(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "a").await;
    calls::seed_model(&mut client, "b").await;
    insert_epochs(
        &mut client,
        vec![
            epoch("a", 0, &[("acc", f64::MAX)]),
            epoch("a", 1, &[("acc", f64::INFINITY)]),
            epoch("a", 2, &[("acc", 0.0)]),
            epoch("b", 0, &[("acc", f64::NEG_INFINITY)]),
            epoch("b", 1, &[("acc", f64::MIN)]),
        ],
    )
    .await;
    assert_eq!(
        summary(&get_best(&mut client, best("acc", Max, 10)).await),
        vec![row("a", 1, f64::INFINITY), row("b", 1, f64::MIN)]
    );
    assert_eq!(
        summary(&get_best(&mut client, best("acc", Min, 10)).await),
        vec![row("b", 0, f64::NEG_INFINITY), row("a", 2, 0.0)]
    );
}

async fn ties_go_to_lower_epoch_then_model_name(server: TestServer) {
    let mut client = server.client();
    for name in ["a", "b", "c", "d"] {
        calls::seed_model(&mut client, name).await;
    }
    insert_epochs(
        &mut client,
        vec![
            epoch("b", 5, &[("acc", 0.9)]),
            epoch("b", 3, &[("acc", 0.9)]),
            epoch("b", 4, &[("acc", 0.1)]),
            epoch("a", 7, &[("acc", 0.9)]),
            epoch("a", 1, &[("acc", 0.1)]),
            epoch("c", 3, &[("acc", 0.9)]),
            epoch("c", 9, &[("acc", 0.9)]),
            epoch("d", 0, &[("acc", 0.1)]),
        ],
    )
    .await;
    assert_eq!(
        summary(&get_best(&mut client, best("acc", Max, 10)).await),
        vec![
            row("b", 3, 0.9),
            row("c", 3, 0.9),
            row("a", 7, 0.9),
            row("d", 0, 0.1)
        ]
    );
    assert_eq!(
        summary(&get_best(&mut client, best("acc", Min, 10)).await),
        vec![
            row("d", 0, 0.1),
            row("a", 1, 0.1),
            row("b", 4, 0.1),
            row("c", 3, 0.9)
        ]
    );
    assert_eq!(
        summary(&get_best(&mut client, best("acc", Max, 1)).await),
        vec![row("b", 3, 0.9)]
    );
}

async fn best_model_honours_filters(server: TestServer) {
    let mut client = server.client();
    calls::put_datablob(&mut client, "d1", "dg1", "{}").await;
    calls::put_datablob(&mut client, "d2", "dg2", "{}").await;
    calls::put_template(&mut client, "t1", "tg1", "{}").await;
    calls::put_template(&mut client, "t2", "tg2", "{}").await;
    for (name, blob, tmpl, acc) in [
        ("m11", "d1", "t1", 0.1),
        ("m12", "d1", "t2", 0.2),
        ("m21", "d2", "t1", 0.3),
        ("m22", "d2", "t2", 0.4),
    ] {
        calls::put_model(&mut client, name, blob, tmpl).await;
        insert_epochs(&mut client, vec![epoch(name, 0, &[("acc", acc)])]).await;
    }
    let cases: Vec<(ModelFilter, &[&str])> = vec![
        (ModelFilter::default(), &["m22", "m21", "m12", "m11"]),
        (
            ModelFilter {
                datablob_group_names: strings(&["dg1"]),
                ..ModelFilter::default()
            },
            &["m12", "m11"],
        ),
        (
            ModelFilter {
                model_template_group_names: strings(&["tg1"]),
                ..ModelFilter::default()
            },
            &["m21", "m11"],
        ),
        (
            ModelFilter {
                datablob_names: strings(&["d2"]),
                model_template_names: strings(&["t1"]),
                ..ModelFilter::default()
            },
            &["m21"],
        ),
        (
            ModelFilter {
                names: strings(&["m11", "m12", "m21"]),
                model_template_group_names: strings(&["tg2", "tg1"]),
                ..ModelFilter::default()
            },
            &["m21", "m12", "m11"],
        ),
    ];
    for (filter, want) in cases {
        let request = GetBestModelRequest {
            filter: Some(filter.clone()),
            ..best("acc", Max, 10)
        };
        let names: Vec<String> = summary(&get_best(&mut client, request).await)
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(names, strings(want), "filter {filter:?}");
    }
}

async fn no_model_with_the_metric_is_not_found(server: TestServer) {
    let mut client = server.client();
    expect_status(
        client.get_best_model(best("acc", Max, 1)).await,
        Code::NotFound,
        &[],
    );
    calls::seed_model(&mut client, "a").await;
    expect_status(
        client.get_best_model(best("acc", Max, 1)).await,
        Code::NotFound,
        &[],
    );
    insert_epochs(&mut client, vec![epoch("a", 0, &[("loss", 1.0)])]).await;
    expect_status(
        client.get_best_model(best("acc", Min, 5)).await,
        Code::NotFound,
        &[],
    );
    insert_epochs(&mut client, vec![epoch("a", 1, &[("acc", 1.0)])]).await;
    let filtered = GetBestModelRequest {
        filter: Some(ModelFilter {
            datablob_group_names: strings(&["elsewhere"]),
            ..ModelFilter::default()
        }),
        ..best("acc", Max, 1)
    };
    expect_status(client.get_best_model(filtered).await, Code::NotFound, &[]);
    // Metric names are case-sensitive and exact.
    expect_status(
        client.get_best_model(best("ACC", Max, 1)).await,
        Code::NotFound,
        &[],
    );
    expect_status(
        client.get_best_model(best("ac%", Max, 1)).await,
        Code::NotFound,
        &[],
    );
    assert_eq!(get_best(&mut client, best("acc", Max, 1)).await.len(), 1);
}

async fn invalid_best_model_requests_are_rejected(server: TestServer) {
    let mut client = server.client();
    seed_five(&mut client).await;
    let before = Snapshot::take(&mut client).await;
    for direction in [MetricDirection::Unspecified as i32, 7, -1] {
        let request = GetBestModelRequest {
            direction,
            ..best("acc", Max, 1)
        };
        expect_status(
            client.get_best_model(request).await,
            Code::InvalidArgument,
            &["direction"],
        );
        let request = mlmeta_proto::GetLeaderboardRequest {
            direction,
            ..mlmeta_tests::records::leaderboard("acc", Max, 0)
        };
        expect_status(
            client.get_leaderboard(request).await,
            Code::InvalidArgument,
            &["direction"],
        );
    }
    expect_status(
        client.get_best_model(best("", Max, 1)).await,
        Code::InvalidArgument,
        &["metric"],
    );
    expect_status(
        client
            .get_leaderboard(mlmeta_tests::records::leaderboard("", Min, 0))
            .await,
        Code::InvalidArgument,
        &["metric"],
    );
    expect_status(
        client.get_best_model(best("acc", Max, 1_001)).await,
        Code::InvalidArgument,
        &["top_k"],
    );
    assert_eq!(get_best(&mut client, best("acc", Max, 1_000)).await.len(), 5);
    before
        .assert_unchanged(&mut client, "invalid GetBestModel requests")
        .await;
}

async fn top_k_1000_over_more_than_1000_models(server: TestServer) {
    let mut client = server.client();
    calls::put_datablob(&mut client, "d", "g", "{}").await;
    calls::put_template(&mut client, "t", "g", "{}").await;
    let count = 1_050_i64;
    let names: Vec<String> = (0..count).map(|i| format!("m{i:04}")).collect();
    // Puts in parallel batches to keep this quick.
    for batch in names.chunks(50) {
        let puts = batch.iter().map(|name| {
            let mut client = server.client();
            async move { calls::put_model(&mut client, name, "d", "t").await }
        });
        futures::future::join_all(puts).await;
    }
    // Model i: best value i at epoch i % 7, a worse one at epoch 100.
    let mut epochs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        epochs.push(epoch(name, i as i64 % 7, &[("acc", i as f64), ("other", 1.0)]));
        epochs.push(epoch(name, 100, &[("acc", -1.0)]));
    }
    insert_epochs(&mut client, epochs).await;

    let results = get_best(&mut client, best("acc", Max, 1_000)).await;
    let want: Vec<(String, i64, u64)> = (0..count)
        .rev()
        .take(1_000)
        .map(|i| row(&format!("m{i:04}"), i % 7, i as f64))
        .collect();
    assert_eq!(summary(&results), want, "top 1,000 by MAX");
    for r in &results {
        let metrics = &r.best_epoch.as_ref().unwrap().metrics;
        assert_eq!(metrics.len(), 2, "all metrics of the best epoch");
    }
    let results = get_best(&mut client, best("acc", Min, 1_000)).await;
    assert_eq!(results.len(), 1_000);
    assert!(
        results
            .iter()
            .all(|r| r.metric_value == -1.0 && r.best_epoch.as_ref().unwrap().epoch_num == 100)
    );
    let names_in_order: Vec<String> = results
        .iter()
        .map(|r| r.model.as_ref().unwrap().name.clone())
        .collect();
    assert_eq!(
        names_in_order,
        names[..1_000].to_vec(),
        "MIN ties broken by model name"
    );

    let board = calls::full_leaderboard(
        &mut client,
        mlmeta_tests::records::leaderboard("acc", Max, 10_000),
    )
    .await;
    assert_eq!(board.len(), count as usize);
}
