//! Hostile-but-valid strings (quotes, SQL, placeholders, wildcards,
//! unicode) are stored and read back exactly; filters match literally.

use mlmeta_proto::{
    GetCurrentEpochRequest, GroupedFilter, ListEpochsRequest, MetricDirection, Model, ModelFilter,
};
use mlmeta_tests::calls::{
    self, Client, insert_epochs, json, list_all_datablobs, list_all_epochs, list_all_models,
    list_all_templates,
};
use mlmeta_tests::records::{
    best, datablob, epoch, model, put_datablob, put_model, put_template, strings, template,
};
use mlmeta_tests::{TestServer, backend_tests};

backend_tests! {
    hostile_strings_round_trip_exactly,
    filters_match_wildcards_literally,
}

const HOSTILE: &[&str] = &[
    "it's \"quoted\"",
    "'; DROP TABLE models; --",
    "\"; DROP TABLE epochs; --",
    "$1",
    "?",
    ":name",
    "@p1",
    "%",
    "_",
    "%_%",
    "a\\b",
    "\\",
    "模型-ß-😀",
    " leading and trailing ",
    "`backtick`",
    "NULL",
    "/* comment */",
    "zero\u{200b}width",
    "e\u{301}",
    "\u{e9}",
    "{\"json\": [1]}",
];

fn one_name(name: &str) -> Option<GroupedFilter> {
    Some(GroupedFilter {
        names: vec![name.to_owned()],
        group_names: vec![],
        ..Default::default()
    })
}

async fn put_hostile(client: &mut Client, s: &str) {
    let hyperparams = serde_json::json!({ s: s, "list": [s] }).to_string();
    let blob = client
        .put_data_blob(put_datablob(datablob(s, s, &hyperparams), false))
        .await
        .unwrap_or_else(|e| panic!("PutDataBlob {s:?}: {e}"))
        .into_inner()
        .datablob
        .unwrap();
    assert_eq!((blob.name.as_str(), blob.group_name.as_str()), (s, s));
    let tmpl = client
        .put_model_template(put_template(template(s, s, &hyperparams), false))
        .await
        .unwrap_or_else(|e| panic!("PutModelTemplate {s:?}: {e}"))
        .into_inner()
        .model_template
        .unwrap();
    assert_eq!((tmpl.name.as_str(), tmpl.group_name.as_str()), (s, s));
    let m = Model {
        model_class_name: s.to_owned(),
        ..model(s, s, s)
    };
    let stored = client
        .put_model(put_model(m.clone(), false))
        .await
        .unwrap_or_else(|e| panic!("PutModel {s:?}: {e}"))
        .into_inner();
    assert_eq!(stored.model.unwrap().model_class_name, s);
    let again = client.put_model(put_model(m, false)).await.unwrap().into_inner();
    assert!(again.already_existed, "identical re-put of {s:?}");
    insert_epochs(client, vec![epoch(s, 3, &[(s, 0.5), ("plain", 1.0)])]).await;
}

async fn hostile_strings_round_trip_exactly(server: TestServer) {
    let mut client = server.client();
    for s in HOSTILE {
        put_hostile(&mut client, s).await;
    }
    let mut sorted: Vec<String> = strings(HOSTILE);
    sorted.sort();
    let blob_names: Vec<String> = list_all_datablobs(&mut client, None, 0)
        .await
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(blob_names, sorted);
    let tmpl_names: Vec<String> = list_all_templates(&mut client, None, 0)
        .await
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(tmpl_names, sorted);
    let model_names: Vec<String> = list_all_models(&mut client, None, 0)
        .await
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(model_names, sorted);

    for s in HOSTILE {
        let expected_json = serde_json::json!({ *s: s, "list": [s] });
        let blobs = list_all_datablobs(&mut client, one_name(s), 0).await;
        assert_eq!(blobs.len(), 1, "datablob {s:?}");
        assert_eq!((blobs[0].name.as_str(), blobs[0].group_name.as_str()), (*s, *s));
        assert_eq!(json(&blobs[0].hyperparams_json), expected_json);
        let by_group = list_all_datablobs(
            &mut client,
            Some(GroupedFilter {
                names: vec![],
                group_names: vec![(*s).to_owned()],
                ..Default::default()
            }),
            0,
        )
        .await;
        assert_eq!(by_group, blobs, "datablob group {s:?}");
        let tmpls = list_all_templates(&mut client, one_name(s), 0).await;
        assert_eq!(tmpls.len(), 1, "template {s:?}");
        assert_eq!(json(&tmpls[0].hyperparams_json), expected_json);

        let filter = ModelFilter {
            names: vec![(*s).to_owned()],
            datablob_names: vec![(*s).to_owned()],
            datablob_group_names: vec![(*s).to_owned()],
            model_template_names: vec![(*s).to_owned()],
            model_template_group_names: vec![(*s).to_owned()],
            ..ModelFilter::default()
        };
        let models = list_all_models(&mut client, Some(filter.clone()), 0).await;
        assert_eq!(models.len(), 1, "model {s:?}");
        let m = &models[0];
        assert_eq!(
            [
                &m.name,
                &m.model_class_name,
                &m.datablob_name,
                &m.model_template_name
            ],
            [*s; 4]
        );

        let epochs = list_all_epochs(
            &mut client,
            ListEpochsRequest {
                model_names: vec![(*s).to_owned()],
                ..ListEpochsRequest::default()
            },
        )
        .await;
        assert_eq!(epochs.len(), 1, "epochs of {s:?}");
        assert_eq!(epochs[0].model_name, *s);
        assert_eq!(epochs[0].metrics.get(*s), Some(&0.5), "metric named {s:?}");

        let current = client
            .get_current_epoch(GetCurrentEpochRequest {
                project: String::new(),
                model_name: (*s).to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((current.current_epoch, current.model_exists), (3, true), "{s:?}");

        let best_models = client
            .get_best_model(mlmeta_proto::GetBestModelRequest {
                filter: Some(filter),
                ..best(s, MetricDirection::Max, 10)
            })
            .await
            .unwrap_or_else(|e| panic!("GetBestModel metric {s:?}: {e}"))
            .into_inner()
            .models;
        assert_eq!(best_models.len(), 1, "best by metric {s:?}");
        let found = &best_models[0];
        assert_eq!(found.model.as_ref().unwrap().name, *s);
        assert_eq!(found.datablob.as_ref().unwrap().group_name, *s);
        assert_eq!(found.model_template.as_ref().unwrap().group_name, *s);
        assert_eq!(
            json(&found.model_template.as_ref().unwrap().hyperparams_json),
            expected_json
        );
    }
    // The metric `%` matches only itself.
    let all = client
        .get_best_model(best("%", MetricDirection::Max, 100))
        .await
        .unwrap()
        .into_inner()
        .models;
    assert_eq!(all.len(), 1);
}

async fn filters_match_wildcards_literally(server: TestServer) {
    let mut client = server.client();
    let names = ["a%c", "abc", "a_c", "axc", "a\\c", "ABC", "aXc%", "a"];
    for name in names {
        let group = format!("g{name}");
        calls::put_datablob(&mut client, name, &group, "{}").await;
        calls::put_template(&mut client, name, &group, "{}").await;
        calls::put_model(&mut client, name, name, name).await;
    }
    insert_epochs(
        &mut client,
        names.iter().map(|n| epoch(n, 0, &[("acc", 1.0)])).collect(),
    )
    .await;

    let cases: &[(&str, &[&str])] = &[
        ("a%c", &["a%c"]),
        ("a_c", &["a_c"]),
        ("a\\c", &["a\\c"]),
        ("%", &[]),
        ("_", &[]),
        ("a%", &[]),
        ("a__", &[]),
        ("abc", &["abc"]),
        ("aXc%", &["aXc%"]),
        ("axc%", &[]),
    ];
    for (pattern, want) in cases {
        let want = strings(want);
        let got: Vec<String> = list_all_datablobs(&mut client, one_name(pattern), 0)
            .await
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(got, want, "datablob names [{pattern:?}]");
        let group = format!("g{pattern}");
        let got: Vec<String> = list_all_templates(
            &mut client,
            Some(GroupedFilter {
                names: vec![],
                group_names: vec![group.clone()],
                ..Default::default()
            }),
            0,
        )
        .await
        .into_iter()
        .map(|t| t.name)
        .collect();
        assert_eq!(got, want, "template group_names [{group:?}]");
        for filter in [
            ModelFilter {
                names: vec![(*pattern).to_owned()],
                ..ModelFilter::default()
            },
            ModelFilter {
                datablob_names: vec![(*pattern).to_owned()],
                ..ModelFilter::default()
            },
            ModelFilter {
                datablob_group_names: vec![group.clone()],
                ..ModelFilter::default()
            },
            ModelFilter {
                model_template_names: vec![(*pattern).to_owned()],
                ..ModelFilter::default()
            },
            ModelFilter {
                model_template_group_names: vec![group.clone()],
                ..ModelFilter::default()
            },
        ] {
            let got: Vec<String> = list_all_models(&mut client, Some(filter.clone()), 0)
                .await
                .into_iter()
                .map(|m| m.name)
                .collect();
            assert_eq!(got, want, "models with {filter:?}");
        }
        let request = ListEpochsRequest {
            model_names: vec![(*pattern).to_owned()],
            ..ListEpochsRequest::default()
        };
        if want.is_empty() {
            // A pattern is a name like any other: naming no model, it is
            // NOT_FOUND, as for any unknown model.
            let result = client.list_epochs(request).await;
            calls::expect_status(result, tonic::Code::NotFound, &["does not exist"]);
            continue;
        }
        let got: Vec<String> = list_all_epochs(&mut client, request)
            .await
            .into_iter()
            .map(|e| e.model_name)
            .collect();
        assert_eq!(got, want, "epochs of [{pattern:?}]");
    }
}
