//! Topic names: `cw/v1/{region}/{campus}/{birth|death|heartbeat|event}` and the server's
//! retained state topic `cw/v1/server/{server_id}/state`.

use std::fmt;

use crate::ids::{CampusId, IdError, RegionCode};

/// The root every campuswatch topic starts with; the `v1` is the protocol's major version.
pub const TOPIC_ROOT: &str = "cw/v1";

/// Which of a campus's messages a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Birth,
    Death,
    Heartbeat,
    Event,
}

impl MessageKind {
    pub const ALL: [MessageKind; 4] = [
        MessageKind::Birth,
        MessageKind::Death,
        MessageKind::Heartbeat,
        MessageKind::Event,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Birth => "birth",
            MessageKind::Death => "death",
            MessageKind::Heartbeat => "heartbeat",
            MessageKind::Event => "event",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a topic is not a campus topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic {0:?} is not under {TOPIC_ROOT}/{{region}}/{{campus}}/{{kind}}")]
    Shape(String),
    #[error("topic {topic:?}: {source}")]
    Id { topic: String, source: IdError },
    #[error("topic {0:?} ends in an unknown message kind")]
    Kind(String),
    #[error("topic {0:?} names a city or province; a campus reports under its county's code")]
    NotCounty(String),
}

/// A parsed campus topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampusTopic {
    pub region: RegionCode,
    pub campus: CampusId,
    pub kind: MessageKind,
}

impl CampusTopic {
    pub fn new(region: RegionCode, campus: CampusId, kind: MessageKind) -> Self {
        Self {
            region,
            campus,
            kind,
        }
    }

    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        let (region, campus, kind) = split_campus_topic(topic, &[])?;
        Ok(Self {
            region,
            campus,
            kind: MessageKind::parse(kind).ok_or_else(|| TopicError::Kind(topic.to_string()))?,
        })
    }
}

/// Splits `cw/v1/{region}/{campus}/{middle…}/{kind}` into the campus's region and id and
/// the last segment, which the caller parses as its kind.
pub(crate) fn split_campus_topic<'t>(
    topic: &'t str,
    middle: &[&str],
) -> Result<(RegionCode, CampusId, &'t str), TopicError> {
    let shape = || TopicError::Shape(topic.to_string());
    let mut parts = topic
        .strip_prefix(TOPIC_ROOT)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(shape)?
        .split('/');
    let (Some(region), Some(campus)) = (parts.next(), parts.next()) else {
        return Err(shape());
    };
    for segment in middle {
        if parts.next() != Some(*segment) {
            return Err(shape());
        }
    }
    let (Some(kind), None) = (parts.next(), parts.next()) else {
        return Err(shape());
    };
    let id_err = |source| TopicError::Id {
        topic: topic.to_string(),
        source,
    };
    let region = RegionCode::parse(region).map_err(id_err)?;
    if region.level() != crate::ids::RegionLevel::County {
        return Err(TopicError::NotCounty(topic.to_string()));
    }
    Ok((region, CampusId::parse(campus).map_err(id_err)?, kind))
}

impl fmt::Display for CampusTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TOPIC_ROOT}/{}/{}/{}",
            self.region, self.campus, self.kind
        )
    }
}

/// Subscription filters for a server that watches the given regions (all when empty).
///
/// A region here is any node (province, city or county); MQTT wildcards cannot express
/// "every county of city 150100", so a city or province subscribes at `+` and the server
/// filters what it receives by region prefix.
pub fn campus_filters(kind: MessageKind, regions: &[RegionCode]) -> Vec<String> {
    let counties: Vec<_> = regions
        .iter()
        .filter(|r| r.level() == crate::RegionLevel::County)
        .collect();
    if regions.is_empty() || counties.len() != regions.len() {
        return vec![format!("{TOPIC_ROOT}/+/+/{kind}")];
    }
    counties
        .iter()
        .map(|r| format!("{TOPIC_ROOT}/{r}/+/{kind}"))
        .collect()
}

/// The retained topic on which a server announces `online` / `offline`.
pub fn server_state_topic(server_id: &str) -> String {
    format!("{TOPIC_ROOT}/server/{server_id}/state")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campus_topic_round_trips() {
        let t = CampusTopic::parse("cw/v1/150102/150102-K-0001/heartbeat").unwrap();
        assert_eq!(t.region.as_str(), "150102");
        assert_eq!(t.campus.as_str(), "150102-K-0001");
        assert_eq!(t.kind, MessageKind::Heartbeat);
        assert_eq!(t.to_string(), "cw/v1/150102/150102-K-0001/heartbeat");
    }

    #[test]
    fn foreign_and_malformed_topics_are_refused() {
        for bad in [
            "cw/v2/150102/c1/birth",
            "cw/v1/150102/c1",
            "cw/v1/150102/c1/birth/extra",
            "cw/v1/15x102/c1/birth",
            "cw/v1/150102//birth",
            "cw/v1/150102/c1/status",
            "cw/v1/server/main/state",
            // Campuses report under their county, never a city or the province.
            "cw/v1/150100/150100-K-1/heartbeat",
            "cw/v1/150000/150000-K-1/birth",
            "",
        ] {
            assert!(CampusTopic::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn county_regions_narrow_the_subscription_and_others_widen_it() {
        let county = RegionCode::parse("150102").unwrap();
        let city = RegionCode::parse("150100").unwrap();
        assert_eq!(
            campus_filters(MessageKind::Event, &[county]),
            ["cw/v1/150102/+/event"]
        );
        assert_eq!(
            campus_filters(MessageKind::Event, &[county, city]),
            ["cw/v1/+/+/event"]
        );
        assert_eq!(campus_filters(MessageKind::Birth, &[]), ["cw/v1/+/+/birth"]);
    }
}
