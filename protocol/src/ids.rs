//! Identifiers that appear in topics and payloads: region codes, campus ids, device ids.
//!
//! Each is a validated newtype so that a value that made it past parsing can be put in a
//! topic, a file name or a SQL row without further checks.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "region code {0:?} is not six digits (an administrative division code such as 150102)"
    )]
    Region(String),
    #[error("{what} {value:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' or '.', not starting with '.'")]
    Name { what: &'static str, value: String },
}

/// Level of an administrative division in the region tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionLevel {
    Province,
    City,
    County,
}

/// A six-digit administrative division code (GB/T 2260 style): `PPCCXX`.
///
/// `150000` is a province, `150100` a city (prefecture or league) in it, `150102` a county
/// (district, banner, county-level city) in that. The parent of a county is found from its
/// code alone, which is what lets coverage roll up without a separate region table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionCode([u8; 6]);

impl RegionCode {
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let bytes = s.as_bytes();
        if bytes.len() != 6 || !bytes.iter().all(u8::is_ascii_digit) || &bytes[..2] == b"00" {
            return Err(IdError::Region(s.to_string()));
        }
        let mut code = [0u8; 6];
        code.copy_from_slice(bytes);
        Ok(Self(code))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("000000")
    }

    pub fn level(&self) -> RegionLevel {
        if &self.0[2..] == b"0000" {
            RegionLevel::Province
        } else if &self.0[4..] == b"00" {
            RegionLevel::City
        } else {
            RegionLevel::County
        }
    }

    /// The province this code belongs to (itself for a province).
    pub fn province(&self) -> RegionCode {
        let mut c = self.0;
        c[2..].copy_from_slice(b"0000");
        RegionCode(c)
    }

    /// The city this code belongs to; `None` for a province.
    pub fn city(&self) -> Option<RegionCode> {
        if self.level() == RegionLevel::Province {
            return None;
        }
        let mut c = self.0;
        c[4..].copy_from_slice(b"00");
        Some(RegionCode(c))
    }

    /// The next level up, `None` for a province.
    pub fn parent(&self) -> Option<RegionCode> {
        match self.level() {
            RegionLevel::Province => None,
            RegionLevel::City => Some(self.province()),
            RegionLevel::County => self.city(),
        }
    }

    /// This code and every ancestor, from the code itself up to its province.
    pub fn lineage(&self) -> impl Iterator<Item = RegionCode> {
        std::iter::successors(Some(*self), |c| c.parent())
    }

    /// True when `self` is `other` or lies below it in the tree.
    pub fn is_within(&self, other: &RegionCode) -> bool {
        self.lineage().any(|c| c == *other)
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RegionCode {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for RegionCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RegionCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        RegionCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The text of an id: up to 22 bytes held in place, longer ones in an allocation of
/// their own. A server holds millions of ids (every device of a province, every campus
/// in several indexes), most of them short (`cam-01`, `150102-K-0001`): in place, each
/// saves the 32-byte allocation a `String` of the same size (24 bytes) points to.
#[derive(Clone)]
enum IdText {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

const INLINE: usize = 22;

impl IdText {
    fn new(s: &str) -> IdText {
        if s.len() <= INLINE {
            let mut bytes = [0u8; INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            IdText::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            IdText::Heap(s.into())
        }
    }

    fn as_str(&self) -> &str {
        match self {
            IdText::Inline { len, bytes } => {
                // Always the bytes of a whole `&str` (see `new`); checked, which costs
                // little for at most 22 bytes, rather than assumed.
                std::str::from_utf8(&bytes[..*len as usize]).unwrap_or_default()
            }
            IdText::Heap(s) => s,
        }
    }
}

// Compared, ordered and hashed as the text, as `Borrow<str>` requires.
impl PartialEq for IdText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for IdText {}

impl PartialOrd for IdText {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IdText {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for IdText {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl fmt::Debug for IdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

macro_rules! name_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(IdText);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, IdError> {
                if valid_name(s) {
                    Ok(Self(IdText::new(s)))
                } else {
                    Err(IdError::Name { what: $what, value: s.to_string() })
                }
            }

            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                self.as_str()
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_id!(
    /// A campus's registry id, as it appears in topics (`cw/v1/{region}/{campus}/…`).
    CampusId,
    "campus id"
);
name_id!(
    /// A device's id, unique within its campus (`alarm-1`, `cam-gate-north`).
    DeviceId,
    "device id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_short_and_long_behave_as_their_text() {
        use std::collections::{BTreeSet, HashMap};
        let long = "cam-".to_string() + &"x".repeat(60);
        let texts = [
            "a",
            "cam-01",
            "150102-K-0001",
            "exactly-22-bytes-long!",
            &long,
        ];
        for t in texts.iter().filter(|t| valid_name(t)) {
            let id = DeviceId::parse(t).unwrap();
            assert_eq!(id.as_str(), *t);
            assert_eq!(id.to_string(), *t);
            assert_eq!(format!("{id:?}"), format!("DeviceId({t:?})"));
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(serde_json::from_str::<DeviceId>(&json).unwrap(), id);
            // Found by its text in a map keyed by ids.
            let map: HashMap<DeviceId, u8> = [(id.clone(), 1)].into();
            assert_eq!(map.get(*t), Some(&1));
        }
        // Ordered as the text, whichever way each is held.
        let mut ids: Vec<CampusId> = ["b-23-bytes-long-campus1", "a", "b", "ab"]
            .iter()
            .map(|t| CampusId::parse(t).unwrap())
            .collect();
        ids.sort();
        let sorted: Vec<&str> = ids.iter().map(CampusId::as_str).collect();
        assert_eq!(sorted, ["a", "ab", "b", "b-23-bytes-long-campus1"]);
        let set: BTreeSet<&str> = sorted.iter().copied().collect();
        assert_eq!(set.len(), 4);
        assert_eq!(std::mem::size_of::<DeviceId>(), 24);
    }

    #[test]
    fn county_rolls_up_to_city_and_province() {
        let c = RegionCode::parse("150102").unwrap();
        assert_eq!(c.level(), RegionLevel::County);
        assert_eq!(c.city().unwrap().as_str(), "150100");
        assert_eq!(c.province().as_str(), "150000");
        let lineage: Vec<_> = c.lineage().map(|r| r.to_string()).collect();
        assert_eq!(lineage, ["150102", "150100", "150000"]);
        assert!(c.is_within(&RegionCode::parse("150000").unwrap()));
        assert!(!c.is_within(&RegionCode::parse("150200").unwrap()));
    }

    #[test]
    fn league_codes_are_cities() {
        let league = RegionCode::parse("152900").unwrap();
        assert_eq!(league.level(), RegionLevel::City);
        assert_eq!(league.parent().unwrap().as_str(), "150000");
    }

    #[test]
    fn bad_region_codes_are_refused() {
        for bad in [
            "",
            "15010",
            "1501020",
            "15010a",
            "000000",
            "15 102",
            "１５０１０２",
        ] {
            assert!(RegionCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_allow_registry_ids_and_refuse_topic_syntax() {
        assert!(CampusId::parse("150102-K-0001").is_ok());
        assert!(DeviceId::parse("cam.gate_1").is_ok());
        for bad in [
            "",
            "a/b",
            "+",
            "#",
            ".hidden",
            "a b",
            &"x".repeat(65),
            "校园",
        ] {
            assert!(CampusId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
