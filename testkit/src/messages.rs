//! Protocol messages as a gateway sends them, with defaults where a test does not care:
//! now as their time, the schema version an agent writes, a typical gateway's health.
//! Change a field with struct update syntax or a `match` on the message when it matters.

use campuswatch_protocol::{
    Birth, CampusId, CauseCode, Death, DeathReason, DeviceId, DeviceKind, DeviceReport,
    DeviceState, Event, Heartbeat, HostHealth, Message, RegionCode, BASE_SCHEMA_VERSION,
};

/// The cause of a device that is down in these messages: "connection refused", code
/// `tcp.refused`, as an agent reports it.
fn refused(state: DeviceState) -> (Option<String>, Option<CauseCode>) {
    if state == DeviceState::Down {
        (
            Some("connection refused".to_string()),
            Some(CauseCode::new("tcp.refused")),
        )
    } else {
        (None, None)
    }
}

/// A device as a birth reports it, probed over TCP at `10.1.2.3:5000`: required when it
/// is an alarm, in `state` since now, 4 ms of latency measured, and "connection refused"
/// (`tcp.refused`) as the cause when it is down.
pub fn device(id: &str, kind: DeviceKind, state: DeviceState) -> DeviceReport {
    let (cause, cause_code) = refused(state);
    DeviceReport {
        id: DeviceId::parse(id).expect("device id"),
        kind,
        probe: "tcp".into(),
        target: "10.1.2.3:5000".into(),
        required: kind == DeviceKind::Alarm,
        state,
        since: Some(chrono::Utc::now()),
        cause,
        cause_code,
        measurements: [("latency_ms".to_string(), 4.0)].into_iter().collect(),
        info: None,
    }
}

/// A campus's devices as a birth lists them, every one up: `alarm-1` … `alarm-{alarms}`,
/// then cameras `cam-01` … up to `devices` in all.
pub fn inventory(alarms: usize, devices: usize) -> Vec<DeviceReport> {
    (0..devices.max(alarms))
        .map(|d| {
            if d < alarms {
                device(
                    &format!("alarm-{}", d + 1),
                    DeviceKind::Alarm,
                    DeviceState::Up,
                )
            } else {
                device(
                    &format!("cam-{:02}", d + 1 - alarms),
                    DeviceKind::Camera,
                    DeviceState::Up,
                )
            }
        })
        .collect()
}

/// A gateway's birth for session `epoch`, now: agent version `test`, heartbeats every
/// minute, no event yet.
pub fn birth(
    campus: &CampusId,
    region: RegionCode,
    epoch: u64,
    devices: Vec<DeviceReport>,
) -> Message {
    let mut b = Birth {
        v: BASE_SCHEMA_VERSION,
        campus: campus.clone(),
        region,
        epoch,
        at: chrono::Utc::now(),
        agent_version: "test".into(),
        config_digest: "digest".into(),
        heartbeat_interval_ms: 60_000,
        last_event_id: 0,
        devices,
        dropped_events: 0,
    };
    b.v = b.needed_version();
    Message::Birth(b)
}

/// Heartbeat number `seq` of session `epoch`, now: `states` is the digest of the device
/// states (one letter per device, in birth order), `last_event_id` the newest event the
/// gateway produced; the host's health is a typical gateway's (CPU 3.5 %).
pub fn heartbeat(
    campus: &CampusId,
    region: RegionCode,
    epoch: u64,
    seq: u64,
    states: &str,
    last_event_id: u64,
) -> Message {
    Message::Heartbeat(Heartbeat {
        v: BASE_SCHEMA_VERSION,
        campus: campus.clone(),
        region,
        epoch,
        seq,
        at: chrono::Utc::now(),
        health: HostHealth {
            cpu_pct: 3.5,
            mem_used_pct: 40.0,
            disk_used_pct: 12.5,
            uptime_s: 1000,
        },
        states: states.to_string(),
        last_event_id,
    })
}

/// Event `id` of session `epoch`, now: `device` went `from → to`; a drop has the cause
/// "connection refused" (`tcp.refused`), and the event the version that carries it.
pub fn event(
    campus: &CampusId,
    region: RegionCode,
    epoch: u64,
    id: u64,
    device: &str,
    kind: DeviceKind,
    (from, to): (DeviceState, DeviceState),
) -> Message {
    let (cause, cause_code) = refused(to);
    let mut e = Event {
        v: BASE_SCHEMA_VERSION,
        campus: campus.clone(),
        region,
        id,
        epoch,
        at: chrono::Utc::now(),
        device: DeviceId::parse(device).expect("device id"),
        kind,
        from,
        to,
        cause,
        cause_code,
        measurements: Default::default(),
        info: None,
    };
    e.v = e.needed_version();
    Message::Event(e)
}

/// The death of session `epoch`, for `reason` (a Last Will says `ConnectionLost`).
pub fn death(campus: &CampusId, region: RegionCode, epoch: u64, reason: DeathReason) -> Message {
    Message::Death(Death {
        v: BASE_SCHEMA_VERSION,
        campus: campus.clone(),
        region,
        epoch,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use campuswatch_protocol::decode;

    use super::*;

    /// Each builder's message passes the protocol's own validation.
    #[test]
    fn every_message_decodes_on_its_own_topic() {
        let campus = CampusId::parse("c-1").unwrap();
        let region = RegionCode::parse("150102").unwrap();
        let (up, down) = (DeviceState::Up, DeviceState::Down);
        let messages = [
            birth(&campus, region, 7, inventory(1, 3)),
            heartbeat(&campus, region, 7, 1, "UUU", 0),
            event(
                &campus,
                region,
                7,
                1,
                "cam-01",
                DeviceKind::Camera,
                (up, down),
            ),
            death(&campus, region, 7, DeathReason::ConnectionLost),
        ];
        for m in messages {
            assert_eq!(decode(&m.topic(), &m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn a_down_device_says_why_and_an_up_one_does_not() {
        let up = device("alarm-1", DeviceKind::Alarm, DeviceState::Up);
        assert!(up.required && up.cause.is_none());
        let down = device("cam-1", DeviceKind::Camera, DeviceState::Down);
        assert!(!down.required);
        assert_eq!(down.cause.as_deref(), Some("connection refused"));
    }

    #[test]
    fn the_inventory_lists_alarms_then_cameras() {
        let inv = inventory(2, 40);
        assert_eq!(inv.len(), 40);
        assert_eq!(inv[0].id.as_str(), "alarm-1");
        assert_eq!(inv[1].id.as_str(), "alarm-2");
        assert_eq!(inv[2].id.as_str(), "cam-01");
        assert_eq!(inv[39].id.as_str(), "cam-38");
        assert!(inv.iter().all(|d| d.state == DeviceState::Up));
    }
}
