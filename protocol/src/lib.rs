//! The campuswatch wire contract, shared by the gateway agent and the server.
//!
//! Topics live under `cw/v1/{region}/{campus}/…`; payloads are JSON with a schema version.
//! Gateways publish [`Message`]s; servers send them [`Command`]s.
//! `docs/PROTOCOL.md` is the normative text; this crate is its executable form. It does
//! no I/O, so both sides and every test agree on one definition of a valid message.

pub mod cause;
pub mod command;
pub mod ids;
pub mod message;
pub mod model;
pub mod topic;

pub use cause::{CauseCode, CauseParam, CAUSE_CODE_SCHEMA_VERSION, CODES as CAUSE_CODES};
pub use command::{
    decode_command, Command, CommandKind, CommandTopic, Rebirth, COMMAND_SCHEMA_VERSION,
};
pub use ids::{CampusId, DeviceId, IdError, RegionCode, RegionLevel};
pub use message::{
    decode, Birth, Death, DeathReason, DecodeError, DeviceInfo, DeviceReport, Event, Heartbeat,
    HostHealth, Measurements, Message, ServerState, ServerStatus, BASE_SCHEMA_VERSION, MAX_DEVICES,
    MAX_INFO_BYTES, MAX_PAYLOAD_BYTES, MAX_TEXT_BYTES, OLDEST_SCHEMA_VERSION, SCHEMA_VERSION,
};
pub use model::{DeviceKind, DeviceState, GatewayState, SchoolType};
pub use topic::{campus_filters, server_state_topic, CampusTopic, MessageKind, TOPIC_ROOT};

/// The time type used in every payload (RFC 3339 on the wire).
pub type Timestamp = chrono::DateTime<chrono::Utc>;
