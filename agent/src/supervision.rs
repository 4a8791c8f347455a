//! Alarm transmission supervision categories (EN 50136-1 ATS categories, as alarm panels
//! and receiving centres name them): each sets the longest time a failed alarm path may go
//! unnoticed (the reporting time). A DC-09 link test or supervision window configured by
//! category gets its timing from that time instead of from a number an installer guessed.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A supervision category: single path `SP1`–`SP6` or dual path `DP1`–`DP4` (for which the
/// primary path's reporting time applies here: the gateway's link is the primary path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Category {
    Sp1,
    Sp2,
    Sp3,
    Sp4,
    Sp5,
    Sp6,
    Dp1,
    Dp2,
    Dp3,
    Dp4,
}

const ALL: [(Category, &str, u64); 10] = [
    (Category::Sp1, "SP1", 32 * 24 * 3600),
    (Category::Sp2, "SP2", 25 * 3600),
    (Category::Sp3, "SP3", 30 * 60),
    (Category::Sp4, "SP4", 3 * 60),
    (Category::Sp5, "SP5", 90),
    (Category::Sp6, "SP6", 20),
    (Category::Dp1, "DP1", 25 * 3600),
    (Category::Dp2, "DP2", 30 * 60),
    (Category::Dp3, "DP3", 3 * 60),
    (Category::Dp4, "DP4", 90),
];

impl Category {
    fn entry(self) -> &'static (Category, &'static str, u64) {
        // Every variant is in ALL.
        ALL.iter().find(|(c, _, _)| *c == self).unwrap_or(&ALL[0])
    }

    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// The longest a failed path may go unreported.
    pub fn reporting_time(self) -> Duration {
        Duration::from_secs(self.entry().2)
    }

    /// The probe interval that reports a failed link within the reporting time. A path
    /// that fails just after a good probe is down after `down_after` failed probes one
    /// interval apart, the last taking up to `timeout`; one more interval is kept as
    /// margin for a busy gateway and for the event's way to the server. Never below one
    /// second.
    pub fn probe_interval(self, down_after: u32, timeout: Duration) -> Duration {
        let budget = self.reporting_time().saturating_sub(timeout);
        (budget / (down_after.max(1) + 1)).max(Duration::from_secs(1))
    }

    /// How long a failed link may go unnoticed with these settings (see
    /// [`Category::probe_interval`]).
    pub fn detection_time(interval: Duration, down_after: u32, timeout: Duration) -> Duration {
        interval * (down_after.max(1) + 1) + timeout
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Category {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ALL.iter()
            .find(|(_, name, _)| name.eq_ignore_ascii_case(s.trim()))
            .map(|(c, _, _)| *c)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a supervision category; use one of {}",
                    ALL.map(|(_, n, _)| n).join(", ")
                )
            })
    }
}

impl TryFrom<String> for Category {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Category> for String {
    fn from(c: Category) -> String {
        c.name().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_in_any_case_and_unknown_ones_list_the_choices() {
        assert_eq!("sp4".parse::<Category>(), Ok(Category::Sp4));
        assert_eq!(" DP2 ".parse::<Category>(), Ok(Category::Dp2));
        let err = "SP7".parse::<Category>().unwrap_err();
        assert!(
            err.contains("SP1, SP2, SP3, SP4, SP5, SP6, DP1, DP2, DP3, DP4"),
            "{err}"
        );
    }

    #[test]
    fn the_derived_interval_reports_a_failure_within_the_reporting_time() {
        let timeout = Duration::from_secs(3);
        for (c, _, _) in ALL {
            for down_after in 1..=5 {
                let interval = c.probe_interval(down_after, timeout);
                let detected = Category::detection_time(interval, down_after, timeout);
                assert!(
                    detected <= c.reporting_time() || interval == Duration::from_secs(1),
                    "{c} down_after {down_after}: {detected:?}"
                );
            }
        }
        // SP4 (3 min), two failed probes: a probe every 59 s.
        assert_eq!(
            Category::Sp4.probe_interval(2, timeout),
            Duration::from_secs(59)
        );
        // SP6 (20 s): every 5.67 s.
        assert_eq!(Category::Sp6.probe_interval(2, timeout).as_millis(), 5666);
    }
}
