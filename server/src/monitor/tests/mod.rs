//! The monitor's behaviour, with time passed in.

use super::*;
use campuswatch_protocol::{DeathReason, DeviceInfo, DeviceReport, HostHealth};
use campuswatch_testkit::t;

use crate::model::{Notice, NoticeKind, Severity};
use crate::testing::entry;

fn cid(s: &str) -> CampusId {
    CampusId::parse(s).unwrap()
}

fn region(s: &str) -> RegionCode {
    RegionCode::parse(s).unwrap()
}

fn dev(id: &str, kind: DeviceKind, state: DeviceState) -> DeviceReport {
    DeviceReport {
        id: DeviceId::parse(id).unwrap(),
        kind,
        probe: "tcp".into(),
        target: "10.0.0.1:5000".into(),
        required: kind == DeviceKind::Alarm,
        state,
        since: Some(t(0)),
        cause: None,
        cause_code: None,
        measurements: Measurements::new(),
        info: None,
    }
}

fn birth(id: &str, county: &str, epoch: u64, devices: Vec<DeviceReport>) -> Message {
    Message::Birth(Birth {
        v: 1,
        campus: cid(id),
        region: region(county),
        epoch,
        at: t(0),
        agent_version: "0.1.0".into(),
        config_digest: "abc".into(),
        heartbeat_interval_ms: 5_000,
        last_event_id: 100,
        devices,
        dropped_events: 0,
    })
}

fn healthy(id: &str, county: &str, epoch: u64) -> Message {
    birth(
        id,
        county,
        epoch,
        vec![
            dev("alarm-1", DeviceKind::Alarm, DeviceState::Up),
            dev("cam-1", DeviceKind::Camera, DeviceState::Up),
            dev("cam-2", DeviceKind::Camera, DeviceState::Up),
        ],
    )
}

fn heartbeat(id: &str, county: &str, epoch: u64, seq: u64) -> Message {
    Message::Heartbeat(Heartbeat {
        v: 1,
        campus: cid(id),
        region: region(county),
        epoch,
        seq,
        at: t(0),
        health: HostHealth {
            cpu_pct: 1.0,
            mem_used_pct: 20.0,
            disk_used_pct: 30.0,
            uptime_s: 10,
        },
        states: "UUU".into(),
        last_event_id: 100,
    })
}

fn death(id: &str, county: &str, epoch: u64) -> Message {
    Message::Death(Death {
        v: 1,
        campus: cid(id),
        region: region(county),
        epoch,
        reason: DeathReason::ConnectionLost,
    })
}

fn event(
    id: &str,
    county: &str,
    event_id: u64,
    device: &str,
    from: DeviceState,
    to: DeviceState,
) -> Message {
    Message::Event(Event {
        v: 1,
        campus: cid(id),
        region: region(county),
        id: event_id,
        epoch: 1,
        at: t(1),
        device: DeviceId::parse(device).unwrap(),
        kind: if device.starts_with("alarm") {
            DeviceKind::Alarm
        } else {
            DeviceKind::Camera
        },
        from,
        to,
        cause: Some("connection refused".into()),
        cause_code: None,
        measurements: Measurements::new(),
        info: None,
    })
}

fn immediate() -> Settings {
    Settings::immediate()
}

fn monitor_with(entries: &[RegistryEntry]) -> Monitor {
    let mut m = Monitor::new(immediate());
    m.set_registry(entries, false, t(0));
    m
}

fn open_alerts(m: &Monitor) -> Vec<(String, Option<String>, AlertKind)> {
    m.active_alerts()
        .filter(|a| a.state == AlertState::Open)
        .map(|a| {
            (
                a.campus.to_string(),
                a.device.as_ref().map(|d| d.to_string()),
                a.kind,
            )
        })
        .collect()
}

fn gateway_state(m: &Monitor, id: &str) -> GatewayState {
    m.campus(id).unwrap().gateway.state
}

/// A monitor with these alert rules, whose gateways never go stale on their own (the
/// lifecycle tests drop them on purpose).
fn with_rules(rules: AlertRules, entries: &[RegistryEntry]) -> Monitor {
    let mut m = Monitor::new(Settings {
        alerts: rules,
        missed_heartbeats: 1_000_000,
        ..Settings::default()
    });
    m.set_registry(entries, false, t(0));
    m
}

/// Campuses of county 150102, all reporting since t(0).
fn online_county(rules: AlertRules, ids: &[&str]) -> Monitor {
    let entries: Vec<_> = ids
        .iter()
        .map(|id| entry(id, "150102", SchoolType::Primary, 1, 1))
        .collect();
    let mut m = with_rules(rules, &entries);
    for id in ids {
        m.apply(&healthy(id, "150102", 1), t(0));
    }
    m
}

fn notices(changes: &[Change]) -> Vec<Notice> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Notice(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

/// `event(…)` that happened at `at` on the gateway.
fn event_at(
    id: &str,
    event_id: u64,
    device: &str,
    from: DeviceState,
    to: DeviceState,
    at: Timestamp,
) -> Message {
    let mut m = event(id, "150102", event_id, device, from, to);
    if let Message::Event(e) = &mut m {
        e.at = at;
    }
    m
}

fn kinds(ns: &[Notice]) -> Vec<NoticeKind> {
    ns.iter().map(|n| n.kind).collect()
}

fn cameras(n: usize) -> Vec<DeviceReport> {
    let mut devices = vec![dev("alarm-1", DeviceKind::Alarm, DeviceState::Up)];
    devices.extend((1..=n).map(|i| dev(&format!("cam-{i}"), DeviceKind::Camera, DeviceState::Up)));
    devices
}

mod alerts;
mod coverage;
mod liveness;
mod model;
mod platform;
mod rebirth;
mod truth;
