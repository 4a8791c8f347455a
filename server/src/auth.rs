//! Who may see and do what: users with a role and a region scope, their passwords,
//! console sessions and API tokens.
//!
//! - **Roles**, each including the ones before: `viewer` reads; `operator` also
//!   acknowledges alerts and plans maintenance; `admin` also imports the registry and
//!   manages users and tokens.
//! - **Scope**: a user sees the campuses of one region subtree (a county, a city or the
//!   province), or everything when the scope is empty. The API filters every listing by
//!   it, and answers 404 for a single campus outside it, so nothing of another region
//!   leaks, not even whether a campus exists.
//! - **Passwords** are stored as Argon2id hashes (PHC strings with their own salt).
//! - **Sessions** (console) and **API tokens** (scripts) are random 32-byte secrets given
//!   to the client once; the store keeps only their SHA-256, so a copy of the database
//!   lets nobody in.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use campuswatch_protocol::RegionCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a user may do. Ordered: `Viewer < Operator < Admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Viewer, Role::Operator, Role::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// The signed-in user of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub user_id: i64,
    pub name: String,
    pub role: Role,
    /// The region subtree the user sees; `None` = everything.
    pub scope: Option<RegionCode>,
    /// The API token the request came with (its id); `None` for a session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<i64>,
}

impl Principal {
    /// Whether `region` (a campus's county, or a whole region node a request names) is
    /// within the user's scope.
    pub fn sees(&self, region: &RegionCode) -> bool {
        self.scope.is_none_or(|s| region.is_within(&s))
    }

    pub fn may(&self, needed: Role) -> bool {
        self.role >= needed
    }

    /// Whether a user whose scope is `theirs` is within this user's scope: an
    /// administrator manages (disables, lists and revokes the tokens of) those users
    /// only. A user of everything is within the scope of a user of everything alone.
    pub fn covers(&self, theirs: Option<RegionCode>) -> bool {
        match (self.scope, theirs) {
            (None, _) => true,
            (Some(own), Some(theirs)) => theirs.is_within(&own),
            (Some(_), None) => false,
        }
    }
}

/// A user name: 1 to 64 letters, digits, `-`, `_`, `.` or `@`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// The Argon2id hash of `password`, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches the stored `hash` (false for a malformed hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A new random password a person can type: 20 characters from the URL-safe base64
/// alphabet (120 bits).
pub fn new_password() -> String {
    let bytes: [u8; 15] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A new secret for a session or an API token: what the client gets, and what the store
/// keeps.
pub fn new_secret(prefix: &str) -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let secret = format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let stored = secret_hash(&secret);
    (secret, stored)
}

/// What the store keeps of a secret.
pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("correct horse battery", "not a hash"));
        assert_ne!(h, hash_password("correct horse battery").unwrap(), "salted");
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn a_scope_covers_its_subtree_and_roles_include_the_lesser_ones() {
        let county = RegionCode::parse("150102").unwrap();
        let other_city = RegionCode::parse("150203").unwrap();
        let p = Principal {
            user_id: 1,
            name: "hohhot".into(),
            role: Role::Operator,
            scope: Some(RegionCode::parse("150100").unwrap()),
            token: None,
        };
        assert!(p.sees(&county));
        assert!(!p.sees(&other_city));
        assert!(
            !p.sees(&RegionCode::parse("150000").unwrap()),
            "not the whole province"
        );
        assert!(p.may(Role::Viewer) && p.may(Role::Operator) && !p.may(Role::Admin));
        assert!(p.covers(Some(county)) && !p.covers(Some(other_city)) && !p.covers(None));
        let all = Principal { scope: None, ..p };
        assert!(all.sees(&other_city));
        assert!(all.covers(None) && all.covers(Some(other_city)));
    }

    #[test]
    fn secrets_are_random_and_only_their_hash_is_kept() {
        let (a, ha) = new_secret("cws_");
        let (b, _) = new_secret("cws_");
        assert_ne!(a, b);
        assert!(a.starts_with("cws_") && a.len() > 40);
        assert_eq!(secret_hash(&a), ha);
        assert_eq!(ha.len(), 64);
        assert!(!ha.contains(&a[4..]));
    }
}
