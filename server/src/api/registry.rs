//! The campus registry: imported as CSV, read back as JSON or CSV; and the hand-off of
//! requests to the engine, which applies them in order with the message stream.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};

use super::caller::Caller;
use super::error::ApiError;
use super::extract::{ApiBytes, ApiQuery};
use super::openapi::{
    BadRequest, ErrorDoc, Forbidden, Internal, RegistryImportError, Unauthorized,
};
use super::AppState;
use crate::auth::Role;
use crate::ingest::Inbound;
use crate::registry::{self, RegistryEntry};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ImportQuery {
    /// `upsert` (the default) or `replace`.
    #[param(value_type = Option<super::schemas::ImportMode>, inline)]
    mode: Option<String>,
}

fn import_mode() -> utoipa::openapi::schema::ObjectBuilder {
    super::schemas::string_enum(
        ["upsert", "replace"],
        "`upsert` adds and updates campuses; `replace` also removes campuses not in the file.",
    )
}

/// What a registry import did.
#[derive(Serialize, ToSchema)]
pub(super) struct ImportResult {
    /// Rows in the file (campuses added or updated).
    imported: usize,
    /// The import mode used.
    #[schema(schema_with = import_mode)]
    mode: &'static str,
    /// Registered campuses after the import, within the caller's scope.
    registered: u64,
}

/// A registry file, as the import reads it and the export writes it.
const REGISTRY_CSV_EXAMPLE: &str = "id,name,region,school_type,expected_alarms,expected_cameras\n\
    c-0001,\"No. 1 Primary School, Xincheng\",150102,primary,2,24\n";

/// Validates the whole file, then hands it to the engine, which stores it in one
/// transaction and updates coverage, in order with the message stream.
async fn submit_registry(
    inbound: &mpsc::Sender<Inbound>,
    entries: Vec<RegistryEntry>,
    replace: bool,
) -> Result<(), ApiError> {
    crate::ingest::import_registry(inbound, entries, replace)
        .await?
        .map_err(ApiError::from)
}

/// Import the registry
///
/// Loads a registry CSV file: the campuses that should be networked, with county, school
/// type and expected alarm devices and cameras. The whole file is checked first: either
/// every row is imported, in one transaction, or none is and every bad row is reported
/// (422). Columns (header row required, any order, names case-insensitive): `id`,
/// `name`, `region` (a county-level code), `school_type` (`kindergarten`, `primary`,
/// `secondary`, `other`, or 幼儿园, 小学, 中学/初中/高中/完全中学, 其他),
/// `expected_alarms`, `expected_cameras` (0 to 1024). UTF-8, an Excel byte order mark is
/// accepted; blank rows are skipped; names containing commas must be double-quoted. At
/// most 1,000,000 rows and 64 MiB. `mode=upsert` (the default) adds and updates
/// campuses; `mode=replace` also removes campuses not in the file. Needs the `admin`
/// role; an administrator of one region imports only campuses of that region (a campus
/// registered in another region cannot be moved into theirs) and cannot replace the
/// whole registry. `registered` counts the campuses within the caller's scope.
#[utoipa::path(
    post,
    path = "/api/v1/registry",
    operation_id = "importRegistry",
    tag = "registry",
    params(ImportQuery),
    request_body(
        content = String,
        content_type = "text/csv",
        description = "The registry CSV file. The content type is not checked.",
        example = json!(REGISTRY_CSV_EXAMPLE),
    ),
    responses(
        (status = 200, description = "Every row was imported.", body = ImportResult),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, description = "The body is larger than 64 MiB.", body = ErrorDoc),
        (status = 422, description = "The file has bad rows; nothing was imported.", body = RegistryImportError),
        (status = 500, response = Internal),
        (status = 503, description = "The server is shutting down.", body = ErrorDoc),
    ),
)]
pub(super) async fn import_registry(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ImportQuery>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<ImportResult>, ApiError> {
    let (replace, mode) = match q.mode.as_deref() {
        None | Some("upsert") => (false, "upsert"),
        Some("replace") => (true, "replace"),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "mode {other:?}: use upsert or replace"
            )))
        }
    };
    caller.require(Role::Admin)?;
    let entries = registry::parse_csv(&body).map_err(ApiError::BadRegistry)?;
    if let Some(outside) = entries.iter().find(|e| !caller.sees(&e.region)) {
        return Err(ApiError::Forbidden(format!(
            "campus {} is in region {}, outside your scope; nothing was imported",
            outside.campus, outside.region
        )));
    }
    // A row may not take a campus of another region into the caller's: the campus as
    // registered now must be theirs too.
    {
        let m = s.monitor();
        let elsewhere = entries.iter().find(|e| {
            m.campus(e.campus.as_str())
                .and_then(|c| c.registry)
                .is_some_and(|r| !caller.sees(&r.region))
        });
        if let Some(e) = elsewhere {
            return Err(ApiError::Forbidden(format!(
                "campus {} is registered outside your scope; nothing was imported",
                e.campus
            )));
        }
    }
    if replace && caller.0.scope.is_some() {
        return Err(ApiError::Forbidden(
            "replacing the whole registry needs an administrator of every region".into(),
        ));
    }
    let imported = entries.len();
    submit_registry(&s.inbound, entries, replace).await?;
    // Counted within the caller's scope: the figure outside it is not theirs to read.
    let registered = s
        .monitor()
        .coverage()
        .total(caller.0.scope, None)
        .registered;
    super::audit::record(
        &s,
        &caller,
        crate::store::AuditAction::RegistryImport,
        "registry".into(),
        caller.0.scope,
        serde_json::json!({"mode": mode, "imported": imported, "registered": registered}),
    )
    .await;
    Ok(Json(ImportResult {
        imported,
        mode,
        registered,
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct RegistryQuery {
    /// `json` (the default) or `csv`.
    #[param(value_type = Option<super::schemas::Format>, inline)]
    format: Option<String>,
}

/// Export the registry
///
/// Every registered campus (the denominator of coverage) within the caller's scope, in
/// campus id order: as JSON, or with `format=csv` as a CSV file in the format the import
/// reads (a download named `registry.csv`, starting with a UTF-8 byte order mark so that
/// Excel shows Chinese names; the import skips it).
#[utoipa::path(
    get,
    path = "/api/v1/registry",
    operation_id = "getRegistry",
    tag = "registry",
    params(RegistryQuery),
    responses(
        (status = 200, description = "The registry.", content(
            (Vec<RegistryEntry> = "application/json"),
            (String = "text/csv; charset=utf-8", example = json!(REGISTRY_CSV_EXAMPLE)),
        )),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn get_registry(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RegistryQuery>,
) -> Result<Response, ApiError> {
    let mut entries = s.store.registry().await?;
    entries.retain(|e| caller.sees(&e.region));
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(entries).into_response()),
        // A download to edit in a spreadsheet and import again: with a byte order mark, as
        // the reports' CSV, so that Excel shows Chinese names (the import skips the mark).
        Some("csv") => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"registry.csv\"",
                ),
            ],
            format!("\u{feff}{}", registry::to_csv(&entries)),
        )
            .into_response()),
        Some(other) => Err(ApiError::BadRequest(format!(
            "format {other:?}: use json or csv"
        ))),
    }
}
