//! The API's extractors: a query string, a JSON body and a raw body whose rejections are
//! [`ApiError`]s, so that a request the framework cannot read is answered in the API's
//! JSON like every other error.
//!
//! Each takes the place of axum's own extractor in a handler's arguments, after
//! [`Caller`](super::Caller): a request that is not signed in is told so (401) before it is
//! told that its query or body is wrong (400).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;

use super::error::ApiError;

/// The query string read into `T` (`serde_urlencoded`, as [`axum::extract::Query`]); a
/// query that does not fit is a 400 with the framework's explanation.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub(super) struct ApiQuery<T>(pub T);

/// A JSON body read into `T` (as [`axum::Json`]); a body that is not JSON, not of the
/// expected shape or not sent as `application/json` is a 400 with the framework's
/// explanation.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub(super) struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

/// The whole body, as it was sent. A body larger than the route's
/// [`DefaultBodyLimit`](axum::extract::DefaultBodyLimit) is a 413.
pub(super) struct ApiBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(ApiBytes)
            .map_err(ApiError::from)
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(r.body_text()),
            _ => ApiError::BadRequest(r.body_text()),
        }
    }
}
