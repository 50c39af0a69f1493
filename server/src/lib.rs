//! mlmeta server: the `mlmeta.v1.MetadataService` gRPC API over a diesel
//! store on SQLite or PostgreSQL, plus the standard health and reflection
//! services.
//!
//! The binary is a thin wrapper around [`serve`], so tests can run the
//! very same server in-process on an ephemeral port.

pub mod config;
mod db;
pub mod embedded;
mod error;
mod health;
mod http;
mod log_limit;
mod metrics;
mod net;
mod router;
pub mod security;
mod service;
mod store;
mod validate;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tracing::{info, warn};

pub use config::{Command, Config, HttpListen, LogFormat};
pub use db::{DatabaseUrl, skip_openssl_exit_cleanup};
pub use error::StartupError;
pub use net::raise_open_files_limit;
pub use store::backup;

use tonic::codegen::http::{Request, Response};

use crate::security::{CallGuard, Tokens};
use crate::store::Store;

/// Largest encoded response message the server sends, and the default
/// largest request ([`Config::max_request_bytes`]). Fits a full bulk
/// request of 100,000 epochs with a dozen metrics each.
pub const MAX_MESSAGE_BYTES: usize = config::DEFAULT_MAX_REQUEST_BYTES;

/// Opens the database (applying pending migrations), then serves gRPC on
/// `listener`, and HTTP on `--http-listen` unless it is `off`, until
/// `shutdown` resolves. After that, in-flight calls get
/// [`Config::shutdown_grace`] to finish before the server stops anyway.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let http = match config.http_listen.addr() {
        None => None,
        Some(addr) => Some(bind("--http-listen", addr).await?),
    };
    serve_on(config, Listeners { grpc: listener, http }, shutdown).await
}

/// The sockets one server listens on: [`serve_on`] takes them bound, so
/// that a caller (a test) can bind port 0 and learn the port.
#[derive(Debug)]
pub struct Listeners {
    /// gRPC (HTTP/2 only).
    pub grpc: TcpListener,
    /// The HTTP site (HTTP/1.1 and HTTP/2); `None`: no HTTP listener,
    /// whatever `--http-listen` says.
    pub http: Option<TcpListener>,
}

/// Binds `addr` for `flag`, with an error naming both.
pub async fn bind(flag: &'static str, addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Listen { flag, addr, source })
}

/// [`serve`] on listeners bound by the caller.
pub async fn serve_on(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let local_addr = bound_addr(&listeners.grpc)?;
    let http_addr = listeners.http.as_ref().map(bound_addr).transpose()?;
    let tokens = config.auth_tokens.as_deref().map(Tokens::load).transpose()?;
    check_exposure(&config, local_addr, tokens.as_ref())?;
    if let Some(addr) = http_addr {
        check_exposure(&config, addr, tokens.as_ref())?;
    }
    let tls = config.tls_files().map(|files| files.load_both()).transpose()?;
    let guard = CallGuard::new(tokens, config.call_limits());
    let reloader = config
        .auth_tokens
        .clone()
        .map(|path| reload_tokens_on_sighup(guard.clone(), path));
    let grace = config.shutdown_grace();
    let store = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Store::open(&config))
            .await
            .map_err(|e| StartupError::Task(e.to_string()))??
    };
    let threads = store.threads();
    let watched = store.clone();
    let router::App {
        grpc,
        http,
        health,
        ready,
    } = router::build(store, &config, guard).await?;
    // NOT_SERVING while the database is unusable; stops with the server.
    let health_monitor = health::Monitor::spawn(health, ready, &watched);
    drop(watched);

    // Both listeners stop together: gRPC's shutdown signal tells HTTP's.
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        info!("shutdown requested: finishing in-flight calls");
        let _ = stopping_tx.send(true);
    };
    let stopped = |mut stopping: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    let accepting = net::AcceptSettings {
        handshake_timeout: config.handshake_timeout(),
        tcp_keepalive: config.tcp_keepalive(),
    };
    let builder = Server::builder()
        .http2_keepalive_interval(Some(config.http2_keepalive_interval()))
        .http2_keepalive_timeout(Some(config.http2_keepalive_timeout()));
    let grpc_tls = tls.as_ref().map(|tls| tls.grpc.clone());
    let grpc_server = run_listener(builder.clone(), grpc, listeners.grpc, grpc_tls, accepting, signal);
    let http_server = match listeners.http {
        None => {
            // Holds a clone of the store, which must not outlive serving.
            drop(http);
            Box::pin(std::future::ready(Ok(())))
        }
        Some(listener) => run_listener(
            builder.accept_http1(true),
            http,
            listener,
            tls.map(|tls| tls.http),
            accepting,
            stopped(stopping.clone()),
        ),
    };
    let grace_expired = async move {
        stopped(stopping).await;
        tokio::time::sleep(grace).await;
    };

    info!(addr = %local_addr, "serving mlmeta.v1.MetadataService");
    if let Some(addr) = http_addr {
        info!(addr = %addr, "serving HTTP: /metrics, /healthz, /readyz");
    }
    tokio::select! {
        result = async { tokio::try_join!(grpc_server, http_server) } => {
            result?;
        }
        () = grace_expired => warn!(?grace, "in-flight calls still running after the grace period; stopping anyway"),
    }
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    drop(health_monitor);
    // The store's threads stop once its last clone is gone (calls still
    // running past the grace period may hold one): waited for, so that
    // SQLite's last checkpoint is made and connections are closed before
    // the process exits.
    let finished = tokio::task::spawn_blocking(move || threads.wait(THREADS_GRACE))
        .await
        .unwrap_or(false);
    if !finished {
        warn!(limit = ?THREADS_GRACE, "background threads still running; stopping anyway");
    }
    info!("server stopped");
    Ok(())
}

/// How long a stopping server waits for the store's threads.
const THREADS_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

type ServerFuture = Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>>;

/// Serves `service` on `listener` (over TLS with `tls`) until `signal`.
/// tonic's own TLS and socket options are left unset: the accept loop of
/// `net` does both, under one handshake deadline.
fn run_listener<S, ResBody>(
    builder: Server,
    service: S,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    accepting: net::AcceptSettings,
    signal: impl Future<Output = ()> + Send + 'static,
) -> ServerFuture
where
    S: tower::Service<Request<tonic::body::Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<tonic::codegen::StdError> + Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    match tls {
        None => Box::pin(async move {
            builder
                .serve_with_incoming_shutdown(service, net::plaintext(listener, accepting), signal)
                .await
        }),
        Some(acceptor) => Box::pin(async move {
            builder
                .serve_with_incoming_shutdown(service, net::tls(listener, acceptor, accepting), signal)
                .await
        }),
    }
}

fn bound_addr(listener: &TcpListener) -> Result<SocketAddr, StartupError> {
    listener
        .local_addr()
        .map_err(|e| StartupError::Task(e.to_string()))
}

/// Refuses to serve a non-loopback address to anyone at all unless that was
/// asked for explicitly; warns where tokens would cross the network in clear.
fn check_exposure(config: &Config, addr: SocketAddr, tokens: Option<&Tokens>) -> Result<(), StartupError> {
    if addr.ip().is_loopback() {
        return Ok(());
    }
    match tokens {
        None if !config.allow_unauthenticated => Err(StartupError::Unauthenticated(addr.to_string())),
        None => {
            warn!(%addr, "serving a non-loopback address WITHOUT authentication (--allow-unauthenticated): anyone who can reach it may read and write");
            Ok(())
        }
        Some(_) if config.tls_cert.is_none() => {
            warn!(%addr, "tokens are required but TLS is off: tokens and data cross the network in clear (set --tls-cert and --tls-key)");
            Ok(())
        }
        Some(tokens) => {
            info!(%addr, tokens = tokens.len(), "serving with TLS and bearer tokens");
            Ok(())
        }
    }
}

/// Re-reads the tokens file on SIGHUP, so tokens can be added and revoked
/// without a restart. A file that no longer parses is refused with an
/// error in the log, and the tokens in use stay.
#[cfg(unix)]
fn reload_tokens_on_sighup(guard: CallGuard, path: std::path::PathBuf) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                warn!(%error, "cannot listen for SIGHUP: the tokens file will not be reloaded");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            let file = path.clone();
            match tokio::task::spawn_blocking(move || Tokens::load(&file)).await {
                Ok(Ok(tokens)) => {
                    let count = tokens.len();
                    guard.replace_tokens(tokens);
                    info!(path = %path.display(), tokens = count, "reloaded the tokens file");
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "tokens file not reloaded; the previous tokens stay in use");
                }
                Err(error) => tracing::error!(%error, "tokens file reload failed"),
            }
        }
    })
}

/// Without SIGHUP, the tokens file is read at start only.
#[cfg(not(unix))]
fn reload_tokens_on_sighup(_guard: CallGuard, _path: std::path::PathBuf) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {})
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
