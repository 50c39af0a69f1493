//! The page's JSON API (`/api/v1/`) on both backends: every endpoint,
//! sorting with ties and missing values, offset paging, the `where`
//! filter and its error, bad parameters (400 naming the parameter),
//! unknown projects and models (404), downsampled and exact curves, NaN
//! as a string, tokens (Bearer, the login form's cookie, the project
//! restriction), server-sent events delivering a new epoch, and events
//! streams sharing `--max-watchers` with the gRPC watches.

use std::collections::BTreeSet;
use std::time::Duration;

use http_body_util::BodyExt as _;
use mlmeta_proto::{
    EndRunRequest, RecordKind, RecordRef, RunStatus, SetDescriptionRequest, StartRunRequest,
    UpdateTagsRequest,
};
use mlmeta_server::security::Scope;
use mlmeta_server::security::tokens::tokens_file_line;
use mlmeta_tests::http::Get;
use mlmeta_tests::{Backend, Client, TestServer, backend_tests_with_setup, calls, records};
use serde_json::Value;

backend_tests_with_setup! {
    endpoints_answer_with_sorted_tables_models_and_curves => 120,
    pages_have_totals_and_never_repeat_rows => 120,
    bad_parameters_are_400_naming_the_parameter,
    tokens_cookies_and_projects_guard_the_page,
    events_deliver_each_new_epoch,
    events_streams_hold_a_watcher_slot => 120,
    curves_read_again_follow_every_new_epoch,
}

/// Puts the models the page tests look at: `alpha` (mnist/cnn, 3 epochs),
/// `beta` (cifar/mlp, 2 epochs, last loss NaN, val_acc tied with
/// alpha's best), `gamma` (mnist/mlp, no epochs), `delta` (cifar/cnn,
/// 5,000 epochs of loss, no val_acc).
pub(crate) async fn seed_zoo(client: &mut Client) {
    calls::put_datablob(client, "mnist", "images", r#"{"rows": 60000, "augment": true}"#).await;
    calls::put_datablob(client, "cifar", "images", r#"{"rows": 50000, "augment": true}"#).await;
    calls::put_template(client, "cnn", "nets", r#"{"layers": 4, "lr": 0.01}"#).await;
    calls::put_template(client, "mlp", "nets", r#"{"layers": 2, "lr": 0.01}"#).await;
    for (name, blob, template) in [
        ("alpha", "mnist", "cnn"),
        ("beta", "cifar", "mlp"),
        ("gamma", "mnist", "mlp"),
        ("delta", "cifar", "cnn"),
    ] {
        calls::put_model(client, name, blob, template).await;
    }
    let mut epochs = vec![
        records::epoch("alpha", 1, &[("loss", 1.0), ("val_acc", 0.5)]),
        records::epoch("alpha", 2, &[("loss", 0.5), ("val_acc", 0.7)]),
        records::epoch("alpha", 3, &[("loss", 0.25), ("val_acc", 0.9)]),
        records::epoch("beta", 1, &[("loss", 2.0), ("val_acc", 0.9)]),
        records::epoch("beta", 2, &[("loss", f64::NAN), ("val_acc", 0.9)]),
    ];
    epochs.extend((1..=5_000).map(|i| records::epoch("delta", i, &[("loss", 1.0 / i as f64)])));
    calls::insert_epochs(client, epochs).await;
    // beta's components have tags and a description (the page shows them).
    for (kind, name, key, value) in [
        (RecordKind::Datablob, "cifar", "source", "cifar-10"),
        (RecordKind::ModelTemplate, "mlp", "family", "feedforward"),
    ] {
        let target = Some(RecordRef {
            kind: kind as i32,
            name: name.to_owned(),
        });
        client
            .update_tags(UpdateTagsRequest {
                target: target.clone(),
                set: [(key.to_owned(), value.to_owned())].into(),
                ..Default::default()
            })
            .await
            .unwrap();
        client
            .set_description(SetDescriptionRequest {
                target,
                description: format!("the {name} {}", key),
                ..Default::default()
            })
            .await
            .unwrap();
    }
}

pub(crate) async fn web_server(backend: Backend) -> Option<TestServer> {
    TestServer::with_http(backend, |_| {}).await
}

/// `GET path` answered 200 with JSON.
pub(crate) async fn get_json(server: &TestServer, path: &str) -> Value {
    let reply = Get::new(server.http_addr().unwrap(), path).send().await;
    assert_eq!(reply.status, 200, "{path}: {reply:?}");
    assert_eq!(reply.headers["content-type"], "application/json", "{path}");
    serde_json::from_str(&reply.body).unwrap()
}

fn names(table: &Value) -> Vec<String> {
    table["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn order_of(server: &TestServer, query: &str) -> Vec<String> {
    names(&get_json(server, &format!("/api/v1/projects/default/models?{query}")).await)
}

async fn endpoints_answer_with_sorted_tables_models_and_curves(backend: Backend) {
    let Some(server) = web_server(backend).await else {
        return;
    };
    seed_zoo(&mut server.client()).await;

    let projects = get_json(&server, "/api/v1/projects").await;
    assert!(
        projects["projects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "default")
    );

    // Sorted by the server, ties by name, missing values last both ways.
    let expect = |query: &str, order: &[&str]| {
        (
            query.to_owned(),
            order.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
        )
    };
    for (query, expected) in [
        expect("", &["alpha", "beta", "delta", "gamma"]),
        expect("sort=name&order=desc", &["gamma", "delta", "beta", "alpha"]),
        expect("sort=epochs&order=desc", &["delta", "alpha", "beta", "gamma"]),
        expect("sort=epochs", &["gamma", "beta", "alpha", "delta"]),
        expect(
            "sort=max(val_acc)&order=desc",
            &["alpha", "beta", "delta", "gamma"],
        ),
        expect("sort=min(val_acc)", &["alpha", "beta", "delta", "gamma"]),
        expect(
            "sort=min(val_acc)&order=desc",
            &["beta", "alpha", "delta", "gamma"],
        ),
        // beta's last loss is NaN: it sorts with the models without one.
        expect("sort=last(loss)", &["delta", "alpha", "beta", "gamma"]),
        expect("sort=last(loss)&order=desc", &["alpha", "delta", "beta", "gamma"]),
        expect("sort=status", &["alpha", "beta", "delta", "gamma"]),
        expect("where=epochs%20%3E%3D%203", &["alpha", "delta"]),
        expect(
            "where=datablob%20%3D%20%27cifar%27&sort=name&order=desc",
            &["delta", "beta"],
        ),
    ] {
        assert_eq!(order_of(&server, &query).await, expected, "{query}");
    }

    let table = get_json(&server, "/api/v1/projects/default/models?metrics=loss,val_acc").await;
    assert_eq!(
        (table["total"].as_i64(), table["next_offset"].clone()),
        (Some(4), Value::Null)
    );
    let alpha = &table["models"][0];
    assert_eq!(alpha["status"], "CREATED");
    assert_eq!(
        (alpha["datablob"].as_str(), alpha["template"].as_str()),
        (Some("mnist"), Some("cnn"))
    );
    assert_eq!(alpha["epoch_count"], 3);
    assert_eq!(alpha["metrics"]["loss"]["last"], 0.25);
    assert_eq!(alpha["metrics"]["loss"]["min"], 0.25);
    assert_eq!(alpha["metrics"]["loss"]["max"], 1.0);
    assert_eq!(alpha["metrics"]["val_acc"]["last_epoch"], 3);
    let beta = &table["models"][1];
    assert_eq!(beta["metrics"]["loss"]["last"], "NaN", "NaN travels as a string");
    assert_eq!(beta["metrics"]["loss"]["max"], 2.0);
    let gamma = &table["models"][3];
    assert_eq!(gamma["metrics"], serde_json::json!({}), "no epochs, no cells");

    let model = get_json(&server, "/api/v1/projects/default/models/alpha").await;
    assert_eq!(model["name"], "alpha");
    assert_eq!(model["datablob_detail"]["hyperparams"]["rows"], 60000);
    assert_eq!(model["template_detail"]["hyperparams"]["lr"], 0.01);
    assert_eq!(model["template_detail"]["group_name"], "nets");
    assert_eq!(model["datablob_detail"]["tags"], serde_json::json!({}));
    assert_eq!(model["datablob_detail"]["deleted"], false);
    assert!(model["datablob_detail"]["last_modified_at"].as_i64().unwrap() > 0);
    let beta = get_json(&server, "/api/v1/projects/default/models/beta").await;
    assert_eq!(
        (
            &beta["datablob_detail"]["tags"],
            &beta["datablob_detail"]["description"],
        ),
        (
            &serde_json::json!({"source": "cifar-10"}),
            &Value::from("the cifar source")
        )
    );
    assert_eq!(
        (
            &beta["template_detail"]["tags"],
            &beta["template_detail"]["description"],
        ),
        (
            &serde_json::json!({"family": "feedforward"}),
            &Value::from("the mlp family")
        )
    );
    assert_eq!(model["params"], serde_json::json!({}));
    assert!(model["status_history"].as_array().unwrap().is_empty());
    let summaries: Vec<&str> = model["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(summaries, ["loss", "val_acc"]);

    // Curves: every point of short series, NaN as a string.
    let beta = get_json(
        &server,
        "/api/v1/projects/default/models/beta/metrics?metrics=loss",
    )
    .await;
    assert_eq!(beta["curves"].as_array().unwrap().len(), 1);
    assert_eq!(beta["curves"][0]["epochs"], serde_json::json!([1, 2]));
    assert_eq!(beta["curves"][0]["values"], serde_json::json!([2.0, "NaN"]));
    // Long series: downsampled to about `points`, ends kept; exact=1 sends all.
    let small = get_json(
        &server,
        "/api/v1/projects/default/models/delta/metrics?points=100",
    )
    .await;
    let curve = &small["curves"][0];
    let kept = curve["epochs"].as_array().unwrap();
    assert!(kept.len() <= 100 && kept.len() >= 50, "{}", kept.len());
    assert_eq!(
        (kept[0].as_i64(), kept[kept.len() - 1].as_i64()),
        (Some(1), Some(5000))
    );
    assert_eq!(
        (curve["downsampled"].as_bool(), curve["total_points"].as_i64()),
        (Some(true), Some(5000))
    );
    let exact = get_json(&server, "/api/v1/projects/default/models/delta/metrics?exact=1").await;
    let curve = &exact["curves"][0];
    assert_eq!(curve["epochs"].as_array().unwrap().len(), 5000);
    assert_eq!(curve["downsampled"], false);
    assert_eq!(curve["values"][3], 0.25);
    // The default is about 2,000 points.
    let default = get_json(&server, "/api/v1/projects/default/models/delta/metrics").await;
    let kept = default["curves"][0]["epochs"].as_array().unwrap().len();
    assert!((1_000..=2_000).contains(&kept), "{kept}");

    // Compare: several models, one metric; a model without it has no curve.
    let compare = get_json(
        &server,
        "/api/v1/projects/default/curves?models=beta,alpha,delta&metrics=val_acc",
    )
    .await;
    let got: Vec<(&str, usize)> = compare["curves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["model"].as_str().unwrap(),
                c["epochs"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(got, [("beta", 2), ("alpha", 3)]);

    // Unknown project and model: 404 with a JSON error naming them.
    let addr = server.http_addr().unwrap();
    for (path, needle) in [
        ("/api/v1/projects/nowhere/models", "\"nowhere\""),
        ("/api/v1/projects/default/models/nobody", "\"nobody\""),
        ("/api/v1/projects/default/models/nobody/metrics", "\"nobody\""),
        (
            "/api/v1/projects/default/curves?models=alpha,nobody",
            "models: model \"nobody\"",
        ),
        ("/api/v1/nothing", "/api/v1/nothing"),
    ] {
        let reply = Get::new(addr, path).send().await;
        assert_eq!(reply.status, 404, "{path}: {reply:?}");
        // The API's errors are JSON; the site's fallback is plain text.
        let message = serde_json::from_str::<Value>(&reply.body).map_or(reply.body.clone(), |body| {
            body["error"].as_str().unwrap().to_owned()
        });
        assert!(message.contains(needle), "{path}: {message}");
    }
}

async fn pages_have_totals_and_never_repeat_rows(backend: Backend) {
    let Some(server) = web_server(backend).await else {
        return;
    };
    let mut client = server.client();
    calls::put_datablob(&mut client, "d", "g", "{}").await;
    calls::put_template(&mut client, "t", "g", "{}").await;
    for i in 0..230 {
        calls::put_model(&mut client, &format!("m{i:03}"), "d", "t").await;
    }
    // Every model has the same epoch count: the sort is all ties, which
    // the name breaks, so offsets never repeat or skip a row.
    let mut seen = Vec::new();
    let mut offset = Some(0);
    let mut pages = 0;
    while let Some(at) = offset {
        let page = get_json(
            &server,
            &format!("/api/v1/projects/default/models?sort=epochs&order=desc&limit=100&offset={at}"),
        )
        .await;
        assert_eq!(page["total"], 230);
        seen.extend(names(&page));
        offset = page["next_offset"].as_i64();
        pages += 1;
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..230).map(|i| format!("m{i:03}")).collect();
    assert_eq!(seen, expected, "every model once, in name order");
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), 230);
    // Past the end: no rows, the total still there.
    let past = get_json(&server, "/api/v1/projects/default/models?offset=1000").await;
    assert_eq!((names(&past).len(), past["total"].as_i64()), (0, Some(230)));
    assert_eq!(past["next_offset"], Value::Null);
    let second = get_json(&server, "/api/v1/projects/default/models?offset=100&limit=100").await;
    assert_eq!(second["next_offset"], 200);
}

async fn bad_parameters_are_400_naming_the_parameter(backend: Backend) {
    let Some(server) = web_server(backend).await else {
        return;
    };
    seed_zoo(&mut server.client()).await;
    let addr = server.http_addr().unwrap();
    for (path, needle) in [
        (
            "/api/v1/projects/default/models?sort=bogus",
            "sort: must be name, created",
        ),
        (
            "/api/v1/projects/default/models?sort=max(loss",
            "sort: must be name",
        ),
        (
            "/api/v1/projects/default/models?order=up",
            "order: must be asc or desc",
        ),
        (
            "/api/v1/projects/default/models?limit=0",
            "limit: must be between 1 and 1000",
        ),
        (
            "/api/v1/projects/default/models?limit=many",
            "limit: must be an integer",
        ),
        (
            "/api/v1/projects/default/models?offset=-1",
            "offset: must be between 0",
        ),
        (
            "/api/v1/projects/default/models?colour=red",
            "colour: unknown parameter",
        ),
        (
            "/api/v1/projects/default/models?where=epochs%20%3C",
            "where: column 9: expected a value after '<'",
        ),
        (
            "/api/v1/projects/default/models/alpha/metrics?points=5",
            "points: must be between 10 and 100000",
        ),
        (
            "/api/v1/projects/default/models/alpha/metrics?exact=yes",
            "exact: must be 1 or 0",
        ),
        (
            "/api/v1/projects/default/curves",
            "models: name at least one model",
        ),
        ("/api/v1/projects/default/curves?models=a%00b", "models:"),
        ("/api/v1/projects/a%00b/models", "project:"),
    ] {
        let reply = Get::new(addr, path).send().await;
        assert_eq!(reply.status, 400, "{path}: {reply:?}");
        let body: Value = serde_json::from_str(&reply.body)
            .unwrap_or_else(|_| panic!("{path}: JSON error: {}", reply.body));
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(needle), "{path}: {message}");
    }
}

const READ_VISION: &str = "read-vision-token-YWJjZGVmZ2hpams";
const WRITE_ALL: &str = "write-all-token-bG1ub3BxcnN0dXY";

async fn tokens_cookies_and_projects_guard_the_page(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.txt");
    let restricted = format!(
        "{} projects=vision",
        tokens_file_line("viewer", Scope::Read, READ_VISION).unwrap()
    );
    let text = format!(
        "{}\n{restricted}\n",
        tokens_file_line("trainer", Scope::Write, WRITE_ALL).unwrap()
    );
    mlmeta_tests::write_private(&tokens, text);
    let Some(server) = TestServer::with_http(backend, |config| config.auth_tokens = Some(tokens)).await
    else {
        return;
    };
    let addr = server.http_addr().unwrap();
    let mut client = server.client();
    let mut blob = records::put_datablob(records::datablob("d", "g", "{}"), false);
    blob.project = "vision".into();
    let mut put = tonic::Request::new(blob);
    put.metadata_mut()
        .insert("authorization", format!("Bearer {WRITE_ALL}").parse().unwrap());
    client.put_data_blob(put).await.unwrap();

    // No token: the API says 401 in JSON; a page shows the login form.
    let api = Get::new(addr, "/api/v1/projects/vision/models").send().await;
    assert_eq!(api.status, 401, "{api:?}");
    assert!(
        api.body.contains("\"error\"") || api.body.contains("token"),
        "{}",
        api.body
    );
    let page = Get::new(addr, "/model/x?project=vision").send().await;
    assert_eq!(page.status, 401);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.body.contains("id=\"login-form\"") && page.body.contains("value=\"/model/x?project=vision\""),
        "{}",
        page.body
    );
    // The form and the static files need no token.
    for path in [
        "/login",
        "/static/app.js",
        "/static/app.css",
        "/static/vendor/uPlot.iife.min.js",
    ] {
        assert_eq!(Get::new(addr, path).send().await.status, 200, "{path}");
    }

    // Bearer: the restricted token reads its project, not another.
    let vision = Get::new(addr, "/api/v1/projects/vision/models")
        .bearer(READ_VISION)
        .send()
        .await;
    assert_eq!(vision.status, 200, "{vision:?}");
    let other = Get::new(addr, "/api/v1/projects/default/models")
        .bearer(READ_VISION)
        .send()
        .await;
    assert_eq!(other.status, 403, "{other:?}");
    assert!(
        other.body.contains("default") && other.body.contains("viewer"),
        "{}",
        other.body
    );
    let listed = Get::new(addr, "/api/v1/projects")
        .bearer(READ_VISION)
        .send()
        .await;
    let listed: Value = serde_json::from_str(&listed.body).unwrap();
    assert_eq!(
        listed["projects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].clone())
            .collect::<Vec<_>>(),
        ["vision"]
    );
    let wrong = Get::new(addr, "/api/v1/projects")
        .bearer("not-a-token")
        .send()
        .await;
    assert_eq!(wrong.status, 401);

    // The login form: a wrong token shows the form again with the error.
    let refused = Get::new(addr, "/login")
        .post_form("token=wrong&next=%2F")
        .send()
        .await;
    assert_eq!(refused.status, 401);
    assert!(
        refused.body.contains("id=\"login-error\"") && refused.body.contains("not valid"),
        "{}",
        refused.body
    );
    assert!(!refused.headers.contains_key("set-cookie"));
    // The right one sets the cookie and sends the browser on.
    let body = format!("token={READ_VISION}&next=%2Fcompare%3Fproject%3Dvision");
    let accepted = Get::new(addr, "/login").post_form(&body).send().await;
    assert_eq!(accepted.status, 303, "{accepted:?}");
    assert_eq!(accepted.headers["location"], "/compare?project=vision");
    let cookie = accepted.headers["set-cookie"].to_str().unwrap().to_owned();
    assert_eq!(
        cookie,
        format!("mlmeta_token={READ_VISION}; HttpOnly; SameSite=Strict; Path=/")
    );
    let sent = format!("theme=dark; mlmeta_token={READ_VISION}");
    let with_cookie = Get::new(addr, "/api/v1/projects/vision/models")
        .header("cookie", &sent)
        .send()
        .await;
    assert_eq!(with_cookie.status, 200, "{with_cookie:?}");
    let page = Get::new(addr, "/").header("cookie", &sent).send().await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/static/app.js"));
    let outside = Get::new(addr, "/api/v1/projects/default/models")
        .header("cookie", &sent)
        .send()
        .await;
    assert_eq!(outside.status, 403, "the cookie carries the same restriction");
    let stale = Get::new(addr, "/api/v1/projects")
        .header("cookie", "mlmeta_token=stale")
        .send()
        .await;
    assert_eq!(stale.status, 401);
    // An open redirect is not: `next` must be a path of this site.
    let body = format!("token={READ_VISION}&next=https%3A%2F%2Fevil.example%2F");
    let accepted = Get::new(addr, "/login").post_form(&body).send().await;
    assert_eq!(accepted.headers["location"], "/");
    let logout = Get::new(addr, "/logout").post_form("").send().await;
    assert_eq!(logout.status, 303);
    assert!(
        logout.headers["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

async fn events_deliver_each_new_epoch(backend: Backend) {
    let Some(server) = web_server(backend).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "live").await;
    client
        .start_run(StartRunRequest {
            model_name: "live".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    calls::insert_epochs(&mut client, vec![records::epoch("live", 1, &[("loss", 1.0)])]).await;
    let addr = server.http_addr().unwrap();
    let (status, mut body) = Get::new(addr, "/api/v1/projects/default/models/live/events")
        .open()
        .await;
    assert_eq!(status, 200);
    let mut text = String::new();
    let mut read_until = async |needle: &str, text: &mut String| {
        tokio::time::timeout(Duration::from_secs(20), async {
            while !text.contains(needle) {
                let frame = body.frame().await.expect("the stream stays open").unwrap();
                if let Some(data) = frame.data_ref() {
                    text.push_str(std::str::from_utf8(data).unwrap());
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {needle:?} in {text:?}"));
    };
    read_until("event: status\ndata: {\"status\":\"RUNNING\"}", &mut text).await;
    // Epochs before the stream opened are the page's to load, not sent.
    calls::insert_epochs(
        &mut client,
        vec![records::epoch("live", 2, &[("loss", f64::NAN), ("acc", 0.5)])],
    )
    .await;
    read_until("event: epoch\ndata: {\"epoch\":2,", &mut text).await;
    assert!(
        text.contains(r#"{"epoch":2,"metrics":{"acc":0.5,"loss":"NaN"}}"#),
        "{text}"
    );
    assert!(!text.contains("\"epoch\":1,"), "{text}");
    client
        .end_run(EndRunRequest {
            model_name: "live".into(),
            status: RunStatus::Finished as i32,
            project: String::new(),
        })
        .await
        .unwrap();
    read_until("data: {\"status\":\"FINISHED\"}", &mut text).await;
}

/// Reads `body` until `needle` arrived (20 s at most).
async fn read_events_until(body: &mut hyper::body::Incoming, needle: &str) {
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while !text.contains(needle) {
            let frame = body.frame().await.expect("the stream stays open").unwrap();
            if let Some(data) = frame.data_ref() {
                text.push_str(std::str::from_utf8(data).unwrap());
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in {text:?}"));
}

/// An events stream takes a `--max-watchers` slot for its life, shared
/// with the gRPC watches: with 2 slots, one events stream and one
/// WatchModels fill them, a third (either kind) is refused with 429
/// naming the flag while page reads still work, and a client that goes
/// away frees its slot.
async fn events_streams_hold_a_watcher_slot(backend: Backend) {
    let Some(server) = TestServer::with_http(backend, |config| config.max_watchers = 2).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "live").await;
    let addr = server.http_addr().unwrap();
    let path = "/api/v1/projects/default/models/live/events";
    let (status, mut first) = Get::new(addr, path).open().await;
    assert_eq!(status, 200);
    read_events_until(&mut first, "event: status").await;
    let mut watch = client
        .watch_models(mlmeta_proto::WatchModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    watch.message().await.unwrap().unwrap();

    let refused = Get::new(addr, path).send().await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(refused.body.contains("--max-watchers"), "{refused:?}");
    assert_eq!(refused.headers["retry-after"], "1");
    let status = client
        .watch_models(mlmeta_proto::WatchModelsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status}");
    assert!(status.message().contains("--max-watchers"), "{status}");
    // Page reads take unary slots, not watcher ones.
    get_json(&server, "/api/v1/projects/default/models/live").await;

    // The events client goes away: its slot comes back (for an events
    // stream or a watch alike).
    drop(first);
    let mut second = None;
    for _ in 0..100 {
        let (status, body) = Get::new(addr, path).open().await;
        if status == 200 {
            second = Some(body);
            break;
        }
        assert_eq!(status, 429);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut second = second.expect("the slot of a closed events stream is freed");
    read_events_until(&mut second, "event: status").await;
    // Full again: the freed slot went to the new stream.
    assert_eq!(Get::new(addr, path).send().await.status, 429);
    drop(watch);
    drop(second);
}

/// The epochs and values of model `name`'s metric `m`, exact.
async fn exact_curve(server: &TestServer, name: &str) -> Vec<(i64, f64)> {
    let answer = get_json(
        server,
        &format!("/api/v1/projects/default/models/{name}/metrics?exact=1&metrics=m"),
    )
    .await;
    let Some(curve) = answer["curves"].as_array().unwrap().first() else {
        return Vec::new();
    };
    let epochs = curve["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_i64().unwrap());
    let values = curve["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap());
    epochs.zip(values).collect()
}

/// The server keeps decoded curves between reads: a read after epochs
/// were appended, stored out of order, or written through a second
/// request while the first read was cached still shows every epoch, and
/// a purged and re-created model starts afresh.
async fn curves_read_again_follow_every_new_epoch(backend: Backend) {
    let Some(server) = web_server(backend).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "run").await;
    let point = |n: i64| records::epoch("run", n, &[("m", n as f64 / 8.0)]);
    let expected = |nums: &[i64]| nums.iter().map(|&n| (n, n as f64 / 8.0)).collect::<Vec<_>>();
    assert!(exact_curve(&server, "run").await.is_empty());
    calls::insert_epochs(&mut client, (1..=3).map(point).collect()).await;
    assert_eq!(exact_curve(&server, "run").await, expected(&[1, 2, 3]));
    // Appended: read from the cached end on.
    calls::insert_epochs(&mut client, vec![point(4), point(6)]).await;
    assert_eq!(exact_curve(&server, "run").await, expected(&[1, 2, 3, 4, 6]));
    // Before the cached end, and after it in the same request.
    calls::insert_epochs(&mut client, vec![point(5), point(7)]).await;
    assert_eq!(
        exact_curve(&server, "run").await,
        expected(&[1, 2, 3, 4, 5, 6, 7])
    );
    // Only before it; then an epoch without the metric.
    calls::insert_epochs(&mut client, vec![point(0)]).await;
    calls::insert_epochs(&mut client, vec![records::epoch("run", 8, &[("other", 1.0)])]).await;
    assert_eq!(
        exact_curve(&server, "run").await,
        expected(&[0, 1, 2, 3, 4, 5, 6, 7])
    );
    // A repeat stores nothing and changes nothing.
    calls::insert_epochs(&mut client, vec![point(2)]).await;
    assert_eq!(
        exact_curve(&server, "run").await,
        expected(&[0, 1, 2, 3, 4, 5, 6, 7])
    );

    // Purged and created again under the same name: only the new epochs.
    let target = Some(RecordRef {
        kind: RecordKind::Model as i32,
        name: "run".to_owned(),
    });
    client
        .delete_record(mlmeta_proto::DeleteRecordRequest {
            target,
            ..Default::default()
        })
        .await
        .unwrap();
    client
        .purge(mlmeta_proto::PurgeRequest {
            model_name: "run".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    calls::seed_model(&mut client, "run").await;
    calls::insert_epochs(&mut client, vec![point(9)]).await;
    assert_eq!(exact_curve(&server, "run").await, expected(&[9]));
}
