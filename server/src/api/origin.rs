//! Cross-site request forgery: a state-changing request (anything but GET, HEAD and
//! OPTIONS) that a browser sent from a page of another origin is refused, whatever
//! cookie it carries. The session cookie is `SameSite=Strict`, but a site is not an
//! origin: a page on another port of the same host is the same site and would get it.
//!
//! Browsers say where a request comes from in `Origin` (every cross-origin POST, PUT,
//! PATCH and DELETE carries it) and in `Sec-Fetch-Site`. Programs (curl, the CLI, a
//! peer server) send neither and are judged by their token or cookie alone. Behind a
//! reverse proxy the proxy must pass the `Host` the browser asked for (nginx:
//! `proxy_set_header Host $host;`), or set `X-Forwarded-Host`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::{info, warn};

use super::{ApiError, AppState};

/// The middleware: passes same-origin and non-browser requests, refuses the rest (403,
/// counted as `cw_http_refused_total{reason="cross_origin"}` and logged). A request the
/// API then refuses for its credentials (401) or its role or scope (403) is counted as
/// `unauthenticated` or `forbidden` and logged with the address it came from.
pub(super) async fn same_origin(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return refusals_counted(&s, req, next).await;
    }
    if let Some(from) = cross_origin(req.headers()) {
        s.metrics.http_refused("cross_origin");
        warn!(method = %req.method(), path = %req.uri().path(), from = %from, "Refused a state-changing request from another origin (see cw_http_refused_total).");
        return ApiError::Forbidden(
            "a request from another origin may not change anything here".into(),
        )
        .into_response();
    }
    refusals_counted(&s, req, next).await
}

async fn refusals_counted(s: &AppState, req: Request, next: Next) -> Response {
    // Kept for the log line without allocating on every request: the URI is shared.
    let method = req.method().clone();
    let uri = req.uri().clone();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let response = next.run(req).await;
    let path = uri.path();
    let peer = || peer.map(|p| p.to_string()).unwrap_or_default();
    match response.status() {
        StatusCode::UNAUTHORIZED => {
            s.metrics.http_refused("unauthenticated");
            info!(%method, %path, peer = %peer(), "Refused a request without valid credentials (see cw_http_refused_total).");
        }
        StatusCode::FORBIDDEN => {
            s.metrics.http_refused("forbidden");
            warn!(%method, %path, peer = %peer(), "Refused a request its role or region scope does not allow (see cw_http_refused_total).");
        }
        _ => {}
    }
    response
}

/// Where a cross-origin request comes from, or None for a same-origin one or one that
/// no browser sent.
fn cross_origin(headers: &HeaderMap) -> Option<String> {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text("x-forwarded-host")
        .and_then(|h| h.split(',').next())
        .or(text(header::HOST.as_str()))
        .map(str::trim);
    if let Some(origin) = text(header::ORIGIN.as_str()) {
        // `scheme://host[:port]`, or `null` (a sandboxed page, a file, a redirect).
        let authority = origin.split_once("://").map(|(_, a)| a);
        return match (authority, host) {
            (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => None,
            _ => Some(origin.to_string()),
        };
    }
    // A browser that sent no Origin still says whether the page was of this origin.
    match text("sec-fetch-site") {
        Some(site @ ("cross-site" | "same-site")) => Some(format!("a {site} page")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn browsers_from_other_origins_are_told_apart_from_this_one_and_from_programs() {
        let host = ("host", "127.0.0.1:8080");
        for same in [
            vec![host],
            vec![host, ("origin", "http://127.0.0.1:8080")],
            vec![host, ("origin", "HTTP://127.0.0.1:8080")],
            vec![host, ("sec-fetch-site", "same-origin")],
            vec![host, ("sec-fetch-site", "none")],
            vec![
                ("host", "10.0.0.5:8080"),
                ("x-forwarded-host", "cw.example.gov.cn"),
                ("origin", "https://cw.example.gov.cn"),
            ],
        ] {
            assert_eq!(cross_origin(&headers(&same)), None, "{same:?}");
        }
        for other in [
            vec![host, ("origin", "http://127.0.0.1:9999")],
            vec![host, ("origin", "http://attacker.example")],
            vec![host, ("origin", "null")],
            vec![host, ("sec-fetch-site", "same-site")],
            vec![host, ("sec-fetch-site", "cross-site")],
            vec![("origin", "http://127.0.0.1:8080")],
        ] {
            assert!(cross_origin(&headers(&other)).is_some(), "{other:?}");
        }
    }
}
