//! Sessions and tokens: sign-in, who-am-i and sign-out for the console (a session
//! cookie), and API tokens for scripts.

use axum::extract::{ConnectInfo, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use campuswatch_protocol::RegionCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller::{cookie, Caller, SESSION_COOKIE};
use super::error::ApiError;
use super::extract::ApiJson;
use super::openapi::{BadRequest, Internal, Unauthorized};
use super::schemas;
use super::AppState;
use crate::auth::{Principal, Role};

/// A user's name and password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SignIn {
    name: String,
    #[schema(format = Password)]
    password: String,
}

/// The signed-in user.
#[derive(Serialize, ToSchema)]
pub(super) struct SessionInfo {
    name: String,
    role: Role,
    /// The region subtree the user sees; null = everything.
    #[schema(required, value_type = Option<schemas::RegionCode>)]
    scope: Option<RegionCode>,
    /// The server's time zone (`time_zone`, an IANA name): the console shows every time
    /// in it, whatever the browser's own.
    #[schema(example = "Asia/Shanghai")]
    time_zone: String,
}

impl SessionInfo {
    fn new(p: &Principal, s: &AppState) -> Self {
        Self {
            name: p.name.clone(),
            role: p.role,
            scope: p.scope,
            time_zone: s.time_zone.name().to_string(),
        }
    }
}

/// Sign in
///
/// With `auth.enabled`: checks the password and sets the `cw_session` cookie (HttpOnly,
/// SameSite=Strict, Secure unless `auth.secure_cookies = false`) for the console.
#[utoipa::path(
    post,
    path = "/api/v1/session",
    operation_id = "signIn",
    tag = "access",
    security(),
    request_body = SignIn,
    responses(
        (status = 200, description = "Signed in.", body = SessionInfo),
        (status = 400, response = BadRequest),
        (status = 401, description = "Wrong name or password.", body = super::openapi::ErrorDoc),
        (status = 429, description = "Too many failed sign-ins for this name or from this address: try again after `Retry-After` seconds (1 s after the 5th failure of a name or the 20th of an address, doubling up to 15 min).", body = super::openapi::ErrorDoc),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn sign_in(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    if !s.auth.enabled {
        return Err(ApiError::BadRequest(
            "sign-in is off on this server (auth.enabled = false)".into(),
        ));
    }
    let name = body.name.trim();
    let address = Some(peer.ip());
    let throttle = &s.sign_in_throttle;
    if let Some(wait) = throttle.wait(name, address, s.clock.now()) {
        s.metrics.http_refused("sign_in_throttled");
        let secs = wait.num_seconds().max(1) as u64;
        tracing::warn!(user = %name, %peer, retry_after_s = secs, "Sign-in refused: too many failed attempts (see cw_http_refused_total).");
        return Err(ApiError::TooManyRequests(
            format!("too many failed sign-ins; try again in {secs} s"),
            secs,
        ));
    }
    let found = s.store.login_user(name).await?;
    // The same work whether or not the user exists, so timing tells nothing.
    let hash = found
        .as_ref()
        .map_or_else(|| dummy_hash().to_string(), |(_, h)| h.clone());
    let ok = verify_bounded(body.password, hash).await?;
    let Some((principal, _)) = found.filter(|_| ok) else {
        throttle.failed(name, address, s.clock.now());
        tracing::warn!(user = %name, %peer, "Failed sign-in: wrong name or password.");
        return Err(ApiError::Unauthorized("wrong name or password".into()));
    };
    throttle.succeeded(name);
    let now = s.clock.now();
    let ttl =
        chrono::TimeDelta::from_std(s.auth.session_ttl).unwrap_or(chrono::TimeDelta::hours(12));
    let (secret, stored) = crate::auth::new_secret("cws_");
    s.store
        .create_session(&stored, principal.user_id, now, now + ttl)
        .await?;
    tracing::info!(user = %principal.name, "Signed in.");
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        ttl.num_seconds(),
        if s.auth.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(SessionInfo::new(&principal, &s)),
    )
        .into_response())
}

/// Checks a password off the async workers, a few at a time: Argon2 takes tens of
/// milliseconds of a core on purpose, and a burst of sign-ins must not slow every other
/// request down.
async fn verify_bounded(password: String, hash: String) -> Result<bool, ApiError> {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        tokio::sync::Semaphore::new(cores.clamp(1, 4))
    });
    let _permit = slots
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || crate::auth::verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::Internal(format!("checking the password: {e}")))
}

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        crate::auth::hash_password("no such user, no such password").unwrap_or_default()
    })
}

/// The signed-in user
#[utoipa::path(
    get,
    path = "/api/v1/session",
    operation_id = "whoAmI",
    tag = "access",
    responses(
        (status = 200, description = "Who is signed in (with sign-in off: an administrator of everything).", body = SessionInfo),
        (status = 401, response = Unauthorized),
    ),
)]
pub(super) async fn who_am_i(State(s): State<AppState>, caller: Caller) -> Json<SessionInfo> {
    Json(SessionInfo::new(&caller.0, &s))
}

/// Sign out
///
/// The session of the `cw_session` cookie, if any, ends and the cookie is cleared.
#[utoipa::path(
    delete,
    path = "/api/v1/session",
    operation_id = "signOut",
    tag = "access",
    security(),
    responses(
        (status = 204, description = "The session ended; the cookie is cleared."),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn sign_out(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(secret) = cookie(&headers, SESSION_COOKIE) {
        s.store.delete_session(&secret).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        )],
    )
        .into_response())
}

/// A token to make.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenRequest {
    /// What the token is for ("nightly coverage export").
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    /// How many days it lasts; default `auth.token_ttl` (90 days), at most
    /// `auth.token_max_ttl` (365 days).
    #[schema(minimum = 1)]
    days: Option<u32>,
}

/// A new API token.
#[derive(Serialize, ToSchema)]
pub(super) struct TokenCreated {
    id: i64,
    name: String,
    /// The token itself: shown this once, kept by the server only as a hash.
    token: String,
    /// When it stops working.
    #[schema(value_type = String, format = DateTime)]
    expires_at: campuswatch_protocol::Timestamp,
}

/// Create an API token
///
/// A token for scripts, acting as the signed-in user with their role and scope
/// (`Authorization: Bearer <token>`). Needs sign-in to be on.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    operation_id = "createToken",
    tag = "access",
    request_body = TokenRequest,
    responses(
        (status = 201, description = "The token, shown once.", body = TokenCreated),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 500, response = Internal),
    ),
)]
pub(super) async fn create_token(
    State(s): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    if !s.auth.enabled {
        return Err(ApiError::BadRequest(
            "tokens need sign-in to be on (auth.enabled = true)".into(),
        ));
    }
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadRequest(
            "name the token (1 to 100 characters)".into(),
        ));
    }
    let max =
        chrono::TimeDelta::from_std(s.auth.token_max_ttl).unwrap_or(chrono::TimeDelta::days(365));
    let ttl = match body.days {
        None => chrono::TimeDelta::from_std(s.auth.token_ttl).unwrap_or(max),
        Some(d) => {
            let asked = chrono::TimeDelta::days(i64::from(d));
            if d == 0 || asked > max {
                return Err(ApiError::BadRequest(format!(
                    "days: 1 to {} (auth.token_max_ttl)",
                    max.num_days()
                )));
            }
            asked
        }
    };
    let now = s.clock.now();
    let expires_at = now + ttl;
    let (token, stored) = crate::auth::new_secret("cwt_");
    let id = s
        .store
        .create_token(&stored, caller.0.user_id, &name, now, expires_at)
        .await?;
    super::audit::record(
        &s,
        &caller,
        crate::store::AuditAction::TokenCreate,
        format!("token {id}"),
        caller.0.scope,
        serde_json::json!({"name": name, "expires_at": expires_at}),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(TokenCreated {
            id,
            name,
            token,
            expires_at,
        }),
    ))
}
