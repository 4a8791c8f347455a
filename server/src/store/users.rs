//! Users, sessions and API tokens in the store (see `crate::auth`).

use crate::store::BeginWrite;
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

/// An API token as listed (never with its secret nor its hash).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenInfo {
    pub id: i64,
    /// What it is for.
    pub name: String,
    /// Whose it is.
    pub user_id: i64,
    pub user: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// When it was last used (to the nearest [`LAST_USED_STEP`]); `None` if never.
    pub last_used: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// How stale a token's `last_used` may get before a request with it writes it again:
/// a script calling every second costs a write a minute, not one per request.
pub const LAST_USED_STEP: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

const USER_COLUMNS: &str = "id, name, role, scope, disabled, created_at";

fn user_info(r: &impl Cols) -> Result<UserInfo, StoreError> {
    let (role, scope) = role_and_scope(r)?;
    Ok(UserInfo {
        id: r.col("id")?,
        name: r.col("name")?,
        role,
        scope,
        disabled: r.col("disabled")?,
        created_at: parse_ts(&r.col::<String>("created_at")?)?,
    })
}

fn token_info(r: &impl Cols) -> Result<TokenInfo, StoreError> {
    let time = |c: &str| -> Result<Option<Timestamp>, StoreError> {
        r.col::<Option<String>>(c)?
            .as_deref()
            .map(parse_ts)
            .transpose()
    };
    Ok(TokenInfo {
        id: r.col("id")?,
        name: r.col("name")?,
        user_id: r.col("user_id")?,
        user: r.col("user_name")?,
        created_at: parse_ts(&r.col::<String>("created_at")?)?,
        expires_at: parse_ts(&r.col::<String>("expires_at")?)?,
        last_used: time("last_used")?,
        revoked_at: time("revoked_at")?,
    })
}

const TOKEN_QUERY: &str = "SELECT t.id, t.name, t.user_id, u.name AS user_name, t.created_at,
       t.expires_at, t.last_used, t.revoked_at
     FROM api_tokens t JOIN users u ON u.id = t.user_id";

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
            let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))
                .fetch_all(pool)
                .await?;
            rows.iter().map(user_info).collect()
        })
    }

    /// The user `id`, if there is one.
    pub async fn user(&self, id: i64) -> Result<Option<UserInfo>, StoreError> {
        with_db!(self.pool(), |pool| {
            let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(user_info).transpose()
        })
    }

    /// Disables or enables the user `id`; false if there is no such user. Disabling ends
    /// every session and token of theirs at once, so enabling again revives none: they
    /// sign in again and make new tokens.
    pub async fn set_user_disabled(
        &self,
        id: i64,
        disabled: bool,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        with_db!(self.pool(), |pool| {
            let mut tx = pool.begin_write().await?;
            let found = sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
                .bind(disabled)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            if found && disabled {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE api_tokens SET revoked_at = $1
                     WHERE user_id = $2 AND revoked_at IS NULL",
                )
                .bind(ts(now))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(found)
        })
    }

    /// The API tokens of the user `user_id`, newest first, revoked and expired ones too.
    pub async fn tokens(&self, user_id: i64) -> Result<Vec<TokenInfo>, StoreError> {
        with_db!(self.pool(), |pool| {
            let rows = sqlx::query(&format!(
                "{TOKEN_QUERY} WHERE t.user_id = $1 ORDER BY t.id DESC"
            ))
            .bind(user_id)
            .fetch_all(pool)
            .await?;
            rows.iter().map(token_info).collect()
        })
    }

    /// The API token `id`, if there is one.
    pub async fn token(&self, id: i64) -> Result<Option<TokenInfo>, StoreError> {
        with_db!(self.pool(), |pool| {
            let row = sqlx::query(&format!("{TOKEN_QUERY} WHERE t.id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(token_info).transpose()
        })
    }

    /// Revokes the API token `id` at `now`: it stops working at once. False if it was
    /// revoked already (or does not exist).
    pub async fn revoke_token(&self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        with_db!(self.pool(), |pool| {
            let done = sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            )
            .bind(ts(now))
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(done > 0)
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

    /// The user of a session or API token secret that is valid at `now` (a disabled
    /// user has none). A token's use is recorded (`last_used`, to the nearest
    /// [`LAST_USED_STEP`]).
    pub async fn principal_for(
        &self,
        secret: &str,
        now: Timestamp,
    ) -> Result<Option<Principal>, StoreError> {
        with_db!(self.pool(), |pool| {
            let hash = secret_hash(secret);
            let row = sqlx::query(
                "SELECT u.id, u.name, u.role, u.scope, NULL AS token, NULL AS last_used
                   FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.secret_hash = $1 AND s.expires_at > $2 AND u.disabled = FALSE
                 UNION ALL
                 SELECT u.id, u.name, u.role, u.scope, t.id AS token, t.last_used
                   FROM api_tokens t JOIN users u ON u.id = t.user_id
                 WHERE t.secret_hash = $3 AND t.revoked_at IS NULL AND t.expires_at > $4
                   AND u.disabled = FALSE",
            )
            .bind(&hash)
            .bind(ts(now))
            .bind(&hash)
            .bind(ts(now))
            .fetch_optional(pool)
            .await?;
            let Some(r) = row else {
                return Ok(None);
            };
            let mut p = principal(&r)?;
            p.token = r.try_get("token")?;
            let last_used: Option<String> = r.try_get("last_used")?;
            if let Some(token) = p.token {
                let stale = match last_used.as_deref() {
                    Some(at) => parse_ts(at)? + LAST_USED_STEP <= now,
                    None => true,
                };
                if stale {
                    sqlx::query("UPDATE api_tokens SET last_used = $1 WHERE id = $2")
                        .bind(ts(now))
                        .bind(token)
                        .execute(pool)
                        .await?;
                }
            }
            Ok(Some(p))
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
        token: None,
    })
}
