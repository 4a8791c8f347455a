//! Live updates: the stored changes within the caller's scope, as server-sent events.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::caller::Caller;
use super::error::{parse_region, ApiError};
use super::extract::ApiQuery;
use super::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LiveQuery {
    /// Only changes within this region node (and the caller's scope).
    region: Option<String>,
}

/// Server-sent events: every stored transition, alert and incident within the caller's
/// scope, as it happens (`event:` is the kind, `data:` the JSON). A console that falls
/// behind gets `resync` and should reload what it shows.
pub(super) async fn live_updates(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<LiveQuery>,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    let region = caller.region(q.region.as_deref().map(parse_region).transpose()?)?;
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
