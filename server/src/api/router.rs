//! The routes of the HTTP API: every endpoint and the handler that answers it. Each is
//! registered with its OpenAPI description (`routes!` reads the handler's
//! `#[utoipa::path]`), so the document cannot leave one out or list one that is not
//! routed.

use axum::extract::DefaultBodyLimit;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::error::{method_not_allowed, not_found};
use super::openapi::ApiDoc;
use super::{
    alerts, audit, campuses, coverage, gb28181, health, incidents, live, maintenance, openapi,
    registry, reports, session, users, AppState,
};

/// Largest registry CSV accepted over HTTP.
pub(super) const MAX_REGISTRY_BYTES: usize = 64 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let (api, _) = documented().split_for_parts();
    api.method_not_allowed_fallback(method_not_allowed)
        .merge(crate::console::routes())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::origin::same_origin,
        ))
        .with_state(state)
}

/// Every endpoint of the API (all but the console's pages), with its description.
pub(super) fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi::openapi))
        .routes(routes!(coverage::coverage))
        .routes(routes!(campuses::campuses))
        .routes(routes!(campuses::campus))
        .routes(routes!(alerts::alerts))
        .routes(routes!(alerts::events))
        .routes(
            routes!(registry::get_registry, registry::import_registry)
                .layer(DefaultBodyLimit::max(MAX_REGISTRY_BYTES)),
        )
        .routes(routes!(alerts::acknowledge))
        .routes(routes!(incidents::incidents))
        .routes(routes!(gb28181::gb_devices))
        .routes(routes!(gb28181::gb_device))
        .routes(routes!(gb28181::disagreements))
        .routes(routes!(
            maintenance::list_maintenance,
            maintenance::add_maintenance
        ))
        .routes(routes!(maintenance::remove_maintenance))
        .routes(routes!(
            session::sign_in,
            session::who_am_i,
            session::sign_out
        ))
        .routes(routes!(users::tokens, session::create_token))
        .routes(routes!(users::revoke_token))
        .routes(routes!(users::users))
        .routes(routes!(users::change_user))
        .routes(routes!(audit::audit))
        .routes(routes!(alerts::acknowledgements))
        .routes(routes!(reports::availability))
        .routes(routes!(reports::coverage))
        .routes(routes!(reports::coverage_daily))
        .routes(routes!(live::live_updates))
}
