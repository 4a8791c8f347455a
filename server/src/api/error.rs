//! The API's errors ([`ApiError`]), answered as JSON, and the parsers of path and query
//! values that fail with one.

use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use campuswatch_protocol::{RegionCode, SchoolType};
use serde::Serialize;

use crate::registry::LineError;

/// Every error the API returns.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    /// A registry import with bad rows: nothing was imported.
    BadRegistry(Vec<LineError>),
    Unavailable(String),
    /// Not signed in, or the session or token is not valid.
    Unauthorized(String),
    /// Signed in, but the role or the region scope does not allow it.
    Forbidden(String),
    /// The path exists, but not with this method.
    MethodNotAllowed(String),
    /// The body is larger than the route accepts.
    TooLarge(String),
    /// Too many failed attempts: try again after this many seconds (`Retry-After`).
    TooManyRequests(String, u64),
    /// Logged in full, shown to the client as a generic message.
    Internal(String),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    lines: Option<&'a [LineError]>,
}

impl ApiError {
    /// The error's stable code, which the console translates (the `error` text is the
    /// detail, in English).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::BadRegistry(_) => "bad_registry",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::TooLarge(_) => "too_large",
            ApiError::TooManyRequests(..) => "too_many_requests",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, msg, lines) = match &self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone(), None),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone(), None),
            ApiError::BadRegistry(lines) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the registry file has {} bad row(s); nothing was imported",
                    lines.len()
                ),
                Some(lines.as_slice()),
            ),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m.clone(), None),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, m.clone(), None),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone(), None),
            ApiError::MethodNotAllowed(m) => (StatusCode::METHOD_NOT_ALLOWED, m.clone(), None),
            ApiError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m.clone(), None),
            ApiError::TooManyRequests(m, _) => (StatusCode::TOO_MANY_REQUESTS, m.clone(), None),
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "API request failed.");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the server log".to_string(),
                    None,
                )
            }
        };
        let code = self.code();
        let mut response = (
            status,
            Json(ErrorBody {
                error: &msg,
                code,
                lines,
            }),
        )
            .into_response();
        if let ApiError::TooManyRequests(_, secs) = self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<crate::ingest::EngineGone> for ApiError {
    fn from(e: crate::ingest::EngineGone) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            // The request's period, not the server, is at fault: it says what to ask.
            crate::store::StoreError::BeforeHistory { .. } => ApiError::BadRequest(e.to_string()),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

pub(super) async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; see /api/v1/openapi.json".into())
}

/// A path that exists, asked with a method it does not take (the `Allow` header, which
/// the router adds, says which it takes).
pub(super) async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::MethodNotAllowed(format!(
        "{method} is not allowed here; see /api/v1/openapi.json"
    ))
}

/// An id in a path (`/api/v1/alerts/{id}/…`).
pub(super) fn parse_number(what: &str, s: &str) -> Result<u64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::BadRequest(format!("{what} {s:?} is not a number")))
}

pub(super) fn parse_region(s: &str) -> Result<RegionCode, ApiError> {
    RegionCode::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))
}

pub(super) fn parse_school_type(s: &str) -> Result<SchoolType, ApiError> {
    SchoolType::parse(s).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "school_type {s:?}: use kindergarten, primary, secondary or other"
        ))
    })
}
