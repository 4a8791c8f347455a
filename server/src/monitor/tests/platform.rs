//! The GB/T 28181 view: registration, keepalives, catalogs, alarms, and what they say of
//! coverage and alerts beside the agent's view.

use super::*;
use crate::gb28181::{AlarmInfo, ChannelInfo, ChannelStatus, GbInput};

/// Campus c1's NVR and its two camera channels and an alarm input; c2's NVR.
const NVR: &str = "15010200001180000001";
const CAM1: &str = "15010200001320000001";
const CAM2: &str = "15010200001320000002";
const ALARM: &str = "15010200001340000001";
const NVR2: &str = "15010200001180000002";

use crate::testing::{gb_catalog as catalog, gb_code as code};

/// `device` registers for `expires_secs`, with keepalives every minute.
fn registered(device: &str, expires_secs: u32) -> GbInput {
    match crate::testing::gb_registered(device) {
        GbInput::Registered {
            device,
            address,
            transport,
            keepalive_secs,
            ..
        } => GbInput::Registered {
            device,
            address,
            transport,
            expires_secs,
            keepalive_secs,
        },
        other => other,
    }
}

fn keepalive(device: &str) -> GbInput {
    GbInput::Keepalive {
        device: code(device),
        ok: true,
    }
}

fn channel(id: &str, on: bool) -> ChannelInfo {
    ChannelInfo {
        id: code(id),
        name: Some(format!("channel {id}")),
        manufacturer: None,
        model: None,
        status: if on {
            ChannelStatus::On
        } else {
            ChannelStatus::Off
        },
        parent: None,
    }
}

/// c1 expects 2 cameras and lists its NVR; its agent sees both cameras up.
fn campus_with_nvr(settings: Settings) -> Monitor {
    let mut m = Monitor::new(settings);
    m.set_registry(
        &[entry("c1", "150102", SchoolType::Primary, 1, 2).with_gb(&[NVR])],
        false,
        t(0),
    );
    m.apply(&healthy("c1", "150102", 1), t(0));
    m
}

fn views(m: &Monitor) -> (u64, u64, u64, u64, u64, u64) {
    let c = m.coverage().total(None, None);
    (
        c.video_networked,
        c.video_agent,
        c.platform_listed,
        c.video_platform,
        c.uplink_broken,
        c.agent_blind,
    )
}

#[test]
fn the_platform_view_decides_video_where_the_registry_lists_devices() {
    let mut m = campus_with_nvr(immediate());
    // Listed but never registered: the platform sees nothing, so not networked.
    assert_eq!(views(&m), (0, 1, 1, 0, 1, 0));
    m.apply_gb(&registered(NVR, 3600), t(1));
    m.apply_gb(&catalog(NVR, &[(CAM1, true), (CAM2, true)]), t(2));
    assert_eq!(views(&m), (1, 1, 1, 1, 0, 0));
    assert!(open_alerts(&m).is_empty(), "{:?}", open_alerts(&m));

    // One channel OFF on the platform while the agent still sees its camera: the uplink
    // or the registration is broken, and the campus is out of video coverage.
    let changes = m.apply_gb(&catalog(NVR, &[(CAM1, true), (CAM2, false)]), t(3));
    assert_eq!(views(&m), (0, 1, 1, 0, 1, 0));
    assert_eq!(
        open_alerts(&m),
        [("c1".to_string(), None, AlertKind::Video)]
    );
    let alert = m.active_alerts().next().unwrap();
    assert_eq!(
        alert.cause_code.as_ref().map(|c| c.code.as_str()),
        Some("campus.platform_video_down")
    );
    let history: Vec<_> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Transition(t) => Some((t.kind, t.from.as_str(), t.to.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(history, [(AlertKind::GbChannel, "on", "off")]);

    // Back ON: the alert ends as restored.
    m.apply_gb(&catalog(NVR, &[(CAM1, true), (CAM2, true)]), t(4));
    assert!(open_alerts(&m).is_empty());
    assert_eq!(views(&m), (1, 1, 1, 1, 0, 0));
}

#[test]
fn an_agent_that_cannot_see_what_the_platform_sees_is_blind() {
    let mut m = campus_with_nvr(immediate());
    m.apply_gb(&registered(NVR, 3600), t(1));
    m.apply_gb(&catalog(NVR, &[(CAM1, true), (CAM2, true)]), t(2));
    m.apply(
        &event(
            "c1",
            "150102",
            101,
            "cam-1",
            DeviceState::Up,
            DeviceState::Down,
        ),
        t(3),
    );
    // Video networked by the platform view (in force), not by the agent's.
    assert_eq!(views(&m), (1, 0, 1, 1, 0, 1));
    // The agent's own camera alert stands; the campus's video alert does not.
    assert_eq!(
        open_alerts(&m),
        [(
            "c1".to_string(),
            Some("cam-1".to_string()),
            AlertKind::Camera
        )]
    );
}

#[test]
fn the_agent_view_can_be_kept_in_force() {
    let mut settings = immediate();
    settings.platform.video_view = VideoView::Agent;
    let mut m = campus_with_nvr(settings);
    m.apply_gb(&registered(NVR, 3600), t(1));
    m.apply_gb(&catalog(NVR, &[(CAM1, false), (CAM2, false)]), t(2));
    assert_eq!(views(&m), (1, 1, 1, 0, 1, 0));
    assert!(open_alerts(&m).is_empty());
}

#[test]
fn three_missed_keepalives_take_a_device_offline_and_its_channels_with_it() {
    let mut m = campus_with_nvr(immediate());
    m.apply_gb(&registered(NVR, 3600), t(0));
    m.apply_gb(&catalog(NVR, &[(CAM1, true), (CAM2, true)]), t(1));
    m.apply_gb(&keepalive(NVR), t(60));
    // 3 × 60 s after the last keepalive, not before.
    assert!(m.expire_gb(t(239)).is_empty());
    let changes = m.expire_gb(t(240));
    let d = m.gb_device(&code(NVR)).unwrap().record;
    assert_eq!(d.state, GbState::Offline);
    assert_eq!(
        d.cause_code.as_ref().map(|c| c.to_string()),
        Some("gb.keepalive_missed{seconds=180}".to_string())
    );
    assert!(changes.iter().any(|c| matches!(c, Change::Transition(t)
        if t.kind == AlertKind::GbDevice && t.from == "online" && t.to == "offline")));
    // Told through the operators' channels like any dropped link.
    let titles: Vec<String> = notices(&changes).into_iter().map(|n| n.title).collect();
    assert!(
        titles.contains(&format!(
            "Video platform device offline: Campus c1 (c1), {NVR}"
        )),
        "{titles:?}"
    );
    let mut alerts = open_alerts(&m);
    alerts.sort_by_key(|a| a.2.as_str());
    assert_eq!(
        alerts,
        [
            ("c1".to_string(), Some(NVR.to_string()), AlertKind::GbDevice),
            ("c1".to_string(), None, AlertKind::Video),
        ]
    );
    assert_eq!(views(&m).3, 0);

    // A keepalive within its registration brings it back.
    m.apply_gb(&keepalive(NVR), t(300));
    assert_eq!(
        m.gb_device(&code(NVR)).unwrap().record.state,
        GbState::Online
    );
    assert!(open_alerts(&m).is_empty());
}

#[test]
fn an_expired_or_withdrawn_registration_is_offline() {
    let mut m = campus_with_nvr(immediate());
    m.apply_gb(&registered(NVR, 100), t(0));
    m.apply_gb(&keepalive(NVR), t(60));
    let _ = m.expire_gb(t(100));
    let d = m.gb_device(&code(NVR)).unwrap().record;
    assert_eq!(
        (d.state, d.cause_code.as_ref().map(|c| c.code.as_str())),
        (GbState::Offline, Some("gb.registration_expired"))
    );
    // A keepalive after the registration expired does not bring it back.
    m.apply_gb(&keepalive(NVR), t(110));
    assert_eq!(
        m.gb_device(&code(NVR)).unwrap().record.state,
        GbState::Offline
    );
    assert_eq!(m.platform_counters().not_registered, 1);

    m.apply_gb(&registered(NVR, 3600), t(120));
    assert_eq!(
        m.gb_device(&code(NVR)).unwrap().record.state,
        GbState::Online
    );
    m.apply_gb(&GbInput::Unregistered { device: code(NVR) }, t(130));
    let d = m.gb_device(&code(NVR)).unwrap().record;
    assert_eq!(
        (d.state, d.cause_code.as_ref().map(|c| c.code.as_str())),
        (GbState::Offline, Some("gb.unregistered"))
    );
}

#[test]
fn after_a_restart_no_device_is_offline_before_a_full_keepalive_window() {
    let mut m = campus_with_nvr(immediate());
    m.apply_gb(&registered(NVR, 3600), t(0));
    m.apply_gb(&catalog(NVR, &[(CAM1, true), (CAM2, true)]), t(1));
    m.apply_gb(&keepalive(NVR), t(10));
    let stored = m.gb_device(&code(NVR)).unwrap().record.clone();
    // The server stops at t(10) and starts again at t(170): 160 s without a keepalive,
    // 20 s before the old window ends.
    let snap = Snapshot {
        registry: vec![entry("c1", "150102", SchoolType::Primary, 1, 2).with_gb(&[NVR])],
        gb_devices: vec![stored],
        ..Snapshot::default()
    };
    let mut r = Monitor::restore(immediate(), snap, t(170));
    assert_eq!(r.coverage().total(None, None).video_platform, 1);
    assert!(r.expire_gb(t(190)).is_empty());
    assert!(r.expire_gb(t(349)).is_empty());
    let _ = r.expire_gb(t(350));
    assert_eq!(
        r.gb_device(&code(NVR)).unwrap().record.state,
        GbState::Offline
    );
}

#[test]
fn a_channel_listed_by_another_campus_belongs_to_it() {
    // A county platform in cascade registers as one device and lists the channels of
    // two campuses; each campus lists its own channels.
    const PLATFORM: &str = "15010200002000000001";
    const B_CAM: &str = "15010200001320000009";
    let mut m = Monitor::new(immediate());
    m.set_registry(
        &[
            entry("c1", "150102", SchoolType::Primary, 1, 2).with_gb(&[CAM1, CAM2]),
            entry("c2", "150102", SchoolType::Primary, 1, 1).with_gb(&[B_CAM]),
        ],
        false,
        t(0),
    );
    m.apply_gb(&registered(PLATFORM, 3600), t(0));
    m.apply_gb(
        &catalog(PLATFORM, &[(CAM1, true), (CAM2, true), (B_CAM, false)]),
        t(1),
    );
    assert!(
        m.campus("c1").unwrap().video_networked,
        "c1's two channels are ON"
    );
    assert!(!m.campus("c2").unwrap().video_networked);
    // The platform is not any one campus's device.
    assert_eq!(m.gb_device(&code(PLATFORM)).unwrap().campus, None);
    assert_eq!(m.campus_gb_devices(&cid("c2")).len(), 1);
}

#[test]
fn an_alarm_notification_is_an_event_of_its_campus() {
    let mut m = campus_with_nvr(immediate());
    m.apply_gb(&registered(NVR, 3600), t(0));
    m.apply_gb(&catalog(NVR, &[(CAM1, true), (ALARM, true)]), t(1));
    let alarm = AlarmInfo {
        source: code(ALARM),
        priority: Some(1),
        method: Some(2),
        alarm_type: None,
        time: Some(t(5)),
        description: Some("一键报警".into()),
    };
    let changes = m.apply_gb(
        &GbInput::Alarm {
            device: code(NVR),
            alarm: alarm.clone(),
        },
        t(6),
    );
    let rows: Vec<_> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Transition(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.campus.as_str(), row.kind, row.to.as_str(), row.at),
        ("c1", AlertKind::GbAlarm, "alarm", t(5))
    );
    assert_eq!(row.device.as_ref().map(|d| d.as_str()), Some(ALARM));
    assert_eq!(row.cause.as_deref(), Some("一键报警"));
    assert_eq!(
        row.cause_code.as_ref().map(|c| c.to_string()),
        Some("gb.alarm{method=2,priority=1}".to_string())
    );

    // From a device no campus lists: counted, kept nowhere.
    m.apply_gb(&registered(NVR2, 3600), t(7));
    let changes = m.apply_gb(
        &GbInput::Alarm {
            device: code(NVR2),
            alarm: AlarmInfo {
                source: code(NVR2),
                ..alarm
            },
        },
        t(8),
    );
    assert!(!changes.iter().any(|c| matches!(c, Change::Transition(_))));
    assert_eq!(m.platform_counters().unmapped_alarms, 1);
}

#[test]
fn alarm_input_channels_count_against_alarm_networking_when_configured() {
    let mut settings = immediate();
    settings.platform.alarm_channels = true;
    let mut m = campus_with_nvr(settings);
    m.apply_gb(&registered(NVR, 3600), t(0));
    m.apply_gb(
        &catalog(NVR, &[(CAM1, true), (CAM2, true), (ALARM, true)]),
        t(1),
    );
    assert_eq!(m.coverage().total(None, None).alarm_networked, 1);
    m.apply_gb(
        &catalog(NVR, &[(CAM1, true), (CAM2, true), (ALARM, false)]),
        t(2),
    );
    assert_eq!(m.coverage().total(None, None).alarm_networked, 0);
}

#[test]
fn devices_no_campus_lists_are_kept_for_review_and_never_counted() {
    let mut m = campus_with_nvr(immediate());
    m.apply_gb(&registered(NVR2, 3600), t(0));
    m.apply_gb(&catalog(NVR2, &[(CAM1, true), (CAM2, true)]), t(1));
    let unmapped: Vec<_> = m
        .gb_devices()
        .into_iter()
        .filter(|d| d.campus.is_none())
        .map(|d| d.record.id.to_string())
        .collect();
    assert_eq!(unmapped, [NVR2]);
    // c1 lists NVR, not NVR2: its channels (the same codes) do not count for it.
    assert_eq!(views(&m).3, 0);

    // Once the registry lists it, it counts without registering again.
    m.set_registry(
        &[entry("c1", "150102", SchoolType::Primary, 1, 2).with_gb(&[NVR, NVR2])],
        false,
        t(2),
    );
    assert_eq!(views(&m).3, 1);
    assert_eq!(m.gb_device(&code(NVR2)).unwrap().campus, Some(&cid("c1")));
}

#[test]
fn a_catalog_of_ten_thousand_channels_is_applied_and_a_partial_one_updates_only_what_it_lists() {
    let mut m = campus_with_nvr(immediate());
    m.apply_gb(&registered(NVR, 3600), t(0));
    let many: Vec<ChannelInfo> = (0..10_000)
        .map(|i| channel(&format!("1501020000132{i:07}"), i % 10 != 0))
        .collect();
    m.apply_gb(
        &GbInput::Catalog {
            device: code(NVR),
            channels: many,
            complete: true,
        },
        t(1),
    );
    let d = m.gb_device(&code(NVR)).unwrap().record;
    assert_eq!(d.channels.len(), 10_000);
    m.apply_gb(
        &GbInput::Catalog {
            device: code(NVR),
            channels: vec![channel("15010200001320000001", false)],
            complete: false,
        },
        t(2),
    );
    let d = m.gb_device(&code(NVR)).unwrap().record;
    assert_eq!(d.channels.len(), 10_000);
    assert_eq!(
        d.channels
            .iter()
            .filter(|c| c.status == ChannelStatus::Off)
            .count(),
        1_001
    );
    // A complete catalog without a channel drops it.
    m.apply_gb(&catalog(NVR, &[(CAM1, true)]), t(3));
    assert_eq!(m.gb_device(&code(NVR)).unwrap().record.channels.len(), 1);
}

#[test]
fn neither_view_is_said_to_disagree_before_it_has_looked() {
    let mut m = Monitor::new(immediate());
    m.set_registry(
        &[entry("c1", "150102", SchoolType::Primary, 1, 2).with_gb(&[NVR])],
        false,
        t(0),
    );
    // The agent has just started: its cameras are not probed yet.
    let mut unprobed = dev("cam-1", DeviceKind::Camera, DeviceState::Unknown);
    unprobed.since = None;
    let mut other = unprobed.clone();
    other.id = DeviceId::parse("cam-2").unwrap();
    m.apply(
        &birth(
            "c1",
            "150102",
            1,
            vec![
                dev("alarm-1", DeviceKind::Alarm, DeviceState::Up),
                unprobed,
                other,
            ],
        ),
        t(0),
    );
    m.apply_gb(&registered(NVR, 3600), t(1));
    // The NVR has not answered its catalog yet either: no disagreement, either way.
    assert_eq!(views(&m).4 + views(&m).5, 0);
    m.apply_gb(&catalog(NVR, &[(CAM1, true), (CAM2, true)]), t(2));
    // The platform sees both channels ON; the agent still has not looked.
    assert_eq!(views(&m), (1, 0, 1, 1, 0, 0));
    // Once the agent reports a camera down, it is blind to what the platform sees.
    m.apply(
        &event(
            "c1",
            "150102",
            101,
            "cam-1",
            DeviceState::Unknown,
            DeviceState::Down,
        ),
        t(3),
    );
    assert_eq!(views(&m), (1, 0, 1, 1, 0, 1));
}
