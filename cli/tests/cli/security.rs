//! `mlmeta` against a server with TLS, mutual TLS and tokens: the flags
//! and variables that get a command through, and the one-line errors when
//! something is missing.

use mlmeta_server::Config;
use mlmeta_server::security::Scope;
use mlmeta_server::security::tokens::tokens_file_line;
use mlmeta_tests::tls::TestPki;
use mlmeta_tests::{Backend, TestServer, backend_tests_with_setup};

use crate::support::mlmeta;

backend_tests_with_setup! {
    tls_and_tokens_through_flags_and_environment,
    mutual_tls_needs_the_client_certificate,
}

const WRITE: &str = "mlm_write_token_of_the_cli_tests";
const READ: &str = "mlm_read_token_of_the_cli_tests";

/// A TLS server (requiring client certificates when `mutual`) that asks
/// for `WRITE` or `READ` tokens; the PKI and tokens file live in `pki`'s
/// directory and `dir`.
async fn secure_server(
    backend: Backend,
    pki: &TestPki,
    dir: &tempfile::TempDir,
    mutual: bool,
) -> Option<TestServer> {
    let tokens = dir.path().join("tokens.txt");
    let lines = [
        tokens_file_line("trainer", Scope::Write, WRITE).unwrap(),
        tokens_file_line("dashboard", Scope::Read, READ).unwrap(),
    ];
    mlmeta_tests::write_private(&tokens, lines.join("\n"));
    let (cert, key, ca) = (pki.path("server.pem"), pki.path("server.key"), pki.path("ca.pem"));
    let configure = move |config: &mut Config| {
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
        config.tls_client_ca = mutual.then_some(ca);
        config.auth_tokens = Some(tokens);
    };
    let harness_tls = if mutual {
        pki.client_tls_with_identity()
    } else {
        pki.client_tls()
    };
    TestServer::with(backend, configure, Some(harness_tls)).await
}

async fn tls_and_tokens_through_flags_and_environment(backend: Backend) {
    let pki = TestPki::generate("cli");
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = secure_server(backend, &pki, &dir, false).await else {
        return;
    };
    let ca = pki.path("ca.pem");
    let ca = ca.to_str().unwrap();

    mlmeta(&server)
        .args([
            "--ca-cert",
            ca,
            "--token",
            WRITE,
            "add",
            "template",
            "cnn",
            "--group",
            "conv",
        ])
        .run()
        .await
        .ok();
    let listed = mlmeta(&server)
        .env("MLMETA_CA_CERT", ca)
        .env("MLMETA_TOKEN", READ)
        .args(["list", "templates", "--format", "csv"])
        .run()
        .await
        .ok();
    assert!(
        listed
            .lines()
            .nth(1)
            .is_some_and(|row| row.starts_with("cnn,conv")),
        "{listed}"
    );

    let no_token = mlmeta(&server)
        .args(["--ca-cert", ca, "list", "templates"])
        .run()
        .await
        .fails(1);
    assert!(
        no_token.contains("token") && no_token.contains("MLMETA_TOKEN"),
        "{no_token}"
    );
    let read_only = mlmeta(&server)
        .env("MLMETA_CA_CERT", ca)
        .env("MLMETA_TOKEN", READ)
        .args(["add", "template", "rnn", "--group", "conv"])
        .run()
        .await
        .fails(1);
    assert!(
        read_only.contains("permission denied") && read_only.contains("dashboard"),
        "{read_only}"
    );
    let untrusted = mlmeta(&server)
        .args(["--token", READ, "list", "templates"])
        .run()
        .await
        .fails(1);
    assert!(untrusted.contains("cannot reach"), "{untrusted}");
}

async fn mutual_tls_needs_the_client_certificate(backend: Backend) {
    let pki = TestPki::generate("cli-mtls");
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = secure_server(backend, &pki, &dir, true).await else {
        return;
    };
    let path = |name: &str| pki.path(name).to_str().unwrap().to_owned();
    let base = || {
        mlmeta(&server)
            .env("MLMETA_CA_CERT", &path("ca.pem"))
            .env("MLMETA_TOKEN", READ)
    };

    base()
        .args([
            "--client-cert",
            &path("client.pem"),
            "--client-key",
            &path("client.key"),
            "list",
            "models",
        ])
        .run()
        .await
        .ok();
    base()
        .env("MLMETA_CLIENT_CERT", &path("client.pem"))
        .env("MLMETA_CLIENT_KEY", &path("client.key"))
        .args(["list", "models"])
        .run()
        .await
        .ok();
    // Under TLS 1.3 the server's refusal of a missing certificate may
    // first surface as a closed connection, which looks like any dropped
    // connection and is retried once; the next attempt names the cause and
    // is not retried.
    let anonymous = base().args(["list", "models"]).run().await;
    assert_eq!(anonymous.code, Some(1), "{anonymous:?}");
    let last = anonymous.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: cannot reach") && last.contains("CertificateRequired"),
        "{anonymous:?}"
    );
    assert!(anonymous.stderr.lines().count() <= 2, "{anonymous:?}");
    let half = base()
        .args(["--client-cert", &path("client.pem"), "list", "models"])
        .run()
        .await;
    assert_eq!(half.code, Some(1), "{half:?}");
    assert!(half.stderr.contains("--client-key"), "{half:?}");
}
