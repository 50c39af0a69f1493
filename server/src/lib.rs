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
mod service;
mod store;
mod validate;

use std::future::Future;

use mlmeta_proto::metadata_service_server::MetadataServiceServer;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tracing::{info, warn};

pub use config::Config;
pub use error::StartupError;

use crate::service::MetadataApi;
use crate::store::Store;

/// Largest encoded request or response message the server accepts or sends.
/// Fits a full bulk request of 100,000 epochs with a dozen metrics each.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Opens the database (applying pending migrations), then serves gRPC on
/// `listener` until `shutdown` resolves. After that, in-flight calls get
/// [`Config::shutdown_grace`] to finish before the server stops anyway.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let grace = config.shutdown_grace();
    let store = tokio::task::spawn_blocking(move || Store::open(&config))
        .await
        .map_err(|e| StartupError::Task(e.to_string()))??;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<MetadataServiceServer<MetadataApi>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mlmeta_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let metadata = MetadataServiceServer::new(MetadataApi::new(store))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);

    let local_addr = listener.local_addr().ok();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        info!("shutdown requested: finishing in-flight calls");
        let _ = stopping_tx.send(());
    };
    let server = Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(metadata)
        .serve_with_incoming_shutdown(incoming, signal);
    let grace_expired = async move {
        match stopping_rx.await {
            Ok(()) => tokio::time::sleep(grace).await,
            Err(_) => std::future::pending().await,
        }
    };

    if let Some(addr) = local_addr {
        info!(%addr, "serving mlmeta.v1.MetadataService");
    }
    tokio::select! {
        result = server => result?,
        () = grace_expired => warn!(?grace, "in-flight calls still running after the grace period; stopping anyway"),
    }
    info!("server stopped");
    Ok(())
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
