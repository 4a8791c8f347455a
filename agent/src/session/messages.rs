//! The messages the session sends about the campus: its birth (the whole inventory) and
//! its heartbeats (host health and the digest of device states).

use super::*;

impl Session {
    /// The birth of session `epoch`: the whole inventory as it is now.
    pub(super) fn birth_message(&self, epoch: u64) -> Birth {
        let snap = self.inventory.snapshot();
        let mut birth = Birth {
            v: BASE_SCHEMA_VERSION,
            campus: self.config.campus.clone(),
            region: self.config.region,
            epoch,
            at: chrono::Utc::now(),
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            config_digest: self.digest.clone(),
            heartbeat_interval_ms: (self.config.heartbeat_interval.as_millis() as u64)
                .clamp(1, 3_600_000),
            last_event_id: snap.last_event_id,
            devices: snap.devices,
            dropped_events: self.spool.dropped_total(),
        };
        // Version 3 or 4 only when it says something version 2 cannot (drops, cause
        // codes), and never newer than the server reads: older servers keep reading it.
        birth.v = birth.needed_version();
        if self.config.mqtt.schema_version < CAUSE_CODE_SCHEMA_VERSION {
            birth = birth.without_cause_codes();
        }
        if self.config.mqtt.schema_version < 3 {
            birth.dropped_events = 0;
            birth.v = birth.needed_version();
        }
        birth
    }

    /// Heartbeat `seq` of session `epoch`: host health and the one-letter digest of the
    /// device states, never the inventory itself. Every byte is sent every few seconds
    /// over links that may be metered, so the time is to the second and percentages to
    /// a tenth (finer figures are noise, and cost about 20 bytes a heartbeat).
    pub(super) fn heartbeat_message(&self, epoch: u64, seq: u64) -> Heartbeat {
        use chrono::SubsecRound;
        let (states, last_event_id) = self.inventory.states();
        let mut health = self.health.sample(&self.config.state_dir);
        for pct in [
            &mut health.cpu_pct,
            &mut health.mem_used_pct,
            &mut health.disk_used_pct,
        ] {
            *pct = (*pct * 10.0).round() / 10.0;
        }
        Heartbeat {
            v: BASE_SCHEMA_VERSION,
            campus: self.config.campus.clone(),
            region: self.config.region,
            epoch,
            seq,
            at: chrono::Utc::now().trunc_subsecs(0),
            health,
            states,
            last_event_id,
        }
    }
}
