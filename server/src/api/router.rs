//! The routes of the HTTP API: every endpoint and the handler that answers it.

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;

use super::alerts::{acknowledge, alerts, events};
use super::campuses::{campus, campuses};
use super::coverage::coverage;
use super::error::{method_not_allowed, not_found};
use super::health::{healthz, metrics, openapi};
use super::incidents::incidents;
use super::live::live_updates;
use super::maintenance::{add_maintenance, list_maintenance, remove_maintenance};
use super::registry::{get_registry, import_registry};
use super::session::{create_token, sign_in, sign_out, who_am_i};
use super::{reports, AppState};

/// Largest registry CSV accepted over HTTP.
const MAX_REGISTRY_BYTES: usize = 64 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/coverage", get(coverage))
        .route("/api/v1/campuses", get(campuses))
        .route("/api/v1/campuses/{id}", get(campus))
        .route(
            "/api/v1/session",
            post(sign_in).get(who_am_i).delete(sign_out),
        )
        .route("/api/v1/tokens", post(create_token))
        .route("/api/v1/live", get(live_updates))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/alerts/{id}/ack", post(acknowledge))
        .route("/api/v1/incidents", get(incidents))
        .route(
            "/api/v1/maintenance",
            get(list_maintenance).post(add_maintenance),
        )
        .route("/api/v1/maintenance/{id}", delete(remove_maintenance))
        .route("/api/v1/events", get(events))
        .route(
            "/api/v1/registry",
            post(import_registry)
                .get(get_registry)
                .layer(DefaultBodyLimit::max(MAX_REGISTRY_BYTES)),
        )
        // Reports (availability, coverage, daily history): see api/reports.rs.
        .route("/api/v1/reports/availability", get(reports::availability))
        .route("/api/v1/reports/coverage", get(reports::coverage))
        .route(
            "/api/v1/reports/coverage/daily",
            get(reports::coverage_daily),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .merge(crate::console::routes())
        .fallback(not_found)
        .with_state(state)
}
