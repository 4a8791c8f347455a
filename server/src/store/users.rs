//! Users, sessions and API tokens in the store (see `crate::auth`).

use campuswatch_protocol::{RegionCode, Timestamp};
use sqlx::Row;

use super::{corrupt, parse_ts, ts, Cols, Store, StoreError};
use crate::auth::{secret_hash, Principal, Role};

/// A user as listed (never with the password hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub scope: Option<RegionCode>,
    pub disabled: bool,
    pub created_at: Timestamp,
}

impl Store {
    /// Adds a user, or replaces the password, role and scope of one with that name.
    pub async fn put_user(
        &self,
        name: &str,
        password_hash: &str,
        role: Role,
        scope: Option<RegionCode>,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        with_db!(self.pool(), |pool| {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO users (name, password_hash, role, scope, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash,
                   role = excluded.role, scope = excluded.scope, disabled = FALSE
                 RETURNING id",
            )
            .bind(name)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(scope.map(|s| s.as_str().to_string()))
            .bind(ts(now))
            .fetch_one(pool)
            .await?;
            // A new password (or role, or scope) ends whatever the old one opened: every
            // session and token of the user.
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(ts(now))
            .bind(id)
            .execute(pool)
            .await?;
            Ok(id)
        })
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<UserInfo>, StoreError> {
        with_db!(self.pool(), |pool| {
            let rows = sqlx::query(
                "SELECT id, name, role, scope, disabled, created_at FROM users ORDER BY name",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let (role, scope) = role_and_scope(r)?;
                    Ok(UserInfo {
                        id: r.try_get("id")?,
                        name: r.try_get("name")?,
                        role,
                        scope,
                        disabled: r.try_get("disabled")?,
                        created_at: parse_ts(r.try_get("created_at")?)?,
                    })
                })
                .collect()
        })
    }

    /// The user `name` and their password hash, if they exist and are not disabled.
    pub async fn login_user(&self, name: &str) -> Result<Option<(Principal, String)>, StoreError> {
        with_db!(self.pool(), |pool| {
            let row = sqlx::query(
                "SELECT id, name, role, scope, password_hash FROM users
                 WHERE name = $1 AND disabled = FALSE",
            )
            .bind(name)
            .fetch_optional(pool)
            .await?;
            row.map(|r| Ok((principal(&r)?, r.try_get("password_hash")?)))
                .transpose()
        })
    }

    /// Opens a session for `user_id` under the secret whose hash is `stored`.
    pub async fn create_session(
        &self,
        stored: &str,
        user_id: i64,
        now: Timestamp,
        expires: Timestamp,
    ) -> Result<(), StoreError> {
        with_db!(self.pool(), |pool| {
            // Old sessions go when new ones come.
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(ts(now))
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO sessions (secret_hash, user_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(stored)
            .bind(user_id)
            .bind(ts(now))
            .bind(ts(expires))
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    pub async fn delete_session(&self, secret: &str) -> Result<(), StoreError> {
        with_db!(self.pool(), |pool| {
            sqlx::query("DELETE FROM sessions WHERE secret_hash = $1")
                .bind(secret_hash(secret))
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The user of a session or API token secret that is valid at `now`.
    pub async fn principal_for(
        &self,
        secret: &str,
        now: Timestamp,
    ) -> Result<Option<Principal>, StoreError> {
        with_db!(self.pool(), |pool| {
            let hash = secret_hash(secret);
            let row = sqlx::query(
                "SELECT u.id, u.name, u.role, u.scope FROM sessions s
                   JOIN users u ON u.id = s.user_id
                 WHERE s.secret_hash = $1 AND s.expires_at > $2 AND u.disabled = FALSE
                 UNION ALL
                 SELECT u.id, u.name, u.role, u.scope FROM api_tokens t
                   JOIN users u ON u.id = t.user_id
                 WHERE t.secret_hash = $3 AND t.revoked_at IS NULL AND t.expires_at > $4
                   AND u.disabled = FALSE",
            )
            .bind(&hash)
            .bind(ts(now))
            .bind(&hash)
            .bind(ts(now))
            .fetch_optional(pool)
            .await?;
            row.map(|r| principal(&r)).transpose()
        })
    }

    /// Records an API token of `user_id` under the secret whose hash is `stored`, valid
    /// until `expires`.
    pub async fn create_token(
        &self,
        stored: &str,
        user_id: i64,
        name: &str,
        now: Timestamp,
        expires: Timestamp,
    ) -> Result<i64, StoreError> {
        with_db!(self.pool(), |pool| {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO api_tokens (secret_hash, user_id, name, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(stored)
            .bind(user_id)
            .bind(name)
            .bind(ts(now))
            .bind(ts(expires))
            .fetch_one(pool)
            .await?;
            Ok(id)
        })
    }

    /// Whether any user exists (a fresh install has none).
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        with_db!(self.pool(), |pool| {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                .fetch_one(pool)
                .await?;
            Ok(n > 0)
        })
    }
}

fn role_and_scope(r: &impl Cols) -> Result<(Role, Option<RegionCode>), StoreError> {
    let role: String = r.col("role")?;
    let scope: Option<String> = r.col("scope")?;
    Ok((
        Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
        scope
            .map(|s| RegionCode::parse(&s).map_err(|e| corrupt("scope", e)))
            .transpose()?,
    ))
}

fn principal(r: &impl Cols) -> Result<Principal, StoreError> {
    let (role, scope) = role_and_scope(r)?;
    Ok(Principal {
        user_id: r.col("id")?,
        name: r.col("name")?,
        role,
        scope,
    })
}
