//! What a server serves, built from the opened store and the
//! configuration: the gRPC services and the HTTP site, both behind the
//! [`CallGuard`], and the health state that the monitor keeps. [`crate::serve`]
//! only binds, accepts and runs what [`build`] returns, so every server
//! (the binary, the in-process test servers, the bench's) mounts exactly
//! the same routes.

use std::sync::Arc;

use mlmeta_proto::metadata_service_server::MetadataServiceServer;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;
use tower::Layer as _;

use crate::config::Config;
use crate::error::StartupError;
use crate::http::{Login, Probes, Readiness, Site};
use crate::metrics::{GrpcMetrics, GrpcMetricsLayer, Metrics, Recorded};
use crate::security::{CallGuard, Guard};
use crate::service::MetadataApi;
use crate::store::Store;

/// Everything one server serves.
pub(crate) struct App {
    /// The gRPC services (`mlmeta.v1.MetadataService`, `grpc.health.v1`,
    /// `grpc.reflection.v1` and `v1alpha`), every call recorded (refused
    /// ones too) and then passed through the guard.
    pub grpc: Recorded<Guard<Routes>>,
    /// The HTTP site of `--http-listen` (`/healthz`, `/readyz`,
    /// `/metrics`, the page and its API), every request through the same
    /// guard.
    pub http: Guard<Routes>,
    /// Health of the services: `MetadataService` (and the overall status
    /// `""`) start SERVING; whatever watches the database sets them
    /// NOT_SERVING while it cannot serve.
    pub health: HealthReporter,
    /// What `/readyz` reports; set by the same watcher as `health`.
    pub ready: Readiness,
}

/// Builds the services over `store` with the settings of `config`, every
/// call passing `guard` first.
pub(crate) async fn build(store: Store, config: &Config, guard: CallGuard) -> Result<App, StartupError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<MetadataServiceServer<MetadataApi>>().await;
    let grpc_metrics = (!config.no_grpc_metrics).then(|| {
        Arc::new(GrpcMetrics::new(&[
            mlmeta_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ]))
    });
    let metrics = Arc::new(Metrics::new(
        grpc_metrics.clone(),
        store.clone(),
        guard.refusals(),
    ));
    let metadata = MetadataServiceServer::new(MetadataApi::new(store.clone()))
        .max_decoding_message_size(config.max_request_bytes)
        .max_encoding_message_size(crate::MAX_MESSAGE_BYTES);
    let routes = Routes::new(health_service)
        .add_service(reflection().build_v1()?)
        // v1alpha for the clients that know no other: Python's
        // grpcio-reflection, grpc_cli, older grpcurl.
        .add_service(reflection().build_v1alpha()?)
        .add_service(metadata)
        .prepare();
    let ready = Readiness::default();
    let site = crate::http::router(Site {
        probes: Probes { ready: ready.clone() },
        metrics,
        store,
        login: Login {
            guard: guard.clone(),
            secure: config.tls_cert.is_some(),
        },
    });
    Ok(App {
        grpc: GrpcMetricsLayer(grpc_metrics).layer(guard.layer(routes)),
        http: guard.layer(Routes::from(site)),
        health,
        ready,
    })
}

/// Reflection over the mlmeta and health descriptors (each version adds
/// its own reflection descriptors).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(mlmeta_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}
