//! The alert lifecycle against a reference model, over random histories with time
//! passed in.
//!
//! Two campuses of an alarm and three cameras each live through random device drops
//! and recoveries, agents killed (their Last Will) and started again (a birth that lists
//! every device `unknown` until it is probed), rebirths, server restarts (the store
//! written, the monitor restored from it), maintenance windows planned and withdrawn,
//! and time passing. After every step the open alerts must be exactly those the model
//! derives from what the agents reported, with the same start times and states, each
//! outage keeping one alert id, and the notices told must be exactly the model's.
//!
//! The model is written from the rules in `docs/decisions.md`, not from the monitor:
//! - a device's outage starts when it is reported down and ends only when it is
//!   reported up; `unknown` in between changes nothing;
//! - a campus's video networking is down while two of its three cameras are in an outage
//!   (coverage needs two of the three up), since the second of them went down; its alarm
//!   networking while its one alarm device is;
//! - an alert opens once its outage has lasted the hold-down, the gateway is online and
//!   the link is reported down at that moment (the gateway's alert: once it has been
//!   offline for its hold-down); it ends when the outage ends;
//! - it is told when it opens unless a maintenance window covers its campus, then when
//!   the window is over if it is still open; a device's alert is not told while its
//!   gateway is offline; an end is told only for an alert that was told.
//!
//! Flapping and regional incidents have their own tests; here they are turned off.

use super::*;
use crate::store::test_db::TestDb;
use crate::store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CAMPUSES: [&str; 2] = ["m1", "m2"];
const COUNTY: &str = "150102";
const DEVICES: [(&str, DeviceKind); 4] = [
    ("alarm-1", DeviceKind::Alarm),
    ("cam-1", DeviceKind::Camera),
    ("cam-2", DeviceKind::Camera),
    ("cam-3", DeviceKind::Camera),
];
const HOLD_GATEWAY: i64 = 30;
const HOLD_ALARM: i64 = 10;
const HOLD_CAMERA: i64 = 60;
/// Two of the three cameras down is a video alert: coverage (`video_fraction` 0.5) needs
/// two of the three up.
const VIDEO_NEEDED: usize = 2;
const ALARM_NETWORKING: &str = "alarm_networking";

fn settings() -> Settings {
    Settings {
        alerts: AlertRules {
            hold_down_gateway: TimeDelta::seconds(HOLD_GATEWAY),
            hold_down_alarm: TimeDelta::seconds(HOLD_ALARM),
            hold_down_camera: TimeDelta::seconds(HOLD_CAMERA),
            flap_changes: 1_000_000,
            incident_min_gateways: 1_000_000,
            group_wait: TimeDelta::zero(),
            ..AlertRules::default()
        },
        missed_heartbeats: 1_000_000,
        video_fraction: 0.5,
        ..Settings::default()
    }
}

/// What an alert is about: `gateway`, `video`, `alarm_networking` or a device id.
type LinkName = String;

fn link_name(i: Option<usize>, video: bool) -> LinkName {
    match (i, video) {
        (Some(i), _) => DEVICES[i].0.to_string(),
        (None, true) => "video".into(),
        (None, false) => "gateway".into(),
    }
}

/// One gateway's agent: what it has reported, and the devices' true states.
struct Agent {
    connected: bool,
    epoch: u64,
    last_event: u64,
    reported: [DeviceState; 4],
    since: [Timestamp; 4],
    down: [bool; 4],
}

impl Agent {
    fn new() -> Agent {
        Agent {
            connected: true,
            epoch: 1,
            last_event: 0,
            reported: [DeviceState::Up; 4],
            since: [t(0); 4],
            down: [false; 4],
        }
    }

    fn truth(&self, i: usize) -> DeviceState {
        if self.down[i] {
            DeviceState::Down
        } else {
            DeviceState::Up
        }
    }

    fn birth(&self, campus: &str, at: Timestamp) -> Message {
        Message::Birth(Birth {
            v: 1,
            campus: cid(campus),
            region: region(COUNTY),
            epoch: self.epoch,
            at,
            agent_version: "0.1.0".into(),
            config_digest: "abc".into(),
            heartbeat_interval_ms: 5_000,
            last_event_id: self.last_event,
            devices: DEVICES
                .iter()
                .enumerate()
                .map(|(i, (id, kind))| {
                    let mut d = dev(id, *kind, self.reported[i]);
                    d.since = Some(self.since[i]);
                    d
                })
                .collect(),
            dropped_events: 0,
        })
    }

    /// Reports device `i`'s true state, as a probe would.
    fn report(&mut self, campus: &str, i: usize, at: Timestamp) -> Message {
        let to = self.truth(i);
        self.last_event += 1;
        let (id, kind) = DEVICES[i];
        let msg = Message::Event(Event {
            v: 1,
            campus: cid(campus),
            region: region(COUNTY),
            id: self.last_event,
            epoch: self.epoch,
            at,
            device: DeviceId::parse(id).unwrap(),
            kind,
            from: self.reported[i],
            to,
            cause: (to == DeviceState::Down).then(|| "connection refused".into()),
            cause_code: None,
            measurements: Measurements::new(),
            info: None,
        });
        self.reported[i] = to;
        self.since[i] = at;
        msg
    }
}

/// The reference model of one campus's alerts.
#[derive(Default)]
struct ModelCampus {
    offline_since: Option<Timestamp>,
    /// Each device's ongoing outage: when it began.
    outage: [Option<Timestamp>; 4],
    /// What the server was last told of each device.
    reported: [Option<DeviceState>; 4],
    alerts: BTreeMap<LinkName, ModelAlert>,
}

#[derive(Debug, Clone)]
struct ModelAlert {
    since: Timestamp,
    told: bool,
    /// The monitor's id for it, learnt when it opens.
    id: Option<u64>,
}

impl ModelCampus {
    fn reported(&mut self, i: usize, to: DeviceState, at: Timestamp) {
        self.reported[i] = Some(to);
        match to {
            DeviceState::Down => {
                self.outage[i].get_or_insert(at);
            }
            DeviceState::Up | DeviceState::Degraded => self.outage[i] = None,
            DeviceState::Unknown => {}
        }
    }

    /// Each link that is down: since when, and whether an alert may open for it now.
    fn down_links(&self) -> BTreeMap<LinkName, (Timestamp, bool)> {
        let online = self.offline_since.is_none();
        let mut down = BTreeMap::new();
        if let Some(since) = self.offline_since {
            down.insert(link_name(None, false), (since, true));
        }
        for (i, outage) in self.outage.iter().enumerate() {
            if let Some(since) = outage {
                let seen = self.reported[i] == Some(DeviceState::Down);
                down.insert(link_name(Some(i), false), (*since, online && seen));
            }
        }
        let mut cameras: Vec<Timestamp> = (1..4).filter_map(|i| self.outage[i]).collect();
        cameras.sort();
        let seen = (1..4)
            .filter(|i| self.reported[*i] == Some(DeviceState::Down))
            .count();
        if let Some(since) = self.outage[0] {
            let seen = self.reported[0] == Some(DeviceState::Down);
            down.insert(ALARM_NETWORKING.into(), (since, online && seen));
        }
        if cameras.len() >= VIDEO_NEEDED {
            down.insert(
                link_name(None, true),
                (cameras[VIDEO_NEEDED - 1], online && seen >= VIDEO_NEEDED),
            );
        }
        down
    }

    fn hold_down(link: &str) -> TimeDelta {
        TimeDelta::seconds(match link {
            "gateway" => HOLD_GATEWAY,
            "alarm-1" | ALARM_NETWORKING => HOLD_ALARM,
            _ => HOLD_CAMERA,
        })
    }

    /// Brings the alerts in line at `now`; returns the notices told, as
    /// `(kind, link)`.
    fn settle(&mut self, now: Timestamp, quiet: bool) -> Vec<(NoticeKind, LinkName)> {
        let down = self.down_links();
        let online = self.offline_since.is_none();
        let mut told = Vec::new();
        self.alerts.retain(|link, a| {
            let goes_on = down.contains_key(link);
            if !goes_on && a.told {
                told.push((NoticeKind::AlertResolved, link.clone()));
            }
            goes_on
        });
        for (link, (since, may_open)) in down {
            if !self.alerts.contains_key(&link) && may_open && now >= since + Self::hold_down(&link)
            {
                self.alerts.insert(
                    link.clone(),
                    ModelAlert {
                        since,
                        told: false,
                        id: None,
                    },
                );
            }
        }
        for (link, a) in self.alerts.iter_mut() {
            let shown = link == "gateway" || online;
            if !a.told && !quiet && shown {
                a.told = true;
                told.push((NoticeKind::AlertOpened, link.clone()));
            }
        }
        told
    }

    fn state(&self, link: &str) -> AlertState {
        if link == "gateway" || self.offline_since.is_none() {
            AlertState::Open
        } else {
            AlertState::Suppressed
        }
    }
}

/// The monitor under test, with the store it writes to between restarts.
struct Server {
    monitor: Monitor,
    store: Store,
    /// Changes not yet written: the store is read only at a restart.
    unwritten: Vec<(Vec<Change>, Timestamp)>,
}

impl Server {
    async fn write(&mut self) {
        for (changes, at) in self.unwritten.drain(..) {
            self.store.apply(&changes, at).await.expect("store apply");
        }
    }

    fn keep(&mut self, changes: Vec<Change>, at: Timestamp) -> Vec<Notice> {
        let told = notices(&changes);
        self.unwritten.push((changes, at));
        told
    }

    fn apply(&mut self, msg: &Message, now: Timestamp) -> Vec<Notice> {
        let out = self.monitor.apply(msg, now);
        assert_eq!(out.ignored, None, "{msg:?}");
        self.keep(out.changes, now)
    }

    fn expire(&mut self, now: Timestamp) -> Vec<Notice> {
        let changes = self.monitor.expire(now);
        self.keep(changes, now)
    }
}

fn alert_link(a: &Alert) -> LinkName {
    match (&a.device, a.kind) {
        (Some(d), _) => d.to_string(),
        (None, AlertKind::Video) => "video".into(),
        (None, AlertKind::AlarmNetworking) => ALARM_NETWORKING.into(),
        (None, _) => "gateway".into(),
    }
}

fn notice_link(n: &Notice) -> LinkName {
    match &n.device {
        Some(d) => d.to_string(),
        None => n.link.clone().unwrap_or_default(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Wait,
    Flip(usize, usize),
    Probe(usize, usize),
    Kill(usize),
    Start(usize),
    Rebirth(usize),
    RestartServer,
    Plan(usize, i64),
    Withdraw,
}

fn pick(rng: &mut StdRng) -> Step {
    let c = rng.random_range(0..CAMPUSES.len());
    let d = rng.random_range(0..DEVICES.len());
    match rng.random_range(0..100) {
        0..30 => Step::Flip(c, d),
        30..50 => Step::Probe(c, d),
        50..58 => Step::Kill(c),
        58..68 => Step::Start(c),
        68..72 => Step::Rebirth(c),
        72..77 => Step::RestartServer,
        77..80 => Step::Plan(c, [20, 60, 300][rng.random_range(0..3)]),
        80..82 => Step::Withdraw,
        _ => Step::Wait,
    }
}

/// Checks the monitor against the model at `now`; `told` are the notices of the step.
fn check(
    m: &Monitor,
    model: &mut [ModelCampus],
    told: &[Notice],
    expected: &[(usize, NoticeKind, LinkName)],
    context: &dyn Fn() -> String,
) {
    let mut got: Vec<(usize, NoticeKind, LinkName)> = told
        .iter()
        .map(|n| {
            let campus = n
                .campus
                .as_ref()
                .map(|c| c.id.to_string())
                .unwrap_or_default();
            let c = CAMPUSES.iter().position(|x| *x == campus).unwrap_or(99);
            (c, n.kind, notice_link(n))
        })
        .collect();
    got.sort_by(|a, b| (a.0, a.1.as_str(), &a.2).cmp(&(b.0, b.1.as_str(), &b.2)));
    let mut want = expected.to_vec();
    want.sort_by(|a, b| (a.0, a.1.as_str(), &a.2).cmp(&(b.0, b.1.as_str(), &b.2)));
    assert_eq!(got, want, "notices told\n{}", context());
    for n in told.iter().filter(|n| n.kind == NoticeKind::AlertResolved) {
        assert!(
            n.title.starts_with("Restored: "),
            "{}\n{}",
            n.title,
            context()
        );
    }

    let mut open: BTreeMap<(usize, LinkName), (u64, Timestamp, AlertState)> = BTreeMap::new();
    for a in m.active_alerts() {
        let c = CAMPUSES
            .iter()
            .position(|x| *x == a.campus.as_str())
            .unwrap();
        let before = open.insert((c, alert_link(a)), (a.id, a.since, a.state));
        assert!(before.is_none(), "two alerts for one link\n{}", context());
    }
    let mut want = BTreeMap::new();
    for (c, mc) in model.iter_mut().enumerate() {
        let states: Vec<(LinkName, AlertState)> =
            mc.alerts.keys().map(|l| (l.clone(), mc.state(l))).collect();
        for ((link, state), a) in states.into_iter().zip(mc.alerts.values_mut()) {
            // The monitor's id for an outage never changes: no second alert for it.
            let id = match open.get(&(c, link.clone())) {
                Some((id, ..)) => *a.id.get_or_insert(*id),
                None => 0,
            };
            want.insert((c, link), (id, a.since, state));
        }
    }
    assert_eq!(open, want, "open alerts (id, since, state)\n{}", context());
}

async fn run(seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let db = TestDb::sqlite();
    let registry: Vec<RegistryEntry> = CAMPUSES
        .iter()
        .map(|c| entry(c, COUNTY, SchoolType::Primary, 1, 3))
        .collect();
    let store = db.open().await;
    store.import_registry(&registry, false, t(0)).await.unwrap();
    let mut server = Server {
        monitor: Monitor::new(settings()),
        store,
        unwritten: Vec::new(),
    };
    let changes = server.monitor.set_registry(&registry, false, t(0));
    server.keep(changes, t(0));
    let mut agents: Vec<Agent> = CAMPUSES.iter().map(|_| Agent::new()).collect();
    let mut model: Vec<ModelCampus> = CAMPUSES.iter().map(|_| ModelCampus::default()).collect();
    for (c, campus) in CAMPUSES.iter().enumerate() {
        server.apply(&agents[c].birth(campus, t(0)), t(0));
        for i in 0..DEVICES.len() {
            model[c].reported(i, DeviceState::Up, t(0));
        }
    }
    let mut windows: Vec<(u64, usize, Timestamp, Timestamp)> = Vec::new();
    let mut history: Vec<String> = Vec::new();
    let mut now = t(0);

    for step in 0..steps {
        now += TimeDelta::seconds([0, 1, 2, 5, 9, 20, 31, 61, 120][rng.random_range(0..9)]);
        let quiet = |c: usize, windows: &[(u64, usize, Timestamp, Timestamp)]| {
            windows
                .iter()
                .any(|(_, wc, start, end)| *wc == c && *start <= now && now < *end)
        };
        // Time passes first: timers due by now fire before anything else happens.
        let mut told = server.expire(now);
        let mut expected = Vec::new();
        for (c, mc) in model.iter_mut().enumerate() {
            let q = quiet(c, &windows);
            expected.extend(mc.settle(now, q).into_iter().map(|(k, l)| (c, k, l)));
        }
        let context = |history: &[String]| {
            let from = history.len().saturating_sub(25);
            format!(
                "seed {seed}, step {step}, at {now}:\n{}",
                history[from..].join("\n")
            )
        };
        check(&server.monitor, &mut model, &told, &expected, &|| {
            context(&history)
        });

        let s = pick(&mut rng);
        history.push(format!("t+{} {s:?}", (now - t(0)).num_seconds()));
        told = Vec::new();
        match s {
            Step::Wait => {}
            Step::Flip(c, i) => {
                let a = &mut agents[c];
                a.down[i] = !a.down[i];
                if a.connected && a.reported[i] != DeviceState::Unknown {
                    let e = a.report(CAMPUSES[c], i, now);
                    told.extend(server.apply(&e, now));
                    model[c].reported(i, a.reported[i], now);
                }
            }
            Step::Probe(c, i) => {
                let a = &mut agents[c];
                if a.connected && a.reported[i] == DeviceState::Unknown {
                    let e = a.report(CAMPUSES[c], i, now);
                    told.extend(server.apply(&e, now));
                    model[c].reported(i, a.reported[i], now);
                }
            }
            Step::Kill(c) => {
                let a = &mut agents[c];
                if a.connected {
                    a.connected = false;
                    // A new process knows nothing of its devices.
                    a.reported = [DeviceState::Unknown; 4];
                    a.since = [now; 4];
                    told.extend(server.apply(&death(CAMPUSES[c], COUNTY, a.epoch), now));
                    model[c].offline_since = Some(now);
                }
            }
            Step::Start(c) => {
                let a = &mut agents[c];
                if !a.connected {
                    a.connected = true;
                    a.epoch += 1;
                    told.extend(server.apply(&a.birth(CAMPUSES[c], now), now));
                    model[c].offline_since = None;
                    for i in 0..DEVICES.len() {
                        model[c].reported(i, DeviceState::Unknown, now);
                    }
                }
            }
            Step::Rebirth(c) => {
                let a = &agents[c];
                if a.connected {
                    told.extend(server.apply(&a.birth(CAMPUSES[c], now), now));
                }
            }
            Step::RestartServer => {
                server.write().await;
                server.store = db.open().await;
                let snap = server.store.snapshot().await.expect("snapshot");
                server.monitor = Monitor::restore(settings(), snap, now);
                let changes = server.monitor.on_broker_reconnected(now);
                told.extend(server.keep(changes, now));
            }
            Step::Plan(c, minutes) => {
                let window = maintenance::Maintenance {
                    id: 0,
                    scope: maintenance::Scope::Campus {
                        campus: cid(CAMPUSES[c]),
                    },
                    schedule: maintenance::Schedule::Once {
                        start: now,
                        end: now + TimeDelta::seconds(minutes),
                    },
                    utc_offset_minutes: 480,
                    comment: None,
                    created_by: "model".into(),
                    created_at: now,
                };
                let (w, changes) = server.monitor.add_maintenance(window, now).unwrap();
                told.extend(server.keep(changes, now));
                windows.push((w.id, c, now, now + TimeDelta::seconds(minutes)));
            }
            Step::Withdraw => {
                if !windows.is_empty() {
                    let (id, ..) = windows.remove(rng.random_range(0..windows.len()));
                    let changes = server.monitor.remove_maintenance(id, now).unwrap();
                    told.extend(server.keep(changes, now));
                }
            }
        }
        told.extend(server.expire(now));
        let mut expected = Vec::new();
        for (c, mc) in model.iter_mut().enumerate() {
            let q = quiet(c, &windows);
            expected.extend(mc.settle(now, q).into_iter().map(|(k, l)| (c, k, l)));
        }
        check(&server.monitor, &mut model, &told, &expected, &|| {
            context(&history)
        });
    }
}

#[tokio::test]
async fn random_histories_of_outages_restarts_and_windows_give_exactly_the_models_alerts() {
    let seeds: u64 = std::env::var("CAMPUSWATCH_MODEL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    for seed in 0..seeds {
        run(seed, 300).await;
    }
}
