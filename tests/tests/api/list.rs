//! ListDataBlobs / ListModelTemplates / ListModels / ListEpochs: filters
//! (AND between lists, OR within one), ranges and ordering.

use mlmeta_proto::{GroupedFilter, ListEpochsRequest, ModelFilter};
use mlmeta_tests::calls::{
    self, Client, insert_epochs, list_all_datablobs, list_all_epochs, list_all_models, list_all_templates,
};
use mlmeta_tests::records::{epoch, strings};
use mlmeta_tests::{TestServer, backend_tests};

backend_tests! {
    datablobs_filter_by_names_and_groups,
    templates_filter_by_names_and_groups,
    models_filter_on_every_field_combined_with_and,
    epochs_filter_by_models_and_inclusive_range,
    ordering_is_by_code_point_on_every_backend,
}

/// Datablobs d-a..d-d, templates t-a..t-c, models m-1..m-5 (see the table).
async fn seed(client: &mut Client) {
    for (name, group) in [("d-b", "g1"), ("d-a", "g2"), ("d-c", "g1"), ("d-d", "g3")] {
        calls::put_datablob(client, name, group, "{}").await;
    }
    for (name, group) in [("t-b", "tg1"), ("t-a", "tg2"), ("t-c", "tg1")] {
        calls::put_template(client, name, group, "{}").await;
    }
    for (name, blob, tmpl) in [
        ("m-3", "d-a", "t-a"),
        ("m-1", "d-b", "t-b"),
        ("m-2", "d-c", "t-a"),
        ("m-5", "d-b", "t-c"),
        ("m-4", "d-d", "t-b"),
    ] {
        calls::put_model(client, name, blob, tmpl).await;
    }
}

fn grouped(names: &[&str], groups: &[&str]) -> Option<GroupedFilter> {
    Some(GroupedFilter {
        names: strings(names),
        group_names: strings(groups),
        ..Default::default()
    })
}

async fn datablobs_filter_by_names_and_groups(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    let cases: &[(&[&str], &[&str], &[&str])] = &[
        (&[], &[], &["d-a", "d-b", "d-c", "d-d"]),
        (&["d-c", "d-a", "nope"], &[], &["d-a", "d-c"]),
        (&[], &["g1"], &["d-b", "d-c"]),
        (&[], &["g3", "g2"], &["d-a", "d-d"]),
        (&["d-a", "d-b"], &["g1"], &["d-b"]),
        (&["d-a"], &["g1"], &[]),
        (&["nope"], &[], &[]),
        (&[], &["nope"], &[]),
    ];
    for (names, groups, want) in cases {
        let got: Vec<String> = list_all_datablobs(&mut client, grouped(names, groups), 0)
            .await
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(got, strings(want), "names {names:?} groups {groups:?}");
    }
    let all = list_all_datablobs(&mut client, None, 0).await;
    assert_eq!(all.len(), 4, "no filter lists everything");
}

async fn templates_filter_by_names_and_groups(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    let cases: &[(&[&str], &[&str], &[&str])] = &[
        (&[], &[], &["t-a", "t-b", "t-c"]),
        (&["t-c", "t-a"], &[], &["t-a", "t-c"]),
        (&[], &["tg1"], &["t-b", "t-c"]),
        (&["t-a", "t-b"], &["tg1"], &["t-b"]),
        (&["nope"], &["tg1"], &[]),
    ];
    for (names, groups, want) in cases {
        let got: Vec<String> = list_all_templates(&mut client, grouped(names, groups), 0)
            .await
            .into_iter()
            .map(|t| t.name)
            .collect();
        assert_eq!(got, strings(want), "names {names:?} groups {groups:?}");
    }
    assert_eq!(list_all_templates(&mut client, None, 0).await.len(), 3);
}

async fn models_filter_on_every_field_combined_with_and(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    let f = |names: &[&str], blobs: &[&str], blob_groups: &[&str], tmpls: &[&str], tmpl_groups: &[&str]| {
        ModelFilter {
            names: strings(names),
            datablob_names: strings(blobs),
            datablob_group_names: strings(blob_groups),
            model_template_names: strings(tmpls),
            model_template_group_names: strings(tmpl_groups),
            ..ModelFilter::default()
        }
    };
    let cases: Vec<(ModelFilter, &[&str])> = vec![
        (f(&[], &[], &[], &[], &[]), &["m-1", "m-2", "m-3", "m-4", "m-5"]),
        (f(&["m-4", "m-1", "nope"], &[], &[], &[], &[]), &["m-1", "m-4"]),
        (f(&[], &["d-b"], &[], &[], &[]), &["m-1", "m-5"]),
        (f(&[], &[], &["g1"], &[], &[]), &["m-1", "m-2", "m-5"]),
        (f(&[], &[], &[], &["t-a"], &[]), &["m-2", "m-3"]),
        (f(&[], &[], &[], &[], &["tg1"]), &["m-1", "m-4", "m-5"]),
        (f(&[], &[], &["g1"], &[], &["tg1"]), &["m-1", "m-5"]),
        (f(&["m-1", "m-2"], &[], &[], &["t-a"], &[]), &["m-2"]),
        (f(&[], &[], &["g1", "g3"], &["t-b"], &[]), &["m-1", "m-4"]),
        (f(&[], &["d-b", "d-a"], &[], &[], &["tg2"]), &["m-3"]),
        (f(&["m-1"], &["d-b"], &["g1"], &["t-b"], &["tg1"]), &["m-1"]),
        (f(&["m-1"], &["d-b"], &["g1"], &["t-b"], &["tg2"]), &[]),
        (f(&[], &[], &["g1"], &["t-a"], &["tg1"]), &[]),
    ];
    for (filter, want) in cases {
        let got: Vec<String> = list_all_models(&mut client, Some(filter.clone()), 0)
            .await
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(got, strings(want), "filter {filter:?}");
    }
    let all = list_all_models(&mut client, None, 0).await;
    let pairs: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                m.datablob_name.as_str(),
                m.model_template_name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("m-1", "d-b", "t-b"),
            ("m-2", "d-c", "t-a"),
            ("m-3", "d-a", "t-a"),
            ("m-4", "d-d", "t-b"),
            ("m-5", "d-b", "t-c"),
        ]
    );
}

async fn epochs_filter_by_models_and_inclusive_range(server: TestServer) {
    let mut client = server.client();
    seed(&mut client).await;
    let mut sent = Vec::new();
    for num in [4, 0, 5, 2, 1, 3] {
        sent.push(epoch("m-2", num, &[("loss", num as f64)]));
        sent.push(epoch("m-1", num, &[("loss", -(num as f64))]));
    }
    sent.push(epoch("m-3", 7, &[("loss", 7.0)]));
    insert_epochs(&mut client, sent).await;

    let query = |models: &[&str], min: Option<i64>, max: Option<i64>| ListEpochsRequest {
        project: String::new(),
        model_names: strings(models),
        min_epoch_num: min,
        max_epoch_num: max,
        page_size: 0,
        page_token: String::new(),
    };
    let cases: Vec<(ListEpochsRequest, Vec<(&str, i64)>)> = vec![
        (
            query(&["m-2", "m-1"], None, None),
            [("m-1", 0..6), ("m-2", 0..6)]
                .into_iter()
                .flat_map(|(m, r)| r.map(move |n| (m, n)))
                .collect(),
        ),
        (
            query(&["m-1"], Some(2), None),
            vec![("m-1", 2), ("m-1", 3), ("m-1", 4), ("m-1", 5)],
        ),
        (query(&["m-1"], None, Some(1)), vec![("m-1", 0), ("m-1", 1)]),
        (
            query(&["m-2", "m-3"], Some(3), Some(7)),
            vec![("m-2", 3), ("m-2", 4), ("m-2", 5), ("m-3", 7)],
        ),
        (
            query(&["m-1", "m-2"], Some(4), Some(4)),
            vec![("m-1", 4), ("m-2", 4)],
        ),
        (
            query(&[], Some(5), None),
            vec![("m-1", 5), ("m-2", 5), ("m-3", 7)],
        ),
        (query(&["m-3"], Some(8), None), vec![]),
        (query(&["m-4"], None, None), vec![]),
    ];
    for (request, want) in cases {
        let got = list_all_epochs(&mut client, request.clone()).await;
        let got: Vec<(&str, i64)> = got.iter().map(|e| (e.model_name.as_str(), e.epoch_num)).collect();
        assert_eq!(got, want, "request {request:?}");
    }
    // Naming a model that does not exist is NOT_FOUND, not an empty page.
    let unknown = client.list_epochs(query(&["m-4", "nope"], None, None)).await;
    calls::expect_status(unknown, tonic::Code::NotFound, &["model_names[1]", "\"nope\""]);
    let all = calls::epochs_of(&mut client, &[]).await;
    assert_eq!(all.len(), 13);
    assert_eq!(all[0].metrics["loss"], 0.0);
    assert_eq!(all[5].metrics["loss"], -5.0);
}

/// PostgreSQL orders names as SQLite does (by code point) even when the
/// database's default collation is a natural-language one (ICU en-US,
/// where "a" < "B").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_is_by_code_point_on_an_icu_postgres_database() {
    let options = "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8' TEMPLATE template0";
    let Some(database) = mlmeta_tests::TestDatabase::create_with(options).await else {
        return;
    };
    let server = TestServer::on_postgres(database).await;
    mlmeta_tests::run_bounded(
        "ordering_on_icu",
        mlmeta_tests::DEFAULT_TEST_TIMEOUT,
        ordering_is_by_code_point_on_every_backend(server),
    )
    .await;
}

async fn ordering_is_by_code_point_on_every_backend(server: TestServer) {
    let mut client = server.client();
    let names = [
        "b", "B", "a", "A", "_x", "Z", "10", "9", "é", "e", "a b", "ab", "a-b", "zz", "模",
    ];
    for name in names {
        calls::put_datablob(&mut client, name, "g", "{}").await;
        calls::put_template(&mut client, name, "g", "{}").await;
        calls::put_model(&mut client, name, name, name).await;
    }
    insert_epochs(
        &mut client,
        names.iter().map(|n| epoch(n, 0, &[("loss", 1.0)])).collect(),
    )
    .await;
    let mut want: Vec<String> = strings(&names);
    want.sort();
    let blobs: Vec<String> = list_all_datablobs(&mut client, None, 4)
        .await
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(blobs, want, "datablobs ordered by name (code point order)");
    let tmpls: Vec<String> = list_all_templates(&mut client, None, 4)
        .await
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(tmpls, want, "templates ordered by name");
    let models: Vec<String> = list_all_models(&mut client, None, 4)
        .await
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(models, want, "models ordered by name");
    let epochs: Vec<String> = list_all_epochs(
        &mut client,
        ListEpochsRequest {
            page_size: 4,
            ..ListEpochsRequest::default()
        },
    )
    .await
    .into_iter()
    .map(|e| e.model_name)
    .collect();
    assert_eq!(epochs, want, "epochs ordered by model name");
}
