//! Live updates: the stored changes within the caller's scope, as server-sent events.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::caller::Caller;
use super::error::ApiError;
use super::extract::ApiQuery;
use super::openapi::{BadRequest, Forbidden, Unauthorized};
use super::schemas;
use super::AppState;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct LiveQuery {
    /// Only changes within this region node (and the caller's scope).
    #[param(value_type = Option<schemas::RegionCode>, example = "150100")]
    region: Option<String>,
}

/// Live updates (server-sent events)
///
/// A `text/event-stream` of every stored transition, alert and incident within the
/// caller's region scope (and `region`, if given), as it happens; `gb_device` when a
/// GB/T 28181 device registers, changes state or answers a catalog (within the scope by
/// its code's division); `registry` after an import. Each event's name is its kind and its data a LiveEvent. A client that falls
/// too far behind gets `resync` and should reload what it shows. A comment line is sent
/// every 15 s to keep the connection open.
#[utoipa::path(
    get,
    path = "/api/v1/live",
    operation_id = "liveUpdates",
    tag = "monitoring",
    params(LiveQuery),
    responses(
        (status = 200, description = "The event stream.", body = crate::live::LiveEvent, content_type = "text/event-stream"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    ),
)]
pub(super) async fn live_updates(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<LiveQuery>,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    let region = caller.region_param(q.region.as_deref())?;
    let rx = s.live.subscribe();
    let stopping = s.shutdown.clone();
    let stream = futures_util::stream::unfold(rx, move |mut rx| {
        let stopping = stopping.clone();
        async move {
            loop {
                let received = tokio::select! {
                    r = rx.recv() => r,
                    () = stopping.cancelled() => return None,
                };
                let event = match received {
                    Ok(e)
                        if e.region
                            .is_none_or(|r| region.is_none_or(|want| r.is_within(&want))) =>
                    {
                        Event::default()
                            .event(e.kind)
                            .json_data(&e)
                            .unwrap_or_else(|_| Event::default().event("resync").data("{}"))
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => Event::default()
                        .event("resync")
                        .data(format!("{{\"missed\":{missed}}}")),
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok::<_, std::convert::Infallible>(event), rx));
            }
        }
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response())
}
