//! [`HttpMetrics`]: requests of the HTTP listener (the page, its API,
//! the probes), by route *template* (`/api/v1/projects/{project}/models`,
//! never the raw path, so the number of series is bounded by the routes)
//! and status code.
//!
//! Recorded by [`record`], a middleware around the site's router, so it
//! counts what the router answered (404s of unknown paths as
//! `handler="unmatched"`); requests the guard refused before they reached
//! the router (401, 403, 429) are counted by
//! `mlmeta_auth_refused_total` instead. The duration runs until the
//! response head is ready: for an events stream, its opening.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::histogram::{AtomicHistogram, SECONDS};

/// The handler label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// The counters of one route.
#[derive(Debug)]
struct RouteStats {
    /// Requests answered, by status code.
    codes: Mutex<BTreeMap<u16, u64>>,
    duration: AtomicHistogram,
}

/// Every route's counters (a route appears once first requested).
#[derive(Debug, Default)]
pub(crate) struct HttpMetrics {
    routes: Mutex<BTreeMap<String, Arc<RouteStats>>>,
}

impl HttpMetrics {
    fn route(&self, handler: &str) -> Arc<RouteStats> {
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(stats) = routes.get(handler) {
            return Arc::clone(stats);
        }
        let stats = Arc::new(RouteStats {
            codes: Mutex::default(),
            duration: AtomicHistogram::seconds(SECONDS),
        });
        routes.insert(handler.to_owned(), Arc::clone(&stats));
        stats
    }

    /// One request to `handler` answered `code` after `started`.
    fn observe(&self, handler: &str, code: u16, started: Instant) {
        let stats = self.route(handler);
        stats.duration.observe_duration(started.elapsed());
        *stats
            .codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(code)
            .or_insert(0) += 1;
    }

    /// Writes `http_requests_total` and `http_request_duration_seconds`.
    pub(crate) fn encode(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let routes: Vec<(String, Arc<RouteStats>)> = self
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(handler, stats)| (handler.clone(), Arc::clone(stats)))
            .collect();
        let mut total = encoder.encode_descriptor(
            "http_requests",
            "HTTP requests answered by the page, its API and the probes, by route template and status code.",
            None,
            MetricType::Counter,
        )?;
        for (handler, stats) in &routes {
            let codes = stats.codes.lock().unwrap_or_else(PoisonError::into_inner).clone();
            for (code, count) in codes {
                let code = code.to_string();
                let labels = [("handler", handler.as_str()), ("code", code.as_str())];
                total
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
            }
        }
        let mut duration = encoder.encode_descriptor(
            "http_request_duration_seconds",
            "Time until the response head of HTTP requests, by route template.",
            None,
            MetricType::Histogram,
        )?;
        for (handler, stats) in &routes {
            stats
                .duration
                .encode(duration.encode_family(&[("handler", handler.as_str())])?)?;
        }
        Ok(())
    }
}

/// The middleware recording each request of the site.
pub(crate) async fn record(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let handler = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    metrics.observe(&handler, response.status().as_u16(), started);
    response
}
