//! Mosquitto's password file, so that one file serves Mosquitto and the embedded broker.
//!
//! One `user:hash` per line, as `mosquitto_passwd` writes it; blank lines and lines
//! starting with `#` are skipped. Two hash forms (Mosquitto 2.0's `password_mosq.c`):
//!
//! * `$7$ITERATIONS$SALT$HASH`: PBKDF2-HMAC-SHA512 of the password with the salt, the
//!   default since Mosquitto 2.0 (101 iterations, a 12-byte salt);
//! * `$6$SALT$HASH`: SHA-512 of the password followed by the salt (Mosquitto 1.6 and
//!   earlier, `mosquitto_passwd -H sha512`).
//!
//! Salt and hash are standard base64. A line in another form (a plain-text password, say)
//! stops the load with its line number; the line itself is never repeated, since it may
//! hold a password.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use base64::Engine as _;
use sha2::{Digest, Sha512};

/// How one user's password is stored.
#[derive(Clone)]
enum Stored {
    Pbkdf2Sha512 {
        iterations: NonZeroU32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Sha512 {
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
}

impl Stored {
    fn parse(field: &str) -> Result<Stored, String> {
        let b64 = |s: &str, what: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| format!("its {what} is not base64"))
        };
        let parts: Vec<&str> = field.split('$').collect();
        match parts.as_slice() {
            ["", "7", iterations, salt, hash] => {
                let iterations = iterations
                    .parse::<u32>()
                    .ok()
                    .and_then(NonZeroU32::new)
                    .ok_or("its iteration count is not a positive number")?;
                Ok(Stored::Pbkdf2Sha512 {
                    iterations,
                    salt: b64(salt, "salt")?,
                    hash: b64(hash, "hash")?,
                })
            }
            ["", "6", salt, hash] => Ok(Stored::Sha512 {
                salt: b64(salt, "salt")?,
                hash: b64(hash, "hash")?,
            }),
            _ => Err("it is not a mosquitto_passwd hash ($7$… or $6$…); a plain-text password must be hashed first (mosquitto_passwd -U FILE)".into()),
        }
    }

    /// Whether `password` is the stored one, in time independent of where they differ.
    fn verify(&self, password: &[u8]) -> bool {
        match self {
            Stored::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => ring::pbkdf2::verify(
                ring::pbkdf2::PBKDF2_HMAC_SHA512,
                *iterations,
                salt,
                password,
                hash,
            )
            .is_ok(),
            Stored::Sha512 { salt, hash } => {
                let mut h = Sha512::new();
                h.update(password);
                h.update(salt);
                same(&h.finalize(), hash)
            }
        }
    }
}

/// Byte strings compared without an early exit.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The users of a password file and their hashes.
#[derive(Clone, Default)]
pub struct Passwords {
    users: HashMap<String, Stored>,
    /// Checked when the user is unknown, so that an unknown user takes as long as a
    /// wrong password (101 iterations, Mosquitto's default).
    decoy: Option<Stored>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the hashes.
        f.debug_struct("Passwords")
            .field("users", &self.users.len())
            .finish()
    }
}

impl Passwords {
    /// Parses a password file's text; an error names the line (1-based) and why.
    pub fn parse(text: &str) -> Result<Passwords, String> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                return Err(format!("line {}: no ':' between user and hash", i + 1));
            };
            if user.is_empty() {
                return Err(format!("line {}: the user name is empty", i + 1));
            }
            let stored =
                Stored::parse(hash).map_err(|e| format!("line {} ({user}): {e}", i + 1))?;
            users.insert(user.to_string(), stored);
        }
        Ok(Passwords {
            users,
            decoy: Some(Stored::Pbkdf2Sha512 {
                iterations: NonZeroU32::new(101).expect("non-zero"),
                salt: vec![0; 12],
                hash: vec![0; 64],
            }),
        })
    }

    /// Whether `user` is in the file with `password`.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(stored) => stored.verify(password),
            None => {
                if let Some(d) = &self.decoy {
                    d.verify(password);
                }
                false
            }
        }
    }

    /// How many users the file names.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when the file names nobody.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// A password file read again when it changes, so that `mosquitto_passwd` adds or
/// withdraws a campus without a restart. A file that no longer parses keeps the last
/// good version in force (and says why in the log).
/// When a file was last changed, and its length: read again when either changes.
type Stamp = Option<(SystemTime, u64)>;

#[derive(Debug)]
pub struct PasswordFile {
    path: PathBuf,
    current: Mutex<(Stamp, std::sync::Arc<Passwords>)>,
}

impl PasswordFile {
    /// Reads and parses `path`; an error says why, naming the file.
    pub fn load(path: &Path) -> Result<PasswordFile, String> {
        let (stamp, passwords) = read(path)?;
        Ok(PasswordFile {
            path: path.to_path_buf(),
            current: Mutex::new((stamp, std::sync::Arc::new(passwords))),
        })
    }

    /// The passwords in force: the file's current content if it changed since it was
    /// last read and parses, else the last good version.
    pub fn passwords(&self) -> std::sync::Arc<Passwords> {
        let stamp = stamp(&self.path);
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if stamp.is_some() && stamp != current.0 {
            match read(&self.path) {
                Ok((stamp, passwords)) => {
                    tracing::info!(file = %self.path.display(), users = passwords.len(), "Embedded broker: password file read again.");
                    *current = (stamp, std::sync::Arc::new(passwords));
                }
                Err(e) => {
                    tracing::error!(error = %e, "Embedded broker: the changed password file is not used; the previous one stays in force.");
                    // Do not try again until it changes once more.
                    current.0 = stamp;
                }
            }
        }
        current.1.clone()
    }
}

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn read(path: &Path) -> Result<(Stamp, Passwords), String> {
    let stamp = stamp(path);
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {:?} ({e}); give the path of a file written by mosquitto_passwd that the server's user may read",
            path.display().to_string()
        )
    })?;
    let passwords =
        Passwords::parse(&text).map_err(|e| format!("{:?}, {e}", path.display().to_string()))?;
    Ok((stamp, passwords))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Written by mosquitto_passwd 2.0.11 (`-b FILE alice secret`; `-H sha512 -b FILE bob x:y`).
    const FILE: &str = "# campuswatch\n\
alice:$7$101$IRwGGO1OX6CA5FOw$lZA/EPragTWrGfxNB26AwlQYK62RaUzC43wPsujWxJ+DQYFuLnFNG0oSRCiru5Nslcibb8iZ57ycP9/fls/oug==\n\
\n";

    #[test]
    fn a_mosquitto_passwd_hash_verifies_its_password_only() {
        let p = Passwords::parse(FILE).unwrap();
        assert_eq!(p.len(), 1);
        assert!(p.verify("alice", b"secret"));
        assert!(!p.verify("alice", b"secreT"));
        assert!(!p.verify("alice", b""));
        assert!(!p.verify("bob", b"secret"));
    }

    #[test]
    fn the_older_sha512_form_verifies_too() {
        let salt = b"0123456789ab";
        let mut h = Sha512::new();
        h.update(b"x:y");
        h.update(salt);
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let line = format!("bob:$6${}${}\n", b64(salt), b64(&h.finalize()));
        let p = Passwords::parse(&line).unwrap();
        assert!(p.verify("bob", b"x:y"));
        assert!(!p.verify("bob", b"x"));
    }

    #[test]
    fn a_line_in_another_form_is_refused_without_repeating_it() {
        for (text, says) in [
            (
                "carol:plaintext-secret\n",
                "line 1 (carol): it is not a mosquitto_passwd hash",
            ),
            ("# c\nnocolon\n", "line 2: no ':'"),
            (
                "dave:$7$0$AAAA$AAAA\n",
                "line 1 (dave): its iteration count",
            ),
            (
                "dave:$7$101$!!$AAAA\n",
                "line 1 (dave): its salt is not base64",
            ),
        ] {
            let e = Passwords::parse(text).unwrap_err();
            assert!(e.starts_with(says), "{text:?}: {e}");
            assert!(!e.contains("plaintext-secret"), "{e}");
        }
    }
}
