//! A secret from a configuration file: a broker or SMTP password, a robot's signing
//! secret, a DC-09 AES key.

use serde::{Deserialize, Serialize};

/// A credential: kept as given, shown as `***` in logs, `Debug` and `print-config`
/// (an unset one as `""`, so that whether it is set stays visible).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Secret(secret.into())
    }

    /// The secret itself, for the code that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_in_debug_output_but_whether_it_is_set_does() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "\"***\"");
        assert_eq!(format!("{:?}", Some(Secret::new("k"))), "Some(\"***\")");
        assert_eq!(format!("{:?}", Secret::default()), "\"\"");
        assert_eq!(Secret::new("hunter2").expose(), "hunter2");
    }

    #[test]
    fn a_secret_reads_and_writes_as_the_plain_string() {
        #[derive(Serialize, Deserialize)]
        struct C {
            password: Secret,
        }
        let c: C = toml::from_str("password = \"pw\"\n").unwrap();
        assert_eq!(c.password.expose(), "pw");
        assert_eq!(toml::to_string(&c).unwrap(), "password = \"pw\"\n");
    }
}
