//! Simulated devices against the real listener over UDP on loopback: what the platform
//! hands on is what the device did.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::gb28181::listener::Counters;
use crate::gb28181::{GbInput, Listener, ListenerSettings};

const PLATFORM: &str = "34020000002000000001";
const NVR: &str = "15010200001180000001";
const PASSWORD: &str = "12345678";

fn code(s: &str) -> GbCode {
    GbCode::parse(s).unwrap()
}

struct Platform {
    address: PlatformAddress,
    inputs: mpsc::Receiver<GbInput>,
    counters: Arc<Counters>,
    shutdown: CancellationToken,
}

impl Platform {
    async fn start(catalog_interval: Duration) -> Platform {
        let mut settings = ListenerSettings::new(
            "127.0.0.1:0".parse().unwrap(),
            code(PLATFORM),
            chrono_tz::Asia::Shanghai,
        );
        settings.password = Some(PASSWORD.into());
        settings.catalog_interval = catalog_interval;
        settings.catalog_wait = Duration::from_secs(5);
        let realm = settings.realm.clone();
        let counters = Arc::new(Counters::default());
        let listener = Listener::bind(settings, counters.clone()).await.unwrap();
        let address = PlatformAddress {
            addr: listener.local_addr(),
            id: code(PLATFORM),
            realm,
        };
        let (tx, inputs) = mpsc::channel(1000);
        let shutdown = CancellationToken::new();
        tokio::spawn(listener.run(Vec::new(), tx, shutdown.clone()));
        Platform {
            address,
            inputs,
            counters,
            shutdown,
        }
    }

    /// The next input that `f` picks, within 10 s; the others before it are dropped.
    async fn next<T>(&mut self, mut f: impl FnMut(GbInput) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let input = tokio::time::timeout_at(deadline, self.inputs.recv())
                .await
                .expect("the platform hands on what the device said within 10 s")
                .expect("the listener runs");
            if let Some(t) = f(input) {
                return t;
            }
        }
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[tokio::test]
async fn a_simulated_nvr_registers_keeps_alive_answers_catalogs_alarms_and_unregisters() {
    let mut platform = Platform::start(Duration::from_secs(2)).await;
    let mut spec = DeviceSpec::nvr(code(NVR), PASSWORD, 20);
    spec.keepalive = Duration::from_millis(300);
    spec.items_per_message = 8;
    let (spec, button) = spec.with_alarm_input();
    let first_camera = spec.channels[0].id;
    let device = SimulatedDevice::start(spec, platform.address.clone())
        .await
        .unwrap();

    // Registration with the digest, from the device's own address.
    let (address, keepalive_secs) = platform
        .next(|i| match i {
            GbInput::Registered {
                device,
                address,
                keepalive_secs,
                ..
            } if device == code(NVR) => Some((address, keepalive_secs)),
            _ => None,
        })
        .await;
    assert_eq!(address, device.local_addr());
    assert_eq!(
        keepalive_secs, 60,
        "the platform's interval, not the device's"
    );
    let status = device
        .wait_for(Duration::from_secs(5), |s| s.registered)
        .await
        .unwrap();
    assert_eq!(status.refused, 0);

    // The catalog, in three parts (8 + 8 + 5), whole, named in Chinese.
    let channels = platform
        .next(|i| match i {
            GbInput::Catalog {
                channels, complete, ..
            } => Some((channels, complete)),
            _ => None,
        })
        .await;
    assert!(channels.1, "complete");
    let channels = channels.0;
    assert_eq!(channels.len(), 21);
    assert!(channels.iter().all(|c| c.status == ChannelStatus::On));
    assert_eq!(channels[0].id, first_camera);
    assert_eq!(channels[0].name.as_deref(), Some("校门口摄像机1"));
    assert_eq!(channels[0].parent, Some(code(NVR)));
    assert_eq!(channels[20].id, button);
    assert_eq!(channels[20].id.type_code(), 134);
    assert_eq!(channels[20].name.as_deref(), Some("一键报警"));
    let codes: std::collections::HashSet<_> = channels.iter().map(|c| c.id).collect();
    assert_eq!(codes.len(), 21, "every channel has its own code");

    // Keepalives at the device's interval.
    for _ in 0..2 {
        platform
            .next(|i| matches!(i, GbInput::Keepalive { ok: true, .. }).then_some(()))
            .await;
    }

    // A channel OFF: the next catalog (the platform queries every 2 s) says so.
    device.set_channel(first_camera, ChannelStatus::Off);
    let off = platform
        .next(|i| match i {
            GbInput::Catalog { channels, .. } => Some(channels),
            _ => None,
        })
        .await;
    assert_eq!(off[0].status, ChannelStatus::Off);
    assert!(off[1..].iter().all(|c| c.status == ChannelStatus::On));

    // A one-button alarm, at the platform's local time (from its 200 OK's Date).
    device.alarm(button, "一键报警");
    let alarm = platform
        .next(|i| match i {
            GbInput::Alarm { alarm, .. } => Some(alarm),
            _ => None,
        })
        .await;
    assert_eq!(alarm.source, button);
    assert_eq!(alarm.priority, Some(1));
    assert_eq!(alarm.description.as_deref(), Some("一键报警"));
    let skew = (alarm.time.unwrap() - chrono::Utc::now())
        .num_seconds()
        .abs();
    assert!(skew <= 2, "alarm time off by {skew} s");

    // Silent: no keepalive once the last one sent is answered.
    device.set_keepalives(false);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = device.status().keepalives;
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(device.status().keepalives, before);
    while let Ok(i) = platform.inputs.try_recv() {
        let _ = i;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    while let Ok(i) = platform.inputs.try_recv() {
        assert!(!matches!(i, GbInput::Keepalive { .. }), "{i:?}");
    }

    // Unregistration, then registration again.
    device.unregister();
    platform
        .next(|i| matches!(i, GbInput::Unregistered { .. }).then_some(()))
        .await;
    assert!(device
        .wait_for(Duration::from_secs(5), |s| !s.registered)
        .await
        .is_some());
    device.register();
    platform
        .next(|i| matches!(i, GbInput::Registered { .. }).then_some(()))
        .await;
    let status = device
        .wait_for(Duration::from_secs(5), |s| s.registrations == 2)
        .await
        .expect("registered again");
    assert!(status.registered);
    assert_eq!(status.alarms, 1);
    assert!(status.catalogs >= 2);
    assert_eq!(status.unanswered, 0);
    assert_eq!(platform.counters.refusals().map(|(_, n)| n).sum::<u64>(), 0);
    device.stop().await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_nothing_is_registered() {
    let mut platform = Platform::start(Duration::from_secs(600)).await;
    let device = SimulatedDevice::start(
        DeviceSpec::nvr(code(NVR), "not-the-password", 4),
        platform.address.clone(),
    )
    .await
    .unwrap();
    let status = device
        .wait_for(Duration::from_secs(10), |s| s.refused > 0)
        .await
        .expect("refused");
    assert_eq!(status.last_refusal, Some(403));
    assert!(!status.registered);
    assert_eq!(status.registrations, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(platform.inputs.try_recv().is_err(), "nothing handed on");
    assert_eq!(platform.counters.refused_count("auth"), 1);
}

#[tokio::test]
async fn many_devices_register_at_once_from_their_own_addresses() {
    let mut platform = Platform::start(Duration::from_secs(600)).await;
    let mut devices = Vec::new();
    for i in 0..200u32 {
        let id = code(&format!("150102000011800{:05}", i + 1));
        let mut spec = DeviceSpec::nvr(id, PASSWORD, 2);
        // One address each, as NVRs on a network: the platform limits REGISTERs per
        // address.
        spec.bind = SocketAddr::from(([127, 1, (i / 250) as u8, (i % 250 + 1) as u8], 0));
        devices.push(
            SimulatedDevice::start(spec, platform.address.clone())
                .await
                .unwrap(),
        );
    }
    let mut registered = std::collections::HashSet::new();
    while registered.len() < devices.len() {
        let d = platform
            .next(|i| match i {
                GbInput::Registered { device, .. } => Some(device),
                _ => None,
            })
            .await;
        registered.insert(d);
    }
    for d in &devices {
        assert!(d
            .wait_for(Duration::from_secs(5), |s| s.registered)
            .await
            .is_some());
    }
    assert_eq!(
        channel_code(&devices[0].id(), 131, 0).as_str(),
        "15010200001310000101"
    );
}
