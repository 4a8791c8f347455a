//! The demo's GB/T 28181 side: simulated NVRs (`gb28181::simulator`) registering to the
//! demo server's platform for one campus in five, listed in those campuses' registry
//! entries, with camera channels as many as the campus expects cameras. A few are
//! scripted to show what the platform view adds: NVRs with half their channels OFF
//! while the agent sees the cameras up ("uplink broken"), one campus whose cameras the
//! agent cannot reach while its NVR says they are ON ("agent blind"), one NVR that stops
//! its keepalives for a while (offline after 3 intervals, online again when it resumes),
//! one-button alarms now and then, and one NVR no campus lists (for review).

use std::time::Duration;

use campuswatch_protocol::{CampusId, RegionCode};
use campuswatch_server::gb28181::simulator::{DeviceSpec, PlatformAddress, SimulatedDevice};
use campuswatch_server::gb28181::{ChannelStatus, GbCode};
use campuswatch_server::registry::RegistryEntry;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// One campus in this many has a simulated NVR.
const EVERY: usize = 5;
/// Devices start this far apart: the platform takes 10 REGISTERs a second from one
/// address (each registration is two), and the demo's devices share 127.0.0.1.
const START_SPACING: Duration = Duration::from_millis(250);
/// The NVR that goes silent stops its keepalives this long after the demo starts, and
/// every `SILENT_CYCLE` after; it resumes `SILENT_FOR` later.
const SILENT_AFTER: u64 = 60;
const SILENT_FOR: u64 = 180;
const SILENT_CYCLE: u64 = 600;
/// About one one-button alarm in this many seconds.
const ALARM_EVERY: f64 = 120.0;

/// What a simulated NVR shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Its channels agree with the campus's agent.
    Agrees,
    /// Half its channels are OFF while the agent sees the cameras up.
    UplinkBroken,
    /// Its channels are ON while the agent's cameras are down (the demo faults them).
    AgentBlind,
    /// It stops its keepalives for a while, now and then.
    GoesSilent,
    /// No campus lists it: shown for review.
    Unlisted,
}

/// The scripted roles of the first NVRs, in campus order; the rest agree.
const SCRIPT: [Role; 5] = [
    Role::UplinkBroken,
    Role::AgentBlind,
    Role::Agrees,
    Role::GoesSilent,
    Role::UplinkBroken,
];

pub struct Planned {
    pub campus: Option<CampusId>,
    pub role: Role,
    spec: DeviceSpec,
    /// Its one-button alarm input channel.
    button: GbCode,
}

/// The demo's NVRs: codes put in the registry entries of one campus in five (the code's
/// division is the campus's county), and one more that no campus lists.
pub struct Plan {
    pub devices: Vec<Planned>,
}

/// An NVR's code in `county`: centre `{county}00`, industry 00, type 118, network 0.
fn nvr_code(county: RegionCode, serial: usize) -> Option<GbCode> {
    GbCode::parse(&format!("{county}00001180{serial:06}")).ok()
}

impl Plan {
    /// Assigns NVRs to the registry's campuses, changing their entries.
    pub fn new(registry: &mut [RegistryEntry], password: &str, keepalive: Duration) -> Plan {
        let mut devices = Vec::new();
        let mut serial = 0;
        for entry in registry.iter_mut().step_by(EVERY) {
            serial += 1;
            let Some(code) = nvr_code(entry.region, serial) else {
                continue;
            };
            let role = SCRIPT.get(devices.len()).copied().unwrap_or(Role::Agrees);
            let mut spec = DeviceSpec::nvr(code, password, entry.expected_cameras as usize);
            spec.keepalive = keepalive;
            if role == Role::UplinkBroken {
                let off = spec.channels.len().div_ceil(2);
                for ch in spec.channels.iter_mut().take(off) {
                    ch.status = ChannelStatus::Off;
                }
            }
            let (spec, button) = spec.with_alarm_input();
            entry.gb_device_ids = vec![code];
            devices.push(Planned {
                campus: Some(entry.campus.clone()),
                role,
                spec,
                button,
            });
        }
        // One NVR no campus lists, in the first campus's county.
        if let Some(code) = registry.first().and_then(|e| nvr_code(e.region, 900_001)) {
            let mut spec = DeviceSpec::nvr(code, password, 4);
            spec.keepalive = keepalive;
            let (spec, button) = spec.with_alarm_input();
            devices.push(Planned {
                campus: None,
                role: Role::Unlisted,
                spec,
                button,
            });
        }
        Plan { devices }
    }

    pub fn count(&self, role: Role) -> usize {
        self.devices.iter().filter(|d| d.role == role).count()
    }

    /// The campuses whose cameras the demo must fault for good (agent blind).
    pub fn blind_campuses(&self) -> Vec<CampusId> {
        self.devices
            .iter()
            .filter(|d| d.role == Role::AgentBlind)
            .filter_map(|d| d.campus.clone())
            .collect()
    }

    /// Starts the devices one after another and plays their script until `shutdown`;
    /// then they go away (no unregistration: the demo's next start finds them as a
    /// restarted platform does).
    pub async fn run(self, platform: PlatformAddress, seed: u64, shutdown: CancellationToken) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut running: Vec<(Role, GbCode, SimulatedDevice)> = Vec::new();
        let mut spacing = tokio::time::interval(START_SPACING);
        for planned in self.devices {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = spacing.tick() => {}
            }
            match SimulatedDevice::start(planned.spec, platform.clone()).await {
                Ok(d) => running.push((planned.role, planned.button, d)),
                Err(e) => warn!(error = %e, "Demo: a simulated GB/T 28181 device could not start."),
            }
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut n: u64 = 0;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => n += 1,
            }
            for (role, _, d) in &running {
                if *role != Role::GoesSilent {
                    continue;
                }
                if n % SILENT_CYCLE == SILENT_AFTER {
                    info!(device = %d.id(), "Demo: a GB/T 28181 NVR stops its keepalives.");
                    d.set_keepalives(false);
                } else if n % SILENT_CYCLE == SILENT_AFTER + SILENT_FOR {
                    d.set_keepalives(true);
                }
            }
            if rng.random_bool(1.0 / ALARM_EVERY) {
                let listed: Vec<_> = running
                    .iter()
                    .filter(|(role, ..)| *role != Role::Unlisted)
                    .collect();
                if !listed.is_empty() {
                    let (_, button, d) = listed[rng.random_range(0..listed.len())];
                    info!(device = %d.id(), "Demo: a one-button alarm.");
                    d.alarm(*button, "一键报警");
                }
            }
        }
    }
}
