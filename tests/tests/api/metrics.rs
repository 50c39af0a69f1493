//! `/metrics` scraped and parsed: the gRPC counters move by exactly the
//! calls made (unary, client stream, bidirectional stream, errors with
//! their codes, calls the guard refused), the ingest counters by exactly
//! the epochs stored and skipped; refusals are counted by reason; HTTP
//! requests by route template and status code.

use mlmeta_proto::{
    GetModelRequest, ListModelsRequest, WatchEpochsRequest, WatchModelsRequest, WriteEpochsRequest,
};
use mlmeta_tests::calls::{self, expect_status};
use mlmeta_tests::http::{Get, Scrape};
use mlmeta_tests::records::{epoch, insert};
use mlmeta_tests::{Backend, TestServer, backend_tests_with_setup};
use tonic::Code;

use crate::security::{READ_TOKEN, WRITE_TOKEN, tokens_file, with_token};

backend_tests_with_setup! {
    grpc_and_ingest_counters_move_by_exactly_the_calls_made,
    refused_calls_are_counted_with_their_code_and_reason,
    watch_subscribers_are_the_watch_streams_open,
    statements_per_epoch_write_are_pinned,
    watchers_read_this_servers_commits_from_memory,
    http_requests_are_counted_by_route_template_and_code,
}

const SERVICE: &str = "mlmeta.v1.MetadataService";

async fn scrape(server: &TestServer) -> Scrape {
    let reply = Get::new(server.http_addr().unwrap(), "/metrics").send().await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{reply:?}"
    );
    Scrape::parse(&reply.body)
}

/// How much `name{labels}` grew from `before` to `after`.
fn delta(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.sum(name, labels) - before.sum(name, labels)
}

fn method<'a>(name: &'a str, labels: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![("grpc_service", SERVICE), ("grpc_method", name)];
    all.extend_from_slice(labels);
    all
}

async fn grpc_and_ingest_counters_move_by_exactly_the_calls_made(backend: Backend) {
    let Some(server) = TestServer::with_http(backend, |_| {}).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let before = scrape(&server).await;

    for _ in 0..3 {
        client.list_models(ListModelsRequest::default()).await.unwrap();
    }
    for _ in 0..2 {
        let missing = client
            .get_model(GetModelRequest {
                model_name: "nope".into(),
                ..Default::default()
            })
            .await;
        expect_status(missing, Code::NotFound, &["nope"]);
    }
    // 4 stored; then 2 again (skipped) and 1 new.
    let epochs = |nums: &[i64]| insert(nums.iter().map(|&n| epoch("m", n, &[("loss", 1.0)])).collect());
    client.insert_epochs(epochs(&[0, 1, 2, 3])).await.unwrap();
    client.insert_epochs(epochs(&[2, 3, 4])).await.unwrap();
    // A client stream of 3 messages (one empty: no transaction).
    let messages = vec![epochs(&[5]), epochs(&[]), epochs(&[5, 6])];
    let streamed = client
        .stream_epochs(futures::stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((streamed.inserted, streamed.skipped), (2, 1));
    // A bidirectional stream: 2 batches in, 2 answers out.
    let batches = vec![
        WriteEpochsRequest {
            epochs: vec![epoch("m", 7, &[("loss", 1.0)])],
            ..Default::default()
        },
        WriteEpochsRequest {
            epochs: vec![epoch("m", 8, &[("loss", 1.0)])],
            ..Default::default()
        },
    ];
    let mut answers = client
        .write_epochs(futures::stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    let mut answered = 0;
    while answers.message().await.unwrap().is_some() {
        answered += 1;
    }
    assert_eq!(answered, 2);

    let after = scrape(&server).await;
    let d = |name: &str, labels: &[(&str, &str)]| delta(&before, &after, name, labels);
    assert_eq!(
        d(
            "grpc_server_started_total",
            &method("ListModels", &[("grpc_type", "unary")])
        ),
        3.0
    );
    assert_eq!(
        d(
            "grpc_server_handled_total",
            &method("ListModels", &[("grpc_code", "OK")])
        ),
        3.0
    );
    assert_eq!(
        d("grpc_server_handling_seconds_count", &method("ListModels", &[])),
        3.0
    );
    assert_eq!(
        d(
            "grpc_server_handling_seconds_bucket",
            &method("ListModels", &[("le", "+Inf")])
        ),
        3.0
    );
    assert_eq!(
        d("grpc_server_msg_received_total", &method("ListModels", &[])),
        3.0
    );
    assert_eq!(d("grpc_server_msg_sent_total", &method("ListModels", &[])), 3.0);
    assert_eq!(d("grpc_server_started_total", &method("GetModel", &[])), 2.0);
    assert_eq!(
        d(
            "grpc_server_handled_total",
            &method("GetModel", &[("grpc_code", "NotFound")])
        ),
        2.0
    );
    assert_eq!(
        d(
            "grpc_server_handled_total",
            &method("GetModel", &[("grpc_code", "OK")])
        ),
        0.0
    );
    // NOT_FOUND answers carry no message.
    assert_eq!(d("grpc_server_msg_sent_total", &method("GetModel", &[])), 0.0);
    assert_eq!(
        d(
            "grpc_server_handled_total",
            &method("InsertEpochs", &[("grpc_code", "OK")])
        ),
        2.0
    );
    let stream = method("StreamEpochs", &[("grpc_type", "client_stream")]);
    assert_eq!(d("grpc_server_started_total", &stream), 1.0);
    assert_eq!(
        d(
            "grpc_server_handled_total",
            &method("StreamEpochs", &[("grpc_code", "OK")])
        ),
        1.0
    );
    assert_eq!(d("grpc_server_msg_received_total", &stream), 3.0);
    assert_eq!(d("grpc_server_msg_sent_total", &stream), 1.0);
    let bidi = method("WriteEpochs", &[("grpc_type", "bidi_stream")]);
    assert_eq!(
        d(
            "grpc_server_handled_total",
            &method("WriteEpochs", &[("grpc_code", "OK")])
        ),
        1.0
    );
    assert_eq!(d("grpc_server_msg_received_total", &bidi), 2.0);
    assert_eq!(d("grpc_server_msg_sent_total", &bidi), 2.0);
    assert_eq!(
        after.sum("mlmeta_grpc_streams_open", &[]),
        0.0,
        "every stream ended"
    );
    assert_eq!(after.types["grpc_server_handling_seconds"], "histogram");

    // Ingest: 4 + 1 + 2 + 2 stored, 2 + 1 skipped.
    assert_eq!(d("mlmeta_ingest_epochs_inserted_total", &[]), 9.0);
    assert_eq!(d("mlmeta_ingest_epochs_skipped_total", &[]), 3.0);
    let transactions = d("mlmeta_ingest_transactions_total", &[]);
    assert!(
        (5.0..=6.0).contains(&transactions),
        "{transactions}: 2 inserts, 2 stream messages, 2 batches (which may share one)"
    );
    assert_eq!(d("mlmeta_ingest_batch_epochs_count", &[]), transactions);
    assert_eq!(d("mlmeta_ingest_batch_epochs_sum", &[]), 12.0);
    assert_eq!(d("mlmeta_ingest_commit_seconds_count", &[]), transactions);
    assert_eq!(after.sum("mlmeta_ingest_queued_epochs", &[]), 0.0);
    let pool = after.sum("mlmeta_db_pool_connections", &[("state", "idle")])
        + after.sum("mlmeta_db_pool_connections", &[("state", "in_use")]);
    assert!(
        pool >= 1.0 && pool <= after.sum("mlmeta_db_pool_max_connections", &[]),
        "{pool}"
    );
    assert_eq!(after.has("mlmeta_sqlite_wal_bytes"), !server.is_postgres());
    assert_eq!(
        after.has("mlmeta_sqlite_checkpoint_seconds_count"),
        !server.is_postgres()
    );
    assert!(after.has("mlmeta_sweeper_runs_total") && after.has("mlmeta_runs_crashed_total"));
}

async fn refused_calls_are_counted_with_their_code_and_reason(backend: Backend) {
    let (_dir, tokens) = tokens_file();
    let Some(server) = TestServer::with_http(backend, |config| config.auth_tokens = Some(tokens)).await
    else {
        return;
    };
    let mut client = server.client();
    let before = scrape(&server).await;
    expect_status(
        client.list_models(ListModelsRequest::default()).await,
        Code::Unauthenticated,
        &[],
    );
    expect_status(
        client
            .list_models(with_token(ListModelsRequest::default(), "wrong"))
            .await,
        Code::Unauthenticated,
        &[],
    );
    let write = with_token(insert(vec![epoch("m", 0, &[("loss", 1.0)])]), READ_TOKEN);
    expect_status(client.insert_epochs(write).await, Code::PermissionDenied, &[]);
    client
        .list_models(with_token(ListModelsRequest::default(), WRITE_TOKEN))
        .await
        .unwrap();
    // HTTP refusals count too.
    assert_eq!(
        Get::new(server.http_addr().unwrap(), "/api/x")
            .send()
            .await
            .status,
        401
    );

    let after = scrape(&server).await;
    let d = |name: &str, labels: &[(&str, &str)]| delta(&before, &after, name, labels);
    assert_eq!(d("mlmeta_auth_refused_total", &[("reason", "missing")]), 2.0);
    assert_eq!(d("mlmeta_auth_refused_total", &[("reason", "unknown")]), 1.0);
    assert_eq!(d("mlmeta_auth_refused_total", &[("reason", "scope")]), 1.0);
    let list = |code| method("ListModels", &[("grpc_code", code)]);
    assert_eq!(d("grpc_server_handled_total", &list("Unauthenticated")), 2.0);
    assert_eq!(d("grpc_server_handled_total", &list("OK")), 1.0);
    assert_eq!(
        d(
            "grpc_server_handled_total",
            &method("InsertEpochs", &[("grpc_code", "PermissionDenied")])
        ),
        1.0
    );
    assert_eq!(d("mlmeta_ingest_epochs_inserted_total", &[]), 0.0);
}

/// `mlmeta_watch_subscribers` counts the WatchEpochs and WatchModels
/// streams open now, and falls back when they close.
async fn watch_subscribers_are_the_watch_streams_open(backend: Backend) {
    let Some(server) = TestServer::with_http(backend, |_| {}).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    assert_eq!(scrape(&server).await.sum("mlmeta_watch_subscribers", &[]), 0.0);
    let epochs = client
        .watch_epochs(WatchEpochsRequest {
            model_names: vec!["m".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut other = server.client();
    let models = other
        .watch_models(WatchModelsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut open = 0.0;
    for _ in 0..100 {
        open = scrape(&server).await.sum("mlmeta_watch_subscribers", &[]);
        if open == 2.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(open, 2.0);
    drop((epochs, models));
    for _ in 0..250 {
        open = scrape(&server).await.sum("mlmeta_watch_subscribers", &[]);
        if open == 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(open, 0.0, "closed watches still counted");
}

/// The statements one epoch write sends to the database, counted by the
/// server itself (every pooled connection counts what it runs), so that
/// the cost of the common write cannot quietly grow back. On PostgreSQL a
/// write of up to 8 epochs is one self-committing statement: one round
/// trip, whether its epochs are new, stored already or mixed. SQLite runs
/// its statements in-process (microseconds each), in a transaction.
async fn statements_per_epoch_write_are_pinned(backend: Backend) {
    let Some(server) = TestServer::with_http(backend, |_| {}).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let metrics: Vec<(String, f64)> = (0..8).map(|i| (format!("metric_{i}"), f64::from(i))).collect();
    let named: Vec<(&str, f64)> = metrics.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let epochs = |nums: std::ops::Range<i64>| insert(nums.map(|n| epoch("m", n, &named)).collect());
    // The first write resolves the model's id and prepares the statements.
    client.insert_epochs(epochs(0..1)).await.unwrap();

    let mut counts = Vec::new();
    for (nums, stored) in [(1..2, 1), (1..2, 0), (1..3, 1), (3..203, 200), (203..503, 300)] {
        let before = scrape(&server).await;
        let reply = client
            .insert_epochs(epochs(nums.clone()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.inserted, stored, "{nums:?}");
        let after = scrape(&server).await;
        assert_eq!(
            delta(&before, &after, "mlmeta_ingest_transactions_total", &[]),
            1.0
        );
        counts.push(delta(&before, &after, "mlmeta_ingest_db_statements_total", &[]));
    }
    let expected = match backend {
        // One statement per write of up to 8 epochs; 200 take a
        // transaction, 300 the COPY path in one.
        Backend::Postgres => [1.0, 1.0, 1.0, INSERT_PATH_STATEMENTS, COPY_PATH_STATEMENTS],
        Backend::Sqlite => SQLITE_STATEMENTS,
    };
    assert_eq!(counts, expected, "statements per write on {backend:?}");
}

/// PostgreSQL, 200 new epochs of one model: BEGIN, the models lock, the
/// INSERT, the models touch, the summaries read and merge, COMMIT.
const INSERT_PATH_STATEMENTS: f64 = 7.0;

/// PostgreSQL, 300 new epochs of one model: BEGIN, the models lock, SAVEPOINT, COPY,
/// RELEASE, the models touch, the summaries read and merge, COMMIT.
const COPY_PATH_STATEMENTS: f64 = 9.0;

/// SQLite, per write of the test above, each in one transaction: BEGIN,
/// the stored epochs read, per new epoch one insert, per model the revive,
/// touch and batch row, per metric its latest merge (and its summary merge
/// when it improves), the summaries read, COMMIT. (The skipped write:
/// BEGIN, the read, the live check, COMMIT.)
const SQLITE_STATEMENTS: [f64; 5] = [16.0, 4.0, 16.0, 215.0, 315.0];

/// A caught-up watcher gets the epochs committed through its own server
/// from the server's memory (the tail shared by all its watchers), not by
/// reading them back from the database: on PostgreSQL too, where the
/// server's own notifications come back through its listener and must not
/// be taken for another replica's.
async fn watchers_read_this_servers_commits_from_memory(backend: Backend) {
    let Some(server) = TestServer::with_http(backend, |_| {}).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let (mut stream, _) = crate::watch::open(&mut client, crate::watch::watch(&["m"])).await;
    // The first read (the catch-up) is the database's.
    let caught_up = stream.message().await.unwrap().unwrap();
    assert!(caught_up.caught_up, "{caught_up:?}");
    let before = scrape(&server).await;
    let memory = [("source", "memory")];
    let database = [("source", "database")];
    for n in 0..20 {
        client
            .insert_epochs(insert(vec![epoch("m", n, &[("loss", 1.0)])]))
            .await
            .unwrap();
        let (got, _) = crate::watch::take(&mut stream, 1).await;
        assert_eq!(got, [("m".to_owned(), n)]);
    }
    let after = scrape(&server).await;
    let from_memory = delta(&before, &after, "mlmeta_watch_reads_total", &memory);
    let from_database = delta(&before, &after, "mlmeta_watch_reads_total", &database);
    // Each epoch in its own read; the database only for the safety-net
    // poll (every 2 s) should the test take that long.
    assert!(
        from_memory >= 15.0 && from_database <= 5.0,
        "reads from memory {from_memory}, from the database {from_database}"
    );
}

/// `http_requests_total{handler,code}` and the duration histogram move by
/// exactly the HTTP requests made, labelled with route templates (never
/// raw paths: two models, one series).
async fn http_requests_are_counted_by_route_template_and_code(backend: Backend) {
    let Some(server) = TestServer::with_http(backend, |_| {}).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let addr = server.http_addr().unwrap();
    let before = scrape(&server).await;
    let get = async |path: &str, status: u16| {
        let reply = Get::new(addr, path).send().await;
        assert_eq!(reply.status, status, "{path}: {reply:?}");
    };
    for _ in 0..3 {
        get("/api/v1/projects/default/models", 200).await;
    }
    get("/api/v1/projects/default/models?limit=0", 400).await;
    get("/api/v1/projects/default/models/m", 200).await;
    get("/api/v1/projects/default/models/nope", 404).await;
    get("/api/v1/projects/default/models/other", 404).await;
    get("/no/such/page", 404).await;
    get("/healthz", 200).await;
    let after = scrape(&server).await;

    let models = "/api/v1/projects/{project}/models";
    let model = "/api/v1/projects/{project}/models/{name}";
    for (handler, code, count) in [
        (models, "200", 3.0),
        (models, "400", 1.0),
        (model, "200", 1.0),
        (model, "404", 2.0),
        ("unmatched", "404", 1.0),
        ("/healthz", "200", 1.0),
        // The first scrape (counted once its answer was made).
        ("/metrics", "200", 1.0),
    ] {
        assert_eq!(
            delta(
                &before,
                &after,
                "http_requests_total",
                &[("handler", handler), ("code", code)]
            ),
            count,
            "{handler} {code}"
        );
    }
    for (handler, count) in [(models, 4.0), (model, 3.0), ("unmatched", 1.0)] {
        assert_eq!(
            delta(
                &before,
                &after,
                "http_request_duration_seconds_count",
                &[("handler", handler)]
            ),
            count,
            "{handler}"
        );
        assert_eq!(
            delta(
                &before,
                &after,
                "http_request_duration_seconds_bucket",
                &[("handler", handler), ("le", "+Inf")]
            ),
            count,
            "{handler}"
        );
    }
    assert_eq!(after.types["http_requests_total"], "counter");
    assert_eq!(after.types["http_request_duration_seconds"], "histogram");
    // Raw paths never become labels.
    assert!(
        after.samples.keys().all(|(_, labels)| labels
            .get("handler")
            .is_none_or(|h| !h.contains("nope") && !h.contains("default"))),
        "a raw path became a label"
    );
    // Every request made, and nothing else: the whole family moved by 10.
    assert_eq!(delta(&before, &after, "http_requests_total", &[]), 10.0);
}
