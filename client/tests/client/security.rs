//! The client against servers with TLS, mutual TLS and tokens: what
//! connects, what is refused, and as which error.

use std::path::PathBuf;
use std::time::Duration;

use mlmeta_client::{Client, ClientBuilder, EpochFilter, Error, NewEpoch};
use mlmeta_server::Config;
use mlmeta_server::security::Scope;
use mlmeta_server::security::tokens::tokens_file_line;
use mlmeta_tests::tls::TestPki;
use mlmeta_tests::{Backend, TestServer, backend_tests_with_setup};

use crate::support::seed_model;

backend_tests_with_setup! {
    tls_connects_clients_that_trust_the_servers_ca,
    mutual_tls_refuses_clients_without_a_trusted_certificate,
    tokens_reach_the_server_and_refusals_are_typed,
}

/// Serves TLS with `pki`'s server certificate (and requires client
/// certificates of its CA when `mutual`).
async fn tls_server(backend: Backend, pki: &TestPki, mutual: bool) -> Option<TestServer> {
    let (cert, key, ca) = (pki.path("server.pem"), pki.path("server.key"), pki.path("ca.pem"));
    let configure = move |config: &mut Config| {
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
        config.tls_client_ca = mutual.then_some(ca);
    };
    let harness_tls = if mutual {
        pki.client_tls_with_identity()
    } else {
        pki.client_tls()
    };
    TestServer::with(backend, configure, Some(harness_tls)).await
}

fn builder(url: &str) -> ClientBuilder {
    Client::builder(url).connect_timeout(Duration::from_secs(5))
}

/// Connects and makes one read call (a TLS handshake failure may surface
/// on either).
async fn try_list(builder: ClientBuilder) -> Result<(), Error> {
    let client = builder.connect().await?;
    client.list_epochs(&EpochFilter::default()).await.map(|_| ())
}

async fn tls_connects_clients_that_trust_the_servers_ca(backend: Backend) {
    let pki = TestPki::generate("a");
    let Some(server) = tls_server(backend, &pki, false).await else {
        return;
    };
    assert!(server.url().starts_with("https://"));

    let client = builder(server.url())
        .ca_certificate_file(pki.path("ca.pem"))
        .connect()
        .await
        .unwrap();
    seed_model(&client, "m").await;
    let counts = client
        .insert_epochs("m", [NewEpoch::new(0, [("loss", 0.5)])])
        .await
        .unwrap();
    assert_eq!(counts.inserted, 1);
    // The certificate names localhost too.
    let by_name = server.url().replace("127.0.0.1", "localhost");
    try_list(builder(&by_name).ca_certificate(pki.ca_pem.clone()))
        .await
        .unwrap();

    let other = TestPki::generate("other");
    let untrusted = try_list(builder(server.url()).ca_certificate(other.ca_pem.clone())).await;
    assert!(
        matches!(&untrusted, Err(e @ Error::Unavailable { .. }) if !e.is_transient()),
        "{untrusted:?}"
    );
    let plaintext = try_list(builder(&server.url().replace("https://", "http://"))).await;
    assert!(plaintext.is_err(), "plaintext HTTP/2 to a TLS port must fail");
    let wrong_name = try_list(
        builder(server.url())
            .ca_certificate(pki.ca_pem.clone())
            .tls_domain("elsewhere.test"),
    )
    .await;
    assert!(
        matches!(&wrong_name, Err(e @ Error::Unavailable { .. }) if !e.is_transient()),
        "{wrong_name:?}"
    );
}

async fn mutual_tls_refuses_clients_without_a_trusted_certificate(backend: Backend) {
    let pki = TestPki::generate("a");
    let Some(server) = tls_server(backend, &pki, true).await else {
        return;
    };
    let trusted = || builder(server.url()).ca_certificate(pki.ca_pem.clone());

    try_list(trusted().identity_files(pki.path("client.pem"), pki.path("client.key")))
        .await
        .unwrap();
    try_list(trusted().identity(pki.client_cert_pem.clone(), pki.client_key_pem.clone()))
        .await
        .unwrap();

    let anonymous = try_list(trusted()).await;
    assert!(
        matches!(&anonymous, Err(Error::Unavailable { .. })),
        "{anonymous:?}"
    );
    let other = TestPki::generate("other");
    let foreign =
        try_list(trusted().identity(other.client_cert_pem.clone(), other.client_key_pem.clone())).await;
    assert!(matches!(&foreign, Err(Error::Unavailable { .. })), "{foreign:?}");
    let missing_key =
        try_list(trusted().identity_files(pki.path("client.pem"), PathBuf::from("/nonexistent.key"))).await;
    assert!(
        matches!(&missing_key, Err(Error::Config(m)) if m.contains("/nonexistent.key")),
        "{missing_key:?}"
    );
}

async fn tokens_reach_the_server_and_refusals_are_typed(backend: Backend) {
    const WRITE: &str = "mlm_write_token_for_the_client_tests";
    const READ: &str = "mlm_read_token_for_the_client_tests";
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.txt");
    let lines = [
        tokens_file_line("trainer", Scope::Write, WRITE).unwrap(),
        tokens_file_line("dashboard", Scope::Read, READ).unwrap(),
    ];
    mlmeta_tests::write_private(&tokens, lines.join("\n"));
    let Some(server) = TestServer::with(backend, |config| config.auth_tokens = Some(tokens), None).await
    else {
        return;
    };

    let writer = builder(server.url()).token(WRITE).connect().await.unwrap();
    seed_model(&writer, "m").await;
    let epochs = writer.epoch_writer("m").unwrap();
    for n in 0..50 {
        epochs.log(n, [("loss", 1.0 / (n + 1) as f64)]).await.unwrap();
    }
    assert_eq!(epochs.close().await.unwrap().inserted, 50);

    let reader = builder(server.url()).token(READ).connect().await.unwrap();
    assert_eq!(reader.current_epoch("m").await.unwrap().epoch_num, 49);
    let denied = reader
        .insert_epochs("m", [NewEpoch::new(99, [("loss", 0.0)])])
        .await;
    assert!(
        matches!(&denied, Err(Error::PermissionDenied { message }) if message.contains("dashboard")),
        "{denied:?}"
    );
    assert!(
        !denied.unwrap_err().is_transient(),
        "retrying a refusal cannot help"
    );

    let anonymous = builder(server.url()).connect().await.unwrap();
    let refused = anonymous.current_epoch("m").await;
    assert!(
        matches!(&refused, Err(Error::Unauthenticated { .. })),
        "{refused:?}"
    );
    let wrong = builder(server.url())
        .token("mlm_not_a_token_of_this_server")
        .connect()
        .await
        .unwrap();
    assert!(matches!(
        wrong.current_epoch("m").await,
        Err(Error::Unauthenticated { .. })
    ));
}
