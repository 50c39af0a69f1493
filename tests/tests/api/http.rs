//! The HTTP listener (`--http-listen`): `/healthz` and `/readyz` over
//! HTTP/1.1 and HTTP/2, in clear and over TLS; the guard's HTTP classes
//! with tokens (probes open, or behind a read token with
//! `--http-probes-token-required`; every other path needs a read token,
//! then 404s when nothing is there); `/readyz` following the database;
//! the binary's flags (`off`, the loopback rule, `--log-format json`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mlmeta_server::HttpListen;
use mlmeta_tests::http::{Get, Version};
use mlmeta_tests::process::{ServerProcess, free_port};
use mlmeta_tests::tls::TestPki;
use mlmeta_tests::{Backend, TestServer, backend_tests_with_setup};

use crate::security::{READ_TOKEN, WRITE_TOKEN, tokens_file};

backend_tests_with_setup! {
    probes_answer_over_http1_and_http2,
    probes_answer_over_tls_with_both_alpn_protocols,
    tokens_guard_http_paths_with_http_statuses,
    probes_need_a_read_token_when_asked_to,
    keep_alive_http1_outlives_the_handshake_timeout => 60,
}

async fn http_server(backend: Backend) -> Option<TestServer> {
    TestServer::with_http(backend, |_| {}).await
}

async fn probes_answer_over_http1_and_http2(backend: Backend) {
    let Some(server) = http_server(backend).await else {
        return;
    };
    let addr = server.http_addr().unwrap();
    assert_ne!(addr.port(), 50080, "an ephemeral port, not the default");
    for version in [Version::Http1, Version::Http2] {
        let healthz = Get::new(addr, "/healthz").version(version).send().await;
        assert_eq!(
            (healthz.status, healthz.body.as_str()),
            (200, "ok\n"),
            "{version:?}"
        );
        let expected = match version {
            Version::Http1 => hyper::http::Version::HTTP_11,
            Version::Http2 => hyper::http::Version::HTTP_2,
        };
        assert_eq!(healthz.version, expected);
        let readyz = Get::new(addr, "/readyz").version(version).send().await;
        assert_eq!(
            (readyz.status, readyz.body.as_str()),
            (200, "ready\n"),
            "{version:?}"
        );
        // Without tokens, any other path is let through and not found.
        let missing = Get::new(addr, "/api/v1/nothing").version(version).send().await;
        assert_eq!(missing.status, 404, "{version:?}: {missing:?}");
        assert!(missing.body.contains("/api/v1/nothing"), "{}", missing.body);
    }
    // gRPC still answers on its own port, and not on the HTTP one.
    let mut client = server.client();
    client
        .list_models(mlmeta_proto::ListModelsRequest::default())
        .await
        .unwrap();
    let grpc_on_http = Get::new(addr, "/mlmeta.v1.MetadataService/ListModels")
        .version(Version::Http2)
        .send()
        .await;
    assert_eq!(
        grpc_on_http.status, 404,
        "the HTTP listener serves no gRPC service: {grpc_on_http:?}"
    );
}

async fn probes_answer_over_tls_with_both_alpn_protocols(backend: Backend) {
    let pki = TestPki::generate("http");
    let (cert, key) = (pki.path("server.pem"), pki.path("server.key"));
    let configure = move |config: &mut mlmeta_server::Config| {
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
        config.http_listen = HttpListen::On(SocketAddr::from(([127, 0, 0, 1], 0)));
    };
    let Some(server) = TestServer::with(backend, configure, Some(pki.client_tls())).await else {
        return;
    };
    assert!(server.http_url().starts_with("https://"));
    let addr = server.http_addr().unwrap();
    for (version, alpn) in [(Version::Http1, b"http/1.1".as_slice()), (Version::Http2, b"h2")] {
        let reply = Get::new(addr, "/readyz")
            .version(version)
            .tls(pki.connector_offering(&[alpn]))
            .send()
            .await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "ready\n"),
            "{version:?}"
        );
    }
    // A client that offers both gets HTTP/2, the server's preference.
    let both = pki.connector_offering(&[b"h2", b"http/1.1"]);
    let reply = Get::new(addr, "/healthz")
        .version(Version::Http2)
        .tls(both)
        .send()
        .await;
    assert_eq!(reply.status, 200);
    // Plain text to the TLS listener gets no answer.
    let plain = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::spawn(Get::new(addr, "/healthz").send()),
    )
    .await
    .expect("the server closes the connection");
    assert!(plain.is_err(), "no HTTP answer in clear from a TLS listener");
}

async fn tokens_guard_http_paths_with_http_statuses(backend: Backend) {
    let (_dir, tokens) = tokens_file();
    let Some(server) = TestServer::with_http(backend, |config| config.auth_tokens = Some(tokens)).await
    else {
        return;
    };
    let addr = server.http_addr().unwrap();
    // Probes are open by default.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(Get::new(addr, path).send().await.status, 200, "{path}");
    }
    // Any other path needs a read token: 401 with a Bearer challenge
    // without one or with an unknown one, whatever the path.
    for path in ["/", "/api/v1/models", "/api/nothing", "/healthz/", "/nothing"] {
        let anonymous = Get::new(addr, path).send().await;
        assert_eq!(anonymous.status, 401, "{path}: {anonymous:?}");
        assert_eq!(anonymous.headers["www-authenticate"], "Bearer");
        assert!(
            anonymous.body.contains("authorization: Bearer"),
            "{}",
            anonymous.body
        );
        let unknown = Get::new(addr, path).bearer("not-a-token").send().await;
        assert_eq!(unknown.status, 401, "{path}");
        assert!(unknown.body.contains("not valid"), "{}", unknown.body);
        // A read (or write) token passes; nothing is there yet.
        for token in [READ_TOKEN, WRITE_TOKEN] {
            let found = Get::new(addr, path)
                .bearer(token)
                .version(Version::Http2)
                .send()
                .await;
            // `/` is the page; nothing is at the other paths.
            let expected = if path == "/" { 200 } else { 404 };
            assert_eq!(found.status, expected, "{path}: {found:?}");
        }
    }
}

async fn probes_need_a_read_token_when_asked_to(backend: Backend) {
    let (_dir, tokens) = tokens_file();
    let configure = |config: &mut mlmeta_server::Config| {
        config.auth_tokens = Some(tokens);
        config.http_probes_token_required = true;
    };
    let Some(server) = TestServer::with_http(backend, configure).await else {
        return;
    };
    let addr = server.http_addr().unwrap();
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(Get::new(addr, path).send().await.status, 401, "{path}");
        assert_eq!(
            Get::new(addr, path).bearer("nope").send().await.status,
            401,
            "{path}"
        );
        assert_eq!(
            Get::new(addr, path).bearer(READ_TOKEN).send().await.status,
            200,
            "{path}"
        );
    }
    // The gRPC health check stays open: it is not an HTTP probe.
    mlmeta_tests::wait_healthy(server.channel(), Duration::from_secs(5))
        .await
        .unwrap();
}

/// `/readyz` says 503 while the SQLite file is moved away (the health
/// monitor's finding) and 200 again once it is back; `/healthz` stays 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_the_database() {
    let server = http_server(Backend::Sqlite).await.unwrap();
    let addr = server.http_addr().unwrap();
    let file = std::path::PathBuf::from(server.database_url().sqlite_path().unwrap());
    let away = file.with_file_name("moved.db");
    std::fs::rename(&file, &away).unwrap();
    let not_ready = wait_for_readyz(addr, 503).await;
    assert!(not_ready.contains("database"), "{not_ready}");
    assert_eq!(Get::new(addr, "/healthz").send().await.status, 200);
    std::fs::rename(&away, &file).unwrap();
    wait_for_readyz(addr, 200).await;
}

/// Polls `/readyz` until it answers `status` (the monitor probes every
/// second); returns the body.
async fn wait_for_readyz(addr: SocketAddr, status: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = Get::new(addr, "/readyz").send().await;
        if reply.status == status {
            return reply.body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {reply:?}, expected {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The binary: `--http-listen ADDR` serves the probes, `off` (here by
/// the environment variable) serves none; `--log-format json` logs one
/// JSON object per line; a non-loopback HTTP address needs tokens like a
/// gRPC one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_http_listen_off_json_logs_and_the_loopback_rule() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("m.db").display());
    let (port, http_port) = (free_port(), free_port());
    let grpc = format!("127.0.0.1:{port}");
    let http = format!("127.0.0.1:{http_port}");
    let args = [
        "--database-url",
        &database,
        "--listen",
        &grpc,
        "--http-listen",
        &http,
        "--log-format",
        "json",
    ];
    let mut server = ServerProcess::spawn(&args, None, port);
    server.wait_healthy(Duration::from_secs(60)).await.unwrap();
    let addr: SocketAddr = http.parse().unwrap();
    assert_eq!(Get::new(addr, "/healthz").send().await.status, 200);
    let log = server.stderr();
    let lines: Vec<&str> = log.lines().collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            value["level"].is_string() && value["fields"]["message"].is_string(),
            "{line}"
        );
    }
    assert!(log.contains(&http) && log.contains("serving HTTP"), "{log}");
    drop(server);

    // Without --http-listen the harness sets MLMETA_HTTP_LISTEN=off.
    let mut quiet = ServerProcess::spawn(&["--database-url", &database, "--listen", &grpc], None, port);
    quiet.wait_healthy(Duration::from_secs(60)).await.unwrap();
    assert!(!quiet.stderr().contains("serving HTTP"), "{}", quiet.stderr());
    drop(quiet);

    let exposed = format!("0.0.0.0:{http_port}");
    let args = [
        "--database-url",
        &database,
        "--listen",
        &grpc,
        "--http-listen",
        &exposed,
    ];
    let mut refused = ServerProcess::spawn(&args, None, port);
    let status = refused
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("the server exits");
    assert!(!status.success());
    let log = refused.stderr();
    assert!(
        log.contains(&exposed) && log.contains("--allow-unauthenticated"),
        "{log}"
    );
}

/// One HTTP/1.1 request on `stream`, its answer read through the end of
/// its body (`content-length`).
async fn keep_alive_get(stream: &mut tokio::net::TcpStream, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0_u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok());
            if length.is_some_and(|length| body.len() >= length) {
                return text;
            }
        }
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("an answer within 10 s")
            .expect("the connection stays open");
        assert!(
            read > 0,
            "the server closed the connection after {:?}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&chunk[..read]);
    }
}

/// The handshake deadline (`--handshake-timeout-secs`, which counts the
/// 24 bytes of an HTTP/2 preface) does not close a keep-alive HTTP/1.1
/// connection whose first request was read: requests on it keep being
/// answered after the timeout has passed.
async fn keep_alive_http1_outlives_the_handshake_timeout(backend: Backend) {
    let Some(server) = TestServer::with_http(backend, |config| config.handshake_timeout_secs = 1).await
    else {
        return;
    };
    let mut stream = tokio::net::TcpStream::connect(server.http_addr().unwrap())
        .await
        .unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nhost: a\r\n\r\n";
    for _ in 0..3 {
        let answer = keep_alive_get(&mut stream, request).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
}
