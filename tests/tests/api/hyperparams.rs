//! Hyperparameters JSON: nested objects round-trip with integers as
//! integers and floats as floats; empty input means `{}`.

use mlmeta_proto::MetricDirection;
use mlmeta_tests::calls::{self, json, list_all_datablobs, list_all_templates};
use mlmeta_tests::records::{self, datablob, epoch, put_datablob, put_template, template};
use mlmeta_tests::{TestServer, backend_tests};
use serde_json::Value;

backend_tests! {
    nested_hyperparams_round_trip_with_number_types,
    empty_hyperparams_mean_an_empty_object,
    large_integers_round_trip_exactly,
    integers_beyond_64_bits_round_trip_exactly,
    exponent_floats_stay_floats,
    string_escapes_round_trip,
    deeply_nested_hyperparams_round_trip,
}

const EXAMPLE: &str = r#"{"lr": 0.001, "layers": 3, "x": 1.0, "nested": {"a": [1, 2.5, "s", null, true]}}"#;

/// Asserts `returned` equals `sent` as JSON, and that the example's
/// numbers kept their types.
#[track_caller]
fn assert_example(returned: &str, via: &str) {
    let value = json(returned);
    assert_eq!(value, json(EXAMPLE), "hyperparams via {via}: {returned}");
    assert!(value["x"].is_f64(), "1.0 must stay a float via {via}: {returned}");
    assert!(value["lr"].is_f64(), "0.001 must stay a float via {via}");
    assert!(
        value["layers"].is_u64() || value["layers"].is_i64(),
        "3 must stay an integer via {via}: {returned}"
    );
    let list = &value["nested"]["a"];
    assert!(
        list[0].is_u64() && list[1].is_f64(),
        "[1, 2.5] types via {via}: {returned}"
    );
}

async fn nested_hyperparams_round_trip_with_number_types(server: TestServer) {
    let mut client = server.client();
    let response = client
        .put_data_blob(put_datablob(datablob("d", "g", EXAMPLE), false))
        .await
        .unwrap()
        .into_inner();
    assert_example(&response.datablob.unwrap().hyperparams_json, "PutDataBlob");
    let response = client
        .put_model_template(put_template(template("t", "g", EXAMPLE), false))
        .await
        .unwrap()
        .into_inner();
    assert_example(
        &response.model_template.unwrap().hyperparams_json,
        "PutModelTemplate",
    );
    assert_example(
        &list_all_datablobs(&mut client, None, 0).await[0].hyperparams_json,
        "ListDataBlobs",
    );
    assert_example(
        &list_all_templates(&mut client, None, 0).await[0].hyperparams_json,
        "ListModelTemplates",
    );

    calls::put_model(&mut client, "m", "d", "t").await;
    calls::insert_epochs(&mut client, vec![epoch("m", 1, &[("acc", 0.5)])]).await;
    let best = client
        .get_best_model(records::best("acc", MetricDirection::Max, 1))
        .await
        .unwrap()
        .into_inner();
    let first = &best.models[0];
    assert_example(
        &first.datablob.as_ref().unwrap().hyperparams_json,
        "GetBestModel datablob",
    );
    assert_example(
        &first.model_template.as_ref().unwrap().hyperparams_json,
        "GetBestModel model_template",
    );
    let board =
        calls::full_leaderboard(&mut client, records::leaderboard("acc", MetricDirection::Max, 0)).await;
    assert_example(
        &board[0].datablob.as_ref().unwrap().hyperparams_json,
        "GetLeaderboard datablob",
    );
    assert_example(
        &board[0].model_template.as_ref().unwrap().hyperparams_json,
        "GetLeaderboard model_template",
    );
}

async fn empty_hyperparams_mean_an_empty_object(server: TestServer) {
    let mut client = server.client();
    let response = client
        .put_data_blob(put_datablob(datablob("d", "g", ""), false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        json(&response.datablob.unwrap().hyperparams_json),
        serde_json::json!({})
    );
    let response = client
        .put_model_template(put_template(template("t", "g", ""), false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        json(&response.model_template.unwrap().hyperparams_json),
        serde_json::json!({})
    );

    // "" and "{}" are the same record.
    let again = client
        .put_data_blob(put_datablob(datablob("d", "g", "{}"), false))
        .await
        .unwrap()
        .into_inner();
    assert!(
        again.already_existed,
        "\"\" and \"{{}}\" are identical hyperparams"
    );
    let again = client
        .put_model_template(put_template(template("t", "g", " { } "), false))
        .await
        .unwrap()
        .into_inner();
    assert!(
        again.already_existed,
        "\"\" and \"{{ }}\" are identical hyperparams"
    );
    let listed = list_all_datablobs(&mut client, None, 0).await;
    assert_eq!(json(&listed[0].hyperparams_json), serde_json::json!({}));
}

/// Round-trips `text` through a datablob and returns what came back.
async fn round_trip(server: &TestServer, name: &str, text: &str) -> String {
    let mut client = server.client();
    let response = client
        .put_data_blob(put_datablob(datablob(name, "g", text), false))
        .await
        .unwrap_or_else(|s| panic!("PutDataBlob with hyperparams {text}: {s}"))
        .into_inner();
    let listed = list_all_datablobs(
        &mut client,
        Some(mlmeta_proto::GroupedFilter {
            names: vec![name.to_owned()],
            group_names: vec![],
            ..Default::default()
        }),
        0,
    )
    .await;
    assert_eq!(
        json(&response.datablob.unwrap().hyperparams_json),
        json(&listed[0].hyperparams_json),
        "PutDataBlob and ListDataBlobs disagree"
    );
    listed[0].hyperparams_json.clone()
}

async fn large_integers_round_trip_exactly(server: TestServer) {
    let sent = r#"{"above_2_53": 9007199254740993, "i64_min": -9223372036854775808, "i64_max": 9223372036854775807, "u64_max": 18446744073709551615, "zero": 0, "neg": -7}"#;
    let returned = round_trip(&server, "d", sent).await;
    let value = json(&returned);
    assert_eq!(value, json(sent), "integers changed: {returned}");
    assert_eq!(value["above_2_53"].as_u64(), Some(9_007_199_254_740_993));
    assert_eq!(value["i64_min"].as_i64(), Some(i64::MIN));
    assert_eq!(value["u64_max"].as_u64(), Some(u64::MAX));
}

async fn exponent_floats_stay_floats(server: TestServer) {
    let sent = r#"{"e": 1e2, "big": 1.5e300, "tiny": 2.5e-10, "neg": -3.0, "third": 0.3333333333333333, "f64_max": 1.7976931348623157e308}"#;
    let returned = round_trip(&server, "d", sent).await;
    let value = json(&returned);
    for key in ["e", "big", "tiny", "neg", "third", "f64_max"] {
        assert!(value[key].is_f64(), "{key} must stay a float: {returned}");
        assert_eq!(
            value[key].as_f64().map(f64::to_bits),
            json(sent)[key].as_f64().map(f64::to_bits),
            "{key} changed value: {returned}"
        );
    }
}

async fn string_escapes_round_trip(server: TestServer) {
    let sent = r#"{"quote": "a\"b", "backslash": "c\\d", "newline": "e\nf", "nul": "g\u0000h", "unicode": "模型-ß-😀", "escaped": "\u00e9\ud83d\ude00", "": "empty key"}"#;
    let returned = round_trip(&server, "d", sent).await;
    assert_eq!(json(&returned), json(sent), "strings changed: {returned}");
    assert_eq!(json(&returned)["nul"], Value::String("g\0h".to_owned()));
}

async fn deeply_nested_hyperparams_round_trip(server: TestServer) {
    let mut text = String::from("1");
    for depth in 0..60 {
        text = if depth % 2 == 0 {
            format!(r#"{{"k{depth}": {text}, "f": {depth}.5}}"#)
        } else {
            format!(r#"[{text}, {depth}, "s{depth}", null, false]"#)
        };
    }
    // Depth 60 ends on an array; wrap it in an object.
    let sent = format!(r#"{{"root": {text}}}"#);
    let returned = round_trip(&server, "d", &sent).await;
    assert_eq!(json(&returned), json(&sent), "nested value changed");
}

async fn integers_beyond_64_bits_round_trip_exactly(server: TestServer) {
    // Valid JSON integers that fit neither i64 nor u64 (Python's json
    // writes such ints); they must not turn into (rounded) floats.
    let sent = r#"{"u64_max_plus_one": 18446744073709551616, "huge": 123456789012345678901234567890, "neg_huge": -98765432109876543210}"#;
    let returned = round_trip(&server, "d", sent).await;
    for (key, digits) in [
        ("u64_max_plus_one", "18446744073709551616"),
        ("huge", "123456789012345678901234567890"),
        ("neg_huge", "-98765432109876543210"),
    ] {
        assert!(
            returned.contains(digits),
            "{key}: integer {digits} not returned as written: {returned}"
        );
    }
}
