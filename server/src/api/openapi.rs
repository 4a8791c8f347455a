//! The API's OpenAPI document, generated from the handlers (`#[utoipa::path]`) and the
//! types they read and answer (`ToSchema`, `IntoParams`) as the router is built, so it
//! documents exactly what is routed. It is served at `/api/v1/openapi.json` and kept in
//! `docs/openapi.json`, which `server/tests/openapi.rs` compares with it.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};

use super::caller::SESSION_COOKIE;
use super::schemas;

/// Every error of the API (except 422 on a registry import, which adds `lines`).
#[derive(ToSchema)]
#[schema(as = Error)]
#[allow(
    dead_code,
    reason = "the shape of `ApiError`'s answer, for the document"
)]
pub(super) struct ErrorDoc {
    /// What went wrong, in words meant for the operator (English).
    error: String,
    /// What kind of error, for a client to say in its own language: `bad_request`,
    /// `not_found`, `bad_registry`, `unavailable`, `unauthorized`, `forbidden`,
    /// `method_not_allowed`, `too_large` or `internal`.
    #[schema(example = "forbidden")]
    code: String,
}

/// A registry file with bad rows: nothing was imported. Every bad row is listed (at most
/// 1000, then one entry summing up the rest).
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "the shape of `ApiError::BadRegistry`'s answer, for the document"
)]
pub(super) struct RegistryImportError {
    /// Says how many rows are bad and that nothing was imported.
    error: String,
    /// `bad_registry`.
    code: String,
    lines: Vec<crate::registry::LineError>,
}

/// A bad query parameter (unknown parameter, unparsable or disallowed value), path
/// parameter or request body.
#[derive(ToResponse)]
pub(super) struct BadRequest(#[allow(dead_code)] ErrorDoc);

/// The database failed; details are in the server log.
#[derive(ToResponse)]
pub(super) struct Internal(#[allow(dead_code)] ErrorDoc);

/// No such thing.
#[derive(ToResponse)]
pub(super) struct NotFound(#[allow(dead_code)] ErrorDoc);

/// The server is shutting down.
#[derive(ToResponse)]
pub(super) struct Unavailable(#[allow(dead_code)] ErrorDoc);

/// Not signed in, or the session or token is not valid (only with `auth.enabled`).
#[derive(ToResponse)]
pub(super) struct Unauthorized(#[allow(dead_code)] ErrorDoc);

/// The user's role or region scope does not allow it.
#[derive(ToResponse)]
pub(super) struct Forbidden(#[allow(dead_code)] ErrorDoc);

/// What the document says before its paths: who it is about, its tags, how callers sign
/// in (a session cookie or a bearer token; every operation needs one unless it says
/// otherwise), the shared responses and the schemas that parameters refer to.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "campuswatch",
        description = "HTTP API of the campuswatch server. Campus gateway agents report the \
            state of each campus's alarm and camera links over MQTT; the server judges \
            gateway liveness, raises alerts for dropped links and computes coverage (how many \
            registered campuses are reporting and networked) per region and school type. All \
            JSON; timestamps are RFC 3339. Errors are `{\"error\": \"…\"}`, including those \
            of the HTTP framework (a method a path does not take: 405 with `Allow`; a body \
            too large: 413); unknown paths answer 404 with that body. Query parameters not \
            listed for an operation are refused with 400."
    ),
    tags(
        (name = "health", description = "The server's own health and metrics."),
        (name = "meta", description = "This document."),
        (name = "access", description = "Signing in and API tokens."),
        (name = "coverage", description = "Coverage of registered campuses by region and school type."),
        (name = "campuses", description = "Campuses, their gateways and their alarm and camera devices."),
        (name = "alerts", description = "Alerts for dropped links, regional incidents, maintenance windows and the history of link events."),
        (name = "registry", description = "The registry of campuses that should be networked."),
        (name = "gb28181", description = "GB/T 28181: devices registered to the server as a video platform, their channels, and where the agent's and the platform's views of a campus's video disagree (see docs/gb28181.md)."),
        (name = "reports", description = "Availability and coverage reports per region and school type, over a period or at a point in time (see docs/reports.md)."),
        (name = "monitoring", description = "Live updates of what is stored, as server-sent events."),
    ),
    security(("session" = []), ("token" = [])),
    modifiers(&SignIn),
    components(
        schemas(
            ErrorDoc,
            schemas::CampusId,
            schemas::RegionCode,
            schemas::SchoolType,
            schemas::GatewayState,
            crate::model::AlertKind,
        ),
        responses(BadRequest, Internal, NotFound, Unavailable, Unauthorized, Forbidden),
    )
)]
pub(super) struct ApiDoc;

/// The two ways to sign in.
struct SignIn;

impl Modify for SignIn {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The console's session, from POST /api/v1/session.",
            ))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token from POST /api/v1/tokens."))
                    .build(),
            ),
        );
    }
}

/// The document, as `docs/openapi.json` keeps it: pretty-printed, with a final newline.
pub fn openapi_json() -> String {
    let doc = super::router::documented().into_openapi();
    let mut text = doc
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    text.push('\n');
    text
}

/// This document
///
/// The OpenAPI 3.1 description of this API, generated from the server's code.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "getOpenApi",
    tag = "meta",
    security(),
    responses((status = 200, description = "This document.", body = Object)),
)]
pub(super) async fn openapi() -> Response {
    static DOC: OnceLock<String> = OnceLock::new();
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOC.get_or_init(openapi_json).as_str(),
    )
        .into_response()
}
