//! HTTP digest authentication of SIP REGISTER (RFC 3261 §22.4 with RFC 2617's MD5), as
//! GB/T 28181 devices use it: the platform answers a REGISTER without credentials with
//! `401` and a `WWW-Authenticate: Digest realm=…, nonce=…` challenge; the device
//! registers again with an `Authorization` whose `response` proves it knows the
//! password. Both the plain form and `qop=auth` are checked. The device's side (reading
//! the challenge, computing the answer) is here too, for the simulated devices.

use md5::{Digest as _, Md5};

use super::sip::SipError;

/// A challenge to send in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
}

impl Challenge {
    /// The header value.
    pub fn header(&self) -> String {
        format!(
            "Digest realm=\"{}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"",
            self.realm, self.nonce
        )
    }

    /// Reads a `WWW-Authenticate` header value, as a device does: `Digest` with a realm
    /// and a nonce (an algorithm other than MD5 is refused; qop, opaque and stale are not
    /// needed for the plain form devices answer with).
    pub fn parse(value: &str) -> Result<Self, SipError> {
        let bad = || SipError::Header(value.chars().take(80).collect());
        let (scheme, rest) = value.trim().split_once(' ').ok_or_else(bad)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(bad());
        }
        let (mut realm, mut nonce) = (None, None);
        for (name, v) in fields(rest)? {
            match name.as_str() {
                "realm" => realm = Some(v),
                "nonce" => nonce = Some(v),
                "algorithm" if !v.eq_ignore_ascii_case("MD5") => return Err(bad()),
                _ => {}
            }
        }
        match (realm, nonce) {
            (Some(realm), Some(nonce)) if !nonce.is_empty() => Ok(Challenge { realm, nonce }),
            _ => Err(bad()),
        }
    }
}

/// The fields of an `Authorization: Digest …` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

fn hex_md5(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits `a="x, y", b=z` at the commas outside quotes.
fn fields(s: &str) -> Result<Vec<(String, String)>, SipError> {
    let bad = || SipError::Header(s.chars().take(80).collect());
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (name, after) = rest.split_once('=').ok_or_else(bad)?;
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let close = quoted.find('"').ok_or_else(bad)?;
            (&quoted[..close], &quoted[close + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        out.push((name.trim().to_ascii_lowercase(), value.to_owned()));
        rest = tail.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        if !tail.trim().is_empty() && !tail.trim_start().starts_with(',') {
            return Err(bad());
        }
    }
    Ok(out)
}

impl Credentials {
    /// Reads an `Authorization` header value; it must be `Digest` with username, realm,
    /// nonce, uri and response.
    pub fn parse(value: &str) -> Result<Self, SipError> {
        let bad = || SipError::Header(value.chars().take(80).collect());
        let (scheme, rest) = value.trim().split_once(' ').ok_or_else(bad)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return Err(bad());
        }
        let mut c = Credentials::default();
        for (name, v) in fields(rest)? {
            match name.as_str() {
                "username" => c.username = v,
                "realm" => c.realm = v,
                "nonce" => c.nonce = v,
                "uri" => c.uri = v,
                "response" => c.response = v,
                "algorithm" => c.algorithm = Some(v),
                "qop" => c.qop = Some(v),
                "nc" => c.nc = Some(v),
                "cnonce" => c.cnonce = Some(v),
                _ => {}
            }
        }
        if [&c.username, &c.realm, &c.nonce, &c.uri, &c.response]
            .iter()
            .any(|f| f.is_empty())
        {
            return Err(bad());
        }
        Ok(c)
    }

    /// A device's answer to `challenge`: the plain form (no `qop`) GB/T 28181 devices
    /// send, user `username` (the device's code) for a request of `method` to `uri`.
    pub fn answer(
        challenge: &Challenge,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
    ) -> Self {
        let ha1 = hex_md5(&[username, &challenge.realm, password]);
        let ha2 = hex_md5(&[method, uri]);
        Credentials {
            username: username.into(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: uri.into(),
            response: hex_md5(&[&ha1, &challenge.nonce, &ha2]),
            algorithm: Some("MD5".into()),
            ..Credentials::default()
        }
    }

    /// The `Authorization` header value (the plain form: without `qop`).
    pub fn header(&self) -> String {
        format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}",
            self.username,
            self.realm,
            self.nonce,
            self.uri,
            self.response,
            self.algorithm.as_deref().unwrap_or("MD5")
        )
    }

    /// Whether `response` is the digest of `password` for a request of `method`. MD5
    /// only; `qop=auth` needs `nc` and `cnonce`. Compared in constant time.
    pub fn verify(&self, method: &str, password: &str) -> bool {
        if self
            .algorithm
            .as_deref()
            .is_some_and(|a| !a.eq_ignore_ascii_case("MD5"))
        {
            return false;
        }
        let ha1 = hex_md5(&[&self.username, &self.realm, password]);
        let ha2 = hex_md5(&[method, &self.uri]);
        let expected = match (self.qop.as_deref(), &self.nc, &self.cnonce) {
            (None, _, _) => hex_md5(&[&ha1, &self.nonce, &ha2]),
            (Some(q), Some(nc), Some(cnonce)) if q.eq_ignore_ascii_case("auth") => {
                hex_md5(&[&ha1, &self.nonce, nc, cnonce, "auth", &ha2])
            }
            _ => return false,
        };
        let got = self.response.to_ascii_lowercase();
        got.len() == expected.len()
            && got
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_2617_example_verifies_and_a_wrong_password_does_not() {
        // RFC 2617 §3.5.
        let c = Credentials::parse(
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             qop=auth, nc=00000001, cnonce=\"0a4f113b\", \
             response=\"6629fae49393a05397450978507c4ef1\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert!(c.verify("GET", "Circle Of Life"));
        assert!(!c.verify("GET", "circle of life"));
        assert!(!c.verify("POST", "Circle Of Life"));
    }

    #[test]
    fn a_device_without_qop_verifies_as_gb28181_devices_send_it() {
        let (user, realm, nonce, uri, password) = (
            "34020000001320000001",
            "3402000000",
            "9bd055",
            "sip:34020000002000000001@3402000000",
            "12345678",
        );
        let ha1 = hex_md5(&[user, realm, password]);
        let ha2 = hex_md5(&["REGISTER", uri]);
        let response = hex_md5(&[&ha1, nonce, &ha2]);
        let header = format!(
            "Digest username=\"{user}\",realm=\"{realm}\",nonce=\"{nonce}\",uri=\"{uri}\",response=\"{}\",algorithm=MD5",
            response.to_uppercase()
        );
        let c = Credentials::parse(&header).unwrap();
        assert!(c.verify("REGISTER", password));
        assert!(!c.verify("REGISTER", "87654321"));
        let challenge = Challenge {
            realm: realm.into(),
            nonce: nonce.into(),
        }
        .header();
        assert_eq!(
            challenge,
            "Digest realm=\"3402000000\", nonce=\"9bd055\", algorithm=MD5, qop=\"auth\""
        );
    }

    #[test]
    fn a_device_answers_the_platform_s_challenge_and_the_platform_verifies_it() {
        let challenge = Challenge {
            realm: "3402000000".into(),
            nonce: "9bd055".into(),
        };
        let read = Challenge::parse(&format!("{}, stale=true", challenge.header())).unwrap();
        assert_eq!(read, challenge);
        let uri = "sip:34020000002000000001@3402000000";
        let c = Credentials::answer(&read, "34020000001320000001", "12345678", "REGISTER", uri);
        let back = Credentials::parse(&c.header()).unwrap();
        assert_eq!(back, c);
        assert!(back.verify("REGISTER", "12345678"));
        assert!(!back.verify("REGISTER", "87654321"));
        for bad in [
            "Basic realm=\"x\"",
            "Digest realm=\"x\"",
            "Digest realm=\"x\", nonce=\"n\", algorithm=SHA-256",
        ] {
            assert!(Challenge::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_authorizations_are_refused_without_a_panic() {
        for bad in [
            "",
            "Basic dXNlcjpwYXNz",
            "Digest",
            "Digest username=\"a\"",
            "Digest username=\"a, realm=b",
            "Digest username=\"a\" realm=\"b\"",
            "Digest =, =, =",
        ] {
            assert!(Credentials::parse(bad).is_err(), "{bad:?}");
        }
        // qop=auth without its counters, and another algorithm, never verify.
        let c = Credentials::parse(
            "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", qop=auth",
        )
        .unwrap();
        assert!(!c.verify("REGISTER", "p"));
        let c = Credentials::parse(
            "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", algorithm=SHA-256",
        )
        .unwrap();
        assert!(!c.verify("REGISTER", "p"));
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(2617);
        let alphabet = b"Digest usernamrlcoqp=\",; \t\xc3\xa9";
        for _ in 0..5000 {
            let len = rng.random_range(0..80);
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            if let Ok(c) = Credentials::parse(&String::from_utf8_lossy(&bytes)) {
                let _ = c.verify("REGISTER", "p");
            }
        }
    }
}
