//! The rustls client configuration for `mqtts://`: the ring provider, the system's roots
//! plus `mqtt.ca_file`, and the client certificate of `mqtt.client_cert_file` /
//! `mqtt.client_key_file`. rustls verifies the broker's chain and that its certificate
//! names the host of `mqtt.url` (the TLS carrier hands it that host as the server name).
//! PEM is read by rustls-pki-types.

use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::{BrokerLogin, SetupError};

/// The host as a TLS server name (a DNS name or an IP address).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, SetupError> {
    ServerName::try_from(host.to_string()).map_err(|_| {
        SetupError::new(
            "mqtt.url",
            format!("{host:?} is neither a DNS name nor an IP address, so TLS cannot check the broker's certificate against it"),
        )
    })
}

fn read(key: &'static str, path: &str) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|e| {
        SetupError::new(
            key,
            format!("cannot read {path:?} ({e}); give the path of a PEM file the program's user may read"),
        )
    })
}

/// Every certificate in the PEM file `path` (read with rustls-pki-types' PEM reader);
/// an error names the configuration key `key` and the file. Shared with the server's
/// embedded broker, which reads its own certificate with it.
pub fn certificates(
    key: &'static str,
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let pem = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SetupError::new(key, format!("{path:?} is not a readable PEM file: {e}")))?;
    if certs.is_empty() {
        return Err(SetupError::new(
            key,
            format!(
                "{path:?} holds no PEM certificate (a block starting -----BEGIN CERTIFICATE-----)"
            ),
        ));
    }
    Ok(certs)
}

/// The first private key in the PEM file `path` (PKCS#8, PKCS#1 or SEC1, not encrypted);
/// an error names the configuration key `key` and the file.
pub fn private_key(key: &'static str, path: &str) -> Result<PrivateKeyDer<'static>, SetupError> {
    let pem = read(key, path)?;
    match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(k) => Ok(k),
        Err(pem::Error::NoItemsFound) if pem.windows(9).any(|w| w == b"ENCRYPTED") => Err(SetupError::new(
            key,
            format!("{path:?} holds an encrypted private key; the program cannot ask for its passphrase, so store it decrypted (openssl pkey -in KEY -out KEY.plain) and readable by the service's user only"),
        )),
        Err(pem::Error::NoItemsFound) => Err(SetupError::new(
            key,
            format!("{path:?} holds no PEM private key (PKCS#8 \"PRIVATE KEY\", PKCS#1 \"RSA PRIVATE KEY\" or SEC1 \"EC PRIVATE KEY\")"),
        )),
        Err(e) => Err(SetupError::new(key, format!("{path:?} is not a readable PEM file: {e}"))),
    }
}

/// The rustls client configuration of `login` (which must be a TLS login).
pub(crate) fn client_config(login: &BrokerLogin) -> Result<rustls::ClientConfig, SetupError> {
    let mut roots = rustls::RootCertStore::empty();
    // One unusable system certificate must not prevent TLS altogether.
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if !login.ca_file.is_empty() {
        for (i, cert) in certificates("mqtt.ca_file", &login.ca_file)?
            .into_iter()
            .enumerate()
        {
            roots.add(cert).map_err(|e| {
                SetupError::new(
                    "mqtt.ca_file",
                    format!(
                        "certificate {} of {:?} is unusable: {e}",
                        i + 1,
                        login.ca_file
                    ),
                )
            })?;
        }
    }
    if roots.is_empty() {
        return Err(SetupError::new(
            "mqtt.ca_file",
            "nothing to trust: this system has no CA certificates; set mqtt.ca_file to the PEM file of the CA that signed the broker's certificate",
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::new("mqtt.url", format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots);
    match (
        login.client_cert_file.is_empty(),
        login.client_key_file.is_empty(),
    ) {
        (true, true) => Ok(builder.with_no_client_auth()),
        (false, true) => Err(SetupError::new(
            "mqtt.client_key_file",
            "must be set together with mqtt.client_cert_file: the PEM file of the certificate's private key",
        )),
        (true, false) => Err(SetupError::new(
            "mqtt.client_cert_file",
            "must be set together with mqtt.client_key_file: the PEM file of the client certificate",
        )),
        (false, false) => {
            let chain = certificates("mqtt.client_cert_file", &login.client_cert_file)?;
            let key = private_key("mqtt.client_key_file", &login.client_key_file)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => SetupError::new(
                    "mqtt.client_key_file",
                    format!(
                        "{:?} is not the private key of the certificate in {:?} (mqtt.client_cert_file)",
                        login.client_key_file, login.client_cert_file
                    ),
                ),
                other => SetupError::new(
                    "mqtt.client_key_file",
                    format!("{:?} cannot be used with {:?}: {other}", login.client_key_file, login.client_cert_file),
                ),
            })
        }
    }
}
