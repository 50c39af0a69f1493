//! PutDataBlob / PutModelTemplate / PutModel: storing, idempotency,
//! ALREADY_EXISTS vs ignore_existing, missing references, timestamps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mlmeta_proto::{GroupedFilter, Model};
use mlmeta_tests::calls::{
    self, Snapshot, expect_status, json, list_all_datablobs, list_all_models, list_all_templates,
};
use mlmeta_tests::records::{self, datablob, epoch, model, put_datablob, put_model, put_template, template};
use mlmeta_tests::{TestServer, backend_tests};
use prost_types::Timestamp;
use tonic::Code;

backend_tests! {
    put_datablob_returns_stored_record,
    put_template_returns_stored_record,
    put_model_returns_stored_record,
    reput_identical_records_reports_already_existed,
    different_records_under_existing_names_are_already_exists,
    ignore_existing_returns_stored_record_untouched,
    ignore_existing_stores_new_records,
    model_with_missing_references_is_failed_precondition,
    server_sets_timestamps_and_ignores_input_ones,
    model_last_modified_moves_forward_when_epochs_arrive,
}

fn ts(t: Option<&Timestamp>) -> (i64, i32) {
    let t = t.expect("timestamp set by the server");
    (t.seconds, t.nanos)
}

/// Asserts `t` is within an hour of now (the server sets it, not the client).
#[track_caller]
fn assert_recent(t: Option<&Timestamp>, what: &str) {
    let (seconds, _) = ts(t);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(
        (seconds - now).abs() < 3600,
        "{what} = {seconds}s, not near now ({now}s)"
    );
}

fn by_name(name: &str) -> Option<GroupedFilter> {
    Some(GroupedFilter {
        names: vec![name.to_owned()],
        group_names: vec![],
        ..Default::default()
    })
}

async fn put_datablob_returns_stored_record(server: TestServer) {
    let mut client = server.client();
    let response = client
        .put_data_blob(put_datablob(
            datablob("mnist", "images", r#"{"rows": 60000, "scale": 0.5}"#),
            false,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!response.already_existed);
    let stored = response.datablob.expect("stored datablob");
    assert_eq!(stored.name, "mnist");
    assert_eq!(stored.group_name, "images");
    assert_eq!(
        json(&stored.hyperparams_json),
        serde_json::json!({"rows": 60000, "scale": 0.5})
    );
    assert_recent(stored.created_at.as_ref(), "created_at");
    assert_recent(stored.last_modified_at.as_ref(), "last_modified_at");
    let listed = list_all_datablobs(&mut client, None, 0).await;
    assert_eq!(listed, vec![stored]);
}

async fn put_template_returns_stored_record(server: TestServer) {
    let mut client = server.client();
    let response = client
        .put_model_template(put_template(template("cnn", "conv", r#"{"layers": 3}"#), false))
        .await
        .unwrap()
        .into_inner();
    assert!(!response.already_existed);
    let stored = response.model_template.expect("stored template");
    assert_eq!(stored.name, "cnn");
    assert_eq!(stored.group_name, "conv");
    assert_eq!(json(&stored.hyperparams_json), serde_json::json!({"layers": 3}));
    assert_recent(stored.created_at.as_ref(), "created_at");
    assert_recent(stored.last_modified_at.as_ref(), "last_modified_at");
    let listed = list_all_templates(&mut client, None, 0).await;
    assert_eq!(listed, vec![stored]);
}

async fn put_model_returns_stored_record(server: TestServer) {
    let mut client = server.client();
    calls::put_datablob(&mut client, "d", "g", "{}").await;
    calls::put_template(&mut client, "t", "g", "{}").await;
    let sent = Model {
        model_class_name: "ResNet".to_owned(),
        ..model("m1", "d", "t")
    };
    let response = client
        .put_model(put_model(sent, false))
        .await
        .unwrap()
        .into_inner();
    assert!(!response.already_existed);
    let stored = response.model.expect("stored model");
    assert_eq!(
        (stored.name.as_str(), stored.model_class_name.as_str()),
        ("m1", "ResNet")
    );
    assert_eq!(
        (stored.datablob_name.as_str(), stored.model_template_name.as_str()),
        ("d", "t")
    );
    assert_recent(stored.created_at.as_ref(), "created_at");
    assert_recent(stored.last_modified_at.as_ref(), "last_modified_at");
    let listed = list_all_models(&mut client, None, 0).await;
    assert_eq!(listed, vec![stored]);
}

async fn reput_identical_records_reports_already_existed(server: TestServer) {
    let mut client = server.client();
    let first_blob = client
        .put_data_blob(put_datablob(
            datablob(
                "d",
                "g",
                r#"{"a": 1, "b": {"c": [1, 2.5], "x": {"p": 1, "q": "r"}}}"#,
            ),
            false,
        ))
        .await
        .unwrap()
        .into_inner();
    let first_tmpl = client
        .put_model_template(put_template(template("t", "g", r#"{"x": 1.0, "y": "s"}"#), false))
        .await
        .unwrap()
        .into_inner();
    let first_model = client
        .put_model(put_model(model("m", "d", "t"), false))
        .await
        .unwrap()
        .into_inner();

    // Same records; hyperparams with other key order and whitespace.
    let again_blob = client
        .put_data_blob(put_datablob(
            datablob(
                "d",
                "g",
                "{\"b\":{\"x\":{\"q\":\"r\",\"p\":1},\"c\":[1,2.5]},\n \"a\":1}",
            ),
            false,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        again_blob.already_existed,
        "identical datablob re-put: already_existed"
    );
    assert_eq!(again_blob.datablob, first_blob.datablob);
    let again_tmpl = client
        .put_model_template(put_template(template("t", "g", r#"{ "y":"s","x":1.0 }"#), false))
        .await
        .unwrap()
        .into_inner();
    assert!(
        again_tmpl.already_existed,
        "identical template re-put: already_existed"
    );
    assert_eq!(again_tmpl.model_template, first_tmpl.model_template);
    let again_model = client
        .put_model(put_model(model("m", "d", "t"), false))
        .await
        .unwrap()
        .into_inner();
    assert!(
        again_model.already_existed,
        "identical model re-put: already_existed"
    );
    assert_eq!(again_model.model, first_model.model);

    assert_eq!(list_all_datablobs(&mut client, None, 0).await.len(), 1);
    assert_eq!(list_all_templates(&mut client, None, 0).await.len(), 1);
    assert_eq!(list_all_models(&mut client, None, 0).await.len(), 1);
}

async fn different_records_under_existing_names_are_already_exists(server: TestServer) {
    let mut client = server.client();
    calls::put_datablob(&mut client, "d", "g", r#"{"a": 1}"#).await;
    calls::put_datablob(&mut client, "d2", "g", "{}").await;
    calls::put_template(&mut client, "t", "g", r#"{"a": 1}"#).await;
    calls::put_template(&mut client, "t2", "g", "{}").await;
    calls::put_template(&mut client, "t-list", "g", r#"{"l": [1, 2]}"#).await;
    calls::put_model(&mut client, "m", "d", "t").await;
    let before = Snapshot::take(&mut client).await;

    for blob in [
        datablob("d", "other", r#"{"a": 1}"#),
        datablob("d", "g", r#"{"a": 2}"#),
        datablob("d", "g", r#"{"a": 1, "b": 1}"#),
        datablob("d", "g", "{}"),
        datablob("d", "g", r#"{"a": [1]}"#),
    ] {
        let result = client.put_data_blob(put_datablob(blob.clone(), false)).await;
        expect_status(result, Code::AlreadyExists, &[]);
    }
    for tmpl in [
        template("t", "other", r#"{"a": 1}"#),
        template("t", "g", r#"{"a": "1"}"#),
        template("t-list", "g", r#"{"l": [2, 1]}"#),
        template("t-list", "g", r#"{"l": [1, 2, 2]}"#),
    ] {
        let result = client.put_model_template(put_template(tmpl, false)).await;
        expect_status(result, Code::AlreadyExists, &[]);
    }
    for m in [
        Model {
            model_class_name: "Other".to_owned(),
            ..model("m", "d", "t")
        },
        model("m", "d2", "t"),
        model("m", "d", "t2"),
    ] {
        let result = client.put_model(put_model(m, false)).await;
        expect_status(result, Code::AlreadyExists, &[]);
    }
    before
        .assert_unchanged(&mut client, "puts of different records under existing names")
        .await;
}

async fn ignore_existing_returns_stored_record_untouched(server: TestServer) {
    let mut client = server.client();
    let blob = client
        .put_data_blob(put_datablob(datablob("d", "g", r#"{"a": 1}"#), false))
        .await
        .unwrap()
        .into_inner()
        .datablob;
    calls::put_datablob(&mut client, "d2", "g", "{}").await;
    let tmpl = client
        .put_model_template(put_template(template("t", "g", r#"{"a": 1}"#), false))
        .await
        .unwrap()
        .into_inner()
        .model_template;
    calls::put_template(&mut client, "t2", "g", "{}").await;
    let stored_model = client
        .put_model(put_model(model("m", "d", "t"), false))
        .await
        .unwrap()
        .into_inner()
        .model;
    let before = Snapshot::take(&mut client).await;

    let response = client
        .put_data_blob(put_datablob(datablob("d", "other", r#"{"a": 2}"#), true))
        .await
        .unwrap()
        .into_inner();
    assert!(response.already_existed);
    assert_eq!(response.datablob, blob, "response carries the stored datablob");

    let response = client
        .put_model_template(put_template(template("t", "other", "{}"), true))
        .await
        .unwrap()
        .into_inner();
    assert!(response.already_existed);
    assert_eq!(
        response.model_template, tmpl,
        "response carries the stored template"
    );

    let different = Model {
        model_class_name: "Other".to_owned(),
        ..model("m", "d2", "t2")
    };
    let response = client
        .put_model(put_model(different, true))
        .await
        .unwrap()
        .into_inner();
    assert!(response.already_existed);
    assert_eq!(response.model, stored_model, "response carries the stored model");

    before.assert_unchanged(&mut client, "ignore_existing puts").await;

    // ignore_existing with an identical record: already_existed too.
    let response = client
        .put_data_blob(put_datablob(datablob("d", "g", r#"{"a": 1}"#), true))
        .await
        .unwrap()
        .into_inner();
    assert!(response.already_existed);
    assert_eq!(response.datablob, blob);
}

async fn ignore_existing_stores_new_records(server: TestServer) {
    let mut client = server.client();
    let response = client
        .put_data_blob(put_datablob(datablob("d", "g", "{}"), true))
        .await
        .unwrap()
        .into_inner();
    assert!(!response.already_existed);
    let response = client
        .put_model_template(put_template(template("t", "g", "{}"), true))
        .await
        .unwrap()
        .into_inner();
    assert!(!response.already_existed);
    let response = client
        .put_model(put_model(model("m", "d", "t"), true))
        .await
        .unwrap()
        .into_inner();
    assert!(!response.already_existed);
    assert_eq!(list_all_models(&mut client, None, 0).await.len(), 1);
    assert_eq!(list_all_datablobs(&mut client, by_name("d"), 0).await.len(), 1);
    assert_eq!(list_all_templates(&mut client, by_name("t"), 0).await.len(), 1);
}

async fn model_with_missing_references_is_failed_precondition(server: TestServer) {
    let mut client = server.client();
    calls::put_datablob(&mut client, "present-data", "g", "{}").await;
    calls::put_template(&mut client, "present-tmpl", "g", "{}").await;
    let before = Snapshot::take(&mut client).await;

    let result = client
        .put_model(put_model(model("m", "absent-data", "present-tmpl"), false))
        .await;
    expect_status(result, Code::FailedPrecondition, &["absent-data"]);
    let result = client
        .put_model(put_model(model("m", "present-data", "absent-tmpl"), false))
        .await;
    expect_status(result, Code::FailedPrecondition, &["absent-tmpl"]);
    let result = client
        .put_model(put_model(model("m", "absent-data", "absent-tmpl"), true))
        .await;
    expect_status(result, Code::FailedPrecondition, &[]);
    before
        .assert_unchanged(&mut client, "puts of models with missing references")
        .await;
}

async fn server_sets_timestamps_and_ignores_input_ones(server: TestServer) {
    let mut client = server.client();
    let old = Some(Timestamp {
        seconds: 1_000,
        nanos: 5,
    });
    let mut blob = datablob("d", "g", "{}");
    blob.created_at = old;
    blob.last_modified_at = old;
    let first = client
        .put_data_blob(put_datablob(blob.clone(), false))
        .await
        .unwrap()
        .into_inner();
    let stored = first.datablob.expect("stored datablob");
    assert_recent(stored.created_at.as_ref(), "created_at");
    assert_recent(stored.last_modified_at.as_ref(), "last_modified_at");

    // Other input timestamps do not make the record different.
    blob.created_at = Some(Timestamp {
        seconds: 2_000,
        nanos: 0,
    });
    let again = client
        .put_data_blob(put_datablob(blob, false))
        .await
        .unwrap()
        .into_inner();
    assert!(again.already_existed, "timestamps are ignored on input");
    assert_eq!(again.datablob, Some(stored));

    let mut tmpl = template("t", "g", "{}");
    tmpl.created_at = old;
    let stored = client
        .put_model_template(put_template(tmpl, false))
        .await
        .unwrap()
        .into_inner()
        .model_template
        .expect("stored template");
    assert_recent(stored.created_at.as_ref(), "template created_at");

    let mut m = model("m", "d", "t");
    m.created_at = old;
    m.last_modified_at = old;
    let stored = client
        .put_model(put_model(m.clone(), false))
        .await
        .unwrap()
        .into_inner()
        .model
        .expect("stored model");
    assert_recent(stored.created_at.as_ref(), "model created_at");
    assert_recent(stored.last_modified_at.as_ref(), "model last_modified_at");
    m.last_modified_at = None;
    let again = client.put_model(put_model(m, false)).await.unwrap().into_inner();
    assert!(again.already_existed, "timestamps are ignored on input");
}

async fn model_last_modified_moves_forward_when_epochs_arrive(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let models = list_all_models(&mut client, Some(records::model_names(&["m"])), 0).await;
    let before = models[0].clone();
    // Leave room for a server that stores timestamps in whole seconds.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    calls::insert_epochs(&mut client, vec![epoch("m", 0, &[("loss", 1.0)])]).await;
    let after = list_all_models(&mut client, Some(records::model_names(&["m"])), 0).await[0].clone();
    assert!(
        ts(after.last_modified_at.as_ref()) > ts(before.last_modified_at.as_ref()),
        "last_modified_at did not move forward: {:?} -> {:?}",
        before.last_modified_at,
        after.last_modified_at
    );
    assert_eq!(after.created_at, before.created_at, "created_at must not change");

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let response = client
        .stream_epochs(futures::stream::iter(vec![records::insert(vec![epoch(
            "m",
            1,
            &[("loss", 0.5)],
        )])]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.inserted, 1);
    let later = list_all_models(&mut client, Some(records::model_names(&["m"])), 0).await[0].clone();
    assert!(
        ts(later.last_modified_at.as_ref()) > ts(after.last_modified_at.as_ref()),
        "last_modified_at did not move forward on StreamEpochs"
    );

    // Re-putting the model after epochs arrived is still identical.
    let again = client
        .put_model(put_model(model("m", "m-data", "m-tmpl"), false))
        .await
        .unwrap()
        .into_inner();
    assert!(again.already_existed);
}
