//! What a server serves, built from the opened store and the
//! configuration: the gRPC services behind the [`CallGuard`], and the
//! health reporter that flips their health status. [`crate::serve`] only
//! binds, accepts and runs what [`build`] returns, so every server (the
//! binary, the in-process test servers) mounts exactly the same routes.

use mlmeta_proto::metadata_service_server::MetadataServiceServer;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;
use tower::Layer as _;

use crate::config::Config;
use crate::error::StartupError;
use crate::security::{CallGuard, Guard};
use crate::service::MetadataApi;
use crate::store::Store;

/// Everything one server serves.
///
/// An HTTP router (pages, `/metrics`, `/healthz`) belongs here too, next
/// to `grpc`, when there is one.
pub(crate) struct App {
    /// The gRPC services (`mlmeta.v1.MetadataService`, `grpc.health.v1`,
    /// `grpc.reflection.v1` and `v1alpha`), every call through the guard.
    pub grpc: Guard<Routes>,
    /// Health of the services: `MetadataService` (and the overall status
    /// `""`) start SERVING; whatever watches the database sets them
    /// NOT_SERVING while it cannot serve.
    pub health: HealthReporter,
}

/// Builds the services over `store` with the settings of `config`, every
/// call passing `guard` first.
pub(crate) async fn build(store: Store, config: &Config, guard: CallGuard) -> Result<App, StartupError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<MetadataServiceServer<MetadataApi>>().await;
    let metadata = MetadataServiceServer::new(MetadataApi::new(store))
        .max_decoding_message_size(config.max_request_bytes)
        .max_encoding_message_size(crate::MAX_MESSAGE_BYTES);
    let routes = Routes::new(health_service)
        .add_service(reflection().build_v1()?)
        // v1alpha for the clients that know no other: Python's
        // grpcio-reflection, grpc_cli, older grpcurl.
        .add_service(reflection().build_v1alpha()?)
        .add_service(metadata)
        .prepare();
    Ok(App {
        grpc: guard.layer(routes),
        health,
    })
}

/// Reflection over the mlmeta and health descriptors (each version adds
/// its own reflection descriptors).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mlmeta_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}
