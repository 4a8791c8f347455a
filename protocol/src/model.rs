//! The shared vocabulary: device kinds, device and gateway states, school types.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a device is for. Coverage counts alarm links and video links separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// A one-button alarm, alarm panel or alarm intercom linked to the police.
    Alarm,
    /// An IP camera (a video link).
    Camera,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 2] = [DeviceKind::Alarm, DeviceKind::Camera];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Alarm => "alarm",
            DeviceKind::Camera => "camera",
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device's state as judged by its agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// Reachable and working.
    Up,
    /// Reachable but impaired (high latency, low frame rate or bitrate).
    Degraded,
    /// Not reachable, after the configured number of failed probes.
    Down,
    /// Not probed yet, or its gateway is not online.
    Unknown,
}

impl DeviceState {
    pub const ALL: [DeviceState; 4] = [
        DeviceState::Up,
        DeviceState::Degraded,
        DeviceState::Down,
        DeviceState::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::Up => "up",
            DeviceState::Degraded => "degraded",
            DeviceState::Down => "down",
            DeviceState::Unknown => "unknown",
        }
    }

    /// Whether the link counts as networked: up, or reachable but impaired.
    pub fn is_reachable(self) -> bool {
        matches!(self, DeviceState::Up | DeviceState::Degraded)
    }

    /// One-letter code used in the heartbeat's compact state digest.
    pub fn code(self) -> char {
        match self {
            DeviceState::Up => 'U',
            DeviceState::Degraded => 'G',
            DeviceState::Down => 'D',
            DeviceState::Unknown => 'N',
        }
    }

    pub fn from_code(c: char) -> Option<Self> {
        Some(match c {
            'U' => DeviceState::Up,
            'G' => DeviceState::Degraded,
            'D' => DeviceState::Down,
            'N' => DeviceState::Unknown,
            _ => return None,
        })
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for DeviceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A campus gateway's state as judged by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayState {
    /// Its session is alive and heartbeats arrive.
    Online,
    /// Heartbeats stopped arriving without a death (frozen gateway, cut link).
    Stale,
    /// Its session ended: a death (Last Will or clean shutdown) of the current epoch.
    Offline,
    /// Registered but never reported.
    NeverSeen,
}

impl GatewayState {
    pub const ALL: [GatewayState; 4] = [
        GatewayState::Online,
        GatewayState::Stale,
        GatewayState::Offline,
        GatewayState::NeverSeen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GatewayState::Online => "online",
            GatewayState::Stale => "stale",
            GatewayState::Offline => "offline",
            GatewayState::NeverSeen => "never_seen",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for GatewayState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The school types coverage is split by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchoolType {
    Kindergarten,
    Primary,
    Secondary,
    Other,
}

impl SchoolType {
    pub const ALL: [SchoolType; 4] = [
        SchoolType::Kindergarten,
        SchoolType::Primary,
        SchoolType::Secondary,
        SchoolType::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SchoolType::Kindergarten => "kindergarten",
            SchoolType::Primary => "primary",
            SchoolType::Secondary => "secondary",
            SchoolType::Other => "other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for SchoolType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_codes_round_trip() {
        for s in DeviceState::ALL {
            assert_eq!(DeviceState::from_code(s.code()), Some(s));
            assert_eq!(DeviceState::parse(s.as_str()), Some(s));
        }
        assert_eq!(DeviceState::from_code('x'), None);
    }

    #[test]
    fn degraded_counts_as_reachable_and_down_does_not() {
        assert!(DeviceState::Degraded.is_reachable());
        assert!(!DeviceState::Down.is_reachable());
        assert!(!DeviceState::Unknown.is_reachable());
    }

    #[test]
    fn names_parse_back() {
        for t in SchoolType::ALL {
            assert_eq!(SchoolType::parse(t.as_str()), Some(t));
        }
        for g in GatewayState::ALL {
            assert_eq!(GatewayState::parse(g.as_str()), Some(g));
        }
    }
}
