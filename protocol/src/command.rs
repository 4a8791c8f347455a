//! Commands: what a server asks of one gateway, on `cw/v1/{region}/{campus}/cmd/{command}`
//! (schema version 3). The only command is [`Rebirth`]: "publish your birth again", sent
//! when the server's view of the gateway's devices no longer matches the digest in its
//! heartbeats, or when it hears heartbeats of a session whose birth it never got.
//! Heartbeats stay small because of this: the full state travels only in births, and a
//! server that lost it asks for it instead of every heartbeat carrying it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{CampusId, RegionCode};
use crate::message::{
    check_epoch, check_text, parse, DecodeError, MAX_PAYLOAD_BYTES, SCHEMA_VERSION,
};
use crate::topic::{split_campus_topic, TopicError, TOPIC_ROOT};

/// The schema version in which commands appeared; a command carries it or a newer one.
pub const COMMAND_SCHEMA_VERSION: u32 = 3;

/// Which command a command topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Rebirth,
}

impl CommandKind {
    pub const ALL: [CommandKind; 1] = [CommandKind::Rebirth];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Rebirth => "rebirth",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed command topic: `cw/v1/{region}/{campus}/cmd/{command}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTopic {
    pub region: RegionCode,
    pub campus: CampusId,
    pub kind: CommandKind,
}

impl CommandTopic {
    pub fn new(region: RegionCode, campus: CampusId, kind: CommandKind) -> Self {
        Self {
            region,
            campus,
            kind,
        }
    }

    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        let (region, campus, kind) = split_campus_topic(topic, &["cmd"])?;
        Ok(Self {
            region,
            campus,
            kind: CommandKind::parse(kind).ok_or_else(|| TopicError::Kind(topic.to_string()))?,
        })
    }
}

impl fmt::Display for CommandTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TOPIC_ROOT}/{}/{}/cmd/{}",
            self.region, self.campus, self.kind
        )
    }
}

/// "Publish your birth again." QoS 1, not retained. A gateway answers only a request
/// for its current session (`epoch`): a request queued by the broker while the gateway
/// was away is about a session whose successor already began with a birth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rebirth {
    pub v: u32,
    pub campus: CampusId,
    pub region: RegionCode,
    /// The session the server heard from, as its heartbeat said.
    pub epoch: u64,
    /// Why the server asks, in words for the gateway's log (`digest_mismatch`,
    /// `birth_missing`, `events_missing`); gateways must not act on its value.
    pub reason: String,
}

/// Any command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Rebirth(Rebirth),
}

impl Command {
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::Rebirth(_) => CommandKind::Rebirth,
        }
    }

    /// The topic this command belongs on.
    pub fn topic(&self) -> CommandTopic {
        match self {
            Command::Rebirth(r) => {
                CommandTopic::new(r.region, r.campus.clone(), CommandKind::Rebirth)
            }
        }
    }

    /// The JSON payload.
    pub fn encode(&self) -> Vec<u8> {
        // Plain structs with string keys: serializing cannot fail.
        match self {
            Command::Rebirth(r) => serde_json::to_vec(r).unwrap_or_default(),
        }
    }
}

/// Decodes and validates a command that arrived on `topic`, with the same rules as
/// campus messages: size bound, schema version (3 or newer known ones), no unknown
/// fields, campus and region equal to the topic's, field bounds.
pub fn decode_command(topic: &CommandTopic, payload: &[u8]) -> Result<Command, DecodeError> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(DecodeError::TooLarge {
            size: payload.len(),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    let cmd = match topic.kind {
        CommandKind::Rebirth => Command::Rebirth(parse::<Rebirth>(payload)?),
    };
    let (v, campus, region) = match &cmd {
        Command::Rebirth(r) => (r.v, &r.campus, r.region),
    };
    if !(COMMAND_SCHEMA_VERSION..=SCHEMA_VERSION).contains(&v) {
        return Err(DecodeError::Version(v.into()));
    }
    if campus != &topic.campus {
        return Err(DecodeError::Mismatch {
            field: "campus",
            topic: topic.campus.to_string(),
            payload: campus.to_string(),
        });
    }
    if region != topic.region {
        return Err(DecodeError::Mismatch {
            field: "region",
            topic: topic.region.to_string(),
            payload: region.to_string(),
        });
    }
    match &cmd {
        Command::Rebirth(r) => {
            check_epoch(r.epoch)?;
            check_text("reason", &r.reason)?;
        }
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::CampusTopic;

    fn topic() -> CommandTopic {
        CommandTopic::parse("cw/v1/150102/150102-K-0001/cmd/rebirth").unwrap()
    }

    const REQUEST: &str = r#"{"v":3,"campus":"150102-K-0001","region":"150102","epoch":1795500000,"reason":"digest_mismatch"}"#;

    #[test]
    fn a_rebirth_request_written_by_hand_decodes() {
        let Command::Rebirth(r) = decode_command(&topic(), REQUEST.as_bytes()).unwrap();
        assert_eq!(r.epoch, 1_795_500_000);
        assert_eq!(r.reason, "digest_mismatch");
    }

    #[test]
    fn a_rebirth_request_round_trips_on_its_topic() {
        let cmd = Command::Rebirth(Rebirth {
            v: COMMAND_SCHEMA_VERSION,
            campus: CampusId::parse("150102-K-0001").unwrap(),
            region: RegionCode::parse("150102").unwrap(),
            epoch: 7,
            reason: "birth_missing".into(),
        });
        let t = cmd.topic();
        assert_eq!(t.to_string(), "cw/v1/150102/150102-K-0001/cmd/rebirth");
        assert_eq!(CommandTopic::parse(&t.to_string()).unwrap(), t);
        assert_eq!(decode_command(&t, &cmd.encode()).unwrap(), cmd);
    }

    #[test]
    fn command_topics_and_campus_topics_never_parse_as_each_other() {
        assert!(CampusTopic::parse("cw/v1/150102/c1/cmd/rebirth").is_err());
        for bad in [
            "cw/v1/150102/c1/birth",
            "cw/v1/150102/c1/cmd",
            "cw/v1/150102/c1/cmd/reboot",
            "cw/v1/150102/c1/command/rebirth",
            "cw/v1/150102/c1/cmd/rebirth/x",
            "cw/v1/15010x/c1/cmd/rebirth",
        ] {
            assert!(CommandTopic::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_request_of_an_old_version_another_campus_or_epoch_0_is_refused() {
        for (bad, reason) in [
            (REQUEST.replace("\"v\":3", "\"v\":2"), "version"),
            (REQUEST.replace("\"v\":3", "\"v\":5"), "version"),
            (
                REQUEST.replace("\"campus\":\"150102-K-0001\"", "\"campus\":\"x\""),
                "topic_mismatch",
            ),
            (
                REQUEST.replace("\"region\":\"150102\"", "\"region\":\"150103\""),
                "topic_mismatch",
            ),
            (REQUEST.replace("1795500000", "0"), "invalid"),
            (
                REQUEST.replace("digest_mismatch", &"x".repeat(600)),
                "invalid",
            ),
            (
                REQUEST.replace("\"epoch\"", "\"force\":true,\"epoch\""),
                "malformed",
            ),
            ("rebirth please".to_string(), "malformed"),
        ] {
            let err = decode_command(&topic(), bad.as_bytes()).unwrap_err();
            assert_eq!(err.reason(), reason, "{bad}: {err}");
        }
    }
}
