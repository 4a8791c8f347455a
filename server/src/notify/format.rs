//! How each channel writes a notice: pure functions from a [`Notice`] to the body a
//! channel sends, so every wire shape is tested without a network. The shapes are
//! documented in `docs/notifications.md`; change both together.

use std::collections::BTreeMap;
use std::fmt::Write;

use base64::Engine as _;
use campuswatch_protocol::Timestamp;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::{Notice, NoticeKind, Severity};
use crate::store::ts;

/// Version of the generic webhook's JSON, raised on an incompatible change.
pub const WEBHOOK_VERSION: u32 = 1;

/// WeCom refuses markdown content over 4096 bytes; DingTalk's limit is larger, but one
/// limit keeps the two robots' messages alike.
const MARKDOWN_MAX_BYTES: usize = 4000;

/// The console page of a notice: `console_url` and `path` joined with one slash.
pub fn link(console_url: &str, path: &str) -> String {
    let base = console_url.trim_end_matches('/');
    if path.is_empty() {
        return base.to_string();
    }
    format!("{base}/{}", path.trim_start_matches('/'))
}

/// The problem a notice is about: its alert, its incident, or the monitoring outage that
/// began at `since`. Notices of one problem share it; a summary has none.
pub fn problem_key(n: &Notice) -> Option<String> {
    match n.kind {
        NoticeKind::Summary => None,
        NoticeKind::MonitoringDegraded | NoticeKind::MonitoringRestored => {
            Some(format!("monitoring-{}", ts(n.since)))
        }
        _ => n
            .alert_id
            .map(|a| format!("alert-{a}"))
            .or_else(|| n.incident_id.map(|i| format!("incident-{i}"))),
    }
}

/// Where it happened, in words: the campus (name and id) and its region, or the region
/// and the number of campuses of an incident.
pub fn place(n: &Notice) -> String {
    let mut s = String::new();
    if let Some(c) = &n.campus {
        if c.name.is_empty() {
            let _ = write!(s, "campus {}", c.id);
        } else {
            let _ = write!(s, "{} ({})", c.name, c.id);
        }
        let _ = write!(s, ", region {}", c.region);
        if let Some(d) = &n.device {
            let _ = write!(s, ", device {d}");
        }
    } else if let Some(r) = &n.region {
        let _ = write!(s, "region {r}");
        if !n.campuses.is_empty() {
            let _ = write!(s, ", {} campuses", n.campuses.len());
        }
    } else {
        s.push_str("all regions");
    }
    s
}

use crate::clock::local_time;

/// The generic webhook's JSON (one object per notice).
pub fn webhook_body(n: &Notice, link: &str) -> Value {
    json!({
        "version": WEBHOOK_VERSION,
        "id": n.id,
        "kind": n.kind.as_str(),
        "severity": n.severity.as_str(),
        "resolved": n.kind.is_resolution(),
        "title": n.title,
        "detail": n.detail,
        "since": ts(n.since),
        "at": ts(n.at),
        "region": n.region.map(|r| r.as_str().to_string()),
        "campus": n.campus,
        "device": n.device,
        "link": n.link,
        "alert_id": n.alert_id,
        "incident_id": n.incident_id,
        "campuses": n.campuses,
        "url": link,
    })
}

/// Alertmanager's `alertname` for a notice's problem.
fn alertname(n: &Notice) -> &'static str {
    match n.kind {
        NoticeKind::Summary => "CampuswatchNoticesSummarized",
        NoticeKind::MonitoringDegraded | NoticeKind::MonitoringRestored => {
            "CampuswatchMonitoringDegraded"
        }
        _ if n.alert_id.is_some() => "CampuswatchLinkDown",
        _ if n.incident_id.is_some() => "CampuswatchRegionalIncident",
        _ => "CampuswatchNotice",
    }
}

/// The labels of an Alertmanager alert. They come from the problem's first notice
/// (`first`), so that every notice of one alert or incident, its resolution included,
/// carries the same label set: Alertmanager identifies an alert by its labels.
pub fn alertmanager_labels(first: &Notice) -> BTreeMap<&'static str, String> {
    let mut l = BTreeMap::new();
    l.insert("alertname", alertname(first).to_string());
    l.insert("severity", first.severity.as_str().to_string());
    if let Some(r) = first.region.or(first.campus.as_ref().map(|c| c.region)) {
        l.insert("region", r.to_string());
    }
    if let Some(c) = &first.campus {
        l.insert("campus", c.id.to_string());
    }
    if let Some(d) = &first.device {
        l.insert("device", d.to_string());
    }
    if let Some(k) = &first.link {
        if !k.is_empty() {
            l.insert("link", k.clone());
        }
    }
    if let Some(a) = first.alert_id {
        l.insert("alert_id", a.to_string());
    }
    if let Some(i) = first.incident_id {
        l.insert("incident_id", i.to_string());
    }
    if first.kind == NoticeKind::Summary {
        l.insert("notice", first.id.clone());
    }
    l
}

/// One element of Alertmanager's `POST /api/v2/alerts` array. A resolution ends the
/// alert at its own time; a firing alert ends at `firing_until` unless sent again.
pub fn alertmanager_alert(
    n: &Notice,
    first: &Notice,
    link: &str,
    firing_until: Timestamp,
) -> Value {
    let ends = if n.kind.is_resolution() {
        n.at
    } else {
        firing_until
    };
    json!({
        "labels": alertmanager_labels(first),
        "annotations": {
            "summary": n.title,
            "description": n.detail,
            "notice_id": n.id,
            "kind": n.kind.as_str(),
            "since": ts(n.since),
        },
        "startsAt": ts(first.since),
        "endsAt": ts(ends),
        "generatorURL": link,
    })
}

/// The markdown both group robots show.
pub fn markdown(n: &Notice, link: &str, tz: chrono_tz::Tz) -> String {
    let mark = match (n.kind.is_resolution(), n.severity) {
        (true, _) => "RESOLVED",
        (false, Severity::Critical) => "CRITICAL",
        (false, Severity::Warning) => "WARNING",
        (false, Severity::Info) => "INFO",
    };
    let mut s = format!("**[{mark}] {}**\n\n", escape_md(&n.title));
    let _ = writeln!(s, "> Where: {}", escape_md(&place(n)));
    let _ = writeln!(s, "> Since: {}", local_time(n.since, tz));
    if n.kind.is_resolution() {
        let _ = writeln!(s, "> Resolved: {}", local_time(n.at, tz));
    }
    s.push('\n');
    for line in n.detail.lines().filter(|l| !l.trim().is_empty()) {
        let _ = writeln!(s, "{}", escape_md(line));
    }
    let tail = format!("\n[Open in the console]({link})");
    truncate_utf8(&mut s, MARKDOWN_MAX_BYTES.saturating_sub(tail.len() + 4));
    s.push_str(&tail);
    s
}

/// Robots render `[`/`]` and `*` as markup; notices are plain text.
fn escape_md(s: &str) -> String {
    s.replace('*', "\\*").replace('[', "(").replace(']', ")")
}

fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push('…');
}

/// WeCom group robot: `{"msgtype":"markdown","markdown":{"content":…}}`.
pub fn wecom_body(n: &Notice, link: &str, tz: chrono_tz::Tz) -> Value {
    json!({"msgtype": "markdown", "markdown": {"content": markdown(n, link, tz)}})
}

/// DingTalk group robot: `{"msgtype":"markdown","markdown":{"title":…,"text":…}}`. The
/// title is what the chat list shows.
pub fn dingtalk_body(n: &Notice, link: &str, tz: chrono_tz::Tz) -> Value {
    json!({"msgtype": "markdown", "markdown": {"title": n.title, "text": markdown(n, link, tz)}})
}

/// DingTalk's signature: base64(HMAC-SHA256(key = secret, message = "{timestamp}\n{secret}")).
/// It goes into the query string URL-encoded, with `timestamp` (milliseconds).
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The plain-text body of an e-mail; its subject is the title.
pub fn email_text(n: &Notice, link: &str, tz: chrono_tz::Tz) -> String {
    let mut s = format!("{}\n\n", n.title);
    let _ = writeln!(s, "Where:    {}", place(n));
    let _ = writeln!(s, "Since:    {}", local_time(n.since, tz));
    if n.kind.is_resolution() {
        let _ = writeln!(s, "Resolved: {}", local_time(n.at, tz));
    }
    let _ = writeln!(s, "Severity: {}", n.severity.as_str());
    if !n.detail.trim().is_empty() {
        let _ = write!(s, "\n{}\n", n.detail.trim_end());
    }
    let _ = write!(s, "\n{link}\n\n-- \ncampuswatch notice {}\n", n.id);
    s
}

/// How many folded notices a summary names one by one.
const SUMMARY_LISTED: usize = 5;

/// The summary that stands in for `folded` notices a channel's rate limit held back:
/// "37 more notices: …" with counts by kind and severity and the first few titles.
pub fn summary_notice(
    channel: &str,
    folded: &[Notice],
    now: Timestamp,
    tz: chrono_tz::Tz,
) -> Notice {
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    let mut by_severity: BTreeMap<Severity, usize> = BTreeMap::new();
    for n in folded {
        *by_kind.entry(n.kind.as_str()).or_default() += 1;
        *by_severity.entry(n.severity).or_default() += 1;
    }
    let counts = |m: Vec<(String, usize)>| {
        m.into_iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut detail = format!(
        "By kind: {}.\nBy severity: {}.\n",
        counts(by_kind.iter().map(|(k, v)| (k.to_string(), *v)).collect()),
        counts(
            by_severity
                .iter()
                .rev()
                .map(|(k, v)| (k.as_str().to_string(), *v))
                .collect()
        ),
    );
    for n in folded.iter().take(SUMMARY_LISTED) {
        let _ = writeln!(detail, "- {} (since {})", n.title, local_time(n.since, tz));
    }
    if folded.len() > SUMMARY_LISTED {
        let _ = writeln!(
            detail,
            "- … and {} more in the console.",
            folded.len() - SUMMARY_LISTED
        );
    }
    let severity = folded
        .iter()
        .map(|n| n.severity)
        .max()
        .unwrap_or(Severity::Info);
    let since = folded.iter().map(|n| n.since).min().unwrap_or(now);
    Notice {
        id: format!("summary-{channel}-{}", now.timestamp_millis()),
        kind: NoticeKind::Summary,
        severity,
        region: None,
        campus: None,
        device: None,
        link: None,
        alert_id: None,
        incident_id: None,
        title: format!(
            "{} more notices: rate limit of channel {channel} reached",
            folded.len()
        ),
        detail,
        since,
        at: now,
        campuses: Vec::new(),
        path: "/console/alerts".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::CampusRef;
    use campuswatch_protocol::{CampusId, DeviceId, RegionCode};
    use campuswatch_testkit::t;

    fn alarm_down() -> Notice {
        Notice {
            id: "alert-42-opened".into(),
            kind: NoticeKind::AlertOpened,
            severity: Severity::Critical,
            region: Some(RegionCode::parse("150102").unwrap()),
            campus: Some(CampusRef {
                id: CampusId::parse("150102-K-0003").unwrap(),
                name: "No. 3 Kindergarten".into(),
                region: RegionCode::parse("150102").unwrap(),
            }),
            device: Some(DeviceId::parse("alarm-1").unwrap()),
            link: Some("alarm".into()),
            alert_id: Some(42),
            incident_id: None,
            title: "Alarm link down: No. 3 Kindergarten (150102-K-0003), alarm-1".into(),
            detail: "No answer to DC-09 link test.\n\nGateway online.".into(),
            since: t(0),
            at: t(60),
            campuses: Vec::new(),
            path: "/console/campuses/150102-K-0003".into(),
        }
    }

    #[test]
    fn links_join_with_one_slash() {
        assert_eq!(
            link("http://c:8080/", "/console/x"),
            "http://c:8080/console/x"
        );
        assert_eq!(
            link("http://c:8080", "console/x"),
            "http://c:8080/console/x"
        );
        assert_eq!(link("https://c/base", "/a"), "https://c/base/a");
    }

    #[test]
    fn notices_of_one_problem_share_its_key() {
        let mut n = alarm_down();
        assert_eq!(problem_key(&n).as_deref(), Some("alert-42"));
        n.kind = NoticeKind::AlertResolved;
        assert_eq!(problem_key(&n).as_deref(), Some("alert-42"));
        n.alert_id = None;
        n.incident_id = Some(7);
        assert_eq!(problem_key(&n).as_deref(), Some("incident-7"));
        n.kind = NoticeKind::MonitoringRestored;
        assert_eq!(
            problem_key(&n).as_deref(),
            Some("monitoring-2027-01-15T08:00:00.000Z")
        );
        n.kind = NoticeKind::Summary;
        assert_eq!(problem_key(&n), None);
    }

    #[test]
    fn the_markdown_says_what_where_since_when_and_links() {
        let m = markdown(
            &alarm_down(),
            "http://c/console/campuses/150102-K-0003",
            chrono_tz::Asia::Shanghai,
        );
        assert!(
            m.starts_with("**[CRITICAL] Alarm link down: No. 3 Kindergarten"),
            "{m}"
        );
        assert!(
            m.contains(
                "> Where: No. 3 Kindergarten (150102-K-0003), region 150102, device alarm-1"
            ),
            "{m}"
        );
        assert!(
            m.contains("> Since: 2027-01-15 16:00:00 (UTC+08:00)"),
            "{m}"
        );
        assert!(
            m.contains("No answer to DC-09 link test.\nGateway online.\n"),
            "{m}"
        );
        assert!(
            m.ends_with("[Open in the console](http://c/console/campuses/150102-K-0003)"),
            "{m}"
        );
    }

    #[test]
    fn long_markdown_is_cut_on_a_character_boundary_and_keeps_its_link() {
        let mut n = alarm_down();
        n.detail = "网络中断。".repeat(2000);
        let m = markdown(&n, "http://c/x", chrono_tz::Asia::Shanghai);
        assert!(m.len() <= MARKDOWN_MAX_BYTES, "{}", m.len());
        assert!(m.ends_with("[Open in the console](http://c/x)"));
    }

    #[test]
    fn dingtalk_signature_matches_a_known_value() {
        // Computed independently: printf '1700000000000\nSECabc' | openssl dgst -sha256 -hmac SECabc -binary | base64
        assert_eq!(
            dingtalk_sign("SECabc", 1_700_000_000_000),
            "jcUpW0QmtKduN03n4JqQ0PBosVjqnM8gU7fIIvsDmCM="
        );
    }

    #[test]
    fn a_resolution_keeps_the_labels_of_its_opening() {
        let first = alarm_down();
        let mut resolved = first.clone();
        resolved.id = "alert-42-resolved".into();
        resolved.kind = NoticeKind::AlertResolved;
        resolved.severity = Severity::Info;
        resolved.at = t(600);
        let a = alertmanager_alert(&resolved, &first, "http://c/x", t(9999));
        assert_eq!(a["labels"]["severity"], "critical");
        assert_eq!(a["labels"]["alertname"], "CampuswatchLinkDown");
        assert_eq!(a["startsAt"], "2027-01-15T08:00:00.000Z");
        assert_eq!(a["endsAt"], "2027-01-15T08:10:00.000Z");
        let f = alertmanager_alert(&first, &first, "http://c/x", t(240));
        assert_eq!(f["labels"], a["labels"]);
        assert_eq!(f["endsAt"], "2027-01-15T08:04:00.000Z");
    }

    #[test]
    fn a_summary_counts_by_kind_and_severity_and_lists_a_few() {
        let mut folded = Vec::new();
        for i in 0..8 {
            let mut n = alarm_down();
            n.id = format!("alert-{i}-opened");
            n.title = format!("Camera down {i}");
            if i % 4 == 0 {
                n.kind = NoticeKind::AlertResolved;
                n.severity = Severity::Info;
            }
            folded.push(n);
        }
        let s = summary_notice("wecom-ops", &folded, t(100), chrono_tz::Asia::Shanghai);
        assert_eq!(s.kind, NoticeKind::Summary);
        assert_eq!(s.severity, Severity::Critical);
        assert!(s.title.starts_with("8 more notices"), "{}", s.title);
        assert!(
            s.detail
                .contains("By kind: alert_opened 6, alert_resolved 2."),
            "{}",
            s.detail
        );
        assert!(
            s.detail.contains("By severity: critical 6, info 2."),
            "{}",
            s.detail
        );
        assert!(s.detail.contains("- Camera down 4 (since"), "{}", s.detail);
        assert!(!s.detail.contains("Camera down 5"), "{}", s.detail);
        assert!(s.detail.contains("and 3 more"), "{}", s.detail);
    }
}
