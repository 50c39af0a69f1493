//! The operator endpoints: `/healthz` (the process answers), `/readyz`
//! (the database is usable, as the health monitor last found it).
//! `/metrics` is `crate::metrics`'s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

/// What the probes report on.
#[derive(Clone, Debug)]
pub(crate) struct Probes {
    /// Whether the database is usable, as the health monitor last found it.
    pub ready: Readiness,
}

/// Whether the database is usable; set by the health monitor
/// (`crate::health`), which probes it every second. Starts ready: the
/// server opens (and migrates) the database before it listens.
#[derive(Clone, Debug)]
pub(crate) struct Readiness(Arc<AtomicBool>);

impl Default for Readiness {
    fn default() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }
}

impl Readiness {
    /// Records what the last probe found.
    pub(crate) fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    /// What the last probe found.
    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `/healthz` and `/readyz`.
pub(super) fn router(probes: Probes) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(probes)
}

/// 200 as long as the process serves HTTP at all: for liveness probes,
/// which restart the process when it fails. Independent of the database
/// on purpose (restarting does not bring a database back).
async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 while the database is usable, 503 while it is not: for readiness
/// probes, which take the replica out of the load balancer meanwhile.
async fn readyz(State(probes): State<Probes>) -> (StatusCode, &'static str) {
    if probes.ready.get() {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the database is unusable (see the server log)\n",
        )
    }
}
