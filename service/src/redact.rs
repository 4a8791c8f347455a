//! URLs fit for logs, error messages and `print-config`: the password of
//! `scheme://user:password@host` (a broker's, a database's, a camera's) is masked, and
//! with [`url_and_query`] the query values too (webhook robots carry their key or token
//! there).
//!
//! The `url` crate finds the password; the rest of the URL is shown as it was written,
//! so that what an operator reads matches their configuration file.

use url::Url;

/// `raw` with the password of its user info (if any) replaced by `***`, and nothing else
/// changed.
pub fn url(raw: &str) -> String {
    let parsed = match Url::parse(raw) {
        Ok(parsed) => parsed,
        Err(_) => return unparsed(raw),
    };
    let Some(password) = parsed.password() else {
        return raw.to_string();
    };
    // The user info comes first in a URL, so the first `:password@` is its end.
    let written = format!(":{password}@");
    match raw.find(&written) {
        Some(i) => format!("{}:***@{}", &raw[..i], &raw[i + written.len()..]),
        // Written otherwise than the `url` crate writes it back (characters it
        // percent-encodes, say): its own rendering, masked.
        None => {
            let mut masked = parsed.clone();
            let _ = masked.set_password(Some("***"));
            masked.into()
        }
    }
}

/// A URL the `url` crate refuses (a bad port, say) still appears in the error that says
/// so: its password is what lies between the first `:` of the user info and the user
/// info's last `@`.
fn unparsed(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://").map(|i| i + 3) else {
        return raw.to_string();
    };
    let rest = &raw[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return raw.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &raw[..scheme_end],
            &rest[..colon],
            &rest[at..]
        ),
        None => raw.to_string(),
    }
}

/// Query keys whose values are secrets in cameras' and devices' URLs (`?pwd=`,
/// `?password=`, `?auth=`, `?token=`, `?access_key=`, …), compared in lower case.
const SECRET_KEYS: [&str; 9] = [
    "pass", "pwd", "token", "key", "secret", "auth", "sign", "cred", "sid",
];

/// A device's URL as an operator may see it: [`url`]'s masking, and the values of query
/// keys that name a secret (`snapshot.jpg?user=admin&pwd=12345` becomes
/// `snapshot.jpg?user=admin&pwd=***`); everything else as written.
pub fn device_url(raw: &str) -> String {
    let shown = url(raw);
    let Some((head, query)) = shown.split_once('?') else {
        return shown;
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _))
                if SECRET_KEYS
                    .iter()
                    .any(|s| k.to_ascii_lowercase().contains(s)) =>
            {
                format!("{k}=***")
            }
            _ => pair.to_string(),
        })
        .collect();
    let mut out = format!("{head}?{}", masked.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// `raw` with its password and every query value replaced by `***`, as the `url` crate
/// writes it; a URL that does not parse is not shown at all.
pub fn url_and_query(raw: &str) -> String {
    let Ok(mut url) = Url::parse(raw) else {
        return "(unparsable URL)".into();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query().is_some() {
        let masked: Vec<String> = url.query_pairs().map(|(k, _)| format!("{k}=***")).collect();
        url.set_query(Some(&masked.join("&")));
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_device_url_queries_are_masked_and_the_rest_kept() {
        assert_eq!(
            device_url("http://10.0.0.4/cgi-bin/snapshot.cgi?channel=1&user=admin&pwd=12345"),
            "http://10.0.0.4/cgi-bin/snapshot.cgi?channel=1&user=admin&pwd=***"
        );
        assert_eq!(
            device_url("http://admin:pw@cam/ISAPI/picture?Auth=YWRtaW4=&PassWord=x#top"),
            "http://admin:***@cam/ISAPI/picture?Auth=***&PassWord=***#top"
        );
        assert_eq!(
            device_url("http://10.0.0.5/status?access_key=k&loginToken=t&sid=9"),
            "http://10.0.0.5/status?access_key=***&loginToken=***&sid=***"
        );
        assert_eq!(
            device_url("http://10.0.0.6/status"),
            "http://10.0.0.6/status"
        );
        assert_eq!(device_url("http://10.0.0.6/s?x"), "http://10.0.0.6/s?x");
    }

    #[test]
    fn broker_passwords_never_reach_the_log() {
        assert_eq!(
            url("mqtts://gw:s3cret@broker.example:8883"),
            "mqtts://gw:***@broker.example:8883"
        );
        assert_eq!(url("mqtt://gw@h:1883"), "mqtt://gw@h:1883");
        assert_eq!(url("mqtt://127.0.0.1:1883"), "mqtt://127.0.0.1:1883");
        assert_eq!(url("not a url"), "not a url");
        assert_eq!(url(""), "");
    }

    #[test]
    fn database_and_camera_urls_keep_everything_but_the_password_as_written() {
        assert_eq!(
            url("postgres://cw:secret@db.example:5432/cw?sslmode=require"),
            "postgres://cw:***@db.example:5432/cw?sslmode=require"
        );
        assert_eq!(url("postgres://cw@db/cw"), "postgres://cw@db/cw");
        assert_eq!(
            url("sqlite://campuswatch-data/campuswatch.db"),
            "sqlite://campuswatch-data/campuswatch.db"
        );
        // A special scheme's URL is not normalised (no `/` added, host case and the
        // default port kept).
        assert_eq!(
            url("http://admin:pw@CAM-1.example:80"),
            "http://admin:***@CAM-1.example:80"
        );
        assert_eq!(url("HTTP://CAM-1.example:80"), "HTTP://CAM-1.example:80");
        assert_eq!(
            url("rtsp://admin:12345@10.0.0.4:554/Streaming/Channels/101"),
            "rtsp://admin:***@10.0.0.4:554/Streaming/Channels/101"
        );
    }

    #[test]
    fn awkward_passwords_are_masked_whole() {
        // An `@` or `:` in the password: the user info ends at its last `@`.
        assert_eq!(
            url("mqtt://gw:p@ss@broker:1883"),
            "mqtt://gw:***@broker:1883"
        );
        assert_eq!(url("postgres://cw:a:b@db/cw"), "postgres://cw:***@db/cw");
        // A password the `url` crate would percent-encode.
        let shown = url("mqtt://gw:pa ss@broker:1883");
        assert_eq!(shown, "mqtt://gw:***@broker:1883");
        // A URL the `url` crate refuses still has its password masked.
        assert_eq!(
            url("mqtt://gw:s3cret@broker:99999"),
            "mqtt://gw:***@broker:99999"
        );
        for raw in [
            "mqtt://gw:s3cret@broker:99999",
            "mqtt://gw:s3cret@broker.example:8883/x",
            "postgres://cw:s3cret@db/cw",
            "http://u:s3cret@h/p?q=s3cret",
        ] {
            assert!(!url(raw).contains("s3cret@"), "{raw}");
            assert!(!url_and_query(raw).contains("s3cret"), "{raw}");
        }
    }

    #[test]
    fn masked_urls_keep_no_key_or_password() {
        assert_eq!(
            url_and_query("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx"),
            "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***"
        );
        assert_eq!(
            url_and_query("http://user:pw@hook.example/x?a=1&b=2"),
            "http://user:***@hook.example/x?a=***&b=***"
        );
        assert_eq!(
            url_and_query("http://hook.example/x"),
            "http://hook.example/x"
        );
        assert_eq!(url_and_query("not a url"), "(unparsable URL)");
    }
}
