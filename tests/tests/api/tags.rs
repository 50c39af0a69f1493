//! Tags and descriptions of models, datablobs and templates (UpdateTags,
//! SetDescription), and the tag filter of listings, best and leaderboard.

use std::collections::BTreeMap;

use mlmeta_proto::{
    GetBestModelRequest, GetLeaderboardRequest, InsertEpochsRequest, ListModelsRequest, MetricDirection,
    ModelFilter, RecordKind, RecordRef, SetDescriptionRequest, UpdateTagsRequest,
};
use mlmeta_tests::calls::{
    Client, expect_status, full_leaderboard, insert_epochs, list_all_datablobs, list_all_models,
    list_all_templates, seed_model,
};
use mlmeta_tests::records::{
    best, datablob, epoch, leaderboard, model, put_datablob, put_model, put_template, strings, template,
};
use mlmeta_tests::{Backend, TestServer, backend_tests, backend_tests_with_setup};
use tonic::Code;

backend_tests! {
    tags_are_set_overwritten_and_unset_on_every_kind,
    tags_are_returned_with_best_and_leaderboard,
    tag_updates_are_all_or_nothing,
    system_tags_are_reserved,
    tag_requests_name_the_field_and_rule,
    tags_filter_listings_best_and_leaderboard,
    tags_stay_in_their_project,
    descriptions_are_set_replaced_and_cleared,
    descriptions_up_to_64_kib,
}

/// Tag pairs of a filter case.
type Pairs<'a> = &'a [(&'a str, &'a str)];

fn target(kind: RecordKind, name: &str) -> Option<RecordRef> {
    Some(RecordRef {
        kind: kind as i32,
        name: name.to_owned(),
    })
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn update(kind: RecordKind, name: &str, set: &[(&str, &str)], unset: &[&str]) -> UpdateTagsRequest {
    UpdateTagsRequest {
        target: target(kind, name),
        set: tags(set),
        unset: strings(unset),
        project: String::new(),
    }
}

async fn tag(
    client: &mut Client,
    kind: RecordKind,
    name: &str,
    set: &[(&str, &str)],
) -> BTreeMap<String, String> {
    client
        .update_tags(update(kind, name, set, &[]))
        .await
        .unwrap_or_else(|s| panic!("UpdateTags {name:?}: {s}"))
        .into_inner()
        .tags
}

fn describe(kind: RecordKind, name: &str, text: &str) -> SetDescriptionRequest {
    SetDescriptionRequest {
        target: target(kind, name),
        description: text.to_owned(),
        project: String::new(),
    }
}

fn tag_filter(pairs: &[(&str, &str)]) -> Option<ModelFilter> {
    Some(ModelFilter {
        tags: tags(pairs),
        ..ModelFilter::default()
    })
}

async fn tags_are_set_overwritten_and_unset_on_every_kind(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    for (kind, name) in [
        (RecordKind::Model, "m"),
        (RecordKind::Datablob, "m-data"),
        (RecordKind::ModelTemplate, "m-tmpl"),
    ] {
        let after = tag(&mut client, kind, name, &[("team", "vision"), ("stage", "dev")]).await;
        assert_eq!(after, tags(&[("stage", "dev"), ("team", "vision")]), "{name}");
        let after = client
            .update_tags(update(
                kind,
                name,
                &[("stage", "prod"), ("owner", "ada")],
                &["team", "absent"],
            ))
            .await
            .unwrap()
            .into_inner()
            .tags;
        assert_eq!(after, tags(&[("owner", "ada"), ("stage", "prod")]), "{name}");
        // An empty update changes nothing and reads the tags.
        let same = tag(&mut client, kind, name, &[]).await;
        assert_eq!(same, after, "{name}");
    }
    let expected = tags(&[("owner", "ada"), ("stage", "prod")]);
    let models = list_all_models(&mut client, None, 0).await;
    assert_eq!(models[0].tags, expected);
    assert_eq!(list_all_datablobs(&mut client, None, 0).await[0].tags, expected);
    assert_eq!(list_all_templates(&mut client, None, 0).await[0].tags, expected);
    // A re-put returns the stored record with its tags; tags sent in a put
    // are ignored (they are not part of the immutable record).
    let mut again = model("m", "m-data", "m-tmpl");
    again.tags = tags(&[("sneaky", "x")]);
    let put = client
        .put_model(put_model(again, false))
        .await
        .unwrap()
        .into_inner();
    assert!(put.already_existed);
    assert_eq!(put.model.unwrap().tags, expected);
}

async fn tags_are_returned_with_best_and_leaderboard(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    insert_epochs(&mut client, vec![epoch("m", 0, &[("acc", 0.5)])]).await;
    tag(&mut client, RecordKind::Model, "m", &[("k", "model")]).await;
    tag(&mut client, RecordKind::Datablob, "m-data", &[("k", "data")]).await;
    tag(&mut client, RecordKind::ModelTemplate, "m-tmpl", &[("k", "tmpl")]).await;
    let top = client
        .get_best_model(best("acc", MetricDirection::Max, 1))
        .await
        .unwrap()
        .into_inner()
        .models;
    assert_eq!(top[0].model.as_ref().unwrap().tags, tags(&[("k", "model")]));
    assert_eq!(top[0].datablob.as_ref().unwrap().tags, tags(&[("k", "data")]));
    assert_eq!(
        top[0].model_template.as_ref().unwrap().tags,
        tags(&[("k", "tmpl")])
    );
    let rows = full_leaderboard(&mut client, leaderboard("acc", MetricDirection::Max, 10)).await;
    assert_eq!(rows[0].model.as_ref().unwrap().tags, tags(&[("k", "model")]));
    assert_eq!(rows[0].datablob.as_ref().unwrap().tags, tags(&[("k", "data")]));
    assert_eq!(
        rows[0].model_template.as_ref().unwrap().tags,
        tags(&[("k", "tmpl")])
    );
}

async fn tag_updates_are_all_or_nothing(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    tag(&mut client, RecordKind::Model, "m", &[("keep", "1")]).await;
    // One bad value among good keys: nothing is applied.
    let long = "v".repeat(4_097);
    expect_status(
        client
            .update_tags(update(
                RecordKind::Model,
                "m",
                &[("a", "1"), ("b", &long)],
                &["keep"],
            ))
            .await,
        Code::InvalidArgument,
        &["set[\"b\"]", "4096 bytes"],
    );
    assert_eq!(
        tag(&mut client, RecordKind::Model, "m", &[]).await,
        tags(&[("keep", "1")])
    );
    // Going over 1,000 tags on the record is refused in the store, after
    // the rows were written: the transaction rolls back.
    let many: Vec<(String, String)> = (0..1_000).map(|i| (format!("k{i:04}"), i.to_string())).collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    expect_status(
        client
            .update_tags(update(RecordKind::Model, "m", &many, &[]))
            .await,
        Code::InvalidArgument,
        &["1000 tags", "1001"],
    );
    assert_eq!(
        tag(&mut client, RecordKind::Model, "m", &[]).await,
        tags(&[("keep", "1")])
    );
    // Exactly 1,000 is fine.
    client
        .update_tags(update(RecordKind::Model, "m", &[], &["keep"]))
        .await
        .unwrap();
    let after = client
        .update_tags(update(RecordKind::Model, "m", &many, &[]))
        .await
        .unwrap()
        .into_inner()
        .tags;
    assert_eq!(after.len(), 1_000);
}

async fn system_tags_are_reserved(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    expect_status(
        client
            .update_tags(update(
                RecordKind::Model,
                "m",
                &[("ok", "1"), ("mlmeta.host", "evil")],
                &[],
            ))
            .await,
        Code::InvalidArgument,
        &["set[\"mlmeta.host\"] (key)", "reserved", "mlmeta."],
    );
    expect_status(
        client
            .update_tags(update(RecordKind::Model, "m", &[], &["mlmeta.git_commit"]))
            .await,
        Code::InvalidArgument,
        &["unset[0]", "reserved"],
    );
    assert!(tag(&mut client, RecordKind::Model, "m", &[]).await.is_empty());
    // Other keys merely containing the word are fine.
    tag(
        &mut client,
        RecordKind::Model,
        "m",
        &[("mlmeta", "1"), ("x.mlmeta.y", "2")],
    )
    .await;
    // Filtering by a system key is allowed (nothing has it here).
    assert!(
        list_all_models(&mut client, tag_filter(&[("mlmeta.host", "h")]), 0)
            .await
            .is_empty()
    );
}

async fn tag_requests_name_the_field_and_rule(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    let cases: Vec<(UpdateTagsRequest, Code, Vec<&str>)> = vec![
        (
            UpdateTagsRequest::default(),
            Code::InvalidArgument,
            vec!["target", "required"],
        ),
        (
            UpdateTagsRequest {
                target: Some(RecordRef {
                    kind: 0,
                    name: "m".into(),
                }),
                ..UpdateTagsRequest::default()
            },
            Code::InvalidArgument,
            vec!["target.kind", "required"],
        ),
        (
            UpdateTagsRequest {
                target: Some(RecordRef {
                    kind: 9,
                    name: "m".into(),
                }),
                ..UpdateTagsRequest::default()
            },
            Code::InvalidArgument,
            vec!["target.kind", "unknown value 9"],
        ),
        (
            update(RecordKind::Model, "", &[], &[]),
            Code::InvalidArgument,
            vec!["target.name", "empty"],
        ),
        (
            update(RecordKind::Model, "m", &[("", "v")], &[]),
            Code::InvalidArgument,
            vec!["set[\"\"] (key)", "empty"],
        ),
        (
            update(RecordKind::Model, "m", &[("a\nb", "v")], &[]),
            Code::InvalidArgument,
            vec!["(key)", "control characters"],
        ),
        (
            update(RecordKind::Model, "m", &[("k", "a\0b")], &[]),
            Code::InvalidArgument,
            vec!["set[\"k\"]", "nul"],
        ),
        (
            update(RecordKind::Model, "m", &[("k", "v")], &["k"]),
            Code::InvalidArgument,
            vec!["unset[0]", "also in set"],
        ),
        (
            update(RecordKind::Model, "m", &[], &[""]),
            Code::InvalidArgument,
            vec!["unset[0]", "empty"],
        ),
        (
            update(RecordKind::Model, "nope", &[("k", "v")], &[]),
            Code::NotFound,
            vec!["model \"nope\"", "target.name"],
        ),
        (
            update(RecordKind::Datablob, "m", &[("k", "v")], &[]),
            Code::NotFound,
            vec!["datablob \"m\""],
        ),
        (
            update(RecordKind::ModelTemplate, "m-data", &[("k", "v")], &[]),
            Code::NotFound,
            vec!["model template \"m-data\""],
        ),
        (
            UpdateTagsRequest {
                project: "elsewhere".into(),
                ..update(RecordKind::Model, "m", &[("k", "v")], &[])
            },
            Code::NotFound,
            vec!["model \"m\""],
        ),
        (
            UpdateTagsRequest {
                project: "bad\u{1}project".into(),
                ..update(RecordKind::Model, "m", &[("k", "v")], &[])
            },
            Code::InvalidArgument,
            vec!["project"],
        ),
    ];
    for (request, code, needles) in cases {
        let shown = format!("{request:?}");
        let status = expect_status(client.update_tags(request).await, code, &needles);
        assert!(!status.message().is_empty(), "{shown}");
    }
    let too_many: Vec<String> = (0..1_001).map(|i| format!("k{i}")).collect();
    expect_status(
        client
            .update_tags(UpdateTagsRequest {
                target: target(RecordKind::Model, "m"),
                unset: too_many,
                ..UpdateTagsRequest::default()
            })
            .await,
        Code::InvalidArgument,
        &["at most 1000 keys", "1001"],
    );
    // Nothing above changed anything, nor created a project.
    assert!(tag(&mut client, RecordKind::Model, "m", &[]).await.is_empty());
    let listed = client
        .list_models(ListModelsRequest {
            project: "elsewhere".into(),
            ..ListModelsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.models.is_empty());
}

async fn tags_filter_listings_best_and_leaderboard(server: TestServer) {
    let mut client = server.client();
    for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
        seed_model(&mut client, name).await;
        insert_epochs(
            &mut client,
            vec![epoch(name, 0, &[("acc", 0.1 * (i + 1) as f64)])],
        )
        .await;
    }
    tag(
        &mut client,
        RecordKind::Model,
        "a",
        &[("sweep", "lr"), ("seed", "1")],
    )
    .await;
    tag(
        &mut client,
        RecordKind::Model,
        "b",
        &[("sweep", "lr"), ("seed", "2")],
    )
    .await;
    tag(
        &mut client,
        RecordKind::Model,
        "c",
        &[("sweep", "wd"), ("seed", "1")],
    )
    .await;
    // A datablob's tag is not a model's.
    tag(&mut client, RecordKind::Datablob, "d-data", &[("sweep", "lr")]).await;

    let cases: Vec<(Pairs, &[&str])> = vec![
        (&[], &["a", "b", "c", "d"]),
        (&[("sweep", "lr")], &["a", "b"]),
        (&[("seed", "1")], &["a", "c"]),
        (&[("sweep", "lr"), ("seed", "1")], &["a"]),
        (&[("sweep", "lr"), ("seed", "3")], &[]),
        (&[("sweep", "LR")], &[]),
        (&[("nokey", "lr")], &[]),
    ];
    for (filter, expected) in cases {
        let listed: Vec<String> = list_all_models(&mut client, tag_filter(filter), 1)
            .await
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(listed, strings(expected), "list {filter:?}");

        let rows: Vec<String> = full_leaderboard(
            &mut client,
            GetLeaderboardRequest {
                filter: tag_filter(filter),
                ..leaderboard("acc", MetricDirection::Min, 1)
            },
        )
        .await
        .into_iter()
        .map(|r| r.model.unwrap().name)
        .collect();
        assert_eq!(rows, strings(expected), "leaderboard {filter:?}");

        let top = client
            .get_best_model(GetBestModelRequest {
                filter: tag_filter(filter),
                ..best("acc", MetricDirection::Min, 10)
            })
            .await;
        if expected.is_empty() {
            expect_status(top, Code::NotFound, &[]);
        } else {
            let names: Vec<String> = top
                .unwrap()
                .into_inner()
                .models
                .into_iter()
                .map(|b| b.model.unwrap().name)
                .collect();
            assert_eq!(names, strings(expected), "best {filter:?}");
        }
    }
    // Combined with the other filter fields (AND).
    let filter = ModelFilter {
        names: strings(&["b", "c"]),
        tags: tags(&[("sweep", "lr")]),
        ..ModelFilter::default()
    };
    let listed: Vec<String> = list_all_models(&mut client, Some(filter), 0)
        .await
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(listed, ["b"]);
    // Bad filter entries name the field.
    expect_status(
        client
            .list_models(ListModelsRequest {
                filter: tag_filter(&[("", "x")]),
                ..ListModelsRequest::default()
            })
            .await,
        Code::InvalidArgument,
        &["filter.tags[\"\"] (key)"],
    );
    expect_status(
        client
            .list_models(ListModelsRequest {
                filter: tag_filter(&[("k", "a\0")]),
                ..ListModelsRequest::default()
            })
            .await,
        Code::InvalidArgument,
        &["filter.tags[\"k\"]", "nul"],
    );
}

async fn tags_stay_in_their_project(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    for project in ["p1", "p2"] {
        seed_in(&mut client, project).await;
        client
            .insert_epochs(InsertEpochsRequest {
                columns: Vec::new(),
                project: project.into(),
                epochs: vec![epoch("m", 0, &[("acc", 0.5)])],
            })
            .await
            .unwrap();
    }
    let in_p1 = client
        .update_tags(UpdateTagsRequest {
            project: "p1".into(),
            ..update(RecordKind::Model, "m", &[("where", "p1")], &[])
        })
        .await
        .unwrap()
        .into_inner()
        .tags;
    assert_eq!(in_p1, tags(&[("where", "p1")]));
    assert!(
        tag(&mut client, RecordKind::Model, "m", &[]).await.is_empty(),
        "default untouched"
    );
    for (project, expected) in [("p1", vec!["m"]), ("p2", vec![]), ("", vec![])] {
        let listed: Vec<String> = client
            .list_models(ListModelsRequest {
                project: project.into(),
                filter: tag_filter(&[("where", "p1")]),
                ..ListModelsRequest::default()
            })
            .await
            .unwrap()
            .into_inner()
            .models
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(listed, expected, "{project:?}");
    }
}

/// Puts datablob `d`, template `t` and model `m` in `project`.
async fn seed_in(client: &mut Client, project: &str) {
    let mut blob = put_datablob(datablob("d", "g", "{}"), false);
    blob.project = project.to_owned();
    client.put_data_blob(blob).await.unwrap();
    let mut tmpl = put_template(template("t", "g", "{}"), false);
    tmpl.project = project.to_owned();
    client.put_model_template(tmpl).await.unwrap();
    let mut put = put_model(model("m", "d", "t"), false);
    put.project = project.to_owned();
    client.put_model(put).await.unwrap();
}

async fn descriptions_are_set_replaced_and_cleared(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    assert_eq!(list_all_models(&mut client, None, 0).await[0].description, "");
    let note = "# Sweep\n\n* lr **0.1**\n\ttabbed — ünïcode";
    client
        .set_description(describe(RecordKind::Model, "m", note))
        .await
        .unwrap();
    client
        .set_description(describe(RecordKind::Datablob, "m-data", "the data"))
        .await
        .unwrap();
    client
        .set_description(describe(RecordKind::ModelTemplate, "m-tmpl", "the net"))
        .await
        .unwrap();
    assert_eq!(list_all_models(&mut client, None, 0).await[0].description, note);
    assert_eq!(
        list_all_datablobs(&mut client, None, 0).await[0].description,
        "the data"
    );
    assert_eq!(
        list_all_templates(&mut client, None, 0).await[0].description,
        "the net"
    );
    client
        .set_description(describe(RecordKind::Model, "m", "replaced"))
        .await
        .unwrap();
    assert_eq!(
        list_all_models(&mut client, None, 0).await[0].description,
        "replaced"
    );
    client
        .set_description(describe(RecordKind::Model, "m", ""))
        .await
        .unwrap();
    assert_eq!(list_all_models(&mut client, None, 0).await[0].description, "");

    expect_status(
        client
            .set_description(describe(RecordKind::Model, "nope", "x"))
            .await,
        Code::NotFound,
        &["model \"nope\""],
    );
    expect_status(
        client
            .set_description(SetDescriptionRequest {
                target: None,
                ..SetDescriptionRequest::default()
            })
            .await,
        Code::InvalidArgument,
        &["target", "required"],
    );
    expect_status(
        client
            .set_description(describe(RecordKind::Unspecified, "m", "x"))
            .await,
        Code::InvalidArgument,
        &["target.kind"],
    );
    expect_status(
        client
            .set_description(describe(RecordKind::Model, "m", "a\0b"))
            .await,
        Code::InvalidArgument,
        &["description", "nul"],
    );
}

async fn descriptions_up_to_64_kib(server: TestServer) {
    let mut client = server.client();
    seed_model(&mut client, "m").await;
    // Multi-byte characters: the limit is in bytes.
    let at_limit = "é".repeat(32_768);
    assert_eq!(at_limit.len(), 65_536);
    client
        .set_description(describe(RecordKind::Model, "m", &at_limit))
        .await
        .unwrap();
    assert_eq!(
        list_all_models(&mut client, None, 0).await[0].description,
        at_limit
    );
    let over = format!("{at_limit}x");
    expect_status(
        client
            .set_description(describe(RecordKind::Model, "m", &over))
            .await,
        Code::InvalidArgument,
        &["description", "at most 65536 bytes", "65537"],
    );
    assert_eq!(
        list_all_models(&mut client, None, 0).await[0].description,
        at_limit,
        "the stored one stays"
    );
}

/// Tests that set their server up themselves.
mod setup {
    use super::*;
    use crate::security::{READ_TOKEN, WRITE_TOKEN, server_with_tokens, tokens_file, with_token};

    backend_tests_with_setup! {
        tag_calls_need_a_write_token,
    }

    /// UpdateTags and SetDescription write: a read token is PERMISSION_DENIED
    /// naming the method, and nothing changes.
    async fn tag_calls_need_a_write_token(backend: Backend) {
        let (_dir, tokens) = tokens_file();
        let Some(server) = server_with_tokens(backend, &tokens).await else {
            return;
        };
        let mut client = server.client();
        expect_status(
            client
                .update_tags(with_token(
                    update(RecordKind::Model, "m", &[("k", "v")], &[]),
                    READ_TOKEN,
                ))
                .await,
            Code::PermissionDenied,
            &["scope read", "UpdateTags", "needs scope write"],
        );
        expect_status(
            client
                .set_description(with_token(describe(RecordKind::Model, "m", "x"), READ_TOKEN))
                .await,
            Code::PermissionDenied,
            &["SetDescription", "needs scope write"],
        );
        // With a write token the call reaches the store (no such model).
        expect_status(
            client
                .update_tags(with_token(
                    update(RecordKind::Model, "m", &[("k", "v")], &[]),
                    WRITE_TOKEN,
                ))
                .await,
            Code::NotFound,
            &["model \"m\""],
        );
    }
}
