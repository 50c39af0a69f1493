//! The HTTP listener's routes (`--http-listen`): the operator endpoints
//! (`/healthz`, `/readyz`, `/metrics`), the web page (`site.rs`, its
//! login form `login.rs`) and the page's JSON API under `/api/v1/`
//! (`api.rs`).
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

mod api;
mod json;
mod login;
mod lttb;
mod probes;
mod site;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, Uri};

pub(crate) use login::{COOKIE as LOGIN_COOKIE, Login, page as login_page};
pub(crate) use probes::{Probes, Readiness};

use crate::metrics::Metrics;
use crate::store::Store;

/// What the site serves from.
pub(crate) struct Site {
    pub probes: Probes,
    pub metrics: Arc<Metrics>,
    pub store: Store,
    pub login: Login,
}

/// The whole HTTP site: the probes, `/metrics`, the page, its login form
/// and its API.
pub(crate) fn router(site: Site) -> Router {
    let counted = site.metrics.http();
    Router::new()
        .merge(probes::router(site.probes))
        .merge(crate::metrics::router(site.metrics))
        .merge(site::router())
        .merge(login::router(site.login))
        .merge(api::router(site.store))
        .fallback(not_found)
        // Outermost, so that every route and the fallback are counted
        // under their route template.
        .layer(axum::middleware::from_fn_with_state(
            counted,
            crate::metrics::record_http,
        ))
}

/// Any path that no part of the site serves.
async fn not_found(uri: Uri) -> (StatusCode, String) {
    (StatusCode::NOT_FOUND, format!("no such page: {}\n", uri.path()))
}
