use std::io;

use rumqttc::{ConnectReturnCode, ConnectionError, StateError, Transport};
use rustls::pki_types::UnixTime;
use rustls::{AlertDescription, CertificateError};

use super::*;

fn login(url: &str) -> BrokerLogin {
    BrokerLogin {
        url: url.into(),
        ..BrokerLogin::default()
    }
}

/// A self-signed certificate and its key, as PEM files in `dir`.
fn cert_files(dir: &std::path::Path, name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (c, k) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c.display().to_string(), k.display().to_string())
}

#[test]
fn urls_give_host_port_and_tls() {
    let e = login("mqtts://broker.example").endpoint().unwrap();
    assert_eq!(
        (e.host.as_str(), e.port, e.tls),
        ("broker.example", 8883, true)
    );
    let e = login("mqtt://10.0.0.1").endpoint().unwrap();
    assert_eq!((e.port, e.tls), (1883, false));
    let e = login("ssl://[::1]:9883").endpoint().unwrap();
    assert_eq!((e.host.as_str(), e.port, e.tls), ("::1", 9883, true));
    assert_eq!(e.to_string(), "[::1]:9883");
    for bad in ["http://broker", "broker:1883", "mqtt://", ""] {
        let err = login(bad).endpoint().unwrap_err();
        assert_eq!(err.key, "mqtt.url", "{bad}: {err}");
    }
}

#[test]
fn keys_win_over_url_credentials_which_are_percent_decoded() {
    let mut l = login("mqtt://gw%40x:p%3As+s@broker:1883");
    assert_eq!(
        l.credentials(),
        Some(("gw@x".to_string(), "p:s+s".to_string()))
    );
    l.password = "key-pass".into();
    assert_eq!(
        l.credentials(),
        Some(("gw@x".to_string(), "key-pass".to_string()))
    );
    l.username = "key-user".into();
    assert_eq!(
        l.credentials(),
        Some(("key-user".to_string(), "key-pass".to_string()))
    );
    assert_eq!(login("mqtt://broker").credentials(), None);
    let mut lone = login("mqtt://broker");
    lone.password = "p".into();
    assert_eq!(lone.validate().unwrap_err().key, "mqtt.username");
}

#[test]
fn tls_files_on_a_plain_url_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = cert_files(dir.path(), "localhost");
    let mut l = login("mqtt://broker:1883");
    l.ca_file = cert.clone();
    let err = l.validate().unwrap_err();
    assert_eq!(err.key, "mqtt.ca_file");
    assert!(err.message.contains("mqtts://"), "{err}");
    l.ca_file.clear();
    l.client_cert_file = cert;
    l.client_key_file = key;
    assert_eq!(l.validate().unwrap_err().key, "mqtt.client_cert_file");
}

#[test]
fn a_ca_file_must_hold_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let mut l = login("mqtts://broker:8883");
    for (path, says) in [
        (empty.display().to_string(), "holds no PEM certificate"),
        ("/nonexistent/ca.pem".to_string(), "cannot read"),
    ] {
        l.ca_file = path.clone();
        let err = l.validate().unwrap_err();
        assert_eq!(err.key, "mqtt.ca_file");
        assert!(
            err.message.contains(says) && err.message.contains(&path),
            "{err}"
        );
        // The same error stops building the options.
        assert_eq!(l.options("c").unwrap_err(), err);
    }
}

#[test]
fn client_certificate_files_are_checked_together_and_against_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _) = cert_files(dir.path(), "ca");
    let (cert, key) = cert_files(dir.path(), "150102-K-0001");
    let (_, other_key) = cert_files(dir.path(), "other");
    let mut l = login("mqtts://127.0.0.1:8883");
    l.ca_file = ca.clone();
    l.client_cert_file = cert.clone();
    assert_eq!(l.validate().unwrap_err().key, "mqtt.client_key_file");
    l.client_key_file = other_key.clone();
    let err = l.validate().unwrap_err();
    assert_eq!(err.key, "mqtt.client_key_file");
    assert!(err.message.contains("is not the private key"), "{err}");
    // A certificate where the key should be, and an encrypted key.
    l.client_key_file = cert.clone();
    let err = l.validate().unwrap_err();
    assert!(err.message.contains("holds no PEM private key"), "{err}");
    let encrypted = dir.path().join("enc.key");
    std::fs::write(
        &encrypted,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    l.client_key_file = encrypted.display().to_string();
    let err = l.validate().unwrap_err();
    assert!(err.message.contains("encrypted private key"), "{err}");
    l.client_key_file = key;
    l.validate().unwrap();
    let o = l.options("cw-150102-K-0001").unwrap();
    // TLS is carried by this crate: rumqttc speaks to a socket in a directory only this
    // user may enter.
    assert!(matches!(o.transport(), Transport::Unix));
    let socket = std::path::PathBuf::from(o.broker_address().0);
    let mode = std::fs::metadata(socket.parent().unwrap())
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700
    );
    assert!(std::os::unix::fs::FileTypeExt::is_socket(
        &std::fs::metadata(&socket).unwrap().file_type()
    ));
    // The same login, asked again, is the same socket.
    assert_eq!(
        l.options("other").unwrap().broker_address(),
        o.broker_address()
    );
    assert_eq!(l.describe(), "TLS, client certificate");
    l.client_cert_file.clear();
    assert_eq!(l.validate().unwrap_err().key, "mqtt.client_cert_file");
}

fn tls_error(e: rustls::Error) -> ConnectionError {
    ConnectionError::Io(io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A TLS alert read while waiting for the CONNACK, as rumqttc reports it.
fn alert_after_handshake(a: AlertDescription) -> ConnectionError {
    ConnectionError::MqttState(StateError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        rustls::Error::AlertReceived(a),
    )))
}

#[test]
fn refusals_are_told_in_an_installers_words() {
    let mut l = login("mqtts://gw:wrong@broker.example:8883");
    let d = l.diagnose(&ConnectionError::ConnectionRefused(
        ConnectReturnCode::NotAuthorized,
    ));
    assert!(d.needs_action);
    assert!(
        d.reason
            .starts_with("the broker refused the user name or password: check mqtt.username"),
        "{d}"
    );
    let d = l.diagnose(&tls_error(rustls::Error::InvalidCertificate(
        CertificateError::UnknownIssuer,
    )));
    assert!(
        d.reason.starts_with(
            "the broker's certificate is not trusted (unknown issuer): check mqtt.ca_file"
        ),
        "{d}"
    );
    let d = l.diagnose(&tls_error(rustls::Error::InvalidCertificate(
        CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_700_000_000)),
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_609_459_200)),
        },
    )));
    assert!(
        d.reason
            .starts_with("the broker's certificate expired on 2021-01-01 00:00:00 UTC"),
        "{d}"
    );
    assert!(d.reason.contains("2023-11-14 22:13:20 UTC"), "{d}");
    let d = l.diagnose(&alert_after_handshake(
        AlertDescription::CertificateRequired,
    ));
    assert!(d.reason.contains("requires a client certificate"), "{d}");
    l.client_cert_file = "/etc/campuswatch/client.crt".into();
    let d = l.diagnose(&alert_after_handshake(AlertDescription::UnknownCA));
    assert!(
        d.reason.starts_with("the broker refused the client certificate (it was not issued by a CA the broker trusts): check mqtt.client_cert_file"),
        "{d}"
    );
    let d = l.diagnose(&ConnectionError::Io(io::Error::from(
        io::ErrorKind::ConnectionRefused,
    )));
    assert!(!d.needs_action);
    assert!(
        d.reason
            .starts_with("nothing accepts connections at broker.example:8883"),
        "{d}"
    );
    // The password of the URL never shows.
    assert!(!d.reason.contains("wrong"), "{d}");
    let d = l.diagnose(&ConnectionError::MqttState(StateError::ConnectionAborted));
    assert!(d.reason.contains("closed the connection"), "{d}");
}
