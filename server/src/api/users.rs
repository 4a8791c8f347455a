//! Users and their API tokens: an administrator lists and disables the users within
//! their scope; everyone lists and revokes their own tokens, and an administrator those
//! of the users within their scope.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use campuswatch_protocol::RegionCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::audit::record;
use super::caller::Caller;
use super::error::{parse_number, ApiError};
use super::extract::{ApiJson, ApiQuery};
use super::openapi::{BadRequest, Forbidden, Internal, NotFound, Unauthorized};
use super::AppState;
use crate::auth::Role;
use crate::store::{AuditAction, TokenInfo, UserInfo};

/// The users an administrator manages.
#[derive(Serialize, ToSchema)]
pub(super) struct UserList {
    users: Vec<UserInfo>,
}

/// List users
///
/// The users within the caller's scope, by name: with a scope, those whose scope lies
/// within it (a user of everything only to an administrator of everything). Needs the
/// `admin` role.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    operation_id = "listUsers",
    tag = "access",
    responses(
        (status = 200, description = "The users.", body = UserList),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn users(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<UserList>, ApiError> {
    caller.require(Role::Admin)?;
    let users = s
        .store
        .users()
        .await?
        .into_iter()
        .filter(|u| caller.0.covers(u.scope))
        .collect();
    Ok(Json(UserList { users }))
}

/// The user `id` if the caller, an administrator, manages them; 404 for one outside
/// their scope, exactly as for one that does not exist.
async fn managed_user(s: &AppState, caller: &Caller, id: &str) -> Result<UserInfo, ApiError> {
    let id = parse_number("user id", id)?;
    caller.require(Role::Admin)?;
    let id =
        i64::try_from(id).map_err(|_| ApiError::NotFound(format!("user {id} does not exist")))?;
    s.store
        .user(id)
        .await?
        .filter(|u| caller.0.covers(u.scope))
        .ok_or_else(|| ApiError::NotFound(format!("user {id} does not exist")))
}

/// What to change of a user.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserChange {
    /// `true` disables the user: they cannot sign in, and their sessions and tokens end
    /// at once. `false` enables them again; the ended sessions and tokens stay ended.
    disabled: bool,
}

/// Disable or enable a user
///
/// A disabled user cannot sign in, and every session and token of theirs ends at once;
/// enabling them again revives none of them. Needs the `admin` role and a user within
/// the caller's scope (404 otherwise); nobody disables themselves.
#[utoipa::path(
    patch,
    path = "/api/v1/users/{id}",
    operation_id = "changeUser",
    tag = "access",
    params(("id" = i64, Path, description = "User id.")),
    request_body = UserChange,
    responses(
        (status = 200, description = "The user as changed.", body = UserInfo),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn change_user(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UserChange>,
) -> Result<Json<UserInfo>, ApiError> {
    let user = managed_user(&s, &caller, &id).await?;
    if user.id == caller.0.user_id && body.disabled {
        return Err(ApiError::BadRequest(
            "you cannot disable yourself; ask another administrator".into(),
        ));
    }
    if user.disabled != body.disabled {
        s.store
            .set_user_disabled(user.id, body.disabled, s.clock.now())
            .await?;
        let action = if body.disabled {
            AuditAction::UserDisable
        } else {
            AuditAction::UserEnable
        };
        tracing::info!(user = %user.name, by = %caller.0.name, disabled = body.disabled, "User changed.");
        record(
            &s,
            &caller,
            action,
            user.name.clone(),
            user.scope,
            json!({"user_id": user.id}),
        )
        .await;
    }
    let user = s
        .store
        .user(user.id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("user {id} does not exist")))?;
    Ok(Json(user))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct TokenQuery {
    /// Whose tokens: a user id. Default: the caller's own. Another user's needs the
    /// `admin` role and a user within the caller's scope.
    user: Option<i64>,
}

/// API tokens, newest first.
#[derive(Serialize, ToSchema)]
pub(super) struct TokenList {
    tokens: Vec<TokenInfo>,
}

/// List API tokens
///
/// The caller's own tokens, or (`user`, administrators) those of a user within their
/// scope; revoked and expired ones too, newest first. Never the tokens themselves.
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    operation_id = "listTokens",
    tag = "access",
    params(TokenQuery),
    responses(
        (status = 200, description = "The tokens, newest first.", body = TokenList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn tokens(
    State(s): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TokenQuery>,
) -> Result<Json<TokenList>, ApiError> {
    let user = match q.user {
        Some(id) if id != caller.0.user_id => managed_user(&s, &caller, &id.to_string()).await?.id,
        _ => caller.0.user_id,
    };
    Ok(Json(TokenList {
        tokens: s.store.tokens(user).await?,
    }))
}

/// Revoke an API token
///
/// The token stops working at once (`401`). One's own, or, for an administrator, one of
/// a user within their scope; any other is `404`, exactly as one that does not exist.
/// Revoking a revoked token changes nothing.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    operation_id = "revokeToken",
    tag = "access",
    params(("id" = i64, Path, description = "Token id.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn revoke_token(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_number("token id", &id)?;
    let unknown = || ApiError::NotFound(format!("token {id} does not exist"));
    let token = match i64::try_from(id) {
        Ok(id) => s.store.token(id).await?,
        Err(_) => None,
    }
    .ok_or_else(unknown)?;
    // The token's user's scope: an administrator revokes within their own.
    let scope: Option<RegionCode> = if token.user_id == caller.0.user_id {
        caller.0.scope
    } else if caller.0.may(Role::Admin) {
        let owner = s.store.user(token.user_id).await?.ok_or_else(unknown)?;
        if !caller.0.covers(owner.scope) {
            return Err(unknown());
        }
        owner.scope
    } else {
        return Err(unknown());
    };
    if s.store.revoke_token(token.id, s.clock.now()).await? {
        tracing::info!(token = token.id, user = %token.user, by = %caller.0.name, "API token revoked.");
        record(
            &s,
            &caller,
            AuditAction::TokenRevoke,
            format!("token {}", token.id),
            scope,
            json!({"name": token.name, "user": token.user}),
        )
        .await;
    }
    Ok(StatusCode::NO_CONTENT)
}
