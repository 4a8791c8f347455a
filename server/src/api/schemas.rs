//! The OpenAPI schemas of the types the API shows that are not its own: the protocol's
//! identifiers, enums and records (another crate: fields of the API's types name these
//! with `#[schema(value_type = schemas::…)]`), and the server's records that the API
//! passes through as they are (alerts, coverage blocks, events, …), which get their
//! `ToSchema` here from a description of the same shape. The enums' values are taken
//! from the code (`ALL` and `as_str`), so they cannot drift; the records' shapes are
//! checked against real answers by `server/tests/openapi.rs`.

#![allow(
    dead_code,
    reason = "the description types are read by utoipa, never built"
)]

use std::borrow::Cow;

use campuswatch_protocol as protocol;
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// A string schema that only takes `values`.
pub(super) fn string_enum<'a>(
    values: impl IntoIterator<Item = &'a str>,
    description: &str,
) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.into_iter().map(Value::from)))
        .description(Some(description))
}

/// Declares unit types that stand for another crate's types in the document: each has the
/// schema its expression builds, under its own name.
macro_rules! described {
    ($( $(#[$meta:meta])* $name:ident => $schema:expr; )+) => {$(
        $(#[$meta])*
        pub(super) struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema.into()
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    )+};
}

/// Gives server types the schema of a description of their shape (in [`doc`]).
macro_rules! described_by {
    ($( $real:ty => $doc:ty; )+) => {$(
        impl PartialSchema for $real {
            fn schema() -> RefOr<Schema> {
                <$doc as PartialSchema>::schema()
            }
        }

        impl ToSchema for $real {
            fn name() -> Cow<'static, str> {
                <$doc as ToSchema>::name()
            }

            fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
                <$doc as ToSchema>::schemas(schemas)
            }
        }
    )+};
}

fn id_schema(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$"))
        .min_length(Some(1))
        .max_length(Some(64))
        .description(Some(description))
}

described! {
    CampusId => id_schema(
        "A campus id: 1 to 64 characters of A-Z, a-z, 0-9, `-`, `_` or `.`, not starting \
         with `.`.",
    );
    DeviceId => id_schema(
        "A device id, unique within its campus: 1 to 64 characters of A-Z, a-z, 0-9, `-`, \
         `_` or `.`, not starting with `.`.",
    );
    RegionCode => ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^(0[1-9]|[1-9][0-9])[0-9]{4}$"))
        .min_length(Some(6))
        .max_length(Some(6))
        .examples(["150102"])
        .description(Some(
            "A six-digit administrative division code: `150000` a province, `150100` a city \
             (prefecture or league), `150102` a county-level division.",
        ));
    RegionLevel => string_enum(
        [
            protocol::RegionLevel::Province,
            protocol::RegionLevel::City,
            protocol::RegionLevel::County,
        ]
        .map(super::coverage::level_name),
        "The level of a region node.",
    );
    SchoolType => string_enum(
        protocol::SchoolType::ALL.map(protocol::SchoolType::as_str),
        "The school types coverage is split by.",
    );
    GatewayState => string_enum(
        protocol::GatewayState::ALL.map(protocol::GatewayState::as_str),
        "A campus gateway's state as judged by the server. `online`: its session is alive \
         and heartbeats arrive. `stale`: heartbeats stopped arriving without a death (frozen \
         gateway, cut link). `offline`: its session ended (Last Will or clean shutdown). \
         `never_seen`: registered but never reported.",
    );
    DeviceKind => string_enum(
        protocol::DeviceKind::ALL.map(protocol::DeviceKind::as_str),
        "What a device is for: `alarm` (one-button alarm, alarm panel or intercom linked to \
         the police) or `camera` (an IP camera, a video link).",
    );
    DeviceState => string_enum(
        protocol::DeviceState::ALL.map(protocol::DeviceState::as_str),
        "A device's state. `up`: reachable and working. `degraded`: reachable but impaired \
         (high latency, low frame rate or bitrate). `down`: not reachable. `unknown`: not \
         probed yet, or its gateway is not online.",
    );
    Measurements => ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double))),
        ))
        .description(Some(
            "Numeric probe measurements by name (`latency_ms`, `http_status`, `frame_rate`, …); \
             empty when there are none.",
        ));
    Weekday => string_enum(
        ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
        "A day of the week.",
    );
    /// `YYYY-MM-DD`, a local date.
    Date => ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)));
    // The values of query parameters, inlined where they are used.
    AlertStateFilter => string_enum(
        crate::model::AlertState::ALL.iter().map(|s| s.as_str()).chain(["all"]),
        "An alert state, or `all`.",
    )
    .default(Some("all".into()));
    IncidentStateFilter => string_enum(
        crate::monitor::IncidentState::ALL.iter().map(|s| s.as_str()).chain(["all"]),
        "An incident state, or `all`.",
    )
    .default(Some("all".into()));
    ImportMode => string_enum(["upsert", "replace"], "How an import changes the registry.")
        .default(Some("upsert".into()));
    Format => string_enum(["json", "csv"], "An answer's format.").default(Some("json".into()));
    Period => string_enum(["day", "week", "month"], "A calendar period.");
    CsvTable => string_enum(["summary", "not_networked"], "A CSV table of the coverage report.")
        .default(Some("summary".into()));
    UtcOffset => ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^[+-]\d{2}:\d{2}$"))
        .default(Some("+08:00".into()));
}

impl ToSchema for crate::monitor::IncidentState {}

impl PartialSchema for crate::monitor::IncidentState {
    fn schema() -> RefOr<Schema> {
        string_enum(
            Self::ALL.iter().map(|s| s.as_str()),
            "An incident is open until the last of its gateways is back.",
        )
        .into()
    }
}

impl ToSchema for crate::auth::Role {}

impl PartialSchema for crate::auth::Role {
    fn schema() -> RefOr<Schema> {
        use crate::auth::Role;
        string_enum(
            [Role::Viewer, Role::Operator, Role::Admin].map(Role::as_str),
            "`viewer` reads; `operator` also acknowledges alerts and plans maintenance; \
             `admin` also imports the registry, manages users and tokens and reads the \
             audit log.",
        )
        .into()
    }
}

described_by! {
    crate::monitor::Alert => doc::Alert;
    crate::monitor::Acknowledgement => doc::Acknowledgement;
    crate::monitor::coverage::CoverageBlock => doc::CoverageBlock;
    crate::monitor::coverage::DeviceCoverage => doc::DeviceCoverage;
    crate::monitor::coverage::KindCoverage => doc::KindCoverage;
    crate::monitor::maintenance::Scope => doc::MaintenanceScope;
    crate::monitor::maintenance::Schedule => doc::MaintenanceSchedule;
    crate::store::StoredTransition => doc::Event;
    crate::monitor::Transition => doc::Transition;
    crate::store::DailyCoverage => doc::DailyCoverage;
    crate::reports::Figures => doc::AvailabilityFigures;
    crate::registry::RegistryEntry => doc::RegistryEntry;
    crate::registry::LineError => doc::LineError;
    crate::live::LiveEvent => doc::LiveEvent;
    crate::store::UserInfo => doc::User;
    crate::store::TokenInfo => doc::ApiToken;
    crate::store::AuditEntry => doc::AuditEntry;
}

/// Descriptions of the shapes of types that are not the API's own, field by field as
/// they serialize.
pub(super) mod doc {
    use utoipa::ToSchema;

    use super::{CampusId, DeviceId, Measurements, RegionCode, Weekday};
    use crate::model::{AlertKind, AlertState, Severity};

    /// A cause as a stable code with parameters: the part that judged, then what it found
    /// (`tcp.refused`, `http.status` with `got` and `expected`, `rtsp.unauthorized`,
    /// `dc09.nak`, `gateway.no_heartbeat` with `seconds`, `campus.video_down` with `down`,
    /// `monitored`, `needed` and `expected`). docs/PROTOCOL.md §4.1 lists every code; a
    /// reader that does not know one shows `cause` instead.
    #[derive(ToSchema)]
    pub(in crate::api) struct CauseCode {
        code: String,
        /// Parameters by name, each a number or a string; absent when there are none.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<Object>, nullable = false)]
        params: Option<()>,
    }

    /// Host health measured on the gateway.
    #[derive(ToSchema)]
    pub(in crate::api) struct HostHealth {
        /// CPU use, percent.
        cpu_pct: f32,
        /// Memory in use, percent.
        mem_used_pct: f32,
        /// Disk space in use, percent.
        disk_used_pct: f32,
        /// Seconds since the gateway host booted.
        uptime_s: u64,
    }

    /// A device's identity as the device itself reports it (ONVIF device information).
    /// Every field is optional; at least one is present.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub(in crate::api) struct DeviceInfo {
        /// Manufacturer, e.g. `HIKVISION`.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        manufacturer: Option<String>,
        /// Model, e.g. `DS-2CD2143G2-I`.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        model: Option<String>,
        /// Firmware version, e.g. `V5.7.3 build 220112`.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        firmware: Option<String>,
        /// Serial number.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        serial: Option<String>,
        /// Hardware id.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(nullable = false)]
        hardware: Option<String>,
    }

    /// A flag for one dropped link: a campus's gateway, an alarm device, a camera, or its
    /// video as a whole.
    #[derive(ToSchema)]
    pub(in crate::api) struct Alert {
        /// Alert id.
        id: u64,
        campus: CampusId,
        region: RegionCode,
        /// The alarm device or camera; null for the gateway itself and for the campus's
        /// video as a whole.
        #[schema(required)]
        device: Option<DeviceId>,
        /// The link an alert is about: a campus's gateway, an alarm device, a camera, or
        /// the campus's video as a whole (more than a share of its cameras down).
        kind: AlertKind,
        /// `open`: a dropped link. `suppressed`: a device alert whose gateway is not
        /// online (the gateway's alert speaks for it). `resolved`: the link is back, or no
        /// longer monitored.
        state: AlertState,
        /// How urgent: the gateway, the alarm link and a campus's video are critical; one
        /// camera is a warning.
        severity: Severity,
        /// When the link dropped.
        #[schema(value_type = String, format = DateTime)]
        since: (),
        /// When the dropped link became an alert (after its hold-down time).
        #[schema(value_type = String, format = DateTime)]
        opened_at: (),
        /// Why, if known, in English words.
        #[schema(required)]
        cause: Option<String>,
        /// The same as a stable code with parameters, for saying it in any language; null
        /// when the agent sent none (agents before protocol schema version 4).
        #[schema(required)]
        cause_code: Option<CauseCode>,
        /// When the alert was resolved; null while open or suppressed.
        #[schema(required, value_type = Option<String>, format = DateTime)]
        resolved_at: (),
        /// The operator's acknowledgement; null if none.
        #[schema(required)]
        acknowledged: Option<Acknowledgement>,
        /// The link changes state again and again; the alert stays open until it has
        /// been stable for the flapping window.
        flapping: bool,
        /// Whether the operators were told it opened (alone or in a regional incident).
        notified: bool,
        /// The regional incident it is part of, if any.
        #[schema(required)]
        incident: Option<u64>,
    }

    /// Who acknowledged an alert, when, and why; it stays acknowledged until it resolves.
    /// Acknowledging again adds to the alert's history of acknowledgements.
    #[derive(ToSchema)]
    pub(in crate::api) struct Acknowledgement {
        /// Who acknowledged it.
        by: String,
        /// When.
        #[schema(value_type = String, format = DateTime)]
        at: (),
        /// Why, or what is being done.
        #[schema(required)]
        comment: Option<String>,
    }

    /// Coverage figures of one node (or one school type of it), counting registered
    /// campuses only. Rates are null when the denominator is zero: "no campuses
    /// registered" is not "0 % networked".
    #[derive(ToSchema)]
    pub(in crate::api) struct CoverageBlock {
        /// Registered campuses.
        registered: u64,
        /// Registered campuses whose gateway is online.
        reporting: u64,
        /// Campuses whose alarm link counts as networked.
        alarm_networked: u64,
        /// Campuses whose video (camera) link counts as networked.
        video_networked: u64,
        /// Campuses networked for both alarm and video.
        fully_networked: u64,
        /// `reporting / registered`.
        #[schema(required, minimum = 0, maximum = 1)]
        reporting_rate: Option<f64>,
        /// `alarm_networked / registered`.
        #[schema(required, minimum = 0, maximum = 1)]
        alarm_networked_rate: Option<f64>,
        /// `video_networked / registered`.
        #[schema(required, minimum = 0, maximum = 1)]
        video_networked_rate: Option<f64>,
        /// `fully_networked / registered`.
        #[schema(required, minimum = 0, maximum = 1)]
        fully_networked_rate: Option<f64>,
        devices: DeviceCoverage,
        video_views: VideoViews,
    }

    /// Video networking by each view (docs/gb28181.md); `video_networked` counts the one
    /// in force (`gb28181.video_view`).
    #[derive(ToSchema)]
    pub(in crate::api) struct VideoViews {
        /// Campuses whose agent sees enough cameras up.
        agent_networked: u64,
        /// Campuses whose registry entry lists GB/T 28181 devices.
        platform_campuses: u64,
        /// Of those, campuses with enough camera channels ON on the video platform.
        platform_networked: u64,
        /// Cameras up on campus but not on the platform (gateway online): the uplink or
        /// the platform registration is broken.
        uplink_broken: u64,
        /// Up on the platform but not seen by the agent (gateway online): the agent is
        /// blind.
        agent_blind: u64,
    }

    /// Device-level coverage per kind.
    #[derive(ToSchema)]
    pub(in crate::api) struct DeviceCoverage {
        alarm: KindCoverage,
        camera: KindCoverage,
    }

    /// Device-level figures for one kind. `up` is counted per campus up to the number it
    /// is expected to have, so a campus with extra cameras does not hide another's missing
    /// ones.
    #[derive(ToSchema)]
    pub(in crate::api) struct KindCoverage {
        /// Devices expected by the registry.
        expected: u64,
        /// Expected devices that are up or degraded.
        up: u64,
        /// `up / expected`; null when nothing is expected.
        #[schema(required, minimum = 0, maximum = 1)]
        rate: Option<f64>,
    }

    /// What a maintenance window covers: every campus of a region (county, city or
    /// province), one campus (its gateway and devices), or one device.
    #[derive(ToSchema)]
    #[serde(tag = "scope", rename_all = "snake_case")]
    pub(in crate::api) enum MaintenanceScope {
        /// Every campus in the region.
        Region { region: RegionCode },
        /// One campus: its gateway and all its devices.
        Campus { campus: CampusId },
        /// One device of a campus.
        Device { campus: CampusId, device: DeviceId },
    }

    /// When a maintenance window applies: `once` from `start` to `end`; or `daily` from
    /// local time `at` for `minutes`, on `weekdays` (all if absent), from the date `from`
    /// to `until` (each optional).
    #[derive(ToSchema)]
    #[serde(tag = "repeat", rename_all = "snake_case")]
    pub(in crate::api) enum MaintenanceSchedule {
        /// Once, from `start` to `end`.
        Once {
            /// When it begins.
            #[schema(value_type = String, format = DateTime)]
            start: (),
            /// When it ends.
            #[schema(value_type = String, format = DateTime)]
            end: (),
        },
        /// Every day (or only on `weekdays`).
        Daily {
            /// Local time of day it begins, `HH:MM:SS` (or `HH:MM`).
            #[schema(value_type = String, pattern = r"^\d{2}:\d{2}(:\d{2})?$")]
            at: (),
            /// Length of each occurrence, in minutes (at most a week).
            #[schema(minimum = 1, maximum = 10080)]
            minutes: u32,
            /// Only on these days (of the occurrence's start); every day if absent.
            #[serde(default)]
            weekdays: Vec<Weekday>,
            /// First day.
            #[serde(default)]
            #[schema(value_type = Option<super::Date>)]
            from: (),
            /// Last day.
            #[serde(default)]
            #[schema(value_type = Option<super::Date>)]
            until: (),
        },
    }

    /// A stored transition with its row id and when the server received it.
    #[derive(ToSchema)]
    pub(in crate::api) struct Event {
        /// Row id.
        id: i64,
        #[serde(flatten)]
        transition: Transition,
        /// When the server stored it.
        #[schema(value_type = String, format = DateTime)]
        received_at: (),
    }

    /// One state change of a link: a device event from a gateway agent, or a gateway
    /// transition judged by the server.
    #[derive(ToSchema)]
    pub(in crate::api) struct Transition {
        campus: CampusId,
        region: RegionCode,
        /// The alarm device or camera; null for a gateway transition.
        #[schema(required)]
        device: Option<DeviceId>,
        kind: AlertKind,
        /// The previous state: a gateway state (`online`, `stale`, `offline`,
        /// `never_seen`) for `kind: gateway`, else a device state (`up`, `degraded`,
        /// `down`, `unknown`).
        from: String,
        /// The new state, as `from`.
        to: String,
        /// When the transition happened (for device events, the agent's time; replays
        /// keep their times).
        #[schema(value_type = String, format = DateTime)]
        at: (),
        /// Why, if known, in English words.
        #[schema(required)]
        cause: Option<String>,
        /// The same as a stable code with parameters; null when none was sent.
        #[schema(required)]
        cause_code: Option<CauseCode>,
        /// The agent's event id; null for gateway transitions.
        #[schema(required)]
        event_id: Option<u64>,
        measurements: Measurements,
    }

    /// One local day of coverage, averaged over the day.
    #[derive(ToSchema)]
    pub(in crate::api) struct DailyCoverage {
        /// The local date.
        #[schema(value_type = super::Date)]
        date: (),
        /// Registered campuses.
        registered: u64,
        /// Campuses with counted time that day.
        observed: u64,
        /// Average number of campuses reporting; null when none was observed.
        #[schema(required)]
        reporting: Option<f64>,
        /// Average number of campuses alarm networked; null when none was observed.
        #[schema(required)]
        alarm_networked: Option<f64>,
        /// Average number of campuses video networked; null when none was observed.
        #[schema(required)]
        video_networked: Option<f64>,
        /// Average number of campuses fully networked; null when none was observed.
        #[schema(required)]
        fully_networked: Option<f64>,
        /// `reporting / registered`; null when none was observed.
        #[schema(required)]
        reporting_rate: Option<f64>,
        /// `alarm_networked / registered`; null when none was observed.
        #[schema(required)]
        alarm_networked_rate: Option<f64>,
        /// `video_networked / registered`; null when none was observed.
        #[schema(required)]
        video_networked_rate: Option<f64>,
        /// `fully_networked / registered`; null when none was observed.
        #[schema(required)]
        fully_networked_rate: Option<f64>,
    }

    /// Availability of a set of campuses over the period: for each link, the mean over
    /// campuses of each campus's availability (up time / counted time; every campus
    /// weighs the same), null when no campus had counted time.
    #[derive(ToSchema)]
    pub(in crate::api) struct AvailabilityFigures {
        /// Registered campuses in the set.
        registered: u64,
        /// Counted campus-hours: the period less maintenance and the times the server was
        /// not running, summed over the campuses.
        observed_campus_hours: f64,
        /// Gateway link (gateway online).
        #[schema(required)]
        gateway: Option<f64>,
        /// Alarm networked.
        #[schema(required)]
        alarm: Option<f64>,
        /// Video networked.
        #[schema(required)]
        video: Option<f64>,
        /// Fully networked (alarm and video).
        #[schema(required)]
        fully: Option<f64>,
        /// Video networked by the agent's view alone (`video` follows the view in force,
        /// `gb28181.video_view`).
        #[schema(required)]
        video_agent: Option<f64>,
        /// Video networked by the GB/T 28181 view, over the campuses whose entries list
        /// codes; null when none does.
        #[schema(required)]
        video_platform: Option<f64>,
        /// Campuses whose registry entries list GB/T 28181 codes.
        platform_campuses: u64,
    }

    /// One campus that should be networked. Note: the JSON key is `campus` where the CSV
    /// column is `id`.
    #[derive(ToSchema)]
    pub(in crate::api) struct RegistryEntry {
        campus: CampusId,
        /// Campus name, 1 to 200 characters, no control characters.
        #[schema(min_length = 1, max_length = 200)]
        name: String,
        /// The county-level division the campus is in.
        region: RegionCode,
        #[schema(value_type = super::SchoolType)]
        school_type: (),
        /// Alarm devices the campus should have.
        #[schema(maximum = 1024)]
        expected_alarms: u32,
        /// Cameras the campus should have.
        #[schema(maximum = 1024)]
        expected_cameras: u32,
        /// Its GB/T 28181 device and channel codes (20 digits each; absent when none):
        /// the CSV column `gb_device_ids`, `;`-separated.
        #[schema(value_type = Option<Vec<String>>)]
        gb_device_ids: (),
    }

    /// What is wrong with one line of a registry file.
    #[derive(ToSchema)]
    pub(in crate::api) struct LineError {
        /// 1-based line number as an editor shows it; the header is line 1 unless blank
        /// lines precede it. For a quoted field spanning lines, the line the row starts on.
        #[schema(minimum = 1)]
        line: u64,
        /// The column (`id`, `name`, `region`, `school_type`, `expected_alarms`,
        /// `expected_cameras`, or an unknown header column as written); null when the
        /// error is about the whole row or file.
        #[schema(required)]
        column: Option<String>,
        /// What is wrong and how to fix it, in English.
        message: String,
        /// The reason's stable code, for a client to say it in its own language with
        /// `params` (see docs/api.md, "Registry import errors").
        #[schema(example = "not_county")]
        code: String,
        /// The values the reason speaks of, by name, as text (for `not_county`: `value`,
        /// the code, and `level`, `city` or `province`).
        #[schema(example = json!({"value": "150100", "level": "city"}))]
        params: std::collections::BTreeMap<String, String>,
    }

    /// One change, as sent in a server-sent event's data.
    #[derive(ToSchema)]
    pub(in crate::api) struct LiveEvent {
        /// `transition` (a gateway or device changed state), `alert`, `incident`,
        /// `gb_device` (a GB/T 28181 device registered, changed state or answered a
        /// catalog) or `registry` (after an import).
        #[schema(schema_with = live_kind)]
        kind: &'static str,
        /// The region it concerns (a county); null for changes that concern everyone.
        #[schema(required)]
        region: Option<RegionCode>,
        /// The campus it concerns, if one.
        #[schema(required)]
        campus: Option<CampusId>,
        /// The transition, alert or incident, as the other endpoints show it; for
        /// `gb_device` the device's code, state, since, cause, catalog time and channel
        /// counts (`total`, `on`); null for `registry`.
        data: serde_json::Value,
    }

    /// A user of the console and the API (never their password).
    #[derive(ToSchema)]
    pub(in crate::api) struct User {
        id: i64,
        name: String,
        role: crate::auth::Role,
        /// The region subtree the user sees; null = everything.
        #[schema(required)]
        scope: Option<RegionCode>,
        /// A disabled user cannot sign in, and their sessions and tokens ended when they
        /// were disabled.
        disabled: bool,
        #[schema(value_type = String, format = DateTime)]
        created_at: (),
    }

    /// An API token (never the token itself, which was shown once, when it was made).
    #[derive(ToSchema)]
    pub(in crate::api) struct ApiToken {
        id: i64,
        /// What it is for.
        name: String,
        /// Whose it is: their id and name.
        user_id: i64,
        user: String,
        #[schema(value_type = String, format = DateTime)]
        created_at: (),
        #[schema(value_type = String, format = DateTime)]
        expires_at: (),
        /// When it was last used (to the minute); null if never.
        #[schema(required, value_type = Option<String>, format = DateTime)]
        last_used: (),
        /// When it was revoked (by its user, an administrator, a new password or the
        /// user's disabling); null if not.
        #[schema(required, value_type = Option<String>, format = DateTime)]
        revoked_at: (),
    }

    /// One administrative action.
    #[derive(ToSchema)]
    pub(in crate::api) struct AuditEntry {
        id: i64,
        #[schema(value_type = String, format = DateTime)]
        at: (),
        /// Who did it: a user's name, or `local` (the command line, or sign-in off).
        actor: String,
        /// The id of the API token they acted with; null for a session or the command
        /// line.
        #[schema(required)]
        token: Option<i64>,
        action: crate::store::AuditAction,
        /// What it was done to: a user's name, `token 4`, `maintenance 7`, `alert 12`,
        /// `registry`.
        target: String,
        /// The region it concerns; null for the whole area.
        #[schema(required)]
        region: Option<RegionCode>,
        /// The action's particulars (an import's counts, a token's name, a comment, …).
        #[schema(value_type = Object)]
        details: serde_json::Value,
        /// The client's address; null from the command line.
        #[schema(required)]
        source: Option<String>,
    }

    fn live_kind() -> utoipa::openapi::schema::ObjectBuilder {
        super::string_enum(
            ["transition", "alert", "incident", "gb_device", "registry"],
            "`transition` (a gateway or device changed state), `alert`, `incident`, \
             `gb_device` (a GB/T 28181 device registered, changed state or answered a \
             catalog) or `registry` (after an import).",
        )
    }
}
