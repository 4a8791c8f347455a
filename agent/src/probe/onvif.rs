//! ONVIF probe: asks the camera's device service for its clock
//! (`GetSystemDateAndTime`, unauthenticated as the standard allows) and its identity
//! (`GetDeviceInformation`, with a WS-Security UsernameToken password digest). Up when
//! both answer; degraded when the camera's clock drifts from the gateway's by more than
//! the allowed amount (recordings and alarm times would not line up); down with the
//! reason otherwise.

use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{NaiveDate, TimeDelta, Utc};
use sha1::{Digest, Sha1};

use campuswatch_protocol::{CauseCode, DeviceInfo, MAX_INFO_BYTES};

use super::http::{client_for, request_cause};
use super::{Cause, Probe, ProbeFuture, ProbeResult, ProbeSetupError, ProbeStatus};

const DEVICE_NS: &str = "http://www.onvif.org/ver10/device/wsdl";
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

pub struct OnvifProbe {
    url: String,
    username: String,
    password: String,
    max_drift: Duration,
    timeout: Duration,
    client: reqwest::Client,
}

impl OnvifProbe {
    pub fn new(
        url: String,
        username: String,
        password: String,
        max_drift: Duration,
        timeout: Duration,
    ) -> Result<Self, ProbeSetupError> {
        let client = client_for("onvif", &url, false)?;
        Ok(Self {
            url,
            username,
            password,
            max_drift,
            timeout,
            client,
        })
    }

    async fn call(&self, body: &str, header: &str) -> Result<String, Cause> {
        let envelope = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\">{header}\
             <s:Body>{body}</s:Body></s:Envelope>"
        );
        let resp = self
            .client
            .post(&self.url)
            .timeout(self.timeout)
            .header("content-type", "application/soap+xml; charset=utf-8")
            .body(envelope)
            .send()
            .await
            .map_err(|e| request_cause(&e, self.timeout))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| request_cause(&e, self.timeout))?;
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Err(bad_answer(
                "the answer is too large for an ONVIF response".into(),
            ));
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some(fault) = fault(&text) {
            return Err(Cause::new(CauseCode::new("onvif.fault"), fault));
        }
        if status == 401 {
            return Err(Cause::new(
                CauseCode::new("onvif.unauthorized"),
                "HTTP 401 Unauthorized: check the camera's ONVIF user and password",
            ));
        }
        if status != 200 {
            return Err(Cause::new(
                CauseCode::new("http.status")
                    .with("got", status)
                    .with("expected", "200"),
                format!("HTTP status {status} from the ONVIF device service"),
            ));
        }
        Ok(text)
    }

    async fn run(&self) -> ProbeResult {
        let started = Instant::now();
        let clock = match self
            .call(
                &format!("<GetSystemDateAndTime xmlns=\"{DEVICE_NS}\"/>"),
                "",
            )
            .await
            .and_then(|xml| utc_time(&xml).map_err(bad_answer))
        {
            Ok(t) => t,
            Err(cause) => return ProbeResult::fail(started.elapsed(), cause.prefixed("ONVIF")),
        };
        let drift = clock - Utc::now().naive_utc();
        // Stamp the token with the camera's own time, as ONVIF clients do, so a drifting
        // clock is reported as drift rather than as a failed log-in.
        let created = (Utc::now().naive_utc() + drift)
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        let nonce: [u8; 16] = rand::random();
        let header = security_header(&self.username, &self.password, &nonce, &created);
        let info = match self
            .call(
                &format!("<GetDeviceInformation xmlns=\"{DEVICE_NS}\"/>"),
                &header,
            )
            .await
            .and_then(|xml| device_information(&xml).map_err(bad_answer))
        {
            Ok(i) => i,
            Err(cause) => return ProbeResult::fail(started.elapsed(), cause.prefixed("ONVIF")),
        };
        tracing::debug!(url = %self.url, ?info, "ONVIF device answered.");
        let drift_s = drift.num_milliseconds() as f64 / 1000.0;
        let mut r = ProbeResult::ok(started.elapsed());
        r.info = Some(info);
        r.measurements.insert("clock_drift_s".into(), drift_s);
        if drift.abs() > TimeDelta::from_std(self.max_drift).unwrap_or(TimeDelta::MAX) {
            r.status = ProbeStatus::Degraded;
            r.set_cause(Cause::new(
                CauseCode::new("onvif.clock_drift")
                    .with("seconds", drift_s.round())
                    .with("max", self.max_drift.as_secs()),
                format!(
                    "camera clock is {:+.0}s off the gateway's (more than {}s): set its time server",
                    drift_s,
                    self.max_drift.as_secs()
                ),
            ));
        }
        r
    }
}

fn bad_answer(text: String) -> Cause {
    Cause::new(CauseCode::new("onvif.bad_answer"), text)
}

/// The WS-Security header with a UsernameToken password digest:
/// Base64(SHA-1(nonce + created + password)).
pub fn security_header(username: &str, password: &str, nonce: &[u8], created: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut h = Sha1::new();
    h.update(nonce);
    h.update(created.as_bytes());
    h.update(password.as_bytes());
    let digest = b64.encode(h.finalize());
    format!(
        "<s:Header><Security s:mustUnderstand=\"1\" xmlns=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\">\
         <UsernameToken><Username>{user}</Username>\
         <Password Type=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest\">{digest}</Password>\
         <Nonce EncodingType=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary\">{nonce}</Nonce>\
         <Created xmlns=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd\">{created}</Created>\
         </UsernameToken></Security></s:Header>",
        user = xml_escape(username),
        nonce = b64.encode(nonce),
    )
}

/// Elements by local name (kept here too: the ONVIF tests read requests with it).
pub use campuswatch_wire::xml::element;
use campuswatch_wire::xml::escape as xml_escape;

/// A SOAP fault's reason, in an installer's words where it is a known one.
pub(crate) fn fault(xml: &str) -> Option<String> {
    element(xml, "Fault")?;
    let reason = element(xml, "Text")
        .or_else(|| element(xml, "faultstring"))
        .unwrap_or("")
        .to_string();
    let subcode = element(xml, "Subcode")
        .and_then(|s| element(s, "Value"))
        .unwrap_or("");
    Some(
        if subcode.ends_with("NotAuthorized")
            || reason.to_ascii_lowercase().contains("not authorized")
        {
            "not authorized: check the camera's ONVIF user and password".into()
        } else {
            format!("the camera answered with a fault ({subcode} {reason})")
                .trim_end()
                .to_string()
        },
    )
}

fn number(xml: &str, name: &str) -> Result<u32, String> {
    element(xml, name)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no {name} in the camera's date and time"))
}

/// The camera's UTC time from a GetSystemDateAndTime response.
pub fn utc_time(xml: &str) -> Result<chrono::NaiveDateTime, String> {
    let utc = element(xml, "UTCDateTime").ok_or("the camera did not give its UTC time")?;
    let date = element(utc, "Date").ok_or("no date in the camera's UTC time")?;
    let time = element(utc, "Time").ok_or("no time in the camera's UTC time")?;
    let (y, mo, d) = (
        number(date, "Year")?,
        number(date, "Month")?,
        number(date, "Day")?,
    );
    let (h, mi, sec) = (
        number(time, "Hour")?,
        number(time, "Minute")?,
        number(time, "Second")?,
    );
    i32::try_from(y)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, mo, d))
        .and_then(|d| d.and_hms_opt(h, mi, sec))
        .ok_or_else(|| "the camera's UTC time is not a valid date and time".to_string())
}

/// Manufacturer, model, firmware, serial number and hardware id from a
/// GetDeviceInformation response, fit for the birth inventory: control characters
/// dropped, each field cut to [`MAX_INFO_BYTES`]. An answer with none of them is an error.
pub fn device_information(xml: &str) -> Result<DeviceInfo, String> {
    let field = |name: &str| {
        let text: String = element(xml, name)?
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let text = text.trim();
        let mut end = text.len().min(MAX_INFO_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        (!text.is_empty()).then(|| text[..end].to_string())
    };
    let info = DeviceInfo {
        manufacturer: field("Manufacturer"),
        model: field("Model"),
        firmware: field("FirmwareVersion"),
        serial: field("SerialNumber"),
        hardware: field("HardwareId"),
    };
    if info == DeviceInfo::default() {
        return Err("the camera's device information names no model or firmware".into());
    }
    Ok(info)
}

impl Probe for OnvifProbe {
    fn kind(&self) -> &'static str {
        "onvif"
    }

    fn target(&self) -> &str {
        &self.url
    }

    fn probe(&self) -> ProbeFuture<'_> {
        Box::pin(self.run())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_names_the_password_when_it_is_an_authorization_fault() {
        let f = "<s:Fault><s:Code><s:Subcode><s:Value>ter:NotAuthorized</s:Value></s:Subcode></s:Code></s:Fault>";
        assert!(fault(f).unwrap().contains("password"));
        assert!(
            fault("<s:Fault><s:Reason><s:Text>Action failed</s:Text></s:Reason></s:Fault>")
                .unwrap()
                .contains("Action failed")
        );
        assert_eq!(fault("<ok/>"), None);
    }

    #[test]
    fn bad_dates_and_random_text_are_errors_not_panics() {
        let bad = "<UTCDateTime><Time><Hour>25</Hour><Minute>0</Minute><Second>0</Second></Time>\
                   <Date><Year>2026</Year><Month>13</Month><Day>1</Day></Date></UTCDateTime>";
        assert!(utc_time(bad).is_err());
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let alphabet = b"<>/:= \"aTUCDimeYrhnts0129";
        for _ in 0..5_000 {
            let n = rng.random_range(0..80);
            let s: String = (0..n)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
                .collect();
            let _ = (utc_time(&s), device_information(&s), fault(&s));
        }
    }

    #[test]
    fn the_password_digest_follows_ws_security() {
        // Base64(SHA-1(nonce + created + password)), checked by recomputing it.
        let h = security_header(
            "admin",
            "pw",
            b"0123456789abcdef",
            "2026-11-29T08:00:00.000Z",
        );
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut s = Sha1::new();
        s.update(b"0123456789abcdef2026-11-29T08:00:00.000Zpw");
        assert_eq!(
            element(&h, "Password"),
            Some(b64.encode(s.finalize()).as_str())
        );
        assert_eq!(
            element(&h, "Nonce"),
            Some(b64.encode(b"0123456789abcdef").as_str())
        );
        assert!(!h.contains(">pw<"), "the password never travels in clear");
    }
}
