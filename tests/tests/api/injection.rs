//! Injection: strings built to break out of SQL, paths or placeholders
//! (quotes, `$`, `..`, SQL fragments, NUL bytes, strings at and over the
//! limits) either fail with INVALID_ARGUMENT naming the field and the rule,
//! or are stored and read back exactly; they never change what a query
//! does. Complements `hostile.rs` (round trips of quoting characters) and
//! `validation.rs` (rejected writes).
//!
//! The NUL rule, the same on both backends (PostgreSQL text cannot hold
//! NUL, SQLite could): NUL is a control character, so it is
//! INVALID_ARGUMENT in every name, group name, class name, metric name and
//! filter value; inside hyperparams JSON it travels escaped (`\u0000`) and
//! round-trips exactly, in keys and values, at any depth.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mlmeta_proto::{
    Epoch, GetBestModelRequest, GetCurrentEpochRequest, GetLeaderboardRequest, GroupedFilter,
    ListDataBlobsRequest, ListEpochsRequest, ListModelTemplatesRequest, ListModelsRequest, MetricDirection,
    Model, ModelFilter,
};
use mlmeta_tests::calls::{
    self, Client, Snapshot, expect_status, insert_epochs, json, list_all_datablobs, list_all_epochs,
    list_all_models, list_all_templates,
};
use mlmeta_tests::records::{
    best, datablob, epoch, insert, leaderboard, model, put_datablob, put_model, put_template, template,
};
use mlmeta_tests::{TestServer, backend_tests};
use serde_json::{Value, json};
use tonic::{Code, Status};

backend_tests! {
    injection_strings_round_trip_and_match_literally,
    nul_and_overlong_strings_are_invalid_wherever_a_name_is_read,
    nul_and_overlong_strings_are_invalid_wherever_a_name_is_written,
    nul_in_hyperparams_round_trips_escaped,
    hyperparams_keys_at_and_over_the_limit,
    tampered_page_tokens_are_invalid_or_literal,
    extreme_epoch_ranges,
    where_literals_and_keys_match_literally,
}

/// Strings aimed at SQL, shell and path handling (those in `hostile.rs`
/// aside), plus the longest allowed names made of quoting characters.
fn injection_strings() -> Vec<String> {
    let mut strings: Vec<String> = [
        "x' OR '1'='1",
        "' OR 1=1 --",
        "\" OR \"\"=\"",
        "1; SELECT 1",
        "'); DELETE FROM components; --",
        "' UNION SELECT name FROM models --",
        "..",
        ".",
        "../../etc/passwd",
        "..\\..\\windows",
        "$",
        "$$",
        "$tag$ x $tag$",
        "${HOME}",
        "$(id)",
        "%00",
        "\\0",
        "\\x00",
        "E'\\x00'",
        "\\u0000",
        "*",
        "'",
        "\"",
        "''",
        ";",
        "--",
        "\u{2028}line\u{2029}separators",
        "\u{feff}bom",
        "\u{202e}rtl",
        "\u{fffd}",
        "\u{10ffff}",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    strings.push("'".repeat(255));
    strings.push("$".repeat(255));
    strings.push(format!("{}'", "模".repeat(84))); // 253 bytes
    strings
}

/// Hyperparams with `s` as a key and a value at several depths, and NUL
/// in a key and a value.
fn hostile_hyperparams(s: &str) -> Value {
    json!({
        s: s,
        "nested": { s: { "..": [s, { "$": s }] } },
        "nul\u{0}key": "nul\u{0}value",
    })
}

/// Benign records that a query broken by an injected string would also
/// return or destroy.
const DECOYS: [&str; 3] = ["decoy-a", "decoy-b", "zz-decoy"];

async fn put_everything_named(client: &mut Client, s: &str, group: &str) {
    let hyperparams = hostile_hyperparams(s).to_string();
    let blob = client
        .put_data_blob(put_datablob(datablob(s, group, &hyperparams), false))
        .await
        .unwrap_or_else(|e| panic!("PutDataBlob {s:?}: {e}"))
        .into_inner()
        .datablob
        .unwrap();
    assert_eq!((blob.name.as_str(), blob.group_name.as_str()), (s, group));
    assert_eq!(json(&blob.hyperparams_json), hostile_hyperparams(s));
    client
        .put_model_template(put_template(template(s, group, &hyperparams), false))
        .await
        .unwrap_or_else(|e| panic!("PutModelTemplate {s:?}: {e}"));
    let m = Model {
        model_class_name: s.to_owned(),
        ..model(s, s, s)
    };
    let stored = client
        .put_model(put_model(m, false))
        .await
        .unwrap_or_else(|e| panic!("PutModel {s:?}: {e}"))
        .into_inner()
        .model
        .unwrap();
    assert_eq!(
        [
            &stored.name,
            &stored.model_class_name,
            &stored.datablob_name,
            &stored.model_template_name
        ],
        [s; 4]
    );
    insert_epochs(
        client,
        vec![
            epoch(s, 0, &[(s, 0.25), ("plain", 1.0)]),
            epoch(s, 1, &[(s, 0.75)]),
        ],
    )
    .await;
}

fn names_of<T>(rows: &[T], name: impl Fn(&T) -> &str) -> Vec<String> {
    rows.iter().map(|row| name(row).to_owned()).collect()
}

async fn injection_strings_round_trip_and_match_literally(server: TestServer) {
    let mut client = server.client();
    for decoy in DECOYS {
        put_everything_named(&mut client, decoy, "decoys").await;
    }
    let hostile = injection_strings();
    for s in &hostile {
        put_everything_named(&mut client, s, s).await;
    }

    // Nothing dropped, nothing extra: every name once, in byte order.
    let mut all: Vec<String> = hostile.iter().cloned().chain(DECOYS.map(String::from)).collect();
    all.sort();
    let blobs = list_all_datablobs(&mut client, None, 7).await;
    assert_eq!(names_of(&blobs, |d| &d.name), all);
    let templates = list_all_templates(&mut client, None, 7).await;
    assert_eq!(names_of(&templates, |t| &t.name), all);
    let models = list_all_models(&mut client, None, 7).await;
    assert_eq!(names_of(&models, |m| &m.name), all);
    let epochs = list_all_epochs(
        &mut client,
        ListEpochsRequest {
            page_size: 7,
            ..ListEpochsRequest::default()
        },
    )
    .await;
    assert_eq!(epochs.len(), 2 * all.len(), "epochs stored");
    for (blob, template) in blobs.iter().zip(&templates) {
        let expected = hostile_hyperparams(&blob.name);
        assert_eq!(json(&blob.hyperparams_json), expected, "{:?}", blob.name);
        assert_eq!(json(&template.hyperparams_json), expected, "{:?}", template.name);
    }

    for s in &hostile {
        let only = vec![s.clone()];
        let got = list_all_datablobs(
            &mut client,
            Some(GroupedFilter {
                names: only.clone(),
                group_names: vec![],
                ..Default::default()
            }),
            0,
        )
        .await;
        assert_eq!(names_of(&got, |d| &d.name), only, "datablob names [{s:?}]");
        let got = list_all_templates(
            &mut client,
            Some(GroupedFilter {
                names: vec![],
                group_names: only.clone(),
                ..Default::default()
            }),
            0,
        )
        .await;
        assert_eq!(names_of(&got, |t| &t.name), only, "template group_names [{s:?}]");
        for filter in [
            ModelFilter {
                names: only.clone(),
                ..ModelFilter::default()
            },
            ModelFilter {
                datablob_names: only.clone(),
                ..ModelFilter::default()
            },
            ModelFilter {
                datablob_group_names: only.clone(),
                ..ModelFilter::default()
            },
            ModelFilter {
                model_template_names: only.clone(),
                ..ModelFilter::default()
            },
            ModelFilter {
                model_template_group_names: only.clone(),
                ..ModelFilter::default()
            },
        ] {
            let got = list_all_models(&mut client, Some(filter.clone()), 0).await;
            assert_eq!(names_of(&got, |m| &m.name), only, "models with {filter:?}");
        }
        let got = list_all_epochs(
            &mut client,
            ListEpochsRequest {
                model_names: only.clone(),
                ..ListEpochsRequest::default()
            },
        )
        .await;
        assert_eq!(
            got.iter()
                .map(|e| (e.model_name.as_str(), e.epoch_num))
                .collect::<Vec<_>>(),
            [(s.as_str(), 0), (s.as_str(), 1)],
            "epochs of [{s:?}]"
        );
        assert_eq!(got[0].metrics.get(s), Some(&0.25), "metric named {s:?}");

        let current = client
            .get_current_epoch(GetCurrentEpochRequest {
                project: String::new(),
                model_name: s.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((current.current_epoch, current.model_exists), (1, true), "{s:?}");

        // The metric named `s` belongs to model `s` alone.
        let found = client
            .get_best_model(best(s, MetricDirection::Max, 1_000))
            .await
            .unwrap_or_else(|e| panic!("GetBestModel by metric {s:?}: {e}"))
            .into_inner()
            .models;
        assert_eq!(found.len(), 1, "best by metric {s:?}");
        assert_eq!(found[0].model.as_ref().unwrap().name, *s);
        assert_eq!(found[0].metric_value, 0.75);
        let rows = calls::full_leaderboard(&mut client, leaderboard(s, MetricDirection::Min, 0)).await;
        assert_eq!(rows.len(), 1, "leaderboard by metric {s:?}");
        assert_eq!(
            (rows[0].model.as_ref().unwrap().name.as_str(), rows[0].best_value),
            (s.as_str(), 0.25)
        );
    }

    // Strings that would match everything in a string-built query match
    // nothing here, since no record is named so.
    for pattern in ["' OR ''='", "%' OR name LIKE '%", "1' OR '1'='1' --", "*'"] {
        let filter = Some(GroupedFilter {
            names: vec![pattern.to_owned()],
            group_names: vec![],
            ..Default::default()
        });
        assert!(
            list_all_datablobs(&mut client, filter, 0).await.is_empty(),
            "{pattern:?}"
        );
        let result = client
            .get_best_model(best(pattern, MetricDirection::Max, 1))
            .await;
        expect_status(result, Code::NotFound, &["metric"]);
    }

    // Everything above was read-only: the counts are still exact.
    let snapshot = Snapshot::take(&mut client).await;
    assert_eq!(snapshot.datablobs.len(), all.len());
    assert_eq!(snapshot.templates.len(), all.len());
    assert_eq!(snapshot.models.len(), all.len());
    assert_eq!(snapshot.epochs.len(), 2 * all.len());
}

/// Strings that no name may be: NUL anywhere, and one byte over the limit.
fn invalid_names() -> Vec<(String, &'static str)> {
    vec![
        ("\0".to_owned(), "control characters"),
        ("a\0b".to_owned(), "control characters"),
        ("abc\0".to_owned(), "control characters"),
        ("\0' OR '1'='1".to_owned(), "control characters"),
        ("x".repeat(256), "at most 255 bytes, got 256"),
        ("'".repeat(256), "at most 255 bytes, got 256"),
        (format!("{}'", "模".repeat(85)), "at most 255 bytes, got 256"),
        ("$".repeat(100_000), "at most 255 bytes"),
    ]
}

/// Sets one list of a model filter.
type SetList = fn(&mut ModelFilter, Vec<String>);

/// Each read request with `value` in one of its name fields, with the
/// field path the error must name.
fn reads_with(value: &str) -> Vec<(Read, String)> {
    let v = || vec![value.to_owned()];
    let grouped = |names, group_names| {
        Some(GroupedFilter {
            names,
            group_names,
            ..Default::default()
        })
    };
    let model_filter = |f: SetList| {
        let mut filter = ModelFilter::default();
        f(&mut filter, v());
        Some(filter)
    };
    let mut reads = vec![
        (
            Read::DataBlobs(ListDataBlobsRequest {
                filter: grouped(v(), vec![]),
                ..ListDataBlobsRequest::default()
            }),
            "filter.names[0]".to_owned(),
        ),
        (
            Read::DataBlobs(ListDataBlobsRequest {
                filter: grouped(vec![], v()),
                ..ListDataBlobsRequest::default()
            }),
            "filter.group_names[0]".to_owned(),
        ),
        (
            Read::Templates(ListModelTemplatesRequest {
                filter: grouped(vec!["ok".to_owned(), value.to_owned()], vec![]),
                ..ListModelTemplatesRequest::default()
            }),
            "filter.names[1]".to_owned(),
        ),
        (
            Read::Templates(ListModelTemplatesRequest {
                filter: grouped(vec![], v()),
                ..ListModelTemplatesRequest::default()
            }),
            "filter.group_names[0]".to_owned(),
        ),
        (
            Read::Epochs(ListEpochsRequest {
                model_names: v(),
                ..ListEpochsRequest::default()
            }),
            "model_names[0]".to_owned(),
        ),
        (
            Read::CurrentEpoch(GetCurrentEpochRequest {
                project: String::new(),
                model_name: value.to_owned(),
            }),
            "model_name".to_owned(),
        ),
        (
            Read::Best(best(value, MetricDirection::Max, 1)),
            "metric_name".to_owned(),
        ),
        (
            Read::Leaderboard(leaderboard(value, MetricDirection::Min, 0)),
            "metric_name".to_owned(),
        ),
    ];
    let model_lists: [(SetList, &str); 5] = [
        (|f, v| f.names = v, "filter.names[0]"),
        (|f, v| f.datablob_names = v, "filter.datablob_names[0]"),
        (
            |f, v| f.datablob_group_names = v,
            "filter.datablob_group_names[0]",
        ),
        (
            |f, v| f.model_template_names = v,
            "filter.model_template_names[0]",
        ),
        (
            |f, v| f.model_template_group_names = v,
            "filter.model_template_group_names[0]",
        ),
    ];
    for (set, field) in model_lists {
        reads.push((
            Read::Models(ListModelsRequest {
                filter: model_filter(set),
                ..ListModelsRequest::default()
            }),
            field.to_owned(),
        ));
        reads.push((
            Read::Best(GetBestModelRequest {
                filter: model_filter(set),
                ..best("acc", MetricDirection::Max, 1)
            }),
            field.to_owned(),
        ));
        reads.push((
            Read::Leaderboard(GetLeaderboardRequest {
                filter: model_filter(set),
                ..leaderboard("acc", MetricDirection::Max, 0)
            }),
            field.to_owned(),
        ));
    }
    reads
}

/// A read request of any kind.
#[derive(Debug, Clone)]
enum Read {
    DataBlobs(ListDataBlobsRequest),
    Templates(ListModelTemplatesRequest),
    Models(ListModelsRequest),
    Epochs(ListEpochsRequest),
    CurrentEpoch(GetCurrentEpochRequest),
    Best(GetBestModelRequest),
    Leaderboard(GetLeaderboardRequest),
}

impl Read {
    /// Sends the request; returns how many rows it found.
    async fn send(self, client: &mut Client) -> Result<usize, Status> {
        Ok(match self {
            Read::DataBlobs(r) => client.list_data_blobs(r).await?.into_inner().datablobs.len(),
            Read::Templates(r) => client
                .list_model_templates(r)
                .await?
                .into_inner()
                .model_templates
                .len(),
            Read::Models(r) => client.list_models(r).await?.into_inner().models.len(),
            Read::Epochs(r) => client.list_epochs(r).await?.into_inner().epochs.len(),
            Read::CurrentEpoch(r) => {
                usize::from(client.get_current_epoch(r).await?.into_inner().model_exists)
            }
            Read::Best(r) => client.get_best_model(r).await?.into_inner().models.len(),
            Read::Leaderboard(r) => client.get_leaderboard(r).await?.into_inner().rows.len(),
        })
    }
}

async fn nul_and_overlong_strings_are_invalid_wherever_a_name_is_read(server: TestServer) {
    let mut client = server.client();
    // A record whose every name is the longest allowed, so that the
    // at-the-limit reads below have something to find.
    let longest = format!("{}'", "$".repeat(254));
    put_everything_named(&mut client, &longest, &longest).await;
    let before = Snapshot::take(&mut client).await;
    for (value, rule) in invalid_names() {
        for (read, field) in reads_with(&value) {
            let context = format!("{read:?}").chars().take(200).collect::<String>();
            let status = match read.send(&mut client).await {
                Ok(rows) => panic!("{context}: accepted ({rows} rows)"),
                Err(status) => status,
            };
            assert_eq!(status.code(), Code::InvalidArgument, "{context}: {status:?}");
            assert!(
                status.message().starts_with(&format!("{field}: ")) && status.message().contains(rule),
                "{context}: message {:?} does not name {field:?} and {rule:?}",
                status.message()
            );
        }
    }
    // At the limit every read is valid; name and metric lookups find the
    // record, and the filters of the best and leaderboard reads (on
    // metric `acc`, which nothing has) find nothing.
    for (read, field) in reads_with(&longest) {
        let context = format!("{field} in {read:?}");
        let is_acc = matches!(&read, Read::Best(r) if r.metric_name == "acc")
            || matches!(&read, Read::Leaderboard(r) if r.metric_name == "acc");
        match read.send(&mut client).await {
            Ok(rows) => assert_eq!(rows > 0, !is_acc, "{context}: {rows} rows"),
            Err(status) => {
                assert!(is_acc && status.code() == Code::NotFound, "{context}: {status:?}");
            }
        }
    }
    before.assert_unchanged(&mut client, "rejected reads").await;
}

async fn nul_and_overlong_strings_are_invalid_wherever_a_name_is_written(server: TestServer) {
    let mut client = server.client();
    calls::seed_model(&mut client, "base").await;
    insert_epochs(&mut client, vec![epoch("base", 0, &[("loss", 1.0)])]).await;
    let before = Snapshot::take(&mut client).await;
    for (value, rule) in invalid_names() {
        let check = |result: Result<(), Status>, field: &str| {
            let status = expect_status(result, Code::InvalidArgument, &[field, rule]);
            assert!(
                status.message().starts_with(field),
                "message {:?} does not start with {field:?}",
                status.message()
            );
        };
        let base_model = || model("new", "base-data", "base-tmpl");
        let puts: [(Model, &str); 4] = [
            (
                Model {
                    name: value.clone(),
                    ..base_model()
                },
                "model.name",
            ),
            (
                Model {
                    model_class_name: value.clone(),
                    ..base_model()
                },
                "model.model_class_name",
            ),
            (
                Model {
                    datablob_name: value.clone(),
                    ..base_model()
                },
                "model.datablob_name",
            ),
            (
                Model {
                    model_template_name: value.clone(),
                    ..base_model()
                },
                "model.model_template_name",
            ),
        ];
        for (m, field) in puts {
            check(client.put_model(put_model(m, true)).await.map(drop), field);
        }
        let result = client
            .put_data_blob(put_datablob(datablob(&value, "g", "{}"), true))
            .await;
        check(result.map(drop), "datablob.name");
        let result = client
            .put_model_template(put_template(template("new", &value, "{}"), true))
            .await;
        check(result.map(drop), "model_template.group_name");

        let metric = BTreeMap::from([(value.clone(), 1.0)]);
        let bad_metric = Epoch {
            metrics: metric,
            ..epoch("base", 1, &[])
        };
        let batches = [
            (vec![epoch("base", 1, &[]), bad_metric], "epochs[1].metrics["),
            (vec![epoch(&value, 1, &[])], "epochs[0].model_name"),
        ];
        for (epochs, field) in batches {
            let result = client.insert_epochs(insert(epochs.clone())).await;
            check(result.map(drop), field);
            let result = client
                .stream_epochs(futures::stream::iter(vec![
                    insert(vec![epoch("base", 2, &[])]),
                    insert(epochs),
                ]))
                .await;
            expect_status(
                result,
                Code::InvalidArgument,
                &[
                    "stream message 1",
                    field,
                    rule,
                    "messages before it stayed committed",
                ],
            );
        }
    }
    // Only the valid first messages of the streams were stored.
    let after = Snapshot::take(&mut client).await;
    assert_eq!(after.datablobs, before.datablobs);
    assert_eq!(after.templates, before.templates);
    // (The model's last_modified_at moved with the stored epoch.)
    assert_eq!(names_of(&after.models, |m| &m.name), ["base"]);
    let epoch_nums: Vec<i64> = after.epochs.iter().map(|e| e.1).collect();
    assert_eq!(epoch_nums, [0, 2]);
}

async fn nul_in_hyperparams_round_trips_escaped(server: TestServer) {
    let mut client = server.client();
    let sent = json!({
        "\u{0}": "\u{0}",
        "a\u{0}b": { "c\u{0}": ["\u{0}", "x\u{0}y", { "\u{0}\u{0}": 1 }] },
        "x' OR '1'='1": "$1",
        "..": { "$$": "'; DROP TABLE components; --" },
        "long": "\u{0}".repeat(1_000),
    });
    let text = sent.to_string();
    // The JSON text holds escapes, never a raw NUL byte.
    assert!(!text.contains('\0'));
    for name in ["nul", "nul-2"] {
        let stored = client
            .put_data_blob(put_datablob(datablob(name, "g", &text), false))
            .await
            .unwrap_or_else(|s| panic!("PutDataBlob with NUL in hyperparams: {s}"))
            .into_inner()
            .datablob
            .unwrap();
        assert_eq!(json(&stored.hyperparams_json), sent);
        client
            .put_model_template(put_template(template(name, "g", &text), false))
            .await
            .unwrap_or_else(|s| panic!("PutModelTemplate with NUL in hyperparams: {s}"));
    }
    // Re-putting is recognised as identical (the stored text compares equal).
    let again = client
        .put_data_blob(put_datablob(datablob("nul", "g", &text), false))
        .await
        .unwrap()
        .into_inner();
    assert!(again.already_existed);
    // A different NUL-bearing value is a different record.
    let other = json!({ "\u{0}": "\u{0}\u{0}" }).to_string();
    let result = client
        .put_data_blob(put_datablob(datablob("nul", "g", &other), false))
        .await;
    expect_status(result, Code::AlreadyExists, &["hyperparams_json"]);
    for blob in list_all_datablobs(&mut client, None, 0).await {
        assert_eq!(json(&blob.hyperparams_json), sent, "{}", blob.name);
    }
    for tmpl in list_all_templates(&mut client, None, 0).await {
        assert_eq!(json(&tmpl.hyperparams_json), sent, "{}", tmpl.name);
    }

    // A raw NUL byte is not JSON (strings must escape control characters).
    let before = Snapshot::take(&mut client).await;
    for raw in ["{\"a\": \"x\0y\"}", "{\"a\0\": 1}", "{}\0", "\0{}", "\0"] {
        let result = client
            .put_data_blob(put_datablob(datablob("raw", "g", raw), false))
            .await;
        expect_status(
            result,
            Code::InvalidArgument,
            &["datablob.hyperparams_json", "JSON"],
        );
        let result = client
            .put_model_template(put_template(template("raw", "g", raw), false))
            .await;
        expect_status(
            result,
            Code::InvalidArgument,
            &["model_template.hyperparams_json", "JSON"],
        );
    }
    before
        .assert_unchanged(&mut client, "raw NUL in hyperparams")
        .await;
}

async fn hyperparams_keys_at_and_over_the_limit(server: TestServer) {
    let mut client = server.client();
    // `{"<key>":1}` is 6 bytes plus the key.
    let at_limit = |fill: &str| json!({ fill.repeat((65_536 - 6) / fill.len()): 1 });
    for (name, fill) in [("quotes", "'"), ("dollars", "$"), ("dots", "..")] {
        let sent = at_limit(fill);
        let text = sent.to_string();
        assert_eq!(text.len(), 65_536, "{name}");
        let stored = client
            .put_data_blob(put_datablob(datablob(name, "g", &text), false))
            .await
            .unwrap_or_else(|s| panic!("65,536 bytes of hyperparams with a long key: {s}"))
            .into_inner()
            .datablob
            .unwrap();
        assert_eq!(stored.hyperparams_json, text, "canonical text returned as sent");
    }
    // The limit counts the text as sent, escapes included: a key of 10,922
    // NULs is 65,532 bytes of `\u0000` escapes.
    let nul_key = json!({ "\u{0}".repeat(10_922): 1 }).to_string();
    assert_eq!(nul_key.len(), 6 + 6 * 10_922);
    let result = client
        .put_data_blob(put_datablob(datablob("nul-key", "g", &nul_key), false))
        .await;
    expect_status(
        result,
        Code::InvalidArgument,
        &["datablob.hyperparams_json", "at most 65536 bytes"],
    );
    let fits = json!({ "\u{0}".repeat(10_921): 1 }).to_string();
    let stored = client
        .put_data_blob(put_datablob(datablob("nul-key", "g", &fits), false))
        .await
        .unwrap_or_else(|s| panic!("10,921 NULs as a key: {s}"))
        .into_inner()
        .datablob
        .unwrap();
    assert_eq!(json(&stored.hyperparams_json), json(&fits));

    let before = Snapshot::take(&mut client).await;
    let over = format!("{{\"{}\":1}}", "'".repeat(65_536 - 6 + 1));
    let result = client
        .put_model_template(put_template(template("over", "g", &over), false))
        .await;
    expect_status(
        result,
        Code::InvalidArgument,
        &[
            "model_template.hyperparams_json",
            "at most 65536 bytes",
            "got 65537",
        ],
    );
    before.assert_unchanged(&mut client, "oversized key").await;
}

/// The JSON inside a page token.
fn token_json(token: &str) -> Value {
    let bytes = URL_SAFE_NO_PAD
        .decode(token)
        .unwrap_or_else(|e| panic!("token {token:?} is not base64: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("token {token:?} is not JSON: {e}"))
}

/// What a token decodes to, for failure messages.
fn token_json_lossy(token: &str) -> String {
    let bytes = URL_SAFE_NO_PAD.decode(token).unwrap_or_default();
    String::from_utf8_lossy(&bytes).chars().take(200).collect()
}

/// A token like `real` (same query fingerprint) carrying the sort key `key`.
fn forged(real: &str, key: Value) -> String {
    let mut envelope = token_json(real);
    envelope["k"] = key;
    URL_SAFE_NO_PAD.encode(envelope.to_string())
}

/// One paginated listing, for trying tokens on it.
#[derive(Debug, Clone, Copy)]
enum Listing {
    DataBlobs,
    Templates,
    Models,
    Epochs,
    Leaderboard,
}

const LISTINGS: [Listing; 5] = [
    Listing::DataBlobs,
    Listing::Templates,
    Listing::Models,
    Listing::Epochs,
    Listing::Leaderboard,
];

impl Listing {
    /// One page of size 1 after `token`: the names on it and the next token.
    async fn page(self, client: &mut Client, token: &str) -> Result<(Vec<String>, String), Status> {
        let page_token = token.to_owned();
        Ok(match self {
            Listing::DataBlobs => {
                let page = client
                    .list_data_blobs(ListDataBlobsRequest {
                        page_size: 1,
                        page_token,
                        ..ListDataBlobsRequest::default()
                    })
                    .await?
                    .into_inner();
                (names_of(&page.datablobs, |d| &d.name), page.next_page_token)
            }
            Listing::Templates => {
                let page = client
                    .list_model_templates(ListModelTemplatesRequest {
                        page_size: 1,
                        page_token,
                        ..ListModelTemplatesRequest::default()
                    })
                    .await?
                    .into_inner();
                (names_of(&page.model_templates, |t| &t.name), page.next_page_token)
            }
            Listing::Models => {
                let page = client
                    .list_models(ListModelsRequest {
                        page_size: 1,
                        page_token,
                        ..ListModelsRequest::default()
                    })
                    .await?
                    .into_inner();
                (names_of(&page.models, |m| &m.name), page.next_page_token)
            }
            Listing::Epochs => {
                let page = client
                    .list_epochs(ListEpochsRequest {
                        page_size: 1,
                        page_token,
                        ..ListEpochsRequest::default()
                    })
                    .await?
                    .into_inner();
                (names_of(&page.epochs, |e| &e.model_name), page.next_page_token)
            }
            Listing::Leaderboard => {
                let page = client
                    .get_leaderboard(GetLeaderboardRequest {
                        page_token,
                        ..leaderboard("acc", MetricDirection::Max, 1)
                    })
                    .await?
                    .into_inner();
                let names = page
                    .rows
                    .iter()
                    .map(|r| r.model.as_ref().map(|m| m.name.clone()).unwrap_or_default())
                    .collect();
                (names, page.next_page_token)
            }
        })
    }

    /// A well-formed sort key for this listing that puts `name` in
    /// whatever string the key holds.
    fn key_with_name(self, name: &str) -> Value {
        match self {
            Listing::DataBlobs | Listing::Templates | Listing::Models => json!(name),
            Listing::Epochs => json!([name, 0]),
            // 0.1: the value of `m' OR '1'='1` in the tampering test.
            Listing::Leaderboard => json!([0.1_f64.to_bits(), 0, name]),
        }
    }
}

async fn tampered_page_tokens_are_invalid_or_literal(server: TestServer) {
    let mut client = server.client();
    let names = ["a", "m' OR '1'='1", "m-plain", "z"];
    for (i, name) in names.iter().enumerate() {
        calls::seed_model(&mut client, name).await;
        insert_epochs(&mut client, vec![epoch(name, 0, &[("acc", 0.1 * i as f64)])]).await;
    }
    let before = Snapshot::take(&mut client).await;
    for listing in LISTINGS {
        let (_, real) = listing.page(&mut client, "").await.unwrap();
        assert!(!real.is_empty(), "{listing:?} has a second page");
        let mut invalid: Vec<String> = vec![
            real[..real.len() - 1].to_owned(),
            real[..real.len() / 2].to_owned(),
            real[..4].to_owned(),
            format!("{real}="),
            format!("{real}=="),
            format!("{real}\n"),
            format!(" {real}"),
            format!("{real}{real}"),
            format!("{}+{}", &real[..4], &real[4..]),
            "A".repeat(1_000_000),
            URL_SAFE_NO_PAD.encode("not json"),
            URL_SAFE_NO_PAD.encode("{}"),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe, 0x00, 0x80]),
            URL_SAFE_NO_PAD.encode(r#"{"q": 1, "k": "a"}"#),
            // Right fingerprint, wrong shape of key.
            forged(&real, json!(null)),
            forged(&real, json!({"k": 1})),
            forged(&real, json!([[], [], []])),
            forged(&real, json!(1e308)),
            // Right fingerprint and shape, but no listing issues such a key.
            forged(&real, listing.key_with_name("")),
            forged(&real, listing.key_with_name("\0")),
            forged(&real, listing.key_with_name("a\0b")),
            forged(&real, listing.key_with_name("a\nb")),
            forged(&real, listing.key_with_name(&"x".repeat(256))),
            forged(&real, listing.key_with_name(&"'".repeat(100_000))),
        ];
        match listing {
            Listing::Epochs => invalid.push(forged(&real, json!(["a", -1]))),
            Listing::Leaderboard => {
                invalid.push(forged(&real, json!([f64::NAN.to_bits(), 0, "a"])));
                invalid.push(forged(&real, json!([0.5_f64.to_bits(), -1, "a"])));
            }
            _ => {}
        }
        for token in invalid {
            let shown: String = token.chars().take(80).collect();
            match listing.page(&mut client, &token).await {
                Ok(page) => panic!("{listing:?} accepted token {shown:?}: {page:?}"),
                Err(status) => assert!(
                    status.code() == Code::InvalidArgument && status.message().starts_with("page_token: "),
                    "{listing:?} token {shown:?} ({:?}): {status:?}",
                    token_json_lossy(&token)
                ),
            }
        }
        // One flipped character: a different valid key is a legitimate
        // position, anything else must be INVALID_ARGUMENT.
        for at in 0..real.len() {
            let mut bytes = real.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let token = String::from_utf8(bytes).unwrap();
            if let Err(status) = listing.page(&mut client, &token).await {
                assert_eq!(
                    status.code(),
                    Code::InvalidArgument,
                    "{listing:?} token with byte {at} flipped: {status:?}"
                );
            }
        }
        // A forged but well-formed key holding SQL is only a position:
        // the rows after it in byte order, as if by any other name.
        let key = "m' OR '1'='1";
        let (after, _) = listing
            .page(&mut client, &forged(&real, listing.key_with_name(key)))
            .await
            .unwrap_or_else(|s| panic!("{listing:?} forged key {key:?}: {s}"));
        let expected: &[&str] = match listing {
            Listing::DataBlobs => &["m' OR '1'='1-data"],
            Listing::Templates => &["m' OR '1'='1-tmpl"],
            // Epoch 0 of `m' OR '1'='1` itself comes at or before the key.
            Listing::Models | Listing::Epochs => &["m-plain"],
            // By acc descending, after (0.1, epoch 0, the key's name) comes
            // the next lower value.
            Listing::Leaderboard => &["a"],
        };
        assert_eq!(after, expected, "{listing:?} after forged key {key:?}");
    }
    before.assert_unchanged(&mut client, "tampered tokens").await;
}

async fn extreme_epoch_ranges(server: TestServer) {
    let mut client = server.client();
    let name = "x' OR '1'='1";
    calls::seed_model(&mut client, name).await;
    calls::seed_model(&mut client, "other").await;
    let nums = [0, 1, i64::MAX - 1, i64::MAX];
    let epochs: Vec<Epoch> = nums
        .iter()
        .map(|&n| epoch(name, n, &[("acc", if n == i64::MAX { 2.0 } else { 1.0 })]))
        .chain([epoch("other", 5, &[("acc", 0.5)])])
        .collect();
    assert_eq!(insert_epochs(&mut client, epochs).await, (5, 0));
    let current = client
        .get_current_epoch(GetCurrentEpochRequest {
            project: String::new(),
            model_name: name.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(current.current_epoch, i64::MAX);
    let found = client
        .get_best_model(best("acc", MetricDirection::Max, 1))
        .await
        .unwrap()
        .into_inner()
        .models;
    assert_eq!(found[0].best_epoch.as_ref().unwrap().epoch_num, i64::MAX);

    let range = |min: Option<i64>, max: Option<i64>| ListEpochsRequest {
        project: String::new(),
        model_names: vec![name.to_owned()],
        min_epoch_num: min,
        max_epoch_num: max,
        page_size: 1,
        page_token: String::new(),
    };
    let cases: &[(Option<i64>, Option<i64>, &[i64])] = &[
        (Some(i64::MIN), Some(i64::MAX), &nums),
        (None, None, &nums),
        (Some(i64::MAX), Some(i64::MAX), &[i64::MAX]),
        (Some(i64::MAX), None, &[i64::MAX]),
        (Some(i64::MAX - 1), Some(i64::MAX), &[i64::MAX - 1, i64::MAX]),
        (Some(i64::MIN), Some(-1), &[]),
        (Some(i64::MIN), Some(i64::MIN), &[]),
        (None, Some(i64::MIN), &[]),
        (Some(-5), Some(0), &[0]),
        (Some(2), Some(i64::MAX - 2), &[]),
    ];
    for (min, max, want) in cases {
        let got: Vec<i64> = list_all_epochs(&mut client, range(*min, *max))
            .await
            .into_iter()
            .map(|e| e.epoch_num)
            .collect();
        assert_eq!(got, *want, "min {min:?} max {max:?}");
    }
    for (min, max) in [(1, 0), (i64::MAX, i64::MIN), (0, -1), (i64::MAX, i64::MAX - 1)] {
        let result = client.list_epochs(range(Some(min), Some(max))).await;
        expect_status(result, Code::InvalidArgument, &["min_epoch_num", "max_epoch_num"]);
    }
    let result = client
        .insert_epochs(insert(vec![epoch(name, i64::MIN, &[])]))
        .await;
    expect_status(result, Code::InvalidArgument, &["epochs[0].epoch_num", ">= 0"]);
}

/// Every injection string as a `where` literal, key path, tag key and
/// metric name is a bound value: it selects exactly its own model, and the
/// decoys survive.
async fn where_literals_and_keys_match_literally(server: TestServer) {
    let mut client = server.client();
    for decoy in DECOYS {
        put_everything_named(&mut client, decoy, "decoys").await;
    }
    let hostile = injection_strings();
    for s in &hostile {
        put_everything_named(&mut client, s, s).await;
    }
    for s in &hostile {
        let quoted = s.replace('\'', "''");
        let key = s.replace('`', "``");
        for expr in [
            format!("name = '{quoted}'"),
            format!("datablob.`{key}` = '{quoted}' and template.`{key}` = '{quoted}'"),
            format!("params.x = 1 or datablob.`nested`.`{key}`.`..`.`1`.`$` = '{quoted}'"),
            format!(
                "exists max(`{key}`) and min(`{key}`) = 0.25 and class like '{}'",
                like_literal(s)
            ),
        ] {
            let filter = Some(ModelFilter {
                r#where: expr.clone(),
                ..Default::default()
            });
            let got = list_all_models(&mut client, filter, 0).await;
            assert_eq!(names_of(&got, |m| &m.name), vec![s.clone()], "{expr}");
        }
    }
    let models = list_all_models(&mut client, None, 0).await;
    assert_eq!(models.len(), hostile.len() + DECOYS.len(), "nothing dropped");
}

/// `s` as a `like` pattern matching itself only.
fn like_literal(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out
}
