//! The HTTP listener's routes (`--http-listen`): the operator endpoints
//! (`/healthz`, `/readyz`, `/metrics`) now, the page and its JSON API
//! later.
//!
//! Each part of the site is an [`axum::Router`] of its own without a
//! fallback; [`router`] merges them and adds the one fallback (404) last,
//! since axum refuses to merge two routers that both have one. A new part
//! (the page, `/api/v1`) is one more router merged in [`router`]. Every
//! request has passed the [`crate::security::CallGuard`] before it gets
//! here (token, budget, deadline), and finds the [`Caller`] in its
//! extensions.
//!
//! [`Caller`]: crate::security::Caller

mod probes;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, Uri};

pub(crate) use probes::{Probes, Readiness};

use crate::metrics::Metrics;

/// The whole HTTP site: the probes and `/metrics`.
pub(crate) fn router(probes: Probes, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .merge(probes::router(probes))
        .merge(crate::metrics::router(metrics))
        .fallback(not_found)
}

/// Any path that no part of the site serves.
async fn not_found(uri: Uri) -> (StatusCode, String) {
    (StatusCode::NOT_FOUND, format!("no such page: {}\n", uri.path()))
}
