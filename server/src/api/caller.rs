//! Who is asking: the signed-in user of a request ([`Caller`]), with their role and
//! region scope, from a bearer token or the console's session cookie.

use axum::http::header;
use campuswatch_protocol::RegionCode;

use super::error::{parse_region, ApiError};
use super::AppState;
use crate::auth::{Principal, Role};

/// The session cookie of the console.
pub(super) const SESSION_COOKIE: &str = "cw_session";

/// The signed-in user of a request: from `Authorization: Bearer <token>` or the session
/// cookie. With `auth.enabled = false`, everyone is an administrator of everything. With
/// the client's address, for the audit log.
pub struct Caller(pub Principal, pub Option<std::net::IpAddr>);

impl axum::extract::FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        s: &AppState,
    ) -> Result<Self, ApiError> {
        let address = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        if !s.auth.enabled {
            return Ok(Caller(
                Principal {
                    user_id: 0,
                    name: "anonymous".into(),
                    role: Role::Admin,
                    scope: None,
                    token: None,
                },
                address,
            ));
        }
        let secret = bearer(&parts.headers).or_else(|| cookie(&parts.headers, SESSION_COOKIE));
        let Some(secret) = secret else {
            return Err(ApiError::Unauthorized(
                "sign in (POST /api/v1/session) or send Authorization: Bearer <API token>".into(),
            ));
        };
        match s.store.principal_for(&secret, s.clock.now()).await? {
            Some(p) => Ok(Caller(p, address)),
            None => Err(ApiError::Unauthorized(
                "the session has expired or the token is not valid; sign in again".into(),
            )),
        }
    }
}

fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

pub(super) fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty())
}

impl Caller {
    /// Refuses a caller whose role is below `needed`.
    pub(super) fn require(&self, needed: Role) -> Result<(), ApiError> {
        if self.0.may(needed) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {} role; {} is {}",
                needed.as_str(),
                self.0.name,
                self.0.role.as_str()
            )))
        }
    }

    /// The region a request is about: the one asked for, which must be within the
    /// caller's scope, or else the scope itself.
    pub(super) fn region(&self, asked: Option<RegionCode>) -> Result<Option<RegionCode>, ApiError> {
        match (asked, self.0.scope) {
            (Some(r), _) if self.0.sees(&r) => Ok(Some(r)),
            (Some(r), Some(scope)) => Err(ApiError::Forbidden(format!(
                "region {r} is outside your scope ({scope})"
            ))),
            (asked, scope) => Ok(asked.or(scope)),
        }
    }

    /// [`Caller::region`] of a `region` query parameter: parsed (400 if it is not a
    /// region code), then checked against the caller's scope (403).
    pub(super) fn region_param(&self, asked: Option<&str>) -> Result<Option<RegionCode>, ApiError> {
        self.region(asked.map(parse_region).transpose()?)
    }

    pub(super) fn sees(&self, region: &RegionCode) -> bool {
        self.0.sees(region)
    }
}
