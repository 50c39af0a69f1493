//! Projects: names are unique per project and every call stays inside the
//! project it names; ListProjects; tokens restricted to some projects; an
//! existing database migrating with everything into `default`.

use diesel::connection::SimpleConnection as _;
use diesel::{Connection as _, PgConnection, SqliteConnection};
use mlmeta_proto::{
    GetCurrentEpochRequest, InsertEpochsRequest, ListDataBlobsRequest, ListEpochsRequest, ListModelsRequest,
    ListProjectsRequest, MetricDirection,
};
use mlmeta_server::security::Scope;
use mlmeta_server::security::tokens::tokens_file_line;
use mlmeta_tests::calls::{Client, expect_status};
use mlmeta_tests::records::{
    best, datablob, epoch, leaderboard, model, put_datablob, put_model, put_template, template,
};
use mlmeta_tests::{Backend, TestServer, backend_tests, backend_tests_with_setup};
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};

backend_tests! {
    same_names_live_apart_in_two_projects,
    projects_are_listed_once_something_is_stored,
    page_tokens_do_not_cross_projects,
    project_names_follow_the_name_rules,
}

/// Puts datablob `d`, template `t` (with `hyperparams`) and model `m` in
/// `project`, and epochs 0..=2 of `m` whose `acc` ends at `acc`.
async fn seed(client: &mut Client, project: &str, hyperparams: &str, acc: f64) {
    let mut blob = put_datablob(datablob("d", "g", hyperparams), false);
    blob.project = project.to_owned();
    let stored = client.put_data_blob(blob).await.unwrap().into_inner();
    assert!(!stored.already_existed, "{project}: d is new there");
    assert_eq!(stored.datablob.unwrap().project, project);
    let mut tmpl = put_template(template("t", "g", hyperparams), false);
    tmpl.project = project.to_owned();
    client.put_model_template(tmpl).await.unwrap();
    let mut put = put_model(model("m", "d", "t"), false);
    put.project = project.to_owned();
    let stored = client.put_model(put).await.unwrap().into_inner();
    assert_eq!(stored.model.unwrap().project, project);
    let reply = client
        .insert_epochs(InsertEpochsRequest {
            columns: Vec::new(),
            project: project.to_owned(),
            epochs: vec![
                epoch("m", 0, &[("acc", acc / 2.0)]),
                epoch("m", 1, &[("acc", acc)]),
                epoch("m", 2, &[("acc", acc / 3.0)]),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((reply.inserted, reply.skipped), (3, 0), "{project}");
}

async fn same_names_live_apart_in_two_projects(server: TestServer) {
    let mut client = server.client();
    seed(&mut client, "vision", r#"{"px": 28}"#, 0.9).await;
    seed(&mut client, "nlp", r#"{"vocab": 30000}"#, 0.6).await;

    for (project, hyperparams, acc) in [
        ("vision", r#"{"px":28}"#, 0.9),
        ("nlp", r#"{"vocab":30000}"#, 0.6),
    ] {
        let blobs = client
            .list_data_blobs(ListDataBlobsRequest {
                project: project.to_owned(),
                ..ListDataBlobsRequest::default()
            })
            .await
            .unwrap()
            .into_inner()
            .datablobs;
        assert_eq!(blobs.len(), 1, "{project}");
        assert_eq!(
            (blobs[0].project.as_str(), blobs[0].hyperparams_json.as_str()),
            (project, hyperparams)
        );

        let models = client
            .list_models(ListModelsRequest {
                project: project.to_owned(),
                ..ListModelsRequest::default()
            })
            .await
            .unwrap()
            .into_inner()
            .models;
        assert_eq!(models.len(), 1, "{project}");
        assert_eq!(models[0].project, project);

        let mut request = best("acc", MetricDirection::Max, 5);
        request.project = project.to_owned();
        let best = client.get_best_model(request).await.unwrap().into_inner().models;
        assert_eq!(best.len(), 1, "{project}: only its own model ranks");
        assert_eq!(
            (
                best[0].metric_value,
                best[0].best_epoch.as_ref().unwrap().epoch_num
            ),
            (acc, 1)
        );
        assert_eq!(best[0].datablob.as_ref().unwrap().hyperparams_json, hyperparams);

        let epochs = client
            .list_epochs(ListEpochsRequest {
                project: project.to_owned(),
                model_names: vec!["m".into()],
                ..ListEpochsRequest::default()
            })
            .await
            .unwrap()
            .into_inner()
            .epochs;
        assert_eq!(
            epochs.iter().map(|e| e.metrics["acc"]).collect::<Vec<_>>(),
            [acc / 2.0, acc, acc / 3.0]
        );
    }

    // `default` holds nothing: names there are unknown.
    let current = client
        .get_current_epoch(GetCurrentEpochRequest {
            model_name: "m".into(),
            project: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!current.model_exists);
    let result = client
        .list_epochs(ListEpochsRequest {
            model_names: vec!["m".into()],
            ..ListEpochsRequest::default()
        })
        .await;
    expect_status(result, Code::NotFound, &["\"m\" does not exist"]);
    // Epochs for a model of another project are refused, naming the project.
    let result = client
        .insert_epochs(InsertEpochsRequest {
            columns: Vec::new(),
            project: "speech".into(),
            epochs: vec![epoch("m", 9, &[("acc", 1.0)])],
        })
        .await;
    expect_status(
        result,
        Code::NotFound,
        &["model \"m\" does not exist in project \"speech\""],
    );
    // A model's datablob and template must be in its own project.
    let mut put = put_model(model("m2", "d", "t"), false);
    put.project = "speech".into();
    expect_status(
        client.put_model(put).await,
        Code::FailedPrecondition,
        &["datablob \"d\""],
    );
}

async fn projects_are_listed_once_something_is_stored(server: TestServer) {
    let mut client = server.client();
    let names = |client: &mut Client| {
        let mut client = client.clone();
        async move {
            client
                .list_projects(ListProjectsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .projects
                .into_iter()
                .map(|p| {
                    assert!(p.created_at.is_some(), "{p:?}");
                    p.name
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names(&mut client).await, ["default"]);
    // Reading a project does not make it.
    client
        .list_models(ListModelsRequest {
            project: "ghost".into(),
            ..ListModelsRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(names(&mut client).await, ["default"]);
    seed(&mut client, "vision", "{}", 0.5).await;
    seed(&mut client, "nlp", "{}", 0.5).await;
    assert_eq!(names(&mut client).await, ["default", "nlp", "vision"]);
    let first = client
        .list_projects(ListProjectsRequest {
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.projects.len(), 2);
    let second = client
        .list_projects(ListProjectsRequest {
            page_size: 2,
            page_token: first.next_page_token,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.projects[0].name, "vision");
    assert!(second.next_page_token.is_empty());
}

async fn page_tokens_do_not_cross_projects(server: TestServer) {
    let mut client = server.client();
    for project in ["a", "b"] {
        for name in ["x", "y", "z"] {
            let mut blob = put_datablob(datablob(name, "g", "{}"), false);
            blob.project = project.to_owned();
            client.put_data_blob(blob).await.unwrap();
        }
    }
    let page = |project: &str, token: String| ListDataBlobsRequest {
        project: project.to_owned(),
        page_size: 1,
        page_token: token,
        ..ListDataBlobsRequest::default()
    };
    let first = client
        .list_data_blobs(page("a", String::new()))
        .await
        .unwrap()
        .into_inner();
    let token = first.next_page_token;
    assert!(!token.is_empty());
    let next = client
        .list_data_blobs(page("a", token.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.datablobs[0].name, "y");
    expect_status(
        client.list_data_blobs(page("b", token)).await,
        Code::InvalidArgument,
        &["page_token"],
    );
}

async fn project_names_follow_the_name_rules(server: TestServer) {
    let mut client = server.client();
    for bad in ["a\u{0}b", "tab\there", &"p".repeat(256)] {
        let result = client
            .list_models(ListModelsRequest {
                project: bad.to_owned(),
                ..ListModelsRequest::default()
            })
            .await;
        expect_status(result, Code::InvalidArgument, &["project: "]);
        let mut blob = put_datablob(datablob("d", "g", "{}"), false);
        blob.project = bad.to_owned();
        expect_status(
            client.put_data_blob(blob).await,
            Code::InvalidArgument,
            &["project: "],
        );
    }
    // Hostile but valid names are just names.
    seed(&mut client, "x' OR '1'='1", "{}", 0.5).await;
    seed(&mut client, "../..", "{}", 0.5).await;
}

/// Tests that set their server up themselves.
mod setup {
    use super::*;

    backend_tests_with_setup! {
        tokens_restricted_to_projects_stay_in_them,
        an_existing_database_moves_into_default,
    }

    const VISION_TOKEN: &str = "vision-trainer-token-0123456789";
    const ANY_TOKEN: &str = "any-reader-token-0123456789";

    fn with_token<T>(message: T, token: &str) -> Request<T> {
        let mut request = Request::new(message);
        let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
        request
    }

    async fn tokens_restricted_to_projects_stay_in_them(backend: Backend) {
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.txt");
        let text = format!(
            "{} projects=vision\n{}\n",
            tokens_file_line("vision-trainer", Scope::Write, VISION_TOKEN).unwrap(),
            tokens_file_line("reader", Scope::Read, ANY_TOKEN).unwrap(),
        );
        mlmeta_tests::write_private(&tokens, text);
        let Some(server) = TestServer::with(backend, |config| config.auth_tokens = Some(tokens), None).await
        else {
            return;
        };
        let mut client = server.client();
        let mut blob = put_datablob(datablob("d", "g", "{}"), false);
        blob.project = "vision".into();
        client
            .put_data_blob(with_token(blob.clone(), VISION_TOKEN))
            .await
            .unwrap();
        for project in ["", "default", "nlp"] {
            blob.project = project.to_owned();
            let result = client.put_data_blob(with_token(blob.clone(), VISION_TOKEN)).await;
            let shown = if project.is_empty() { "default" } else { project };
            expect_status(
                result,
                Code::PermissionDenied,
                &[&format!("project {shown:?}"), "vision-trainer"],
            );
            let result = client
                .list_models(with_token(
                    ListModelsRequest {
                        project: project.to_owned(),
                        ..ListModelsRequest::default()
                    },
                    VISION_TOKEN,
                ))
                .await;
            expect_status(result, Code::PermissionDenied, &[&format!("project {shown:?}")]);
        }
        // A stream is checked message by message.
        let messages = vec![InsertEpochsRequest {
            columns: Vec::new(),
            project: "nlp".into(),
            epochs: vec![],
        }];
        let result = client
            .stream_epochs(with_token(tokio_stream::iter(messages), VISION_TOKEN))
            .await;
        expect_status(result, Code::PermissionDenied, &["project \"nlp\""]);

        let projects = |token: &'static str| {
            let mut client = client.clone();
            async move {
                client
                    .list_projects(with_token(ListProjectsRequest::default(), token))
                    .await
                    .unwrap()
                    .into_inner()
                    .projects
                    .into_iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(projects(VISION_TOKEN).await, ["vision"]);
        assert_eq!(projects(ANY_TOKEN).await, ["default", "vision"]);
    }

    /// The schema before projects: the first migration's tables, with records.
    async fn an_existing_database_moves_into_default(backend: Backend) {
        let first = |backend: &str| {
            std::fs::read_to_string(format!(
                "{}/../migrations/{backend}/2026-11-23-000000_create_tables/up.sql",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        };
        let old_records = "
            INSERT INTO components (id, kind, name, group_name, hyperparams, created_at, last_modified_at)
                VALUES (1, 'datablob', 'd', 'g', '{\"rows\":10}', 1, 1), (2, 'model_template', 't', 'g', '{}', 1, 1);
            INSERT INTO models (id, name, model_class_name, datablob_id, model_template_id, created_at, last_modified_at)
                VALUES (1, 'm', 'Net', 1, 2, 1, 1);
            INSERT INTO metric_summaries VALUES (1, 'acc', 0.75, 3, 0.25, 1);
            INSERT INTO __diesel_schema_migrations (version) VALUES ('20261123000000');";
        let dir = tempfile::tempdir().unwrap();
        let (url, _database) = match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("old.db").display());
                let mut conn = SqliteConnection::establish(url.trim_start_matches("sqlite://")).unwrap();
                conn.batch_execute(&first("sqlite")).unwrap();
                conn.batch_execute(
                    "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
                     run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);",
                )
                .unwrap();
                conn.batch_execute(old_records).unwrap();
                conn.batch_execute(
                    "INSERT INTO epochs (model_id, epoch_num, metrics, recorded_at) VALUES (1, 1, X'01', 1), (1, 3, X'01', 1);",
                )
                .unwrap();
                (url, None)
            }
            Backend::Postgres => {
                let Some(database) = mlmeta_tests::TestDatabase::create().await else {
                    return;
                };
                let mut conn = PgConnection::establish(database.url()).unwrap();
                conn.batch_execute(&first("postgres")).unwrap();
                conn.batch_execute(
                    "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
                     run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);",
                )
                .unwrap();
                conn.batch_execute(old_records).unwrap();
                conn.batch_execute(
                    "INSERT INTO epochs (model_id, epoch_num, metrics, recorded_at) VALUES (1, 1, '\\x01', 1), (1, 3, '\\x01', 1);",
                )
                .unwrap();
                // The ids above were given, not drawn from the sequences.
                conn.batch_execute(
                    "SELECT setval('components_id_seq', 2); SELECT setval('models_id_seq', 1);",
                )
                .unwrap();
                (database.url().to_owned(), Some(database))
            }
        };
        let Some(server) = TestServer::with(
            backend,
            |config| config.database_url = mlmeta_server::DatabaseUrl::parse(&url).unwrap(),
            None,
        )
        .await
        else {
            return;
        };
        let mut client = server.client();
        let models = client
            .list_models(ListModelsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .models;
        assert_eq!(models.len(), 1);
        assert_eq!(
            (models[0].name.as_str(), models[0].project.as_str()),
            ("m", "default")
        );
        assert_eq!(models[0].datablob_name, "d");
        assert_eq!(
            (models[0].epoch_count, models[0].current_epoch),
            (2, Some(3)),
            "epoch counts are filled from the stored epochs"
        );
        let board = client
            .get_leaderboard(leaderboard("acc", MetricDirection::Max, 10))
            .await
            .unwrap()
            .into_inner()
            .rows;
        assert_eq!((board[0].best_value, board[0].best_epoch_num), (0.75, 3));
        // The old records keep their names in `default`, and other projects may
        // now use the same names.
        seed(&mut client, "vision", "{}", 0.5).await;
    }
}
