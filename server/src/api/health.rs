//! Health and metrics: `/healthz` and `/metrics` (Prometheus).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// Liveness of the server itself.
#[derive(Serialize, ToSchema)]
pub(super) struct Health {
    /// Whether the server's MQTT connection to the broker is up.
    broker_connected: bool,
    /// Whether the database answers.
    database: bool,
    /// `ok` when the database answers and the server is connected to the broker, else
    /// `degraded`.
    #[schema(inline)]
    status: HealthStatus,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum HealthStatus {
    Ok,
    Degraded,
}

/// Server health
///
/// Whether the server's database answers and whether it is connected to the MQTT broker
/// that campus gateways report to. 200 while the database answers (`status` is
/// `degraded` if the broker link is down), 503 when it does not.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "getHealth",
    tag = "health",
    security(),
    responses(
        (status = 200, description = "The database answers.", body = Health),
        (status = 503, description = "The database does not answer; same body, `status: degraded`.", body = Health),
    ),
)]
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
    let body = Health {
        broker_connected: broker,
        database,
        status: if database && broker {
            HealthStatus::Ok
        } else {
            HealthStatus::Degraded
        },
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics
///
/// Prometheus text exposition: gateway states, coverage, ingest counters and the like.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "getMetrics",
    tag = "health",
    security(),
    responses((
        status = 200,
        description = "Prometheus text format 0.0.4.",
        body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8",
    )),
)]
pub(super) async fn metrics(State(s): State<AppState>) -> Response {
    let text = s.metrics.render(&s.monitor());
    (
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        text,
    )
        .into_response()
}
