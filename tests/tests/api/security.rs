//! Who may call and how much: bearer tokens and their scopes, the open
//! health check, reflection, the request size limit, the caps on calls and
//! streams, the per-call deadline, and the refusal to serve a non-loopback address
//! to everyone by accident.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt as _;
use mlmeta_proto::{GetBestModelRequest, InsertEpochsRequest, ListModelsRequest, MetricDirection};
use mlmeta_server::Config;
use mlmeta_server::security::Scope;
use mlmeta_server::security::tokens::tokens_file_line;
use mlmeta_tests::calls::{self, expect_status};
use mlmeta_tests::database::WriteLock;
use mlmeta_tests::process::{ServerProcess, free_port, server_binary};
use mlmeta_tests::records::{datablob, epoch, insert, put_datablob};
use mlmeta_tests::{Backend, TestServer, backend_tests_with_setup, wait_healthy};
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

backend_tests_with_setup! {
    tokens_decide_who_may_read_and_write,
    health_answers_without_a_token_and_reflection_needs_one,
    oversized_requests_are_resource_exhausted,
    calls_over_the_concurrency_cap_are_refused,
    slow_calls_hit_the_deadline_and_their_writes_still_land => 60,
}

pub(crate) const WRITE_TOKEN: &str = "write-token-Zm9vYmFyYmF6cXV4";
pub(crate) const READ_TOKEN: &str = "read-token-cXV4YmF6YmFyZm9v";

/// A tokens file with a `write` token named `trainer` and a `read` token
/// named `dashboard`.
pub(crate) fn tokens_file() -> (TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.txt");
    let text = format!(
        "# test tokens\n{}\n{}\n",
        tokens_file_line("trainer", Scope::Write, WRITE_TOKEN).unwrap(),
        tokens_file_line("dashboard", Scope::Read, READ_TOKEN).unwrap(),
    );
    mlmeta_tests::write_private(&path, text);
    (dir, path)
}

/// `message` with `authorization: Bearer <token>`.
pub(crate) fn with_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {token}").parse().unwrap();
    request.metadata_mut().insert("authorization", value);
    request
}

pub(crate) async fn server_with_tokens(backend: Backend, tokens: &Path) -> Option<TestServer> {
    let tokens = tokens.to_path_buf();
    TestServer::with(backend, |config| config.auth_tokens = Some(tokens), None).await
}

fn list_models() -> ListModelsRequest {
    ListModelsRequest::default()
}

async fn tokens_decide_who_may_read_and_write(backend: Backend) {
    let (_dir, tokens) = tokens_file();
    let Some(server) = server_with_tokens(backend, &tokens).await else {
        return;
    };
    let mut client = server.client();

    // No token, a malformed header, an unknown token: UNAUTHENTICATED,
    // for reads and writes alike, and nothing is written.
    expect_status(
        client.list_models(list_models()).await,
        Code::Unauthenticated,
        &["token"],
    );
    let blob = || put_datablob(datablob("d", "g", "{}"), false);
    expect_status(
        client.put_data_blob(blob()).await,
        Code::Unauthenticated,
        &["token"],
    );
    let mut basic = Request::new(list_models());
    basic
        .metadata_mut()
        .insert("authorization", "Basic dXNlcjpwYXNz".parse().unwrap());
    expect_status(
        client.list_models(basic).await,
        Code::Unauthenticated,
        &["Bearer"],
    );
    let unknown = with_token(blob(), "write-token-Zm9vYmFyYmF6cXV5");
    expect_status(
        client.put_data_blob(unknown).await,
        Code::Unauthenticated,
        &["not valid"],
    );
    let prefix = with_token(blob(), &WRITE_TOKEN[..WRITE_TOKEN.len() - 1]);
    expect_status(
        client.put_data_blob(prefix).await,
        Code::Unauthenticated,
        &["not valid"],
    );

    // A read token reads, and every write is PERMISSION_DENIED naming the
    // token, its scope and the method.
    client
        .list_models(with_token(list_models(), READ_TOKEN))
        .await
        .unwrap();
    let best = GetBestModelRequest {
        metric_name: "loss".into(),
        direction: MetricDirection::Min as i32,
        ..Default::default()
    };
    expect_status(
        client.get_best_model(with_token(best, READ_TOKEN)).await,
        Code::NotFound,
        &["loss"],
    );
    expect_status(
        client.put_data_blob(with_token(blob(), READ_TOKEN)).await,
        Code::PermissionDenied,
        &["dashboard", "scope read", "PutDataBlob", "needs scope write"],
    );
    let epochs = || insert(vec![epoch("m", 0, &[("loss", 1.0)])]);
    expect_status(
        client.insert_epochs(with_token(epochs(), READ_TOKEN)).await,
        Code::PermissionDenied,
        &["InsertEpochs"],
    );
    let stream = futures::stream::iter(vec![epochs()]);
    expect_status(
        client.stream_epochs(with_token(stream, READ_TOKEN)).await,
        Code::PermissionDenied,
        &["StreamEpochs"],
    );
    let batches = futures::stream::iter(vec![mlmeta_proto::WriteEpochsRequest {
        sequence: 1,
        epochs: epochs().epochs,
        ..Default::default()
    }]);
    expect_status(
        client.write_epochs(with_token(batches, READ_TOKEN)).await,
        Code::PermissionDenied,
        &["WriteEpochs"],
    );

    // A write token writes and reads.
    client
        .put_data_blob(with_token(blob(), WRITE_TOKEN))
        .await
        .unwrap();
    let listed = client
        .list_data_blobs(with_token(Default::default(), WRITE_TOKEN))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = listed.datablobs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["d"], "only the write token's put was stored");
    let unknown_model = client.insert_epochs(with_token(epochs(), WRITE_TOKEN)).await;
    expect_status(unknown_model, Code::NotFound, &["m"]);
}

async fn health_answers_without_a_token_and_reflection_needs_one(backend: Backend) {
    let (_dir, tokens) = tokens_file();
    let Some(server) = server_with_tokens(backend, &tokens).await else {
        return;
    };
    wait_healthy(server.channel(), Duration::from_secs(5))
        .await
        .unwrap();

    let list_services = || ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut reflection = ServerReflectionClient::new(server.channel());
    let refused = reflection
        .server_reflection_info(futures::stream::iter(vec![list_services()]))
        .await;
    expect_status(refused, Code::Unauthenticated, &["token"]);

    let request = with_token(futures::stream::iter(vec![list_services()]), READ_TOKEN);
    let mut answers = reflection
        .server_reflection_info(request)
        .await
        .unwrap()
        .into_inner();
    let answer = answers.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("expected a list of services, got {answer:?}");
    };
    let services: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for expected in ["mlmeta.v1.MetadataService", "grpc.health.v1.Health"] {
        assert!(services.contains(&expected), "{services:?}");
    }
}

async fn oversized_requests_are_resource_exhausted(backend: Backend) {
    const LIMIT: usize = 64 * 1024;
    let Some(server) = TestServer::with(backend, |config| config.max_request_bytes = LIMIT, None).await
    else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let epochs = |from: i64, count: i64| {
        insert(
            (from..from + count)
                .map(|n| epoch("m", n, &[("a_rather_long_metric_name", 0.5)]))
                .collect(),
        )
    };

    let fits = calls::insert_epochs(&mut client, epochs(0, 10).epochs).await;
    assert_eq!(fits, (10, 0));
    let too_big = epochs(10, 3_000);
    assert!(prost::Message::encoded_len(&too_big) > LIMIT);
    expect_status(
        client.insert_epochs(too_big).await,
        Code::ResourceExhausted,
        &["too large", "65536"],
    );

    // Mid-stream: the first message is stored, the oversized one refused.
    let stream = futures::stream::iter(vec![epochs(20, 5), epochs(30, 3_000)]);
    expect_status(
        client.stream_epochs(stream).await,
        Code::ResourceExhausted,
        &["too large"],
    );

    let stored = calls::epochs_of(&mut client, &["m"]).await;
    let nums: Vec<i64> = stored.iter().map(|e| e.epoch_num).collect();
    assert_eq!(
        nums,
        (0..10).chain(20..25).collect::<Vec<_>>(),
        "nothing of a refused message is stored"
    );
}

async fn calls_over_the_concurrency_cap_are_refused(backend: Backend) {
    let Some(server) = TestServer::with(
        backend,
        |config| {
            config.max_concurrent_calls = 2;
            config.max_concurrent_streams = 2;
        },
        None,
    )
    .await
    else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;

    // Two trainers hold a StreamEpochs call open each: the stream budget is
    // used up, and a third stream is refused, but streams take no unary
    // slot, so unary calls go on.
    let mut senders = Vec::new();
    let mut streams = Vec::new();
    for index in 0..2 {
        let (sender, receiver) = mpsc::channel::<InsertEpochsRequest>(4);
        let mut client = server.client();
        streams.push(tokio::spawn(async move {
            client.stream_epochs(ReceiverStream::new(receiver)).await
        }));
        sender
            .send(insert(vec![epoch("m", index, &[("loss", 1.0)])]))
            .await
            .unwrap();
        senders.push(sender);
    }
    // Both streams are open on the server once their first epochs are stored.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while calls::epochs_of(&mut client, &["m"]).await.len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the streams' first messages were never stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let third = client
        .stream_epochs(futures::stream::iter(vec![insert(vec![epoch(
            "m",
            9,
            &[("loss", 1.0)],
        )])]))
        .await;
    expect_status(
        third,
        Code::ResourceExhausted,
        &["limit of 2 open streams", "--max-concurrent-streams"],
    );
    client.list_models(list_models()).await.unwrap();

    // Two inserts waiting for the database's write lock hold both unary
    // slots: a third call is refused, even a read.
    let lock = WriteLock::take(&server);
    let mut inserts = Vec::new();
    for num in [10, 11] {
        let mut client = server.client();
        inserts.push(tokio::spawn(async move {
            // The probing reads below take a slot for a moment: retry, as
            // RESOURCE_EXHAUSTED asks.
            loop {
                let request = insert(vec![epoch("m", num, &[("loss", 1.0)])]);
                match client.insert_epochs(request).await {
                    Ok(response) => {
                        let response = response.into_inner();
                        break (response.inserted, response.skipped);
                    }
                    Err(status) if status.code() == Code::ResourceExhausted => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err(status) => panic!("InsertEpochs: {status}"),
                }
            }
        }));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let refused = loop {
        // A read that gets through means the inserts have not arrived yet.
        match client.list_models(list_models()).await {
            Ok(_) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the blocked inserts never held the two call slots"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => break Err::<(), _>(status),
        }
    };
    expect_status(
        refused,
        Code::ResourceExhausted,
        &["limit of 2 concurrent calls", "--max-concurrent-calls"],
    );
    // Health checks are exempt: orchestrators must see a busy server as up.
    wait_healthy(server.channel(), Duration::from_secs(5))
        .await
        .unwrap();
    // And streams do not need a unary slot: with one stream closed, a new
    // one gets through while the unary slots are full.
    drop(senders.pop());
    let closed = streams.pop().unwrap().await.unwrap().unwrap().into_inner();
    assert_eq!((closed.inserted, closed.skipped), (1, 0));
    let (sender, receiver) = mpsc::channel::<InsertEpochsRequest>(4);
    let mut streaming = server.client();
    let late = tokio::spawn(async move { streaming.stream_epochs(ReceiverStream::new(receiver)).await });
    sender
        .send(insert(vec![epoch("m", 12, &[("loss", 1.0)])]))
        .await
        .unwrap();

    lock.release();
    for insert in inserts {
        assert_eq!(insert.await.unwrap(), (1, 0));
    }
    drop((sender, senders));
    let late = late.await.unwrap().unwrap().into_inner();
    assert_eq!((late.inserted, late.skipped), (1, 0));
    for stream in streams {
        let counts = stream.await.unwrap().unwrap().into_inner();
        assert_eq!((counts.inserted, counts.skipped), (1, 0));
    }
    client.list_models(list_models()).await.unwrap();
    let nums: Vec<i64> = calls::epochs_of(&mut client, &["m"])
        .await
        .iter()
        .map(|e| e.epoch_num)
        .collect();
    assert_eq!(nums, [0, 1, 10, 11, 12]);
}

async fn slow_calls_hit_the_deadline_and_their_writes_still_land(backend: Backend) {
    let Some(server) = TestServer::with(backend, |config| config.call_timeout_secs = 1, None).await else {
        return;
    };
    let mut client = server.client();
    calls::seed_model(&mut client, "m").await;
    let epochs = || insert((0..5).map(|n| epoch("m", n, &[("loss", 1.0)])).collect());

    let lock = WriteLock::take(&server);
    let started = std::time::Instant::now();
    let late = client.insert_epochs(epochs()).await;
    expect_status(
        late,
        Code::DeadlineExceeded,
        &["deadline of 1s", "--call-timeout-secs"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused after {:?}",
        started.elapsed()
    );
    // Reads do not wait for the write lock.
    client.list_models(list_models()).await.unwrap();
    lock.release();

    // The write was already queued: it lands, and retrying it (the right
    // reaction to DEADLINE_EXCEEDED) stores nothing twice.
    let mut stored = Vec::new();
    for _ in 0..100 {
        stored = calls::epochs_of(&mut client, &["m"]).await;
        if stored.len() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stored.len(), 5);
    let retried = client.insert_epochs(epochs()).await.unwrap().into_inner();
    assert_eq!((retried.inserted, retried.skipped), (0, 5));
}

/// Serves on `listen` with `configure`, returning the start-up error, or
/// `None` when the server came up (it is then stopped).
async fn start_on(listen: &str, configure: impl FnOnce(&mut Config)) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let mut config = Config::for_database(mlmeta_server::DatabaseUrl::parse(&url).unwrap());
    config.http_listen = mlmeta_server::HttpListen::Off;
    configure(&mut config);
    let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(mlmeta_server::serve(config, listener, async move {
        let _ = stopped.await;
    }));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_lazy();
    let up = wait_healthy(channel, Duration::from_secs(3));
    tokio::pin!(server);
    tokio::select! {
        ended = &mut server => Some(ended.unwrap().unwrap_err().to_string()),
        ready = up => {
            ready.unwrap();
            let _ = stop.send(());
            server.await.unwrap().unwrap();
            None
        }
    }
}

#[tokio::test]
async fn a_non_loopback_address_needs_tokens_or_an_explicit_opt_out() {
    let refused = start_on("0.0.0.0:0", |_| {}).await.expect("refused to start");
    assert!(
        refused.contains("without authentication") && refused.contains("--allow-unauthenticated"),
        "{refused}"
    );
    assert_eq!(
        start_on("0.0.0.0:0", |c| c.allow_unauthenticated = true).await,
        None
    );
    let (_dir, tokens) = tokens_file();
    assert_eq!(
        start_on("0.0.0.0:0", |c| c.auth_tokens = Some(tokens)).await,
        None
    );
    assert_eq!(
        start_on("127.0.0.1:0", |_| {}).await,
        None,
        "loopback needs no opt-out"
    );
}

#[tokio::test]
async fn unusable_security_files_stop_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.txt");
    let error = start_on("127.0.0.1:0", |c| c.auth_tokens = Some(missing.clone()))
        .await
        .unwrap();
    assert!(
        error.contains("tokens file") && error.contains("missing.txt"),
        "{error}"
    );

    let bad = dir.path().join("bad.txt");
    mlmeta_tests::write_private(&bad, "trainer admin sha256:00\n");
    let error = start_on("127.0.0.1:0", |c| c.auth_tokens = Some(bad.clone()))
        .await
        .unwrap();
    assert!(error.contains("line 1") && error.contains("scope"), "{error}");

    // Whoever may write the tokens file may add a token: like ssh with key
    // files, the server refuses one that group or others may write.
    use std::os::unix::fs::PermissionsExt as _;
    let (_tokens_dir, shared) = tokens_file();
    for (mode, who) in [
        (0o664, "by group"),
        (0o646, "by others"),
        (0o666, "by group and others"),
    ] {
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(mode)).unwrap();
        let error = start_on("127.0.0.1:0", |c| c.auth_tokens = Some(shared.clone()))
            .await
            .unwrap();
        assert!(
            error.contains("tokens.txt") && error.contains(who) && error.contains("chmod go-w"),
            "{error}"
        );
    }
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(
        start_on("127.0.0.1:0", |c| c.auth_tokens = Some(shared.clone())).await,
        None,
        "a tokens file only its owner can write is accepted"
    );

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let error = start_on("127.0.0.1:0", |c| {
        c.tls_cert = Some(garbage.clone());
        c.tls_key = Some(garbage.clone());
    })
    .await
    .unwrap();
    assert!(error.contains("TLS"), "{error}");
    let error = start_on("127.0.0.1:0", |c| {
        c.tls_cert = Some(missing.clone());
        c.tls_key = Some(missing.clone());
    })
    .await
    .unwrap();
    assert!(
        error.contains("--tls-cert") && error.contains("missing.txt"),
        "{error}"
    );
}

/// Runs `mlmeta-server hash-token` with `args` (and `stdin`); returns its
/// stdout and stderr.
fn hash_token(args: &[&str], stdin: Option<&str>) -> (String, String) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(server_binary())
        .arg("hash-token")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "hash-token {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// The binary end to end: `hash-token` makes the tokens file, the server
/// honours it, and no token value reaches the log, even at debug level.
#[tokio::test]
async fn binary_tokens_from_hash_token_work_and_never_reach_the_log() {
    let (line, shown) = hash_token(&["--name", "trainer", "--scope", "write"], None);
    let write_token = shown.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(write_token.starts_with("mlm_"), "{shown}");
    assert!(
        line.starts_with("trainer write sha256:") && !line.contains(&write_token),
        "{line}"
    );
    let read_token = "a-token-chosen-by-the-operator-42";
    let (read_line, quiet) = hash_token(
        &["--name", "dashboard", "--scope", "read", "--stdin"],
        Some(read_token),
    );
    assert!(quiet.is_empty(), "a token from stdin is not echoed: {quiet}");
    assert_eq!(
        read_line.trim(),
        tokens_file_line("dashboard", Scope::Read, read_token).unwrap()
    );

    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.txt");
    mlmeta_tests::write_private(&tokens, format!("{line}{read_line}"));
    let database = format!("sqlite://{}", dir.path().join("m.db").display());
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = [
        "--database-url",
        &database,
        "--listen",
        &listen,
        "--auth-tokens",
        tokens.to_str().unwrap(),
    ];
    let mut server = ServerProcess::spawn_logging(&args, None, port, "debug");
    server.wait_healthy(Duration::from_secs(60)).await.unwrap();
    let mut client = server.client();

    let blob = || put_datablob(datablob("d", "g", "{}"), false);
    client
        .put_data_blob(with_token(blob(), &write_token))
        .await
        .unwrap();
    let denied = client.put_data_blob(with_token(blob(), read_token)).await;
    expect_status(denied, Code::PermissionDenied, &["dashboard"]);
    let bad_token = "mlm_guessed-token-that-must-not-be-logged";
    expect_status(
        client.list_models(with_token(list_models(), bad_token)).await,
        Code::Unauthenticated,
        &[],
    );

    // Revoking and adding tokens without a restart: rewrite the file and
    // send SIGHUP. A broken file is refused and the tokens in use stay.
    let new_token = "a-token-added-while-serving-0042";
    let new_line = tokens_file_line("late", Scope::Write, new_token).unwrap();
    mlmeta_tests::write_private(&tokens, format!("{read_line}{new_line}\n"));
    server.signal("HUP");
    let accepted = async {
        loop {
            if client
                .list_models(with_token(list_models(), new_token))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), accepted)
        .await
        .expect("the new token is accepted");
    let revoked = client.list_models(with_token(list_models(), &write_token)).await;
    expect_status(revoked, Code::Unauthenticated, &["not valid"]);
    mlmeta_tests::write_private(&tokens, "late admin sha256:00\n");
    server.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !server.stderr().contains("not reloaded") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload error logged:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client
        .list_models(with_token(list_models(), new_token))
        .await
        .unwrap();

    let log = server.stderr();
    assert!(
        log.contains("dashboard"),
        "the debug log names refused tokens by name:\n{log}"
    );
    assert!(log.contains("reloaded the tokens file"), "{log}");
    for secret in [write_token.as_str(), read_token, bad_token, new_token] {
        assert!(!log.contains(secret), "token {secret} appears in the log:\n{log}");
    }
}

#[tokio::test]
async fn binary_refuses_a_non_loopback_address_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("m.db").display());
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let mut server = ServerProcess::spawn(&["--database-url", &database, "--listen", &listen], None, port);
    let status = server
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("the server exits");
    assert!(!status.success());
    let log = server.stderr();
    assert!(
        log.contains("--allow-unauthenticated") && log.contains("--auth-tokens"),
        "{log}"
    );
    assert!(
        !dir.path().join("m.db").exists(),
        "refused before touching the database"
    );

    let args = [
        "--database-url",
        &database,
        "--listen",
        &listen,
        "--allow-unauthenticated",
    ];
    let mut open = ServerProcess::spawn(&args, None, port);
    open.wait_healthy(Duration::from_secs(60)).await.unwrap();
    assert!(
        open.stderr().contains("WITHOUT authentication"),
        "{}",
        open.stderr()
    );
}
