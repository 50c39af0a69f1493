//! Validation: INVALID_ARGUMENT naming the field, and nothing written.
//! Names (1..=255 bytes, no control characters), hyperparams (a JSON
//! object of at most 65,536 bytes), epochs, metrics, filter sizes.

use mlmeta_proto::{
    Epoch, GetBestModelRequest, GroupedFilter, ListDataBlobsRequest, ListEpochsRequest, ListModelsRequest,
    MetricDirection, Model, ModelFilter,
};
use mlmeta_tests::calls::{self, Client, Snapshot, expect_status, insert_epochs};
use mlmeta_tests::records::{
    self, datablob, epoch, insert, model, put_datablob, put_model, put_template, template,
};
use mlmeta_tests::{TestServer, backend_tests};
use tonic::{Code, Status};

backend_tests! {
    empty_names_are_invalid,
    names_are_limited_to_255_bytes,
    control_characters_in_names_are_invalid,
    c1_control_characters_in_names_are_invalid,
    invalid_hyperparams_are_rejected,
    repeated_hyperparams_keys_and_bare_nan_are_explained,
    hyperparams_are_limited_to_65536_bytes,
    one_invalid_epoch_rejects_the_whole_request,
    metrics_per_epoch_are_limited_to_1024,
    filters_are_limited_to_1000_values,
}

/// A field that holds a name.
#[derive(Debug, Clone, Copy)]
enum Field {
    DataBlobName,
    DataBlobGroup,
    TemplateName,
    TemplateGroup,
    ModelName,
    ModelClass,
    EpochModelName,
    MetricName,
}

const FIELDS: [Field; 8] = [
    Field::DataBlobName,
    Field::DataBlobGroup,
    Field::TemplateName,
    Field::TemplateGroup,
    Field::ModelName,
    Field::ModelClass,
    Field::EpochModelName,
    Field::MetricName,
];

impl Field {
    /// What the error message must mention.
    fn mention(self) -> &'static str {
        match self {
            Field::DataBlobName | Field::TemplateName | Field::ModelName => "name",
            Field::DataBlobGroup | Field::TemplateGroup => "group_name",
            Field::ModelClass => "model_class_name",
            Field::EpochModelName => "model_name",
            Field::MetricName => "metric",
        }
    }
}

/// Writes one record with `value` in `field` (other fields valid and
/// unique per `n`). Needs `seed` first.
async fn write_with(client: &mut Client, field: Field, value: &str, n: usize) -> Result<(), Status> {
    let unique = format!("rec{n}");
    match field {
        Field::DataBlobName => client
            .put_data_blob(put_datablob(datablob(value, "g", "{}"), false))
            .await
            .map(drop),
        Field::DataBlobGroup => client
            .put_data_blob(put_datablob(datablob(&unique, value, "{}"), false))
            .await
            .map(drop),
        Field::TemplateName => client
            .put_model_template(put_template(template(value, "g", "{}"), false))
            .await
            .map(drop),
        Field::TemplateGroup => client
            .put_model_template(put_template(template(&unique, value, "{}"), false))
            .await
            .map(drop),
        Field::ModelName => client
            .put_model(put_model(model(value, "base-data", "base-tmpl"), false))
            .await
            .map(drop),
        Field::ModelClass => {
            let m = Model {
                model_class_name: value.to_owned(),
                ..model(&unique, "base-data", "base-tmpl")
            };
            client.put_model(put_model(m, false)).await.map(drop)
        }
        Field::EpochModelName => {
            // Valid names must name an existing model; invalid ones cannot.
            let _ = client
                .put_model(put_model(model(value, "base-data", "base-tmpl"), true))
                .await;
            client
                .insert_epochs(insert(vec![
                    epoch("base", n as i64, &[("loss", 1.0)]),
                    epoch(value, 0, &[("loss", 1.0)]),
                ]))
                .await
                .map(drop)
        }
        Field::MetricName => client
            .insert_epochs(insert(vec![
                epoch("base", n as i64, &[("loss", 1.0)]),
                epoch("base", n as i64 + 1_000_000, &[(value, 1.0)]),
            ]))
            .await
            .map(drop),
    }
}

/// Model `base` with datablob `base-data` and template `base-tmpl`.
async fn seed(client: &mut Client) {
    calls::put_datablob(client, "base-data", "g", "{}").await;
    calls::put_template(client, "base-tmpl", "g", "{}").await;
    calls::put_model(client, "base", "base-data", "base-tmpl").await;
}

/// Asserts that writing each of `values` into each field is
/// INVALID_ARGUMENT naming the field, and changes nothing.
async fn assert_rejected_everywhere(client: &mut Client, values: &[String]) {
    let mut n = 0;
    for field in FIELDS {
        for value in values {
            n += 1;
            let before = Snapshot::take(client).await;
            let result = write_with(client, field, value, n).await;
            let context = format!("{field:?} = {value:?}");
            match result {
                Ok(()) => panic!("{context} was accepted"),
                Err(status) => {
                    assert_eq!(status.code(), Code::InvalidArgument, "{context}: {status}");
                    let message = status.message().to_ascii_lowercase();
                    assert!(
                        message.contains(field.mention()),
                        "{context}: message {:?} does not mention {:?}",
                        status.message(),
                        field.mention()
                    );
                }
            }
            before.assert_unchanged(client, &context).await;
        }
    }
}

/// Asserts that writing each of `values` into each field succeeds.
async fn assert_accepted_everywhere(client: &mut Client, values: &[String]) {
    let mut n = 1_000;
    for field in FIELDS {
        for value in values {
            n += 1;
            if let Err(status) = write_with(client, field, value, n).await {
                panic!(
                    "{field:?} = {value:?} ({} bytes) was rejected: {status}",
                    value.len()
                );
            }
        }
    }
}

async fn empty_names_are_invalid(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    assert_rejected_everywhere(&mut client, &[String::new()]).await;
}

async fn names_are_limited_to_255_bytes(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    let too_long = vec![
        "n".repeat(256),
        "模".repeat(86), // 258 bytes, 86 characters
        "😀".repeat(64), // 256 bytes, 64 characters
        "x".repeat(10_000),
    ];
    assert_rejected_everywhere(&mut client, &too_long).await;
    // 255 bytes: each value must be unique per field.
    let longest = vec!["a".repeat(255), "模".repeat(85), format!("{}b", "😀".repeat(63))];
    assert_accepted_everywhere(&mut client, &longest).await;
    let stored = calls::list_all_datablobs(&mut client, None, 0).await;
    assert!(
        stored.iter().any(|d| d.name == "a".repeat(255)),
        "255-byte name stored"
    );
    assert!(
        stored.iter().any(|d| d.name == "模".repeat(85)),
        "255-byte UTF-8 name stored"
    );
}

async fn control_characters_in_names_are_invalid(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    let values: Vec<String> = ["a\nb", "a\0b", "a\x7fb", "\tab", "ab\r", "a\x1bb", "\x01", "ab\n"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_rejected_everywhere(&mut client, &values).await;
}

async fn c1_control_characters_in_names_are_invalid(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    // U+0080..U+009F are control characters (Unicode category Cc) too.
    let values = vec!["a\u{85}b".to_owned(), "\u{9b}x".to_owned()];
    assert_rejected_everywhere(&mut client, &values).await;
}

async fn invalid_hyperparams_are_rejected(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    let before = Snapshot::take(&mut client).await;
    for text in [
        "not json",
        "{",
        "{\"a\": }",
        "[1]",
        "3",
        "\"s\"",
        "null",
        "true",
        "{\"a\": 1} trailing",
        "{'a': 1}",
        "{\"a\": NaN}",
    ] {
        let result = client
            .put_data_blob(put_datablob(datablob("new", "g", text), false))
            .await;
        expect_status(result, Code::InvalidArgument, &["hyperparams"]);
        let result = client
            .put_model_template(put_template(template("new", "g", text), false))
            .await;
        expect_status(result, Code::InvalidArgument, &["hyperparams"]);
        // Also against an existing name, with ignore_existing.
        let result = client
            .put_data_blob(put_datablob(datablob("base-data", "g", text), true))
            .await;
        expect_status(result, Code::InvalidArgument, &["hyperparams"]);
        before
            .assert_unchanged(&mut client, &format!("hyperparams {text:?}"))
            .await;
    }
}

/// `{"a":1,"a":2}` would silently keep the last value; it is refused
/// naming the key (nested keys by their dotted path), and a bare NaN says
/// how to write one instead of "expected value".
async fn repeated_hyperparams_keys_and_bare_nan_are_explained(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    let before = Snapshot::take(&mut client).await;
    for (text, needles) in [
        (
            r#"{"a": 1, "a": 2}"#,
            &["datablob.hyperparams_json", "key \"a\" appears twice"][..],
        ),
        (
            r#"{"opt": {"lr": 0.1, "b": 1, "lr": 0.01}}"#,
            &["key \"opt.lr\" appears twice"],
        ),
        (r#"{"a": NaN}"#, &["json has no nan", "write it as a string"]),
        (r#"{"a": -Infinity}"#, &["json has no -infinity"]),
    ] {
        let result = client
            .put_data_blob(put_datablob(datablob("new", "g", text), false))
            .await;
        expect_status(result, Code::InvalidArgument, needles);
        let result = client
            .put_model_template(put_template(template("new", "g", text), false))
            .await;
        expect_status(
            result,
            Code::InvalidArgument,
            &["model_template.hyperparams_json"],
        );
    }
    before
        .assert_unchanged(&mut client, "repeated keys and bare NaN")
        .await;
    // The same key in different objects is fine.
    client
        .put_data_blob(put_datablob(
            datablob("new", "g", r#"{"a": {"a": 1}, "b": {"a": 2}}"#),
            false,
        ))
        .await
        .unwrap();
}

/// A JSON object of exactly `len` bytes: `{"k":"xxx…"}`.
fn object_of_len(len: usize) -> String {
    let text = format!("{{\"k\":\"{}\"}}", "x".repeat(len - 8));
    assert_eq!(text.len(), len);
    text
}

async fn hyperparams_are_limited_to_65536_bytes(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    let before = Snapshot::take(&mut client).await;
    for len in [65_537, 100_000, 1_000_000] {
        let text = object_of_len(len);
        let result = client
            .put_data_blob(put_datablob(datablob("big", "g", &text), false))
            .await;
        expect_status(result, Code::InvalidArgument, &["hyperparams"]);
        let result = client
            .put_model_template(put_template(template("big", "g", &text), false))
            .await;
        expect_status(result, Code::InvalidArgument, &["hyperparams"]);
    }
    before
        .assert_unchanged(&mut client, "oversized hyperparams")
        .await;

    let text = object_of_len(65_536);
    let stored = client
        .put_data_blob(put_datablob(datablob("big", "g", &text), false))
        .await
        .unwrap_or_else(|s| panic!("65,536-byte hyperparams rejected: {s}"))
        .into_inner();
    assert_eq!(
        calls::json(&stored.datablob.unwrap().hyperparams_json),
        calls::json(&text)
    );
    client
        .put_model_template(put_template(template("big", "g", &text), false))
        .await
        .unwrap_or_else(|s| panic!("65,536-byte template hyperparams rejected: {s}"));
}

async fn one_invalid_epoch_rejects_the_whole_request(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    insert_epochs(&mut client, vec![epoch("base", 0, &[("loss", 1.0)])]).await;
    let valid = || epoch("base", 1, &[("loss", 0.5)]);
    let with = |f: &dyn Fn(&mut Epoch)| {
        let mut e = epoch("base", 2, &[("loss", 0.25)]);
        f(&mut e);
        e
    };
    let cases: Vec<(Epoch, &str)> = vec![
        (with(&|e| e.epoch_num = -1), "epoch_num"),
        (with(&|e| e.epoch_num = i64::MIN), "epoch_num"),
        (with(&|e| e.steps_per_epoch = Some(-1)), "steps_per_epoch"),
        (
            with(&|e| e.validation_steps_per_epoch = Some(-5)),
            "validation_steps_per_epoch",
        ),
        (
            with(&|e| {
                e.metrics.insert(String::new(), 1.0);
            }),
            "metric",
        ),
        (
            with(&|e| {
                e.metrics.insert("m".repeat(256), 1.0);
            }),
            "metric",
        ),
        (
            with(&|e| {
                e.metrics.insert("a\nb".to_owned(), 1.0);
            }),
            "metric",
        ),
        (with(&|e| e.model_name = String::new()), "model_name"),
    ];
    let before = Snapshot::take(&mut client).await;
    for (bad, field) in cases {
        // The invalid epoch last, first, and alone.
        for epochs in [
            vec![valid(), bad.clone()],
            vec![bad.clone(), valid()],
            vec![bad.clone()],
        ] {
            let result = client.insert_epochs(insert(epochs)).await;
            expect_status(result, Code::InvalidArgument, &[field]);
            before
                .assert_unchanged(&mut client, &format!("InsertEpochs with {bad:?}"))
                .await;
        }
        let result = client
            .stream_epochs(futures::stream::iter(vec![insert(vec![valid(), bad.clone()])]))
            .await;
        expect_status(result, Code::InvalidArgument, &[field]);
        before
            .assert_unchanged(&mut client, &format!("StreamEpochs with {bad:?}"))
            .await;
    }
}

async fn metrics_per_epoch_are_limited_to_1024(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    let many = |count: usize, num: i64| {
        let mut e = epoch("base", num, &[]);
        e.metrics = (0..count).map(|i| (format!("metric{i:04}"), i as f64)).collect();
        e
    };
    let before = Snapshot::take(&mut client).await;
    let result = client.insert_epochs(insert(vec![many(1_025, 0)])).await;
    expect_status(result, Code::InvalidArgument, &["metric"]);
    before
        .assert_unchanged(&mut client, "an epoch with 1,025 metrics")
        .await;
    assert_eq!(insert_epochs(&mut client, vec![many(1_024, 0)]).await, (1, 0));
    let stored = calls::epochs_of(&mut client, &["base"]).await;
    assert_eq!(stored[0].metrics.len(), 1_024);
}

/// Asserts the message names the limit of 1,000 values.
#[track_caller]
fn names_thousand(status: &Status) {
    let message = status.message();
    assert!(
        message.contains("1000") || message.contains("1,000") || message.contains("1_000"),
        "message does not name the limit of 1,000: {message:?}"
    );
}

async fn filters_are_limited_to_1000_values(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    insert_epochs(&mut client, vec![epoch("base", 0, &[("acc", 1.0)])]).await;
    let values = |count: usize| -> Vec<String> {
        let mut v: Vec<String> = (0..count - 1).map(|i| format!("v{i}")).collect();
        v.push("base".to_owned());
        v
    };
    for (count, ok) in [(1_000, true), (1_001, false)] {
        let names = values(count);
        let result = client
            .list_data_blobs(ListDataBlobsRequest {
                filter: Some(GroupedFilter {
                    names: vec![],
                    group_names: names.clone(),
                    ..Default::default()
                }),
                ..ListDataBlobsRequest::default()
            })
            .await;
        if ok {
            result.unwrap_or_else(|s| panic!("1,000 group names rejected: {s}"));
        } else {
            names_thousand(&expect_status(result, Code::InvalidArgument, &[]));
        }
        let result = client
            .list_models(ListModelsRequest {
                filter: Some(ModelFilter {
                    model_template_names: names.clone(),
                    ..ModelFilter::default()
                }),
                ..ListModelsRequest::default()
            })
            .await;
        if ok {
            result.unwrap_or_else(|s| panic!("1,000 template names rejected: {s}"));
        } else {
            names_thousand(&expect_status(result, Code::InvalidArgument, &[]));
        }
        let result = client
            .list_epochs(ListEpochsRequest {
                model_names: names.clone(),
                ..ListEpochsRequest::default()
            })
            .await;
        if ok {
            // Within the limit, the names are looked up: the made-up ones
            // do not exist.
            expect_status(result, Code::NotFound, &["does not exist"]);
        } else {
            names_thousand(&expect_status(result, Code::InvalidArgument, &[]));
        }
        let result = client
            .get_best_model(GetBestModelRequest {
                filter: Some(ModelFilter {
                    names: names.clone(),
                    ..ModelFilter::default()
                }),
                ..records::best("acc", MetricDirection::Max, 1)
            })
            .await;
        if ok {
            assert_eq!(result.unwrap().into_inner().models.len(), 1);
        } else {
            names_thousand(&expect_status(result, Code::InvalidArgument, &[]));
        }
    }
}
