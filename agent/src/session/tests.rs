//! The session's unit tests: MQTT options, acknowledgements mapped back to events,
//! rebirth answers, message sizes and the reconnect backoff.

use super::*;
use campuswatch_protocol::{CampusId, RegionCode};

fn config(url: &str) -> AgentConfig {
    let mut c = AgentConfig::new(
        CampusId::parse("150102-K-0001").unwrap(),
        RegionCode::parse("150102").unwrap(),
    );
    c.mqtt.url = url.into();
    c
}

fn topics(c: &AgentConfig) -> Topics {
    Topics::of(c)
}

#[test]
fn options_carry_the_client_id_the_will_with_the_epoch_and_url_credentials() {
    let c = config("mqtt://gw%40x:p%3Ass@broker.example:1884");
    let o = mqtt_options(&c, &topics(&c), 77).unwrap();
    assert_eq!(o.client_id(), "cw-150102-K-0001");
    assert_eq!(o.broker_address(), ("broker.example".to_string(), 1884));
    let login = o.credentials().unwrap();
    assert_eq!(
        (login.username.as_str(), login.password.as_str()),
        ("gw@x", "p:ss")
    );
    assert!(!o.clean_session());
    let will = o.last_will().unwrap();
    assert_eq!(will.topic, "cw/v1/150102/150102-K-0001/death");
    let death: Death = serde_json::from_slice(&will.message).unwrap();
    assert_eq!(
        (death.epoch, death.reason),
        (77, DeathReason::ConnectionLost)
    );
}

#[test]
fn mqtts_defaults_to_port_8883_and_uses_tls() {
    let c = config("mqtts://broker.example");
    assert_eq!(c.mqtt.login().endpoint().unwrap().port, 8883);
    let o = mqtt_options(&c, &topics(&c), 1).unwrap();
    // TLS is carried by campuswatch-mqtt: rumqttc speaks to its private socket.
    assert!(matches!(o.transport(), rumqttc::Transport::Unix));
}

#[test]
fn a_ca_file_without_certificates_is_refused_with_its_key() {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), "not a certificate").unwrap();
    let mut c = config("mqtts://broker.example");
    c.mqtt.ca_file = f.path().display().to_string();
    let err = mqtt_options(&c, &topics(&c), 1).unwrap_err().to_string();
    assert!(err.contains("mqtt.ca_file"), "{err}");
}

/// A session over a fresh state dir with one device and two spooled events, and a
/// connection whose event loop is never polled (requests just queue up).
fn session_with_two_events(dir: &std::path::Path) -> (Session, Conn, EventLoop, [u64; 2]) {
    session_with_two_events_for(
        dir,
        crate::config::SpoolConfig::default(),
        campuswatch_protocol::SCHEMA_VERSION,
    )
}

/// The same with a bounded spool, for a server that reads payloads up to
/// `schema_version`.
fn session_with_two_events_for(
    dir: &std::path::Path,
    spool: crate::config::SpoolConfig,
    schema_version: u32,
) -> (Session, Conn, EventLoop, [u64; 2]) {
    use crate::config::{DeviceConfig, ProbeConfig};
    use crate::hysteresis::Transition;
    use campuswatch_protocol::{DeviceId, DeviceKind, DeviceState};
    let mut c = config("mqtt://127.0.0.1:1");
    c.state_dir = dir.to_path_buf();
    c.spool = spool;
    c.mqtt.schema_version = schema_version;
    c.devices.push(DeviceConfig::new(
        DeviceId::parse("alarm-1").unwrap(),
        DeviceKind::Alarm,
        ProbeConfig::Tcp {
            target: "127.0.0.1:1".into(),
        },
    ));
    let (spool, _) = Spool::open(dir, 1_000, c.spool).unwrap();
    let inventory = Arc::new(Inventory::new(&c, 0));
    let config = Arc::new(c);
    let mut session = Session::new(
        config.clone(),
        EpochStore::open(dir),
        spool,
        inventory,
        Arc::new(HealthSampler::new()),
        CancellationToken::new(),
    );
    for (from, to) in [
        (DeviceState::Unknown, DeviceState::Up),
        (DeviceState::Up, DeviceState::Down),
    ] {
        // Task 0: the device has no probe task; the test reports for it.
        session.record(DeviceTransition {
            device: DeviceId::parse("alarm-1").unwrap(),
            task: 0,
            transition: Transition {
                from,
                to,
                at: chrono::Utc::now(),
                cause: (to == DeviceState::Down).then(|| "connection refused".into()),
                cause_code: (to == DeviceState::Down)
                    .then(|| campuswatch_protocol::CauseCode::new("tcp.refused")),
                measurements: Default::default(),
                // The first probe learned the device's identity.
                info: (to == DeviceState::Up).then(|| campuswatch_protocol::DeviceInfo {
                    model: Some("DS-2CD2143G2-I".into()),
                    ..Default::default()
                }),
            },
        });
    }
    let ids: Vec<u64> = (session.spool.last_id() - 1..=session.spool.last_id()).collect();
    // The event loop is returned unpolled: it only has to exist for try_publish to
    // queue requests.
    let (client, eventloop) =
        AsyncClient::new(mqtt_options(&config, &session.topics, 5).unwrap(), 16);
    let conn = Conn::new(client, 5);
    (session, conn, eventloop, [ids[0], ids[1]])
}

fn feed(session: &mut Session, conn: &mut Conn, events: Vec<MqttEvent>) {
    let mut phase = Phase::Running;
    let mut hb = tokio::time::interval(Duration::from_secs(1));
    for e in events {
        session.handle(e, conn, &mut phase, &mut hb);
    }
}

fn connack() -> MqttEvent {
    MqttEvent::Incoming(Packet::ConnAck(rumqttc::ConnAck {
        session_present: false,
        code: rumqttc::ConnectReturnCode::Success,
    }))
}

fn sent(pkid: u16) -> MqttEvent {
    MqttEvent::Outgoing(Outgoing::Publish(pkid))
}

fn puback(pkid: u16) -> MqttEvent {
    MqttEvent::Incoming(Packet::PubAck(rumqttc::PubAck::new(pkid)))
}

#[tokio::test]
async fn cause_codes_travel_in_events_and_births_unless_the_server_reads_only_version_3() {
    let code = |c: &Option<campuswatch_protocol::CauseCode>| c.as_ref().map(|c| c.to_string());
    let dir = tempfile::tempdir().unwrap();
    let (s, _conn, _eventloop, _) = session_with_two_events(dir.path());
    let events: Vec<_> = s.spool.unacked().cloned().collect();
    // Up carries no cause and stays version 2; down carries its code in version 4.
    assert_eq!((events[0].v, code(&events[0].cause_code)), (2, None));
    assert_eq!(
        (events[1].v, code(&events[1].cause_code).as_deref()),
        (4, Some("tcp.refused"))
    );
    let birth = s.birth_message(1);
    assert_eq!(birth.v, 4);
    assert_eq!(
        code(&birth.devices[0].cause_code).as_deref(),
        Some("tcp.refused")
    );

    let dir = tempfile::tempdir().unwrap();
    let (s, _conn, _eventloop, _) = session_with_two_events_for(dir.path(), Default::default(), 3);
    let events: Vec<_> = s.spool.unacked().cloned().collect();
    assert_eq!((events[1].v, code(&events[1].cause_code)), (2, None));
    assert_eq!(events[1].cause.as_deref(), Some("connection refused"));
    let birth = s.birth_message(1);
    assert_eq!((birth.v, code(&birth.devices[0].cause_code)), (2, None));
    assert_eq!(
        birth.devices[0].cause.as_deref(),
        Some("connection refused")
    );
}

#[tokio::test]
async fn an_identity_learned_by_a_probe_travels_in_its_event_and_stays_in_the_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _conn, _eventloop, _) = session_with_two_events(dir.path());
    let events: Vec<_> = s.spool.unacked().cloned().collect();
    let model =
        |i: &Option<campuswatch_protocol::DeviceInfo>| i.as_ref().and_then(|i| i.model.clone());
    assert_eq!(model(&events[0].info).as_deref(), Some("DS-2CD2143G2-I"));
    assert_eq!(events[0].v, BASE_SCHEMA_VERSION);
    // The device went down since; the birth still says what it is.
    assert_eq!(model(&events[1].info), None);
    let birth_devices = s.inventory.snapshot().devices;
    assert_eq!(
        model(&birth_devices[0].info).as_deref(),
        Some("DS-2CD2143G2-I")
    );
}

#[tokio::test]
async fn pubacks_are_mapped_back_to_the_events_they_acknowledge() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, mut conn, _eventloop, [a, b]) = session_with_two_events(dir.path());
    feed(&mut s, &mut conn, vec![connack()]);
    assert_eq!(conn.fifo, [Qos1::Birth, Qos1::Event(a), Qos1::Event(b)]);
    // A heartbeat (pkid 0) in between does not consume a QoS 1 request.
    feed(&mut s, &mut conn, vec![sent(1), sent(0), sent(2), sent(3)]);
    feed(&mut s, &mut conn, vec![puback(3)]);
    assert_eq!(s.spool.unacked().map(|e| e.id).collect::<Vec<_>>(), [a]);
    feed(&mut s, &mut conn, vec![puback(1), puback(2)]);
    assert!(s.spool.is_empty());
    assert_eq!(conn.events_in_flight, 0);
}

#[tokio::test]
async fn a_packet_id_collision_keeps_the_held_back_event_in_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, mut conn, _eventloop, [a, b]) = session_with_two_events(dir.path());
    feed(&mut s, &mut conn, vec![connack()]);
    // Birth gets 1, event a gets 2, event b collides on 1 and waits for its PUBACK.
    feed(
        &mut s,
        &mut conn,
        vec![sent(1), sent(2), MqttEvent::Outgoing(Outgoing::AwaitAck(1))],
    );
    assert_eq!(conn.stash, Some((1, Qos1::Event(b))));
    // The birth's PUBACK frees id 1; rumqttc then sends b under it.
    feed(&mut s, &mut conn, vec![puback(1), sent(1)]);
    assert_eq!(conn.stash, None);
    feed(&mut s, &mut conn, vec![puback(1)]);
    assert_eq!(s.spool.unacked().map(|e| e.id).collect::<Vec<_>>(), [a]);
    feed(&mut s, &mut conn, vec![puback(2)]);
    assert!(s.spool.is_empty());
}

#[test]
fn long_causes_are_cut_on_a_character_boundary() {
    let s = "校".repeat(200);
    let cut = truncate_text(s, MAX_TEXT_BYTES);
    assert!(cut.len() <= MAX_TEXT_BYTES);
    assert!(cut.chars().all(|c| c == '校'));
}

fn rebirth_request(epoch: u64) -> (String, Vec<u8>) {
    let cmd = Command::Rebirth(campuswatch_protocol::Rebirth {
        v: campuswatch_protocol::COMMAND_SCHEMA_VERSION,
        campus: CampusId::parse("150102-K-0001").unwrap(),
        region: RegionCode::parse("150102").unwrap(),
        epoch,
        reason: "digest_mismatch".into(),
    });
    (cmd.topic().to_string(), cmd.encode())
}

fn births_queued(conn: &Conn) -> usize {
    conn.fifo.iter().filter(|r| **r == Qos1::Birth).count()
}

#[tokio::test]
async fn a_rebirth_request_of_this_session_is_answered_at_most_once_per_gap() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, mut conn, _eventloop, _) = session_with_two_events(dir.path());
    feed(&mut s, &mut conn, vec![connack()]);
    assert_eq!(births_queued(&conn), 1, "the connection's own birth");
    // Through the event loop's path: answered.
    let (topic, payload) = rebirth_request(5);
    feed(
        &mut s,
        &mut conn,
        vec![MqttEvent::Incoming(Packet::Publish(rumqttc::Publish::new(
            &topic,
            QoS::AtLeastOnce,
            payload.clone(),
        )))],
    );
    assert_eq!(births_queued(&conn), 2);
    let t0 = conn.rebirth_answered.unwrap();
    // Asked again at once: a server in a loop gets no second birth.
    s.on_command(&mut conn, &topic, &payload, t0 + Duration::from_secs(1));
    assert_eq!(births_queued(&conn), 2);
    // A request kept by the broker for an older session, a malformed one and one
    // for another campus are ignored, whenever they come.
    let late = t0 + REBIRTH_ANSWER_GAP * 2;
    let (old_topic, old) = rebirth_request(4);
    s.on_command(&mut conn, &old_topic, &old, late);
    s.on_command(&mut conn, &topic, b"{\"v\":3}", late);
    let other = String::from_utf8(payload.clone())
        .unwrap()
        .replace("150102-K-0001", "150102-K-0002");
    s.on_command(
        &mut conn,
        "cw/v1/150102/150102-K-0002/cmd/rebirth",
        other.as_bytes(),
        late,
    );
    assert_eq!(births_queued(&conn), 2);
    assert_eq!(
        conn.bad_commands, 2,
        "the malformed one and the other campus's"
    );
    // After the gap the session answers again.
    s.on_command(&mut conn, &topic, &payload, late);
    assert_eq!(births_queued(&conn), 3);
}

#[tokio::test]
async fn a_birth_reports_spool_drops_as_version_3_and_is_version_2_without() {
    // For a server that reads version 3: the down device's cause code is left out.
    let dir = tempfile::tempdir().unwrap();
    let (s, _conn, _eventloop, _) = session_with_two_events_for(dir.path(), Default::default(), 3);
    let b = s.birth_message(5);
    assert_eq!((b.v, b.dropped_events), (BASE_SCHEMA_VERSION, 0));
    let json = String::from_utf8(Message::Birth(b).encode()).unwrap();
    assert!(!json.contains("dropped_events"), "{json}");

    let dir = tempfile::tempdir().unwrap();
    let bounded = crate::config::SpoolConfig {
        max_events: 1,
        ..Default::default()
    };
    let (s, _conn, _eventloop, [_, kept]) = session_with_two_events_for(dir.path(), bounded, 3);
    assert_eq!(s.spool.unacked().map(|e| e.id).collect::<Vec<_>>(), [kept]);
    let b = s.birth_message(5);
    assert_eq!((b.v, b.dropped_events, b.last_event_id), (3, 1, kept));
    // What a server reads back.
    let msg = Message::Birth(b);
    assert!(campuswatch_protocol::decode(&msg.topic(), &msg.encode()).is_ok());
}

/// The traffic a campus of 64 cameras and 2 alarm links costs: heartbeats carry one
/// letter per device, the inventory only travels in births. Prints the sizes (see
/// docs/BENCHMARKS.md) and fails if a heartbeat stops being small.
#[tokio::test]
async fn heartbeats_stay_small_for_64_cameras_and_2_alarms_and_births_carry_the_rest() {
    use crate::config::{DeviceConfig, ProbeConfig};
    use crate::hysteresis::Transition;
    use campuswatch_protocol::{DeviceId, DeviceInfo, DeviceKind, DeviceState};
    let dir = tempfile::tempdir().unwrap();
    let mut c = config("mqtts://broker.example:8883");
    c.state_dir = dir.path().to_path_buf();
    c.devices.push(DeviceConfig::new(
        DeviceId::parse("alarm-1").unwrap(),
        DeviceKind::Alarm,
        ProbeConfig::Tcp {
            target: "192.168.10.20:5000".into(),
        },
    ));
    c.devices.push(DeviceConfig::new(
        DeviceId::parse("alarm-arc").unwrap(),
        DeviceKind::Alarm,
        ProbeConfig::Dc09 {
            target: "10.20.0.5:12128".into(),
            transport: crate::config::Transport::Tcp,
            account: "1234".into(),
            prefix: "0".into(),
            receiver: None,
            key: None,
            supervision: None,
        },
    ));
    for i in 1..=64 {
        c.devices.push(DeviceConfig::new(
            DeviceId::parse(&format!("cam-{i:02}")).unwrap(),
            DeviceKind::Camera,
            ProbeConfig::Rtsp {
                url: format!("rtsp://192.168.11.{i}:554/Streaming/Channels/101"),
                username: "admin".into(),
                password: "secret".into(),
                transport: crate::config::Transport::Tcp,
                stream_check: true,
                stream_interval: Duration::from_secs(300),
                stream_window: Duration::from_secs(4),
                min_frame_rate: None,
            },
        ));
    }
    let (spool, _) = Spool::open(dir.path(), 1_800_000_000_000, c.spool).unwrap();
    let inventory = Arc::new(Inventory::new(&c, 0));
    // Every device probed: states, last measurements and camera identities, as a
    // gateway has them a few minutes after it started.
    for i in 0..c.devices.len() {
        let camera = i >= 2;
        let measurements = if camera {
            [
                ("latency_ms", 3.2),
                ("frame_rate", 25.0),
                ("bitrate_kbps", 2048.0),
                ("first_keyframe_ms", 112.0),
                ("width", 1920.0),
                ("height", 1080.0),
                ("frames", 100.0),
                ("keyframes", 4.0),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
        } else {
            [("latency_ms".to_string(), 1.8)].into()
        };
        let t = Transition {
            from: DeviceState::Unknown,
            to: if i % 16 == 5 {
                DeviceState::Down
            } else {
                DeviceState::Up
            },
            at: chrono::Utc::now(),
            cause: (i % 16 == 5).then(|| "no answer to DESCRIBE within 5s".to_string()),
            cause_code: None,
            measurements,
            info: camera.then(|| DeviceInfo {
                manufacturer: Some("HIKVISION".into()),
                model: Some("DS-2CD2143G2-I".into()),
                firmware: Some("V5.7.3 build 220112".into()),
                serial: Some(format!("DS-2CD2143G2-I20220112AACH{i:09}")),
                hardware: Some("88".into()),
            }),
        };
        // Task 0: no probe task started yet.
        inventory.apply(&c.devices[i].id, 0, &t, 1_800_000_000_000 + i as u64);
    }
    let s = Session::new(
        Arc::new(c),
        EpochStore::open(dir.path()),
        spool,
        inventory,
        Arc::new(HealthSampler::new()),
        CancellationToken::new(),
    );
    let heartbeat = Message::Heartbeat(s.heartbeat_message(1_795_500_000, 17_280)).encode();
    let birth = Message::Birth(s.birth_message(1_795_500_000)).encode();
    let topic = s.topics.heartbeat.len();
    println!(
        "64 cameras + 2 alarms: heartbeat {} bytes of JSON (+ {topic} of topic), birth {} bytes",
        heartbeat.len(),
        birth.len()
    );
    let text = String::from_utf8(heartbeat.clone()).unwrap();
    assert!(
        !text.contains("cam-01"),
        "no inventory in heartbeats: {text}"
    );
    // 299 bytes when measured (323 before the time and percentages were rounded);
    // the margin is for longer uptimes and sequence numbers.
    assert!(heartbeat.len() <= 330, "{} bytes: {text}", heartbeat.len());
    assert!(birth.len() > 20 * heartbeat.len());
    assert!(birth.len() < MAX_PAYLOAD_BYTES / 4);
}

/// 10,000 gateways lose their broker at the same instant (a broker restart) and
/// retry with the default backoff; the broker is back after `outage`. However long
/// the outage, the reconnections that succeed are spread out: no second sees more
/// than a small share of the fleet arrive.
#[test]
fn the_default_backoff_spreads_ten_thousand_gateways_after_a_broker_restart() {
    use rand::{Rng, SeedableRng};
    let m = crate::config::MqttConfig::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261129);
    const FLEET: usize = 10_000;
    for outage_ms in [100u64, 500, 2_000, 5_000, 10_000, 30_000, 120_000] {
        let outage = Duration::from_millis(outage_ms);
        let mut per_second = std::collections::BTreeMap::<u64, usize>::new();
        for _ in 0..FLEET {
            let mut t = Duration::ZERO;
            let mut attempt = 0;
            loop {
                t += reconnect_delay(
                    m.reconnect_delay_min,
                    m.reconnect_delay_max,
                    attempt,
                    rng.random::<f64>(),
                );
                attempt += 1;
                if t >= outage {
                    *per_second.entry(t.as_secs()).or_default() += 1;
                    break;
                }
            }
        }
        let peak = per_second.values().copied().max().unwrap_or(0);
        println!(
            "broker back after {outage:?}: at most {peak} of {FLEET} gateways reconnect in one second"
        );
        assert!(peak <= FLEET * 15 / 100, "{outage:?}: {peak} in one second");
    }
    // Each delay stays in its window.
    let d = reconnect_delay(Duration::from_secs(10), Duration::from_secs(60), 3, 0.999);
    assert!(d <= Duration::from_secs(60));
    let d = reconnect_delay(Duration::from_secs(10), Duration::from_secs(60), 0, 0.0);
    assert_eq!(d, MIN_RECONNECT_DELAY);
}
