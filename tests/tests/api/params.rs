//! Per-model params: a JSON object set at PutModel, immutable, part of the
//! idempotency check, returned with the model everywhere it appears.

use mlmeta_proto::{MetricDirection, PutModelRequest};
use mlmeta_tests::calls::{
    Client, expect_status, insert_epochs, list_all_models, put_datablob, put_template,
};
use mlmeta_tests::records::{best, epoch, leaderboard, model, put_model};
use mlmeta_tests::{TestServer, backend_tests};
use tonic::Code;

backend_tests! {
    params_are_stored_canonical_and_returned_everywhere,
    params_are_part_of_the_idempotency_check,
    params_follow_the_hyperparams_rules,
}

fn with_params(name: &str, params: &str) -> PutModelRequest {
    let mut m = model(name, "d", "t");
    m.params_json = params.to_owned();
    put_model(m, false)
}

async fn seed(client: &mut Client) {
    put_datablob(client, "d", "g", r#"{"rows": 10}"#).await;
    put_template(client, "t", "g", r#"{"layers": 2}"#).await;
}

async fn params_are_stored_canonical_and_returned_everywhere(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    let put = client
        .put_model(with_params(
            "run-1",
            r#"{"seed": 7, "lr": 0.001, "opt": {"name": "adam"}}"#,
        ))
        .await
        .unwrap()
        .into_inner();
    let canonical = r#"{"lr":0.001,"opt":{"name":"adam"},"seed":7}"#;
    assert_eq!(put.model.unwrap().params_json, canonical);
    // No params means `{}`.
    client.put_model(with_params("run-2", "")).await.unwrap();
    insert_epochs(
        &mut client,
        vec![
            epoch("run-1", 0, &[("acc", 0.9)]),
            epoch("run-2", 0, &[("acc", 0.5)]),
        ],
    )
    .await;

    let models = list_all_models(&mut client, None, 0).await;
    let params: Vec<(&str, &str)> = models
        .iter()
        .map(|m| (m.name.as_str(), m.params_json.as_str()))
        .collect();
    assert_eq!(params, [("run-1", canonical), ("run-2", "{}")]);

    let top = client
        .get_best_model(best("acc", MetricDirection::Max, 2))
        .await
        .unwrap()
        .into_inner()
        .models;
    assert_eq!(top[0].model.as_ref().unwrap().params_json, canonical);
    assert_eq!(top[1].model.as_ref().unwrap().params_json, "{}");
    let rows = client
        .get_leaderboard(leaderboard("acc", MetricDirection::Max, 10))
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(rows[0].model.as_ref().unwrap().params_json, canonical);
}

async fn params_are_part_of_the_idempotency_check(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    client
        .put_model(with_params("m", r#"{"seed": 1}"#))
        .await
        .unwrap();
    // The same object, written differently, is the same record.
    let again = client
        .put_model(with_params("m", r#"{ "seed" : 1 }"#))
        .await
        .unwrap()
        .into_inner();
    assert!(again.already_existed);
    expect_status(
        client.put_model(with_params("m", r#"{"seed": 2}"#)).await,
        Code::AlreadyExists,
        &["params_json"],
    );
    // An integer is not the float of the same value.
    expect_status(
        client.put_model(with_params("m", r#"{"seed": 1.0}"#)).await,
        Code::AlreadyExists,
        &["params_json"],
    );
    expect_status(
        client.put_model(with_params("m", "")).await,
        Code::AlreadyExists,
        &["params_json"],
    );
    let mut ignored = with_params("m", r#"{"seed": 3}"#);
    ignored.ignore_existing = true;
    let kept = client.put_model(ignored).await.unwrap().into_inner();
    assert_eq!(
        kept.model.unwrap().params_json,
        r#"{"seed":1}"#,
        "the stored one stays"
    );
}

async fn params_follow_the_hyperparams_rules(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    for (params, needle) in [
        ("[1, 2]", "JSON object"),
        ("{", "model.params_json"),
        (r#"{"a": 1, "a": 2}"#, "model.params_json"),
        ("7", "JSON object"),
    ] {
        expect_status(
            client.put_model(with_params("m", params)).await,
            Code::InvalidArgument,
            &["model.params_json", needle],
        );
    }
    let big = format!(r#"{{"k": "{}"}}"#, "x".repeat(65_536));
    expect_status(
        client.put_model(with_params("m", &big)).await,
        Code::InvalidArgument,
        &["model.params_json", "65536 bytes"],
    );
    assert!(list_all_models(&mut client, None, 0).await.is_empty());
}
