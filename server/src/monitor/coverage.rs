//! Coverage counters per region node and school type, maintained incrementally.
//!
//! Each registered campus contributes one [`Contribution`] (registered = 1, reporting 0/1,
//! networked flags, device counts). When anything about a campus changes, the monitor
//! subtracts its old contribution and adds the new one along the campus's lineage
//! (county → city → province → the whole area): O(depth) per change, and a coverage query
//! only sums four school types, never scans campuses.

use std::collections::{BTreeSet, HashMap};

use campuswatch_protocol::{RegionCode, RegionLevel, SchoolType};
use serde::{Deserialize, Serialize};

/// The coverage rule: whether a campus is alarm networked and video networked, given
/// whether its gateway is online and how many of its alarm devices and cameras are
/// reachable. The monitor applies it to the live state and the reports to the history, so
/// both always judge a campus alike. At least `ceil(fraction × expected)` devices of a
/// kind, and never fewer than one, must be reachable.
pub fn networked(
    online: bool,
    expected: (u32, u32),
    reachable: (u64, u64),
    fractions: (f64, f64),
) -> (bool, bool) {
    if !online {
        return (false, false);
    }
    (
        reachable.0 >= needed(expected.0, fractions.0),
        reachable.1 >= needed(expected.1, fractions.1),
    )
}

/// How many reachable devices of a kind networking needs: `ceil(fraction × expected)`,
/// and never fewer than one.
pub fn needed(expected: u32, fraction: f64) -> u64 {
    ((expected as f64 * fraction).ceil() as u64).max(1)
}

/// What one campus adds to the counts of every region node above it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Contribution {
    pub registered: u64,
    pub reporting: u64,
    pub alarm_networked: u64,
    pub video_networked: u64,
    pub fully_networked: u64,
    pub alarm_expected: u64,
    pub alarm_up: u64,
    pub camera_expected: u64,
    pub camera_up: u64,
    /// Video networked by the agent's view (its cameras).
    pub video_agent: u64,
    /// Campuses whose registry entry lists GB/T 28181 devices.
    pub platform_listed: u64,
    /// Video networked by the GB/T 28181 view (channels ON on the platform).
    pub video_platform: u64,
    /// The agent sees the video networked, the platform does not: the uplink or the
    /// platform registration is broken.
    pub uplink_broken: u64,
    /// The platform sees the video networked, the agent does not: the agent is blind.
    pub agent_blind: u64,
}

impl Contribution {
    /// The counts behind figures users saw (another server's, to add to ours).
    pub fn of(b: &CoverageBlock) -> Contribution {
        Contribution {
            registered: b.registered,
            reporting: b.reporting,
            alarm_networked: b.alarm_networked,
            video_networked: b.video_networked,
            fully_networked: b.fully_networked,
            alarm_expected: b.devices.alarm.expected,
            alarm_up: b.devices.alarm.up,
            camera_expected: b.devices.camera.expected,
            camera_up: b.devices.camera.up,
            video_agent: b.video_views.agent_networked,
            platform_listed: b.video_views.platform_campuses,
            video_platform: b.video_views.platform_networked,
            uplink_broken: b.video_views.uplink_broken,
            agent_blind: b.video_views.agent_blind,
        }
    }

    pub fn add(&mut self, o: &Contribution) {
        self.registered += o.registered;
        self.reporting += o.reporting;
        self.alarm_networked += o.alarm_networked;
        self.video_networked += o.video_networked;
        self.fully_networked += o.fully_networked;
        self.alarm_expected += o.alarm_expected;
        self.alarm_up += o.alarm_up;
        self.camera_expected += o.camera_expected;
        self.camera_up += o.camera_up;
        self.video_agent += o.video_agent;
        self.platform_listed += o.platform_listed;
        self.video_platform += o.video_platform;
        self.uplink_broken += o.uplink_broken;
        self.agent_blind += o.agent_blind;
    }

    fn sub(&mut self, o: &Contribution) {
        // Saturating: a bookkeeping slip must never show a wrapped, absurd figure.
        self.registered = self.registered.saturating_sub(o.registered);
        self.reporting = self.reporting.saturating_sub(o.reporting);
        self.alarm_networked = self.alarm_networked.saturating_sub(o.alarm_networked);
        self.video_networked = self.video_networked.saturating_sub(o.video_networked);
        self.fully_networked = self.fully_networked.saturating_sub(o.fully_networked);
        self.alarm_expected = self.alarm_expected.saturating_sub(o.alarm_expected);
        self.alarm_up = self.alarm_up.saturating_sub(o.alarm_up);
        self.camera_expected = self.camera_expected.saturating_sub(o.camera_expected);
        self.camera_up = self.camera_up.saturating_sub(o.camera_up);
        self.video_agent = self.video_agent.saturating_sub(o.video_agent);
        self.platform_listed = self.platform_listed.saturating_sub(o.platform_listed);
        self.video_platform = self.video_platform.saturating_sub(o.video_platform);
        self.uplink_broken = self.uplink_broken.saturating_sub(o.uplink_broken);
        self.agent_blind = self.agent_blind.saturating_sub(o.agent_blind);
    }

    /// The figures users see, with rates.
    pub fn block(&self) -> CoverageBlock {
        let rate = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
        CoverageBlock {
            registered: self.registered,
            reporting: self.reporting,
            alarm_networked: self.alarm_networked,
            video_networked: self.video_networked,
            fully_networked: self.fully_networked,
            reporting_rate: rate(self.reporting, self.registered),
            alarm_networked_rate: rate(self.alarm_networked, self.registered),
            video_networked_rate: rate(self.video_networked, self.registered),
            fully_networked_rate: rate(self.fully_networked, self.registered),
            devices: DeviceCoverage {
                alarm: KindCoverage {
                    expected: self.alarm_expected,
                    up: self.alarm_up,
                    rate: rate(self.alarm_up, self.alarm_expected),
                },
                camera: KindCoverage {
                    expected: self.camera_expected,
                    up: self.camera_up,
                    rate: rate(self.camera_up, self.camera_expected),
                },
            },
            video_views: VideoViews {
                agent_networked: self.video_agent,
                platform_campuses: self.platform_listed,
                platform_networked: self.video_platform,
                uplink_broken: self.uplink_broken,
                agent_blind: self.agent_blind,
            },
        }
    }
}

/// Coverage figures for one node (or one school type of it). Rates are `null` when the
/// denominator is zero: "no campuses registered" is not "0 % networked".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageBlock {
    pub registered: u64,
    pub reporting: u64,
    pub alarm_networked: u64,
    pub video_networked: u64,
    pub fully_networked: u64,
    pub reporting_rate: Option<f64>,
    pub alarm_networked_rate: Option<f64>,
    pub video_networked_rate: Option<f64>,
    pub fully_networked_rate: Option<f64>,
    pub devices: DeviceCoverage,
    /// What each view says of video; `video_networked` counts the one in force
    /// (`gb28181.video_view`). Absent from older partition servers' answers: zero.
    #[serde(default)]
    pub video_views: VideoViews,
}

/// Video networking by the agent's view and by the GB/T 28181 view, and where they
/// disagree (docs/gb28181.md).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoViews {
    /// Campuses whose agent sees enough cameras up.
    pub agent_networked: u64,
    /// Campuses whose registry entry lists GB/T 28181 devices.
    pub platform_campuses: u64,
    /// Of those, campuses with enough camera channels ON on the platform.
    pub platform_networked: u64,
    /// Cameras up on campus but not on the platform: the uplink or the registration is
    /// broken.
    pub uplink_broken: u64,
    /// Up on the platform but not seen by the agent: the agent is blind.
    pub agent_blind: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceCoverage {
    pub alarm: KindCoverage,
    pub camera: KindCoverage,
}

/// Device-level figures: expected from the registry, up counted per campus up to the
/// number expected (a campus with extra cameras does not hide another's missing ones).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindCoverage {
    pub expected: u64,
    pub up: u64,
    pub rate: Option<f64>,
}

type ByType = [Contribution; 4];

/// The counters of every region node, plus the region tree of registered campuses.
#[derive(Debug, Default)]
pub struct CoverageIndex {
    /// Keyed by node; `None` is the whole area the server watches.
    nodes: HashMap<Option<RegionCode>, ByType>,
    /// Child region nodes of each node that has registered campuses below it.
    children: HashMap<Option<RegionCode>, BTreeSet<RegionCode>>,
    /// A mark per campus region (county) that changes whenever a campus of it is added
    /// or taken away, so that a listing of its campuses can be kept until then.
    versions: HashMap<RegionCode, u64>,
}

/// Marks are unique in the process, so that a mark never comes back after the monitor
/// is built again (a restore, a takeover): a listing kept from before cannot match.
static NEXT_VERSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl CoverageIndex {
    fn keys(region: RegionCode) -> impl Iterator<Item = Option<RegionCode>> {
        region.lineage().map(Some).chain(std::iter::once(None))
    }

    fn touch(&mut self, region: RegionCode) {
        let next = NEXT_VERSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.versions.insert(region, next);
    }

    /// The mark of the campuses of `region` (their ids, names, school types and
    /// contributions) as they are now; `None` when none was ever added.
    pub fn version(&self, region: RegionCode) -> Option<u64> {
        self.versions.get(&region).copied()
    }

    pub fn add(&mut self, region: RegionCode, school_type: SchoolType, c: &Contribution) {
        self.touch(region);
        if c.registered > 0 {
            let mut child = None;
            for key in Self::keys(region) {
                if let Some(ch) = child {
                    self.children.entry(key).or_default().insert(ch);
                }
                child = key;
            }
        }
        for key in Self::keys(region) {
            self.nodes.entry(key).or_default()[school_type.index()].add(c);
        }
    }

    pub fn sub(&mut self, region: RegionCode, school_type: SchoolType, c: &Contribution) {
        self.touch(region);
        for key in Self::keys(region) {
            if let Some(node) = self.nodes.get_mut(&key) {
                node[school_type.index()].sub(c);
            }
        }
        // Prune tree edges to nodes that no longer hold any registered campus.
        let mut child = None;
        for key in Self::keys(region) {
            if let Some(ch) = child {
                let empty = self
                    .nodes
                    .get(&Some(ch))
                    .is_none_or(|n| n.iter().all(|c| c.registered == 0));
                if empty {
                    if let Some(set) = self.children.get_mut(&key) {
                        set.remove(&ch);
                    }
                }
            }
            child = key;
        }
    }

    /// The sum for a node, over one school type or all.
    pub fn total(&self, node: Option<RegionCode>, school_type: Option<SchoolType>) -> Contribution {
        let mut sum = Contribution::default();
        if let Some(by_type) = self.nodes.get(&node) {
            match school_type {
                Some(t) => sum.add(&by_type[t.index()]),
                None => by_type.iter().for_each(|c| sum.add(c)),
            }
        }
        sum
    }

    /// Region nodes directly below `node` that hold registered campuses.
    pub fn child_regions(&self, node: Option<RegionCode>) -> impl Iterator<Item = RegionCode> + '_ {
        self.children.get(&node).into_iter().flatten().copied()
    }

    /// Region nodes of `level` below `node` (or `node` itself, if it is of that level)
    /// that hold registered campuses, in code order: every county of a province, say.
    pub fn regions_at(&self, node: Option<RegionCode>, level: RegionLevel) -> Vec<RegionCode> {
        if let Some(n) = node {
            if n.level() == level {
                return vec![n];
            }
            if n.level() == RegionLevel::County {
                return Vec::new();
            }
        }
        let mut out = Vec::new();
        for child in self.child_regions(node) {
            if child.level() == level {
                out.push(child);
            } else {
                out.extend(self.regions_at(Some(child), level));
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> RegionCode {
        RegionCode::parse(s).unwrap()
    }

    fn campus(reporting: bool, alarm: bool) -> Contribution {
        Contribution {
            registered: 1,
            reporting: reporting as u64,
            alarm_networked: alarm as u64,
            alarm_expected: 1,
            alarm_up: alarm as u64,
            ..Default::default()
        }
    }

    #[test]
    fn a_campus_counts_in_its_county_city_province_and_the_whole_area() {
        let mut idx = CoverageIndex::default();
        idx.add(code("150102"), SchoolType::Primary, &campus(true, true));
        idx.add(
            code("150203"),
            SchoolType::Kindergarten,
            &campus(false, false),
        );
        for node in [Some(code("150102")), Some(code("150100"))] {
            assert_eq!(idx.total(node, None).registered, 1);
            assert_eq!(idx.total(node, None).alarm_networked, 1);
        }
        let all = idx.total(None, None);
        assert_eq!(
            (all.registered, all.reporting, all.alarm_networked),
            (2, 1, 1)
        );
        assert_eq!(idx.total(Some(code("150000")), None), all);
        assert_eq!(idx.total(None, Some(SchoolType::Kindergarten)).reporting, 0);
        let cities: Vec<_> = idx.child_regions(Some(code("150000"))).collect();
        assert_eq!(cities, [code("150100"), code("150200")]);
        assert_eq!(
            idx.child_regions(None).collect::<Vec<_>>(),
            [code("150000")]
        );
    }

    #[test]
    fn replacing_a_contribution_moves_the_counts_exactly() {
        let mut idx = CoverageIndex::default();
        let region = code("150102");
        idx.add(region, SchoolType::Primary, &campus(false, false));
        idx.sub(region, SchoolType::Primary, &campus(false, false));
        idx.add(region, SchoolType::Primary, &campus(true, true));
        let b = idx.total(None, None).block();
        assert_eq!((b.registered, b.reporting, b.alarm_networked), (1, 1, 1));
        assert_eq!(b.alarm_networked_rate, Some(1.0));
        assert_eq!(b.devices.camera.rate, None);
    }

    #[test]
    fn removing_the_last_campus_of_a_county_prunes_it_from_the_tree() {
        let mut idx = CoverageIndex::default();
        idx.add(code("150102"), SchoolType::Primary, &campus(true, true));
        idx.add(code("150103"), SchoolType::Primary, &campus(true, true));
        idx.sub(code("150103"), SchoolType::Primary, &campus(true, true));
        let counties: Vec<_> = idx.child_regions(Some(code("150100"))).collect();
        assert_eq!(counties, [code("150102")]);
        assert_eq!(idx.total(None, None).registered, 1);
    }

    #[test]
    fn rates_are_null_without_a_denominator() {
        let b = CoverageIndex::default().total(None, None).block();
        assert_eq!(b.registered, 0);
        assert_eq!(b.fully_networked_rate, None);
    }

    #[test]
    fn a_countys_mark_changes_with_its_campuses_only_and_never_comes_back() {
        let mut idx = CoverageIndex::default();
        assert_eq!(idx.version(code("150102")), None);
        idx.add(code("150102"), SchoolType::Primary, &campus(true, true));
        idx.add(code("150203"), SchoolType::Primary, &campus(true, true));
        let (a, b) = (idx.version(code("150102")), idx.version(code("150203")));
        assert!(a.is_some() && b.is_some());
        idx.sub(code("150102"), SchoolType::Primary, &campus(true, true));
        assert_ne!(idx.version(code("150102")), a);
        assert_eq!(
            idx.version(code("150203")),
            b,
            "another county keeps its mark"
        );
        // A monitor built again gives new marks, never one seen before.
        let mut again = CoverageIndex::default();
        again.add(code("150203"), SchoolType::Primary, &campus(true, true));
        assert_ne!(again.version(code("150203")), b);
    }
}
