//! What the GB/T 28181 side tells the rest of the server: device and channel codes, the
//! channels a catalog lists, alarms, and the inputs the listener hands to the engine.

use std::fmt;
use std::net::SocketAddr;

use campuswatch_protocol::{RegionCode, Timestamp};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 20-digit GB/T 28181 code of a device, a channel or a platform:
/// digits 1–8 the centre (1–6 the administrative division), 9–10 the industry,
/// 11–13 the type, 14 the network, 15–20 a serial number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GbCode([u8; 20]);

/// A code that is not 20 digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("GB/T 28181 code {0:?} is not 20 digits (such as 34020000001320000001)")]
pub struct CodeError(pub String);

impl GbCode {
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        let bytes = s.as_bytes();
        if bytes.len() != 20 || !bytes.iter().all(u8::is_ascii_digit) {
            // Bounded, so a hostile value does not make a long error line.
            let shown: String = s.chars().take(40).collect();
            return Err(CodeError(shown));
        }
        let mut code = [0u8; 20];
        code.copy_from_slice(bytes);
        Ok(Self(code))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("00000000000000000000")
    }

    /// The administrative division of digits 1–6, when they are one.
    pub fn division(&self) -> Option<RegionCode> {
        RegionCode::parse(&self.as_str()[..6]).ok()
    }

    /// The type code of digits 11–13 (131 camera, 132 network camera, 134 alarm input,
    /// 111 DVR, 118 NVR, 200 platform, …).
    pub fn type_code(&self) -> u16 {
        self.0[10..13]
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'))
    }

    /// What a channel with this code is, by its type code.
    pub fn channel_kind(&self) -> ChannelKind {
        match self.type_code() {
            131 | 132 => ChannelKind::Camera,
            134 => ChannelKind::AlarmInput,
            _ => ChannelKind::Other,
        }
    }
}

impl fmt::Display for GbCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for GbCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GbCode({})", self.as_str())
    }
}

impl std::str::FromStr for GbCode {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for GbCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for GbCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        GbCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What a channel is, by its code's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// 131 camera, 132 network camera: counts for video networking.
    Camera,
    /// 134 alarm input device: a one-button alarm, say.
    AlarmInput,
    Other,
}

/// A channel's `Status` in a catalog. GB/T 28181 devices write `ON`/`OFF`; some write
/// `OK`/`ONLINE` or `OFFLINE`, read as the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelStatus {
    On,
    Off,
}

/// How a device reaches the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// One `Item` of a catalog answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelInfo {
    pub id: GbCode,
    pub name: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub status: ChannelStatus,
    /// `ParentID`, when it is a code (a cascade lists channels under devices).
    pub parent: Option<GbCode>,
}

/// An `Alarm` notification's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmInfo {
    /// The alarming device or channel (`DeviceID` of the body).
    pub source: GbCode,
    /// `AlarmPriority`: 1 first (most urgent) to 4.
    pub priority: Option<u8>,
    /// `AlarmMethod`: 1 telephone, 2 device, 3 SMS, 4 GPS, 5 video, 6 fault, 7 other.
    pub method: Option<u8>,
    /// `Info/AlarmType`, when given.
    pub alarm_type: Option<u16>,
    /// `AlarmTime` as the device wrote it, read in the server's zone; `None` when absent
    /// or unreadable (the time it arrived stands instead).
    pub time: Option<Timestamp>,
    pub description: Option<String>,
}

/// What the listener hands to the engine. The engine applies each at the time it
/// arrives.
#[derive(Debug, Clone, PartialEq)]
pub enum GbInput {
    /// A REGISTER (first or refresh) was authenticated and accepted.
    Registered {
        device: GbCode,
        address: SocketAddr,
        transport: Transport,
        /// The registration lasts this many seconds from now.
        expires_secs: u32,
        /// Keepalives are expected this often (the device's or the configured interval).
        keepalive_secs: u32,
    },
    /// A REGISTER with `Expires: 0`: the device left.
    Unregistered { device: GbCode },
    /// A keepalive `MESSAGE` from a registered device; `ok` is its `Status` (`OK`).
    Keepalive { device: GbCode, ok: bool },
    /// A catalog answer, put together from its parts. `complete` is false when parts
    /// were still missing when the listener stopped waiting: the channels listed are
    /// updated, the others kept as they were.
    Catalog {
        device: GbCode,
        channels: Vec<ChannelInfo>,
        complete: bool,
    },
    /// An `Alarm` notification from a registered device.
    Alarm { device: GbCode, alarm: AlarmInfo },
}

impl GbInput {
    pub fn device(&self) -> &GbCode {
        match self {
            GbInput::Registered { device, .. }
            | GbInput::Unregistered { device }
            | GbInput::Keepalive { device, .. }
            | GbInput::Catalog { device, .. }
            | GbInput::Alarm { device, .. } => device,
        }
    }
}

/// A registration the server knew of when it stopped: the listener takes it back at
/// start, so keepalives of devices registered before a restart are accepted and their
/// catalogs queried without waiting for them to register again.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub device: GbCode,
    pub address: SocketAddr,
    pub transport: Transport,
    pub expires_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_twenty_digits_with_a_division_and_a_type() {
        let c = GbCode::parse("34020000001320000001").unwrap();
        assert_eq!(c.division(), Some(RegionCode::parse("340200").unwrap()));
        assert_eq!(c.type_code(), 132);
        assert_eq!(c.channel_kind(), ChannelKind::Camera);
        assert_eq!(
            GbCode::parse("34020000001340000001")
                .unwrap()
                .channel_kind(),
            ChannelKind::AlarmInput
        );
        assert_eq!(
            GbCode::parse("00000000001180000001").unwrap().division(),
            None
        );
        for bad in [
            "",
            "3402000000132000000",
            "340200000013200000011",
            "3402000000132000000x",
            "３４０２０００００００１３２００００００１",
        ] {
            assert!(GbCode::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, "\"34020000001320000001\"");
        assert_eq!(serde_json::from_str::<GbCode>(&json).unwrap(), c);
    }
}
