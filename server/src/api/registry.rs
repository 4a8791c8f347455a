//! The campus registry: imported as CSV, read back as JSON or CSV; and the hand-off of
//! requests to the engine, which applies them in order with the message stream.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::caller::Caller;
use super::error::ApiError;
use super::extract::{ApiBytes, ApiQuery};
use super::AppState;
use crate::auth::Role;
use crate::ingest::Inbound;
use crate::registry::{self, RegistryEntry};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImportQuery {
    /// `upsert` (default) or `replace`.
    mode: Option<String>,
}

#[derive(Serialize)]
pub(super) struct ImportResult {
    imported: usize,
    mode: &'static str,
    registered: u64,
}

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
    if replace && caller.0.scope.is_some() {
        return Err(ApiError::Forbidden(
            "replacing the whole registry needs an administrator of every region".into(),
        ));
    }
    let imported = entries.len();
    submit_registry(&s.inbound, entries, replace).await?;
    let registered = s.monitor().coverage().total(None, None).registered;
    Ok(Json(ImportResult {
        imported,
        mode,
        registered,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RegistryQuery {
    format: Option<String>,
}

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
