//! Parts of a device record kept compact, because a province holds millions of them.
//!
//! - [`Readings`], a device's last measurements. The protocol's map
//!   (`BTreeMap<String, f64>`) takes a 368-byte tree node for a single measurement, plus
//!   an allocation for its name; here the entries are one allocation of exactly their size
//!   (none when there are none), and the names agents report are borrowed from a fixed
//!   list instead of allocated.
//! - [`ProbeName`], the name of the probe that checks the device, borrowed from the list
//!   of the agent's probes.
//!
//! Both are written and read as before (the protocol's map, a string), so stored records
//! and API answers do not change.

use campuswatch_protocol::Measurements;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The measurement names the agent's probes report (agent/src/probe); any other name is
/// kept too, in an allocation of its own.
const MEASUREMENTS: &[&str] = &[
    "latency_ms",
    "width",
    "height",
    "frame_rate",
    "bitrate_kbps",
    "frames",
    "keyframes",
    "first_keyframe_ms",
    "http_status",
    "bytes",
    "clock_drift_s",
    "since_last_poll_s",
    "sip_status",
];

/// The probes of the agent (agent/src/probe/settings.rs, `ProbeConfig::kind`).
const PROBES: &[&str] = &[
    "tcp",
    "http",
    "dc09",
    "dc09_listen",
    "onvif",
    "icmp",
    "snapshot",
    "sip",
    "rtsp",
];

/// Text that is one of a list of names most of the time: then it is borrowed from the
/// list, with no allocation; other text is kept in an allocation of its own.
#[derive(Debug, Clone, PartialEq)]
enum Name {
    Known(&'static str),
    Other(Box<str>),
}

impl Name {
    fn new(text: &str, known: &'static [&'static str]) -> Name {
        match known.iter().find(|k| **k == text) {
            Some(k) => Name::Known(k),
            None => Name::Other(text.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Name::Known(k) => k,
            Name::Other(s) => s,
        }
    }
}

/// The name of the probe that checks a device (`tcp`, `rtsp`, …; empty when not known).
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeName(Name);

impl ProbeName {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl From<&str> for ProbeName {
    fn from(name: &str) -> ProbeName {
        ProbeName(Name::new(name, PROBES))
    }
}

impl std::fmt::Display for ProbeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ProbeName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProbeName {
    /// Without a `String` in between: restoring a province reads millions of these.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ProbeName, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = ProbeName;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a probe name")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ProbeName, E> {
                Ok(ProbeName::from(v))
            }
        }
        d.deserialize_str(Text)
    }
}

/// Measurements by name, in name order (as the map they come from).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Readings(Box<[(Name, f64)]>);

impl Readings {
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(n, v)| (n.as_str(), *v))
    }

    /// As the protocol's map, for answers that carry it.
    pub fn to_map(&self) -> Measurements {
        self.iter().map(|(n, v)| (n.to_string(), v)).collect()
    }
}

impl From<&Measurements> for Readings {
    fn from(m: &Measurements) -> Readings {
        Readings(
            m.iter()
                .map(|(n, v)| (Name::new(n, MEASUREMENTS), *v))
                .collect(),
        )
    }
}

impl Serialize for Readings {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Readings {
    /// Straight into the entries, without the map in between: restoring a province reads
    /// millions of these, and every map's node freed between the records kept left memory
    /// the allocator could not hand back. As the map, a name given twice keeps its last
    /// value.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Readings, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = Readings;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of measurement names to numbers")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Readings, A::Error> {
                let mut entries: Vec<(Name, f64)> = Vec::new();
                while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let value: f64 = map.next_value()?;
                    match entries.iter_mut().find(|(n, _)| n.as_str() == name) {
                        Some(e) => e.1 = value,
                        None => entries.push((Name::new(&name, MEASUREMENTS), value)),
                    }
                }
                entries.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
                Ok(Readings(entries.into_boxed_slice()))
            }
        }
        d.deserialize_map(Entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, f64)]) -> Measurements {
        pairs.iter().map(|(n, v)| (n.to_string(), *v)).collect()
    }

    #[test]
    fn keeps_every_measurement_known_or_not_in_name_order() {
        let m = map(&[
            ("width", 1920.0),
            ("latency_ms", 4.5),
            ("vendor_temp_c", 41.0),
        ]);
        let r = Readings::from(&m);
        assert_eq!(r.to_map(), m);
        let pairs: Vec<(&str, f64)> = r.iter().collect();
        assert_eq!(
            pairs,
            [
                ("latency_ms", 4.5),
                ("vendor_temp_c", 41.0),
                ("width", 1920.0)
            ]
        );
        assert_eq!(Readings::from(&Measurements::new()).iter().count(), 0);
    }

    #[test]
    fn reads_and_writes_the_same_json_as_the_protocols_map() {
        let m = map(&[("first_keyframe_ms", 120.0), ("x", -1.5)]);
        let json = serde_json::to_string(&m).unwrap();
        let r: Readings = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), json);
        assert_eq!(r.to_map(), m);
        assert_eq!(serde_json::to_string(&Readings::default()).unwrap(), "{}");
        // What the map refuses, this refuses; what it reads, this reads the same.
        for bad in ["{\"a\": \"fast\"}", "[1, 2]", "{\"a\": 1", "7", "null"] {
            assert!(serde_json::from_str::<Measurements>(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<Readings>(bad).is_err(), "{bad}");
        }
        for good in [
            "{\"b\": 1, \"a\": 2}",
            "{\"a\": 1, \"a\": 3}",
            "{\"w\\u0069dth\": 5}",
            "{}",
        ] {
            let m: Measurements = serde_json::from_str(good).unwrap();
            let r: Readings = serde_json::from_str(good).unwrap();
            assert_eq!(r.to_map(), m, "{good}");
        }
    }

    #[test]
    fn a_known_name_takes_no_allocation_and_a_record_stays_small() {
        let r = Readings::from(&map(&[("latency_ms", 1.0)]));
        assert!(matches!(r.0[0].0, Name::Known(_)));
        assert_eq!(std::mem::size_of::<Readings>(), 16);
        assert!(matches!(ProbeName::from("rtsp").0, Name::Known(_)));
    }

    #[test]
    fn probe_names_known_or_not_read_and_write_as_strings() {
        for name in ["rtsp", "dc09_listen", "", "vendor-x"] {
            let p = ProbeName::from(name);
            assert_eq!(p.as_str(), name);
            assert_eq!(p.to_string(), name);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, serde_json::to_string(name).unwrap());
            assert_eq!(serde_json::from_str::<ProbeName>(&json).unwrap(), p);
        }
        assert!(serde_json::from_str::<ProbeName>("7").is_err());
    }
}
