//! Health and metrics: `/healthz`, `/metrics` (Prometheus) and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::AppState;

pub(super) async fn healthz(State(s): State<AppState>) -> Response {
    let database = s.store.ping().await;
    let broker = s
        .metrics
        .broker_connected
        .load(std::sync::atomic::Ordering::Relaxed);
    let status = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if database && broker { "ok" } else { "degraded" },
        "database": database,
        "broker_connected": broker,
    });
    (status, Json(body)).into_response()
}

pub(super) async fn metrics(State(s): State<AppState>) -> Response {
    let text = s.metrics.render(&s.monitor());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

pub(super) async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../../../docs/openapi.json"),
    )
        .into_response()
}
