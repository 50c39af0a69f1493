//! The gRPC health status of a server, and waiting for a given one.

use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::server::SERVICE_NAME;

/// A lazily connecting channel to `url` (`http://127.0.0.1:PORT`).
pub fn channel(url: &str) -> Channel {
    Endpoint::from_shared(url.to_owned())
        .expect("valid URL")
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy()
}

/// The status `service` (`""`: the whole server) reports now.
pub async fn status(channel: &Channel, service: &str) -> Result<ServingStatus, String> {
    let request = HealthCheckRequest {
        service: service.to_owned(),
    };
    let mut client = HealthClient::new(channel.clone());
    match tokio::time::timeout(Duration::from_secs(5), client.check(request)).await {
        Ok(Ok(response)) => Ok(response.into_inner().status()),
        Ok(Err(status)) => Err(format!("health check failed: {status}")),
        Err(_) => Err("health check timed out".to_owned()),
    }
}

/// Waits (polling every 20 ms) until both the metadata service and the
/// whole server report `wanted`; returns how long that took, or the last
/// statuses seen when `limit` runs out.
pub async fn wait_for(channel: &Channel, wanted: ServingStatus, limit: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        let service = status(channel, SERVICE_NAME).await;
        let overall = status(channel, "").await;
        if service == Ok(wanted) && overall == Ok(wanted) {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= limit {
            return Err(format!(
                "not {wanted:?} within {limit:?}: {SERVICE_NAME} {service:?}, overall {overall:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
